//! For operators and machines: `/healthz`, `/metrics` (Prometheus text
//! format) and `POST /api/ingest` (the CMS publish hook).
//!
//! `/metrics` is served only on the listener of `[http] metrics_listen`
//! ([`metrics_routes`]), never on the public one: its subscriber counts
//! would tell anyone whether a sign-up added a new address.
//!
//! The metrics are read from the store at each scrape, so they say the
//! same as `tidings status` and survive restarts; the exposition is small
//! enough to write by hand, which keeps every name and label in view here.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::AppState;
use crate::model::{BounceKind, DeliveryState, JobOutcome};
use crate::publish::build::BuildReport;

/// The CMS hook ignores its body; anything larger than this is refused.
const INGEST_BODY_LIMIT: usize = 64 * 1024;

/// How long `/healthz` waits for the store before calling it down.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");
const TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
const PROMETHEUS: HeaderValue =
    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8");

/// The routes of the public listener.
pub fn routes() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route(
        "/api/ingest",
        post(ingest).layer(DefaultBodyLimit::max(INGEST_BODY_LIMIT)),
    )
}

/// The routes of the metrics listener.
pub fn metrics_routes() -> Router<AppState> {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
}

/// 200 `ok` when the store answers, 503 otherwise.
async fn healthz(State(state): State<AppState>) -> Response {
    let (status, body) = match tokio::time::timeout(HEALTH_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ok"),
        Ok(Err(e)) => {
            tracing::warn!(error = %format!("{e:#}"), "health check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable")
        }
        Err(_) => {
            tracing::warn!("health check timed out");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable")
        }
    };
    (
        status,
        [
            (header::CONTENT_TYPE, TEXT),
            (header::CACHE_CONTROL, NO_STORE),
        ],
        body,
    )
        .into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    match exposition(&state).await {
        Ok(text) => (
            [
                (header::CONTENT_TYPE, PROMETHEUS),
                (header::CACHE_CONTROL, NO_STORE),
            ],
            text,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "cannot gather metrics");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [
                    (header::CONTENT_TYPE, TEXT),
                    (header::CACHE_CONTROL, NO_STORE),
                ],
                "store unavailable\n",
            )
                .into_response()
        }
    }
}

