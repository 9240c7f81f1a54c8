//! Bounces and complaints that relays post to `POST
//! /webhooks/bounces/<relay>`: the one use case behind the web handler
//! ([`Relays::receive`]). A request is verified as its relay signs it
//! ([`super::webhooks`]); SNS certificates are fetched (only from where
//! the pattern allows) and kept; each event is matched to a delivery and
//! recorded under the policy of `[bounces]`, as [`super::import`] records
//! a report that came back by email.
//!
//! An event is matched by, in this order: the VERP token of the envelope
//! sender, when the relay tells it and it verifies against the address of
//! the subscriber it names; the digest's Message-ID
//! (`e{edition}.s{subscriber}.…`), when the subscriber it names has the
//! recipient's address; the recipient's address alone, when it is a
//! subscriber's (the request is authenticated, so the relay's word is
//! taken), with the edition of the last digest sent to them (0 when none
//! was).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration as StdDuration;

use anyhow::{Context as _, Result};
use chrono::{DateTime, Duration, Utc};
use rsa::RsaPublicKey;

use super::webhooks::{self, Event, Rejected, SendGridKey, SnsKind, SnsMessage, UrlPattern};
use crate::config::{Bounces, Relay, Webhooks};
use crate::links::tokens::Signer;
use crate::model::SubscriberEmail;
use crate::store::Store;
use crate::store::bounces::{NewBounce, Policy, Recorded};

/// The largest body a relay may post: SendGrid batches events.
pub const MAX_BODY: usize = 1024 * 1024;
/// How many SNS certificates are kept (SNS uses one per region, changed
/// now and then).
const MAX_CERTIFICATES: usize = 32;
/// How long a fetch from SNS may take.
const FETCH_TIMEOUT: StdDuration = StdDuration::from_secs(10);

/// A request to a bounce webhook, as the web handler hands it on.
#[derive(Debug, Default)]
pub struct Incoming<'a> {
    pub body: &'a [u8],
    /// `Authorization` (Postmark).
    pub authorization: Option<&'a str>,
    /// `X-Twilio-Email-Event-Webhook-Signature` (SendGrid).
    pub sendgrid_signature: Option<&'a str>,
    /// `X-Twilio-Email-Event-Webhook-Timestamp` (SendGrid).
    pub sendgrid_timestamp: Option<&'a str>,
}

/// Why a request was not taken.
#[derive(Debug)]
pub enum Refused {
    /// The relay is not enabled in `[bounces.webhooks]`: 404.
    NotEnabled,
    /// Wrong or missing signature (401) or a malformed body (400).
    Rejected(Rejected),
    /// Signed, but from an SNS topic not listed in `sns_topic_arns`: 403.
    Forbidden(String),
    /// The store or SNS did not answer; the relay should try again: 503.
    Unavailable(anyhow::Error),
}

impl From<Rejected> for Refused {
    fn from(r: Rejected) -> Refused {
        Refused::Rejected(r)
    }
}

/// What a taken request did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Received {
    /// Events recorded now.
    pub recorded: usize,
    /// Events recorded before (the relay sent them again).
    pub duplicates: usize,
    /// Events of no subscriber of this site.
    pub unmatched: usize,
    /// An SNS subscription confirmed.
    pub confirmed: bool,
}

impl std::fmt::Display for Received {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.confirmed {
            return f.write_str("subscription confirmed");
        }
        write!(
            f,
            "{} recorded, {} already recorded, {} of no subscriber",
            self.recorded, self.duplicates, self.unmatched
        )
    }
}

/// The relays' verifiers, set up once from `[bounces.webhooks]`.
pub struct Relays {
    hooks: Webhooks,
    sns_pattern: UrlPattern,
    sendgrid: Option<SendGridKey>,
    certificates: Mutex<HashMap<String, RsaPublicKey>>,
    /// Mailgun tokens seen, with when they stop mattering.
    mailgun_tokens: Mutex<HashMap<String, DateTime<Utc>>>,
    http: reqwest::Client,
}

