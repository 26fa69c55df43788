//! Time per allocator operation for 64K buckets and 100 or 1,000 servers.
//!
//! `cargo bench -p beamer-controller --bench alloc`

use beamer_controller::alloc::{AllocConfig, Allocator, Change, ServerSpec, ServicePort, VipSpec};
use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::Duration;

const T0: u32 = 1_700_000_000;
const BITS: u8 = 16;

fn server(i: u32) -> ServerSpec {
    ServerSpec {
        dip: Ipv4Addr::from(0x0a00_0000 + i),
        port: Some(20_000 + i as u16),
        // Mixed weights, so shares are fractional.
        weight: 1 + i % 4,
    }
}

fn declaration(servers: u32) -> Vec<Change> {
    let mut c = vec![Change::AddVip(VipSpec {
        vip_id: 0,
        addr: Ipv4Addr::new(192, 0, 2, 1),
        service_ports: vec![ServicePort::tcp(80)],
    })];
    c.extend((1..=servers).map(|i| Change::AddServer {
        vip_id: 0,
        server: server(i),
    }));
    c
}

fn config() -> AllocConfig {
    AllocConfig {
        bucket_bits: BITS,
        max_vip_entries: 4096,
        ..AllocConfig::default()
    }
}

/// An allocator with `servers` servers that has seen some churn, so buckets
/// have mixed ages and live chains.
fn churned(servers: u32) -> Allocator {
    let mut a = Allocator::new(config()).unwrap();
    a.commit(&declaration(servers), T0).unwrap();
    for (k, i) in [3, 7, 11].into_iter().enumerate() {
        a.commit(
            &[Change::DrainServer {
                vip_id: 0,
                dip: server(i).dip,
            }],
            T0 + 10 * (k as u32 + 1),
        )
        .unwrap();
    }
    a
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("alloc_64k");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500));
    for servers in [100u32, 1000] {
        let decl = declaration(servers);
        g.bench_with_input(BenchmarkId::new("create", servers), &decl, |b, decl| {
            b.iter_batched(
                || Allocator::new(config()).unwrap(),
                |mut a| black_box(a.commit(decl, T0).unwrap()),
                BatchSize::LargeInput,
            )
        });
        let base = churned(servers);
        let ops: [(&str, Change); 4] = [
            (
                "add_server",
                Change::AddServer {
                    vip_id: 0,
                    server: server(servers + 1),
                },
            ),
            (
                "remove_server",
                Change::RemoveServer {
                    vip_id: 0,
                    dip: server(1).dip,
                },
            ),
            (
                "drain_server",
                Change::DrainServer {
                    vip_id: 0,
                    dip: server(2).dip,
                },
            ),
            (
                "set_weight",
                Change::SetWeight {
                    vip_id: 0,
                    dip: server(5).dip,
                    weight: 7,
                },
            ),
        ];
        for (name, op) in ops {
            g.bench_with_input(BenchmarkId::new(name, servers), &op, |b, op| {
                b.iter_batched(
                    || base.clone(),
                    |mut a| black_box(a.commit(std::slice::from_ref(op), T0 + 100).unwrap()),
                    BatchSize::LargeInput,
                )
            });
        }
        let due = base.next_expiry().unwrap();
        g.bench_function(BenchmarkId::new("expire", servers), |b| {
            b.iter_batched(
                || base.clone(),
                |mut a| black_box(a.expire(due).unwrap().unwrap()),
                BatchSize::LargeInput,
            )
        });
        g.bench_function(BenchmarkId::new("full_state", servers), |b| {
            b.iter(|| black_box(base.full_state()))
        });
        let installed: Vec<_> = base.bucket_entries().collect();
        let resume_cfg = AllocConfig {
            first_generation: base.generation(),
            ..config()
        };
        g.bench_function(BenchmarkId::new("resume", servers), |b| {
            b.iter(|| {
                black_box(
                    Allocator::resume(resume_cfg, &decl, installed.iter().copied(), T0 + 100)
                        .unwrap(),
                )
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
