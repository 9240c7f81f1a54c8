//! Bounces and complaints that come back by email: the VERP envelope
//! sender that names each delivery ([`verp_address`]), recognising reports
//! ([`parse`]), and importing them ([`import`]): a report is acted on only
//! when a token in it verifies against the site's key ring and the address
//! of the subscriber it names; everything else is left alone. [`mailbox`]
//! reads them from a mailbox over IMAP.

pub mod mailbox;
pub mod parse;
pub mod relay;
pub mod webhooks;

use anyhow::Result;
use chrono::{DateTime, Duration, Utc};

use crate::config::Bounces;
use crate::links::tokens::{BounceToken, Signer};
use crate::model::BounceKind;
use crate::store::Store;
use crate::store::bounces::{NewBounce, Policy, Recorded};
use parse::Class;

/// `LOCAL+TOKEN@DOMAIN` for `return_path` `LOCAL@DOMAIN`; `None` (and a
/// warning) in the unlikely case the result is no valid address (ids so
/// large that the local part passes 64 characters): the message then
/// goes out with its From address as envelope sender.
pub fn verp_address(return_path: &lettre::Address, token: &BounceToken) -> Option<lettre::Address> {
    let local = format!("{}+{token}", return_path.user());
    if local.len() > 64 {
        tracing::warn!(
            edition = token.edition_id,
            subscriber = token.subscriber_id,
            "the VERP address would be too long; this message keeps its From address as envelope sender"
        );
        return None;
    }
    lettre::Address::new(local, return_path.domain()).ok()
}

/// What importing one message found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Imported {
    /// A report whose token verified, recorded (or already recorded).
    Matched {
        kind: BounceKind,
        subscriber_id: i64,
        edition_id: i64,
        recorded: Recorded,
    },
    /// A bounce or complaint without a token that verifies: ignored.
    Unmatched { kind: BounceKind, tokens: usize },
    /// An auto-reply: never a bounce, nothing done.
    AutoReply,
    /// A notice that delivery succeeded (or was relayed): nothing done.
    Delivered,
    /// Not a report at all: nothing done.
    Unrecognised,
}

impl std::fmt::Display for Imported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Imported::Matched {
                kind,
                subscriber_id,
                edition_id,
                recorded,
            } => {
                write!(
                    f,
                    "matched: {kind} bounce of subscriber {subscriber_id} (edition {edition_id}): "
                )?;
                match recorded {
                    Recorded::New { id, action } => write!(f, "event {id}, {action}"),
                    Recorded::Duplicate { id } => {
                        write!(f, "already recorded as event {id}, nothing done")
                    }
                    Recorded::NoSubscriber => {
                        f.write_str("no such subscriber any more, nothing done")
                    }
                }
            }
            Imported::Unmatched { kind, tokens: 0 } => {
                write!(
                    f,
                    "unmatched: a {kind} report with no token of ours, ignored"
                )
            }
            Imported::Unmatched { kind, tokens } => write!(
                f,
                "unmatched: a {kind} report whose {tokens} token(s) do not verify, ignored"
            ),
            Imported::AutoReply => f.write_str("auto-reply: not a bounce, ignored"),
            Imported::Delivered => f.write_str("delivery notice (not a failure): ignored"),
            Imported::Unrecognised => f.write_str("not a bounce report: ignored"),
        }
    }
}

/// Imports one raw message received at `now`: recognises it, verifies its
/// tokens, and records a matched report under the policy of `config`
/// (see [`Store::record_bounce`]). The same report imported twice is
/// recorded once.
pub async fn import(
    store: &Store,
    signer: &Signer,
    config: &Bounces,
    raw: &[u8],
    now: DateTime<Utc>,
) -> Result<Imported> {
    let parsed = parse::parse(raw);
    let kind = match parsed.class {
        Class::Report(kind) => kind,
        Class::AutoReply => return Ok(Imported::AutoReply),
        Class::Delivered => return Ok(Imported::Delivered),
        Class::Unrecognised => return Ok(Imported::Unrecognised),
    };
    let Some(token) = verified(store, signer, &parsed.tokens).await? else {
        return Ok(Imported::Unmatched {
            kind,
            tokens: parsed.tokens.len(),
        });
    };
    let policy = Policy {
        soft_limit: config.soft_limit,
        soft_since: now - Duration::days(i64::from(config.soft_window_days)),
    };
    let event = NewBounce {
        received_at: now,
        subscriber_id: token.subscriber_id,
        edition_id: token.edition_id,
        kind,
        diagnostic: &parsed.diagnostic,
        report: raw,
        identity: None,
    };
    let recorded = store.record_bounce(&event, policy).await?;
    if let Recorded::New { id, action } = &recorded {
        tracing::info!(event = id, subscriber = token.subscriber_id, edition = token.edition_id, kind = %kind, action = %action, "bounce recorded");
        warn_on_rates(store, token.edition_id, kind).await?;
    }
    Ok(Imported::Matched {
        kind,
        subscriber_id: token.subscriber_id,
        edition_id: token.edition_id,
        recorded,
    })
}

