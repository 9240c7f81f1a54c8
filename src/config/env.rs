//! The environment variables tidings reads, read once at start with their
//! errors: a value that is set but cannot be used stops the program with a
//! message naming the variable, instead of being silently ignored. Nothing
//! else in tidings reads the environment: `main` reads it before logging
//! starts and passes the values on, those that belong to a section of
//! config.toml through [`Config::with_environment`](super::Config::with_environment).
//!
//! `PGPASSWORD` is not among them: when the `[storage]` URL has no
//! password, sqlx takes it from there itself, with the other libpq
//! variables (`PGHOST`, `PGSSLMODE`, ...), as every PostgreSQL client does.

use std::fmt;
use std::time::Duration;

/// A secret from the environment; never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The secret itself, for the one place that hands it on.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// The variables, read and checked.
#[derive(Debug, Clone)]
pub struct Environment {
    /// `TIDINGS_SECRET`: the key that signs links, when the operator gives
    /// it (else one is kept in the store).
    pub secret: Option<Secret>,
    /// `TIDINGS_SECRET_PREVIOUS`: keys given in `TIDINGS_SECRET` before a
    /// `tidings key rotate`, separated by spaces, so their links still work.
    pub previous_secrets: Vec<Secret>,
    /// `TIDINGS_SHUTDOWN_SECONDS`: how long a stop waits for work in flight.
    pub shutdown: Duration,
    /// `TIDINGS_LEASE_SECONDS`: how long a claimed delivery row is held.
    pub lease: Duration,
    /// `TIDINGS_BACKOFF_SECONDS`: the first wait after a temporary failure.
    pub backoff: Duration,
    /// `TIDINGS_SMTP_PASSWORD`: the password of the `[mail] transport`
    /// user, as set (only a transport with a user needs it).
    pub smtp_password: Option<Secret>,
    /// `TIDINGS_BOUNCES_PASSWORD`: the password of the `[bounces] mailbox`
    /// user, as set.
    pub bounces_password: Option<Secret>,
    /// `TIDINGS_API_TOKEN`: the bearer token of `POST /api/ingest`; empty
    /// or blank is unset.
    pub api_token: Option<Secret>,
    /// `TIDINGS_HTTP_BACKOFF_MS`: the first pause after a remote source
    /// failed to answer. Tests shorten it; operators have no reason to.
    pub http_backoff: Duration,
    /// `TIDINGS_WEBSUB_BACKOFF_MS`: the first pause after a WebSub hub or
    /// subscriber failed to answer (default 30 s). Tests shorten it.
    pub websub_backoff: Duration,
    /// `TIDINGS_LOG`: the log filter, as set (checked); `None` leaves the
    /// command's own level.
    pub log: Option<String>,
    /// `TIDINGS_MAILGUN_SIGNING_KEY`: Mailgun's webhook signing key.
    pub mailgun_signing_key: Option<Secret>,
    /// `TIDINGS_POSTMARK_WEBHOOK_PASSWORD`: the basic-auth password of
    /// Postmark's webhook.
    pub postmark_webhook_password: Option<Secret>,
    /// `TIDINGS_SENDGRID_VERIFICATION_KEY`: the public key of SendGrid's
    /// signed event webhook, base64.
    pub sendgrid_verification_key: Option<Secret>,
    /// `TIDINGS_SNS_CERT_URL_PATTERN`: for tests only, where SNS
    /// certificates may come from instead of `https://sns.*.amazonaws.com`.
    pub sns_cert_url_pattern: Option<String>,
}

/// The shortest secret accepted, in characters.
pub const MIN_SECRET: usize = 32;

/// The first pause after a remote source failed to answer, unless
/// `TIDINGS_HTTP_BACKOFF_MS` says otherwise.
pub const DEFAULT_HTTP_BACKOFF: Duration = Duration::from_secs(1);

