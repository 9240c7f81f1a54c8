//! The site's key ring: which key signs subscriber links, which keys
//! verify them, and the rule that every process of a site signs alike.
//!
//! Keys are numbered. The highest-numbered key is the *active* one: new
//! tokens are signed with it and name it. Every older key still verifies
//! the tokens that name it, so `tidings key rotate` never kills a link in
//! an email already sent. A key is either generated and kept in the store,
//! or given by the operator in `TIDINGS_SECRET`, of which the store keeps
//! only a fingerprint; an environment key that is no longer active is
//! given again in `TIDINGS_SECRET_PREVIOUS` to keep verifying.
//!
//! Every command that signs or verifies links loads the ring through
//! [`Keys::load`], which refuses to start a process whose environment
//! disagrees with the store: `TIDINGS_SECRET` missing while the site's
//! active key is an environment key, a different `TIDINGS_SECRET`, or one
//! set while the site signs with a stored key. Such a process would sign
//! links nobody else can verify (or fail to verify theirs).
//!
//! The first load on a store makes the ring: the key of earlier versions
//! (`settings.signing_key`) becomes key 1; then the environment's key, if
//! given, becomes the active one; with neither, a key is generated.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use chrono::{DateTime, Utc};

use crate::config::env::Environment;
use crate::links::tokens::{self, Claims, KeyId, Purpose, Signer, TokenError, Unverified};
use crate::store::Store;
use crate::store::keys::{KeyOrigin, NewKey, StoredKey};

/// The name under which earlier versions kept their one key.
const LEGACY_SETTING: &str = "signing_key";

/// A running process's keys: the signer made at start, read again from
/// the store when a token names a key it does not hold (another process
/// ran `tidings key rotate`).
pub struct Keys {
    store: Store,
    env: Environment,
    signer: RwLock<Arc<Signer>>,
    /// When the ring was last read again; at most once per [`RELOAD_EVERY`],
    /// so tokens naming made-up keys cannot make each request a query.
    reloaded: Mutex<Option<Instant>>,
}

const RELOAD_EVERY: Duration = Duration::from_secs(5);

impl Keys {
    /// Loads (on a new store, makes) the ring and checks that this
    /// process's environment agrees with it; the error says what to do.
    pub async fn load(store: &Store, env: &Environment) -> Result<Keys> {
        let ring = ring(store, env, Utc::now()).await?;
        let signer = agree(&ring, env)?;
        Ok(Keys {
            store: store.clone(),
            env: env.clone(),
            signer: RwLock::new(Arc::new(signer)),
            reloaded: Mutex::new(None),
        })
    }

    /// The signer as it stands.
    pub fn signer(&self) -> Arc<Signer> {
        self.signer.read().expect("not poisoned").clone()
    }

    /// Verifies `token` (see [`Signer::verify`]); a token naming a key
    /// this process does not hold makes it read the ring again first.
    pub async fn verify(
        &self,
        token: &Unverified,
        purpose: Purpose,
        email_key: &str,
        now: DateTime<Utc>,
    ) -> Result<Claims, TokenError> {
        let signer = self.signer();
        match signer.verify(token, purpose, email_key, now) {
            Err(TokenError::UnknownKey) if self.may_reload() => match self.reload().await {
                Ok(signer) => signer.verify(token, purpose, email_key, now),
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "cannot read the signing keys again");
                    Err(TokenError::UnknownKey)
                }
            },
            verified => verified,
        }
    }

    fn may_reload(&self) -> bool {
        let mut last = self.reloaded.lock().expect("not poisoned");
        let now = Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < RELOAD_EVERY) {
            return false;
        }
        *last = Some(now);
        true
    }

    /// Reads the ring again. A process keeps running whatever it finds:
    /// it signs with the store's active key when it holds it, else with
    /// the one it had (logging why), and verifies with every key it holds.
    async fn reload(&self) -> Result<Arc<Signer>> {
        let ring = self.store.signing_keys().await?;
        let current = self.signer();
        let held = held(&ring, &self.env);
        let active = ring
            .last()
            .and_then(|k| KeyId::try_from(k.id).ok())
            .filter(|id| held.iter().any(|(k, _)| k == id))
            .unwrap_or_else(|| {
                tracing::error!(
                    "the site's active signing key is given in TIDINGS_SECRET, which this process \
                     does not have: restart it with the new TIDINGS_SECRET"
                );
                current.active_key()
            });
        let mut keys = held;
        if !keys.iter().any(|(id, _)| *id == active) {
            return Ok(current);
        }
        keys.sort_by_key(|(id, _)| *id);
        let signer = Arc::new(Signer::with_keys(active, keys));
        *self.signer.write().expect("not poisoned") = signer.clone();
        tracing::info!(active = signer.active_key(), "signing keys read again");
        Ok(signer)
    }
}

