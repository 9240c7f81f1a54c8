//! Sign-up, confirmation, preferences and unsubscribe through a running
//! `tidings run`: the happy path with the confirmation email read back
//! from a real SMTP server, GETs that change nothing, tampered, misused
//! and expired links, CSRF, the honeypot, rate limits, one answer for
//! every address, validation, RFC 8058 one-click unsubscribe, body limits,
//! and an unsubscribe that holds for an edition already frozen.

use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::{Client, StatusCode};
use tidings::links::tokens::{Purpose, Signer};
use tidings::model::Status;

use crate::support::{
    Mail, Page, SECRET, Service, Site, SmtpServer, behind_proxy, client, eventually, free_port,
    get, ok, outbox, serve, sql, status, subscribe, subscriber, web_site,
};

fn signer() -> Signer {
    Signer::new(SECRET.as_bytes())
}

fn token(purpose: Purpose, id: i64, email: &str) -> String {
    signer().sign(purpose, id, &email.to_lowercase(), Utc::now())
}

/// Opens `/` with `c` (which keeps the CSRF cookie) and returns the form
/// token.
async fn form_token(c: &Client, service: &Service) -> String {
    let page = get(c, &service.url("/")).await;
    assert_eq!(page.status, StatusCode::OK);
    page.csrf()
}

/// Posts the sign-up form as a browser would.
async fn sign_up(
    c: &Client,
    service: &Service,
    fields: &[(&str, &str)],
    client_ip: Option<&str>,
) -> Page {
    let csrf = form_token(c, service).await;
    let mut form: Vec<(&str, &str)> = vec![("csrf", &csrf)];
    form.extend_from_slice(fields);
    let mut req = c.post(service.url("/subscribe")).form(&form);
    if let Some(ip) = client_ip {
        req = req.header("x-forwarded-for", ip);
    }
    Page::from(req.send().await.unwrap()).await
}

fn person<'a>(email: &'a str, themes: &'a [&'a str]) -> Vec<(&'a str, &'a str)> {
    let mut fields = vec![
        ("email", email),
        ("language", "sv"),
        ("digest", "monthly"),
        ("website", ""),
    ];
    fields.extend(themes.iter().map(|t| ("themes", *t)));
    fields
}

/// The service-relative path of the first link in `text` under `prefix`
/// (such as `https://example.org/news/confirm/`).
fn link_path(text: &str, prefix: &str) -> String {
    let at = text
        .find(prefix)
        .unwrap_or_else(|| panic!("no {prefix} link in {text}"));
    let rest = &text[at + prefix.len()..];
    let token: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    let kind = prefix.trim_end_matches('/').rsplit('/').next().unwrap();
    format!("/{kind}/{token}")
}