impl Default for Environment {
    fn default() -> Self {
        Environment {
            secret: None,
            previous_secrets: Vec::new(),
            shutdown: Duration::from_secs(30),
            lease: Duration::from_secs(60),
            backoff: Duration::from_secs(30),
            smtp_password: None,
            bounces_password: None,
            api_token: None,
            http_backoff: DEFAULT_HTTP_BACKOFF,
            websub_backoff: super::feeds::DEFAULT_WEBSUB_BACKOFF,
            log: None,
            mailgun_signing_key: None,
            postmark_webhook_password: None,
            sendgrid_verification_key: None,
            sns_cert_url_pattern: None,
        }
    }
}

impl Environment {
    /// Reads the process's environment. Every problem is reported, each
    /// naming its variable.
    pub fn from_process() -> Result<Environment, Vec<String>> {
        Environment::from_vars(|name| std::env::var_os(name))
    }

    /// Reads the variables through `get` (the process's environment, or a
    /// test's).
    pub fn from_vars(
        get: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<Environment, Vec<String>> {
        let mut r = Reader {
            get,
            problems: Vec::new(),
        };
        // Every value first: one that is not UTF-8 is reported first.
        let secret = r.text("TIDINGS_SECRET");
        let previous = r.text("TIDINGS_SECRET_PREVIOUS");
        let shutdown = r.text("TIDINGS_SHUTDOWN_SECONDS");
        let lease = r.text("TIDINGS_LEASE_SECONDS");
        let backoff = r.text("TIDINGS_BACKOFF_SECONDS");
        // A password is taken as it is, spaces and all.
        let smtp_password = r.raw("TIDINGS_SMTP_PASSWORD");
        let bounces_password = r.raw("TIDINGS_BOUNCES_PASSWORD");
        let api_token = r.text("TIDINGS_API_TOKEN");
        let http_backoff = r.text("TIDINGS_HTTP_BACKOFF_MS");
        let websub_backoff = r.text("TIDINGS_WEBSUB_BACKOFF_MS");
        // As tracing reads it: an empty filter is one (errors only).
        let log = r.raw("TIDINGS_LOG");
        let mailgun_signing_key = r.text("TIDINGS_MAILGUN_SIGNING_KEY");
        // A password is taken as it is, spaces and all.
        let postmark_webhook_password = r.raw("TIDINGS_POSTMARK_WEBHOOK_PASSWORD");
        let sendgrid_verification_key = r.text("TIDINGS_SENDGRID_VERIFICATION_KEY");
        let sns_cert_url_pattern = r.text("TIDINGS_SNS_CERT_URL_PATTERN");

        let d = Environment::default();
        let env = Environment {
            secret: secret.and_then(|s| r.secret("TIDINGS_SECRET", &s)),
            previous_secrets: r.previous_secrets(previous.as_deref()),
            shutdown: r.seconds("TIDINGS_SHUTDOWN_SECONDS", shutdown, 0, d.shutdown),
            lease: r.seconds("TIDINGS_LEASE_SECONDS", lease, 1, d.lease),
            backoff: r.seconds("TIDINGS_BACKOFF_SECONDS", backoff, 0, d.backoff),
            smtp_password: smtp_password.map(Secret),
            bounces_password: bounces_password.map(Secret),
            api_token: api_token.map(Secret),
            http_backoff: Duration::from_millis(r.whole(
                "TIDINGS_HTTP_BACKOFF_MS",
                http_backoff,
                0,
                d.http_backoff.as_millis() as u64,
                "milliseconds",
            )),
            websub_backoff: Duration::from_millis(r.whole(
                "TIDINGS_WEBSUB_BACKOFF_MS",
                websub_backoff,
                0,
                d.websub_backoff.as_millis() as u64,
                "milliseconds",
            )),
            log: log.filter(|filter| r.log_filter(filter)),
            mailgun_signing_key: mailgun_signing_key.map(|k| Secret(k.trim().to_owned())),
            postmark_webhook_password: postmark_webhook_password
                .filter(|p| !p.is_empty())
                .map(Secret),
            sendgrid_verification_key: sendgrid_verification_key
                .map(|k| Secret(k.trim().to_owned())),
            sns_cert_url_pattern: sns_cert_url_pattern.map(|p| p.trim().to_owned()),
        };
        if r.problems.is_empty() {
            Ok(env)
        } else {
            Err(r.problems)
        }
    }
}

/// Reads variables through `get`, collecting a problem, naming its
/// variable, for each value that cannot be used.
struct Reader<G> {
    get: G,
    problems: Vec<String>,
}

impl<G: Fn(&str) -> Option<std::ffi::OsString>> Reader<G> {
    /// The value as set; a problem when it is not UTF-8.
    fn raw(&mut self, name: &str) -> Option<String> {
        match (self.get)(name)?.into_string() {
            Ok(s) => Some(s),
            Err(_) => {
                self.problems
                    .push(format!("{name}: the value is not valid UTF-8"));
                None
            }
        }
    }

