-- `stories_refs` covers what ingest reads of every story to match it
-- again (`story_refs` in src/store/sql/stories.rs). Since 0014 that read
-- also asks whether a story's body is rendered from its file
-- (`source_hash`), which the index did not hold: SQLite read the whole
-- table, bodies and all, on every build. With the column, the index alone
-- answers again.
DROP INDEX stories_refs;
CREATE INDEX stories_refs
    ON stories (id, source, slug, origin, origin_stamp, content_hash, withdrawn_at, source_hash);
