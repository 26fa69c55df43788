//! Throughput and CPU cost of the AF_PACKET backend, through veth pairs in
//! two network namespaces made for the run (and deleted after it):
//!
//! ```text
//!   ns bafx<pid>pe                         ns bafx<pid>sw
//!   sender --> c1 <-------veth-------> s1 = port 1  \
//!                                                     beamer switch worker
//!   (sink)     v2 <-------veth-------> s2 = port 2  /
//! ```
//!
//! A sender thread (pinned to one core) pushes TCP frames from 64K clients
//! to the VIP of the benchmark workload into c1 with `sendmmsg`, as fast as
//! it can. One switch worker (pinned to another core) receives them on
//! port 1, runs the pipeline (64K buckets, 1,000 servers, 100 VIP entries,
//! 1,000 routes; every server route leads to port 2) and sends the
//! encapsulated frames out of port 2. Nothing answers on v2: the kernel
//! drops them there (their MAC is not v2's).
//!
//! After a warm-up it measures a window and prints: frames offered
//! (sender), received and forwarded by the switch, in Mpps; the switch
//! thread's CPU time per received frame (`/proc/.../schedstat`, split into
//! user and system from `/proc/.../stat`), and how busy the switch's core
//! was (`/proc/stat`, softirq included). A printed figure, not a test.
//!
//! ```sh
//! cargo run --release -p beamer-softswitch --example afpacket_veth -- \
//!     [--seconds 5] [--warmup 1] [--frame 64] [--batch 32] \
//!     [--switch-cpu 1] [--sender-cpu 0]
//! ```
//!
//! Needs root and iproute2. On a machine with two cores the sender's core
//! also does the kernel's receive work for port 1 (veth delivers on the
//! sending core), and the switch's core the kernel's work of sending on
//! port 2 and dropping on v2.
//!
//! The user/system split comes from the kernel's 100 Hz tick accounting
//! and is coarse (a few ticks of user time per run). For a precise split,
//! sample the switch's core while the example runs, e.g. for 3 s of a
//! 5 s window:
//!
//! ```sh
//! afpacket_veth --seconds 5 & sleep 2
//! perf record -C 1 -e cpu-clock -F 10000 -o sw.data -- sleep 3; wait
//! perf report -i sw.data --sort comm,dso,sym --stdio   # rows of comm `switch`
//! ```
//!
//! (samples x 100 us / (received Mpps x 3 s) = ns per frame in each part).

use beamer_pipeline::entries::{Entry, Update};
use beamer_softswitch::bench::{Rng, Workload, WorkloadSpec};
use beamer_softswitch::io::afpacket::{AfPacketBackend, PortSpec, RingConfig};
use beamer_softswitch::io::report::IoReading;
use beamer_softswitch::{BatchSize, Switch};
use beamer_testbed::{Netns, veth};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

struct Opts {
    seconds: f64,
    warmup: f64,
    frame: usize,
    batch: BatchSize,
    switch_cpu: usize,
    sender_cpu: usize,
}

