//! The benchmark: a realistic workload, the measurement loops, and the
//! report `beamer bench` prints. The criterion bench uses the same pieces.
//!
//! Workload ([`WorkloadSpec::default`]): 64-byte TCP frames from 1M random
//! clients (random address and source port) to the service ports of the
//! VIP; 64K buckets (one `vip_id`; `vips` adds more, 64K each) spread over
//! 1,000 servers, a quarter of them with a previous server; 100 VIP entries
//! (two service ports per VIP, the rest per-server ports); 1,000 routes
//! (one /24 per rack of 40 servers, random prefixes, a default route).
//!
//! Both loops start each batch the same way: "receive" copies the next
//! frames from a pool holding one frame per client (64 MiB, read
//! sequentially, as a NIC ring would be) into the batch, and "send" reads
//! the length and first byte of each output frame. In between,
//! - the pipeline loop runs [`Worker::process_batch`];
//! - the floor loop reads every byte of each frame and writes the 36 outer
//!   header bytes in front of it: the cost of touching the packet memory.
//!
//! Pipeline Mpps / floor Mpps is the headline ratio: how close the pipeline
//! gets to doing nothing but moving the bytes it must move.

use crate::packet::{Batch, BatchSize, Frame, Verdict};
use crate::switch::{MemoryReport, Switch, Worker};
use beamer_pipeline::PipelineParams;
use beamer_pipeline::entries::{
    BucketAction, BucketKey, Entry, RouteAction, RouteKey, SwitchConfig, Update, VipAction, VipKey,
};
use beamer_pipeline::wire::ethernet::{self, ETHERTYPE_IPV4};
use beamer_pipeline::wire::ipv4::{self, IHL_NO_OPTIONS, PROTO_TCP, VERSION};
use beamer_pipeline::wire::l4::{TCP_ACK, TCP_HEADER_LEN};
use beamer_pipeline::wire::option::OUTER_HEADER_LEN;
use beamer_pipeline::wire::{EthernetFrame, Ipv4Packet, MacAddr, TcpHeader};
use std::collections::BTreeSet;
use std::fmt;
use std::hint::black_box;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The shape of the benchmark workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadSpec {
    /// Distinct clients (address, source port); one frame each in the pool.
    pub clients: u32,
    /// Buckets per VIP (a power of two).
    pub buckets: u32,
    /// VIPs with buckets (distinct `vip_id`s).
    pub vips: u32,
    /// Servers the buckets are spread over.
    pub servers: u32,
    /// VIP table entries: 2 service ports per VIP, the rest per-server
    /// ports.
    pub vip_entries: u32,
    /// Route table entries.
    pub routes: u32,
    /// Frame length in bytes (at least 54: Ethernet, IPv4, TCP).
    pub frame_len: usize,
    /// Seed of the pseudo-random choices.
    pub seed: u64,
}

impl Default for WorkloadSpec {
    fn default() -> Self {
        WorkloadSpec {
            clients: 1 << 20,
            buckets: 1 << 16,
            vips: 1,
            servers: 1000,
            vip_entries: 100,
            routes: 1000,
            frame_len: 64,
            seed: 0x5eed_beef,
        }
    }
}

/// SplitMix64: a small, good, deterministic generator.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `n` (> 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// Servers per rack, and so per /24 route.
const RACK: u32 = 40;
/// A change time for buckets with a previous server.
const BASE_TIME: u32 = 1_700_000_000;

/// The address of server `i`: 10.1.rack.(1 + i % 40).
pub fn server(i: u32) -> Ipv4Addr {
    Ipv4Addr::new(10, 1, (i / RACK) as u8, (1 + i % RACK) as u8)
}

/// The address of VIP `v`.
pub fn vip_addr(v: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(192, 0, 2, 1)) + v)
}

/// The workload: a filled switch and a pool of client frames.
pub struct Workload {
    /// What was built.
    pub spec: WorkloadSpec,
    switch: Switch,
    pool: Arc<[u8]>,
}

/// A "receive" cursor over the frame pool.
#[derive(Clone)]
pub struct Rx {
    pool: Arc<[u8]>,
    frame_len: usize,
    next: usize,
}

