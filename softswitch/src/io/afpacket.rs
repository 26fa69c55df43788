//! Live Linux interfaces over AF_PACKET: a TPACKET_V3 receive ring per
//! port, the pipeline run on every frame where the kernel wrote it, and
//! `sendmmsg` straight out of the ring. No frame is copied by the switch.
//!
//! Each port (`--port 1=veth0`) is one packet socket bound to its
//! interface, which is put in promiscuous mode for as long as the socket
//! is open (the membership goes away with the socket, also when the
//! process dies). The kernel writes received frames into a ring of blocks
//! shared with the process and hands over a block at a time.
//!
//! # Frames stay in the ring
//!
//! The socket asks the kernel to leave [`HEADROOM`] bytes free in front of
//! every frame (`PACKET_RESERVE`, set before `PACKET_RX_RING`; the kernel
//! refuses it once the ring exists). A frame in a block then has the
//! layout of a [`crate::Batch`] slot, and the pipeline encapsulates it
//! where it lies:
//!
//! ```text
//!  frame header                                 tp_mac - 64   tp_mac  tp_net
//!  | tpacket3_hdr 48 | sockaddr_ll 20 | pad 14 | reserve 64  | Ethernet | IPv4 ..
//!  0                 48               68       82            146        160
//!                                         the outer header ^ goes here
//! ```
//!
//! Offsets are from the frame's header, for an Ethernet frame. The kernel
//! places the network header at `TPACKET_ALIGN(68 + 16) + reserve` (the
//! MAC header counts as at least 16 bytes there) and the Ethernet header
//! right before it, so `tp_mac` and `tp_net` both move by exactly the
//! reserve: 82 and 96 without one, 146 and 160 with 64 bytes. The reserve is not rounded by the kernel; 64, a multiple of
//! `TPACKET_ALIGNMENT` (16), keeps the network header where it would be
//! modulo 16 within the frame, and frames follow each other in a block at
//! multiples of 8 bytes. The reserved bytes lie between the frame's own
//! `sockaddr_ll` and its Ethernet header, so writing them touches neither
//! the kernel's headers nor the frame before (each frame is checked to
//! have them before it is used).
//!
//! # One round
//!
//! [`AfPacketBackend::round`] walks the blocks the kernel has handed over,
//! port after port, and notes up to a batch of frames (where each lies in
//! its block, its length, its ingress port) without copying them. A VLAN
//! tag the kernel took off (reported in `tp_vlan_tci`) is put back in
//! place: the two MAC addresses move 4 bytes into the reserve and the tag
//! goes between them and the EtherType, as it was on the wire (the
//! pipeline then drops the frame as `non_ipv4`). The noted frames are a
//! [`Frames`] batch: [`Worker::process_frames`] runs the same two passes
//! as over a [`crate::Batch`] (classify and prefetch every frame, then
//! finish each), rewriting each frame in its block. The forwarded frames
//! are grouped by egress port and each group goes to the kernel in one
//! `sendmmsg(2)` whose iovecs point into the blocks (the kernel copies
//! them into its buffers before the call returns). Only then are the
//! blocks read to the end given back (`TP_STATUS_KERNEL`); a block read
//! halfway stays with the process until the next round reads the rest.
//! When no frame is waiting the worker sleeps in `poll(2)` for at most
//! [`RingConfig::poll_timeout_ms`], after giving back every block it has
//! read.
//!
//! A batch can hold frames of several blocks and several ports. Blocks
//! read to the end during a round (also those whose frames were all
//! skipped) wait for its end; a ring whose blocks all wait is not read
//! further in that round, and while they wait the kernel drops what
//! arrives on that port (counted as lost), as it does whenever the ring
//! is full.
//!
//! Nothing is copied on the way through: the kernel writes the frame into
//! the ring (the only copy on receive, as a NIC writing into a buffer with
//! headroom) and copies it out on `sendmmsg`. There is no copying path
//! left: every frame the kernel delivers has its reserve (checked), a VLAN
//! tag fits in it, and frames too long are skipped as before. Nothing is
//! allocated per packet: the frame list, iovecs and message headers are
//! allocated once.
//!
//! # Kept from the kernel's side
//!
//! - Frames longer than [`RingConfig::max_frame`] (with a VLAN tag put
//!   back), or cut short because they did not fit in a ring block, are
//!   counted as oversize and skipped.
//! - Frames the kernel refuses on send (longer than the interface's MTU
//!   allows, say: give the mux's links room for the 36-byte outer header)
//!   are counted as transmit errors and skipped; the rest of the batch
//!   still goes out.
//! - Frames the host itself sends out of a port (including the switch's
//!   own transmissions) are not received: `PACKET_IGNORE_OUTGOING`, and a
//!   check of each frame's packet type for kernels without it.
//! - Offloads: the switch sees frames as the kernel hands them over. On a
//!   veth or tap link from a local sender, turn off the sender's transmit
//!   checksum and segmentation offloads (`ethtool -K <peer> tx off tso off
//!   gso off`) and GRO on the switch's interfaces (`gro off`): otherwise
//!   frames arrive with the L4 checksum left for the hardware (counted as
//!   `checksum left to offload`; they leave with it unfinished) or as
//!   64 KB super-frames (counted as oversize and skipped). Frames from a
//!   real wire are complete.
//! - Several workers can share the ports: each opens its own sockets, and
//!   a `PACKET_FANOUT_HASH` group per port spreads the flows over them.
//!
//! # Measured
//!
//! `examples/afpacket_veth.rs` (release build): one worker forwarding the
//! benchmark workload from one veth to another, a sender thread on the
//! other core, on a 2-core VM shared with other work. Medians of 14
//! interleaved runs of the copying backend (before, commit `adafe40`) and
//! this one; the user-space share from `perf` samples of the switch
//! thread (3 runs each, ranges):
//!
//! | frames | Mpps forwarded | switch CPU per frame | of it in user space | of that, `memcpy` |
//! |--------|----------------|----------------------|---------------------|-------------------|
//! | 64 B   | 0.51 → 0.53    | 1578 → 1598 ns       | 70–94 → 68–106 ns   | 16–23 → 3–5 ns    |
//! | 1500 B | 0.43 → 0.43    | 1886 → 1858 ns       | 212–239 → 81–128 ns | 161–183 → 3–5 ns  |
//!
//! The rate is what the sender offers (its core also does the kernel's
//! receive work for port 1), not the switch's limit; more than 90% of the
//! switch's CPU per frame is the kernel's transmit path (`sendmmsg` into
//! a veth and the peer's receive). Without the copy, a 1500-byte frame
//! costs the switch 100–150 ns less; at 64 bytes the pipeline now takes
//! the cache misses on the ring lines that the copy used to take, and the
//! difference is within the noise.

