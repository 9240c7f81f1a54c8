//! Leaving without a working link: the page of a dead unsubscribe link
//! offers a form that mails the address a fresh link (the same answer for
//! every address, known or not) and `[mail] unsubscribe_address`.

use reqwest::StatusCode;
use tidings::model::Status;

use crate::support::{Page, client, eventually, get, outbox, serve, status, subscribe, web_site};

#[tokio::test]
async fn a_dead_unsubscribe_link_offers_a_fresh_one_by_email_that_works() {
    let site = web_site("file:outbox");
    let config = std::fs::read_to_string(site.config_path())
        .unwrap()
        .replace(
            "rate_limit = 0",
            "rate_limit = 0\nunsubscribe_address = \"leave@example.org\"",
        );
    site.write_config(&config);
    subscribe(&site, "ann@example.org", "alpha");
    let service = serve(&site);
    let c = client();

    // The link of an email that no longer works (cut short by a mail
    // client, say): the page says so and offers two ways out.
    let dead = get(&c, &service.url("/unsubscribe/AgB1AAAAAQ.cut")).await;
    dead.assert_html(StatusCode::BAD_REQUEST, "sv");
    assert!(
        dead.has_id("invalid-link") && dead.has_id("leave"),
        "{}",
        dead.body
    );
    assert!(
        dead.body
            .contains("href=\"mailto:leave@example.org?subject=unsubscribe\""),
        "{}",
        dead.body
    );
    assert!(
        dead.body.contains("href=\"/subscribe\""),
        "subscribing again is still offered"
    );

    let post = |email: &'static str, csrf: String| {
        let c = c.clone();
        let url = service.url("/unsubscribe");
        async move {
            let form = [("csrf", csrf.as_str()), ("email", email), ("website", "")];
            Page::from(c.post(url).form(&form).send().await.unwrap()).await
        }
    };
    // Without the form's token: refused.
    let forged = post("ann@example.org", "1.2.3".into()).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    // Not an address: the form again, with the problem.
    let typo = post("ann-at-example.org", dead.csrf()).await;
    typo.assert_html(StatusCode::UNPROCESSABLE_ENTITY, "sv");
    assert!(typo.has_id("leave-email-error"), "{}", typo.body);
    assert!(typo.body.contains("value=\"ann-at-example.org\""));

    // A known address and an unknown one get the same answer.
    let known = post("Ann@Example.org", dead.csrf()).await;
    known.assert_html(StatusCode::OK, "sv");
    assert!(known.has_id("leave-sent"), "{}", known.body);
    let unknown = post("nobody@example.org", dead.csrf()).await;
    assert_eq!(unknown.status, StatusCode::OK);
    assert_eq!(unknown.body, known.body, "nothing tells who subscribes");

    // Only the subscriber's own inbox gets a link, and it works.
    eventually("the link was mailed", || async {
        outbox(&site).contains_key("ann@example.org")
    })
    .await;
    let mail = outbox(&site);
    assert_eq!(
        mail.len(),
        1,
        "nothing to the unknown address: {:?}",
        mail.keys()
    );
    let m = &mail["ann@example.org"][0];
    assert!(
        m.subject.starts_with("Avsluta din prenumeration"),
        "{}",
        m.subject
    );
    let at = m.text.find("/unsubscribe/").expect("a link") + "/unsubscribe/".len();
    let token: String = m.text[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    assert!(m.html.contains(&token));
    assert_eq!(status(&site, "ann@example.org").await, Some(Status::Active));
    let done = client()
        .post(service.url(&format!("/unsubscribe/{token}")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    assert_eq!(
        status(&site, "ann@example.org").await,
        Some(Status::Unsubscribed)
    );

    // The form also has a page of its own.
    let own = get(&c, &service.url("/unsubscribe?lang=en")).await;
    own.assert_html(StatusCode::OK, "en");
    assert!(own.has_id("leave-heading") && !own.has_id("invalid-link"));
    service.stop();
}
