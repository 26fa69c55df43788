//! The simulation behind `beamer demo`: the whole load balancer in one
//! process, in virtual time, with and without daisy chaining.
//!
//! Nothing is mocked between the parts; only the network and the servers'
//! TCP stacks are simulated:
//! - the controller's [`Allocator`](beamer_controller::alloc::Allocator)
//!   owns the buckets, and each commit's [`Diff`](beamer_controller::alloc::Diff)
//!   is written to the software switch batch by batch, the generation
//!   last, as the controller writes it over P4Runtime: each update is
//!   encoded as a `p4.v1.Update`, decoded against the switch's pipeline
//!   and applied through its control-plane API
//!   ([`Switch::apply`](beamer_softswitch::Switch::apply)); only the gRPC
//!   transport is left out;
//! - every client packet is an Ethernet frame that goes through the switch's
//!   batch pipeline ([`Worker::process_batch`](beamer_softswitch::Worker::process_batch));
//! - every encapsulated packet the switch sends is handed to
//!   [`beamer_host::Host::handle`] on the server its outer destination
//!   names; a daisy-chained packet goes on to the next server, bytes as the
//!   host rewrote them;
//! - a server's "stack" is the set of connections it accepted (the same
//!   set is the host's [`LocalConnections`](beamer_host::LocalConnections)
//!   lookup). A non-SYN packet that reaches a stack without its connection
//!   is answered with a RST: the connection **breaks**.
//!
//! Clients keep [`DemoConfig::connections`] connections open, each living
//! [`DemoConfig::min_lifetime_secs`] to [`DemoConfig::max_lifetime_secs`]
//! and sending a packet every few seconds. Some are MPTCP: once the first
//! subflow is up, the server announces its per-server port
//! (ADD_ADDR(VIP, port)) and the client opens a second subflow there, which
//! the switch sends straight to that server. An MPTCP connection survives
//! while one of its subflows does.
//!
//! Meanwhile the operator follows a script ([`plan::plan`]): add a server,
//! drain one, change a weight, remove the drained one, add another. [`run`]
//! plays it once; [`compare`] plays it with chaining on and with chaining
//! off at the hosts (`beamer host --no-chain`), with the same seed, the
//! same switch tables and the same client behaviour, so the only difference
//! is daisy chaining.
//!
//! ```
//! let cfg = beamer_demo::DemoConfig { connections: 200, bucket_bits: 8, ..Default::default() };
//! let on = beamer_demo::run(&cfg, true, &mut |_| {}).unwrap();
//! assert_eq!(on.totals.broken(), 0);
//! assert!(on.steps.iter().filter_map(|s| s.commit.as_ref())
//!     .all(|c| c.report.moved() == c.report.minimum()));
//! ```

pub mod plan;
pub mod report;
mod rng;
mod server;
mod world;

pub use beamer_controller::alloc::ServerState;
pub use beamer_controller::alloc::scenario::StepOutcome;

use beamer_controller::alloc::AllocError;
use beamer_pipeline::params::{MAX_BUCKETS, MIN_BUCKETS};
use std::net::Ipv4Addr;

/// What the demo simulates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoConfig {
    /// Seed of every random choice: the same seed gives the same run.
    pub seed: u64,
    /// Connections the clients keep open at once.
    pub connections: u32,
    /// Servers at the start (the script adds two and removes one).
    pub servers: u8,
    /// k: 2^k buckets.
    pub bucket_bits: u8,
    /// The daisy-chain timeout of controller and hosts, in seconds.
    pub daisy_timeout_secs: u32,
    /// Share of connections that are MPTCP, in percent.
    pub mptcp_percent: u8,
    /// Shortest connection, in seconds.
    pub min_lifetime_secs: u32,
    /// Longest connection, in seconds. Connections shorter than the daisy
    /// timeout are the ones chaining can keep.
    pub max_lifetime_secs: u32,
    /// Longest gap between two packets of a connection, in milliseconds.
    pub max_gap_ms: u32,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            seed: 1,
            connections: 5_000,
            servers: 6,
            bucket_bits: 12,
            daisy_timeout_secs: beamer_pipeline::daisy::DEFAULT_DAISY_TIMEOUT_SECS,
            mptcp_percent: 20,
            min_lifetime_secs: 30,
            max_lifetime_secs: 180,
            max_gap_ms: 8_000,
        }
    }
}

/// Largest number of servers at the start (two are added, 10.0.0.1 up).
pub const MAX_SERVERS: u8 = 250;
/// Smallest number of servers at the start: the script drains server 1
/// and re-weights server 2 while others carry the load.
pub const MIN_SERVERS: u8 = 3;

