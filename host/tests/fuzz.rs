//! Whatever the bytes, the host never panics and gives each packet exactly
//! one verdict, consistent with its counters and the buffer.

use beamer_host::craft::{OptionFields, TcpSegment, encapsulate};
use beamer_host::{Flow, Host, HostConfig, Time, Verdict};
use beamer_pipeline::wire::Ipv4Packet;
use proptest::prelude::*;
use std::collections::HashSet;
use std::net::Ipv4Addr;

const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const MUX: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
const ME: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 2);

fn host() -> Host {
    let mut cfg = HostConfig::new(ME, vec![VIP], vec![MUX], 4);
    cfg.server_ports = vec![20002];
    Host::new(cfg).unwrap()
}

/// Checks one verdict against the buffer before and after.
fn check(h: &Host, before: &[u8], after: &[u8], v: &Verdict) {
    let c = h.counters();
    assert_eq!(
        c.received,
        c.local_total() + c.forwarded + c.dropped_total()
    );
    assert_eq!(before.len(), after.len());
    match v {
        Verdict::Local { inner, .. } => {
            assert!(inner.start >= 20 && inner.start < inner.end && inner.end <= after.len());
            assert_eq!(before, after, "a local packet is not modified");
        }
        Verdict::Forward { to } => {
            let p = Ipv4Packet::new_checked(after).unwrap();
            assert_eq!(p.dst(), *to);
            assert!(p.checksum_ok());
            assert_ne!(*to, ME);
            assert_eq!(&before[36..], &after[36..], "the inner packet is untouched");
        }
        Verdict::Drop(_) => assert_eq!(before, after),
    }
}

/// A valid packet of some flow, with some option.
fn valid(port: u16, flags: u8, option: Option<(u8, u32, u32)>) -> Vec<u8> {
    let inner = TcpSegment {
        src: Ipv4Addr::new(198, 51, 100, 1),
        src_port: port,
        dst: VIP,
        dst_port: if port % 7 == 0 { 20002 } else { 80 },
        seq: u32::from(port),
        ack: 0,
        flags,
        payload: vec![0xab; usize::from(port % 5)],
    }
    .to_ipv4();
    let option = option.map(|(prev, change_time, generation)| OptionFields {
        prev_dip: Ipv4Addr::new(10, 1, 0, prev % 4),
        change_time,
        generation,
    });
    encapsulate(&inner, MUX, ME, option)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..120), now in any::<u64>()) {
        let mut h = host();
        let mut buf = bytes.clone();
        let v = h.handle(&mut buf, Time::from_unix_millis(now), &mut HashSet::<Flow>::new());
        check(&h, &bytes, &buf, &v);
        prop_assert_eq!(h.counters().received, 1);
    }

    #[test]
    fn mutated_valid_packets(
        packets in proptest::collection::vec(
            (any::<u16>(), any::<u8>(), proptest::option::of((any::<u8>(), 0u32..1000, 0u32..4)),
             proptest::collection::vec((any::<usize>(), any::<u8>()), 0..3),
             proptest::option::of(any::<usize>()), 0u32..1200),
            1..40),
    ) {
        // A sequence, so learned state and generations carry over.
        let mut h = host();
        let mut conns = HashSet::new();
        for (port, flags, option, flips, cut, now) in packets {
            let mut p = valid(port, flags, option);
            for (at, x) in flips {
                let n = p.len();
                p[at % n] ^= x;
            }
            if let Some(c) = cut {
                p.truncate(c % (p.len() + 1));
            }
            if port % 3 == 0 {
                conns.insert(Flow { client: Ipv4Addr::new(198, 51, 100, 1), client_port: port, vip: VIP, vip_port: 80 });
            }
            let before = p.clone();
            let v = h.handle(&mut p, Time::from_unix_secs(now), &mut conns);
            check(&h, &before, &p, &v);
        }
    }
}
