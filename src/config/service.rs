//! `[schedule]` and `[http]`: what `tidings run` does on its own and where
//! it listens.

use std::net::SocketAddr;

use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;
use url::Url;

use super::{Context, parse_base_url, span_of};
use crate::schedule::CronSchedule;
use crate::scheduler::OnMissed;

/// `[schedule]`.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Default every 10 minutes: poll the sources, rebuild feeds on change.
    pub ingest: CronSchedule,
    /// Default `run_once`.
    pub on_missed: OnMissed,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            ingest: CronSchedule::parse(DEFAULT_INGEST).expect("a valid default"),
            on_missed: OnMissed::RunOnce,
        }
    }
}

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
}

impl Default for Http {
    fn default() -> Self {
        Http {
            listen: DEFAULT_LISTEN.parse().expect("a valid default"),
            public_url: None,
            behind_proxy: false,
        }
    }
}

const DEFAULT_INGEST: &str = "*/10 * * * *";
const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

#[derive(Debug, Deserialize)]
pub(super) struct RawSchedule {
    #[serde(default = "default_ingest")]
    ingest: String,
    #[serde(default = "default_on_missed")]
    on_missed: String,
}
pub(super) const SCHEDULE_KEYS: &[&str] = &["ingest", "on_missed"];

fn default_ingest() -> String {
    DEFAULT_INGEST.into()
}
fn default_on_missed() -> String {
    "run_once".into()
}

#[derive(Debug, Deserialize)]
pub(super) struct RawHttp {
    #[serde(default = "default_listen")]
    listen: String,
    #[serde(default)]
    public_url: Option<String>,
    #[serde(default)]
    behind_proxy: bool,
}
pub(super) const HTTP_KEYS: &[&str] = &["listen", "public_url", "behind_proxy"];

fn default_listen() -> String {
    DEFAULT_LISTEN.into()
}

pub(super) fn validate_schedule(
    cx: &mut Context,
    raw: RawSchedule,
    value: &Spanned<DeValue<'_>>,
) -> Option<Schedule> {
    let ingest = match CronSchedule::parse(&raw.ingest) {
        Ok(s) => Some(s),
        Err(e) => {
            cx.problem("schedule.ingest", span_of(value, "ingest"), e);
            None
        }
    };
    let on_missed = match raw.on_missed.as_str() {
        "run_once" => Some(OnMissed::RunOnce),
        "skip" => Some(OnMissed::Skip),
        other => {
            cx.problem(
                "schedule.on_missed",
                span_of(value, "on_missed"),
                format!("unknown value `{other}`; expected \"run_once\" or \"skip\""),
            );
            None
        }
    };
    Some(Schedule {
        ingest: ingest?,
        on_missed: on_missed?,
    })
}

pub(super) fn validate_http(
    cx: &mut Context,
    raw: RawHttp,
    value: &Spanned<DeValue<'_>>,
) -> Option<Http> {
    let listen = match raw.listen.parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            cx.problem(
                "http.listen",
                span_of(value, "listen"),
                format!(
                    "`{}` is not an address and port: expected such as \"127.0.0.1:8080\" or \"[::]:8080\"",
                    raw.listen
                ),
            );
            None
        }
    };
    let public_url = match raw.public_url.as_deref().map(parse_base_url) {
        None => Some(None),
        Some(Ok(u)) => Some(Some(u)),
        Some(Err(e)) => {
            cx.problem("http.public_url", span_of(value, "public_url"), e);
            None
        }
    };
    Some(Http {
        listen: listen?,
        public_url: public_url?,
        behind_proxy: raw.behind_proxy,
    })
}
