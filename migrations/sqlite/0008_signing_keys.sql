-- The keys that sign subscriber links. Every token names the key that
-- signed it; the key with the highest id signs new tokens, and every key
-- stays valid for verification, so links in emails already sent keep
-- working after `tidings key rotate`.
--
-- A key kept in the store holds its secret here. A key given in the
-- environment (TIDINGS_SECRET) is never stored: only its fingerprint, so
-- that a process started with another value (or none) is refused instead
-- of signing links the others cannot verify.
--
-- The key of older versions (`settings.signing_key`) becomes key 1 the
-- first time the key ring is read (its fingerprint is computed there).
CREATE TABLE signing_keys (
    id          INTEGER PRIMARY KEY NOT NULL,
    origin      TEXT NOT NULL CHECK (origin IN ('store', 'environment')),
    secret      BLOB,
    fingerprint TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    CHECK ((origin = 'store') = (secret IS NOT NULL))
);
