//! Test support: a small frame builder, hex helpers, and the fixture
//! switch the golden tests run against.
//!
//! The builder writes bytes by hand (it does not use the switch's code), so
//! the tests compare the pipeline against an independent statement of the
//! packet formats.

#![allow(dead_code)]

use beamer_pipeline::PipelineParams;
use beamer_pipeline::entries::{
    BucketAction, BucketKey, Entry, RouteAction, RouteKey, SwitchConfig, Update, VipAction, VipKey,
};
use beamer_pipeline::wire::{MacAddr, internet_checksum};
use beamer_softswitch::Switch;
use std::net::Ipv4Addr;

/// Parses hex, ignoring spaces, newlines and `|` separators.
pub fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| b.is_ascii_hexdigit()).collect();
    assert!(digits.len() % 2 == 0, "odd number of hex digits in {s:?}");
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

pub fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

pub fn mac(s: &str) -> MacAddr {
    s.parse().unwrap()
}

/// The mux's MAC as clients address it, and a client-side MAC.
pub const MUX_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xff];
pub const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xaa, 0x01];

/// Layer 4 of a test packet.
#[derive(Clone, Debug)]
pub enum L4 {
    Tcp {
        sport: u16,
        dport: u16,
        flags: u8,
        seq: u32,
        ack: u32,
    },
    Udp {
        sport: u16,
        dport: u16,
    },
    /// ICMP echo request, id 1, seq 1, checksum filled.
    IcmpEcho,
    /// Any other protocol: the bytes are the payload.
    Other(u8),
}

/// A packet to build: Ethernet (optionally VLAN-tagged), IPv4, L4,
/// payload. Defaults mirror a plain client packet: IPv4 id 0x1234, DF,
/// TTL 64, a valid header checksum; TCP seq 0x01020304, window 0xffff.
#[derive(Clone, Debug)]
pub struct Pkt {
    pub eth_dst: [u8; 6],
    pub eth_src: [u8; 6],
    pub ethertype: u16,
    pub vlan: Option<u16>,
    pub version: u8,
    pub ihl: Option<u8>,
    pub tos: u8,
    pub total_len: Option<u16>,
    pub ident: u16,
    pub flags_frag: u16,
    pub ttl: u8,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub options: Vec<u8>,
    pub bad_checksum: bool,
    pub l4: L4,
    pub payload: Vec<u8>,
    pub truncate: Option<usize>,
    pub pad_to: Option<usize>,
}

impl Pkt {
    fn new(src: &str, dst: &str, l4: L4) -> Pkt {
        Pkt {
            eth_dst: MUX_MAC,
            eth_src: CLIENT_MAC,
            ethertype: 0x0800,
            vlan: None,
            version: 4,
            ihl: None,
            tos: 0,
            total_len: None,
            ident: 0x1234,
            flags_frag: 0x4000,
            ttl: 64,
            src: ip(src),
            dst: ip(dst),
            options: Vec::new(),
            bad_checksum: false,
            l4,
            payload: Vec::new(),
            truncate: None,
            pad_to: None,
        }
    }

    pub fn tcp(src: (&str, u16), dst: (&str, u16), flags: u8) -> Pkt {
        Pkt::new(
            src.0,
            dst.0,
            L4::Tcp {
                sport: src.1,
                dport: dst.1,
                flags,
                seq: 0x0102_0304,
                ack: 0,
            },
        )
    }

    pub fn udp(src: (&str, u16), dst: (&str, u16)) -> Pkt {
        Pkt::new(
            src.0,
            dst.0,
            L4::Udp {
                sport: src.1,
                dport: dst.1,
            },
        )
    }

    pub fn icmp(src: &str, dst: &str) -> Pkt {
        Pkt::new(src, dst, L4::IcmpEcho)
    }

    pub fn proto(src: &str, dst: &str, protocol: u8) -> Pkt {
        Pkt::new(src, dst, L4::Other(protocol))
    }

    pub fn seq_ack(mut self, seq: u32, ack: u32) -> Self {
        if let L4::Tcp { seq: s, ack: a, .. } = &mut self.l4 {
            *s = seq;
            *a = ack;
        }
        self
    }
    pub fn payload(mut self, p: &[u8]) -> Self {
        self.payload = p.to_vec();
        self
    }
    pub fn ttl(mut self, ttl: u8) -> Self {
        self.ttl = ttl;
        self
    }
    pub fn version(mut self, v: u8) -> Self {
        self.version = v;
        self
    }
    pub fn ihl(mut self, ihl: u8) -> Self {
        self.ihl = Some(ihl);
        self
    }
    pub fn options(mut self, o: &[u8]) -> Self {
        self.options = o.to_vec();
        self
    }
    pub fn flags_frag(mut self, v: u16) -> Self {
        self.flags_frag = v;
        self
    }
    pub fn total_len(mut self, v: u16) -> Self {
        self.total_len = Some(v);
        self
    }
    pub fn ethertype(mut self, t: u16) -> Self {
        self.ethertype = t;
        self
    }
    pub fn vlan(mut self, vid: u16) -> Self {
        self.vlan = Some(vid);
        self
    }
    pub fn bad_checksum(mut self) -> Self {
        self.bad_checksum = true;
        self
    }
    /// Cuts the frame to `n` bytes.
    pub fn truncate(mut self, n: usize) -> Self {
        self.truncate = Some(n);
        self
    }
    /// Pads the frame with zeros to `n` bytes (Ethernet padding).
    pub fn pad_to(mut self, n: usize) -> Self {
        self.pad_to = Some(n);
        self
    }

