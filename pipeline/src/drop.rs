//! Why the mux drops a packet, in order of precedence.

use std::fmt;

/// A drop reason. The discriminant is the index of the reason's cell in the
/// drop counter, and the order is the precedence: when several reasons apply,
/// the first one is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum DropReason {
    /// A header is shorter than it must be (Ethernet, IPv4, TCP or UDP).
    Truncated = 0,
    /// Not IPv4: another EtherType (VLAN-tagged frames included) or an IP
    /// version other than 4.
    NonIpv4 = 1,
    /// IPv4 with options, or any IHL other than 5.
    IpOptions = 2,
    /// An IPv4 fragment (MF set or a non-zero offset).
    Fragment = 3,
    /// A service-port packet whose (VIP, bucket) has no entry.
    BucketMiss = 4,
    /// A packet to be routed without encapsulation arrived with TTL <= 1.
    Ttl = 5,
    /// No route for the destination.
    NoRoute = 6,
}

impl DropReason {
    /// Every reason, in precedence (and counter index) order.
    pub const ALL: [DropReason; 7] = [
        DropReason::Truncated,
        DropReason::NonIpv4,
        DropReason::IpOptions,
        DropReason::Fragment,
        DropReason::BucketMiss,
        DropReason::Ttl,
        DropReason::NoRoute,
    ];

    /// Number of reasons, which is the size of the drop counter.
    pub const COUNT: usize = Self::ALL.len();

    /// Index of this reason's cell in the drop counter.
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The reason at counter index `i`.
    pub fn from_index(i: usize) -> Option<Self> {
        Self::ALL.get(i).copied()
    }

    /// Short snake_case name, as used in the P4 program and in reports.
    pub const fn name(self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::NonIpv4 => "non_ipv4",
            DropReason::IpOptions => "ip_options",
            DropReason::Fragment => "fragment",
            DropReason::BucketMiss => "bucket_miss",
            DropReason::Ttl => "ttl",
            DropReason::NoRoute => "no_route",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_follow_precedence() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
            assert_eq!(DropReason::from_index(i), Some(*r));
        }
        assert_eq!(DropReason::from_index(DropReason::COUNT), None);
        assert!(DropReason::Truncated < DropReason::NoRoute);
    }
}
