//! `tidings run`: the service. Checks that every template renders, binds
//! its listeners (before anything else, so that a busy port fails at once
//! and changes nothing), opens the store, ingests once, then runs each
//! scheduled job in its own task and serves the web until SIGTERM or
//! Ctrl-C; then stops taking new work, lets in-flight sends finish (at
//! most `TIDINGS_SHUTDOWN_SECONDS`, default 30) and exits 0. A process
//! whose `TIDINGS_SECRET` disagrees with the site's signing keys does not
//! start (see [`tidings::keys`]).

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use tidings::config::Config;
use tidings::config::env::Environment;
use tidings::digest::delivery::Options;
use tidings::links::keys::Keys;
use tidings::mail::Mailer;
use tidings::publish::Ingester;
use tidings::service::{self, Scheduler};
use tidings::store::Store;
use tidings::web;

pub async fn run(config: Config, env: Environment) -> Result<ExitCode> {
    if !config.digests.is_empty() && config.mail.is_none() {
        bail!(
            "config.toml has [[digests]] but no [mail]: add one with at least `from` and \
             `transport` (such as transport = \"file:outbox\")"
        );
    }
    // Nothing that cannot render goes live: a sign-up would answer "check
    // your inbox" and send nothing, a digest would fail for everyone.
    let problems = tidings::model::problem::Problems(tidings::preflight::check_templates(&config));
    if !problems.is_empty() {
        for p in problems.sorted().iter() {
            eprintln!("{p}");
        }
        bail!(
            "a template cannot be rendered (above): fix it and start again; `tidings check` \
             lists every problem"
        );
    }
    let listener = bind(config.http.listen, "listen").await?;
    let metrics_listener = match config.http.metrics_listen {
        Some(address) => Some(bind(address, "metrics_listen").await?),
        None => None,
    };
    let mut stop_signal = Box::pin(service::shutdown_signal());
    let config = Arc::new(config);
    let Some(store) = open_store(&config, &mut stop_signal).await? else {
        return Ok(ExitCode::SUCCESS);
    };
    let keys = Arc::new(Keys::load(&store, &env).await?);
    let mailer = Mailer::new(&config)?.map(Arc::new);
    let ingester = Arc::new(Ingester::new(config.clone(), store.clone()));

    // Fresh feeds before the first request, whatever the schedule says.
    // A failure is logged and recorded; the service still starts.
    let _ = ingester.run_now("start").await;

    let shared = web::Shared::new(
        config.clone(),
        store.clone(),
        keys.clone(),
        ingester.clone(),
        mailer.clone(),
    )?;
    let shared = Arc::new(shared);
    let background = shared.background.clone();
    let address = listener.local_addr()?;
    let mut listeners = vec![(listener, web::router(shared.clone()))];
    // The lines on standard output: scripts (and tests) read the ports,
    // the public one first.
    println!("listening on http://{address}/");
    tracing::info!(%address, public_url = %config.public_url(), "listening");
    if let Some(metrics_listener) = metrics_listener {
        let metrics = metrics_listener.local_addr()?;
        println!("metrics on http://{metrics}/metrics");
        tracing::info!(address = %metrics, "serving /metrics");
        listeners.push((metrics_listener, web::metrics_router(shared)));
    }
    std::io::stdout().flush()?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stop = Arc::new(AtomicBool::new(false));
    let scheduler = Arc::new(Scheduler {
        config: config.clone(),
        store: store.clone(),
        keys,
        ingester,
        mailer,
        digest_templates: Arc::new(tidings::digest::render::Templates::load(&config)?),
        options: Options::new(&env),
        stop: stop.clone(),
    });
    let mut jobs = tokio::task::JoinSet::new();
    for job in scheduler.jobs() {
        jobs.spawn(scheduler.clone().job_loop(job, stop_rx.clone()));
    }
    let rules = web::server::Rules::of(&config.http);
    let mut server = web::server::start(listeners, stop_rx.clone(), rules)
        .context("cannot start the HTTP threads")?;

    stop_signal.await;
    tracing::info!("stopping: no new work; waiting for what is in flight");
    stop.store(true, Ordering::SeqCst);
    let _ = stop_tx.send(true);
    let grace = env.shutdown;
    let finished = tokio::time::timeout(grace, async {
        while jobs.join_next().await.is_some() {}
        server.stopped().await;
        // Confirmation emails of sign-ups just answered.
        background.close();
        background.wait().await;
    })
    .await;
    if finished.is_err() {
        tracing::warn!(
            seconds = grace.as_secs(),
            "gave up waiting; rows still sending are taken again after their lease"
        );
    }
    store.close().await;
    server.release().await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Binds `[http] key`'s address, or says which key names a busy or
/// foreign one.
async fn bind(address: std::net::SocketAddr, key: &str) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address} ([http] {key})"))
}

/// Opens the store, waiting for a database server that is not up yet (a
/// machine booting, PostgreSQL restarting): each failure is logged and
/// tried again with a growing pause, up to a minute; `None` when a stop
/// signal came first.
async fn open_store(
    config: &Config,
    stop: &mut std::pin::Pin<Box<impl std::future::Future<Output = ()>>>,
) -> Result<Option<Store>> {
    let mut pause = Duration::from_secs(1);
    loop {
        match Store::open(&config.storage.url).await {
            Ok(store) => return Ok(Some(store)),
            // A SQLite file that cannot be opened will not open later.
            Err(e) if matches!(config.storage.url, tidings::config::StorageUrl::Sqlite(_)) => {
                return Err(e);
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), retry_in_s = pause.as_secs(), "cannot open the store");
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = stop.as_mut() => return Ok(None),
                }
                pause = (pause * 2).min(Duration::from_secs(60));
            }
        }
    }
}
