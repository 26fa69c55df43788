//! The controller's decisions, sans-IO: operator commands, health
//! verdicts and daisy-chain expiry go in (with the time), allocator
//! commits and the new [`Desired`] state come out.
//!
//! A server is given buckets when the operator wants it active AND its
//! health check (if any) says up. The operator's wish and the health
//! verdict are kept apart, so that a drained server is not brought back by
//! a passing health check, and a server coming back from a failed check
//! returns only if the operator had not drained it meanwhile.

use crate::alloc::{
    AllocConfig, AllocError, Allocator, Change, Commit, Report, ServerSpec, ServerState,
};
use crate::api;
use crate::config::{Config, ServerAdmin};
use crate::health::{Health, HealthConfig, Transition};
use crate::plan::Desired;
use beamer_pipeline::entries::{BucketAction, BucketKey, RouteAction, RouteKey};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

/// An operator command: one allocator [`Change`], and the health check of
/// the server it adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The change. Server changes are checked against the operator's wish
    /// and the health verdict first (draining a server that is draining
    /// already, or setting the weight it has, commits nothing); VIP changes
    /// go to the allocator as they are.
    pub change: Change,
    /// The health check of the server a [`Change::AddServer`] adds, if any;
    /// ignored with any other change.
    pub health: Option<HealthConfig>,
}

impl Command {
    /// Add `server` to VIP `vip_id`, with its health check if any.
    pub fn add_server(vip_id: u16, server: ServerSpec, health: Option<HealthConfig>) -> Self {
        Command {
            change: Change::AddServer { vip_id, server },
            health,
        }
    }
}

/// A command without a health check.
impl From<Change> for Command {
    fn from(change: Change) -> Self {
        Command {
            change,
            health: None,
        }
    }
}

/// What the controller knows about a server beyond the allocator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerMeta {
    /// What the operator wants.
    pub admin: ServerAdmin,
    /// Its health check.
    pub health: Option<HealthConfig>,
    /// The check's verdict (`Up` until it fails).
    pub health_state: Health,
    /// Why the server is not where admin and health say, if it is not.
    pub note: Option<String>,
}

/// What a command, health event or expiry did.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The generation afterwards.
    pub generation: u32,
    /// The commit's report, when a new generation was made.
    pub report: Option<Report>,
    /// A remark for the operator (e.g. "already draining").
    pub note: Option<String>,
}

/// Counters of the controller's decisions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CoreStats {
    /// Generations committed (commands, health, expiry).
    pub commits: u64,
    /// Buckets moved over all commits.
    pub moved: u64,
    /// Commands refused.
    pub refused: u64,
    /// Daisy chains expired.
    pub expired: u64,
}

/// The controller's state and decisions.
#[derive(Debug, Clone)]
pub struct Core {
    alloc: Allocator,
    tunnel_src: Ipv4Addr,
    routes: BTreeMap<RouteKey, RouteAction>,
    meta: BTreeMap<(u16, Ipv4Addr), ServerMeta>,
    desired: Arc<Desired>,
    last: Option<Report>,
    stats: CoreStats,
}

impl Core {
    /// A fresh start from `config` at time `now` (Unix seconds). The
    /// first generation is `after_generation + 1`, so that generations
    /// never go back below what switches hold.
    pub fn new(config: &Config, after_generation: u32, now: u32) -> Result<Core, AllocError> {
        let alloc_cfg = AllocConfig {
            first_generation: after_generation,
            ..config.alloc
        };
        let mut alloc = Allocator::new(alloc_cfg)?;
        let commit = alloc.commit(&config.initial_changes(), now)?;
        Ok(Self::assemble(config, alloc, commit))
    }

    /// A restart that adopts the bucket table a switch holds at
    /// `generation`, so that nothing moves that need not.
    pub fn resume(
        config: &Config,
        installed: impl IntoIterator<Item = (BucketKey, BucketAction)>,
        generation: u32,
        now: u32,
    ) -> Result<Core, AllocError> {
        let alloc_cfg = AllocConfig {
            first_generation: generation,
            ..config.alloc
        };
        let (alloc, commit) =
            Allocator::resume(alloc_cfg, &config.initial_changes(), installed, now)?;
        Ok(Self::assemble(config, alloc, commit))
    }

