//! The `file:` transport and Message-IDs: every message the program makes
//! has its own Message-ID (except a digest delivery sent again after a
//! crash, which keeps its own on purpose), and the outbox never loses a
//! message by writing another over it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use reqwest::StatusCode;

use crate::support::{
    Mail, Site, client, digest_site, eventually, ok, parse_all, recent, serve, subscribe, web_site,
};

/// Every `.eml` file of the site's outbox, by file name.
fn outbox_files(site: &Site) -> BTreeMap<String, Vec<u8>> {
    let dir = site.path("outbox");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return BTreeMap::new();
    };
    entries
        .map(|e| e.unwrap().path())
        .filter(|p: &PathBuf| p.extension().is_some_and(|x| x == "eml"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

fn parsed(files: &BTreeMap<String, Vec<u8>>) -> Vec<Mail> {
    parse_all(files.values().cloned())
}

#[tokio::test]
async fn two_confirmations_at_the_same_moment_are_two_files_with_their_own_message_ids() {
    let site = web_site("file:outbox");
    let service = serve(&site);
    let c = client();
    let sign_up = || {
        c.post(service.url("/api/subscribe"))
            .json(&serde_json::json!({
                "email": "ann@example.org", "themes": ["alpha"], "language": "en"
            }))
            .send()
    };
    // Sent together: the two confirmations are made in the same second.
    let (first, second) = tokio::join!(sign_up(), sign_up());
    assert_eq!(first.unwrap().status(), StatusCode::ACCEPTED);
    assert_eq!(second.unwrap().status(), StatusCode::ACCEPTED);
    eventually("both confirmations are written", || async {
        outbox_files(&site).len() >= 2
    })
    .await;
    let files = outbox_files(&site);
    assert_eq!(files.len(), 2, "{:?}", files.keys());
    let mail = parsed(&files);
    assert!(mail.iter().all(|m| m.to == "ann@example.org"));
    assert!(
        mail.iter()
            .all(|m| m.text.contains("https://example.org/news/confirm/")),
        "both are confirmations"
    );
    assert_ne!(mail[0].message_id, mail[1].message_id);
    for m in &mail {
        let (left, host) = m.message_id.split_once('@').unwrap();
        assert_eq!(host, "example.org");
        let random = left.rsplit('.').next().unwrap();
        assert!(
            left.starts_with("confirm.s") && random.len() == 32,
            "a random part: {}",
            m.message_id
        );
        assert!(
            files.contains_key(&format!("{}.eml", m.message_id)),
            "the file is named by the Message-ID: {:?}",
            files.keys()
        );
    }
}

#[test]
fn a_digest_sent_again_after_a_crash_is_kept_beside_the_first_never_over_it() {
    let site = digest_site("file:outbox");
    recent(&site, "a1", "Alpha one", 1, &["alpha"]);
    site.build();
    subscribe(&site, "ann@example.org", "alpha");
    subscribe(&site, "bo@example.org", "alpha");
    ok(site.tidings(&["digest", "send"]));
    let before = outbox_files(&site);
    assert_eq!(before.len(), 2);

    // What a crash between sending and marking leaves: rows to send again.
    site.sql(&[
        "UPDATE deliveries SET status = 'pending'",
        "UPDATE editions SET completed_at = NULL",
    ]);
    let again = ok(site.tidings(&["digest", "send"]));
    assert!(again.stdout.contains("resuming edition 1"), "{again}");
    assert!(again.stdout.contains("2 sent"), "{again}");
    let after = outbox_files(&site);
    assert_eq!(after.len(), 4, "{:?}", after.keys());
    for (name, bytes) in &before {
        assert_eq!(&after[name], bytes, "{name} is as it was");
        let copy = name.replace(".eml", ".2.eml");
        assert!(after.contains_key(&copy), "{copy} in {:?}", after.keys());
    }
    // A copy says it is one: the same Message-ID, per edition and person.
    let mut by_person: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for m in parsed(&after) {
        by_person.entry(m.to).or_default().push(m.message_id);
    }
    for (person, ids) in &by_person {
        assert_eq!(ids.len(), 2, "{person}");
        assert_eq!(ids[0], ids[1], "{person}'s copy keeps its Message-ID");
    }
    assert_ne!(
        by_person["ann@example.org"][0],
        by_person["bo@example.org"][0]
    );

    // Test sends, one after the other: each its own message and file.
    for _ in 0..2 {
        ok(site.tidings(&["digest", "test", "--to", "editor@example.org"]));
    }
    let files = outbox_files(&site);
    let tests: Vec<Mail> = parsed(&files)
        .into_iter()
        .filter(|m| m.to == "editor@example.org")
        .collect();
    assert_eq!(tests.len(), 2);
    assert_ne!(tests[0].message_id, tests[1].message_id);
    assert!(tests[0].message_id.starts_with("test.monthly."));
}
