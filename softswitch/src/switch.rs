//! The switch: published tables, the control-plane API, and workers.
//!
//! # How table updates stay off the data path
//!
//! The tables are an immutable [`Tables`] snapshot behind an
//! [`arc_swap::ArcSwap`]. A [`Worker`] pins the current snapshot once per
//! batch (through an [`arc_swap::Cache`], which costs one atomic load when
//! nothing changed) and reads only it, so a batch sees the old tables or
//! the new ones, never a half-written entry, and never waits.
//!
//! [`Switch::apply`] runs on the control thread, under a mutex the data
//! path never takes. It copies the current snapshot shallowly, applies the
//! updates to the copy with copy-on-write (see [`crate::tables`]: a bucket
//! write copies one 16 KiB chunk; VIP and route writes rebuild their small
//! tables once per call), and publishes it with one atomic swap. The
//! updates of one call become visible together.
//!
//! Old snapshots are kept on a retire list until no worker holds them, so
//! the memory of a replaced snapshot is freed by the control thread, not by
//! a worker in the middle of its loop.
//!
//! # Counters
//!
//! Each worker counts into its own `CounterBlock` (see
//! [`crate::counters`]); reads sum the blocks and subtract a per-cell
//! baseline, which is how INSERT resets a direct counter and how a
//! P4Runtime write sets one. A worker that still runs on the snapshot from
//! before a DELETE may count up to one batch into the cell after a
//! following INSERT of the same key (or a key reusing its cell) has taken
//! its baseline.
//!
//! Table misses are counted in the default entry's cell of the VIP and
//! bucket tables ([`Switch::default_counter`]), as the TNA program's
//! counting default actions do. Only TCP and UDP packets that passed the
//! parse look up the VIP table, so only they count as VIP misses.

use crate::counters::{CellRef, CounterBlock, CounterData};
use crate::packet::{Batch, BatchSize, Frame, Frames, Verdict};
use crate::pipeline::{self, Count, Plan};
use crate::tables::lpm::Lpm;
use crate::tables::{BucketSet, CellLayout, Tables, VipTable};
use arc_swap::{ArcSwap, Cache};
use beamer_pipeline::entries::{
    BucketKey, Entry, EntryKey, RouteAction, RouteKey, SwitchConfig, Update, VipAction, VipKey,
};
use beamer_pipeline::{DropReason, ParamError, PipelineParams, Target, schema};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

/// Why one update of [`Switch::apply`] was rejected (it changed nothing).
/// Each variant is the P4Runtime error of the same name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    /// INSERT of a key that is present.
    #[error("{0:?} already exists")]
    AlreadyExists(EntryKey),
    /// MODIFY or DELETE of a key that is not present.
    #[error("{0:?} not found")]
    NotFound(EntryKey),
    /// The table (or the set of `vip_id`s with buckets) is full.
    #[error("table {table} is full: {detail}")]
    ResourceExhausted {
        /// The table's name.
        table: &'static str,
        /// What ran out.
        detail: String,
    },
    /// A field of the entry is out of range.
    #[error("invalid entry: {0}")]
    InvalidArgument(String),
}

/// A direct counter could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CounterError {
    /// The entry does not exist.
    #[error("{0:?} not found")]
    NotFound(EntryKey),
    /// The entry's table has no direct counter (routes).
    #[error("table {0} has no direct counter")]
    NoCounter(&'static str),
}

/// A table of the pipeline, for reads by table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TableKind {
    /// `vip`: exact (dst, protocol, port).
    Vip,
    /// `buckets`: exact (vip_id, bucket).
    Buckets,
    /// `routes`: LPM on the destination.
    Routes,
    /// `config`: keyless, only a default action.
    Config,
}

impl TableKind {
    /// Every table.
    pub const ALL: [TableKind; 4] = [
        TableKind::Vip,
        TableKind::Buckets,
        TableKind::Routes,
        TableKind::Config,
    ];

