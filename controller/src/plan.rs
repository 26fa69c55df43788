//! What every switch must hold ([`Desired`]), what one holds
//! ([`Installed`]), and the ordered writes from one to the other
//! ([`Plan`]). Pure code: no I/O.
//!
//! # Write order
//! 1. The tunnel source, if it changes, with the generation the switch
//!    holds (the OLD one): packets encapsulated from now on carry the right
//!    outer source, and no packet claims a generation whose buckets are not
//!    all in place.
//! 2. New and changed routes, so that tunnels to new servers are routable
//!    before any bucket points there.
//! 3. The VIP and bucket changes, in the allocator's order (see
//!    [`crate::alloc::Diff`]): service ports of deleted VIPs stop first,
//!    per-server ports before buckets, buckets before the service ports
//!    that lead to them, per-server ports of removed servers last.
//! 4. Routes no longer wanted.
//! 5. The new generation, after every bucket entry it covers.
//!
//! Between consecutive generations of a switch known to be in sync, step 3
//! is exactly the allocator's [`Diff`]. Otherwise (a reconnect, a restart,
//! a rejected write, a switch several generations behind) the plan is
//! computed by comparing the switch's tables, read back, with the desired
//! state, in the same phases.

use crate::alloc::{Allocator, Diff, Phases};
use crate::batches::Batches;
use beamer_pipeline::entries::{
    BucketAction, BucketKey, Entry, EntryKey, RouteAction, RouteKey, SwitchConfig, Update,
    VipAction, VipKey,
};
use beamer_pipeline::p4rt::EntryAction;
use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::sync::Arc;

/// The tables every switch must hold at one generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    /// The generation; the config table holds it once everything else is
    /// written.
    pub generation: u32,
    /// Source address of every outer header.
    pub tunnel_src: Ipv4Addr,
    /// VIP table.
    pub vips: BTreeMap<VipKey, VipAction>,
    /// Bucket table.
    pub buckets: HashMap<BucketKey, BucketAction>,
    /// Route table.
    pub routes: BTreeMap<RouteKey, RouteAction>,
    /// The allocator's diff from generation `generation - 1`, when this
    /// state was made by one commit from that one.
    pub diff: Option<Arc<Diff>>,
}

impl Desired {
    /// The desired state of `alloc` at its current generation, with the
    /// given tunnel source and routes; `diff` is the commit that made it.
    pub fn from_allocator(
        alloc: &Allocator,
        tunnel_src: Ipv4Addr,
        routes: &BTreeMap<RouteKey, RouteAction>,
        diff: Option<Arc<Diff>>,
    ) -> Self {
        Desired {
            generation: alloc.generation(),
            tunnel_src,
            vips: alloc.vip_entries().collect(),
            buckets: alloc.bucket_entries().collect(),
            routes: routes.clone(),
            diff,
        }
    }

    /// The config table's default action.
    pub fn config(&self) -> SwitchConfig {
        SwitchConfig {
            tunnel_src: self.tunnel_src,
            generation: self.generation,
        }
    }

    /// Number of table entries (config excluded).
    pub fn len(&self) -> usize {
        self.vips.len() + self.buckets.len() + self.routes.len()
    }

    /// True when no table has an entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every entry, as the switch would hold it.
    pub fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        self.routes
            .iter()
            .map(|(k, a)| Entry::Route(*k, *a))
            .chain(self.vips.iter().map(|(k, a)| Entry::Vip(*k, *a)))
            .chain(self.buckets.iter().map(|(k, a)| Entry::Bucket(*k, *a)))
    }
}

/// What a switch holds, as read back from it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Installed {
    /// The config table's default action; `None` when it could not be
    /// read or decoded.
    pub config: Option<SwitchConfig>,
    /// Every entry; the action is `None` when the switch returned one this
    /// pipeline cannot decode (it is then overwritten or deleted).
    pub entries: HashMap<EntryKey, Option<EntryAction>>,
}

impl Installed {
    /// An empty switch with the program's initial config (what a switch
    /// holds right after its pipeline was pushed).
    pub fn empty() -> Self {
        Installed {
            config: Some(SwitchConfig::default()),
            entries: HashMap::new(),
        }
    }

    /// What a switch holds when it holds exactly `d`.
    pub fn from_desired(d: &Desired) -> Self {
        Installed {
            config: Some(d.config()),
            entries: d
                .entries()
                .map(|e| (e.key(), Some(EntryAction::of(&e))))
                .collect(),
        }
    }

    /// Whether the switch holds exactly `d`.
    pub fn matches(&self, d: &Desired) -> bool {
        self.config == Some(d.config())
            && self.entries.len() == d.len()
            && d.entries()
                .all(|e| self.entries.get(&e.key()) == Some(&Some(EntryAction::of(&e))))
    }
}

/// The writes that take one switch to a desired state, as [`Batches`] in
/// the write order of the module documentation.
pub type Plan = Batches;

