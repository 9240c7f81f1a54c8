//! Rate limits on sign-ups (governor, in memory): per client address and
//! per target address, so the form can be used neither to flood the site
//! nor to flood someone's inbox with confirmation emails.
//!
//! - A client (an IPv4 address, or an IPv6 /64) may make [`CLIENT_BURST`]
//!   sign-ups at once, then one more every [`CLIENT_EVERY`]: 5 per 10
//!   minutes.
//! - An address may be signed up [`ADDRESS_BURST`] times at once, then
//!   once more every [`ADDRESS_EVERY`]: 3 per day. This counts every valid
//!   sign-up of the address, whether or not it is known or an email goes
//!   out, so the answer never tells known addresses from new ones.
//!
//! The client is the connection's peer, or with `[http] behind_proxy` the
//! last address of `X-Forwarded-For` (the one the proxy added). Addresses
//! are kept only as SHA-256 hashes. Limits live in the process: a restart
//! forgets them.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use axum::http::HeaderMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sha2::{Digest as _, Sha256};

pub const CLIENT_BURST: u32 = 5;
pub const CLIENT_EVERY: Duration = Duration::from_secs(2 * 60);
pub const ADDRESS_BURST: u32 = 3;
pub const ADDRESS_EVERY: Duration = Duration::from_secs(8 * 60 * 60);

/// Keys kept before forgetting those whose limit has fully recovered.
const TIDY_ABOVE: usize = 10_000;

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

/// The two limiters.
pub struct Limits {
    clients: DefaultKeyedRateLimiter<IpAddr>,
    addresses: DefaultKeyedRateLimiter<[u8; 32]>,
    clock: DefaultClock,
}

impl Default for Limits {
    fn default() -> Self {
        Limits::new()
    }
}

impl Limits {
    pub fn new() -> Limits {
        let quota = |burst: u32, every: Duration| {
            Quota::with_period(every)
                .expect("a non-zero period")
                .allow_burst(NonZeroU32::new(burst).expect("a non-zero burst"))
        };
        Limits {
            clients: RateLimiter::keyed(quota(CLIENT_BURST, CLIENT_EVERY)),
            addresses: RateLimiter::keyed(quota(ADDRESS_BURST, ADDRESS_EVERY)),
            clock: DefaultClock::default(),
        }
    }

    /// Counts a sign-up from `client`.
    pub fn client(&self, client: IpAddr) -> Result<(), Limited> {
        tidy(&self.clients);
        self.clients
            .check_key(&bucket(client))
            .map_err(|n| Limited {
                retry_after: n.wait_time_from(self.clock.now()),
            })
    }

    /// Counts a sign-up of `email_key` (the lower-cased address).
    pub fn address(&self, email_key: &str) -> Result<(), Limited> {
        tidy(&self.addresses);
        let key: [u8; 32] = Sha256::digest(email_key.as_bytes()).into();
        self.addresses.check_key(&key).map_err(|n| Limited {
            retry_after: n.wait_time_from(self.clock.now()),
        })
    }
}

fn tidy<K: std::hash::Hash + Eq + Clone>(limiter: &DefaultKeyedRateLimiter<K>) {
    if limiter.len() > TIDY_ABOVE {
        limiter.retain_recent();
        limiter.shrink_to_fit();
    }
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

    #[test]
    fn clients_get_five_and_addresses_three() {
        let limits = Limits::new();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..5 {
            assert!(limits.client(a).is_ok());
        }
        let limited = limits.client(a).unwrap_err();
        assert!(
            limited.seconds() > 60 && limited.seconds() <= 120,
            "{limited:?}"
        );
        assert!(limits.client(b).is_ok(), "another client is not limited");
        for _ in 0..3 {
            assert!(limits.address("ann@example.org").is_ok());
        }
        let limited = limits.address("ann@example.org").unwrap_err();
        assert!(limited.minutes() > 60, "{limited:?}");
        assert!(limits.address("bo@example.org").is_ok());
    }

    #[test]
    fn an_ipv6_client_is_its_64() {
        let limits = Limits::new();
        for i in 0..5 {
            let ip: IpAddr = format!("2001:db8:1:2::{i}").parse().unwrap();
            assert!(limits.client(ip).is_ok());
        }
        assert!(
            limits
                .client("2001:db8:1:2::ffff".parse().unwrap())
                .is_err()
        );
        assert!(limits.client("2001:db8:1:3::1".parse().unwrap()).is_ok());
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