/// The ring, made on first use.
async fn ring(store: &Store, env: &Environment, now: DateTime<Utc>) -> Result<Vec<StoredKey>> {
    for _ in 0..3 {
        let keys = store.signing_keys().await?;
        if !keys.is_empty() {
            return Ok(keys);
        }
        let mut first = Vec::new();
        if let Some(legacy) = store.setting(LEGACY_SETTING).await? {
            first.push(stored_key(legacy));
        }
        match &env.secret {
            Some(secret) => {
                let fingerprint = tokens::fingerprint(secret.as_bytes());
                if !first.iter().any(|k| k.fingerprint == fingerprint) {
                    first.push(NewKey {
                        origin: KeyOrigin::Environment,
                        secret: None,
                        fingerprint,
                    });
                }
            }
            None if first.is_empty() => first.push(stored_key(tokens::generate_key())),
            None => {}
        }
        // Another process making the ring at the same moment wins or
        // loses as a whole; then its ring is read.
        store.add_signing_keys(&first, true, now).await?;
    }
    bail!("cannot make the signing keys: other processes keep changing them")
}

fn stored_key(secret: Vec<u8>) -> NewKey {
    NewKey {
        origin: KeyOrigin::Store,
        fingerprint: tokens::fingerprint(&secret),
        secret: Some(secret),
    }
}

fn date(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d").to_string()
}

/// The signer of a process whose environment agrees with the ring, or
/// why it does not.
fn agree(ring: &[StoredKey], env: &Environment) -> Result<Signer> {
    let active = ring.last().context("the store holds no signing key")?;
    let given = env
        .secret
        .as_ref()
        .map(|s| tokens::fingerprint(s.as_bytes()));
    let known = |fp: &str| ring.iter().find(|k| k.fingerprint == fp);
    match (active.origin, given) {
        (KeyOrigin::Store, None) => {}
        (KeyOrigin::Environment, Some(fp)) if fp == active.fingerprint => {}
        (KeyOrigin::Store, Some(fp)) => match known(&fp) {
            Some(old) => bail!(
                "TIDINGS_SECRET is key {} of this site, which key {} (kept in the store) \
                 replaced on {}: unset TIDINGS_SECRET for every tidings command of this site, \
                 and keep the old value in TIDINGS_SECRET_PREVIOUS so that its links keep working",
                old.id,
                active.id,
                date(active.created_at)
            ),
            None => bail!(
                "TIDINGS_SECRET is set, but this site signs its links with key {}, kept in its \
                 store since {}: links signed with another key would not work anywhere else. \
                 Unset TIDINGS_SECRET for every tidings command of this site, or make it the \
                 site's key with `tidings key rotate` (run with TIDINGS_SECRET set); links \
                 already sent keep working either way",
                active.id,
                date(active.created_at)
            ),
        },
        (KeyOrigin::Environment, None) => bail!(
            "this site signs its links with the key given in TIDINGS_SECRET (key {}, \
             fingerprint {}, since {}), but TIDINGS_SECRET is not set for this command: the \
             links it made would not work. Set TIDINGS_SECRET to the value `tidings run` has \
             (for example from /etc/tidings.env); `tidings key status` shows the keys",
            active.id,
            active.fingerprint,
            date(active.created_at)
        ),
        (KeyOrigin::Environment, Some(fp)) => match known(&fp) {
            Some(old) => bail!(
                "TIDINGS_SECRET is key {} of this site, which key {} replaced on {}: set \
                 TIDINGS_SECRET to the new key (fingerprint {}) and the old one in \
                 TIDINGS_SECRET_PREVIOUS",
                old.id,
                active.id,
                date(active.created_at),
                active.fingerprint
            ),
            None => bail!(
                "TIDINGS_SECRET (fingerprint {fp}) is not the key this site signs its links with \
                 (key {}, fingerprint {}, since {}): every tidings command of a site needs the \
                 same TIDINGS_SECRET, or the links one makes do not work in the others. To \
                 change the key on purpose, run `tidings key rotate` with the new value set and \
                 the old one in TIDINGS_SECRET_PREVIOUS",
                active.id,
                active.fingerprint,
                date(active.created_at)
            ),
        },
    }
    let keys = held(ring, env);
    let active = KeyId::try_from(active.id).context("a signing key id out of range")?;
    Ok(Signer::with_keys(active, keys))
}

