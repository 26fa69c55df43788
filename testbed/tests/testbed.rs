//! The guards really clean up, and the sockets do what they say. Needs
//! root and iproute2; without them each test says what it did not run.
#![cfg(target_os = "linux")]

use beamer_testbed::{
    Netns, Proc, REQUIRE_TOOLS, missing, skip_unless_required, sock, sweep_stale,
};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

macro_rules! require {
    ($what:expr) => {
        if let Some(why) = missing(&["ip"], false) {
            skip_unless_required(REQUIRE_TOOLS, $what, &why);
            return;
        }
    };
}

fn netns_exists(name: &str) -> bool {
    Path::new(&format!("/run/netns/{name}")).exists()
}

#[test]
fn a_namespace_and_its_process_group_go_away_on_drop() {
    require!("testbed namespace and process guards");
    let name = format!("tb-{}-guards", std::process::id());
    let dir = std::env::temp_dir().join(&name);
    std::fs::create_dir_all(&dir).unwrap();
    let pid;
    {
        let ns = Netns::new(&name).unwrap();
        assert!(netns_exists(&name));
        assert!(ns.ip("link show lo").unwrap().contains("UP"));
        // A shell with a child: both are in the group that drop kills.
        let mut cmd = ns.command("sh");
        cmd.args(["-c", "echo started; sleep 300 & wait"]);
        let mut p = Proc::spawn("sleeper", cmd, &dir).unwrap();
        assert!(p.wait_for("started", Duration::from_secs(5)), "{}", p.log());
        pid = p.pid();
        assert!(Path::new(&format!("/proc/{pid}")).exists());
    }
    assert!(!netns_exists(&name));
    let gone = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_or(true, |s| s.split_whitespace().nth(2) == Some("Z"))
    };
    assert!(gone(pid));
    // The `sleep 300` of that group got SIGKILL too (it may take a moment
    // to be reaped by whoever inherited it).
    let deadline = Instant::now() + Duration::from_secs(3);
    let left = loop {
        let o = Command::new("pgrep")
            .args(["-g", &pid.to_string()])
            .output()
            .expect("pgrep");
        let left: Vec<u32> = String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .filter(|&p| !gone(p))
            .collect();
        if left.is_empty() || Instant::now() > deadline {
            break left;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(left.is_empty(), "still running in the group: {left:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn stale_namespaces_of_dead_runs_are_swept() {
    require!("testbed sweep of stale namespaces");
    // A pid above the kernel's maximum is surely not running.
    let stale = "tbsweep-999999999-x".to_string();
    let live = format!("tbsweep-{}-x", std::process::id());
    let _ = Command::new("ip").args(["netns", "add", &stale]).output();
    let keep = Netns::new(&live).unwrap();
    sweep_stale("tbsweep-");
    assert!(!netns_exists(&stale));
    assert!(netns_exists(keep.name()));
}

#[test]
fn tcp_and_mptcp_sockets_inside_a_namespace() {
    require!("testbed sockets in a namespace");
    let ns = Netns::new(format!("tb-{}-sock", std::process::id())).unwrap();
    let mptcp_ok = Path::new("/proc/sys/net/mptcp/enabled").exists();
    ns.run(|| {
        let lo = Ipv4Addr::LOCALHOST;
        // An MPTCP listener takes MPTCP and plain TCP clients.
        let l = sock::listen(SocketAddrV4::new(lo, 7000), mptcp_ok, 8).unwrap();
        for mptcp in [mptcp_ok, false] {
            let mut c = sock::connect(
                Some(lo),
                SocketAddrV4::new(lo, 7000),
                mptcp,
                Duration::from_secs(2),
            )
            .unwrap();
            let (mut s, peer) = l.accept().unwrap();
            assert_eq!(peer, c.local_addr().unwrap());
            c.write_all(b"ping").unwrap();
            let mut b = [0u8; 4];
            s.read_exact(&mut b).unwrap();
            assert_eq!(&b, b"ping");
            assert_eq!(sock::mptcp_active(&c), mptcp, "mptcp {mptcp}");
            if mptcp {
                assert_eq!(sock::mptcp_subflows(&c).unwrap(), 0);
            }
        }
        // Nothing listens: refused at once.
        let e = sock::connect(
            None,
            SocketAddrV4::new(lo, 7001),
            false,
            Duration::from_secs(2),
        )
        .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    });
    // No route at all in a fresh namespace but lo: unreachable, not a hang.
    let t = Instant::now();
    let r = ns.run(|| {
        sock::connect(
            None,
            SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 80),
            false,
            Duration::from_millis(300),
        )
    });
    assert!(r.is_err());
    assert!(t.elapsed() < Duration::from_secs(2));
    if !mptcp_ok {
        skip_unless_required(
            REQUIRE_TOOLS,
            "the MPTCP half of the socket test",
            "the kernel has no MPTCP",
        );
    }
}

#[test]
fn a_failing_command_is_named_with_its_stderr() {
    let e = beamer_testbed::run(Command::new("sh").args(["-c", "echo oops >&2; exit 3"]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("sh -c") && e.contains("oops"), "{e}");
    assert!(beamer_testbed::which("sh").is_some());
    assert!(beamer_testbed::which("no-such-tool-here").is_none());
}

#[test]
fn a_python_that_cannot_import_says_which_and_why() {
    use beamer_testbed::python::can_import;
    let e = can_import("no-such-python-here", "sys").unwrap_err();
    assert!(e.contains("cannot run \"no-such-python-here\""), "{e}");
    if beamer_testbed::which("python3").is_some() {
        assert_eq!(can_import("python3", "sys, os"), Ok(()));
        let e = can_import("python3", "no_such_module_here").unwrap_err();
        assert!(
            e.contains("cannot import no_such_module_here") && e.contains("ModuleNotFoundError"),
            "{e}"
        );
    }
}

#[test]
fn a_missing_tool_is_named() {
    assert_eq!(beamer_testbed::not_on_path(&["sh"]), None);
    assert_eq!(
        beamer_testbed::not_on_path(&["sh", "no-such-tool-here", "nor-this"]).as_deref(),
        Some("not on PATH: no-such-tool-here, nor-this")
    );
    assert!(!beamer_testbed::required("BEAMER_TESTBED_NEVER_SET"));
}
