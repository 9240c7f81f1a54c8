//! Content distribution (WebSub §7): the worker of `tidings run` that
//! sends each subscriber the feed it subscribed to, after a build changed
//! it. The rows owed are in the store ([`Store::websub_claim`]), so a
//! crash or a stop loses none: a claimed row whose send never finished is
//! taken again after its lease, and the feed may reach that subscriber
//! twice, never not at all.
//!
//! A distribution is a `POST` of the feed's bytes as they are when sent,
//! with the feed's `Content-Type`, the `Link` header naming the hubs and
//! the feed (`rel="self"`), and, when the subscriber gave a secret,
//! `X-Hub-Signature: sha256=<hex HMAC-SHA256 of the body>`. A 2xx answer
//! delivers it; anything else is tried again after a pause that doubles
//! ([`super::pause`]), and after [`ATTEMPTS`] failures the subscription is
//! dropped (the subscriber may subscribe again). Subscriptions whose lease
//! ran out get nothing more and are deleted.
//!
//! [`Store::websub_claim`]: crate::store::Store::websub_claim

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use tokio::sync::watch;

use super::WebSub;
use super::callback;
use crate::feeds::Format;
use crate::store::websub::Claimed;

/// Tries of one distribution before its subscription is dropped.
pub const ATTEMPTS: i64 = 6;

/// How long a claimed row is held: longer than a send may take.
const LEASE: Duration = Duration::from_secs(60);

/// Rows claimed at once, and sent at once.
const BATCH: i64 = 32;

/// The longest the worker sleeps before it looks again for rows another
/// process owed, and for leases run out.
const MOST_ASLEEP: Duration = Duration::from_secs(5);

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    pub delivered: usize,
    pub failed: usize,
    pub dropped: usize,
    pub expired: u64,
}

/// The worker: rounds until `shutdown`, woken by each build that owed
/// something, and every few seconds besides.
pub async fn run(websub: Arc<WebSub>, mut shutdown: watch::Receiver<bool>) {
    let nap = websub
        .config()
        .feeds
        .websub
        .backoff
        .clamp(Duration::from_millis(50), MOST_ASLEEP);
    loop {
        if *shutdown.borrow() {
            break;
        }
        match round(&websub, Utc::now()).await {
            Ok(r) if r == Round::default() => {}
            Ok(r) => tracing::info!(
                delivered = r.delivered,
                failed = r.failed,
                dropped = r.dropped,
                expired = r.expired,
                "websub: distribution round"
            ),
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "websub: cannot reach the store; trying again")
            }
        }
        tokio::select! {
            _ = websub.woken().notified() => {}
            _ = tokio::time::sleep(nap) => {}
            _ = shutdown.changed() => {}
        }
    }
    tracing::debug!("websub: distribution stopped");
}

/// One round at `now`: expired subscriptions removed, then every row due
/// claimed and sent, batch after batch.
pub async fn round(websub: &WebSub, now: DateTime<Utc>) -> Result<Round> {
    let store = websub.store();
    let mut done = Round {
        expired: store.websub_expire(now).await?,
        ..Round::default()
    };
    loop {
        let claimed = store.websub_claim(Utc::now(), LEASE, BATCH).await?;
        if claimed.is_empty() {
            break;
        }
        let sends = claimed.iter().map(|c| deliver(websub, c));
        for result in futures_util::future::join_all(sends).await {
            match result? {
                Outcome::Delivered => done.delivered += 1,
                Outcome::Failed => done.failed += 1,
                Outcome::Dropped => done.dropped += 1,
            }
        }
        if (claimed.len() as i64) < BATCH {
            break;
        }
    }
    Ok(done)
}

enum Outcome {
    Delivered,
    Failed,
    Dropped,
}

/// Sends one claimed row and marks it.
async fn deliver(websub: &WebSub, c: &Claimed) -> Result<Outcome> {
    let store = websub.store();
    let Some(subscription) = store.websub_subscription(&c.topic, &c.callback).await? else {
        store.websub_delivered(c).await?;
        return Ok(Outcome::Delivered);
    };
    if subscription.expires <= Utc::now() {
        // Its lease ran out while the row waited: nothing is owed.
        store.websub_delivered(c).await?;
        return Ok(Outcome::Delivered);
    }
    let error = match send(
        websub,
        &c.topic,
        &c.callback,
        subscription.secret.as_deref(),
    )
    .await
    {
        Ok(()) => {
            store.websub_delivered(c).await?;
            tracing::info!(topic = %c.topic, host = %subscription.callback_host, "websub: feed delivered");
            return Ok(Outcome::Delivered);
        }
        Err(e) => e,
    };
    let attempts = c.attempts + 1;
    if attempts >= ATTEMPTS {
        store.websub_unsubscribe(&c.topic, &c.callback).await?;
        tracing::warn!(
            topic = %c.topic,
            host = %subscription.callback_host,
            attempts,
            error = %error,
            "websub: subscription dropped after failed deliveries"
        );
        return Ok(Outcome::Dropped);
    }
    let backoff = websub.config().feeds.websub.backoff;
    let pause = super::pause(backoff, (attempts - 1) as u32);
    let retry = Utc::now() + chrono::Duration::from_std(pause).unwrap_or(chrono::Duration::days(1));
    store.websub_failed(c, retry, &error).await?;
    tracing::warn!(
        topic = %c.topic,
        host = %subscription.callback_host,
        attempts,
        retry_in_ms = pause.as_millis() as u64,
        error = %error,
        "websub: delivery failed; trying again"
    );
    Ok(Outcome::Failed)
}

/// POSTs the feed `topic` as it is now to `callback`; `Err` says why it
/// did not take.
async fn send(
    websub: &WebSub,
    topic: &str,
    callback: &str,
    secret: Option<&str>,
) -> Result<(), String> {
    let config = websub.config();
    let Some((rel, url)) = crate::feeds::feed_urls(config)
        .into_iter()
        .find(|(_, url)| url.as_str() == topic)
    else {
        return Err("the topic is no longer one of the site's feeds".into());
    };
    let target = url::Url::parse(callback).map_err(|e| format!("bad callback: {e}"))?;
    callback::check_addresses(&target, config.feeds.websub.allow_private_callbacks).await?;
    let body = tokio::fs::read(config.feeds.dir.join(&rel))
        .await
        .map_err(|e| format!("cannot read the feed {rel}: {e}"))?;
    let format = Format::ALL
        .into_iter()
        .find(|f| rel.ends_with(f.file_name()))
        .unwrap_or(Format::Atom);
    let mut request = websub.callbacks().post(target).header(
        reqwest::header::CONTENT_TYPE,
        format!("{}; charset=utf-8", format.media_type()),
    );
    if let Some(link) = crate::feeds::websub_link(config, &url) {
        request = request.header(reqwest::header::LINK, link);
    }
    if let Some(secret) = secret {
        request = request.header("X-Hub-Signature", signature(secret, &body));
    }
    match request.body(body).send().await {
        Ok(answer) if answer.status().is_success() => Ok(()),
        Ok(answer) => Err(format!("the callback answered {}", answer.status())),
        Err(e) => Err(super::hub::reason(&e)),
    }
}

/// `sha256=<hex HMAC-SHA256 of body keyed with secret>` (WebSub §7.1).
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_in_hex() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
