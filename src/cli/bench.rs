//! `beamer bench`: the software switch's benchmark, printed as a table.
//!
//! The workload and the loops are `beamer_softswitch::bench` (the same as
//! the criterion bench; `WorkloadSpec::default`: 64-byte TCP frames from
//! 1M random clients, 64K buckets per VIP over 1,000 servers, 100 VIP
//! entries, 1,000 routes; the first line of the output says). For
//! each batch size, pipeline and floor runs of `--duration` alternate
//! `--rounds` times on one core, and the best of each is kept (the least
//! disturbed run on a shared machine). The floor loop reads every byte of
//! each frame and writes the 36 outer bytes: pipeline / floor is the
//! headline ratio.
//!
//! `--p4rt` runs the P4Runtime write benchmark instead
//! (`beamer_softswitch::p4rt::bench`): bucket-entry Writes over loopback
//! gRPC at each `--p4rt-batch-sizes` for `--duration`, and the time to
//! install a full table of `--buckets`.

use beamer_softswitch::bench::{
    BenchReport, Throughput, Workload, WorkloadSpec, floor_loop, measure_updates, pipeline_loop,
    resident_bytes,
};
use beamer_softswitch::{Batch, BatchSize};
use std::time::{Duration, Instant};

/// Benchmark the software switch and print a table.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Seconds per measured run (each batch size runs the pipeline and the
    /// floor this long, --rounds times).
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    duration: f64,

    /// Alternating pipeline/floor runs per batch size; the best is kept.
    #[arg(long, value_name = "N", default_value_t = 3)]
    rounds: u32,

    /// Batch sizes to measure.
    #[arg(
        long,
        value_name = "N,N,...",
        value_delimiter = ',',
        default_value = "1,32,256"
    )]
    batch_sizes: Vec<BatchSize>,

    /// Entries per write for the update-cost measurement.
    #[arg(
        long,
        value_name = "N,N,...",
        value_delimiter = ',',
        default_value = "1,64,4096"
    )]
    update_sizes: Vec<usize>,

    /// Seconds each update-cost measurement runs.
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    update_duration: f64,

    /// Distinct clients (one frame each in the receive pool).
    #[arg(long, value_name = "N", default_value_t = WorkloadSpec::default().clients)]
    clients: u32,

    /// Buckets per VIP (a power of two).
    #[arg(long, value_name = "N", default_value_t = WorkloadSpec::default().buckets)]
    buckets: u32,

    /// Measure P4Runtime writes over loopback gRPC instead of the data
    /// path.
    #[arg(long)]
    p4rt: bool,

    /// Bucket entries per Write for --p4rt.
    #[arg(
        long,
        value_name = "N,N,...",
        value_delimiter = ',',
        default_value = "1,100,10000",
        requires = "p4rt"
    )]
    p4rt_batch_sizes: Vec<usize>,
}

/// `beamer bench --p4rt`.
fn run_p4rt(args: &Args, duration: Duration) -> anyhow::Result<()> {
    use beamer_softswitch::p4rt::bench;
    let spec = bench::Spec {
        batch_sizes: args.p4rt_batch_sizes.clone(),
        duration,
        buckets: args.buckets,
        ..bench::Spec::default()
    };
    if cfg!(debug_assertions) {
        eprintln!(
            "WARNING: debug build; the figures mean little. Use: cargo run --release -- bench --p4rt"
        );
    }
    eprintln!(
        "P4Runtime writes: {:?} per Write, {duration:?} each...",
        spec.batch_sizes
    );
    let report = bench::run(&spec)?;
    println!(
        "beamer bench --p4rt{}",
        cpu_model().map(|m| format!(": {m}")).unwrap_or_default()
    );
    print!("{report}");
    Ok(())
}

fn secs(s: f64, what: &str) -> anyhow::Result<Duration> {
    if !(s.is_finite() && s > 0.0 && s <= 3600.0) {
        anyhow::bail!("{what}: {s} is not a number of seconds in (0, 3600]");
    }
    Ok(Duration::from_secs_f64(s))
}

