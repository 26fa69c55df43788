//! The tables one batch sees: an immutable snapshot, shared by reference.
//!
//! [`Tables`] is never written after it is published. The control plane
//! ([`crate::Switch::apply`]) builds the next snapshot from the current one,
//! sharing everything it does not change:
//!
//! - the VIP table (a small open-addressing hash) and the route trie
//!   (`lpm`) are rebuilt whole when one of their entries changes; both are
//!   small and change rarely;
//! - the bucket table is one `BucketSet` per `vip_id`, cut into chunks of
//!   1,024 buckets behind `Arc`s. A write copies only the chunk it touches
//!   (16 KiB) and the set's chunk list, so a single-entry write does not
//!   copy 64K buckets; further writes to the same chunk in the same call
//!   reuse the copy.

pub(crate) mod lpm;

use crate::hash::Crc6;
use beamer_pipeline::PipelineParams;
use beamer_pipeline::entries::{BucketAction, RouteAction, SwitchConfig, VipAction, VipKey};
use lpm::Lpm;
use std::net::Ipv4Addr;
use std::sync::Arc;

/// Buckets per chunk, as a power of two.
const CHUNK_BITS: u32 = 10;
/// Buckets per chunk.
pub(crate) const CHUNK: usize = 1 << CHUNK_BITS;

/// An immutable snapshot of every table of the pipeline.
///
/// Get the current one with [`crate::Switch::snapshot`]; the pipeline
/// function [`crate::pipeline::process`] reads nothing else.
#[derive(Clone)]
pub struct Tables {
    /// Changes when the pipeline is reconfigured; counter blocks carry it.
    pub(crate) epoch: u64,
    pub(crate) params: PipelineParams,
    pub(crate) bucket_mask: u32,
    pub(crate) cells: CellLayout,
    pub(crate) config: SwitchConfig,
    pub(crate) hash: &'static Crc6,
    pub(crate) vip: Arc<VipTable>,
    /// Bucket sets by set slot (see [`VipHit::ToBuckets`]).
    pub(crate) sets: Arc<Vec<Option<Arc<BucketSet>>>>,
    pub(crate) routes: Arc<Lpm>,
}

/// What a VIP entry tells the data path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VipHit {
    /// Hash into the bucket set in slot `set`, or miss every bucket when
    /// the `vip_id` has no bucket entry at all ([`NO_SET`]).
    ToBuckets {
        /// Slot of the bucket set.
        set: u32,
    },
    /// Encapsulate to this server, without the option.
    ToServer {
        /// The server's address.
        dip: u32,
    },
}

/// The set slot of a `vip_id` without bucket entries.
pub(crate) const NO_SET: u32 = u32::MAX;

impl Tables {
    /// Empty tables for `params` (validated by the caller).
    pub(crate) fn empty(epoch: u64, params: PipelineParams) -> Tables {
        Tables {
            epoch,
            params,
            bucket_mask: beamer_pipeline::hash::bucket_mask(params.bucket_bits()),
            cells: CellLayout::of(&params),
            config: SwitchConfig::default(),
            hash: Crc6::get(),
            vip: Arc::new(VipTable::build(std::iter::empty(), |_| None)),
            sets: Arc::new(vec![None; params.max_vips as usize]),
            routes: Arc::new(Lpm::empty()),
        }
    }

    /// The sizes these tables were built for.
    pub fn params(&self) -> &PipelineParams {
        &self.params
    }

    /// The config table's default action.
    pub fn config(&self) -> SwitchConfig {
        self.config
    }

    /// 2^k - 1, the mask that makes a CRC a bucket.
    #[inline]
    pub(crate) fn bucket_mask(&self) -> u32 {
        self.bucket_mask
    }

    /// VIP lookup: (counter cell, action) of the entry, if any.
    #[inline]
    pub(crate) fn vip(&self, dst: u32, protocol: u8, port: u16) -> Option<(u32, VipHit)> {
        self.vip.lookup(dst, protocol, port)
    }

    /// The bucket entry of `bucket` in set slot `set`, if present.
    #[inline]
    pub(crate) fn bucket(&self, set: u32, bucket: u32) -> Option<&BucketSlot> {
        self.sets.get(set as usize)?.as_deref()?.get(bucket)
    }

