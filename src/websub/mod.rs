//! WebSub (W3C Recommendation, <https://www.w3.org/TR/websub/>): feed
//! readers told of a new story when it is published instead of when they
//! next poll.
//!
//! Every feed announces its hubs (`[feeds] websub_hubs`; the formats do
//! that in `feeds/`). After a build has written the feeds that changed,
//! [`WebSub::feeds_changed`] tells the hubs: each external hub gets a
//! `hub.mode=publish` ping ([`ping`]), retried with backoff in the
//! background; the built-in hub (`"builtin"`) owes each live subscription
//! of a changed feed a distribution, kept in the store, and wakes the
//! [`distribute`] worker that sends them. The built-in hub's subscription
//! requests and their verification of intent are in [`hub`]; callback URLs
//! are checked in [`callback`].

pub mod callback;
pub mod distribute;
pub mod hub;
pub mod ping;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::Notify;
use url::Url;

use crate::config::Config;
use crate::store::Store;

/// How long the hub waits for a subscriber or a hub to answer.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The WebSub side of a site: the HTTP client the hub and the pings use,
/// and the wake-up of the distribution worker. Cheap to share.
pub struct WebSub {
    config: Arc<Config>,
    store: Store,
    /// For the external hubs the operator configured.
    client: reqwest::Client,
    /// For subscribers' callbacks: refuses private addresses unless
    /// `websub_allow_private_callbacks` (see [`callback::PublicOnly`]).
    callbacks: reqwest::Client,
    wake: Arc<Notify>,
}

/// Whether pings are retried in the background (the service) or tried
/// once and waited for (a `tidings build` that exits right after).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pings {
    Background,
    OnceAndWait,
}

impl WebSub {
    /// Fails only when an HTTP client cannot be made (TLS set-up).
    pub fn new(config: Arc<Config>, store: Store) -> anyhow::Result<WebSub> {
        let agent = format!(
            "tidings/{} (+{}; WebSub)",
            env!("CARGO_PKG_VERSION"),
            config.site.base_url
        );
        // A callback or hub that redirects could lead anywhere, past the
        // address checks: redirects are failures.
        let builder = || {
            reqwest::Client::builder()
                .user_agent(agent.clone())
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(TIMEOUT)
                .timeout(TIMEOUT)
        };
        let client = builder().build()?;
        let callbacks = if config.feeds.websub.allow_private_callbacks {
            client.clone()
        } else {
            builder()
                .dns_resolver(Arc::new(callback::PublicOnly))
                .build()?
        };
        Ok(WebSub {
            config,
            store,
            client,
            callbacks,
            wake: Arc::new(Notify::new()),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The client for external hubs.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The client for subscribers' callbacks.
    pub fn callbacks(&self) -> &reqwest::Client {
        &self.callbacks
    }

    /// Whether any hub is configured.
    pub fn enabled(&self) -> bool {
        !self.config.feeds.websub.hubs.is_empty()
    }

    /// Tells the hubs that the feed files `written` (paths under the feeds
    /// dir, as a build reports them) changed. Never fails: what cannot be
    /// done is logged, and the build stands.
    pub async fn feeds_changed(&self, written: &[String], pings: Pings) {
        if !self.enabled() {
            return;
        }
        let topics = topics(&self.config, written);
        if topics.is_empty() {
            return;
        }
        let websub = &self.config.feeds.websub;
        let mut waiting = Vec::new();
        for hub in websub.external() {
            let (client, hub, topics) = (self.client.clone(), hub.clone(), topics.clone());
            let backoff = websub.backoff;
            match pings {
                Pings::Background => {
                    tokio::spawn(async move {
                        ping::publish(&client, &hub, &topics, ping::ATTEMPTS, backoff).await
                    });
                }
                Pings::OnceAndWait => waiting
                    .push(async move { ping::publish(&client, &hub, &topics, 1, backoff).await }),
            }
        }
        futures_util::future::join_all(waiting).await;
        if websub.builtin() {
            let names: Vec<String> = topics.iter().map(Url::to_string).collect();
            match self.store.websub_enqueue(&names, Utc::now()).await {
                Ok(0) => {}
                Ok(owed) => {
                    tracing::info!(owed, "websub: distributions owed to subscribers");
                    self.wake.notify_one();
                }
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "websub: cannot owe distributions")
                }
            }
        }
    }

    /// Wakes the distribution worker (it also looks on its own, now and
    /// then, for rows another process owed).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// What the distribution worker waits on.
    pub(crate) fn woken(&self) -> &Notify {
        &self.wake
    }
}

/// The feed URLs among `written` (the OPML list and the index page are
/// not topics).
fn topics(config: &Config, written: &[String]) -> Vec<Url> {
    crate::feeds::feed_urls(config)
        .into_iter()
        .filter(|(rel, _)| written.iter().any(|w| w == rel))
        .map(|(_, url)| url)
        .collect()
}

/// The pause before try `attempt` + 1 (the first retry after `backoff`,
/// doubled after each), at most a day.
pub fn pause(backoff: Duration, attempt: u32) -> Duration {
    backoff
        .saturating_mul(1u32 << attempt.min(20))
        .min(Duration::from_secs(24 * 3600))
}