/// Runs `step(chunk)` in chunks until `d` has passed; returns packets per
/// second in millions.
fn mpps_for(d: Duration, mut step: impl FnMut(u64)) -> f64 {
    const CHUNK: u64 = 1 << 18;
    let start = Instant::now();
    let mut done = 0u64;
    while start.elapsed() < d {
        step(CHUNK);
        done += CHUNK;
    }
    done as f64 / start.elapsed().as_secs_f64() / 1e6
}

fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("model name"))?;
    Some(line.split_once(':')?.1.trim().to_string())
}

/// Measures and prints.
pub fn run(args: Args) -> anyhow::Result<()> {
    let duration = secs(args.duration, "--duration")?;
    let update_duration = secs(args.update_duration, "--update-duration")?;
    if args.p4rt {
        return run_p4rt(&args, duration);
    }
    if args.batch_sizes.is_empty() {
        anyhow::bail!("--batch-sizes: give at least one size");
    }
    let spec = WorkloadSpec {
        clients: args.clients.max(1),
        buckets: args.buckets,
        ..WorkloadSpec::default()
    };
    Workload::params(&spec)
        .validate(beamer_pipeline::Target::V1model)
        .map_err(|e| anyhow::anyhow!("--buckets: {e}"))?;
    if cfg!(debug_assertions) {
        eprintln!(
            "WARNING: debug build; the figures mean little. Use: cargo run --release -- bench"
        );
    }
    eprintln!(
        "building the workload ({} clients, {} buckets x {} VIPs)...",
        spec.clients, spec.buckets, spec.vips
    );

    let before = resident_bytes();
    let w = Workload::build(&spec);
    let mut worker = w.switch().worker();
    let mut rx = w.rx();
    // One pass over the pool: every table line and counter touched once.
    let mut warm = Batch::new(BatchSize::DEFAULT, spec.frame_len);
    pipeline_loop(&mut worker, &mut rx, &mut warm, u64::from(spec.clients));
    let after = resident_bytes();
    let pool_bytes = spec.clients as u64 * spec.frame_len as u64;
    let memory = w.switch().memory();

    let mut throughput = Vec::new();
    for &batch in &args.batch_sizes {
        eprintln!(
            "batch {batch}: {} x {:?} pipeline + floor...",
            args.rounds, duration
        );
        let mut b = Batch::new(batch, spec.frame_len);
        let (mut best, mut best_floor) = (0f64, 0f64);
        for _ in 0..args.rounds.max(1) {
            best = best.max(mpps_for(duration, |n| {
                pipeline_loop(&mut worker, &mut rx, &mut b, n);
            }));
            best_floor = best_floor.max(mpps_for(duration, |n| {
                floor_loop(&mut rx, &mut b, n);
            }));
        }
        throughput.push(Throughput {
            batch,
            mpps: best,
            floor_mpps: best_floor,
        });
    }

    let mut updates = Vec::new();
    for &n in &args.update_sizes {
        eprintln!("updates: {n} entries per write for {update_duration:?}...");
        updates.push(measure_updates(
            &w,
            n.max(1),
            update_duration,
            BatchSize::DEFAULT,
        ));
    }

    let report = BenchReport {
        spec,
        throughput,
        memory,
        // The pool of client frames is not switch memory.
        resident_growth: before
            .zip(after)
            .map(|(b, a)| a.saturating_sub(b).saturating_sub(pool_bytes)),
        updates,
    };
    println!(
        "beamer bench: one core{}, {} per run, best of {}",
        cpu_model().map(|m| format!(" of {m}")).unwrap_or_default(),
        format_args!("{:.2} s", duration.as_secs_f64()),
        args.rounds.max(1)
    );
    print!("{report}");
    if let Some(t) = report
        .throughput
        .iter()
        .find(|t| t.batch == BatchSize::DEFAULT)
        .or(report.throughput.last())
    {
        println!();
        println!(
            "headline: {:.1} Mpps per core at batch {}, {:.0}% of the floor ({:.1} Mpps)",
            t.mpps,
            t.batch,
            t.ratio() * 100.0,
            t.floor_mpps
        );
    }
    Ok(())
}
