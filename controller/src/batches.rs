//! Ordered batches of table updates: the one shape of both the allocator's
//! [`Diff`](crate::alloc::Diff) and a switch's [`Plan`](crate::plan::Plan).

use beamer_pipeline::entries::Update;

/// Table updates grouped into batches. The updates of one batch are
/// independent (one P4Runtime `WriteRequest`, or several, may carry them,
/// in any order); the batches must be written in order, each after the
/// previous one is acknowledged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batches {
    /// The batches, in write order; none is empty.
    pub batches: Vec<Vec<Update>>,
}

impl Batches {
    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// Total number of updates.
    pub fn len(&self) -> usize {
        self.batches.iter().map(Vec::len).sum()
    }

    /// Every update, in write order.
    pub fn updates(&self) -> impl Iterator<Item = &Update> {
        self.batches.iter().flatten()
    }

    /// Appends `batch` as the next batch, unless it is empty.
    pub(crate) fn push(&mut self, batch: Vec<Update>) {
        if !batch.is_empty() {
            self.batches.push(batch);
        }
    }
}

/// Collects batches in order, leaving out the empty ones.
impl FromIterator<Vec<Update>> for Batches {
    fn from_iter<I: IntoIterator<Item = Vec<Update>>>(iter: I) -> Self {
        let mut b = Batches::default();
        for batch in iter {
            b.push(batch);
        }
        b
    }
}
