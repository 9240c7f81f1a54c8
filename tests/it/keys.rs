//! The keys behind subscriber links: made once and kept, the same in every
//! process of a site (a process whose `TIDINGS_SECRET` disagrees is
//! refused), rotated without killing a link already mailed, and links of
//! the first token format (before keys had ids) still working.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use sha2::Sha256;
use tidings::config::env::Environment;
use tidings::links::keys::Keys;
use tidings::links::tokens::{Purpose, Unverified};
use tidings::model::Status;
use tidings::store::Store;

use crate::support::{
    Mail, SECRET, TestStore, client, ok, outbox, recent, serve, sql, status, subscribe, web_site,
};

/// Another valid key, not the site's.
const OTHER: &str = "a-different-secret-0123456789abcdefghijkl";

#[tokio::test]
async fn the_signing_key_is_made_once_and_survives_a_restart() {
    let db = TestStore::new();
    let url = db.url();
    let env = Environment::default();
    let store = Store::open(url).await.unwrap();
    let first = Keys::load(&store, &env).await.unwrap().signer();
    let again = Keys::load(&store, &env).await.unwrap().signer();
    assert_eq!(store.signing_keys().await.unwrap().len(), 1, "made once");
    let now = Utc::now();
    let token = first.sign(Purpose::Unsubscribe, 3, "ann@example.org", now);
    let parsed = Unverified::parse(&token).unwrap();
    assert_eq!(parsed.key_id(), Some(1));
    assert!(
        again
            .verify(&parsed, Purpose::Unsubscribe, "ann@example.org", now)
            .is_ok()
    );
    store.close().await;

    let reopened = Store::open(url).await.unwrap();
    let after = Keys::load(&reopened, &env).await.unwrap().signer();
    assert!(
        after
            .verify(&parsed, Purpose::Unsubscribe, "ann@example.org", now)
            .is_ok()
    );
    reopened.close().await;

    let other_db = TestStore::new();
    let other = Store::open(other_db.url()).await.unwrap();
    let theirs = Keys::load(&other, &env).await.unwrap().signer();
    assert!(
        theirs
            .verify(&parsed, Purpose::Unsubscribe, "ann@example.org", now)
            .is_err(),
        "each site has its own key"
    );
    other.close().await;
}

