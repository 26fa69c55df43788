//! Pipeline throughput against the floor loop, and table-update cost.
//!
//! `cargo bench -p beamer-softswitch --bench pipeline`
//!
//! Criterion measures each loop in rounds of 65,536 packets (throughput in
//! elements/s = packets/s); afterwards the bench prints the same table as
//! `beamer bench` (pipeline and floor measured alternately in one run, so
//! their ratio is meaningful on a noisy machine).

use beamer_softswitch::bench::{self, BenchOptions, Workload, WorkloadSpec};
use beamer_softswitch::{Batch, BatchSize};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::time::Duration;

/// Packets per measured iteration.
const ROUND: u64 = 1 << 16;

fn throughput(c: &mut Criterion) {
    let w = Workload::build(&WorkloadSpec::default());
    let mut g = c.benchmark_group("mux");
    g.throughput(Throughput::Elements(ROUND));
    for n in [1, 32, 256] {
        let size = BatchSize::new(n).expect("valid batch size");
        let mut worker = w.switch().worker();
        let mut rx = w.rx();
        let mut batch = Batch::new(size, w.spec.frame_len);
        g.bench_function(BenchmarkId::new("pipeline", n), |b| {
            b.iter(|| bench::pipeline_loop(&mut worker, &mut rx, &mut batch, ROUND))
        });
        g.bench_function(BenchmarkId::new("floor", n), |b| {
            b.iter(|| bench::floor_loop(&mut rx, &mut batch, ROUND))
        });
    }
    g.finish();

    // Table updates without traffic: one Switch::apply of n bucket MODIFYs.
    let mut g = c.benchmark_group("update");
    for n in [1usize, 64, 4096] {
        let moves = w.bucket_moves(n * 16, 7);
        let mut chunks = moves.chunks(n).cycle();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(BenchmarkId::new("bucket_modify", n), |b| {
            b.iter(|| w.switch().apply(chunks.next().unwrap_or(&[])))
        });
    }
    g.finish();
}

fn report(_: &mut Criterion) {
    let opts = BenchOptions {
        packets: 10_000_000,
        update_duration: Duration::from_millis(500),
        ..Default::default()
    };
    println!("\n{}", bench::run(&opts));
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = throughput, report
}
criterion_main!(benches);