use super::report::IoCounters;
use crate::packet::{BatchSize, DEFAULT_MAX_FRAME, Frame, Frames, HEADROOM, MAX_GROWTH, Verdict};
use crate::switch::Worker;
use beamer_pipeline::schema::SWITCH_PORT_BITS;
use beamer_pipeline::wire::ethernet;
use std::ffi::CString;
use std::io;
use std::mem::{offset_of, size_of};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// A port could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum AfPacketError {
    /// No interface has the name given for a port.
    #[error("port {port}: interface {interface:?} does not exist")]
    NoInterface {
        /// The P4 port number.
        port: u16,
        /// The interface name.
        interface: String,
    },
    /// The same P4 port number is given twice.
    #[error("port {0} is given more than once")]
    DuplicatePort(u16),
    /// A system call failed while the port was set up.
    #[error("port {port} ({interface}): {call}: {source}")]
    Setup {
        /// The P4 port number.
        port: u16,
        /// The interface name.
        interface: String,
        /// The call that failed.
        call: &'static str,
        /// The error.
        source: io::Error,
    },
    /// The ring sizes are not usable.
    #[error("ring: {0}")]
    Ring(String),
}

/// A `--port N=IFACE` mapping: P4 port number to interface name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    /// The P4 port number (what route entries name).
    pub port: u16,
    /// The Linux interface.
    pub interface: String,
}

impl FromStr for PortSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (port, interface) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?} is not PORT=INTERFACE (e.g. 1=veth0)"))?;
        let port: u16 = port
            .trim()
            .parse()
            .map_err(|_| format!("{port:?} in {s:?} is not a port number"))?;
        if u32::from(port) >> SWITCH_PORT_BITS != 0 {
            return Err(format!(
                "port {port} does not fit in {SWITCH_PORT_BITS} bits (0 to {})",
                (1u32 << SWITCH_PORT_BITS) - 1
            ));
        }
        let interface = interface.trim();
        // IFNAMSIZ is 16 with the terminating NUL.
        if interface.is_empty() || interface.len() > 15 || interface.contains(['/', '\0', ' ']) {
            return Err(format!("{interface:?} is not an interface name"));
        }
        Ok(PortSpec {
            port,
            interface: interface.to_string(),
        })
    }
}

/// Sizes of each port's receive ring, how long a worker waits, and the
/// largest frame it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingConfig {
    /// Bytes per ring block (a power of two, a multiple of the page size).
    pub block_size: u32,
    /// Blocks per ring.
    pub block_count: u32,
    /// The kernel hands over a block that is not full after this many
    /// milliseconds, which bounds the added latency at low rates.
    pub block_timeout_ms: u32,
    /// How long [`AfPacketBackend::round`] sleeps when no frame waits.
    pub poll_timeout_ms: i32,
    /// Send without the queueing discipline (`PACKET_QDISC_BYPASS`):
    /// faster, but tcpdump on the interface no longer sees what is sent.
    pub qdisc_bypass: bool,
    /// Largest received frame (with a VLAN tag put back) the switch takes;
    /// longer ones are counted as oversize and skipped.
    pub max_frame: usize,
}

impl Default for RingConfig {
    fn default() -> Self {
        RingConfig {
            block_size: 1 << 18,
            block_count: 64,
            block_timeout_ms: 1,
            poll_timeout_ms: 100,
            qdisc_bypass: false,
            max_frame: DEFAULT_MAX_FRAME,
        }
    }
}

/// A frame slot in the ring's bookkeeping; TPACKET_V3 packs frames of any
/// length into blocks, this only has to divide the block size (and hold
/// the frame header and the reserve).
const RING_FRAME_SIZE: u32 = 2048;

/// Bytes the kernel leaves free in front of every frame's Ethernet header
/// (`PACKET_RESERVE`): the core's headroom.
const RESERVE: usize = HEADROOM;

/// A VLAN tag put back in front of the EtherType.
const VLAN_TAG_LEN: usize = 4;

/// The destination and source addresses: what a VLAN tag follows.
const MACS: usize = ethernet::field::ETHERTYPE.start;

// A frame whose VLAN tag was put back still has the headroom the pipeline
// needs; the reserve keeps the network header's alignment.
const _: () = assert!(RESERVE >= VLAN_TAG_LEN + MAX_GROWTH);
const _: () = assert!(RESERVE % libc::TPACKET_ALIGNMENT == 0);
const _: () = assert!(RING_FRAME_SIZE as usize >= libc::TPACKET3_HDRLEN + RESERVE);

/// Where the link-layer address record sits after a frame's header.
const SLL_OFFSET: usize = (size_of::<libc::tpacket3_hdr>() + libc::TPACKET_ALIGNMENT - 1)
    & !(libc::TPACKET_ALIGNMENT - 1);

const BLOCK_HDR: usize = offset_of!(libc::tpacket_block_desc, hdr);
const BLOCK_STATUS: usize = BLOCK_HDR + offset_of!(libc::tpacket_hdr_v1, block_status);
const BLOCK_NUM_PKTS: usize = BLOCK_HDR + offset_of!(libc::tpacket_hdr_v1, num_pkts);
const BLOCK_FIRST_PKT: usize = BLOCK_HDR + offset_of!(libc::tpacket_hdr_v1, offset_to_first_pkt);

fn last_error() -> io::Error {
    io::Error::last_os_error()
}

/// Where a received frame is in the ring, and what the kernel says of it.
#[derive(Debug, Clone, Copy)]
struct RingFrame {
    /// Offset in the mapping of the frame's Ethernet header; the
    /// [`RESERVE`] bytes before it are free.
    at: usize,
    /// Bytes in the ring.
    len: usize,
    /// Length on the wire (more than `len` when the ring truncated it).
    wire_len: u32,
    /// A VLAN tag the kernel took off: (TPID, TCI).
    vlan: Option<(u16, u16)>,
    /// Sent by this host, not received.
    outgoing: bool,
    /// The sender left the L4 checksum to offload (`CHECKSUM_PARTIAL`).
    csum_not_ready: bool,
}

/// A TPACKET_V3 receive ring mapped into the process.
///
/// Blocks are read in ring order. A block read to the end is not given
/// back at once: the frames of the batch in progress may lie in it. The
/// `done` blocks before `block` are read and wait for [`Ring::release`].
struct Ring {
    base: NonNull<u8>,
    len: usize,
    block_size: usize,
    block_count: usize,
    /// The block being read (or, with `left == 0`, to read next).
    block: usize,
    /// Frames of `block` not read yet; 0 when it is not held.
    left: u32,
    /// Offset in `block` of the next frame.
    next: usize,
    /// Blocks read to the end and not yet given back: the `done` blocks
    /// before `block`.
    done: usize,
}

// SAFETY: the mapping belongs to this ring alone and is only touched
// through `&mut self` (or frames noted from it, which live in the same
// backend); moving it to another thread is fine.
unsafe impl Send for Ring {}

