//! One packet-fixture suite, run against every target. The rows are
//! `beamer_fixtures::fixtures` (description, input frame, expected output
//! frame and egress port, or drop reason), against the entries of
//! `beamer_fixtures::fixture_updates`; the same table drives the golden
//! tests of the software switch core (`softswitch/tests/golden.rs`).
//!
//! Targets:
//!
//! 1. **the software switch core in memory**: always, nothing needed;
//! 2. **`beamer switch`, a process on live AF_PACKET ports**, driven only
//!    over P4Runtime: started with no tables, it gets the generator's
//!    P4Info (SetForwardingPipelineConfig) and the fixture entries (one
//!    Write) from the controller's P4Runtime client
//!    (`beamer_controller::switch::client`, every message made by
//!    `beamer_pipeline::p4rt`), and frames go in and out of veth pairs in
//!    network namespaces. Needs root and iproute2: a SKIPPED line
//!    otherwise, a failure with `BEAMER_REQUIRE_TOOLS=1`;
//! 3. **bmv2 `simple_switch_grpc`**, the same way: the generator's program
//!    compiled by `bmv2/compile.sh` (p4c), the switch started by
//!    `bmv2/start.sh --iface` and stopped by `bmv2/stop.sh`, the same
//!    P4Runtime client with the bmv2 JSON as device config. Runs when p4c
//!    and simple_switch_grpc are on PATH (or named by `P4C` and
//!    `SIMPLE_SWITCH_GRPC`) and the test is root; one
//!    `SKIPPED (NOT RUN)` line otherwise (never required: CI has no bmv2).
//!
//! ```text
//!   netns fx<pid><t>-ts: the tester             netns fx<pid><t>-sw: the switch
//!  +--------------------------------+          +--------------------------------------+
//!  | this test, packet sockets:     |   veth   |                                      |
//!  |   t1  -- sends every input --> +----------+-- s1  port 1: clients' side          |
//!  |       <- captures what comes   |          |     (203.0.113.0/24, 198.51.100.0/24)|
//!  |          back (egress = in)    |          |                                      |
//!  |   t3  <- captures -------------+----------+-- s3  port 3: servers' side          |
//!  |                                |   veth   |     (10.1.0.0/24)                    |
//!  +--------------------------------+          |  beamer switch --port 1=s1 ...       |
//!                                              |   or simple_switch_grpc -i 1@s1 ...  |
//!   P4Runtime client (this test, on a thread   |  P4Runtime server 127.0.0.1:9559     |
//!   in the switch's namespace) --------------> |                                      |
//!                                              +--------------------------------------+
//! ```
//!
//! Every input comes in on port 1, so the rows routed back to the clients
//! leave by the port they came in on ("egress may equal ingress"); the
//! tester's sockets ignore what they send themselves.
//!
//! On a live target, for each fixture: send the input on t1, wait until a
//! frame comes out of t1 or t3 or the drop counter (read over P4Runtime)
//! moves, take whatever else comes in the next 30 ms, and read
//! the drop counter again. A forwarded fixture must give exactly its frame,
//! byte for byte, on its port, and no drop; a dropped one no frame and one
//! packet of the input's length in its reason's cell of the drop counter,
//! and nothing in the others. Frames that show up between fixtures, or in
//! the quiet 300 ms after the last one, fail the run.
//!
//! What veth does with the inputs (Linux 6.x, checked here):
//!
//! - frames shorter than 60 bytes go through unpadded, and nothing
//!   discards them as runts: the target sees exactly the fixture's bytes.
//!   So the truncated-header rows run on live targets too, as tests of the
//!   target's parser (on a wire the sender pads to 60 bytes and a Tofino
//!   port discards runts, so there they would never arrive as such);
//!   forwarded frames under 60 bytes (the routed ICMP echo, 46 bytes) come
//!   out unpadded as well;
//! - the receiving kernel takes a VLAN tag off (into the packet's
//!   metadata); `beamer switch` and bmv2's libpcap put it back, and the
//!   tester puts back any tag on what it captures.
//!
//! Rows NOT run on the live targets (both), and why (each run checks the
//! why: the first cannot be sent, the second comes out nowhere and is
//! counted nowhere):
//!
//! - "13-byte frame: truncated Ethernet": the kernel refuses to send a
//!   frame shorter than an Ethernet header (EINVAL); no port carries one;
//! - "precedence: a whole VLAN header but nothing else is non_ipv4, not
//!   truncated" (18 bytes): the receiving kernel frees a tagged frame with
//!   fewer than 6 bytes after the Ethernet header while taking the tag
//!   off, before any packet socket (switch or bmv2) sees it.
//!
//! The in-memory target runs every row. Each target prints one line with
//! what ran, what did not and how long it took (`--nocapture` shows it).

