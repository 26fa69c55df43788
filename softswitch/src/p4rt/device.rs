//! The P4Runtime target: the forwarding-pipeline configuration, and
//! `Write` and `Read` on the switch's tables and counters with the
//! semantics of the P4Runtime specification (v1.5.0). Sans-IO: the gRPC
//! service checks device ids and arbitration, then calls in here.
//!
//! Decoding and its error codes live in [`beamer_pipeline::p4rt`]; what is
//! decided here is what needs the switch's state: ALREADY_EXISTS,
//! NOT_FOUND, RESOURCE_EXHAUSTED (from [`Switch::apply`]), and
//! FAILED_PRECONDITION before a pipeline is set.

use crate::counters::CounterData;
use crate::switch::{CounterError, Switch, TableKind, UpdateError};
use beamer_pipeline::entries::{Entry, EntryKey, SwitchConfig, Update};
use beamer_pipeline::p4rt::{
    Code, Counts, P4rtError, Pipeline, Read, TableRead, Write, check_p4info, default_entry_to_p4,
    direct_counter_entry_to_p4, entry_to_p4,
};
use beamer_pipeline::{DropReason, Target};
use p4runtime_proto::p4::v1;
use std::collections::HashMap;
use v1::set_forwarding_pipeline_config_request::Action as ConfigAction;

/// Default for [`Device::max_updates`]: the most updates one `Write` may
/// carry. 2^20 bucket updates are about 50 MB on the wire, under the
/// server's 64 MiB message limit; a larger batch is refused whole with
/// RESOURCE_EXHAUSTED.
pub const MAX_UPDATES_PER_WRITE: usize = 1 << 20;

/// A pipeline the switch runs (or has saved): the P4Info's view of it and
/// the config message as it was set.
#[derive(Debug, Clone)]
struct Installed {
    pipeline: Pipeline,
    config: v1::ForwardingPipelineConfig,
}

/// A config saved by VERIFY_AND_SAVE and not yet committed. Writes made
/// meanwhile refer to it: they go to a shadow switch of its sizes (which
/// answers them exactly as the real one would) and to a log that COMMIT
/// replays onto the reconfigured switch.
struct Saved {
    installed: Installed,
    shadow: Switch,
    log: Vec<Write>,
}

/// The P4Runtime view of one [`Switch`].
pub struct Device {
    switch: Switch,
    committed: Option<Installed>,
    saved: Option<Saved>,
    max_updates: usize,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("pipeline", &self.committed.as_ref().map(|i| i.pipeline))
            .field("saved", &self.saved.as_ref().map(|s| s.installed.pipeline))
            .finish_non_exhaustive()
    }
}

fn invalid(message: impl Into<String>) -> P4rtError {
    P4rtError::new(Code::InvalidArgument, message)
}

/// How an entry is named in error messages.
pub fn describe(key: &EntryKey) -> String {
    match key {
        EntryKey::Vip(k) => format!(
            "vip entry (dst_addr {}, protocol {}, dst_port {})",
            k.dst, k.protocol, k.port
        ),
        EntryKey::Bucket(k) => format!("buckets entry (vip_id {}, bucket {})", k.vip_id, k.bucket),
        EntryKey::Route(k) => format!("routes entry {k}"),
    }
}

fn update_error(e: UpdateError) -> P4rtError {
    match e {
        UpdateError::AlreadyExists(k) => P4rtError::new(
            Code::AlreadyExists,
            format!("{} already exists", describe(&k)),
        ),
        UpdateError::NotFound(k) => {
            P4rtError::new(Code::NotFound, format!("{} does not exist", describe(&k)))
        }
        e @ UpdateError::ResourceExhausted { .. } => {
            P4rtError::new(Code::ResourceExhausted, e.to_string())
        }
        UpdateError::InvalidArgument(m) => invalid(m),
    }
}

fn counter_error(e: CounterError) -> P4rtError {
    match e {
        CounterError::NotFound(k) => {
            P4rtError::new(Code::NotFound, format!("{} does not exist", describe(&k)))
        }
        e @ CounterError::NoCounter(_) => invalid(e.to_string()),
    }
}