    /// The place of the entry of `bucket` in set slot `set`, present or not
    /// (for prefetching).
    #[inline]
    pub(crate) fn bucket_slot_ref(&self, set: u32, bucket: u32) -> Option<&BucketSlot> {
        self.sets.get(set as usize)?.as_deref()?.slot_ref(bucket)
    }

    /// Route lookup.
    #[inline]
    pub(crate) fn route(&self, addr: u32) -> Option<&RouteAction> {
        self.routes.lookup(addr)
    }

    /// Counter cell of the VIP table's default entry (misses).
    #[inline]
    pub(crate) fn vip_default_cell(&self) -> u32 {
        self.cells.vip_default()
    }

    /// Counter cell of the bucket table's default entry (misses).
    #[inline]
    pub(crate) fn bucket_default_cell(&self) -> u32 {
        self.cells.bucket_default()
    }

    /// Counter cell of a bucket entry (of a set slot and bucket that
    /// exist; wrapping keeps other inputs from panicking).
    #[inline]
    pub(crate) fn bucket_cell(&self, set: u32, bucket: u32) -> u32 {
        set.wrapping_mul(self.params.buckets).wrapping_add(bucket)
    }
}

/// Counter layout of a pipeline: where each direct counter cell lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CellLayout {
    /// VIP entry cells, then the VIP default (miss) cell.
    pub(crate) vip_cells: usize,
    /// Bucket entry cells (`max_vips` x `buckets`), then the bucket default
    /// (miss) cell.
    pub(crate) bucket_cells: usize,
}

impl CellLayout {
    pub(crate) fn of(params: &PipelineParams) -> Self {
        CellLayout {
            vip_cells: params.max_vip_entries as usize + 1,
            bucket_cells: params.bucket_entries() as usize + 1,
        }
    }

    /// The VIP table's default-entry cell.
    pub(crate) fn vip_default(&self) -> u32 {
        (self.vip_cells - 1) as u32
    }

    /// The bucket table's default-entry cell.
    pub(crate) fn bucket_default(&self) -> u32 {
        (self.bucket_cells - 1) as u32
    }
}

// ---- VIP table ------------------------------------------------------------

/// The key bits of a slot: dst (32) | protocol (8) | port (16).
const KEY_BITS: u64 = (1 << 56) - 1;
/// Set in every occupied slot, so an empty slot (key 0) never matches.
const OCCUPIED: u64 = 1 << 56;
/// The entry's action is `to_server`.
const TO_SERVER: u64 = 1 << 57;

#[derive(Debug, Clone, Copy, Default)]
#[repr(C)]
struct VipSlot {
    /// `OCCUPIED | flags | packed key`, or 0 for an empty slot.
    key: u64,
    /// Counter cell.
    cell: u32,
    /// The set slot (`to_buckets`) or the DIP (`to_server`).
    arg: u32,
}

/// Exact match on (dst, protocol, port): linear probing in a table at most
/// half full.
pub(crate) struct VipTable {
    slots: Box<[VipSlot]>,
    shift: u32,
    len: usize,
}

#[inline]
fn vip_key(dst: u32, protocol: u8, port: u16) -> u64 {
    OCCUPIED | (u64::from(dst) << 24) | (u64::from(protocol) << 16) | u64::from(port)
}

impl VipTable {
    /// Builds the table from (key, action, counter cell) entries, resolving
    /// each `vip_id` to its set slot with `set_of`.
    pub(crate) fn build(
        entries: impl Iterator<Item = (VipKey, VipAction, u32)>,
        set_of: impl Fn(u16) -> Option<u32>,
    ) -> VipTable {
        let entries: Vec<_> = entries.collect();
        let cap = (entries.len() * 2).next_power_of_two().max(16);
        let mut t = VipTable {
            slots: vec![VipSlot::default(); cap].into_boxed_slice(),
            shift: 64 - cap.trailing_zeros(),
            len: entries.len(),
        };
        for (k, action, cell) in entries {
            let key = vip_key(u32::from(k.dst), k.protocol, k.port);
            let (flag, arg) = match action {
                VipAction::ToBuckets { vip_id } => (0, set_of(vip_id).unwrap_or(NO_SET)),
                VipAction::ToServer { dip } => (TO_SERVER, u32::from(dip)),
            };
            let mut i = t.home(key);
            while t.slots[i].key != 0 {
                i = (i + 1) & (cap - 1);
            }
            t.slots[i] = VipSlot {
                key: key | flag,
                cell,
                arg,
            };
        }
        t
    }

