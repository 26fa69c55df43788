//! Golden tests: each fixture is a description, an input frame (built with
//! the small builder of `common`), and the expected output frame or drop
//! reason. Expected frames are literal hex computed outside this code base
//! (Python's zlib and struct), or built by the plain `expect_*` helpers of
//! `common`; every output checksum is also verified with
//! `internet_checksum`.
//!
//! The fixture tables are listed in `common::fixture_updates`:
//!
//! ```text
//!   VIP 192.0.2.10  tcp/80, udp/443 -> buckets of vip_id 1;  tcp/40001 -> 10.1.0.5
//!   client A 198.51.100.7:40000 -> bucket 27659 -> 10.1.0.2 (no previous DIP)
//!   client B 203.0.113.9:51000  -> bucket 19125 -> 10.1.0.3, previous 10.1.0.2
//!   10.1.0.0/24 -> port 3;  203.0.113.0/24 and 198.51.100.0/24 -> port 1
//!   tunnel source 10.0.0.1, generation 7
//! ```

mod common;

use beamer_pipeline::DropReason::{self, *};
use beamer_pipeline::hash::bucket_of;
use beamer_pipeline::wire::internet_checksum;
use beamer_softswitch::{Batch, BatchSize, Frame, HEADROOM, Switch, Verdict};
use common::*;

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH_ACK: u8 = 0x18;
const SYN_ACK: u8 = 0x12;

enum Expect {
    Forward { port: u16, frame: Vec<u8> },
    Drop(DropReason),
}

struct Fixture {
    what: &'static str,
    input: Vec<u8>,
    expect: Expect,
}

fn fwd(port: u16, frame: Vec<u8>) -> Expect {
    Expect::Forward { port, frame }
}

fn lines(parts: &[&str]) -> Vec<u8> {
    hex(&parts.concat())
}

