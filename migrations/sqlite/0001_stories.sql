-- Stories as ingested from every source. A story's id never changes once
-- given; `withdrawn_at` hides it from feeds without losing its identity.
-- Small columns come first and the body last: SQLite reads a row from its
-- start, so queries that need no body never touch its overflow pages.
CREATE TABLE stories (
    id            TEXT PRIMARY KEY NOT NULL,
    guid          TEXT NOT NULL UNIQUE,
    source        TEXT NOT NULL,
    slug          TEXT NOT NULL,
    origin        TEXT NOT NULL,   -- where the source found it (file path, URL)
    origin_stamp  TEXT,            -- the source's version marker (mtime and size), to skip re-reading
    content_hash  TEXT NOT NULL,
    published_at  TEXT NOT NULL,   -- the story's own date
    updated_at    TEXT,            -- the editor's `updated`, if given
    first_seen_at TEXT NOT NULL,   -- when ingest first stored it
    changed_at    TEXT,            -- when ingest last saw its content change
    withdrawn_at  TEXT,            -- set while removed or a draft
    themes        TEXT NOT NULL,   -- JSON array of theme slugs, in the editor's order
    language      TEXT,
    authors       TEXT NOT NULL,   -- JSON array of names
    url           TEXT NOT NULL,
    title         TEXT NOT NULL,
    image         TEXT,
    image_alt     TEXT,
    summary       TEXT NOT NULL,
    body_html     TEXT NOT NULL
);
CREATE UNIQUE INDEX stories_slug ON stories (slug);
CREATE INDEX stories_first_seen ON stories (first_seen_at);
-- Covering indexes: what ingest matches on, and what the feeds choose by,
-- are read from these alone.
CREATE INDEX stories_refs
    ON stories (id, source, slug, origin, origin_stamp, content_hash, withdrawn_at);
CREATE INDEX stories_published
    ON stories (published_at DESC, id, themes) WHERE withdrawn_at IS NULL;

-- One row per (story, theme), for per-theme feeds and digests.
CREATE TABLE story_themes (
    story_id TEXT NOT NULL REFERENCES stories (id) ON DELETE CASCADE,
    theme    TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (story_id, theme)
);
CREATE INDEX story_themes_theme ON story_themes (theme, story_id);
