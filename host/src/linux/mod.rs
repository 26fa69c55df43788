//! The Linux adapters: thin wrappers around system calls, and the agent
//! loop that joins them to the sans-IO [`crate::Host`].
//!
//! - [`RawRx`]: receives IP-in-IP packets (protocol 4) with a raw socket.
//!   This kernel has no `ipip` module, so protocol 4 is delivered to raw
//!   sockets only, whole outer header (option included) and all.
//! - [`RawTx`]: sends chained packets with a raw `IP_HDRINCL` socket.
//! - [`Tun`]: hands inner packets to the stack through a TUN device that
//!   carries the VIPs, so services listen on the VIP and reply straight to
//!   the client (direct server return).
//! - [`SockDiag`]: the local-connection lookup over `NETLINK_SOCK_DIAG`.
//! - [`netcfg`]: addresses, sysctls and MPTCP endpoints, through `ip`.
//! - [`Agent`]: all of the above around a [`crate::Host`].

mod agent;
mod diag;
pub mod netcfg;
mod raw;
pub mod signals;
mod tun;

pub use agent::{Agent, AgentConfig, AgentError, AgentStats, bench_lookup};
pub use diag::SockDiag;
pub use raw::{RawRx, RawTx};
pub use tun::Tun;

use std::io;

/// Turns a -1 return into the thread's `errno`.
fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Same as [`cvt`] for `ssize_t` returns.
fn cvt_size(ret: libc::ssize_t) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}
