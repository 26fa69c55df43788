//! The running controller: the tokio glue around [`Core`].
//!
//! - one task owns the [`Core`]: it takes operator commands and health
//!   transitions from channels, wakes up when the next daisy chain is due,
//!   and publishes every new desired state on a `watch`;
//! - one task per switch follows that `watch` ([`crate::switch::task`]);
//! - one task per health-checked server probes it ([`crate::health`]);
//! - the admin API and the metrics are served over HTTP ([`crate::admin`]).
//!
//! At start the switches are read back (for up to `startup_timeout`) so
//! that a controller restart adopts the bucket table they hold
//! ([`Core::resume`]) and never sends a generation backwards.

use crate::alloc::AllocError;
use crate::api;
use crate::config::{Config, SwitchSpec};
use crate::core::{Command, Core, CoreStats, Outcome};
use crate::health::{self, HealthConfig, Transition};
use crate::plan::{Desired, Installed};
use crate::switch::client::Client;
use crate::switch::task::{self, SwitchHandle};
use crate::switch::{SwitchCounters, SwitchStatus};
use beamer_pipeline::entries::EntryKey;
use beamer_pipeline::p4rt::EntryAction;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// Unix time in seconds, as the allocator counts it.
pub fn unix_now() -> u32 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs().min(u64::from(u32::MAX)) as u32)
}

enum Request {
    Command(Command, oneshot::Sender<Result<Outcome, AllocError>>),
    Status(oneshot::Sender<(api::Status, CoreStats)>),
}

struct HealthEvent {
    vip_id: u16,
    dip: Ipv4Addr,
    transition: Transition,
}

/// A VIP's fixed facts, for resolving names in commands.
#[derive(Debug, Clone)]
struct VipFacts {
    id: u16,
    addr: Ipv4Addr,
    first_tcp_port: Option<u16>,
}

struct Shared {
    switches: Vec<(watch::Receiver<SwitchStatus>, Arc<SwitchCounters>)>,
    desired: watch::Receiver<Arc<Desired>>,
    vips: Vec<VipFacts>,
}

/// A cheap handle to a running controller: commands, status, desired
/// state, switch statuses.
#[derive(Clone)]
pub struct Handle {
    tx: mpsc::Sender<Request>,
    shared: Arc<Shared>,
}

/// Why a command did not go through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The allocator refused it (nothing changed).
    #[error("{0}")]
    Refused(#[from] AllocError),
    /// No VIP has this id or address.
    #[error("no VIP {0:?}")]
    NoSuchVip(String),
    /// The command is malformed.
    #[error("{0}")]
    Invalid(String),
    /// The controller is shutting down.
    #[error("the controller is shutting down")]
    Stopped,
}

