//! The bucket allocator: which server each bucket of each VIP goes to.
//!
//! Pure, deterministic and sans-IO. The caller passes the time (Unix
//! seconds) into every call; the allocator never reads a clock, a socket or
//! a file. Its output is the desired content of the switches' VIP and bucket
//! tables, the [`Diff`] from the previous generation in a safe write order,
//! and a [`Report`] of what moved.
//!
//! # Rules
//! - **Balance.** An active server holds `floor(q)` or `ceil(q)` of its VIP's
//!   N buckets, `q = N * weight / total active weight`. Draining and removed
//!   servers hold none. See [`apportion`].
//! - **Minimal movement.** Of all balanced outcomes the allocator picks one
//!   closest to the current counts, and moves exactly
//!   `sum max(0, before - after)` buckets, every one from a server that
//!   loses to a server that gains: no balanced outcome moves fewer. Among
//!   equally close outcomes, the servers the commit changed (added,
//!   activated, re-weighted) absorb the rounding. So adding a server moves
//!   buckets only to it, and removing or draining one moves only its
//!   buckets, whenever some balanced outcome allows that. (Not always: after
//!   a history of sticky choices, balance can force an old server to gain
//!   or lose one bucket; balance wins. The property tests check the rule
//!   against a brute-force search of the balanced outcomes.)
//! - **Least recently changed first.** A server that gives up k buckets gives
//!   the k whose server changed longest ago (by generation; then those
//!   whose move loses no live chain; then by bucket number), so a bucket
//!   whose previous DIP is still in use keeps it if possible. A moved
//!   bucket goes back to its previous server when that server gains.
//!   [`VipReport::chains_broken`] counts the live chains that were lost.
//! - **Chaining.** A moved bucket gets `prev_dip` = the server it left and
//!   `change_time` = now, so the new server can pass unknown connections
//!   back. Change times strictly increase from commit to commit (a second
//!   commit within the same second is stamped a second later), because a
//!   host learns only from a strictly newer change time. After the
//!   daisy-chain timeout the chain is cleared (`prev_dip` = 0,
//!   `change_time` = 0, as the pipeline spec requires);
//!   [`Allocator::next_expiry`] says when, so the I/O layer can sleep until
//!   then and call [`Allocator::expire`].
//! - **Removed servers are never chained to.** A removed server is gone:
//!   chaining to it only makes clients wait for a timeout instead of the
//!   new server's immediate RST. So a bucket moved off a removed server gets
//!   no chain, except that it keeps the removed server's own unexpired
//!   previous DIP (with its original change time) when that server is still
//!   alive: connections that were being chained through the dead server
//!   keep working. And every other bucket whose `prev_dip` is the removed
//!   server has its chain cleared in the same generation. No bucket ever
//!   names a removed server. A draining server is alive and is chained to.
//! - **Generations.** Every successful commit, and every expiry that clears
//!   a chain, is a new generation, strictly increasing. Expiry bumps it too
//!   so that "every switch holds generation g" always means "every switch
//!   holds the same tables", which is how the I/O layer tracks sync.
//! - **Refusals.** A commit is all or nothing. It is refused, changing
//!   nothing, when any change is invalid or when it would leave a VIP with
//!   no active server; see [`AllocError`].
//!
//! A daisy-chain timeout of 0 disables chaining: moved buckets get no
//! previous DIP (the "without chaining" baseline of the demo).
//!
//! # Use
//! ```
//! use beamer_controller::alloc::*;
//! use std::net::Ipv4Addr;
//!
//! let mut a = Allocator::new(AllocConfig { bucket_bits: 4, ..AllocConfig::default() }).unwrap();
//! let vip = VipSpec { vip_id: 0, addr: Ipv4Addr::new(192, 0, 2, 1), service_ports: vec![ServicePort::tcp(80)] };
//! let server = |d, port| ServerSpec { dip: Ipv4Addr::new(10, 0, 0, d), port: Some(port), weight: 1 };
//! let c = a.commit(&[
//!     Change::AddVip(vip),
//!     Change::AddServer { vip_id: 0, server: server(1, 9001) },
//!     Change::AddServer { vip_id: 0, server: server(2, 9002) },
//! ], 1_000).unwrap();
//! assert_eq!(c.generation, 1);
//! let c = a.commit(&[Change::AddServer { vip_id: 0, server: server(3, 9003) }], 1_010).unwrap();
//! assert_eq!((c.report.moved(), c.report.minimum()), (5, 5));
//! assert_eq!(a.next_expiry(), Some(1_010 + DEFAULT_DAISY_TIMEOUT));
//! ```

