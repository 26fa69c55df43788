//! Packet buffers with headroom, and batches of them.
//!
//! Every frame sits [`HEADROOM`] bytes into its buffer, so the pipeline can
//! prepend an outer IPv4 header (36 bytes with the Beamer option, 20
//! without) in place: the new Ethernet and outer IPv4 headers are written
//! into the headroom and over the old Ethernet header, and the inner packet
//! does not move.
//!
//! ```text
//!  received:   [ headroom .......... | eth | inner IPv4 ... ]
//!  to_buckets: [ ... | eth | outer IPv4 + option (36) | inner IPv4 ... ]
//!                    ^ head - 36          old eth bytes ^ overwritten
//! ```
//!
//! [`Batch`] owns one allocation for all its frames, made once; I/O backends
//! receive into it (or copy into it) and read the verdicts back. [`Frame`]
//! is the same contract over memory someone else owns, such as a packet
//! ring with reserved headroom, and [`Frames`] is a batch of them: what
//! [`crate::Worker::process_frames`] runs the pipeline over, a [`Batch`]
//! or frames a backend leaves where the kernel put them.

use beamer_pipeline::DropReason;
use beamer_pipeline::wire::option::OUTER_HEADER_LEN;
use std::fmt;

/// Bytes reserved in front of every frame of a [`Batch`]: the largest
/// growth of a frame (the 36-byte outer header with its option), rounded up
/// to a cache line.
pub const HEADROOM: usize = 64;
const _: () = assert!(HEADROOM >= OUTER_HEADER_LEN);

/// The most a frame grows in the pipeline: the outer header with the option
/// (the new Ethernet header replaces the old one).
pub const MAX_GROWTH: usize = OUTER_HEADER_LEN;

/// Default largest received frame a [`Batch`] slot holds.
pub const DEFAULT_MAX_FRAME: usize = 2048;

/// What the pipeline decided for one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Send the (rewritten) frame out of `port`.
    Forward {
        /// Egress port, from the route entry.
        port: u16,
    },
    /// Drop the packet; it has been counted under this reason.
    Drop(DropReason),
}

impl Verdict {
    /// The egress port of a forwarded packet.
    pub fn egress_port(self) -> Option<u16> {
        match self {
            Verdict::Forward { port } => Some(port),
            Verdict::Drop(_) => None,
        }
    }
}

/// A number of packets processed together: 1 to 256, default 32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BatchSize(u16);

/// A batch size outside 1..=256.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("batch size {0} is out of range (valid: 1 to 256)")]
pub struct BatchSizeError(pub usize);

impl BatchSize {
    /// The smallest batch.
    pub const MIN: BatchSize = BatchSize(1);
    /// The largest batch.
    pub const MAX: BatchSize = BatchSize(256);
    /// The default batch.
    pub const DEFAULT: BatchSize = BatchSize(32);

    /// A batch size, checked to lie in 1..=256.
    pub fn new(n: usize) -> Result<Self, BatchSizeError> {
        if (usize::from(Self::MIN.0)..=usize::from(Self::MAX.0)).contains(&n) {
            Ok(BatchSize(n as u16))
        } else {
            Err(BatchSizeError(n))
        }
    }

    /// The size as a count of packets.
    pub fn get(self) -> usize {
        usize::from(self.0)
    }
}

impl Default for BatchSize {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Display for BatchSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for BatchSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let n: usize = s
            .parse()
            .map_err(|_| format!("batch size {s:?} is not a number (valid: 1 to 256)"))?;
        BatchSize::new(n).map_err(|e| e.to_string())
    }
}