impl Rx {
    /// Fills `batch` (cleared first) with the next frames of the pool.
    #[inline]
    pub fn fill(&mut self, batch: &mut Batch) {
        batch.clear();
        while !batch.is_full() {
            if self.next + self.frame_len > self.pool.len() {
                self.next = 0;
            }
            let frame = &self.pool[self.next..self.next + self.frame_len];
            // Cannot fail: the batch is not full and frames fit.
            let _ = batch.push(frame, 0);
            self.next += self.frame_len;
        }
    }
}

/// Reads what a transmit would: each forwarded frame's length and first
/// byte.
#[inline]
fn send(batch: &Batch) -> u64 {
    batch.forwarded().fold(0u64, |acc, (port, f)| {
        acc.wrapping_add(
            f.len() as u64 + u64::from(port) + u64::from(f.first().copied().unwrap_or(0)),
        )
    })
}

/// Processes `packets` frames (rounded up to whole batches) through the
/// pipeline. Returns a value that depends on every output frame.
pub fn pipeline_loop(worker: &mut Worker, rx: &mut Rx, batch: &mut Batch, packets: u64) -> u64 {
    let mut acc = 0u64;
    let mut done = 0;
    while done < packets {
        rx.fill(batch);
        worker.process_batch(batch);
        acc = acc.wrapping_add(send(batch));
        done += batch.len() as u64;
    }
    black_box(acc)
}

/// The floor: reads every byte of `packets` frames and writes the 36 outer
/// header bytes in front of each, with the same receive and send steps.
pub fn floor_loop(rx: &mut Rx, batch: &mut Batch, packets: u64) -> u64 {
    let outer = [0x49u8; OUTER_HEADER_LEN];
    let mut acc = 0u64;
    let mut done = 0;
    while done < packets {
        rx.fill(batch);
        batch.for_each_frame(|_, frame: &mut Frame<'_>, _| {
            let (buf, head, len) = frame.parts();
            let sum = buf[head..head + len]
                .iter()
                .fold(0u64, |a, b| a.wrapping_add(u64::from(*b)));
            acc = acc.wrapping_add(sum);
            let outer_start = head + ethernet::HEADER_LEN - OUTER_HEADER_LEN;
            buf[outer_start..outer_start + OUTER_HEADER_LEN].copy_from_slice(&black_box(outer));
            frame.set_span(head - OUTER_HEADER_LEN, len + OUTER_HEADER_LEN);
            Verdict::Forward { port: 0 }
        });
        acc = acc.wrapping_add(send(batch));
        done += batch.len() as u64;
    }
    black_box(acc)
}

impl Workload {
    /// Builds the tables and the frame pool.
    pub fn build(spec: &WorkloadSpec) -> Workload {
        let switch = Self::build_switch(spec);
        let pool = Self::build_pool(spec);
        Workload {
            spec: spec.clone(),
            switch,
            pool,
        }
    }

    /// The switch holding the workload's tables.
    pub fn switch(&self) -> &Switch {
        &self.switch
    }

    /// A receive cursor at the start of the pool.
    pub fn rx(&self) -> Rx {
        Rx {
            pool: Arc::clone(&self.pool),
            frame_len: self.spec.frame_len,
            next: 0,
        }
    }

    /// The pipeline sizes of the workload.
    pub fn params(spec: &WorkloadSpec) -> PipelineParams {
        PipelineParams {
            buckets: spec.buckets,
            max_vips: spec.vips,
            max_vip_entries: spec.vip_entries.max(2 * spec.vips),
            routes: spec.routes.max(RACK),
        }
    }

