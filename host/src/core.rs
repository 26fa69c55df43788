//! The per-packet decision: deliver locally, daisy-chain, or drop.
//!
//! Pure and deterministic: the packet, the time and a local-connection
//! lookup go in, one [`Verdict`] comes out, and the only side effects are on
//! the [`Host`]'s learned state, its counters and, for a forwarded packet,
//! the packet's outer header.
//!
//! ## The rules, in order (after validation)
//! 0. A TCP packet to a per-server port goes to the local stack.
//! 1. A SYN without ACK goes to the local stack.
//! 2. A packet of a local connection goes to the local stack: the stack has a
//!    socket for it (established, SYN_RECV, closing), or it completes a
//!    handshake whose SYN this host delivered (which covers SYN cookies, see
//!    [`crate::RecentSyns`]).
//! 3. If the host learned a previous DIP for the packet's bucket and that
//!    change is younger than the daisy timeout, the packet goes on to it:
//!    outer destination rewritten, option change time zeroed, outer TTL
//!    decremented, outer checksum recomputed. Unless the loop guard stops it.
//! 4. If the packet's generation is older than the newest seen, it is
//!    dropped without a RST (a stale mux sent it).
//! 5. Otherwise it goes to the local stack, which answers with a RST.
//!
//! ## Learning
//! Before deciding, the host learns `(previous DIP, change time, generation)`
//! for the packet's bucket from an option whose change time is newer than
//! what it knows and whose previous DIP is neither 0 nor this host. Chained
//! packets carry a zero change time, so nobody learns from them. Neither
//! the learned changes nor the newest generation can stick forever: an
//! expired change is replaced by any real one, and a generation that went
//! backwards is accepted once the newest has been unseen for a timeout.
//!
//! ## Chains and the loop guard
//! Each host remembers its own predecessor per bucket, so a bucket moved A to
//! B to C inside the timeout chains C to B to A: the packet reaches B with a
//! zero change time, B finds no socket, and B's own learned predecessor is A.
//!
//! A bucket moved A to B and back to A inside the timeout would make A and B
//! send a packet that belongs to neither back and forth. The guard: a packet
//! that was already chained (change time 0 with a non-zero previous DIP: the
//! controller writes change time 0 only with previous DIP 0) was already
//! taken to the option's previous DIP by its first hop, so a host whose own
//! predecessor is that same DIP does not chain it again. In A-B-A this stops
//! the packet when it comes back to A. As a last bound for any longer cycle
//! of stale learned state, every chain hop decrements the outer TTL and a
//! packet with TTL 1 or less is not chained.

use crate::counters::{Counters, Discard, LocalReason};
use crate::flow::Flow;
use crate::syns::RecentSyns;
use crate::time::Time;
use beamer_pipeline::hash::bucket_of;
use beamer_pipeline::params::{MAX_BUCKETS, MIN_BUCKETS};
use beamer_pipeline::wire::ipv4::{self, HEADER_LEN, PROTO_IPIP, PROTO_TCP, PROTO_UDP};
use beamer_pipeline::wire::l4::{TCP_ACK, TCP_RST, TCP_SYN};
use beamer_pipeline::wire::option::{OPTION_LEN, OUTER_HEADER_LEN, OUTER_IHL, OptionError};
use beamer_pipeline::wire::{BeamerOption, Ipv4Packet, TcpHeader, UdpHeader};
use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::ops::Range;

pub use beamer_pipeline::daisy::DEFAULT_DAISY_TIMEOUT_SECS;

/// Default size of the table of recent SYNs.
const DEFAULT_SYN_SLOTS: usize = 1 << 14;

/// Answers "does the local stack have a connection for this 4-tuple?".
///
/// The agent implements it with `sock_diag`; the demo with a set of
/// simulated connections.
pub trait LocalConnections {
    /// True when the stack holds a socket for `flow` that is not a listener:
    /// established, SYN_RECV, closing or TIME_WAIT.
    fn has_connection(&mut self, flow: &Flow, now: Time) -> bool;

    /// Told after a TCP packet of `flow` was handed to the local stack, which
    /// may have created a socket for it: a cache forgets a negative answer.
    fn delivered(&mut self, _flow: &Flow) {}
}

impl LocalConnections for HashSet<Flow> {
    fn has_connection(&mut self, flow: &Flow, _now: Time) -> bool {
        self.contains(flow)
    }
}