    fn assemble(config: &Config, alloc: Allocator, commit: Commit) -> Core {
        let routes: BTreeMap<_, _> = config.routes.iter().copied().collect();
        let tunnel_src = config.controller.tunnel_src;
        // Switches are read back at connection anyway: no diff to offer.
        let desired = Arc::new(Desired::from_allocator(&alloc, tunnel_src, &routes, None));
        let meta = config
            .vips
            .iter()
            .flat_map(|v| {
                v.servers.iter().map(move |s| {
                    (
                        (v.spec.vip_id, s.spec.dip),
                        ServerMeta {
                            admin: s.admin,
                            health: s.health,
                            health_state: Health::Up,
                            note: None,
                        },
                    )
                })
            })
            .collect();
        Core {
            alloc,
            tunnel_src,
            routes,
            meta,
            desired,
            stats: CoreStats {
                commits: 1,
                moved: commit.report.moved(),
                ..CoreStats::default()
            },
            last: Some(commit.report),
        }
    }

    /// The allocator.
    pub fn allocator(&self) -> &Allocator {
        &self.alloc
    }

    /// The state every switch must hold now.
    pub fn desired(&self) -> &Arc<Desired> {
        &self.desired
    }

    /// The current generation.
    pub fn generation(&self) -> u32 {
        self.alloc.generation()
    }

    /// When [`Core::expire`] is next due (Unix seconds).
    pub fn next_expiry(&self) -> Option<u32> {
        self.alloc.next_expiry()
    }

    /// Decision counters.
    pub fn stats(&self) -> CoreStats {
        self.stats
    }