mod support_netns;

use beamer_controller::config::{DeviceConfig, SwitchSpec, TargetKind};
use beamer_controller::switch::client::{Arbiter, Client, StreamEvent, pipeline_cookie};
use beamer_fixtures::{Expect, Fixture, dump, fixture_updates, fixtures};
use beamer_pipeline::p4rt::{Counts, check_p4info};
use beamer_pipeline::{DropReason, PipelineParams, Target as Arch};
use beamer_softswitch::{Batch, BatchSize, Switch, Verdict};
use beamer_testbed::{Netns, Proc, Scratch, veth};
use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support_netns::Tap;

/// The port every input arrives on: the clients' side.
const INGRESS: u16 = 1;
/// The switch's ports: P4 port number, switch-side and tester-side
/// interface.
const PORTS: [(u16, &str, &str); 2] = [(1, "s1", "t1"), (3, "s3", "t3")];
/// Namespaces are named `fx<pid><tag>-<role>`.
const NS_PREFIX: &str = "fx";
/// The P4Runtime server, inside the switch's namespace.
const P4RT_ADDR: &str = "127.0.0.1:9559";
/// The P4Runtime device id.
const DEVICE_ID: u64 = 1;
/// How long a live target may take to react to one frame.
const REACTION: Duration = Duration::from_secs(5);
/// How long to wait for more frames after the first reaction.
const STRAGGLERS: Duration = Duration::from_millis(30);

// ---- the suite ---------------------------------------------------------------

/// What a target did with one input.
#[derive(Debug, Default)]
struct Observed {
    /// Frames that came out, with their egress ports, in arrival order.
    out: Vec<(u16, Vec<u8>)>,
    /// What each cell of the drop counter gained: (packets, bytes), only
    /// the cells that moved.
    drops: BTreeMap<DropReason, (u64, u64)>,
}

/// A switch the fixtures run against.
trait Target {
    /// For messages.
    fn name(&self) -> &str;
    /// Why `fx` cannot be run on this target, if it cannot.
    fn not_run(&self, fx: &Fixture) -> Option<&'static str>;
    /// Tries a row that [`Target::not_run`] leaves out, and checks that
    /// it goes as the reason says.
    fn confirm_not_run(&mut self, fx: &Fixture) -> Result<(), String>;
    /// Hands `fx.input` to the switch and returns what it did.
    fn observe(&mut self, fx: &Fixture) -> Result<Observed, String>;
    /// After the last fixture: anything the target did since (it must do
    /// nothing).
    fn quiet(&mut self) -> Result<Observed, String>;
}

/// What one run of the suite gave.
struct Summary {
    target: String,
    ran: usize,
    not_run: Vec<(&'static str, &'static str)>,
    failures: Vec<String>,
    took: Duration,
}

impl Summary {
    /// One line: what ran, what did not, how long it took.
    fn line(&self) -> String {
        let mut s = format!(
            "fixtures on {}: {} run, {} as expected, {} not run; {:.1} s",
            self.target,
            self.ran,
            self.ran - self.failures.len(),
            self.not_run.len(),
            self.took.as_secs_f64()
        );
        for (what, why) in &self.not_run {
            s.push_str(&format!("\n  not run: {what:?}: {why}"));
        }
        s
    }

    /// Panics with every difference found, then `diagnostics`.
    fn assert_ok(&self, diagnostics: impl FnOnce() -> String) {
        eprintln!("{}", self.line());
        if !self.failures.is_empty() {
            panic!(
                "{}\n{} of {} fixtures differ on {}:\n\n{}\n\n{}",
                self.line(),
                self.failures.len(),
                self.ran,
                self.target,
                self.failures.join("\n\n"),
                diagnostics()
            );
        }
    }
}