    /// The value, where empty or blank counts as unset.
    fn text(&mut self, name: &str) -> Option<String> {
        self.raw(name).filter(|s| !s.trim().is_empty())
    }

    fn secret(&mut self, name: &str, value: &str) -> Option<Secret> {
        check_secret(name, value)
            .map_err(|e| self.problems.push(e))
            .ok()
    }

    /// `TIDINGS_SECRET_PREVIOUS`: keys separated by spaces.
    fn previous_secrets(&mut self, value: Option<&str>) -> Vec<Secret> {
        let mut out = Vec::new();
        for (n, s) in value
            .into_iter()
            .flat_map(str::split_whitespace)
            .enumerate()
        {
            match check_secret("TIDINGS_SECRET_PREVIOUS", s) {
                Ok(s) => out.push(s),
                Err(e) => self
                    .problems
                    .push(format!("{e} (the key number {} of the list)", n + 1)),
            }
        }
        out
    }

    fn seconds(
        &mut self,
        name: &str,
        value: Option<String>,
        least: u64,
        default: Duration,
    ) -> Duration {
        Duration::from_secs(self.whole(name, value, least, default.as_secs(), "seconds"))
    }

    /// `value` as a whole number of `unit`s, at least `least`; `default`
    /// when unset, or with a problem when unusable.
    fn whole(
        &mut self,
        name: &str,
        value: Option<String>,
        least: u64,
        default: u64,
        unit: &str,
    ) -> u64 {
        let Some(value) = value else {
            return default;
        };
        match value.trim().parse::<u64>() {
            Ok(n) if n >= least => n,
            Ok(n) => {
                self.problems
                    .push(format!("{name}: {n} is too small: use at least {least}"));
                default
            }
            Err(_) => {
                self.problems.push(format!(
                    "{name}: `{}` is not a whole number of {unit} (such as {default})",
                    value.trim().escape_debug(),
                ));
                default
            }
        }
    }

    /// Whether tracing can read `filter` (`TIDINGS_LOG`).
    fn log_filter(&mut self, filter: &str) -> bool {
        match tracing_subscriber::EnvFilter::try_new(filter) {
            Ok(_) => true,
            Err(e) => {
                self.problems.push(format!(
                    "TIDINGS_LOG: `{}` is not a log filter (such as `info` or \
                     `warn,tidings=debug`): {e}",
                    filter.escape_debug()
                ));
                false
            }
        }
    }
}

fn check_secret(name: &str, value: &str) -> Result<Secret, String> {
    let length = value.chars().count();
    if length < MIN_SECRET {
        return Err(format!(
            "{name} is too short ({length} characters): use at least {MIN_SECRET} random \
             characters, such as the output of `openssl rand -base64 33`"
        ));
    }
    Ok(Secret(value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<Environment, Vec<String>> {
        Environment::from_vars(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).into())
        })
    }

