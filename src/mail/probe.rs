//! `tidings check --smtp`: tries `[mail] transport` the way a send uses
//! it, one step at a time, and says how each went — connect, EHLO,
//! STARTTLS or TLS, AUTH, QUIT for a relay; for a `file:` outbox, whether
//! the folder can be written. Nothing is sent. The STARTTLS and login
//! steps are the sender's own (`transport::starttls`, `transport::login`),
//! so a check that passes means a send gets that far too.

use std::path::Path;
use std::time::Duration;

use lettre::transport::smtp::authentication::Mechanism;
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::{ClientId, Extension, ServerInfo};

use super::transport::{self, SMTP_TIMEOUT, SendError};
use crate::config::env::Secret;
use crate::config::{Mail, Tls, Transport};

/// One step of the check and how it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// `connect`, `EHLO`, `STARTTLS`, `TLS`, `AUTH`, `QUIT` or `outbox`.
    pub name: &'static str,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Passed(String),
    /// Not needed as the transport is set up (no user: no AUTH).
    Skipped(String),
    /// What went wrong and what to do; the steps after it are not tried.
    Failed(String),
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (word, detail) = match &self.outcome {
            Outcome::Passed(d) => ("ok", d),
            Outcome::Skipped(d) => ("skipped", d),
            Outcome::Failed(d) => ("FAILED", d),
        };
        // The details quote the server's replies: shown escaped.
        let detail = crate::model::problem::printable(detail);
        if detail.is_empty() {
            write!(f, "{}: {word}", self.name)
        } else {
            write!(f, "{}: {word}: {detail}", self.name)
        }
    }
}

/// The transport as the check names it: `file:DIR`, or the relay's URL
/// with its TLS mode spelled out (never a password: none is in it).
pub fn describe(transport: &Transport) -> String {
    match transport {
        Transport::File(dir) => format!("file:{}", dir.display()),
        Transport::Smtp {
            host,
            port,
            user,
            tls,
        } => {
            let user = user.as_deref().map_or(String::new(), |u| format!("{u}@"));
            let tls = match tls {
                Tls::Starttls => "starttls",
                Tls::Tls => "tls",
                Tls::None => "none",
            };
            format!("smtp://{user}{host}:{port}?tls={tls}")
        }
    }
}

/// Runs the check, handing each step to `report` as soon as it is done;
/// the failed step, if one failed (the steps after it are not tried).
pub async fn check(mail: &Mail, mut report: impl FnMut(&Step)) -> Option<Step> {
    let mut steps = Steps {
        report: &mut report,
        failed: None,
    };
    match &mail.transport {
        Transport::File(dir) => steps.outbox(dir),
        Transport::Smtp {
            host,
            port,
            user,
            tls,
        } => {
            let relay = Target {
                host,
                server: format!("{host}:{port}"),
                port: *port,
                user: user.as_deref(),
                password: mail.smtp_password.as_ref(),
                tls: *tls,
            };
            relay.check(&mut steps).await;
        }
    }
    steps.failed
}

struct Steps<'a, F: FnMut(&Step)> {
    report: &'a mut F,
    failed: Option<Step>,
}

