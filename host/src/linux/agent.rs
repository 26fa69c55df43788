//! The agent loop: receive a batch, decide each packet, deliver or forward.

use super::netcfg::NetSetup;
use super::{RawRx, RawTx, SockDiag, Tun};
use crate::{
    CacheStats, CachedLookup, ConfigError, Counters, Flow, Host, HostConfig, LocalConnections,
    Time, Verdict,
};
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the agent runs, beyond the decision's own configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    /// The decision's configuration.
    pub host: HostConfig,
    /// Name of the TUN device to create.
    pub tun: String,
    /// Configure MPTCP for the per-server ports.
    pub mptcp: bool,
    /// MPTCP subflow limit to set (`ip mptcp limits set subflows N`).
    pub mptcp_subflows: Option<u8>,
    /// Packets per receive batch.
    pub batch: usize,
    /// Entries of the local-connection cache.
    pub cache_slots: usize,
    /// How long "there is a socket" is believed.
    pub positive_ttl: Duration,
    /// How long "there is no socket" is believed (a local delivery of the
    /// flow forgets it sooner).
    pub negative_ttl: Duration,
}

impl AgentConfig {
    /// Defaults around `host`: device `beamer0`, MPTCP configured, batches
    /// of 32, 4096 cache entries believed for 2 s (positive) and 1 s
    /// (negative).
    pub fn new(host: HostConfig) -> Self {
        AgentConfig {
            host,
            tun: "beamer0".into(),
            mptcp: true,
            mptcp_subflows: None,
            batch: 32,
            cache_slots: 4096,
            positive_ttl: Duration::from_secs(2),
            negative_ttl: Duration::from_secs(1),
        }
    }
}

/// Why the agent could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A system call or command failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: io::Error,
    },
}

fn ctx<T>(what: &str, r: io::Result<T>) -> Result<T, AgentError> {
    r.map_err(|source| AgentError::Io {
        what: what.to_owned(),
        source,
    })
}

/// The decision's counters plus the adapters' own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgentStats {
    /// The decision's counters.
    pub core: Counters,
    /// The lookup cache's hits and misses.
    pub cache: CacheStats,
    /// Kernel lookups that failed (answered "local").
    pub diag_errors: u64,
    /// Inner packets the TUN device refused.
    pub tun_errors: u64,
    /// Chained packets sent.
    pub sent: u64,
    /// Chained packets the raw socket refused.
    pub send_errors: u64,
    /// Packets the stack routed into the TUN device, discarded.
    pub tun_stray: u64,
}

impl fmt::Display for AgentStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.core)?;
        writeln!(
            f,
            "cache               {} hits, {} misses",
            self.cache.hits, self.cache.misses
        )?;
        writeln!(f, "sent                {}", self.sent)?;
        write!(
            f,
            "errors              diag {}, tun {}, send {}; stray tun packets {}",
            self.diag_errors, self.tun_errors, self.send_errors, self.tun_stray
        )
    }
}

/// The running agent: sockets, device, configuration and the decision.
#[derive(Debug)]
pub struct Agent {
    // Declared first so its undo runs before the device goes away.
    net: NetSetup,
    host: Host,
    rx: RawRx,
    tx: RawTx,
    tun: Tun,
    lookup: CachedLookup<SockDiag>,
    stats: AgentStats,
    shared: Arc<Mutex<AgentStats>>,
}

impl Agent {
    /// Opens the sockets, creates the TUN device with the VIPs and applies
    /// the network configuration, in the current network namespace. Needs
    /// CAP_NET_ADMIN and CAP_NET_RAW.
    pub fn new(cfg: AgentConfig) -> Result<Self, AgentError> {
        let host = Host::new(cfg.host.clone())?;
        let rx = ctx(
            "opening the IP-in-IP raw socket (needs CAP_NET_RAW)",
            RawRx::new(cfg.batch, Duration::from_millis(200)),
        )?;
        let tx = ctx("opening the raw send socket", RawTx::new())?;
        let tun = ctx(
            &format!(
                "creating TUN device {} (needs CAP_NET_ADMIN and /dev/net/tun)",
                cfg.tun
            ),
            Tun::create(&cfg.tun),
        )?;
        let mut net = NetSetup::new();
        ctx(
            "configuring the TUN device",
            net.tun_up(tun.name(), &cfg.host.vips),
        )?;
        if cfg.mptcp {
            for p in &cfg.host.server_ports {
                ctx(
                    "configuring MPTCP",
                    net.mptcp(&cfg.host.vips, *p, cfg.mptcp_subflows),
                )?;
            }
        }
        let diag = ctx("opening the sock_diag netlink socket", SockDiag::new())?;
        Ok(Agent {
            net,
            host,
            rx,
            tx,
            tun,
            lookup: CachedLookup::new(diag, cfg.cache_slots, cfg.positive_ttl, cfg.negative_ttl),
            stats: AgentStats::default(),
            shared: Arc::new(Mutex::new(AgentStats::default())),
        })
    }