    #[inline]
    fn home(&self, key: u64) -> usize {
        // Fibonacci hashing: the top bits of key x 2^64/phi.
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    #[inline]
    fn lookup(&self, dst: u32, protocol: u8, port: u16) -> Option<(u32, VipHit)> {
        let key = vip_key(dst, protocol, port);
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        loop {
            let s = &self.slots[i];
            if s.key & !TO_SERVER == key {
                let hit = if s.key & TO_SERVER != 0 {
                    VipHit::ToServer { dip: s.arg }
                } else {
                    VipHit::ToBuckets { set: s.arg }
                };
                return Some((s.cell, hit));
            }
            if s.key == 0 {
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    pub(crate) fn memory_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.slots)
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

const _: () = assert!(KEY_BITS & (OCCUPIED | TO_SERVER) == 0);

// ---- bucket table ---------------------------------------------------------

/// One bucket entry as the data path reads it: `forward(dip, prev_dip,
/// change_time)`, addresses as host-order u32.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C, align(16))]
pub(crate) struct BucketSlot {
    pub(crate) dip: u32,
    pub(crate) prev_dip: u32,
    pub(crate) change_time: u32,
    /// 1 when the entry exists.
    present: u32,
}

impl BucketSlot {
    fn of(a: &BucketAction) -> Self {
        BucketSlot {
            dip: a.dip.into(),
            prev_dip: a.prev_dip.into(),
            change_time: a.change_time,
            present: 1,
        }
    }

    /// The entry's action.
    pub(crate) fn action(&self) -> BucketAction {
        BucketAction {
            dip: Ipv4Addr::from(self.dip),
            prev_dip: Ipv4Addr::from(self.prev_dip),
            change_time: self.change_time,
        }
    }
}

/// The buckets of one `vip_id`: chunks of [`CHUNK`] slots, each shared
/// between snapshots until written. A chunk with no entry is absent.
#[derive(Clone)]
pub(crate) struct BucketSet {
    chunks: Vec<Option<Arc<[BucketSlot]>>>,
    chunk_len: usize,
}

impl BucketSet {
    /// An empty set of `buckets` buckets.
    pub(crate) fn new(buckets: u32) -> BucketSet {
        let buckets = buckets as usize;
        BucketSet {
            chunks: vec![None; buckets.div_ceil(CHUNK)],
            chunk_len: buckets.min(CHUNK),
        }
    }

    /// The entry of `bucket`, if present.
    #[inline]
    pub(crate) fn get(&self, bucket: u32) -> Option<&BucketSlot> {
        let chunk = self
            .chunks
            .get((bucket >> CHUNK_BITS) as usize)?
            .as_deref()?;
        let slot = chunk.get(bucket as usize & (CHUNK - 1))?;
        (slot.present != 0).then_some(slot)
    }

    /// The slot of `bucket`, present or not, if its chunk exists.
    #[inline]
    pub(crate) fn slot_ref(&self, bucket: u32) -> Option<&BucketSlot> {
        let chunk = self
            .chunks
            .get((bucket >> CHUNK_BITS) as usize)?
            .as_deref()?;
        chunk.get(bucket as usize & (CHUNK - 1))
    }

    /// Writes (or with `None`, clears) the entry of `bucket` < the set's
    /// bucket count, copying the chunk if a published snapshot shares it.
    pub(crate) fn set(&mut self, bucket: u32, action: Option<&BucketAction>) {
        let chunk = &mut self.chunks[(bucket >> CHUNK_BITS) as usize];
        let chunk = chunk.get_or_insert_with(|| vec![BucketSlot::default(); self.chunk_len].into());
        Arc::make_mut(chunk)[bucket as usize & (CHUNK - 1)] =
            action.map(BucketSlot::of).unwrap_or_default();
    }

    /// Every present entry, as (bucket, slot), in bucket order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &BucketSlot)> {
        self.chunks.iter().enumerate().flat_map(|(c, chunk)| {
            chunk.iter().flat_map(move |chunk| {
                chunk
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.present != 0)
                    .map(move |(i, s)| ((c * CHUNK + i) as u32, s))
            })
        })
    }

    /// Bytes of the set: its chunk list and its chunks.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.chunks.capacity() * std::mem::size_of::<Option<Arc<[BucketSlot]>>>()
            + self
                .chunks
                .iter()
                .flatten()
                .map(|c| std::mem::size_of_val(&**c))
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vip_table_finds_every_entry_and_nothing_else() {
        let entries: Vec<_> = (0..600u32)
            .map(|i| {
                let key = VipKey {
                    dst: Ipv4Addr::from(0xc000_0200 + i / 6),
                    protocol: if i % 2 == 0 { 6 } else { 17 },
                    port: 80 + (i % 3) as u16,
                };
                let action = if i % 5 == 0 {
                    VipAction::ToServer {
                        dip: Ipv4Addr::from(0x0a00_0000 + i),
                    }
                } else {
                    VipAction::ToBuckets { vip_id: i as u16 }
                };
                (key, action, i)
            })
            .collect();
        let t = VipTable::build(entries.iter().copied(), |id| {
            (id % 7 != 0).then_some(u32::from(id) * 2)
        });
        assert_eq!(t.len(), 600);
        for (k, a, cell) in &entries {
            let (c, hit) = t.lookup(k.dst.into(), k.protocol, k.port).unwrap();
            assert_eq!(c, *cell);
            match (a, hit) {
                (VipAction::ToServer { dip }, VipHit::ToServer { dip: d }) => {
                    assert_eq!(u32::from(*dip), d)
                }
                (VipAction::ToBuckets { vip_id }, VipHit::ToBuckets { set }) => {
                    let want = if vip_id % 7 != 0 {
                        u32::from(*vip_id) * 2
                    } else {
                        NO_SET
                    };
                    assert_eq!(set, want)
                }
                other => panic!("{other:?}"),
            }
            assert!(t.lookup(k.dst.into(), k.protocol, k.port + 100).is_none());
            assert!(t.lookup(k.dst.into(), 1, k.port).is_none());
        }
        let empty = VipTable::build(std::iter::empty(), |_| None);
        assert!(empty.lookup(0, 0, 0).is_none());
    }

    #[test]
    fn bucket_set_copies_only_the_written_chunk() {
        let mut a = BucketSet::new(4096);
        let fwd = |d: u32| BucketAction {
            dip: Ipv4Addr::from(d),
            prev_dip: Ipv4Addr::UNSPECIFIED,
            change_time: 0,
        };
        a.set(5, Some(&fwd(1)));
        a.set(2000, Some(&fwd(2)));
        let mut b = a.clone();
        b.set(6, Some(&fwd(3)));
        // The untouched chunk is still shared, the written one is not.
        assert!(Arc::ptr_eq(
            a.chunks[1].as_ref().unwrap(),
            b.chunks[1].as_ref().unwrap()
        ));
        assert!(!Arc::ptr_eq(
            a.chunks[0].as_ref().unwrap(),
            b.chunks[0].as_ref().unwrap()
        ));
        assert!(a.get(6).is_none());
        assert_eq!(b.get(6).unwrap().dip, 3);
        assert_eq!(b.get(5).unwrap().dip, 1);
        b.set(5, None);
        assert!(b.get(5).is_none() && a.get(5).is_some());
        assert!(b.get(4096).is_none() && b.get(u32::MAX).is_none());
        let listed: Vec<u32> = b.iter().map(|(i, _)| i).collect();
        assert_eq!(listed, vec![6, 2000]);
    }

    #[test]
    fn small_sets_use_small_chunks() {
        let mut s = BucketSet::new(4);
        s.set(
            3,
            Some(&BucketAction {
                dip: Ipv4Addr::new(10, 0, 0, 1),
                prev_dip: Ipv4Addr::UNSPECIFIED,
                change_time: 0,
            }),
        );
        assert_eq!(
            s.memory_bytes() - std::mem::size_of::<Option<Arc<[BucketSlot]>>>(),
            4 * 16
        );
        assert!(s.get(3).is_some() && s.get(4).is_none());
    }
}
