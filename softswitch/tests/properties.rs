//! Property tests: arbitrary bytes and mutated valid packets.
//!
//! For every batch: nothing panics; every packet is forwarded or dropped
//! with exactly one reason; the batch path and the single-frame path give
//! the same bytes; both agree with a plain reference model written from
//! the pipeline spec (byte offsets, no views, zlib-checked CRC from the
//! pipeline crate, a linear LPM); and the counters add up.

mod common;

use beamer_pipeline::DropReason;
use beamer_pipeline::PipelineParams;
use beamer_pipeline::entries::{
    BucketAction, BucketKey, Entry, RouteAction, RouteKey, Update, VipAction,
};
use beamer_pipeline::hash::bucket_of;
use beamer_pipeline::wire::internet_checksum;
use beamer_softswitch::{Batch, BatchSize, Frame, HEADROOM, Switch, Verdict};
use common::*;
use proptest::prelude::*;
use std::collections::HashMap;
use std::net::Ipv4Addr;

const BUCKETS: u32 = 256;

/// The fixture's entries, all 256 buckets of vip_id 1, and a route for
/// half the address space (the other half has none).
fn updates() -> Vec<Update> {
    let mut u = fixture_updates();
    u.retain(|u| !matches!(u, Update::Insert(Entry::Bucket(..))));
    for b in 0..BUCKETS {
        let prev = if b % 3 == 0 {
            Ipv4Addr::new(10, 1, 0, 9)
        } else {
            Ipv4Addr::UNSPECIFIED
        };
        u.push(Update::Insert(Entry::Bucket(
            BucketKey {
                vip_id: 1,
                bucket: b,
            },
            BucketAction {
                dip: Ipv4Addr::new(10, 1, 0, (b % 4 + 1) as u8),
                prev_dip: prev,
                change_time: if b % 3 == 0 { 1_600_000_000 + b } else { 0 },
            },
        )));
    }
    u.push(Update::Insert(Entry::Route(
        "0.0.0.0/1".parse().unwrap(),
        RouteAction {
            port: 5,
            dst_mac: mac("02:00:00:00:05:05"),
            src_mac: mac("02:00:00:00:00:05"),
        },
    )));
    u
}

fn switch() -> Switch {
    let s = Switch::new(PipelineParams {
        buckets: BUCKETS,
        ..Default::default()
    })
    .unwrap();
    s.apply_all(&updates()).unwrap();
    s
}

/// The reference: tables as plain maps, the pipeline as straight-line code
/// over byte offsets.
struct Model {
    vip: HashMap<(u32, u8, u16), VipAction>,
    buckets: HashMap<(u16, u32), BucketAction>,
    routes: Vec<(RouteKey, RouteAction)>,
    tunnel_src: [u8; 4],
    generation: u32,
}

impl Model {
    fn new() -> Model {
        let mut m = Model {
            vip: HashMap::new(),
            buckets: HashMap::new(),
            routes: Vec::new(),
            tunnel_src: [0; 4],
            generation: 0,
        };
        for u in updates() {
            match u {
                Update::SetConfig(c) => {
                    m.tunnel_src = c.tunnel_src.octets();
                    m.generation = c.generation;
                }
                Update::Insert(Entry::Vip(k, a)) => {
                    m.vip.insert((u32::from(k.dst), k.protocol, k.port), a);
                }
                Update::Insert(Entry::Bucket(k, a)) => {
                    m.buckets.insert((k.vip_id, k.bucket), a);
                }
                Update::Insert(Entry::Route(k, a)) => m.routes.push((k, a)),
                other => panic!("{other:?}"),
            }
        }
        m
    }

    fn route(&self, addr: [u8; 4]) -> Option<RouteAction> {
        self.routes
            .iter()
            .filter(|(k, _)| k.contains(Ipv4Addr::from(addr)))
            .max_by_key(|(k, _)| k.len)
            .map(|(_, a)| *a)
    }

