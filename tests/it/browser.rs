//! The end-to-end test in a real headless Chromium (Debian's `chromium`
//! and `chromium-driver`, driven over WebDriver by fantoccini): a visitor
//! signs up on `/`, confirms from the email that the real SMTP server
//! received, changes their themes, gets a digest with only those themes,
//! and leaves through the digest's unsubscribe link. Every page is saved
//! as a full-page screenshot under `target/e2e/`.
//!
//! `scripts/test.sh` installs Chromium and its driver and exports their
//! paths (`TIDINGS_TEST_CHROMIUM`, `TIDINGS_TEST_CHROMEDRIVER`); without
//! them the test is skipped, except under `CI=true`, where it fails.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::support::{Mail, Run, Service, Site, SmtpServer, digest_site, free_port, ok, recent};

/// How long one page may take to show what a step waits for.
const PAGE_WAIT: Duration = Duration::from_secs(20);

fn under_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Where screenshots and other artifacts go: `target/e2e/`.
pub fn artifacts_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/e2e");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}

/// The first of `names` found on `PATH`.
fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in names {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// A program named by `var`, or else found on `PATH`.
fn program(var: &str, names: &[&str]) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)).filter(|p| p.is_file()),
        _ => on_path(names),
    }
}

/// Headless Chromium under chromedriver. chromedriver runs in a process
/// group of its own, and that group (chromedriver and the browser it
/// started) is killed when this is dropped.
pub struct Browser {
    pub client: Client,
    _driver: Driver,
    driver_log: PathBuf,
    _profile: tempfile::TempDir,
    dir: PathBuf,
}

