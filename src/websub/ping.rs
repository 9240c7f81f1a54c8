//! Pings to external hubs: `POST hub.mode=publish&hub.url=<feed>…`
//! (form-encoded, one `hub.url` per changed feed), the convention of the
//! public hubs (the WebSub Recommendation leaves publishing to each hub).
//! A network error, a 5xx, 408 or 429 is tried again after a pause that
//! doubles; another 4xx is not (the hub refuses the feed, and says so
//! again). Failures are logged; nothing waits for a hub.

use std::time::Duration;

use url::Url;

/// Tries per ping in the service: the first and four more.
pub const ATTEMPTS: u32 = 5;

/// Pings `hub` about `topics`, up to `attempts` times; whether it took.
pub async fn publish(
    client: &reqwest::Client,
    hub: &Url,
    topics: &[Url],
    attempts: u32,
    backoff: Duration,
) -> bool {
    let mut form: Vec<(&str, &str)> = vec![("hub.mode", "publish")];
    form.extend(topics.iter().map(|t| ("hub.url", t.as_str())));
    for attempt in 0..attempts {
        if attempt > 0 {
            tokio::time::sleep(super::pause(backoff, attempt - 1)).await;
        }
        let error = match client.post(hub.clone()).form(&form).send().await {
            Ok(answer) if answer.status().is_success() => {
                tracing::info!(hub = %hub, feeds = topics.len(), "websub: hub pinged");
                return true;
            }
            Ok(answer) => {
                let status = answer.status();
                let again = status.is_server_error()
                    || status == reqwest::StatusCode::REQUEST_TIMEOUT
                    || status == reqwest::StatusCode::TOO_MANY_REQUESTS;
                if !again {
                    tracing::warn!(hub = %hub, %status, "websub: the hub refused the ping; not tried again");
                    return false;
                }
                format!("answered {status}")
            }
            Err(e) => super::hub::reason(&e),
        };
        tracing::warn!(
            hub = %hub,
            attempt = attempt + 1,
            of = attempts,
            error = %error,
            "websub: cannot ping the hub"
        );
    }
    tracing::error!(hub = %hub, feeds = topics.len(), "websub: gave up pinging the hub");
    false
}
