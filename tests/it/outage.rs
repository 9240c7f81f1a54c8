//! The database goes away under a running service: every connection is
//! reset in the middle of a send (as when PostgreSQL restarts) and new
//! ones are refused for a while (as when it is unreachable). The service
//! reports itself down, keeps running, and once the database is back
//! finishes the edition with every subscriber sent exactly once. Runs in
//! the PostgreSQL pass (`TIDINGS_TEST_BACKEND=postgres`): a SQLite store
//! is a file on the same machine and has no connection to lose.

use std::time::Duration;

use crate::support::{
    Backend, Proxy, Site, SmtpServer, backend, block_on, import, ok, once_in, ran_an_hour_ago,
    recent, scheduled_site, wait_until,
};

/// `/healthz`'s status code, or 0 when the service does not answer.
fn health(url: &str) -> u16 {
    let url = url.to_owned();
    block_on(|| async move {
        match reqwest::Client::new()
            .get(url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
        {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        }
    })
}

fn pg_url(site: &Site) -> String {
    match site.storage_url() {
        tidings::config::StorageUrl::Postgres(url) => url,
        other => panic!("not a PostgreSQL store: {other}"),
    }
}

/// Points the site's store at `proxy` instead of the server itself.
fn through(site: &Site, proxy: &Proxy) {
    let url = pg_url(site);
    let mut proxied = url::Url::parse(&url).unwrap();
    proxied.set_host(Some("127.0.0.1")).unwrap();
    proxied.set_port(Some(proxy.port)).unwrap();
    let config = std::fs::read_to_string(site.config_path()).unwrap();
    assert!(config.contains(&url), "the config names its database");
    std::fs::write(site.config_path(), config.replace(&url, proxied.as_str())).unwrap();
}

#[test]
fn a_database_outage_mid_send_loses_and_doubles_nothing() {
    if backend() != Backend::Postgres {
        return;
    }
    let Some(smtp) = SmtpServer::start_light() else {
        return;
    };
    const PEOPLE: usize = 3_000;
    // Paced, so that the send is still going when the database goes away.
    let site = scheduled_site(&smtp.transport(), &once_in(6), "");
    let config = std::fs::read_to_string(site.config_path()).unwrap();
    site.write_config(&config.replace("rate_limit = 0", "rate_limit = 250"));
    recent(&site, "a", "Vatten i Kisumu", 2, &["alpha"]);
    site.build();
    import(&site, PEOPLE);
    ran_an_hour_ago(&site);
    let upstream = url::Url::parse(&pg_url(&site)).unwrap();
    let proxy = Proxy::start(&format!(
        "{}:{}",
        upstream.host_str().unwrap(),
        upstream.port().unwrap_or(5432)
    ));
    through(&site, &proxy);

    let service = site.serve(&[]);
    let healthz = service.url("/healthz");
    assert_eq!(health(&healthz), 200, "{}", service.log());
    assert!(
        wait_until(60, || smtp.count() >= PEOPLE / 10),
        "the send did not get going:\n{}",
        service.log()
    );
    proxy.cut();
    let at_cut = smtp.count();
    assert!(at_cut < PEOPLE, "the outage came before the send ended");
    assert!(
        wait_until(15, || health(&healthz) == 503),
        "/healthz did not report the store down:\n{}",
        service.log()
    );
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(health(&healthz), 503, "still down");
    proxy.restore();
    assert!(
        wait_until(30, || health(&healthz) == 200),
        "/healthz did not recover:\n{}",
        service.log()
    );
    let finished = || {
        let status = site.tidings(&["digest", "status"]);
        status.code == 0 && status.stdout.contains(&format!("{PEOPLE} sent, 0 failed"))
    };
    assert!(
        wait_until(180, || smtp.count() >= PEOPLE && finished()),
        "the edition was not finished after the outage: {} received\n{}",
        smtp.count(),
        service.log()
    );
    std::thread::sleep(Duration::from_secs(1));
    let (code, log) = service.stop();
    assert_eq!(code, 0, "{log}");
    let mail = smtp.recipient_counts();
    assert_eq!(mail.len(), PEOPLE, "every subscriber has a message");
    let twice: Vec<_> = mail.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent twice: {twice:?}");
    assert!(
        log.contains("cannot record the delivery yet")
            || log.contains("cannot reach the store")
            || log.contains("job failed"),
        "the outage was logged:\n{log}"
    );
    let status = ok(site.tidings(&["digest", "status"]));
    assert!(!status.stdout.contains("unfinished"), "{status}");
    eprintln!("{at_cut} of {PEOPLE} sent when the database went away");
}