fn fixtures() -> Vec<Fixture> {
    let syn_a = Pkt::tcp(CLIENT_A, (VIP, 80), SYN);
    let padded = syn_a.clone().pad_to(60);
    let mut f = vec![
        // ---- VIP traffic ---------------------------------------------------
        Fixture {
            what: "TCP SYN from A to service port 80: bucket 27659 -> 10.1.0.2, IHL 9, option with no previous DIP",
            input: syn_a.build(),
            expect: fwd(
                3,
                lines(&[
                    "020000000103 0200000000fe 0800",  // Ethernet: next hop, mux, IPv4
                    "49 00 004c 0000 0000 40 04 0194", // outer: IHL 9, len 40+36, TTL 64, IPIP, checksum
                    "0a000001 0a010002",               // 10.0.0.1 -> 10.1.0.2
                    "61 10 0000 00000000 00000000 00000007", // option: prev 0.0.0.0, time 0, generation 7
                    "45000028 12344000 40063c57 c6336407 c000020a", // inner IPv4, untouched
                    "9c40 0050 01020304 00000000 5002ffff 00000000", // inner TCP SYN
                ]),
            ),
        },
        Fixture {
            what: "mid-connection ACK+PSH from B with payload: bucket 19125 -> 10.1.0.3, previous DIP 10.1.0.2 at 1700000000",
            input: Pkt::tcp(CLIENT_B, (VIP, 80), PSH_ACK)
                .seq_ack(0x1122_3344, 0x5566_7788)
                .payload(b"hello\n")
                .build(),
            expect: fwd(
                3,
                lines(&[
                    "020000000103 0200000000fe 0800",
                    "49 00 0052 0000 0000 40 04 a135 0a000001 0a010003",
                    "61 10 0000 0a010002 6553f100 00000007", // prev 10.1.0.2, time 1700000000, gen 7
                    "4500002e 12344000 40062a82 cb007109 c000020a",
                    "c738 0050 11223344 55667788 5018ffff 00000000 68656c6c6f0a",
                ]),
            ),
        },
        Fixture {
            what: "TCP to per-server port 40001: plain IP-in-IP to 10.1.0.5, IHL 5, no option",
            input: Pkt::tcp(CLIENT_A, (VIP, 40001), ACK)
                .seq_ack(0x0102_0304, 0x0a0b_0c0d)
                .build(),
            expect: fwd(
                3,
                lines(&[
                    "020000000103 0200000000fe 0800",
                    "45 00 003c 0000 0000 40 04 66b8 0a000001 0a010005", // len 40+20
                    "45000028 12344000 40063c57 c6336407 c000020a",
                    "9c40 9c41 01020304 0a0b0c0d 5010ffff 00000000",
                ]),
            ),
        },
        Fixture {
            what: "UDP from A to service port 443: same bucket as TCP from A (the hash covers address and port only)",
            input: Pkt::udp(CLIENT_A, (VIP, 443)).payload(b"quic").build(),
            expect: fwd(
                3,
                lines(&[
                    "020000000103 0200000000fe 0800",
                    "49 00 0044 0000 0000 40 04 019c 0a000001 0a010002",
                    "61 10 0000 00000000 00000000 00000007",
                    "45000020 12344000 40113c54 c6336407 c000020a",
                    "9c40 01bb 000c 0000 71756963",
                ]),
            ),
        },
        Fixture {
            what: "SYN padded to 60 bytes: the Ethernet padding stays after the inner packet; total length from the field",
            input: padded.build(),
            expect: fwd(
                3,
                lines(&[
                    "020000000103 0200000000fe 0800",
                    "49 00 004c 0000 0000 40 04 0194 0a000001 0a010002",
                    "61 10 0000 00000000 00000000 00000007",
                    "45000028 12344000 40063c57 c6336407 c000020a",
                    "9c40 0050 01020304 00000000 5002ffff 00000000",
                    "000000000000", // padding, kept
                ]),
            ),
        },
        // ---- routed traffic ------------------------------------------------
        Fixture {
            what: "ICMP echo to server 10.1.0.2 skips the VIP table: routed, TTL 64 -> 63, checksum f46b -> f56b",
            input: Pkt::icmp(CLIENT_A.0, "10.1.0.2").payload(b"ping").build(),
            expect: fwd(
                3,
                lines(&[
                    "020000000103 0200000000fe 0800",
                    "45000020 12344000 3f01f56b c6336407 0a010002",
                    "0800192d 00010001 70696e67",
                ]),
            ),
        },
        Fixture {
            what: "TCP SYN-ACK from a server to client B (no VIP): routed out of port 1",
            input: Pkt::tcp(("10.1.0.2", 22), CLIENT_B, SYN_ACK).build(),
            expect: fwd(
                1,
                lines(&[
                    "020000000101 0200000000fd 0800",
                    "45000028 12344000 3f06e38f 0a010002 cb007109",
                    "0016c738 01020304 00000000 5012ffff 00000000",
                ]),
            ),
        },
    ];

    // Fixtures whose expected frames come from the plain helpers.
    let a_to = |port| Pkt::tcp(CLIENT_A, (VIP, port), SYN);
    let more = vec![
        Fixture {
            what: "VIP hit with TTL 1 is still encapsulated; the inner TTL is not touched",
            input: a_to(80).ttl(1).build(),
            expect: fwd(
                3,
                expect_encap(
                    &a_to(80).ttl(1).build(),
                    "02:00:00:00:01:03",
                    "02:00:00:00:00:fe",
                    "10.1.0.2",
                    Some(("0.0.0.0", 0)),
                ),
            ),
        },
        Fixture {
            what: "VIP hit with TTL 0 is still encapsulated",
            input: a_to(80).ttl(0).build(),
            expect: fwd(
                3,
                expect_encap(
                    &a_to(80).ttl(0).build(),
                    "02:00:00:00:01:03",
                    "02:00:00:00:00:fe",
                    "10.1.0.2",
                    Some(("0.0.0.0", 0)),
                ),
            ),
        },
        Fixture {
            what: "the reserved flag bit is not a fragment: forwarded, inner flags kept",
            input: a_to(80).flags_frag(0x8000).build(),
            expect: fwd(
                3,
                expect_encap(
                    &a_to(80).flags_frag(0x8000).build(),
                    "02:00:00:00:01:03",
                    "02:00:00:00:00:fe",
                    "10.1.0.2",
                    Some(("0.0.0.0", 0)),
                ),
            ),
        },
        Fixture {
            what: "outer total length wraps modulo 2^16 when the inner field is near 65535",
            input: a_to(80).total_len(0xfff0).build(),
            expect: fwd(
                3,
                expect_encap(
                    &a_to(80).total_len(0xfff0).build(),
                    "02:00:00:00:01:03",
                    "02:00:00:00:00:fe",
                    "10.1.0.2",
                    Some(("0.0.0.0", 0)),
                ),
            ),
        },
        Fixture {
            what: "a received IPv4 checksum is not validated, and a routed packet leaves with a correct one",
            input: Pkt::icmp(CLIENT_A.0, "10.1.0.9").bad_checksum().build(),
            expect: fwd(
                3,
                expect_routed(
                    &Pkt::icmp(CLIENT_A.0, "10.1.0.9").bad_checksum().build(),
                    "02:00:00:00:01:03",
                    "02:00:00:00:00:fe",
                ),
            ),
        },
        Fixture {
            what: "routed TTL 2 leaves with TTL 1",
            input: Pkt::tcp(("10.1.0.2", 22), CLIENT_B, ACK).ttl(2).build(),
            expect: fwd(
                1,
                expect_routed(
                    &Pkt::tcp(("10.1.0.2", 22), CLIENT_B, ACK).ttl(2).build(),
                    "02:00:00:00:01:01",
                    "02:00:00:00:00:fd",
                ),
            ),
        },
        Fixture {
            what: "a VIP address on a port that is not in the VIP table is routed like any packet",
            input: Pkt::tcp(CLIENT_A, ("10.1.0.7", 80), SYN).build(),
            expect: fwd(
                3,
                expect_routed(
                    &Pkt::tcp(CLIENT_A, ("10.1.0.7", 80), SYN).build(),
                    "02:00:00:00:01:03",
                    "02:00:00:00:00:fe",
                ),
            ),
        },
        Fixture {
            what: "egress may equal ingress: a packet to the tunnel source's network is routed, no special case",
            input: Pkt::udp(CLIENT_B, ("198.51.100.1", 53)).build(),
            expect: fwd(
                1,
                expect_routed(
                    &Pkt::udp(CLIENT_B, ("198.51.100.1", 53)).build(),
                    "02:00:00:00:01:01",
                    "02:00:00:00:00:fd",
                ),
            ),
        },
        // ---- drops, one per reason -----------------------------------------
        Fixture {
            what: "ARP (EtherType 0x0806): non_ipv4",
            input: Pkt::icmp("10.1.0.1", "10.1.0.2").ethertype(0x0806).build(),
            expect: Expect::Drop(NonIpv4),
        },
        Fixture {
            what: "VLAN-tagged IPv4 (0x8100): non_ipv4",
            input: a_to(80).vlan(100).build(),
            expect: Expect::Drop(NonIpv4),
        },
        Fixture {
            what: "IPv6 EtherType: non_ipv4",
            input: a_to(80).ethertype(0x86dd).build(),
            expect: Expect::Drop(NonIpv4),
        },
        Fixture {
            what: "EtherType IPv4 but version 6: non_ipv4",
            input: a_to(80).version(6).build(),
            expect: Expect::Drop(NonIpv4),
        },
        Fixture {
            what: "13-byte frame: truncated Ethernet",
            input: a_to(80).truncate(13).build(),
            expect: Expect::Drop(Truncated),
        },
        Fixture {
            what: "14 + 19 bytes: truncated IPv4",
            input: a_to(80).truncate(33).build(),
            expect: Expect::Drop(Truncated),
        },
        Fixture {
            what: "14 + 20 + 19 bytes: truncated TCP",
            input: a_to(80).truncate(53).build(),
            expect: Expect::Drop(Truncated),
        },
        Fixture {
            what: "14 + 20 + 7 bytes: truncated UDP",
            input: Pkt::udp(CLIENT_A, (VIP, 443)).truncate(41).build(),
            expect: Expect::Drop(Truncated),
        },
        Fixture {
            what: "IHL 4 (< 5): ip_options",
            input: a_to(80).ihl(4).build(),
            expect: Expect::Drop(IpOptions),
        },
        Fixture {
            what: "IHL 6 with a 4-byte option (NOPs): ip_options",
            input: a_to(80).options(&[1, 1, 1, 0]).build(),
            expect: Expect::Drop(IpOptions),
        },
        Fixture {
            what: "more-fragments flag: fragment",
            input: a_to(80).flags_frag(0x2000).build(),
            expect: Expect::Drop(Fragment),
        },
        Fixture {
            what: "non-zero fragment offset (last fragment): fragment",
            input: a_to(80).flags_frag(0x0010).build(),
            expect: Expect::Drop(Fragment),
        },
        Fixture {
            what: "service port, bucket 11062 has no entry: bucket_miss",
            input: Pkt::tcp(CLIENT_MISS, (VIP, 80), SYN).build(),
            expect: Expect::Drop(BucketMiss),
        },
        Fixture {
            what: "service port of a vip_id with no bucket entries at all: bucket_miss",
            input: Pkt::tcp(CLIENT_A, ("192.0.2.11", 80), SYN).build(),
            expect: Expect::Drop(BucketMiss),
        },
        Fixture {
            what: "routed with TTL 1: ttl",
            input: Pkt::icmp(CLIENT_A.0, "10.1.0.2").ttl(1).build(),
            expect: Expect::Drop(Ttl),
        },
        Fixture {
            what: "routed with TTL 0: ttl",
            input: Pkt::tcp(CLIENT_A, ("10.1.0.2", 22), SYN).ttl(0).build(),
            expect: Expect::Drop(Ttl),
        },
        Fixture {
            what: "routed to 8.8.8.8, no default route: no_route",
            input: Pkt::udp(CLIENT_A, ("8.8.8.8", 53)).build(),
            expect: Expect::Drop(NoRoute),
        },
        Fixture {
            what: "per-server port whose server has no route: no_route",
            input: Pkt::tcp(CLIENT_A, ("192.0.2.12", 80), SYN).build(),
            expect: Expect::Drop(NoRoute),
        },
        // ---- precedence ----------------------------------------------------
        Fixture {
            what: "precedence: truncated TCP towards a routed destination is truncated, not no_route",
            input: Pkt::tcp(CLIENT_A, ("8.8.8.8", 80), SYN)
                .truncate(40)
                .build(),
            expect: Expect::Drop(Truncated),
        },
        Fixture {
            what: "precedence: EtherType IPv4 with 10 bytes of version-6 header is truncated, not non_ipv4",
            input: a_to(80).version(6).truncate(24).build(),
            expect: Expect::Drop(Truncated),
        },
        Fixture {
            what: "precedence: a whole VLAN header but nothing else is non_ipv4, not truncated",
            input: a_to(80).vlan(7).truncate(18).build(),
            expect: Expect::Drop(NonIpv4),
        },
        Fixture {
            what: "precedence: version 6 with IHL 3 is non_ipv4, not ip_options",
            input: a_to(80).version(6).ihl(3).build(),
            expect: Expect::Drop(NonIpv4),
        },
        Fixture {
            what: "precedence: IHL 4 and MF is ip_options, not fragment",
            input: a_to(80).ihl(4).flags_frag(0x2000).build(),
            expect: Expect::Drop(IpOptions),
        },
        Fixture {
            what: "precedence: options with the frame cut inside them is ip_options (options are never parsed)",
            input: a_to(80).options(&[1, 1, 1, 0]).truncate(36).build(),
            expect: Expect::Drop(IpOptions),
        },
        Fixture {
            what: "precedence: a fragment is never checked for L4 truncation (4 bytes of TCP)",
            input: a_to(80).flags_frag(0x2000).truncate(38).build(),
            expect: Expect::Drop(Fragment),
        },
        Fixture {
            what: "precedence: bucket miss with TTL 1 is bucket_miss (TTL matters only when routed)",
            input: Pkt::tcp(CLIENT_MISS, (VIP, 80), SYN).ttl(1).build(),
            expect: Expect::Drop(BucketMiss),
        },
        Fixture {
            what: "precedence: routed with TTL 1 and no route is ttl, not no_route",
            input: Pkt::udp(CLIENT_A, ("8.8.8.8", 53)).ttl(1).build(),
            expect: Expect::Drop(Ttl),
        },
        Fixture {
            what: "precedence: UDP with truncated header to the VIP is truncated, not a VIP hit",
            input: Pkt::udp(CLIENT_A, (VIP, 443)).truncate(38).build(),
            expect: Expect::Drop(Truncated),
        },
    ];
    f.extend(more);
    f
}

