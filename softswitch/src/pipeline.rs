//! The mux pipeline as a pure function: (frame, ingress port, tables) to
//! a [`Verdict`], with the counter updates handed to a [`Count`] sink.
//!
//! It does what the P4 program does, in the order of the pipeline spec
//! (`shared/pipeline-spec.md`):
//!
//! 1. parse Ethernet, IPv4 and (for IHL 5, non-fragment TCP/UDP) the fixed
//!    L4 header, dropping with the first [`DropReason`] that applies:
//!    truncated, non_ipv4, ip_options, fragment;
//! 2. TCP and UDP look up the VIP table on (dst, protocol, dst port);
//!    other protocols skip it;
//! 3. `to_buckets`: bucket = CRC-32(src addr, src port) & (2^k - 1), then
//!    the bucket table: a miss drops (bucket_miss), a hit encapsulates with
//!    the 36-byte outer header (IHL 9, the Beamer option);
//!    `to_server`: encapsulate with a plain 20-byte outer header;
//! 4. a VIP miss, or a protocol other than TCP/UDP, is routed as is:
//!    TTL <= 1 drops (ttl), otherwise TTL - 1 and a fresh header checksum;
//! 5. route on the destination (the outer one after encapsulation): a miss
//!    drops (no_route), a hit rewrites the Ethernet header and sets the
//!    egress port.
//!
//! Counters: VIP and bucket entries count packets and frame bytes when hit
//! (even if the packet is dropped later, as P4 direct counters do); misses
//! count into the table's default entry; drops count per reason. A VIP hit
//! with TTL 0 or 1 is encapsulated, and the inner packet is never changed.
//!
//! The work is split in two phases, `classify` (parse, VIP lookup, hash)
//! and `finish` (bucket lookup, route, rewrite). [`process`] runs both on
//! one frame; a batch runs the first phase over all its frames, prefetching
//! each packet's bucket entry and counter, then the second, so the cache
//! misses of a batch overlap instead of queueing. Both paths run the same
//! code and give the same bytes.
//!
//! Nothing is allocated and nothing can panic on any input: every read is
//! through a length-checked [`beamer_pipeline::wire`] view.

use crate::packet::{Frame, Verdict};
use crate::tables::{Tables, VipHit};
use beamer_pipeline::DropReason;
use beamer_pipeline::entries::RouteAction;
use beamer_pipeline::wire::ethernet::{self, ETHERTYPE_IPV4};
use beamer_pipeline::wire::ipv4::{
    self, IHL_NO_OPTIONS, PROTO_IPIP, PROTO_TCP, PROTO_UDP, VERSION,
};
use beamer_pipeline::wire::option::{OUTER_HEADER_LEN, OUTER_IHL, OUTER_TTL};
use beamer_pipeline::wire::{BeamerOption, EthernetFrame, Ipv4Packet, TcpHeader, UdpHeader};
use std::net::Ipv4Addr;

/// Where the pipeline's counter updates go.
pub trait Count {
    /// A VIP table lookup hit the entry with counter `cell` (or missed, and
    /// `cell` is the default entry's).
    fn vip(&mut self, cell: u32, bytes: u64);
    /// A bucket table lookup hit the entry with counter `cell` (or missed,
    /// and `cell` is the default entry's).
    fn bucket(&mut self, cell: u32, bytes: u64);
    /// The packet was dropped for `reason`.
    fn drop(&mut self, reason: DropReason, bytes: u64);
    /// A hint that `bucket(cell, ..)` will follow soon.
    #[inline(always)]
    fn prefetch_bucket(&self, _cell: u32) {}
}

/// A [`Count`] sink that counts nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoCount;

impl Count for NoCount {
    fn vip(&mut self, _: u32, _: u64) {}
    fn bucket(&mut self, _: u32, _: u64) {}
    fn drop(&mut self, _: DropReason, _: u64) {}
}

