//! Nothing that cannot render goes live: `check` renders every template
//! (pages, feeds index, digest, confirmation and unsubscribe emails)
//! against sample data and names `file:line:column`; `run` refuses to start
//! on a broken one; a sign-up whose confirmation cannot be built (a
//! template broken after the start) is an error, not a success.

use reqwest::StatusCode;

use crate::support::{Page, client, get, ok, serve, status, web_site};

fn write(site: &crate::support::Site, rel: &str, text: &str) {
    let path = site.path(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn check_renders_every_template_and_names_the_line() {
    let site = web_site("file:outbox");
    ok(site.tidings(&["check"]));
    for (file, text, line) in [
        // Does not parse.
        ("templates/confirm.html", "<p>one</p>\n<p>{% if %}</p>\n", 2),
        // Parses, but cannot render: no such value.
        (
            "templates/digest.html",
            "<p>one</p>\n\n<p>{{ nope.title }}</p>\n",
            3,
        ),
        (
            "templates/digest.txt",
            "{{ period }}\n{{ sections.x.y }}\n",
            2,
        ),
        ("templates/leave.txt", "{% for %}\n", 1),
        (
            "templates/web/theme.html",
            "{% extends \"web/base.html\" %}\n{% block content %}{{ page.nothing.here }}{% endblock content %}\n",
            2,
        ),
        (
            "templates/index.html",
            "<ul>\n{% for f in feeds %}{{ f.missing.x }}{% endfor %}\n</ul>\n",
            2,
        ),
    ] {
        write(&site, file, text);
        let run = site.tidings(&["check"]);
        assert_eq!(run.code, 1, "{file}: {run}");
        let at = format!("{file}:{line}:");
        assert!(
            run.stderr.lines().any(|l| l.contains(&at)),
            "{file}: no `{at}` in\n{run}"
        );
        std::fs::remove_file(site.path(file)).unwrap();
    }
    ok(site.tidings(&["check"]));
}

#[test]
fn run_refuses_to_start_with_a_broken_template() {
    let site = web_site("file:outbox");
    write(&site, "templates/confirm.html", "<p>{% if %}</p>\n");
    let config = std::fs::read_to_string(site.config_path()).unwrap();
    site.write_config(&format!(
        "{config}\n[http]\nlisten = \"127.0.0.1:0\"\nmetrics_listen = \"off\"\n"
    ));
    let run = site.tidings_env(&["run"], &[("TIDINGS_SECRET", crate::support::SECRET)]);
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stderr.contains("templates/confirm.html:1:"), "{run}");
    assert!(
        run.stderr.contains("a template cannot be rendered"),
        "{run}"
    );
    assert!(!run.stdout.contains("listening on"), "{run}");
}

#[tokio::test]
async fn a_sign_up_whose_confirmation_cannot_be_built_is_an_error_not_a_success() {
    let site = web_site("file:outbox");
    let service = serve(&site);
    // Broken after the start: the operator edits the template live.
    write(&site, "templates/confirm.txt", "{{ nothing.here }}\n");
    let c = client();
    let csrf = get(&c, &service.url("/")).await.csrf();
    let form = [
        ("csrf", csrf.as_str()),
        ("email", "ann@example.org"),
        ("themes", "alpha"),
        ("language", "sv"),
        ("digest", "monthly"),
        ("website", ""),
    ];
    let page = Page::from(
        c.post(service.url("/subscribe"))
            .form(&form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    page.assert_html(StatusCode::SERVICE_UNAVAILABLE, "sv");
    assert!(!page.has_id("check-inbox"), "{}", page.body);
    let api = c
        .post(service.url("/api/subscribe"))
        .json(&serde_json::json!({"email": "bo@example.org", "themes": ["alpha"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        status(&site, "ann@example.org").await,
        None,
        "nothing stored"
    );
    assert_eq!(status(&site, "bo@example.org").await, None);
    let (_, log) = service.stop();
    assert!(
        log.contains("its confirmation email cannot be built"),
        "the operator is told why: {log}"
    );
    assert!(!log.contains("ann@example.org"), "{log}");
}