    /// Every update that fills the workload's tables.
    pub fn table_updates(spec: &WorkloadSpec) -> Vec<Update> {
        let mut rng = Rng::new(spec.seed);
        let mut u = vec![Update::SetConfig(SwitchConfig {
            tunnel_src: Ipv4Addr::new(10, 0, 0, 1),
            generation: 1,
        })];
        let ins = |e| Update::Insert(e);
        // Routes: a /24 per rack, a default route, random others.
        let racks = spec.servers.div_ceil(RACK);
        let mut prefixes = BTreeSet::new();
        let route = |port: u16| RouteAction {
            port,
            dst_mac: MacAddr([0x02, 0, 0, 0, (port >> 8) as u8, port as u8]),
            src_mac: MacAddr([0x02, 0, 0, 0xff, 0, 1]),
        };
        for r in 0..racks {
            let key = RouteKey::new(Ipv4Addr::new(10, 1, r as u8, 0), 24).expect("rack prefix");
            prefixes.insert(key);
            u.push(ins(Entry::Route(key, route(1 + (r % 8) as u16))));
        }
        if prefixes.len() < spec.routes as usize {
            let key = RouteKey::new(Ipv4Addr::UNSPECIFIED, 0).expect("default route");
            prefixes.insert(key);
            u.push(ins(Entry::Route(key, route(0))));
        }
        while prefixes.len() < spec.routes as usize {
            let len = 16 + rng.below(13) as u8;
            let addr = rng.next_u64() as u32 & RouteKey::mask(len);
            let Ok(key) = RouteKey::new(Ipv4Addr::from(addr), len) else {
                continue;
            };
            if Ipv4Addr::from(addr).octets()[0] == 10 || !prefixes.insert(key) {
                continue;
            }
            u.push(ins(Entry::Route(key, route(9 + rng.below(32) as u16))));
        }
        // VIP entries: two service ports per VIP, then per-server ports.
        let mut entries = 0;
        for v in 0..spec.vips {
            for port in [80, 443] {
                let key = VipKey {
                    dst: vip_addr(v),
                    protocol: PROTO_TCP,
                    port,
                };
                u.push(ins(Entry::Vip(
                    key,
                    VipAction::ToBuckets { vip_id: v as u16 },
                )));
                entries += 1;
            }
        }
        let mut j = 0;
        while entries < spec.vip_entries {
            let key = VipKey {
                dst: vip_addr(j % spec.vips),
                protocol: PROTO_TCP,
                port: 40_000 + j as u16,
            };
            let dip = server(j % spec.servers);
            u.push(ins(Entry::Vip(key, VipAction::ToServer { dip })));
            entries += 1;
            j += 1;
        }
        // Buckets: every bucket of every VIP, a quarter with a previous DIP.
        for v in 0..spec.vips {
            for b in 0..spec.buckets {
                let dip = server((b.wrapping_mul(7919) + v * 13) % spec.servers);
                let (prev_dip, change_time) = if b % 4 == 0 {
                    (server((b / 4) % spec.servers), BASE_TIME + b)
                } else {
                    (Ipv4Addr::UNSPECIFIED, 0)
                };
                let key = BucketKey {
                    vip_id: v as u16,
                    bucket: b,
                };
                let action = BucketAction {
                    dip,
                    prev_dip,
                    change_time,
                };
                u.push(ins(Entry::Bucket(key, action)));
            }
        }
        u
    }

    fn build_switch(spec: &WorkloadSpec) -> Switch {
        let switch = Switch::new(Self::params(spec)).expect("workload sizes are valid");
        if let Err((i, e)) = switch.apply_all(&Self::table_updates(spec)) {
            panic!("workload update {i} rejected: {e}");
        }
        switch
    }

    /// One TCP frame from a client to a service port.
    pub fn client_frame(spec: &WorkloadSpec, rng: &mut Rng, out: &mut [u8]) {
        let len = spec.frame_len;
        out[..len].fill(0);
        let mut eth = EthernetFrame::new_checked(&mut out[..len]).expect("frame >= 54 bytes");
        eth.set_dst(MacAddr([0x02, 0, 0, 0xff, 0, 1]));
        eth.set_src(MacAddr([0x02, 0, 0, 0xee, 0, 1]));
        eth.set_ethertype(ETHERTYPE_IPV4);
        let mut ip = Ipv4Packet::new_checked(eth.payload_mut()).expect("frame >= 54 bytes");
        ip.set_version_ihl(VERSION, IHL_NO_OPTIONS);
        ip.set_total_len((len - ethernet::HEADER_LEN) as u16);
        ip.set_ident(rng.next_u64() as u16);
        ip.set_ttl(64);
        ip.set_protocol(PROTO_TCP);
        ip.set_src(Ipv4Addr::from(rng.next_u64() as u32));
        ip.set_dst(vip_addr(rng.below(u64::from(spec.vips)) as u32));
        ip.fill_checksum();
        let l4 = ethernet::HEADER_LEN + ipv4::HEADER_LEN;
        let mut tcp = TcpHeader::new_checked(&mut out[l4..l4 + TCP_HEADER_LEN]).expect("room");
        tcp.set_src_port(1024 + rng.below(64_512) as u16);
        tcp.set_dst_port(if rng.below(2) == 0 { 80 } else { 443 });
        tcp.set_flags(TCP_ACK);
        // Data offset: 5 words, no options.
        out[l4 + beamer_pipeline::wire::l4::field::TCP_DATA_OFF] =
            ((TCP_HEADER_LEN / 4) as u8) << 4;
    }

