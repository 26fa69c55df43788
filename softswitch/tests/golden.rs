//! Golden tests: each fixture is a description, an input frame, and the
//! expected output frame or drop reason. The rows live in
//! `beamer_fixtures::fixtures` (one table for every target: the live
//! targets run it in `tests/fixtures_every_target.rs`). Expected frames are
//! literal hex computed outside this code base (Python's zlib and struct),
//! or built by the plain `expect_*` helpers; every output checksum is also
//! verified with `internet_checksum`.
//!
//! The fixture tables are listed in `beamer_fixtures::fixture_updates`:
//!
//! ```text
//!   VIP 192.0.2.10  tcp/80, udp/443 -> buckets of vip_id 1;  tcp/40001 -> 10.1.0.5
//!   client A 198.51.100.7:40000 -> bucket 27659 -> 10.1.0.2 (no previous DIP)
//!   client B 203.0.113.9:51000  -> bucket 19125 -> 10.1.0.3, previous 10.1.0.2
//!   10.1.0.0/24 -> port 3;  203.0.113.0/24 and 198.51.100.0/24 -> port 1
//!   tunnel source 10.0.0.1, generation 7
//! ```

mod common;

use beamer_pipeline::DropReason;
use beamer_pipeline::hash::bucket_of;
use beamer_pipeline::wire::internet_checksum;
use beamer_softswitch::{Batch, BatchSize, Frame, HEADROOM, Switch, Verdict};
use common::*;

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
