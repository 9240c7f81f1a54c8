-- Digest editions: the set of stories one sending of one digest holds,
-- frozen when the edition is made. `key` makes a repeat harmless: the same
-- scheduled tick (or the same manual run) never makes a second edition.
CREATE TABLE editions (
    id           INTEGER PRIMARY KEY,
    digest       TEXT NOT NULL,
    key          TEXT NOT NULL,
    period_start TEXT NOT NULL,   -- stories first seen from here ...
    period_end   TEXT NOT NULL,   -- ... to here (the freezing time)
    created_at   TEXT NOT NULL,
    completed_at TEXT,            -- when every delivery was sent, failed or skipped
    UNIQUE (digest, key)
);

-- Each story belongs to exactly one edition of each digest. `included` is
-- false for stories a first edition absorbs without sending (the archive
-- that existed before the digest did).
CREATE TABLE edition_stories (
    edition_id INTEGER NOT NULL REFERENCES editions (id) ON DELETE CASCADE,
    digest     TEXT NOT NULL,
    story_id   TEXT NOT NULL REFERENCES stories (id),
    included   INTEGER NOT NULL,
    PRIMARY KEY (edition_id, story_id),
    UNIQUE (digest, story_id)
);

-- The delivery ledger: one row per subscriber who gets an edition,
-- written in the same transaction as the edition, before anything is sent.
CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY,
    edition_id      INTEGER NOT NULL REFERENCES editions (id) ON DELETE CASCADE,
    subscriber_id   INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'skipped')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    lease_until     TEXT,             -- while `sending`: another worker may take it after this
    message_id      TEXT,
    last_error      TEXT,
    smtp_reply      TEXT,
    finished_at     TEXT,
    UNIQUE (edition_id, subscriber_id)
);
CREATE INDEX deliveries_work ON deliveries (edition_id, status, next_attempt_at);
CREATE INDEX deliveries_subscriber ON deliveries (subscriber_id);
