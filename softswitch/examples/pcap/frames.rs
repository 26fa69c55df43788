//! The frames of the pcap example: what each frame is, and what the switch
//! must do with it under `tables.toml` of this directory.
//!
//! Shared (by `#[path]`) between the generator,
//! `examples/make_pcap_example.rs`, which writes `input.pcap`, and the
//! test `tests/pcap_example.rs`, which checks that the committed files are
//! what this module and the switch make.

#![allow(dead_code)]

use beamer_pipeline::DropReason;
use beamer_pipeline::hash::bucket_of;
use beamer_pipeline::wire::internet_checksum;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{Endianness, TsResolution};
use std::net::Ipv4Addr;
use std::time::Duration;

/// What the switch does with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Encapsulated (the tables' bucket or per-server path) and sent out
    /// of this port.
    Encap(u16),
    /// Routed as is (TTL - 1) out of this port.
    Routed(u16),
    /// Dropped and counted under this reason.
    Drop(DropReason),
}

/// One frame of the example.
pub struct Fixture {
    /// What the frame is.
    pub what: &'static str,
    /// The frame.
    pub frame: Vec<u8>,
    /// What the switch does with it.
    pub expect: Expect,
}

/// The service address with buckets for every client.
pub const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
/// A service whose buckets are all missing but bucket 0.
pub const VIP_SPARSE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 20);
/// log2 of the bucket count of `tables.toml`.
pub const BUCKET_BITS: u8 = 4;
/// The bucket `tables.toml` moved (it has a previous server).
pub const MOVED_BUCKET: u32 = 7;

const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x01];
const MUX_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x00, 0x01];
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
const CLIENT2: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 8);
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);

const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_PSH: u8 = 0x08;
const TCP_ACK: u8 = 0x10;
const IP_MF: u16 = 0x2000;

fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&MUX_MAC);
    f.extend_from_slice(&CLIENT_MAC);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An IPv4 packet with a correct header checksum; `options` go after the
/// 20 fixed bytes (a multiple of 4 long).
struct Ip {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    ttl: u8,
    ident: u16,
    flags_frag: u16,
    options: Vec<u8>,
}

impl Ip {
    fn new(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8) -> Ip {
        Ip {
            src,
            dst,
            protocol,
            ttl: 57,
            ident: 0x1c46,
            flags_frag: 0x4000, // DF, as hosts send TCP
            options: Vec::new(),
        }
    }