    /// The L4 header and payload.
    fn l4_bytes(&self) -> (u8, Vec<u8>) {
        let mut b = Vec::new();
        let proto = match self.l4 {
            L4::Tcp {
                sport,
                dport,
                flags,
                seq,
                ack,
            } => {
                b.extend_from_slice(&sport.to_be_bytes());
                b.extend_from_slice(&dport.to_be_bytes());
                b.extend_from_slice(&seq.to_be_bytes());
                b.extend_from_slice(&ack.to_be_bytes());
                b.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
                b.extend_from_slice(&self.payload);
                6
            }
            L4::Udp { sport, dport } => {
                b.extend_from_slice(&sport.to_be_bytes());
                b.extend_from_slice(&dport.to_be_bytes());
                b.extend_from_slice(&(8 + self.payload.len() as u16).to_be_bytes());
                b.extend_from_slice(&[0, 0]);
                b.extend_from_slice(&self.payload);
                17
            }
            L4::IcmpEcho => {
                b.extend_from_slice(&[8, 0, 0, 0, 0, 1, 0, 1]);
                b.extend_from_slice(&self.payload);
                let c = internet_checksum(&b);
                b[2..4].copy_from_slice(&c.to_be_bytes());
                1
            }
            L4::Other(p) => {
                b.extend_from_slice(&self.payload);
                p
            }
        };
        (proto, b)
    }

    /// The IPv4 packet (header, options, L4, payload).
    pub fn ip_bytes(&self) -> Vec<u8> {
        let (proto, l4) = self.l4_bytes();
        let hlen = 20 + self.options.len();
        let ihl = self.ihl.unwrap_or((hlen / 4) as u8);
        let total = self.total_len.unwrap_or((hlen + l4.len()) as u16);
        let mut h = vec![(self.version << 4) | (ihl & 0x0f), self.tos];
        h.extend_from_slice(&total.to_be_bytes());
        h.extend_from_slice(&self.ident.to_be_bytes());
        h.extend_from_slice(&self.flags_frag.to_be_bytes());
        h.extend_from_slice(&[self.ttl, proto, 0, 0]);
        h.extend_from_slice(&self.src.octets());
        h.extend_from_slice(&self.dst.octets());
        h.extend_from_slice(&self.options);
        let mut c = internet_checksum(&h);
        if self.bad_checksum {
            c ^= 0x5555;
        }
        h[10..12].copy_from_slice(&c.to_be_bytes());
        h.extend_from_slice(&l4);
        h
    }

    /// The whole frame.
    pub fn build(&self) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&self.eth_dst);
        f.extend_from_slice(&self.eth_src);
        if let Some(vid) = self.vlan {
            f.extend_from_slice(&0x8100u16.to_be_bytes());
            f.extend_from_slice(&vid.to_be_bytes());
        }
        f.extend_from_slice(&self.ethertype.to_be_bytes());
        f.extend_from_slice(&self.ip_bytes());
        if let Some(n) = self.pad_to {
            f.resize(f.len().max(n), 0);
        }
        if let Some(n) = self.truncate {
            f.truncate(n);
        }
        f
    }
}

// ---- the fixture tables ---------------------------------------------------

/// The clients of the fixtures and the buckets zlib's CRC-32 puts them in
/// (computed outside this code base: zlib.crc32(addr ++ port) & 0xffff).
pub const CLIENT_A: (&str, u16) = ("198.51.100.7", 40000);
pub const BUCKET_A: u32 = 27659;
pub const CLIENT_B: (&str, u16) = ("203.0.113.9", 51000);
pub const BUCKET_B: u32 = 19125;
/// A client whose bucket (11062) has no entry.
pub const CLIENT_MISS: (&str, u16) = ("198.51.100.8", 40000);
pub const BUCKET_MISS: u32 = 11062;

pub const VIP: &str = "192.0.2.10";
pub const TUNNEL_SRC: &str = "10.0.0.1";
pub const GENERATION: u32 = 7;
pub const CHANGE_TIME: u32 = 1_700_000_000;

