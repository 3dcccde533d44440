-- Undo 0061. Refused while vacations exist: rolling back must not quietly stop the
-- replies users set (clear_vacation() them first).
DO $$
BEGIN
    IF EXISTS (SELECT FROM public.vacations) THEN
        RAISE EXCEPTION 'vacations exist; clear them (clear_vacation) before rolling back 0061'
              USING ERRCODE = '55000';
    END IF;
END
$$;

DROP VIEW public.sieve_scripts;
DROP TABLE public.vacations;
DROP FUNCTION public.vacation_script(text, text, integer, text[]);
DROP FUNCTION public.sieve_string(text);
DROP FUNCTION public.vacation_text_error(text, boolean);
