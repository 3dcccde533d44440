-- Undo 0030: pgcrypto back in schema public, where the API before 0030 calls it.
DROP EXTENSION pgcrypto;
CREATE EXTENSION pgcrypto WITH SCHEMA public;
DROP SCHEMA crypto;