/// Runs one frame through the pipeline, rewriting it in place.
///
/// On [`Verdict::Forward`] the frame now spans the output bytes (36 or 20
/// bytes longer for an encapsulated packet, which starts that much earlier
/// in the buffer). On [`Verdict::Drop`] the frame is unchanged and the drop
/// was counted. The ingress port plays no part in the decision (egress may
/// equal ingress); it is taken for the signature's sake, as in P4.
#[inline]
pub fn process(
    tables: &Tables,
    counts: &mut impl Count,
    frame: &mut Frame<'_>,
    _ingress_port: u16,
) -> Verdict {
    let plan = classify(tables, counts, frame.bytes());
    finish(tables, counts, frame, plan)
}

/// What the first phase decided for a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Dropped (not yet counted).
    Drop(DropReason),
    /// Routed without encapsulation.
    Routed {
        /// Destination address.
        dst: u32,
        /// TTL on arrival.
        ttl: u8,
    },
    /// A service-port hit: look up `bucket` in set slot `set`.
    Bucket {
        /// Set slot.
        set: u32,
        /// The bucket.
        bucket: u32,
        /// The inner total-length field.
        total_len: u16,
    },
    /// A per-server-port hit: encapsulate to `dip`, no option.
    Server {
        /// The server.
        dip: u32,
        /// The inner total-length field.
        total_len: u16,
    },
}

/// The header fields the rest of the pipeline needs, read once.
struct Parsed {
    src: [u8; 4],
    dst: u32,
    ttl: u8,
    total_len: u16,
    /// Protocol, source port (wire order) and destination port of TCP and
    /// UDP.
    l4: Option<(u8, [u8; 2], u16)>,
}

/// Parse, and the four parse-time drop reasons in precedence order.
#[inline(always)]
fn parse(pkt: &[u8]) -> Result<Parsed, DropReason> {
    let eth = EthernetFrame::new_checked(pkt).map_err(|_| DropReason::Truncated)?;
    if eth.ethertype() != ETHERTYPE_IPV4 {
        return Err(DropReason::NonIpv4);
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).map_err(|_| DropReason::Truncated)?;
    if ip.version() != VERSION {
        return Err(DropReason::NonIpv4);
    }
    if ip.ihl() != IHL_NO_OPTIONS {
        return Err(DropReason::IpOptions);
    }
    if ip.is_fragment() {
        return Err(DropReason::Fragment);
    }
    let protocol = ip.protocol();
    let l4 = match protocol {
        PROTO_TCP => {
            let h = TcpHeader::new_checked(ip.payload()).map_err(|_| DropReason::Truncated)?;
            Some((protocol, h.src_port().to_be_bytes(), h.dst_port()))
        }
        PROTO_UDP => {
            let h = UdpHeader::new_checked(ip.payload()).map_err(|_| DropReason::Truncated)?;
            Some((protocol, h.src_port().to_be_bytes(), h.dst_port()))
        }
        _ => None,
    };
    Ok(Parsed {
        src: ip.src().octets(),
        dst: ip.dst().into(),
        ttl: ip.ttl(),
        total_len: ip.total_len(),
        l4,
    })
}

/// Phase one: parse, look up the VIP table (counting the hit or miss) and
/// hash. Reads the packet only.
#[inline(always)]
pub(crate) fn classify(t: &Tables, counts: &mut impl Count, pkt: &[u8]) -> Plan {
    let p = match parse(pkt) {
        Ok(p) => p,
        Err(reason) => return Plan::Drop(reason),
    };
    let routed = Plan::Routed {
        dst: p.dst,
        ttl: p.ttl,
    };
    let Some((protocol, src_port, dst_port)) = p.l4 else {
        return routed;
    };
    let bytes = pkt.len() as u64;
    match t.vip(p.dst, protocol, dst_port) {
        Some((cell, hit)) => {
            counts.vip(cell, bytes);
            match hit {
                VipHit::ToBuckets { set } => Plan::Bucket {
                    set,
                    bucket: t.hash.bucket_masked(p.src, src_port, t.bucket_mask()),
                    total_len: p.total_len,
                },
                VipHit::ToServer { dip } => Plan::Server {
                    dip,
                    total_len: p.total_len,
                },
            }
        }
        None => {
            counts.vip(t.vip_default_cell(), bytes);
            routed
        }
    }
}

