//! The relays' bounce webhooks through `tidings run`: a digest is sent
//! (to the outbox, with VERP envelope senders), then each relay's payload
//! from `tests/fixtures/webhooks/` (adapted from its documentation) is
//! addressed to the digest's recipients, signed by the test with its own
//! keys as the relay signs it, and posted to `/webhooks/bounces/<relay>`.
//! Wrong or missing signatures get 401 and record nothing; a hard bounce
//! marks the subscriber bounced, a complaint unsubscribes, and the same
//! event posted twice is recorded once. SES's SNS certificate and
//! subscription confirmation come from a loopback server the test starts.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::Utc;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Reply, Service, Site, Upstream, ok, outbox, sent_bounce_site};

/// What the fixtures say, replaced by the test's own values.
const FIXTURE_VERP: &str = "bounces+7-42-1-u5c7nq3sz6iuwwne@goda-exempel.example.org";
const FIXTURE_MESSAGE_ID: &str = "e7.s42.monthly@goda-exempel.example.org";
const FIXTURE_RECIPIENT: &str = "anna@example.se";

const MAILGUN_KEY: &str = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0";
const POSTMARK_PASSWORD: &str = "pm-hook-password-1";

/// One digest's delivery to one subscriber, as the outbox shows it.
struct Sent {
    email: String,
    verp: String,
    message_id: String,
}

/// A digest site with `[bounces]` and `[bounces.webhooks]` (`hooks` lines
/// added to it), `people` subscribed, after one `digest send`.
fn sent_site(hooks: &str, people: &[&str]) -> (Site, Vec<Sent>) {
    let site = sent_bounce_site(
        "file:outbox",
        &format!("\n[bounces.webhooks]\n{hooks}"),
        people,
    );
    let mail = outbox(&site);
    let sent = people
        .iter()
        .map(|email| {
            let m = &mail[*email][0];
            let verp = m.headers["return-path"]
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned();
            assert!(verp.starts_with("bounces+"), "{verp}");
            Sent {
                email: email.to_string(),
                verp,
                message_id: m.message_id.trim_matches(['<', '>']).to_owned(),
            }
        })
        .collect();
    (site, sent)
}

/// The fixture `name`, about `sent` instead of the fixture's recipient.
fn fixture(name: &str, sent: &Sent) -> String {
    let path = format!(
        "{}/tests/fixtures/webhooks/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(path)
        .unwrap()
        .replace(FIXTURE_VERP, &sent.verp)
        .replace(FIXTURE_MESSAGE_ID, &sent.message_id)
        .replace(FIXTURE_RECIPIENT, &sent.email)
}

fn fixture_json(name: &str, sent: &Sent) -> Value {
    serde_json::from_str(&fixture(name, sent)).unwrap()
}

fn status_of(site: &Site, email: &str) -> String {
    let list = ok(site.tidings(&["subscribers", "list"]));
    let line = list
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("{email}\t")))
        .unwrap_or_else(|| panic!("{email} not listed:\n{list}"));
    line.split('\t').nth(1).unwrap().to_owned()
}

/// The rows of `bounces list`.
fn events(site: &Site) -> Vec<String> {
    let list = ok(site.tidings(&["bounces", "list"]));
    list.stdout.lines().skip(1).map(str::to_owned).collect()
}

