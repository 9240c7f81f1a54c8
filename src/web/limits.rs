//! Rate limits on sign-ups: per client address and per target address,
//! so the form can be used neither to flood the site nor to flood
//! someone's inbox with confirmation emails.
//!
//! - A client (an IPv4 address, or an IPv6 /64) may make 5 sign-ups at
//!   once, then one more every 2 minutes: 5 per 10 minutes ([`CLIENT`]).
//! - An address may be signed up 3 times at once, then once more every 8
//!   hours: 3 per day ([`ADDRESS`]). This counts every valid sign-up of
//!   the address, whether or not it is known or an email goes out, so the
//!   answer never tells known addresses from new ones.
//!
//! The built-in WebSub hub's requests are limited the same way, per
//! client and per callback host ([`WEBSUB_CLIENT`], [`WEBSUB_CALLBACK`]).
//!
//! The client is the connection's peer, or with `[http] behind_proxy` the
//! last address of `X-Forwarded-For` (the one the proxy added). The counts
//! are kept in the store ([`Store::rate_limit`]), under SHA-256 hashes of
//! the client's bucket and of the address, never the values: every
//! instance on one store counts against the same limits, and a restart
//! forgets nothing.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use sha2::{Digest as _, Sha256};

use crate::store::Store;
use crate::store::limits::Quota;

/// Sign-ups per client (address bucket).
pub const CLIENT: Quota = Quota {
    burst: 5,
    every: Duration::from_secs(2 * 60),
};
/// Sign-ups per target address.
pub const ADDRESS: Quota = Quota {
    burst: 3,
    every: Duration::from_secs(8 * 60 * 60),
};

/// WebSub subscription requests per client (address bucket).
pub const WEBSUB_CLIENT: Quota = Quota {
    burst: 30,
    every: Duration::from_secs(10),
};
/// WebSub subscription requests per callback host.
pub const WEBSUB_CALLBACK: Quota = Quota {
    burst: 20,
    every: Duration::from_secs(60),
};

/// Which limit was hit, and when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after: Duration,
}

impl Limited {
    /// Whole seconds for `Retry-After`, at least 1.
    pub fn seconds(self) -> u64 {
        (self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0)).max(1)
    }

    /// Whole minutes, at least 1, for people.
    pub fn minutes(self) -> u64 {
        self.seconds().div_ceil(60).max(1)
    }
}