/// Runs every fixture on `target`, in table order, and collects every
/// difference instead of stopping at the first.
fn run_suite(target: &mut dyn Target) -> Summary {
    let start = Instant::now();
    let mut s = Summary {
        target: target.name().to_string(),
        ran: 0,
        not_run: Vec::new(),
        failures: Vec::new(),
        took: Duration::ZERO,
    };
    for fx in fixtures() {
        if let Some(why) = target.not_run(&fx) {
            s.not_run.push((fx.what, why));
            if let Err(e) = target.confirm_not_run(&fx) {
                s.failures
                    .push(format!("{} (not run: {why}): but {e}", fx.what));
            }
            continue;
        }
        s.ran += 1;
        match target.observe(&fx) {
            Ok(obs) => {
                if let Err(e) = check(&fx, &obs) {
                    s.failures.push(e);
                }
            }
            Err(e) => s.failures.push(format!("{}: {e}", fx.what)),
        }
    }
    match target.quiet() {
        Ok(obs) if obs.out.is_empty() && obs.drops.is_empty() => {}
        Ok(obs) => s.failures.push(format!(
            "after the last fixture, the target still did something:\n{}",
            describe(&obs)
        )),
        Err(e) => s.failures.push(format!("after the last fixture: {e}")),
    }
    s.took = start.elapsed();
    s
}

/// Compares what the target did with what the row expects.
fn check(fx: &Fixture, obs: &Observed) -> Result<(), String> {
    let ok = match &fx.expect {
        Expect::Forward { port, frame } => {
            obs.drops.is_empty() && obs.out.len() == 1 && obs.out[0] == (*port, frame.clone())
        }
        Expect::Drop(reason) => {
            obs.out.is_empty()
                && obs.drops.len() == 1
                && obs.drops.get(reason) == Some(&(1, fx.input.len() as u64))
        }
    };
    if ok {
        return Ok(());
    }
    let want = match &fx.expect {
        Expect::Forward { port, frame } => {
            format!(
                "  out of port {port}, {} bytes:\n{}",
                frame.len(),
                indent(&dump(frame))
            )
        }
        Expect::Drop(reason) => {
            format!("  dropped as {reason}: 1 packet, {} bytes", fx.input.len())
        }
    };
    let mut text = format!(
        "{}\n input ({} bytes):\n{}\n want:\n{want}\n got:\n{}",
        fx.what,
        fx.input.len(),
        indent(&dump(&fx.input)),
        describe(obs)
    );
    if let (Expect::Forward { frame, .. }, [(_, got)]) = (&fx.expect, &obs.out[..]) {
        text.push_str(&format!("\n {}", first_difference(frame, got)));
    }
    Err(text)
}

