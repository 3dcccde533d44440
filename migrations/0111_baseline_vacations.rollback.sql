-- Undo 0111_baseline_vacations. Refused while a reply is set: rolling back would stop
-- out-of-office replies without anyone deciding so.
DO $$
BEGIN
    IF EXISTS (SELECT FROM public.vacations) THEN
        RAISE EXCEPTION 'vacations exist; clear them (clear_vacation) before rolling back 0111_baseline_vacations'
              USING ERRCODE = '55000';
    END IF;
END
$$;

DROP VIEW public.sieve_scripts;
DROP TABLE public.vacations;
DROP FUNCTION public.vacation_script(text, text, integer, text[]);
DROP FUNCTION public.sieve_string(text);
DROP FUNCTION public.vacation_text_error(text, boolean);