/// The Prometheus text exposition (format 0.0.4) of what the store holds.
async fn exposition(state: &AppState) -> anyhow::Result<String> {
    let store = &state.store;
    let (published, withdrawn) = store.story_counts().await?;
    let subscribers = store.subscriber_counts().await?;
    let deliveries = store.delivery_totals().await?;
    let mut editions = store.edition_totals().await?;
    for digest in &state.config.digests {
        if !editions.iter().any(|(id, _)| *id == digest.id) {
            editions.push((digest.id.clone(), 0));
        }
    }
    editions.sort();
    let jobs = store.jobs().await?;

    let mut m = Exposition::default();
    m.family(
        "tidings_build_info",
        "gauge",
        "The running version of tidings; always 1.",
    );
    m.sample(
        "tidings_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1,
    );

    m.family(
        "tidings_stories",
        "gauge",
        "Stories in the store, by state.",
    );
    m.sample("tidings_stories", &[("state", "published")], published);
    m.sample("tidings_stories", &[("state", "withdrawn")], withdrawn);

    m.family(
        "tidings_subscribers",
        "gauge",
        "Digest subscribers, by status.",
    );
    for (status, n) in subscribers {
        m.sample("tidings_subscribers", &[("status", status.as_str())], n);
    }

    m.family(
        "tidings_deliveries",
        "gauge",
        "Digest deliveries of all editions, by state.",
    );
    for state in DeliveryState::ALL {
        let n = deliveries.get(state);
        m.sample("tidings_deliveries", &[("state", state.as_str())], n);
    }

    m.family(
        "tidings_editions_total",
        "counter",
        "Editions frozen, by digest.",
    );
    for (digest, n) in &editions {
        m.sample("tidings_editions_total", &[("digest", digest)], *n);
    }

    // Bounces arrive days after an edition went out: each digest's
    // latest edition, with what came back about it so far.
    let mut last = Vec::new();
    for digest in &state.config.digests {
        if let Some(e) = store.editions(&digest.id, 1).await?.into_iter().next() {
            let sent = store.delivery_counts(e.id).await?.sent;
            last.push((
                digest.id.as_str(),
                e.id,
                sent,
                store.edition_bounces(e.id).await?,
            ));
        }
    }
    m.family(
        "tidings_last_edition_sent",
        "gauge",
        "Messages sent of each digest's latest edition.",
    );
    for (digest, edition, sent, _) in &last {
        let edition = edition.to_string();
        m.sample(
            "tidings_last_edition_sent",
            &[("digest", digest), ("edition", &edition)],
            *sent,
        );
    }
    m.family(
        "tidings_last_edition_bounces",
        "gauge",
        "Readers of each digest's latest edition with a bounce or complaint reported, by kind.",
    );
    for (digest, edition, _, bounces) in &last {
        let edition = edition.to_string();
        for (kind, n) in [
            ("hard", bounces.hard),
            ("soft", bounces.soft),
            ("complaint", bounces.complaints),
        ] {
            m.sample(
                "tidings_last_edition_bounces",
                &[("digest", digest), ("edition", &edition), ("kind", kind)],
                n,
            );
        }
    }
    m.family(
        "tidings_last_edition_bounce_ratio",
        "gauge",
        "Bounces and complaints of each digest's latest edition as a share of its sent messages \
         (warnings above 0.001 for complaints, 0.02 for hard bounces).",
    );
    for (digest, edition, sent, bounces) in &last {
        let edition = edition.to_string();
        for kind in BounceKind::ALL {
            m.sample_f(
                "tidings_last_edition_bounce_ratio",
                &[
                    ("digest", digest),
                    ("edition", &edition),
                    ("kind", kind.as_str()),
                ],
                bounces.rate(kind, *sent),
            );
        }
    }

    m.family(
        "tidings_job_last_run_timestamp_seconds",
        "gauge",
        "When each scheduled job last ran (Unix time).",
    );
    for j in &jobs {
        if let Some(at) = j.last_run_at {
            m.sample_f(
                "tidings_job_last_run_timestamp_seconds",
                &[("job", &j.name)],
                unix(at),
            );
        }
    }
    m.family(
        "tidings_job_last_success_timestamp_seconds",
        "gauge",
        "When each scheduled job last succeeded (Unix time).",
    );
    for j in &jobs {
        if let Some(at) = j.last_success_at {
            m.sample_f(
                "tidings_job_last_success_timestamp_seconds",
                &[("job", &j.name)],
                unix(at),
            );
        }
    }
    m.family(
        "tidings_job_last_result",
        "gauge",
        "How each job's last run ended: 1 for its result, 0 for the others.",
    );
    for j in &jobs {
        let Some(last) = j.last_result else {
            continue;
        };
        for r in JobOutcome::ALL {
            let labels = [("job", j.name.as_str()), ("result", r.as_str())];
            m.sample("tidings_job_last_result", &labels, i64::from(r == last));
        }
    }
    if state.config.feeds.websub.builtin() {
        let (live, owed) = store.websub_counts(Utc::now()).await?;
        m.family(
            "tidings_websub_subscriptions",
            "gauge",
            "Live subscriptions of the built-in WebSub hub.",
        );
        m.sample("tidings_websub_subscriptions", &[], live);
        m.family(
            "tidings_websub_distributions_owed",
            "gauge",
            "Feeds owed to WebSub subscribers and not yet delivered.",
        );
        m.sample("tidings_websub_distributions_owed", &[], owed);
    }
    Ok(m.text)
}

fn unix(at: DateTime<Utc>) -> f64 {
    at.timestamp_millis() as f64 / 1000.0
}