fn indent(s: &str) -> String {
    s.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn describe(obs: &Observed) -> String {
    let mut parts = Vec::new();
    for (port, f) in &obs.out {
        parts.push(format!(
            "  out of port {port}, {} bytes:\n{}",
            f.len(),
            indent(&dump(f))
        ));
    }
    for (reason, (p, b)) in &obs.drops {
        parts.push(format!("  dropped as {reason}: {p} packet(s), {b} bytes"));
    }
    if parts.is_empty() {
        parts.push("  nothing: no frame out, no drop counted".into());
    }
    parts.join("\n")
}

/// Where two frames first differ.
fn first_difference(want: &[u8], got: &[u8]) -> String {
    match want.iter().zip(got).position(|(a, b)| a != b) {
        Some(i) => format!(
            "first difference at byte {i}: want {:02x}, got {:02x}",
            want[i], got[i]
        ),
        None => format!(
            "equal for {} bytes; want {} bytes, got {}",
            want.len().min(got.len()),
            want.len(),
            got.len()
        ),
    }
}

/// The cells that moved between two reads of the drop counter.
fn drops_delta(
    before: &[Counts; DropReason::COUNT],
    after: &[Counts; DropReason::COUNT],
) -> BTreeMap<DropReason, (u64, u64)> {
    DropReason::ALL
        .into_iter()
        .filter_map(|r| {
            let (b, a) = (before[r.index()], after[r.index()]);
            let d = (
                a.packets.wrapping_sub(b.packets),
                a.bytes.wrapping_sub(b.bytes),
            );
            (d != (0, 0)).then_some((r, d))
        })
        .collect()
}

// ---- target 1: the software switch core in memory ----------------------------

/// The pipeline core with the fixture's entries, one frame per batch.
struct InMemory {
    switch: Switch,
    batch: Batch,
}

impl InMemory {
    fn new() -> InMemory {
        let switch = Switch::new(PipelineParams::default()).unwrap();
        switch.apply_all(&fixture_updates()).unwrap();
        InMemory {
            switch,
            batch: Batch::new(BatchSize::new(1).unwrap(), 1600),
        }
    }

    fn drops(&self) -> [Counts; DropReason::COUNT] {
        self.switch.drop_counters().map(|c| Counts {
            packets: c.packets,
            bytes: c.bytes,
        })
    }
}

impl Target for InMemory {
    fn name(&self) -> &str {
        "the software switch core in memory"
    }

    fn not_run(&self, _: &Fixture) -> Option<&'static str> {
        None
    }

    fn confirm_not_run(&mut self, _: &Fixture) -> Result<(), String> {
        Ok(())
    }

    fn observe(&mut self, fx: &Fixture) -> Result<Observed, String> {
        let before = self.drops();
        self.batch.clear();
        self.batch
            .push(&fx.input, INGRESS)
            .map_err(|e| format!("{e}"))?;
        self.switch.worker().process_batch(&mut self.batch);
        let p = self.batch.iter().next().ok_or("an empty batch")?;
        let out = match p.verdict {
            Some(Verdict::Forward { port }) => vec![(port, p.frame.to_vec())],
            _ => Vec::new(),
        };
        Ok(Observed {
            out,
            drops: drops_delta(&before, &self.drops()),
        })
    }

    fn quiet(&mut self) -> Result<Observed, String> {
        Ok(Observed::default())
    }
}

#[test]
fn every_fixture_on_the_software_switch_core_in_memory() {
    let summary = run_suite(&mut InMemory::new());
    assert!(summary.not_run.is_empty());
    assert_eq!(summary.ran, fixtures().len());
    summary.assert_ok(String::new);
}

// ---- live targets: namespaces, ports, P4Runtime --------------------------------

/// The tester's and the switch's namespaces and the veth pairs between
/// them (see the drawing above); deleted on drop.
struct Topology {
    tester: Netns,
    switch: Netns,
}

impl Topology {
    fn new(tag: &str) -> Topology {
        // What a killed run left behind.
        beamer_testbed::sweep_stale(NS_PREFIX);
        let base = format!("{NS_PREFIX}{}{tag}", std::process::id());
        let ns = |role: &str| {
            let ns = Netns::new(format!("{base}-{role}")).expect("network namespace");
            // No IPv6: no router solicitations or MLD reports on the
            // links, so the switch sees only the fixtures' frames.
            for kv in [
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ] {
                ns.sysctl(kv).expect("sysctl");
            }
            ns
        };
        let t = Topology {
            tester: ns("ts"),
            switch: ns("sw"),
        };
        for (_, sw, ts) in PORTS {
            veth(&t.switch, sw, &t.tester, ts).expect("veth pair");
        }
        t
    }

    /// Packet sockets on the tester's ends.
    fn ports(&self) -> Ports {
        self.tester.run(|| Ports {
            taps: PORTS
                .iter()
                .map(|&(n, _, ts)| {
                    let tap = Tap::open(ts);
                    let on: libc::c_int = 1;
                    // SAFETY: setsockopt on an open packet socket with an
                    // int option.
                    let r = unsafe {
                        libc::setsockopt(
                            tap.as_raw_fd(),
                            libc::SOL_PACKET,
                            libc::PACKET_AUXDATA,
                            (&on as *const libc::c_int).cast(),
                            size_of::<libc::c_int>() as u32,
                        )
                    };
                    assert_eq!(r, 0, "PACKET_AUXDATA: {}", std::io::Error::last_os_error());
                    (n, tap)
                })
                .collect(),
        })
    }
}

