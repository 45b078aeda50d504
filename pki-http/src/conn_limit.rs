//! Connection caps: open connections in total and per client address.
//!
//! Hand-written because no crate caps *open connections per client
//! address* of an actix server: actix-server's `max_concurrent_connections`
//! is a global per-worker count that pauses accepting (so a flood from one
//! address starves everyone), and the rate limiters (governor,
//! actix-governor) count requests per time, not connections held open. This
//! is a counter map under a mutex; a [`Slot`] gives its place back when the
//! connection is dropped, whatever ends it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `max_connections` connections are open.
    Total(usize),
    /// This client already holds `max_connections_per_client`.
    Client(usize),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Total(n) => write!(f, "{n} connections open in total"),
            Refused::Client(n) => write!(f, "{n} connections open from this client"),
        }
    }
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

/// The counters, shared by every worker.
pub struct ConnLimiter {
    max_total: usize,
    max_per_client: usize,
    counts: Mutex<Counts>,
}

/// A held place; dropping it frees it.
pub struct Slot {
    limiter: Arc<ConnLimiter>,
    client: IpAddr,
}

/// The address a client is counted under: an IPv4 address, or the /64 of
/// an IPv6 one (one host usually holds a whole /64). IPv4-mapped IPv6
/// addresses count as their IPv4 address.
pub fn client_key(ip: IpAddr) -> IpAddr {
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

impl ConnLimiter {
    pub fn new(max_total: usize, max_per_client: usize) -> Arc<ConnLimiter> {
        Arc::new(ConnLimiter {
            max_total,
            max_per_client,
            counts: Mutex::new(Counts::default()),
        })
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a place for a connection from `ip`, or says why not.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refused> {
        let client = client_key(ip);
        let mut c = self.counts();
        if c.total >= self.max_total {
            return Err(Refused::Total(c.total));
        }
        let held = c.per_client.get(&client).copied().unwrap_or(0);
        if held >= self.max_per_client {
            return Err(Refused::Client(held));
        }
        c.total += 1;
        *c.per_client.entry(client).or_insert(0) += 1;
        Ok(Slot {
            limiter: self.clone(),
            client,
        })
    }

    /// Open connections in total.
    pub fn open(&self) -> usize {
        self.counts().total
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.limiter.counts();
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_client.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                c.per_client.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_client_and_in_total_and_frees_on_drop() {
        let l = ConnLimiter::new(3, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = l.admit(a).unwrap();
        let _a2 = l.admit(a).unwrap();
        assert_eq!(l.admit(a).err(), Some(Refused::Client(2)));
        let _b1 = l.admit(b).unwrap();
        assert_eq!(l.admit(b).err(), Some(Refused::Total(3)));
        drop(a1);
        let _a3 = l.admit(a).unwrap();
        assert_eq!(l.open(), 3);
    }

    #[test]
    fn an_ipv6_client_is_its_64() {
        let x: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let y: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(client_key(x), client_key(y));
        let m: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(client_key(m), "10.0.0.1".parse::<IpAddr>().unwrap());
    }
}
