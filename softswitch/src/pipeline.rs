//! The mux pipeline as a pure function: (frame, ingress port, tables) to
//! a [`Verdict`], with the counter updates handed to a [`Count`] sink.
//!
//! It does what the P4 program does, in the order of
//! `/work/shared/pipeline-spec.md`:
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
//! Nothing is allocated and nothing can panic on any input: every read is
//! through a length-checked [`beamer_pipeline::wire`] view.

use crate::packet::{Frame, Verdict};
use crate::tables::{Tables, VipHit};
use beamer_pipeline::DropReason;
use beamer_pipeline::entries::RouteAction;
use beamer_pipeline::hash::bucket_of_wire;
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
    let bytes = frame.len() as u64;
    match run(tables, counts, frame, bytes) {
        Ok(port) => Verdict::Forward { port },
        Err(reason) => {
            counts.drop(reason, bytes);
            Verdict::Drop(reason)
        }
    }
}

/// The header fields the rest of the pipeline needs, read once.
struct Parsed {
    src: [u8; 4],
    dst: u32,
    ttl: u8,
    total_len: u16,
    /// Protocol and (src port, dst port) for TCP and UDP.
    l4: Option<(u8, [u8; 2], u16)>,
}

/// Step 1: parse, and the four parse-time drop reasons in precedence order.
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

/// The outer header of an encapsulated packet.
struct Outer {
    dip: u32,
    /// prev_dip and change_time for the bucket path; `None` for to_server.
    option: Option<(u32, u32)>,
}

#[inline(always)]
fn run(
    t: &Tables,
    counts: &mut impl Count,
    frame: &mut Frame<'_>,
    bytes: u64,
) -> Result<u16, DropReason> {
    let (buf, head, len) = frame.parts();
    let p = parse(&buf[head..head + len])?;

    let vip = match p.l4 {
        Some((protocol, src_port, dst_port)) => match t.vip(p.dst, protocol, dst_port) {
            Some((cell, hit)) => {
                counts.vip(cell, bytes);
                Some((hit, src_port))
            }
            None => {
                counts.vip(t.vip_default_cell(), bytes);
                None
            }
        },
        None => None,
    };

    let outer = match vip {
        Some((VipHit::ToBuckets { set }, src_port)) => {
            let bucket = bucket_of_wire(p.src, src_port, t.bucket_bits());
            let Some(slot) = t.bucket(set, bucket) else {
                counts.bucket(t.bucket_default_cell(), bytes);
                return Err(DropReason::BucketMiss);
            };
            counts.bucket(t.bucket_cell(set, bucket), bytes);
            Outer {
                dip: slot.dip,
                option: Some((slot.prev_dip, slot.change_time)),
            }
        }
        Some((VipHit::ToServer { dip }, _)) => Outer { dip, option: None },
        None => {
            // Routed as is: TTL first, then the route.
            if p.ttl <= 1 {
                return Err(DropReason::Ttl);
            }
            let route = t.route(p.dst).ok_or(DropReason::NoRoute)?;
            forward_routed(&mut buf[head..head + len], p.ttl, route);
            return Ok(route.port);
        }
    };

    let route = t.route(outer.dip).ok_or(DropReason::NoRoute)?;
    let (new_head, new_len) = encapsulate(buf, head, len, &outer, p.total_len, t, route);
    frame.set_span(new_head, new_len);
    Ok(route.port)
}

/// Rewrites a routed packet: TTL - 1, header checksum, Ethernet header.
#[inline(always)]
fn forward_routed(pkt: &mut [u8], ttl: u8, route: &RouteAction) {
    if let Ok(mut ip) = Ipv4Packet::new_checked(&mut pkt[ethernet::HEADER_LEN..]) {
        ip.set_ttl(ttl - 1);
        ip.fill_checksum();
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
    inner_total_len: u16,
    t: &Tables,
    route: &RouteAction,
) -> (usize, usize) {
    let (outer_len, ihl) = match outer.option {
        Some(_) => (OUTER_HEADER_LEN, OUTER_IHL),
        None => (ipv4::HEADER_LEN, IHL_NO_OPTIONS),
    };
    // Frame guarantees head >= MAX_GROWTH >= outer_len.
    let new_head = head - outer_len;
    let inner_start = head + ethernet::HEADER_LEN;
    let outer_start = inner_start - outer_len;
    if let Ok(mut ip) = Ipv4Packet::new_checked(&mut buf[outer_start..inner_start]) {
        let config = t.config();
        ip.set_version_ihl(VERSION, ihl);
        ip.set_tos(0);
        ip.set_total_len(inner_total_len.wrapping_add(outer_len as u16));
        ip.set_ident(0);
        ip.set_flags_frag(0);
        ip.set_ttl(OUTER_TTL);
        ip.set_protocol(PROTO_IPIP);
        ip.set_src(config.tunnel_src);
        ip.set_dst(Ipv4Addr::from(outer.dip));
        if let Some((prev_dip, change_time)) = outer.option
            && let Ok(mut opt) = BeamerOption::new_checked(ip.options_mut())
        {
            opt.emit(Ipv4Addr::from(prev_dip), change_time, config.generation);
        }
        ip.fill_checksum();
    }
    rewrite_ethernet(&mut buf[new_head..outer_start], route);
    (new_head, len + outer_len)
}