impl Handle {
    /// Applies a command and returns what it did.
    pub async fn command(&self, cmd: Command) -> Result<Outcome, CommandError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Request::Command(cmd, tx))
            .await
            .map_err(|_| CommandError::Stopped)?;
        rx.await
            .map_err(|_| CommandError::Stopped)?
            .map_err(CommandError::Refused)
    }

    /// The VIP id named by `vip` (an id or an address).
    pub fn resolve_vip(&self, vip: &str) -> Result<u16, CommandError> {
        let found = match vip.parse::<u16>() {
            Ok(id) => self.shared.vips.iter().find(|v| v.id == id),
            Err(_) => vip
                .parse::<Ipv4Addr>()
                .ok()
                .and_then(|a| self.shared.vips.iter().find(|v| v.addr == a)),
        };
        found
            .map(|v| v.id)
            .ok_or_else(|| CommandError::NoSuchVip(vip.to_string()))
    }

    /// A health check for a server of `vip_id` as the API gives it.
    pub fn health_config(
        &self,
        vip_id: u16,
        spec: &api::HealthSpec,
    ) -> Result<HealthConfig, CommandError> {
        let vip = self.shared.vips.iter().find(|v| v.id == vip_id);
        let port = spec
            .port
            .or_else(|| vip.and_then(|v| v.first_tcp_port))
            .ok_or_else(|| {
                CommandError::Invalid("the VIP has no TCP service port: give health.port".into())
            })?;
        let d = HealthConfig::new(port);
        let cfg = HealthConfig {
            port,
            interval: spec.interval_ms.map_or(d.interval, Duration::from_millis),
            timeout: spec.timeout_ms.map_or(d.timeout, Duration::from_millis),
            fall: spec.fall.unwrap_or(d.fall),
            rise: spec.rise.unwrap_or(d.rise),
            ..d
        };
        if port == 0
            || cfg.interval.is_zero()
            || cfg.timeout.is_zero()
            || cfg.fall == 0
            || cfg.rise == 0
        {
            return Err(CommandError::Invalid(
                "health: port, interval, timeout, fall and rise must be above 0".into(),
            ));
        }
        Ok(cfg)
    }

    /// Controller and switch status.
    pub async fn status(&self) -> Result<(api::Status, CoreStats), CommandError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Request::Status(tx))
            .await
            .map_err(|_| CommandError::Stopped)?;
        let (mut status, stats) = rx.await.map_err(|_| CommandError::Stopped)?;
        status.switches = self.switch_statuses();
        Ok((status, stats))
    }

    /// Every switch's current status.
    pub fn switch_statuses(&self) -> Vec<SwitchStatus> {
        self.shared
            .switches
            .iter()
            .map(|(s, _)| s.borrow().clone())
            .collect()
    }

    /// Watches of every switch's status, in configuration order.
    pub fn watch_switches(&self) -> Vec<watch::Receiver<SwitchStatus>> {
        self.shared
            .switches
            .iter()
            .map(|(s, _)| s.clone())
            .collect()
    }

    /// Every switch's counters, with its name.
    pub fn switch_counters(&self) -> Vec<(String, Arc<SwitchCounters>)> {
        self.shared
            .switches
            .iter()
            .map(|(s, c)| (s.borrow().name.clone(), c.clone()))
            .collect()
    }

    /// The state every switch must hold now.
    pub fn desired(&self) -> Arc<Desired> {
        self.shared.desired.borrow().clone()
    }

    /// Waits until every switch holds generation `generation` (or a
    /// later one); false on timeout.
    pub async fn wait_in_sync(&self, generation: u32, timeout: Duration) -> bool {
        let all = async {
            for (s, _) in &self.shared.switches {
                let mut s = s.clone();
                let ok = s
                    .wait_for(|st| {
                        matches!(st.state, crate::switch::SyncState::InSync { generation: g } if g >= generation)
                    })
                    .await
                    .is_ok();
                if !ok {
                    return false;
                }
            }
            true
        };
        tokio::time::timeout(timeout, all).await.unwrap_or(false)
    }
}

/// A running controller.
pub struct Running {
    /// Its handle.
    pub handle: Handle,
    /// Where the admin API listens (the port actually bound).
    pub admin_addr: SocketAddr,
    /// Where the metrics are served.
    pub metrics_addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
    _switches: Vec<SwitchHandle>,
}

impl Running {
    /// Stops every task of the controller. The switches keep what they
    /// hold.
    pub fn shutdown(self) {
        for t in &self.tasks {
            t.abort();
        }
    }