impl Ring {
    fn status(&self, block: usize) -> &AtomicU32 {
        // SAFETY: BLOCK_STATUS is inside every block (blocks are at least
        // a page), 4-byte aligned (blocks are page aligned), and the kernel
        // and this process hand the block over through this word.
        unsafe {
            &*self
                .base
                .as_ptr()
                .add(block * self.block_size + BLOCK_STATUS)
                .cast()
        }
    }

    fn read_u32(&self, at: usize) -> u32 {
        debug_assert!(at + 4 <= self.len);
        // SAFETY: `at` is inside the mapping (callers check it).
        unsafe { self.base.as_ptr().add(at).cast::<u32>().read_unaligned() }
    }

    /// Moves past the current block, which stays held until
    /// [`Ring::release`].
    fn finish_block(&mut self) {
        self.done += 1;
        self.block = (self.block + 1) % self.block_count;
        self.left = 0;
    }

    /// Gives every block read to the end back to the kernel, oldest first.
    /// Frames noted from them must no longer be used.
    fn release(&mut self) {
        for k in (1..=self.done).rev() {
            let b = (self.block + self.block_count - k) % self.block_count;
            self.status(b)
                .store(libc::TP_STATUS_KERNEL, Ordering::Release);
        }
        self.done = 0;
    }

    /// The next received frame, or `None` when the kernel has not handed
    /// over the next block (or every block waits to be released). After a
    /// `Some`, call [`Ring::advance`].
    fn peek(&mut self) -> Option<RingFrame> {
        loop {
            if self.left == 0 {
                if self.done == self.block_count {
                    return None;
                }
                let status = self.status(self.block).load(Ordering::Acquire);
                if status & libc::TP_STATUS_USER == 0 {
                    return None;
                }
                let start = self.block * self.block_size;
                self.left = self.read_u32(start + BLOCK_NUM_PKTS);
                self.next = self.read_u32(start + BLOCK_FIRST_PKT) as usize;
                if self.left == 0 {
                    self.finish_block();
                    continue;
                }
            }
            match self.locate(self.next) {
                Some(f) => return Some(f),
                // A header pointing outside its block, or a frame without
                // its reserve: skip the rest of the block rather than read
                // or write out of bounds.
                None => self.finish_block(),
            }
        }
    }

    /// Steps past the frame [`Ring::peek`] returned.
    fn advance(&mut self) {
        let hdr = self.block * self.block_size + self.next;
        let next_offset = self.read_u32(hdr + offset_of!(libc::tpacket3_hdr, tp_next_offset));
        self.left -= 1;
        self.next += next_offset as usize;
        if self.left == 0 || next_offset == 0 {
            self.finish_block();
        }
    }

    /// The frame whose header is at `offset` in the current block, checked
    /// to lie inside the block with its reserve after its own headers.
    fn locate(&self, offset: usize) -> Option<RingFrame> {
        let block_start = self.block * self.block_size;
        if offset + libc::TPACKET3_HDRLEN > self.block_size {
            return None;
        }
        // SAFETY: the header is inside the block (checked above); aligned
        // by the kernel, read unaligned anyway.
        let hdr: libc::tpacket3_hdr = unsafe {
            self.base
                .as_ptr()
                .add(block_start + offset)
                .cast::<libc::tpacket3_hdr>()
                .read_unaligned()
        };
        let mac = usize::from(hdr.tp_mac);
        let len = hdr.tp_snaplen as usize;
        if mac < libc::TPACKET3_HDRLEN + RESERVE || offset + mac + len > self.block_size {
            return None;
        }
        let pkttype_at =
            block_start + offset + SLL_OFFSET + offset_of!(libc::sockaddr_ll, sll_pkttype);
        // SAFETY: inside the block, checked above.
        let pkttype = unsafe { self.base.as_ptr().add(pkttype_at).read() };
        let vlan = (hdr.tp_status & libc::TP_STATUS_VLAN_VALID != 0).then(|| {
            let tpid = if hdr.tp_status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                hdr.hv1.tp_vlan_tpid
            } else {
                ethernet::ETHERTYPE_VLAN
            };
            (tpid, hdr.hv1.tp_vlan_tci as u16)
        });
        Some(RingFrame {
            at: block_start + offset + mac,
            len,
            wire_len: hdr.tp_len,
            vlan,
            outgoing: pkttype == libc::PACKET_OUTGOING,
            csum_not_ready: hdr.tp_status & libc::TP_STATUS_CSUMNOTREADY != 0,
        })
    }

    /// The frame `f` returned by [`Ring::peek`] as a [`RingSlot`]: its
    /// reserve and its bytes, with a VLAN tag the kernel took off put back
    /// in front of the EtherType. `None` when it is longer than
    /// `max_frame` or was cut short by the ring.
    fn slot(&mut self, f: &RingFrame, max_frame: usize, port: u16) -> Option<RingSlot> {
        if f.wire_len as usize > f.len {
            return None;
        }
        let tag = match f.vlan {
            Some(tag) if f.len >= MACS => Some(tag),
            _ => None,
        };
        let len = f.len + if tag.is_some() { VLAN_TAG_LEN } else { 0 };
        if len > max_frame {
            return None;
        }
        // SAFETY: `locate` checked that the reserve and the frame,
        // [at - RESERVE, at + len), lie inside the current block, after
        // the frame's own headers; the block is held by this process until
        // `release`, which comes after every use of the slot.
        let buf = unsafe { NonNull::new_unchecked(self.base.as_ptr().add(f.at - RESERVE)) };
        let mut slot = RingSlot {
            buf,
            cap: (RESERVE + f.len) as u32,
            head: RESERVE as u32,
            len: len as u32,
            ingress_port: port,
            verdict: None,
        };
        if let Some((tpid, tci)) = tag {
            // Destination and source addresses 4 bytes to the front, the
            // tag after them: the frame as it was on the wire.
            let head = RESERVE - VLAN_TAG_LEN;
            let b = slot.buf_mut();
            b.copy_within(RESERVE..RESERVE + MACS, head);
            b[head + MACS..head + MACS + 2].copy_from_slice(&tpid.to_be_bytes());
            b[head + MACS + 2..head + MACS + 4].copy_from_slice(&tci.to_be_bytes());
            slot.head = head as u32;
        }
        Some(slot)
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: base/len are the mapping made in `Port::open`, unmapped
        // once.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
    }
}

/// A received frame left in its ring block: the reserve in front of it,
/// then the frame, as the pipeline rewrites it.
#[derive(Debug)]
struct RingSlot {
    /// The reserve's first byte, in a block held until the batch is sent.
    buf: NonNull<u8>,
    /// Bytes from `buf` to the end of the received frame.
    cap: u32,
    /// The frame's offset from `buf` (less than [`RESERVE`] once a VLAN tag
    /// is put back or the frame encapsulated).
    head: u32,
    /// The frame's length.
    len: u32,
    ingress_port: u16,
    verdict: Option<Verdict>,
}