impl Browser {
    /// Starts chromedriver on a free port and opens a session, or returns
    /// `None` (after saying why) when Chromium or chromedriver is missing
    /// and this is not CI. Under `CI=true` a missing browser fails.
    pub async fn start() -> Option<Browser> {
        let chromium = program(
            "TIDINGS_TEST_CHROMIUM",
            &["chromium", "chromium-browser", "google-chrome"],
        );
        let driver = program("TIDINGS_TEST_CHROMEDRIVER", &["chromedriver"]);
        let (chromium, driver) = match (chromium, driver) {
            (Some(c), Some(d)) => (c, d),
            (c, d) => {
                let missing: Vec<&str> = [
                    c.is_none().then_some("chromium"),
                    d.is_none()
                        .then_some("chromedriver (Debian package chromium-driver)"),
                ]
                .into_iter()
                .flatten()
                .collect();
                let msg = format!(
                    "{} not found (set TIDINGS_TEST_CHROMIUM / TIDINGS_TEST_CHROMEDRIVER, \
                     or run scripts/test.sh, which installs Debian's chromium and chromium-driver)",
                    missing.join(" and ")
                );
                if under_ci() {
                    panic!("the browser test needs a browser under CI=true: {msg}");
                }
                eprintln!("SKIPPED: the browser test: {msg}");
                return None;
            }
        };

        let dir = artifacts_dir();
        let port = free_port();
        let driver_log = dir.join("chromedriver.log");
        let log = std::fs::File::create(&driver_log).unwrap();
        let mut child = Driver(
            Command::new(&driver)
                .arg(format!("--port={port}"))
                .arg("--allowed-ips=127.0.0.1")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver.display())),
        );

        // Wait until chromedriver answers `GET /status` with ready.
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.0.try_wait().unwrap() {
                panic!(
                    "chromedriver exited at start ({status}):\n{}",
                    std::fs::read_to_string(&driver_log).unwrap_or_default()
                );
            }
            if driver_ready(port) {
                break;
            }
            if Instant::now() > end {
                drop(child);
                panic!(
                    "chromedriver did not answer on port {port} within 20 s:\n{}",
                    std::fs::read_to_string(&driver_log).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        let profile = tempfile::tempdir().unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-dev-shm-usage",
                    "--window-size=1280,900",
                    "--hide-scrollbars",
                    "--no-first-run",
                    "--no-default-browser-check",
                    "--lang=en-US",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
                // The same pages on every machine: English first.
                "prefs": { "intl.accept_languages": "en-US,en" },
            }),
        );
        // Several crypto back ends are linked in: name one for rustls.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let connected = ClientBuilder::rustls()
            .expect("rustls")
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await;
        let client = match connected {
            Ok(c) => c,
            Err(e) => {
                drop(child);
                panic!(
                    "chromedriver could not start {}: {e}\n--- chromedriver log\n{}",
                    chromium.display(),
                    std::fs::read_to_string(&driver_log).unwrap_or_default()
                );
            }
        };
        let timeouts = fantoccini::wd::TimeoutConfiguration::new(
            Some(Duration::from_secs(10)),
            Some(Duration::from_secs(30)),
            Some(Duration::ZERO),
        );
        client
            .update_timeouts(timeouts)
            .await
            .expect("set WebDriver timeouts");
        Some(Browser {
            client,
            _driver: child,
            driver_log,
            _profile: profile,
            dir,
        })
    }

    /// Ends the session (the browser quits) and chromedriver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
        // Drop kills chromedriver's group.
    }

    /// Saves a screenshot of the whole page (not only the viewport) to
    /// `target/e2e/<step>.png`, and returns its path.
    pub async fn screenshot(&self, step: &str) -> PathBuf {
        self.try_screenshot(step)
            .await
            .unwrap_or_else(|e| panic!("screenshot of {step}: {e}"))
    }

    async fn try_screenshot(&self, step: &str) -> Result<PathBuf, String> {
        let c = &self.client;
        let (width, height) = c.get_window_size().await.map_err(|e| e.to_string())?;
        // The document's height, plus what the window adds around its viewport.
        let page = c
            .execute(
                "const d = document.documentElement, b = document.body;
                 return [Math.max(d.scrollHeight, b ? b.scrollHeight : 0),
                         window.outerHeight - window.innerHeight];",
                vec![],
            )
            .await
            .ok()
            .and_then(|v| {
                let a = v.as_array()?;
                Some((a.first()?.as_u64()?, a.get(1)?.as_u64().unwrap_or(0)))
            });
        let full = page.map_or(height, |(doc, chrome)| (doc + chrome).clamp(height, 12_000));
        if full > height {
            let _ = c.set_window_size(width as u32, full as u32).await;
        }
        let png = c.screenshot().await;
        if full > height {
            let _ = c.set_window_size(width as u32, height as u32).await;
        }
        let png = png.map_err(|e| e.to_string())?;
        if !png.starts_with(b"\x89PNG") {
            return Err("not a PNG".into());
        }
        let path = self.dir.join(format!("{step}.png"));
        std::fs::write(&path, png).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    }

    /// The current URL and page source, for failure messages.
    pub async fn describe(&self) -> String {
        let url = self
            .client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_else(|e| format!("(no URL: {e})"));
        let source = self
            .client
            .source()
            .await
            .unwrap_or_else(|e| format!("(no source: {e})"));
        format!("--- page {url}\n{}", truncate(&source, 8_000),)
    }

    /// What chromedriver logged.
    pub fn driver_log(&self) -> String {
        std::fs::read_to_string(&self.driver_log).unwrap_or_default()
    }
}

/// chromedriver, leader of its own process group; dropping it kills the
/// group (chromedriver and the browser it started).
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let child = &mut self.0;
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Whether chromedriver on `port` answers `GET /status` with `ready: true`.
fn driver_ready(port: u16) -> bool {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    let compact: String = answer.split_whitespace().collect();
    compact.contains("\"ready\":true")
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// One run of the scenario: the browser, the service and the site, so a
/// failing step can say which page it was on and what the service logged.
struct Steps<'a> {
    browser: &'a Browser,
    service: &'a Service,
}

