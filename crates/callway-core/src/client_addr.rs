//! Who a request comes from: the peer's address, or the address a configured trusted proxy says
//! it forwarded for. A header is only believed from a peer we were told to trust
//! (`CALLWAY_TRUSTED_PROXIES`); a client reaching a service directly cannot choose its address.

use std::net::IpAddr;

/// One CIDR range (`127.0.0.1/32`, `10.0.0.0/8`, `::1/128`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn parse(s: &str) -> Result<Self, String> {
        let (ip, prefix) = match s.split_once('/') {
            Some((ip, p)) => (ip, Some(p)),
            None => (s, None),
        };
        let net: IpAddr = ip
            .parse()
            .map_err(|_| format!("'{s}' is not an IP range"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("'{s}' has a bad prefix length"))?,
            None => max,
        };
        Ok(Cidr { net, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, canonical(ip)) {
            (IpAddr::V4(n), IpAddr::V4(i)) => {
                prefix_eq(&n.octets(), &i.octets(), self.prefix as usize)
            }
            (IpAddr::V6(n), IpAddr::V6(i)) => {
                prefix_eq(&n.octets(), &i.octets(), self.prefix as usize)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: usize) -> bool {
    let (full, rest) = (bits / 8, bits % 8);
    if a[..full] != b[..full] {
        return false;
    }
    rest == 0 || (a[full] ^ b[full]) >> (8 - rest) == 0
}

/// IPv4-mapped IPv6 (`::ffff:1.2.3.4`, what a dual-stack socket reports) as plain IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// The proxies whose `X-Forwarded-For` we believe. Empty by default: trust nobody.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// Comma- or space-separated CIDR ranges; empty means none.
    pub fn parse(list: &str) -> Result<Self, String> {
        list.split([',', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Cidr::parse)
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    /// The client behind `peer`: `peer` itself unless it is a trusted proxy, in which case the
    /// right-most `X-Forwarded-For` entry that is not itself a trusted proxy (proxies append the
    /// peer they saw; entries left of the first untrusted one were written by the client).
    pub fn client(&self, peer: IpAddr, forwarded_for: Option<&str>) -> ClientAddr {
        let peer = canonical(peer);
        if !self.contains(peer) {
            return ClientAddr(peer);
        }
        let Some(header) = forwarded_for else {
            return ClientAddr(peer);
        };
        for entry in header.rsplit(',').map(str::trim) {
            match entry.parse::<IpAddr>() {
                Ok(ip) if self.contains(ip) => continue,
                Ok(ip) => return ClientAddr(canonical(ip)),
                // Garbage where a proxy wrote: do not guess further left.
                Err(_) => return ClientAddr(peer),
            }
        }
        ClientAddr(peer)
    }
}

/// A client's address, as decided by [`TrustedProxies::client`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ClientAddr(IpAddr);

impl ClientAddr {
    pub fn new(ip: IpAddr) -> Self {
        ClientAddr(canonical(ip))
    }

    pub fn ip(&self) -> IpAddr {
        self.0
    }

    /// The client's network: its /24 (IPv4) or /56 (IPv6, a typical home or office allocation).
    pub fn network(&self) -> String {
        match self.0 {
            IpAddr::V4(v4) => {
                let o = v4.octets();
                format!("{}.{}.{}.0/24", o[0], o[1], o[2])
            }
            IpAddr::V6(v6) => {
                let mut o = v6.octets();
                o[7..].fill(0);
                format!("{}/56", std::net::Ipv6Addr::from(o))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_header_counts_only_from_a_trusted_proxy() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client(ip("127.0.0.1"), Some("203.0.113.9")).ip(),
            ip("127.0.0.1"),
            "trusting nobody: a local forged header changes nothing"
        );
        let caddy = TrustedProxies::parse("127.0.0.1/32, ::1/128 10.0.0.0/8").unwrap();
        assert_eq!(
            caddy.client(ip("127.0.0.1"), Some("203.0.113.9")).ip(),
            ip("203.0.113.9")
        );
        // The client's own first entry is ignored: the proxy appended the real peer.
        assert_eq!(
            caddy
                .client(ip("10.1.2.3"), Some("1.2.3.4, 203.0.113.9"))
                .ip(),
            ip("203.0.113.9")
        );
        // Two trusted hops.
        assert_eq!(
            caddy
                .client(ip("127.0.0.1"), Some("1.2.3.4, 198.51.100.2, 10.0.0.7"))
                .ip(),
            ip("198.51.100.2")
        );
        // An untrusted peer cannot choose its address.
        assert_eq!(
            caddy.client(ip("198.51.100.7"), Some("203.0.113.9")).ip(),
            ip("198.51.100.7")
        );
        assert_eq!(
            caddy.client(ip("127.0.0.1"), Some("nonsense")).ip(),
            ip("127.0.0.1")
        );
        assert_eq!(
            caddy
                .client(ip("::ffff:127.0.0.1"), Some("203.0.113.9"))
                .ip(),
            ip("203.0.113.9")
        );
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("nope").is_err());
        assert_eq!(
            TrustedProxies::parse(" ").unwrap(),
            TrustedProxies::default()
        );
    }

    #[test]
    fn networks_are_slash_24_and_slash_56() {
        assert_eq!(
            ClientAddr::new(ip("203.0.113.77")).network(),
            "203.0.113.0/24"
        );
        assert_eq!(
            ClientAddr::new(ip("2001:db8:aa:bbcc:1:2:3:4")).network(),
            "2001:db8:aa:bb00::/56"
        );
        let c = Cidr::parse("2001:db8:aa:bb00::/56").unwrap();
        assert!(c.contains(ip("2001:db8:aa:bbff::1")));
        assert!(!c.contains(ip("2001:db8:aa:bc00::1")));
    }
}
