-- See migrations/sqlite/0007_source_state.sql.
CREATE TABLE source_state (
    source     TEXT PRIMARY KEY NOT NULL,
    state      TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
