-- audit_log: who changed what in the mail tables, and when. One row per changed row:
-- through the SQL API (the functions run as mailowner; the caller is still known) or
-- by direct DML as the owner or a superuser. Never a value: the key of the row and, for
-- an UPDATE, the names of the columns that changed, so a password or hash can never
-- reach the log.
--
-- Cost: inserts and deletes are logged once per statement from its transition table
-- (a 1,000,000-mailbox import writes its 1,000,000 log rows in one INSERT ... SELECT);
-- updates, which the API makes one row at a time, per row.
-- depends: 0014_stage_raw_csv

CREATE TABLE public.audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT statement_timestamp(),
    -- the login that connected, and the role it acted as (SET ROLE), if another
    login_role  text NOT NULL,
    acting_role text NOT NULL,
    txid        xid8 NOT NULL,
    table_name  text NOT NULL,
    operation   text NOT NULL
                CONSTRAINT audit_log_operation_known
                CHECK (operation IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')),
    -- users: the address; aliases: "alias -> destination"; transports: the domain;
    -- NULL for settings (one row) and for TRUNCATE
    row_key     text,
    -- UPDATE only: the columns whose values changed (never the values)
    changed     text[]
);

COMMENT ON TABLE public.audit_log IS
    'Changes to transports, users, aliases and settings: when, by whom, which row and columns; never values';

-- audit_statement(key columns...): AFTER INSERT/DELETE ... FOR EACH STATEMENT with the
-- statement's rows as new_rows or old_rows; AFTER TRUNCATE. The trigger's arguments
-- name the key columns, joined with " -> " into row_key.
CREATE FUNCTION public.audit_statement() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    login  text := session_user;
    acting text := CASE current_setting('role') WHEN 'none' THEN session_user ELSE current_setting('role') END;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        INSERT INTO public.audit_log (login_role, acting_role, txid, table_name, operation)
        VALUES (login, acting, pg_current_xact_id(), TG_TABLE_NAME, TG_OP);
        RETURN NULL;
    END IF;
    -- the key columns come from the trigger definition (this migration), quoted as
    -- identifiers; the transition table is new_rows for INSERT, old_rows for DELETE
    EXECUTE format(
        'INSERT INTO public.audit_log (login_role, acting_role, txid, table_name, operation, row_key)
         SELECT $1, $2, $3, $4, $5, concat_ws('' -> '', %s) FROM %I r',
        (SELECT string_agg(format('r.%I', k), ', ') FROM unnest(TG_ARGV) AS k),
        CASE TG_OP WHEN 'INSERT' THEN 'new_rows' ELSE 'old_rows' END)
    USING login, acting, pg_current_xact_id(), TG_TABLE_NAME, TG_OP;
    RETURN NULL;
END
$$;

-- audit_update(key columns...): AFTER UPDATE ... FOR EACH ROW. Logs the names of the
-- columns whose value changed (besides "modified"); an UPDATE that changes nothing is
-- not logged. A changed key is shown as "old key => new key".
CREATE FUNCTION public.audit_update() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    old_row jsonb := to_jsonb(OLD);
    new_row jsonb := to_jsonb(NEW);
    cols    text[];
    old_key text;
    new_key text;
BEGIN
    SELECT array_agg(n.key ORDER BY n.key) INTO cols
      FROM jsonb_each(new_row) AS n
     WHERE n.key <> 'modified' AND old_row -> n.key IS DISTINCT FROM n.value;
    IF cols IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT string_agg(old_row ->> k, ' -> '), string_agg(new_row ->> k, ' -> ')
      INTO old_key, new_key
      FROM unnest(TG_ARGV) AS k;
    INSERT INTO public.audit_log (login_role, acting_role, txid, table_name, operation, row_key, changed)
    VALUES (session_user,
            CASE current_setting('role') WHEN 'none' THEN session_user ELSE current_setting('role') END,
            pg_current_xact_id(), TG_TABLE_NAME, TG_OP,
            CASE WHEN old_key = new_key THEN old_key ELSE old_key || ' => ' || new_key END,
            cols);
    RETURN NULL;
END
$$;

CREATE TRIGGER audit_insert AFTER INSERT ON public.transports
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.audit_statement('domain');
CREATE TRIGGER audit_delete AFTER DELETE ON public.transports
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION public.audit_statement('domain');
CREATE TRIGGER audit_update AFTER UPDATE ON public.transports
    FOR EACH ROW EXECUTE FUNCTION public.audit_update('domain');
CREATE TRIGGER audit_truncate AFTER TRUNCATE ON public.transports
    FOR EACH STATEMENT EXECUTE FUNCTION public.audit_statement();

CREATE TRIGGER audit_insert AFTER INSERT ON public.users
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.audit_statement('email');
CREATE TRIGGER audit_delete AFTER DELETE ON public.users
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION public.audit_statement('email');
CREATE TRIGGER audit_update AFTER UPDATE ON public.users
    FOR EACH ROW EXECUTE FUNCTION public.audit_update('email');
CREATE TRIGGER audit_truncate AFTER TRUNCATE ON public.users
    FOR EACH STATEMENT EXECUTE FUNCTION public.audit_statement();

CREATE TRIGGER audit_insert AFTER INSERT ON public.aliases
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.audit_statement('alias', 'email');
CREATE TRIGGER audit_delete AFTER DELETE ON public.aliases
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION public.audit_statement('alias', 'email');
CREATE TRIGGER audit_update AFTER UPDATE ON public.aliases
    FOR EACH ROW EXECUTE FUNCTION public.audit_update('alias', 'email');
CREATE TRIGGER audit_truncate AFTER TRUNCATE ON public.aliases
    FOR EACH STATEMENT EXECUTE FUNCTION public.audit_statement();

-- settings has one row (id = true): no key to log
CREATE TRIGGER audit_update AFTER UPDATE ON public.settings
    FOR EACH ROW EXECUTE FUNCTION public.audit_update();