pub mod apportion;
mod diff;
mod error;
mod model;
mod report;
pub mod scenario;

pub use apportion::Ideal;
pub use diff::Diff;
pub(crate) use diff::Phases;
pub use error::{AllocError, PortUser};
pub use model::{BucketState, Change, Server, ServerSpec, ServerState, ServicePort, Vip, VipSpec};
pub use report::{Report, ServerShare, VipReport};

use apportion::Claim;
use beamer_pipeline::PipelineParams;
use beamer_pipeline::entries::{BucketAction, BucketKey, VipAction, VipKey};
use beamer_pipeline::params::{MAX_BUCKETS, MIN_BUCKETS};
use beamer_pipeline::wire::ipv4::{PROTO_TCP, PROTO_UDP};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::net::Ipv4Addr;

pub use beamer_pipeline::daisy::DEFAULT_DAISY_TIMEOUT_SECS as DEFAULT_DAISY_TIMEOUT;

/// The allocator's fixed settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllocConfig {
    /// k: every VIP has 2^k buckets (the bucket key's width in the P4Info).
    pub bucket_bits: u8,
    /// Bucket sets the pipeline holds: VIP IDs are below this.
    pub max_vips: u32,
    /// Entries the VIP table holds (service ports plus per-server ports).
    pub max_vip_entries: u32,
    /// Seconds a moved bucket keeps its previous DIP; 0 disables chaining.
    pub daisy_timeout: u32,
    /// The generation the switches hold before the first commit; the first
    /// commit produces the next one. Set it to what the switches report
    /// after a controller restart, so generations never go back.
    pub first_generation: u32,
}

impl AllocConfig {
    /// Settings for a pipeline generated with `params`, default timeout.
    pub fn new(params: &PipelineParams) -> Self {
        AllocConfig {
            bucket_bits: params.bucket_bits(),
            max_vips: params.max_vips,
            max_vip_entries: params.max_vip_entries,
            daisy_timeout: DEFAULT_DAISY_TIMEOUT,
            first_generation: 0,
        }
    }

    /// Buckets per VIP, 2^k.
    pub fn buckets(&self) -> u32 {
        1u32.checked_shl(self.bucket_bits.into()).unwrap_or(0)
    }
}

impl Default for AllocConfig {
    /// The default pipeline's sizes.
    fn default() -> Self {
        AllocConfig::new(&PipelineParams::default())
    }
}

/// The outcome of a commit or an expiry: a new generation, what to write,
/// and what moved.
#[derive(Debug, Clone, PartialEq)]
pub struct Commit {
    /// The new generation; write it to each switch after `diff`.
    pub generation: u32,
    /// The table updates since the previous generation.
    pub diff: Diff,
    /// Movement and balance, per VIP touched.
    pub report: Report,
}

/// The bucket allocator. See the [module documentation](self).
#[derive(Debug, Clone)]
pub struct Allocator {
    config: AllocConfig,
    vips: BTreeMap<u16, Vip>,
    generation: u32,
    /// The latest time seen; time never goes back inside the allocator.
    clock: u32,
    /// The latest change time written.
    last_stamp: u32,
    next_expiry: Option<u32>,
}

