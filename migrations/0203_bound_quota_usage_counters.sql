-- quota_usage took any bigint from mailquota, so a stolen mailquota password could set a
-- mailbox's usage to -1 or 2^63 - 1 bytes (doctor: "922337203685478% of its quota"; issue
-- 28). Dovecot's quota_clone writes unsigned counts (value_type = uint), so the counters
-- are bounded:
--   bytes: 0 to 2^53 (8 PiB): far above any mailbox, and exact wherever a number becomes a
--     double (JSON, JavaScript in a webmail, Python's float, numeric division in doctor);
--   messages: 0 to 2^31 - 1: Dovecot numbers a folder's messages with 32-bit UIDs, and
--     two billion messages is far above any mailbox; it fits an int everywhere.
-- A refused write (23514) fails only Dovecot's dict commit: quota_clone logs it and
-- writes again at the mailbox's next change; delivery and IMAP go on (Dovecot 2.3.19,
-- quota_clone_dict_commit). Rows already out of range cannot be Dovecot's: they are
-- deleted (the mailbox then shows no usage until Dovecot writes it again); the rollback
-- cannot bring them back. tests/pgtap/14_usage_and_vacations.sql holds the bounds.
-- depends: 0202_record_only_map_column_changes

DELETE FROM public.quota_usage
 WHERE bytes NOT BETWEEN 0 AND 9007199254740992 OR messages NOT BETWEEN 0 AND 2147483647;
ALTER TABLE public.quota_usage
    ADD CONSTRAINT quota_usage_bytes_range CHECK (bytes BETWEEN 0 AND 9007199254740992),
    ADD CONSTRAINT quota_usage_messages_range CHECK (messages BETWEEN 0 AND 2147483647);
COMMENT ON COLUMN public.quota_usage.bytes IS 'Bytes stored: 0 to 2^53.';
COMMENT ON COLUMN public.quota_usage.messages IS 'Messages stored: 0 to 2^31 - 1.';
