//! Who is asking, and how often: the client address (through trusted proxies only),
//! the subscribe form's limits, and the request paths as the access log shows them.

use axum::extract::ConnectInfo;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

/// The client's address: the peer's, unless the peer is a trusted proxy, in which case
/// the right-most `X-Forwarded-For` entry that is not itself a trusted proxy (the one
/// the proxies saw; entries further left are whatever the client claimed). Requests
/// made in-process (tests) count as 0.0.0.0.
pub fn client_ip(parts: &Parts, trusted: &[ipnet::IpNet]) -> IpAddr {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    forwarded_client(peer, &parts.headers, trusted)
}

/// [`client_ip`] for a peer address and the request's headers.
pub fn forwarded_client(peer: IpAddr, headers: &HeaderMap, trusted: &[ipnet::IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    let hops: Vec<&str> =
        headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).collect();
    for hop in hops.iter().rev() {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !is_trusted(&ip) {
                    break;
                }
            }
            // Garbage from a client behind the proxy: stop at the last good hop.
            Err(_) => break,
        }
    }
    client
}

/// The subscribe form's limits (list-bombing defence, on top of one confirmation mail
/// per address per `confirm_hours`): per client address, a burst of 10 requests and
/// then one a minute; per email address, a burst of 3 and then one every 10 minutes.
pub struct Limits {
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    per_address: DefaultKeyedRateLimiter<String>,
}

/// Requests from one client address in a burst.
pub const IP_BURST: u32 = 10;
/// Requests for one email address in a burst.
pub const ADDRESS_BURST: u32 = 3;

/// Keys kept before old ones are forgotten.
const MAX_KEYS: usize = 100_000;

impl Default for Limits {
    fn default() -> Limits {
        let quota = |period: Duration, burst: u32| {
            Quota::with_period(period).expect("a positive period").allow_burst(NonZeroU32::new(burst).expect("nonzero"))
        };
        Limits {
            per_ip: RateLimiter::keyed(quota(Duration::from_secs(60), IP_BURST)),
            per_address: RateLimiter::keyed(quota(Duration::from_secs(600), ADDRESS_BURST)),
        }
    }
}

impl Limits {
    /// `Err(seconds to wait)` when `ip` asked too often.
    pub fn client(&self, ip: IpAddr) -> Result<(), u64> {
        if self.per_ip.len() > MAX_KEYS {
            self.per_ip.retain_recent();
        }
        self.per_ip.check_key(&ip).map_err(|not_until| {
            not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default())).as_secs()
                + 1
        })
    }

    /// Whether a request for `email` (normalised) may go on.
    pub fn address(&self, email: &str) -> bool {
        if self.per_address.len() > MAX_KEYS {
            self.per_address.retain_recent();
        }
        self.per_address.check_key(&email.to_ascii_lowercase()).is_ok()
    }
}

/// `path` with the secret segments masked: `/unsubscribe/…`, `/confirm/…`.
pub fn masked_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut secret_next = false;
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        if secret_next && !segment.is_empty() {
            out.push('…');
        } else {
            out.push_str(segment);
        }
        secret_next = matches!(segment, "unsubscribe" | "confirm");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn nets(list: &[&str]) -> Vec<ipnet::IpNet> {
        list.iter().map(|s| crate::config::parse_proxy(s).unwrap()).collect()
    }

    #[test]
    fn forwarded_for_counts_only_from_trusted_proxies() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6, 203.0.113.7, 10.0.0.2"));
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let stranger: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(
            forwarded_client(stranger, &h, &nets(&["10.0.0.0/8"])),
            stranger,
            "an untrusted peer's header is ignored"
        );
        assert_eq!(forwarded_client(proxy, &h, &[]), proxy, "no proxies trusted");
        assert_eq!(
            forwarded_client(proxy, &h, &nets(&["10.0.0.0/8"])),
            "203.0.113.7".parse::<IpAddr>().unwrap(),
            "the right-most hop that is not a proxy, not what the client claimed"
        );
        h.insert("x-forwarded-for", HeaderValue::from_static("not-an-ip"));
        assert_eq!(forwarded_client(proxy, &h, &nets(&["10.0.0.1"])), proxy);
    }

    #[test]
    fn limits_stop_a_burst() {
        let limits = Limits::default();
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        for _ in 0..IP_BURST {
            assert!(limits.client(ip).is_ok());
        }
        assert!(limits.client(ip).unwrap_err() >= 1);
        assert!(limits.client("203.0.113.8".parse().unwrap()).is_ok(), "per address");
        for _ in 0..ADDRESS_BURST {
            assert!(limits.address("ada@example.org"));
        }
        assert!(!limits.address("ADA@example.org"));
        assert!(limits.address("bob@example.org"));
    }

    #[test]
    fn secrets_are_masked_in_paths() {
        assert_eq!(masked_path("/unsubscribe/0123abcd"), "/unsubscribe/…");
        assert_eq!(masked_path("/confirm/0123abcd"), "/confirm/…");
        assert_eq!(masked_path("/subscribe"), "/subscribe");
        assert_eq!(masked_path("/unsubscribe/"), "/unsubscribe/");
        assert_eq!(masked_path("/healthz"), "/healthz");
    }
}
