//! `beamer controller --config beamer.toml`: owns the bucket mapping and
//! keeps every switch's tables equal to it over P4Runtime.

use anyhow::Context;
use beamer_controller::config::Config;
use beamer_controller::service;
use std::path::PathBuf;

/// Arguments of `beamer controller`.
#[derive(clap::Args)]
pub struct Args {
    /// The configuration file (TOML): VIPs, servers, switches, routes.
    #[arg(long, short)]
    pub config: PathBuf,
    /// Check the configuration (and the P4Info and device config files it
    /// names), print a summary and exit.
    #[arg(long)]
    pub check: bool,
    /// Log filter, in `tracing` env-filter syntax; RUST_LOG overrides it.
    #[arg(long, default_value = "info")]
    pub log: String,
}

/// Runs the controller until interrupted.
pub fn run(args: Args) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&args.log))
        .context("--log")?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();

    // Every problem, each as file:line:column: field: message; nothing is
    // started unless the whole file is accepted.
    let config = Config::load(&args.config).map_err(|e| anyhow::anyhow!("{e}"))?;
    if args.check {
        println!("{}: OK", args.config.display());
        for v in &config.vips {
            println!(
                "  VIP {} {} ports [{}], {} servers, {} buckets",
                v.spec.vip_id,
                v.spec.addr,
                v.spec
                    .service_ports
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                v.servers.len(),
                config.alloc.buckets()
            );
        }
        for s in &config.switches {
            println!(
                "  switch {} {} ({}, device {}): P4Info {}, device config {:?}",
                s.name, s.address, s.target, s.device_id, s.p4info_source, s.device_config
            );
        }
        println!("  {} routes", config.routes.len());
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let running = service::start(config).await?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => {
                r?;
                eprintln!("interrupted: stopping (the switches keep their tables)");
            }
            () = running.wait() => anyhow::bail!("the controller stopped"),
        }
        Ok(())
    })
}
