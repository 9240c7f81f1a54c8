-- The sign-up rate limits, shared by every instance on the store. One row
-- per limited key: the SHA-256 (hex) of the client's address bucket or of
-- the lower-cased email address, never the value itself, and the key's
-- "theoretical arrival time" (GCRA, as governor keeps it in memory) in
-- Unix milliseconds. Once that time has passed the key is fully rested:
-- the row says nothing any more and may be deleted.
CREATE TABLE rate_limits (
    key    TEXT PRIMARY KEY NOT NULL,
    tat_ms INTEGER NOT NULL
);
CREATE INDEX rate_limits_tat ON rate_limits (tat_ms);
