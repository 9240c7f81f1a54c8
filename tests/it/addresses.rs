//! One canonical address per inbox: quoted variants of one address are one
//! subscriber and share its limits, addresses no relay delivers to are
//! refused (form, API, CSV), nothing typed reaches the log, and a store
//! written by an earlier version is brought to the canonical form once,
//! merging the subscribers that share an inbox.

use reqwest::StatusCode;
use tidings::model::Status;

use crate::support::{
    Page, behind_proxy, client, eventually, get, ok, outbox, serve, sql, status, subscribe,
    subscriber, web_site,
};

/// Posts the sign-up form from client address `ip`.
async fn sign_up(base: &str, email: &str, ip: &str) -> Page {
    let c = client();
    let csrf = get(&c, &format!("{base}/")).await.csrf();
    let form = [
        ("csrf", csrf.as_str()),
        ("email", email),
        ("themes", "alpha"),
        ("language", "sv"),
        ("digest", "monthly"),
        ("website", ""),
    ];
    let r = c
        .post(format!("{base}/subscribe"))
        .header("x-forwarded-for", ip)
        .form(&form)
        .send()
        .await
        .unwrap();
    Page::from(r).await
}

#[tokio::test]
async fn quoted_variants_of_an_address_are_one_subscriber_with_one_limit() {
    let site = web_site("file:outbox");
    behind_proxy(&site);
    let service = serve(&site);
    let base = service.url("");
    let variants = [
        "victim@example.org",
        "\"victim\"@example.org",
        "\"v\\ictim\"@example.org",
        "\"\\victim\"@example.org",
    ];
    // The limit of three a day counts the inbox, whatever its spelling.
    for (i, v) in variants.iter().enumerate() {
        let page = sign_up(&base, v, &format!("198.51.100.{i}")).await;
        let expected = if i < 3 {
            StatusCode::OK
        } else {
            StatusCode::TOO_MANY_REQUESTS
        };
        assert_eq!(page.status, expected, "{v}: {}", page.body);
    }
    eventually("the sign-up is stored", || async {
        status(&site, "victim@example.org").await.is_some()
    })
    .await;
    let rows = ok(site.tidings(&["subscribers", "list"]));
    let victims: Vec<&str> = rows
        .stdout
        .lines()
        .filter(|l| l.contains("victim"))
        .collect();
    assert_eq!(victims.len(), 1, "{rows}");
    assert!(victims[0].starts_with("victim@example.org\t"), "{rows}");

    // Addresses that cannot be mailed as meant: 422, stored nowhere, and
    // not one of them in the log.
    let c = client();
    let refused = [
        "test@[127.0.0.1]",
        "\"<attacker@evil.org>\"@example.org",
        "\"a,b\"@example.org",
        "\"x y\"@example.org",
    ];
    for (i, bad) in refused.iter().enumerate() {
        let page = sign_up(&base, bad, &format!("203.0.113.{i}")).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert!(page.has_id("email-error"), "{bad}");
        let api = c
            .post(service.url("/api/subscribe"))
            .header("x-forwarded-for", format!("203.0.113.{}", 100 + i))
            .json(&serde_json::json!({"email": bad, "themes": ["alpha"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(api.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        let body: serde_json::Value = api.json().await.unwrap();
        assert_eq!(body["errors"][0]["field"], "email", "{bad}: {body}");
    }
    let list = ok(site.tidings(&["subscribers", "list"]));
    assert_eq!(list.stdout.lines().skip(1).count(), 1, "{list}");
    let (_, log) = service.stop();
    for typed in ["victim", "attacker", "evil.org", "127.0.0.1]", "a,b", "x y"] {
        assert!(!log.contains(typed), "`{typed}` in the log:\n{log}");
    }
}

#[test]
fn an_import_reports_addresses_that_cannot_be_mailed_and_stores_one_per_inbox() {
    let site = crate::support::digest_site("file:outbox");
    std::fs::write(
        site.path("people.csv"),
        "email,themes,language\n\
         ann@example.org,alpha,sv\n\
         \"\"\"ann\"\"@example.org\",alpha,sv\n\
         bo@[192.0.2.7],alpha,sv\n\
         \"\"\"a,b\"\"@example.org\",alpha,sv\n",
    )
    .unwrap();
    let run = site.tidings(&["subscribers", "import", "people.csv"]);
    assert!(run.stderr.contains("people.csv:4:"), "{run}");
    assert!(run.stderr.contains("people.csv:5:"), "{run}");
    assert!(
        !run.stderr.contains("people.csv:3:"),
        "the quoted twin is the same inbox: {run}"
    );
    let list = ok(site.tidings(&["subscribers", "list"]));
    let rows: Vec<&str> = list.stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{list}");
    assert!(rows[0].starts_with("ann@example.org\t"), "{list}");
    let again = site.tidings(&[
        "subscribers",
        "add",
        "\"ann\"@example.org",
        "--themes",
        "alpha",
        "--confirmed",
    ]);
    assert!(again.stderr.contains("already a subscriber"), "{again}");
}

#[tokio::test]
async fn a_store_of_an_earlier_version_is_brought_to_one_address_per_inbox() {
    let site = web_site("file:outbox");
    subscribe(&site, "cy@example.org", "alpha");
    // What an earlier version let in: one inbox three times (the earliest
    // consent in the middle row), two pending rows no relay delivers to,
    // an active one, and a quoted address alone.
    sql(
        &site,
        &[
            "INSERT INTO subscribers (id, email, email_key, status, themes, language, digest,
                 consent_at, consent_source, created_at, confirmed_at)
             VALUES
             (100, 'victim@example.org', 'victim@example.org', 'active', '[\"beta\"]', 'sv', 'monthly',
              '2026-03-01T00:00:00Z', 'web', '2026-03-01T00:00:00Z', '2026-03-01T01:00:00Z'),
             (101, '\"victim\"@example.org', '\"victim\"@example.org', 'active', '[\"alpha\"]', 'en', 'monthly',
              '2026-01-01T00:00:00Z', 'web', '2026-01-01T00:00:00Z', '2026-01-02T00:00:00Z'),
             (102, '\"v\\ictim\"@example.org', '\"v\\ictim\"@example.org', 'pending', '[\"gamma\"]', 'sv', 'monthly',
              '2026-05-01T00:00:00Z', 'web', '2026-05-01T00:00:00Z', NULL),
             (103, 'test@[127.0.0.1]', 'test@[127.0.0.1]', 'pending', '[\"alpha\"]', 'sv', 'monthly',
              '2026-05-01T00:00:00Z', 'web', '2026-05-01T00:00:00Z', NULL),
             (104, '\"<a@evil.org>\"@example.org', '\"<a@evil.org>\"@example.org', 'pending', '[\"alpha\"]', 'sv', 'monthly',
              '2026-05-01T00:00:00Z', 'web', '2026-05-01T00:00:00Z', NULL),
             (105, 'ops@[192.0.2.1]', 'ops@[192.0.2.1]', 'active', '[\"alpha\"]', 'sv', 'monthly',
              '2026-05-01T00:00:00Z', 'cli', '2026-05-01T00:00:00Z', '2026-05-01T00:00:00Z'),
             (106, '\"dee\"@example.org', '\"dee\"@example.org', 'active', '[\"alpha\"]', 'sv', 'monthly',
              '2026-05-01T00:00:00Z', 'cli', '2026-05-01T00:00:00Z', '2026-05-01T00:00:00Z')",
            // As the upgrade's migration leaves it: the fixup owed.
            "INSERT INTO fixups (name) VALUES ('canonical_emails')",
        ],
    )
    .await;

    let run = ok(site.tidings(&["subscribers", "list"]));
    assert!(
        run.stderr.contains("brought to one canonical form"),
        "the change is reported: {run}"
    );
    assert!(
        !run.stderr.contains("victim") && !run.stderr.contains("evil"),
        "by id, not by address: {run}"
    );
    let lines: Vec<&str> = run.stdout.lines().collect();
    let victim: Vec<&&str> = lines.iter().filter(|l| l.contains("victim")).collect();
    assert_eq!(victim.len(), 1, "{run}");
    let kept = subscriber(&site, "victim@example.org").await.unwrap();
    assert_eq!(kept.id, 101, "the earliest consent is kept");
    assert_eq!(kept.consent_at.to_rfc3339(), "2026-01-01T00:00:00+00:00");
    assert_eq!(kept.email, "victim@example.org");
    assert_eq!(kept.status, Status::Active);
    assert_eq!(kept.language.as_str(), "en", "its own choices");
    assert!(
        subscriber(&site, "test@[127.0.0.1]").await.is_none(),
        "pending: removed"
    );
    assert!(
        subscriber(&site, "\"<a@evil.org>\"@example.org")
            .await
            .is_none()
    );
    assert_eq!(
        status(&site, "ops@[192.0.2.1]").await,
        Some(Status::Bounced),
        "active but unmailable: bounced"
    );
    assert_eq!(status(&site, "dee@example.org").await, Some(Status::Active));
    assert_eq!(status(&site, "cy@example.org").await, Some(Status::Active));

    // Once only: a second run changes and reports nothing.
    let again = ok(site.tidings(&["subscribers", "list"]));
    assert!(!again.stderr.contains("canonical"), "{again}");
    assert_eq!(again.stdout, run.stdout);

    // The inbox gets one digest.
    ok(site.tidings_env(
        &["digest", "send"],
        &[("TIDINGS_SECRET", crate::support::SECRET)],
    ));
    let mail = outbox(&site);
    assert_eq!(mail["victim@example.org"].len(), 1);
}
