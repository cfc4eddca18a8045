//! Sockets that have not finished their request head, counted per peer address and in total.
//!
//! A slowloris client opens many sockets and sends each head a byte at a time; the header
//! timeout ends each one eventually, but until then every socket holds a file descriptor (the
//! launcher shares its descriptor table with the web services). Over either limit a new socket
//! is closed at once, before any byte is read. IPv6 peers count per /64, the block one host
//! usually holds.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The counts, shared by the accept loop and every guard. Cheap to clone.
#[derive(Clone)]
pub struct HalfOpen(Arc<Inner>);

struct Inner {
    per_ip: usize,
    max: usize,
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    total: usize,
    by_peer: HashMap<IpAddr, usize>,
}

/// One counted socket; dropping it (head complete, or socket gone) gives the place back.
pub struct HalfOpenGuard {
    owner: Arc<Inner>,
    peer: IpAddr,
}

/// The address a peer is counted under: IPv4 as is (IPv4-mapped IPv6 too), IPv6 by its /64.
fn bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl HalfOpen {
    pub fn new(per_ip: usize, max: usize) -> Self {
        HalfOpen(Arc::new(Inner {
            per_ip: per_ip.max(1),
            max: max.max(1),
            counts: Mutex::new(Counts::default()),
        }))
    }

    /// A place for one more socket from `ip`, or `None` when it (or everyone) has too many.
    pub fn try_enter(&self, ip: IpAddr) -> Option<HalfOpenGuard> {
        let peer = bucket(ip);
        let mut c = self.0.counts.lock().ok()?;
        let mine = c.by_peer.get(&peer).copied().unwrap_or(0);
        if mine >= self.0.per_ip || c.total >= self.0.max {
            return None;
        }
        c.total += 1;
        c.by_peer.insert(peer, mine + 1);
        Some(HalfOpenGuard {
            owner: self.0.clone(),
            peer,
        })
    }

    /// Sockets counted now (all addresses).
    pub fn total(&self) -> usize {
        self.0.counts.lock().map(|c| c.total).unwrap_or(0)
    }
}

impl Drop for HalfOpenGuard {
    fn drop(&mut self) {
        let Ok(mut c) = self.owner.counts.lock() else {
            return;
        };
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.by_peer.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                c.by_peer.remove(&self.peer);
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
    fn limits_each_address_and_the_total() {
        let h = HalfOpen::new(2, 3);
        let a1 = h.try_enter(ip("10.0.0.1")).unwrap();
        let _a2 = h.try_enter(ip("10.0.0.1")).unwrap();
        assert!(h.try_enter(ip("10.0.0.1")).is_none(), "per address");
        let _b1 = h.try_enter(ip("10.0.0.2")).unwrap();
        assert!(h.try_enter(ip("10.0.0.3")).is_none(), "in total");
        drop(a1);
        assert_eq!(h.total(), 2);
        let _a3 = h.try_enter(ip("10.0.0.1")).unwrap();
        assert_eq!(h.total(), 3);
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let h = HalfOpen::new(1, 10);
        let _x = h.try_enter(ip("2001:db8:1:2::1")).unwrap();
        assert!(h.try_enter(ip("2001:db8:1:2:ffff::9")).is_none());
        let _y = h.try_enter(ip("2001:db8:1:3::1")).unwrap();
        let _z = h.try_enter(ip("192.0.2.7")).unwrap();
        assert!(h.try_enter(ip("::ffff:192.0.2.7")).is_none());
    }

    #[test]
    fn an_address_is_forgotten_when_its_last_socket_goes() {
        let h = HalfOpen::new(1, 1);
        drop(h.try_enter(ip("10.0.0.1")).unwrap());
        assert!(h.0.counts.lock().unwrap().by_peer.is_empty());
        assert!(h.try_enter(ip("10.0.0.2")).is_some());
    }
}