fn counts(c: CounterData) -> Counts {
    Counts {
        packets: c.packets,
        bytes: c.bytes,
    }
}

fn counter_data(c: Counts) -> CounterData {
    CounterData {
        packets: c.packets,
        bytes: c.bytes,
    }
}

/// The table change of a write that involves no counter, which can be
/// applied together with its neighbours in one [`Switch::apply`].
fn plain(w: &Write) -> Option<Update> {
    match *w {
        Write::Insert {
            entry,
            counts: None,
        } => Some(Update::Insert(entry)),
        Write::Modify {
            key,
            action: Some(a),
            counts: None,
        } => a.with_key(key).map(Update::Modify),
        Write::Delete(k) => Some(Update::Delete(k)),
        Write::SetConfig(c) => Some(Update::SetConfig(c)),
        _ => None,
    }
}

fn apply_one(switch: &Switch, update: Update) -> Result<(), P4rtError> {
    switch
        .apply(&[update])
        .pop()
        .expect("one result per update")
        .map_err(update_error)
}

/// A write that sets a counter (or checks an entry exists), done alone.
fn write_with_counters(switch: &Switch, w: &Write) -> Result<(), P4rtError> {
    match *w {
        Write::Insert { entry, counts } => {
            apply_one(switch, Update::Insert(entry))?;
            if let Some(c) = counts {
                switch
                    .set_counter(&entry.key(), counter_data(c))
                    .map_err(counter_error)?;
            }
            Ok(())
        }
        Write::Modify {
            key,
            action,
            counts,
        } => {
            match action {
                Some(a) => {
                    let entry = a
                        .with_key(key)
                        .ok_or_else(|| invalid("the action is not one of the entry's table"))?;
                    apply_one(switch, Update::Modify(entry))?;
                }
                // MODIFY without an action keeps it; the entry must exist.
                None if switch.entry(&key).is_none() => {
                    return Err(P4rtError::new(
                        Code::NotFound,
                        format!("{} does not exist", describe(&key)),
                    ));
                }
                None => {}
            }
            if let Some(c) = counts {
                switch
                    .set_counter(&key, counter_data(c))
                    .map_err(counter_error)?;
            }
            Ok(())
        }
        Write::SetDirectCounter { key, counts } => {
            // "DirectCounterEntry": NOT_FOUND when the entry does not exist,
            // even if there is no value to write.
            switch.counter(&key).map_err(counter_error)?;
            if let Some(c) = counts {
                switch
                    .set_counter(&key, counter_data(c))
                    .map_err(counter_error)?;
            }
            Ok(())
        }
        Write::SetDropCounter { reason, counts } => {
            if let Some(c) = counts {
                match reason {
                    Some(r) => switch.set_drop_counter(r, counter_data(c)),
                    None => DropReason::ALL
                        .into_iter()
                        .for_each(|r| switch.set_drop_counter(r, counter_data(c))),
                }
            }
            Ok(())
        }
        Write::Delete(k) => apply_one(switch, Update::Delete(k)),
        Write::SetConfig(c) => apply_one(switch, Update::SetConfig(c)),
    }
}