fn parse_args() -> Result<Opts, String> {
    let mut o = Opts {
        seconds: 5.0,
        warmup: 1.0,
        frame: 64,
        batch: BatchSize::DEFAULT,
        switch_cpu: 1,
        sender_cpu: 0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = || format!("{flag} {value:?}: not a number");
        match flag.as_str() {
            "--seconds" => o.seconds = value.parse().map_err(|_| bad())?,
            "--warmup" => o.warmup = value.parse().map_err(|_| bad())?,
            "--frame" => o.frame = value.parse().map_err(|_| bad())?,
            "--batch" => o.batch = value.parse()?,
            "--switch-cpu" => o.switch_cpu = value.parse().map_err(|_| bad())?,
            "--sender-cpu" => o.sender_cpu = value.parse().map_err(|_| bad())?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if !(54..=9000).contains(&o.frame) {
        return Err(format!("--frame {} is not in 54..=9000", o.frame));
    }
    Ok(o)
}

fn pin(cpu: usize) {
    // SAFETY: an all-zero cpu_set_t is an empty set; sched_setaffinity on
    // the calling thread (pid 0) with a set of its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) != 0 {
            eprintln!(
                "afpacket_veth: cannot pin to cpu {cpu}: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

/// The workload's switch with every route leading to port 2 (the only
/// egress port here), and one frame per client.
fn workload(frame: usize) -> (Switch, Vec<u8>, WorkloadSpec) {
    let spec = WorkloadSpec {
        clients: 1 << 16,
        frame_len: frame,
        ..WorkloadSpec::default()
    };
    let switch = Switch::new(Workload::params(&spec)).expect("workload sizes");
    let updates: Vec<Update> = Workload::table_updates(&spec)
        .into_iter()
        .map(|u| match u {
            Update::Insert(Entry::Route(k, mut a)) => {
                a.port = 2;
                Update::Insert(Entry::Route(k, a))
            }
            u => u,
        })
        .collect();
    if let Err((i, e)) = switch.apply_all(&updates) {
        panic!("update {i}: {e}");
    }
    let mut rng = Rng::new(spec.seed);
    let mut pool = vec![0u8; spec.clients as usize * frame];
    for f in pool.chunks_exact_mut(frame) {
        Workload::client_frame(&spec, &mut rng, f);
    }
    (switch, pool, spec)
}

/// Sends the pool's frames round and round into `ifname` until `stop`.
fn sender(ifname: &str, pool: &[u8], frame: usize, stop: &AtomicBool, sent: &AtomicU64) {
    const BURST: usize = 64;
    let name = std::ffi::CString::new(ifname).unwrap();
    // SAFETY: plain libc calls with valid arguments; the descriptor is
    // owned at once. Protocol 0: this socket receives nothing.
    let fd = unsafe {
        let ifindex = libc::if_nametoindex(name.as_ptr());
        assert!(ifindex != 0, "no interface {ifname}");
        let raw = libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0);
        assert!(raw >= 0, "socket: {}", std::io::Error::last_os_error());
        let fd = OwnedFd::from_raw_fd(raw);
        let mut sll: libc::sockaddr_ll = std::mem::zeroed();
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = ifindex as i32;
        let r = libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as u32,
        );
        assert_eq!(r, 0, "bind: {}", std::io::Error::last_os_error());
        let one = 1i32;
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_QDISC_BYPASS,
            (&one as *const i32).cast(),
            4,
        );
        fd
    };
    let frames = pool.len() / frame;
    let mut iov = vec![
        libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: frame,
        };
        BURST
    ];
    // SAFETY: an all-zero mmsghdr is valid.
    let mut msgs: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; BURST];
    let mut next = 0;
    while !stop.load(Ordering::Relaxed) {
        for (v, m) in iov.iter_mut().zip(msgs.iter_mut()) {
            v.iov_base = pool[next * frame..].as_ptr().cast_mut().cast();
            m.msg_hdr.msg_iov = v;
            m.msg_hdr.msg_iovlen = 1;
            next = (next + 1) % frames;
        }
        // SAFETY: BURST initialised headers pointing into `pool`.
        let r = unsafe { libc::sendmmsg(fd.as_raw_fd(), msgs.as_mut_ptr(), BURST as u32, 0) };
        if r > 0 {
            sent.fetch_add(r as u64, Ordering::Relaxed);
        }
    }
}

/// One reading of everything the report compares.
struct Sample {
    at: Instant,
    sent: u64,
    io: IoReading,
    /// Switch thread: ns on CPU, user and system ticks.
    thread_ns: u64,
    thread_user: u64,
    thread_sys: u64,
    /// The switch core: busy and total ticks.
    core_busy: u64,
    core_total: u64,
}

fn read_u64s(path: &str) -> Vec<u64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect()
}

fn sample(sent: &AtomicU64, io: &IoReading, tid: i32, cpu: usize) -> Sample {
    let task = format!("/proc/self/task/{tid}");
    let schedstat = read_u64s(&format!("{task}/schedstat"));
    // Fields after the command name, which is in parentheses.
    let stat = std::fs::read_to_string(format!("{task}/stat")).unwrap_or_default();
    let rest: Vec<u64> = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .map(|w| w.parse().unwrap_or(0))
        .collect();
    // utime and stime are fields 14 and 15 of stat: 10 and 11 here.
    let (user, sys) = (
        rest.get(10).copied().unwrap_or(0),
        rest.get(11).copied().unwrap_or(0),
    );
    let procstat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let line = procstat
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&format!("cpu{cpu}")))
        .unwrap_or_default();
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|w| w.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    // idle and iowait are fields 4 and 5.
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Sample {
        at: Instant::now(),
        sent: sent.load(Ordering::Relaxed),
        io: io.clone(),
        thread_ns: schedstat.first().copied().unwrap_or(0),
        thread_user: user,
        thread_sys: sys,
        core_busy: total - idle,
        core_total: total,
    }
}

/// Packets received on `dev` in `ns`, from `ip -s link`.
fn link_rx_packets(ns: &Netns, dev: &str) -> u64 {
    let text = ns.ip(&format!("-s link show {dev}")).unwrap_or_default();
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        if l.trim_start().starts_with("RX:") {
            return lines
                .next()
                .and_then(|n| n.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
        }
    }
    0
}