    /// The configuration commands that were run.
    pub fn setup_log(&self) -> &[String] {
        &self.net.log
    }

    /// A handle on the statistics, refreshed after every batch.
    pub fn stats_handle(&self) -> Arc<Mutex<AgentStats>> {
        Arc::clone(&self.shared)
    }

    /// The decision's state.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The statistics now.
    pub fn stats(&self) -> AgentStats {
        let mut s = self.stats;
        s.core = *self.host.counters();
        s.cache = self.lookup.stats();
        s
    }

    /// Runs until `stop` is set (checked at least every 200 ms). When
    /// `report` is set, prints the statistics to stderr and clears it.
    pub fn run(
        &mut self,
        stop: &AtomicBool,
        report: Option<&AtomicBool>,
    ) -> Result<AgentStats, AgentError> {
        let mut last_drain = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let n = ctx("receiving IP-in-IP packets", self.rx.recv_batch())?;
            if n > 0 {
                self.handle_batch(n, Time::now());
            }
            if last_drain.elapsed() > Duration::from_secs(1) {
                self.stats.tun_stray += self.tun.drain() as u64;
                last_drain = Instant::now();
            }
            self.stats.diag_errors = self.lookup.inner_mut().errors();
            let s = self.stats();
            if let Ok(mut shared) = self.shared.lock() {
                *shared = s;
            }
            if report.is_some_and(|r| r.swap(false, Ordering::Relaxed)) {
                eprintln!("beamer host: counters:\n{s}");
            }
        }
        Ok(self.stats())
    }

    fn handle_batch(&mut self, n: usize, now: Time) {
        for i in 0..n {
            let pkt = self.rx.packet_mut(i);
            match self.host.handle(pkt, now, &mut self.lookup) {
                Verdict::Local { inner, .. } => {
                    if self.tun.write(&pkt[inner]).is_err() {
                        self.stats.tun_errors += 1;
                    }
                }
                Verdict::Forward { to } => match self.tx.send(pkt, to) {
                    Ok(()) => self.stats.sent += 1,
                    Err(_) => self.stats.send_errors += 1,
                },
                Verdict::Drop(_) => {}
            }
        }
    }
}

/// Measures the local-connection lookup in the current network namespace:
/// a TCP connection on loopback, then `n` kernel lookups of it, `n` of a
/// 4-tuple without a connection (the kernel finds the listener), and `n`
/// cached lookups. Returns a short report.
pub fn bench_lookup(n: u32) -> io::Result<String> {
    use std::net::{Ipv4Addr, TcpListener, TcpStream};
    let n = n.max(1);
    let lo = Ipv4Addr::LOCALHOST;
    let listener = TcpListener::bind((lo, 0))?;
    let port = listener.local_addr()?.port();
    let client = TcpStream::connect((lo, port))?;
    let (_server, _) = listener.accept()?;
    let conn = Flow {
        client: lo,
        client_port: client.local_addr()?.port(),
        vip: lo,
        vip_port: port,
    };
    let none = Flow {
        client_port: if conn.client_port == 1 { 2 } else { 1 },
        ..conn
    };
    let mut diag = SockDiag::new()?;
    let now = Time::now();
    let time = |what: &str,
                flow: Flow,
                expect: bool,
                l: &mut dyn LocalConnections|
     -> io::Result<String> {
        let t = Instant::now();
        for _ in 0..n {
            if l.has_connection(&flow, now) != expect {
                return Err(io::Error::other(format!("{what}: wrong answer for {flow}")));
            }
        }
        let ns = t.elapsed().as_nanos() as f64 / f64::from(n);
        Ok(format!("{what:<34}{ns:>10.0} ns/lookup\n"))
    };
    let mut out = format!("sock_diag lookup cost, {n} lookups each\n");
    out += &time("kernel, connection exists", conn, true, &mut diag)?;
    out += &time("kernel, none (listener found)", none, false, &mut diag)?;
    let mut cached = CachedLookup::new(
        diag,
        4096,
        Duration::from_secs(3600),
        Duration::from_secs(3600),
    );
    out += &time("cached (hit)", conn, true, &mut cached)?;
    if cached.inner_mut().errors() > 0 {
        return Err(io::Error::other("lookups failed"));
    }
    Ok(out)
}