impl Relays {
    /// The verifiers of `config`'s enabled relays; every problem (a secret
    /// missing from the environment or unusable), each naming its
    /// variable.
    pub fn new(config: &Bounces) -> Result<Relays, Vec<String>> {
        let hooks = config.webhooks.clone();
        let mut problems = hooks.missing_secrets();
        let sns_pattern = match &hooks.sns_cert_url_pattern {
            Some(pattern) => UrlPattern::parse(pattern)
                .map_err(|e| problems.push(format!("TIDINGS_SNS_CERT_URL_PATTERN: {e}")))
                .ok(),
            None => Some(UrlPattern::parse(webhooks::SNS_URL_PATTERN).expect("a valid pattern")),
        };
        let sendgrid = match (&hooks.sendgrid_key, hooks.enabled(Relay::SendGrid)) {
            (Some(key), true) => SendGridKey::parse(key.expose())
                .map_err(|e| problems.push(format!("TIDINGS_SENDGRID_VERIFICATION_KEY: {e}")))
                .ok(),
            _ => None,
        };
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tidings/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| problems.push(format!("cannot set up the HTTP client: {e}")));
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Relays {
            hooks,
            sns_pattern: sns_pattern.expect("checked"),
            sendgrid,
            certificates: Mutex::new(HashMap::new()),
            mailgun_tokens: Mutex::new(HashMap::new()),
            http: http.expect("checked"),
        })
    }

    /// Verifies a request to `relay`'s webhook and records its events
    /// under `config`'s policy. Nothing is recorded unless the request
    /// verifies; the same event posted twice is recorded once.
    pub async fn receive(
        &self,
        store: &Store,
        signer: &Signer,
        config: &Bounces,
        relay: Relay,
        request: &Incoming<'_>,
        now: DateTime<Utc>,
    ) -> Result<Received, Refused> {
        if !self.hooks.enabled(relay) {
            return Err(Refused::NotEnabled);
        }
        let events = match relay {
            Relay::Ses => match self.sns(request.body, now).await? {
                Some(events) => events,
                None => {
                    return Ok(Received {
                        confirmed: true,
                        ..Received::default()
                    });
                }
            },
            Relay::Mailgun => {
                let key = self
                    .hooks
                    .mailgun_signing_key
                    .as_ref()
                    .expect("checked at start");
                let hook = webhooks::mailgun(request.body, key.as_bytes(), now)?;
                self.fresh_mailgun_token(&hook.token, now)?;
                hook.events
            }
            Relay::Postmark => {
                let (user, password) = (
                    self.hooks.postmark_user.as_deref().unwrap_or_default(),
                    self.hooks
                        .postmark_password
                        .as_ref()
                        .expect("checked at start"),
                );
                if !webhooks::basic_auth_matches(request.authorization, user, password.expose()) {
                    return Err(Rejected::Unauthorized(
                        "wrong or missing basic authentication".to_owned(),
                    )
                    .into());
                }
                webhooks::postmark(request.body)?
            }
            Relay::SendGrid => webhooks::sendgrid(
                request.body,
                request.sendgrid_signature,
                request.sendgrid_timestamp,
                self.sendgrid.as_ref().expect("checked at start"),
            )?,
        };
        record(store, signer, config, relay, &events, request.body, now)
            .await
            .map_err(Refused::Unavailable)
    }

    /// A Mailgun token seen for the first time (kept for as long as its
    /// signature could be accepted); a replay is refused.
    fn fresh_mailgun_token(&self, token: &str, now: DateTime<Utc>) -> Result<(), Refused> {
        let mut seen = self.mailgun_tokens.lock().expect("not poisoned");
        seen.retain(|_, until| *until > now);
        if seen.contains_key(token) {
            return Err(Rejected::Unauthorized(
                "this Mailgun signature was used before (a replay)".to_owned(),
            )
            .into());
        }
        let keep = Duration::seconds(2 * webhooks::MAILGUN_MAX_AGE_SECONDS);
        seen.insert(token.to_owned(), now + keep);
        Ok(())
    }

    /// An SNS message verified: the SES events of a notification, or
    /// `None` after confirming a subscription (or noting its end).
    async fn sns(&self, body: &[u8], now: DateTime<Utc>) -> Result<Option<Vec<Event>>, Refused> {
        let message = SnsMessage::parse(body)?;
        let key = self.certificate(&message.signing_cert_url, now).await?;
        message.verify(&key)?;
        let topics = &self.hooks.sns_topic_arns;
        if !topics.is_empty() && !topics.contains(&message.topic_arn) {
            return Err(Refused::Forbidden(format!(
                "the SNS topic {} is not in `bounces.webhooks.sns_topic_arns`",
                message.topic_arn
            )));
        }
        match &message.kind {
            SnsKind::Notification => Ok(Some(webhooks::ses_events(&message.message)?)),
            SnsKind::SubscriptionConfirmation { subscribe_url } => {
                if !self.sns_pattern.matches(subscribe_url) {
                    return Err(Rejected::Unauthorized(format!(
                        "the SubscribeURL is not at {}",
                        self.sns_pattern
                    ))
                    .into());
                }
                let answer = self
                    .http
                    .get(subscribe_url.clone())
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status)
                    .with_context(|| {
                        format!(
                            "cannot confirm the SNS subscription to {}",
                            message.topic_arn
                        )
                    })
                    .map_err(Refused::Unavailable)?;
                drop(answer);
                tracing::info!(topic = %message.topic_arn, "ses webhook: SNS subscription confirmed");
                Ok(None)
            }
            SnsKind::UnsubscribeConfirmation => {
                tracing::warn!(topic = %message.topic_arn, "ses webhook: the SNS subscription was ended");
                Ok(None)
            }
        }
    }

    /// The key of the certificate at `url`, fetched once (only from where
    /// the pattern allows) and kept.
    async fn certificate(
        &self,
        url: &url::Url,
        now: DateTime<Utc>,
    ) -> Result<RsaPublicKey, Refused> {
        if !self.sns_pattern.matches(url) {
            return Err(Rejected::Unauthorized(format!(
                "the SigningCertURL is not at {}",
                self.sns_pattern
            ))
            .into());
        }
        if let Some(key) = self
            .certificates
            .lock()
            .expect("not poisoned")
            .get(url.as_str())
        {
            return Ok(key.clone());
        }
        let response = self
            .http
            .get(url.clone())
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .with_context(|| format!("cannot fetch the SNS signing certificate {url}"))
            .map_err(Refused::Unavailable)?;
        let bytes = response
            .bytes()
            .await
            .with_context(|| format!("cannot read the SNS signing certificate {url}"))
            .map_err(Refused::Unavailable)?;
        let key = webhooks::certificate_key(&bytes, now).map_err(|e| {
            Refused::Rejected(Rejected::Unauthorized(format!(
                "the SNS signing certificate {url}: {e}"
            )))
        })?;
        let mut kept = self.certificates.lock().expect("not poisoned");
        if kept.len() >= MAX_CERTIFICATES {
            kept.clear();
        }
        kept.insert(url.to_string(), key.clone());
        Ok(key)
    }
}

