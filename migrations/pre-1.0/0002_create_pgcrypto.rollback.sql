-- Undo 0002_create_pgcrypto.
DROP EXTENSION IF EXISTS pgcrypto;