/// A frame could not be placed in a buffer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Fewer bytes in front of the frame than the pipeline may prepend.
    #[error(
        "frame starts at {head}, leaving less than the {MAX_GROWTH} bytes of headroom encapsulation needs"
    )]
    NoHeadroom {
        /// Offset of the frame in its buffer.
        head: usize,
    },
    /// The frame runs past the end of its buffer.
    #[error("frame of {len} bytes at {head} runs past the end of a {cap}-byte buffer")]
    OutOfBounds {
        /// Offset of the frame.
        head: usize,
        /// Length of the frame.
        len: usize,
        /// Length of the buffer.
        cap: usize,
    },
    /// The frame is longer than a batch slot holds.
    #[error("frame of {len} bytes is longer than the batch's largest frame ({max})")]
    TooLong {
        /// Length of the frame.
        len: usize,
        /// The most a slot holds.
        max: usize,
    },
    /// The batch already holds as many frames as it can.
    #[error("the batch is full")]
    BatchFull,
}

/// One frame in a caller's buffer, at `head`, with room in front of it.
///
/// The pipeline rewrites the frame in place; afterwards [`Frame::head`] and
/// [`Frame::len`] describe the output frame.
#[derive(Debug)]
pub struct Frame<'a> {
    buf: &'a mut [u8],
    head: usize,
    len: usize,
}

impl<'a> Frame<'a> {
    /// The frame `buf[head..head + len]`, checked to have at least
    /// [`MAX_GROWTH`] bytes of headroom and to fit in `buf`.
    pub fn new(buf: &'a mut [u8], head: usize, len: usize) -> Result<Self, FrameError> {
        if head < MAX_GROWTH {
            return Err(FrameError::NoHeadroom { head });
        }
        match head.checked_add(len) {
            Some(end) if end <= buf.len() => Ok(Frame { buf, head, len }),
            _ => Err(FrameError::OutOfBounds {
                head,
                len,
                cap: buf.len(),
            }),
        }
    }

    /// Offset of the frame in its buffer.
    pub fn head(&self) -> usize {
        self.head
    }

    /// Length of the frame.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a zero-length frame.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The frame's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[self.head..self.head + self.len]
    }

    /// The whole buffer and the frame's place in it, for the pipeline.
    #[inline]
    pub(crate) fn parts(&mut self) -> (&mut [u8], usize, usize) {
        (self.buf, self.head, self.len)
    }

    /// Moves the frame after a rewrite. Callers keep `head >= 0` and
    /// `head + len <= buf.len()`.
    #[inline]
    pub(crate) fn set_span(&mut self, head: usize, len: usize) {
        debug_assert!(head + len <= self.buf.len());
        self.head = head;
        self.len = len;
    }
}

/// The frames of one batch, wherever their memory is: the arena of a
/// [`Batch`], or frames a backend leaves in place (a packet ring with
/// reserved headroom). [`crate::Worker::process_frames`] runs the pipeline
/// over them in two passes, the first reading every frame, the second
/// rewriting each, so the batch's cache misses overlap whatever holds the
/// frames.
pub trait Frames {
    /// How many frames the batch holds.
    fn count(&self) -> usize;

    /// Calls `f` with the bytes of every frame, in order.
    fn each_bytes(&self, f: impl FnMut(&[u8]));

