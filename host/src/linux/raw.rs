//! Raw IPv4 sockets: one receives IP-in-IP packets, one sends chained ones.

use super::{cvt, cvt_size};
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// Most packets taken from the kernel per `recvmmsg`.
pub const MAX_BATCH: usize = 32;
/// Room for the largest IPv4 packet.
const BUF_LEN: usize = 65536;

fn raw_socket(protocol: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the descriptor is owned right after.
    let fd =
        cvt(unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, protocol) })?;
    // SAFETY: fd is fresh and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn set_opt<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: value points to a live T of the size given.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Receives every IP-in-IP packet addressed to this host, in batches. Each
/// packet starts at its outer IPv4 header, options included; the kernel
/// has reassembled fragments and checked the outer header checksum.
#[derive(Debug)]
pub struct RawRx {
    fd: OwnedFd,
    bufs: Vec<Vec<u8>>,
    lens: Vec<usize>,
    batch: usize,
}

impl RawRx {
    /// Opens the socket. A receive returns after at most `timeout` with no
    /// packet, so the caller can look at its flags.
    pub fn new(batch: usize, timeout: Duration) -> io::Result<Self> {
        let fd = raw_socket(libc::IPPROTO_IPIP)?;
        let tv = libc::timeval {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_usec: timeout.subsec_micros() as libc::suseconds_t,
        };
        set_opt(&fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv)?;
        // A bigger queue rides out bursts; the kernel caps it at rmem_max.
        set_opt(
            &fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &((8 << 20) as libc::c_int),
        )?;
        let batch = batch.clamp(1, MAX_BATCH);
        Ok(RawRx {
            fd,
            bufs: (0..batch).map(|_| vec![0; BUF_LEN]).collect(),
            lens: vec![0; batch],
            batch,
        })
    }

    /// Waits for packets and takes up to a batch of them. `Ok(0)` on
    /// timeout or signal.
    pub fn recv_batch(&mut self) -> io::Result<usize> {
        // SAFETY: all-zero iovec and mmsghdr are valid (null pointers, zero
        // lengths); they are filled in below.
        let mut iov: [libc::iovec; MAX_BATCH] = unsafe { std::mem::zeroed() };
        let mut msgs: [libc::mmsghdr; MAX_BATCH] = unsafe { std::mem::zeroed() };
        for i in 0..self.batch {
            iov[i].iov_base = self.bufs[i].as_mut_ptr().cast();
            iov[i].iov_len = self.bufs[i].len();
            msgs[i].msg_hdr.msg_iov = &mut iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: msgs[..batch] point at iovecs that point at our buffers,
        // all alive for the call; the kernel writes within their lengths.
        let n = unsafe {
            libc::recvmmsg(
                self.fd.as_raw_fd(),
                msgs.as_mut_ptr(),
                self.batch as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            };
        }
        let n = n as usize;
        for (len, m) in self.lens.iter_mut().zip(&msgs[..n]) {
            *len = (m.msg_len as usize).min(BUF_LEN);
        }
        Ok(n)
    }

    /// Packet `i` of the last batch.
    pub fn packet_mut(&mut self, i: usize) -> &mut [u8] {
        let len = self.lens[i];
        &mut self.bufs[i][..len]
    }
}

/// Sends whole IPv4 packets as they are (`IPPROTO_RAW` implies
/// `IP_HDRINCL`). The kernel fills in the total length and header checksum
/// and, if it is 0, the identification.
#[derive(Debug)]
pub struct RawTx {
    fd: OwnedFd,
}

impl RawTx {
    /// Opens the socket.
    pub fn new() -> io::Result<Self> {
        Ok(RawTx {
            fd: raw_socket(libc::IPPROTO_RAW)?,
        })
    }

    /// Sends `packet` (starting at its IPv4 header) towards `to`.
    pub fn send(&self, packet: &[u8], to: Ipv4Addr) -> io::Result<()> {
        // SAFETY: sockaddr_in is plain data; all-zero is valid.
        let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        sa.sin_family = libc::AF_INET as libc::sa_family_t;
        sa.sin_addr.s_addr = u32::from_ne_bytes(to.octets());
        // SAFETY: packet and sa are valid for the lengths given.
        let n = cvt_size(unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                packet.as_ptr().cast(),
                packet.len(),
                0,
                (&sa as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        })?;
        if n != packet.len() {
            return Err(io::Error::other("short raw send"));
        }
        Ok(())
    }
}
