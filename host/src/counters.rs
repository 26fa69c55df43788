//! Why a packet was dropped or delivered, and the counters the agent prints.

use std::fmt;

/// Why the host dropped a packet. The order is the order of the checks: a
/// packet is counted under the first reason that applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, thiserror::Error)]
#[repr(u8)]
pub enum Discard {
    /// The outer header is shorter than 20 bytes or than its IHL announces.
    #[error("truncated outer header")]
    Truncated = 0,
    /// The outer IP version is not 4.
    #[error("outer header is not IPv4")]
    NotIpv4,
    /// The outer IHL is neither 5 (per-server port) nor 9 (with the option).
    #[error("outer IHL is neither 5 nor 9")]
    UnexpectedIhl,
    /// The outer protocol is not IP-in-IP (4).
    #[error("outer protocol is not IP-in-IP")]
    NotIpip,
    /// The outer packet is a fragment.
    #[error("outer packet is a fragment")]
    Fragment,
    /// The outer destination is not this host's DIP.
    #[error("outer destination is not this host")]
    NotForThisHost,
    /// The outer source is not a configured tunnel source.
    #[error("unknown tunnel source")]
    UnknownTunnelSource,
    /// The option's type byte is not 0x61.
    #[error("wrong option type")]
    WrongOptionType,
    /// The option's length byte is not 16.
    #[error("wrong option length")]
    WrongOptionLength,
    /// The outer header checksum does not verify.
    #[error("bad outer header checksum")]
    BadChecksum,
    /// The inner IPv4, TCP or UDP header is shorter than it must be, or the
    /// inner total length runs past the packet.
    #[error("truncated inner packet")]
    InnerTruncated,
    /// The inner packet is not IPv4, or its IHL is below 5 or its total
    /// length shorter than its header.
    #[error("inner header is not valid IPv4")]
    InnerNotIpv4,
    /// The inner packet is a fragment (the mux never encapsulates one).
    #[error("inner packet is a fragment")]
    InnerFragment,
    /// The inner destination is not one of this host's VIPs.
    #[error("inner destination is not a VIP")]
    InnerNotVip,
    /// The inner packet is neither TCP nor UDP.
    #[error("inner protocol is neither TCP nor UDP")]
    InnerProtocol,
    /// An outer header without the option whose inner packet is not for one
    /// of this host's per-server ports.
    #[error("no option and not a per-server port")]
    NoOption,
    /// Not local, nothing to chain to, and older than the newest generation
    /// seen: sent by a mux whose tables are behind. Dropped without a RST.
    #[error("stale mux generation")]
    StaleGeneration,
}

impl Discard {
    /// Every reason, in check order.
    pub const ALL: [Discard; 17] = [
        Discard::Truncated,
        Discard::NotIpv4,
        Discard::UnexpectedIhl,
        Discard::NotIpip,
        Discard::Fragment,
        Discard::NotForThisHost,
        Discard::UnknownTunnelSource,
        Discard::WrongOptionType,
        Discard::WrongOptionLength,
        Discard::BadChecksum,
        Discard::InnerTruncated,
        Discard::InnerNotIpv4,
        Discard::InnerFragment,
        Discard::InnerNotVip,
        Discard::InnerProtocol,
        Discard::NoOption,
        Discard::StaleGeneration,
    ];
    /// Number of reasons.
    pub const COUNT: usize = Self::ALL.len();

    /// Index of the reason's counter.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Short snake_case name for reports.
    pub const fn name(self) -> &'static str {
        match self {
            Discard::Truncated => "truncated",
            Discard::NotIpv4 => "not_ipv4",
            Discard::UnexpectedIhl => "unexpected_ihl",
            Discard::BadChecksum => "bad_checksum",
            Discard::NotIpip => "not_ipip",
            Discard::Fragment => "fragment",
            Discard::NotForThisHost => "not_for_this_host",
            Discard::UnknownTunnelSource => "unknown_tunnel_source",
            Discard::WrongOptionType => "wrong_option_type",
            Discard::WrongOptionLength => "wrong_option_length",
            Discard::InnerTruncated => "inner_truncated",
            Discard::InnerNotIpv4 => "inner_not_ipv4",
            Discard::InnerFragment => "inner_fragment",
            Discard::InnerNotVip => "inner_not_vip",
            Discard::InnerProtocol => "inner_protocol",
            Discard::NoOption => "no_option",
            Discard::StaleGeneration => "stale_generation",
        }
    }
}

