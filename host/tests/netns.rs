//! The Linux adapters for real, in network namespaces this test creates:
//! raw IP-in-IP receive (with the 0x61 option), decapsulation into a TUN
//! device, direct server return, sock_diag lookups, chained packets sent
//! with a raw socket, and the MPTCP per-server port.
//!
//! ```text
//!            ns C: client 10.77.0.1, mini mux (TUN "mtun", route VIP via it),
//!                  router between A and B
//!           /  10.77.1.1                      10.77.2.1  \
//!   ns A: DIP 10.77.1.2, agent, service on VIP    ns B: DIP 10.77.2.2, ...
//! ```
//! The mini mux encapsulates exactly as the pipeline spec says (it uses
//! `craft::encapsulate`), with one bucket state for every flow.
//!
//! Needs root, /dev/net/tun and iproute2; without them each test prints
//! what it did not run and passes. Everything created is removed, also on
//! failure (namespaces and agents are guards).
#![cfg(target_os = "linux")]

use beamer_host::craft::{OptionFields, TcpSegment, encapsulate};
use beamer_host::linux::{Agent, AgentConfig, AgentStats, RawTx, Tun};
use beamer_host::{Discard, HostConfig, LocalReason};
use beamer_pipeline::wire::l4::{TCP_ACK, TCP_SYN};
use beamer_pipeline::wire::{BeamerOption, Ipv4Packet, TcpHeader};
use beamer_testbed::{Netns, sock, veth};
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::os::fd::FromRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const VIP: Ipv4Addr = Ipv4Addr::new(10, 77, 100, 1);
const DIP_A: Ipv4Addr = Ipv4Addr::new(10, 77, 1, 2);
const DIP_B: Ipv4Addr = Ipv4Addr::new(10, 77, 2, 2);
/// The mux's tunnel source: assigned nowhere, as a real mux's is not.
const TUNNEL: Ipv4Addr = Ipv4Addr::new(10, 77, 9, 9);
const PORT: u16 = 80;
const SERVER_PORT_A: u16 = 20001;
const BITS: u8 = 8;

/// Skips the test, loudly, without root, /dev/net/tun or iproute2.
macro_rules! require_root {
    ($what:expr) => {
        if let Some(why) = beamer_testbed::missing(&["ip"], true) {
            beamer_testbed::skip_unless_required(
                beamer_testbed::REQUIRE_TOOLS,
                $what,
                &format!("{why}; run as root to test it"),
            );
            return;
        }
    };
}

/// A namespace of this test run, deleted on drop.
fn netns(tag: &str) -> Netns {
    Netns::new(format!("bh-{tag}-{}", std::process::id())).expect("network namespace")
}

/// A veth pair from `a` to `b`, addressed and up.
fn link(a: &Netns, a_if: &str, a_addr: &str, b: &Netns, b_if: &str, b_addr: &str) {
    veth(a, a_if, b, b_if).expect("veth pair");
    a.ip(&format!("addr add {a_addr} dev {a_if}")).unwrap();
    b.ip(&format!("addr add {b_addr} dev {b_if}")).unwrap();
}

/// An agent on its own thread, stopped and joined on drop.
struct Running {
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<AgentStats>>,
    thread: Option<JoinHandle<()>>,
}

impl Running {
    fn start(ns: &Netns, cfg: AgentConfig) -> Running {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let stop2 = Arc::clone(&stop);
        let thread = ns.spawn("agent", move || match Agent::new(cfg) {
            Ok(mut a) => {
                tx.send(Ok(a.stats_handle())).unwrap();
                a.run(&stop2, None).expect("agent loop");
            }
            Err(e) => tx.send(Err(e.to_string())).unwrap(),
        });
        let stats = rx.recv().unwrap().expect("agent starts");
        Running {
            stop,
            stats,
            thread: Some(thread),
        }
    }