impl<F: FnMut(&Step)> Steps<'_, F> {
    /// Reports a step; whether the check goes on.
    fn step(&mut self, name: &'static str, outcome: Outcome) -> bool {
        let step = Step { name, outcome };
        (self.report)(&step);
        if matches!(step.outcome, Outcome::Failed(_)) {
            self.failed = Some(step);
            return false;
        }
        true
    }

    /// Reports `result` as the step `name`: passed with what `Ok` holds,
    /// or failed with the error; the value, if the check goes on.
    fn outcome<T>(
        &mut self,
        name: &'static str,
        result: Result<T, SendError>,
        said: impl FnOnce(&T) -> String,
    ) -> Option<T> {
        match result {
            Ok(value) => {
                let text = said(&value);
                self.step(name, Outcome::Passed(text)).then_some(value)
            }
            Err(e) => {
                self.step(name, Outcome::Failed(e.to_string()));
                None
            }
        }
    }

    fn outbox(&mut self, dir: &Path) {
        // The nearest folder that exists: a send makes the rest.
        let existing = dir.ancestors().find(|d| d.exists()).unwrap_or(dir);
        let written = tempfile::Builder::new()
            .prefix(".tidings-check-")
            .tempfile_in(existing)
            .map_err(|e| transport::file_error(dir, existing, e));
        let said = if existing == dir {
            format!(
                "messages are written as .eml files to {}, which can be written",
                dir.display()
            )
        } else {
            format!(
                "messages are written as .eml files to {}, made at the first send in {}, which \
                 can be written",
                dir.display(),
                existing.display()
            )
        };
        self.outcome("outbox", written, |_| said);
    }
}

/// The relay as `[mail] transport` names it.
struct Target<'a> {
    host: &'a str,
    port: u16,
    /// `host:port`, for messages.
    server: String,
    user: Option<&'a str>,
    /// `TIDINGS_SMTP_PASSWORD`, for the user.
    password: Option<&'a Secret>,
    tls: Tls,
}

impl Target<'_> {
    async fn check(&self, steps: &mut Steps<'_, impl FnMut(&Step)>) {
        let hello = ClientId::default();
        let server = self.server.as_str();
        let tcp = within(server, "connect", async {
            tokio::net::TcpStream::connect((self.host, self.port))
                .await
                .map_err(|e| SendError::Transient(format!("cannot connect to {server}: {e}")))
        })
        .await;
        let Some(stream) = steps.outcome("connect", tcp, |s| match s.peer_addr() {
            Ok(addr) if addr.to_string() != server => format!("{server} ({addr})"),
            _ => server.to_owned(),
        }) else {
            return;
        };
        let mut conn = match self.tls {
            Tls::Tls => {
                // TLS from the first byte: lettre makes the connection,
                // TLS and EHLO in one; the one above only tried the port.
                drop(stream);
                let Some(conn) = self.implicit_tls(steps, &hello).await else {
                    return;
                };
                conn
            }
            Tls::Starttls | Tls::None => {
                let greeted = within(server, "EHLO", async {
                    AsyncSmtpConnection::connect_with_transport(Box::new(stream), &hello)
                        .await
                        .map_err(|e| SendError::Transient(format!("{server}: {e}")))
                })
                .await;
                let Some(mut conn) =
                    steps.outcome("EHLO", greeted, |c| describe_server(c.server_info()))
                else {
                    return;
                };
                if self.tls == Tls::None {
                    steps.step(
                        "TLS",
                        Outcome::Skipped(
                            "`?tls=none`: messages go unencrypted (for a relay on this host only)"
                                .into(),
                        ),
                    );
                } else {
                    let upgraded = within(server, "STARTTLS", async {
                        transport::starttls(&mut conn, self.host, server, &hello).await
                    })
                    .await;
                    let said =
                        |_: &()| format!("encrypted; then {}", describe_server(conn.server_info()));
                    if steps.outcome("STARTTLS", upgraded, said).is_none() {
                        return;
                    }
                }
                conn
            }
        };
        if !self.login(steps, &mut conn).await {
            return;
        }
        let quit = within(server, "QUIT", async {
            conn.quit()
                .await
                .map_err(|e| SendError::Transient(format!("{server}: {e}")))
        })
        .await;
        steps.outcome("QUIT", quit, |_| String::new());
    }

    /// Connects with TLS from the first byte: the steps `TLS` and `EHLO`.
    async fn implicit_tls(
        &self,
        steps: &mut Steps<'_, impl FnMut(&Step)>,
        hello: &ClientId,
    ) -> Option<AsyncSmtpConnection> {
        let server = self.server.as_str();
        let tls = match TlsParameters::new(self.host.to_owned()) {
            Ok(tls) => tls,
            Err(e) => {
                let error = format!(
                    "[mail] transport: cannot set up TLS for `{}`: {e}",
                    self.host
                );
                steps.step("TLS", Outcome::Failed(error));
                return None;
            }
        };
        let connected = AsyncSmtpConnection::connect_tokio1(
            (self.host, self.port),
            Some(SMTP_TIMEOUT),
            hello,
            Some(tls),
            None,
        )
        .await;
        match connected {
            Ok(conn) => {
                steps.step(
                    "TLS",
                    Outcome::Passed("encrypted from the first byte".into()),
                );
                steps.step("EHLO", Outcome::Passed(describe_server(conn.server_info())));
                Some(conn)
            }
            // A handshake that fails is a setup error; anything else
            // happened after it, at the greeting or EHLO.
            Err(e) => match transport::classify_implicit_tls(&e, server) {
                SendError::Config(error) => {
                    steps.step("TLS", Outcome::Failed(error));
                    None
                }
                error => {
                    steps.step(
                        "TLS",
                        Outcome::Passed("encrypted from the first byte".into()),
                    );
                    steps.step("EHLO", Outcome::Failed(error.to_string()));
                    None
                }
            },
        }
    }

    /// The step `AUTH`: logs in as the transport's user, if it names one.
    /// Whether the check goes on.
    async fn login(
        &self,
        steps: &mut Steps<'_, impl FnMut(&Step)>,
        conn: &mut AsyncSmtpConnection,
    ) -> bool {
        let Some(user) = self.user else {
            return steps.step(
                "AUTH",
                Outcome::Skipped("no user in the transport: messages go without a login".into()),
            );
        };
        let credentials = match transport::credentials(user, self.password) {
            Ok(c) => c,
            Err(e) => return steps.step("AUTH", Outcome::Failed(e.to_string())),
        };
        let server = self.server.as_str();
        let logged_in = within(server, "AUTH", async {
            transport::login(conn, &credentials, server).await
        })
        .await;
        steps
            .outcome("AUTH", logged_in, |m: &Mechanism| {
                format!("logged in as `{user}` with {m}")
            })
            .is_some()
    }
}

