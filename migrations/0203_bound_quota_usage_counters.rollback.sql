-- Undo 0203_bound_quota_usage_counters: quota_usage takes any bigint again (the rows it
-- deleted as out of range are not restored).
ALTER TABLE public.quota_usage
    DROP CONSTRAINT quota_usage_bytes_range,
    DROP CONSTRAINT quota_usage_messages_range;
COMMENT ON COLUMN public.quota_usage.bytes IS 'Bytes stored.';
COMMENT ON COLUMN public.quota_usage.messages IS 'Messages stored.';