impl Allocator {
    /// An allocator with no VIPs, at generation `config.first_generation`.
    pub fn new(config: AllocConfig) -> Result<Self, AllocError> {
        let n = config.buckets();
        if !(MIN_BUCKETS..=MAX_BUCKETS).contains(&n) {
            return Err(AllocError::BucketBits {
                bits: config.bucket_bits,
                min: MIN_BUCKETS,
                max: MAX_BUCKETS,
            });
        }
        Ok(Allocator {
            config,
            vips: BTreeMap::new(),
            generation: config.first_generation,
            clock: 1,
            last_stamp: 0,
            next_expiry: None,
        })
    }

    /// The settings.
    pub fn config(&self) -> &AllocConfig {
        &self.config
    }

    /// The current generation (of the last commit or expiry).
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// Every VIP, by ID.
    pub fn vips(&self) -> impl Iterator<Item = &Vip> {
        self.vips.values()
    }

    /// The VIP `vip_id`.
    pub fn vip(&self, vip_id: u16) -> Option<&Vip> {
        self.vips.get(&vip_id)
    }

    /// The latest time seen (Unix seconds): the time of the last commit or
    /// expiry, which may be ahead of the caller's clock (see
    /// [`Allocator::commit`]).
    pub fn clock(&self) -> u32 {
        self.clock
    }

    /// When the next daisy chain times out (Unix seconds): call
    /// [`Allocator::expire`] then. `None` when no bucket has a chain.
    pub fn next_expiry(&self) -> Option<u32> {
        self.next_expiry
    }

