//! `/healthz`, `/metrics` (on the metrics listener) and `POST /api/ingest`
//! on a running `tidings run`.

use std::collections::{BTreeMap, HashSet};

use reqwest::StatusCode;
use tidings::store::Store;

use crate::support::{TOKEN, ok, raw_client, sample_site_to_serve as site};

#[tokio::test]
async fn healthz_answers_ok_while_the_store_does() {
    let site = site();
    let service = site.serve(&[]);
    let r = raw_client()
        .get(service.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(r.text().await.unwrap(), "ok");
    let r = raw_client()
        .post(service.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn metrics_are_served_on_their_own_listener_only() {
    let site = site();
    let service = site.serve(&[]);
    ok(site.tidings(&[
        "subscribers",
        "add",
        "pending@example.org",
        "--themes",
        "agenda-2030",
    ]));
    let public = raw_client()
        .get(service.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), StatusCode::NOT_FOUND);
    let page = public.text().await.unwrap();
    assert!(!page.contains("tidings_subscribers"), "{page}");

    let metrics_url = service.metrics_url();
    assert_ne!(
        metrics_url,
        service.url("/metrics"),
        "a listener of its own"
    );
    let r = raw_client().get(&metrics_url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let samples = parse_exposition(&r.text().await.unwrap());
    assert_eq!(
        value(&samples, "tidings_subscribers", &[("status", "pending")]),
        1.0
    );
    // Health is asked on both; nothing else is on the metrics listener.
    let metrics_base = metrics_url.strip_suffix("/metrics").unwrap();
    for base in [service.base.as_str(), metrics_base] {
        let r = raw_client()
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{base}");
    }
    for path in ["/", "/feeds/atom.xml", "/subscribe"] {
        let r = raw_client()
            .get(format!("{metrics_base}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

/// `metrics_listen = "off"`: no metrics listener, no second line, and
/// still no `/metrics` on the public one.
#[tokio::test]
async fn metrics_can_be_turned_off() {
    use std::io::{BufRead as _, Read as _};
    let site = site();
    let config = std::fs::read_to_string(site.config_path()).unwrap();
    let config = config.replace("[http]\n", "[http]\nmetrics_listen = \"off\"\n");
    std::fs::write(site.config_path(), config).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tidings"))
        .arg("--config")
        .arg(site.config_path())
        .arg("run")
        .current_dir(site.root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let base = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{first}"))
        .trim_end_matches('/')
        .to_owned();
    let r = raw_client()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(rest, "", "nothing after the first line");
}

/// One sample line of the exposition.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the Prometheus text format 0.0.4 strictly: every line is a
/// HELP, a TYPE (once per family, before its samples) or a sample whose
/// name, labels (with escapes) and value are well formed.
fn parse_exposition(text: &str) -> Vec<Sample> {
    fn is_name(s: &str, colon: bool) -> bool {
        let mut chars = s.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':'))
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
    }
    assert!(text.ends_with('\n'), "the exposition ends with a newline");
    let mut typed = HashSet::new();
    let mut helped = HashSet::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, _help) = rest.split_once(' ').expect("HELP name text");
            assert!(is_name(name, true), "{line}");
            assert!(
                helped.insert(name.to_owned()),
                "one HELP per family: {line}"
            );
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(is_name(name, true), "{line}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            assert!(typed.insert(name.to_owned()), "one TYPE per family: {line}");
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "stray line {line:?}"
        );
        let end = line.find(['{', ' ']).expect("a name");
        let name = &line[..end];
        assert!(is_name(name, true), "bad metric name in {line}");
        assert!(typed.contains(name), "sample before its TYPE: {line}");
        let mut labels = BTreeMap::new();
        let mut rest = &line[end..];
        if let Some(mut inner) = rest.strip_prefix('{') {
            loop {
                if let Some(after) = inner.strip_prefix('}') {
                    rest = after;
                    break;
                }
                let (key, after) = inner.split_once("=\"").expect("label=\"");
                assert!(is_name(key, false), "bad label name in {line}");
                let mut value = String::new();
                let mut chars = after.char_indices();
                let close = loop {
                    match chars.next().expect("unterminated label value") {
                        (_, '\\') => match chars.next().expect("escape").1 {
                            '\\' => value.push('\\'),
                            '"' => value.push('"'),
                            'n' => value.push('\n'),
                            c => panic!("bad escape \\{c} in {line}"),
                        },
                        (i, '"') => break i,
                        (_, c) => value.push(c),
                    }
                };
                assert!(labels.insert(key.to_owned(), value).is_none(), "{line}");
                inner = &after[close + 1..];
                inner = inner.strip_prefix(',').unwrap_or(inner);
            }
        }
        let value = rest.strip_prefix(' ').expect("a space before the value");
        assert!(!value.contains(' '), "no timestamps expected: {line}");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line}"));
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    assert_eq!(typed, helped, "every family has HELP and TYPE");
    samples
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let matching: Vec<&Sample> = samples
        .iter()
        .filter(|s| {
            s.name == name
                && s.labels.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect();
    assert_eq!(matching.len(), 1, "one sample {name}{labels:?}");
    matching[0].value
}

const ALL_THEMES: &str = "agenda-2030,miljo-och-klimat,jamstalldhet,barn-och-unga,inkludering,\
                          halsa,lokal-demokrati,migration,stadsplanering,ledarskap";

#[tokio::test]
async fn metrics_say_what_the_store_holds() {
    let site = site();
    let service = site.serve(&[]);
    ok(site.tidings(&[
        "subscribers",
        "add",
        "active@example.org",
        "--themes",
        ALL_THEMES,
        "--confirmed",
    ]));
    ok(site.tidings(&[
        "subscribers",
        "add",
        "pending@example.org",
        "--themes",
        "agenda-2030",
    ]));
    // One edition, delivered (to the outbox) to the one active subscriber.
    ok(site.tidings(&["digest", "send"]));

    let r = raw_client()
        .get(service.metrics_url())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert_eq!(r.headers()["cache-control"], "no-store");
    let text = r.text().await.unwrap();
    let samples = parse_exposition(&text);

    let store = Store::open(&site.storage_url()).await.unwrap();
    let (published, withdrawn) = store.story_counts().await.unwrap();
    assert!(published > 0);
    let v = |name: &str, labels: &[(&str, &str)]| value(&samples, name, labels);
    assert_eq!(
        v(
            "tidings_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    assert_eq!(
        v("tidings_stories", &[("state", "published")]),
        published as f64
    );
    assert_eq!(
        v("tidings_stories", &[("state", "withdrawn")]),
        withdrawn as f64
    );
    for (status, n) in store.subscriber_counts().await.unwrap() {
        assert_eq!(
            v("tidings_subscribers", &[("status", status.as_str())]),
            n as f64,
            "{text}"
        );
    }
    assert_eq!(v("tidings_subscribers", &[("status", "active")]), 1.0);
    assert_eq!(v("tidings_subscribers", &[("status", "pending")]), 1.0);
    assert_eq!(v("tidings_subscribers", &[("status", "bounced")]), 0.0);
    let d = store.delivery_totals().await.unwrap();
    for (state, n) in [
        ("pending", d.pending),
        ("sending", d.sending),
        ("sent", d.sent),
        ("failed", d.failed),
        ("skipped", d.skipped),
    ] {
        assert_eq!(v("tidings_deliveries", &[("state", state)]), n as f64);
    }
    assert_eq!(v("tidings_deliveries", &[("state", "sent")]), 1.0, "{text}");
    assert_eq!(v("tidings_editions_total", &[("digest", "monthly")]), 1.0);

    // The latest edition, and what came back about it: nothing yet, then a
    // complaint recorded (as `bounces import` records one).
    let edition = store.editions("monthly", 1).await.unwrap()[0].id;
    let e = edition.to_string();
    let last = |kind: &'static str| {
        [
            ("digest", "monthly"),
            ("edition", e.as_str()),
            ("kind", kind),
        ]
    };
    assert_eq!(
        v(
            "tidings_last_edition_sent",
            &[("digest", "monthly"), ("edition", &e)]
        ),
        1.0
    );
    assert_eq!(v("tidings_last_edition_bounces", &last("complaint")), 0.0);
    let active = store
        .subscriber("active@example.org")
        .await
        .unwrap()
        .unwrap();
    let event = tidings::store::bounces::NewBounce {
        received_at: chrono::Utc::now(),
        subscriber_id: active.id,
        edition_id: edition,
        kind: tidings::model::BounceKind::Complaint,
        diagnostic: "abuse",
        report: b"Feedback-Type: abuse",
        identity: None,
    };
    let policy = tidings::store::bounces::Policy {
        soft_limit: 3,
        soft_since: chrono::Utc::now(),
    };
    store.record_bounce(&event, policy).await.unwrap();
    let again = raw_client()
        .get(service.metrics_url())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let later = parse_exposition(&again);
    assert_eq!(
        value(&later, "tidings_last_edition_bounces", &last("complaint")),
        1.0
    );
    assert_eq!(
        value(&later, "tidings_last_edition_bounces", &last("hard")),
        0.0
    );
    assert_eq!(
        value(
            &later,
            "tidings_last_edition_bounce_ratio",
            &last("complaint")
        ),
        1.0
    );

    let ingest = store
        .job("ingest")
        .await
        .unwrap()
        .expect("the start ingest");
    let success = ingest.last_success_at.unwrap().timestamp_millis() as f64 / 1000.0;
    assert_eq!(
        v(
            "tidings_job_last_success_timestamp_seconds",
            &[("job", "ingest")]
        ),
        success
    );
    let run = ingest.last_run_at.unwrap().timestamp_millis() as f64 / 1000.0;
    assert_eq!(
        v(
            "tidings_job_last_run_timestamp_seconds",
            &[("job", "ingest")]
        ),
        run
    );
    let now = chrono::Utc::now().timestamp() as f64;
    assert!((now - run).abs() < 600.0, "a recent run: {run}");
    assert_eq!(
        v(
            "tidings_job_last_result",
            &[("job", "ingest"), ("result", "ok")]
        ),
        1.0
    );
    assert_eq!(
        v(
            "tidings_job_last_result",
            &[("job", "ingest"), ("result", "failed")]
        ),
        0.0
    );
}

#[test]
fn the_exposition_parser_catches_bad_lines() {
    // The parser above is what the metrics test trusts; make sure it can fail.
    let good = "# HELP a_b x\n# TYPE a_b gauge\na_b{k=\"v\\\"w\"} 1\n";
    assert_eq!(parse_exposition(good)[0].labels["k"], "v\"w");
    for bad in [
        "# TYPE a gauge\na{k=\"v} 1\n",
        "# HELP a x\n# TYPE a gauge\na{k=\"v\"}1\n",
        "# HELP a x\n# TYPE a gauge\na 1x\n",
        "# HELP a x\na 1\n",
        "# HELP a x\n# TYPE a gauge\na{k=\"\\t\"} 1\n",
        "# HELP a x\n# TYPE a gauge\n1a 1\n",
    ] {
        let caught = std::panic::catch_unwind(|| parse_exposition(bad)).is_err();
        assert!(caught, "accepted {bad:?}");
    }
}

#[tokio::test]
async fn the_ingest_hook_needs_the_token() {
    let site = site();
    let service = site.serve(&[("TIDINGS_API_TOKEN", TOKEN)]);
    let client = raw_client();
    let url = service.url("/api/ingest");
    let date = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    site.story(
        "hook-story",
        "Published through the hook",
        &date,
        &["migration"],
    );

    let refusals = [
        None,
        Some("Bearer wrong-token".to_owned()),
        Some(format!("Bearer {TOKEN}x")),
        Some(format!("Bearer {}", &TOKEN[..TOKEN.len() - 1])),
        Some(format!("Basic {TOKEN}")),
        Some(TOKEN.to_owned()),
        Some("Bearer".to_owned()),
    ];
    for auth in &refusals {
        let mut req = client.post(&url);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
        let challenge = r.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Bearer"), "{challenge}");
    }
    // Nothing ran: the story is not in the feed yet.
    let feed = site.feed("atom.xml");
    assert!(
        !feed
            .entries
            .iter()
            .any(|e| e.title.as_ref().unwrap().content == "Published through the hook")
    );

    let r = client.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    let r = client
        .post(&url)
        .bearer_auth(TOKEN)
        .body(vec![b'x'; 65 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let r = client
        .post(&url)
        .bearer_auth(TOKEN)
        .body("{\"event\":\"publish\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", service.log());
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let figures: serde_json::Value = r.json().await.unwrap();
    let keys: Vec<&str> = figures
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    let mut expected = vec![
        "feeds_written",
        "new",
        "published",
        "skipped",
        "unchanged",
        "updated",
        "withdrawn",
    ];
    expected.sort();
    let mut keys = keys;
    keys.sort();
    assert_eq!(keys, expected);
    assert_eq!(figures["new"], 1, "{figures}");
    assert_eq!(figures["updated"], 0);
    assert_eq!(figures["withdrawn"], 0);
    assert_eq!(figures["skipped"], 0);
    assert!(figures["unchanged"].as_u64().unwrap() > 0);
    assert!(figures["feeds_written"].as_u64().unwrap() >= 3, "{figures}");
    let store = Store::open(&site.storage_url()).await.unwrap();
    assert_eq!(
        figures["published"].as_i64().unwrap(),
        store.story_counts().await.unwrap().0
    );

    // The new story is in the feeds, on disk and over HTTP.
    let body = client
        .get(service.url("/feeds/themes/migration/atom.xml"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let feed = feed_rs::parser::parse(&body[..]).unwrap();
    assert!(
        feed.entries
            .iter()
            .any(|e| e.title.as_ref().unwrap().content == "Published through the hook")
    );

    // A second call with nothing new changes nothing.
    let r = client.post(&url).bearer_auth(TOKEN).send().await.unwrap();
    let figures: serde_json::Value = r.json().await.unwrap();
    assert_eq!(figures["new"], 0);
    assert_eq!(figures["feeds_written"], 0, "{figures}");
}

#[tokio::test]
async fn without_a_configured_token_the_hook_refuses_everyone() {
    let site = site();
    let service = site.serve(&[("TIDINGS_API_TOKEN", "")]);
    for token in ["", "anything", TOKEN] {
        let r = raw_client()
            .post(service.url("/api/ingest"))
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{token:?}");
        assert!(r.headers().contains_key("www-authenticate"));
    }
}

#[tokio::test]
async fn a_failed_ingest_answers_500_without_internals() {
    let site = site();
    let service = site.serve(&[("TIDINGS_API_TOKEN", TOKEN)]);
    // A file where a theme's folder must be: the feeds cannot be written.
    let theme_dir = site.path("feeds/themes/migration");
    std::fs::remove_dir_all(&theme_dir).unwrap();
    std::fs::write(&theme_dir, "in the way").unwrap();
    let date = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    site.story("blocked", "Blocked story", &date, &["migration"]);

    let r = raw_client()
        .post(service.url("/api/ingest"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({ "error": "ingest failed; see the service log" })
    );
    assert!(
        service.wait_for_log("ingest failed", 5),
        "{}",
        service.log()
    );

    let text = raw_client()
        .get(service.metrics_url())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let samples = parse_exposition(&text);
    let last = |result| {
        value(
            &samples,
            "tidings_job_last_result",
            &[("job", "ingest"), ("result", result)],
        )
    };
    assert_eq!(last("failed"), 1.0, "{text}");
    assert_eq!(last("ok"), 0.0);
}