impl Steps<'_> {
    /// Fails the test at `step`: saves `<step>-FAILED.png` and panics with
    /// the page's URL and source and the service's log.
    async fn fail(&self, step: &str, what: &str) -> ! {
        let shot = match self.browser.try_screenshot(&format!("{step}-FAILED")).await {
            Ok(path) => path.display().to_string(),
            Err(e) => format!("none: {e}"),
        };
        let page = self.browser.describe().await;
        panic!(
            "step {step}: {what}\n(screenshot: {shot})\n{page}\n--- service log (last part)\n{}\n--- chromedriver log (last part)\n{}",
            tail(&self.service.log(), 6_000),
            tail(&self.browser.driver_log(), 2_000),
        );
    }

    /// Opens `url`.
    async fn goto(&self, step: &str, url: &str) {
        if let Err(e) = self.browser.client.goto(url).await {
            self.fail(step, &format!("cannot open {url}: {e}")).await;
        }
    }

    /// Waits (at most [`PAGE_WAIT`]) for an element matching `css`. A
    /// lookup that a navigation under way aborted (the form just submitted
    /// is still loading its answer) is tried again.
    async fn find(&self, step: &str, css: &str) -> Element {
        let deadline = std::time::Instant::now() + PAGE_WAIT;
        loop {
            let found = self
                .browser
                .client
                .wait()
                .at_most(deadline.saturating_duration_since(std::time::Instant::now()))
                .every(Duration::from_millis(100))
                .for_element(Locator::Css(css))
                .await;
            match found {
                Ok(e) => return e,
                Err(e)
                    if e.to_string().contains("aborted by navigation")
                        && std::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => {
                    self.fail(step, &format!("no element `{css}` on the page: {e}"))
                        .await
                }
            }
        }
    }

    async fn click(&self, step: &str, css: &str) {
        let el = self.find(step, css).await;
        if let Err(e) = el.click().await {
            self.fail(step, &format!("cannot click `{css}`: {e}")).await;
        }
    }

    /// Makes the checkbox `css` checked (`on`) or not, by clicking it as a
    /// person would (or its label, when the box itself is styled away).
    async fn tick(&self, step: &str, css: &str, on: bool) {
        let el = self.find(step, css).await;
        if el.is_selected().await.unwrap_or(!on) == on {
            return;
        }
        if el.click().await.is_err() {
            let id = el.attr("id").await.ok().flatten().unwrap_or_default();
            let label = if id.is_empty() {
                None
            } else {
                self.browser
                    .client
                    .find(Locator::Css(&format!("label[for=\"{id}\"]")))
                    .await
                    .ok()
            };
            let clicked = match label {
                Some(l) => l.click().await.is_ok(),
                None => false,
            };
            if !clicked {
                self.fail(
                    step,
                    &format!("cannot click the checkbox `{css}` nor a label for it"),
                )
                .await;
            }
        }
        if el.is_selected().await.ok() != Some(on) {
            self.fail(
                step,
                &format!(
                    "the checkbox `{css}` did not become {}",
                    if on { "checked" } else { "unchecked" }
                ),
            )
            .await;
        }
    }

    /// Chooses `value` in the field named `name` of `form`, whether it is
    /// a `<select>` or a group of radio buttons.
    async fn choose(&self, step: &str, form: &str, name: &str, value: &str) {
        let field = self.find(step, &format!("{form} [name=\"{name}\"]")).await;
        let tag = field
            .tag_name()
            .await
            .unwrap_or_default()
            .to_ascii_lowercase();
        if tag == "select" {
            if let Err(e) = field.select_by_value(value).await {
                self.fail(
                    step,
                    &format!("cannot choose {value} in select {name}: {e}"),
                )
                .await;
            }
        } else {
            let css = format!("{form} input[name=\"{name}\"][value=\"{value}\"]");
            self.click(step, &css).await;
        }
    }

    async fn shot(&self, step: &str) {
        let path = self.browser.screenshot(step).await;
        eprintln!("screenshot: {}", path.display());
    }
}

fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// The secret the service and the CLI sign links with.
const SECRET: &str = "e2e-test-secret-0123456789abcdef-0123456789";

/// `tidings ARGS` on `site` with the same signing key as the service.
fn tidings(site: &Site, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_tidings"))
        .arg("--config")
        .arg(site.config_path())
        .args(args)
        .current_dir(site.root())
        .env_remove("TIDINGS_CONFIG")
        .env("TIDINGS_SECRET", SECRET)
        .output()
        .expect("run tidings");
    Run::from(out)
}

/// One subscriber as `subscribers list` shows them.
#[derive(Debug, PartialEq)]
struct Row {
    status: String,
    language: String,
    themes: String,
}

fn subscriber(site: &Site, email: &str) -> Option<Row> {
    let list = ok(tidings(site, &["subscribers", "list"]));
    list.stdout.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split('\t').collect();
        (cols.first() == Some(&email)).then(|| Row {
            status: cols.get(1).unwrap_or(&"").to_string(),
            language: cols.get(2).unwrap_or(&"").to_string(),
            themes: cols.get(4).unwrap_or(&"").to_string(),
        })
    })
}

/// The link `<prefix><token>` in `text` (a token is URL-safe base64 and dots).
fn link(text: &str, prefix: &str) -> Option<String> {
    let start = text.find(prefix)? + prefix.len();
    let token: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || "-_.~%".contains(*c))
        .collect();
    (!token.is_empty()).then(|| format!("{prefix}{token}"))
}

