//! The built-in hub's subscriptions (WebSub §5.1–5.3): a request
//! (`hub.mode`, `hub.topic`, `hub.callback`, `hub.lease_seconds`,
//! `hub.secret`) is parsed and checked at once ([`Request::parse`],
//! [`admit`]), answered `202 Accepted`, and its intent verified after the
//! answer ([`verify`]): the hub GETs the callback with `hub.mode`,
//! `hub.topic`, `hub.challenge` and (to subscribe) `hub.lease_seconds`,
//! and only a 2xx answer whose body is the challenge makes the
//! subscription, or ends it.
//!
//! Limits: the lease is clamped to `[feeds] websub_min_lease_seconds` ..
//! `websub_max_lease_seconds` (default `websub_default_lease_seconds`);
//! `hub.secret` is under 200 bytes; a callback host holds at most
//! `websub_max_subscriptions_per_host` live subscriptions; callbacks on
//! private addresses are refused (see [`super::callback`]).

use std::time::Duration;

use chrono::{DateTime, Utc};
use url::Url;

use super::WebSub;
use super::callback::{self, Callback};
use crate::store::websub::Subscription;

/// `hub.secret` must be shorter than this, in bytes (WebSub §5.1).
pub const MAX_SECRET: usize = 200;

/// The most bytes of a verification answer read.
const MAX_ANSWER: usize = 4096;

/// `hub.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Subscribe,
    Unsubscribe,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Subscribe => "subscribe",
            Mode::Unsubscribe => "unsubscribe",
        }
    }
}

/// A subscription request, checked.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    pub mode: Mode,
    /// One of the site's feed URLs.
    pub topic: Url,
    pub callback: Callback,
    /// As granted (clamped), for a subscription.
    pub lease: Duration,
    pub secret: Option<String>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("mode", &self.mode)
            .field("topic", &self.topic.as_str())
            .field("callback", &self.callback.as_str())
            .field("lease", &self.lease)
            .field("secret", &self.secret.as_ref().map(|_| ".."))
            .finish()
    }
}

impl Request {
    /// The form's fields (as sent, in order) checked against the site's
    /// feeds and `[feeds] websub_*`. The error says which field is wrong.
    pub fn parse(websub: &WebSub, form: &[(String, String)]) -> Result<Request, String> {
        let config = websub.config();
        let field = |name: &str| -> Option<&str> {
            form.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let mode = match field("hub.mode") {
            Some("subscribe") => Mode::Subscribe,
            Some("unsubscribe") => Mode::Unsubscribe,
            Some("publish") => {
                return Err("hub.mode=publish: this hub learns of changes by itself".into());
            }
            Some(other) => {
                return Err(format!(
                    "hub.mode `{other}` is not one of subscribe, unsubscribe"
                ));
            }
            None => return Err("hub.mode is missing".into()),
        };
        let topic = field("hub.topic").ok_or("hub.topic is missing")?;
        let topic = crate::feeds::feed_urls(config)
            .into_iter()
            .map(|(_, url)| url)
            .find(|url| url.as_str() == topic)
            .ok_or_else(|| format!("hub.topic `{topic}` is not a feed of this site"))?;
        let callback = Callback::parse(field("hub.callback").ok_or("hub.callback is missing")?)?;
        let rules = &config.feeds.websub;
        let lease = match field("hub.lease_seconds").filter(|s| !s.is_empty()) {
            None => rules.default_lease,
            Some(text) => {
                let asked: u64 = text
                    .trim()
                    .parse()
                    .map_err(|_| format!("hub.lease_seconds `{text}` is not a whole number"))?;
                Duration::from_secs(asked).clamp(rules.min_lease, rules.max_lease)
            }
        };
        let secret = match field("hub.secret").filter(|s| !s.is_empty()) {
            Some(s) if s.len() >= MAX_SECRET => {
                return Err(format!(
                    "hub.secret must be shorter than {MAX_SECRET} bytes"
                ));
            }
            Some(s) => Some(s.to_owned()),
            None => None,
        };
        Ok(Request {
            mode,
            topic,
            callback,
            lease,
            secret,
        })
    }
}

/// Why a request was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The request cannot be honoured as made (400).
    Invalid(String),
    /// The callback's host holds too many subscriptions (429).
    TooMany(String),
}

