-- One row of per-database settings that only mailowner (or a superuser) may change.
-- The bcrypt cost lives here and not in a custom GUC because any session may SET a
-- custom GUC: a mailadmin could then quietly lower the cost of the hashes it writes.
-- Cost 10 is about 60 ms on a current core; the tutorial's 5 is too cheap today.
-- depends: 0002_create_pgcrypto

CREATE TABLE public.settings (
    id          boolean PRIMARY KEY DEFAULT true
                CONSTRAINT settings_single_row CHECK (id),
    bcrypt_cost integer NOT NULL DEFAULT 10
                CONSTRAINT settings_bcrypt_cost_range CHECK (bcrypt_cost BETWEEN 4 AND 31)
);

INSERT INTO public.settings DEFAULT VALUES;