/// Asks the memory system for what [`finish`] will touch: the bucket entry
/// and its counter cell.
#[inline(always)]
pub(crate) fn prefetch(t: &Tables, counts: &impl Count, plan: &Plan) {
    if let Plan::Bucket { set, bucket, .. } = *plan
        && let Some(slot) = t.bucket_slot_ref(set, bucket)
    {
        prefetch_line(std::ptr::from_ref(slot).cast());
        counts.prefetch_bucket(t.bucket_cell(set, bucket));
    }
}

/// Starts loading the cache line holding `p`. Only a hint: no fault.
#[inline(always)]
pub(crate) fn prefetch_line(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: prefetch never faults, whatever the address; SSE is part
        // of the x86-64 baseline.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Phase two: the bucket lookup, the route and the rewrite.
#[inline(always)]
pub(crate) fn finish(
    t: &Tables,
    counts: &mut impl Count,
    frame: &mut Frame<'_>,
    plan: Plan,
) -> Verdict {
    let bytes = frame.len() as u64;
    match finish_inner(t, counts, frame, plan, bytes) {
        Ok(port) => Verdict::Forward { port },
        Err(reason) => {
            counts.drop(reason, bytes);
            Verdict::Drop(reason)
        }
    }
}

/// The outer header of an encapsulated packet.
struct Outer {
    dip: u32,
    /// prev_dip and change_time for the bucket path; `None` for to_server.
    option: Option<(u32, u32)>,
    total_len: u16,
}

#[inline(always)]
fn finish_inner(
    t: &Tables,
    counts: &mut impl Count,
    frame: &mut Frame<'_>,
    plan: Plan,
    bytes: u64,
) -> Result<u16, DropReason> {
    let outer = match plan {
        Plan::Drop(reason) => return Err(reason),
        Plan::Routed { dst, ttl } => {
            // TTL first, then the route.
            if ttl <= 1 {
                return Err(DropReason::Ttl);
            }
            let route = t.route(dst).ok_or(DropReason::NoRoute)?;
            let (buf, head, len) = frame.parts();
            forward_routed(&mut buf[head..head + len], ttl, route);
            return Ok(route.port);
        }
        Plan::Bucket {
            set,
            bucket,
            total_len,
        } => {
            let Some(slot) = t.bucket(set, bucket) else {
                counts.bucket(t.bucket_default_cell(), bytes);
                return Err(DropReason::BucketMiss);
            };
            counts.bucket(t.bucket_cell(set, bucket), bytes);
            Outer {
                dip: slot.dip,
                option: Some((slot.prev_dip, slot.change_time)),
                total_len,
            }
        }
        Plan::Server { dip, total_len } => Outer {
            dip,
            option: None,
            total_len,
        },
    };
    let route = t.route(outer.dip).ok_or(DropReason::NoRoute)?;
    let (buf, head, len) = frame.parts();
    let (new_head, new_len) = encapsulate(buf, head, len, &outer, t, route);
    frame.set_span(new_head, new_len);
    Ok(route.port)
}

/// The Internet checksum of a header whose length is a multiple of 4,
/// summed 32 bits at a time. Equal to
/// [`beamer_pipeline::wire::internet_checksum`] (2^16 = 1 modulo 2^16 - 1,
/// so folding 32-bit sums gives the 16-bit ones' complement sum).
#[cfg(test)]
fn header_checksum(h: &[u8]) -> u16 {
    let mut sum = HeaderSum::default();
    for (i, w) in h.chunks_exact(4).enumerate() {
        sum.add_u32(i * 4, u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    }
    sum.checksum()
}

/// The ones' complement sum of header fields given by value and offset,
/// for checksums computed from the values written rather than by reading
/// back bytes just stored (which would stall on store-to-load forwarding).
///
/// The sum is kept modulo 2^16 - 1 in a u64: a 32-bit field at an even
/// offset adds its two 16-bit words, since 2^16 = 1 modulo 2^16 - 1.
#[derive(Default, Clone, Copy)]
pub(crate) struct HeaderSum(u64);

impl HeaderSum {
    /// Adds the byte at offset `at` (the high byte of its word when `at`
    /// is even).
    #[inline(always)]
    pub(crate) fn add_u8(&mut self, at: usize, v: u8) {
        self.0 += u64::from(v) << if at % 2 == 0 { 8 } else { 0 };
    }

    /// Adds the big-endian 16-bit field at the even offset `at`.
    #[inline(always)]
    pub(crate) fn add_u16(&mut self, at: usize, v: u16) {
        debug_assert!(at % 2 == 0);
        self.0 += u64::from(v);
    }

    /// Adds the big-endian 32-bit field at the even offset `at`.
    #[inline(always)]
    pub(crate) fn add_u32(&mut self, at: usize, v: u32) {
        debug_assert!(at % 2 == 0);
        self.0 += u64::from(v);
    }

    /// The checksum: the complement of the folded sum. Equal to
    /// `internet_checksum` of the header with a zero checksum field.
    #[inline(always)]
    pub(crate) fn checksum(self) -> u16 {
        // The sum of a header's fields is below 2^40: three folds of 16 bits
        // bring it below 2^16 + 2, the fourth below 2^16.
        let mut sum = self.0;
        sum = (sum & 0xffff) + (sum >> 16);
        sum = (sum & 0xffff) + (sum >> 16);
        sum = (sum & 0xffff) + (sum >> 16);
        sum = (sum & 0xffff) + (sum >> 16);
        !(sum as u16)
    }
}

/// Rewrites a routed packet: TTL - 1, the header checksum recomputed over
/// the header as sent (not updated from the received one, which is not
/// validated), and the Ethernet header.
#[inline(always)]
fn forward_routed(pkt: &mut [u8], ttl: u8, route: &RouteAction) {
    use ipv4::field;
    if let Some(hdr) = pkt.get_mut(ethernet::HEADER_LEN..ethernet::HEADER_LEN + ipv4::HEADER_LEN)
        && let Ok(mut ip) = Ipv4Packet::new_checked(hdr)
    {
        // Every field but the checksum, with the new TTL.
        let mut sum = HeaderSum::default();
        sum.add_u8(field::VER_IHL, (ip.version() << 4) | ip.ihl());
        sum.add_u8(field::TOS, ip.tos());
        sum.add_u16(field::TOTAL_LEN.start, ip.total_len());
        sum.add_u16(field::IDENT.start, ip.ident());
        sum.add_u16(field::FLAGS_FRAG.start, ip.flags_frag());
        sum.add_u8(field::TTL, ttl - 1);
        sum.add_u8(field::PROTOCOL, ip.protocol());
        sum.add_u32(field::SRC.start, ip.src().into());
        sum.add_u32(field::DST.start, ip.dst().into());
        ip.set_ttl(ttl - 1);
        ip.set_checksum(sum.checksum());
    }
    rewrite_ethernet(pkt, route);
}

#[inline(always)]
fn rewrite_ethernet(frame: &mut [u8], route: &RouteAction) {
    if let Ok(mut eth) = EthernetFrame::new_checked(frame) {
        eth.set_dst(route.dst_mac);
        eth.set_src(route.src_mac);
        eth.set_ethertype(ETHERTYPE_IPV4);
    }
}

/// Writes the new Ethernet header and the outer IPv4 header (with the
/// option on the bucket path) in front of the inner IPv4 packet, which
/// stays where it is. Returns the output frame's (head, len).
#[inline(always)]
fn encapsulate(
    buf: &mut [u8],
    head: usize,
    len: usize,
    outer: &Outer,
    t: &Tables,
    route: &RouteAction,
) -> (usize, usize) {
    match outer.option {
        Some(_) => write_outer::<OUTER_HEADER_LEN>(buf, head, len, OUTER_IHL, outer, t, route),
        None => {
            write_outer::<{ ipv4::HEADER_LEN }>(buf, head, len, IHL_NO_OPTIONS, outer, t, route)
        }
    }
}

/// [`encapsulate`] for an outer header of `N` bytes, so that every field
/// offset is checked at compile time.
#[inline(always)]
fn write_outer<const N: usize>(
    buf: &mut [u8],
    head: usize,
    len: usize,
    ihl: u8,
    outer: &Outer,
    t: &Tables,
    route: &RouteAction,
) -> (usize, usize) {
    use beamer_pipeline::wire::option::{OPTION_LEN, OPTION_TYPE, field as opt};
    use ipv4::field;
    // Frame guarantees head >= MAX_GROWTH >= N.
    let new_head = head - N;
    let inner_start = head + ethernet::HEADER_LEN;
    let (eth, hdr) = buf[new_head..inner_start].split_at_mut(ethernet::HEADER_LEN);
    let Ok(hdr) = <&mut [u8; N]>::try_from(hdr) else {
        return (head, len);
    };
    let config = t.config();
    let total_len = outer.total_len.wrapping_add(N as u16);
    let src = config.tunnel_src;
    // TOS, identification, flags and fragment offset are zero, and add
    // nothing to the checksum.
    let mut sum = HeaderSum::default();
    sum.add_u8(field::VER_IHL, (VERSION << 4) | ihl);
    sum.add_u16(field::TOTAL_LEN.start, total_len);
    sum.add_u8(field::TTL, OUTER_TTL);
    sum.add_u8(field::PROTOCOL, PROTO_IPIP);
    sum.add_u32(field::SRC.start, src.into());
    sum.add_u32(field::DST.start, outer.dip);
    if let Some((prev_dip, change_time)) = outer.option
        && let Ok(mut o) = BeamerOption::new_checked(&mut hdr[ipv4::HEADER_LEN..])
    {
        let at = ipv4::HEADER_LEN;
        o.emit(Ipv4Addr::from(prev_dip), change_time, config.generation);
        sum.add_u8(at + opt::TYPE, OPTION_TYPE);
        sum.add_u8(at + opt::LEN, OPTION_LEN as u8);
        sum.add_u32(at + opt::PREV_DIP.start, prev_dip);
        sum.add_u32(at + opt::CHANGE_TIME.start, change_time);
        sum.add_u32(at + opt::GENERATION.start, config.generation);
    }
    if let Ok(mut ip) = Ipv4Packet::new_checked(hdr) {
        ip.set_version_ihl(VERSION, ihl);
        ip.set_tos(0);
        ip.set_total_len(total_len);
        ip.set_ident(0);
        ip.set_flags_frag(0);
        ip.set_ttl(OUTER_TTL);
        ip.set_protocol(PROTO_IPIP);
        ip.set_src(src);
        ip.set_dst(Ipv4Addr::from(outer.dip));
        ip.set_checksum(sum.checksum());
    }
    rewrite_ethernet(eth, route);
    (new_head, len + N)
}

#[cfg(test)]
mod tests {
    use super::*;
    use beamer_pipeline::wire::internet_checksum;

    #[test]
    fn header_checksum_equals_internet_checksum() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for len in [0usize, 4, 20, 36, 60] {
            for _ in 0..2000 {
                let h: Vec<u8> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x as u8
                    })
                    .collect();
                assert_eq!(header_checksum(&h), internet_checksum(&h), "{h:02x?}");
            }
            // The extremes: all ones and all zeros.
            assert_eq!(
                header_checksum(&vec![0xff; len]),
                internet_checksum(&vec![0xff; len])
            );
            assert_eq!(
                header_checksum(&vec![0; len]),
                internet_checksum(&vec![0; len])
            );
        }
    }
}