fn main() {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("afpacket_veth: {e}");
            std::process::exit(2);
        }
    };
    if let Some(why) = beamer_testbed::missing(&["ip"], false) {
        eprintln!("afpacket_veth: cannot run: {why}");
        std::process::exit(2);
    }
    beamer_testbed::sweep_stale("bafx");
    let base = format!("bafx{}", std::process::id());
    let sw = Netns::new(format!("{base}sw")).expect("namespace");
    let pe = Netns::new(format!("{base}pe")).expect("namespace");
    for ns in [&sw, &pe] {
        ns.disable_ipv6().expect("sysctl");
    }
    veth(&sw, "s1", &pe, "c1").expect("veth s1-c1");
    veth(&sw, "s2", &pe, "v2").expect("veth s2-v2");
    // Room for the frames and, towards the servers, the outer header.
    let mtu = opts.frame.max(1514) - 14;
    for (ns, dev, mtu) in [
        (&sw, "s1", mtu),
        (&pe, "c1", mtu),
        (&sw, "s2", mtu + 36),
        (&pe, "v2", mtu + 36),
    ] {
        ns.ip(&format!("link set {dev} mtu {mtu}")).expect("mtu");
    }

    let (switch, pool, spec) = workload(opts.frame);
    let stop_switch = Arc::new(AtomicBool::new(false));
    let stop_sender = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let tid = Arc::new(AtomicI32::new(0));

    let specs: Vec<PortSpec> = ["1=s1", "2=s2"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    let (batch, frame) = (opts.batch, opts.frame);
    let io = sw.run(|| {
        let cfg = RingConfig {
            max_frame: frame.max(2048),
            ..RingConfig::default()
        };
        AfPacketBackend::open(&specs, &cfg, 1, batch).expect("open ports")
    });
    let counters = io.counters();
    let switch_thread = {
        let (stop, tid, cpu, switch) = (
            Arc::clone(&stop_switch),
            Arc::clone(&tid),
            opts.switch_cpu,
            switch.clone(),
        );
        let mut backend = io;
        sw.spawn("switch", move || {
            pin(cpu);
            // SAFETY: gettid has no preconditions.
            tid.store(unsafe { libc::gettid() }, Ordering::Relaxed);
            let mut worker = switch.worker();
            backend.run(&mut worker, &stop).expect("switch loop")
        })
    };
    let sender_thread = {
        let (stop, sent, cpu) = (Arc::clone(&stop_sender), Arc::clone(&sent), opts.sender_cpu);
        pe.spawn("sender", move || {
            pin(cpu);
            sender("c1", &pool, frame, &stop, &sent);
        })
    };

    std::thread::sleep(Duration::from_secs_f64(opts.warmup));
    let tid = tid.load(Ordering::Relaxed);
    let v2_before = link_rx_packets(&pe, "v2");
    let a = sample(&sent, &counters.read(), tid, opts.switch_cpu);
    std::thread::sleep(Duration::from_secs_f64(opts.seconds));
    let b = sample(&sent, &counters.read(), tid, opts.switch_cpu);
    let v2_after = link_rx_packets(&pe, "v2");
    stop_sender.store(true, Ordering::Relaxed);
    sender_thread.join().expect("sender");
    stop_switch.store(true, Ordering::Relaxed);
    switch_thread.join().expect("switch");

    let secs = b.at.duration_since(a.at).as_secs_f64();
    let port = |r: &IoReading, i: usize| r.ports[i].clone();
    let rx = port(&b.io, 0).rx.packets - port(&a.io, 0).rx.packets;
    let tx = port(&b.io, 1).tx.packets - port(&a.io, 1).tx.packets;
    let offered = b.sent - a.sent;
    let mpps = |n: u64| n as f64 / secs / 1e6;
    let per = |ns: f64| if rx == 0 { 0.0 } else { ns / rx as f64 };
    let tick_ns = 1e9 / 100.0; // USER_HZ
    let core_share =
        (b.core_busy - a.core_busy) as f64 / (b.core_total - a.core_total).max(1) as f64;
    println!(
        "afpacket_veth: {frame}-byte frames from {} clients, batch {batch}, {secs:.2} s after {:.1} s warm-up; switch on cpu {}, sender on cpu {}",
        spec.clients, opts.warmup, opts.switch_cpu, opts.sender_cpu
    );
    println!("  offered    {:7.3} Mpps (sender)", mpps(offered));
    println!("  received   {:7.3} Mpps (switch, port 1)", mpps(rx));
    println!(
        "  forwarded  {:7.3} Mpps (switch, port 2; {:.3} Mpps arrived on v2)",
        mpps(tx),
        mpps(v2_after - v2_before)
    );
    println!(
        "  switch thread: {:5.1}% of a core, {:6.0} ns CPU per received frame (user ~{:.0}, system ~{:.0} from ticks)",
        (b.thread_ns - a.thread_ns) as f64 / secs / 1e7,
        per((b.thread_ns - a.thread_ns) as f64),
        per((b.thread_user - a.thread_user) as f64 * tick_ns),
        per((b.thread_sys - a.thread_sys) as f64 * tick_ns),
    );
    println!(
        "  switch core (cpu {}): {:5.1}% busy, {:6.0} ns per received frame (softirq included)",
        opts.switch_cpu,
        core_share * 100.0,
        per(core_share * secs * 1e9),
    );
    drop((sw, pe));
}