    /// Calls `f` with every frame, in order, as a [`Frame`] with its
    /// headroom (at least [`MAX_GROWTH`] bytes), its index and its ingress
    /// port; keeps the verdict `f` returns and the frame's span after `f`
    /// (the output frame).
    fn each_frame(&mut self, f: impl FnMut(usize, &mut Frame<'_>, u16) -> Verdict);
}

#[derive(Debug, Clone, Copy)]
struct Meta {
    head: u32,
    len: u32,
    received_len: u32,
    ingress_port: u16,
    verdict: Option<Verdict>,
}

impl Meta {
    /// A frame of `len` bytes just received on `ingress_port`, at the
    /// start of its slot's receive area, not yet processed.
    const fn received(len: usize, ingress_port: u16) -> Meta {
        Meta {
            head: HEADROOM as u32,
            len: len as u32,
            received_len: len as u32,
            ingress_port,
            verdict: None,
        }
    }
}

const EMPTY_META: Meta = Meta::received(0, 0);

/// A batch of frames in one preallocated arena.
///
/// Fill it ([`Batch::push`], or [`Batch::rx_area`] and [`Batch::commit`]
/// to receive in place), hand it to [`crate::Worker::process_batch`], read
/// the verdicts and output frames ([`Batch::iter`], [`Batch::forwarded`]),
/// then [`Batch::clear`] it for the next round. Nothing is allocated after
/// [`Batch::new`].
pub struct Batch {
    arena: Box<[u8]>,
    stride: usize,
    max_frame: usize,
    meta: Box<[Meta]>,
    len: usize,
}

/// One packet of a batch, as seen after (or before) processing.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    /// The port the frame came in on.
    pub ingress_port: u16,
    /// The frame's length as received (what the byte counters count).
    pub received_len: usize,
    /// The pipeline's decision; `None` until the batch is processed.
    pub verdict: Option<Verdict>,
    /// The frame: the output frame once forwarded, the received frame
    /// otherwise.
    pub frame: &'a [u8],
}

impl Batch {
    /// A batch of `size` slots, each holding a received frame of up to
    /// `max_frame` bytes plus [`HEADROOM`].
    pub fn new(size: BatchSize, max_frame: usize) -> Batch {
        // Round slots to whole cache lines so frames start aligned.
        let stride = (HEADROOM + max_frame).div_ceil(64) * 64;
        Batch {
            arena: vec![0u8; stride * size.get()].into_boxed_slice(),
            stride,
            max_frame,
            meta: vec![EMPTY_META; size.get()].into_boxed_slice(),
            len: 0,
        }
    }

    /// A batch of the default size and frame length.
    pub fn with_defaults() -> Batch {
        Batch::new(BatchSize::DEFAULT, DEFAULT_MAX_FRAME)
    }

    /// How many frames the batch holds at most.
    pub fn capacity(&self) -> usize {
        self.meta.len()
    }

    /// The largest received frame a slot holds.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// How many frames the batch holds now.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the batch holds no frame.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when no more frames fit.
    pub fn is_full(&self) -> bool {
        self.len == self.meta.len()
    }

    /// Empties the batch (the memory stays).
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Copies `frame` into the next slot.
    #[inline]
    pub fn push(&mut self, frame: &[u8], ingress_port: u16) -> Result<(), FrameError> {
        let len = frame.len();
        if len > self.max_frame {
            return Err(FrameError::TooLong {
                len,
                max: self.max_frame,
            });
        }
        let Some(meta) = self.meta.get_mut(self.len) else {
            return Err(FrameError::BatchFull);
        };
        let start = self.len * self.stride + HEADROOM;
        self.arena[start..start + len].copy_from_slice(frame);
        *meta = Meta::received(len, ingress_port);
        self.len += 1;
        Ok(())
    }

    /// The receive area of slot `i` (`max_frame` bytes after the headroom),
    /// for a backend that receives straight into the batch, or `None` past
    /// the capacity. Receive into `rx_area(len())`, then [`Batch::commit`].
    pub fn rx_area(&mut self, i: usize) -> Option<&mut [u8]> {
        if i >= self.capacity() {
            return None;
        }
        let start = i * self.stride + HEADROOM;
        Some(&mut self.arena[start..start + self.max_frame])
    }

    /// Takes the frame of `len` bytes already written at the start of the
    /// next slot's receive area as received on `ingress_port`.
    pub fn commit(&mut self, len: usize, ingress_port: u16) -> Result<(), FrameError> {
        if self.is_full() {
            return Err(FrameError::BatchFull);
        }
        if len > self.max_frame {
            return Err(FrameError::TooLong {
                len,
                max: self.max_frame,
            });
        }
        self.meta[self.len] = Meta::received(len, ingress_port);
        self.len += 1;
        Ok(())
    }

    /// Packet `i`, or `None` past [`Batch::len`].
    pub fn get(&self, i: usize) -> Option<Packet<'_>> {
        let m = self.meta[..self.len].get(i)?;
        let start = i * self.stride + m.head as usize;
        Some(Packet {
            ingress_port: m.ingress_port,
            received_len: m.received_len as usize,
            verdict: m.verdict,
            frame: &self.arena[start..start + m.len as usize],
        })
    }

