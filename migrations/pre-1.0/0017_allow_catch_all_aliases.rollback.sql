-- Undo 0017. Refused while catch-all aliases exist: the old check would reject them.
DO $$
BEGIN
    IF EXISTS (SELECT FROM public.aliases WHERE left(alias, 1) = '@') THEN
        RAISE EXCEPTION 'catch-all aliases exist; remove them (remove_alias) before rolling back 0017'
              USING ERRCODE = '55000';
    END IF;
END
$$;

ALTER TABLE public.aliases
    DROP CONSTRAINT aliases_alias_valid,
    ADD CONSTRAINT aliases_alias_valid CHECK (public.address_error(alias) IS NULL);
DROP FUNCTION public.alias_error(text);