    /// The table's definition in the schema.
    pub fn schema(self) -> &'static schema::Table {
        match self {
            TableKind::Vip => &schema::VIP,
            TableKind::Buckets => &schema::BUCKETS,
            TableKind::Routes => &schema::ROUTES,
            TableKind::Config => &schema::CONFIG,
        }
    }

    /// The table with P4Runtime ID `id`.
    pub fn from_id(id: u32) -> Option<TableKind> {
        Self::ALL.into_iter().find(|t| t.schema().id == id)
    }

    /// The table an entry key belongs to.
    pub fn of_key(key: &EntryKey) -> TableKind {
        match key {
            EntryKey::Vip(_) => TableKind::Vip,
            EntryKey::Bucket(_) => TableKind::Buckets,
            EntryKey::Route(_) => TableKind::Routes,
        }
    }
}

impl fmt::Display for TableKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.schema().name)
    }
}

/// Frames received and forwarded by all workers (bytes as received).
/// Received = forwarded + the sum of the drop counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Frames that entered the pipeline.
    pub received: CounterData,
    /// Frames that left it.
    pub forwarded: CounterData,
}

/// Bytes the tables take, for `beamer bench` and operators.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryReport {
    /// VIP entries present.
    pub vip_entries: usize,
    /// Bytes of the VIP hash table.
    pub vip_bytes: usize,
    /// Bucket entries present.
    pub bucket_entries: usize,
    /// Bytes of the bucket sets (chunk lists and chunks).
    pub bucket_bytes: usize,
    /// Routes present.
    pub routes: usize,
    /// Bytes of the route trie.
    pub route_bytes: usize,
    /// Bytes of one worker's counters (direct counters of every entry the
    /// pipeline can hold, drops, totals). Zeroed pages the OS has not yet
    /// backed are included.
    pub counter_bytes_per_worker: usize,
    /// Counter blocks of the current configuration (about one per worker).
    pub workers: usize,
}

impl MemoryReport {
    /// Bytes of the tables themselves (without counters).
    pub fn table_bytes(&self) -> usize {
        self.vip_bytes + self.bucket_bytes + self.route_bytes
    }

    /// Tables plus every worker's counters.
    pub fn total_bytes(&self) -> usize {
        self.table_bytes() + self.counter_bytes_per_worker * self.workers
    }
}

/// The software switch: its tables, counters and control-plane API.
///
/// Cheap to clone (a handle); every method takes `&self` and may be called
/// from any thread. Data-path threads each take a [`Worker`].
#[derive(Clone)]
pub struct Switch {
    shared: Arc<Shared>,
}

struct Shared {
    current: Arc<ArcSwap<Tables>>,
    control: Mutex<Control>,
    registry: Mutex<Vec<Arc<CounterBlock>>>,
}

struct VipRecord {
    action: VipAction,
    cell: u32,
}

struct SetRecord {
    slot: u32,
    entries: u32,
}

/// What an `apply` call changed, so it rebuilds each table at most once.
#[derive(Default)]
struct Changed {
    any: bool,
    vip: bool,
    routes: bool,
}

/// The control plane's own state: the canonical VIP and route entries
/// (buckets live only in the snapshot), cell allocation and baselines.
struct Control {
    epoch: u64,
    params: PipelineParams,
    cells: CellLayout,
    tables: Arc<Tables>,
    vips: BTreeMap<VipKey, VipRecord>,
    vip_free: VecDeque<u32>,
    sets: BTreeMap<u16, SetRecord>,
    set_free: VecDeque<u32>,
    routes: BTreeMap<RouteKey, RouteAction>,
    /// Counter baselines; a missing cell has baseline zero.
    base: HashMap<CellRef, CounterData>,
    retired: Vec<Arc<Tables>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The state behind these mutexes is consistent between statements that
    // can panic, so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Control {
    fn new(epoch: u64, params: PipelineParams) -> Control {
        Control {
            epoch,
            params,
            cells: CellLayout::of(&params),
            tables: Arc::new(Tables::empty(epoch, params)),
            vips: BTreeMap::new(),
            vip_free: (0..params.max_vip_entries).collect(),
            sets: BTreeMap::new(),
            set_free: (0..params.max_vips).collect(),
            routes: BTreeMap::new(),
            base: HashMap::new(),
            retired: Vec::new(),
        }
    }
}

