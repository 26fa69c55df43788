//! Live Linux interfaces over AF_PACKET: a TPACKET_V3 receive ring per
//! port, `sendmmsg` for transmit, batches on both sides.
//!
//! Each port (`--port 1=veth0`) is one packet socket bound to its
//! interface, which is put in promiscuous mode for as long as the socket
//! is open (the membership goes away with the socket, also when the
//! process dies). The kernel writes received frames into a ring of blocks
//! shared with the process; [`AfPacketBackend::recv`] walks the blocks the
//! kernel has handed over, copies each frame into the batch (the only copy
//! on the receive side, like a NIC writing into a buffer with headroom)
//! and gives the block back. When no frame is waiting it sleeps in
//! `poll(2)` for at most [`RingConfig::poll_timeout_ms`].
//!
//! [`AfPacketBackend::send`] groups the forwarded frames of a batch by
//! egress port and hands each group to the kernel with one `sendmmsg(2)`,
//! pointing straight at the frames in the batch. Frames the kernel refuses
//! (longer than the interface's MTU allows, say: give the mux's links room
//! for the 36-byte outer header) are counted as transmit errors and
//! skipped; the rest of the batch still goes out.
//!
//! - Frames the host itself sends out of a port (including the switch's
//!   own transmissions) are not received: `PACKET_IGNORE_OUTGOING`, and a
//!   check of each frame's packet type for kernels without it.
//! - The kernel takes VLAN tags off received frames and reports them
//!   beside the frame; they are put back, so the pipeline sees the frame
//!   as it was on the wire (and drops it as `non_ipv4`).
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
//! Nothing is allocated per packet: the batch, the iovecs and the message
//! headers are allocated once.

use super::Backend;
use super::report::IoCounters;
use crate::packet::Batch;
use beamer_pipeline::schema::SWITCH_PORT_BITS;
use std::ffi::CString;
use std::io;
use std::mem::{offset_of, size_of};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

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

/// Sizes of each port's receive ring, and how long a worker waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingConfig {
    /// Bytes per ring block (a power of two, a multiple of the page size).
    pub block_size: u32,
    /// Blocks per ring.
    pub block_count: u32,
    /// The kernel hands over a block that is not full after this many
    /// milliseconds, which bounds the added latency at low rates.
    pub block_timeout_ms: u32,
    /// How long [`AfPacketBackend::recv`] sleeps when no frame waits.
    pub poll_timeout_ms: i32,
    /// Send without the queueing discipline (`PACKET_QDISC_BYPASS`):
    /// faster, but tcpdump on the interface no longer sees what is sent.
    pub qdisc_bypass: bool,
}

impl Default for RingConfig {
    fn default() -> Self {
        RingConfig {
            block_size: 1 << 18,
            block_count: 64,
            block_timeout_ms: 1,
            poll_timeout_ms: 100,
            qdisc_bypass: false,
        }
    }
}

/// A frame slot in the ring's bookkeeping; TPACKET_V3 packs frames of any
/// length into blocks, this only has to divide the block size.
const RING_FRAME_SIZE: u32 = 2048;

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
    /// Offset of the frame's first byte in the mapping.
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
struct Ring {
    base: NonNull<u8>,
    len: usize,
    block_size: usize,
    block_count: usize,
    /// The block being read.
    block: usize,
    /// Frames of `block` not read yet; 0 when no block is held.
    left: u32,
    /// Offset in `block` of the next frame.
    next: usize,
}

// SAFETY: the mapping belongs to this ring alone and is only touched
// through `&mut self`; moving it to another thread is fine.
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

    /// Gives the current block back to the kernel and moves on.
    fn release(&mut self) {
        self.status(self.block)
            .store(libc::TP_STATUS_KERNEL, Ordering::Release);
        self.block = (self.block + 1) % self.block_count;
        self.left = 0;
    }

    /// The next received frame, or `None` when the kernel has not handed
    /// over the next block. After a `Some`, read it with [`Ring::data`],
    /// then call [`Ring::advance`].
    fn peek(&mut self) -> Option<RingFrame> {
        loop {
            if self.left == 0 {
                let status = self.status(self.block).load(Ordering::Acquire);
                if status & libc::TP_STATUS_USER == 0 {
                    return None;
                }
                let start = self.block * self.block_size;
                self.left = self.read_u32(start + BLOCK_NUM_PKTS);
                self.next = self.read_u32(start + BLOCK_FIRST_PKT) as usize;
                if self.left == 0 {
                    self.release();
                    continue;
                }
            }
            match self.locate(self.next) {
                Some(f) => return Some(f),
                // A header pointing outside its block: skip the rest of the
                // block rather than read out of bounds.
                None => self.release(),
            }
        }
    }

    /// The bytes of a frame returned by [`Ring::peek`].
    fn data(&self, f: &RingFrame) -> &[u8] {
        // SAFETY: `locate` checked the frame lies inside its block, and the
        // kernel does not write a block it has handed over until it is
        // released (after `advance`, which needs `&mut self`).
        unsafe { std::slice::from_raw_parts(self.base.as_ptr().add(f.at), f.len) }
    }

    /// Steps past the frame [`Ring::peek`] returned, releasing the block
    /// after its last frame.
    fn advance(&mut self) {
        let hdr = self.block * self.block_size + self.next;
        let next_offset = self.read_u32(hdr + offset_of!(libc::tpacket3_hdr, tp_next_offset));
        self.left -= 1;
        self.next += next_offset as usize;
        if self.left == 0 || next_offset == 0 {
            self.release();
        }
    }

    /// The frame whose header is at `offset` in the current block, checked
    /// to lie inside the block.
    fn locate(&self, offset: usize) -> Option<RingFrame> {
        let block_start = self.block * self.block_size;
        if offset + SLL_OFFSET + size_of::<libc::sockaddr_ll>() > self.block_size {
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
        let mac = offset + usize::from(hdr.tp_mac);
        let len = hdr.tp_snaplen as usize;
        if mac + len > self.block_size {
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
                0x8100
            };
            (tpid, hdr.hv1.tp_vlan_tci as u16)
        });
        Some(RingFrame {
            at: block_start + mac,
            len,
            wire_len: hdr.tp_len,
            vlan,
            outgoing: pkttype == libc::PACKET_OUTGOING,
            csum_not_ready: hdr.tp_status & libc::TP_STATUS_CSUMNOTREADY != 0,
        })
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

