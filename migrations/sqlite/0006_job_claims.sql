-- Several instances on one store: the instance that runs a job's tick
-- claims it first, with a lease, so the others pass it by; a claim whose
-- instance died lapses and another takes the tick over.
ALTER TABLE jobs ADD COLUMN claimed_tick TEXT;
ALTER TABLE jobs ADD COLUMN claimed_until TEXT;
