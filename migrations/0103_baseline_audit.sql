-- audit_log: who changed what in the mail tables, and when. One row per changed row:
-- through the SQL API (the functions run as mailowner; the caller is still known) or
-- by direct DML as the owner or a superuser; and one per refused self-service password
-- change (REFUSED, with its reason). Never a value: the key of the row and, for an
-- UPDATE, the names of the columns that changed, so a password or hash can never reach
-- the log. Each mail table attaches the two trigger functions below in its own file.
-- Cost: inserts and deletes are logged once per statement from its transition table
-- (a 1,000,000-mailbox import writes its 1,000,000 log rows in one INSERT ... SELECT);
-- updates, which the API makes one row at a time, per row.
-- depends: 0102_baseline_validation

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
                CHECK (operation IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFUSED')),
    -- users: the address; aliases: "alias -> destination"; transports: the domain;
    -- NULL for settings (one row) and for TRUNCATE
    row_key     text,
    -- UPDATE only: the columns whose values changed (never the values)
    changed     text[],
    -- REFUSED only: an SQLSTATE and its sentence, never a value
    reason      text
);
COMMENT ON TABLE public.audit_log IS
'Who changed what in the mail tables, and when: one row per changed row, by the API or by direct DML. Never a value: only the row''s key and, for an UPDATE, the names of the changed columns.';
COMMENT ON COLUMN public.audit_log.id IS 'Order of writing.';
COMMENT ON COLUMN public.audit_log.at IS 'Time of the transaction.';
COMMENT ON COLUMN public.audit_log.login_role IS 'The role that logged in (session_user).';
COMMENT ON COLUMN public.audit_log.acting_role IS 'The role in effect (current_user before the API''s SECURITY DEFINER), e.g. after SET ROLE mailadmin.';
COMMENT ON COLUMN public.audit_log.txid IS 'The transaction, to group the rows of one change.';
COMMENT ON COLUMN public.audit_log.table_name IS 'The table changed.';
COMMENT ON COLUMN public.audit_log.operation IS 'INSERT, UPDATE, DELETE, or a refusal.';
COMMENT ON COLUMN public.audit_log.row_key IS 'The changed row''s key (an address, a domain, alias -> destination).';
COMMENT ON COLUMN public.audit_log.changed IS 'For an UPDATE, the columns whose values changed.';
COMMENT ON COLUMN public.audit_log.reason IS 'For a refusal, why.';

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
COMMENT ON FUNCTION public.audit_statement() IS 'Trigger: one audit_log row per inserted or deleted row, from the statement''s transition table.';

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
COMMENT ON FUNCTION public.audit_update() IS 'Trigger: one audit_log row per updated row, naming the changed columns.';
