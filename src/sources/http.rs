//! HTTP for the remote sources: one client (connection pool, gzip and
//! brotli, a user agent naming tidings and the site), and a GET that every
//! source uses, with a timeout, a size limit, conditional headers, retries
//! with backoff for 5xx answers and network errors, and redirects followed
//! by hand so that a permanent one can be remembered.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap, HeaderValue};
use url::Url;

use crate::config::Config;

/// The most redirects followed for one request.
const MAX_REDIRECTS: usize = 10;

/// Tries per request: the first and two more after 5xx answers or network
/// errors.
const ATTEMPTS: u32 = 3;

/// The client every remote source of a run shares.
#[derive(Clone)]
pub struct Client {
    inner: reqwest::Client,
}

impl Client {
    pub fn new(config: &Config) -> anyhow::Result<Client> {
        let agent = format!(
            "tidings/{} (+{})",
            env!("CARGO_PKG_VERSION"),
            config.site.base_url
        );
        let inner = reqwest::Client::builder()
            .user_agent(agent)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        Ok(Client { inner })
    }
}

/// One GET.
pub struct Get<'a> {
    pub url: &'a Url,
    /// What the caller takes (`Accept`).
    pub accept: &'static str,
    pub timeout: Duration,
    pub max_bytes: u64,
    /// From the previous answer, for a conditional request.
    pub etag: Option<&'a str>,
    pub last_modified: Option<&'a str>,
    /// The pause after the first failed try; doubled after each.
    pub backoff: Duration,
}

impl<'a> Get<'a> {
    /// A plain GET with the source's timeout, size limit and backoff.
    pub fn new(url: &'a Url, accept: &'static str, remote: &crate::config::Remote) -> Get<'a> {
        Get {
            url,
            accept,
            timeout: remote.timeout,
            max_bytes: remote.max_bytes,
            etag: None,
            last_modified: None,
            backoff: remote.backoff,
        }
    }
}

/// What a GET brought back.
#[derive(Debug)]
pub enum Answer {
    Body(Box<Body>),
    /// 304: nothing changed since the answer `etag`/`last_modified` came from.
    NotModified,
    /// 410: the resource is gone for good.
    Gone,
}

#[derive(Debug)]
pub struct Body {
    /// Where the body came from, after redirects.
    pub url: Url,
    /// Set when every redirect on the way was permanent (301, 308): the
    /// address to use from now on.
    pub moved_to: Option<Url>,
    pub headers: HeaderMap,
    pub bytes: Vec<u8>,
}

impl Body {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or("")
    }
}

/// Why a GET failed, for the log and `tidings check`.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("HTTP {status}{}", if .detail.is_empty() { String::new() } else { format!(": {}", .detail) })]
    Status { status: StatusCode, detail: String },
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot connect: {0}")]
    Network(String),
    #[error("the answer is larger than {} MB", .0 / (1024 * 1024))]
    TooLarge(u64),
    #[error("too many redirects (more than {MAX_REDIRECTS})")]
    Redirects,
    #[error("a redirect without a usable Location")]
    BadRedirect,
}

impl FetchError {
    /// Worth trying again: the server or the network may recover.
    fn transient(&self) -> bool {
        match self {
            FetchError::Status { status, .. } => {
                status.is_server_error() || *status == StatusCode::TOO_MANY_REQUESTS
            }
            FetchError::Timeout(_) | FetchError::Network(_) => true,
            _ => false,
        }
    }
}

impl Client {
    /// GETs `req.url`, following redirects, trying again with backoff
    /// after 5xx answers and network errors.
    pub async fn get(&self, req: &Get<'_>) -> Result<Answer, FetchError> {
        let mut pause = req.backoff;
        let mut attempt = 1;
        loop {
            match self.get_once(req).await {
                Err(e) if e.transient() && attempt < ATTEMPTS => {
                    tracing::warn!(url = %req.url, attempt, error = %e, "fetch failed; trying again");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn get_once(&self, req: &Get<'_>) -> Result<Answer, FetchError> {
        let mut url = req.url.clone();
        let mut permanent = true;
        for _ in 0..=MAX_REDIRECTS {
            let mut builder = self
                .inner
                .get(url.clone())
                .timeout(req.timeout)
                .header(header::ACCEPT, req.accept);
            if let Some(etag) = req.etag.and_then(|v| HeaderValue::from_str(v).ok()) {
                builder = builder.header(header::IF_NONE_MATCH, etag);
            }
            if let Some(lm) = req
                .last_modified
                .and_then(|v| HeaderValue::from_str(v).ok())
            {
                builder = builder.header(header::IF_MODIFIED_SINCE, lm);
            }
            let response = builder.send().await.map_err(|e| network(e, req.timeout))?;
            let status = response.status();
            if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
                let next = response
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| url.join(l).ok())
                    .filter(|u| matches!(u.scheme(), "http" | "https"))
                    .ok_or(FetchError::BadRedirect)?;
                permanent &= matches!(
                    status,
                    StatusCode::MOVED_PERMANENTLY | StatusCode::PERMANENT_REDIRECT
                );
                url = next;
                continue;
            }
            match status {
                StatusCode::NOT_MODIFIED => return Ok(Answer::NotModified),
                StatusCode::GONE => return Ok(Answer::Gone),
                s if s.is_success() => {}
                s => {
                    let detail = read_limited(response, 4096, req.timeout)
                        .await
                        .map(|b| error_detail(&b))
                        .unwrap_or_default();
                    return Err(FetchError::Status { status: s, detail });
                }
            }
            let headers = response.headers().clone();
            let bytes = read_limited(response, req.max_bytes, req.timeout).await?;
            let moved_to = (permanent && url != *req.url).then(|| url.clone());
            return Ok(Answer::Body(Box::new(Body {
                url,
                moved_to,
                headers,
                bytes,
            })));
        }
        Err(FetchError::Redirects)
    }
}

fn network(e: reqwest::Error, timeout: Duration) -> FetchError {
    if e.is_timeout() {
        FetchError::Timeout(timeout)
    } else {
        // The innermost cause says the most (connection refused, DNS).
        let mut cause: &dyn std::error::Error = &e;
        while let Some(next) = cause.source() {
            cause = next;
        }
        FetchError::Network(cause.to_string())
    }
}

/// The body, refused once it passes `max` bytes (counted after gzip or
/// brotli are undone, so a small compressed answer cannot blow up).
async fn read_limited(
    mut response: reqwest::Response,
    max: u64,
    timeout: Duration,
) -> Result<Vec<u8>, FetchError> {
    if response.content_length().is_some_and(|n| n > max) {
        return Err(FetchError::TooLarge(max));
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| network(e, timeout))? {
        if bytes.len() as u64 + chunk.len() as u64 > max {
            return Err(FetchError::TooLarge(max));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// A short reason from an error body: WordPress's JSON `message`, or the
/// start of the text.
fn error_detail(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body)
        && let Some(m) = v.get("message").and_then(|m| m.as_str())
    {
        return crate::sources::content::clean_line(m);
    }
    let text = String::from_utf8_lossy(body);
    if text.trim_start().starts_with('<') {
        return String::new();
    }
    crate::sources::content::truncate_words(&crate::sources::content::clean_line(&text), 120)
}