/// The tester's ends of the switch's ports.
struct Ports {
    taps: Vec<(u16, Tap)>,
}

impl Ports {
    fn send(&self, port: u16, frame: &[u8]) {
        let (_, tap) = self.taps.iter().find(|(n, _)| *n == port).unwrap();
        tap.send(frame);
    }

    /// Sends `frame` out of the tester's end of `port`; the error the
    /// kernel gives if it refuses.
    fn try_send(&self, port: u16, frame: &[u8]) -> std::io::Result<()> {
        let (_, tap) = self.taps.iter().find(|(n, _)| *n == port).unwrap();
        // SAFETY: sends `frame` on a bound packet socket.
        let n = unsafe { libc::send(tap.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        match n {
            n if n < 0 => Err(std::io::Error::last_os_error()),
            n if n as usize == frame.len() => Ok(()),
            n => Err(std::io::Error::other(format!(
                "sent {n} of {} bytes",
                frame.len()
            ))),
        }
    }

    /// The next frame the switch sent out of any port, within `timeout`.
    fn next(&self, timeout: Duration) -> Option<(u16, Vec<u8>)> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut fds: Vec<libc::pollfd> = self
                .taps
                .iter()
                .map(|(_, t)| libc::pollfd {
                    fd: t.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect();
            let left = deadline.saturating_duration_since(Instant::now());
            let ms = left.as_millis().min(i32::MAX as u128) as i32;
            // SAFETY: `fds` holds fds.len() initialised pollfds.
            let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
            if r > 0 {
                for (pfd, (n, _)) in fds.iter().zip(&self.taps) {
                    if pfd.revents & libc::POLLIN != 0
                        && let Some(f) = recv_restoring_vlan(pfd.fd)
                    {
                        return Some((*n, f));
                    }
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
        }
    }

    /// Every frame already waiting, and those that come within
    /// `quiet` of the last one.
    fn drain(&self, quiet: Duration) -> Vec<(u16, Vec<u8>)> {
        std::iter::from_fn(|| self.next(quiet)).collect()
    }
}

/// One received (not sent) frame from a packet socket with
/// PACKET_AUXDATA on, with the VLAN tag the kernel took off put back;
/// `None` when there is none or it was one we sent.
fn recv_restoring_vlan(fd: RawFd) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    // u64s: aligned for the cmsghdr.
    let mut control = [0u64; 16];
    // SAFETY: an all-zero sockaddr_ll is valid.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: an all-zero msghdr is valid; its pointers are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&mut sll as *mut libc::sockaddr_ll).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_ll>() as u32;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of_val(&control);
    // SAFETY: every buffer `msg` points to lives through the call.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 || sll.sll_pkttype == libc::PACKET_OUTGOING {
        return None;
    }
    buf.truncate(n as usize);
    // SAFETY: walking the control messages the kernel wrote into
    // `control`, within msg_controllen.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_PACKET && (*c).cmsg_type == libc::PACKET_AUXDATA {
                let aux: libc::tpacket_auxdata =
                    std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                if aux.tp_status & libc::TP_STATUS_VLAN_VALID != 0 {
                    let tpid = if aux.tp_status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                        aux.tp_vlan_tpid
                    } else {
                        0x8100
                    };
                    let tag = [tpid.to_be_bytes(), aux.tp_vlan_tci.to_be_bytes()].concat();
                    buf.splice(12..12, tag);
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Some(buf)
}

/// How a veth pair fails to carry a frame.
enum NotCarried {
    /// The sender's kernel refuses it.
    Unsendable,
    /// The receiver's kernel frees it before any packet socket sees it.
    LostOnTheWay,
}

/// Why a fixture's input cannot go through a veth pair, if it cannot.
fn veth_cannot_carry(input: &[u8]) -> Option<(NotCarried, &'static str)> {
    if input.len() < 14 {
        return Some((
            NotCarried::Unsendable,
            "shorter than an Ethernet header: the kernel refuses to send it (EINVAL), \
             no port carries it",
        ));
    }
    let tagged = u16::from_be_bytes([input[12], input[13]]) == 0x8100;
    if tagged && input.len() < 20 {
        return Some((
            NotCarried::LostOnTheWay,
            "a VLAN-tagged frame with under 6 bytes after the Ethernet header: the \
             receiving kernel frees it while taking the tag off, before the switch sees it",
        ));
    }
    None
}

/// The controller's P4Runtime client, primary on the switch, with the
/// pipeline pushed and the fixture entries written. Made on a thread in
/// the switch's namespace (its sockets live there).
struct P4rt {
    rt: tokio::runtime::Runtime,
    client: Client,
    _arbiter: Arbiter,
}

impl P4rt {
    fn connect(kind: TargetKind, device_config: Vec<u8>) -> Result<P4rt, String> {
        let out = beamer_p4gen::generate(Arch::V1model, &PipelineParams::default())
            .map_err(|e| e.to_string())?;
        let pipeline = check_p4info(&out.p4info).map_err(|e| e.to_string())?;
        let spec = SwitchSpec {
            name: kind.name().into(),
            address: P4RT_ADDR.into(),
            target: kind,
            device_id: DEVICE_ID,
            p4info: Arc::new(out.p4info),
            pipeline,
            device_config: DeviceConfig {
                bytes: Arc::new(device_config),
                source: "the test".into(),
            },
            p4info_source: "beamer_p4gen::generate(v1model, default sizes)".into(),
        };
        // Workers start on this thread, so in this namespace.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let (client, arbiter) = rt.block_on(async {
            let mut c = Client::connect(&spec, 1, Duration::from_secs(5), Duration::from_secs(20))
                .await
                .map_err(|e| e.to_string())?;
            let (arbiter, mut events) = c.open_stream().await.map_err(|e| e.to_string())?;
            match events.recv().await {
                Some(StreamEvent::Primary) => {}
                other => return Err(format!("arbitration: {other:?}")),
            }
            c.set_pipeline(&spec, pipeline_cookie(&spec))
                .await
                .map_err(|e| e.to_string())?;
            c.write(&fixture_updates())
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((c, arbiter))
        })?;
        Ok(P4rt {
            rt,
            client,
            _arbiter: arbiter,
        })
    }

