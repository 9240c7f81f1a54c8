-- See migrations/sqlite/0009_fixups.sql.
CREATE TABLE fixups (
    name TEXT PRIMARY KEY NOT NULL
);
INSERT INTO fixups (name) VALUES ('canonical_emails');