/// Waits (at most 10 s) until `smtp` holds `n` messages to `to`.
async fn mail_to(smtp: &SmtpServer, to: &str, n: usize, service: &Service) -> Vec<Mail> {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(m) = smtp.by_recipient().remove(to)
            && m.len() >= n
        {
            return m;
        }
        if Instant::now() > end {
            panic!(
                "no message #{n} to {to} reached the SMTP server within 10 s; it holds {:?}\n--- service log\n{}",
                smtp.by_recipient()
                    .iter()
                    .map(|(k, v)| (
                        k.clone(),
                        v.iter().map(|m| m.subject.clone()).collect::<Vec<_>>()
                    ))
                    .collect::<Vec<_>>(),
                tail(&service.log(), 6_000)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_signs_up_confirms_changes_themes_reads_a_digest_and_leaves() {
    let started = Instant::now();
    let Some(smtp) = SmtpServer::start() else {
        return;
    };
    let Some(browser) = Browser::start().await else {
        return;
    };
    // This run's screenshots only.
    for entry in std::fs::read_dir(artifacts_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "png") {
            let _ = std::fs::remove_file(path);
        }
    }

    // The site: three themes, a story in each, links pointing at the service.
    let site = digest_site(&smtp.transport());
    recent(&site, "a1", "Alpha one", 2, &["alpha"]);
    recent(&site, "b1", "Beta one", 1, &["beta"]);
    recent(&site, "g1", "Gamma one", 1, &["gamma"]);
    let port = free_port();
    let public = format!("http://127.0.0.1:{port}/");
    let config = std::fs::read_to_string(site.config_path()).unwrap();
    std::fs::write(
        site.config_path(),
        format!("{config}\n[http]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"{public}\"\n"),
    )
    .unwrap();
    ok(tidings(&site, &["build"]));
    let service = site.serve(&[("TIDINGS_SECRET", SECRET)]);
    let s = Steps {
        browser: &browser,
        service: &service,
    };
    let email = "reader@example.org";

    // 1. The home page, and its sign-up form.
    s.goto("01-home", &service.url("/")).await;
    s.find("01-home", "form#subscribe").await;
    s.shot("01-home").await;
    let field = s.find("02-subscribe", "form#subscribe #email").await;
    if let Err(e) = field.send_keys(email).await {
        s.fail("02-subscribe", &format!("cannot type into #email: {e}"))
            .await;
    }
    s.tick(
        "02-subscribe",
        "form#subscribe input[name=themes][value=alpha]",
        true,
    )
    .await;
    s.tick(
        "02-subscribe",
        "form#subscribe input[name=themes][value=beta]",
        true,
    )
    .await;
    // The pages are in English (the browser's language); the letters in Swedish.
    s.choose("02-subscribe", "form#subscribe", "language", "sv")
        .await;
    s.shot("02-subscribe-filled").await;
    s.click("02-subscribe", "form#subscribe button[type=submit]")
        .await;
    s.find("03-check-inbox", "#check-inbox").await;
    s.shot("03-check-inbox").await;

    // 2. The confirmation email, and the confirm page: GET shows, POST confirms.
    let confirmation = mail_to(&smtp, email, 1, &service).await.remove(0);
    let confirm_prefix = format!("{public}confirm/");
    let Some(confirm_url) = link(&confirmation.text, &confirm_prefix)
        .or_else(|| link(&confirmation.html, &confirm_prefix))
    else {
        panic!(
            "no {confirm_prefix}<token> link in the confirmation email:\n{}\n{}",
            confirmation.text, confirmation.html
        );
    };
    let row = subscriber(&site, email);
    assert_eq!(
        row.as_ref().map(|r| r.status.as_str()),
        Some("pending"),
        "after sign-up: {row:?}"
    );
    s.goto("04-confirm", &confirm_url).await;
    let button = "form[method=post i] [type=submit]";
    s.find("04-confirm", button).await;
    s.shot("04-confirm").await;
    let row = subscriber(&site, email).unwrap();
    if row.status != "pending" {
        s.fail(
            "04-confirm",
            &format!("GET {confirm_url} changed the subscriber: {row:?}"),
        )
        .await;
    }
    s.click("04-confirm", button).await;
    s.find("05-confirmed", "#confirmed").await;
    s.shot("05-confirmed").await;
    let row = subscriber(&site, email).unwrap();
    assert_eq!(
        row,
        Row {
            status: "active".into(),
            language: "sv".into(),
            themes: "alpha,beta".into()
        },
        "after confirming"
    );

    // 3. Preferences: beta out, gamma in.
    s.click("06-preferences", "a[href*=\"/preferences/\"]")
        .await;
    let form = "form#preferences";
    s.find("06-preferences", form).await;
    for (theme, checked) in [("alpha", true), ("beta", true), ("gamma", false)] {
        let el = s
            .find(
                "06-preferences",
                &format!("{form} input[name=themes][value={theme}]"),
            )
            .await;
        if el.is_selected().await.ok() != Some(checked) {
            s.fail(
                "06-preferences",
                &format!(
                    "the page should show {theme} as {}",
                    if checked { "chosen" } else { "not chosen" }
                ),
            )
            .await;
        }
    }
    s.shot("06-preferences").await;
    s.tick(
        "06-preferences",
        &format!("{form} input[name=themes][value=beta]"),
        false,
    )
    .await;
    s.tick(
        "06-preferences",
        &format!("{form} input[name=themes][value=gamma]"),
        true,
    )
    .await;
    s.click("06-preferences", &format!("{form} button[type=submit]"))
        .await;
    s.find("07-preferences-saved", "[role=status]").await;
    s.shot("07-preferences-saved").await;
    let row = subscriber(&site, email).unwrap();
    if row.themes != "alpha,gamma" || row.status != "active" {
        s.fail(
            "07-preferences-saved",
            &format!("the stored themes should be alpha,gamma: {row:?}"),
        )
        .await;
    }

    // 4. A digest, through the CLI while the service runs: only the chosen themes.
    let sent = ok(tidings(&site, &["digest", "send"]));
    let digest = mail_to(&smtp, email, 2, &service).await.remove(1);
    for (story, wanted) in [
        ("Alpha one", true),
        ("Beta one", false),
        ("Gamma one", true),
    ] {
        assert_eq!(
            digest.html.contains(story),
            wanted,
            "{story} {} the digest's HTML:\n{}\n--- digest send\n{sent}",
            if wanted {
                "missing from"
            } else {
                "should not be in"
            },
            digest.html
        );
        assert_eq!(
            digest.text.contains(story),
            wanted,
            "{story}: {}",
            digest.text
        );
    }
    assert!(
        digest.subject.starts_with("Nytt "),
        "the digest in the chosen language (Swedish): {:?}",
        digest.subject
    );
    let unsubscribe_prefix = format!("{public}unsubscribe/");
    let header = digest
        .headers
        .get("list-unsubscribe")
        .unwrap_or_else(|| panic!("no List-Unsubscribe header: {:?}", digest.headers));
    let Some(unsubscribe_url) = link(header, &unsubscribe_prefix) else {
        panic!("no {unsubscribe_prefix}<token> in List-Unsubscribe: {header}");
    };
    assert_eq!(
        link(&digest.html, &unsubscribe_prefix).as_deref(),
        Some(unsubscribe_url.as_str()),
        "the HTML body's unsubscribe link is the header's:\n{}",
        digest.html
    );
    let html_file = artifacts_dir().join("digest.html");
    std::fs::write(&html_file, &digest.html).unwrap();
    s.goto("08-digest", &format!("file://{}", html_file.display()))
        .await;
    s.find("08-digest", &format!("a[href=\"{unsubscribe_url}\"]"))
        .await;
    s.shot("08-digest").await;

    // 5. Unsubscribe: GET shows, POST unsubscribes.
    s.goto("09-unsubscribe", &unsubscribe_url).await;
    s.find("09-unsubscribe", button).await;
    s.shot("09-unsubscribe").await;
    let row = subscriber(&site, email).unwrap();
    if row.status != "active" {
        s.fail(
            "09-unsubscribe",
            &format!("GET {unsubscribe_url} changed the subscriber: {row:?}"),
        )
        .await;
    }
    s.click("09-unsubscribe", button).await;
    s.find("10-unsubscribed", "#unsubscribed").await;
    s.shot("10-unsubscribed").await;
    let row = subscriber(&site, email).unwrap();
    assert_eq!(row.status, "unsubscribed", "after unsubscribing: {row:?}");

    // 6. The home page on a phone: nothing wider than the screen.
    if let Err(e) = browser.client.set_window_size(390, 844).await {
        panic!("cannot make the window phone-sized: {e}");
    }
    s.goto("11-home-phone", &service.url("/")).await;
    s.find("11-home-phone", "form#subscribe").await;
    s.shot("11-home-phone").await;
    let widths = browser
        .client
        .execute(
            "return [document.documentElement.scrollWidth, window.innerWidth];",
            vec![],
        )
        .await
        .expect("measure the page");
    let (scroll, inner) = (widths[0].as_u64().unwrap(), widths[1].as_u64().unwrap());
    if inner > 500 {
        eprintln!("note: the window did not shrink to a phone's width (inner width {inner})");
    } else if scroll > inner {
        s.fail(
            "11-home-phone",
            &format!("on a phone the page is {scroll}px wide for a {inner}px screen"),
        )
        .await;
    }

    browser.close().await;
    let (code, log) = service.stop();
    assert_eq!(code, 0, "tidings run did not exit cleanly:\n{log}");
    eprintln!(
        "browser test passed in {:.1} s; screenshots in {}",
        started.elapsed().as_secs_f64(),
        artifacts_dir().display()
    );
}

/// A Chrome DevTools command through chromedriver
/// (`POST /session/<id>/goog/cdp/execute`): how a window is given a
/// phone's viewport, which resizing the window cannot do below Chrome's
/// smallest window.
#[derive(Debug)]
struct Cdp(serde_json::Value);

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        (axum::http::Method::POST, Some(self.0.to_string()))
    }
}