/// Why the host handed a packet to its own stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum LocalReason {
    /// To this host's per-server port (MPTCP subflows): always local.
    ServerPort = 0,
    /// UDP has no connections to follow: always local.
    Udp,
    /// Chaining is switched off (`--no-chain`).
    ChainingOff,
    /// A SYN without ACK opens a connection here (rule 1).
    Syn,
    /// The bucket has no recent previous server and the generation is
    /// current, so rules 2 to 5 all end at the local stack: no lookup needed.
    Stable,
    /// The stack has a socket for the 4-tuple (rule 2).
    Connection,
    /// Completes a handshake whose SYN this host delivered, e.g. a SYN
    /// cookie's ACK (rule 2).
    Handshake,
    /// Chaining was possible but the loop guard (the packet was already
    /// chained through this host's previous server) stopped it; the stack
    /// answers with a RST (rule 5).
    LoopGuard,
    /// Chaining was possible but the outer TTL is spent (rule 5).
    TtlSpent,
    /// Not local, no recent previous server, current generation: the stack
    /// answers with a RST (rule 5).
    Unknown,
}

impl LocalReason {
    /// Every reason, in counter order.
    pub const ALL: [LocalReason; 10] = [
        LocalReason::ServerPort,
        LocalReason::Udp,
        LocalReason::ChainingOff,
        LocalReason::Syn,
        LocalReason::Stable,
        LocalReason::Connection,
        LocalReason::Handshake,
        LocalReason::LoopGuard,
        LocalReason::TtlSpent,
        LocalReason::Unknown,
    ];
    /// Number of reasons.
    pub const COUNT: usize = Self::ALL.len();

    /// Index of the reason's counter.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Short snake_case name for reports.
    pub const fn name(self) -> &'static str {
        match self {
            LocalReason::ServerPort => "server_port",
            LocalReason::Udp => "udp",
            LocalReason::ChainingOff => "chaining_off",
            LocalReason::Syn => "syn",
            LocalReason::Stable => "stable",
            LocalReason::Connection => "connection",
            LocalReason::Handshake => "handshake",
            LocalReason::LoopGuard => "loop_guard",
            LocalReason::TtlSpent => "ttl_spent",
            LocalReason::Unknown => "unknown",
        }
    }
}

/// What the host did with the packets it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Packets handed to the decision.
    pub received: u64,
    /// Packets delivered to the local stack, per reason.
    pub local: [u64; LocalReason::COUNT],
    /// Packets daisy-chained to a previous server.
    pub forwarded: u64,
    /// Packets dropped, per reason.
    pub dropped: [u64; Discard::COUNT],
    /// Bucket states learned from options.
    pub learned: u64,
    /// Local-connection lookups asked of the [`crate::LocalConnections`].
    pub lookups: u64,
}

impl Counters {
    /// All packets delivered locally.
    pub fn local_total(&self) -> u64 {
        self.local.iter().sum()
    }

    /// All packets dropped.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }

    /// Packets delivered locally for `r`.
    pub fn local(&self, r: LocalReason) -> u64 {
        self.local[r.index()]
    }

    /// Packets dropped for `r`.
    pub fn dropped(&self, r: Discard) -> u64 {
        self.dropped[r.index()]
    }
}

impl fmt::Display for Counters {
    /// One `name value` line per non-zero counter, grouped, totals first.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "received            {}", self.received)?;
        writeln!(f, "local               {}", self.local_total())?;
        for r in LocalReason::ALL {
            if self.local(r) > 0 {
                writeln!(f, "  {:<18}{}", r.name(), self.local(r))?;
            }
        }
        writeln!(f, "forwarded           {}", self.forwarded)?;
        writeln!(f, "dropped             {}", self.dropped_total())?;
        for r in Discard::ALL {
            if self.dropped(r) > 0 {
                writeln!(f, "  {:<18}{}", r.name(), self.dropped(r))?;
            }
        }
        writeln!(f, "learned             {}", self.learned)?;
        write!(f, "lookups             {}", self.lookups)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_follow_declaration_order() {
        for (i, r) in Discard::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
        for (i, r) in LocalReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }
}