    fn run(&self, f: &[u8]) -> (Verdict, Vec<u8>) {
        use DropReason::*;
        let drop = |r| (Verdict::Drop(r), f.to_vec());
        if f.len() < 14 {
            return drop(Truncated);
        }
        if f[12..14] != [0x08, 0x00] {
            return drop(NonIpv4);
        }
        if f.len() < 34 {
            return drop(Truncated);
        }
        if f[14] >> 4 != 4 {
            return drop(NonIpv4);
        }
        if f[14] & 0x0f != 5 {
            return drop(IpOptions);
        }
        if u16::from_be_bytes([f[20], f[21]]) & 0x3fff != 0 {
            return drop(Fragment);
        }
        let (ttl, proto) = (f[22], f[23]);
        let src: [u8; 4] = f[26..30].try_into().unwrap();
        let dst: [u8; 4] = f[30..34].try_into().unwrap();
        let l4_len = match proto {
            6 => 20,
            17 => 8,
            _ => 0,
        };
        if f.len() < 34 + l4_len {
            return drop(Truncated);
        }
        let hit = (l4_len > 0)
            .then(|| {
                let dport = u16::from_be_bytes([f[36], f[37]]);
                self.vip.get(&(u32::from_be_bytes(dst), proto, dport))
            })
            .flatten();
        let (dip, option) = match hit {
            Some(VipAction::ToBuckets { vip_id }) => {
                let sport = u16::from_be_bytes([f[34], f[35]]);
                let b = bucket_of(Ipv4Addr::from(src), sport, 8);
                match self.buckets.get(&(*vip_id, b)) {
                    Some(a) => (a.dip, Some((a.prev_dip, a.change_time))),
                    None => return drop(BucketMiss),
                }
            }
            Some(VipAction::ToServer { dip }) => (*dip, None),
            None => {
                if ttl <= 1 {
                    return drop(Ttl);
                }
                let Some(r) = self.route(dst) else {
                    return drop(NoRoute);
                };
                let mut out = f.to_vec();
                out[0..6].copy_from_slice(&r.dst_mac.0);
                out[6..12].copy_from_slice(&r.src_mac.0);
                out[22] = ttl - 1;
                out[24..26].fill(0);
                let c = internet_checksum(&out[14..34]);
                out[24..26].copy_from_slice(&c.to_be_bytes());
                return (Verdict::Forward { port: r.port }, out);
            }
        };
        let Some(r) = self.route(dip.octets()) else {
            return drop(NoRoute);
        };
        let olen: u16 = if option.is_some() { 36 } else { 20 };
        let total = u16::from_be_bytes([f[16], f[17]]).wrapping_add(olen);
        let mut h = vec![if option.is_some() { 0x49 } else { 0x45 }, 0];
        h.extend_from_slice(&total.to_be_bytes());
        h.extend_from_slice(&[0, 0, 0, 0, 64, 4, 0, 0]);
        h.extend_from_slice(&self.tunnel_src);
        h.extend_from_slice(&dip.octets());
        if let Some((prev, t)) = option {
            h.extend_from_slice(&[0x61, 16, 0, 0]);
            h.extend_from_slice(&prev.octets());
            h.extend_from_slice(&t.to_be_bytes());
            h.extend_from_slice(&self.generation.to_be_bytes());
        }
        let c = internet_checksum(&h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        let mut out = Vec::new();
        out.extend_from_slice(&r.dst_mac.0);
        out.extend_from_slice(&r.src_mac.0);
        out.extend_from_slice(&[0x08, 0x00]);
        out.extend_from_slice(&h);
        out.extend_from_slice(&f[14..]);
        (Verdict::Forward { port: r.port }, out)
    }
}

/// Valid packets of every kind the pipeline tells apart.
fn base_packet() -> impl Strategy<Value = Vec<u8>> {
    let addr = any::<u32>().prop_map(|a| Ipv4Addr::from(a).to_string());
    (
        0usize..7,
        addr.clone(),
        any::<u16>(),
        addr,
        prop_oneof![Just(64u8), 0u8..4],
        0usize..24,
    )
        .prop_map(|(kind, src, sport, dst, ttl, pad)| {
            let s = (src.as_str(), sport);
            let p = match kind {
                0 => Pkt::tcp(s, (VIP, 80), 0x02),
                1 => Pkt::udp(s, (VIP, 443)),
                2 => Pkt::tcp(s, (VIP, 40001), 0x10),
                3 => Pkt::tcp(s, ("192.0.2.11", 80), 0x02),
                4 => Pkt::icmp(&src, &dst),
                5 => Pkt::tcp(s, (dst.as_str(), 443), 0x10),
                _ => Pkt::proto(&src, &dst, 47).payload(&[0; 8]),
            };
            let frame = p.ttl(ttl).build();
            let len = frame.len() + pad;
            let mut f = frame;
            f.resize(len, 0);
            f
        })
}

/// A valid packet with a few bytes changed (often in the headers) and
/// perhaps cut short.
fn mutated_packet() -> impl Strategy<Value = Vec<u8>> {
    (
        base_packet(),
        proptest::option::of(prop_oneof![0x40u8..0x50, any::<u8>()]),
        proptest::option::of(any::<u8>()),
        proptest::collection::vec((0usize..60, any::<u8>()), 0..4),
        proptest::option::of(0usize..80),
    )
        .prop_map(|(mut f, ver_ihl, flags, changes, cut)| {
            // Version/IHL and the flags byte decide four drop reasons: hit
            // them often.
            if let (Some(v), Some(b)) = (ver_ihl, f.get_mut(14)) {
                *b = v;
            }
            if let (Some(v), Some(b)) = (flags, f.get_mut(20)) {
                *b = v;
            }
            for (at, v) in changes {
                let at = at % f.len();
                f[at] = v;
            }
            if let Some(n) = cut {
                f.truncate(n);
            }
            f
        })
}

fn any_frame() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => proptest::collection::vec(any::<u8>(), 0..120),
        1 => base_packet(),
        3 => mutated_packet(),
    ]
}