/// POSTs `body` to the relay's webhook with `headers`: the status and text.
async fn post(
    service: &Service,
    relay: &str,
    headers: &[(&str, String)],
    body: impl Into<Vec<u8>>,
) -> (StatusCode, String) {
    let mut request = reqwest::Client::new()
        .post(service.url(&format!("/webhooks/bounces/{relay}")))
        .header("content-type", "application/json")
        .body(body.into());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

// ---------------------------------------------------------------- SES / SNS

/// Signs an SNS message as SNS does: RSA over the canonical form of its
/// fields (SHA1 for SignatureVersion 1, SHA256 for 2), with the test key.
fn sns_sign(message: &mut Value, version: &str) {
    use rsa::pkcs8::DecodePrivateKey as _;
    use sha2::Digest as _;
    message["SignatureVersion"] = json!(version);
    let keys: &[&str] = if message["Type"] == "Notification" {
        &[
            "Message",
            "MessageId",
            "Subject",
            "Timestamp",
            "TopicArn",
            "Type",
        ]
    } else {
        &[
            "Message",
            "MessageId",
            "SubscribeURL",
            "Timestamp",
            "Token",
            "TopicArn",
            "Type",
        ]
    };
    let mut canonical = String::new();
    for key in keys {
        if let Some(v) = message[*key].as_str() {
            canonical.push_str(&format!("{key}\n{v}\n"));
        }
    }
    let pem = std::fs::read_to_string(format!(
        "{}/tests/fixtures/webhooks/sns-test-key.pem",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(&pem).unwrap();
    let signature = if version == "1" {
        let digest = sha1::Sha1::digest(canonical.as_bytes());
        key.sign(rsa::Pkcs1v15Sign::new::<sha1::Sha1>(), &digest)
    } else {
        let digest = sha2::Sha256::digest(canonical.as_bytes());
        key.sign(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &digest)
    }
    .unwrap();
    message["Signature"] = json!(BASE64.encode(signature));
}

/// An SNS notification carrying the SES notification `ses`, its
/// certificate at `cert_url`, signed with `version`.
fn sns_notification(ses: &Value, cert_url: &str, version: &str, sent: &Sent) -> String {
    let mut message = fixture_json("sns-notification.json", sent);
    message["Message"] = json!(ses.to_string());
    message["SigningCertURL"] = json!(cert_url);
    sns_sign(&mut message, version);
    message.to_string()
}

#[tokio::test]
async fn ses_over_sns_confirms_its_subscription_and_records_verified_notifications() {
    let (site, sent) = sent_site(
        "relays = [\"ses\"]\nsns_topic_arns = [\"arn:aws:sns:eu-west-1:123456789012:tidings-bounces\"]",
        &["ann@example.org", "bo@example.org"],
    );
    let (ann, bo) = (&sent[0], &sent[1]);
    let sns = Upstream::start();
    let cert = std::fs::read(format!(
        "{}/tests/fixtures/webhooks/sns-test-cert.pem",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    sns.set("/cert.pem", Reply::ok("application/x-pem-file", cert));
    sns.set("/", Reply::ok("text/xml", "<ConfirmSubscriptionResponse/>"));
    let cert_url = sns.url("/cert.pem");
    let pattern = format!("http://{}:*", sns.addr().ip());
    let service = site.serve(&[("TIDINGS_SNS_CERT_URL_PATTERN", &pattern)]);

    // The subscription: a forged one fetches nothing; a signed one is
    // confirmed by fetching its SubscribeURL.
    let mut confirm = fixture_json("sns-subscription-confirmation.json", ann);
    let subscribe_url = format!("{}?Action=ConfirmSubscription&Token=abc", sns.url("/"));
    confirm["SubscribeURL"] = json!(subscribe_url);
    confirm["SigningCertURL"] = json!(cert_url);
    sns_sign(&mut confirm, "1");
    let mut forged = confirm.clone();
    forged["SubscribeURL"] = json!(format!(
        "{}?Action=ConfirmSubscription&Token=x",
        sns.url("/")
    ));
    let (status, text) = post(&service, "ses", &[], forged.to_string()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
    assert_eq!(sns.request_count("/"), 0);
    let (status, text) = post(&service, "ses", &[], confirm.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains("subscription confirmed"), "{text}");
    let confirmations = sns.requests("/");
    assert_eq!(confirmations.len(), 1);
    assert_eq!(confirmations[0].query_value("Token"), Some("abc"));

    // A hard bounce of ann, signed with SignatureVersion 2.
    let bounce = fixture_json("ses-bounce.json", ann);
    let body = sns_notification(&bounce, &cert_url, "2", ann);
    // Tampered after signing: refused, nothing recorded.
    let tampered = body.replace("Permanent", "Transient");
    let (status, text) = post(&service, "ses", &[], tampered).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
    // Unsigned (raw message delivery): refused.
    let (status, _) = post(&service, "ses", &[], bounce.to_string()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A certificate from a host the pattern does not allow: refused.
    let elsewhere = cert_url.replace("127.0.0.1", "localhost");
    let (status, text) = post(
        &service,
        "ses",
        &[],
        sns_notification(&bounce, &elsewhere, "2", ann),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
    assert!(events(&site).is_empty());
    assert_eq!(status_of(&site, "ann@example.org"), "active");

    let (status, text) = post(&service, "ses", &[], body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains("1 recorded"), "{text}");
    assert_eq!(status_of(&site, "ann@example.org"), "bounced");
    // SNS delivers it again: recorded once.
    let (status, text) = post(&service, "ses", &[], body).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains("0 recorded, 1 already recorded"), "{text}");
    // The certificate was fetched once.
    assert_eq!(sns.request_count("/cert.pem"), 1);

    // Another topic: refused.
    let complaint = fixture_json("ses-complaint.json", bo);
    let mut other = fixture_json("sns-notification.json", bo);
    other["Message"] = json!(complaint.to_string());
    other["SigningCertURL"] = json!(cert_url);
    other["TopicArn"] = json!("arn:aws:sns:eu-west-1:123456789012:someone-else");
    sns_sign(&mut other, "1");
    let (status, text) = post(&service, "ses", &[], other.to_string()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    assert_eq!(status_of(&site, "bo@example.org"), "active");

    // A complaint of bo (SignatureVersion 1) unsubscribes at once.
    let (status, text) = post(
        &service,
        "ses",
        &[],
        sns_notification(&complaint, &cert_url, "1", bo),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(status_of(&site, "bo@example.org"), "unsubscribed");

    // Not JSON: 400 with a reason.
    let (status, text) = post(&service, "ses", &[], "Type=Notification").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("not the JSON SNS sends"), "{text}");

    let rows = events(&site);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows.iter()
            .any(|r| r.contains("\thard\tann@example.org\t") && r.contains("User unknown")),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|r| r.contains("\tcomplaint\tbo@example.org\t") && r.contains("abuse")),
        "{rows:?}"
    );
    let show = ok(site.tidings(&["bounces", "show", "1"]));
    assert!(show.stdout.contains("\"TopicArn\""), "{show}");
}

// ---------------------------------------------------------------- Mailgun

/// A Mailgun payload signed with `key` at `timestamp` with `token`.
fn mailgun_signed(mut payload: Value, key: &str, timestamp: i64, token: &str) -> String {
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(format!("{timestamp}{token}").as_bytes());
    payload["signature"] = json!({
        "timestamp": timestamp.to_string(),
        "token": token,
        "signature": hex::encode(mac.finalize().into_bytes()),
    });
    payload.to_string()
}

#[tokio::test]
async fn mailgun_needs_a_fresh_hmac_signature() {
    let (site, sent) = sent_site(
        "relays = [\"mailgun\"]",
        &["ann@example.org", "bo@example.org"],
    );
    let (ann, bo) = (&sent[0], &sent[1]);
    let service = site.serve(&[("TIDINGS_MAILGUN_SIGNING_KEY", MAILGUN_KEY)]);
    let now = Utc::now().timestamp();
    let failed = fixture_json("mailgun-failed-permanent.json", ann);

    // The documentation's own signature is of another key; a wrong key,
    // a stale timestamp and no signature at all are refused too.
    let refused = [
        fixture("mailgun-failed-permanent.json", ann),
        mailgun_signed(failed.clone(), "another-key", now, "t1"),
        mailgun_signed(failed.clone(), MAILGUN_KEY, now - 3600, "t2"),
        json!({"event-data": failed["event-data"]}).to_string(),
    ];
    for body in refused {
        let (status, text) = post(&service, "mailgun", &[], body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
    }
    assert!(events(&site).is_empty());

    let body = mailgun_signed(failed.clone(), MAILGUN_KEY, now, "token-1");
    let (status, text) = post(&service, "mailgun", &[], body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains("1 recorded"), "{text}");
    assert_eq!(status_of(&site, "ann@example.org"), "bounced");
    // The same request again is a replay.
    let (status, text) = post(&service, "mailgun", &[], body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
    assert!(text.contains("replay"), "{text}");
    // Mailgun sending the event again, signed anew: recorded once.
    let again = mailgun_signed(failed, MAILGUN_KEY, now, "token-2");
    let (status, text) = post(&service, "mailgun", &[], again).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains("1 already recorded"), "{text}");

    let complained = fixture_json("mailgun-complained.json", bo);
    let body = mailgun_signed(complained, MAILGUN_KEY, now, "token-3");
    let (status, text) = post(&service, "mailgun", &[], body).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(status_of(&site, "bo@example.org"), "unsubscribed");
    let rows = events(&site);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows.iter()
            .any(|r| r.contains("\thard\tann@example.org\t") && r.contains("550 5.1.1")),
        "{rows:?}"
    );
}

// ---------------------------------------------------------------- Postmark

#[tokio::test]
async fn postmark_needs_its_basic_authentication() {
    let (site, sent) = sent_site(
        "relays = [\"postmark\"]\npostmark_user = \"tidings\"",
        &["ann@example.org", "bo@example.org"],
    );
    let (ann, bo) = (&sent[0], &sent[1]);
    let service = site.serve(&[("TIDINGS_POSTMARK_WEBHOOK_PASSWORD", POSTMARK_PASSWORD)]);
    let auth = |user: &str, password: &str| {
        vec![(
            "authorization",
            format!("Basic {}", BASE64.encode(format!("{user}:{password}"))),
        )]
    };
    let bounce = fixture("postmark-bounce.json", ann);
    for headers in [
        vec![],
        auth("tidings", "wrong"),
        auth("other", POSTMARK_PASSWORD),
    ] {
        let (status, text) = post(&service, "postmark", &headers, bounce.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
    }
    assert!(events(&site).is_empty());
    let right = auth("tidings", POSTMARK_PASSWORD);
    let (status, text) = post(&service, "postmark", &right, bounce.clone()).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains("1 recorded"), "{text}");
    assert_eq!(status_of(&site, "ann@example.org"), "bounced");
    let (_, text) = post(&service, "postmark", &right, bounce).await;
    assert!(text.contains("1 already recorded"), "{text}");

    let complaint = fixture("postmark-spam-complaint.json", bo);
    let (status, text) = post(&service, "postmark", &right, complaint).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(status_of(&site, "bo@example.org"), "unsubscribed");

    // A stranger's bounce is nobody's; a body that is no record is 400.
    let stranger =
        fixture("postmark-bounce.json", ann).replace("ann@example.org", "zed@example.org");
    let (_, text) = post(&service, "postmark", &right, stranger).await;
    assert!(text.contains("1 of no subscriber"), "{text}");
    let (status, text) = post(&service, "postmark", &right, "{\"ID\": 1}").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("RecordType"), "{text}");
    assert_eq!(events(&site).len(), 2);
}

// ---------------------------------------------------------------- SendGrid

/// A P-256 key pair: the signing key and the public key as SendGrid shows
/// it (base64 of the DER SubjectPublicKeyInfo).
fn sendgrid_keys() -> (ring::signature::EcdsaKeyPair, String) {
    use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    // SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING point }
    let mut spki = hex::decode("3059301306072a8648ce3d020106082a8648ce3d030107034200").unwrap();
    spki.extend_from_slice(pair.public_key().as_ref());
    (pair, BASE64.encode(spki))
}

fn sendgrid_headers(
    pair: &ring::signature::EcdsaKeyPair,
    body: &str,
) -> Vec<(&'static str, String)> {
    let timestamp = Utc::now().timestamp().to_string();
    let rng = ring::rand::SystemRandom::new();
    let signature = pair
        .sign(&rng, format!("{timestamp}{body}").as_bytes())
        .unwrap();
    vec![
        (
            "x-twilio-email-event-webhook-signature",
            BASE64.encode(signature.as_ref()),
        ),
        ("x-twilio-email-event-webhook-timestamp", timestamp),
    ]
}

#[tokio::test]
async fn sendgrid_needs_its_ecdsa_signature() {
    let (site, sent) = sent_site(
        "relays = [\"sendgrid\"]",
        &["ann@example.org", "bo@example.org"],
    );
    let (ann, bo) = (&sent[0], &sent[1]);
    let (pair, public) = sendgrid_keys();
    let service = site.serve(&[("TIDINGS_SENDGRID_VERIFICATION_KEY", &public)]);
    let body = fixture("sendgrid-events.json", ann);
    let (other, _) = sendgrid_keys();
    let refused = [vec![], sendgrid_headers(&other, &body), {
        let mut headers = sendgrid_headers(&pair, &body);
        headers[1].1 = "1".into();
        headers
    }];
    for headers in refused {
        let (status, text) = post(&service, "sendgrid", &headers, body.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
    }
    assert!(events(&site).is_empty());

    // processed and open say nothing; deferred is soft, bounce hard.
    let (status, text) = post(
        &service,
        "sendgrid",
        &sendgrid_headers(&pair, &body),
        body.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains("2 recorded"), "{text}");
    assert_eq!(status_of(&site, "ann@example.org"), "bounced");
    let (_, text) = post(&service, "sendgrid", &sendgrid_headers(&pair, &body), body).await;
    assert!(text.contains("0 recorded, 2 already recorded"), "{text}");

    let spam = fixture("sendgrid-spamreport.json", bo);
    let (status, text) = post(&service, "sendgrid", &sendgrid_headers(&pair, &spam), spam).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(status_of(&site, "bo@example.org"), "unsubscribed");
    let rows = events(&site);
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(
        rows.iter()
            .any(|r| r.contains("\tsoft\tann@example.org\t") && r.contains("400 try again later")),
        "{rows:?}"
    );
}

// ---------------------------------------------------------------- set-up

#[tokio::test]
async fn relays_not_enabled_answer_404_and_a_missing_secret_stops_the_start() {
    let (site, sent) = sent_site(
        "relays = [\"postmark\"]\npostmark_user = \"tidings\"",
        &["ann@example.org"],
    );
    let service = site.serve(&[("TIDINGS_POSTMARK_WEBHOOK_PASSWORD", POSTMARK_PASSWORD)]);
    let body = fixture("ses-bounce.json", &sent[0]);
    for relay in ["ses", "mailgun", "sendgrid", "elsewhere"] {
        let (status, _) = post(&service, relay, &[], body.clone()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{relay}");
    }
    // Over the size limit.
    let (status, _) = post(&service, "postmark", &[], vec![b' '; 1024 * 1024 + 1024]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    drop(service);

    let run = site.tidings(&["run"]);
    assert_eq!(run.code, 1, "{run}");
    assert!(
        run.stderr
            .contains("TIDINGS_POSTMARK_WEBHOOK_PASSWORD is not set"),
        "{run}"
    );
    let check = site.tidings(&["check"]);
    assert_eq!(check.code, 1, "{check}");
    assert!(
        check.stderr.contains("`bounces.webhooks.relays`"),
        "{check}"
    );
    assert!(
        check
            .stderr
            .contains("TIDINGS_POSTMARK_WEBHOOK_PASSWORD is not set"),
        "{check}"
    );

    let config = std::fs::read_to_string(site.config_path()).unwrap();
    site.write_config(&config.replace(
        "relays = [\"postmark\"]\npostmark_user = \"tidings\"",
        "relays = [\"postmark\", \"sparkpost\"]",
    ));
    let check = site.tidings(&["check"]);
    assert_eq!(check.code, 1, "{check}");
    assert!(
        check.stderr.contains("`bounces.webhooks.relays[1]`"),
        "{check}"
    );
    assert!(
        check.stderr.contains("unknown relay \"sparkpost\""),
        "{check}"
    );
    assert!(check.stderr.contains("needs `postmark_user`"), "{check}");
}
