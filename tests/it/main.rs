//! The integration tests: one binary, one module per area. Each test builds
//! a site in its own temporary folder and drives the real `tidings` binary
//! the way an operator would, then reads back the files it wrote. What
//! the tests share lives in [`support`]; a test module imports from there,
//! never from another test module.

mod support;

mod added_stories;
mod addresses;
mod atomic;
mod bounce_webhooks;
mod bounces;
mod bounces_imap;
mod browser;
mod cli;
mod config_errors;
mod db_copy;
mod digest;
mod email_layout;
mod feeds;
mod ingest;
mod instances;
mod jobs;
mod keys;
mod layers;
mod lazy_bodies;
mod leave;
mod outage;
mod outbox;
mod sample_round;
mod sanitize;
mod scheduler;
mod service;
mod smtp;
mod sources_remote;
mod story_errors;
mod subscribers;
mod templates;
mod upstream;
mod web_feeds;
mod web_forms;
mod web_ops;
mod web_pages;
mod web_server;
mod websub;