/// Applies decoded writes in order: runs of plain table changes together
/// (one new snapshot per run), counter writes alone. Successful writes are
/// appended to `log` when given.
fn apply_writes(
    switch: &Switch,
    writes: impl IntoIterator<Item = Result<Write, P4rtError>>,
    mut log: Option<&mut Vec<Write>>,
) -> Vec<Result<(), P4rtError>> {
    let mut results = Vec::new();
    let mut run: Vec<(usize, Write)> = Vec::new();
    let mut run_updates: Vec<Update> = Vec::new();

    let flush = |run: &mut Vec<(usize, Write)>,
                 run_updates: &mut Vec<Update>,
                 results: &mut Vec<Result<(), P4rtError>>,
                 log: &mut Option<&mut Vec<Write>>| {
        if run.is_empty() {
            return;
        }
        for ((i, w), r) in run.iter().zip(switch.apply(run_updates)) {
            match r {
                Ok(()) => {
                    if let Some(l) = log.as_deref_mut() {
                        l.push(*w);
                    }
                }
                Err(e) => results[*i] = Err(update_error(e)),
            }
        }
        run.clear();
        run_updates.clear();
    };

    for (i, w) in writes.into_iter().enumerate() {
        results.push(Ok(()));
        let w = match w {
            Ok(w) => w,
            Err(e) => {
                results[i] = Err(e);
                continue;
            }
        };
        if let Some(u) = plain(&w) {
            run.push((i, w));
            run_updates.push(u);
            continue;
        }
        flush(&mut run, &mut run_updates, &mut results, &mut log);
        let r = write_with_counters(switch, &w);
        if r.is_ok()
            && let Some(l) = log.as_deref_mut()
        {
            l.push(w);
        }
        results[i] = r;
    }
    flush(&mut run, &mut run_updates, &mut results, &mut log);
    results
}

/// What a batch may change, as it was before: for ROLLBACK_ON_ERROR.
#[derive(Default)]
struct Before {
    /// Each entry named by the batch: was it there, and was its counter
    /// reset or written (then its old value).
    entries: HashMap<EntryKey, (Option<Entry>, Option<CounterData>)>,
    config: Option<SwitchConfig>,
    drops: Option<[CounterData; DropReason::COUNT]>,
}

impl Before {
    fn record(&mut self, switch: &Switch, w: &Write) {
        let (key, counter_changes) = match *w {
            Write::Insert { entry, .. } => (entry.key(), true),
            Write::Delete(key) => (key, true),
            Write::Modify { key, counts, .. } => (key, counts.is_some()),
            Write::SetDirectCounter { key, counts } => (key, counts.is_some()),
            Write::SetConfig(_) => {
                self.config.get_or_insert_with(|| switch.config());
                return;
            }
            Write::SetDropCounter { .. } => {
                self.drops.get_or_insert_with(|| switch.drop_counters());
                return;
            }
        };
        let old = self
            .entries
            .entry(key)
            .or_insert_with(|| (switch.entry(&key), None));
        if counter_changes && old.1.is_none() && old.0.is_some() {
            old.1 = switch.counter(&key).ok();
        }
    }

    /// Puts everything recorded back.
    fn restore(&self, switch: &Switch) -> Result<(), P4rtError> {
        let mut undo = Vec::new();
        // Removals first, so that re-inserted entries find room.
        for (key, (old, _)) in &self.entries {
            if old.is_none() && switch.entry(key).is_some() {
                undo.push(Update::Delete(*key));
            }
        }
        for (key, (old, _)) in &self.entries {
            if let Some(e) = old {
                match switch.entry(key) {
                    None => undo.push(Update::Insert(*e)),
                    Some(now) if now != *e => undo.push(Update::Modify(*e)),
                    Some(_) => {}
                }
            }
        }
        if let Some(c) = self.config {
            undo.push(Update::SetConfig(c));
        }
        if let Err((i, e)) = switch.apply_all(&undo) {
            return Err(P4rtError::new(
                Code::Internal,
                format!("rolling back failed at {:?}: {e}", undo[i]),
            ));
        }
        for (key, (_, counts)) in &self.entries {
            if let Some(c) = counts {
                switch.set_counter(key, *c).map_err(counter_error)?;
            }
        }
        if let Some(d) = self.drops {
            for r in DropReason::ALL {
                switch.set_drop_counter(r, d[r.index()]);
            }
        }
        Ok(())
    }
}

