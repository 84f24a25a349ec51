//! The client's address behind reverse proxies: the peer's, or the one the proxies it trusts
//! name in `X-Forwarded-For`.

use std::net::IpAddr;

use http::HeaderMap;
use ipnet::IpNet;

/// The proxies whose `X-Forwarded-For` is believed, for telling clients apart behind them
/// (a load balancer, an ingress): per-client limits count the address they name, not theirs.
///
/// A request from a trusted peer is from the right-most address of its `X-Forwarded-For`
/// that is not itself a trusted proxy (each proxy appends the address it got the request
/// from, so what is left of the last untrusted one is whatever the client wrote). A request
/// from any other peer is from that peer, whatever its headers say. With no proxies (the
/// default), the peer is the client.
///
/// # Examples
///
/// ```
/// use fawkes::security::TrustedProxies;
/// use http::HeaderMap;
///
/// let proxies = TrustedProxies::parse("10.0.0.0/8, 192.168.1.7").unwrap();
/// let mut headers = HeaderMap::new();
/// headers.insert("x-forwarded-for", "1.2.3.4, 203.0.113.9, 10.1.2.3".parse().unwrap());
/// // Through two proxies: the client is the last address no trusted proxy has.
/// assert_eq!(proxies.client_ip("10.0.0.5".parse().unwrap(), &headers), "203.0.113.9".parse::<std::net::IpAddr>().unwrap());
/// // A peer that is not a proxy is the client, whatever it writes.
/// assert_eq!(proxies.client_ip("198.51.100.1".parse().unwrap(), &headers), "198.51.100.1".parse::<std::net::IpAddr>().unwrap());
/// assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
/// ```
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Trusts the given networks.
    pub fn new(networks: impl IntoIterator<Item = IpNet>) -> Self {
        Self(networks.into_iter().collect())
    }

    /// Trusts a comma-separated list of networks (`10.0.0.0/8`) and addresses (`10.0.0.1`,
    /// `::1`), as an environment variable would hold it; blank entries are skipped.
    ///
    /// # Errors
    ///
    /// The entry that is neither a network nor an address.
    pub fn parse(list: &str) -> Result<Self, String> {
        list.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("not a network or an address: `{entry}`"))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn trusts(&self, addr: IpAddr) -> bool {
        let addr = canonical(addr);
        self.0.iter().any(|net| net.contains(&addr))
    }

    /// The client of a request that came from `peer` with `headers`.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let mut client = peer;
        // Right to left over every `X-Forwarded-For` line, as if they were one list, read as
        // bytes: a hop that is not text is garbage like any other, and ends the trust.
        let lines: Vec<&[u8]> =
            headers.get_all("x-forwarded-for").iter().map(http::HeaderValue::as_bytes).collect();
        let hops = lines.iter().rev().flat_map(|line| line.rsplit(|byte| *byte == b','));
        for hop in hops {
            // What a trusted proxy wrote is an address; anything else ends the trust.
            let hop = std::str::from_utf8(hop).ok().and_then(|hop| parse_hop(hop.trim()));
            let Some(addr) = hop else { break };
            client = canonical(addr);
            if !self.trusts(client) {
                break;
            }
        }
        client
    }
}

/// A client as per-client limits tell them apart: an IPv4 address, or the /64 network of an
/// IPv6 one (what one subscriber is given, so its addresses count as one client).
pub(crate) fn client_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1)))
        }
        v4 => v4,
    }
}

/// `1.2.3.4`, `1.2.3.4:5678`, `::1`, `[::1]` or `[::1]:5678`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|addr| addr.ip()))
        .or_else(|| {
            hop.strip_prefix('[')?
                .strip_suffix(']')?
                .parse::<std::net::Ipv6Addr>()
                .ok()
                .map(IpAddr::V6)
        })
}

/// An IPv4 address a dual-stack socket reports as `::ffff:a.b.c.d` is that IPv4 address.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        IpAddr::V4(_) => addr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(lines: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append("x-forwarded-for", line.parse().unwrap());
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_client_is_the_last_address_no_trusted_proxy_has() {
        let proxies = TrustedProxies::parse("10.0.0.0/8,::1").unwrap();
        let peer = ip("10.0.0.1");
        assert_eq!(proxies.client_ip(peer, &headers(&[])), peer, "no header: the proxy itself");
        assert_eq!(proxies.client_ip(peer, &headers(&["9.9.9.9"])), ip("9.9.9.9"));
        // Several lines read as one list; ports and brackets are allowed.
        let many = headers(&["6.6.6.6, 7.7.7.7", "[2001:db8::1]:443, 10.2.2.2:80"]);
        assert_eq!(proxies.client_ip(peer, &many), ip("2001:db8::1"));
        // A bracketed IPv6 address without a port is an address.
        assert_eq!(proxies.client_ip(peer, &headers(&["[2001:db8::2]"])), ip("2001:db8::2"));
        // A hop that is not text ends the trust as garbage does; it is not skipped, and the
        // address a proxy appended after it still counts.
        let mut raw = headers(&["9.9.9.9"]);
        raw.append("x-forwarded-for", http::HeaderValue::from_bytes(b"\xff, 7.7.7.7").unwrap());
        assert_eq!(proxies.client_ip(peer, &raw), ip("7.7.7.7"));
        let mut raw = headers(&["9.9.9.9"]);
        raw.append("x-forwarded-for", http::HeaderValue::from_bytes(b"\xff, 10.7.7.7").unwrap());
        assert_eq!(proxies.client_ip(peer, &raw), ip("10.7.7.7"));
        // Garbage ends the trust: the last address read stands.
        assert_eq!(proxies.client_ip(peer, &headers(&["8.8.8.8, junk, 10.3.3.3"])), ip("10.3.3.3"));
        // Every hop trusted: the left-most.
        assert_eq!(proxies.client_ip(peer, &headers(&["10.4.4.4, 10.5.5.5"])), ip("10.4.4.4"));
        // A mapped IPv4 peer is that IPv4 peer.
        assert_eq!(proxies.client_ip(ip("::ffff:10.0.0.1"), &headers(&["5.5.5.5"])), ip("5.5.5.5"));
        assert_eq!(proxies.client_ip(ip("::1"), &headers(&["5.5.5.5"])), ip("5.5.5.5"));
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client() {
        let none = TrustedProxies::default();
        assert!(none.is_empty());
        assert_eq!(none.client_ip(ip("10.0.0.1"), &headers(&["9.9.9.9"])), ip("10.0.0.1"));
        assert_eq!(none.client_ip(ip("::ffff:1.2.3.4"), &headers(&[])), ip("1.2.3.4"));
        assert!(TrustedProxies::parse("10.0.0.0/8, nope").unwrap_err().contains("nope"));
        assert!(TrustedProxies::parse(" , ").unwrap().is_empty());
    }
}
