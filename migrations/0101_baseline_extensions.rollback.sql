-- Undo 0101_baseline_extensions.
DROP EXTENSION pgcrypto;
DROP SCHEMA crypto;