/// ROLLBACK_ON_ERROR: all of `writes` or none. An invalid update stops
/// the batch before anything is applied; an update the switch refuses
/// makes the others undone. Either way the failed updates keep their
/// error and the others are ABORTED.
fn apply_or_roll_back(
    switch: &Switch,
    writes: Vec<Result<Write, P4rtError>>,
    log: Option<&mut Vec<Write>>,
) -> Vec<Result<(), P4rtError>> {
    let aborted = |results: Vec<Result<(), P4rtError>>| -> Vec<Result<(), P4rtError>> {
        let Some(first) = results.iter().position(Result::is_err) else {
            return results;
        };
        results
            .into_iter()
            .map(|r| {
                r.and(Err(P4rtError::new(
                    Code::Aborted,
                    format!("rolled back: update {first} of the batch failed"),
                )))
            })
            .collect()
    };
    if writes.iter().any(Result::is_err) {
        return aborted(writes.into_iter().map(|w| w.map(drop)).collect());
    }
    let writes: Vec<Write> = writes.into_iter().flatten().collect();
    let mut before = Before::default();
    for w in &writes {
        before.record(switch, w);
    }
    let mut applied = Vec::new();
    let results = apply_writes(switch, writes.iter().copied().map(Ok), Some(&mut applied));
    if results.iter().all(Result::is_ok) {
        if let Some(log) = log {
            log.extend(applied);
        }
        return results;
    }
    if let Err(e) = before.restore(switch) {
        return vec![Err(e); writes.len()];
    }
    aborted(results)
}

impl Device {
    /// The P4Runtime target for `switch`, with no pipeline set: every
    /// `Write` and `Read` is FAILED_PRECONDITION until a
    /// `SetForwardingPipelineConfig` commits one.
    pub fn new(switch: Switch) -> Self {
        Device {
            switch,
            committed: None,
            saved: None,
            max_updates: MAX_UPDATES_PER_WRITE,
        }
    }

    /// Treats `p4info` as already committed (a pipeline installed by other
    /// means, e.g. a table file loaded at start): the switch keeps its
    /// entries. The P4Info must describe the pipeline the switch runs now.
    pub fn preinstall(
        &mut self,
        p4info: p4runtime_proto::p4::config::v1::P4Info,
    ) -> Result<(), P4rtError> {
        let installed = Self::verify(Some(v1::ForwardingPipelineConfig {
            p4info: Some(p4info),
            ..Default::default()
        }))?;
        let running = self.switch.params();
        if installed.pipeline.params != running {
            return Err(invalid(format!(
                "the P4Info describes sizes {:?}, but the switch runs {running:?}",
                installed.pipeline.params
            )));
        }
        self.committed = Some(installed);
        Ok(())
    }

    /// Sets the most updates one `Write` may carry.
    pub fn set_max_updates(&mut self, max: usize) {
        self.max_updates = max;
    }

    /// The most updates one `Write` may carry.
    pub fn max_updates(&self) -> usize {
        self.max_updates
    }

    /// The switch this device drives.
    pub fn switch(&self) -> &Switch {
        &self.switch
    }

    /// The committed pipeline, if any.
    pub fn pipeline(&self) -> Option<&Pipeline> {
        self.committed.as_ref().map(|i| &i.pipeline)
    }

    /// Checks that `config` can be realized: a P4Info describing the Beamer
    /// pipeline with sizes the software switch holds. `p4_device_config`
    /// is opaque to this target (the program is built in) and kept as is.
    fn verify(config: Option<v1::ForwardingPipelineConfig>) -> Result<Installed, P4rtError> {
        let config = config.ok_or_else(|| invalid("no config was given"))?;
        let p4info = config
            .p4info
            .as_ref()
            .ok_or_else(|| invalid("the config has no p4info"))?;
        let pipeline = check_p4info(p4info).map_err(|m| invalid(m.to_string()))?;
        // The software switch is a v1model target; a TNA P4Info of the same
        // pipeline has smaller limits, so it passes too.
        pipeline
            .params
            .validate(Target::V1model)
            .map_err(|e| invalid(format!("the P4Info's sizes do not fit this switch: {e}")))?;
        Ok(Installed { pipeline, config })
    }

