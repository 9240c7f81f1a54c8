-- What each remote source (wordpress, feed) remembers between runs, as
-- JSON: validators for conditional requests, where a permanent redirect
-- moved it, how far an incremental read got, whether it answered 410.
CREATE TABLE source_state (
    source     TEXT PRIMARY KEY NOT NULL,   -- the source key, e.g. "feed:https://…"
    state      TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