/// Matches each event to a delivery and records it (see the module's
/// doc), the whole body kept as its report.
async fn record(
    store: &Store,
    signer: &Signer,
    config: &Bounces,
    relay: Relay,
    events: &[Event],
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Received> {
    let policy = Policy {
        soft_limit: config.soft_limit,
        soft_since: now - Duration::days(i64::from(config.soft_window_days)),
    };
    let mut received = Received::default();
    for event in events {
        let Some((subscriber_id, edition_id)) = matched(store, signer, event).await? else {
            tracing::info!(relay = %relay, kind = %event.kind, "bounce webhook: an event of no subscriber, ignored");
            received.unmatched += 1;
            continue;
        };
        // The relay's time, unless it is in the future.
        let at = event.at.filter(|at| *at <= now).unwrap_or(now);
        let bounce = NewBounce {
            received_at: at,
            subscriber_id,
            edition_id,
            kind: event.kind,
            diagnostic: &event.diagnostic,
            report: body,
            identity: Some(&event.identity),
        };
        match store.record_bounce(&bounce, policy).await? {
            Recorded::New { id, action } => {
                tracing::info!(relay = %relay, event = id, subscriber = subscriber_id, edition = edition_id, kind = %event.kind, action = %action, "bounce recorded");
                super::warn_on_rates(store, edition_id, event.kind).await?;
                received.recorded += 1;
            }
            Recorded::Duplicate { .. } => received.duplicates += 1,
            Recorded::NoSubscriber => received.unmatched += 1,
        }
    }
    Ok(received)
}

/// The subscriber and edition of `event`, when it is one of ours.
async fn matched(store: &Store, signer: &Signer, event: &Event) -> Result<Option<(i64, i64)>> {
    let recipient = event
        .recipient
        .as_deref()
        .and_then(|r| SubscriberEmail::parse(r).ok())
        .map(|r| r.key());
    if let Some(token) = &event.token
        && let Some(person) = store.subscriber_by_id(token.subscriber_id).await?
        && signer
            .verify_bounce(token, &person.email.to_lowercase())
            .is_ok()
    {
        return Ok(Some((person.id, token.edition_id)));
    }
    if let (Some((edition, subscriber)), Some(recipient)) = (event.digest_message, &recipient)
        && let Some(person) = store.subscriber_by_id(subscriber).await?
        && person.email.to_lowercase() == *recipient
    {
        return Ok(Some((person.id, edition)));
    }
    let Some(recipient) = recipient else {
        return Ok(None);
    };
    let Some(person) = store.subscriber(&recipient).await? else {
        return Ok(None);
    };
    let edition = store.last_sent_edition(person.id).await?.unwrap_or(0);
    Ok(Some((person.id, edition)))
}