    fn build_pool(spec: &WorkloadSpec) -> Arc<[u8]> {
        assert!(spec.frame_len >= ethernet::HEADER_LEN + ipv4::HEADER_LEN + TCP_HEADER_LEN);
        let mut rng = Rng::new(spec.seed ^ 0xc11e_7700);
        let mut pool = vec![0u8; spec.clients as usize * spec.frame_len];
        for frame in pool.chunks_exact_mut(spec.frame_len) {
            Self::client_frame(spec, &mut rng, frame);
        }
        pool.into()
    }

    /// `n` MODIFYs of random buckets to random servers, as a controller
    /// moving buckets would write them.
    pub fn bucket_moves(&self, n: usize, seed: u64) -> Vec<Update> {
        let mut rng = Rng::new(seed);
        (0..n)
            .map(|i| {
                let key = BucketKey {
                    vip_id: rng.below(u64::from(self.spec.vips)) as u16,
                    bucket: rng.below(u64::from(self.spec.buckets)) as u32,
                };
                let action = BucketAction {
                    dip: server(rng.below(u64::from(self.spec.servers)) as u32),
                    prev_dip: server(rng.below(u64::from(self.spec.servers)) as u32),
                    change_time: BASE_TIME + i as u32,
                };
                Update::Modify(Entry::Bucket(key, action))
            })
            .collect()
    }
}

/// Packets per second of a loop run.
fn mpps(packets: u64, elapsed: Duration) -> f64 {
    packets as f64 / elapsed.as_secs_f64() / 1e6
}

/// One line of the throughput table.
#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    /// Batch size.
    pub batch: BatchSize,
    /// Pipeline, million packets per second on one core.
    pub mpps: f64,
    /// Floor loop, million packets per second on one core.
    pub floor_mpps: f64,
}

impl Throughput {
    /// Pipeline / floor.
    pub fn ratio(&self) -> f64 {
        self.mpps / self.floor_mpps
    }
}

/// The cost of table updates while traffic runs.
#[derive(Debug, Clone, Copy)]
pub struct UpdateCost {
    /// Bucket MODIFYs per [`Switch::apply`] call.
    pub entries_per_write: usize,
    /// Entries applied per second.
    pub entries_per_sec: f64,
    /// Pipeline Mpps of the traffic thread meanwhile.
    pub traffic_mpps: f64,
}

/// Measures pipeline and floor at one batch size: `rounds` alternating
/// runs of `packets` each, keeping the best of each (the machine is
/// shared; the best run is the least disturbed one).
pub fn measure_throughput(w: &Workload, batch: BatchSize, packets: u64, rounds: u32) -> Throughput {
    let mut worker = w.switch.worker();
    let mut rx = w.rx();
    let mut b = Batch::new(batch, w.spec.frame_len);
    // Warm up: one pass over the pool touches every table line and counter.
    pipeline_loop(&mut worker, &mut rx, &mut b, u64::from(w.spec.clients));
    let (mut best, mut best_floor) = (0f64, 0f64);
    for _ in 0..rounds.max(1) {
        let t = Instant::now();
        pipeline_loop(&mut worker, &mut rx, &mut b, packets);
        best = best.max(mpps(packets, t.elapsed()));
        let t = Instant::now();
        floor_loop(&mut rx, &mut b, packets);
        best_floor = best_floor.max(mpps(packets, t.elapsed()));
    }
    Throughput {
        batch,
        mpps: best,
        floor_mpps: best_floor,
    }
}