/// The path of the first link under `/kind/` in a message's text part.
fn link(mail: &Mail, kind: &str) -> String {
    let marker = format!("/{kind}/");
    let at = mail
        .text
        .find(&marker)
        .unwrap_or_else(|| panic!("no {marker} link in {}", mail.text));
    let token: String = mail.text[at + marker.len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    format!("{marker}{token}")
}

/// POSTs an RFC 8058 one-click unsubscribe to the service.
async fn one_click(base: &str, path: &str) -> StatusCode {
    client()
        .post(format!("{base}{path}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn a_command_without_the_services_secret_is_refused_and_one_with_it_sends_working_links() {
    let site = web_site("file:outbox");
    subscribe(&site, "ann@example.org", "alpha");
    subscribe(&site, "bo@example.org", "beta");
    let service = serve(&site);

    // Without TIDINGS_SECRET: refused before anything is frozen or sent.
    let without = site.tidings(&["digest", "send"]);
    assert_eq!(without.code, 1, "{without}");
    assert!(
        without
            .stderr
            .contains("TIDINGS_SECRET is not set for this command"),
        "{without}"
    );
    assert!(without.stderr.contains("key status"), "{without}");
    // With another value: refused too.
    let other = site.tidings_env(&["digest", "send"], &[("TIDINGS_SECRET", OTHER)]);
    assert_eq!(other.code, 1, "{other}");
    assert!(
        other
            .stderr
            .contains("is not the key this site signs its links with"),
        "{other}"
    );
    assert!(
        !other.stderr.contains(OTHER) && !other.stderr.contains(SECRET),
        "a secret is never printed"
    );
    assert!(outbox(&site).is_empty(), "nothing was sent");
    let status_run = ok(site.tidings(&["digest", "status"]));
    assert!(
        status_run.stdout.contains("no editions yet"),
        "nothing was frozen: {status_run}"
    );

    // With the service's value: every link of every email works there.
    ok(site.tidings_env(&["digest", "send"], &[("TIDINGS_SECRET", SECRET)]));
    let mail = outbox(&site);
    for who in ["ann@example.org", "bo@example.org"] {
        let m = &mail[who][0];
        let prefs = client()
            .get(service.url(&link(m, "preferences")))
            .send()
            .await
            .unwrap();
        assert_eq!(prefs.status(), StatusCode::OK, "{who}'s preferences link");
        let unsubscribe = link(m, "unsubscribe");
        assert_eq!(
            one_click(&service.url(""), &unsubscribe).await,
            StatusCode::OK,
            "{who}'s unsubscribe link"
        );
        assert_eq!(status(&site, who).await, Some(Status::Unsubscribed));
    }
    service.stop();
}

#[tokio::test]
async fn the_service_refuses_a_secret_the_site_does_not_sign_with() {
    let site = web_site("file:outbox");
    // The first command that signs makes the ring: a key kept in the store.
    subscribe(&site, "ann@example.org", "alpha");
    ok(site.tidings(&["digest", "send"]));
    let config = std::fs::read_to_string(site.config_path()).unwrap();
    site.write_config(&format!(
        "{config}\n[http]\nlisten = \"127.0.0.1:0\"\nmetrics_listen = \"off\"\n"
    ));
    let run = site.tidings_env(&["run"], &[("TIDINGS_SECRET", SECRET)]);
    assert_eq!(run.code, 1, "{run}");
    assert!(
        run.stderr
            .contains("TIDINGS_SECRET is set, but this site signs its links with key 1"),
        "{run}"
    );
    let keys = ok(site.tidings(&["key", "status"]));
    assert!(keys.stdout.contains("1\tstore\t"), "{keys}");
    assert!(keys.stdout.contains("active"), "{keys}");
}

#[tokio::test]
async fn a_link_signed_before_a_rotation_still_unsubscribes_after_it() {
    let site = web_site("file:outbox");
    subscribe(&site, "ann@example.org", "alpha");
    subscribe(&site, "bo@example.org", "alpha");
    recent(&site, "a2", "Alpha two", 1, &["alpha"]);
    site.build();
    // A key kept in the store; the service runs while it is rotated.
    let service = site.serve(&[]);
    ok(site.tidings(&["digest", "send"]));
    let before = outbox(&site);
    let rotated = ok(site.tidings(&["key", "rotate"]));
    assert!(
        rotated.stdout.contains("key 2 (store") && rotated.stdout.contains("key 1"),
        "{rotated}"
    );
    let keys = ok(site.tidings(&["key", "status"]));
    assert!(
        keys.stdout
            .lines()
            .any(|l| l.starts_with("2\tstore") && l.contains("active")),
        "{keys}"
    );
    assert!(
        keys.stdout
            .lines()
            .any(|l| l.starts_with("1\tstore") && l.contains("verifies")),
        "{keys}"
    );
    // A link signed after the rotation, by another process, names key 2;
    // the running service reads the new key from the store.
    let confirm = ok(site.tidings(&[
        "subscribers",
        "add",
        "cy@example.org",
        "--themes",
        "alpha",
        "--send-confirmation",
    ]));
    assert!(
        confirm.stdout.contains("sent the confirmation email"),
        "{confirm}"
    );
    let mail = outbox(&site);
    let confirm_link = link(&mail["cy@example.org"][0], "confirm");
    let token = Unverified::parse(confirm_link.trim_start_matches("/confirm/")).unwrap();
    assert_eq!(token.key_id(), Some(2));
    let confirmed = client()
        .post(service.url(&confirm_link))
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), StatusCode::OK);
    assert_eq!(status(&site, "cy@example.org").await, Some(Status::Active));

    // The links mailed before the rotation (key 1) still work.
    for who in ["ann@example.org", "bo@example.org"] {
        let path = link(&before[who][0], "unsubscribe");
        let token = Unverified::parse(path.trim_start_matches("/unsubscribe/")).unwrap();
        assert_eq!(token.key_id(), Some(1));
        assert_eq!(one_click(&service.url(""), &path).await, StatusCode::OK);
        assert_eq!(status(&site, who).await, Some(Status::Unsubscribed));
    }
    service.stop();
}

#[tokio::test]
async fn an_environment_key_is_rotated_with_the_old_one_kept_in_previous() {
    let site = web_site("file:outbox");
    subscribe(&site, "ann@example.org", "alpha");
    ok(site.tidings_env(&["digest", "send"], &[("TIDINGS_SECRET", SECRET)]));
    let before = outbox(&site);

    // Rotating to a new TIDINGS_SECRET without giving the old one is
    // refused: the operator would lose the links already sent.
    let refused = site.tidings_env(&["key", "rotate"], &[("TIDINGS_SECRET", OTHER)]);
    assert_eq!(refused.code, 1, "{refused}");
    assert!(
        refused.stderr.contains("TIDINGS_SECRET_PREVIOUS"),
        "{refused}"
    );
    let both = [
        ("TIDINGS_SECRET", OTHER),
        ("TIDINGS_SECRET_PREVIOUS", SECRET),
    ];
    let rotated = ok(site.tidings_env(&["key", "rotate"], &both));
    assert!(
        rotated.stdout.contains("key 2 (TIDINGS_SECRET"),
        "{rotated}"
    );
    // The old value alone is now refused, naming the new key.
    let old = site.tidings_env(&["digest", "send"], &[("TIDINGS_SECRET", SECRET)]);
    assert_eq!(old.code, 1, "{old}");
    assert!(old.stderr.contains("TIDINGS_SECRET is key 1"), "{old}");

    let service = site.serve(&both);
    let path = link(&before["ann@example.org"][0], "unsubscribe");
    assert_eq!(one_click(&service.url(""), &path).await, StatusCode::OK);
    assert_eq!(
        status(&site, "ann@example.org").await,
        Some(Status::Unsubscribed)
    );
    service.stop();
}

/// A token of the first format (version 1: no key id), as earlier
/// versions of tidings signed them.
fn first_format_token(key: &[u8], purpose: u8, id: i64, email_key: &str) -> String {
    let mut payload = Vec::with_capacity(18);
    payload.push(1u8);
    payload.push(purpose);
    payload.extend_from_slice(&id.to_be_bytes());
    payload.extend_from_slice(&Utc::now().timestamp().to_be_bytes());
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(&payload);
    mac.update(email_key.as_bytes());
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(&payload),
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

#[tokio::test]
async fn links_mailed_by_earlier_versions_keep_working_after_the_upgrade() {
    // A store as an earlier version left it: its key in `settings`, and
    // links signed with it (by `digest send` without TIDINGS_SECRET) or
    // with TIDINGS_SECRET (by the service), both without a key id.
    let site = web_site("file:outbox");
    subscribe(&site, "ann@example.org", "alpha");
    subscribe(&site, "bo@example.org", "alpha");
    let legacy = b"an earlier version's stored key, 32 bytes or so".to_vec();
    sql(
        &site,
        &[&format!(
            "INSERT INTO settings (name, value) VALUES ('signing_key', {})",
            if site.storage_url().to_string().starts_with("postgres") {
                format!("'\\x{}'::bytea", hex::encode(&legacy))
            } else {
                format!("X'{}'", hex::encode(&legacy))
            }
        )],
    )
    .await;
    let store = Store::open(&site.storage_url()).await.unwrap();
    let id = |email: &str| {
        let store = store.clone();
        let email = email.to_owned();
        async move { store.subscriber(&email).await.unwrap().unwrap().id }
    };
    let (ann, bo) = (id("ann@example.org").await, id("bo@example.org").await);
    store.close().await;
    let by_cli = first_format_token(&legacy, b'u', ann, "ann@example.org");
    let by_service = first_format_token(SECRET.as_bytes(), b'u', bo, "bo@example.org");

    // The upgraded service, started with TIDINGS_SECRET as before.
    let service = serve(&site);
    for (who, token) in [("ann@example.org", by_cli), ("bo@example.org", by_service)] {
        assert_eq!(
            one_click(&service.url(""), &format!("/unsubscribe/{token}")).await,
            StatusCode::OK,
            "{who}'s old link"
        );
        assert_eq!(status(&site, who).await, Some(Status::Unsubscribed));
    }
    let keys = ok(site.tidings_env(&["key", "status"], &[("TIDINGS_SECRET", SECRET)]));
    assert!(
        keys.stdout.contains("1\tstore\t"),
        "the old key is key 1: {keys}"
    );
    assert!(
        keys.stdout
            .lines()
            .any(|l| l.starts_with("2\tTIDINGS_SECRET") && l.contains("active")),
        "{keys}"
    );
    service.stop();
}
