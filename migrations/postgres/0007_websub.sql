-- See migrations/sqlite/0011_websub.sql.
CREATE TABLE websub_subscriptions (
    topic         TEXT NOT NULL,
    callback      TEXT NOT NULL,
    callback_host TEXT NOT NULL,
    secret        TEXT,
    lease_seconds BIGINT NOT NULL,
    expires_ms    BIGINT NOT NULL,
    created_ms    BIGINT NOT NULL,
    PRIMARY KEY (topic, callback)
);
CREATE INDEX websub_subscriptions_host ON websub_subscriptions (callback_host);
CREATE INDEX websub_subscriptions_expires ON websub_subscriptions (expires_ms);

CREATE TABLE websub_deliveries (
    topic      TEXT NOT NULL,
    callback   TEXT NOT NULL,
    attempts   BIGINT NOT NULL DEFAULT 0,
    due_ms     BIGINT NOT NULL,
    last_error TEXT,
    PRIMARY KEY (topic, callback),
    FOREIGN KEY (topic, callback) REFERENCES websub_subscriptions (topic, callback) ON DELETE CASCADE
);
CREATE INDEX websub_deliveries_due ON websub_deliveries (due_ms);