impl<T: LocalConnections + ?Sized> LocalConnections for &mut T {
    fn has_connection(&mut self, flow: &Flow, now: Time) -> bool {
        (**self).has_connection(flow, now)
    }
    fn delivered(&mut self, flow: &Flow) {
        (**self).delivered(flow)
    }
}

/// A bad host configuration, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The DIP is 0.0.0.0.
    #[error("--dip must be this server's address, not 0.0.0.0")]
    UnspecifiedDip,
    /// No VIP was given.
    #[error("--vip: at least one VIP is needed")]
    NoVips,
    /// A VIP was given twice.
    #[error("--vip {0} is given twice")]
    DuplicateVip(Ipv4Addr),
    /// The DIP is also a VIP.
    #[error("--dip {0} is also a --vip")]
    DipIsVip(Ipv4Addr),
    /// No tunnel source was given.
    #[error("--tunnel-src: at least one tunnel source (the muxes' outer source) is needed")]
    NoTunnelSource,
    /// The bucket bits are out of range.
    #[error("--bucket-bits {value} is out of range (valid: {min} to {max}, as the mux's)")]
    BucketBits {
        /// The value given.
        value: u8,
        /// Smallest valid value.
        min: u8,
        /// Largest valid value.
        max: u8,
    },
    /// Port 0 is not a per-server port.
    #[error("--port 0 is not a valid per-server port")]
    ServerPortZero,
}

/// What the host is and what it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConfig {
    /// This server's address: the outer destination the mux uses.
    pub dip: Ipv4Addr,
    /// The VIPs this server serves (configured locally).
    pub vips: Vec<Ipv4Addr>,
    /// This server's per-server TCP ports on its VIPs (MPTCP subflows).
    pub server_ports: Vec<u16>,
    /// Outer source addresses accepted: the muxes' tunnel sources.
    pub tunnel_sources: Vec<Ipv4Addr>,
    /// Bucket bits k: 2^k buckets per VIP, the same as the mux's.
    pub bucket_bits: u8,
    /// How long after a bucket change its previous server still gets the
    /// packets of its connections, in seconds.
    pub daisy_timeout_secs: u32,
    /// Whether to daisy-chain at all; off, every valid packet goes local.
    pub chaining: bool,
    /// Size of the table of recent SYNs.
    pub syn_slots: usize,
}

impl HostConfig {
    /// A configuration with the default timeout, chaining on, no
    /// per-server port.
    pub fn new(
        dip: Ipv4Addr,
        vips: Vec<Ipv4Addr>,
        tunnel_sources: Vec<Ipv4Addr>,
        bucket_bits: u8,
    ) -> Self {
        HostConfig {
            dip,
            vips,
            server_ports: Vec::new(),
            tunnel_sources,
            bucket_bits,
            daisy_timeout_secs: DEFAULT_DAISY_TIMEOUT_SECS,
            chaining: true,
            syn_slots: DEFAULT_SYN_SLOTS,
        }
    }

    /// The smallest and largest bucket bits the mux accepts.
    pub fn bucket_bits_range() -> (u8, u8) {
        (
            MIN_BUCKETS.trailing_zeros() as u8,
            MAX_BUCKETS.trailing_zeros() as u8,
        )
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.dip.is_unspecified() {
            return Err(ConfigError::UnspecifiedDip);
        }
        if self.vips.is_empty() {
            return Err(ConfigError::NoVips);
        }
        for (i, v) in self.vips.iter().enumerate() {
            if self.vips[..i].contains(v) {
                return Err(ConfigError::DuplicateVip(*v));
            }
        }
        if self.vips.contains(&self.dip) {
            return Err(ConfigError::DipIsVip(self.dip));
        }
        if self.tunnel_sources.is_empty() {
            return Err(ConfigError::NoTunnelSource);
        }
        let (min, max) = Self::bucket_bits_range();
        if !(min..=max).contains(&self.bucket_bits) {
            return Err(ConfigError::BucketBits {
                value: self.bucket_bits,
                min,
                max,
            });
        }
        if self.server_ports.contains(&0) {
            return Err(ConfigError::ServerPortZero);
        }
        Ok(())
    }
}

/// What a host knows about one bucket: where it was before it came here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Learned {
    /// The previous server (0.0.0.0: nothing learned).
    pub prev_dip: Ipv4Addr,
    /// When the bucket moved here from `prev_dip`, Unix seconds.
    pub change_time: u32,
    /// The generation of the packet it was learned from.
    pub generation: u32,
}

