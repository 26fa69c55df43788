//! The TCP/UDP 4-tuple of a client's connection to a VIP.

use std::fmt;
use std::net::Ipv4Addr;

/// A connection as the server sees it: the client's address and port, and
/// the VIP and port it connected to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Flow {
    /// The client's address (the inner source).
    pub client: Ipv4Addr,
    /// The client's port (the inner source port).
    pub client_port: u16,
    /// The VIP (the inner destination).
    pub vip: Ipv4Addr,
    /// The service or per-server port (the inner destination port).
    pub vip_port: u16,
}

impl Flow {
    /// A well-mixed 64-bit hash, for direct-mapped tables. Not keyed: the
    /// tables it indexes only cache or remember, and a collision costs an
    /// eviction, never a wrong answer.
    #[inline]
    pub fn mix(&self) -> u64 {
        let a = (u64::from(u32::from(self.client)) << 32) | u64::from(u32::from(self.vip));
        let b = (u64::from(self.client_port) << 16) | u64::from(self.vip_port);
        let mut h = a ^ b.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        // The finaliser of splitmix64: every input bit reaches every output bit.
        h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^ (h >> 31)
    }
}

impl fmt::Display for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{} -> {}:{}",
            self.client, self.client_port, self.vip, self.vip_port
        )
    }
}