    /// Every VIP table entry of the desired state.
    pub fn vip_entries(&self) -> impl Iterator<Item = (VipKey, VipAction)> + '_ {
        self.vips.values().flat_map(Vip::vip_entries)
    }

    /// Every bucket table entry of the desired state.
    pub fn bucket_entries(&self) -> impl Iterator<Item = (BucketKey, BucketAction)> + '_ {
        self.vips.values().flat_map(Vip::bucket_entries)
    }

    /// The whole desired state as inserts into empty tables, in a safe
    /// order: for a switch that came back empty.
    pub fn full_state(&self) -> Diff {
        diff::diff(&BTreeMap::new(), &self.vips)
    }

    fn now(&self, now: u32) -> u32 {
        now.max(self.clock)
    }

    /// The change time a commit gives its moves: `now`, or just after the
    /// last change time written if that is not earlier.
    fn stamp(&self, now: u32) -> u32 {
        now.max(self.last_stamp.saturating_add(1))
    }

    fn next_generation(&self) -> Result<u32, AllocError> {
        self.generation
            .checked_add(1)
            .ok_or(AllocError::GenerationExhausted(self.generation))
    }

    /// Applies a batch of changes at time `now` (Unix seconds). All or
    /// nothing: on error nothing changes. Chains due by `now` expire in the
    /// same generation.
    ///
    /// Time never goes back: a `now` earlier than one already seen counts
    /// as that one. Change times strictly increase, because a host learns a
    /// previous DIP only from a strictly newer change time: moves in the
    /// same second as the last change time written are stamped one second
    /// later ([`Report::stamp`]), so change times run ahead of the clock by
    /// at most the number of such commits, until real time catches up.
    pub fn commit(&mut self, changes: &[Change], now: u32) -> Result<Commit, AllocError> {
        if changes.is_empty() {
            return Err(AllocError::EmptyCommit);
        }
        let generation = self.next_generation()?;
        let now = self.now(now);
        let stamp = self.stamp(now);
        let timeout = self.config.daisy_timeout;
        let mut next = self.vips.clone();
        let expired = expire_due(&mut next, now, timeout);

        let mut batch = Batch::default();
        for c in changes {
            self.apply(&mut next, c, &mut batch)?;
        }
        self.validate(&next)?;

        let mut vips = Vec::new();
        for id in &batch.touched {
            let Some(v) = next.get_mut(id) else { continue };
            let before = if batch.fresh.contains(id) {
                None
            } else {
                self.vips.get(id)
            };
            let removed = batch.removed.get(id);
            let changed = batch.changed.get(id);
            vips.push(rebalance(
                v, before, removed, changed, generation, stamp, timeout,
            ));
        }

        Ok(self.install(next, generation, now, stamp, expired, vips))
    }

    /// Starts from the bucket table a switch holds, so that a controller
    /// restart moves no bucket that need not move.
    ///
    /// `changes` declare the VIPs and servers (from the configuration file:
    /// `AddVip`, `AddServer`, then `DrainServer` for draining ones);
    /// `installed` is the bucket table read back from the switch, and
    /// `config.first_generation` the generation it reported. The installed
    /// mapping is adopted where it names servers of the configuration;
    /// buckets on unknown servers move as if those servers had been removed,
    /// missing buckets are assigned, chains to unknown servers or past the
    /// timeout are cleared, and shares are rebalanced for the configuration.
    /// Entries of unknown VIPs or beyond the bucket count are ignored (the
    /// I/O layer deletes what is not desired).
    ///
    /// The returned commit is the next generation; its diff is relative to
    /// `installed` (VIP table entries are taken as already matching the
    /// configuration). Chained buckets count as changed in the reported
    /// generation, the others as changed long ago, for the order in which
    /// buckets move later.
    pub fn resume(
        config: AllocConfig,
        changes: &[Change],
        installed: impl IntoIterator<Item = (BucketKey, BucketAction)>,
        now: u32,
    ) -> Result<(Allocator, Commit), AllocError> {
        let mut a = Allocator::new(config)?;
        if changes.is_empty() {
            return Err(AllocError::EmptyCommit);
        }
        let generation = a.next_generation()?;
        let mut next = BTreeMap::new();
        let mut batch = Batch::default();
        for c in changes {
            a.apply(&mut next, c, &mut batch)?;
        }
        a.validate(&next)?;

        for (k, act) in installed {
            let Some(b) = next
                .get_mut(&k.vip_id)
                .and_then(|v| v.buckets.get_mut(k.bucket as usize))
            else {
                continue;
            };
            if act.dip.is_unspecified() {
                continue;
            }
            *b = BucketState {
                dip: act.dip,
                prev_dip: act.prev_dip,
                change_time: act.change_time,
                changed_in: if act.prev_dip.is_unspecified() {
                    0
                } else {
                    config.first_generation
                },
            };
        }
        let seeded = next.clone();
        let timeout = config.daisy_timeout;
        for b in next.values_mut().flat_map(|v| v.buckets.iter_mut()) {
            // Keep only chains the pipeline spec allows, and change times
            // no further ahead than this allocator could have stamped.
            if b.prev_dip.is_unspecified()
                || b.change_time == 0
                || b.prev_dip == b.dip
                || b.change_time > now.saturating_add(timeout)
            {
                b.clear_chain();
            } else {
                a.last_stamp = a.last_stamp.max(b.change_time);
            }
        }
        let now = a.now(now);
        let stamp = a.stamp(now);
        let expired = expire_due(&mut next, now, timeout);
        let mut vips = Vec::new();
        for (id, v) in next.iter_mut() {
            vips.push(rebalance(
                v,
                seeded.get(id),
                None,
                None,
                generation,
                stamp,
                timeout,
            ));
        }
        a.vips = seeded;
        let c = a.install(next, generation, now, stamp, expired, vips);
        Ok((a, c))
    }

    /// Clears the chains that are due by `now` (Unix seconds). Returns a new
    /// generation when any was, `None` (and no new generation) otherwise.
    pub fn expire(&mut self, now: u32) -> Result<Option<Commit>, AllocError> {
        let now = self.now(now);
        if self.next_expiry.is_none_or(|t| t > now) {
            self.clock = now;
            return Ok(None);
        }
        let generation = self.next_generation()?;
        let mut next = self.vips.clone();
        let expired = expire_due(&mut next, now, self.config.daisy_timeout);
        Ok(Some(self.install(
            next,
            generation,
            now,
            now,
            expired,
            Vec::new(),
        )))
    }

    fn install(
        &mut self,
        next: BTreeMap<u16, Vip>,
        generation: u32,
        now: u32,
        stamp: u32,
        expired: u64,
        vips: Vec<VipReport>,
    ) -> Commit {
        let diff = diff::diff(&self.vips, &next);
        self.vips = next;
        self.generation = generation;
        self.clock = now;
        let timeout = self.config.daisy_timeout;
        let (mut first, mut last) = (u32::MAX, 0);
        for b in self.vips.values().flat_map(|v| v.buckets.iter()) {
            if b.change_time != 0 {
                first = first.min(b.change_time);
                last = last.max(b.change_time);
            }
        }
        self.next_expiry = (last != 0).then(|| first.saturating_add(timeout));
        self.last_stamp = self.last_stamp.max(last);
        Commit {
            generation,
            diff,
            report: Report {
                generation,
                now,
                stamp,
                expired,
                vips,
            },
        }
    }

    /// Applies one change to `next`, checking what can be checked alone.
    fn apply(
        &self,
        next: &mut BTreeMap<u16, Vip>,
        change: &Change,
        batch: &mut Batch,
    ) -> Result<(), AllocError> {
        match change {
            Change::AddVip(spec) => {
                let vip_id = spec.vip_id;
                if u32::from(vip_id) >= self.config.max_vips {
                    return Err(AllocError::VipIdOutOfRange {
                        vip_id,
                        max_vips: self.config.max_vips,
                    });
                }
                if next.contains_key(&vip_id) {
                    return Err(AllocError::DuplicateVip(vip_id));
                }
                let a = spec.addr;
                if a.is_unspecified() || a.is_broadcast() || a.is_multicast() {
                    return Err(AllocError::InvalidVipAddr { vip_id, addr: a });
                }
                if spec.service_ports.is_empty() {
                    return Err(AllocError::NoServicePorts(vip_id));
                }
                for &port in &spec.service_ports {
                    if port.protocol != PROTO_TCP && port.protocol != PROTO_UDP {
                        return Err(AllocError::UnsupportedProtocol { vip_id, port });
                    }
                    if port.port == 0 {
                        return Err(AllocError::PortZero {
                            vip_id,
                            what: "service port",
                        });
                    }
                }
                next.insert(vip_id, Vip::new(spec.clone(), self.config.buckets()));
                batch.touched.insert(vip_id);
                batch.fresh.insert(vip_id);
                batch.removed.remove(&vip_id);
            }
            Change::RemoveVip { vip_id } => {
                next.remove(vip_id).ok_or(AllocError::UnknownVip(*vip_id))?;
                batch.touched.remove(vip_id);
                batch.fresh.remove(vip_id);
                batch.removed.remove(vip_id);
                batch.changed.remove(vip_id);
            }
            Change::AddServer { vip_id, server } => {
                let vip_id = *vip_id;
                let v = next
                    .get_mut(&vip_id)
                    .ok_or(AllocError::UnknownVip(vip_id))?;
                let dip = server.dip;
                if dip.is_unspecified()
                    || dip.is_broadcast()
                    || dip.is_multicast()
                    || dip == v.addr()
                {
                    return Err(AllocError::InvalidDip { vip_id, dip });
                }
                if server.weight == 0 {
                    return Err(AllocError::ZeroWeight { vip_id, dip });
                }
                if server.port == Some(0) {
                    return Err(AllocError::PortZero {
                        vip_id,
                        what: "per-server port",
                    });
                }
                if v.servers.contains_key(&dip) {
                    return Err(AllocError::DuplicateServer { vip_id, dip });
                }
                v.servers.insert(
                    dip,
                    Server {
                        dip,
                        port: server.port,
                        weight: server.weight,
                        state: ServerState::Active,
                    },
                );
                if let Some(r) = batch.removed.get_mut(&vip_id) {
                    r.remove(&dip);
                }
                batch.changed(vip_id, dip);
            }
            Change::RemoveServer { vip_id, dip } => {
                let v = next
                    .get_mut(vip_id)
                    .ok_or(AllocError::UnknownVip(*vip_id))?;
                let s = v.servers.remove(dip).ok_or(AllocError::UnknownServer {
                    vip_id: *vip_id,
                    dip: *dip,
                })?;
                batch.removed.entry(*vip_id).or_default().insert(*dip, s);
                batch.touched.insert(*vip_id);
            }
            Change::DrainServer { vip_id, dip } => {
                let s = server_mut(next, *vip_id, *dip)?;
                if s.state != ServerState::Active {
                    return Err(AllocError::NotActive {
                        vip_id: *vip_id,
                        dip: *dip,
                    });
                }
                s.state = ServerState::Draining;
                batch.touched.insert(*vip_id);
            }
            Change::ActivateServer { vip_id, dip } => {
                let s = server_mut(next, *vip_id, *dip)?;
                if s.state != ServerState::Draining {
                    return Err(AllocError::NotDraining {
                        vip_id: *vip_id,
                        dip: *dip,
                    });
                }
                s.state = ServerState::Active;
                batch.changed(*vip_id, *dip);
            }
            Change::SetWeight {
                vip_id,
                dip,
                weight,
            } => {
                let s = server_mut(next, *vip_id, *dip)?;
                if *weight == 0 {
                    return Err(AllocError::ZeroWeight {
                        vip_id: *vip_id,
                        dip: *dip,
                    });
                }
                s.weight = *weight;
                batch.changed(*vip_id, *dip);
            }
        }
        Ok(())
    }

    /// Checks what only the whole batch decides: port conflicts, table
    /// size, and an active server for every VIP.
    fn validate(&self, next: &BTreeMap<u16, Vip>) -> Result<(), AllocError> {
        let mut users: HashMap<VipKey, PortUser> = HashMap::new();
        for v in next.values() {
            let vip_id = v.vip_id();
            for (key, action) in v.vip_entries() {
                let user = match action {
                    VipAction::ToBuckets { .. } => PortUser::Service { vip_id },
                    VipAction::ToServer { dip } => PortUser::Server { vip_id, dip },
                };
                if let Some(first) = users.insert(key, user) {
                    return Err(AllocError::PortConflict {
                        addr: key.dst,
                        port: ServicePort {
                            protocol: key.protocol,
                            port: key.port,
                        },
                        first,
                        second: user,
                    });
                }
            }
        }
        if users.len() > self.config.max_vip_entries as usize {
            return Err(AllocError::TooManyVipEntries {
                entries: users.len(),
                limit: self.config.max_vip_entries,
            });
        }
        for v in next.values() {
            if !v.servers().any(|s| s.state == ServerState::Active) {
                return Err(AllocError::NoActiveServer {
                    vip_id: v.vip_id(),
                    addr: v.addr(),
                    draining: v.servers.len(),
                });
            }
        }
        Ok(())
    }
}

