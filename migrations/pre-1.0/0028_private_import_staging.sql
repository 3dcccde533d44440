-- import_staging holds one import's rows, plaintext passwords included, for the length
-- of the importing transaction. Two holes closed:
-- * Statistics: import_batch() runs ANALYZE on the table while a batch is staged, and
--   ANALYZE copied sampled passwords into pg_statistic (histogram_bounds, most common
--   values), a catalogue that is WAL-logged: they reached replicas and backups although
--   the table is UNLOGGED. A column whose statistics target is 0 is never sampled; the
--   planner still gets the row count and the other columns' statistics it needs.
-- * Batches: a mailadmin could INSERT rows with an explicit batch, e.g. the next
--   transaction ids, and another admin's import then wrote them too, credited to that
--   admin. batch is now only ever its DEFAULT, the inserting transaction: mailadmin may
--   insert the file's columns and no other (sql/api/90_privileges.sql); seq was already
--   GENERATED ALWAYS.
-- depends: 0027_bound_hash_work_factors

ALTER TABLE public.import_staging ALTER COLUMN password SET STATISTICS 0;
ALTER TABLE public.import_staging ALTER COLUMN password_hash SET STATISTICS 0;

-- statistics already gathered from earlier imports go now; the table is empty between
-- imports, so this sample holds no row
ANALYZE public.import_staging;