impl RingSlot {
    fn buf_mut(&mut self) -> &mut [u8] {
        // SAFETY: see `Ring::slot`: `cap` bytes from `buf` are this
        // frame's reserve and bytes, in a block the kernel does not write
        // until it is released, and no other slot covers them.
        unsafe { std::slice::from_raw_parts_mut(self.buf.as_ptr(), self.cap as usize) }
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: as in `buf_mut`; head + len <= cap is kept by `Ring::slot`
        // and by the pipeline (it moves the frame only inside its buffer).
        unsafe {
            std::slice::from_raw_parts(self.buf.as_ptr().add(self.head as usize), self.len as usize)
        }
    }
}

/// The frames of the batch in progress, in their ring blocks: what the
/// worker processes ([`Frames`]) and the sender reads.
struct RingBatch {
    slots: Vec<RingSlot>,
}

// SAFETY: the slots point into rings of the same backend, which moves
// with them; they are used only by the thread that owns the backend.
unsafe impl Send for RingBatch {}

impl Frames for RingBatch {
    #[inline]
    fn count(&self) -> usize {
        self.slots.len()
    }

    #[inline]
    fn each_bytes(&self, mut f: impl FnMut(&[u8])) {
        for s in &self.slots {
            f(s.bytes());
        }
    }