/// Checks the IPv4 header checksums of an output frame: the outer header
/// of an IP-in-IP packet (IHL from the header), or the only header of a
/// routed one.
fn assert_checksums_valid(what: &str, frame: &[u8]) {
    let ihl = usize::from(frame[14] & 0x0f) * 4;
    assert_eq!(
        internet_checksum(&frame[14..14 + ihl]),
        0,
        "{what}: bad IPv4 header checksum\n{}",
        dump(frame)
    );
}

fn check(fx: &Fixture, verdict: Verdict, out: &[u8]) {
    match &fx.expect {
        Expect::Forward { port, frame } => {
            assert_eq!(verdict, Verdict::Forward { port: *port }, "{}", fx.what);
            assert_eq!(
                out,
                &frame[..],
                "{}\n got:\n{}\n want:\n{}",
                fx.what,
                dump(out),
                dump(frame)
            );
            assert_checksums_valid(fx.what, out);
        }
        Expect::Drop(reason) => {
            assert_eq!(verdict, Verdict::Drop(*reason), "{}", fx.what);
            assert_eq!(
                out,
                &fx.input[..],
                "{}: a dropped frame is left as it was",
                fx.what
            );
        }
    }
}

#[test]
fn the_fixture_clients_hash_to_the_buckets_zlib_gives() {
    assert_eq!(bucket_of(ip(CLIENT_A.0), CLIENT_A.1, 16), BUCKET_A);
    assert_eq!(bucket_of(ip(CLIENT_B.0), CLIENT_B.1, 16), BUCKET_B);
    assert_eq!(bucket_of(ip(CLIENT_MISS.0), CLIENT_MISS.1, 16), BUCKET_MISS);
}

