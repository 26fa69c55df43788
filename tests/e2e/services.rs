//! The servers' services: echo on the VIP, plain TCP and MPTCP. Each
//! connection starts with a greeting line naming the server, then echoes
//! every byte back.

use super::{MPTCP_PORT, TCP_PORT, VIP};
use beamer_testbed::{Netns, sock};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

/// The echo services of one server; they stop accepting on drop.
pub struct Echo {
    stop: Arc<AtomicBool>,
}

impl Echo {
    /// Starts the plain TCP service (VIP:80) and the MPTCP one (VIP:8080)
    /// in `ns`, greeting with `name`. The VIP must be local there already
    /// (the host agent puts it on its TUN device).
    pub fn start(ns: &Netns, name: Ipv4Addr) -> Result<Echo, String> {
        let stop = Arc::new(AtomicBool::new(false));
        for (port, mptcp) in [(TCP_PORT, false), (MPTCP_PORT, true)] {
            let l = ns
                .run(|| sock::listen(SocketAddrV4::new(VIP, port), mptcp, 512))
                .map_err(|e| format!("{}: listening on {VIP}:{port}: {e}", ns.name()))?;
            l.set_nonblocking(true).map_err(|e| e.to_string())?;
            let stop = Arc::clone(&stop);
            thread::Builder::new()
                .name(format!("echo-{name}-{port}"))
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        match l.accept() {
                            Ok((s, _)) => {
                                thread::spawn(move || serve(s, name));
                            }
                            Err(_) => thread::sleep(Duration::from_millis(5)),
                        }
                    }
                })
                .map_err(|e| e.to_string())?;
        }
        Ok(Echo { stop })
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(mut s: TcpStream, name: Ipv4Addr) {
    let _ = s.set_nonblocking(false);
    // A client that vanished (its connection broken elsewhere) ends here.
    let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
    if s.write_all(format!("{name}\n").as_bytes()).is_err() {
        return;
    }
    let mut buf = [0u8; 16 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if s.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = s.shutdown(std::net::Shutdown::Write);
}