    #[inline]
    fn each_frame(&mut self, mut f: impl FnMut(usize, &mut Frame<'_>, u16) -> Verdict) {
        for (i, s) in self.slots.iter_mut().enumerate() {
            let (head, len, port) = (s.head as usize, s.len as usize, s.ingress_port);
            // `Ring::slot` leaves at least MAX_GROWTH bytes in front of the
            // frame and ends the buffer with it.
            let mut frame = Frame::new(s.buf_mut(), head, len)
                .expect("a ring slot has the headroom and the span checked when it was noted");
            let v = f(i, &mut frame, port);
            let (head, len) = (frame.head(), frame.len());
            s.head = head as u32;
            s.len = len as u32;
            s.verdict = Some(v);
        }
    }
}

/// The transmit scratch of a port: iovecs and message headers, rebuilt
/// for every batch.
struct TxScratch {
    iov: Vec<libc::iovec>,
    msgs: Vec<libc::mmsghdr>,
}

// SAFETY: the raw pointers in the scratch only point into the ring blocks
// of the batch being sent, during `transmit`; between calls they are never
// dereferenced.
unsafe impl Send for TxScratch {}

struct Port {
    fd: OwnedFd,
    ring: Ring,
    tx: TxScratch,
}

fn setsockopt<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` is a valid T for the duration of the call, and the
    // length passed is its size.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if r == 0 { Ok(()) } else { Err(last_error()) }
}

impl Port {
    fn open(
        spec: &PortSpec,
        cfg: &RingConfig,
        fanout: Option<u16>,
        batch: BatchSize,
    ) -> Result<Port, AfPacketError> {
        let err = |call: &'static str, source: io::Error| AfPacketError::Setup {
            port: spec.port,
            interface: spec.interface.clone(),
            call,
            source,
        };
        let name =
            CString::new(spec.interface.as_str()).map_err(|_| AfPacketError::NoInterface {
                port: spec.port,
                interface: spec.interface.clone(),
            })?;
        // SAFETY: `name` is a NUL-terminated string.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if ifindex == 0 {
            return Err(AfPacketError::NoInterface {
                port: spec.port,
                interface: spec.interface.clone(),
            });
        }
        // Protocol 0: receive nothing until bound to the interface, so
        // other interfaces' frames never land in the ring.
        // SAFETY: plain socket(2).
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(err("socket(AF_PACKET)", last_error()));
        }
        // SAFETY: `raw` is a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };

        let version = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_VERSION, &version)
            .map_err(|e| err("PACKET_VERSION", e))?;
        // Headroom in front of every frame; only possible before the ring.
        setsockopt(
            &fd,
            libc::SOL_PACKET,
            libc::PACKET_RESERVE,
            &(RESERVE as u32),
        )
        .map_err(|e| err("PACKET_RESERVE", e))?;
        let req = libc::tpacket_req3 {
            tp_block_size: cfg.block_size,
            tp_block_nr: cfg.block_count,
            tp_frame_size: RING_FRAME_SIZE,
            tp_frame_nr: cfg.block_size / RING_FRAME_SIZE * cfg.block_count,
            tp_retire_blk_tov: cfg.block_timeout_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_RX_RING, &req)
            .map_err(|e| err("PACKET_RX_RING", e))?;
        let len = cfg.block_size as usize * cfg.block_count as usize;
        // SAFETY: maps the ring the kernel just allocated for this socket.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(err("mmap(rx ring)", last_error()));
        }
        let ring = Ring {
            base: NonNull::new(base.cast()).ok_or_else(|| err("mmap(rx ring)", last_error()))?,
            len,
            block_size: cfg.block_size as usize,
            block_count: cfg.block_count as usize,
            block: 0,
            left: 0,
            next: 0,
            done: 0,
        };

        // Best effort: old kernels lack it, and frames are checked anyway.
        let _ = setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, &1i32);
        if cfg.qdisc_bypass {
            setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS, &1i32)
                .map_err(|e| err("PACKET_QDISC_BYPASS", e))?;
        }

        let sll = libc::sockaddr_ll {
            sll_family: libc::AF_PACKET as u16,
            sll_protocol: (libc::ETH_P_ALL as u16).to_be(),
            sll_ifindex: ifindex as i32,
            sll_hatype: 0,
            sll_pkttype: 0,
            sll_halen: 0,
            sll_addr: [0; 8],
        };
        // SAFETY: `sll` is a valid sockaddr_ll of the size passed.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(err("bind", last_error()));
        }
        let mreq = libc::packet_mreq {
            mr_ifindex: ifindex as i32,
            mr_type: libc::PACKET_MR_PROMISC as u16,
            mr_alen: 0,
            mr_address: [0; 8],
        };
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mreq)
            .map_err(|e| err("PACKET_ADD_MEMBERSHIP(promisc)", e))?;
        if let Some(group) = fanout {
            let arg: u32 = u32::from(group) | (libc::PACKET_FANOUT_HASH << 16);
            setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_FANOUT, &arg)
                .map_err(|e| err("PACKET_FANOUT", e))?;
        }
        Ok(Port {
            fd,
            ring,
            tx: TxScratch {
                iov: Vec::with_capacity(batch.get()),
                // SAFETY: an all-zero mmsghdr is valid (null pointers,
                // zero lengths).
                msgs: vec![unsafe { std::mem::zeroed() }; batch.get()],
            },
        })
    }

    /// Frames the kernel dropped because the ring was full, since the last
    /// call (reading resets the kernel's count).
    fn take_drops(&self) -> u64 {
        let mut stats = libc::tpacket_stats_v3 {
            tp_packets: 0,
            tp_drops: 0,
            tp_freeze_q_cnt: 0,
        };
        let mut len = size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
        // SAFETY: `stats` has room for the `len` bytes the kernel writes.
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut stats as *mut libc::tpacket_stats_v3).cast(),
                &mut len,
            )
        };
        if r == 0 { u64::from(stats.tp_drops) } else { 0 }
    }

    /// Sends the frames whose iovecs are in `self.tx.iov`. Returns
    /// (frames sent, bytes sent, frames refused, last errno).
    fn flush_tx(&mut self) -> (u64, u64, u64, i32) {
        let TxScratch { iov, msgs } = &mut self.tx;
        let n = iov.len();
        if msgs.len() < n {
            // A batch larger than announced at open: grow once.
            // SAFETY: an all-zero mmsghdr is valid.
            msgs.resize(n, unsafe { std::mem::zeroed() });
        }
        for (m, v) in msgs.iter_mut().zip(iov.iter_mut()) {
            m.msg_hdr.msg_name = std::ptr::null_mut();
            m.msg_hdr.msg_namelen = 0;
            m.msg_hdr.msg_iov = v;
            m.msg_hdr.msg_iovlen = 1;
            m.msg_hdr.msg_control = std::ptr::null_mut();
            m.msg_hdr.msg_controllen = 0;
            m.msg_hdr.msg_flags = 0;
            m.msg_len = 0;
        }
        let (mut sent, mut bytes, mut refused, mut errno) = (0u64, 0u64, 0u64, 0i32);
        let mut at = 0;
        while at < n {
            // SAFETY: msgs[at..n] are initialised message headers whose
            // iovecs point at frames of the batch in progress, in blocks
            // held until after this call.
            let r = unsafe {
                libc::sendmmsg(
                    self.fd.as_raw_fd(),
                    msgs[at..n].as_mut_ptr(),
                    (n - at) as libc::c_uint,
                    0,
                )
            };
            if r < 0 {
                let e = last_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // The first message was refused: count it, go on with the
                // rest.
                errno = e.raw_os_error().unwrap_or(0);
                refused += 1;
                at += 1;
                continue;
            }
            let r = r as usize;
            for m in &msgs[at..at + r] {
                bytes += u64::from(m.msg_len);
            }
            sent += r as u64;
            at += r;
        }
        iov.clear();
        (sent, bytes, refused, errno)
    }
}

/// One or more live ports driven by one worker.
pub struct AfPacketBackend {
    ports: Vec<Port>,
    /// The P4 port number of each of `ports`.
    numbers: Vec<u16>,
    /// P4 port number -> index in `ports`, or `u16::MAX`.
    index_of: Box<[u16]>,
    counters: Arc<IoCounters>,
    pollfds: Vec<libc::pollfd>,
    poll_timeout_ms: i32,
    max_frame: usize,
    /// The batch in progress: frames left in the rings.
    batch: RingBatch,
    batch_size: usize,
    /// Port to read first in the next round, so no port starves another.
    first: usize,
    /// Rounds since the kernel's drop counts were last read.
    since_stats: u32,
}

impl AfPacketBackend {
    /// Opens every port. `workers`: with more than one worker, each calls
    /// this once; their sockets of one port form a fanout group. `batch`:
    /// the most frames a round processes together.
    pub fn open(
        specs: &[PortSpec],
        cfg: &RingConfig,
        workers: usize,
        batch: BatchSize,
    ) -> Result<AfPacketBackend, AfPacketError> {
        if !cfg.block_size.is_power_of_two()
            || cfg.block_size < 4096
            || cfg.block_size % RING_FRAME_SIZE != 0
            || cfg.block_count == 0
        {
            return Err(AfPacketError::Ring(format!(
                "block size {} must be a power of two of at least 4096, with at least one block",
                cfg.block_size
            )));
        }
        let mut index_of = vec![u16::MAX; 1 << SWITCH_PORT_BITS].into_boxed_slice();
        let mut ports = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            let slot = index_of
                .get_mut(usize::from(spec.port))
                .ok_or(AfPacketError::DuplicatePort(spec.port))?;
            if *slot != u16::MAX {
                return Err(AfPacketError::DuplicatePort(spec.port));
            }
            *slot = i as u16;
            let fanout = (workers > 1).then(|| fanout_group(spec.port));
            ports.push(Port::open(spec, cfg, fanout, batch)?);
        }
        let pollfds = ports
            .iter()
            .map(|p| libc::pollfd {
                fd: p.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        Ok(AfPacketBackend {
            ports,
            numbers: specs.iter().map(|s| s.port).collect(),
            index_of,
            counters: Arc::new(IoCounters::new(
                specs
                    .iter()
                    .map(|s| (s.port, s.interface.clone()))
                    .collect(),
            )),
            pollfds,
            poll_timeout_ms: cfg.poll_timeout_ms,
            max_frame: cfg.max_frame,
            batch: RingBatch {
                slots: Vec::with_capacity(batch.get()),
            },
            batch_size: batch.get(),
            first: 0,
            since_stats: 0,
        })
    }

    /// The I/O counters, readable while the worker runs.
    pub fn counters(&self) -> Arc<IoCounters> {
        Arc::clone(&self.counters)
    }

    /// Adds the kernel's ring drop counts to the counters.
    pub fn update_drop_counts(&mut self) {
        for (p, c) in self.ports.iter().zip(&self.counters.ports) {
            let d = p.take_drops();
            if d > 0 {
                c.rx_lost.fetch_add(d, Ordering::Relaxed);
            }
        }
        self.since_stats = 0;
    }

    /// Runs rounds until `stop` is set. Returns the number of frames
    /// processed.
    pub fn run(&mut self, worker: &mut Worker, stop: &AtomicBool) -> io::Result<u64> {
        let mut frames = 0;
        while !stop.load(Ordering::Relaxed) {
            frames += self.round(worker)? as u64;
        }
        Ok(frames)
    }

    /// One round: notes up to a batch of received frames in the rings,
    /// runs the pipeline on them where they lie, sends the forwarded ones
    /// from there, and gives the blocks read to the end back to the
    /// kernel. Sleeps in `poll(2)` (at most [`RingConfig::poll_timeout_ms`])
    /// when no frame waits. Returns the number of frames processed.
    pub fn round(&mut self, worker: &mut Worker) -> io::Result<usize> {
        self.since_stats += 1;
        if self.since_stats >= 4096 {
            self.update_drop_counts();
        }
        let mut n = self.collect();
        if n == 0 {
            // Blocks of frames that were skipped go back before sleeping.
            self.release();
            self.wait()?;
            n = self.collect();
        }
        if n > 0 {
            worker.process_frames(&mut self.batch);
            self.transmit();
        }
        self.batch.slots.clear();
        self.release();
        Ok(n)
    }

    /// Sleeps until a ring has a block, or the timeout (so the caller can
    /// check its stop flag).
    fn wait(&mut self) -> io::Result<()> {
        // SAFETY: pollfds is a valid array of its length.
        let r = unsafe {
            libc::poll(
                self.pollfds.as_mut_ptr(),
                self.pollfds.len() as libc::nfds_t,
                self.poll_timeout_ms,
            )
        };
        if r < 0 {
            let e = last_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        if r == 0 {
            self.update_drop_counts();
        }
        Ok(())
    }

    /// Gives every block read to the end back to the kernel.
    fn release(&mut self) {
        for p in &mut self.ports {
            p.ring.release();
        }
    }

    /// Notes received frames, port after port, until the batch is full or
    /// no frame waits. Returns how many.
    fn collect(&mut self) -> usize {
        let n_ports = self.ports.len();
        let (max_frame, cap) = (self.max_frame, self.batch_size);
        let slots = &mut self.batch.slots;
        let mut total = 0;
        for k in 0..n_ports {
            let i = (self.first + k) % n_ports;
            let (port, cells, p4_port) =
                (&mut self.ports[i], &self.counters.ports[i], self.numbers[i]);
            let (mut n, mut bytes, mut oversize, mut partial) = (0u64, 0u64, 0u64, 0u64);
            while slots.len() < cap {
                let Some(f) = port.ring.peek() else { break };
                if !f.outgoing {
                    partial += u64::from(f.csum_not_ready);
                    match port.ring.slot(&f, max_frame, p4_port) {
                        Some(slot) => {
                            n += 1;
                            bytes += u64::from(slot.len);
                            slots.push(slot);
                        }
                        None => oversize += 1,
                    }
                }
                port.ring.advance();
            }
            if n > 0 {
                cells.rx.add(n, bytes);
            }
            if oversize > 0 {
                self.counters
                    .oversize
                    .fetch_add(oversize, Ordering::Relaxed);
            }
            if partial > 0 {
                self.counters
                    .csum_not_ready
                    .fetch_add(partial, Ordering::Relaxed);
            }
            total += n as usize;
        }
        self.first = (self.first + 1) % n_ports.max(1);
        total
    }

    /// Sends the forwarded frames of the batch, straight from the rings,
    /// with one `sendmmsg` per egress port.
    fn transmit(&mut self) {
        let (mut unmapped, mut unmapped_bytes) = (0u64, 0u64);
        for s in &self.batch.slots {
            let Some(Verdict::Forward { port }) = s.verdict else {
                continue;
            };
            let len = s.len as usize;
            self.counters.egress(port, 1, len as u64);
            match self.index_of.get(usize::from(port)) {
                Some(&i) if i != u16::MAX => {
                    self.ports[usize::from(i)].tx.iov.push(libc::iovec {
                        iov_base: s.bytes().as_ptr().cast_mut().cast(),
                        iov_len: len,
                    });
                }
                _ => {
                    unmapped += 1;
                    unmapped_bytes += len as u64;
                }
            }
        }
        if unmapped > 0 {
            self.counters.unmapped.add(unmapped, unmapped_bytes);
        }
        for (port, cells) in self.ports.iter_mut().zip(&self.counters.ports) {
            if port.tx.iov.is_empty() {
                continue;
            }
            let (sent, bytes, refused, errno) = port.flush_tx();
            cells.tx.add(sent, bytes);
            if refused > 0 {
                cells.tx_errors.fetch_add(refused, Ordering::Relaxed);
                cells.last_tx_errno.store(errno, Ordering::Relaxed);
            }
        }
    }
}

/// A fanout group id for a port, distinct per port and per process.
fn fanout_group(port: u16) -> u16 {
    (std::process::id() as u16)
        .wrapping_mul(509)
        .wrapping_add(port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_specs() {
        assert_eq!(
            "1=veth0".parse::<PortSpec>().unwrap(),
            PortSpec {
                port: 1,
                interface: "veth0".into()
            }
        );
        assert_eq!("511=eth1".parse::<PortSpec>().unwrap().port, 511);
        for bad in [
            "veth0",
            "x=veth0",
            "512=eth0",
            "1=",
            "1=averyveryverylongname",
            "1=a/b",
        ] {
            assert!(bad.parse::<PortSpec>().is_err(), "{bad}");
        }
        assert!(
            "512=eth0"
                .parse::<PortSpec>()
                .unwrap_err()
                .contains("9 bits")
        );
    }

    #[test]
    fn header_offsets_match_the_kernel_abi() {
        // linux/if_packet.h: tpacket3_hdr is 48 bytes, the sockaddr_ll
        // follows at TPACKET_ALIGN(48); the block header fields sit after
        // version and offset_to_priv.
        assert_eq!(SLL_OFFSET, 48);
        assert_eq!((BLOCK_STATUS, BLOCK_NUM_PKTS, BLOCK_FIRST_PKT), (8, 12, 16));
    }

    #[test]
    fn missing_interface_is_named() {
        let spec = PortSpec {
            port: 3,
            interface: "nosuchif0".into(),
        };
        match AfPacketBackend::open(&[spec], &RingConfig::default(), 1, BatchSize::DEFAULT) {
            Err(AfPacketError::NoInterface { port: 3, interface }) => {
                assert_eq!(interface, "nosuchif0")
            }
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("opened a missing interface"),
        }
    }
}

/// The backend on real interfaces: a namespace with the switch's ports
/// and one with their veth peers, frames sent into a peer and captured on
/// the other. Needs root and iproute2 (says so loudly otherwise).
#[cfg(test)]
mod live {
    use super::*;
    use crate::io::{MemoryBackend, run};
    use crate::packet::Batch;
    use crate::testing::{syn, two_servers};
    use beamer_testbed::{Netns, veth};
    use std::collections::HashMap;
    use std::time::{Duration, Instant};

    /// ```text
    ///   ns ..pe          ns ..sw
    ///   c1 <--veth--> s1 = port 1
    ///   v2 <--veth--> s2 = port 2
    /// ```
    struct Link {
        sw: Netns,
        pe: Netns,
    }