impl Learned {
    /// Nothing learned.
    pub const NONE: Learned = Learned {
        prev_dip: Ipv4Addr::UNSPECIFIED,
        change_time: 0,
        generation: 0,
    };
}

/// The decision for one packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Hand `packet[inner]` (the inner IPv4 packet) to the local stack.
    Local {
        /// Which rule sent it there.
        reason: LocalReason,
        /// Where the inner packet is in the buffer.
        inner: Range<usize>,
    },
    /// Send the whole buffer, whose outer header was rewritten, to `to`.
    Forward {
        /// The previous server, now the outer destination.
        to: Ipv4Addr,
    },
    /// Drop the packet.
    Drop(Discard),
}

/// Everything read from a valid packet, copied out of the buffer so the
/// buffer can be rewritten afterwards.
struct Parsed {
    inner: Range<usize>,
    flow: Flow,
    vip_index: usize,
    /// `Some` for TCP: (flags, seq).
    tcp: Option<(u8, u32)>,
    /// The option, when the outer header carries one.
    option: Option<Opt>,
    outer_ttl: u8,
}

#[derive(Clone, Copy)]
struct Opt {
    prev_dip: Ipv4Addr,
    change_time: u32,
    generation: u32,
}

/// The state of one server's agent: configuration, learned buckets, newest
/// generation, recent SYNs and counters.
#[derive(Debug, Clone)]
pub struct Host {
    cfg: HostConfig,
    /// Per VIP (in `cfg.vips` order), per bucket.
    learned: Vec<Box<[Learned]>>,
    newest_generation: u32,
    /// When the newest generation was last seen, Unix seconds.
    newest_seen_at: u32,
    syns: RecentSyns,
    counters: Counters,
}

