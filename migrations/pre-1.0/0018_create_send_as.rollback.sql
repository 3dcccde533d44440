-- Undo 0018. Refused while grants exist: rolling back must not quietly take away what
-- a user may send as.
DO $$
BEGIN
    IF EXISTS (SELECT FROM public.send_as) THEN
        RAISE EXCEPTION 'send-as grants exist; remove them (disallow_send_as) before rolling back 0018'
              USING ERRCODE = '55000';
    END IF;
END
$$;

DROP TABLE public.send_as;