#[test]
fn each_fixture_alone_through_a_frame_in_caller_memory() {
    let switch = fixture_switch();
    let mut worker = switch.worker();
    for fx in fixtures() {
        let mut buf = vec![0u8; HEADROOM + fx.input.len()];
        buf[HEADROOM..].copy_from_slice(&fx.input);
        let mut frame = Frame::new(&mut buf, HEADROOM, fx.input.len()).unwrap();
        let verdict = worker.begin().process(&mut frame, 9);
        let out = frame.bytes().to_vec();
        check(&fx, verdict, &out);
    }
}

#[test]
fn all_fixtures_in_batches_of_every_size() {
    let all = fixtures();
    for size in [1, 7, 32, 256] {
        let switch = fixture_switch();
        let mut worker = switch.worker();
        let mut batch = Batch::new(BatchSize::new(size).unwrap(), 1600);
        for chunk in all.chunks(size) {
            batch.clear();
            for fx in chunk {
                batch.push(&fx.input, 9).unwrap();
            }
            worker.process_batch(&mut batch);
            for (fx, p) in chunk.iter().zip(batch.iter()) {
                check(fx, p.verdict.unwrap(), p.frame);
                assert_eq!(p.ingress_port, 9);
                assert_eq!(p.received_len, fx.input.len());
            }
        }
    }
}

