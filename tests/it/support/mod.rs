//! What the tests share: fixture sites in temporary folders and the
//! `tidings` binary run against them (`site`), `tidings run` as a service
//! (`service`), the store they run on (`backend`, `stored`), what a build
//! wrote read back with independent parsers (`feeds`), digests and their
//! mail (`digest`, `smtp`), the bounce mailbox's servers (`mailserver`),
//! the web side (`web`), fake and faulty neighbours (`upstream`, `proxy`),
//! and waiting (`wait`).
//!
//! Test modules import from here only, never from one another.

pub mod backend;
pub mod digest;
pub mod feeds;
pub mod mailserver;
pub mod proxy;
pub mod service;
pub mod site;
pub mod smtp;
pub mod stored;
pub mod upstream;
pub mod wait;
pub mod web;

pub use backend::{
    Backend, PgDatabase, TestStore, backend, on_backend, postgres_admin_url, postgres_available,
};
pub use digest::{
    Mail, digest_site, envelope_sender, import, once_in, outbox, parse_all, ran_an_hour_ago,
    scheduled_site, sent_bounce_site, subscribe,
};
pub use feeds::feedparser;
pub use mailserver::{Dovecot, IMAP_PASSWORD, Listed, Postfix};
pub use proxy::Proxy;
pub use service::{Service, free_metrics_port, free_port};
pub use site::{FIXTURE_CONFIG, Run, Site, ok, recent};
pub use smtp::SmtpServer;
pub use stored::{sql, status, subscriber};
pub use upstream::{
    Reply, Upstream, WP_POSTS, fixture, wordpress_edited_fixture, wordpress_fixture,
};
pub use wait::{block_on, eventually, wait_until};
pub use web::{
    Page, SECRET, TOKEN, attr_after, behind_proxy, client, get, raw_client, sample_site_to_serve,
    serve, web_site,
};