    fn link(tag: &str, what: &str) -> Option<Link> {
        if let Some(why) = beamer_testbed::missing(&["ip"], false) {
            beamer_testbed::skip_unless_required(
                beamer_testbed::REQUIRE_TOOLS,
                what,
                &format!("{why}; the TPACKET_V3 ring was NOT exercised on a veth pair"),
            );
            return None;
        }
        beamer_testbed::sweep_stale("bafu");
        let base = format!("bafu{}{tag}", std::process::id());
        let ns = |role: &str| {
            let ns = Netns::new(format!("{base}{role}")).expect("namespace");
            ns.disable_ipv6().expect("sysctl");
            ns
        };
        let l = Link {
            sw: ns("sw"),
            pe: ns("pe"),
        };
        veth(&l.sw, "s1", &l.pe, "c1").expect("veth s1-c1");
        veth(&l.sw, "s2", &l.pe, "v2").expect("veth s2-v2");
        Some(l)
    }

    impl Link {
        fn open(&self, cfg: RingConfig, batch: usize) -> AfPacketBackend {
            let specs: Vec<PortSpec> = ["1=s1", "2=s2"]
                .iter()
                .map(|s| s.parse().unwrap())
                .collect();
            let batch = BatchSize::new(batch).unwrap();
            self.sw
                .run(|| AfPacketBackend::open(&specs, &cfg, 1, batch))
                .expect("open the ports")
        }

