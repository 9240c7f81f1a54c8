//! WebSub: every feed announces its hubs (in the feed and in `Link`
//! headers); ingest pings external hubs (a real HTTP server on loopback
//! plays the hub, failing first); and the built-in hub verifies a
//! subscriber's intent, pushes each changed feed signed with the
//! subscriber's secret, ends subscriptions on request and at the end of
//! their lease, and drops a callback that keeps failing. The subscriber is
//! a real HTTP server on loopback too ([`Upstream`] echoing the challenge).

use std::time::Duration;

use hmac::{Hmac, Mac as _};
use reqwest::StatusCode;
use sha2::Sha256;
use tidings::store::Store;

use crate::support::{
    FIXTURE_CONFIG, Reply, Site, TOKEN, Upstream, eventually, feedparser, raw_client, recent,
};

/// The fixture's feed of the whole site, in Atom: a topic.
const TOPIC: &str = "https://example.org/news/feeds/atom.xml";
/// Where the built-in hub is announced.
const BUILTIN_HUB: &str = "https://example.org/news/websub";
/// The subscriber's callback path on the [`Upstream`].
const CALLBACK: &str = "/push";
const SECRET: &str = "a subscriber's secret";

/// The fixture site with these `[feeds]` keys added, its ingest left to
/// the test (the CMS hook, with [`TOKEN`]).
fn site(websub: &str) -> Site {
    let config = FIXTURE_CONFIG.replace(
        "full_content = true\n",
        &format!("full_content = true\n{websub}\n"),
    );
    let site = Site::with_config(&format!("{config}\n[schedule]\ningest = \"0 0 1 1 *\"\n"));
    recent(&site, "first", "The first story", 2, &["alpha"]);
    site
}

/// `tidings run` with short WebSub pauses and the hook's token.
fn serve(site: &Site) -> crate::support::Service {
    site.serve(&[
        ("TIDINGS_API_TOKEN", TOKEN),
        ("TIDINGS_WEBSUB_BACKOFF_MS", "50"),
    ])
}

