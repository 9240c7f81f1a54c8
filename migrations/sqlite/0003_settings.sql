-- Values the program keeps for itself, such as the key that signs
-- subscriber links when TIDINGS_SECRET is not set.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
);
