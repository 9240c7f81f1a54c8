//! What is checked before anything goes live ([`check`], for `tidings
//! check`): every story read and matched as a build would, every remote
//! source asked whether it answers, and every template a site renders —
//! the pages, the feeds' index, the digest (HTML, text and subject, in each
//! of its languages), the confirmation and unsubscribe emails — rendered
//! against sample data ([`check_templates`], which `tidings run` also
//! calls, refusing to start on any problem, so that a broken template is
//! found by the operator, not by a subscriber whose sign-up silently sends
//! nothing).

use std::collections::{HashMap, HashSet};

use chrono::Utc;

use crate::config::Config;
use crate::digest::{compose, render};
use crate::links::tokens::Signer;
use crate::model::SubscriberEmail;
use crate::model::problem::{Problem, Problems};
use crate::store::{FeedFacts, Indexed};
use crate::templates::{SAMPLE_RECIPIENT, problem, sample_stories};

/// What [`check`] found.
#[derive(Debug, Default)]
pub struct Checked {
    /// Every problem, sorted by file and line.
    pub problems: Vec<Problem>,
    /// Stories ready to publish, and drafts.
    pub stories: usize,
    pub drafts: usize,
    /// What each remote source that answered said, by source key.
    pub reachable: Vec<(String, String)>,
}

/// Everything `tidings check` checks, without touching the store or the
/// feeds: the stories (matched against an empty store, which finds
/// duplicate slugs and ids), the remote sources (asked all at once), the
/// templates.
pub async fn check(config: &Config) -> anyhow::Result<Checked> {
    let client = crate::sources::http::Client::new(config)?;
    let scanned = crate::publish::ingest::scan_all(
        config,
        &client,
        &crate::publish::ingest::Known::default(),
        &Default::default(),
        &crate::publish::ingest::Which::Local,
        Utc::now(),
        |_| true,
    )
    .await;
    let mut checked = Checked {
        stories: scanned.scans.iter().map(|(_, s)| s.stories.len()).sum(),
        drafts: scanned.scans.iter().map(|(_, s)| s.drafts.len()).sum(),
        ..Checked::default()
    };
    let mut problems = scanned.problems;
    // Every body rendered, as builds render those they show.
    let scans = {
        use rayon::prelude::*;
        let (config, mut scans) = (config.clone(), scanned.scans);
        tokio::task::spawn_blocking(move || {
            for (_, scan) in &mut scans {
                scan.stories.par_iter_mut().for_each(|story| {
                    crate::sources::bodies::render_held(&config, story);
                });
            }
            scans
        })
        .await?
    };
    let plan = crate::publish::plan::plan(config, scans, &[], &HashSet::new());
    problems.extend(plan.report.skipped);
    let probes = futures_util::future::join_all(
        config
            .sources
            .iter()
            .map(|s| crate::sources::probe(&client, s)),
    )
    .await;
    for (source, probe) in config.sources.iter().zip(probes) {
        match probe {
            Some(Ok(says)) => checked.reachable.push((source.key(), says)),
            Some(Err(p)) => problems.push(p),
            None => {}
        }
    }
    problems.extend(check_templates(config));
    problems.extend(crate::digest::note::check(config));
    if let Some(problem) = config.bounces.mailbox_problem() {
        problems.push(Problem::new(&config.path, problem).key("bounces.mailbox"));
    }
    // The relays' secrets, which `run` needs before it starts.
    if let Err(missing) = crate::bounces::relay::Relays::new(&config.bounces) {
        problems.extend(
            missing
                .into_iter()
                .map(|m| Problem::new(&config.path, m).key("bounces.webhooks.relays")),
        );
    }
    checked.problems = Problems(problems).sorted().0;
    Ok(checked)
}

/// Every template problem of the site, each naming the file, line and
/// column and what is wrong.
pub fn check_templates(config: &Config) -> Vec<Problem> {
    let origin = |name: &str| crate::templates::origin(config, name);
    let mut problems = crate::web::check_templates(config);
    problems.extend(feeds_index(config));
    if config.digests.is_empty() {
        return problems;
    }
    let stories = sample_stories(config);
    let themes: Vec<_> = config.themes.iter().map(|t| t.slug.clone()).collect();
    let signer = Signer::new(b"a key for sample links only");
    let recipient = SubscriberEmail::parse(SAMPLE_RECIPIENT).expect("a valid sample address");
    let url = format!("{}sample", config.public_url());
    let mut push = |p: Problem| {
        if !problems.contains(&p) {
            problems.push(p);
        }
    };
    let digest_templates = render::Templates::load(config);
    if let Err(e) = &digest_templates {
        push(problem(e, "templates/digest.html", &origin));
    }
    let sample_note = crate::digest::note::render(config, "A note from the *editor*.");
    for digest in &config.digests {
        for language in digest.languages(config.site.language.as_str()) {
            let language = language.as_str();
            if let Ok(templates) = &digest_templates {
                let now = Utc::now();
                let email = render::DigestEmail {
                    config,
                    digest,
                    language,
                    period: &crate::digest::email::period_label(
                        config,
                        language,
                        crate::store::editions::Period {
                            start: now - crate::store::editions::FIRST_EDITION_LOOKBACK,
                            end: now,
                        },
                    ),
                    sections: compose::sections(config, digest, &themes, &stories),
                    links: crate::digest::email::links(
                        config,
                        &signer,
                        digest,
                        Some(1),
                        (1, SAMPLE_RECIPIENT),
                        now,
                    ),
                    recipient: SAMPLE_RECIPIENT,
                    note: Some(&sample_note),
                    test: false,
                    web: false,
                };
                if let Err(e) = render::render(templates, &email) {
                    push(problem(&e, "templates/digest.html", &origin));
                }
                let web = render::DigestEmail { web: true, ..email };
                if let Err(e) = render::render(templates, &web) {
                    push(problem(&e, "templates/digest.html", &origin));
                }
            }
            if config.mail.is_some() {
                let confirm =
                    crate::mail::confirm::render(config, digest, language, &recipient, &url);
                if let Err(e) = confirm {
                    push(problem(&e, "templates/confirm.html", &origin));
                }
                if let Err(e) = crate::mail::leave::render(config, language, &recipient, &url) {
                    push(problem(&e, "templates/leave.html", &origin));
                }
            }
        }
    }
    problems
}

/// The feeds' `index.html`, rendered for sample feeds (the site's and each
/// theme's, one sample story each).
fn feeds_index(config: &Config) -> Vec<Problem> {
    let origin = |name: &str| crate::templates::origin(config, name);
    let tera = match crate::feeds::index::load(config) {
        Ok(t) => t,
        Err(e) => return vec![problem(&e, "templates/index.html", &origin)],
    };
    let stories = sample_stories(config);
    let index: Vec<Indexed> = stories
        .iter()
        .map(|s| Indexed {
            id: s.id.clone(),
            themes: s.story.themes.clone(),
        })
        .collect();
    let facts: HashMap<String, FeedFacts> = stories
        .iter()
        .map(|s| {
            let facts = FeedFacts {
                hash: String::new(),
                updated: s.updated(),
                published: s.story.published,
            };
            (s.id.as_str().to_owned(), facts)
        })
        .collect();
    let feeds = crate::feeds::prepare::prepare(config, &index, &facts);
    match crate::feeds::index::render(&tera, config, &feeds) {
        Ok(_) => Vec::new(),
        Err(e) => vec![problem(&e, "templates/index.html", &origin)],
    }
}