/// The transmit scratch of a port: iovecs and message headers, rebuilt
/// for every batch.
struct TxScratch {
    iov: Vec<libc::iovec>,
    msgs: Vec<libc::mmsghdr>,
}

// SAFETY: the raw pointers in the scratch only point into the batch being
// sent, during `send`; between calls they are never dereferenced.
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
        batch_cap: usize,
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
                iov: Vec::with_capacity(batch_cap),
                // SAFETY: an all-zero mmsghdr is valid (null pointers,
                // zero lengths).
                msgs: vec![unsafe { std::mem::zeroed() }; batch_cap],
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
            // iovecs point at frames of the batch borrowed by `send`.
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
    /// Port to read first in the next `recv`, so no port starves another.
    first: usize,
    /// Calls of `recv` since the kernel's drop counts were last read.
    since_stats: u32,
}

impl AfPacketBackend {
    /// Opens every port. `worker`/`workers`: with more than one worker,
    /// each calls this with its index; their sockets of one port form a
    /// fanout group. `batch_cap` is the capacity of the batches passed to
    /// [`Backend::recv`].
    pub fn open(
        specs: &[PortSpec],
        cfg: &RingConfig,
        workers: usize,
        batch_cap: usize,
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
            ports.push(Port::open(spec, cfg, fanout, batch_cap)?);
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

    /// Copies frames from the rings into `batch`. Returns how many.
    fn drain(&mut self, batch: &mut Batch) -> usize {
        let n_ports = self.ports.len();
        let mut total = 0;
        for k in 0..n_ports {
            let i = (self.first + k) % n_ports;
            let (port, cells, p4_port) =
                (&mut self.ports[i], &self.counters.ports[i], self.numbers[i]);
            let (mut n, mut bytes, mut oversize, mut partial) = (0u64, 0u64, 0u64, 0u64);
            while !batch.is_full() {
                let Some(f) = port.ring.peek() else { break };
                if !f.outgoing {
                    partial += u64::from(f.csum_not_ready);
                    match copy_frame(batch, port.ring.data(&f), &f, p4_port) {
                        Some(len) => {
                            n += 1;
                            bytes += len as u64;
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
}

/// Copies a ring frame into the next slot of `batch`, with its VLAN tag
/// put back. Returns the frame's length, or `None` when it does not fit
/// (or the ring had to truncate it).
fn copy_frame(batch: &mut Batch, data: &[u8], f: &RingFrame, port: u16) -> Option<usize> {
    if (f.wire_len as usize) > data.len() {
        return None;
    }
    let max = batch.max_frame();
    let area = batch.rx_area(batch.len())?;
    let len = match f.vlan {
        Some((tpid, tci)) if data.len() >= 12 => {
            let len = data.len() + 4;
            if len > max {
                return None;
            }
            area[..12].copy_from_slice(&data[..12]);
            area[12..14].copy_from_slice(&tpid.to_be_bytes());
            area[14..16].copy_from_slice(&tci.to_be_bytes());
            area[16..len].copy_from_slice(&data[12..]);
            len
        }
        _ => {
            let len = data.len();
            if len > max {
                return None;
            }
            area[..len].copy_from_slice(data);
            len
        }
    };
    batch.commit(len, port).ok()?;
    Some(len)
}

/// A fanout group id for a port, distinct per port and per process.
fn fanout_group(port: u16) -> u16 {
    (std::process::id() as u16)
        .wrapping_mul(509)
        .wrapping_add(port)
}

impl Backend for AfPacketBackend {
    fn recv(&mut self, batch: &mut Batch) -> io::Result<usize> {
        self.since_stats += 1;
        if self.since_stats >= 4096 {
            self.update_drop_counts();
        }
        let n = self.drain(batch);
        if n > 0 || self.ports.is_empty() {
            return Ok(n);
        }
        // Nothing waiting: sleep until a ring has a block, or the timeout
        // (so the caller can check its stop flag).
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
        Ok(self.drain(batch))
    }

    fn send(&mut self, batch: &Batch) -> io::Result<()> {
        let (mut unmapped, mut unmapped_bytes) = (0u64, 0u64);
        for (port, frame) in batch.forwarded() {
            self.counters.egress(port, 1, frame.len() as u64);
            match self.index_of.get(usize::from(port)) {
                Some(&i) if i != u16::MAX => {
                    self.ports[usize::from(i)].tx.iov.push(libc::iovec {
                        iov_base: frame.as_ptr().cast_mut().cast(),
                        iov_len: frame.len(),
                    });
                }
                _ => {
                    unmapped += 1;
                    unmapped_bytes += frame.len() as u64;
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
        Ok(())
    }
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
        match AfPacketBackend::open(&[spec], &RingConfig::default(), 1, 32) {
            Err(AfPacketError::NoInterface { port: 3, interface }) => {
                assert_eq!(interface, "nosuchif0")
            }
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("opened a missing interface"),
        }
    }
}