    /// The drop counter, every cell.
    fn drops(&mut self) -> Result<[Counts; DropReason::COUNT], String> {
        let cells = self
            .rt
            .block_on(self.client.read_drops())
            .map_err(|e| e.to_string())?;
        let mut all = [Counts::default(); DropReason::COUNT];
        for (r, c) in cells {
            all[r.index()] = c;
        }
        Ok(all)
    }
}

/// A switch on the topology's ports with the fixture entries, seen from
/// the tester's ends and through P4Runtime.
struct Live {
    name: &'static str,
    ports: Ports,
    p4rt: P4rt,
    /// The fixture run last, for a message about frames that show up
    /// later.
    last: &'static str,
}

impl Target for Live {
    fn name(&self) -> &str {
        self.name
    }

    fn not_run(&self, fx: &Fixture) -> Option<&'static str> {
        veth_cannot_carry(&fx.input).map(|(_, why)| why)
    }

    fn confirm_not_run(&mut self, fx: &Fixture) -> Result<(), String> {
        let Some((how, _)) = veth_cannot_carry(&fx.input) else {
            return Ok(());
        };
        let before = self.p4rt.drops()?;
        let sent = self.ports.try_send(INGRESS, &fx.input);
        match how {
            NotCarried::Unsendable => match sent {
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(()),
                Err(e) => Err(format!("sending it failed otherwise: {e}")),
                Ok(()) => Err("the kernel sent it".into()),
            },
            NotCarried::LostOnTheWay => {
                sent.map_err(|e| format!("sending it failed: {e}"))?;
                let obs = Observed {
                    out: self.ports.drain(Duration::from_millis(300)),
                    drops: drops_delta(&before, &self.p4rt.drops()?),
                };
                if obs.out.is_empty() && obs.drops.is_empty() {
                    Ok(())
                } else {
                    Err(format!("it reached the switch:\n{}", describe(&obs)))
                }
            }
        }
    }

    fn observe(&mut self, fx: &Fixture) -> Result<Observed, String> {
        let stray = self.ports.drain(Duration::ZERO);
        if !stray.is_empty() {
            return Err(format!(
                "before it, frames came out that belong to no fixture (after {:?}):\n{}",
                self.last,
                describe(&Observed {
                    out: stray,
                    ..Default::default()
                })
            ));
        }
        self.last = fx.what;
        let before = self.p4rt.drops()?;
        self.ports.send(INGRESS, &fx.input);
        let deadline = Instant::now() + REACTION;
        let mut out = Vec::new();
        loop {
            if let Some(f) = self.ports.next(Duration::from_millis(2)) {
                out.push(f);
                break;
            }
            if self.p4rt.drops()? != before || Instant::now() > deadline {
                break;
            }
        }
        out.extend(self.ports.drain(STRAGGLERS));
        let after = self.p4rt.drops()?;
        Ok(Observed {
            out,
            drops: drops_delta(&before, &after),
        })
    }

    fn quiet(&mut self) -> Result<Observed, String> {
        let before = self.p4rt.drops()?;
        let out = self.ports.drain(Duration::from_millis(300));
        Ok(Observed {
            out,
            drops: drops_delta(&before, &self.p4rt.drops()?),
        })
    }
}

