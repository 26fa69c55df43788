//! A small cache in front of a [`LocalConnections`] lookup.
//!
//! Asking the kernel costs a netlink round trip; the packets that need an
//! answer are those of recently moved buckets, and a flow keeps its answer
//! for a while:
//! - a positive answer stays true until the connection closes, and a stale
//!   positive only delivers a packet of a closed connection locally, where
//!   the stack answers it as it would have anyway (a new connection on the
//!   same 4-tuple starts with a SYN, which comes here);
//! - a negative answer can only turn positive after a packet of the flow was
//!   delivered locally (a SYN, or a cookie's ACK), and the core says so
//!   through [`LocalConnections::delivered`], which drops it.

use crate::{Flow, LocalConnections, Time};
use std::time::Duration;

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    flow: Option<Flow>,
    local: bool,
    expires: Time,
}

/// Hits and misses of a [`CachedLookup`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Answers served from the cache.
    pub hits: u64,
    /// Answers asked of the inner lookup.
    pub misses: u64,
}

/// A direct-mapped cache of lookup answers, with separate lifetimes for
/// positive and negative answers.
#[derive(Debug)]
pub struct CachedLookup<L> {
    inner: L,
    slots: Box<[Slot]>,
    mask: usize,
    positive_ttl: Duration,
    negative_ttl: Duration,
    stats: CacheStats,
}

impl<L: LocalConnections> CachedLookup<L> {
    /// A cache of `slots` entries (rounded up to a power of two) in front of
    /// `inner`.
    pub fn new(inner: L, slots: usize, positive_ttl: Duration, negative_ttl: Duration) -> Self {
        let n = slots.max(1).next_power_of_two();
        CachedLookup {
            inner,
            slots: vec![Slot::default(); n].into_boxed_slice(),
            mask: n - 1,
            positive_ttl,
            negative_ttl,
            stats: CacheStats::default(),
        }
    }

    /// Hits and misses so far.
    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    /// The lookup behind the cache.
    pub fn inner_mut(&mut self) -> &mut L {
        &mut self.inner
    }

    fn index(&self, flow: &Flow) -> usize {
        (flow.mix() as usize) & self.mask
    }
}

impl<L: LocalConnections> LocalConnections for CachedLookup<L> {
    fn has_connection(&mut self, flow: &Flow, now: Time) -> bool {
        let i = self.index(flow);
        if let Some(s) = self.slots.get(i)
            && s.flow.as_ref() == Some(flow)
            && now < s.expires
        {
            self.stats.hits += 1;
            return s.local;
        }
        self.stats.misses += 1;
        let local = self.inner.has_connection(flow, now);
        let ttl = if local {
            self.positive_ttl
        } else {
            self.negative_ttl
        };
        if let Some(s) = self.slots.get_mut(i) {
            *s = Slot {
                flow: Some(*flow),
                local,
                expires: now.plus(ttl),
            };
        }
        local
    }

    fn delivered(&mut self, flow: &Flow) {
        let i = self.index(flow);
        if let Some(s) = self.slots.get_mut(i)
            && s.flow.as_ref() == Some(flow)
            && !s.local
        {
            s.flow = None;
        }
        self.inner.delivered(flow);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::net::Ipv4Addr;

    /// A lookup that counts how often it is asked.
    struct Counting {
        set: HashSet<Flow>,
        asked: u32,
    }

    impl LocalConnections for Counting {
        fn has_connection(&mut self, flow: &Flow, _now: Time) -> bool {
            self.asked += 1;
            self.set.contains(flow)
        }
    }

    fn flow(port: u16) -> Flow {
        Flow {
            client: Ipv4Addr::new(198, 51, 100, 1),
            client_port: port,
            vip: Ipv4Addr::new(10, 0, 0, 100),
            vip_port: 443,
        }
    }

    fn cache() -> CachedLookup<Counting> {
        CachedLookup::new(
            Counting {
                set: HashSet::from([flow(1)]),
                asked: 0,
            },
            64,
            Duration::from_secs(2),
            Duration::from_millis(500),
        )
    }

    #[test]
    fn answers_are_cached_for_their_lifetime() {
        let mut c = cache();
        let t = Time::from_unix_secs(100);
        assert!(c.has_connection(&flow(1), t));
        assert!(!c.has_connection(&flow(2), t));
        assert!(c.has_connection(&flow(1), t.plus(Duration::from_millis(1999))));
        assert!(!c.has_connection(&flow(2), t.plus(Duration::from_millis(499))));
        assert_eq!(c.inner_mut().asked, 2);
        // Expired: asked again.
        assert!(c.has_connection(&flow(1), t.plus(Duration::from_secs(2))));
        assert!(!c.has_connection(&flow(2), t.plus(Duration::from_millis(500))));
        assert_eq!(c.inner_mut().asked, 4);
        assert_eq!(c.stats(), CacheStats { hits: 2, misses: 4 });
    }

    #[test]
    fn local_delivery_forgets_a_negative_answer_only() {
        let mut c = cache();
        let t = Time::from_unix_secs(100);
        assert!(!c.has_connection(&flow(2), t));
        // The stack got the flow's SYN and now has a socket.
        c.inner_mut().set.insert(flow(2));
        c.delivered(&flow(2));
        assert!(c.has_connection(&flow(2), t));
        assert_eq!(c.inner_mut().asked, 2);
        // A positive answer survives a delivery.
        c.delivered(&flow(2));
        assert!(c.has_connection(&flow(2), t));
        assert_eq!(c.inner_mut().asked, 2);
    }
}