    fn stats(&self) -> AgentStats {
        *self.stats.lock().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn agent_config(dip: Ipv4Addr, chaining: bool, server_ports: Vec<u16>) -> AgentConfig {
    let mut h = HostConfig::new(dip, vec![VIP], vec![TUNNEL], BITS);
    h.chaining = chaining;
    h.server_ports = server_ports;
    let mut c = AgentConfig::new(h);
    c.tun = "bt0".into();
    c
}

/// What the mini mux does with every packet to the VIP.
#[derive(Clone, Copy)]
struct MuxState {
    dip: Ipv4Addr,
    option: OptionFields,
}

/// What the mini mux saw.
#[derive(Default)]
struct MuxSeen {
    /// MP_JOIN SYNs per destination port (service, per-server).
    joins_to_service: AtomicU64,
    joins_to_server_port: AtomicU64,
    /// Segments to the per-server port other than SYNs.
    server_port_segments: AtomicU64,
}

/// A software mux in ns C: the route to the VIP goes into its TUN device;
/// it encapsulates each packet and sends it to the current DIP (or, for a
/// per-server port, to that server without the option).
struct MiniMux {
    state: Arc<Mutex<MuxState>>,
    seen: Arc<MuxSeen>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MiniMux {
    fn start(c: &Netns, first: Ipv4Addr, per_server: Vec<(u16, Ipv4Addr)>) -> MiniMux {
        let state = Arc::new(Mutex::new(MuxState {
            dip: first,
            option: OptionFields {
                prev_dip: Ipv4Addr::UNSPECIFIED,
                change_time: 0,
                generation: 1,
            },
        }));
        let seen = Arc::new(MuxSeen::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let (st, sn, sp) = (state.clone(), seen.clone(), stop.clone());
        let thread = c.spawn("mini mux", move || {
            let tun = Tun::create("mtun").expect("mux tun");
            let raw = RawTx::new().expect("raw socket");
            tx.send(()).unwrap();
            let mut buf = vec![0u8; 65536];
            while !sp.load(Ordering::Relaxed) {
                let n = match tun.recv(&mut buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_micros(200));
                        continue;
                    }
                    Err(e) => panic!("mux tun: {e}"),
                };
                let pkt = &buf[..n];
                let Some((dport, flags, join)) = tcp_of(pkt) else {
                    continue;
                };
                let s = *st.lock().unwrap();
                let out = match per_server.iter().find(|(p, _)| *p == dport) {
                    Some((_, dip)) => {
                        if join {
                            sn.joins_to_server_port.fetch_add(1, Ordering::Relaxed);
                        }
                        if flags & TCP_SYN == 0 {
                            sn.server_port_segments.fetch_add(1, Ordering::Relaxed);
                        }
                        (encapsulate(pkt, TUNNEL, *dip, None), *dip)
                    }
                    None => {
                        if join {
                            sn.joins_to_service.fetch_add(1, Ordering::Relaxed);
                        }
                        (encapsulate(pkt, TUNNEL, s.dip, Some(s.option)), s.dip)
                    }
                };
                raw.send(&out.0, out.1).expect("mux send");
            }
        });
        rx.recv().unwrap();
        c.ip("link set mtun up").unwrap();
        c.ip(&format!("route add {VIP}/32 dev mtun src {CLIENT}"))
            .unwrap();
        MiniMux {
            state,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    /// Moves every bucket to `dip`, as a controller commit would.
    fn move_to(&self, dip: Ipv4Addr, generation: u32) {
        let mut s = self.state.lock().unwrap();
        let now = beamer_host::Time::now().unix_secs();
        *s = MuxState {
            dip,
            option: OptionFields {
                prev_dip: s.dip,
                change_time: now,
                generation,
            },
        };
    }
}

impl Drop for MiniMux {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Destination port, flags and "is an MP_JOIN SYN" of an IPv4/TCP packet.
fn tcp_of(pkt: &[u8]) -> Option<(u16, u8, bool)> {
    let ip = Ipv4Packet::new_checked(pkt).ok()?;
    if ip.protocol() != 6 {
        return None;
    }
    let l4 = ip.payload();
    let t = TcpHeader::new_checked(l4).ok()?;
    let off = usize::from(l4[12] >> 4) * 4;
    let opts = l4.get(20..off.max(20))?;
    // TCP option kind 30 (MPTCP), subtype 1 (MP_JOIN) in the high nibble.
    let mut i = 0;
    let mut join = false;
    while i < opts.len() {
        match opts[i] {
            0 => break,
            1 => i += 1,
            kind => {
                let len = usize::from(*opts.get(i + 1)?).max(2);
                if kind == 30 && opts.get(i + 2).is_some_and(|b| b >> 4 == 1) {
                    join = true;
                }
                i += len;
            }
        }
    }
    Some((t.dst_port(), t.flags(), join && t.flags() & TCP_SYN != 0))
}

/// An echo service on VIP:port in `ns` that prefixes replies with `name`,
/// plain TCP or MPTCP. Stops accepting when the returned flag is set.
fn serve(ns: &Netns, name: &'static str, mptcp: bool) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let stop2 = stop.clone();
    ns.spawn("echo service", move || {
        let l = sock::listen(SocketAddrV4::new(VIP, PORT), mptcp, 128).expect("listen on the VIP");
        l.set_nonblocking(true).unwrap();
        tx.send(()).unwrap();
        while !stop2.load(Ordering::Relaxed) {
            match l.accept() {
                Ok((mut s, _)) => {
                    s.set_nonblocking(false).unwrap();
                    thread::spawn(move || {
                        let mut b = [0u8; 1024];
                        while let Ok(n @ 1..) = s.read(&mut b) {
                            let mut out = format!("{name}:").into_bytes();
                            out.extend_from_slice(&b[..n]);
                            if s.write_all(&out).is_err() {
                                break;
                            }
                        }
                    });
                }
                Err(_) => thread::sleep(Duration::from_millis(2)),
            }
        }
    });
    rx.recv().unwrap();
    stop
}

/// A blocking connection to the VIP's service port, with a read timeout.
fn connect(mptcp: bool) -> io::Result<TcpStream> {
    let s = sock::connect(
        None,
        SocketAddrV4::new(VIP, PORT),
        mptcp,
        Duration::from_secs(10),
    )?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    Ok(s)
}

/// Sends `msg` and reads the echo, which names the server that answered.
fn exchange(s: &mut TcpStream, msg: &str) -> io::Result<String> {
    s.write_all(msg.as_bytes())?;
    let want = 2 + msg.len();
    let mut got = Vec::new();
    let mut b = [0u8; 256];
    while got.len() < want {
        match s.read(&mut b)? {
            0 => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed")),
            n => got.extend_from_slice(&b[..n]),
        }
    }
    Ok(String::from_utf8_lossy(&got).into_owned())
}

/// Client ns C, servers A and B, routes, the mini mux on A.
struct Topology {
    // Field order = drop order: mux and agents before the namespaces.
    mux: MiniMux,
    c: Netns,
    a: Netns,
    b: Netns,
}

fn topology(tag: &str, per_server: Vec<(u16, Ipv4Addr)>) -> Topology {
    let c = netns(&format!("{tag}c"));
    let a = netns(&format!("{tag}a"));
    let b = netns(&format!("{tag}b"));
    link(
        &c,
        "va",
        "10.77.1.1/24",
        &a,
        "uplink",
        &format!("{DIP_A}/24"),
    );
    link(
        &c,
        "vb",
        "10.77.2.1/24",
        &b,
        "uplink",
        &format!("{DIP_B}/24"),
    );
    c.ip(&format!("addr add {CLIENT}/32 dev lo")).unwrap();
    a.ip("route add default via 10.77.1.1").unwrap();
    b.ip("route add default via 10.77.2.1").unwrap();
    // C routes between A and B (chained packets) and must accept replies
    // from the VIP on its veths although its route to the VIP is the mux.
    c.sysctl("net.ipv4.ip_forward=1").unwrap();
    for k in ["all", "default", "va", "vb"] {
        c.sysctl(&format!("net.ipv4.conf.{k}.rp_filter=0")).unwrap();
    }
    let mux = MiniMux::start(&c, DIP_A, per_server);
    Topology { mux, c, a, b }
}

/// Runs the move scenario; returns (old connection after the move, new
/// connection after the move, B's and A's stats, chained packets seen at A).
fn move_scenario(
    tag: &str,
    chaining: bool,
) -> (
    io::Result<String>,
    io::Result<String>,
    AgentStats,
    AgentStats,
    Vec<Vec<u8>>,
) {
    let t = topology(tag, vec![]);
    // B's listener answers every SYN with a cookie and keeps no socket
    // until the third ACK: that ACK must go to B's stack, not on to A.
    t.b.sysctl("net.ipv4.tcp_syncookies=2").unwrap();
    let agent_a = Running::start(&t.a, agent_config(DIP_A, chaining, vec![]));
    let agent_b = Running::start(&t.b, agent_config(DIP_B, chaining, vec![]));
    let stop_a = serve(&t.a, "A", false);
    let stop_b = serve(&t.b, "B", false);
    // A capture of the IP-in-IP packets reaching A, next to its agent's.
    let capture = t.a.run(|| {
        // SAFETY: plain socket(2), owned by the File below.
        let fd = unsafe {
            libc::socket(
                libc::AF_INET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK,
                libc::IPPROTO_IPIP,
            )
        };
        assert!(fd >= 0);
        // SAFETY: fresh fd.
        unsafe { File::from_raw_fd(fd) }
    });
    let (old, new) = t.c.run(|| {
        let mut old = connect(false).expect("connect through the mux to A");
        assert_eq!(exchange(&mut old, "before").unwrap(), "A:before");
        t.mux.move_to(DIP_B, 2);
        let after = exchange(&mut old, "after");
        let mut new = connect(false).expect("a new connection");
        (after, exchange(&mut new, "fresh"))
    });
    // Let the agents publish their last batch.
    thread::sleep(Duration::from_millis(300));
    let mut chained = Vec::new();
    let mut cap = capture;
    let mut buf = [0u8; 2048];
    while let Ok(n) = cap.read(&mut buf) {
        let p = &buf[..n];
        if let Ok(ip) = Ipv4Packet::new_checked(p)
            && ip.header_len() == 36
            && BeamerOption::new_validated(ip.options())
                .is_ok_and(|o| o.change_time() == 0 && o.prev_dip() == DIP_A)
        {
            chained.push(p.to_vec());
        }
    }
    stop_a.store(true, Ordering::Relaxed);
    stop_b.store(true, Ordering::Relaxed);
    (old, new, agent_b.stats(), agent_a.stats(), chained)
}

#[test]
fn a_connection_survives_a_move_through_chaining() {
    require_root!("TCP through the agents with daisy chaining in namespaces");
    let (old, new, b, a, chained) = move_scenario("on", true);
    assert_eq!(
        old.expect("the old connection survives the move"),
        "A:after"
    );
    assert_eq!(new.expect("the new connection works"), "B:fresh");
    assert!(
        b.core.forwarded >= 1 && b.sent == b.core.forwarded,
        "B chained: {b}"
    );
    assert!(
        b.core.local(LocalReason::Syn) >= 1,
        "B took the new SYN: {b}"
    );
    assert!(
        b.core.local(LocalReason::Handshake) >= 1,
        "B's SYN-cookie ACK went to B's stack: {b}"
    );
    assert!(
        a.core.local(LocalReason::Syn) >= 1,
        "A took the first SYN: {a}"
    );
    assert_eq!(
        a.core.dropped_total() + b.core.dropped_total(),
        0,
        "A: {a}\nB: {b}"
    );
    // The chained packets as they reached A: B rewrote the destination,
    // zeroed the change time and took one off the TTL, and C, a router,
    // took another.
    assert!(!chained.is_empty(), "a chained packet reached A");
    for p in &chained {
        let ip = Ipv4Packet::new_checked(&p[..]).unwrap();
        assert_eq!((ip.src(), ip.dst(), ip.ttl()), (TUNNEL, DIP_A, 62));
        assert!(ip.checksum_ok());
        assert_eq!(
            BeamerOption::new_validated(ip.options())
                .unwrap()
                .generation(),
            2
        );
    }
}

#[test]
fn without_chaining_the_old_connection_breaks() {
    require_root!("TCP through the agents without daisy chaining in namespaces");
    let (old, new, b, _a, chained) = move_scenario("off", false);
    let e = old.expect_err("B's stack does not know the old connection");
    assert!(
        matches!(
            e.kind(),
            io::ErrorKind::ConnectionReset | io::ErrorKind::UnexpectedEof
        ),
        "{e}"
    );
    assert_eq!(new.expect("the new connection works"), "B:fresh");
    assert_eq!(b.core.forwarded, 0);
    assert!(b.core.local(LocalReason::ChainingOff) >= 1, "{b}");
    assert!(chained.is_empty());
}

#[test]
fn crafted_syn_reaches_the_service_and_bad_packets_are_counted() {
    require_root!("crafted IP-in-IP packets in namespaces");
    let t = topology("raw", vec![]);
    let agent = Running::start(&t.a, agent_config(DIP_A, true, vec![]));
    let stop = serve(&t.a, "A", false);
    let isn = 0x1234_5678;
    let syn = TcpSegment {
        src: CLIENT,
        src_port: 45000,
        dst: VIP,
        dst_port: PORT,
        seq: isn,
        ack: 0,
        flags: TCP_SYN,
        payload: vec![],
    }
    .to_ipv4();
    let opt = |prev: Ipv4Addr, generation| {
        Some(OptionFields {
            prev_dip: prev,
            change_time: 0,
            generation,
        })
    };
    let good = encapsulate(&syn, TUNNEL, DIP_A, opt(Ipv4Addr::UNSPECIFIED, 1));
    // The bad ones. The kernel parses IP options too, so each is one it
    // lets through: an unknown type (0x62), and a length byte of 12 whose
    // next "option" is the generation's first byte, 0 = end of options.
    let mut wrong_len = good.clone();
    wrong_len[21] = 12;
    let mut wrong_type = good.clone();
    wrong_type[20] = 0x62;
    for p in [&mut wrong_len, &mut wrong_type] {
        Ipv4Packet::new_checked(&mut p[..36])
            .unwrap()
            .fill_checksum();
    }
    let spoofed = encapsulate(
        &syn,
        Ipv4Addr::new(10, 77, 9, 66),
        DIP_A,
        opt(Ipv4Addr::UNSPECIFIED, 1),
    );
    let cut = {
        // The inner header says 40 bytes, 30 are there.
        let mut p = good.clone();
        p.truncate(36 + 30);
        p[2..4].copy_from_slice(&(36u16 + 30).to_be_bytes());
        Ipv4Packet::new_checked(&mut p[..36])
            .unwrap()
            .fill_checksum();
        p
    };
    let synack = t.c.run(|| {
        // SAFETY: plain socket(2), owned by the File below.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_TCP) };
        assert!(fd >= 0);
        // SAFETY: fresh fd.
        let mut cap = unsafe { File::from_raw_fd(fd) };
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 200_000,
        };
        // SAFETY: valid timeval.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                16,
            )
        };
        let tx = RawTx::new().unwrap();
        for p in [&wrong_len, &wrong_type, &spoofed, &cut, &good] {
            tx.send(p, DIP_A).unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 2048];
        while Instant::now() < deadline {
            let Ok(n) = cap.read(&mut buf) else { continue };
            let ip = Ipv4Packet::new_checked(&buf[..n]).unwrap();
            let tcp = TcpHeader::new_checked(ip.payload()).unwrap();
            if ip.src() == VIP && tcp.src_port() == PORT && tcp.dst_port() == 45000 {
                return Some((ip.dst(), tcp.flags(), tcp.ack()));
            }
        }
        None
    });
    assert_eq!(
        synack,
        Some((CLIENT, TCP_SYN | TCP_ACK, isn + 1)),
        "the service answered the decapsulated SYN straight to the client"
    );
    thread::sleep(Duration::from_millis(300));
    let s = agent.stats();
    for d in [
        Discard::WrongOptionLength,
        Discard::WrongOptionType,
        Discard::UnknownTunnelSource,
        Discard::InnerTruncated,
    ] {
        assert_eq!(s.core.dropped(d), 1, "{d:?}: {s}");
    }
    assert_eq!(s.core.local(LocalReason::Syn), 1, "{s}");
    stop.store(true, Ordering::Relaxed);
}

#[test]
fn mptcp_subflows_reach_the_per_server_port() {
    require_root!("MPTCP per-server port in namespaces");
    let t = topology("mp", vec![(SERVER_PORT_A, DIP_A)]);
    let agent = Running::start(&t.a, agent_config(DIP_A, true, vec![SERVER_PORT_A]));
    let endpoints =
        t.a.run(|| beamer_host::linux::netcfg::ip(&["mptcp", "endpoint", "show"]).unwrap());
    assert!(
        endpoints.contains(&format!("{VIP} port {SERVER_PORT_A}")) && endpoints.contains("signal"),
        "{endpoints}"
    );
    let c_flag = t.a.run(|| {
        beamer_host::linux::netcfg::read_sysctl("net.mptcp.allow_join_initial_addr_port").unwrap()
    });
    assert_eq!(c_flag, "0");
    let stop = serve(&t.a, "A", true);
    // The client accepts one announced address and opens a subflow to it.
    t.c.ip("mptcp limits set add_addr_accepted 1 subflows 2")
        .unwrap();
    let echoed = t.c.run(|| {
        let mut s = connect(true).expect("MPTCP connect");
        let mut last = String::new();
        for i in 0..20 {
            last = exchange(&mut s, &format!("m{i:02}")).expect("exchange");
            thread::sleep(Duration::from_millis(50));
        }
        last
    });
    assert_eq!(echoed, "A:m19");
    let seen = &t.mux.seen;
    assert!(
        seen.joins_to_server_port.load(Ordering::Relaxed) >= 1,
        "an MP_JOIN went to the per-server port"
    );
    assert_eq!(
        seen.joins_to_service.load(Ordering::Relaxed),
        0,
        "no MP_JOIN to the initial port (C flag)"
    );
    assert!(
        seen.server_port_segments.load(Ordering::Relaxed) >= 1,
        "the subflow's handshake completed"
    );
    thread::sleep(Duration::from_millis(300));
    let s = agent.stats();
    assert!(s.core.local(LocalReason::ServerPort) >= 2, "{s}");
    drop(agent);
    // The agent took its endpoint back.
    let endpoints =
        t.a.run(|| beamer_host::linux::netcfg::ip(&["mptcp", "endpoint", "show"]).unwrap());
    assert!(!endpoints.contains(&VIP.to_string()), "{endpoints}");
    stop.store(true, Ordering::Relaxed);
}