/// Why the live targets cannot run here (not root, no iproute2).
fn live_missing() -> Option<String> {
    beamer_testbed::missing(&["ip"], false)
}

// ---- target 2: beamer switch over P4Runtime and AF_PACKET ---------------------

#[test]
fn every_fixture_on_beamer_switch_over_p4runtime_and_af_packet() {
    let what = "fixtures on `beamer switch` (P4Runtime, AF_PACKET on veth)";
    if let Some(why) = live_missing() {
        beamer_testbed::skip_unless_required(beamer_testbed::REQUIRE_TOOLS, what, &why);
        return;
    }
    let scratch = Scratch::new("fixtures-softswitch");
    let topo = Topology::new("s");
    let ports = topo.ports();
    let mut cmd = topo.switch.command(env!("CARGO_BIN_EXE_beamer"));
    cmd.args(["switch", "--p4rt", P4RT_ADDR]);
    for (n, sw, _) in PORTS {
        cmd.args(["--port", &format!("{n}={sw}")]);
    }
    let mut switch = Proc::spawn("beamer-switch", cmd, scratch.dir()).expect("beamer switch");
    assert!(
        switch.wait_for("forwarding on", Duration::from_secs(20)),
        "beamer switch did not start:\n{}",
        switch.log()
    );
    let summary = topo.switch.run(|| {
        let p4rt = P4rt::connect(TargetKind::Softswitch, Vec::new())
            .unwrap_or_else(|e| panic!("P4Runtime: {e}"));
        run_suite(&mut Live {
            name: "`beamer switch` (P4Runtime, AF_PACKET on veth)",
            ports,
            p4rt,
            last: "(none)",
        })
    });
    summary.assert_ok(|| format!("beamer switch's output:\n{}", switch.log_tail(30)));
    switch.signal(libc::SIGTERM);
    assert!(
        switch
            .stop(Duration::from_secs(5))
            .is_some_and(|s| s.success()),
        "beamer switch did not stop cleanly:\n{}",
        switch.log_tail(30)
    );
}

// ---- target 3: bmv2 simple_switch_grpc ------------------------------------------

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The bmv2 scripts' "tool missing" exit status.
const EX_UNAVAILABLE: i32 = 69;

/// A simple_switch_grpc started by `bmv2/start.sh` in the switch's
/// namespace, stopped by `bmv2/stop.sh` on drop.
struct Bmv2<'a> {
    ns: &'a Netns,
    run_dir: PathBuf,
}

impl Bmv2<'_> {
    /// The end of bmv2's log and output, for failure messages.
    fn tail(&self) -> String {
        let tail = |f: &str| {
            let text = std::fs::read_to_string(self.run_dir.join(f)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(40)..].join("\n")
        };
        format!(
            "simple_switch_grpc output:\n{}\nend of its log:\n{}",
            tail("stdout.log"),
            tail("bmv2.log.txt")
        )
    }
}

impl Drop for Bmv2<'_> {
    fn drop(&mut self) {
        let _ = self
            .ns
            .command(repo().join("bmv2/stop.sh"))
            .arg("--run-dir")
            .arg(&self.run_dir)
            .arg("--quiet")
            .output();
    }
}