impl DemoConfig {
    /// Buckets, 2^k.
    pub fn buckets(&self) -> u32 {
        1u32.checked_shl(self.bucket_bits.into()).unwrap_or(0)
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<(), DemoError> {
        if !(MIN_SERVERS..=MAX_SERVERS).contains(&self.servers) {
            return Err(DemoError::Config(format!(
                "servers: {} is out of range ({MIN_SERVERS} to {MAX_SERVERS})",
                self.servers
            )));
        }
        if self.connections == 0 || self.connections > 1_000_000 {
            return Err(DemoError::Config(format!(
                "connections: {} is out of range (1 to 1000000)",
                self.connections
            )));
        }
        if !(MIN_BUCKETS..=MAX_BUCKETS).contains(&self.buckets()) {
            return Err(DemoError::Config(format!(
                "buckets: 2^{} is out of range ({MIN_BUCKETS} to {MAX_BUCKETS})",
                self.bucket_bits
            )));
        }
        if self.daisy_timeout_secs == 0 {
            return Err(DemoError::Config(
                "daisy timeout: must be above 0 (the run without chaining turns it off at the hosts)"
                    .into(),
            ));
        }
        if self.mptcp_percent > 100 {
            return Err(DemoError::Config(format!(
                "mptcp percent: {} is over 100",
                self.mptcp_percent
            )));
        }
        if self.min_lifetime_secs == 0
            || self.min_lifetime_secs > self.max_lifetime_secs
            || !(20..=3_600).contains(&self.max_lifetime_secs)
        {
            return Err(DemoError::Config(format!(
                "lifetimes: {}..{} s (need 1 <= min <= max, max 20 to 3600)",
                self.min_lifetime_secs, self.max_lifetime_secs
            )));
        }
        if !(100..=60_000).contains(&self.max_gap_ms) {
            return Err(DemoError::Config(format!(
                "max gap: {} ms is out of range (100 to 60000)",
                self.max_gap_ms
            )));
        }
        Ok(())
    }
}

/// The demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A field of [`DemoConfig`] is out of range.
    #[error("bad demo configuration: {0}")]
    Config(String),
    /// The allocator refused a step of the script.
    #[error("the controller refused {label:?}: {source}")]
    Alloc {
        /// The step.
        label: String,
        /// Why.
        source: AllocError,
    },
    /// The switch rejected an update the controller computed.
    #[error("the switch rejected {update}: {error}")]
    Switch {
        /// The update.
        update: String,
        /// The switch's error.
        error: String,
    },
    /// A simulated server's host configuration was refused.
    #[error("host {dip}: {source}")]
    Host {
        /// The server.
        dip: Ipv4Addr,
        /// Why.
        source: beamer_host::ConfigError,
    },
}

/// Counts of one run so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Connections opened (first SYN sent).
    pub opened: u64,
    /// Connections open now.
    pub live: u64,
    /// Connections that ended with a FIN every live subflow delivered.
    pub completed: u64,
    /// TCP connections broken: reset by a server without their state, or
    /// with a packet lost for good.
    pub broken_tcp: u64,
    /// MPTCP connections broken: every subflow reset or lost.
    pub broken_mptcp: u64,
    /// MPTCP connections opened.
    pub mptcp_opened: u64,
    /// MPTCP subflows opened to a per-server port and accepted.
    pub joins: u64,
    /// MPTCP subflows reset while their connection survived on another.
    pub subflow_resets: u64,
    /// Client packets sent into the switch.
    pub packets: u64,
    /// Daisy-chain hops (a packet chained twice counts twice).
    pub chained: u64,
    /// Packets the switch dropped.
    pub switch_drops: u64,
    /// Packets a host dropped.
    pub host_drops: u64,
    /// Packets sent to a server that was removed.
    pub to_removed_server: u64,
}

impl Totals {
    /// Connections broken, TCP and MPTCP.
    pub fn broken(&self) -> u64 {
        self.broken_tcp + self.broken_mptcp
    }

    /// Packets lost on the way (switch, hosts, removed servers).
    pub fn lost(&self) -> u64 {
        self.switch_drops + self.host_drops + self.to_removed_server
    }
}

/// One server's share at a point of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLoad {
    /// The server.
    pub dip: Ipv4Addr,
    /// Its state at the controller.
    pub state: ServerState,
    /// Its weight.
    pub weight: u32,
    /// Bucket entries of the switch that name it.
    pub buckets: u32,
    /// Live client connections it accepted.
    pub connections: u32,
    /// Sockets its stack holds (MPTCP subflows count one each).
    pub sockets: u32,
}

/// Something that happened during a run, for progress output.
#[derive(Debug)]
pub enum Event<'a> {
    /// The controller committed a generation: a scripted step, or chains
    /// that timed out.
    Commit {
        /// Virtual seconds since the start.
        t: u32,
        /// The step and its commit.
        outcome: &'a StepOutcome,
        /// The servers' shares after it.
        load: &'a [ServerLoad],
        /// Counts so far.
        totals: &'a Totals,
    },
    /// Periodic progress.
    Tick {
        /// Virtual seconds since the start.
        t: u32,
        /// Counts so far.
        totals: &'a Totals,
    },
}

/// What one run did.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Whether the hosts daisy-chained.
    pub chaining: bool,
    /// Final counts.
    pub totals: Totals,
    /// Every generation the controller committed, scripted or expiry.
    pub steps: Vec<StepOutcome>,
    /// The servers' shares at the end.
    pub load: Vec<ServerLoad>,
    /// Packets the switch sent through per-server ports (MPTCP subflows),
    /// read from the VIP entries' direct counters.
    pub server_port_packets: u64,
    /// Virtual seconds simulated.
    pub virtual_secs: u32,
}

/// The same script with chaining on and off.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// Hosts daisy-chain.
    pub on: RunSummary,
    /// Hosts do not (`--no-chain`).
    pub off: RunSummary,
}

/// Plays the script once. `progress` sees every commit and a tick every
/// 30 virtual seconds.
pub fn run(
    cfg: &DemoConfig,
    chaining: bool,
    progress: &mut dyn FnMut(Event<'_>),
) -> Result<RunSummary, DemoError> {
    cfg.validate()?;
    world::World::new(cfg, chaining)?.run(progress)
}

/// Plays the script with chaining on, then off. `progress` gets the run's
/// chaining flag with each event.
pub fn compare(
    cfg: &DemoConfig,
    progress: &mut dyn FnMut(bool, Event<'_>),
) -> Result<Comparison, DemoError> {
    let on = run(cfg, true, &mut |e| progress(true, e))?;
    let off = run(cfg, false, &mut |e| progress(false, e))?;
    Ok(Comparison { on, off })
}
