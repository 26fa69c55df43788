//! The clients: long-lived connections that keep sending chunks of
//! pseudo-random bytes and check that every byte comes back, in order.

use super::{CLIENT_MPTCP, CLIENT_TCP, MPTCP_PORT, TCP_PORT, VIP};
use beamer_testbed::{Netns, sock};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddrV4, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a read or write may wait. A broken connection whose packets
/// vanish (instead of drawing a RST) shows up as this timeout.
const IO_TIMEOUT: Duration = Duration::from_secs(8);

/// A connection as it came up.
#[derive(Debug, Clone, Copy)]
pub struct Opened {
    /// The client's address and port (the bucket's hash input).
    pub local: SocketAddrV4,
    /// The server that greeted it.
    pub server: Ipv4Addr,
}

/// How a connection ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// MPTCP or plain TCP.
    pub mptcp: bool,
    /// Where it went, if it came up.
    pub opened: Option<Opened>,
    /// Chunks sent and echoed intact.
    pub exchanges: u64,
    /// Bytes echoed intact.
    pub bytes: u64,
    /// The most subflows beside the first one that MPTCP reported.
    pub max_subflows: u8,
    /// Whether the MPTCP connection still ran MPTCP at the end.
    pub mptcp_active: bool,
    /// Why it broke; `None`: every byte came back and it closed cleanly.
    pub error: Option<String>,
}

impl Outcome {
    /// True when it broke.
    pub fn broken(&self) -> bool {
        self.error.is_some()
    }
}

/// A group of connections opened together and stopped together.
pub struct Wave {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Outcome>>,
}

impl Wave {
    /// Opens `tcp` plain TCP connections (to VIP:80 from the client's first
    /// address) and `mptcp` MPTCP ones (to VIP:8080 from the second), each
    /// on a thread in `client`, and waits until every one is up or failed.
    pub fn open(client: &Netns, tag: &str, tcp: usize, mptcp: usize) -> (Wave, Vec<Opened>) {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let mut threads = Vec::new();
        for id in 0..tcp + mptcp {
            let is_mptcp = id >= tcp;
            let (stop, tx) = (Arc::clone(&stop), tx.clone());
            let seed = (tag.bytes().map(u64::from).sum::<u64>() << 32) | id as u64;
            threads.push(client.spawn(format!("client-{tag}{id}"), move || {
                connection(is_mptcp, seed, &stop, &tx)
            }));
        }
        drop(tx);
        // One message per connection, sent once it is up (or failed); the
        // threads keep their senders while they run.
        let opened: Vec<Opened> = rx.iter().take(tcp + mptcp).flatten().collect();
        (Wave { stop, threads }, opened)
    }

    /// Stops every connection (each closes cleanly and checks the end of
    /// the echo) and returns how each ended.
    pub fn finish(mut self) -> Vec<Outcome> {
        self.stop.store(true, Ordering::Relaxed);
        std::mem::take(&mut self.threads)
            .into_iter()
            .map(|t| t.join().expect("a client thread panicked"))
            .collect()
    }
}

impl Drop for Wave {
    fn drop(&mut self) {
        // An abandoned wave (a failed step) stops its connections; their
        // reads end within the I/O timeout.
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// xorshift64*: the bytes of a chunk, reproducible from the seed.
struct Bytes(u64);

impl Bytes {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf.iter_mut() {
            *b = self.next() as u8;
        }
    }
}

fn connection(
    mptcp: bool,
    seed: u64,
    stop: &AtomicBool,
    opened_tx: &mpsc::Sender<Option<Opened>>,
) -> Outcome {
    let mut out = Outcome {
        mptcp,
        opened: None,
        exchanges: 0,
        bytes: 0,
        max_subflows: 0,
        mptcp_active: false,
        error: None,
    };
    let (local, port) = if mptcp {
        (CLIENT_MPTCP, MPTCP_PORT)
    } else {
        (CLIENT_TCP, TCP_PORT)
    };
    let r = (|| -> io::Result<()> {
        let s = sock::connect(Some(local), SocketAddrV4::new(VIP, port), mptcp, IO_TIMEOUT);
        let mut s = match s {
            Ok(s) => s,
            Err(e) => {
                let _ = opened_tx.send(None);
                return Err(io::Error::new(e.kind(), format!("connect: {e}")));
            }
        };
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        s.set_write_timeout(Some(IO_TIMEOUT))?;
        let greeting = read_line(&mut s);
        let server = greeting.as_ref().ok().and_then(|g| g.parse().ok());
        let std::net::SocketAddr::V4(local) = s.local_addr()? else {
            unreachable!("an IPv4 socket")
        };
        let o = server.map(|server| Opened { local, server });
        out.opened = o;
        let _ = opened_tx.send(o);
        let greeting = greeting.map_err(|e| io::Error::new(e.kind(), format!("greeting: {e}")))?;
        if server.is_none() {
            return Err(io::Error::other(format!("greeting {greeting:?}")));
        }
        exchange_until(&mut s, seed, stop, &mut out)?;
        // A clean end: our FIN reaches the server, which closes its side
        // after the last echo.
        s.shutdown(Shutdown::Write)?;
        let mut rest = [0u8; 64];
        match s.read(&mut rest) {
            Ok(0) => Ok(()),
            Ok(n) => Err(io::Error::other(format!(
                "{n} unexpected bytes after the end"
            ))),
            Err(e) => Err(io::Error::new(e.kind(), format!("closing: {e}"))),
        }
    })();
    if let Err(e) = r {
        out.error = Some(format!(
            "{} {}: {e} (after {} exchanges)",
            if mptcp { "MPTCP" } else { "TCP" },
            out.opened
                .map_or("?".to_string(), |o| format!("{} via {}", o.local, o.server)),
            out.exchanges
        ));
    }
    out
}

fn read_line(s: &mut TcpStream) -> io::Result<String> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while line.len() < 64 {
        match s.read(&mut b)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            _ if b[0] == b'\n' => return Ok(String::from_utf8_lossy(&line).into_owned()),
            _ => line.push(b[0]),
        }
    }
    Err(io::Error::other("greeting too long"))
}

/// Sends a chunk of 1 to 1400 bytes, reads its echo and compares, every
/// 40 to 80 ms, until `stop`.
fn exchange_until(
    s: &mut TcpStream,
    seed: u64,
    stop: &AtomicBool,
    out: &mut Outcome,
) -> io::Result<()> {
    let mut rng = Bytes(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut chunk = vec![0u8; 1400];
    let mut echo = vec![0u8; 1400];
    while !stop.load(Ordering::Relaxed) {
        let n = 1 + (rng.next() % 1400) as usize;
        rng.fill(&mut chunk[..n]);
        s.write_all(&chunk[..n])
            .map_err(|e| io::Error::new(e.kind(), format!("write: {e}")))?;
        s.read_exact(&mut echo[..n])
            .map_err(|e| io::Error::new(e.kind(), format!("read: {e}")))?;
        if echo[..n] != chunk[..n] {
            return Err(io::Error::other(format!(
                "echo of exchange {} differs",
                out.exchanges
            )));
        }
        out.exchanges += 1;
        out.bytes += n as u64;
        if out.mptcp {
            out.mptcp_active = sock::mptcp_active(s);
            if let Ok(k) = sock::mptcp_subflows(s) {
                out.max_subflows = out.max_subflows.max(k);
            }
        }
        std::thread::sleep(Duration::from_millis(40 + rng.next() % 41));
    }
    Ok(())
}