/// A map keyed by server address with a cheap hash: the allocator looks an
/// address up for every bucket, and the keys come from the operator.
type AddrMap<V> = HashMap<Ipv4Addr, V, BuildHasherDefault<AddrHasher>>;

/// Multiply-and-fold hash of a few bytes (an IPv4 address).
#[derive(Default)]
struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }

    fn finish(&self) -> u64 {
        let x = self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x ^ (x >> 32)
    }
}

/// What a batch of changes did, for rebalancing and reporting.
#[derive(Default)]
struct Batch {
    /// VIPs whose servers changed (or that are new).
    touched: BTreeSet<u16>,
    /// VIPs created by this batch.
    fresh: BTreeSet<u16>,
    /// Servers removed by this batch, per VIP, as they were.
    removed: BTreeMap<u16, BTreeMap<Ipv4Addr, Server>>,
    /// Servers added, activated or re-weighted by this batch, per VIP.
    changed: BTreeMap<u16, BTreeSet<Ipv4Addr>>,
}

impl Batch {
    fn changed(&mut self, vip_id: u16, dip: Ipv4Addr) {
        self.touched.insert(vip_id);
        self.changed.entry(vip_id).or_default().insert(dip);
    }
}

fn server_mut(
    vips: &mut BTreeMap<u16, Vip>,
    vip_id: u16,
    dip: Ipv4Addr,
) -> Result<&mut Server, AllocError> {
    vips.get_mut(&vip_id)
        .ok_or(AllocError::UnknownVip(vip_id))?
        .servers
        .get_mut(&dip)
        .ok_or(AllocError::UnknownServer { vip_id, dip })
}

