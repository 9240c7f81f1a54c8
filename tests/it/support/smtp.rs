//! A real SMTP server for the tests: Python's aiosmtpd, started by
//! `tests/smtpserver.py` on a free loopback port, keeping what it accepts
//! in a folder of its own.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::digest::{Mail, parse_all};

/// aiosmtpd running on 127.0.0.1, killed when dropped.
pub struct SmtpServer {
    child: Child,
    pub port: u16,
    pub maildir: tempfile::TempDir,
}

impl SmtpServer {
    /// Starts the server, or returns `None` (after saying so) when Python's
    /// aiosmtpd is not installed and this is not CI; under `CI=true` a
    /// missing aiosmtpd fails the test.
    pub fn start() -> Option<SmtpServer> {
        SmtpServer::start_with(&[])
    }

    /// A server that keeps only who got each message (`count()` and
    /// `recipient_counts()` work; `raw()` is empty): for tens of thousands.
    pub fn start_light() -> Option<SmtpServer> {
        SmtpServer::start_with(&["--light"])
    }

    /// A server that does not offer PIPELINING: a message's commands are
    /// answered one at a time, as lettre sends them on its own.
    pub fn start_without_pipelining() -> Option<SmtpServer> {
        SmtpServer::start_with(&["--no-pipelining"])
    }

    /// A server that offers PIPELINING but refuses a second EHLO in a
    /// session (503), as a few strict servers do.
    pub fn start_with_one_ehlo() -> Option<SmtpServer> {
        SmtpServer::start_with(&["--one-ehlo"])
    }

    /// A server that requires a login as `user` with `password` (also
    /// without TLS) and refuses mail without one (530).
    pub fn start_with_auth(user: &str, password: &str) -> Option<SmtpServer> {
        SmtpServer::start_with(&["--auth", &format!("{user}:{password}")])
    }

    /// A server that offers STARTTLS with a self-signed certificate, which
    /// a client rightly refuses.
    pub fn start_with_self_signed_starttls() -> Option<SmtpServer> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smtp-tls");
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        SmtpServer::start_with(&["--starttls", cert.to_str().unwrap(), key.to_str().unwrap()])
    }

    /// A server that speaks TLS from the first byte (as on port 465) with
    /// a self-signed certificate, which a client rightly refuses.
    pub fn start_with_self_signed_tls() -> Option<SmtpServer> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smtp-tls");
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        SmtpServer::start_with(&["--tls", cert.to_str().unwrap(), key.to_str().unwrap()])
    }

    fn start_with(args: &[&str]) -> Option<SmtpServer> {
        let python = std::env::var("TIDINGS_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        let probe = Command::new(&python)
            .args(["-c", "import aiosmtpd"])
            .output();
        if !probe.is_ok_and(|o| o.status.success()) {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!(
                    "aiosmtpd is required under CI=true: run scripts/test.sh, which installs it"
                );
            }
            eprintln!(
                "SKIPPED: Python's aiosmtpd is not installed (pip install aiosmtpd, or run scripts/test.sh)"
            );
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let maildir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtpserver.py");
        let mut child = Command::new(&python)
            .arg(script)
            .arg(port.to_string())
            .arg(maildir.path())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the SMTP server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the SMTP server did not start");
        Some(SmtpServer {
            child,
            port,
            maildir,
        })
    }

    pub fn transport(&self) -> String {
        format!("smtp://127.0.0.1:{}?tls=none", self.port)
    }

    /// How many messages were accepted so far (without reading them).
    pub fn count(&self) -> usize {
        if let Ok(log) = std::fs::read_to_string(self.maildir.path().join("recipients.log")) {
            return log.lines().count();
        }
        std::fs::read_dir(self.maildir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "eml"))
            })
            .count()
    }

    /// How many messages each recipient got (light servers).
    pub fn recipient_counts(&self) -> BTreeMap<String, usize> {
        let log =
            std::fs::read_to_string(self.maildir.path().join("recipients.log")).unwrap_or_default();
        let mut out = BTreeMap::new();
        for line in log.lines() {
            for rcpt in line.split_whitespace().skip(1) {
                *out.entry(rcpt.to_owned()).or_insert(0) += 1;
            }
        }
        out
    }

    /// The envelope sender (MAIL FROM) of every accepted message, in order
    /// of acceptance (not on light servers).
    pub fn envelope_senders(&self) -> Vec<String> {
        let mut paths: Vec<_> = std::fs::read_dir(self.maildir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "from"))
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    }

    /// Every accepted message, in order of acceptance.
    pub fn raw(&self) -> Vec<Vec<u8>> {
        let mut paths: Vec<_> = std::fs::read_dir(self.maildir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        paths.sort();
        paths
            .into_iter()
            .map(|p| std::fs::read(p).unwrap())
            .collect()
    }

    pub fn by_recipient(&self) -> BTreeMap<String, Vec<Mail>> {
        let mut out: BTreeMap<String, Vec<Mail>> = BTreeMap::new();
        for m in parse_all(self.raw()) {
            out.entry(m.to.clone()).or_default().push(m);
        }
        out
    }

    /// For each transaction, in order: "grouped" when RCPT and DATA had
    /// arrived with MAIL, in the same write, "single" when MAIL came alone.
    pub fn commands(&self) -> Vec<String> {
        std::fs::read_to_string(self.maildir.path().join("commands.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// (start, end) of every DATA command the server handled.
    pub fn data_log(&self) -> Vec<(f64, f64)> {
        std::fs::read_to_string(self.maildir.path().join("data.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let (a, b) = l.split_once(' ').unwrap();
                (a.parse().unwrap(), b.parse().unwrap())
            })
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
