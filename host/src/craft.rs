//! Builds packets as the client and the mux would: for tests, benchmarks,
//! the demo's simulated servers and the namespace tests.

use beamer_pipeline::wire::ipv4::{self, HEADER_LEN, PROTO_IPIP, PROTO_TCP, PROTO_UDP};
use beamer_pipeline::wire::l4::{TCP_HEADER_LEN, UDP_HEADER_LEN, field as l4field};
use beamer_pipeline::wire::option::{OPTION_LEN, OUTER_IHL, OUTER_TTL};
use beamer_pipeline::wire::{BeamerOption, Ipv4Packet, internet_checksum};
use std::net::Ipv4Addr;

/// The option's fields, as the mux writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionFields {
    /// Previous DIP (0.0.0.0 for none).
    pub prev_dip: Ipv4Addr,
    /// Change time, Unix seconds (0 when there is no previous DIP).
    pub change_time: u32,
    /// Mux generation.
    pub generation: u32,
}

/// A TCP segment from a client to a VIP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpSegment {
    /// Source address.
    pub src: Ipv4Addr,
    /// Source port.
    pub src_port: u16,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Flag byte.
    pub flags: u8,
    /// Payload.
    pub payload: Vec<u8>,
}

impl TcpSegment {
    /// The IPv4 packet (TTL 64, DF, no options) with valid IP and TCP
    /// checksums.
    pub fn to_ipv4(&self) -> Vec<u8> {
        let l4_len = TCP_HEADER_LEN + self.payload.len();
        let mut b = ipv4_header(self.src, self.dst, PROTO_TCP, l4_len);
        let mut tcp = vec![0u8; TCP_HEADER_LEN];
        tcp[l4field::SRC_PORT].copy_from_slice(&self.src_port.to_be_bytes());
        tcp[l4field::DST_PORT].copy_from_slice(&self.dst_port.to_be_bytes());
        tcp[l4field::TCP_SEQ].copy_from_slice(&self.seq.to_be_bytes());
        tcp[l4field::TCP_ACK].copy_from_slice(&self.ack.to_be_bytes());
        tcp[l4field::TCP_DATA_OFF] = ((TCP_HEADER_LEN / 4) as u8) << 4;
        tcp[l4field::TCP_FLAGS] = self.flags;
        tcp[14..16].copy_from_slice(&65535u16.to_be_bytes()); // window
        tcp.extend_from_slice(&self.payload);
        let sum = l4_checksum(self.src, self.dst, PROTO_TCP, &tcp);
        tcp[l4field::TCP_CHECKSUM].copy_from_slice(&sum.to_be_bytes());
        b.extend_from_slice(&tcp);
        b
    }
}

/// A UDP datagram from `src` to `dst` with valid checksums.
pub fn udp_datagram(
    src: Ipv4Addr,
    src_port: u16,
    dst: Ipv4Addr,
    dst_port: u16,
    payload: &[u8],
) -> Vec<u8> {
    let l4_len = UDP_HEADER_LEN + payload.len();
    let mut b = ipv4_header(src, dst, PROTO_UDP, l4_len);
    let mut udp = vec![0u8; UDP_HEADER_LEN];
    udp[l4field::SRC_PORT].copy_from_slice(&src_port.to_be_bytes());
    udp[l4field::DST_PORT].copy_from_slice(&dst_port.to_be_bytes());
    udp[l4field::UDP_LEN].copy_from_slice(&(l4_len as u16).to_be_bytes());
    udp.extend_from_slice(payload);
    let sum = l4_checksum(src, dst, PROTO_UDP, &udp);
    udp[l4field::UDP_CHECKSUM].copy_from_slice(&sum.to_be_bytes());
    b.extend_from_slice(&udp);
    b
}

fn ipv4_header(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, l4_len: usize) -> Vec<u8> {
    let mut b = vec![0u8; HEADER_LEN];
    let mut ip = Ipv4Packet::new_checked(&mut b[..]).expect("20 bytes");
    ip.set_version_ihl(4, ipv4::IHL_NO_OPTIONS);
    ip.set_total_len((HEADER_LEN + l4_len) as u16);
    ip.set_flags_frag(ipv4::FLAG_DF);
    ip.set_ttl(64);
    ip.set_protocol(proto);
    ip.set_src(src);
    ip.set_dst(dst);
    ip.fill_checksum();
    b
}

/// The TCP/UDP checksum over the pseudo-header and `l4` (whose checksum
/// field must be zero).
pub fn l4_checksum(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, l4: &[u8]) -> u16 {
    let mut pseudo = Vec::with_capacity(12 + l4.len());
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&[0, proto]);
    pseudo.extend_from_slice(&(l4.len() as u16).to_be_bytes());
    pseudo.extend_from_slice(l4);
    internet_checksum(&pseudo)
}

/// Encapsulates `inner` as the mux does (pipeline spec, "Outer IPv4
/// header"): IHL 9 with the option when `option` is given (bucket path),
/// IHL 5 without (per-server path); TOS 0, ident 0, flags 0, TTL 64,
/// protocol 4, total length from the inner header's field.
pub fn encapsulate(
    inner: &[u8],
    tunnel_src: Ipv4Addr,
    dip: Ipv4Addr,
    option: Option<OptionFields>,
) -> Vec<u8> {
    let hl = if option.is_some() {
        HEADER_LEN + OPTION_LEN
    } else {
        HEADER_LEN
    };
    let inner_total = Ipv4Packet::new_checked(inner)
        .map(|p| p.total_len())
        .unwrap_or(inner.len() as u16);
    let mut b = vec![0u8; hl];
    {
        let mut ip = Ipv4Packet::new_checked(&mut b[..]).expect("20 bytes");
        ip.set_version_ihl(
            4,
            if option.is_some() {
                OUTER_IHL
            } else {
                ipv4::IHL_NO_OPTIONS
            },
        );
        ip.set_total_len(inner_total.wrapping_add(hl as u16));
        ip.set_ttl(OUTER_TTL);
        ip.set_protocol(PROTO_IPIP);
        ip.set_src(tunnel_src);
        ip.set_dst(dip);
        if let Some(o) = option {
            BeamerOption::new_checked(ip.options_mut())
                .expect("16 option bytes")
                .emit(o.prev_dip, o.change_time, o.generation);
        }
        ip.fill_checksum();
    }
    b.extend_from_slice(inner);
    b
}