/// Makes the viewport `width` × `height` CSS pixels (a phone's is
/// `mobile`: the page's `<meta name="viewport">` applies).
async fn viewport(browser: &Browser, width: u64, height: u64) {
    let cmd = Cdp(json!({
        "cmd": "Emulation.setDeviceMetricsOverride",
        "params": { "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600 },
    }));
    if let Err(e) = browser.client.issue_cmd(cmd).await {
        panic!("cannot set a {width}×{height} viewport: {e}");
    }
}

/// What the layout check measures on a page.
const MEASURE: &str = "
    const d = document.documentElement, w = window.innerWidth;
    const wide = [...document.querySelectorAll('body *')]
      .filter(e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.right > w + 0.5; })
      .slice(0, 5)
      .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className ? '.' + e.className : '')
                + ' (right edge ' + Math.round(e.getBoundingClientRect().right) + ')');
    return [d.scrollWidth, w, Math.max(d.scrollHeight, document.body.scrollHeight), wide];";

/// Asserts the page on screen is no wider than the viewport, and saves a
/// screenshot of all of it as `target/e2e/layout/<width>-<name>.png`.
async fn fits(s: &Steps<'_>, width: u64, height: u64, name: &str) {
    let step = format!("layout/{width}-{name}");
    let measured = match s.browser.client.execute(MEASURE, vec![]).await {
        Ok(v) => v,
        Err(e) => {
            s.fail(&step, &format!("cannot measure the page: {e}"))
                .await
        }
    };
    let (scroll, inner) = (measured[0].as_u64().unwrap(), measured[1].as_u64().unwrap());
    assert_eq!(inner, width, "{step}: the viewport is not {width} px wide");
    if scroll > inner {
        s.fail(
            &step,
            &format!(
                "the page is {scroll} px wide in a {inner} px window; too wide: {}",
                measured[3]
            ),
        )
        .await;
    }
    // The whole page in one picture: the viewport as tall as the page.
    let full = measured[2].as_u64().unwrap_or(height).clamp(height, 12_000);
    viewport(s.browser, width, full).await;
    let png = s.browser.client.screenshot().await;
    viewport(s.browser, width, height).await;
    let png = png.unwrap_or_else(|e| panic!("screenshot of {step}: {e}"));
    let path = artifacts_dir().join(format!("{step}.png"));
    std::fs::write(&path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// Every kind of page at a phone's width (375 px) and a desktop's (1280
/// px): none is wider than the window (nothing scrolls sideways), and on
/// a phone the front page shows the header's "Subscribe" and the sign-up
/// form's address field in its first screen. Screenshots of every page
/// are kept in `target/e2e/layout/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_fits_a_phone_and_a_desktop() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    std::fs::create_dir_all(artifacts_dir().join("layout")).unwrap();
    let site = digest_site("file:outbox");
    let date = (chrono::Utc::now() - chrono::Duration::days(1)).format("%Y-%m-%dT%H:%M:%SZ");
    site.write_story(
        "pictured",
        &format!(
            "title = \"Vatten, avfall och partnerskap: en ovanligt lång rubrik om samarbete över kontinenterna\"\n\
             date = {date}\nthemes = [\"alpha\", \"beta\"]\n\
             summary = \"En sammanfattning med ett långt ord: kommunalförbundssamverkansavtalsförhandlingarna.\"\n\
             image = \"https://example.org/news/img/well.jpg\"\n\
             image_alt = \"Två personer vid en brunn\""
        ),
        "Body.\n",
    );
    recent(&site, "a1", "Alpha one", 2, &["alpha"]);
    recent(&site, "g1", "Gamma one", 3, &["gamma"]);
    let port = free_port();
    let config = std::fs::read_to_string(site.config_path()).unwrap();
    std::fs::write(
        site.config_path(),
        format!(
            "{config}\n[http]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}/\"\n"
        ),
    )
    .unwrap();
    ok(tidings(&site, &["build"]));
    let email = "ann.with.a.rather.long.address@example.org";
    ok(tidings(
        &site,
        &[
            "subscribers",
            "add",
            email,
            "--themes",
            "alpha",
            "--confirmed",
        ],
    ));
    ok(tidings(&site, &["digest", "send"]));
    let id = crate::support::subscriber(&site, email).await.unwrap().id;
    let signer = tidings::links::tokens::Signer::new(SECRET.as_bytes());
    let link = |purpose, kind: &str| {
        format!(
            "/{kind}/{}",
            signer.sign(purpose, id, email, chrono::Utc::now())
        )
    };
    use tidings::links::tokens::Purpose;
    let pages = [
        ("index", "/".to_owned()),
        ("index-en", "/?lang=en".into()),
        ("theme", "/themes/alpha/".into()),
        ("archive", "/archive/".into()),
        ("digest-archive", "/archive/monthly/".into()),
        ("edition", "/archive/monthly/1".into()),
        ("subscribe", "/subscribe".into()),
        ("confirm", link(Purpose::Confirm, "confirm")),
        ("preferences", link(Purpose::Preferences, "preferences")),
        ("unsubscribe", link(Purpose::Unsubscribe, "unsubscribe")),
        ("leave", "/unsubscribe".into()),
        ("bad-link", "/confirm/not-a-token".into()),
        ("not-found", "/no/such/page".into()),
    ];
    let service = site.serve(&[("TIDINGS_SECRET", SECRET)]);
    let s = Steps {
        browser: &browser,
        service: &service,
    };
    for (width, height) in [(375, 812), (1280, 900)] {
        viewport(&browser, width, height).await;
        for (name, path) in &pages {
            let step = format!("layout/{width}-{name}");
            s.goto(&step, &service.url(path)).await;
            s.find(&step, "main h1").await;
            fits(&s, width, height, name).await;
        }
        // The answers to a posted form: "check your inbox", and the form
        // again with its problems.
        let step = format!("layout/{width}-check-inbox");
        s.goto(&step, &service.url("/subscribe")).await;
        let field = s.find(&step, "form#subscribe #email").await;
        field
            .send_keys(&format!("visitor-{width}@example.org"))
            .await
            .unwrap();
        s.tick(&step, "form#subscribe input[name=themes][value=beta]", true)
            .await;
        s.click(&step, "form#subscribe button[type=submit]").await;
        s.find(&step, "#check-inbox").await;
        fits(&s, width, height, "check-inbox").await;
        let step = format!("layout/{width}-form-errors");
        s.goto(&step, &service.url("/subscribe")).await;
        s.click(&step, "form#subscribe button[type=submit]").await;
        s.find(&step, "#form-errors").await;
        fits(&s, width, height, "form-errors").await;
    }

    // On a phone, the front page's first screen offers the sign-up.
    viewport(&browser, 375, 812).await;
    s.goto("layout/375-first-screen", &service.url("/")).await;
    s.find("layout/375-first-screen", "form#subscribe").await;
    let at = browser
        .client
        .execute(
            "const b = s => document.querySelector(s).getBoundingClientRect().bottom;
             return [b('header a.subscribe'), b('form#subscribe #email'), window.innerHeight];",
            vec![],
        )
        .await
        .expect("measure the front page");
    let (link, field, screen) = (
        at[0].as_f64().unwrap(),
        at[1].as_f64().unwrap(),
        at[2].as_f64().unwrap(),
    );
    assert!(
        link <= screen && field <= screen,
        "on a 375×812 phone the header's Subscribe ends at {link} px and the form's address \
         field at {field} px: both should be within the first {screen} px"
    );

    browser.close().await;
    let (code, log) = service.stop();
    assert_eq!(code, 0, "tidings run did not exit cleanly:\n{log}");
}
