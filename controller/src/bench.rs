//! Measurements of the controller against P4Runtime switches (the
//! software switch on loopback in `benches/sync.rs`): how long from a
//! `remove server` command until every switch holds the new generation,
//! and how long a full table takes to install. Also the loopback
//! configuration ([`config_text`]) the benchmark and the integration tests
//! build theirs from.

use crate::alloc::Change;
use crate::config::{Config, SwitchSpec};
use crate::core::Command;
use crate::plan::{self, Desired, Installed};
use crate::service::Handle;
use crate::switch::SwitchCounters;
use crate::switch::client::{Client, StreamEvent, SwitchError};
use crate::switch::task::write_plan;
use beamer_pipeline::wire::MacAddr;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

/// The VIP of the benchmark and test configurations.
pub const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);

/// The tunnel source of the benchmark and test configurations.
pub const TUNNEL_SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

/// The egress port of their one route (10.1.0.0/16, the servers).
pub const SERVER_PORT: u16 = 1;

/// The next hop's MAC on that route.
pub const SERVER_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0x01, 0xfe]);

/// The mux's own MAC on that route.
pub const MUX_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);

/// Server `i` of the benchmark (0-based).
pub fn server(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 1, (i / 250) as u8, (i % 250 + 1) as u8)
}

/// The text of a configuration on loopback, for the benchmarks and the
/// integration tests: tunnel source [`TUNNEL_SRC`], admin API and metrics
/// on free ports, then `controller` (more `[controller]` lines); one VIP,
/// [`VIP`] tcp/80, of `buckets` buckets with `servers` (address,
/// per-server port); the software switches `switches` (name, address);
/// one route, 10.1.0.0/16 out of port [`SERVER_PORT`] to [`SERVER_MAC`]
/// from [`MUX_MAC`].
pub fn config_text(
    controller: &str,
    buckets: u32,
    servers: &[(Ipv4Addr, u16)],
    switches: &[(&str, SocketAddr)],
) -> String {
    let mut text = format!(
        r#"
[controller]
tunnel_src = "{TUNNEL_SRC}"
admin_listen = "127.0.0.1:0"
metrics_listen = "127.0.0.1:0"
{controller}

[[next_hops]]
name = "servers"
port = {SERVER_PORT}
mac = "{SERVER_MAC}"
src_mac = "{MUX_MAC}"

[[routes]]
prefix = "10.1.0.0/16"
next_hop = "servers"

[[vips]]
address = "{VIP}"
ports = ["tcp/80"]
buckets = {buckets}
"#
    );
    for (dip, port) in servers {
        text.push_str(&format!(
            "\n[[vips.servers]]\ndip = \"{dip}\"\nport = {port}\n"
        ));
    }
    for (name, a) in switches {
        text.push_str(&format!(
            "\n[[switches]]\nname = \"{name}\"\naddress = \"{a}\"\ntarget = \"softswitch\"\n"
        ));
    }
    text
}

/// The benchmark's configuration: one VIP of 2^`bucket_bits` buckets,
/// `servers` servers (each with a per-server port), and the software
/// switches at `switches`.
pub fn config(switches: &[SocketAddr], servers: usize, bucket_bits: u8) -> Config {
    let servers: Vec<_> = (0..servers)
        .map(|i| (server(i), 10_000 + i as u16))
        .collect();
    let names: Vec<String> = (0..switches.len()).map(|i| format!("mux{i}")).collect();
    let switches: Vec<_> = names
        .iter()
        .map(String::as_str)
        .zip(switches.iter().copied())
        .collect();
    let text = config_text(
        "backoff_initial = \"50ms\"\nbackoff_max = \"500ms\"",
        1 << bucket_bits,
        &servers,
        &switches,
    );
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
