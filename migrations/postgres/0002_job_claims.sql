-- See migrations/sqlite/0006_job_claims.sql.
ALTER TABLE jobs ADD COLUMN claimed_tick TIMESTAMPTZ;
ALTER TABLE jobs ADD COLUMN claimed_until TIMESTAMPTZ;
