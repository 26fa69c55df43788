//! The Beamer mux pipeline in software.
//!
//! The same pipeline as the P4 programs, bit for bit, run in batches on
//! ordinary cores: a P4Runtime target like bmv2 and Tofino.
//!
//! - [`pipeline::process`]: the sans-IO core, a pure function of (frame,
//!   ingress port, [`Tables`]) to a [`Verdict`], counting through a
//!   [`pipeline::Count`] sink;
//! - [`packet`]: frames with headroom ([`Frame`]), and [`Batch`]es of them
//!   in one preallocated arena;
//! - [`Switch`]: the tables and the control-plane API (P4Runtime semantics
//!   for writes, reads, direct and drop counters); [`Worker`]: a data-path
//!   thread's handle, which processes a batch against one snapshot;
//! - [`tables`]: the immutable snapshots and how updates share them;
//! - [`counters`]: per-worker counters without read-modify-write atomics;
//! - [`hash`]: the bucket CRC of `beamer_pipeline::hash`, table-driven;
//! - [`tablefile`]: a TOML file that fills the tables, for pcap runs;
//! - [`io`]: the backend interface and the in-memory backend (pcap files
//!   and AF_PACKET ports live beside it);
//! - [`p4rt`]: the P4Runtime server, on top of [`Switch`];
//! - [`bench`](mod@bench): the benchmark workload and measurement loops shared by the
//!   criterion bench and `beamer bench`.
//!
//! A data-path thread takes a [`Worker`] and loops: fill a [`Batch`],
//! [`Worker::process_batch`], send [`Batch::forwarded`] (see
//! [`io::run`]). The control plane calls [`Switch::apply`] with
//! `beamer_pipeline::entries::Update`s at any time, from any thread; the
//! data path never waits for it.
//!
//! ```
//! use beamer_softswitch::{Batch, Switch, Verdict};
//! use beamer_pipeline::PipelineParams;
//!
//! let switch = Switch::new(PipelineParams::default()).unwrap();
//! let mut worker = switch.worker();
//! let mut batch = Batch::with_defaults();
//! batch.push(&[0u8; 10], 1).unwrap(); // too short for Ethernet
//! worker.process_batch(&mut batch);
//! assert_eq!(
//!     batch.get(0).unwrap().verdict,
//!     Some(Verdict::Drop(beamer_pipeline::DropReason::Truncated))
//! );
//! ```

pub mod bench;
pub mod counters;
pub mod hash;
pub mod io;
pub mod p4rt;
pub mod packet;
pub mod pipeline;
pub mod switch;
pub mod tablefile;
pub mod tables;
#[cfg(test)]
mod testing;

pub use counters::CounterData;
pub use packet::{Batch, BatchSize, Frame, FrameError, Frames, HEADROOM, Verdict};
pub use switch::{
    BatchRun, CounterError, MemoryReport, Switch, TableKind, Totals, UpdateError, Worker,
};
pub use tables::Tables;