impl Shared {
    /// Sum of `cell` over the blocks of `epoch`.
    fn sum(&self, epoch: u64, cell: CellRef) -> CounterData {
        lock(&self.registry)
            .iter()
            .filter(|b| b.epoch == epoch)
            .fold(CounterData::default(), |acc, b| {
                acc.wrapping_add(b.get(cell))
            })
    }

    fn register(&self, tables: &Tables) -> Arc<CounterBlock> {
        let block = Arc::new(CounterBlock::new(
            tables.epoch,
            tables.cells.vip_cells,
            tables.cells.bucket_cells,
        ));
        let mut reg = lock(&self.registry);
        // Blocks of an older configuration are never read again.
        reg.retain(|b| b.epoch == tables.epoch);
        // Blocks whose workers are gone (only the registry holds them, and
        // it never hands them out again) fold into one, so a process that
        // starts many workers keeps one block per live worker plus one.
        let mut orphans = reg.iter().filter(|b| Arc::strong_count(b) == 1);
        if let Some(keep) = orphans.next().cloned() {
            let rest: Vec<_> = orphans.cloned().collect();
            for b in &rest {
                keep.absorb(b);
            }
            reg.retain(|b| !rest.iter().any(|r| Arc::ptr_eq(b, r)));
        }
        reg.push(Arc::clone(&block));
        block
    }
}