/// The fixture's table entries:
///
/// ```text
/// config   tunnel_src 10.0.0.1, generation 7
/// vip      192.0.2.10 tcp/80     -> to_buckets(1)
///          192.0.2.10 udp/443    -> to_buckets(1)
///          192.0.2.10 tcp/40001  -> to_server(10.1.0.5)
///          192.0.2.11 tcp/80     -> to_buckets(2)      (no bucket entries)
///          192.0.2.12 tcp/80     -> to_server(10.9.0.1) (no route to it)
/// buckets  (1, 27659) -> forward(10.1.0.2, 0.0.0.0, 0)
///          (1, 19125) -> forward(10.1.0.3, 10.1.0.2, 1700000000)
/// routes   10.1.0.0/24      -> port 3, 02:00:00:00:01:03, src 02:00:00:00:00:fe
///          203.0.113.0/24   -> port 1, 02:00:00:00:01:01, src 02:00:00:00:00:fd
///          198.51.100.0/24  -> port 1, 02:00:00:00:01:01, src 02:00:00:00:00:fd
/// ```
pub fn fixture_updates() -> Vec<Update> {
    let vip = |addr: &str, protocol, port, action| {
        Update::Insert(Entry::Vip(
            VipKey {
                dst: ip(addr),
                protocol,
                port,
            },
            action,
        ))
    };
    let bucket = |b, dip: &str, prev: &str, t| {
        Update::Insert(Entry::Bucket(
            BucketKey {
                vip_id: 1,
                bucket: b,
            },
            BucketAction {
                dip: ip(dip),
                prev_dip: ip(prev),
                change_time: t,
            },
        ))
    };
    let route = |p: &str, port, dst: &str, src: &str| {
        Update::Insert(Entry::Route(
            p.parse::<RouteKey>().unwrap(),
            RouteAction {
                port,
                dst_mac: mac(dst),
                src_mac: mac(src),
            },
        ))
    };
    vec![
        Update::SetConfig(SwitchConfig {
            tunnel_src: ip(TUNNEL_SRC),
            generation: GENERATION,
        }),
        vip(VIP, 6, 80, VipAction::ToBuckets { vip_id: 1 }),
        vip(VIP, 17, 443, VipAction::ToBuckets { vip_id: 1 }),
        vip(
            VIP,
            6,
            40001,
            VipAction::ToServer {
                dip: ip("10.1.0.5"),
            },
        ),
        vip("192.0.2.11", 6, 80, VipAction::ToBuckets { vip_id: 2 }),
        vip(
            "192.0.2.12",
            6,
            80,
            VipAction::ToServer {
                dip: ip("10.9.0.1"),
            },
        ),
        bucket(BUCKET_A, "10.1.0.2", "0.0.0.0", 0),
        bucket(BUCKET_B, "10.1.0.3", "10.1.0.2", CHANGE_TIME),
        route("10.1.0.0/24", 3, "02:00:00:00:01:03", "02:00:00:00:00:fe"),
        route(
            "203.0.113.0/24",
            1,
            "02:00:00:00:01:01",
            "02:00:00:00:00:fd",
        ),
        route(
            "198.51.100.0/24",
            1,
            "02:00:00:00:01:01",
            "02:00:00:00:00:fd",
        ),
    ]
}

/// A switch with the default sizes and the fixture's entries.
pub fn fixture_switch() -> Switch {
    let s = Switch::new(PipelineParams::default()).unwrap();
    s.apply_all(&fixture_updates()).unwrap();
    s
}

/// The expected frame of an encapsulated packet, built the plain way: the
/// next hop's Ethernet header, an outer IPv4 header (IHL 9 with the Beamer
/// option, or IHL 5), then every byte after the input's Ethernet header.
pub fn expect_encap(
    input: &[u8],
    next_hop: &str,
    src_mac: &str,
    dip: &str,
    option: Option<(&str, u32)>,
) -> Vec<u8> {
    let inner = &input[14..];
    let inner_total = u16::from_be_bytes([inner[2], inner[3]]);
    let olen: u16 = if option.is_some() { 36 } else { 20 };
    let mut h = vec![if option.is_some() { 0x49 } else { 0x45 }, 0];
    h.extend_from_slice(&inner_total.wrapping_add(olen).to_be_bytes());
    h.extend_from_slice(&[0, 0, 0, 0, 64, 4, 0, 0]);
    h.extend_from_slice(&ip(TUNNEL_SRC).octets());
    h.extend_from_slice(&ip(dip).octets());
    if let Some((prev, t)) = option {
        h.extend_from_slice(&[0x61, 16, 0, 0]);
        h.extend_from_slice(&ip(prev).octets());
        h.extend_from_slice(&t.to_be_bytes());
        h.extend_from_slice(&GENERATION.to_be_bytes());
    }
    let c = internet_checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    let mut f = Vec::new();
    f.extend_from_slice(&mac(next_hop).0);
    f.extend_from_slice(&mac(src_mac).0);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&h);
    f.extend_from_slice(inner);
    f
}

/// The expected frame of a routed packet: new MACs, TTL - 1, the header
/// checksum recomputed from scratch.
pub fn expect_routed(input: &[u8], next_hop: &str, src_mac: &str) -> Vec<u8> {
    let mut f = input.to_vec();
    f[0..6].copy_from_slice(&mac(next_hop).0);
    f[6..12].copy_from_slice(&mac(src_mac).0);
    f[22] -= 1;
    f[24] = 0;
    f[25] = 0;
    let c = internet_checksum(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f
}

/// Lays out a frame as hex, 16 bytes a line, for failure messages.
pub fn dump(f: &[u8]) -> String {
    f.chunks(16)
        .map(|c| {
            c.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}
