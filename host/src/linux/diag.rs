//! "Does the stack have a socket for this 4-tuple?", asked of the kernel
//! with one `SOCK_DIAG_BY_FAMILY` request (an exact lookup, not a dump).
//!
//! The kernel's exact lookup runs the same lookup as an arriving packet:
//! established, SYN_RECV (request) and TIME_WAIT sockets first, then the
//! listener. A listener means "no connection", so the reply's state is
//! checked.

use super::{cvt, cvt_size};
use crate::{Flow, LocalConnections, Time};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `SOCK_DIAG_BY_FAMILY` from `linux/sock_diag.h`.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `TCP_LISTEN` from the kernel's TCP state enum.
const TCP_LISTEN: u8 = 10;
/// nlmsghdr (16) + inet_diag_req_v2 (8 + inet_diag_sockid 48).
const REQ_LEN: usize = 16 + 8 + 48;
/// Offsets in a reply: the nlmsghdr's type, the error code of an
/// NLMSG_ERROR, the state byte of an inet_diag_msg.
const NLMSG_TYPE: usize = 4;
const NLMSG_SEQ: usize = 8;
const ERROR_CODE: usize = 16;
const DIAG_STATE: usize = 17;

/// A `NETLINK_SOCK_DIAG` socket in the current network namespace.
#[derive(Debug)]
pub struct SockDiag {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
    errors: u64,
}

impl SockDiag {
    /// Opens the netlink socket.
    pub fn new() -> io::Result<Self> {
        // SAFETY: plain socket(2); the returned descriptor is owned below.
        let fd = cvt(unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_SOCK_DIAG,
            )
        })?;
        // SAFETY: fd is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(SockDiag {
            fd,
            seq: 0,
            buf: vec![0; 8192],
            errors: 0,
        })
    }

    /// Lookups that failed (and were answered "local", the stack being the
    /// safer place for a packet whose fate is unknown).
    pub fn errors(&self) -> u64 {
        self.errors
    }

    /// The kernel's answer: `Some(state)` of the socket found, `None` when
    /// there is none.
    pub fn lookup(&mut self, flow: &Flow) -> io::Result<Option<u8>> {
        self.seq = self.seq.wrapping_add(1);
        let req = request(flow, self.seq);
        // SAFETY: the buffer is valid for its length; the kernel is
        // addressed by a zeroed sockaddr_nl (pid 0).
        let sent = cvt_size(unsafe {
            let mut to: libc::sockaddr_nl = std::mem::zeroed();
            to.nl_family = libc::AF_NETLINK as libc::sa_family_t;
            libc::sendto(
                self.fd.as_raw_fd(),
                req.as_ptr().cast(),
                req.len(),
                0,
                (&to as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        })?;
        if sent != req.len() {
            return Err(io::Error::other("short netlink send"));
        }
        loop {
            // SAFETY: recv into our own buffer, within its length.
            let n = cvt_size(unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    0,
                )
            })?;
            match parse_reply(&self.buf[..n], self.seq) {
                Reply::Stale => continue,
                Reply::Found(state) => return Ok(Some(state)),
                Reply::NotFound => return Ok(None),
                Reply::Error(e) => return Err(io::Error::from_raw_os_error(e)),
                Reply::Garbled => return Err(io::Error::other("unexpected sock_diag reply")),
            }
        }
    }
}

impl LocalConnections for SockDiag {
    fn has_connection(&mut self, flow: &Flow, _now: Time) -> bool {
        for _ in 0..2 {
            match self.lookup(flow) {
                Ok(state) => return state.is_some_and(|s| s != TCP_LISTEN),
                Err(_) => self.errors += 1,
            }
        }
        true
    }
}

/// The request: nlmsghdr, then inet_diag_req_v2 whose socket id is the
/// local end (VIP:port) as source and the client as destination.
fn request(flow: &Flow, seq: u32) -> [u8; REQ_LEN] {
    let mut r = [0u8; REQ_LEN];
    // nlmsghdr, host byte order.
    r[0..4].copy_from_slice(&(REQ_LEN as u32).to_ne_bytes());
    r[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    r[6..8].copy_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes());
    r[8..12].copy_from_slice(&seq.to_ne_bytes());
    // inet_diag_req_v2.
    r[16] = libc::AF_INET as u8;
    r[17] = libc::IPPROTO_TCP as u8;
    r[20..24].copy_from_slice(&u32::MAX.to_ne_bytes()); // every state
    // inet_diag_sockid: ports and addresses in network order.
    let id = 24;
    r[id..id + 2].copy_from_slice(&flow.vip_port.to_be_bytes());
    r[id + 2..id + 4].copy_from_slice(&flow.client_port.to_be_bytes());
    r[id + 4..id + 8].copy_from_slice(&flow.vip.octets());
    r[id + 20..id + 24].copy_from_slice(&flow.client.octets());
    // idiag_if 0 (any), idiag_cookie INET_DIAG_NOCOOKIE (all ones).
    r[id + 40..id + 48].fill(0xff);
    r
}

enum Reply {
    Found(u8),
    NotFound,
    Error(i32),
    /// A reply to an earlier request (after a timeout), to be skipped.
    Stale,
    Garbled,
}

fn parse_reply(b: &[u8], seq: u32) -> Reply {
    let rd32 = |at: usize| -> Option<[u8; 4]> { b.get(at..at + 4)?.try_into().ok() };
    let (Some(ty), Some(s)) = (
        b.get(NLMSG_TYPE..NLMSG_TYPE + 2),
        rd32(NLMSG_SEQ).map(u32::from_ne_bytes),
    ) else {
        return Reply::Garbled;
    };
    if s != seq {
        return Reply::Stale;
    }
    let ty = u16::from_ne_bytes([ty[0], ty[1]]);
    if ty == libc::NLMSG_ERROR as u16 {
        return match rd32(ERROR_CODE).map(i32::from_ne_bytes) {
            Some(e) if e == -libc::ENOENT => Reply::NotFound,
            Some(0) => Reply::Garbled,
            Some(e) => Reply::Error(-e),
            None => Reply::Garbled,
        };
    }
    if ty == SOCK_DIAG_BY_FAMILY {
        return b
            .get(DIAG_STATE)
            .map_or(Reply::Garbled, |s| Reply::Found(*s));
    }
    Reply::Garbled
}
