//! Counters without locks or read-modify-write atomics on the data path.
//!
//! Each worker owns a `CounterBlock`: one packets/bytes pair per VIP
//! entry, per bucket entry, per table default entry and per drop reason.
//! Only its worker writes a block, with a relaxed load and a relaxed store
//! (two plain `mov`s on x86-64; no `lock` prefix), so no cache line
//! bounces between cores. The control plane reads every block with relaxed
//! loads and sums them; a reading may miss the packets of a batch in
//! flight, never sees a torn value, and never goes backwards.
//!
//! Resetting a cell on INSERT, or setting it from P4Runtime, is done with
//! a baseline kept by the control plane (value = sum - baseline), so the
//! control thread never writes a worker's cells.

use beamer_pipeline::DropReason;
use std::alloc::Layout;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Packets and bytes of a counter cell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CounterData {
    /// Packets counted.
    pub packets: u64,
    /// Bytes counted: frame lengths as received.
    pub bytes: u64,
}

impl CounterData {
    /// Cell-wise `self - other`, wrapping (counters wrap at 2^64).
    pub fn wrapping_sub(self, other: CounterData) -> CounterData {
        CounterData {
            packets: self.packets.wrapping_sub(other.packets),
            bytes: self.bytes.wrapping_sub(other.bytes),
        }
    }

    /// Cell-wise `self + other`, wrapping.
    pub fn wrapping_add(self, other: CounterData) -> CounterData {
        CounterData {
            packets: self.packets.wrapping_add(other.packets),
            bytes: self.bytes.wrapping_add(other.bytes),
        }
    }
}

/// An array of packets/bytes cells, written by one thread.
pub(crate) struct Cells(Box<[AtomicU64]>);

impl Cells {
    /// `n` zeroed cells. The memory comes zeroed from the allocator, so a
    /// large bucket table's cells cost nothing until a packet counts there.
    pub(crate) fn zeroed(n: usize) -> Cells {
        let words = n * 2;
        if words == 0 {
            return Cells(Box::new([]));
        }
        let layout = Layout::array::<AtomicU64>(words).expect("counter array fits in memory");
        // SAFETY: the layout has a non-zero size. All-zero bytes are a valid
        // AtomicU64 (it has the representation of u64). The pointer comes
        // from the global allocator with the layout of a [AtomicU64; words],
        // which is what Box<[AtomicU64]> of that length frees with.
        unsafe {
            let p = std::alloc::alloc_zeroed(layout).cast::<AtomicU64>();
            if p.is_null() {
                std::alloc::handle_alloc_error(layout);
            }
            Cells(Box::from_raw(std::ptr::slice_from_raw_parts_mut(p, words)))
        }
    }

    /// Number of cells.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.len() / 2
    }

    /// Counts one packet of `bytes` in `cell`. Only the owning worker calls
    /// this, so load + store loses nothing.
    #[inline(always)]
    pub(crate) fn add(&self, cell: usize, bytes: u64) {
        if let Some([p, b]) = self.0.get(cell * 2..cell * 2 + 2) {
            p.store(p.load(Relaxed).wrapping_add(1), Relaxed);
            b.store(b.load(Relaxed).wrapping_add(bytes), Relaxed);
        }
    }

    /// Starts loading the cache line of `cell` (a hint; never faults).
    #[inline(always)]
    pub(crate) fn prefetch(&self, cell: usize) {
        if let Some(c) = self.0.get(cell * 2) {
            crate::pipeline::prefetch_line(c.as_ptr().cast_const().cast());
        }
    }

    /// Counts `packets` packets of `bytes` bytes in all in `cell`.
    #[inline]
    pub(crate) fn add_many(&self, cell: usize, packets: u64, bytes: u64) {
        if let Some([p, b]) = self.0.get(cell * 2..cell * 2 + 2) {
            p.store(p.load(Relaxed).wrapping_add(packets), Relaxed);
            b.store(b.load(Relaxed).wrapping_add(bytes), Relaxed);
        }
    }

    /// The value of `cell` (zero past the end).
    pub(crate) fn get(&self, cell: usize) -> CounterData {
        match self.0.get(cell * 2..cell * 2 + 2) {
            Some([p, b]) => CounterData {
                packets: p.load(Relaxed),
                bytes: b.load(Relaxed),
            },
            _ => CounterData::default(),
        }
    }

    pub(crate) fn memory_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.0)
    }

    /// Adds every cell of `other` into this one. Only for arrays no worker
    /// writes any more.
    fn absorb(&self, other: &Cells) {
        for (a, b) in self.0.iter().zip(other.0.iter()) {
            a.store(a.load(Relaxed).wrapping_add(b.load(Relaxed)), Relaxed);
        }
    }
}

/// Which cells of a [`CounterBlock`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum CellRef {
    Vip(u32),
    Bucket(u32),
    Drop(DropReason),
}

/// One worker's counters for one pipeline configuration (epoch).
pub(crate) struct CounterBlock {
    pub(crate) epoch: u64,
    pub(crate) vip: Cells,
    pub(crate) bucket: Cells,
    pub(crate) drops: Cells,
    /// Frames received (cell 0) and forwarded (cell 1).
    pub(crate) io: Cells,
}

impl CounterBlock {
    pub(crate) fn new(epoch: u64, vip_cells: usize, bucket_cells: usize) -> CounterBlock {
        CounterBlock {
            epoch,
            vip: Cells::zeroed(vip_cells),
            bucket: Cells::zeroed(bucket_cells),
            drops: Cells::zeroed(DropReason::COUNT),
            io: Cells::zeroed(2),
        }
    }

    pub(crate) fn get(&self, cell: CellRef) -> CounterData {
        match cell {
            CellRef::Vip(i) => self.vip.get(i as usize),
            CellRef::Bucket(i) => self.bucket.get(i as usize),
            CellRef::Drop(r) => self.drops.get(r.index()),
        }
    }

    /// Adds the counts of `other` (same epoch and sizes) into this block.
    /// Only for blocks whose workers are gone.
    pub(crate) fn absorb(&self, other: &CounterBlock) {
        self.vip.absorb(&other.vip);
        self.bucket.absorb(&other.bucket);
        self.drops.absorb(&other.drops);
        self.io.absorb(&other.io);
    }

    pub(crate) fn memory_bytes(&self) -> usize {
        self.vip.memory_bytes()
            + self.bucket.memory_bytes()
            + self.drops.memory_bytes()
            + self.io.memory_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_count_and_ignore_out_of_range() {
        let c = Cells::zeroed(3);
        assert_eq!(c.len(), 3);
        c.add(1, 64);
        c.add(1, 1500);
        c.add_many(2, 10, 640);
        c.add(3, 99); // past the end: ignored, not a panic
        assert_eq!(
            c.get(1),
            CounterData {
                packets: 2,
                bytes: 1564
            }
        );
        assert_eq!(
            c.get(2),
            CounterData {
                packets: 10,
                bytes: 640
            }
        );
        assert_eq!(c.get(0), CounterData::default());
        assert_eq!(c.get(3), CounterData::default());
        assert_eq!(Cells::zeroed(0).len(), 0);
    }

    #[test]
    fn wrapping_arithmetic() {
        let a = CounterData {
            packets: 1,
            bytes: 2,
        };
        let b = CounterData {
            packets: 3,
            bytes: 5,
        };
        assert_eq!(a.wrapping_sub(b).wrapping_add(b), a);
    }
}
