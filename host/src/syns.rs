//! Memory of the SYNs this host handed to its stack, so that the ACK that
//! completes such a handshake is recognised even when the kernel keeps no
//! socket for it (a SYN cookie).
//!
//! Why: a listener in SYN-cookie mode answers a SYN without creating any
//! socket, so the third ACK finds nothing in `sock_diag`. Userspace cannot
//! check the cookie (its secret is in the kernel), but it does not need to:
//! the cookie is only ever valid on the host that answered the SYN, and rule
//! 1 sends every SYN to the host that receives it. So "this host delivered
//! the SYN of this 4-tuple, with sequence number ACK.seq - 1, not long ago"
//! identifies the ACK of a handshake that belongs here, cookie or not. The
//! kernel still validates the cookie itself once the ACK is delivered.

use crate::{Flow, Time};

/// How long a remembered SYN stays valid. Linux accepts a cookie for up to
/// about two to three minutes (a 64 s counter, two periods of slack), so a
/// handshake cannot complete later than that.
pub const SYN_MEMORY_SECS: u32 = 192;

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    flow: Option<Flow>,
    isn: u32,
    at_secs: u32,
}

/// A fixed-size, direct-mapped table of recent SYNs. A SYN flood overwrites
/// it, which only costs the benefit for buckets that are being daisy-chained
/// (elsewhere the ACK goes to the local stack anyway).
#[derive(Debug, Clone)]
pub struct RecentSyns {
    slots: Box<[Slot]>,
    mask: usize,
}

impl RecentSyns {
    /// A table of `slots` entries, rounded up to a power of two (at least 1).
    pub fn new(slots: usize) -> Self {
        let n = slots.max(1).next_power_of_two();
        RecentSyns {
            slots: vec![Slot::default(); n].into_boxed_slice(),
            mask: n - 1,
        }
    }

    fn index(&self, flow: &Flow) -> usize {
        (flow.mix() as usize) & self.mask
    }

    /// Remembers that the SYN of `flow`, with sequence number `isn`, went to
    /// the local stack at `now`.
    pub fn record(&mut self, flow: Flow, isn: u32, now: Time) {
        let i = self.index(&flow);
        if let Some(s) = self.slots.get_mut(i) {
            *s = Slot {
                flow: Some(flow),
                isn,
                at_secs: now.unix_secs(),
            };
        }
    }

    /// True when a segment of `flow` with sequence number `seq` is the first
    /// after a SYN this host delivered within [`SYN_MEMORY_SECS`].
    pub fn completes_handshake(&self, flow: &Flow, seq: u32, now: Time) -> bool {
        self.slots.get(self.index(flow)).is_some_and(|s| {
            s.flow.as_ref() == Some(flow)
                && s.isn.wrapping_add(1) == seq
                && now.unix_secs().saturating_sub(s.at_secs) <= SYN_MEMORY_SECS
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn flow(port: u16) -> Flow {
        Flow {
            client: Ipv4Addr::new(192, 0, 2, 1),
            client_port: port,
            vip: Ipv4Addr::new(10, 0, 0, 100),
            vip_port: 80,
        }
    }

    #[test]
    fn remembers_isn_plus_one_for_a_while() {
        let mut s = RecentSyns::new(64);
        let t0 = Time::from_unix_secs(1_000);
        s.record(flow(1), u32::MAX, t0);
        // The ISN wraps: the next sequence number is 0.
        assert!(s.completes_handshake(&flow(1), 0, t0));
        assert!(!s.completes_handshake(&flow(1), 1, t0));
        assert!(!s.completes_handshake(&flow(2), 0, t0));
        let late = Time::from_unix_secs(1_000 + SYN_MEMORY_SECS + 1);
        assert!(!s.completes_handshake(&flow(1), 0, late));
    }

    #[test]
    fn a_colliding_syn_evicts() {
        let mut s = RecentSyns::new(1);
        let t = Time::from_unix_secs(5);
        s.record(flow(1), 10, t);
        s.record(flow(2), 20, t);
        assert!(!s.completes_handshake(&flow(1), 11, t));
        assert!(s.completes_handshake(&flow(2), 21, t));
    }
}