    /// Every packet of the batch, in order.
    pub fn iter(&self) -> impl Iterator<Item = Packet<'_>> {
        (0..self.len).filter_map(|i| self.get(i))
    }

    /// The forwarded packets: (egress port, output frame).
    pub fn forwarded(&self) -> impl Iterator<Item = (u16, &[u8])> {
        self.iter()
            .filter_map(|p| Some((p.verdict?.egress_port()?, p.frame)))
    }

    /// Runs `f` over every frame of the batch as a [`Frame`] in its slot,
    /// with its index and ingress port, storing the verdict it returns.
    #[inline]
    pub(crate) fn for_each_frame(
        &mut self,
        mut f: impl FnMut(usize, &mut Frame<'_>, u16) -> Verdict,
    ) {
        let stride = self.stride;
        for (i, (slot, m)) in self
            .arena
            .chunks_exact_mut(stride)
            .zip(self.meta[..self.len].iter_mut())
            .enumerate()
        {
            let mut frame = Frame {
                buf: slot,
                head: m.head as usize,
                len: m.len as usize,
            };
            let v = f(i, &mut frame, m.ingress_port);
            m.head = frame.head as u32;
            m.len = frame.len as u32;
            m.verdict = Some(v);
        }
    }

    /// The frames of the batch as they are now, in order.
    #[inline]
    pub(crate) fn frames(&self) -> impl Iterator<Item = &[u8]> {
        self.arena
            .chunks_exact(self.stride)
            .zip(self.meta[..self.len].iter())
            .map(|(slot, m)| &slot[m.head as usize..(m.head + m.len) as usize])
    }
}

impl Frames for Batch {
    #[inline]
    fn count(&self) -> usize {
        self.len
    }

    #[inline]
    fn each_bytes(&self, f: impl FnMut(&[u8])) {
        self.frames().for_each(f);
    }

    #[inline]
    fn each_frame(&mut self, f: impl FnMut(usize, &mut Frame<'_>, u16) -> Verdict) {
        self.for_each_frame(f);
    }
}

impl fmt::Debug for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch")
            .field("len", &self.len)
            .field("capacity", &self.capacity())
            .field("max_frame", &self.max_frame)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_sizes() {
        assert!(BatchSize::new(0).is_err());
        assert!(BatchSize::new(257).is_err());
        assert_eq!(BatchSize::new(256).unwrap(), BatchSize::MAX);
        assert_eq!(BatchSize::default().get(), 32);
        assert_eq!("64".parse::<BatchSize>().unwrap().get(), 64);
        assert!("x".parse::<BatchSize>().unwrap_err().contains("1 to 256"));
    }

    #[test]
    fn push_and_read_back() {
        let mut b = Batch::new(BatchSize::new(2).unwrap(), 100);
        b.push(&[1, 2, 3], 7).unwrap();
        assert!(matches!(
            b.push(&[0; 101], 0),
            Err(FrameError::TooLong { len: 101, max: 100 })
        ));
        b.push(&[4; 100], 8).unwrap();
        assert!(b.is_full());
        assert_eq!(b.push(&[1], 0), Err(FrameError::BatchFull));
        let p = b.get(0).unwrap();
        assert_eq!(
            (p.frame, p.ingress_port, p.verdict),
            (&[1, 2, 3][..], 7, None)
        );
        assert_eq!(b.get(1).unwrap().frame.len(), 100);
        assert!(b.get(2).is_none());
        b.clear();
        assert!(b.is_empty() && b.get(0).is_none());
    }

    #[test]
    fn frame_checks_headroom_and_bounds() {
        let mut buf = [0u8; 100];
        assert_eq!(
            Frame::new(&mut buf, 35, 10).unwrap_err(),
            FrameError::NoHeadroom { head: 35 }
        );
        assert!(matches!(
            Frame::new(&mut buf, 36, 65),
            Err(FrameError::OutOfBounds { .. })
        ));
        assert!(matches!(
            Frame::new(&mut buf, 36, usize::MAX),
            Err(FrameError::OutOfBounds { .. })
        ));
        assert_eq!(Frame::new(&mut buf, 36, 64).unwrap().len(), 64);
    }

