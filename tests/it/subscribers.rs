//! `tidings subscribers …` through the binary: adding, importing (with bad
//! rows and repeats), exporting, listing and erasing, read back through the
//! exports and an independent CSV and JSON parse.

use crate::helpers::{FIXTURE_CONFIG, Run, Site};

/// The fixture site with a monthly digest in Swedish and English.
fn site() -> Site {
    let config = format!(
        "{FIXTURE_CONFIG}
[mail]
from = \"Fixture <news@example.org>\"
transport = \"file:outbox\"

[[digests]]
id = \"monthly\"
title = {{ sv = \"Månadsbrev\", en = \"Monthly\" }}

[[digests]]
id = \"weekly\"
title = {{ sv = \"Veckobrev\", en = \"Weekly\" }}
"
    );
    Site::with_config(&config)
}

fn ok(run: Run) -> Run {
    assert_eq!(run.code, 0, "{run}");
    run
}

/// The CSV export parsed with the csv crate: one map per row.
fn exported(site: &Site) -> Vec<std::collections::BTreeMap<String, String>> {
    let run = ok(site.tidings(&["subscribers", "export"]));
    let mut reader = csv::Reader::from_reader(run.stdout.as_bytes());
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|r| {
            headers
                .iter()
                .zip(r.unwrap().iter())
                .map(|(h, v)| (h.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

#[test]
fn add_normalizes_the_address_and_is_pending_until_confirmed() {
    let site = site();
    let run = ok(site.tidings(&[
        "subscribers",
        "add",
        " Anna.Lind@Exempel.SE ",
        "--themes",
        "beta,alpha,beta",
    ]));
    assert!(
        run.stdout.contains("added Anna.Lind@exempel.se (pending)"),
        "{run}"
    );
    ok(site.tidings(&[
        "subscribers",
        "add",
        "bo@bäckström.se",
        "--themes",
        "gamma",
        "--language",
        "en",
        "--digest",
        "weekly",
        "--confirmed",
    ]));
    let rows = exported(&site);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["email"], "Anna.Lind@exempel.se");
    assert_eq!(
        rows[0]["themes"], "beta;alpha",
        "order kept, repeats dropped"
    );
    assert_eq!(rows[0]["language"], "sv", "the site's language by default");
    assert_eq!(rows[0]["digest"], "monthly", "the first digest by default");
    assert_eq!(rows[0]["status"], "pending");
    assert_eq!(rows[0]["confirmed_at"], "");
    assert_eq!(rows[0]["consent_source"], "cli");
    assert_eq!(
        rows[1]["email"], "bo@xn--bckstrm-5wa1o.se",
        "IDN domains in ASCII"
    );
    assert_eq!(
        (rows[1]["status"].as_str(), rows[1]["digest"].as_str()),
        ("active", "weekly")
    );
    assert!(!rows[1]["confirmed_at"].is_empty());

    // The same person in other letter case is not a second subscriber.
    let again = ok(site.tidings(&[
        "subscribers",
        "add",
        "ANNA.LIND@exempel.se",
        "--themes",
        "gamma",
        "--confirmed",
    ]));
    assert!(
        again
            .stderr
            .contains("already a subscriber (pending); nothing changed"),
        "{again}"
    );
    let rows = exported(&site);
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0]["themes"].as_str(), rows[0]["status"].as_str()),
        ("beta;alpha", "pending")
    );
}

#[test]
fn add_refuses_bad_input_with_the_reason() {
    let site = site();
    for (args, says) in [
        (
            vec!["not-an-address", "--themes", "alpha"],
            "email: `not-an-address` is not an email address: no @",
        ),
        (
            vec!["a@example.org\nBcc: b@example.org", "--themes", "alpha"],
            "spaces or control characters",
        ),
        (
            vec!["a@example.org", "--themes", "alpha,nope"],
            "themes: unknown theme `nope`; expected one of: alpha, beta, gamma",
        ),
        (vec!["a@example.org", "--themes", ""], "themes: no themes"),
        (
            vec!["a@example.org", "--themes", "alpha", "--language", "de"],
            "language: unknown language `de`; the digest `monthly` is written in: en, sv",
        ),
        (
            vec!["a@example.org", "--themes", "alpha", "--digest", "daily"],
            "digest: unknown digest `daily`; expected one of: monthly, weekly",
        ),
    ] {
        let mut full = vec!["subscribers", "add"];
        full.extend(args);
        let run = site.tidings(&full);
        assert_eq!(run.code, 1, "{run}");
        assert!(run.stderr.contains(says), "expected {says:?}:\n{run}");
    }
    assert!(exported(&site).is_empty());
}

#[test]
fn import_reports_bad_rows_by_line_and_is_harmless_to_repeat() {
    let site = site();
    let csv = "\u{feff}email,themes,language,digest\n\
               ann@example.org,alpha;beta,sv,monthly\n\
               \"bo, the second\"@example.org,alpha,en,\n\
               carl@example.org,nope,sv,\n\
               dora@example.org,beta,de,\n\
               not-an-address,alpha,sv,\n\
               eva@example.org,gamma,en,daily\n\
               ANN@EXAMPLE.ORG,gamma,en,\n\
               \"fia@example.org\",\"beta;gamma\",en,weekly\n\
               gus@example.org,,sv,\n";
    std::fs::write(site.path("people.csv"), csv).unwrap();
    let run = ok(site.tidings(&["subscribers", "import", "people.csv", "--confirmed"]));
    assert!(
        run.stdout
            .contains("9 rows: 2 added (active), 1 already subscribed, 6 bad rows skipped"),
        "{run}"
    );
    for (line, says) in [
        (3, "is not an email address"),
        (4, "`themes`: unknown theme `nope`"),
        (5, "`language`: unknown language `de`"),
        (6, "`email`: `not-an-address` is not an email address"),
        (7, "`digest`: unknown digest `daily`"),
        (10, "`themes`: no themes"),
    ] {
        let prefix = format!("people.csv:{line}: ");
        assert!(
            run.stderr
                .lines()
                .any(|l| l.starts_with(&prefix) && l.contains(says)),
            "no line {line} saying {says:?}:\n{run}"
        );
    }
    let before = exported(&site);
    let emails: Vec<&str> = before.iter().map(|r| r["email"].as_str()).collect();
    assert_eq!(emails, ["ann@example.org", "fia@example.org"]);
    assert_eq!(before[0]["consent_source"], "import:people.csv");
    assert_eq!(before[1]["themes"], "beta;gamma");
    assert_eq!(before[1]["digest"], "weekly");

    let again = ok(site.tidings(&["subscribers", "import", "people.csv"]));
    assert!(
        again
            .stdout
            .contains("9 rows: 0 added (pending), 3 already subscribed, 6 bad rows skipped"),
        "{again}"
    );
    assert_eq!(
        exported(&site),
        before,
        "importing the same file twice changes nothing"
    );
}

#[test]
fn import_refuses_a_file_without_the_needed_columns() {
    let site = site();
    std::fs::write(
        site.path("people.csv"),
        "mail,topics\nann@example.org,alpha\n",
    )
    .unwrap();
    let run = site.tidings(&["subscribers", "import", "people.csv"]);
    assert_eq!(run.code, 1, "{run}");
    assert!(
        run.stderr
            .contains("people.csv:1: the header must name the columns email, themes and language"),
        "{run}"
    );
    let missing = site.tidings(&["subscribers", "import", "nowhere.csv"]);
    assert_eq!(missing.code, 1, "{missing}");
    assert!(
        missing.stderr.contains("cannot open nowhere.csv"),
        "{missing}"
    );
}

#[test]
fn an_export_imports_again_into_another_site_unchanged() {
    let first = site();
    let csv = "email,themes,language\nann@example.org,alpha;beta,sv\nbo@example.org,gamma,en\n";
    std::fs::write(first.path("people.csv"), csv).unwrap();
    ok(first.tidings(&["subscribers", "import", "people.csv", "--confirmed"]));
    let export = ok(first.tidings(&["subscribers", "export"])).stdout;

    let second = site();
    std::fs::write(second.path("export.csv"), &export).unwrap();
    ok(second.tidings(&["subscribers", "import", "export.csv", "--confirmed"]));
    let key = |rows: Vec<std::collections::BTreeMap<String, String>>| -> Vec<[String; 5]> {
        rows.into_iter()
            .map(|r| {
                [
                    r["email"].clone(),
                    r["themes"].clone(),
                    r["language"].clone(),
                    r["digest"].clone(),
                    r["status"].clone(),
                ]
            })
            .collect()
    };
    assert_eq!(key(exported(&second)), key(exported(&first)));
}

#[test]
fn json_export_and_list_show_every_subscriber() {
    let site = site();
    ok(site.tidings(&[
        "subscribers",
        "add",
        "ann@example.org",
        "--themes",
        "alpha",
        "--confirmed",
    ]));
    ok(site.tidings(&[
        "subscribers",
        "add",
        "bo@example.org",
        "--themes",
        "beta,gamma",
        "--language",
        "en",
    ]));
    let json: serde_json::Value = serde_json::from_str(
        &ok(site.tidings(&["subscribers", "export", "--format", "json"])).stdout,
    )
    .unwrap();
    let people = json.as_array().unwrap();
    assert_eq!(people.len(), 2);
    assert_eq!(people[1]["email"], "bo@example.org");
    assert_eq!(people[1]["themes"], serde_json::json!(["beta", "gamma"]));
    assert_eq!(people[1]["status"], "pending");
    assert_eq!(people[1]["language"], "en");
    assert!(people[0]["confirmed_at"].is_string());

    let list = ok(site.tidings(&["subscribers", "list", "--status", "active"]));
    assert_eq!(
        list.stdout,
        "email\tstatus\tlanguage\tdigest\tthemes\nann@example.org\tactive\tsv\tmonthly\talpha\n"
    );
    let empty = ok(site.tidings(&["subscribers", "export", "--format", "json"]));
    assert!(serde_json::from_str::<serde_json::Value>(&empty.stdout).is_ok());
}

#[test]
fn remove_erases_the_person_entirely() {
    let site = site();
    ok(site.tidings(&["subscribers", "add", "ann@example.org", "--themes", "alpha"]));
    ok(site.tidings(&["subscribers", "add", "bo@example.org", "--themes", "alpha"]));
    let run = ok(site.tidings(&["subscribers", "remove", "ANN@example.org"]));
    assert!(run.stdout.contains("removed"), "{run}");
    let rows = exported(&site);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["email"], "bo@example.org");
    let again = site.tidings(&["subscribers", "remove", "ann@example.org"]);
    assert_eq!(again.code, 1, "{again}");
    assert!(
        again
            .stderr
            .contains("no subscriber with the address ann@example.org"),
        "{again}"
    );
    // The address may sign up again afterwards, as a new person.
    ok(site.tidings(&["subscribers", "add", "ann@example.org", "--themes", "beta"]));
    assert_eq!(exported(&site).len(), 2);
}

#[test]
fn mail_and_digest_config_errors_name_their_keys() {
    let config = format!(
        "{FIXTURE_CONFIG}
[mail]
from = \"not an address\"
transport = \"smtp://user:secret@smtp.example.org\"
concurrency = 0

[[digests]]
id = \"monthly\"
title = {{ en = \"Monthly\" }}

[[digests]]
id = \"monthly\"
title = \"Again\"
"
    );
    let site = Site::with_config(&config);
    let run = site.tidings(&["check"]);
    assert_eq!(run.code, 1, "{run}");
    for says in [
        "`mail.from`: `not an address` is not an email address",
        "`mail.transport`: a password does not belong in config.toml: remove it and set TIDINGS_SMTP_PASSWORD",
        "`mail.concurrency`: 0 is out of range",
        "`digests[0].title`: missing a title in `sv`",
        "`digests[1].id`: duplicate digest id `monthly`",
    ] {
        assert!(run.stderr.contains(says), "expected {says:?}:\n{run}");
    }
    assert!(
        !run.stderr.contains("secret"),
        "the password is never echoed:\n{run}"
    );
}

#[test]
fn a_bad_digest_schedule_is_a_config_error_naming_the_key() {
    let config = format!(
        "{FIXTURE_CONFIG}
[[digests]]
id = \"monthly\"
title = {{ sv = \"Månadsbrev\" }}
schedule = \"0 25 * * *\"
"
    );
    let site = Site::with_config(&config);
    let run = site.tidings(&["check"]);
    assert_eq!(run.code, 1, "{run}");
    assert!(
        run.stderr
            .contains("`digests[0].schedule`: `0 25 * * *` is not a schedule"),
        "{run}"
    );
}