/// The keys of the ring this process holds: those kept in the store, and
/// those of the environment (`TIDINGS_SECRET`, `TIDINGS_SECRET_PREVIOUS`)
/// that the ring knows by their fingerprint.
fn held(ring: &[StoredKey], env: &Environment) -> Vec<(KeyId, Vec<u8>)> {
    let given: Vec<(String, &[u8])> = env
        .secret
        .iter()
        .chain(&env.previous_secrets)
        .map(|s| (tokens::fingerprint(s.as_bytes()), s.as_bytes()))
        .collect();
    for (fp, _) in &given {
        if !ring.iter().any(|k| k.fingerprint == *fp) {
            tracing::warn!(
                fingerprint = %fp,
                "TIDINGS_SECRET_PREVIOUS holds a key this site never had; it is ignored"
            );
        }
    }
    ring.iter()
        .filter_map(|k| {
            let id = KeyId::try_from(k.id).ok()?;
            let secret = match k.origin {
                KeyOrigin::Store => k.secret.clone()?,
                KeyOrigin::Environment => given
                    .iter()
                    .find(|(fp, _)| *fp == k.fingerprint)
                    .map(|(_, s)| s.to_vec())?,
            };
            Some((id, secret))
        })
        .collect()
}

/// One key as `tidings key status` shows it.
#[derive(Debug, Clone)]
pub struct KeyStatus {
    pub id: i64,
    pub origin: KeyOrigin,
    pub fingerprint: String,
    pub created_at: DateTime<Utc>,
    /// Signs new links.
    pub active: bool,
    /// This process holds it (a stored key always; an environment key when
    /// `TIDINGS_SECRET` or `TIDINGS_SECRET_PREVIOUS` gives it).
    pub held: bool,
}

/// Every key of the ring (without making one), and whether this process
/// holds each.
pub async fn status(store: &Store, env: &Environment) -> Result<Vec<KeyStatus>> {
    let ring = store.signing_keys().await?;
    let held = held(&ring, env);
    let last = ring.last().map(|k| k.id);
    Ok(ring
        .iter()
        .map(|k| KeyStatus {
            id: k.id,
            origin: k.origin,
            fingerprint: k.fingerprint.clone(),
            created_at: k.created_at,
            active: Some(k.id) == last,
            held: KeyId::try_from(k.id).is_ok_and(|id| held.iter().any(|(h, _)| *h == id)),
        })
        .collect())
}

/// What [`rotate`] did.
#[derive(Debug, Clone)]
pub struct Rotated {
    pub previous: KeyStatus,
    pub new: KeyStatus,
}