    /// Frames in buffers of their own (as a packet ring holds them), each
    /// with just the headroom the pipeline needs.
    struct Borrowed<'a> {
        frames: Vec<(&'a mut [u8], usize, usize, Option<Verdict>)>,
    }

    impl Frames for Borrowed<'_> {
        fn count(&self) -> usize {
            self.frames.len()
        }
        fn each_bytes(&self, mut f: impl FnMut(&[u8])) {
            for (buf, head, len, _) in &self.frames {
                f(&buf[*head..*head + *len]);
            }
        }
        fn each_frame(&mut self, mut f: impl FnMut(usize, &mut Frame<'_>, u16) -> Verdict) {
            for (i, (buf, head, len, verdict)) in self.frames.iter_mut().enumerate() {
                let mut frame = Frame::new(buf, *head, *len).unwrap();
                *verdict = Some(f(i, &mut frame, 1));
                (*head, *len) = (frame.head(), frame.len());
            }
        }
    }

    #[test]
    fn borrowed_frames_run_like_a_batch() {
        let tables = r#"
[pipeline]
buckets = 16
max_vips = 1
[config]
tunnel_src = "10.0.0.1"
[[vip]]
addr = "192.0.2.10"
vip_id = 0
service_ports = ["tcp/80"]
[vip.buckets]
round_robin = ["10.1.0.1"]
[[route]]
prefix = "0.0.0.0/0"
port = 2
dst_mac = "02:00:00:00:02:01"
src_mac = "02:00:00:00:00:02"
"#;
        // Ethernet | IPv4 | TCP to 192.0.2.10:`dport` (encapsulated for
        // port 80, routed otherwise).
        let tcp = |dport: u16| {
            let mut f = vec![0u8; 54];
            f[12..14].copy_from_slice(&[0x08, 0x00]);
            f[14] = 0x45;
            f[16..18].copy_from_slice(&40u16.to_be_bytes());
            f[22] = 64;
            f[23] = 6;
            f[26..30].copy_from_slice(&[198, 51, 100, 1]);
            f[30..34].copy_from_slice(&[192, 0, 2, 10]);
            f[36..38].copy_from_slice(&dport.to_be_bytes());
            f[46] = 0x50;
            f
        };
        let frames = [tcp(80), tcp(22), vec![0u8; 10], tcp(80)];
        let switch = || {
            crate::tablefile::TableFile::parse(tables)
                .unwrap()
                .build()
                .unwrap()
        };
        let (a, b) = (switch(), switch());

        let mut batch = Batch::with_defaults();
        for f in &frames {
            batch.push(f, 1).unwrap();
        }
        a.worker().process_batch(&mut batch);

        let mut bufs: Vec<Vec<u8>> = frames
            .iter()
            .map(|f| [&[0u8; MAX_GROWTH][..], f].concat())
            .collect();
        let mut borrowed = Borrowed {
            frames: bufs
                .iter_mut()
                .map(|b| {
                    let len = b.len() - MAX_GROWTH;
                    (&mut b[..], MAX_GROWTH, len, None)
                })
                .collect(),
        };
        b.worker().process_frames(&mut borrowed);

        assert_eq!(
            (a.totals(), a.drop_counters()),
            (b.totals(), b.drop_counters())
        );
        assert_eq!(a.totals().forwarded.packets, 3);
        for (p, (buf, head, len, verdict)) in batch.iter().zip(&borrowed.frames) {
            assert_eq!(p.verdict, *verdict);
            assert_eq!(p.frame, &buf[*head..*head + *len]);
        }
        // Encapsulated in place: the outer header took the whole headroom.
        assert_eq!(borrowed.frames[0].1, 0);
        assert_eq!(
            batch.get(2).unwrap().verdict.map(|v| v.egress_port()),
            Some(None)
        );
    }
}