/// `step` given [`SMTP_TIMEOUT`], as a send would.
async fn within<T>(
    server: &str,
    step: &str,
    work: impl Future<Output = Result<T, SendError>>,
) -> Result<T, SendError> {
    let limit: Duration = SMTP_TIMEOUT;
    tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
        Err(SendError::Transient(format!(
            "{step}: no answer from {server} within {} s",
            limit.as_secs()
        )))
    })
}

/// The server's name and what it offers that a send cares about, in a
/// fixed order.
fn describe_server(info: &ServerInfo) -> String {
    let mut offers: Vec<String> = Vec::new();
    if info.supports_feature(Extension::StartTls) {
        offers.push("STARTTLS".into());
    }
    let logins: Vec<&str> = [
        (Mechanism::Plain, "PLAIN"),
        (Mechanism::Login, "LOGIN"),
        (Mechanism::Xoauth2, "XOAUTH2"),
    ]
    .into_iter()
    .filter(|(m, _)| info.supports_auth_mechanism(*m))
    .map(|(_, name)| name)
    .collect();
    if !logins.is_empty() {
        offers.push(format!("AUTH {}", logins.join(" ")));
    }
    for (feature, name) in [
        (Extension::EightBitMime, "8BITMIME"),
        (Extension::SmtpUtfEight, "SMTPUTF8"),
    ] {
        if info.supports_feature(feature) {
            offers.push(name.into());
        }
    }
    let offers = if offers.is_empty() {
        "nothing".to_owned()
    } else {
        offers.join(", ")
    };
    format!(
        "the server calls itself `{}` and offers {offers}",
        info.name()
    )
}
