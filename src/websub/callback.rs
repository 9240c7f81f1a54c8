//! Subscribers' callback URLs: parsed (absolute http(s), no fragment, not
//! too long) and checked before every request the hub makes to them, so
//! that the hub cannot be aimed at the machine it runs on or at the
//! private network behind it: the host is resolved, and an address that is
//! loopback, private, link-local, unspecified or otherwise not global is
//! refused unless `[feeds] websub_allow_private_callbacks` is true.
//! The check is made when a subscription is asked for (to answer 400
//! with the reason) and again by the resolver of the client that calls
//! callbacks ([`PublicOnly`]), on the very addresses it connects to: a
//! name cannot resolve to a public address for the check and to a private
//! one for the request.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use url::Url;

/// The longest callback URL accepted, in bytes.
pub const MAX_LEN: usize = 2000;

/// A callback URL as a subscriber gave it, checked for its form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    url: Url,
    host: String,
}

impl Callback {
    /// `hub.callback`: an absolute http(s) URL with a host and no fragment.
    pub fn parse(text: &str) -> Result<Callback, String> {
        if text.len() > MAX_LEN {
            return Err(format!("hub.callback is longer than {MAX_LEN} bytes"));
        }
        let url = Url::parse(text).map_err(|e| format!("hub.callback is not a URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("hub.callback is not an http(s) URL".into());
        }
        if url.fragment().is_some() {
            return Err("hub.callback has a fragment".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("hub.callback holds a user name or password".into());
        }
        let host = url
            .host_str()
            .ok_or("hub.callback has no host")?
            .to_ascii_lowercase();
        Ok(Callback { url, host })
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The host, lower-cased: what the per-host limits count.
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }
}

/// Resolves `url`'s host and refuses it when any of its addresses is not
/// a public one (unless `allow_private`).
pub async fn check_addresses(url: &Url, allow_private: bool) -> Result<(), String> {
    if allow_private {
        return Ok(());
    }
    let host = url.host().ok_or("the callback has no host")?;
    let port = url.port_or_known_default().unwrap_or(80);
    let addresses: Vec<IpAddr> = match host {
        url::Host::Ipv4(ip) => vec![IpAddr::V4(ip)],
        url::Host::Ipv6(ip) => vec![IpAddr::V6(ip)],
        url::Host::Domain(name) => tokio::net::lookup_host((name, port))
            .await
            .map_err(|e| format!("the callback's host `{name}` does not resolve ({e})"))?
            .map(|a| a.ip())
            .collect(),
    };
    if addresses.is_empty() {
        return Err("the callback's host has no address".into());
    }
    match addresses.iter().find(|ip| !is_public(**ip)) {
        Some(ip) => Err(format!(
            "the callback's host is at {ip}, a loopback, private or local address"
        )),
        None => Ok(()),
    }
}

/// The resolver of the client that calls callbacks when private
/// callbacks are not allowed: a name with any address that is not public
/// does not resolve.
#[derive(Debug, Clone, Copy, Default)]
pub struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if let Some(private) = addresses.iter().find(|a| !is_public(a.ip())) {
                let refused = format!(
                    "`{host}` is at {}, a loopback, private or local address",
                    private.ip()
                );
                return Err(refused.into());
            }
            let addresses: reqwest::dns::Addrs = Box::new(addresses.into_iter());
            Ok(addresses)
        })
    }
}

/// Whether `ip` is an address of the public internet: not loopback,
/// private, link-local, unspecified, shared (CGNAT), documentation,
/// benchmarking, multicast or broadcast.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // 100.64.0.0/10, shared address space (CGNAT).
        || (a == 100 && (64..128).contains(&b))
        // 192.0.0.0/24, protocol assignments.
        || (a == 192 && b == 0 && c == 0)
        // 198.18.0.0/15, benchmarking.
        || (a == 198 && (b == 18 || b == 19))
        // 240.0.0.0/4, reserved.
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // fc00::/7, unique local.
        || (first & 0xfe00) == 0xfc00
        // fe80::/10, link-local.
        || (first & 0xffc0) == 0xfe80
        // 2001:db8::/32, documentation.
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        // 64:ff9b:1::/48 and the rest of the well-known translation
        // prefixes could reach IPv4 private space; refused too.
        || first == 0x0064)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callbacks_are_http_urls() {
        let c = Callback::parse("https://Reader.Example.org/push?id=1").unwrap();
        assert_eq!(c.host(), "reader.example.org");
        assert!(Callback::parse("ftp://reader.example.org/").is_err());
        assert!(Callback::parse("/relative").is_err());
        assert!(Callback::parse("https://reader.example.org/#x").is_err());
        assert!(Callback::parse("https://u:p@reader.example.org/").is_err());
        assert!(Callback::parse(&format!("https://x.org/{}", "a".repeat(MAX_LEN))).is_err());
    }

    #[test]
    fn only_public_addresses_pass() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[tokio::test]
    async fn the_callback_resolver_refuses_private_names() {
        use reqwest::dns::Resolve as _;
        let name = "localhost".parse().unwrap();
        match PublicOnly.resolve(name).await {
            Ok(_) => panic!("localhost resolved for a callback"),
            Err(e) => assert!(e.to_string().contains("loopback"), "{e}"),
        }
    }

    #[tokio::test]
    async fn loopback_callbacks_are_refused_unless_allowed() {
        let url = Url::parse("http://127.0.0.1:9/cb").unwrap();
        assert!(check_addresses(&url, false).await.is_err());
        assert!(check_addresses(&url, true).await.is_ok());
        let url = Url::parse("http://localhost:9/cb").unwrap();
        assert!(check_addresses(&url, false).await.is_err());
    }
}