    fn packet(&self, payload: &[u8]) -> Vec<u8> {
        let hlen = 20 + self.options.len();
        let mut p = vec![0u8; hlen];
        p[0] = 0x40 | (hlen / 4) as u8;
        p[2..4].copy_from_slice(&((hlen + payload.len()) as u16).to_be_bytes());
        p[4..6].copy_from_slice(&self.ident.to_be_bytes());
        p[6..8].copy_from_slice(&self.flags_frag.to_be_bytes());
        p[8] = self.ttl;
        p[9] = self.protocol;
        p[12..16].copy_from_slice(&self.src.octets());
        p[16..20].copy_from_slice(&self.dst.octets());
        p[20..].copy_from_slice(&self.options);
        let sum = internet_checksum(&p);
        p[10..12].copy_from_slice(&sum.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }
}

/// The L4 checksum over the pseudo-header and `segment`.
fn l4_checksum(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, segment: &[u8]) -> u16 {
    let mut data = Vec::with_capacity(12 + segment.len());
    data.extend_from_slice(&src.octets());
    data.extend_from_slice(&dst.octets());
    data.extend_from_slice(&[0, protocol]);
    data.extend_from_slice(&(segment.len() as u16).to_be_bytes());
    data.extend_from_slice(segment);
    internet_checksum(&data)
}

fn tcp(ip: &Ip, sport: u16, dport: u16, flags: u8, seq: u32, ack: u32, data: &[u8]) -> Vec<u8> {
    let mut s = vec![0u8; 20];
    s[0..2].copy_from_slice(&sport.to_be_bytes());
    s[2..4].copy_from_slice(&dport.to_be_bytes());
    s[4..8].copy_from_slice(&seq.to_be_bytes());
    s[8..12].copy_from_slice(&ack.to_be_bytes());
    s[12] = 0x50;
    s[13] = flags;
    s[14..16].copy_from_slice(&64240u16.to_be_bytes());
    s.extend_from_slice(data);
    let sum = l4_checksum(ip.src, ip.dst, 6, &s);
    s[16..18].copy_from_slice(&sum.to_be_bytes());
    eth(0x0800, &ip.packet(&s))
}

fn udp(ip: &Ip, sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let mut s = vec![0u8; 8];
    s[0..2].copy_from_slice(&sport.to_be_bytes());
    s[2..4].copy_from_slice(&dport.to_be_bytes());
    s[4..6].copy_from_slice(&((8 + data.len()) as u16).to_be_bytes());
    s.extend_from_slice(data);
    let sum = l4_checksum(ip.src, ip.dst, 17, &s);
    s[6..8].copy_from_slice(&sum.to_be_bytes());
    eth(0x0800, &ip.packet(&s))
}

fn icmp_echo(ip: &Ip, id: u16, seq: u16) -> Vec<u8> {
    let mut s = vec![8u8, 0, 0, 0];
    s.extend_from_slice(&id.to_be_bytes());
    s.extend_from_slice(&seq.to_be_bytes());
    s.extend_from_slice(b"beamer ping 0123456789abcdef");
    let sum = internet_checksum(&s);
    s[2..4].copy_from_slice(&sum.to_be_bytes());
    eth(0x0800, &ip.packet(&s))
}

/// The first source port from `from` up whose bucket is (or, with
/// `equal` false, is not) `bucket`.
fn port_in_bucket(client: Ipv4Addr, bucket: u32, equal: bool, from: u16) -> u16 {
    (from..=u16::MAX)
        .find(|p| (bucket_of(client, *p, BUCKET_BITS) == bucket) == equal)
        .expect("16 buckets: some port hits each")
}

/// Every frame of the example, in file order.
pub fn fixtures() -> Vec<Fixture> {
    let moved = port_in_bucket(CLIENT, MOVED_BUCKET, true, 40_000);
    let unmoved = port_in_bucket(CLIENT, MOVED_BUCKET, false, 51_000);
    let miss = port_in_bucket(CLIENT2, 0, false, 33_000);
    let tcp_to = |dst, sport, dport, flags, data: &[u8]| {
        tcp(&Ip::new(CLIENT, dst, 6), sport, dport, flags, 1000, 0, data)
    };
    let mut options = Ip::new(CLIENT, VIP, 6);
    options.options = vec![0x01, 0x01, 0x01, 0x00]; // NOP NOP NOP EOL
    let mut fragment = Ip::new(CLIENT, VIP, 6);
    fragment.flags_frag = IP_MF;
    let mut ttl1_vip = Ip::new(CLIENT, VIP, 6);
    ttl1_vip.ttl = 1;
    let mut ttl1_routed = Ip::new(SERVER, CLIENT, 1);
    ttl1_routed.ttl = 1;
    let mut vlan = tcp_to(VIP, unmoved, 80, TCP_SYN, b"");
    vlan.splice(12..12, [0x81, 0x00, 0x00, 0x64]); // 802.1Q, VLAN 100
    let truncated = {
        let f = tcp_to(VIP, unmoved, 80, TCP_SYN, b"");
        f[..14 + 20 + 12].to_vec()
    };
    let arp = {
        let mut a = vec![0, 1, 8, 0, 6, 4, 0, 1];
        a.extend_from_slice(&CLIENT_MAC);
        a.extend_from_slice(&CLIENT.octets());
        a.extend_from_slice(&[0; 6]);
        a.extend_from_slice(&VIP.octets());
        eth(0x0806, &a)
    };

    vec![
        Fixture {
            what: "TCP SYN to the service port, bucket without a previous server",
            frame: tcp_to(VIP, unmoved, 80, TCP_SYN, b""),
            expect: Expect::Encap(2),
        },
        Fixture {
            what: "TCP data mid-connection, bucket 7 (moved: previous server in the option)",
            frame: tcp(
                &Ip::new(CLIENT, VIP, 6),
                moved,
                80,
                TCP_ACK | TCP_PSH,
                1001,
                5001,
                b"GET / HTTP/1.1\r\nHost: example\r\n\r\n",
            ),
            expect: Expect::Encap(2),
        },
        Fixture {
            what: "TCP to the per-server port 40001 (plain IP-in-IP, no option)",
            frame: tcp_to(VIP, unmoved, 40001, TCP_ACK, b""),
            expect: Expect::Encap(2),
        },
        Fixture {
            what: "UDP to the service port 443",
            frame: udp(&Ip::new(CLIENT, VIP, 17), unmoved, 443, b"quic-ish payload"),
            expect: Expect::Encap(2),
        },
        Fixture {
            what: "TCP FIN to the VIP with TTL 1 (encapsulated anyway, inner TTL kept)",
            frame: tcp(&ttl1_vip, unmoved, 80, TCP_FIN | TCP_ACK, 1002, 5002, b""),
            expect: Expect::Encap(2),
        },
        Fixture {
            what: "ICMP echo from a server to a client, routed (TTL - 1)",
            frame: icmp_echo(&Ip::new(SERVER, CLIENT, 1), 0x4242, 1),
            expect: Expect::Routed(1),
        },
        Fixture {
            what: "TCP to the VIP on port 8080 (no VIP entry): routed, but no route covers it",
            frame: tcp_to(VIP, unmoved, 8080, TCP_SYN, b""),
            expect: Expect::Drop(DropReason::NoRoute),
        },
        Fixture {
            what: "TCP from a server to a client (not a VIP), routed",
            frame: tcp(
                &Ip::new(SERVER, CLIENT, 6),
                80,
                unmoved,
                TCP_ACK,
                5001,
                1001,
                b"ok",
            ),
            expect: Expect::Routed(1),
        },
        Fixture {
            what: "TCP to the sparse VIP, bucket with no entry",
            frame: tcp(
                &Ip::new(CLIENT2, VIP_SPARSE, 6),
                miss,
                80,
                TCP_SYN,
                7,
                0,
                b"",
            ),
            expect: Expect::Drop(DropReason::BucketMiss),
        },
        Fixture {
            what: "VLAN-tagged TCP SYN to the VIP",
            frame: vlan,
            expect: Expect::Drop(DropReason::NonIpv4),
        },
        Fixture {
            what: "ARP request for the VIP",
            frame: arp,
            expect: Expect::Drop(DropReason::NonIpv4),
        },
        Fixture {
            what: "TCP SYN cut inside the TCP header",
            frame: truncated,
            expect: Expect::Drop(DropReason::Truncated),
        },
        Fixture {
            what: "TCP to the VIP with IPv4 options (NOPs)",
            frame: tcp(&options, unmoved, 80, TCP_SYN, 1000, 0, b""),
            expect: Expect::Drop(DropReason::IpOptions),
        },
        Fixture {
            what: "first fragment of a TCP packet to the VIP",
            frame: tcp(&fragment, unmoved, 80, TCP_ACK, 1000, 0, b"frag"),
            expect: Expect::Drop(DropReason::Fragment),
        },
        Fixture {
            what: "ICMP from a server with TTL 1, to be routed",
            frame: icmp_echo(&ttl1_routed, 0x4242, 2),
            expect: Expect::Drop(DropReason::Ttl),
        },
        Fixture {
            what: "ICMP to an address with no route",
            frame: icmp_echo(
                &Ip::new(CLIENT, Ipv4Addr::new(203, 0, 113, 9), 1),
                0x4242,
                3,
            ),
            expect: Expect::Drop(DropReason::NoRoute),
        },
    ]
}

/// The timestamp of frame `i`: one millisecond apart.
pub fn timestamp(i: usize) -> Duration {
    Duration::new(1_700_000_000, 0) + Duration::from_millis(i as u64)
}

/// `input.pcap`: classic pcap, little-endian, microseconds.
pub fn input_pcap() -> Vec<u8> {
    let header = PcapHeader {
        ts_resolution: TsResolution::MicroSecond,
        endianness: Endianness::Little,
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::with_header(Vec::new(), header).expect("in memory");
    for (i, f) in fixtures().iter().enumerate() {
        w.write_packet(&PcapPacket::new(
            timestamp(i),
            f.frame.len() as u32,
            &f.frame,
        ))
        .expect("in memory");
    }
    w.into_writer()
}