        /// A packet socket on a peer interface.
        fn tap(&self, ifname: &str) -> OwnedFd {
            self.pe.run(|| {
                let name = CString::new(ifname).unwrap();
                // SAFETY: plain libc calls with valid arguments; the
                // descriptor is owned at once.
                unsafe {
                    let ifindex = libc::if_nametoindex(name.as_ptr());
                    assert!(ifindex != 0, "no interface {ifname}");
                    let raw = libc::socket(
                        libc::AF_PACKET,
                        libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                        i32::from((libc::ETH_P_ALL as u16).to_be()),
                    );
                    assert!(raw >= 0, "socket: {}", last_error());
                    let fd = OwnedFd::from_raw_fd(raw);
                    let mut sll: libc::sockaddr_ll = std::mem::zeroed();
                    sll.sll_family = libc::AF_PACKET as u16;
                    sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
                    sll.sll_ifindex = ifindex as i32;
                    let r = libc::bind(
                        fd.as_raw_fd(),
                        (&sll as *const libc::sockaddr_ll).cast(),
                        size_of::<libc::sockaddr_ll>() as u32,
                    );
                    assert_eq!(r, 0, "bind: {}", last_error());
                    let tv = libc::timeval {
                        tv_sec: 0,
                        tv_usec: 50_000,
                    };
                    setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv).unwrap();
                    fd
                }
            })
        }
    }

    fn send(fd: &OwnedFd, frame: &[u8]) {
        // SAFETY: sends `frame` on a bound packet socket.
        let n = unsafe { libc::send(fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        assert_eq!(n, frame.len() as isize, "send: {}", last_error());
    }

    /// The frames received (not sent) on the tap until it stays quiet.
    fn capture(fd: &OwnedFd, want: usize) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 4096];
        let deadline = Instant::now() + Duration::from_secs(5);
        while got.len() < want && Instant::now() < deadline {
            // SAFETY: an all-zero sockaddr_ll is valid; `buf` and `sll`
            // have the sizes passed.
            let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut len = size_of::<libc::sockaddr_ll>() as u32;
            let n = unsafe {
                libc::recvfrom(
                    fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    0,
                    (&mut sll as *mut libc::sockaddr_ll).cast(),
                    &mut len,
                )
            };
            if n > 0 && sll.sll_pkttype != libc::PACKET_OUTGOING {
                got.push(buf[..n as usize].to_vec());
            }
        }
        got
    }

    /// What the pipeline makes of `frames` in memory: (port, frame).
    fn in_memory(frames: &[Vec<u8>]) -> Vec<(u16, Vec<u8>)> {
        let switch = two_servers();
        let mut mem = MemoryBackend::with_input(frames.iter().map(|f| (1, f.clone())));
        let stop = AtomicBool::new(false);
        run(
            &mut switch.worker(),
            &mut mem,
            &mut Batch::with_defaults(),
            &stop,
        )
        .unwrap();
        mem.take_output()
    }

    /// Rounds until `want` frames were processed (or 5 s passed).
    fn rounds(backend: &mut AfPacketBackend, worker: &mut Worker, want: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut n = 0;
        while n < want && Instant::now() < deadline {
            n += backend.round(worker).unwrap();
        }
        n
    }

    fn small_ring() -> RingConfig {
        RingConfig {
            block_size: 4096,
            block_count: 2,
            poll_timeout_ms: 10,
            ..RingConfig::default()
        }
    }

    #[test]
    fn frames_sit_behind_the_reserve_and_vlan_tags_go_back_in_place() {
        let Some(l) = link("r", "frames_sit_behind_the_reserve") else {
            return;
        };
        let cfg = RingConfig {
            max_frame: 100,
            poll_timeout_ms: 10,
            ..RingConfig::default()
        };
        let mut backend = l.open(cfg, 8);
        let c1 = l.tap("c1");
        //  plain SYN | 802.1Q tag 0x8100 VID 5 after the MACs | 101 bytes
        let plain = syn([198, 51, 100, 1], 1000);
        let mut tagged = plain[..12].to_vec();
        tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
        tagged.extend_from_slice(&plain[12..]);
        let mut long = syn([198, 51, 100, 2], 2000);
        long.resize(101, 0xee);
        for f in [&plain, &tagged, &long] {
            send(&c1, f);
        }

        // The kernel hands the block over after the block timeout.
        let deadline = Instant::now() + Duration::from_secs(5);
        let port = &mut backend.ports[0];
        let f = loop {
            if let Some(f) = port.ring.peek() {
                break f;
            }
            assert!(Instant::now() < deadline, "no frame reached the ring");
            std::thread::sleep(Duration::from_millis(2));
        };
        // The first frame's header: tp_mac and tp_net moved by the reserve
        // (82 and 96 without it), both inside the frame's own slot.
        let ring = &port.ring;
        let hdr_at = ring.block * ring.block_size + ring.next;
        // SAFETY: `peek` checked the header lies in the held block.
        let hdr: libc::tpacket3_hdr = unsafe {
            ring.base
                .as_ptr()
                .add(hdr_at)
                .cast::<libc::tpacket3_hdr>()
                .read()
        };
        let align = libc::TPACKET_ALIGNMENT;
        let net = (libc::TPACKET3_HDRLEN + 16).div_ceil(align) * align + RESERVE;
        assert_eq!(
            (usize::from(hdr.tp_mac), usize::from(hdr.tp_net)),
            (net - 14, net)
        );
        assert_eq!(f.at - hdr_at, net - 14);
        assert_eq!(hdr.tp_next_offset % 8, 0, "frames at multiples of 8");

        // Noted without a copy: the plain frame right behind the reserve,
        // the tagged one 4 bytes into it with its tag back, the long one
        // counted as oversize.
        let mut n = 0;
        while n < 2 && Instant::now() < deadline {
            n += backend.collect();
        }
        assert_eq!(n, 2);
        let slots = &backend.batch.slots;
        assert_eq!(
            (slots[0].head as usize, slots[0].bytes()),
            (RESERVE, &plain[..])
        );
        assert_eq!(
            (slots[1].head as usize, slots[1].bytes()),
            (RESERVE - VLAN_TAG_LEN, &tagged[..])
        );
        assert_eq!(
            slots[0].buf.as_ptr() as usize,
            ring_addr(&backend, f.at - RESERVE)
        );
        let io = backend.counters().read();
        assert_eq!(io.oversize, 1);
        assert_eq!((io.ports[0].rx.packets, io.ports[0].rx.bytes), (2, 54 + 58));

        // The rest of the round: encapsulated in the ring, sent from
        // there, the block given back.
        let switch = two_servers();
        let mut worker = switch.worker();
        let v2 = l.tap("v2");
        backend.worker_finish(&mut worker);
        let want = in_memory(&[plain.clone(), tagged.clone()]);
        assert_eq!(want.len(), 1, "the tagged frame is dropped as non_ipv4");
        assert_eq!(capture(&v2, 1), vec![want[0].1.clone()]);
        assert_eq!(backend.ports[0].ring.done, 0);
        drop(l);
    }

    fn ring_addr(backend: &AfPacketBackend, at: usize) -> usize {
        backend.ports[0].ring.base.as_ptr() as usize + at
    }

    impl AfPacketBackend {
        /// The second half of a round, after a `collect` by the test.
        fn worker_finish(&mut self, worker: &mut Worker) {
            worker.process_frames(&mut self.batch);
            self.transmit();
            self.batch.slots.clear();
            self.release();
        }
    }

    /// The ring fills up while a batch is in progress: the kernel must not
    /// write into the blocks the batch's frames are in until they are
    /// sent, so it drops what arrives meanwhile, and the batch goes out
    /// intact. Afterwards the ring takes frames again.
    #[test]
    fn a_full_ring_does_not_overwrite_the_batch_in_progress() {
        let Some(l) = link("f", "a_full_ring_does_not_overwrite_the_batch_in_progress") else {
            return;
        };
        let mut backend = l.open(small_ring(), 256);
        let (c1, v2) = (l.tap("c1"), l.tap("v2"));
        let frames: Vec<Vec<u8>> = (0..150u16)
            .map(|i| syn([198, 51, 100, 1], 1000 + i))
            .collect();
        // More than two blocks hold: the kernel fills both and drops the
        // rest.
        for f in &frames[..60] {
            send(&c1, f);
        }
        std::thread::sleep(Duration::from_millis(20));
        let n = backend.collect();
        assert!(n > 0 && n < 60, "{n} frames in two 4 KiB blocks");
        assert_eq!(backend.ports[0].ring.done, 2, "both blocks read, held");
        // Noted, not yet processed: what arrives now finds no block.
        for f in &frames[60..100] {
            send(&c1, f);
        }
        std::thread::sleep(Duration::from_millis(20));
        let switch = two_servers();
        let mut worker = switch.worker();
        backend.worker_finish(&mut worker);
        let want: Vec<Vec<u8>> = in_memory(&frames[..n])
            .into_iter()
            .map(|(_, f)| f)
            .collect();
        assert!(capture(&v2, n) == want, "the batch was overwritten");
        backend.update_drop_counts();
        assert_eq!(
            backend.counters().read().ports[0].rx_lost,
            100 - n as u64,
            "dropped by the kernel while the ring was full"
        );
        // Given back: the ring takes frames again (one at a time, so no
        // block timer can leave the kernel without a free block).
        for f in &frames[100..110] {
            send(&c1, f);
            assert_eq!(rounds(&mut backend, &mut worker, 1), 1);
        }
        let want: Vec<Vec<u8>> = in_memory(&frames[100..110])
            .into_iter()
            .map(|(_, f)| f)
            .collect();
        assert!(capture(&v2, 10) == want);
        drop(l);
    }

    /// Through a ring of two 4 KiB blocks (about 20 of these frames each), in
    /// steps: batches that end in the middle of a block (7 frames), and
    /// batches larger than the ring (64: a round takes every frame
    /// waiting, across blocks). Every frame the switch receives comes
    /// out once, in order, byte for byte as in memory; the kernel drops a
    /// frame only when it finds no free block (when the test thread is
    /// slow and the block timer hands over half-full blocks), and counts
    /// it.
    #[test]
    fn blocks_go_back_only_after_their_frames_are_sent() {
        for (tag, batch, per_step) in [("a", 7, 20), ("b", 64, 30)] {
            let Some(l) = link(tag, "blocks_go_back_only_after_their_frames_are_sent") else {
                return;
            };
            let mut backend = l.open(small_ring(), batch);
            let (c1, v2) = (l.tap("c1"), l.tap("v2"));
            let switch = two_servers();
            let mut worker = switch.worker();
            let steps = 20;
            let frames: Vec<Vec<u8>> = (0..steps * per_step)
                .map(|i| syn([198, 51, 100, (i % 200) as u8 + 1], 1000 + i as u16))
                .collect();
            // Output frame -> the index of its input (source ports differ).
            let index: HashMap<Vec<u8>, usize> = in_memory(&frames)
                .into_iter()
                .enumerate()
                .map(|(i, (_, f))| (f, i))
                .collect();
            assert_eq!(index.len(), frames.len());
            let (mut sent, mut seen, mut got) = (0u64, 0u64, Vec::new());
            for step in frames.chunks(per_step) {
                for f in step {
                    send(&c1, f);
                }
                sent += step.len() as u64;
                // Rounds until every frame sent so far was received or
                // counted as lost by the kernel.
                let deadline = Instant::now() + Duration::from_secs(5);
                let received = loop {
                    backend.update_drop_counts();
                    let io = backend.counters().read();
                    let (rx, lost) = (io.ports[0].rx.packets, io.ports[0].rx_lost);
                    if rx + lost >= sent || Instant::now() > deadline {
                        break rx;
                    }
                    backend.round(&mut worker).unwrap();
                };
                got.extend(capture(&v2, (received - seen) as usize));
                seen = received;
            }
            backend.update_drop_counts();
            let io = backend.counters().read();
            let (received, lost) = (io.ports[0].rx.packets, io.ports[0].rx_lost);
            assert_eq!(received + lost, frames.len() as u64, "batch {batch}");
            assert!(
                received > frames.len() as u64 / 2,
                "batch {batch}: only {received} frames received"
            );
            assert_eq!(got.len() as u64, received, "batch {batch}");
            assert_eq!(io.ports[1].tx.packets, received);
            let order: Vec<usize> = got
                .iter()
                .map(|f| {
                    *index
                        .get(f)
                        .expect("an output the pipeline makes of a sent frame")
                })
                .collect();
            assert!(
                order.windows(2).all(|w| w[0] < w[1]),
                "batch {batch}: each frame once, in order: {order:?}"
            );
            assert_eq!(backend.ports[0].ring.done, 0);
            drop(l);
        }
    }
}