async fn wait_for_mail(server: &SmtpServer, to: &str) -> Mail {
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(m) = server
            .by_recipient()
            .get(to)
            .and_then(|m| m.first().cloned())
        {
            return m;
        }
        assert!(Instant::now() < end, "no email reached {to}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn sign_up_confirm_by_post_and_change_preferences() {
    let Some(server) = SmtpServer::start() else {
        return;
    };
    let site = web_site(&server.transport());
    let service = serve(&site);
    let c = client();
    let mut fields = person("Ann.Lind@Example.org", &["alpha", "beta"]);
    fields[1] = ("language", "en");
    let answer = sign_up(&c, &service, &fields, None).await;
    answer.assert_html(StatusCode::OK, "sv");
    assert!(
        answer
            .body
            .contains("<h1 id=\"check-inbox\">Kolla din inkorg</h1>")
    );
    assert_eq!(answer.header("cache-control"), "no-store");

    let mail = wait_for_mail(&server, "Ann.Lind@example.org").await;
    assert!(
        mail.subject.starts_with("Confirm your subscription"),
        "{}",
        mail.subject
    );
    assert!(mail.text.contains("Ann.Lind@example.org"));
    let confirm = link_path(&mail.text, "https://example.org/news/confirm/");
    let who = subscriber(&site, "ann.lind@example.org").await.unwrap();
    assert_eq!(who.status, Status::Pending);
    assert_eq!(who.consent_source, "web");
    assert_eq!(who.language.as_str(), "en");
    let themes: Vec<&str> = who.themes.iter().map(|t| t.as_str()).collect();
    assert_eq!(themes, ["alpha", "beta"]);

    // A GET (a mail scanner) shows a button and changes nothing.
    for _ in 0..2 {
        let page = get(&c, &service.url(&confirm)).await;
        page.assert_html(StatusCode::OK, "en");
        assert!(page.has_id("confirm"));
        assert!(page.body.contains("<form method=\"post\">"));
        assert!(page.body.contains("<button type=\"submit\">"));
        assert_eq!(page.header("cache-control"), "no-store");
        assert!(page.headers.get("set-cookie").is_none());
    }
    assert_eq!(
        status(&site, "ann.lind@example.org").await,
        Some(Status::Pending)
    );

    let confirmed = Page::from(c.post(service.url(&confirm)).send().await.unwrap()).await;
    confirmed.assert_html(StatusCode::OK, "en");
    assert!(confirmed.has_id("confirmed"), "{}", confirmed.body);
    let who = subscriber(&site, "ann.lind@example.org").await.unwrap();
    assert_eq!(who.status, Status::Active);
    assert!(who.confirmed_at.is_some());
    let preferences = link_path(&confirmed.body, "href=\"/preferences/");
    let again = Page::from(c.post(service.url(&confirm)).send().await.unwrap()).await;
    assert_eq!(again.status, StatusCode::OK, "confirming twice is harmless");
    assert!(again.has_id("confirmed"));
    assert_eq!(
        subscriber(&site, "ann.lind@example.org")
            .await
            .unwrap()
            .confirmed_at,
        who.confirmed_at
    );

    // Preferences: the current choices, then new ones saved.
    let page = get(&c, &service.url(&preferences)).await;
    page.assert_html(StatusCode::OK, "en");
    assert!(
        page.body
            .contains("<form id=\"preferences\" method=\"post\"")
    );
    assert!(
        page.body
            .contains("value=\"alpha\" id=\"theme-alpha\" checked")
    );
    assert!(
        page.body
            .contains("value=\"beta\" id=\"theme-beta\" checked")
    );
    assert!(
        !page
            .body
            .contains("value=\"gamma\" id=\"theme-gamma\" checked")
    );
    assert!(
        page.body
            .contains("value=\"en\" id=\"language-en\" checked")
    );
    assert!(page.body.contains("href=\"/unsubscribe/"), "a way out");
    let saved = Page::from(
        c.post(service.url(&preferences))
            .form(&[
                ("themes", "gamma"),
                ("themes", "alpha"),
                ("language", "sv"),
                ("digest", "monthly"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    saved.assert_html(StatusCode::OK, "en");
    assert!(saved.body.contains("role=\"status\""), "{}", saved.body);
    assert!(
        saved
            .body
            .contains("value=\"gamma\" id=\"theme-gamma\" checked")
    );
    let who = subscriber(&site, "ann.lind@example.org").await.unwrap();
    let themes: Vec<&str> = who.themes.iter().map(|t| t.as_str()).collect();
    assert_eq!(themes, ["gamma", "alpha"]);
    assert_eq!(who.language.as_str(), "sv");
    assert_eq!(who.status, Status::Active);

    // A bad choice is refused, and nothing changes.
    let bad = Page::from(
        c.post(service.url(&preferences))
            .form(&[("language", "de"), ("digest", "monthly")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    bad.assert_html(StatusCode::UNPROCESSABLE_ENTITY, "sv");
    assert!(bad.body.contains("role=\"alert\""));
    assert!(bad.body.contains("id=\"themes-error\""));
    assert!(bad.body.contains("id=\"language-error\""));
    let unchanged = subscriber(&site, "ann.lind@example.org").await.unwrap();
    assert_eq!(unchanged.themes, who.themes);
    assert_eq!(server.raw().len(), 1, "one email: the confirmation");
}

#[tokio::test]
async fn tampered_misused_and_expired_links_get_one_neutral_page() {
    let site = web_site("file:outbox");
    ok(site.tidings(&["subscribers", "add", "ann@example.org", "--themes", "alpha"]));
    subscribe(&site, "bo@example.org", "beta");
    let service = serve(&site);
    let c = client();
    let good = token(Purpose::Confirm, 1, "ann@example.org");
    let page = get(&c, &service.url(&format!("/confirm/{good}"))).await;
    page.assert_html(StatusCode::OK, "sv");

    let mut bad: Vec<String> = Vec::new();
    // One changed character, anywhere.
    for i in [0, 5, good.len() / 2, good.len() - 1] {
        let mut chars: Vec<char> = good.chars().collect();
        chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
        bad.push(chars.into_iter().collect());
    }
    bad.push(token(Purpose::Unsubscribe, 1, "ann@example.org"));
    bad.push(token(Purpose::Preferences, 1, "ann@example.org"));
    bad.push(signer().sign(
        Purpose::Confirm,
        1,
        "ann@example.org",
        Utc::now() - chrono::Duration::days(8),
    ));
    bad.push(token(Purpose::Confirm, 1, "bo@example.org"));
    bad.push(token(Purpose::Confirm, 99, "cy@example.org"));
    bad.push(Signer::new(b"another key, not the site's one!!!").sign(
        Purpose::Confirm,
        1,
        "ann@example.org",
        Utc::now(),
    ));
    bad.push("not-a-token".into());
    bad.push("A".repeat(400));
    let mut bodies = Vec::new();
    for t in &bad {
        for method in ["GET", "POST"] {
            let url = service.url(&format!("/confirm/{t}"));
            let req = if method == "GET" {
                c.get(&url)
            } else {
                c.post(&url)
            };
            let page = Page::from(req.send().await.unwrap()).await;
            page.assert_html(StatusCode::BAD_REQUEST, "sv");
            assert!(page.has_id("invalid-link"), "{method} {t}");
            assert!(page.body.contains("ogiltig eller har gått ut"));
            bodies.push(page.body);
        }
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "every refused link gets the same page"
    );
    assert_eq!(
        status(&site, "ann@example.org").await,
        Some(Status::Pending)
    );

    // Other purposes on the other pages are refused the same way, with a
    // way out: the form that mails the address an unsubscribe link.
    let confirm_token = token(Purpose::Confirm, 2, "bo@example.org");
    let mut leave_pages = Vec::new();
    for path in ["preferences", "unsubscribe"] {
        for t in [confirm_token.as_str(), "not-a-token", &bad[0]] {
            for req in [
                c.get(service.url(&format!("/{path}/{t}"))),
                c.post(service.url(&format!("/{path}/{t}")))
                    .form(&[("themes", "gamma")]),
            ] {
                let page = Page::from(req.send().await.unwrap()).await;
                page.assert_html(StatusCode::BAD_REQUEST, "sv");
                assert!(
                    page.has_id("invalid-link") && page.has_id("leave"),
                    "{path}/{t}"
                );
                assert!(page.body.contains("action=\"/unsubscribe\""));
                // The form token differs from page to page; nothing else.
                let csrf =
                    crate::support::attr_after(&page.body, "name=\"csrf\"", "value").unwrap();
                leave_pages.push(page.body.replace(&csrf, "CSRF"));
            }
        }
    }
    assert!(
        leave_pages.windows(2).all(|w| w[0] == w[1]),
        "every refused preferences or unsubscribe link gets the same page"
    );
    assert_eq!(status(&site, "bo@example.org").await, Some(Status::Active));
    let bo = subscriber(&site, "bo@example.org").await.unwrap();
    assert_eq!(bo.themes.len(), 1);

    // A link stays tied to its address: once the subscriber is gone, so
    // is the link.
    let unsub = token(Purpose::Unsubscribe, 2, "bo@example.org");
    ok(site.tidings(&["subscribers", "remove", "bo@example.org"]));
    let page = Page::from(
        c.post(service.url(&format!("/unsubscribe/{unsub}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn sign_ups_without_a_valid_form_token_are_refused() {
    let site = web_site("file:outbox");
    let service = serve(&site);
    let browser = client();
    let csrf = form_token(&browser, &service).await;
    let fields = person("ann@example.org", &["alpha"]);
    let post = |c: &Client, extra: Vec<(&'static str, String)>, headers: &[(&str, &str)]| {
        let mut form: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        form.extend(extra.into_iter().map(|(k, v)| (k.to_owned(), v)));
        let mut req = c.post(service.url("/subscribe")).form(&form);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send()
    };
    let mut forged = csrf.clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let other = Client::new(); // no cookie jar: the token without its cookie
    let cases: Vec<(&str, reqwest::Response)> = vec![
        ("no token", post(&browser, vec![], &[]).await.unwrap()),
        (
            "forged token",
            post(&browser, vec![("csrf", forged)], &[]).await.unwrap(),
        ),
        (
            "no cookie",
            post(&other, vec![("csrf", csrf.clone())], &[])
                .await
                .unwrap(),
        ),
        (
            "a token from another site's key",
            post(
                &browser,
                vec![("csrf", "1700000000.AAAAAAAAAAAAAAAAAAAAAA.bm9wZQ".into())],
                &[],
            )
            .await
            .unwrap(),
        ),
        (
            "cross-site",
            post(
                &browser,
                vec![("csrf", csrf.clone())],
                &[("sec-fetch-site", "cross-site")],
            )
            .await
            .unwrap(),
        ),
        (
            "foreign origin",
            post(
                &browser,
                vec![("csrf", csrf.clone())],
                &[("origin", "https://evil.example")],
            )
            .await
            .unwrap(),
        ),
    ];
    for (why, response) in cases {
        let page = Page::from(response).await;
        page.assert_html(StatusCode::FORBIDDEN, "sv");
        assert!(page.has_id("csrf"), "{why}");
        assert!(page.body.contains("Ladda om sidan"), "{why}");
        assert!(page.body.contains("href=\"/subscribe\""), "{why}");
    }
    // The real thing passes, same-origin headers and all.
    let page = Page::from(
        post(
            &browser,
            vec![("csrf", csrf.clone())],
            &[("sec-fetch-site", "same-origin"), ("origin", "null")],
        )
        .await
        .unwrap(),
    )
    .await;
    page.assert_html(StatusCode::OK, "sv");
    assert!(page.has_id("check-inbox"));
    eventually("ann is stored", || async {
        status(&site, "ann@example.org").await == Some(Status::Pending)
    })
    .await;
}

#[tokio::test]
async fn a_filled_honeypot_gets_the_same_answer_and_nothing_happens() {
    let site = web_site("file:outbox");
    let service = serve(&site);
    let c = client();
    let mut bot = person("bot@example.org", &["alpha"]);
    bot[3] = ("website", "https://spam.example");
    let trap = sign_up(&c, &service, &bot, None).await;
    let real = sign_up(&c, &service, &person("ann@example.org", &["alpha"]), None).await;
    assert_eq!(trap.status, StatusCode::OK);
    assert_eq!(trap.body, real.body, "a bot cannot tell");
    let json = c
        .post(service.url("/api/subscribe"))
        .json(&serde_json::json!({
            "email": "bot2@example.org", "themes": ["alpha"], "website": "x"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), StatusCode::ACCEPTED);
    // Once the real sign-up is done, the traps have long been ignored.
    eventually("ann's confirmation is written", || async {
        outbox(&site).contains_key("ann@example.org")
    })
    .await;
    assert_eq!(
        subscriber(&site, "bot@example.org").await.map(|s| s.id),
        None
    );
    assert_eq!(
        subscriber(&site, "bot2@example.org").await.map(|s| s.id),
        None
    );
    assert_eq!(outbox(&site).len(), 1);
}

#[tokio::test]
async fn the_answer_is_the_same_for_new_and_known_addresses() {
    let site = web_site("file:outbox");
    behind_proxy(&site);
    subscribe(&site, "active@example.org", "alpha");
    ok(site.tidings(&[
        "subscribers",
        "add",
        "pending@example.org",
        "--themes",
        "alpha",
    ]));
    subscribe(&site, "gone@example.org", "alpha");
    ok(site.tidings(&[
        "subscribers",
        "add",
        "bounced@example.org",
        "--themes",
        "beta",
        "--confirmed",
    ]));
    sql(
        &site,
        &[
            "UPDATE subscribers SET status = 'unsubscribed' WHERE email = 'gone@example.org'",
            "UPDATE subscribers SET status = 'bounced' WHERE email = 'bounced@example.org'",
        ],
    )
    .await;
    let service = serve(&site);
    let mut answers = Vec::new();
    let addresses = [
        "new@example.org",
        "ACTIVE@example.org",
        "pending@example.org",
        "gone@example.org",
        "bounced@example.org",
    ];
    for (i, email) in addresses.iter().enumerate() {
        let c = client();
        let ip = format!("10.0.0.{i}");
        let page = sign_up(&c, &service, &person(email, &["gamma", "beta"]), Some(&ip)).await;
        assert_eq!(page.status, StatusCode::OK, "{email}");
        assert!(page.has_id("check-inbox"));
        assert!(page.headers.get("set-cookie").is_none());
        answers.push(page.body);
    }
    assert!(
        answers.windows(2).all(|w| w[0] == w[1]),
        "one answer for all"
    );
    let mut json = Vec::new();
    for (i, email) in ["new2@example.org", "active@example.org"]
        .iter()
        .enumerate()
    {
        let r = client()
            .post(service.url("/api/subscribe"))
            .header("x-forwarded-for", format!("10.0.1.{i}"))
            .json(&serde_json::json!({ "email": email, "themes": ["gamma"], "language": "en" }))
            .send()
            .await
            .unwrap();
        json.push((r.status(), r.text().await.unwrap()));
    }
    assert_eq!(json[0].0, StatusCode::ACCEPTED);
    assert_eq!(json[0], json[1]);

    // Behind the same answer: a confirmation for everyone not active.
    let expected = [
        "bounced@example.org",
        "gone@example.org",
        "new2@example.org",
        "new@example.org",
        "pending@example.org",
    ];
    eventually("every confirmation is written", || async {
        outbox(&site).len() == expected.len()
    })
    .await;
    let mail = outbox(&site);
    assert_eq!(mail.keys().collect::<Vec<_>>(), expected);
    let active = subscriber(&site, "active@example.org").await.unwrap();
    assert_eq!(active.status, Status::Active);
    assert_eq!(active.themes.len(), 1, "an active subscriber is left alone");
    assert_eq!(active.themes[0].as_str(), "alpha");
    for email in [
        "new@example.org",
        "pending@example.org",
        "gone@example.org",
        "bounced@example.org",
    ] {
        let s = subscriber(&site, email).await.unwrap();
        assert_eq!(s.status, Status::Pending, "{email}");
        let themes: Vec<&str> = s.themes.iter().map(|t| t.as_str()).collect();
        assert_eq!(themes, ["gamma", "beta"], "{email} took the new choices");
    }
}

#[tokio::test]
async fn sign_ups_are_limited_per_client_and_per_address() {
    let site = web_site("file:outbox");
    behind_proxy(&site);
    let service = serve(&site);
    // Five from one client, then no more from it; another client still can.
    for i in 0..5 {
        let email = format!("p{i}@example.org");
        let page = sign_up(
            &client(),
            &service,
            &person(&email, &["alpha"]),
            Some("192.0.2.1"),
        )
        .await;
        assert_eq!(page.status, StatusCode::OK, "sign-up {i}");
    }
    let limited = sign_up(
        &client(),
        &service,
        &person("p5@example.org", &["alpha"]),
        Some("192.0.2.1"),
    )
    .await;
    limited.assert_html(StatusCode::TOO_MANY_REQUESTS, "sv");
    assert!(limited.has_id("rate-limited"));
    let retry: u64 = limited.header("retry-after").parse().unwrap();
    assert!((1..=120).contains(&retry), "{retry}");
    assert!(
        limited.body.contains("Försök igen om 2 minuter."),
        "{}",
        limited.body
    );
    let json = client()
        .post(service.url("/api/subscribe"))
        .header("x-forwarded-for", "203.0.113.50, 192.0.2.1")
        .json(&serde_json::json!({"email": "p6@example.org", "themes": ["alpha"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        json.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the proxy's last address counts"
    );
    assert!(json.headers().contains_key("retry-after"));
    let body: serde_json::Value = json.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited");
    let other = sign_up(
        &client(),
        &service,
        &person("p5@example.org", &["alpha"]),
        Some("192.0.2.2"),
    )
    .await;
    assert_eq!(other.status, StatusCode::OK);

    // Three of one address a day, from wherever they come.
    for i in 0..3 {
        let ip = format!("198.51.100.{i}");
        let page = sign_up(
            &client(),
            &service,
            &person("Target@example.org", &["beta"]),
            Some(&ip),
        )
        .await;
        assert_eq!(page.status, StatusCode::OK, "sign-up {i} of the address");
    }
    let limited = sign_up(
        &client(),
        &service,
        &person("target@EXAMPLE.org", &["beta"]),
        Some("198.51.100.9"),
    )
    .await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = limited.header("retry-after").parse().unwrap();
    assert!(retry > 3600, "{retry}");
    eventually("the sign-ups are stored", || async {
        status(&site, "p5@example.org").await.is_some()
            && status(&site, "target@example.org").await.is_some()
    })
    .await;
    assert_eq!(status(&site, "p6@example.org").await, None);
}

/// Two instances on one store count sign-ups together: the limits are
/// the site's, not each process's.
#[tokio::test]
async fn sign_up_limits_hold_across_instances_on_one_store() {
    let site = web_site("file:outbox");
    behind_proxy(&site);
    let (one, two) = (serve(&site), serve(&site));
    // Three of one address, over both instances; the fourth is refused by
    // either.
    for (i, service) in [&one, &two, &one].into_iter().enumerate() {
        let ip = format!("198.51.100.{i}");
        let page = sign_up(
            &client(),
            service,
            &person("Target@example.org", &["beta"]),
            Some(&ip),
        )
        .await;
        assert_eq!(page.status, StatusCode::OK, "sign-up {i} of the address");
    }
    for service in [&two, &one] {
        let limited = sign_up(
            &client(),
            service,
            &person("target@example.org", &["beta"]),
            Some("198.51.100.9"),
        )
        .await;
        assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
        let retry: u64 = limited.header("retry-after").parse().unwrap();
        assert!(retry > 3600, "{retry}");
    }
    // Five from one client, alternating; the sixth is refused.
    for i in 0..5 {
        let service = if i % 2 == 0 { &one } else { &two };
        let email = format!("c{i}@example.org");
        let page = sign_up(
            &client(),
            service,
            &person(&email, &["alpha"]),
            Some("192.0.2.7"),
        )
        .await;
        assert_eq!(page.status, StatusCode::OK, "sign-up {i} of the client");
    }
    let limited = sign_up(
        &client(),
        &two,
        &person("c5@example.org", &["alpha"]),
        Some("192.0.2.7"),
    )
    .await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.body.contains("Försök igen om 2 minuter."));
}

#[tokio::test]
async fn problems_show_the_form_again_with_every_field_explained() {
    let site = web_site("file:outbox");
    let service = serve(&site);
    let c = client();
    let page = sign_up(
        &c,
        &service,
        &[
            ("email", "ann at example"),
            ("language", "sv"),
            ("digest", "monthly"),
        ],
        None,
    )
    .await;
    page.assert_html(StatusCode::UNPROCESSABLE_ENTITY, "sv");
    assert!(
        page.body.contains("value=\"ann at example\""),
        "the value is kept"
    );
    assert!(page.body.contains("role=\"alert\""));
    assert!(page.body.contains("id=\"email-error\""));
    assert!(
        page.body
            .contains("aria-describedby=\"email-hint email-error\"")
    );
    assert!(page.body.contains("aria-invalid=\"true\""));
    assert!(
        page.body
            .contains("id=\"themes-error\">Välj minst ett tema.")
    );
    assert!(
        page.body.contains("<a href=\"#email\">"),
        "the summary links to the field"
    );
    assert!(
        page.body.contains("id=\"subscribe\""),
        "the form again, with a new token"
    );
    assert!(page.body.contains("name=\"csrf\""));

    let page = sign_up(
        &c,
        &service,
        &[
            ("email", "ann@example.org"),
            ("themes", "beta"),
            ("themes", "nope"),
            ("language", "fi"),
            ("digest", "weekly"),
            ("lang", "en"),
        ],
        None,
    )
    .await;
    page.assert_html(StatusCode::UNPROCESSABLE_ENTITY, "en");
    assert!(
        page.body
            .contains("id=\"themes-error\">Choose among the themes")
    );
    assert!(page.body.contains("id=\"digest-error\""), "{}", page.body);
    assert!(
        page.body
            .contains("value=\"beta\" id=\"theme-beta\" checked")
    );
    assert!(!page.body.contains("id=\"email-error\""));

    // The JSON twin: one error per field, in a list.
    let r = c
        .post(service.url("/api/subscribe"))
        .json(&serde_json::json!({"email": "nope", "themes": ["alpha", "zeta"], "language": "fi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: serde_json::Value = r.json().await.unwrap();
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["email", "themes", "language"]);
    let r = c
        .post(service.url("/api/subscribe"))
        .header("content-type", "text/plain")
        .body("{\"email\": \"ann@example.org\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = c
        .post(service.url("/api/subscribe"))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = c
        .post(service.url("/api/subscribe"))
        .header("origin", "https://evil.example")
        .json(&serde_json::json!({"email": "ann@example.org", "themes": ["alpha"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let page = Page::from(
        c.post(service.url("/subscribe"))
            .header("content-type", "text/plain")
            .body("email=ann@example.org")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(page.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        status(&site, "ann@example.org").await,
        None,
        "nothing stored"
    );
}

#[tokio::test]
async fn one_click_unsubscribe_follows_rfc_8058() {
    let site = web_site("file:outbox");
    subscribe(&site, "ann@example.org", "alpha");
    subscribe(&site, "bo@example.org", "alpha");
    subscribe(&site, "cy@example.org", "alpha");
    let service = serve(&site);
    let c = client();
    let ann = service.url(&format!(
        "/unsubscribe/{}",
        token(Purpose::Unsubscribe, 1, "ann@example.org")
    ));
    let page = get(&c, &ann).await;
    page.assert_html(StatusCode::OK, "sv");
    assert!(page.has_id("unsubscribe"));
    assert!(page.body.contains("<form method=\"post\">"));
    assert_eq!(page.header("cache-control"), "no-store");
    assert_eq!(
        status(&site, "ann@example.org").await,
        Some(Status::Active),
        "a GET changes nothing"
    );

    let plain = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for round in 0..2 {
        let r = plain
            .post(&ann)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "round {round}");
        assert!(r.headers().get("location").is_none());
        assert!(r.headers().get("set-cookie").is_none());
        let page = Page::from(r).await;
        assert!(page.has_id("unsubscribed"));
        assert_eq!(
            status(&site, "ann@example.org").await,
            Some(Status::Unsubscribed)
        );
    }
    let first = subscriber(&site, "ann@example.org")
        .await
        .unwrap()
        .unsubscribed_at;
    assert!(first.is_some());

    let bo = service.url(&format!(
        "/unsubscribe/{}",
        token(Purpose::Unsubscribe, 2, "bo@example.org")
    ));
    for _ in 0..2 {
        let form = reqwest::multipart::Form::new().text("List-Unsubscribe", "One-Click");
        let r = plain.post(&bo).multipart(form).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers().get("location").is_none());
        assert!(r.headers().get("set-cookie").is_none());
    }
    assert_eq!(
        status(&site, "bo@example.org").await,
        Some(Status::Unsubscribed)
    );

    // A person's button: an empty POST.
    let cy = service.url(&format!(
        "/unsubscribe/{}",
        token(Purpose::Unsubscribe, 3, "cy@example.org")
    ));
    let r = plain.post(&cy).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        status(&site, "cy@example.org").await,
        Some(Status::Unsubscribed)
    );
    assert_eq!(
        subscriber(&site, "ann@example.org")
            .await
            .unwrap()
            .unsubscribed_at,
        first,
        "a repeat keeps the first time"
    );

    // Saving preferences afterwards does not subscribe anyone again.
    let prefs = service.url(&format!(
        "/preferences/{}",
        token(Purpose::Preferences, 1, "ann@example.org")
    ));
    let page = get(&c, &prefs).await;
    assert!(
        page.body.contains("Du prenumererar inte längre"),
        "{}",
        page.body
    );
    let saved = Page::from(
        c.post(&prefs)
            .form(&[
                ("themes", "beta"),
                ("language", "sv"),
                ("digest", "monthly"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(saved.status, StatusCode::OK);
    let ann_now = subscriber(&site, "ann@example.org").await.unwrap();
    assert_eq!(ann_now.status, Status::Unsubscribed);
    assert_eq!(ann_now.themes[0].as_str(), "beta");
}

#[tokio::test]
async fn bodies_over_16_kib_are_refused() {
    let site = web_site("file:outbox");
    subscribe(&site, "ann@example.org", "alpha");
    let service = serve(&site);
    let c = client();
    let csrf = form_token(&c, &service).await;
    let big = "x".repeat(20 * 1024);
    let page = Page::from(
        c.post(service.url("/subscribe"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("email", "ann@example.org"),
                ("website", &big),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    page.assert_html(StatusCode::PAYLOAD_TOO_LARGE, "sv");
    let r = c
        .post(service.url("/api/subscribe"))
        .json(&serde_json::json!({"email": "bo@example.org", "themes": ["alpha"], "website": big}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let unsub = service.url(&format!(
        "/unsubscribe/{}",
        token(Purpose::Unsubscribe, 1, "ann@example.org")
    ));
    let r = c.post(&unsub).body(big.clone()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(status(&site, "ann@example.org").await, Some(Status::Active));
    // Just under the limit is fine.
    let r = c
        .post(&unsub)
        .body("x".repeat(15 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        status(&site, "ann@example.org").await,
        Some(Status::Unsubscribed)
    );
}

/// Runs `tidings digest send` in the background, for `stop` to end.
fn start_send(site: &Site) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_tidings"))
        .arg("--config")
        .arg(site.config_path())
        .args(["digest", "send"])
        .env("TIDINGS_BACKOFF_SECONDS", "3600")
        .env("TIDINGS_SECRET", SECRET)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

#[tokio::test]
async fn unsubscribing_holds_for_an_edition_already_frozen() {
    // The mail server is down while the edition is frozen: every delivery
    // waits for a retry. Ann unsubscribes over HTTP in between; when the
    // edition is resumed, Bo gets it and Ann does not.
    let dead = free_port();
    let site = web_site(&format!("smtp://127.0.0.1:{dead}?tls=none"));
    subscribe(&site, "ann@example.org", "alpha");
    subscribe(&site, "bo@example.org", "alpha");
    let mut sender = start_send(&site);
    let waiting = || {
        let run = site.tidings(&["digest", "status"]);
        run.stdout
            .contains("0 sent, 0 failed, 0 skipped, 2 pending, 0 sending")
    };
    let end = Instant::now() + Duration::from_secs(30);
    while !waiting() {
        assert!(
            Instant::now() < end,
            "the edition was not frozen: {}",
            site.tidings(&["digest", "status"])
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &sender.id().to_string()])
        .status();
    sender.wait().unwrap();

    let service = serve(&site);
    let r = client()
        .post(service.url(&format!(
            "/unsubscribe/{}",
            token(Purpose::Unsubscribe, 1, "ann@example.org")
        )))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    service.stop();

    // The mail server "comes back": the transport now writes files.
    let config = std::fs::read_to_string(site.config_path())
        .unwrap()
        .replace(&format!("smtp://127.0.0.1:{dead}?tls=none"), "file:outbox");
    std::fs::write(site.config_path(), config).unwrap();
    sql(
        &site,
        &["UPDATE deliveries SET next_attempt_at = '2000-01-01T00:00:00Z'"],
    )
    .await;
    let run = ok(site.tidings_env(&["digest", "send"], &[("TIDINGS_SECRET", SECRET)]));
    assert!(run.stdout.contains("resuming edition 1"), "{run}");
    let mail = outbox(&site);
    assert_eq!(mail.keys().collect::<Vec<_>>(), ["bo@example.org"]);
    let status = ok(site.tidings(&["digest", "status"]));
    assert!(
        status
            .stdout
            .contains("not sent to ann@example.org: skipped: unsubscribed before sending"),
        "{status}"
    );
}
