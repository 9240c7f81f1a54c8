//! Real mail servers for the bounce mailbox tests, each with a config of
//! its own in a temporary folder and listening on a free loopback port:
//! Dovecot (Debian `dovecot-imapd`) as the IMAP server, with one user whose
//! mail is a maildir in that folder, and Postfix (Debian `postfix`) as a
//! second instance beside any system one, which bounces mail for unknown
//! local users and delivers mail for the return path's domain into the
//! Dovecot mailbox with `dovecot-lda`. They are checked with Python's
//! imaplib (`tests/imapcheck.py`), a client independent of tidings' own.
//!
//! When a server is not installed (or, for Postfix, the tests do not run
//! as root), the test says so and is skipped, except under `CI=true`,
//! where it fails: `scripts/test.sh` installs both.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::service::free_port;
use super::wait::wait_until;

/// The mailbox's user and password.
pub const IMAP_USER: &str = "bounces";
pub const IMAP_PASSWORD: &str = "imap horse";

const DOVECOT: &str = "/usr/sbin/dovecot";
const DOVECOT_LDA: &str = "/usr/lib/dovecot/dovecot-lda";
const POSTFIX: &str = "/usr/sbin/postfix";

fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// `None` after saying why the test is skipped; under `CI=true` a panic.
fn missing<T>(what: &str) -> Option<T> {
    if in_ci() {
        panic!("{what} under CI=true: run scripts/test.sh, which installs it");
    }
    eprintln!("SKIPPED: {what} (as root: scripts/test.sh installs it)");
    None
}

fn is_root() -> bool {
    id(&["-u"]) == "0"
}

/// `id ARGS`, trimmed ("" when it fails).
fn id(args: &[&str]) -> String {
    Command::new("id")
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// A temporary folder that the servers' unprivileged users can enter.
fn open_tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    chmod(dir.path(), 0o755);
    dir
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chown(path: &Path, owner: &str) {
    let status = Command::new("chown")
        .args(["-R", owner])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "chown {owner} {}", path.display());
}

