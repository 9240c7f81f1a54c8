-- See migrations/sqlite/0010_rate_limits.sql.
CREATE TABLE rate_limits (
    key    TEXT PRIMARY KEY NOT NULL,
    tat_ms BIGINT NOT NULL
);
CREATE INDEX rate_limits_tat ON rate_limits (tat_ms);
