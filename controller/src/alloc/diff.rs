//! The difference between two desired states, as P4Runtime updates in an
//! order that never sends a packet to a missing entry.

use super::model::Vip;
use crate::batches::Batches;
use beamer_pipeline::entries::{BucketKey, Entry, EntryKey, Update, VipAction, VipKey};
use std::collections::BTreeMap;

/// The allocator's table updates from one generation to the next, as
/// [`Batches`]; the switch's generation goes last, after every batch.
///
/// The order: service ports of deleted VIPs stop first; new per-server
/// ports come before buckets that might send MPTCP subflows there; buckets
/// are written before the service ports that lead to them; per-server ports
/// of removed servers go last, once no bucket points there.
pub type Diff = Batches;

/// The write phases of VIP and bucket updates; see [`Diff`] for the order.
/// A switch's [`Plan`](crate::plan::Plan) puts route updates around them.
#[derive(Default)]
pub(crate) struct Phases {
    pub(crate) delete_service: Vec<Update>,
    pub(crate) put_server_ports: Vec<Update>,
    pub(crate) put_buckets: Vec<Update>,
    pub(crate) delete_buckets: Vec<Update>,
    pub(crate) put_service: Vec<Update>,
    pub(crate) delete_server_ports: Vec<Update>,
}

impl Phases {
    /// The phases' updates, in write order.
    pub(crate) fn in_order(self) -> [Vec<Update>; 6] {
        [
            self.delete_service,
            self.put_server_ports,
            self.put_buckets,
            self.delete_buckets,
            self.put_service,
            self.delete_server_ports,
        ]
    }
}

fn vip_map(vips: &BTreeMap<u16, Vip>) -> BTreeMap<VipKey, VipAction> {
    vips.values().flat_map(Vip::vip_entries).collect()
}

/// The updates that turn the switch state of `old` into that of `new`.
pub(crate) fn diff(old: &BTreeMap<u16, Vip>, new: &BTreeMap<u16, Vip>) -> Diff {
    let mut p = Phases::default();

    let (ov, nv) = (vip_map(old), vip_map(new));
    for (k, a) in &ov {
        if !nv.contains_key(k) {
            let u = Update::Delete(EntryKey::Vip(*k));
            match a {
                VipAction::ToBuckets { .. } => p.delete_service.push(u),
                VipAction::ToServer { .. } => p.delete_server_ports.push(u),
            }
        }
    }
    for (k, a) in &nv {
        let u = match ov.get(k) {
            None => Update::Insert(Entry::Vip(*k, *a)),
            Some(o) if o != a => Update::Modify(Entry::Vip(*k, *a)),
            Some(_) => continue,
        };
        match a {
            VipAction::ToServer { .. } => p.put_server_ports.push(u),
            VipAction::ToBuckets { .. } => p.put_service.push(u),
        }
    }

    for (id, o) in old {
        match new.get(id) {
            None => p.delete_buckets.extend(
                o.bucket_entries()
                    .map(|(k, _)| Update::Delete(EntryKey::Bucket(k))),
            ),
            Some(n) => {
                for (i, (ob, nb)) in o.buckets.iter().zip(&n.buckets).enumerate() {
                    if ob == nb || ob.action() == nb.action() {
                        continue;
                    }
                    let k = BucketKey {
                        vip_id: *id,
                        bucket: i as u32,
                    };
                    p.put_buckets
                        .push(match (ob.dip.is_unspecified(), nb.dip.is_unspecified()) {
                            (true, _) => Update::Insert(Entry::Bucket(k, nb.action())),
                            (false, false) => Update::Modify(Entry::Bucket(k, nb.action())),
                            (false, true) => Update::Delete(EntryKey::Bucket(k)),
                        });
                }
            }
        }
    }
    for (id, n) in new {
        if !old.contains_key(id) {
            p.put_buckets.extend(
                n.bucket_entries()
                    .map(|(k, a)| Update::Insert(Entry::Bucket(k, a))),
            );
        }
    }

    p.in_order().into_iter().collect()
}