    #[test]
    fn unset_and_empty_variables_take_the_defaults() {
        let env = read(&[("TIDINGS_SECRET", " ")]).unwrap();
        assert!(env.secret.is_none());
        assert_eq!(env.lease, Duration::from_secs(60));
        assert_eq!(env.shutdown, Duration::from_secs(30));
    }

    #[test]
    fn every_bad_value_is_named() {
        let problems = read(&[
            ("TIDINGS_SECRET", "short"),
            ("TIDINGS_SECRET_PREVIOUS", "also-short"),
            ("TIDINGS_SHUTDOWN_SECONDS", "soon"),
            ("TIDINGS_LEASE_SECONDS", "0"),
            ("TIDINGS_BACKOFF_SECONDS", "-1"),
        ])
        .unwrap_err();
        let all = problems.join("\n");
        for name in [
            "TIDINGS_SECRET is too short (5",
            "TIDINGS_SECRET_PREVIOUS is too short",
            "TIDINGS_SHUTDOWN_SECONDS: `soon`",
            "TIDINGS_LEASE_SECONDS: 0 is too small",
            "TIDINGS_BACKOFF_SECONDS: `-1`",
        ] {
            assert!(all.contains(name), "{name} in {all}");
        }
    }

    #[test]
    fn good_values_are_read() {
        let key = "k".repeat(40);
        let old = format!("{} {}", "a".repeat(32), "b".repeat(33));
        let env = read(&[
            ("TIDINGS_SECRET", &key),
            ("TIDINGS_SECRET_PREVIOUS", &old),
            ("TIDINGS_LEASE_SECONDS", "3"),
        ])
        .unwrap();
        assert_eq!(env.secret.unwrap().as_bytes(), key.as_bytes());
        assert_eq!(env.previous_secrets.len(), 2);
        assert_eq!(env.lease, Duration::from_secs(3));
        assert!(!format!("{:?}", read(&[("TIDINGS_SECRET", &key)])).contains(&key));
    }

    #[test]
    fn the_settings_handed_on_are_read_too() {
        let env = read(&[
            ("TIDINGS_SMTP_PASSWORD", " right horse "),
            ("TIDINGS_API_TOKEN", "token-1"),
            ("TIDINGS_HTTP_BACKOFF_MS", "10"),
            ("TIDINGS_LOG", "info,tidings=debug"),
        ])
        .unwrap();
        // A password is kept as set, spaces and all.
        assert_eq!(
            env.smtp_password.as_ref().unwrap().expose(),
            " right horse "
        );
        assert_eq!(env.api_token.as_ref().unwrap().expose(), "token-1");
        assert_eq!(env.http_backoff, Duration::from_millis(10));
        assert_eq!(env.log.as_deref(), Some("info,tidings=debug"));
        let shown = format!("{env:?}");
        assert!(
            !shown.contains("right horse") && !shown.contains("token-1"),
            "{shown}"
        );

        let unset = read(&[("TIDINGS_API_TOKEN", "  "), ("TIDINGS_LOG", "")]).unwrap();
        assert!(unset.api_token.is_none() && unset.smtp_password.is_none());
        assert_eq!(unset.http_backoff, DEFAULT_HTTP_BACKOFF);
        // An empty filter is one, as tracing reads it (errors only).
        assert_eq!(unset.log.as_deref(), Some(""));
    }

    #[test]
    fn a_bad_backoff_or_log_filter_is_named() {
        let problems = read(&[
            ("TIDINGS_HTTP_BACKOFF_MS", "fast"),
            ("TIDINGS_LOG", "tidings=loud"),
        ])
        .unwrap_err();
        let all = problems.join("\n");
        assert!(
            all.contains("TIDINGS_HTTP_BACKOFF_MS: `fast` is not a whole number of milliseconds"),
            "{all}"
        );
        assert!(
            all.contains("TIDINGS_LOG: `tidings=loud` is not a log filter"),
            "{all}"
        );
    }
}
