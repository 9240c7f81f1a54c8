//! The web side of `tidings run` (axum): the feed files with validators
//! and compression, the site's pages with the sign-up form, the signed
//! subscriber pages (confirm, preferences, unsubscribe), the archive of
//! editions, the CMS ingest hook, the built-in WebSub hub, the relays' bounce
//! webhooks, health and, on
//! a listener of its own, metrics.
//!
//! Each area owns one module and its own state; this module only joins
//! their routes and holds what they share.

use std::sync::Arc;

use axum::Router;

use crate::config::Config;
use crate::links::keys::Keys;
use crate::mail::Mailer;
use crate::publish::Ingester;
use crate::store::Store;

pub mod answers;
pub mod csrf;
pub mod feeds;
pub mod forms;
pub mod guard;
pub mod leave;
pub mod limits;
pub mod manage;
pub mod ops;
pub mod pages;
pub mod render;
pub mod server;
pub mod signup;
pub mod webhooks;
pub mod websub;
pub mod words;

/// What every handler can reach.
pub struct Shared {
    pub config: Arc<Config>,
    pub store: Store,
    /// The site's signing keys: signs and verifies subscriber links.
    pub keys: Arc<Keys>,
    /// Runs ingest + feeds, one at a time (also used by the scheduler).
    pub ingester: Arc<Ingester>,
    /// The mail side, when `[mail]` is configured (confirmation emails).
    pub mailer: Option<Arc<Mailer>>,
    /// `TIDINGS_API_TOKEN`: the bearer token of `POST /api/ingest`; when
    /// unset the endpoint refuses everyone.
    pub api_token: Option<String>,
    pub feeds: feeds::FeedCache,
    pub forms: guard::FormState,
    pub pages: answers::Pages,
    /// The digest's templates: an edition's web page is the email's design.
    pub editions: crate::digest::render::Templates,
    /// Work a request starts and does not wait for (sign-up: store and
    /// send the confirmation); a stop waits for it like for digest sends.
    pub background: tokio_util::task::TaskTracker,
    /// The verifiers of the bounce webhooks (`[bounces.webhooks]`).
    pub relays: crate::bounces::relay::Relays,
}

/// The state handlers receive.
pub type AppState = Arc<Shared>;

impl Shared {
    pub fn new(
        config: Arc<Config>,
        store: Store,
        keys: Arc<Keys>,
        ingester: Arc<Ingester>,
        mailer: Option<Arc<Mailer>>,
    ) -> anyhow::Result<Shared> {
        let api_token = config
            .http
            .api_token
            .as_ref()
            .map(|t| t.expose().to_owned());
        let relays = crate::bounces::relay::Relays::new(&config.bounces)
            .map_err(|problems| anyhow::anyhow!("{}", problems.join("\n")))?;
        Ok(Shared {
            relays,
            feeds: feeds::FeedCache::new(&config),
            forms: guard::FormState::new(&config, &keys.signer()),
            pages: answers::Pages::load(&config)?,
            editions: crate::digest::render::Templates::load(&config)?,
            config,
            store,
            keys,
            ingester,
            mailer,
            api_token,
            background: tokio_util::task::TaskTracker::new(),
        })
    }
}

/// Renders every page template with sample values in each language the
/// pages speak: a problem (file, line, column) for each template that
/// does not parse or render. `check` and the start of `run` call it, so a
/// broken page never goes live.
pub fn check_templates(config: &Config) -> Vec<crate::model::problem::Problem> {
    let mut samples = Vec::new();
    for lang in [words::Lang::Sv, words::Lang::En] {
        samples.extend(pages::samples(config, lang));
        samples.extend(forms::samples(config, lang));
        samples.extend(manage::samples(config, lang));
        samples.extend(leave::samples(config, lang));
    }
    render::Templates::check(config, &samples)
}

/// Every route of the public listener.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(feeds::routes())
        .merge(pages::routes())
        .merge(forms::routes())
        .merge(manage::routes())
        .merge(leave::routes())
        .merge(ops::routes())
        .merge(websub::routes())
        .merge(webhooks::routes())
        .with_state(state)
}

/// The routes of the monitoring listener (`[http] metrics_listen`).
pub fn metrics_router(state: AppState) -> Router {
    ops::metrics_routes().with_state(state)
}
