-- See migrations/sqlite/0008_signing_keys.sql.
CREATE TABLE signing_keys (
    id          BIGINT PRIMARY KEY NOT NULL,
    origin      TEXT NOT NULL CHECK (origin IN ('store', 'environment')),
    secret      BYTEA,
    fingerprint TEXT NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL,
    CHECK ((origin = 'store') = (secret IS NOT NULL))
);
