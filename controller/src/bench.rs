//! Measurements of the controller against P4Runtime switches (the
//! software switch on loopback in `benches/sync.rs`): how long from a
//! `remove server` command until every switch holds the new generation,
//! and how long a full table takes to install.

use crate::alloc::Change;
use crate::config::{Config, SwitchSpec};
use crate::core::Command;
use crate::plan::{self, Desired, Installed};
use crate::service::Handle;
use crate::switch::SwitchCounters;
use crate::switch::client::{Client, StreamEvent, SwitchError};
use crate::switch::task::write_plan;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

/// The VIP of the benchmark.
pub const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);

/// Server `i` of the benchmark (0-based).
pub fn server(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 1, (i / 250) as u8, (i % 250 + 1) as u8)
}

/// A configuration with one VIP of 2^`bucket_bits` buckets, `servers`
/// servers (each with a per-server port), and the software switches at
/// `switches`.
pub fn config(switches: &[SocketAddr], servers: usize, bucket_bits: u8) -> Config {
    let mut text = format!(
        r#"
[controller]
tunnel_src = "10.0.0.1"
admin_listen = "127.0.0.1:0"
metrics_listen = "127.0.0.1:0"
backoff_initial = "50ms"
backoff_max = "500ms"

[[next_hops]]
name = "servers"
port = 1
mac = "02:00:00:00:01:fe"
src_mac = "02:00:00:00:00:01"

[[routes]]
prefix = "10.1.0.0/16"
next_hop = "servers"

[[vips]]
address = "{VIP}"
ports = ["tcp/80"]
buckets = {}
"#,
        1u64 << bucket_bits
    );
    for i in 0..servers {
        text.push_str(&format!(
            "\n[[vips.servers]]\ndip = \"{}\"\nport = {}\n",
            server(i),
            10_000 + i
        ));
    }
    for (i, a) in switches.iter().enumerate() {
        text.push_str(&format!(
            "\n[[switches]]\nname = \"mux{i}\"\naddress = \"{a}\"\ntarget = \"softswitch\"\n"
        ));
    }
    Config::parse(&text, Path::new("bench.toml"), Path::new("."))
        .unwrap_or_else(|e| panic!("the bench config is invalid: {e}"))
}

/// One `remove server` measured.
#[derive(Debug, Clone, Copy)]
pub struct RemoveRun {
    /// From sending the command to the controller's answer (the commit).
    pub commit: Duration,
    /// From sending the command until every switch holds the generation.
    pub all_in_sync: Duration,
    /// Buckets moved.
    pub moved: u64,
}

/// Removes server `dip` and waits until every switch holds the new
/// generation.
pub async fn remove_until_in_sync(handle: &Handle, dip: Ipv4Addr) -> anyhow::Result<RemoveRun> {
    let started = Instant::now();
    let o = handle
        .command(Command::from(Change::RemoveServer { vip_id: 0, dip }))
        .await?;
    let commit = started.elapsed();
    if !handle
        .wait_in_sync(o.generation, Duration::from_secs(120))
        .await
    {
        anyhow::bail!("switches did not reach generation {}", o.generation);
    }
    Ok(RemoveRun {
        commit,
        all_in_sync: started.elapsed(),
        moved: o.report.map_or(0, |r| r.moved()),
    })
}

/// One full-table install measured.
#[derive(Debug, Clone, Copy)]
pub struct InstallRun {
    /// Connect, become primary, push the pipeline.
    pub pipeline: Duration,
    /// Write every entry (and the config) in the controller's order.
    pub write: Duration,
    /// Updates written.
    pub updates: usize,
}

/// Installs `desired` on the empty switch `spec` the way the controller
/// does after a restart: connect, arbitrate, push the pipeline, write the
/// plan from an empty table.
pub async fn install_full(
    spec: &SwitchSpec,
    desired: &Desired,
    write_batch: usize,
) -> anyhow::Result<InstallRun> {
    let started = Instant::now();
    let mut client =
        Client::connect(spec, 1, Duration::from_secs(2), Duration::from_secs(60)).await?;
    let (_arbiter, mut events) = client.open_stream().await?;
    match events.recv().await {
        Some(StreamEvent::Primary) => {}
        other => anyhow::bail!("not primary: {other:?}"),
    }
    client
        .set_pipeline(spec, crate::switch::client::pipeline_cookie(spec))
        .await?;
    let pipeline = started.elapsed();
    let plan = plan::reconcile(&Installed::empty(), desired);
    let started = Instant::now();
    write_plan(&client, &plan, write_batch, &SwitchCounters::default())
        .await
        .map_err(|e: SwitchError| anyhow::anyhow!("{e}"))?;
    Ok(InstallRun {
        pipeline,
        write: started.elapsed(),
        updates: plan.len(),
    })
}

/// Median and extremes of a set of durations, for printing.
pub fn summary(mut d: Vec<Duration>) -> String {
    if d.is_empty() {
        return "no runs".into();
    }
    d.sort();
    let ms = |x: Duration| x.as_secs_f64() * 1000.0;
    format!(
        "median {:.1} ms, min {:.1} ms, max {:.1} ms over {} runs",
        ms(d[d.len() / 2]),
        ms(d[0]),
        ms(d[d.len() - 1]),
        d.len()
    )
}