/// After a new event of `kind` about edition `edition_id`: a warning in
/// the log when it took the edition's rate of that kind above its
/// threshold (complaints 0.1%, hard bounces 2% of the messages sent).
pub async fn warn_on_rates(store: &Store, edition_id: i64, kind: BounceKind) -> Result<()> {
    let now = store.edition_bounces(edition_id).await?;
    let sent = store.delivery_counts(edition_id).await?.sent;
    let mut before = now;
    let count = match kind {
        BounceKind::Hard => &mut before.hard,
        BounceKind::Soft => &mut before.soft,
        BounceKind::Complaint => &mut before.complaints,
    };
    *count = (*count - 1).max(0);
    if now.over(kind, sent) && !before.over(kind, sent) {
        for warning in now.warnings(sent) {
            if warning.starts_with(if kind == BounceKind::Complaint {
                "complaint"
            } else {
                "hard"
            }) {
                tracing::warn!(edition = edition_id, "{warning}");
            }
        }
    }
    Ok(())
}

/// The first of `tokens` that verifies against the address of the
/// subscriber it names.
async fn verified<'t>(
    store: &Store,
    signer: &Signer,
    tokens: &'t [BounceToken],
) -> Result<Option<&'t BounceToken>> {
    for token in tokens {
        let Some(subscriber) = store.subscriber_by_id(token.subscriber_id).await? else {
            continue;
        };
        if signer
            .verify_bounce(token, &subscriber.email.to_lowercase())
            .is_ok()
        {
            return Ok(Some(token));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StorageUrl;
    use crate::model::{Language, NewSubscriber, Status, SubscriberEmail, ThemeSlug};
    use crate::store::bounces::Action;

    const FIXTURE_VERP: &str = "bounces+7-42-1-u5c7nq3sz6iuwwne@goda-exempel.example.org";

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/tests/fixtures/bounces/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap()
    }

    /// A SQLite store in a temporary folder with ann (active).
    async fn store() -> (tempfile::TempDir, Store, i64) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StorageUrl::Sqlite(dir.path().join("b.db")))
            .await
            .unwrap();
        let ann = NewSubscriber {
            email: SubscriberEmail::parse("Ann@example.org").unwrap(),
            status: Status::Active,
            themes: vec![ThemeSlug::parse("alpha").unwrap()],
            language: Language::parse("sv").unwrap(),
            digest: "monthly".into(),
            consent_source: "test".into(),
        };
        store.add_subscribers(&[ann], Utc::now()).await.unwrap();
        let id = store
            .subscriber("ann@example.org")
            .await
            .unwrap()
            .unwrap()
            .id;
        (dir, store, id)
    }

    /// The fixture `name` re-addressed to `token`, with `salt` added so
    /// that two reports of one fixture are two reports.
    fn report(name: &str, token: &BounceToken, salt: &str) -> Vec<u8> {
        let verp = format!("bounces+{token}@example.org");
        format!(
            "X-Salt: {salt}\n{}",
            fixture(name).replace(FIXTURE_VERP, &verp)
        )
        .into_bytes()
    }

    #[tokio::test]
    async fn soft_bounces_count_within_the_window_only() {
        let (_dir, store, ann) = store().await;
        let signer = Signer::new(b"k");
        let config = Bounces {
            soft_limit: 2,
            soft_window_days: 30,
            ..Bounces::default()
        };
        let token = signer.sign_bounce(3, ann, "ann@example.org");
        let now = Utc::now();
        let at = |days: i64| now - Duration::days(days);
        let soft = |salt: &str| report("postfix-soft.eml", &token, salt);
        // Two months ago: outside the window when the next one comes.
        let first = import(&store, &signer, &config, &soft("a"), at(60))
            .await
            .unwrap();
        let Imported::Matched { recorded, .. } = first else {
            panic!("{first:?}")
        };
        assert!(matches!(
            recorded,
            Recorded::New {
                action: Action::Counted { count: 1, limit: 2 },
                ..
            }
        ));
        let second = import(&store, &signer, &config, &soft("b"), at(1))
            .await
            .unwrap();
        assert!(
            second.to_string().contains("soft bounce 1 of 2"),
            "{second}"
        );
        let third = import(&store, &signer, &config, &soft("c"), now)
            .await
            .unwrap();
        assert!(third.to_string().contains("marked bounced"), "{third}");
        let ann_now = store.subscriber_by_id(ann).await.unwrap().unwrap();
        assert_eq!(ann_now.status, Status::Bounced);
        // A hard bounce of someone already bounced changes nothing more.
        let hard = report("postfix-hard.eml", &token, "d");
        let fourth = import(&store, &signer, &config, &hard, now).await.unwrap();
        assert!(
            fourth
                .to_string()
                .contains("nothing changed (already bounced)"),
            "{fourth}"
        );
    }

    #[tokio::test]
    async fn tokens_of_another_key_or_address_are_unmatched() {
        let (_dir, store, ann) = store().await;
        let signer = Signer::new(b"k");
        let config = Bounces::default();
        let now = Utc::now();
        let other_key = Signer::new(b"another site").sign_bounce(3, ann, "ann@example.org");
        let other_address = signer.sign_bounce(3, ann, "bo@example.org");
        let nobody = signer.sign_bounce(3, ann + 100, "ann@example.org");
        for token in [other_key, other_address, nobody] {
            let raw = report("postfix-hard.eml", &token, "x");
            let imported = import(&store, &signer, &config, &raw, now).await.unwrap();
            assert_eq!(
                imported,
                Imported::Unmatched {
                    kind: BounceKind::Hard,
                    tokens: 1
                }
            );
        }
        let ann_now = store.subscriber_by_id(ann).await.unwrap().unwrap();
        assert_eq!(ann_now.status, Status::Active);
        assert!(
            store
                .bounce_events(&Default::default())
                .await
                .unwrap()
                .is_empty()
        );
    }
}