    /// Servers with their health checks, for the I/O layer to probe.
    pub fn health_checks(&self) -> impl Iterator<Item = (u16, Ipv4Addr, HealthConfig)> + '_ {
        self.meta
            .iter()
            .filter_map(|(&(v, d), m)| m.health.map(|h| (v, d, h)))
    }

    /// The controller's view of server `dip` of VIP `vip_id`.
    pub fn server_meta(&self, vip_id: u16, dip: Ipv4Addr) -> Option<&ServerMeta> {
        self.meta.get(&(vip_id, dip))
    }

    fn alloc_state(&self, vip_id: u16, dip: Ipv4Addr) -> Result<ServerState, AllocError> {
        self.alloc
            .vip(vip_id)
            .ok_or(AllocError::UnknownVip(vip_id))?
            .server(dip)
            .map(|s| s.state)
            .ok_or(AllocError::UnknownServer { vip_id, dip })
    }

    fn commit(&mut self, changes: &[Change], now: u32) -> Result<Report, AllocError> {
        let c = self.alloc.commit(changes, now)?;
        Ok(self.publish(c))
    }

    fn publish(&mut self, c: Commit) -> Report {
        self.desired = Arc::new(Desired::from_allocator(
            &self.alloc,
            self.tunnel_src,
            &self.routes,
            Some(Arc::new(c.diff)),
        ));
        self.stats.commits += 1;
        self.stats.moved += c.report.moved();
        self.stats.expired += c.report.expired;
        self.last = Some(c.report.clone());
        c.report
    }

    fn no_change(&self, note: impl Into<String>) -> Outcome {
        Outcome {
            generation: self.generation(),
            report: None,
            note: Some(note.into()),
        }
    }

    /// Applies an operator command at `now`. A refused command changes
    /// nothing and says why (the allocator's explanation).
    pub fn apply(&mut self, cmd: &Command, now: u32) -> Result<Outcome, AllocError> {
        let r = self.apply_inner(cmd, now);
        match r {
            Err(_) => self.stats.refused += 1,
            Ok(_) => self.retry_health_drains(now),
        }
        r
    }

    fn apply_inner(&mut self, cmd: &Command, now: u32) -> Result<Outcome, AllocError> {
        match cmd.change {
            Change::AddServer { vip_id, server } => {
                let report = self.commit(std::slice::from_ref(&cmd.change), now)?;
                self.meta.insert(
                    (vip_id, server.dip),
                    ServerMeta {
                        admin: ServerAdmin::Active,
                        health: cmd.health,
                        health_state: Health::Up,
                        note: None,
                    },
                );
                Ok(self.outcome(report))
            }
            Change::RemoveServer { vip_id, dip } => {
                let report = self.commit(std::slice::from_ref(&cmd.change), now)?;
                self.meta.remove(&(vip_id, dip));
                Ok(self.outcome(report))
            }
            Change::DrainServer { vip_id, dip } => {
                let state = self.alloc_state(vip_id, dip)?;
                let meta = self.meta.get(&(vip_id, dip)).cloned();
                if meta
                    .as_ref()
                    .is_some_and(|m| m.admin == ServerAdmin::Draining)
                {
                    return Ok(self.no_change(format!("{dip} is draining already")));
                }
                if state == ServerState::Draining {
                    self.set_admin(vip_id, dip, ServerAdmin::Draining);
                    return Ok(self.no_change(format!(
                        "{dip} holds no buckets already (its health check failed); it stays drained"
                    )));
                }
                let report = self.commit(std::slice::from_ref(&cmd.change), now)?;
                self.set_admin(vip_id, dip, ServerAdmin::Draining);
                Ok(self.outcome(report))
            }
            Change::ActivateServer { vip_id, dip } => {
                let state = self.alloc_state(vip_id, dip)?;
                let health = self
                    .meta
                    .get(&(vip_id, dip))
                    .map_or(Health::Up, |m| m.health_state);
                if state == ServerState::Active {
                    self.set_admin(vip_id, dip, ServerAdmin::Active);
                    return Ok(self.no_change(format!("{dip} is active already")));
                }
                if health == Health::Down {
                    self.set_admin(vip_id, dip, ServerAdmin::Active);
                    return Ok(self.no_change(format!(
                        "{dip} will get buckets once its health check passes"
                    )));
                }
                let report = self.commit(std::slice::from_ref(&cmd.change), now)?;
                self.set_admin(vip_id, dip, ServerAdmin::Active);
                Ok(self.outcome(report))
            }
            Change::SetWeight {
                vip_id,
                dip,
                weight,
            } => {
                let current = self
                    .alloc
                    .vip(vip_id)
                    .ok_or(AllocError::UnknownVip(vip_id))?
                    .server(dip)
                    .ok_or(AllocError::UnknownServer { vip_id, dip })?
                    .weight;
                if current == weight {
                    return Ok(self.no_change(format!("{dip} has weight {weight} already")));
                }
                let report = self.commit(std::slice::from_ref(&cmd.change), now)?;
                Ok(self.outcome(report))
            }
            Change::RemoveVip { vip_id } => {
                let report = self.commit(std::slice::from_ref(&cmd.change), now)?;
                self.meta.retain(|&(v, _), _| v != vip_id);
                Ok(self.outcome(report))
            }
            Change::AddVip(_) => {
                let report = self.commit(std::slice::from_ref(&cmd.change), now)?;
                Ok(self.outcome(report))
            }
        }
    }

    fn outcome(&self, report: Report) -> Outcome {
        Outcome {
            generation: self.generation(),
            report: Some(report),
            note: None,
        }
    }

    fn set_admin(&mut self, vip_id: u16, dip: Ipv4Addr, admin: ServerAdmin) {
        if let Some(m) = self.meta.get_mut(&(vip_id, dip)) {
            m.admin = admin;
        }
    }

    /// A health check's transition for server `dip` of `vip_id` at `now`.
    /// `None` when nothing was committed.
    pub fn health(
        &mut self,
        vip_id: u16,
        dip: Ipv4Addr,
        t: Transition,
        now: u32,
    ) -> Option<Outcome> {
        let state = self.alloc_state(vip_id, dip).ok()?;
        let m = self.meta.get_mut(&(vip_id, dip))?;
        let m_admin = m.admin;
        match t {
            Transition::WentDown => {
                m.health_state = Health::Down;
                if state != ServerState::Active {
                    return None;
                }
                match self.commit(&[Change::DrainServer { vip_id, dip }], now) {
                    Ok(report) => {
                        tracing::warn!(vip_id, %dip, "health check failed: server drained");
                        Some(self.outcome(report))
                    }
                    Err(e) => {
                        tracing::error!(vip_id, %dip, error = %e, "health check failed, but the server cannot be drained: kept");
                        self.note(vip_id, dip, format!("failing its health check, kept: {e}"));
                        None
                    }
                }
            }
            Transition::CameUp => {
                m.health_state = Health::Up;
                m.note = None;
                if state != ServerState::Draining || m_admin != ServerAdmin::Active {
                    return None;
                }
                let report = self
                    .commit(&[Change::ActivateServer { vip_id, dip }], now)
                    .ok()?;
                tracing::info!(vip_id, %dip, "health check passes again: server active");
                self.retry_health_drains(now);
                Some(self.outcome(report))
            }
        }
    }

    fn note(&mut self, vip_id: u16, dip: Ipv4Addr, note: String) {
        if let Some(m) = self.meta.get_mut(&(vip_id, dip)) {
            m.note = Some(note);
        }
    }

    /// Drains servers that failed their check but were kept because
    /// draining them was refused (the VIP's last active server), now that
    /// the allocator may allow it.
    fn retry_health_drains(&mut self, now: u32) {
        let pending: Vec<(u16, Ipv4Addr)> = self
            .meta
            .iter()
            .filter(|(_, m)| m.health_state == Health::Down)
            .map(|(&k, _)| k)
            .filter(|&(v, d)| self.alloc_state(v, d) == Ok(ServerState::Active))
            .collect();
        for (vip_id, dip) in pending {
            if self
                .commit(&[Change::DrainServer { vip_id, dip }], now)
                .is_ok()
            {
                tracing::warn!(vip_id, %dip, "failing server drained now that the VIP has another");
                if let Some(m) = self.meta.get_mut(&(vip_id, dip)) {
                    m.note = None;
                }
            }
        }
    }

    /// Clears the daisy chains due by `now`; a new generation if any was.
    pub fn expire(&mut self, now: u32) -> Option<Outcome> {
        match self.alloc.expire(now) {
            Ok(Some(c)) => {
                let report = self.publish(c);
                Some(self.outcome(report))
            }
            Ok(None) => None,
            Err(e) => {
                tracing::error!(error = %e, "expiry failed");
                None
            }
        }
    }

    /// The status of VIPs and servers (switches are added by the caller).
    pub fn status(&self) -> api::Status {
        let vips = self
            .alloc
            .vips()
            .map(|v| {
                let counts = v.counts();
                let total: u64 = v
                    .servers()
                    .filter(|s| s.state == ServerState::Active)
                    .map(|s| u64::from(s.weight))
                    .sum();
                let n = v.buckets().len() as u32;
                let servers = v
                    .servers()
                    .map(|s| {
                        let m = self.meta.get(&(v.vip_id(), s.dip));
                        api::ServerStatus {
                            dip: s.dip,
                            port: s.port,
                            weight: s.weight,
                            admin: match m.map_or(ServerAdmin::Active, |m| m.admin) {
                                ServerAdmin::Active => "active".into(),
                                ServerAdmin::Draining => "draining".into(),
                            },
                            health: m
                                .filter(|m| m.health.is_some())
                                .map(|m| m.health_state.name().to_string()),
                            state: s.state.name().to_string(),
                            buckets: counts.get(&s.dip).copied().unwrap_or(0),
                            ideal: if s.state == ServerState::Active && total > 0 {
                                f64::from(n) * f64::from(s.weight) / total as f64
                            } else {
                                0.0
                            },
                            note: m.and_then(|m| m.note.clone()),
                        }
                    })
                    .collect();
                api::VipStatus {
                    id: v.vip_id(),
                    address: v.addr(),
                    ports: v
                        .spec()
                        .service_ports
                        .iter()
                        .map(|p| p.to_string())
                        .collect(),
                    buckets: n,
                    chained: v.buckets().iter().filter(|b| b.has_chain()).count() as u32,
                    servers,
                }
            })
            .collect();
        api::Status {
            generation: self.generation(),
            daisy_timeout: self.alloc.config().daisy_timeout,
            next_expiry: self.next_expiry(),
            vips,
            switches: Vec::new(),
            last_commit: self.last.as_ref().map(|r| r.to_string()),
        }
    }
}

#[cfg(test)]
mod tests;
