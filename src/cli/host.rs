//! `beamer host`: the server-side agent. It receives the mux's IP-in-IP
//! packets, hands those of local connections to the stack through a TUN
//! device carrying the VIPs, and daisy-chains the others to the bucket's
//! previous server.

use anyhow::{Context, bail};
use beamer_host::linux::{Agent, AgentConfig, bench_lookup, signals};
use beamer_host::{DEFAULT_DAISY_TIMEOUT_SECS, HostConfig};
use std::net::Ipv4Addr;

/// Arguments of `beamer host`.
#[derive(clap::Args)]
pub struct Args {
    /// This server's address: the outer destination the mux sends to.
    #[arg(long, required_unless_present = "bench_lookup")]
    dip: Option<Ipv4Addr>,
    /// A VIP this server serves (repeat or comma-separate). It is put on the
    /// TUN device, so services listen on it and reply to clients directly.
    #[arg(
        long = "vip",
        value_delimiter = ',',
        required_unless_present = "bench_lookup"
    )]
    vips: Vec<Ipv4Addr>,
    /// This server's per-server TCP port on the VIPs (MPTCP subflows reach
    /// it through the mux); packets to it always go to the local stack.
    #[arg(long = "port", value_delimiter = ',')]
    ports: Vec<u16>,
    /// Outer source address of the muxes (repeat or comma-separate); other
    /// sources are dropped.
    #[arg(
        long = "tunnel-src",
        value_delimiter = ',',
        required_unless_present = "bench_lookup"
    )]
    tunnel_srcs: Vec<Ipv4Addr>,
    /// Bucket bits k (2^k buckets per VIP), the same as the mux's.
    #[arg(long, required_unless_present = "bench_lookup")]
    bucket_bits: Option<u8>,
    /// Seconds after a bucket change during which its previous server
    /// still gets its connections' packets; the same as the controller's.
    #[arg(long, default_value_t = DEFAULT_DAISY_TIMEOUT_SECS)]
    daisy_timeout: u32,
    /// Deliver every valid packet locally: no daisy chaining.
    #[arg(long)]
    no_chain: bool,
    /// Name of the TUN device to create.
    #[arg(long, default_value = "beamer0")]
    tun: String,
    /// Leave MPTCP alone (by default, with --port: announce ADD_ADDR(VIP,
    /// port) and refuse subflows to the initial address and port).
    #[arg(long)]
    no_mptcp: bool,
    /// Set the MPTCP subflow limit per connection (`ip mptcp limits set
    /// subflows N`).
    #[arg(long, value_name = "N")]
    mptcp_subflows: Option<u8>,
    /// Measure the local-connection lookup (N lookups each way) and exit.
    #[arg(long, value_name = "N")]
    bench_lookup: Option<u32>,
}

/// Runs the agent until SIGINT or SIGTERM; SIGUSR1 prints the counters.
pub fn run(args: Args) -> anyhow::Result<()> {
    if let Some(n) = args.bench_lookup {
        print!("{}", bench_lookup(n).context("--bench-lookup")?);
        return Ok(());
    }
    let (Some(dip), Some(bits)) = (args.dip, args.bucket_bits) else {
        bail!("--dip and --bucket-bits are required");
    };
    let mut host = HostConfig::new(dip, args.vips, args.tunnel_srcs, bits);
    host.server_ports = args.ports;
    host.daisy_timeout_secs = args.daisy_timeout;
    host.chaining = !args.no_chain;
    let mut cfg = AgentConfig::new(host);
    cfg.tun = args.tun;
    cfg.mptcp = !args.no_mptcp;
    cfg.mptcp_subflows = args.mptcp_subflows;

    let (stop, report) = signals::install().context("installing signal handlers")?;
    let mut agent = Agent::new(cfg)?;
    for line in agent.setup_log() {
        eprintln!("beamer host: {line}");
    }
    let h = agent.host().config();
    eprintln!(
        "beamer host: dip {} vips {:?} tunnel sources {:?}, 2^{} buckets, daisy timeout {} s, chaining {}; SIGUSR1 prints counters",
        h.dip,
        h.vips,
        h.tunnel_sources,
        h.bucket_bits,
        h.daisy_timeout_secs,
        if h.chaining { "on" } else { "off" }
    );
    let stats = agent.run(stop, Some(report))?;
    eprintln!("beamer host: stopped; counters:\n{stats}");
    Ok(())
}
