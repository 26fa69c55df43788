//! `beamer switch --port 1=s1 --port 2=s2` on real Linux interfaces, in
//! network namespaces made by the test:
//!
//! ```text
//!   ns cl            ns sw (beamer switch)            ns sv
//!   c1 <--veth--> s1 = port 1     port 2 = s2 <--veth--> v2
//!   clients                                              servers
//! ```
//!
//! The frames of the pcap example are sent into c1; what comes out on v2
//! (encapsulated, towards the servers) and back on c1 (routed, towards the
//! clients) must be exactly what the pipeline makes of them in memory.
//! SIGUSR1 prints the counters while running, SIGTERM stops the switch and
//! prints them again. Everything made is torn down, also on failure.
//!
//! Needs root and iproute2 (`ip`). Without them the test prints what it
//! did not run, and fails when `BEAMER_REQUIRE_TOOLS=1`.

mod support_netns;

use beamer_softswitch::io::pcap::PcapInput;
use beamer_softswitch::io::{MemoryBackend, run};
use beamer_softswitch::tablefile::TableFile;
use beamer_softswitch::{Batch, Switch};
use beamer_testbed::Netns;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use support_netns::{SwitchProcess, Tap, Topology, can_run, capture, example};

/// Frames, in order.
type Frames = Vec<Vec<u8>>;

/// The example's frames, and what the pipeline sends out of port 1 and of
/// port 2.
fn frames_and_expected() -> (Frames, Frames, Frames) {
    let mut input = PcapInput::open(&example("input.pcap"), 1).unwrap();
    let mut frames = Vec::new();
    while let Some(f) = input.next_frame().unwrap() {
        frames.push(f.data.to_vec());
    }
    let switch: Switch = TableFile::load(example("tables.toml"))
        .unwrap()
        .build()
        .unwrap();
    let mut mem = MemoryBackend::with_input(frames.iter().map(|f| (1, f.clone())));
    run(
        &mut switch.worker(),
        &mut mem,
        &mut Batch::with_defaults(),
        &AtomicBool::new(false),
    )
    .unwrap();
    let out = mem.take_output();
    let on = |port| {
        out.iter()
            .filter(|(p, _)| *p == port)
            .map(|(_, f)| f.clone())
            .collect()
    };
    (frames, on(1), on(2))
}

fn live_run(tag: &str, extra: &[&str], ordered: bool) {
    let (frames, mut to_clients, mut to_servers) = frames_and_expected();
    assert_eq!((to_clients.len(), to_servers.len()), (2, 5));
    let topo = Topology::new(tag);
    let c1 = topo.cl.run(|| Tap::open("c1"));
    let v2 = topo.sv.run(|| Tap::open("v2"));
    let switch = SwitchProcess::start(&topo.sw, extra);
    // Promiscuous while the switch runs (one count per socket).
    for port in ["s1", "s2"] {
        assert!(promiscuity(&topo.sw, port) > 0, "{port} is not promiscuous");
    }

    for f in &frames {
        c1.send(f);
    }
    let (mut got_servers, mut got_clients) = std::thread::scope(|s| {
        let servers = s.spawn(|| capture(&v2, to_servers.len()));
        let clients = s.spawn(|| capture(&c1, to_clients.len()));
        (servers.join().unwrap(), clients.join().unwrap())
    });
    if !ordered {
        for v in [
            &mut got_servers,
            &mut got_clients,
            &mut to_servers,
            &mut to_clients,
        ] {
            v.sort();
        }
    }
    assert!(
        got_servers == to_servers,
        "frames on v2 (servers) differ from the pipeline's: got {} frames, want {}",
        got_servers.len(),
        to_servers.len()
    );
    assert!(
        got_clients == to_clients,
        "frames back on c1 (clients) differ: got {} frames, want {}",
        got_clients.len(),
        to_clients.len()
    );

    // Counters while running, then at exit.
    switch.signal(libc::SIGUSR1);
    let running = switch.report();
    for row in [
        "=== beamer switch counters (SIGUSR1) ===",
        "frames: received 16 (943 bytes), forwarded 7 (433 bytes), dropped 9 (510 bytes)",
        // The VLAN frame came back with its tag: 54 + 4 bytes, non_ipv4.
        "non_ipv4 2 100",
        "truncated 1 46",
        "1 s1 16 2 0 0",
        "2 s2 0 5 0 0",
    ] {
        assert!(running.contains(row), "missing {row:?} in:\n{running}");
    }
    switch.signal(libc::SIGTERM);
    let last = switch.report();
    assert!(last.contains("(SIGTERM)"), "{last}");
    assert!(last.contains("forwarded 7 (433 bytes)"), "{last}");
    let mut switch = switch;
    let status = switch.child.wait().unwrap();
    assert!(status.success(), "exit status {status}");
    // ... and no longer once it has exited.
    for port in ["s1", "s2"] {
        assert_eq!(promiscuity(&topo.sw, port), 0, "{port}");
    }
    drop(topo);
}