/// Applies bucket MODIFYs of `entries_per_write` entries per call for
/// `duration` while another thread runs the pipeline at `batch`.
pub fn measure_updates(
    w: &Workload,
    entries_per_write: usize,
    duration: Duration,
    batch: BatchSize,
) -> UpdateCost {
    let moves = w.bucket_moves(entries_per_write.max(1) * 64, w.spec.seed ^ 0x0f0f);
    let stop = AtomicBool::new(false);
    let traffic = AtomicU64::new(0);
    let mut applied = 0u64;
    let mut elapsed = Duration::ZERO;
    let mut traffic_time = Duration::ZERO;
    let mut worker = w.switch.worker();
    let mut rx = w.rx();
    std::thread::scope(|s| {
        let t = s.spawn(|| {
            let mut b = Batch::new(batch, w.spec.frame_len);
            let start = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                pipeline_loop(&mut worker, &mut rx, &mut b, 8192);
                traffic.fetch_add(
                    8192_u64.div_ceil(batch.get() as u64) * batch.get() as u64,
                    Ordering::Relaxed,
                );
            }
            start.elapsed()
        });
        let start = Instant::now();
        let mut chunks = moves.chunks(entries_per_write.max(1)).cycle();
        while start.elapsed() < duration {
            let chunk = chunks.next().unwrap_or(&[]);
            for r in w.switch.apply(chunk) {
                debug_assert!(r.is_ok());
            }
            applied += chunk.len() as u64;
        }
        elapsed = start.elapsed();
        stop.store(true, Ordering::Relaxed);
        traffic_time = t.join().unwrap_or_default();
    });
    UpdateCost {
        entries_per_write,
        entries_per_sec: applied as f64 / elapsed.as_secs_f64(),
        traffic_mpps: mpps(traffic.load(Ordering::Relaxed), traffic_time),
    }
}

/// Resident set size of this process, from /proc (Linux only).
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // x86-64 and aarch64 Linux default: 4 KiB pages.
    Some(pages * 4096)
}

/// What `beamer bench` measures.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// The workload.
    pub spec: WorkloadSpec,
    /// Batch sizes to measure.
    pub batch_sizes: Vec<BatchSize>,
    /// Packets per measured run.
    pub packets: u64,
    /// Alternating pipeline/floor runs per batch size (best kept).
    pub rounds: u32,
    /// Entries per write for the update-cost measurement.
    pub update_sizes: Vec<usize>,
    /// How long each update-cost measurement runs.
    pub update_duration: Duration,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            spec: WorkloadSpec::default(),
            batch_sizes: [1, 32, 256]
                .into_iter()
                .filter_map(|n| BatchSize::new(n).ok())
                .collect(),
            packets: 20_000_000,
            rounds: 3,
            update_sizes: vec![1, 64, 4096],
            update_duration: Duration::from_secs(1),
        }
    }
}

/// Everything `beamer bench` prints.
#[derive(Debug, Clone)]
pub struct BenchReport {
    /// The workload.
    pub spec: WorkloadSpec,
    /// Throughput per batch size.
    pub throughput: Vec<Throughput>,
    /// Table and counter memory, counted from the data structures.
    pub memory: MemoryReport,
    /// Growth of the process's resident memory while the tables were
    /// built and first used (Linux only).
    pub resident_growth: Option<u64>,
    /// Update cost per write size.
    pub updates: Vec<UpdateCost>,
}

