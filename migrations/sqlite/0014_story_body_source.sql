-- A story read from a Markdown file keeps the SHA-256 of its Markdown body
-- (`source_hash`) instead of a rendered body: the body is rendered when a
-- feed or an edition shows it, and the rendering is kept in `body_html`
-- with `body_key` naming what it was rendered from (see
-- src/sources/bodies.rs). NULL `source_hash`: `body_html` is the body
-- itself (remote sources, and stories stored before this).
ALTER TABLE stories ADD COLUMN source_hash TEXT;
ALTER TABLE stories ADD COLUMN body_key TEXT;
