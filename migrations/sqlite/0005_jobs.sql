-- The scheduler's memory: for each job, the last tick it ran (or passed
-- over), and how its last run went. A restart reads it to run a missed
-- tick once, not once per missed tick.
CREATE TABLE jobs (
    name            TEXT PRIMARY KEY NOT NULL,   -- "ingest", "digest:monthly", ...
    last_tick       TEXT,                        -- the schedule tick last handled
    last_run_at     TEXT,
    last_result     TEXT,                        -- "ok", "failed" or "skipped"
    last_error      TEXT,
    last_success_at TEXT
);