/// Runs the whole benchmark.
pub fn run(opts: &BenchOptions) -> BenchReport {
    let pool_only = Workload::build_pool(&opts.spec);
    let before = resident_bytes();
    let switch = Workload::build_switch(&opts.spec);
    let w = Workload {
        spec: opts.spec.clone(),
        switch,
        pool: pool_only,
    };
    let mut throughput = Vec::new();
    for &batch in &opts.batch_sizes {
        throughput.push(measure_throughput(&w, batch, opts.packets, opts.rounds));
    }
    let after = resident_bytes();
    let memory = w.switch.memory();
    let updates = opts
        .update_sizes
        .iter()
        .map(|&n| measure_updates(&w, n, opts.update_duration, BatchSize::DEFAULT))
        .collect();
    BenchReport {
        spec: opts.spec.clone(),
        throughput,
        memory,
        resident_growth: before.zip(after).map(|(b, a)| a.saturating_sub(b)),
        updates,
    }
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.spec;
        let m = &self.memory;
        writeln!(
            f,
            "workload: {}-byte TCP frames, {} clients, {} VIPs x {} buckets, {} servers, {} VIP entries, {} routes",
            s.frame_len, s.clients, s.vips, s.buckets, s.servers, m.vip_entries, m.routes
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "{:>6}  {:>10}  {:>12}  {:>6}",
            "batch", "Mpps", "floor Mpps", "ratio"
        )?;
        for t in &self.throughput {
            writeln!(
                f,
                "{:>6}  {:>10.2}  {:>12.2}  {:>6.2}",
                t.batch.get(),
                t.mpps,
                t.floor_mpps,
                t.ratio()
            )?;
        }
        writeln!(f)?;
        let per = |bytes: usize, n: usize| if n == 0 { 0.0 } else { bytes as f64 / n as f64 };
        let cells = m.bucket_entries.max(1) as f64;
        writeln!(
            f,
            "{:<14} {:>9} {:>12} {:>14}",
            "table", "entries", "bytes", "bytes/entry"
        )?;
        for (name, n, bytes) in [
            ("vip", m.vip_entries, m.vip_bytes),
            ("buckets", m.bucket_entries, m.bucket_bytes),
            ("routes", m.routes, m.route_bytes),
        ] {
            writeln!(f, "{name:<14} {n:>9} {bytes:>12} {:>14.1}", per(bytes, n))?;
        }
        writeln!(
            f,
            "{:<14} {:>9} {:>12} {:>14.1}",
            "counters/wkr",
            m.bucket_entries + m.vip_entries,
            m.counter_bytes_per_worker,
            m.counter_bytes_per_worker as f64 / cells
        )?;
        writeln!(
            f,
            "resident: tables {:.1} MiB, with {} workers' counters {:.1} MiB{}",
            m.table_bytes() as f64 / 1048576.0,
            m.workers,
            m.total_bytes() as f64 / 1048576.0,
            match self.resident_growth {
                Some(g) => format!(", process RSS grew {:.1} MiB", g as f64 / 1048576.0),
                None => String::new(),
            }
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "{:>14}  {:>14}  {:>14}",
            "entries/write", "entries/s", "traffic Mpps"
        )?;
        for u in &self.updates {
            writeln!(
                f,
                "{:>14}  {:>14.0}  {:>14.2}",
                u.entries_per_write, u.entries_per_sec, u.traffic_mpps
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use beamer_pipeline::DropReason;

    fn small() -> WorkloadSpec {
        WorkloadSpec {
            clients: 4096,
            buckets: 1024,
            servers: 100,
            vip_entries: 20,
            routes: 50,
            ..Default::default()
        }
    }

    #[test]
    fn workload_tables_have_the_requested_sizes() {
        let spec = WorkloadSpec { vips: 2, ..small() };
        let w = Workload::build(&spec);
        let m = w.switch().memory();
        assert_eq!(m.vip_entries, 20);
        assert_eq!(m.bucket_entries, 2 * 1024);
        assert_eq!(m.routes, 50);
    }

    #[test]
    fn every_workload_frame_is_encapsulated() {
        let w = Workload::build(&small());
        let mut worker = w.switch().worker();
        let mut rx = w.rx();
        let mut b = Batch::new(BatchSize::new(256).unwrap(), 64);
        pipeline_loop(&mut worker, &mut rx, &mut b, 4096);
        let totals = w.switch().totals();
        assert_eq!(totals.received.packets, 4096);
        assert_eq!(totals.forwarded.packets, 4096);
        assert!(
            w.switch().drop_counters().iter().all(|c| c.packets == 0),
            "{:?}",
            DropReason::ALL
        );
        // The last batch is still in `b`: all 100 bytes long (64 + 36).
        assert!(b.iter().all(|p| p.frame.len() == 100));
    }

    #[test]
    fn floor_writes_the_outer_bytes() {
        let w = Workload::build(&small());
        let mut rx = w.rx();
        let mut b = Batch::new(BatchSize::new(4).unwrap(), 64);
        floor_loop(&mut rx, &mut b, 4);
        assert!(b.forwarded().all(|(_, f)| f.len() == 100 && f[14] == 0x49));
    }

    #[test]
    fn updates_apply_while_traffic_runs() {
        let w = Workload::build(&small());
        let cost = measure_updates(&w, 16, Duration::from_millis(50), BatchSize::DEFAULT);
        assert!(cost.entries_per_sec > 0.0 && cost.traffic_mpps > 0.0);
    }
}