#[test]
fn drop_counter_counts_packets_and_received_bytes_per_reason() {
    let switch = fixture_switch();
    let mut worker = switch.worker();
    let all = fixtures();
    let mut batch = Batch::new(BatchSize::MAX, 1600);
    for fx in &all {
        batch.push(&fx.input, 0).unwrap();
    }
    worker.process_batch(&mut batch);
    let drops = switch.drop_counters();
    for reason in DropReason::ALL {
        let (n, bytes) = all
            .iter()
            .filter(|fx| matches!(fx.expect, Expect::Drop(r) if r == reason))
            .fold((0, 0), |(n, b), fx| (n + 1, b + fx.input.len() as u64));
        assert_eq!(drops[reason.index()].packets, n, "{reason}");
        assert_eq!(drops[reason.index()].bytes, bytes, "{reason}");
        assert_eq!(switch.drop_counter(reason), drops[reason.index()]);
    }
    let totals = switch.totals();
    let forwarded = all
        .iter()
        .filter(|fx| matches!(fx.expect, Expect::Forward { .. }))
        .count() as u64;
    assert_eq!(totals.received.packets, all.len() as u64);
    assert_eq!(totals.forwarded.packets, forwarded);
    let dropped: u64 = drops.iter().map(|c| c.packets).sum();
    assert_eq!(totals.received.packets, totals.forwarded.packets + dropped);
    let dropped_bytes: u64 = drops.iter().map(|c| c.bytes).sum();
    assert_eq!(
        totals.received.bytes,
        totals.forwarded.bytes + dropped_bytes
    );
}

