-- Digest subscribers. The address is kept as given (domain lower-cased and
-- in ASCII); `email_key` is its lower-cased form, so uniqueness does not
-- depend on letter case.
CREATE TABLE subscribers (
    id              INTEGER PRIMARY KEY,
    email           TEXT NOT NULL,
    email_key       TEXT NOT NULL UNIQUE,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'active', 'unsubscribed', 'bounced')),
    themes          TEXT NOT NULL,   -- JSON array of theme slugs, in the subscriber's order
    language        TEXT NOT NULL,
    digest          TEXT NOT NULL,
    consent_at      TEXT NOT NULL,   -- when consent was given (or the address was added)
    consent_source  TEXT NOT NULL,   -- how: "cli", "import:FILE", "web", ...
    created_at      TEXT NOT NULL,
    confirmed_at    TEXT,
    unsubscribed_at TEXT,
    bounced_at      TEXT
);
CREATE INDEX subscribers_digest_status ON subscribers (digest, status);