    /// Waits until the controller stops (it runs until shut down).
    pub async fn wait(mut self) {
        if let Some(t) = self.tasks.pop() {
            let _ = t.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// What a switch reported at start: its generation and bucket table.
struct Reported {
    name: String,
    generation: u32,
    installed: Installed,
}

async fn read_switch(spec: SwitchSpec, config: Arc<Config>) -> Result<Reported, String> {
    let s = &config.controller;
    let mut c = Client::connect(&spec, s.election_id, s.connect_timeout, s.rpc_timeout)
        .await
        .map_err(|e| e.to_string())?;
    let installed = c.read_installed().await.map_err(|e| e.to_string())?;
    Ok(Reported {
        name: spec.name.clone(),
        generation: installed.config.map_or(0, |c| c.generation),
        installed,
    })
}

/// The starting state: adopt what the most advanced switch holds, or
/// start fresh above every generation seen.
async fn initial_core(config: Arc<Config>) -> anyhow::Result<Core> {
    let reads = config
        .switches
        .iter()
        .map(|s| read_switch(s.clone(), config.clone()));
    let results = tokio::time::timeout(
        config.controller.startup_timeout,
        futures_join_all(reads.collect()),
    )
    .await
    .unwrap_or_default();
    let mut best: Option<Reported> = None;
    for r in results {
        match r {
            Ok(rep) => {
                tracing::info!(switch = %rep.name, generation = rep.generation, entries = rep.installed.entries.len(), "switch reported its tables");
                if best.as_ref().is_none_or(|b| rep.generation > b.generation) {
                    best = Some(rep);
                }
            }
            Err(e) => tracing::info!(error = %e, "no tables read at start"),
        }
    }
    let now = unix_now();
    if let Some(b) = best {
        let buckets: Vec<_> = b
            .installed
            .entries
            .iter()
            .filter_map(|(k, a)| match (k, a) {
                (EntryKey::Bucket(k), Some(EntryAction::Bucket(a))) => Some((*k, *a)),
                _ => None,
            })
            .collect();
        if !buckets.is_empty() {
            match Core::resume(&config, buckets, b.generation, now) {
                Ok(core) => {
                    tracing::info!(switch = %b.name, generation = core.generation(), "resumed from the switch's bucket table");
                    return Ok(core);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot resume from the switch's tables; starting fresh")
                }
            }
        }
        return Ok(Core::new(&config, b.generation, now)?);
    }
    Ok(Core::new(&config, 0, now)?)
}

/// Runs futures concurrently and collects their outputs in order.
async fn futures_join_all<F: Future<Output = T> + Send + 'static, T: Send + 'static>(
    futs: Vec<F>,
) -> Vec<T> {
    let handles: Vec<_> = futs.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        if let Ok(v) = h.await {
            out.push(v);
        }
    }
    out
}

/// Starts the controller: reads the switches back, commits the
/// configuration, starts the switch tasks, health checks, the admin API and
/// metrics.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let config = Arc::new(config);
    let core = initial_core(config.clone()).await?;
    tracing::info!(generation = core.generation(), "configuration committed");
    if let Some(r) = core.status().last_commit {
        tracing::info!("{}", r.trim_end());
    }

    let (desired_tx, desired_rx) = watch::channel(core.desired().clone());
    let switches: Vec<SwitchHandle> = config
        .switches
        .iter()
        .map(|s| task::spawn(s.clone(), config.controller.clone(), desired_rx.clone()))
        .collect();
    let vips = config
        .vips
        .iter()
        .map(|v| VipFacts {
            id: v.spec.vip_id,
            addr: v.spec.addr,
            first_tcp_port: v
                .spec
                .service_ports
                .iter()
                .find(|p| p.protocol == beamer_pipeline::wire::ipv4::PROTO_TCP)
                .map(|p| p.port),
        })
        .collect();
    let shared = Arc::new(Shared {
        switches: switches
            .iter()
            .map(|s| (s.status.clone(), s.counters.clone()))
            .collect(),
        desired: desired_rx,
        vips,
    });
    let (tx, rx) = mpsc::channel(64);
    let handle = Handle { tx, shared };

    let admin = tokio::net::TcpListener::bind(config.controller.admin_listen)
        .await
        .map_err(|e| anyhow::anyhow!("admin API on {}: {e}", config.controller.admin_listen))?;
    let metrics = tokio::net::TcpListener::bind(config.controller.metrics_listen)
        .await
        .map_err(|e| anyhow::anyhow!("metrics on {}: {e}", config.controller.metrics_listen))?;
    let admin_addr = admin.local_addr()?;
    let metrics_addr = metrics.local_addr()?;
    tracing::info!(%admin_addr, %metrics_addr, "admin API and metrics listening");

    let mut tasks = Vec::new();
    {
        let h = handle.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = axum::serve(admin, crate::admin::router(h)).await {
                tracing::error!(error = %e, "admin API stopped");
            }
        }));
        let h = handle.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = axum::serve(metrics, crate::admin::metrics_router(h)).await {
                tracing::error!(error = %e, "metrics server stopped");
            }
        }));
    }
    // The brain goes last: `Running::wait` waits for it.
    tasks.push(tokio::spawn(brain(core, rx, desired_tx)));
    Ok(Running {
        handle,
        admin_addr,
        metrics_addr,
        tasks,
        _switches: switches,
    })
}

