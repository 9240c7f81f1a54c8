-- `featured = true` in a story's front matter (or a sticky WordPress post):
-- the digest leads with it.
ALTER TABLE stories ADD COLUMN featured BOOLEAN NOT NULL DEFAULT FALSE;