/// Steps 1 and 5 around a body of table writes: the tunnel source with
/// the old generation first (when it changes and the old generation is
/// known), the new generation last.
fn frame(installed: Option<SwitchConfig>, desired: &Desired, body: Plan) -> Plan {
    let mut plan = Plan::default();
    if let Some(old) = installed
        && old.tunnel_src != desired.tunnel_src
    {
        plan.push(vec![Update::SetConfig(SwitchConfig {
            tunnel_src: desired.tunnel_src,
            generation: old.generation,
        })]);
    }
    plan.batches.extend(body.batches);
    let tunnel_set_first = installed.is_some_and(|o| o.tunnel_src != desired.tunnel_src);
    let new_config = desired.config();
    let current = if tunnel_set_first {
        installed.map(|o| SwitchConfig {
            tunnel_src: desired.tunnel_src,
            generation: o.generation,
        })
    } else {
        installed
    };
    if current != Some(new_config) {
        plan.push(vec![Update::SetConfig(new_config)]);
    }
    plan
}

/// The plan from a switch known to hold `installed` to `desired`, using the
/// allocator's diff when `desired` is the very next generation and routes
/// and tunnel source are unchanged; `None` when it is not (use
/// [`reconcile`]).
pub fn incremental(installed: &Desired, desired: &Desired) -> Option<Plan> {
    let diff = desired.diff.as_ref()?;
    if desired.generation != installed.generation.checked_add(1)?
        || desired.routes != installed.routes
    {
        return None;
    }
    Some(frame(Some(installed.config()), desired, (**diff).clone()))
}

/// The plan from what a switch holds, read back, to `desired`: every
/// difference, in the write order of the module documentation.
pub fn reconcile(installed: &Installed, desired: &Desired) -> Plan {
    let mut p = Phases::default();
    let (mut put_routes, mut delete_routes) = (Vec::new(), Vec::new());

    let put = |entry: Entry| -> Option<Update> {
        match installed.entries.get(&entry.key()) {
            None => Some(Update::Insert(entry)),
            Some(Some(a)) if *a == EntryAction::of(&entry) => None,
            Some(_) => Some(Update::Modify(entry)),
        }
    };
    for (k, a) in &desired.routes {
        put_routes.extend(put(Entry::Route(*k, *a)));
    }
    for (k, a) in &desired.vips {
        let u = put(Entry::Vip(*k, *a));
        match a {
            VipAction::ToServer { .. } => p.put_server_ports.extend(u),
            VipAction::ToBuckets { .. } => p.put_service.extend(u),
        }
    }
    let mut buckets: Vec<_> = desired.buckets.iter().collect();
    buckets.sort_unstable_by_key(|(k, _)| **k);
    for (k, a) in buckets {
        p.put_buckets.extend(put(Entry::Bucket(*k, *a)));
    }

    let mut stale: Vec<(&EntryKey, &Option<EntryAction>)> = installed
        .entries
        .iter()
        .filter(|(k, _)| match k {
            EntryKey::Vip(v) => !desired.vips.contains_key(v),
            EntryKey::Bucket(b) => !desired.buckets.contains_key(b),
            EntryKey::Route(r) => !desired.routes.contains_key(r),
        })
        .collect();
    stale.sort_unstable_by_key(|(k, _)| **k);
    for (k, a) in stale {
        let u = Update::Delete(*k);
        match (k, a) {
            (EntryKey::Route(_), _) => delete_routes.push(u),
            (EntryKey::Bucket(_), _) => p.delete_buckets.push(u),
            // A per-server port goes last, once no bucket points there; a
            // service port (or one we cannot read) stops first.
            (EntryKey::Vip(_), Some(EntryAction::Vip(VipAction::ToServer { .. }))) => {
                p.delete_server_ports.push(u)
            }
            (EntryKey::Vip(_), _) => p.delete_service.push(u),
        }
    }

    let body = std::iter::once(put_routes)
        .chain(p.in_order())
        .chain([delete_routes])
        .collect();
    frame(installed.config, desired, body)
}

/// Applies `plan` to `installed`, as a switch that accepted every update
/// would: for tests and for simulating a switch.
pub fn apply(installed: &mut Installed, plan: &Plan) -> Result<(), String> {
    for u in plan.updates() {
        match u {
            Update::Insert(e) => {
                if installed
                    .entries
                    .insert(e.key(), Some(EntryAction::of(e)))
                    .is_some()
                {
                    return Err(format!("INSERT of existing {:?}", e.key()));
                }
            }
            Update::Modify(e) => {
                if installed
                    .entries
                    .insert(e.key(), Some(EntryAction::of(e)))
                    .is_none()
                {
                    return Err(format!("MODIFY of missing {:?}", e.key()));
                }
            }
            Update::Delete(k) => {
                if installed.entries.remove(k).is_none() {
                    return Err(format!("DELETE of missing {k:?}"));
                }
            }
            Update::SetConfig(c) => installed.config = Some(*c),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
