//! `tidings subscribers …` through the binary: adding, importing (with bad
//! rows and repeats), exporting, listing and erasing, read back through the
//! exports and an independent CSV and JSON parse.

use crate::support::{FIXTURE_CONFIG, Run, Site};

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

#[test]
fn import_names_the_real_line_in_crlf_files_with_blank_lines_and_multi_line_values() {
    let site = site();
    // CRLF line ends, blank lines (one of spaces and commas), a quoted
    // value over two lines, and a last row with no line end.
    let csv = "email,themes,language\r\n\
               \r\n\
               ann@example.org,alpha,sv\r\n\
               \r\n\
               \r\n\
               not-an-address,alpha,sv\r\n\
               \"bo@example.org\",\"alpha;\r\nbeta\",sv\r\n\
               carl@example.org,nope,sv\r\n\
               \x20 , ,\r\n\
               dora@example.org,beta,de";
    std::fs::write(site.path("people.csv"), csv).unwrap();
    let run = ok(site.tidings(&["subscribers", "import", "people.csv", "--confirmed"]));
    assert!(
        run.stdout
            .contains("5 rows: 2 added (active), 0 already subscribed, 3 bad rows skipped"),
        "{run}"
    );
    let reported: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("people.csv:"))
        .collect();
    assert_eq!(reported.len(), 3, "{run}");
    for (line, says) in [
        (6, "`email`: `not-an-address` is not an email address"),
        (9, "`themes`: unknown theme `nope`"),
        (11, "`language`: unknown language `de`"),
    ] {
        let prefix = format!("people.csv:{line}: ");
        assert!(
            reported
                .iter()
                .any(|l| l.starts_with(&prefix) && l.contains(says)),
            "no line {line} saying {says:?}:\n{run}"
        );
    }
    let emails: Vec<String> = exported(&site)
        .into_iter()
        .map(|r| format!("{} {}", r["email"], r["themes"]))
        .collect();
    assert_eq!(
        emails,
        ["ann@example.org alpha", "bo@example.org alpha;beta"],
        "the value over two lines is one value"
    );

    // The same rows with LF line ends: the same lines.
    std::fs::write(site.path("lf.csv"), csv.replace("\r\n", "\n")).unwrap();
    let lf = ok(site.tidings(&["subscribers", "import", "lf.csv"]));
    for line in [6, 9, 11] {
        assert!(
            lf.stderr.contains(&format!("lf.csv:{line}: ")),
            "line {line}:\n{lf}"
        );
    }
}

#[test]
fn what_import_and_add_echo_from_input_is_escaped() {
    let site = site();
    let csv = "email,themes,language\n\
               \"\x1b[31mred\x1b[0m@example.org\",alpha,sv\n\
               ann@example.org,\"al\x1b[5mpha\x07\",sv\n\
               \"bo@example.org\nfake.csv:1: all fine\",alpha,sv\n\
               cy@example.org,alpha,\u{202e}vs\n";
    std::fs::write(site.path("people.csv"), csv).unwrap();
    let run = ok(site.tidings(&["subscribers", "import", "people.csv"]));
    assert!(
        run.stdout
            .contains("4 rows: 0 added (pending), 0 already subscribed, 4 bad rows skipped"),
        "{run}"
    );
    for forbidden in ['\x1b', '\x07', '\u{202e}'] {
        assert!(
            !run.stderr.contains(forbidden),
            "{forbidden:?} reached the terminal:\n{run:?}",
            run = run.stderr
        );
    }
    for (line, shown) in [
        (
            2,
            r"`\u{1b}[31mred\u{1b}[0m@example.org` is not an email address",
        ),
        (3, r"unknown theme `al\u{1b}[5mpha\u{7}`"),
        (
            4,
            r"`bo@example.org\nfake.csv:1: all fine` is not an email address",
        ),
        (6, r"unknown language `\u{202e}vs`"),
    ] {
        let prefix = format!("people.csv:{line}: ");
        assert!(
            run.stderr
                .lines()
                .any(|l| l.starts_with(&prefix) && l.contains(shown)),
            "no line {line} showing {shown}:\n{}",
            run.stderr
        );
    }
    assert!(
        !run.stderr.lines().any(|l| l.starts_with("fake.csv")),
        "a value cannot forge a line of output:\n{}",
        run.stderr
    );

    // What the operator types is echoed the same way.
    let add = site.tidings(&[
        "subscribers",
        "add",
        "a\x1b[2J@example.org",
        "--themes",
        "alpha",
    ]);
    assert_eq!(add.code, 1, "{add}");
    assert!(!add.stderr.contains('\x1b'), "{:?}", add.stderr);
    assert!(add.stderr.contains(r"`a\u{1b}[2J@example.org`"), "{add}");
    let remove = site.tidings(&["subscribers", "remove", "x\x1b[2J@example.org"]);
    assert_eq!(remove.code, 1, "{remove}");
    assert!(!remove.stderr.contains('\x1b'), "{:?}", remove.stderr);
}