impl Switch {
    /// A switch with empty tables sized by `params` (checked against the
    /// v1model limits: the software switch is a v1model target).
    pub fn new(params: PipelineParams) -> Result<Switch, ParamError> {
        params.validate(Target::V1model)?;
        let control = Control::new(0, params);
        Ok(Switch {
            shared: Arc::new(Shared {
                current: Arc::new(ArcSwap::new(Arc::clone(&control.tables))),
                control: Mutex::new(control),
                registry: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Replaces the pipeline by an empty one sized by `params`, as a
    /// P4Runtime SetForwardingPipelineConfig does: every entry, the config
    /// and every counter are cleared. Workers move over at their next batch.
    pub fn reconfigure(&self, params: PipelineParams) -> Result<(), ParamError> {
        params.validate(Target::V1model)?;
        let mut ctl = lock(&self.shared.control);
        let epoch = ctl.epoch + 1;
        let mut fresh = Control::new(epoch, params);
        fresh.retired = std::mem::take(&mut ctl.retired);
        *ctl = fresh;
        let tables = Arc::clone(&ctl.tables);
        ctl.publish_tables(&self.shared, tables);
        Ok(())
    }

    /// The sizes of the current pipeline.
    pub fn params(&self) -> PipelineParams {
        lock(&self.shared.control).params
    }

    /// The tables as published now.
    pub fn snapshot(&self) -> Arc<Tables> {
        self.shared.current.load_full()
    }

    /// A data-path handle with its own counters. Take one per thread.
    pub fn worker(&self) -> Worker {
        let mut cache = Cache::new(Arc::clone(&self.shared.current));
        let counters = self.shared.register(cache.load());
        Worker {
            cache,
            counters,
            shared: Arc::clone(&self.shared),
            plans: Vec::with_capacity(BatchSize::MAX.get()),
        }
    }

    /// Applies `updates` in order, with P4Runtime semantics, and returns one
    /// result per update. A rejected update changes nothing; the others
    /// take effect together, in one new snapshot.
    pub fn apply(&self, updates: &[Update]) -> Vec<Result<(), UpdateError>> {
        let mut ctl = lock(&self.shared.control);
        let mut next = Tables::clone(&ctl.tables);
        let mut changed = Changed::default();
        let results = updates
            .iter()
            .map(|u| ctl.apply_one(&self.shared, &mut next, u, &mut changed))
            .collect();
        if changed.any {
            ctl.finish(&self.shared, next, &changed);
        }
        results
    }

    /// Applies `updates` and fails on the first rejected one (the updates
    /// before it stay applied). For loaders, not for P4Runtime.
    pub fn apply_all(&self, updates: &[Update]) -> Result<(), (usize, UpdateError)> {
        match self
            .apply(updates)
            .into_iter()
            .enumerate()
            .find_map(|(i, r)| r.err().map(|e| (i, e)))
        {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    /// The config table's default action.
    pub fn config(&self) -> SwitchConfig {
        lock(&self.shared.control).tables.config
    }

    /// Every entry of `table`, in key order (none for the keyless config
    /// table; see [`Switch::config`]).
    pub fn entries(&self, table: TableKind) -> Vec<Entry> {
        let ctl = lock(&self.shared.control);
        match table {
            TableKind::Vip => ctl
                .vips
                .iter()
                .map(|(k, r)| Entry::Vip(*k, r.action))
                .collect(),
            TableKind::Buckets => ctl
                .sets
                .iter()
                .flat_map(|(vip_id, rec)| {
                    let set = ctl.tables.sets[rec.slot as usize].as_deref();
                    set.into_iter()
                        .flat_map(BucketSet::iter)
                        .map(|(bucket, s)| {
                            Entry::Bucket(
                                BucketKey {
                                    vip_id: *vip_id,
                                    bucket,
                                },
                                s.action(),
                            )
                        })
                })
                .collect(),
            TableKind::Routes => ctl
                .routes
                .iter()
                .map(|(k, a)| Entry::Route(*k, *a))
                .collect(),
            TableKind::Config => Vec::new(),
        }
    }

    /// Every entry of every table with a key.
    pub fn all_entries(&self) -> Vec<Entry> {
        [TableKind::Vip, TableKind::Buckets, TableKind::Routes]
            .into_iter()
            .flat_map(|t| self.entries(t))
            .collect()
    }

    /// The entry with `key`, if present.
    pub fn entry(&self, key: &EntryKey) -> Option<Entry> {
        let ctl = lock(&self.shared.control);
        match key {
            EntryKey::Vip(k) => ctl.vips.get(k).map(|r| Entry::Vip(*k, r.action)),
            EntryKey::Bucket(k) => ctl.bucket(&ctl.tables, k).map(|a| Entry::Bucket(*k, a)),
            EntryKey::Route(k) => ctl.routes.get(k).map(|a| Entry::Route(*k, *a)),
        }
    }

    /// Number of entries of `table` (1 for config).
    pub fn len(&self, table: TableKind) -> usize {
        let ctl = lock(&self.shared.control);
        match table {
            TableKind::Vip => ctl.vips.len(),
            TableKind::Buckets => ctl.sets.values().map(|s| s.entries as usize).sum(),
            TableKind::Routes => ctl.routes.len(),
            TableKind::Config => 1,
        }
    }

    /// The direct counter of the entry with `key` (VIP and bucket entries).
    pub fn counter(&self, key: &EntryKey) -> Result<CounterData, CounterError> {
        let ctl = lock(&self.shared.control);
        let cell = ctl.cell_of(key)?;
        Ok(ctl.read(&self.shared, cell))
    }

    /// Sets the direct counter of the entry with `key`.
    pub fn set_counter(&self, key: &EntryKey, value: CounterData) -> Result<(), CounterError> {
        let mut ctl = lock(&self.shared.control);
        let cell = ctl.cell_of(key)?;
        ctl.write(&self.shared, cell, value);
        Ok(())
    }

    /// The counter of a table's default entry: the misses of the VIP or
    /// bucket table. Other tables have no counter.
    pub fn default_counter(&self, table: TableKind) -> Result<CounterData, CounterError> {
        let ctl = lock(&self.shared.control);
        let cell = ctl.default_cell(table)?;
        Ok(ctl.read(&self.shared, cell))
    }

    /// Sets the counter of a table's default entry.
    pub fn set_default_counter(
        &self,
        table: TableKind,
        value: CounterData,
    ) -> Result<(), CounterError> {
        let mut ctl = lock(&self.shared.control);
        let cell = ctl.default_cell(table)?;
        ctl.write(&self.shared, cell, value);
        Ok(())
    }

    /// The drop counter cell of one reason.
    pub fn drop_counter(&self, reason: DropReason) -> CounterData {
        let ctl = lock(&self.shared.control);
        ctl.read(&self.shared, CellRef::Drop(reason))
    }

    /// The drop counter, indexed by [`DropReason::index`].
    pub fn drop_counters(&self) -> [CounterData; DropReason::COUNT] {
        let ctl = lock(&self.shared.control);
        DropReason::ALL.map(|r| ctl.read(&self.shared, CellRef::Drop(r)))
    }

    /// Sets the drop counter cell of one reason.
    pub fn set_drop_counter(&self, reason: DropReason, value: CounterData) {
        let mut ctl = lock(&self.shared.control);
        ctl.write(&self.shared, CellRef::Drop(reason), value);
    }

    /// Frames received and forwarded since the pipeline was configured.
    pub fn totals(&self) -> Totals {
        let epoch = lock(&self.shared.control).epoch;
        let reg = lock(&self.shared.registry);
        let mut t = Totals::default();
        for b in reg.iter().filter(|b| b.epoch == epoch) {
            t.received = t.received.wrapping_add(b.io.get(0));
            t.forwarded = t.forwarded.wrapping_add(b.io.get(1));
        }
        t
    }

    /// What the tables and counters take in memory.
    pub fn memory(&self) -> MemoryReport {
        let ctl = lock(&self.shared.control);
        let t = &ctl.tables;
        let reg = lock(&self.shared.registry);
        let blocks: Vec<_> = reg.iter().filter(|b| b.epoch == ctl.epoch).collect();
        MemoryReport {
            vip_entries: t.vip.len(),
            vip_bytes: t.vip.memory_bytes(),
            bucket_entries: ctl.sets.values().map(|s| s.entries as usize).sum(),
            bucket_bytes: t.sets.capacity() * std::mem::size_of::<Option<Arc<BucketSet>>>()
                + t.sets
                    .iter()
                    .flatten()
                    .map(|s| s.memory_bytes())
                    .sum::<usize>(),
            routes: ctl.routes.len(),
            route_bytes: t.routes.memory_bytes(),
            counter_bytes_per_worker: blocks.first().map_or(0, |b| b.memory_bytes()),
            workers: blocks.len(),
        }
    }
}

impl fmt::Debug for Switch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Switch")
            .field("params", &self.params())
            .finish_non_exhaustive()
    }
}

fn invalid(msg: impl Into<String>) -> UpdateError {
    UpdateError::InvalidArgument(msg.into())
}

impl Control {
    fn bucket(
        &self,
        tables: &Tables,
        k: &BucketKey,
    ) -> Option<beamer_pipeline::entries::BucketAction> {
        let rec = self.sets.get(&k.vip_id)?;
        tables.bucket(rec.slot, k.bucket).map(|s| s.action())
    }

    fn cell_of(&self, key: &EntryKey) -> Result<CellRef, CounterError> {
        match key {
            EntryKey::Vip(k) => self
                .vips
                .get(k)
                .map(|r| CellRef::Vip(r.cell))
                .ok_or(CounterError::NotFound(*key)),
            EntryKey::Bucket(k) => match self.sets.get(&k.vip_id) {
                Some(rec) if self.tables.bucket(rec.slot, k.bucket).is_some() => {
                    Ok(CellRef::Bucket(self.tables.bucket_cell(rec.slot, k.bucket)))
                }
                _ => Err(CounterError::NotFound(*key)),
            },
            EntryKey::Route(_) => Err(CounterError::NoCounter(schema::ROUTES.name)),
        }
    }

    fn default_cell(&self, table: TableKind) -> Result<CellRef, CounterError> {
        match table {
            TableKind::Vip => Ok(CellRef::Vip(self.cells.vip_default())),
            TableKind::Buckets => Ok(CellRef::Bucket(self.cells.bucket_default())),
            other => Err(CounterError::NoCounter(other.schema().name)),
        }
    }

    fn read(&self, shared: &Shared, cell: CellRef) -> CounterData {
        let base = self.base.get(&cell).copied().unwrap_or_default();
        shared.sum(self.epoch, cell).wrapping_sub(base)
    }

    /// Makes `cell` read `value` from now on.
    fn write(&mut self, shared: &Shared, cell: CellRef, value: CounterData) {
        let base = shared.sum(self.epoch, cell).wrapping_sub(value);
        if base == CounterData::default() {
            self.base.remove(&cell);
        } else {
            self.base.insert(cell, base);
        }
    }

    fn check_bucket_key(&self, k: &BucketKey) -> Result<(), UpdateError> {
        if k.bucket >= self.params.buckets {
            return Err(invalid(format!(
                "bucket {} of vip_id {} is not below the bucket count {}",
                k.bucket, k.vip_id, self.params.buckets
            )));
        }
        Ok(())
    }

    fn check_route_key(k: &RouteKey) -> Result<(), UpdateError> {
        RouteKey::new(k.prefix, k.len)
            .map(|_| ())
            .map_err(|e| invalid(format!("route prefix: {e}")))
    }

    fn check_route_action(a: &RouteAction) -> Result<(), UpdateError> {
        if u32::from(a.port) >> schema::SWITCH_PORT_BITS != 0 {
            return Err(invalid(format!(
                "route port {} does not fit in {} bits",
                a.port,
                schema::SWITCH_PORT_BITS
            )));
        }
        Ok(())
    }

    fn apply_one(
        &mut self,
        shared: &Shared,
        next: &mut Tables,
        update: &Update,
        changed: &mut Changed,
    ) -> Result<(), UpdateError> {
        match *update {
            Update::SetConfig(c) => {
                next.config = c;
                changed.any = true;
                Ok(())
            }
            Update::Insert(Entry::Vip(k, action)) => {
                if self.vips.contains_key(&k) {
                    return Err(UpdateError::AlreadyExists(EntryKey::Vip(k)));
                }
                let cell =
                    self.vip_free
                        .pop_front()
                        .ok_or_else(|| UpdateError::ResourceExhausted {
                            table: schema::VIP.name,
                            detail: format!(
                                "{} entries (max_vip_entries)",
                                self.params.max_vip_entries
                            ),
                        })?;
                self.vips.insert(k, VipRecord { action, cell });
                self.write(shared, CellRef::Vip(cell), CounterData::default());
                changed.vip = true;
                changed.any = true;
                Ok(())
            }
            Update::Modify(Entry::Vip(k, action)) => {
                let rec = self
                    .vips
                    .get_mut(&k)
                    .ok_or(UpdateError::NotFound(EntryKey::Vip(k)))?;
                rec.action = action;
                changed.vip = true;
                changed.any = true;
                Ok(())
            }
            Update::Delete(EntryKey::Vip(k)) => {
                let rec = self
                    .vips
                    .remove(&k)
                    .ok_or(UpdateError::NotFound(EntryKey::Vip(k)))?;
                self.vip_free.push_back(rec.cell);
                changed.vip = true;
                changed.any = true;
                Ok(())
            }
            Update::Insert(Entry::Bucket(k, action)) => {
                self.check_bucket_key(&k)?;
                let slot = match self.sets.get(&k.vip_id) {
                    Some(rec) if next.bucket(rec.slot, k.bucket).is_some() => {
                        return Err(UpdateError::AlreadyExists(EntryKey::Bucket(k)));
                    }
                    Some(rec) => rec.slot,
                    None => {
                        let slot = self.set_free.pop_front().ok_or_else(|| {
                            UpdateError::ResourceExhausted {
                                table: schema::BUCKETS.name,
                                detail: format!(
                                    "{} vip_ids already have buckets (max_vips)",
                                    self.params.max_vips
                                ),
                            }
                        })?;
                        Arc::make_mut(&mut next.sets)[slot as usize] =
                            Some(Arc::new(BucketSet::new(self.params.buckets)));
                        self.sets.insert(k.vip_id, SetRecord { slot, entries: 0 });
                        changed.vip = true;
                        slot
                    }
                };
                set_bucket(next, slot, k.bucket, Some(&action));
                if let Some(rec) = self.sets.get_mut(&k.vip_id) {
                    rec.entries += 1;
                }
                let cell = CellRef::Bucket(next.bucket_cell(slot, k.bucket));
                self.write(shared, cell, CounterData::default());
                changed.any = true;
                Ok(())
            }
            Update::Modify(Entry::Bucket(k, action)) => {
                self.check_bucket_key(&k)?;
                let slot = match self.sets.get(&k.vip_id) {
                    Some(rec) if next.bucket(rec.slot, k.bucket).is_some() => rec.slot,
                    _ => return Err(UpdateError::NotFound(EntryKey::Bucket(k))),
                };
                set_bucket(next, slot, k.bucket, Some(&action));
                changed.any = true;
                Ok(())
            }
            Update::Delete(EntryKey::Bucket(k)) => {
                self.check_bucket_key(&k)?;
                let rec = match self.sets.get_mut(&k.vip_id) {
                    Some(rec) if next.bucket(rec.slot, k.bucket).is_some() => rec,
                    _ => return Err(UpdateError::NotFound(EntryKey::Bucket(k))),
                };
                let slot = rec.slot;
                rec.entries -= 1;
                if rec.entries == 0 {
                    // The last entry: free the set and its slot.
                    self.sets.remove(&k.vip_id);
                    Arc::make_mut(&mut next.sets)[slot as usize] = None;
                    self.set_free.push_back(slot);
                    changed.vip = true;
                } else {
                    set_bucket(next, slot, k.bucket, None);
                }
                changed.any = true;
                Ok(())
            }
            Update::Insert(Entry::Route(k, action)) => {
                Self::check_route_key(&k)?;
                Self::check_route_action(&action)?;
                if self.routes.contains_key(&k) {
                    return Err(UpdateError::AlreadyExists(EntryKey::Route(k)));
                }
                if self.routes.len() >= self.params.routes as usize {
                    return Err(UpdateError::ResourceExhausted {
                        table: schema::ROUTES.name,
                        detail: format!("{} entries (routes)", self.params.routes),
                    });
                }
                self.routes.insert(k, action);
                changed.routes = true;
                changed.any = true;
                Ok(())
            }
            Update::Modify(Entry::Route(k, action)) => {
                Self::check_route_key(&k)?;
                Self::check_route_action(&action)?;
                let a = self
                    .routes
                    .get_mut(&k)
                    .ok_or(UpdateError::NotFound(EntryKey::Route(k)))?;
                *a = action;
                changed.routes = true;
                changed.any = true;
                Ok(())
            }
            Update::Delete(EntryKey::Route(k)) => {
                Self::check_route_key(&k)?;
                self.routes
                    .remove(&k)
                    .ok_or(UpdateError::NotFound(EntryKey::Route(k)))?;
                changed.routes = true;
                changed.any = true;
                Ok(())
            }
        }
    }

    /// Rebuilds what changed, then publishes.
    fn finish(&mut self, shared: &Shared, mut next: Tables, changed: &Changed) {
        if changed.routes {
            next.routes = Arc::new(Lpm::build(&self.routes));
        }
        if changed.vip {
            let sets = &self.sets;
            next.vip = Arc::new(VipTable::build(
                self.vips.iter().map(|(k, r)| (*k, r.action, r.cell)),
                |vip_id| sets.get(&vip_id).map(|s| s.slot),
            ));
        }
        self.publish_tables(shared, Arc::new(next));
    }

    fn publish_tables(&mut self, shared: &Shared, next: Arc<Tables>) {
        let old = shared.current.swap(Arc::clone(&next));
        self.tables = next;
        // Workers may still hold the old snapshot; keep it until they let
        // go, so they never free table memory on the data path.
        self.retired.push(old);
        self.retired.retain(|t| Arc::strong_count(t) > 1);
    }
}

fn set_bucket(
    next: &mut Tables,
    slot: u32,
    bucket: u32,
    action: Option<&beamer_pipeline::entries::BucketAction>,
) {
    if let Some(Some(set)) = Arc::make_mut(&mut next.sets).get_mut(slot as usize) {
        Arc::make_mut(set).set(bucket, action);
    }
}

/// A data-path thread's handle: it pins a snapshot per batch and counts
/// into its own counters. `Send`, not shared.
pub struct Worker {
    cache: Cache<Arc<ArcSwap<Tables>>, Arc<Tables>>,
    counters: Arc<CounterBlock>,
    shared: Arc<Shared>,
    /// Phase-one results of the batch in progress (capacity 256, never
    /// grown on the data path).
    plans: Vec<Plan>,
}

/// The worker's counters as the pipeline's [`Count`] sink.
struct Sink<'a>(&'a CounterBlock);

impl Count for Sink<'_> {
    #[inline(always)]
    fn vip(&mut self, cell: u32, bytes: u64) {
        self.0.vip.add(cell as usize, bytes);
    }
    #[inline(always)]
    fn bucket(&mut self, cell: u32, bytes: u64) {
        self.0.bucket.add(cell as usize, bytes);
    }
    #[inline(always)]
    fn drop(&mut self, reason: DropReason, bytes: u64) {
        self.0.drops.add(reason.index(), bytes);
    }
    #[inline(always)]
    fn prefetch_bucket(&self, cell: u32) {
        self.0.bucket.prefetch(cell as usize);
    }
}

/// One batch in progress: a pinned snapshot and the worker's counters.
/// Made by [`Worker::begin`], for backends whose frames live in their own
/// memory (a packet ring with reserved headroom, say).
pub struct BatchRun<'w> {
    tables: &'w Tables,
    counters: &'w CounterBlock,
}

impl BatchRun<'_> {
    /// Runs one frame through the pipeline (see [`pipeline::process`]).
    #[inline]
    pub fn process(&mut self, frame: &mut Frame<'_>, ingress_port: u16) -> Verdict {
        let bytes = frame.len() as u64;
        let v = pipeline::process(self.tables, &mut Sink(self.counters), frame, ingress_port);
        self.counters.io.add(0, bytes);
        if let Verdict::Forward { .. } = v {
            self.counters.io.add(1, bytes);
        }
        v
    }

    /// The snapshot this batch runs on.
    pub fn tables(&self) -> &Tables {
        self.tables
    }
}

impl Worker {
    /// Starts a batch: pins the current tables until the [`BatchRun`] is
    /// dropped.
    #[inline]
    pub fn begin(&mut self) -> BatchRun<'_> {
        let Worker {
            cache,
            counters,
            shared,
            ..
        } = self;
        let tables: &Arc<Tables> = cache.load();
        if tables.epoch != counters.epoch {
            // The pipeline was reconfigured: new counter sizes (rare; the
            // only allocation a worker makes after it starts).
            *counters = shared.register(tables);
        }
        BatchRun { tables, counters }
    }

