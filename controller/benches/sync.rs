//! The controller against two software switches on loopback gRPC, 64K
//! buckets and 100 servers:
//! - `remove_server_until_all_in_sync`: from a `remove server` command
//!   until both switches hold the new generation (each iteration re-adds
//!   the server afterwards, untimed);
//! - `full_table_install`: connect, become primary, push the pipeline and
//!   write every entry into an empty switch;
//! - `restart_until_in_sync`: a switch restarted empty, until the
//!   controller has it in sync again (failure detection and retry
//!   included).
//!
//! Besides criterion's report it prints a summary of the figures.
//! `cargo bench -p beamer-controller --bench sync`

use beamer_controller::bench::{self, InstallRun, RemoveRun};
use beamer_controller::service;
use beamer_controller::switch::SyncState;
use beamer_pipeline::PipelineParams;
use beamer_softswitch::Switch;
use beamer_softswitch::p4rt::{self, ServerHandle};
use criterion::{Criterion, criterion_group, criterion_main};
use std::time::{Duration, Instant};

const SERVERS: usize = 100;
const BUCKET_BITS: u8 = 16;

fn start_switch(addr: std::net::SocketAddr) -> (Switch, ServerHandle) {
    let switch = Switch::new(PipelineParams::default()).unwrap();
    let server = p4rt::builder(switch.clone())
        .device_id(1)
        .spawn(addr)
        .unwrap();
    (switch, server)
}

fn controller(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut muxes: Vec<(Switch, Option<ServerHandle>)> = (0..2)
        .map(|_| {
            let (s, h) = start_switch("127.0.0.1:0".parse().unwrap());
            (s, Some(h))
        })
        .collect();
    let addrs: Vec<_> = muxes
        .iter()
        .map(|(_, h)| h.as_ref().unwrap().local_addr())
        .collect();
    let config = bench::config(&addrs, SERVERS, BUCKET_BITS);
    let spec = config.switches[0].clone();
    let write_batch = config.controller.write_batch;
    let started = Instant::now();
    let running = rt.block_on(service::start(config)).unwrap();
    let h = running.handle.clone();
    assert!(rt.block_on(h.wait_in_sync(h.desired().generation, Duration::from_secs(120))));
    let first_sync = started.elapsed();

    let mut removes: Vec<RemoveRun> = Vec::new();
    let mut installs: Vec<InstallRun> = Vec::new();
    let mut restarts: Vec<Duration> = Vec::new();
    let mut g = c.benchmark_group("controller_64k_buckets_100_servers_2_switches");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));

    let mut next = 0usize;
    g.bench_function("remove_server_until_all_in_sync", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dip = bench::server(next % SERVERS);
                next += 1;
                let run = rt.block_on(bench::remove_until_in_sync(&h, dip)).unwrap();
                total += run.all_in_sync;
                removes.push(run);
                // Untimed: put it back.
                let o = rt
                    .block_on(h.command(beamer_controller::core::Command::add_server(
                        0,
                        beamer_controller::alloc::ServerSpec {
                            dip,
                            port: Some(10_000 + ((next - 1) % SERVERS) as u16),
                            weight: 1,
                        },
                        None,
                    )))
                    .unwrap();
                assert!(rt.block_on(h.wait_in_sync(o.generation, Duration::from_secs(120))));
            }
            total
        })
    });

    g.bench_function("full_table_install", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (_switch, server) = start_switch("127.0.0.1:0".parse().unwrap());
                let mut s = spec.clone();
                s.address = server.local_addr().to_string();
                let run = rt
                    .block_on(bench::install_full(&s, &h.desired(), write_batch))
                    .unwrap();
                total += run.pipeline + run.write;
                installs.push(run);
                server.shutdown().unwrap();
            }
            total
        })
    });

    g.bench_function("restart_until_in_sync", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let addr = addrs[1];
                let gen_now = h.desired().generation;
                muxes[1].1.take().unwrap().shutdown().unwrap();
                let t = Instant::now();
                let (s, server) = start_switch(addr);
                muxes[1] = (s, Some(server));
                let mut w = h.watch_switches()[1].clone();
                // Wait for the controller to notice the restart, then
                // for it to be in sync again.
                rt.block_on(async {
                    w.wait_for(|s| !matches!(s.state, SyncState::InSync { .. }))
                        .await
                        .unwrap();
                    w.wait_for(|s| {
                        matches!(s.state, SyncState::InSync { generation } if generation >= gen_now)
                    })
                    .await
                    .unwrap();
                });
                let d = t.elapsed();
                total += d;
                restarts.push(d);
            }
            total
        })
    });
    g.finish();

    println!();
    println!(
        "controller, {} buckets, {SERVERS} servers, 2 software switches on loopback gRPC:",
        1u32 << BUCKET_BITS
    );
    println!(
        "  first sync of both switches at start: {:.1} ms",
        first_sync.as_secs_f64() * 1000.0
    );
    let moved: Vec<u64> = removes.iter().map(|r| r.moved).collect();
    println!(
        "  remove server -> every switch holds the new generation: {} (commit alone: {}; {} buckets moved each)",
        bench::summary(removes.iter().map(|r| r.all_in_sync).collect()),
        bench::summary(removes.iter().map(|r| r.commit).collect()),
        moved.first().copied().unwrap_or(0)
    );
    let updates = installs.first().map_or(0, |r| r.updates);
    println!(
        "  full table install ({updates} updates): {} (pipeline push: {}; writes: {})",
        bench::summary(installs.iter().map(|r| r.pipeline + r.write).collect()),
        bench::summary(installs.iter().map(|r| r.pipeline).collect()),
        bench::summary(installs.iter().map(|r| r.write).collect()),
    );
    println!(
        "  switch restarted empty -> in sync again: {}",
        bench::summary(restarts)
    );
    running.shutdown();
}

criterion_group!(benches, controller);
criterion_main!(benches);
