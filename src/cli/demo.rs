//! `beamer demo`: the controller, the software switch and simulated servers
//! in one process, under churn, with and without daisy chaining.
//!
//! ```text
//! beamer demo [--seed N] [--connections N] [--servers N] [--buckets N] [--quiet]
//! ```
//!
//! No root, no network, no other process: see the `beamer_demo` crate for
//! what is real and what is simulated.

use anyhow::bail;
use beamer_demo::{DemoConfig, Event, report};
use std::io::Write;
use std::time::Instant;

/// Play a scripted life of a VIP (add, drain, re-weight, remove servers)
/// under thousands of connections, with daisy chaining and without.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Seed of every random choice; the same seed prints the same run.
    #[arg(long, default_value_t = DemoConfig::default().seed)]
    seed: u64,

    /// Connections the clients keep open at once.
    #[arg(long, value_name = "N", default_value_t = DemoConfig::default().connections)]
    connections: u32,

    /// Servers at the start (the script adds two and removes one).
    #[arg(long, value_name = "N", default_value_t = DemoConfig::default().servers)]
    servers: u8,

    /// Buckets of the VIP, a power of two.
    #[arg(long, value_name = "N", default_value_t = DemoConfig::default().buckets())]
    buckets: u32,

    /// Daisy-chain timeout of controller and hosts, in virtual seconds.
    /// Connections live 30 to 180 s: a timeout below that shows
    /// connections outliving their chain.
    #[arg(long, value_name = "SECS", default_value_t = DemoConfig::default().daisy_timeout_secs)]
    daisy_timeout: u32,

    /// Share of MPTCP connections, in percent.
    #[arg(long, value_name = "PERCENT", default_value_t = DemoConfig::default().mptcp_percent)]
    mptcp: u8,

    /// Print only the final comparison, not the progress.
    #[arg(long, short)]
    quiet: bool,
}

/// Runs the demo and prints its progress and the survival figures.
pub fn run(args: Args) -> anyhow::Result<()> {
    if !args.buckets.is_power_of_two() {
        bail!("--buckets {}: must be a power of two", args.buckets);
    }
    let cfg = DemoConfig {
        seed: args.seed,
        connections: args.connections,
        servers: args.servers,
        bucket_bits: args.buckets.trailing_zeros() as u8,
        daisy_timeout_secs: args.daisy_timeout,
        mptcp_percent: args.mptcp,
        ..DemoConfig::default()
    };
    cfg.validate()?;
    let quiet = args.quiet;
    let out = std::io::stdout();
    let mut out = out.lock();
    if !quiet {
        writeln!(out, "{}", report::intro(&cfg))?;
    }
    let started = Instant::now();
    let mut current = None;
    let cmp = beamer_demo::compare(&cfg, &mut |chaining, e| {
        if quiet {
            return;
        }
        if current != Some(chaining) {
            current = Some(chaining);
            let _ = writeln!(out, "\n{}", report::heading(chaining));
        }
        let _ = match e {
            Event::Commit {
                t, outcome, load, ..
            } => write!(
                out,
                "{}\n{}",
                report::commit_line(t, outcome),
                report::load_table(load)
            ),
            Event::Tick { t, totals } => writeln!(out, "{}", report::tick_line(t, totals)),
        };
    })?;
    let elapsed = started.elapsed();
    if !quiet {
        writeln!(out)?;
        writeln!(out, "{}", report::run_summary(&cmp.on))?;
        writeln!(out, "{}", report::run_summary(&cmp.off))?;
    }
    write!(out, "{}", report::contrast(&cmp))?;
    writeln!(
        out,
        "({} s of virtual time, twice, in {:.1} s)",
        cmp.on.virtual_secs,
        elapsed.as_secs_f64()
    )?;
    Ok(())
}