    /// Processes every frame of `batch` against one snapshot, in place,
    /// storing each verdict in the batch. [`Worker::process_frames`] over
    /// the batch's arena.
    #[inline]
    pub fn process_batch(&mut self, batch: &mut Batch) {
        self.process_frames(batch);
    }

    /// Processes a batch of frames wherever they are (a [`Batch`], or
    /// frames left in a packet ring) against one snapshot, in place; the
    /// [`Frames`] keep the verdicts. At most [`BatchSize::MAX`] frames.
    ///
    /// Runs phase one (`pipeline::classify`) over the whole batch,
    /// prefetching each packet's bucket entry and counter, then phase two
    /// (`pipeline::finish`): the same steps as [`pipeline::process`],
    /// with the batch's cache misses overlapped.
    pub fn process_frames(&mut self, batch: &mut impl Frames) {
        let mut plans = std::mem::take(&mut self.plans);
        plans.clear();
        let run = self.begin();
        let (tables, counters) = (run.tables, run.counters);
        let mut sink = Sink(counters);
        let mut received = 0;
        // Prefetching pays only when other packets' work can hide it.
        let ahead = batch.count() > 1;
        batch.each_bytes(|pkt| {
            let plan = pipeline::classify(tables, &mut sink, pkt);
            if ahead {
                pipeline::prefetch(tables, &sink, &plan);
            }
            plans.push(plan);
            received += pkt.len() as u64;
        });
        let (mut fwd_packets, mut fwd_bytes) = (0, 0);
        let n = plans.len() as u64;
        batch.each_frame(|i, frame, _port| {
            let bytes = frame.len() as u64;
            let plan = plans
                .get(i)
                .copied()
                .unwrap_or(Plan::Drop(DropReason::Truncated));
            let v = pipeline::finish(tables, &mut sink, frame, plan);
            if let Verdict::Forward { .. } = v {
                fwd_packets += 1;
                fwd_bytes += bytes;
            }
            v
        });
        counters.io.add_many(0, n, received);
        counters.io.add_many(1, fwd_packets, fwd_bytes);
        self.plans = plans;
    }
}

impl fmt::Debug for Worker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("epoch", &self.counters.epoch)
            .finish_non_exhaustive()
    }
}