/// The tool in `env` (a path or a name on PATH), or `default` on PATH.
fn tool(env: &str, default: &str) -> Result<String, String> {
    let t = std::env::var(env).unwrap_or_else(|_| default.into());
    if beamer_testbed::which(&t).is_some() || Path::new(&t).is_file() {
        Ok(t)
    } else {
        Err(format!("{t} (set {env} or put it on PATH)"))
    }
}

/// The bmv2 JSON of the generator's v1model program (default sizes), from
/// `bmv2/compile.sh`; `Err` says why it could not be made.
fn compile_for_bmv2(dir: &Path) -> Result<Vec<u8>, String> {
    let out = beamer_p4gen::generate(Arch::V1model, &PipelineParams::default())
        .map_err(|e| e.to_string())?;
    let p4 = dir.join(beamer_p4gen::PROGRAM_FILE);
    std::fs::write(&p4, out.program).map_err(|e| e.to_string())?;
    let build = dir.join("bmv2-build");
    let r = Command::new(repo().join("bmv2/compile.sh"))
        .arg("--p4")
        .arg(&p4)
        .arg("--out")
        .arg(&build)
        .output()
        .map_err(|e| format!("bmv2/compile.sh: {e}"))?;
    if !r.status.success() {
        return Err(format!(
            "bmv2/compile.sh ({}): {}",
            r.status,
            String::from_utf8_lossy(&r.stderr).trim()
        ));
    }
    let stem = beamer_p4gen::PROGRAM_FILE.trim_end_matches(".p4");
    std::fs::read(build.join(format!("{stem}.json"))).map_err(|e| e.to_string())
}

#[test]
fn every_fixture_on_bmv2_simple_switch_grpc() {
    let what = "fixtures on bmv2 simple_switch_grpc (P4Runtime, veth)";
    let tools: Vec<String> = [("P4C", "p4c"), ("SIMPLE_SWITCH_GRPC", "simple_switch_grpc")]
        .into_iter()
        .filter_map(|(env, name)| tool(env, name).err())
        .collect();
    if !tools.is_empty() {
        beamer_testbed::say_skipped(
            what,
            &format!(
                "not found: {}; bmv2/README.md says how to install p4c and bmv2",
                tools.join(", ")
            ),
        );
        return;
    }
    if let Some(why) = live_missing() {
        beamer_testbed::say_skipped(what, &why);
        return;
    }
    let scratch = Scratch::new("fixtures-bmv2");
    let json = compile_for_bmv2(scratch.dir()).unwrap_or_else(|e| panic!("{e}"));
    let topo = Topology::new("b");
    let ports = topo.ports();
    let run_dir = scratch.path("bmv2-run");
    let mut start = topo.switch.command(repo().join("bmv2/start.sh"));
    start.args(["--grpc", P4RT_ADDR, "--device-id", &DEVICE_ID.to_string()]);
    start.arg("--run-dir").arg(&run_dir);
    for (n, sw, _) in PORTS {
        start.args(["--iface", &format!("{n}@{sw}")]);
    }
    let bmv2 = Bmv2 {
        ns: &topo.switch,
        run_dir,
    };
    let r = start.output().expect("bmv2/start.sh");
    if r.status.code() == Some(EX_UNAVAILABLE) {
        beamer_testbed::say_skipped(what, String::from_utf8_lossy(&r.stderr).trim());
        return;
    }
    assert!(
        r.status.success(),
        "bmv2/start.sh ({}): {}{}",
        r.status,
        String::from_utf8_lossy(&r.stdout),
        String::from_utf8_lossy(&r.stderr)
    );
    let summary = topo.switch.run(|| {
        let p4rt = P4rt::connect(TargetKind::Bmv2, json)
            .unwrap_or_else(|e| panic!("P4Runtime: {e}\n{}", bmv2.tail()));
        run_suite(&mut Live {
            name: "bmv2 simple_switch_grpc (P4Runtime, veth)",
            ports,
            p4rt,
            last: "(none)",
        })
    });
    summary.assert_ok(|| bmv2.tail());
}