/// The task that owns the [`Core`].
async fn brain(
    mut core: Core,
    mut rx: mpsc::Receiver<Request>,
    desired: watch::Sender<Arc<Desired>>,
) {
    let (health_tx, mut health_rx) = mpsc::unbounded_channel::<HealthEvent>();
    let mut checks: HashMap<(u16, Ipv4Addr), JoinHandle<()>> = HashMap::new();
    let sync_checks = |core: &Core, checks: &mut HashMap<(u16, Ipv4Addr), JoinHandle<()>>| {
        let wanted: HashMap<(u16, Ipv4Addr), HealthConfig> =
            core.health_checks().map(|(v, d, h)| ((v, d), h)).collect();
        checks.retain(|k, t| {
            let keep = wanted.contains_key(k);
            if !keep {
                t.abort();
            }
            keep
        });
        for (&(vip_id, dip), &cfg) in &wanted {
            checks.entry((vip_id, dip)).or_insert_with(|| {
                let tx = health_tx.clone();
                let addr = SocketAddr::new(dip.into(), cfg.port);
                tracing::info!(vip_id, %dip, port = cfg.port, "health check started");
                tokio::spawn(health::run_checks(addr, cfg, move |t, m| {
                    tracing::info!(vip_id, %dip, transition = ?t, hold_down = ?m.hold_down(), flaps = m.flaps(), "health transition");
                    let _ = tx.send(HealthEvent {
                        vip_id,
                        dip,
                        transition: t,
                    });
                }))
            });
        }
    };
    sync_checks(&core, &mut checks);
    let publish = |core: &Core| {
        let d = core.desired();
        if !Arc::ptr_eq(d, &desired.borrow()) {
            desired.send_replace(d.clone());
        }
    };

    loop {
        let expiry = core.next_expiry();
        let wake = async {
            match expiry {
                Some(t) => {
                    let now_ms = crate::switch::unix_ms();
                    let due_ms = u64::from(t) * 1000;
                    tokio::time::sleep(Duration::from_millis(due_ms.saturating_sub(now_ms) + 5))
                        .await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            req = rx.recv() => match req {
                None => break,
                Some(Request::Command(cmd, reply)) => {
                    let r = core.apply(&cmd, unix_now());
                    match &r {
                        Ok(o) => {
                            if let Some(rep) = &o.report {
                                tracing::info!(command = ?cmd, generation = o.generation, moved = rep.moved(), minimum = rep.minimum(), "committed");
                            } else {
                                tracing::info!(command = ?cmd, note = ?o.note, "nothing to commit");
                            }
                        }
                        Err(e) => tracing::warn!(command = ?cmd, error = %e, "command refused"),
                    }
                    publish(&core);
                    sync_checks(&core, &mut checks);
                    let _ = reply.send(r);
                }
                Some(Request::Status(reply)) => {
                    let _ = reply.send((core.status(), core.stats()));
                }
            },
            Some(ev) = health_rx.recv() => {
                if let Some(o) = core.health(ev.vip_id, ev.dip, ev.transition, unix_now()) {
                    tracing::info!(generation = o.generation, "health change committed");
                }
                publish(&core);
            }
            _ = wake => {
                if let Some(o) = core.expire(unix_now()) {
                    let n = o.report.as_ref().map_or(0, |r| r.expired);
                    tracing::info!(generation = o.generation, expired = n, "daisy chains expired");
                }
                publish(&core);
            }
        }
    }
    for t in checks.values() {
        t.abort();
    }
}