/// Sends SIGTERM to `child` and waits (at most 10 s) for it to end.
fn terminate(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let ended = wait_until(10, || matches!(child.try_wait(), Ok(Some(_))));
        if !ended {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The first line a server at 127.0.0.1:`port` sends ("" when none comes).
fn greeting_of(port: u16) -> String {
    use std::io::BufRead as _;
    let Ok(stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut line = String::new();
    let _ = std::io::BufReader::new(stream).read_line(&mut line);
    line
}

/// Starts a server on a free loopback port: `launch(port)` writes its
/// config for that port and gives the command that runs it, in the
/// foreground, logging to `log`. The port is the server's once it
/// greets with a line holding `greeting(port)` while still running.
/// Between choosing a port and binding it, another test's server may take
/// it: then ours exits (it cannot bind), or what answers greets otherwise,
/// and another port is tried.
fn start_on_free_port(
    what: &str,
    mut launch: impl FnMut(u16) -> Command,
    greeting: impl Fn(u16) -> String,
    log: &Path,
) -> (Child, u16) {
    let log = || std::fs::read_to_string(log).unwrap_or_default();
    for _ in 0..5 {
        let port = free_port();
        let mut child = launch(port)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let expected = greeting(port);
        let mine = wait_until(30, || {
            matches!(child.try_wait(), Ok(Some(_))) || greeting_of(port).contains(&expected)
        });
        if mine && matches!(child.try_wait(), Ok(None)) {
            return (child, port);
        }
        terminate(&mut child);
        eprintln!(
            "{what} did not start on port {port}; trying another:\n{}",
            log()
        );
    }
    panic!("{what} did not start on any of five ports:\n{}", log());
}

/// One message of a folder, as imaplib sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub uid: u32,
    /// Its flags but `\Recent` (which only says no session saw it yet).
    pub flags: Vec<String>,
    /// Its `X-Test` header: which message of the test it is.
    pub test: String,
}

/// Dovecot serving IMAP on 127.0.0.1 without TLS, stopped when dropped.
pub struct Dovecot {
    child: Child,
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// IMAPS (TLS from the first byte), when started with TLS.
    pub tls_port: Option<u16>,
    /// The user the mail belongs to (also the user `dovecot-lda` runs as).
    pub mail_user: String,
}

impl Dovecot {
    /// Starts it, or `None` (after saying so) when Dovecot is not installed
    /// and this is not CI.
    pub fn start() -> Option<Dovecot> {
        Dovecot::start_with("", false)
    }

    /// Starts it with `extra` lines at the end of its config (such as
    /// `imap_capability` without MOVE), and with `tls` the self-signed
    /// certificate of `tests/fixtures/smtp-tls` for STARTTLS on the IMAP
    /// port and for IMAPS on a port of its own.
    pub fn start_with(extra: &str, tls: bool) -> Option<Dovecot> {
        if !Path::new(DOVECOT).exists() {
            return missing("Dovecot is not installed (Debian: apt-get install dovecot-imapd)");
        }
        let dir = open_tempdir();
        let root = dir.path();
        for sub in ["run", "state", "mail"] {
            std::fs::create_dir(root.join(sub)).unwrap();
        }
        // As root, Dovecot's own unprivileged users of the package run
        // the logins and the mail; otherwise all of it runs as us.
        let (internal, login, mail_user) = if is_root() {
            (
                "dovecot".to_owned(),
                "dovenull".to_owned(),
                "dovecot".to_owned(),
            )
        } else {
            let me = id(&["-un"]);
            (me.clone(), me.clone(), me)
        };
        let (uid, gid) = (id(&["-u", &mail_user]), id(&["-g", &mail_user]));
        if is_root() {
            chown(&root.join("mail"), &format!("{uid}:{gid}"));
        }
        std::fs::write(
            root.join("passwd"),
            format!("{IMAP_USER}:{{PLAIN}}{IMAP_PASSWORD}::::::\n"),
        )
        .unwrap();
        // The log is written by the master and by dovecot-lda as the mail user.
        std::fs::write(root.join("dovecot.log"), "").unwrap();
        chmod(&root.join("dovecot.log"), 0o666);
        let r = root.display();
        let mut tls_port = None;
        let launch = |port: u16| {
            tls_port = tls.then(free_port);
            let (ssl, imaps) = match tls_port {
                None => ("ssl = no".to_owned(), "port = 0".to_owned()),
                Some(p) => {
                    let fixtures =
                        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smtp-tls");
                    (
                        format!(
                            "ssl = yes\nssl_cert = <{}\nssl_key = <{}",
                            fixtures.join("cert.pem").display(),
                            fixtures.join("key.pem").display()
                        ),
                        format!("address = 127.0.0.1\n    port = {p}"),
                    )
                }
            };
            let config = format!(
                "protocols = imap
listen = 127.0.0.1
base_dir = {r}/run
state_dir = {r}/state
instance_name = tidings-test-{port}
login_greeting = tidings-test-{port} ready
log_path = {r}/dovecot.log
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {internal}
default_internal_group = {internal}
default_login_user = {login}
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {r}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={r}/mail/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    {imaps}
  }}
}}
service auth {{
  unix_listener auth-userdb {{
    mode = 0666
  }}
}}
{extra}
"
            );
            std::fs::write(root.join("dovecot.conf"), config).unwrap();
            let mut dovecot = Command::new(DOVECOT);
            dovecot.arg("-F").arg("-c").arg(root.join("dovecot.conf"));
            dovecot
        };
        let (child, port) = start_on_free_port(
            "Dovecot",
            launch,
            |port| format!("tidings-test-{port} ready"),
            &root.join("dovecot.log"),
        );
        Some(Dovecot {
            child,
            dir,
            port,
            tls_port,
            mail_user,
        })
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("dovecot.conf")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    /// `[bounces] mailbox` for its user's `folder`.
    pub fn url(&self, folder: &str) -> String {
        format!(
            "imap://{IMAP_USER}@127.0.0.1:{}/{folder}?tls=none",
            self.port
        )
    }

    /// imaplib's `tests/imapcheck.py` with `args`; its output.
    fn check(&self, args: &[&str]) -> String {
        let python = std::env::var("TIDINGS_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/imapcheck.py");
        let out = Command::new(python)
            .arg(script)
            .args([&self.port.to_string(), IMAP_USER, IMAP_PASSWORD])
            .args(args)
            .output()
            .expect("run tests/imapcheck.py");
        assert!(
            out.status.success(),
            "imapcheck {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Appends `raw` to `folder` with an `X-Test: name` header first;
    /// its UID.
    pub fn append(&self, folder: &str, name: &str, raw: &[u8]) -> u32 {
        let file = self.dir.path().join(format!("append-{name}.eml"));
        let mut bytes = format!("X-Test: {name}\r\n").into_bytes();
        bytes.extend_from_slice(raw);
        std::fs::write(&file, bytes).unwrap();
        let out = self.check(&["append", folder, file.to_str().unwrap()]);
        out.trim()
            .parse()
            .unwrap_or_else(|_| panic!("APPENDUID: {out}"))
    }

    /// The messages of `folder`, read without changing anything.
    pub fn list(&self, folder: &str) -> Vec<Listed> {
        self.check(&["list", folder])
            .lines()
            .map(|line| {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                Listed {
                    uid: v["uid"].as_u64().unwrap() as u32,
                    flags: v["flags"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|f| f.as_str().unwrap().to_owned())
                        .filter(|f| f != "\\Recent")
                        .collect(),
                    test: v["test"].as_str().unwrap().to_owned(),
                }
            })
            .collect()
    }

    /// The folder names.
    pub fn folders(&self) -> Vec<String> {
        self.check(&["folders"])
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

/// A second Postfix instance (config, queue and data in a temporary folder,
/// smtpd on a free loopback port), stopped when dropped. Mail for
/// `local_domain` goes to local users that do not exist, so it is accepted
/// and then bounced; mail for `bounce_domain` is delivered into the
/// Dovecot mailbox.
pub struct Postfix {
    child: Child,
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl Postfix {
    /// Starts it, or `None` (after saying so) when Postfix is not installed
    /// or the tests do not run as root (its master needs root), and this is
    /// not CI.
    pub fn start(dovecot: &Dovecot, local_domain: &str, bounce_domain: &str) -> Option<Postfix> {
        if !Path::new(POSTFIX).exists() || !Path::new(DOVECOT_LDA).exists() {
            return missing(
                "Postfix or dovecot-lda is not installed (Debian: apt-get install postfix dovecot-imapd)",
            );
        }
        if !is_root() {
            return missing("Postfix needs root to start (its master daemon runs as root)");
        }
        let dir = open_tempdir();
        let root = dir.path();
        let conf = root.join("conf");
        for sub in ["conf", "queue", "data", "spool"] {
            std::fs::create_dir(root.join(sub)).unwrap();
        }
        chmod(&root.join("spool"), 0o1777);
        chown(&root.join("data"), "postfix");
        let r = root.display();
        let launch = |port: u16| {
            std::fs::write(
                conf.join("main.cf"),
                format!(
                    "compatibility_level = 3.6
queue_directory = {r}/queue
data_directory = {r}/data
mail_spool_directory = {r}/spool
myhostname = mx.{local_domain}
smtpd_banner = $myhostname ESMTP tidings-test-{port}
mydomain = {local_domain}
myorigin = $mydomain
mydestination = {local_domain}
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
# Accept any local address at the door: unknown users bounce afterwards,
# by email to the envelope sender, as most relays do.
local_recipient_maps =
alias_maps =
alias_database =
biff = no
maillog_file = {r}/maillog
maillog_file_prefixes = {r}
transport_maps = inline:{{{bounce_domain}=dovecot:}}
relay_domains = {bounce_domain}
"
                ),
            )
            .unwrap();
            let lda = format!(
                "{DOVECOT_LDA} -c {} -d {IMAP_USER} -f ${{sender}}",
                dovecot.config_path().display()
            );
            std::fs::write(
                conf.join("master.cf"),
                format!(
                    "127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
local     unix  - n n - - local
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
dovecot   unix  - n n - - pipe flags=DRhu user={} argv={lda}
",
                    dovecot.mail_user
                ),
            )
            .unwrap();
            // `check` makes the queue's folders with their owners and modes.
            let checked = Command::new(POSTFIX)
                .arg("-c")
                .arg(&conf)
                .arg("check")
                .output()
                .unwrap();
            assert!(
                checked.status.success(),
                "postfix check: {}",
                String::from_utf8_lossy(&checked.stderr)
            );
            let mut postfix = Command::new(POSTFIX);
            postfix.arg("-c").arg(&conf).arg("start-fg");
            postfix
        };
        let (child, port) = start_on_free_port(
            "Postfix",
            launch,
            |port| format!("ESMTP tidings-test-{port}"),
            &root.join("maillog"),
        );
        Some(Postfix { child, dir, port })
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("maillog")).unwrap_or_default()
    }

    /// `[mail] transport` for it.
    pub fn transport(&self) -> String {
        format!("smtp://127.0.0.1:{}?tls=none", self.port)
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new(POSTFIX)
            .arg("-c")
            .arg(self.dir.path().join("conf"))
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !wait_until(15, || matches!(self.child.try_wait(), Ok(Some(_)))) {
            terminate(&mut self.child);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