/// The checks of a request that need the network or the store: the
/// callback's addresses, and the callback host's share of subscriptions.
pub async fn admit(
    websub: &WebSub,
    request: &Request,
    now: DateTime<Utc>,
) -> anyhow::Result<Result<(), Refusal>> {
    let rules = &websub.config().feeds.websub;
    if let Err(e) =
        callback::check_addresses(request.callback.url(), rules.allow_private_callbacks).await
    {
        return Ok(Err(Refusal::Invalid(e)));
    }
    if request.mode == Mode::Subscribe {
        let held = websub
            .store()
            .websub_host_count(
                request.callback.host(),
                request.topic.as_str(),
                request.callback.as_str(),
                now,
            )
            .await?;
        if held >= rules.max_per_host as i64 {
            return Ok(Err(Refusal::TooMany(format!(
                "the callback host {} holds {held} subscriptions, the most this hub keeps",
                request.callback.host()
            ))));
        }
    }
    Ok(Ok(()))
}

/// What verifying a request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// The subscriber confirmed; the subscription was made (or renewed)
    /// or ended.
    Confirmed,
    /// The subscriber did not confirm (why); nothing changed.
    NotConfirmed(String),
}

/// Verifies the intent of `request` (WebSub §5.3) and, when confirmed,
/// makes or ends the subscription.
pub async fn verify(websub: &WebSub, request: &Request) -> anyhow::Result<Verified> {
    let rules = &websub.config().feeds.websub;
    // Checked again: the name may resolve elsewhere by now.
    if let Err(e) =
        callback::check_addresses(request.callback.url(), rules.allow_private_callbacks).await
    {
        return Ok(Verified::NotConfirmed(e));
    }
    let challenge = challenge();
    let mut url = request.callback.url().clone();
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("hub.mode", request.mode.as_str());
        query.append_pair("hub.topic", request.topic.as_str());
        query.append_pair("hub.challenge", &challenge);
        if request.mode == Mode::Subscribe {
            query.append_pair("hub.lease_seconds", &request.lease.as_secs().to_string());
        }
    }
    let answer = match websub.callbacks().get(url).send().await {
        Ok(answer) => answer,
        Err(e) => return Ok(Verified::NotConfirmed(reason(&e))),
    };
    let status = answer.status();
    if !status.is_success() {
        return Ok(Verified::NotConfirmed(format!(
            "the callback answered {status}"
        )));
    }
    let body = match read_limited(answer, MAX_ANSWER).await {
        Ok(body) => body,
        Err(e) => return Ok(Verified::NotConfirmed(e)),
    };
    if body.trim_ascii() != challenge.as_bytes() {
        return Ok(Verified::NotConfirmed(
            "the callback did not echo hub.challenge".into(),
        ));
    }
    let store = websub.store();
    let now = Utc::now();
    match request.mode {
        Mode::Subscribe => {
            let lease =
                chrono::Duration::from_std(request.lease).unwrap_or(chrono::Duration::days(30));
            store
                .websub_subscribe(
                    &Subscription {
                        topic: request.topic.to_string(),
                        callback: request.callback.as_str().to_owned(),
                        callback_host: request.callback.host().to_owned(),
                        secret: request.secret.clone(),
                        lease_seconds: request.lease.as_secs() as i64,
                        expires: now + lease,
                    },
                    now,
                )
                .await?;
        }
        Mode::Unsubscribe => {
            store
                .websub_unsubscribe(request.topic.as_str(), request.callback.as_str())
                .await?;
        }
    }
    Ok(Verified::Confirmed)
}

/// A fresh challenge: 32 random bytes, hex.
fn challenge() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system provides randomness");
    hex::encode(bytes)
}

/// Reads at most `max` bytes of an answer's body.
pub(super) async fn read_limited(
    mut answer: reqwest::Response,
    max: usize,
) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = answer.chunk().await.map_err(|e| reason(&e))? {
        if body.len() + chunk.len() > max {
            return Err(format!("the answer is longer than {max} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A request error in a few words, without the URL (which may hold a
/// subscriber's token).
pub fn reason(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "no answer in time".into()
    } else if e.is_connect() {
        "cannot connect".into()
    } else if e.is_redirect() {
        "redirected".into()
    } else {
        use std::error::Error as _;
        e.source()
            .map_or_else(|| "the request failed".into(), |cause| cause.to_string())
    }
}
