//! Cost of the per-packet decision, per path through the rules. The lookup
//! is an in-memory set here; the kernel lookup's own cost is measured by
//! `beamer host --bench-lookup N`.

use beamer_host::craft::{OptionFields, TcpSegment, encapsulate};
use beamer_host::{Flow, Host, HostConfig, Time, Verdict};
use beamer_pipeline::wire::l4::{TCP_ACK, TCP_PSH, TCP_SYN};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::collections::HashSet;
use std::hint::black_box;
use std::net::Ipv4Addr;

const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const MUX: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
const A: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 2);
const T0: u32 = 1_700_000_000;

fn packet(port: u16, flags: u8, prev: Ipv4Addr, change_time: u32) -> Vec<u8> {
    let inner = TcpSegment {
        src: Ipv4Addr::new(198, 51, 100, 7),
        src_port: port,
        dst: VIP,
        dst_port: 80,
        seq: 1,
        ack: 1,
        flags,
        payload: vec![0; 64],
    }
    .to_ipv4();
    let o = OptionFields {
        prev_dip: prev,
        change_time,
        generation: 3,
    };
    encapsulate(&inner, MUX, B, Some(o))
}

fn bench(c: &mut Criterion) {
    let mut cfg = HostConfig::new(B, vec![VIP], vec![MUX], 16);
    cfg.server_ports = vec![20002];
    let mut host = Host::new(cfg).unwrap();
    let now = Time::from_unix_secs(T0 + 10);
    let local_flow = Flow {
        client: Ipv4Addr::new(198, 51, 100, 7),
        client_port: 4000,
        vip: VIP,
        vip_port: 80,
    };
    let mut conns = HashSet::from([local_flow]);
    // Teach the host that every bucket of ports 4000..4002 came from A.
    for p in 4000..4002 {
        let mut syn = packet(p, TCP_SYN, A, T0);
        host.handle(&mut syn, now, &mut conns);
    }
    let cases = [
        (
            "stable (no recent change)",
            packet(5000, TCP_ACK | TCP_PSH, Ipv4Addr::UNSPECIFIED, 0),
        ),
        (
            "local connection (lookup)",
            packet(4000, TCP_ACK | TCP_PSH, A, T0),
        ),
        (
            "chained (lookup + rewrite)",
            packet(4001, TCP_ACK | TCP_PSH, A, T0),
        ),
        ("syn", packet(4002, TCP_SYN, A, T0)),
        ("dropped (unknown source)", {
            let mut p = packet(5000, TCP_ACK, A, T0);
            p[12] = 1;
            p
        }),
    ];
    let mut g = c.benchmark_group("host_decision");
    g.throughput(Throughput::Elements(1));
    for (name, pkt) in cases {
        let mut buf = pkt.clone();
        g.bench_function(name, |b| {
            b.iter(|| {
                // Restore the bytes a forward rewrites.
                buf[..36].copy_from_slice(&pkt[..36]);
                let v = host.handle(black_box(&mut buf), now, &mut conns);
                black_box(matches!(v, Verdict::Forward { .. }))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
