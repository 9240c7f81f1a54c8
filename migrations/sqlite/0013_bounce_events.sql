-- Reports of failed delivery and complaints, each matched to a delivery by
-- the signed token of its VERP envelope sender (see src/bounces/). One row
-- per report: `report_hash` (SHA-256, hex, of the whole report) makes
-- importing the same report twice record it once. `report` keeps at most
-- the first 64 KiB of it; `report_size` is its whole size. `edition_id`
-- names the edition the token names, with no reference: the event stays
-- when editions are pruned. Erasing a subscriber erases their events.
CREATE TABLE bounce_events (
    id            INTEGER PRIMARY KEY,
    received_at   TEXT NOT NULL,
    subscriber_id INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    edition_id    INTEGER NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('hard', 'soft', 'complaint')),
    diagnostic    TEXT NOT NULL,
    action        TEXT NOT NULL,
    report        BLOB NOT NULL,
    report_size   INTEGER NOT NULL,
    report_hash   TEXT NOT NULL UNIQUE
);
CREATE INDEX bounce_events_subscriber ON bounce_events (subscriber_id, kind, received_at);
