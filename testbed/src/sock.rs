//! TCP and MPTCP sockets with what `std` lacks: `IPPROTO_MPTCP`, binding a
//! client to a local address, a connect timeout, and the MPTCP subflow
//! count.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// `SOL_MPTCP` (linux/socket.h).
const SOL_MPTCP: libc::c_int = 284;
/// `MPTCP_INFO` (linux/mptcp.h).
const MPTCP_INFO: libc::c_int = 1;

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A new IPv4 stream socket: MPTCP or plain TCP.
pub fn stream_socket(mptcp: bool) -> io::Result<OwnedFd> {
    let proto = if mptcp {
        libc::IPPROTO_MPTCP
    } else {
        libc::IPPROTO_TCP
    };
    // SAFETY: socket(2) with constant arguments.
    let fd = check(unsafe {
        libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, proto)
    })?;
    // SAFETY: a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn sockaddr(a: SocketAddrV4) -> libc::sockaddr_in {
    // SAFETY: an all-zero sockaddr_in is valid.
    let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    sa.sin_family = libc::AF_INET as libc::sa_family_t;
    sa.sin_port = a.port().to_be();
    sa.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
    sa
}

const SOCKADDR_LEN: libc::socklen_t = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;

fn bind(fd: &OwnedFd, a: SocketAddrV4) -> io::Result<()> {
    let sa = sockaddr(a);
    // SAFETY: a valid sockaddr_in and its length.
    check(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_in).cast(),
            SOCKADDR_LEN,
        )
    })
    .map(drop)
}

/// A listener on `addr` (SO_REUSEADDR), MPTCP or plain TCP. An MPTCP
/// listener also accepts plain TCP clients.
pub fn listen(addr: SocketAddrV4, mptcp: bool, backlog: i32) -> io::Result<TcpListener> {
    let fd = stream_socket(mptcp)?;
    let one: libc::c_int = 1;
    // SAFETY: a valid int option.
    check(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })?;
    bind(&fd, addr)?;
    // SAFETY: listen(2) on our socket.
    check(unsafe { libc::listen(fd.as_raw_fd(), backlog) })?;
    Ok(TcpListener::from(fd))
}

/// Connects to `remote` from `local` (any port) within `timeout`, MPTCP or
/// plain TCP. The stream is blocking.
pub fn connect(
    local: Option<Ipv4Addr>,
    remote: SocketAddrV4,
    mptcp: bool,
    timeout: Duration,
) -> io::Result<TcpStream> {
    let fd = stream_socket(mptcp)?;
    if let Some(l) = local {
        bind(&fd, SocketAddrV4::new(l, 0))?;
    }
    let raw = fd.as_raw_fd();
    // Non-blocking connect, then poll for the handshake.
    // SAFETY: fcntl on our socket.
    let flags = check(unsafe { libc::fcntl(raw, libc::F_GETFL) })?;
    // SAFETY: as above.
    check(unsafe { libc::fcntl(raw, libc::F_SETFL, flags | libc::O_NONBLOCK) })?;
    let sa = sockaddr(remote);
    // SAFETY: a valid sockaddr_in and its length.
    let r = unsafe { libc::connect(raw, (&sa as *const libc::sockaddr_in).cast(), SOCKADDR_LEN) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(e);
        }
        let mut p = libc::pollfd {
            fd: raw,
            events: libc::POLLOUT,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: one valid pollfd.
        let n = check(unsafe { libc::poll(&mut p, 1, ms) })?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connect to {remote}: no answer within {timeout:?}"),
            ));
        }
        let mut err: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: SO_ERROR into an int.
        check(unsafe {
            libc::getsockopt(
                raw,
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                (&mut err as *mut libc::c_int).cast(),
                &mut len,
            )
        })?;
        if err != 0 {
            return Err(io::Error::from_raw_os_error(err));
        }
    }
    // SAFETY: as above.
    check(unsafe { libc::fcntl(raw, libc::F_SETFL, flags) })?;
    Ok(TcpStream::from(fd))
}

/// Whether `s` is an MPTCP socket that still runs MPTCP (not fallen back
/// to plain TCP): MPTCP_INFO answers only then.
pub fn mptcp_active(s: &TcpStream) -> bool {
    mptcp_info(s).is_ok()
}

/// The number of subflows an MPTCP connection has beside its first one
/// (`mptcpi_subflows`).
pub fn mptcp_subflows(s: &TcpStream) -> io::Result<u8> {
    mptcp_info(s).map(|b| b[0])
}

fn mptcp_info(s: &TcpStream) -> io::Result<[u8; 256]> {
    let mut buf = [0u8; 256];
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: getsockopt into a buffer of `len` bytes.
    check(unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            SOL_MPTCP,
            MPTCP_INFO,
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    })?;
    if len == 0 {
        return Err(io::Error::other("MPTCP_INFO: fallen back to TCP"));
    }
    Ok(buf)
}