/// Counts a sign-up of `email_key` (the lower-cased address) from
/// `client` at `now`: first against the client's limit, then, if that
/// allowed it, against the address's. `Some` when one refused it.
pub async fn check(
    store: &Store,
    client: IpAddr,
    email_key: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<Limited>> {
    let client = key("client", &bucket(client).to_string());
    if let Some(wait) = store.rate_limit(&client, CLIENT, now).await? {
        return Ok(Some(Limited { retry_after: wait }));
    }
    let address = key("address", email_key);
    let wait = store.rate_limit(&address, ADDRESS, now).await?;
    Ok(wait.map(|retry_after| Limited { retry_after }))
}

/// Counts a WebSub subscription request from `client` for a callback on
/// `callback_host` at `now`, against the client's limit and then the
/// host's. `Some` when one refused it.
pub async fn websub(
    store: &Store,
    client: IpAddr,
    callback_host: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<Limited>> {
    let client = key("websub-client", &bucket(client).to_string());
    if let Some(wait) = store.rate_limit(&client, WEBSUB_CLIENT, now).await? {
        return Ok(Some(Limited { retry_after: wait }));
    }
    let host = key("websub-callback", callback_host);
    let wait = store.rate_limit(&host, WEBSUB_CALLBACK, now).await?;
    Ok(wait.map(|retry_after| Limited { retry_after }))
}

/// The stored key of a value of one kind: its SHA-256, with the kind in
/// it so that no two kinds share a key.
fn key(kind: &str, value: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    h.update([0]);
    h.update(value.as_bytes());
    h.finalize().into()
}

/// IPv6 clients hold a whole /64; one of them counts once.
fn bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The client's address: the peer, or behind a proxy the last address of
/// `X-Forwarded-For` (falling back to the peer when there is none).
pub fn client_address(peer: SocketAddr, headers: &HeaderMap, behind_proxy: bool) -> IpAddr {
    if behind_proxy {
        let last = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .rfind(|s| !s.trim().is_empty())
            .and_then(|s| s.trim().parse::<IpAddr>().ok());
        if let Some(ip) = last {
            return ip;
        }
    }
    peer.ip()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use chrono::TimeDelta;

    use crate::config::StorageUrl;

    /// A real SQLite store in a temporary folder.
    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StorageUrl::Sqlite(dir.path().join("limits.db")))
            .await
            .unwrap();
        (dir, store)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn clients_get_five_and_addresses_three() {
        let (_dir, store) = store().await;
        let now = Utc::now();
        let a = ip("192.0.2.1");
        for i in 0..5 {
            let who = format!("p{i}@example.org");
            assert_eq!(check(&store, a, &who, now).await.unwrap(), None, "{i}");
        }
        let limited = check(&store, a, "p5@example.org", now)
            .await
            .unwrap()
            .expect("the sixth from one client is refused");
        assert!(
            limited.seconds() > 60 && limited.seconds() <= 120,
            "{limited:?}"
        );
        assert_eq!(limited.minutes(), 2);
        let b = ip("192.0.2.2");
        assert_eq!(
            check(&store, b, "p5@example.org", now).await.unwrap(),
            None,
            "another client is not limited"
        );
        // Two minutes later, the client may make one more.
        let later = now + TimeDelta::seconds(120);
        assert_eq!(
            check(&store, a, "p6@example.org", later).await.unwrap(),
            None
        );
        assert!(
            check(&store, a, "p7@example.org", later)
                .await
                .unwrap()
                .is_some()
        );

        for i in 0..3 {
            let from = ip(&format!("198.51.100.{i}"));
            let counted = check(&store, from, "ann@example.org", now).await.unwrap();
            assert_eq!(counted, None, "{i}");
        }
        let limited = check(&store, ip("198.51.100.9"), "ann@example.org", now)
            .await
            .unwrap()
            .expect("the fourth of one address is refused");
        assert!(limited.minutes() > 60, "{limited:?}");
        let other = check(&store, ip("198.51.100.9"), "bo@example.org", now).await;
        assert_eq!(other.unwrap(), None);
    }

    #[tokio::test]
    async fn an_ipv6_client_is_its_64() {
        let (_dir, store) = store().await;
        let now = Utc::now();
        for i in 0..5 {
            let from = ip(&format!("2001:db8:1:2::{i}"));
            let who = format!("p{i}@example.org");
            assert_eq!(check(&store, from, &who, now).await.unwrap(), None);
        }
        let same_64 = check(&store, ip("2001:db8:1:2::ffff"), "q@example.org", now).await;
        assert!(same_64.unwrap().is_some());
        let next_64 = check(&store, ip("2001:db8:1:3::1"), "q@example.org", now).await;
        assert_eq!(next_64.unwrap(), None);
    }

    #[tokio::test]
    async fn rested_keys_are_forgotten_and_no_value_is_stored() {
        let (dir, store) = store().await;
        let now = Utc::now();
        for i in 0..3 {
            let from = ip(&format!("192.0.2.{i}"));
            check(&store, from, "ann@example.org", now).await.unwrap();
        }
        // A day later every key is rested: the next call tidies them away.
        let later = now + TimeDelta::days(1);
        check(&store, ip("203.0.113.1"), "bo@example.org", later)
            .await
            .unwrap();
        store.close().await;
        let url = format!("sqlite://{}", dir.path().join("limits.db").display());
        let mut db = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
            .await
            .unwrap();
        let keys: Vec<String> = sqlx::query_scalar("SELECT key FROM rate_limits")
            .fetch_all(&mut db)
            .await
            .unwrap();
        assert_eq!(keys.len(), 2, "only the last call's client and address");
        for k in &keys {
            assert_eq!(k.len(), 64, "a SHA-256 in hex: {k}");
            assert!(!k.contains("203.0.113") && !k.contains("bo@"), "{k}");
        }
    }

    #[test]
    fn behind_a_proxy_the_last_forwarded_address_counts() {
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let mut h = HeaderMap::new();
        h.append(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.9, 198.51.100.7"),
        );
        assert_eq!(
            client_address(peer, &h, true),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_address(peer, &h, false), peer.ip());
        assert_eq!(client_address(peer, &HeaderMap::new(), true), peer.ip());
    }
}
