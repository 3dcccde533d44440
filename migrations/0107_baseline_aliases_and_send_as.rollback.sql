-- Undo 0107_baseline_aliases_and_send_as. Refused while aliases or send-as grants exist:
-- rolling back would drop them without anyone deciding so.
DO $$
BEGIN
    IF EXISTS (SELECT FROM public.send_as) THEN
        RAISE EXCEPTION 'send-as grants exist; remove them (disallow_send_as) before rolling back 0107_baseline_aliases_and_send_as'
              USING ERRCODE = '55000';
    END IF;
    IF EXISTS (SELECT FROM public.aliases) THEN
        RAISE EXCEPTION 'aliases exist; remove them (remove_alias) before rolling back 0107_baseline_aliases_and_send_as'
              USING ERRCODE = '55000';
    END IF;
END
$$;

DROP TABLE public.send_as;
DROP TABLE public.aliases;
