//! `beamer ctl`: talks to a running controller's admin API.
//!
//! ```text
//! beamer ctl status
//! beamer ctl server add 10.1.0.4 --port 9004 --weight 2 [--health-port 80]
//! beamer ctl server drain 10.1.0.4
//! beamer ctl server activate 10.1.0.4
//! beamer ctl server weight 10.1.0.4 3
//! beamer ctl server remove 10.1.0.4
//! ```
//!
//! `--vip` names the VIP (id or address); it may be left out when the
//! controller has one VIP. `--wait` waits until every switch holds the new
//! generation.

use beamer_controller::admin_client::AdminClient;
use beamer_controller::api;
use clap::Subcommand;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// Arguments of `beamer ctl`.
#[derive(clap::Args)]
pub struct Args {
    /// The controller's admin API (its `admin_listen`); default
    /// $BEAMER_ADMIN, else 127.0.0.1:9090.
    #[arg(long)]
    pub admin: Option<String>,
    /// Print the controller's JSON answers as they are.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: CtlCommand,
}

/// What to ask.
#[derive(Subcommand)]
pub enum CtlCommand {
    /// Servers, bucket shares, generation and each switch's sync state.
    Status,
    /// Change a server of a VIP.
    Server {
        #[command(subcommand)]
        command: ServerCommand,
    },
}

/// Options shared by the server commands.
#[derive(clap::Args)]
pub struct Target {
    /// The VIP (id or address); may be left out if there is only one.
    #[arg(long)]
    pub vip: Option<String>,
    /// Wait until every switch holds the new generation (up to this many
    /// seconds).
    #[arg(long, value_name = "SECONDS", num_args = 0..=1, default_missing_value = "30")]
    pub wait: Option<u64>,
}

/// A change to one server.
#[derive(Subcommand)]
pub enum ServerCommand {
    /// Add a server; it takes its share of buckets at once.
    Add {
        /// Its address.
        dip: Ipv4Addr,
        /// Its per-server TCP port on the VIP.
        #[arg(long)]
        port: Option<u16>,
        /// Its weight.
        #[arg(long, default_value_t = 1)]
        weight: u32,
        /// Health-check it with TCP connects to this port.
        #[arg(long)]
        health_port: Option<u16>,
        /// Milliseconds between health probes.
        #[arg(long)]
        health_interval_ms: Option<u64>,
        #[command(flatten)]
        target: Target,
    },
    /// Remove a server; its buckets move, nothing chains to it any more.
    Remove {
        /// Its address.
        dip: Ipv4Addr,
        #[command(flatten)]
        target: Target,
    },
    /// Drain a server: its buckets move, its connections finish.
    Drain {
        /// Its address.
        dip: Ipv4Addr,
        #[command(flatten)]
        target: Target,
    },
    /// Undo a drain.
    Activate {
        /// Its address.
        dip: Ipv4Addr,
        #[command(flatten)]
        target: Target,
    },
    /// Change a server's weight.
    Weight {
        /// Its address.
        dip: Ipv4Addr,
        /// The new weight.
        weight: u32,
        #[command(flatten)]
        target: Target,
    },
}

/// Runs one `beamer ctl` command.
pub fn run(args: Args) -> anyhow::Result<()> {
    let admin = args
        .admin
        .clone()
        .or_else(|| std::env::var("BEAMER_ADMIN").ok())
        .unwrap_or_else(|| "127.0.0.1:9090".to_string());
    let client = AdminClient::new(admin);
    match args.command {
        CtlCommand::Status => {
            let status = client.status()?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", status.render());
            }
            Ok(())
        }
        CtlCommand::Server { command } => server(&client, command, args.json),
    }
}

fn vip_of(client: &AdminClient, target: &Target) -> anyhow::Result<String> {
    if let Some(v) = &target.vip {
        return Ok(v.clone());
    }
    let status = client.status()?;
    match status.vips.as_slice() {
        [one] => Ok(one.id.to_string()),
        many => anyhow::bail!(
            "the controller has {} VIPs: say which with --vip ({})",
            many.len(),
            many.iter()
                .map(|v| format!("{} = {}", v.id, v.address))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn server(client: &AdminClient, command: ServerCommand, json: bool) -> anyhow::Result<()> {
    let (result, target) = match &command {
        ServerCommand::Add {
            dip,
            port,
            weight,
            health_port,
            health_interval_ms,
            target,
        } => {
            let vip = vip_of(client, target)?;
            let health =
                (health_port.is_some() || health_interval_ms.is_some()).then(|| api::HealthSpec {
                    port: *health_port,
                    interval_ms: *health_interval_ms,
                    ..Default::default()
                });
            let req = api::AddServer {
                dip: *dip,
                port: *port,
                weight: Some(*weight),
                health,
            };
            (client.add_server(&vip, &req)?, target)
        }
        ServerCommand::Remove { dip, target } => {
            let vip = vip_of(client, target)?;
            (client.remove_server(&vip, &dip.to_string())?, target)
        }
        ServerCommand::Drain { dip, target } => {
            let vip = vip_of(client, target)?;
            (client.drain(&vip, &dip.to_string())?, target)
        }
        ServerCommand::Activate { dip, target } => {
            let vip = vip_of(client, target)?;
            (client.activate(&vip, &dip.to_string())?, target)
        }
        ServerCommand::Weight {
            dip,
            weight,
            target,
        } => {
            let vip = vip_of(client, target)?;
            (client.set_weight(&vip, &dip.to_string(), *weight)?, target)
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else if result.committed {
        println!(
            "generation {}: moved {} buckets (minimum {})",
            result.generation, result.moved, result.minimum
        );
        print!("{}", result.message);
    } else {
        println!(
            "nothing changed (generation {}): {}",
            result.generation, result.message
        );
    }
    if let Some(secs) = target.wait {
        let started = Instant::now();
        let deadline = started + Duration::from_secs(secs);
        loop {
            let status = client.status()?;
            if status.all_in_sync_at(result.generation) {
                println!(
                    "every switch holds generation {} ({} ms)",
                    result.generation,
                    started.elapsed().as_millis()
                );
                break;
            }
            if Instant::now() >= deadline {
                for s in &status.switches {
                    eprintln!("  {}: {}", s.name, s.state.describe());
                }
                anyhow::bail!(
                    "not every switch holds generation {} after {secs} s",
                    result.generation
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(())
}