/// The text format, written line by line.
#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: i64) {
        self.labels(name, labels);
        let _ = writeln!(self.text, " {value}");
    }

    fn sample_f(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.labels(name, labels);
        let _ = writeln!(self.text, " {value}");
    }

    fn labels(&mut self, name: &str, labels: &[(&str, &str)]) {
        self.text.push_str(name);
        if labels.is_empty() {
            return;
        }
        self.text.push('{');
        for (i, (key, value)) in labels.iter().enumerate() {
            if i > 0 {
                self.text.push(',');
            }
            self.text.push_str(key);
            self.text.push_str("=\"");
            for c in value.chars() {
                match c {
                    '\\' => self.text.push_str("\\\\"),
                    '"' => self.text.push_str("\\\""),
                    '\n' => self.text.push_str("\\n"),
                    c => self.text.push(c),
                }
            }
            self.text.push('"');
        }
        self.text.push('}');
    }
}

/// `POST /api/ingest`: the CMS publish hook. Needs
/// `Authorization: Bearer $TIDINGS_API_TOKEN`; runs an ingest now (after
/// any ingest already running) and answers with its figures.
async fn ingest(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    _body: Bytes,
) -> Response {
    match authorize(state.api_token.as_deref(), &headers) {
        Ok(()) => {}
        Err(challenge) => {
            tracing::warn!(%peer, "POST /api/ingest refused: missing or wrong token");
            return (
                StatusCode::UNAUTHORIZED,
                [
                    (header::WWW_AUTHENTICATE, challenge),
                    (header::CACHE_CONTROL, NO_STORE),
                ],
                axum::Json(json!({ "error": "a valid bearer token is required" })),
            )
                .into_response();
        }
    }
    tracing::info!(%peer, "ingest requested over HTTP");
    match state.ingester.run_now("api").await {
        Ok(report) => (
            [(header::CACHE_CONTROL, NO_STORE)],
            axum::Json(figures(&report)),
        )
            .into_response(),
        // run_now has logged the cause; the caller learns only that it failed.
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CACHE_CONTROL, NO_STORE)],
            axum::Json(json!({ "error": "ingest failed; see the service log" })),
        )
            .into_response(),
    }
}

fn figures(report: &BuildReport) -> serde_json::Value {
    let i = &report.ingest;
    json!({
        "new": i.new,
        "updated": i.changed,
        "withdrawn": i.withdrawn,
        "unchanged": i.unchanged,
        "skipped": i.skipped.len(),
        "published": report.published,
        "feeds_written": report.feeds.written.len(),
    })
}

/// Checks `Authorization: Bearer <token>` against the configured token;
/// on refusal returns the `WWW-Authenticate` challenge (RFC 6750 §3).
/// The comparison is of SHA-256 digests in constant time, so neither the
/// token's length nor how much of it matched shows in the timing.
fn authorize(expected: Option<&str>, headers: &HeaderMap) -> Result<(), HeaderValue> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    let Some(given) = given.filter(|t| !t.is_empty()) else {
        return Err(HeaderValue::from_static("Bearer realm=\"tidings\""));
    };
    let ok = expected.is_some_and(|expected| {
        let a = Sha256::digest(given.as_bytes());
        let b = Sha256::digest(expected.as_bytes());
        bool::from(a.as_slice().ct_eq(b.as_slice()))
    });
    if ok {
        Ok(())
    } else {
        Err(HeaderValue::from_static(
            "Bearer realm=\"tidings\", error=\"invalid_token\"",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(value: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = value {
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn bearer_tokens() {
        assert!(authorize(Some("s3cret"), &auth(Some("Bearer s3cret"))).is_ok());
        assert!(authorize(Some("s3cret"), &auth(Some("bearer s3cret"))).is_ok());
        assert!(authorize(Some("s3cret"), &auth(Some("Bearer s3cre"))).is_err());
        assert!(authorize(Some("s3cret"), &auth(Some("Basic s3cret"))).is_err());
        assert!(authorize(Some("s3cret"), &auth(Some("s3cret"))).is_err());
        assert!(authorize(Some("s3cret"), &auth(None)).is_err());
        assert!(authorize(None, &auth(Some("Bearer s3cret"))).is_err());
        assert!(authorize(None, &auth(Some("Bearer "))).is_err());
    }

    #[test]
    fn label_values_are_escaped() {
        let mut m = Exposition::default();
        m.sample("x", &[("job", "a\"b\\c\nd")], 2);
        assert_eq!(m.text, "x{job=\"a\\\"b\\\\c\\nd\"} 2\n");
    }
}