/// Adds a key that becomes the active one: `TIDINGS_SECRET` when set (of
/// which only the fingerprint is stored), else a new key kept in the
/// store. Every older key keeps verifying. When the key being replaced is
/// an environment key, `TIDINGS_SECRET_PREVIOUS` must hold it, so that the
/// operator has it at hand for the other processes.
pub async fn rotate(store: &Store, env: &Environment, now: DateTime<Utc>) -> Result<Rotated> {
    let ring = ring(store, env, now).await?;
    let active = ring.last().context("the store holds no signing key")?;
    let new = match &env.secret {
        Some(secret) => {
            let fingerprint = tokens::fingerprint(secret.as_bytes());
            if let Some(k) = ring.iter().find(|k| k.fingerprint == fingerprint) {
                bail!(
                    "TIDINGS_SECRET is already key {} of this site{}: to rotate, set \
                     TIDINGS_SECRET to a new value (and the current one in \
                     TIDINGS_SECRET_PREVIOUS), or unset it to have a key made and kept in the \
                     store",
                    k.id,
                    if k.id == active.id {
                        ", the active one"
                    } else {
                        ""
                    }
                );
            }
            NewKey {
                origin: KeyOrigin::Environment,
                secret: None,
                fingerprint,
            }
        }
        None => stored_key(tokens::generate_key()),
    };
    if active.origin == KeyOrigin::Environment
        && !env
            .previous_secrets
            .iter()
            .any(|s| tokens::fingerprint(s.as_bytes()) == active.fingerprint)
    {
        bail!(
            "the active key {} is given in TIDINGS_SECRET (fingerprint {}); put its value in \
             TIDINGS_SECRET_PREVIOUS for this command and every other one of the site, so that \
             the links it signed keep working, and run `tidings key rotate` again",
            active.id,
            active.fingerprint
        );
    }
    if !store.add_signing_keys(&[new], false, now).await? {
        bail!(
            "another process changed the signing keys at the same time; see `tidings key status`"
        );
    }
    let after = status(store, env).await?;
    let find = |id: i64| after.iter().find(|k| k.id == id).cloned();
    let new = after.last().cloned().context("the new key is stored")?;
    let previous = find(active.id).context("the previous key is stored")?;
    Ok(Rotated { previous, new })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: i64, origin: KeyOrigin, secret: &[u8]) -> StoredKey {
        StoredKey {
            id,
            origin,
            secret: (origin == KeyOrigin::Store).then(|| secret.to_vec()),
            fingerprint: tokens::fingerprint(secret),
            created_at: DateTime::UNIX_EPOCH,
        }
    }

    fn env(secret: Option<&str>, previous: &[&str]) -> Environment {
        let previous = previous.join(" ");
        Environment::from_vars(|name| match name {
            "TIDINGS_SECRET" => secret.map(Into::into),
            "TIDINGS_SECRET_PREVIOUS" => Some(previous.clone().into()),
            _ => None,
        })
        .unwrap()
    }

    const A: &str = "an-environment-key-of-forty-characters..";
    const B: &str = "another-environment-key,-forty-chars....";

    #[test]
    fn a_stored_key_ring_refuses_any_environment_key() {
        let ring = [key(1, KeyOrigin::Store, b"stored")];
        assert_eq!(agree(&ring, &env(None, &[])).unwrap().active_key(), 1);
        let e = agree(&ring, &env(Some(A), &[])).unwrap_err().to_string();
        assert!(
            e.contains("Unset TIDINGS_SECRET") && e.contains("key rotate"),
            "{e}"
        );
    }

    #[test]
    fn an_environment_key_ring_needs_that_key() {
        let ring = [
            key(1, KeyOrigin::Store, b"stored"),
            key(2, KeyOrigin::Environment, A.as_bytes()),
        ];
        let signer = agree(&ring, &env(Some(A), &[])).unwrap();
        assert_eq!(signer.active_key(), 2);
        assert!(signer.holds(1) && signer.holds(2));
        let e = agree(&ring, &env(None, &[])).unwrap_err().to_string();
        assert!(e.contains("TIDINGS_SECRET is not set"), "{e}");
        let e = agree(&ring, &env(Some(B), &[])).unwrap_err().to_string();
        assert!(e.contains("is not the key this site signs"), "{e}");
    }

    #[test]
    fn a_replaced_environment_key_is_named_and_verifies_when_given_again() {
        let ring = [
            key(1, KeyOrigin::Environment, A.as_bytes()),
            key(2, KeyOrigin::Environment, B.as_bytes()),
        ];
        let e = agree(&ring, &env(Some(A), &[])).unwrap_err().to_string();
        assert!(
            e.contains("TIDINGS_SECRET is key 1") && e.contains("key 2 replaced"),
            "{e}"
        );
        let without = agree(&ring, &env(Some(B), &[])).unwrap();
        assert!(!without.holds(1));
        let with = agree(&ring, &env(Some(B), &[A])).unwrap();
        assert!(with.holds(1) && with.active_key() == 2);
    }
}
