//! Shared by the live-port tests: network namespaces with veth pairs, a
//! packet socket to send and capture frames, and `beamer switch` as a child
//! process. Everything is torn down when dropped, also when a test fails.
#![allow(dead_code)]

use beamer_testbed::{Netns, veth};
use std::io::{BufRead, BufReader};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

pub fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("softswitch/examples/pcap")
        .join(name)
}

/// True when the test can run; otherwise says loudly what is not run (or
/// fails, with `BEAMER_REQUIRE_TOOLS=1`).
pub fn can_run(what: &str) -> bool {
    let Some(why) = beamer_testbed::missing(&["ip"], false) else {
        return true;
    };
    beamer_testbed::skip_unless_required(
        beamer_testbed::REQUIRE_TOOLS,
        what,
        &format!(
            "{why}; the AF_PACKET backend was NOT run on real interfaces \
             (namespaces, veth pairs, frames in and out)"
        ),
    );
    false
}

/// The three namespaces and their veth pairs; deleted when dropped
/// (deleting a namespace deletes its interfaces).
pub struct Topology {
    pub sw: Netns,
    pub cl: Netns,
    pub sv: Netns,
}

impl Topology {
    pub fn new(tag: &str) -> Topology {
        let base = format!("bsw{}{tag}", std::process::id());
        let ns = |role: &str| {
            let ns = Netns::new(format!("{base}{role}")).expect("network namespace");
            ns.disable_ipv6().expect("sysctl");
            ns
        };
        let t = Topology {
            sw: ns("sw"),
            cl: ns("cl"),
            sv: ns("sv"),
        };
        veth(&t.sw, "s1", &t.cl, "c1").expect("veth s1-c1");
        veth(&t.sw, "s2", &t.sv, "v2").expect("veth s2-v2");
        // The MACs the route entries of tables.toml name.
        for (ns, dev, mac) in [
            (&t.cl, "c1", "02:00:00:00:01:01"),
            (&t.sv, "v2", "02:00:00:00:02:01"),
            (&t.sw, "s1", "02:00:00:00:00:01"),
            (&t.sw, "s2", "02:00:00:00:00:02"),
        ] {
            ns.ip(&format!("link set {dev} address {mac}"))
                .expect("set MAC");
        }
        t
    }
}

/// A packet socket on one interface, for sending and capturing.
pub struct Tap(OwnedFd);

impl Tap {
    pub fn open(ifname: &str) -> Tap {
        let name = std::ffi::CString::new(ifname).unwrap();
        // SAFETY: plain libc calls with valid arguments; the descriptor is
        // owned right away.
        unsafe {
            let ifindex = libc::if_nametoindex(name.as_ptr());
            assert!(ifindex != 0, "no interface {ifname}");
            let fd = libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                (libc::ETH_P_ALL as u16).to_be() as i32,
            );
            assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
            let fd = OwnedFd::from_raw_fd(fd);
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
            sll.sll_ifindex = ifindex as i32;
            let r = libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as u32,
            );
            assert_eq!(r, 0, "bind: {}", std::io::Error::last_os_error());
            let tv = libc::timeval {
                tv_sec: 0,
                tv_usec: 50_000,
            };
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                size_of::<libc::timeval>() as u32,
            );
            Tap(fd)
        }
    }

    pub fn send(&self, frame: &[u8]) {
        // SAFETY: sends `frame` on a bound packet socket.
        let n = unsafe { libc::send(self.0.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        assert_eq!(
            n,
            frame.len() as isize,
            "send: {}",
            std::io::Error::last_os_error()
        );
    }

    /// The next frame received (not sent) on the interface, or `None`
    /// after the receive timeout.
    pub fn recv(&self) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 4096];
        loop {
            // SAFETY: an all-zero sockaddr_ll is valid.
            let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut len = size_of::<libc::sockaddr_ll>() as u32;
            // SAFETY: `buf` and `sll` have the sizes passed.
            let n = unsafe {
                libc::recvfrom(
                    self.0.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    0,
                    (&mut sll as *mut libc::sockaddr_ll).cast(),
                    &mut len,
                )
            };
            if n < 0 {
                return None;
            }
            if sll.sll_pkttype != libc::PACKET_OUTGOING {
                return Some(buf[..n as usize].to_vec());
            }
        }
    }
}

impl AsRawFd for Tap {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0.as_raw_fd()
    }
}

/// The switch process; killed and reaped when dropped.
pub struct SwitchProcess {
    pub child: Child,
    stdout: Receiver<String>,
    /// What the switch printed on stderr before it was ready.
    pub startup: Vec<String>,
}

impl SwitchProcess {
    pub fn start(ns: &Netns, extra: &[&str]) -> SwitchProcess {
        let mut child = ns
            .command(env!("CARGO_BIN_EXE_beamer"))
            .arg("switch")
            .arg("--tables")
            .arg(example("tables.toml"))
            .args(["--port", "1=s1", "--port", "2=s2"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start beamer switch");
        let lines = |r: Box<dyn std::io::Read + Send>| {
            let (tx, rx) = channel();
            std::thread::spawn(move || {
                for line in BufReader::new(r).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            rx
        };
        let stdout = lines(Box::new(child.stdout.take().unwrap()));
        let stderr = lines(Box::new(child.stderr.take().unwrap()));
        let mut p = SwitchProcess {
            child,
            stdout,
            startup: Vec::new(),
        };
        // Ready once the ports are open.
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        loop {
            match stderr.recv_timeout(Duration::from_millis(100)) {
                Ok(l) if l.contains("forwarding on") => {
                    seen.push(l);
                    break;
                }
                Ok(l) => seen.push(l),
                Err(_) if Instant::now() > deadline => {
                    panic!("beamer switch did not start: {seen:?}")
                }
                Err(_) => {
                    if let Ok(Some(status)) = p.child.try_wait() {
                        panic!("beamer switch exited with {status}: {seen:?}");
                    }
                }
            }
        }
        p.startup = seen;
        // Keep draining stderr so the child never blocks on it.
        std::thread::spawn(move || while stderr.recv().is_ok() {});
        p
    }

    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on our own child's pid.
        let r = unsafe { libc::kill(self.child.id() as i32, sig) };
        assert_eq!(r, 0);
    }

    /// The next counter report on stdout, squeezed (runs of spaces made
    /// one), between its `===` lines.
    pub fn report(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut lines = Vec::new();
        let mut inside = false;
        while Instant::now() < deadline {
            let Ok(l) = self.stdout.recv_timeout(Duration::from_millis(100)) else {
                continue;
            };
            if l.starts_with("=== beamer switch counters") {
                inside = true;
            } else if inside && l == "===" {
                return lines.join("\n");
            }
            if inside {
                lines.push(l.split_whitespace().collect::<Vec<_>>().join(" "));
            }
        }
        panic!("no counter report; got {lines:?}");
    }
}

impl Drop for SwitchProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Frames received on `tap` until `want` have come and a quiet 300 ms has
/// passed (to catch extra ones), or 10 s.
pub fn capture(tap: &Tap, want: usize) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    let mut quiet_since = None;
    while Instant::now() < deadline {
        match tap.recv() {
            Some(f) => {
                got.push(f);
                quiet_since = None;
            }
            None if got.len() >= want => {
                let t = *quiet_since.get_or_insert_with(Instant::now);
                if t.elapsed() > Duration::from_millis(300) {
                    break;
                }
            }
            None => {}
        }
    }
    got
}
