-- WebSub: the subscriptions of the built-in hub and the content
-- distributions owed to them.
--
-- A subscription exists once its intent was verified (the subscriber's
-- callback echoed the challenge); it is delivered to until `expires_ms`
-- (Unix milliseconds), and deleted after. `callback_host` is the host of
-- `callback`, lower-cased, to count the subscriptions of one host.
-- `secret` is `hub.secret` as the subscriber gave it (at most 200 bytes),
-- NULL when none: content is then sent unsigned.
CREATE TABLE websub_subscriptions (
    topic         TEXT NOT NULL,
    callback      TEXT NOT NULL,
    callback_host TEXT NOT NULL,
    secret        TEXT,
    lease_seconds INTEGER NOT NULL,
    expires_ms    INTEGER NOT NULL,
    created_ms    INTEGER NOT NULL,
    PRIMARY KEY (topic, callback)
);
CREATE INDEX websub_subscriptions_host ON websub_subscriptions (callback_host);
CREATE INDEX websub_subscriptions_expires ON websub_subscriptions (expires_ms);

-- One row per subscription whose topic changed and has not yet been
-- delivered: the feed as it is when the row is sent goes out. A row is
-- claimed by moving `due_ms` past a lease; it is deleted once delivered,
-- pushed back with a growing pause after a failure, and deleted with its
-- subscription after too many.
CREATE TABLE websub_deliveries (
    topic      TEXT NOT NULL,
    callback   TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    due_ms     INTEGER NOT NULL,
    last_error TEXT,
    PRIMARY KEY (topic, callback),
    FOREIGN KEY (topic, callback) REFERENCES websub_subscriptions (topic, callback) ON DELETE CASCADE
);
CREATE INDEX websub_deliveries_due ON websub_deliveries (due_ms);