/// The promiscuity count of `dev` in `ns` (`ip -d link`).
fn promiscuity(ns: &Netns, dev: &str) -> u32 {
    let text = ns.ip(&format!("-d link show {dev}")).unwrap();
    let mut words = text.split_whitespace();
    words
        .find(|w| *w == "promiscuity")
        .and_then(|_| words.next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no promiscuity in {text}"))
}

#[test]
fn live_ports_forward_like_the_pipeline() {
    if can_run("live_ports_forward_like_the_pipeline") {
        live_run("a", &[], true);
    }
}

#[test]
fn two_workers_share_the_ports() {
    if can_run("two_workers_share_the_ports") {
        live_run("b", &["--workers", "2", "--batch", "1"], false);
    }
}

#[test]
fn a_missing_interface_is_named() {
    let out = Command::new(env!("CARGO_BIN_EXE_beamer"))
        .arg("switch")
        .arg("--tables")
        .arg(example("tables.toml"))
        .args(["--port", "1=nosuchif0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("port 1: interface \"nosuchif0\" does not exist"),
        "{err}"
    );
}

#[test]
fn a_kernel_tcp_syn_is_encapsulated() {
    if !can_run("a_kernel_tcp_syn_is_encapsulated") {
        return;
    }
    let topo = Topology::new("c");
    // The client is a real host: an address, a route to the VIP through
    // the mux, the mux's MAC known.
    for cmd in [
        "addr add 198.51.100.7/24 dev c1",
        "route add 192.0.2.0/24 dev c1",
        "neigh add 192.0.2.10 lladdr 02:00:00:00:00:01 dev c1",
    ] {
        topo.cl.ip(cmd).unwrap();
    }
    let v2 = topo.sv.run(|| Tap::open("v2"));
    let switch = SwitchProcess::start(&topo.sw, &[]);

    // Nobody answers: the connect times out after the SYN (and maybe a
    // retransmission) went out.
    topo.cl.run(|| {
        let addr = "192.0.2.10:80".parse().unwrap();
        let r = std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(300));
        assert!(r.is_err());
    });
    let got = capture(&v2, 1);
    assert!(!got.is_empty(), "no frame reached the servers");
    for f in &got {
        // Ethernet | outer IPv4 with the option (IHL 9), protocol 4, from
        // the tunnel source | inner IPv4 from the client to the VIP | TCP
        // SYN to port 80.
        assert_eq!(&f[12..14], &[0x08, 0x00]);
        assert_eq!(f[14], 0x49, "outer version 4, IHL 9");
        assert_eq!(f[23], 4, "IP-in-IP");
        assert_eq!(&f[26..30], &[10, 0, 0, 1], "tunnel source");
        assert_eq!(&f[50 + 12..50 + 20], &[198, 51, 100, 7, 192, 0, 2, 10]);
        assert_eq!(&f[70 + 2..70 + 4], &80u16.to_be_bytes());
        assert_eq!(f[70 + 13] & 0x12, 0x02, "SYN");
    }
    switch.signal(libc::SIGUSR1);
    let report = switch.report();
    assert!(
        report.contains("192.0.2.10 tcp/80 -> buckets of vip_id 0"),
        "{report}"
    );
    // veth keeps the sender's checksum offload: the switch says so.
    assert!(
        report.contains("received with the L4 checksum left to offload"),
        "{report}"
    );
    drop(switch);
    drop(topo);
}