    /// `SetForwardingPipelineConfig` with `action` (a
    /// `SetForwardingPipelineConfigRequest.Action` value), after the
    /// caller has checked the device id and that the client is primary.
    ///
    /// VERIFY_AND_COMMIT clears every entry and counter (spec: "the
    /// forwarding state in the target is cleared"), even for the same
    /// P4Info. RECONCILE_AND_COMMIT keeps them when the new P4Info gives
    /// the same pipeline (sizes and IDs), and is INVALID_ARGUMENT
    /// otherwise: the tables would have to be rebuilt.
    pub fn set_pipeline(
        &mut self,
        action: i32,
        config: Option<v1::ForwardingPipelineConfig>,
    ) -> Result<(), P4rtError> {
        let action = ConfigAction::try_from(action)
            .ok()
            .filter(|a| *a != ConfigAction::Unspecified)
            .ok_or_else(|| invalid(format!("config action {action} is not set or not known")))?;
        match action {
            ConfigAction::Unspecified => unreachable!("filtered above"),
            ConfigAction::Verify => Self::verify(config).map(drop),
            ConfigAction::VerifyAndSave => {
                let installed = Self::verify(config)?;
                let shadow =
                    Switch::new(installed.pipeline.params).map_err(|e| invalid(e.to_string()))?;
                self.saved = Some(Saved {
                    installed,
                    shadow,
                    log: Vec::new(),
                });
                Ok(())
            }
            ConfigAction::VerifyAndCommit => {
                let installed = Self::verify(config)?;
                self.commit(installed, Vec::new())
            }
            ConfigAction::Commit => {
                if config.is_some() {
                    return Err(invalid("COMMIT takes no config: it commits the saved one"));
                }
                let saved = self.saved.take().ok_or_else(|| {
                    P4rtError::new(
                        Code::NotFound,
                        "there is no saved config to commit (VERIFY_AND_SAVE first)",
                    )
                })?;
                self.commit(saved.installed, saved.log)
            }
            ConfigAction::ReconcileAndCommit => {
                let installed = Self::verify(config)?;
                match &self.committed {
                    // Nothing to preserve yet.
                    None => self.commit(installed, Vec::new()),
                    Some(current) if current.pipeline == installed.pipeline => {
                        self.committed = Some(installed);
                        self.saved = None;
                        Ok(())
                    }
                    Some(current) => Err(invalid(format!(
                        "the forwarding state cannot be preserved: the new P4Info changes the \
                         pipeline from {:?} to {:?}; use VERIFY_AND_COMMIT",
                        current.pipeline.params, installed.pipeline.params
                    ))),
                }
            }
        }
    }

    /// Reconfigures the switch for `installed` (clearing it) and replays
    /// `log`.
    fn commit(&mut self, installed: Installed, log: Vec<Write>) -> Result<(), P4rtError> {
        self.switch
            .reconfigure(installed.pipeline.params)
            .map_err(|e| invalid(e.to_string()))?;
        let replayed = apply_writes(&self.switch, log.into_iter().map(Ok), None);
        debug_assert!(
            replayed.iter().all(Result::is_ok),
            "the shadow switch accepted these writes"
        );
        self.committed = Some(installed);
        self.saved = None;
        Ok(())
    }

    /// `GetForwardingPipelineConfig`: the committed config, with the fields
    /// `response_type` asks for; `None` before any pipeline is set (spec:
    /// the response's `config` is then unset).
    pub fn get_pipeline(
        &self,
        response_type: i32,
    ) -> Result<Option<v1::ForwardingPipelineConfig>, P4rtError> {
        use v1::get_forwarding_pipeline_config_request::ResponseType as R;
        let kind = R::try_from(response_type)
            .map_err(|_| invalid(format!("response_type {response_type} is not known")))?;
        let Some(installed) = &self.committed else {
            return Ok(None);
        };
        let c = &installed.config;
        Ok(Some(match kind {
            R::All => c.clone(),
            R::CookieOnly => v1::ForwardingPipelineConfig {
                cookie: c.cookie,
                ..Default::default()
            },
            R::P4infoAndCookie => v1::ForwardingPipelineConfig {
                p4info: c.p4info.clone(),
                cookie: c.cookie,
                ..Default::default()
            },
            R::DeviceConfigAndCookie => v1::ForwardingPipelineConfig {
                p4_device_config: c.p4_device_config.clone(),
                cookie: c.cookie,
                ..Default::default()
            },
        }))
    }