fn check_batch(frames: &[Vec<u8>], batch_size: usize) -> Result<(), TestCaseError> {
    let model = Model::new();
    let batched = switch();
    let single = switch();
    let mut bw = batched.worker();
    let mut sw = single.worker();
    let mut batch = Batch::new(BatchSize::new(batch_size).unwrap(), 256);
    let mut expected_drops = [0u64; DropReason::COUNT];
    let mut expected_drop_bytes = [0u64; DropReason::COUNT];
    let mut forwarded = 0u64;
    for chunk in frames.chunks(batch_size) {
        batch.clear();
        for f in chunk {
            batch.push(f, 2).unwrap();
        }
        bw.process_batch(&mut batch);
        for (f, p) in chunk.iter().zip(batch.iter()) {
            let (want_v, want_out) = model.run(f);
            let verdict = p.verdict.expect("every packet gets a verdict");
            prop_assert_eq!(verdict, want_v, "frame {}", dump(f));
            prop_assert_eq!(p.frame, &want_out[..], "frame {}", dump(f));
            match verdict {
                Verdict::Drop(r) => {
                    expected_drops[r.index()] += 1;
                    expected_drop_bytes[r.index()] += f.len() as u64;
                }
                Verdict::Forward { .. } => forwarded += 1,
            }
            // The single-frame path gives the same result.
            let mut buf = vec![0u8; HEADROOM + f.len()];
            buf[HEADROOM..].copy_from_slice(f);
            let mut frame = Frame::new(&mut buf, HEADROOM, f.len()).unwrap();
            let v = sw.begin().process(&mut frame, 2);
            prop_assert_eq!(v, verdict);
            prop_assert_eq!(frame.bytes(), p.frame);
        }
    }
    for s in [&batched, &single] {
        let drops = s.drop_counters();
        for r in DropReason::ALL {
            prop_assert_eq!(drops[r.index()].packets, expected_drops[r.index()], "{}", r);
            prop_assert_eq!(
                drops[r.index()].bytes,
                expected_drop_bytes[r.index()],
                "{}",
                r
            );
        }
        let t = s.totals();
        let n = frames.len() as u64;
        let bytes: u64 = frames.iter().map(|f| f.len() as u64).sum();
        prop_assert_eq!(t.received.packets, n);
        prop_assert_eq!(t.received.bytes, bytes);
        prop_assert_eq!(t.forwarded.packets, forwarded);
        let dropped: u64 = drops.iter().map(|c| c.packets).sum();
        let dropped_bytes: u64 = drops.iter().map(|c| c.bytes).sum();
        prop_assert_eq!(n, forwarded + dropped);
        prop_assert_eq!(bytes, t.forwarded.bytes + dropped_bytes);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn every_packet_is_forwarded_or_dropped_once_and_matches_the_model(
        frames in proptest::collection::vec(any_frame(), 1..80),
        batch_size in prop_oneof![Just(1usize), Just(32), Just(256), 2usize..64],
    ) {
        check_batch(&frames, batch_size)?;
    }
}

#[test]
fn model_agrees_with_the_golden_routes() {
    // A sanity check of the model itself on a packet the golden tests pin.
    let m = Model::new();
    let syn = Pkt::tcp(CLIENT_A, (VIP, 40001), 0x10).build();
    let (v, out) = m.run(&syn);
    assert_eq!(v, Verdict::Forward { port: 3 });
    assert_eq!(&out[30..34], &[10, 1, 0, 5]);
}

/// The generator reaches every outcome, so the property above covers them.
#[test]
fn the_generator_reaches_every_verdict() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let model = Model::new();
    let mut runner = TestRunner::deterministic();
    let strategy = any_frame();
    let mut drops = [0u32; DropReason::COUNT];
    let (mut encapsulated, mut routed) = (0, 0);
    for _ in 0..20_000 {
        let f = strategy.new_tree(&mut runner).unwrap().current();
        match model.run(&f) {
            (Verdict::Drop(r), _) => drops[r.index()] += 1,
            (Verdict::Forward { .. }, out) if out.len() > f.len() => encapsulated += 1,
            (Verdict::Forward { .. }, _) => routed += 1,
        }
    }
    for r in DropReason::ALL {
        assert!(drops[r.index()] > 20, "{r}: {drops:?}");
    }
    assert!(
        encapsulated > 500 && routed > 500,
        "{encapsulated} {routed}"
    );
}