async fn ingest(service: &crate::support::Service) {
    let r = raw_client()
        .post(service.url("/api/ingest"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// A form field's values, in order.
fn fields(body: &[u8], name: &str) -> Vec<String> {
    url::form_urlencoded::parse(body)
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .collect()
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[test]
fn every_feed_announces_its_hubs() {
    // An external hub that refuses connections at once: `build` pings it
    // once, fails, and still succeeds.
    let site = site(r#"websub_hubs = ["http://127.0.0.1:9/hub", "builtin"]"#);
    site.build();
    let hubs = ["http://127.0.0.1:9/hub", BUILTIN_HUB];
    for rel in [
        "rss.xml",
        "atom.xml",
        "themes/alpha/rss.xml",
        "themes/alpha/atom.xml",
    ] {
        let feed = site.feed(rel);
        let announced: Vec<&str> = feed
            .links
            .iter()
            .filter(|l| l.rel.as_deref() == Some("hub"))
            .map(|l| l.href.as_str())
            .collect();
        assert_eq!(announced, hubs, "{rel}");
        let own = feed.links.iter().find(|l| l.rel.as_deref() == Some("self"));
        let want = format!("https://example.org/news/feeds/{rel}");
        assert_eq!(own.map(|l| l.href.as_str()), Some(want.as_str()), "{rel}");
    }
    for rel in ["feed.json", "themes/beta/feed.json"] {
        let json: serde_json::Value = serde_json::from_slice(&site.feed_bytes(rel)).unwrap();
        assert_eq!(
            json["hubs"],
            serde_json::json!([
                { "type": "WebSub", "url": hubs[0] },
                { "type": "WebSub", "url": hubs[1] },
            ]),
            "{rel}"
        );
    }
    let paths: Vec<_> = ["rss.xml", "atom.xml"]
        .iter()
        .map(|rel| site.path(&format!("feeds/{rel}")))
        .collect();
    if let Some(report) = feedparser(&paths) {
        for path in &paths {
            let seen = &report[path.to_str().unwrap()];
            assert_eq!(seen["bozo"], 0, "{seen}");
            assert_eq!(seen["hubs"], serde_json::json!(hubs), "{seen}");
        }
    }
}

#[test]
fn without_hubs_the_feeds_announce_none() {
    let site = site("");
    site.build();
    assert!(
        !String::from_utf8(site.feed_bytes("rss.xml"))
            .unwrap()
            .contains("rel=\"hub\"")
    );
    let json: serde_json::Value = serde_json::from_slice(&site.feed_bytes("feed.json")).unwrap();
    assert!(json.get("hubs").is_none());
}

#[test]
fn hubs_that_are_not_urls_are_named_in_the_error() {
    let site = site(r#"websub_hubs = ["builtin", "hub.example.net", "builtin"]"#);
    let run = site.tidings(&["check"]);
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stderr.contains("`feeds.websub_hubs[1]`"), "{run}");
    assert!(
        run.stderr
            .contains("\"builtin\" or an absolute http(s) URL"),
        "{run}"
    );
    assert!(run.stderr.contains("`feeds.websub_hubs[2]`"), "{run}");
    assert!(run.stderr.contains("listed twice"), "{run}");
}

#[tokio::test]
async fn feeds_are_served_with_link_headers() {
    let site = site(r#"websub_hubs = ["builtin"]"#);
    let service = serve(&site);
    let r = raw_client()
        .get(service.url("/feeds/themes/alpha/feed.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["link"],
        format!(
            "<{BUILTIN_HUB}>; rel=\"hub\", \
             <https://example.org/news/feeds/themes/alpha/feed.json>; rel=\"self\""
        )
        .as_str()
    );
}

#[tokio::test]
async fn ingest_pings_the_hubs_and_tries_again() {
    let hub = Upstream::start();
    // The first hub fails twice, then takes the ping; the second at once.
    hub.set_sequence(
        "/flaky",
        vec![Reply::status(503), Reply::status(500), Reply::status(204)],
    );
    hub.set("/steady", Reply::status(204));
    let site = site(&format!(
        "websub_hubs = [\"{}\", \"{}\"]",
        hub.url("/flaky"),
        hub.url("/steady")
    ));
    let service = serve(&site);
    // The service's first build wrote every feed.
    eventually("both hubs hear of the first build", || async {
        hub.request_count("/flaky") >= 3 && hub.request_count("/steady") >= 1
    })
    .await;
    let pings = hub.requests("/steady");
    assert_eq!(pings[0].method, "POST");
    assert_eq!(
        pings[0].header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(fields(&pings[0].body, "hub.mode"), ["publish"]);
    let urls = fields(&pings[0].body, "hub.url");
    assert_eq!(urls.len(), 12, "{urls:?}");
    assert!(urls.contains(&TOPIC.to_owned()), "{urls:?}");
    let flaky = hub.requests("/flaky");
    assert_eq!(flaky.len(), 3, "no more pings once one took");
    assert!(flaky.iter().all(|p| p.body == pings[0].body));
    assert!(service.wait_for_log("websub: cannot ping the hub", 5));

    // A story in one theme: the site's feeds and that theme's change.
    hub.clear_requests();
    recent(&site, "second", "The second story", 1, &["beta"]);
    ingest(&service).await;
    eventually("the hub hears of the new story", || async {
        hub.request_count("/steady") >= 1
    })
    .await;
    // Only the files the build rewrote (an empty theme's feeds show the
    // site's newest time, so they change too; alpha's do not).
    let urls = fields(&hub.requests("/steady")[0].body, "hub.url");
    for dir in ["", "themes/beta/"] {
        for f in ["atom.xml", "feed.json", "rss.xml"] {
            let url = format!("https://example.org/news/feeds/{dir}{f}");
            assert!(urls.contains(&url), "{url} not in {urls:?}");
        }
    }
    assert!(!urls.iter().any(|u| u.contains("/alpha/")), "{urls:?}");
    // Nothing changed, nothing pinged.
    hub.clear_requests();
    ingest(&service).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(hub.request_count("/steady"), 0);
}

/// A subscription request to the service's hub.
async fn hub_request(
    service: &crate::support::Service,
    fields: &[(&str, &str)],
) -> (StatusCode, String) {
    let r = raw_client()
        .post(service.url("/websub"))
        .form(fields)
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

async fn subscribe(service: &crate::support::Service, callback: &str, lease: &str) {
    let (status, text) = hub_request(
        service,
        &[
            ("hub.mode", "subscribe"),
            ("hub.topic", TOPIC),
            ("hub.callback", callback),
            ("hub.lease_seconds", lease),
            ("hub.secret", SECRET),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{text}");
}

async fn store(site: &Site) -> Store {
    Store::open(&site.storage_url()).await.unwrap()
}

/// A loopback subscriber at [`CALLBACK`] that confirms its intent (echoes
/// the challenge of a GET) and takes every distribution (a POST) with 200.
fn subscriber() -> Upstream {
    let s = Upstream::start();
    s.set(CALLBACK, Reply::status(200).echo("hub.challenge"));
    s
}

fn posts(s: &Upstream) -> Vec<crate::support::upstream::Request> {
    s.requests(CALLBACK)
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect()
}

fn gets(s: &Upstream) -> Vec<crate::support::upstream::Request> {
    s.requests(CALLBACK)
        .into_iter()
        .filter(|r| r.method == "GET")
        .collect()
}

const BUILTIN: &str = "websub_hubs = [\"builtin\"]\nwebsub_allow_private_callbacks = true\nwebsub_min_lease_seconds = 1";

#[tokio::test]
async fn the_builtin_hub_verifies_pushes_signed_feeds_and_unsubscribes() {
    let site = site(BUILTIN);
    let service = serve(&site);
    let s = subscriber();
    let callback = s.url(&format!("{CALLBACK}?reader=7"));

    subscribe(&service, &callback, "3600").await;
    eventually("the hub verifies the intent", || async {
        service.log().contains("websub: intent verified")
    })
    .await;
    let check = &gets(&s)[0];
    assert_eq!(
        check.query_value("reader"),
        Some("7"),
        "the callback's own query stays"
    );
    assert_eq!(check.query_value("hub.mode"), Some("subscribe"));
    assert_eq!(check.query_value("hub.topic"), Some(TOPIC));
    assert_eq!(check.query_value("hub.lease_seconds"), Some("3600"));
    assert!(
        check
            .query_value("hub.challenge")
            .is_some_and(|c| c.len() >= 32)
    );
    let active = store(&site)
        .await
        .websub_active(chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].callback, callback);

    // A new story: the feed is pushed, signed with the secret.
    recent(&site, "second", "The pushed story", 1, &["beta"]);
    ingest(&service).await;
    eventually("the feed reaches the subscriber", || async {
        !posts(&s).is_empty()
    })
    .await;
    let push = &posts(&s)[0];
    assert_eq!(push.query_value("reader"), Some("7"));
    assert_eq!(
        push.header("content-type"),
        Some("application/atom+xml; charset=utf-8")
    );
    assert_eq!(
        push.header("link"),
        Some(format!("<{BUILTIN_HUB}>; rel=\"hub\", <{TOPIC}>; rel=\"self\"").as_str())
    );
    assert_eq!(push.body, site.feed_bytes("atom.xml"));
    assert!(String::from_utf8_lossy(&push.body).contains("The pushed story"));
    let signature = push
        .header("x-hub-signature")
        .expect("a signed distribution");
    assert_eq!(
        signature,
        format!("sha256={}", hmac_hex(SECRET, &push.body))
    );
    assert!(store(&site).await.websub_owed().await.unwrap().is_empty());

    // Unsubscribing is verified too; then nothing more arrives.
    let (status, text) = hub_request(
        &service,
        &[
            ("hub.mode", "unsubscribe"),
            ("hub.topic", TOPIC),
            ("hub.callback", &callback),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{text}");
    eventually("the unsubscription is verified", || async {
        gets(&s)
            .iter()
            .any(|g| g.query_value("hub.mode") == Some("unsubscribe"))
            && store(&site)
                .await
                .websub_active(chrono::Utc::now())
                .await
                .unwrap()
                .is_empty()
    })
    .await;
    let before = posts(&s).len();
    recent(&site, "third", "After leaving", 0, &["beta"]);
    ingest(&service).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(posts(&s).len(), before);
}

#[tokio::test]
async fn a_callback_that_does_not_echo_the_challenge_is_not_subscribed() {
    let site = site(BUILTIN);
    let service = serve(&site);
    let s = Upstream::start();
    s.set(CALLBACK, Reply::ok("text/plain", "not the challenge"));
    subscribe(&service, &s.url(CALLBACK), "3600").await;
    eventually("the hub gives up on the intent", || async {
        service.log().contains("websub: intent not verified")
    })
    .await;
    assert!(
        store(&site)
            .await
            .websub_active(chrono::Utc::now())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn bad_requests_are_refused_with_the_reason() {
    let site = site("websub_hubs = [\"builtin\"]");
    let service = serve(&site);
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("hub.mode", "subscribe"), ("hub.topic", TOPIC)],
            "hub.callback is missing",
        ),
        (
            &[
                ("hub.mode", "subscribe"),
                ("hub.topic", "https://elsewhere.example/feed"),
                ("hub.callback", "https://reader.example.net/cb"),
            ],
            "not a feed of this site",
        ),
        (
            &[
                ("hub.mode", "subscribe"),
                ("hub.topic", TOPIC),
                ("hub.callback", "ftp://x.example/"),
            ],
            "not an http(s) URL",
        ),
        (
            // Loopback, refused unless the config allows private callbacks.
            &[
                ("hub.mode", "subscribe"),
                ("hub.topic", TOPIC),
                ("hub.callback", "http://127.0.0.1:9/cb"),
            ],
            "loopback, private or local",
        ),
        (
            &[
                ("hub.mode", "subscribe"),
                ("hub.topic", TOPIC),
                ("hub.callback", "http://[::1]:9/cb"),
            ],
            "loopback, private or local",
        ),
        (
            &[("hub.mode", "publish"), ("hub.url", TOPIC)],
            "learns of changes by itself",
        ),
    ];
    for (form, reason) in cases {
        let (status, text) = hub_request(&service, form).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{form:?}: {text}");
        assert!(text.contains(reason), "{form:?}: {text}");
    }
    let long = "s".repeat(200);
    let (status, text) = hub_request(
        &service,
        &[
            ("hub.mode", "subscribe"),
            ("hub.topic", TOPIC),
            ("hub.callback", "https://reader.example.net/cb"),
            ("hub.secret", &long),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text.contains("shorter than 200 bytes"), "{text}");
}

#[tokio::test]
async fn a_lease_that_ran_out_gets_nothing_and_is_removed() {
    let site = site(BUILTIN);
    let service = serve(&site);
    let s = subscriber();
    subscribe(&service, &s.url(CALLBACK), "1").await;
    eventually("the hub verifies the intent", || async {
        service.log().contains("websub: intent verified")
    })
    .await;
    assert_eq!(gets(&s)[0].query_value("hub.lease_seconds"), Some("1"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    recent(&site, "second", "Too late", 1, &["beta"]);
    ingest(&service).await;
    eventually("the expired subscription is removed", || async {
        service.log().contains("expired=1")
    })
    .await;
    assert!(posts(&s).is_empty());
    assert!(
        store(&site)
            .await
            .websub_active(chrono::Utc::now() - chrono::Duration::days(1))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_failing_callback_is_tried_again_then_dropped() {
    let site = site(BUILTIN);
    let service = serve(&site);
    // Confirms its intent, then answers every distribution with 500.
    let s = subscriber();
    subscribe(&service, &s.url(CALLBACK), "3600").await;
    eventually("the hub verifies the intent", || async {
        service.log().contains("websub: intent verified")
    })
    .await;
    s.set(CALLBACK, Reply::status(500));
    recent(&site, "second", "Never taken", 1, &["beta"]);
    ingest(&service).await;
    eventually("the subscription is dropped", || async {
        service
            .log()
            .contains("websub: subscription dropped after failed deliveries")
    })
    .await;
    assert_eq!(posts(&s).len(), 6, "tried six times");
    assert!(
        service
            .log()
            .contains("websub: delivery failed; trying again")
    );
    let st = store(&site).await;
    assert!(
        st.websub_active(chrono::Utc::now())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(st.websub_owed().await.unwrap().is_empty());
    recent(&site, "third", "Still nothing", 0, &["beta"]);
    ingest(&service).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(posts(&s).len(), 6);
}

#[tokio::test]
async fn a_callback_host_holds_a_limited_number_of_subscriptions() {
    let site = site(&format!("{BUILTIN}\nwebsub_max_subscriptions_per_host = 1"));
    let service = serve(&site);
    let s = subscriber();
    subscribe(&service, &s.url(CALLBACK), "3600").await;
    eventually("the hub verifies the intent", || async {
        service.log().contains("websub: intent verified")
    })
    .await;
    // Another callback on the same host: over the limit.
    let (status, text) = hub_request(
        &service,
        &[
            ("hub.mode", "subscribe"),
            ("hub.topic", TOPIC),
            ("hub.callback", &s.url("/another")),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{text}");
    assert!(text.contains("holds 1 subscriptions"), "{text}");
    // Renewing the one it holds is not a new one.
    subscribe(&service, &s.url(CALLBACK), "7200").await;
    eventually("the renewal is verified", || async { gets(&s).len() == 2 }).await;
    eventually("the lease is renewed", || async {
        let active = store(&site)
            .await
            .websub_active(chrono::Utc::now())
            .await
            .unwrap();
        active.len() == 1 && active[0].lease_seconds == 7200
    })
    .await;
    let metrics = raw_client()
        .get(service.metrics_url())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("\ntidings_websub_subscriptions 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\ntidings_websub_distributions_owed 0\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn what_a_build_owes_while_the_service_is_down_is_sent_when_it_starts() {
    let site = site(BUILTIN);
    let service = serve(&site);
    let s = subscriber();
    subscribe(&service, &s.url(CALLBACK), "3600").await;
    eventually("the hub verifies the intent", || async {
        service.log().contains("websub: intent verified")
    })
    .await;
    let (code, log) = service.stop();
    assert_eq!(code, 0, "{log}");

    // `tidings build` writes the feed and notes what is owed in the store.
    recent(
        &site,
        "second",
        "Written while the service was down",
        1,
        &["beta"],
    );
    site.build();
    let owed = store(&site).await.websub_owed().await.unwrap();
    assert_eq!(owed.len(), 1, "{owed:?}");
    assert_eq!(owed[0].topic, TOPIC);
    assert!(posts(&s).is_empty());

    let status = crate::support::ok(site.tidings(&["status"]));
    assert!(
        status
            .stdout
            .contains("websub (built-in hub): 1 live subscriptions, 1 distributions owed"),
        "{status}"
    );
    assert!(
        status
            .stdout
            .contains(&format!("websub hubs: {BUILTIN_HUB}")),
        "{status}"
    );

    let service = serve(&site);
    eventually("the owed feed is delivered", || async {
        !posts(&s).is_empty()
    })
    .await;
    assert!(
        String::from_utf8_lossy(&posts(&s)[0].body).contains("Written while the service was down")
    );
    eventually("nothing is owed any more", || async {
        store(&site).await.websub_owed().await.unwrap().is_empty()
    })
    .await;
    drop(service);
}