impl Host {
    /// A host with nothing learned yet.
    pub fn new(cfg: HostConfig) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let buckets = 1usize << cfg.bucket_bits;
        let learned = cfg
            .vips
            .iter()
            .map(|_| vec![Learned::NONE; buckets].into_boxed_slice())
            .collect();
        Ok(Host {
            syns: RecentSyns::new(cfg.syn_slots),
            cfg,
            learned,
            newest_generation: 0,
            newest_seen_at: 0,
            counters: Counters::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &HostConfig {
        &self.cfg
    }

    /// The counters so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Switches daisy chaining on or off.
    pub fn set_chaining(&mut self, on: bool) {
        self.cfg.chaining = on;
    }

    /// The newest mux generation seen in a valid option.
    pub fn newest_generation(&self) -> u32 {
        self.newest_generation
    }

    /// What was learned for `bucket` of `vip`, if anything.
    pub fn learned(&self, vip: Ipv4Addr, bucket: u32) -> Option<Learned> {
        let i = self.cfg.vips.iter().position(|v| *v == vip)?;
        let l = self.learned.get(i)?.get(bucket as usize)?;
        (!l.prev_dip.is_unspecified()).then_some(*l)
    }

    /// The bucket of a client, as the mux computes it.
    pub fn bucket_of(&self, client: Ipv4Addr, client_port: u16) -> u32 {
        bucket_of(client, client_port, self.cfg.bucket_bits)
    }

    /// Decides what to do with one received packet: `packet` starts at the
    /// outer IPv4 header. A [`Verdict::Forward`] has rewritten the outer
    /// header in place. Never panics, whatever the bytes.
    pub fn handle<C: LocalConnections + ?Sized>(
        &mut self,
        packet: &mut [u8],
        now: Time,
        conns: &mut C,
    ) -> Verdict {
        self.counters.received += 1;
        let v = match self.parse(packet) {
            Err(d) => Verdict::Drop(d),
            Ok(p) => self.decide(packet, &p, now, conns),
        };
        match &v {
            Verdict::Local { reason, .. } => self.counters.local[reason.index()] += 1,
            Verdict::Forward { .. } => self.counters.forwarded += 1,
            Verdict::Drop(d) => self.counters.dropped[d.index()] += 1,
        }
        v
    }

    /// Validates the packet and copies out what the decision needs.
    fn parse(&self, packet: &[u8]) -> Result<Parsed, Discard> {
        let outer = Ipv4Packet::new_checked(packet).map_err(|_| Discard::Truncated)?;
        if outer.version() != 4 {
            return Err(Discard::NotIpv4);
        }
        let ihl = outer.ihl();
        if ihl != ipv4::IHL_NO_OPTIONS && ihl != OUTER_IHL {
            return Err(Discard::UnexpectedIhl);
        }
        let hl = outer.header_len();
        if packet.len() < hl {
            return Err(Discard::Truncated);
        }
        if outer.protocol() != PROTO_IPIP {
            return Err(Discard::NotIpip);
        }
        if outer.is_fragment() {
            return Err(Discard::Fragment);
        }
        if outer.dst() != self.cfg.dip {
            return Err(Discard::NotForThisHost);
        }
        if !self.cfg.tunnel_sources.contains(&outer.src()) {
            return Err(Discard::UnknownTunnelSource);
        }
        let option = if hl == OUTER_HEADER_LEN {
            let o = BeamerOption::new_validated(outer.options()).map_err(|e| match e {
                OptionError::WrongType(_) => Discard::WrongOptionType,
                OptionError::WrongLength(_) => Discard::WrongOptionLength,
                OptionError::Truncated(_) => Discard::Truncated,
            })?;
            Some(Opt {
                prev_dip: o.prev_dip(),
                change_time: o.change_time(),
                generation: o.generation(),
            })
        } else {
            None
        };
        debug_assert_eq!(option.is_some(), hl == HEADER_LEN + OPTION_LEN);
        // Checked after the option: a receiving kernel that meets an
        // end-of-options byte inside the option area zeroes what follows
        // without fixing the checksum, and that packet is better counted
        // as a wrong option.
        if !outer.checksum_ok() {
            return Err(Discard::BadChecksum);
        }

        let rest = packet.get(hl..).unwrap_or(&[]);
        let inner = Ipv4Packet::new_checked(rest).map_err(|_| Discard::InnerTruncated)?;
        if inner.version() != 4 || inner.ihl() < ipv4::IHL_NO_OPTIONS {
            return Err(Discard::InnerNotIpv4);
        }
        let ihl_bytes = inner.header_len();
        let total = usize::from(inner.total_len());
        if total < ihl_bytes {
            return Err(Discard::InnerNotIpv4);
        }
        if total > rest.len() {
            return Err(Discard::InnerTruncated);
        }
        if inner.is_fragment() {
            return Err(Discard::InnerFragment);
        }
        let vip = inner.dst();
        let vip_index = self
            .cfg
            .vips
            .iter()
            .position(|v| *v == vip)
            .ok_or(Discard::InnerNotVip)?;
        let l4 = rest.get(ihl_bytes..total).unwrap_or(&[]);
        let (client_port, vip_port, tcp) = match inner.protocol() {
            PROTO_TCP => {
                let t = TcpHeader::new_checked(l4).map_err(|_| Discard::InnerTruncated)?;
                (t.src_port(), t.dst_port(), Some((t.flags(), t.seq())))
            }
            PROTO_UDP => {
                let u = UdpHeader::new_checked(l4).map_err(|_| Discard::InnerTruncated)?;
                (u.src_port(), u.dst_port(), None)
            }
            _ => return Err(Discard::InnerProtocol),
        };
        Ok(Parsed {
            inner: hl..hl + total,
            flow: Flow {
                client: inner.src(),
                client_port,
                vip,
                vip_port,
            },
            vip_index,
            tcp,
            option,
            outer_ttl: outer.ttl(),
        })
    }

    fn decide<C: LocalConnections + ?Sized>(
        &mut self,
        packet: &mut [u8],
        p: &Parsed,
        now: Time,
        conns: &mut C,
    ) -> Verdict {
        let local = |reason| Verdict::Local {
            reason,
            inner: p.inner.clone(),
        };
        let is_server_port = p.tcp.is_some() && self.cfg.server_ports.contains(&p.flow.vip_port);
        let Some(opt) = p.option else {
            // Without the option only the per-server path is valid.
            return if is_server_port {
                conns.delivered(&p.flow);
                local(LocalReason::ServerPort)
            } else {
                Verdict::Drop(Discard::NoOption)
            };
        };
        let bucket = bucket_of(p.flow.client, p.flow.client_port, self.cfg.bucket_bits);
        self.learn(p.vip_index, bucket, opt, now);
        if is_server_port {
            conns.delivered(&p.flow);
            return local(LocalReason::ServerPort);
        }
        let Some((flags, seq)) = p.tcp else {
            return local(LocalReason::Udp);
        };
        if !self.cfg.chaining {
            conns.delivered(&p.flow);
            return local(LocalReason::ChainingOff);
        }
        // Rule 1.
        if flags & (TCP_SYN | TCP_ACK) == TCP_SYN {
            self.syns.record(p.flow, seq, now);
            conns.delivered(&p.flow);
            return local(LocalReason::Syn);
        }
        let prev = self.young_prev(p.vip_index, bucket, now);
        let stale = opt.generation < self.newest_generation;
        if prev.is_none() && !stale {
            // Rules 2 to 5 all end at the local stack: skip the lookup.
            conns.delivered(&p.flow);
            return local(LocalReason::Stable);
        }
        // Rule 2.
        if flags & (TCP_SYN | TCP_RST) == 0 && self.syns.completes_handshake(&p.flow, seq, now) {
            conns.delivered(&p.flow);
            return local(LocalReason::Handshake);
        }
        self.counters.lookups += 1;
        if conns.has_connection(&p.flow, now) {
            conns.delivered(&p.flow);
            return local(LocalReason::Connection);
        }
        // Rule 3.
        let mut stopped = None;
        if let Some(prev) = prev {
            let already_chained = opt.change_time == 0 && !opt.prev_dip.is_unspecified();
            if already_chained && prev == opt.prev_dip {
                stopped = Some(LocalReason::LoopGuard);
            } else if p.outer_ttl <= 1 {
                stopped = Some(LocalReason::TtlSpent);
            } else {
                Self::rewrite_for_chain(packet, prev, p.outer_ttl - 1);
                return Verdict::Forward { to: prev };
            }
        }
        // Rule 4.
        if stale {
            return Verdict::Drop(Discard::StaleGeneration);
        }
        // Rule 5.
        conns.delivered(&p.flow);
        local(stopped.unwrap_or(LocalReason::Unknown))
    }

    /// Learns from an option newer than what is known, and tracks the
    /// newest generation.
    ///
    /// Two things must not stick forever: a generation that went backwards
    /// (a controller restarted without its count) is accepted once the
    /// newest has not been seen for a daisy timeout, far longer than any
    /// mux lags; and an expired learned change is replaced by any real one,
    /// so a controller clock that stepped back does not block learning.
    fn learn(&mut self, vip_index: usize, bucket: u32, opt: Opt, now: Time) {
        let now_s = now.unix_secs();
        if opt.generation >= self.newest_generation
            || now_s.saturating_sub(self.newest_seen_at) >= self.cfg.daisy_timeout_secs
        {
            self.newest_generation = opt.generation;
            self.newest_seen_at = now_s;
        }
        if opt.prev_dip.is_unspecified() || opt.prev_dip == self.cfg.dip || opt.change_time == 0 {
            // Nothing to learn; a zero change time marks a chained packet.
            return;
        }
        let timeout = self.cfg.daisy_timeout_secs;
        let Some(slot) = self
            .learned
            .get_mut(vip_index)
            .and_then(|b| b.get_mut(bucket as usize))
        else {
            return;
        };
        let expired = now_s.saturating_sub(slot.change_time) >= timeout;
        if opt.change_time > slot.change_time || (expired && opt.change_time != slot.change_time) {
            *slot = Learned {
                prev_dip: opt.prev_dip,
                change_time: opt.change_time,
                generation: opt.generation,
            };
            self.counters.learned += 1;
        }
    }

    /// The learned previous DIP of a bucket, if its change is younger than
    /// the daisy timeout. A change time in the future (clock skew between
    /// controller and server) counts as age 0.
    fn young_prev(&self, vip_index: usize, bucket: u32, now: Time) -> Option<Ipv4Addr> {
        let l = self.learned.get(vip_index)?.get(bucket as usize)?;
        let age = now.unix_secs().saturating_sub(l.change_time);
        (!l.prev_dip.is_unspecified() && age < self.cfg.daisy_timeout_secs).then_some(l.prev_dip)
    }

    /// Rewrites a validated optioned outer header for the next hop.
    fn rewrite_for_chain(packet: &mut [u8], to: Ipv4Addr, ttl: u8) {
        let Some(hdr) = packet.get_mut(..OUTER_HEADER_LEN) else {
            return;
        };
        let Ok(mut outer) = Ipv4Packet::new_checked(hdr) else {
            return;
        };
        outer.set_dst(to);
        outer.set_ttl(ttl);
        if let Ok(mut o) = BeamerOption::new_checked(outer.options_mut()) {
            o.set_change_time(0);
        }
        outer.fill_checksum();
    }
}