/// Clears every chain due by `now`; returns how many.
fn expire_due(vips: &mut BTreeMap<u16, Vip>, now: u32, timeout: u32) -> u64 {
    let mut n = 0;
    for b in vips.values_mut().flat_map(|v| v.buckets.iter_mut()) {
        if b.change_time != 0 && now >= b.change_time.saturating_add(timeout) {
            b.clear_chain();
            n += 1;
        }
    }
    n
}

/// Brings `vip`'s buckets to a balanced share for its current servers,
/// moving as few as possible, least recently changed first.
fn rebalance(
    vip: &mut Vip,
    before: Option<&Vip>,
    removed: Option<&BTreeMap<Ipv4Addr, Server>>,
    changed: Option<&BTreeSet<Ipv4Addr>>,
    generation: u32,
    stamp: u32,
    timeout: u32,
) -> VipReport {
    let n = vip.buckets.len() as u32;
    let mut held: AddrMap<u32> = AddrMap::default();
    for b in &vip.buckets {
        *held.entry(b.dip).or_default() += 1;
    }
    held.remove(&Ipv4Addr::UNSPECIFIED);

    let active: Vec<Server> = vip
        .servers
        .values()
        .filter(|s| s.state == ServerState::Active)
        .copied()
        .collect();
    let claims: Vec<Claim> = active
        .iter()
        .map(|s| Claim {
            weight: s.weight,
            current: held.get(&s.dip).copied().unwrap_or(0),
            changed: changed.is_some_and(|c| c.contains(&s.dip)),
        })
        .collect();
    let target: AddrMap<u32> = active
        .iter()
        .map(|s| s.dip)
        .zip(apportion::targets(n, &claims))
        .collect();

    // What each holder gives up, and its least recently changed buckets.
    let give: AddrMap<usize> = held
        .iter()
        .filter_map(|(d, &c)| {
            let t = target.get(d).copied().unwrap_or(0);
            (c > t).then(|| (*d, (c - t) as usize))
        })
        .collect();
    let gainers: HashSet<Ipv4Addr, BuildHasherDefault<AddrHasher>> = active
        .iter()
        .filter(|s| target[&s.dip] > held.get(&s.dip).copied().unwrap_or(0))
        .map(|s| s.dip)
        .collect();
    let mut pool: Vec<u32> = Vec::new();
    // Oldest change first; among equals, a bucket whose move loses no live
    // chain (none, or back to its previous server) first; then bucket
    // number.
    let mut candidates: AddrMap<Vec<(u32, bool, u32)>> = AddrMap::default();
    for (i, b) in vip.buckets.iter().enumerate() {
        if b.dip.is_unspecified() {
            pool.push(i as u32);
        } else if give.contains_key(&b.dip) {
            let breaks = b.has_chain() && !gainers.contains(&b.prev_dip);
            candidates
                .entry(b.dip)
                .or_default()
                .push((b.changed_in, breaks, i as u32));
        }
    }
    for (dip, mut c) in candidates {
        let k = give[&dip];
        if k < c.len() {
            c.select_nth_unstable(k);
            c.truncate(k);
        }
        pool.extend(c.into_iter().map(|(_, _, i)| i));
    }
    pool.sort_unstable();

    let mut report = VipReport {
        vip_id: vip.vip_id(),
        buckets: n,
        moved: 0,
        minimum: 0,
        assigned: 0,
        chains_broken: 0,
        chains_inherited: 0,
        chains_cleared: 0,
        servers: Vec::new(),
    };

    // Hand the pool to the gainers. A bucket goes back to its previous
    // server when that one gains: its old connections are then local again
    // and no chain is lost. The rest go in bucket order to the gainers in
    // address order.
    let mut need: BTreeMap<Ipv4Addr, u32> = active
        .iter()
        .filter_map(|s| {
            let have = held.get(&s.dip).copied().unwrap_or(0);
            let t = target[&s.dip];
            (t > have).then(|| (s.dip, t - have))
        })
        .collect();
    let mut handout: Vec<(u32, Ipv4Addr)> = Vec::with_capacity(pool.len());
    let mut rest: Vec<u32> = Vec::with_capacity(pool.len());
    for i in pool {
        let b = &vip.buckets[i as usize];
        match need.get_mut(&b.prev_dip) {
            Some(k) if b.has_chain() && *k > 0 => {
                *k -= 1;
                handout.push((i, b.prev_dip));
            }
            _ => rest.push(i),
        }
    }
    let mut rest = rest.into_iter();
    for (&dip, &k) in &need {
        handout.extend(rest.by_ref().take(k as usize).map(|i| (i, dip)));
    }
    debug_assert!(rest.next().is_none(), "every released bucket has a taker");

    let mut after = held.clone();
    for (i, to) in handout {
        let i = i as usize;
        let b = vip.buckets[i];
        let old = b.dip;
        if let Some(c) = after.get_mut(&old) {
            *c -= 1;
        }
        *after.entry(to).or_default() += 1;
        let live_chain = b.has_chain() && b.prev_dip != to;
        let (prev_dip, change_time) = if old.is_unspecified() {
            report.assigned += 1;
            (Ipv4Addr::UNSPECIFIED, 0)
        } else {
            report.moved += 1;
            if vip.servers.contains_key(&old) {
                // Alive (active or draining): chain to it.
                report.chains_broken += u64::from(live_chain);
                if timeout == 0 {
                    (Ipv4Addr::UNSPECIFIED, 0)
                } else {
                    (old, stamp)
                }
            } else if live_chain && vip.servers.contains_key(&b.prev_dip) {
                // Removed: chain past it to its own live predecessor.
                report.chains_inherited += 1;
                (b.prev_dip, b.change_time)
            } else {
                report.chains_broken += u64::from(live_chain);
                (Ipv4Addr::UNSPECIFIED, 0)
            }
        };
        vip.buckets[i] = BucketState {
            dip: to,
            prev_dip,
            change_time,
            changed_in: generation,
        };
    }

    // Nothing may chain to a server that is gone.
    for b in &mut vip.buckets {
        if b.has_chain() && !vip.servers.contains_key(&b.prev_dip) {
            b.clear_chain();
            report.chains_cleared += 1;
        }
    }

    // Shares before and after.
    let total: u64 = active.iter().map(|s| u64::from(s.weight)).sum();
    let mut dips: BTreeSet<Ipv4Addr> = vip.servers.keys().copied().collect();
    dips.extend(held.keys());
    dips.extend(removed.into_iter().flat_map(|r| r.keys()));
    dips.extend(before.into_iter().flat_map(|v| v.servers.keys()));
    for dip in dips {
        let now_s = vip.servers.get(&dip);
        let then_s = removed
            .and_then(|r| r.get(&dip))
            .or_else(|| before.and_then(|v| v.servers.get(&dip)));
        let (weight, state) = match (now_s, then_s) {
            (Some(s), _) => (s.weight, s.state),
            (None, Some(s)) => (s.weight, ServerState::Removed),
            (None, None) => (0, ServerState::Removed),
        };
        let ideal = (state == ServerState::Active).then(|| Ideal::new(n, weight, total));
        let b = held.get(&dip).copied().unwrap_or(0);
        let a = after.get(&dip).copied().unwrap_or(0);
        report.minimum += u64::from(b.saturating_sub(a));
        report.servers.push(ServerShare {
            dip,
            weight,
            state,
            before: b,
            after: a,
            ideal,
        });
    }
    report
}

#[cfg(test)]
mod tests;
