//! `[http]`: where `tidings run` listens (the public pages and, apart,
//! the metrics), how the world reaches it, and how long it waits for a
//! client.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;
use url::Url;

use super::env::Secret;
use super::parse_base_url;
use super::spans::{Checks, Context};

/// `[http]`.
#[derive(Debug, Clone)]
pub struct Http {
    /// Default `127.0.0.1:8080`; port 0 picks a free port (printed on start).
    pub listen: SocketAddr,
    /// Where the service is reached from outside; links in emails and
    /// pages start with it. Default `[site] base_url`.
    pub public_url: Option<Url>,
    /// Default false. When true, the client address used for rate limits
    /// is the last address in `X-Forwarded-For` (set by the proxy in front).
    pub behind_proxy: bool,
    /// Where `/metrics` (and `/healthz`) are served for monitoring, apart
    /// from the public listener; `None` when `"off"`. Default
    /// `127.0.0.1:8081`; port 0 picks a free port (printed on start).
    pub metrics_listen: Option<SocketAddr>,
    /// Default 10 s: how long a client may take to send a request's head
    /// (request line and headers), from when the connection opens or its
    /// head starts arriving.
    pub header_timeout: Duration,
    /// Default 30 s: how long a request's body may take to arrive, from
    /// the end of its head.
    pub body_timeout: Duration,
    /// Default 75 s: how long a connection may stay open between requests;
    /// zero closes each connection after its answer.
    pub keepalive: Duration,
    /// Default 1024: connections open at once on each listener; one more
    /// is closed as soon as it is accepted.
    pub max_connections: usize,
    /// `TIDINGS_API_TOKEN`, the bearer token of `POST /api/ingest`: from
    /// the environment, never from config.toml (set by
    /// [`Config::with_environment`](super::Config::with_environment)).
    /// `None` refuses everyone.
    pub api_token: Option<Secret>,
}

impl Default for Http {
    fn default() -> Self {
        Http {
            listen: DEFAULT_LISTEN.parse().expect("a valid default"),
            public_url: None,
            behind_proxy: false,
            metrics_listen: Some(DEFAULT_METRICS_LISTEN.parse().expect("a valid default")),
            header_timeout: Duration::from_secs(DEFAULT_HEADER_TIMEOUT as u64),
            body_timeout: Duration::from_secs(DEFAULT_BODY_TIMEOUT as u64),
            keepalive: Duration::from_secs(DEFAULT_KEEPALIVE as u64),
            max_connections: DEFAULT_MAX_CONNECTIONS as usize,
            api_token: None,
        }
    }
}

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:8081";
const DEFAULT_HEADER_TIMEOUT: i64 = 10;
const DEFAULT_BODY_TIMEOUT: i64 = 30;
const DEFAULT_KEEPALIVE: i64 = 75;
const DEFAULT_MAX_CONNECTIONS: i64 = 1024;

#[derive(Debug, Deserialize)]
pub(super) struct RawHttp {
    #[serde(default = "default_listen")]
    listen: String,
    #[serde(default)]
    public_url: Option<String>,
    #[serde(default)]
    behind_proxy: bool,
    #[serde(default = "default_metrics_listen")]
    metrics_listen: String,
    #[serde(default = "default_header_timeout")]
    header_timeout_seconds: i64,
    #[serde(default = "default_body_timeout")]
    body_timeout_seconds: i64,
    #[serde(default = "default_keepalive")]
    keepalive_seconds: i64,
    #[serde(default = "default_max_connections")]
    max_connections: i64,
}
pub(super) const HTTP_KEYS: &[&str] = &[
    "listen",
    "public_url",
    "behind_proxy",
    "metrics_listen",
    "header_timeout_seconds",
    "body_timeout_seconds",
    "keepalive_seconds",
    "max_connections",
];

fn default_listen() -> String {
    DEFAULT_LISTEN.into()
}
fn default_metrics_listen() -> String {
    DEFAULT_METRICS_LISTEN.into()
}
fn default_header_timeout() -> i64 {
    DEFAULT_HEADER_TIMEOUT
}
fn default_body_timeout() -> i64 {
    DEFAULT_BODY_TIMEOUT
}
fn default_keepalive() -> i64 {
    DEFAULT_KEEPALIVE
}
fn default_max_connections() -> i64 {
    DEFAULT_MAX_CONNECTIONS
}

/// `[http]` checked.
pub(super) fn validate(
    cx: &mut Context,
    raw: RawHttp,
    value: &Spanned<DeValue<'_>>,
) -> Option<Http> {
    let mut t = Checks::new(cx, "http", value);
    let listen = t.check(
        "listen",
        raw.listen.parse::<SocketAddr>().map_err(|_| {
            format!(
                "`{}` is not an address and port: expected such as \"127.0.0.1:8080\" or \"[::]:8080\"",
                raw.listen
            )
        }),
    );
    let public_url = t.optional("public_url", raw.public_url.as_deref(), parse_base_url);
    let metrics_listen = t.check(
        "metrics_listen",
        parse_metrics_listen(&raw.metrics_listen, listen),
    );
    let seconds = |n: i64| Duration::from_secs(n as u64);
    let header_timeout = seconds(t.range(
        "header_timeout_seconds",
        raw.header_timeout_seconds,
        1,
        3600,
    ));
    let body_timeout = seconds(t.range("body_timeout_seconds", raw.body_timeout_seconds, 1, 3600));
    let keepalive = seconds(t.range("keepalive_seconds", raw.keepalive_seconds, 0, 3600));
    let max_connections = t.range("max_connections", raw.max_connections, 1, 1_000_000) as usize;
    if !t.ok {
        return None;
    }
    Some(Http {
        listen: listen?,
        public_url,
        behind_proxy: raw.behind_proxy,
        metrics_listen: metrics_listen?,
        header_timeout,
        body_timeout,
        keepalive,
        max_connections,
        api_token: None,
    })
}

/// `metrics_listen`: an address and port, or `"off"` (or empty) for none.
/// It may not be `listen` itself: the point is to keep `/metrics` off the
/// public listener.
fn parse_metrics_listen(
    text: &str,
    listen: Option<SocketAddr>,
) -> Result<Option<SocketAddr>, String> {
    let text = text.trim();
    if text.is_empty() || text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let addr = text.parse::<SocketAddr>().map_err(|_| {
        format!(
            "`{text}` is not an address and port: expected such as \"127.0.0.1:8081\", \
             or \"off\" to serve no metrics"
        )
    })?;
    if addr.port() != 0 && Some(addr) == listen {
        return Err(format!(
            "`{text}` is `http.listen` too: the metrics need an address of their own, \
             such as \"127.0.0.1:8081\" (or \"off\")"
        ));
    }
    Ok(Some(addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_listen_is_an_address_or_off() {
        let listen = Some("127.0.0.1:8080".parse().unwrap());
        assert_eq!(parse_metrics_listen("off", listen), Ok(None));
        assert_eq!(parse_metrics_listen("", listen), Ok(None));
        assert_eq!(
            parse_metrics_listen("127.0.0.1:0", listen),
            Ok(Some("127.0.0.1:0".parse().unwrap()))
        );
        let e = parse_metrics_listen("localhost", listen).unwrap_err();
        assert!(e.contains("127.0.0.1:8081"), "{e}");
        let e = parse_metrics_listen("127.0.0.1:8080", listen).unwrap_err();
        assert!(e.contains("`http.listen` too"), "{e}");
    }
}
