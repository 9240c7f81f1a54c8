-- Changes of data that SQL alone cannot make, run once by the program
-- (see Store::open): each migration that needs one adds its name here, and
-- the program removes it when the change is made.
--
-- canonical_emails: every subscriber address brought to the one canonical
-- form of this version (quotes that change nothing removed), subscribers
-- that share an inbox merged. See Store::canonicalize_subscribers.
CREATE TABLE fixups (
    name TEXT PRIMARY KEY NOT NULL
);
INSERT INTO fixups (name) VALUES ('canonical_emails');
