//! How packets get in and out: the [`Backend`] interface, the driving
//! loops, and the in-memory backend.
//!
//! A backend fills a [`Batch`] (copying frames in, or receiving straight
//! into [`Batch::rx_area`]) and sends what the pipeline forwarded; pcap
//! files and the in-memory backend implement the trait. A backend that
//! owns its frame memory (a packet ring with reserved headroom) instead
//! leaves its frames there and hands them to
//! [`crate::Worker::process_frames`] as [`crate::Frames`], as the
//! AF_PACKET ports do ([`afpacket::AfPacketBackend::run`]).

pub mod afpacket;
pub mod pcap;
pub mod report;

use crate::packet::Batch;
use crate::switch::Worker;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};

/// A source and sink of frames.
pub trait Backend {
    /// Adds received frames to `batch` (empty on entry) up to its capacity,
    /// and returns how many it added; 0 when nothing is waiting.
    fn recv(&mut self, batch: &mut Batch) -> std::io::Result<usize>;

    /// Sends the forwarded frames of a processed batch
    /// ([`Batch::forwarded`]) out of their egress ports.
    fn send(&mut self, batch: &Batch) -> std::io::Result<()>;

    /// True once a finite source (a file, a queue) has no frame left.
    fn exhausted(&self) -> bool {
        false
    }
}

/// Receives, processes and sends batches until the backend is exhausted or
/// `stop` is set. Returns the number of frames processed.
pub fn run(
    worker: &mut Worker,
    backend: &mut impl Backend,
    batch: &mut Batch,
    stop: &AtomicBool,
) -> std::io::Result<u64> {
    let mut frames = 0;
    while !stop.load(Ordering::Relaxed) {
        batch.clear();
        let n = backend.recv(batch)?;
        if n == 0 {
            if backend.exhausted() {
                break;
            }
            std::thread::yield_now();
            continue;
        }
        worker.process_batch(batch);
        backend.send(batch)?;
        frames += n as u64;
    }
    Ok(frames)
}

/// Frames in memory: a queue of (ingress port, frame) in, a list of
/// (egress port, frame) out. For tests, fixtures and examples.
#[derive(Debug, Default, Clone)]
pub struct MemoryBackend {
    input: VecDeque<(u16, Vec<u8>)>,
    output: Vec<(u16, Vec<u8>)>,
}

impl MemoryBackend {
    /// An empty backend.
    pub fn new() -> Self {
        Self::default()
    }

    /// A backend that will deliver `frames`, in order.
    pub fn with_input(frames: impl IntoIterator<Item = (u16, Vec<u8>)>) -> Self {
        MemoryBackend {
            input: frames.into_iter().collect(),
            output: Vec::new(),
        }
    }

    /// Queues a frame as received on `port`.
    pub fn push(&mut self, port: u16, frame: Vec<u8>) {
        self.input.push_back((port, frame));
    }

    /// The frames sent so far, as (egress port, frame), in order.
    pub fn output(&self) -> &[(u16, Vec<u8>)] {
        &self.output
    }

    /// Takes the frames sent so far.
    pub fn take_output(&mut self) -> Vec<(u16, Vec<u8>)> {
        std::mem::take(&mut self.output)
    }
}

impl Backend for MemoryBackend {
    fn recv(&mut self, batch: &mut Batch) -> std::io::Result<usize> {
        let mut n = 0;
        while !batch.is_full() {
            let Some((port, frame)) = self.input.front() else {
                break;
            };
            batch
                .push(frame, *port)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
            self.input.pop_front();
            n += 1;
        }
        Ok(n)
    }

    fn send(&mut self, batch: &Batch) -> std::io::Result<()> {
        self.output
            .extend(batch.forwarded().map(|(port, f)| (port, f.to_vec())));
        Ok(())
    }

    fn exhausted(&self) -> bool {
        self.input.is_empty()
    }
}