    /// The pipeline and switch that `Write` and `Read` refer to: the saved
    /// config's shadow switch while one is pending, else the committed one.
    fn active(&self) -> Result<(&Pipeline, &Switch), P4rtError> {
        if let Some(s) = &self.saved {
            return Ok((&s.installed.pipeline, &s.shadow));
        }
        let installed = self.committed.as_ref().ok_or_else(|| {
            P4rtError::new(
                Code::FailedPrecondition,
                "no forwarding pipeline is set: SetForwardingPipelineConfig first",
            )
        })?;
        Ok((&installed.pipeline, &self.switch))
    }

    /// `Write`, after the caller has checked the device id and that the
    /// client is primary. `Err` is an RPC-wide error (nothing was tried):
    /// FAILED_PRECONDITION before a pipeline is set, UNIMPLEMENTED for the
    /// optional atomicity modes, RESOURCE_EXHAUSTED for a batch over
    /// [`Device::max_updates`]. `Ok` holds one result per update, in
    /// order; a failed update changed nothing.
    ///
    /// Atomicity (spec, "Batch Atomicity"):
    /// - CONTINUE_ON_ERROR: runs of table changes are applied in one
    ///   snapshot each, so when every update of a batch without counter
    ///   writes succeeds, packets see the batch whole or not at all;
    /// - ROLLBACK_ON_ERROR: if any update fails, the others are undone
    ///   (entries, config and counters as before the batch) and answered
    ///   ABORTED; packets may see the batch's state for the moment between
    ///   the two snapshots, which the spec allows;
    /// - DATAPLANE_ATOMIC is UNIMPLEMENTED: a failing batch would have to
    ///   leave no trace on the data path, and the switch publishes the
    ///   successful updates of a call before the undo.
    pub fn write(
        &mut self,
        request: &v1::WriteRequest,
    ) -> Result<Vec<Result<(), P4rtError>>, P4rtError> {
        use v1::write_request::Atomicity;
        self.active()?;
        let rollback = match Atomicity::try_from(request.atomicity) {
            Ok(Atomicity::ContinueOnError) => false,
            Ok(Atomicity::RollbackOnError) => true,
            Ok(a @ Atomicity::DataplaneAtomic) => {
                return Err(P4rtError::new(
                    Code::Unimplemented,
                    format!(
                        "atomicity {} is not supported; use CONTINUE_ON_ERROR or \
                         ROLLBACK_ON_ERROR",
                        a.as_str_name()
                    ),
                ));
            }
            Err(_) => {
                return Err(invalid(format!(
                    "atomicity {} is not known",
                    request.atomicity
                )));
            }
        };
        if request.updates.len() > self.max_updates {
            return Err(P4rtError::new(
                Code::ResourceExhausted,
                format!(
                    "the batch has {} updates, more than the {} this switch takes in one Write",
                    request.updates.len(),
                    self.max_updates
                ),
            ));
        }
        let (pipeline, switch, log) = match &mut self.saved {
            Some(s) => (&s.installed.pipeline, &s.shadow, Some(&mut s.log)),
            None => {
                let i = self.committed.as_ref().expect("checked by active()");
                (&i.pipeline, &self.switch, None)
            }
        };
        let writes = request.updates.iter().map(|u| pipeline.write_from_p4(u));
        if rollback {
            return Ok(apply_or_roll_back(switch, writes.collect(), log));
        }
        Ok(apply_writes(switch, writes, log))
    }

    /// `Read`: calls `emit` with each entity found. `Err` is an RPC-wide
    /// error (FAILED_PRECONDITION before a pipeline is set); `Ok` holds one
    /// result per requested entity, in order.
    pub fn read(
        &self,
        entities: &[v1::Entity],
        emit: &mut dyn FnMut(v1::Entity),
    ) -> Result<Vec<Result<(), P4rtError>>, P4rtError> {
        let (pipeline, switch) = self.active()?;
        Ok(entities
            .iter()
            .map(|e| {
                let read = pipeline.read_from_p4(e)?;
                read_one(pipeline, switch, &read, emit)
            })
            .collect())
    }
}

