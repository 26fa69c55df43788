//! A TUN device: what is written to it enters the stack as if received.

use super::{cvt, cvt_size};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// A TUN device (layer 3, no packet-information header). It exists as
/// long as this value: closing the descriptor removes the device and its
/// addresses.
#[derive(Debug)]
pub struct Tun {
    fd: OwnedFd,
    name: String,
    scratch: Vec<u8>,
}

impl Tun {
    /// Creates the device `name` (at most 15 bytes) in the current network
    /// namespace.
    pub fn create(name: &str) -> io::Result<Self> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains(['/', ' ', '.', '\0']) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("--tun {name:?}: an interface name of 1 to 15 bytes, without / . or space"),
            ));
        }
        let path = c"/dev/net/tun";
        // SAFETY: open(2) on a NUL-terminated path; the fd is owned below.
        let fd = cvt(unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_RDWR | libc::O_CLOEXEC | libc::O_NONBLOCK,
            )
        })?;
        // SAFETY: fresh descriptor, owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: ifreq is plain data; all-zero is valid.
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        for (d, s) in ifr.ifr_name.iter_mut().zip(name.bytes()) {
            *d = s as libc::c_char;
        }
        ifr.ifr_ifru.ifru_flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
        // SAFETY: TUNSETIFF reads and writes one ifreq, which lives here.
        cvt(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut ifr) })?;
        Ok(Tun {
            fd,
            name: name.to_owned(),
            scratch: vec![0; 65536],
        })
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Hands one IPv4 packet to the stack.
    pub fn write(&self, packet: &[u8]) -> io::Result<()> {
        // SAFETY: packet is valid for its length.
        let n = cvt_size(unsafe {
            libc::write(self.fd.as_raw_fd(), packet.as_ptr().cast(), packet.len())
        })?;
        if n != packet.len() {
            return Err(io::Error::other("short TUN write"));
        }
        Ok(())
    }

    /// Reads one packet the stack routed into the device, if there is one
    /// (`WouldBlock` otherwise).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: read into buf within its length.
        cvt_size(unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) })
    }

    /// Discards whatever the stack routed into the device (nothing should
    /// be: replies leave by the normal routes), so its queue never fills.
    /// Returns the number of packets discarded.
    pub fn drain(&mut self) -> usize {
        let mut n = 0;
        // SAFETY: read into our own buffer within its length; the fd is
        // non-blocking, so this stops at EAGAIN.
        while unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                self.scratch.as_mut_ptr().cast(),
                self.scratch.len(),
            )
        } > 0
        {
            n += 1;
        }
        n
    }
}