fn only(switch: &Switch, frames: &[Vec<u8>]) {
    let mut worker = switch.worker();
    let mut batch = Batch::new(BatchSize::MAX, 1600);
    for f in frames {
        batch.push(f, 0).unwrap();
    }
    worker.process_batch(&mut batch);
}

#[test]
fn direct_counters_count_hits_misses_and_frame_bytes() {
    use beamer_pipeline::entries::{BucketKey, EntryKey, VipKey};
    use beamer_softswitch::{CounterData, TableKind};
    let switch = fixture_switch();
    let syn = Pkt::tcp(CLIENT_A, (VIP, 80), SYN).build(); // 54 bytes
    let padded = Pkt::tcp(CLIENT_A, (VIP, 80), SYN).pad_to(60).build();
    let udp = Pkt::udp(CLIENT_A, (VIP, 443)).payload(b"quic").build(); // 46 bytes
    let miss = Pkt::tcp(CLIENT_MISS, (VIP, 80), SYN).build();
    let routed = Pkt::tcp(CLIENT_A, ("10.1.0.7", 80), SYN).build(); // VIP miss
    let icmp = Pkt::icmp(CLIENT_A.0, "10.1.0.2").build(); // skips the VIP table
    let no_route = Pkt::tcp(CLIENT_A, ("192.0.2.12", 80), SYN).build();
    only(
        &switch,
        &[
            syn.clone(),
            padded.clone(),
            udp.clone(),
            miss.clone(),
            routed.clone(),
            icmp,
            no_route.clone(),
        ],
    );
    let c = |p, b| CounterData {
        packets: p,
        bytes: b,
    };
    let vip = |addr: &str, protocol, port| {
        EntryKey::Vip(VipKey {
            dst: ip(addr),
            protocol,
            port,
        })
    };
    let bucket = |b| {
        EntryKey::Bucket(BucketKey {
            vip_id: 1,
            bucket: b,
        })
    };
    let len = |f: &Vec<u8>| f.len() as u64;
    assert_eq!(
        switch.counter(&vip(VIP, 6, 80)).unwrap(),
        c(3, len(&syn) + len(&padded) + len(&miss)),
        "tcp/80: two hits, one bucket miss; bytes are frame lengths with padding"
    );
    assert_eq!(switch.counter(&vip(VIP, 17, 443)).unwrap(), c(1, len(&udp)));
    assert_eq!(
        switch.counter(&vip("192.0.2.12", 6, 80)).unwrap(),
        c(1, len(&no_route)),
        "a hit counts even when the packet is dropped later"
    );
    assert_eq!(switch.counter(&vip(VIP, 6, 40001)).unwrap(), c(0, 0));
    assert_eq!(
        switch.counter(&bucket(BUCKET_A)).unwrap(),
        c(3, len(&syn) + len(&padded) + len(&udp))
    );
    assert_eq!(switch.counter(&bucket(BUCKET_B)).unwrap(), c(0, 0));
    assert_eq!(
        switch.default_counter(TableKind::Vip).unwrap(),
        c(1, len(&routed)),
        "only TCP/UDP look up the VIP table, so ICMP is no miss"
    );
    assert_eq!(
        switch.default_counter(TableKind::Buckets).unwrap(),
        c(1, len(&miss))
    );
}
