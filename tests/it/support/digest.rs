//! A site that sends digests: its config, its subscribers, when its
//! digest is due, and the mail it wrote, read back as MIME with
//! mail-parser.

use std::collections::BTreeMap;

use chrono::{Duration as ChronoDuration, Timelike, Utc};
use mail_parser::{MessageParser, MimeHeaders};

use super::site::{FIXTURE_CONFIG, Site, ok, recent};

/// The fixture site with a monthly digest, mail written to `outbox/`.
pub fn digest_site(transport: &str) -> Site {
    let config = format!(
        "{FIXTURE_CONFIG}
[mail]
from = \"Fixture news <news@example.org>\"
transport = \"{transport}\"
organization = \"Fixture Org, Box 1, 111 11 Stockholm\"
rate_limit = 0

[[digests]]
id = \"monthly\"
title = {{ sv = \"Månadsbrev\", en = \"Monthly letter\" }}
subject = {{ sv = \"Nytt {{{{ period }}}}\", en = \"News {{{{ period }}}}\" }}
"
    );
    Site::with_config(&config)
}

/// `digest_site` with the digest on `schedule` (cron, 6 fields allowed)
/// and `extra_mail` lines added to `[mail]`.
pub fn scheduled_site(transport: &str, schedule: &str, extra_mail: &str) -> Site {
    let site = digest_site(transport);
    let config = std::fs::read_to_string(site.config_path()).unwrap();
    let config = config
        .replace(
            "id = \"monthly\"\n",
            &format!("id = \"monthly\"\nschedule = \"{schedule}\"\n"),
        )
        .replace("rate_limit = 0", &format!("rate_limit = 0\n{extra_mail}"));
    site.write_config(&config);
    site
}

/// Adds a confirmed subscriber through the CLI.
pub fn subscribe(site: &Site, email: &str, themes: &str) {
    ok(site.tidings(&[
        "subscribers",
        "add",
        email,
        "--themes",
        themes,
        "--confirmed",
    ]));
}

/// One received message, parsed.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub message_id: String,
    pub html: String,
    pub text: String,
    pub headers: BTreeMap<String, String>,
}

/// Parses raw messages with mail-parser.
pub fn parse_all(raw: impl IntoIterator<Item = Vec<u8>>) -> Vec<Mail> {
    raw.into_iter()
        .map(|bytes| {
            // RFC 5322: no line longer than 998 characters, CRLF line ends.
            for line in bytes.split(|&b| b == b'\n') {
                assert!(line.len() <= 999, "a line of {} bytes", line.len());
                assert!(
                    line.is_empty() || line.ends_with(b"\r"),
                    "bare LF line ending"
                );
            }
            let m = MessageParser::default()
                .parse(&bytes)
                .expect("a MIME message");
            let to = m
                .to()
                .and_then(|a| a.first())
                .and_then(|a| a.address())
                .unwrap()
                .to_owned();
            let headers = m
                .headers()
                .iter()
                .map(|h| {
                    let value = String::from_utf8_lossy(
                        &bytes[h.offset_start() as usize..h.offset_end() as usize],
                    )
                    .trim()
                    .replace("\r\n", "");
                    (h.name().to_ascii_lowercase(), value)
                })
                .collect();
            assert_eq!(m.text_body_count(), 1, "one text part");
            assert_eq!(m.html_body_count(), 1, "one HTML part");
            for part in [m.text_part(0).unwrap(), m.html_part(0).unwrap()] {
                let ct = part.content_type().unwrap();
                assert_eq!(
                    ct.attribute("charset")
                        .map(|c| c.to_ascii_lowercase())
                        .as_deref(),
                    Some("utf-8")
                );
            }
            Mail {
                to,
                subject: m.subject().unwrap_or_default().to_owned(),
                message_id: m.message_id().unwrap_or_default().to_owned(),
                html: m.body_html(0).unwrap().into_owned(),
                text: m.body_text(0).unwrap().into_owned(),
                headers,
            }
        })
        .collect()
}

/// Every message written to the site's outbox, by recipient.
pub fn outbox(site: &Site) -> BTreeMap<String, Vec<Mail>> {
    let mut raw = Vec::new();
    if let Ok(dir) = std::fs::read_dir(site.path("outbox")) {
        for entry in dir {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "eml") {
                raw.push(std::fs::read(path).unwrap());
            }
        }
    }
    let mut out: BTreeMap<String, Vec<Mail>> = BTreeMap::new();
    for m in parse_all(raw) {
        out.entry(m.to.clone()).or_default().push(m);
    }
    out
}

/// A 6-field cron expression for the one second `secs` from now, in the
/// fixture's time zone (Europe/Stockholm): a tick that fires once while
/// the instances run.
pub fn once_in(secs: i64) -> String {
    let at = (Utc::now() + ChronoDuration::seconds(secs))
        .with_timezone(&"Europe/Stockholm".parse::<chrono_tz::Tz>().unwrap());
    format!(
        "{} {} {} {} {} *",
        at.second(),
        at.minute(),
        at.hour(),
        chrono::Datelike::day(&at),
        chrono::Datelike::month(&at)
    )
}

/// Records that the digest job last ran an hour ago, so the instances
/// owe the coming tick even if they start after it (a first start owes
/// nothing).
pub fn ran_an_hour_ago(site: &Site) {
    let hour_ago = (Utc::now() - ChronoDuration::hours(1)).to_rfc3339();
    site.sql(&[&format!(
        "INSERT INTO jobs (name, last_tick) VALUES ('digest:monthly', '{hour_ago}')"
    )]);
}

/// Imports `n` confirmed subscribers to `alpha` through the CLI.
pub fn import(site: &Site, n: usize) {
    let csv: String = std::iter::once("email,themes,language\n".to_owned())
        .chain((0..n).map(|i| format!("p{i:05}@example.org,alpha,sv\n")))
        .collect();
    std::fs::write(site.path("people.csv"), csv).unwrap();
    ok(site.tidings(&["subscribers", "import", "people.csv", "--confirmed"]));
}

/// A digest site through `transport` whose `[bounces]` has a return path
/// (and the `bounces` lines after it), a story in `alpha`, `people`
/// subscribed to it, after one `digest send` that sent to each.
pub fn sent_bounce_site(transport: &str, bounces: &str, people: &[&str]) -> Site {
    let site = digest_site(transport);
    let config = std::fs::read_to_string(site.config_path()).unwrap();
    site.write_config(&format!(
        "{config}\n[bounces]\nreturn_path = \"bounces@example.org\"\n{bounces}\n"
    ));
    recent(&site, "a1", "Alpha one", 2, &["alpha"]);
    site.build();
    for email in people {
        subscribe(&site, email, "alpha");
    }
    let run = ok(site.tidings(&["digest", "send"]));
    assert!(
        run.stdout.contains(&format!("{} sent", people.len())),
        "{run}"
    );
    site
}

/// The envelope sender (VERP address) of the one message to `to` in the
/// outbox: the `Return-Path:` line the `file:` transport writes first.
pub fn envelope_sender(site: &Site, to: &str) -> String {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(site.path("outbox")).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        if text.contains(&format!("To: {to}\r\n")) {
            let first = text.lines().next().unwrap();
            let sender = first
                .strip_prefix("Return-Path: <")
                .and_then(|s| s.strip_suffix(">\r").or(s.strip_suffix('>')))
                .unwrap_or_else(|| panic!("no Return-Path first: {first}"));
            found.push(sender.to_owned());
        }
    }
    assert_eq!(found.len(), 1, "{found:?}");
    found.remove(0)
}