fn table_entity(te: v1::TableEntry) -> v1::Entity {
    v1::Entity {
        entity: Some(v1::entity::Entity::TableEntry(te)),
    }
}

fn direct_counter_entity(dce: v1::DirectCounterEntry) -> v1::Entity {
    v1::Entity {
        entity: Some(v1::entity::Entity::DirectCounterEntry(dce)),
    }
}

/// The tables a read covers: the one named, or every table (those with a
/// direct counter, for direct counter reads).
fn tables_of(read: &TableRead, counters_only: bool) -> Vec<TableKind> {
    TableKind::ALL
        .into_iter()
        .filter(|t| read.includes_table(t.schema().id))
        .filter(|t| !counters_only || t.schema().direct_counter.is_some())
        .collect()
}

fn read_one(
    pipeline: &Pipeline,
    switch: &Switch,
    read: &Read,
    emit: &mut dyn FnMut(v1::Entity),
) -> Result<(), P4rtError> {
    match read {
        Read::Tables(tr) => {
            for kind in tables_of(tr, false) {
                let t = kind.schema();
                let with_counters = tr.with_counters && t.direct_counter.is_some();
                if tr.default_entry {
                    if tr.matches_default(t) {
                        let mut te = default_entry_to_p4(t, &switch.config());
                        if with_counters {
                            let c = switch.default_counter(kind).map_err(counter_error)?;
                            te.counter_data = Some(counts(c).to_p4());
                        }
                        emit(table_entity(te));
                    }
                    continue;
                }
                let entries = match tr.key {
                    Some(key) => switch.entry(&key).into_iter().collect(),
                    None => switch.entries(kind),
                };
                for e in entries.iter().filter(|e| tr.matches(e)) {
                    let mut te = entry_to_p4(e);
                    if with_counters {
                        let c = switch.counter(&e.key()).map_err(counter_error)?;
                        te.counter_data = Some(counts(c).to_p4());
                    }
                    emit(table_entity(te));
                }
            }
            Ok(())
        }
        Read::DirectCounters(tr) => {
            if let Some(key) = tr.key {
                // "DirectCounterEntry": a read naming a missing entry is
                // NOT_FOUND.
                let entry = switch.entry(&key).ok_or_else(|| {
                    P4rtError::new(Code::NotFound, format!("{} does not exist", describe(&key)))
                })?;
                if tr.matches(&entry) {
                    let c = switch.counter(&key).map_err(counter_error)?;
                    emit(direct_counter_entity(direct_counter_entry_to_p4(
                        &key,
                        counts(c),
                    )));
                }
                return Ok(());
            }
            for kind in tables_of(tr, true) {
                let t = kind.schema();
                if tr.default_entry {
                    if tr.matches_default(t) {
                        let c = switch.default_counter(kind).map_err(counter_error)?;
                        emit(direct_counter_entity(v1::DirectCounterEntry {
                            table_entry: Some(v1::TableEntry {
                                table_id: t.id,
                                is_default_action: true,
                                ..Default::default()
                            }),
                            data: Some(counts(c).to_p4()),
                        }));
                    }
                    continue;
                }
                for e in switch.entries(kind).iter().filter(|e| tr.matches(e)) {
                    let c = switch.counter(&e.key()).map_err(counter_error)?;
                    emit(direct_counter_entity(direct_counter_entry_to_p4(
                        &e.key(),
                        counts(c),
                    )));
                }
            }
            Ok(())
        }
        Read::DropCounter { reason } => {
            let reasons: Vec<DropReason> = match reason {
                Some(r) => vec![*r],
                None => DropReason::ALL.to_vec(),
            };
            for r in reasons {
                let ce = pipeline.drop_counter_entry_to_p4(r, counts(switch.drop_counter(r)));
                emit(v1::Entity {
                    entity: Some(v1::entity::Entity::CounterEntry(ce)),
                });
            }
            Ok(())
        }
        Read::Nothing => Ok(()),
    }
}
