//! The simulated world: clients, the switch, the controller and the
//! servers, advanced in ticks of virtual time.

use crate::plan::{self, Plan, SERVICE_PORT, TUNNEL_SRC, VIP, VIP_ID};
use crate::rng::Rng;
use crate::server::{self, Answer, Delivery, SimServer};
use crate::{DemoConfig, DemoError, Event, RunSummary, ServerLoad, Totals};
use beamer_controller::alloc::scenario::{Step, StepOutcome};
use beamer_controller::alloc::{AllocConfig, Allocator, Change, Commit};
use beamer_host::craft::TcpSegment;
use beamer_host::{Flow, HostConfig, Time};
use beamer_pipeline::entries::{
    Entry, EntryKey, RouteAction, RouteKey, SwitchConfig, Update, VipAction, VipKey,
};
use beamer_pipeline::p4rt::{Pipeline, update_to_p4};
use beamer_pipeline::wire::MacAddr;
use beamer_pipeline::wire::ethernet::{self, ETHERTYPE_IPV4};
use beamer_pipeline::wire::l4::{TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN};
use beamer_pipeline::{PipelineParams, Target};
use beamer_softswitch::{Batch, BatchSize, Switch, TableKind, Verdict, Worker};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::net::Ipv4Addr;

/// Virtual time 0, in Unix seconds (change times and host clocks are
/// Unix seconds).
const BASE_SECS: u32 = 1_700_000_000;
/// Granularity of the simulation: events in one tick share a switch batch.
const TICK_MS: u64 = 10;
/// Client to server and back: the next packet of a handshake waits this.
const RTT_MS: u64 = 20;
/// Initial connections open during this time.
const RAMP_MS: u64 = 30_000;
/// How often progress is reported.
const PROGRESS_MS: u64 = 30_000;
/// The switch's client-facing and server-facing ports.
const CLIENT_PORT: u16 = 0;
const SERVER_PORT: u16 = 1;
const SWITCH_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
const ROUTER_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);
const FABRIC_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x03]);
/// What each data packet carries.
const PAYLOAD: &[u8; 32] = b"beamer-demo: 32 bytes of payload";

/// A TCP subflow as its client sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SubState {
    /// Nothing sent yet.
    New,
    /// SYN sent, no answer yet.
    SynSent,
    /// Accepted by a server.
    Open,
    /// FIN delivered.
    Closed,
    /// Reset, or its packet was lost for good.
    Dead,
}

#[derive(Debug, Clone, Copy)]
struct Subflow {
    flow: Flow,
    seq: u32,
    state: SubState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnState {
    Active,
    Closing,
    Done,
}

/// A client connection: one subflow, or two for MPTCP (the second to the
/// per-server port its server announced).
#[derive(Debug)]
struct Conn {
    mptcp: bool,
    subs: Vec<Subflow>,
    /// The server that accepted the first subflow.
    owner: Option<Ipv4Addr>,
    /// The client's second address, for an MPTCP join.
    join_client: Ipv4Addr,
    ends_at: u64,
    state: ConnState,
    next_sub: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Syn,
    Join,
    Data,
    Fin,
}

/// A packet in the switch batch, and whose it is.
#[derive(Debug, Clone, Copy)]
struct Sent {
    conn: u32,
    sub: usize,
    kind: Kind,
}

pub(crate) struct World {
    cfg: DemoConfig,
    chaining: bool,
    plan: Plan,
    alloc: Allocator,
    switch: Switch,
    /// The switch's pipeline, as its P4Runtime server decodes writes.
    pipeline: Pipeline,
    worker: Worker,
    batch: Batch,
    sent: Vec<Sent>,
    frame: Vec<u8>,
    packet: Vec<u8>,
    servers: HashMap<Ipv4Addr, SimServer>,
    conns: Vec<Conn>,
    flows: HashSet<Flow>,
    queue: BinaryHeap<Reverse<(u64, u32)>>,
    rng: Rng,
    /// Virtual milliseconds since the start.
    now: u64,
    totals: Totals,
    steps: Vec<StepOutcome>,
    /// Per-server port entries' packet counters as last read.
    port_counts: BTreeMap<VipKey, u64>,
    /// Counts of per-server port entries deleted since.
    port_counts_retired: u64,
}

fn switch_error(update: &Update, e: impl ToString) -> DemoError {
    DemoError::Switch {
        update: format!("{update:?}"),
        error: e.to_string(),
    }
}

impl World {
    pub(crate) fn new(cfg: &DemoConfig, chaining: bool) -> Result<World, DemoError> {
        let params = PipelineParams {
            buckets: cfg.buckets(),
            ..PipelineParams::default()
        };
        let switch = Switch::new(params).map_err(|e| DemoError::Config(e.to_string()))?;
        // The server network, and the switch's initial configuration.
        let setup = [
            Update::Insert(Entry::Route(
                RouteKey::new(Ipv4Addr::new(10, 0, 0, 0), 16).expect("a valid prefix"),
                RouteAction {
                    port: SERVER_PORT,
                    dst_mac: FABRIC_MAC,
                    src_mac: SWITCH_MAC,
                },
            )),
            Update::SetConfig(SwitchConfig {
                tunnel_src: TUNNEL_SRC,
                generation: 0,
            }),
        ];
        switch
            .apply_all(&setup)
            .map_err(|(i, e)| switch_error(&setup[i], e))?;
        let mut ac = AllocConfig::new(&params);
        ac.daisy_timeout = cfg.daisy_timeout_secs;
        let alloc = Allocator::new(ac).map_err(|source| DemoError::Alloc {
            label: "configuration".into(),
            source,
        })?;
        let worker = switch.worker();
        Ok(World {
            cfg: cfg.clone(),
            chaining,
            plan: plan::plan(cfg),
            alloc,
            switch,
            pipeline: Pipeline::new(params, Target::V1model),
            worker,
            batch: Batch::new(BatchSize::MAX, 256),
            sent: Vec::with_capacity(BatchSize::MAX.get()),
            frame: Vec::with_capacity(256),
            packet: Vec::with_capacity(256),
            servers: HashMap::new(),
            conns: Vec::new(),
            flows: HashSet::new(),
            queue: BinaryHeap::new(),
            rng: Rng::new(cfg.seed),
            now: 0,
            totals: Totals::default(),
            steps: Vec::new(),
            port_counts: BTreeMap::new(),
            port_counts_retired: 0,
        })
    }

    pub(crate) fn run(
        mut self,
        progress: &mut dyn FnMut(Event<'_>),
    ) -> Result<RunSummary, DemoError> {
        let steps = self.plan.steps.clone();
        let times = self.plan.times();
        let end = u64::from(self.plan.end) * 1000;
        for _ in 0..self.cfg.connections {
            let at = self.rng.range(0, RAMP_MS - 1);
            self.open(at);
        }
        let mut next_step = 0;
        let mut next_progress = PROGRESS_MS;
        while self.now <= end {
            while next_step < steps.len() && u64::from(times[next_step]) * 1000 <= self.now {
                self.step(&steps[next_step], progress)?;
                next_step += 1;
            }
            self.expire(progress)?;
            self.tick();
            if self.now >= next_progress {
                progress(Event::Tick {
                    t: self.secs(),
                    totals: &self.totals,
                });
                next_progress += PROGRESS_MS;
            }
            self.now += TICK_MS;
        }
        self.read_port_counters();
        let server_port_packets = self.port_counts_retired + self.port_counts.values().sum::<u64>();
        Ok(RunSummary {
            chaining: self.chaining,
            totals: self.totals,
            load: self.load(),
            steps: self.steps,
            server_port_packets,
            virtual_secs: self.plan.end,
        })
    }

    fn secs(&self) -> u32 {
        (self.now / 1000) as u32
    }

    fn unix_secs(&self) -> u32 {
        BASE_SECS + self.secs()
    }

    fn host_time(&self) -> Time {
        Time::from_unix_millis(u64::from(BASE_SECS) * 1000 + self.now)
    }

    // ---- the operator and the controller ----

    fn step(&mut self, step: &Step, progress: &mut dyn FnMut(Event<'_>)) -> Result<(), DemoError> {
        // A new server is up before any bucket names it.
        for c in &step.changes {
            if let Change::AddServer { server, .. } = c {
                self.add_server(server.dip, server.port.unwrap_or(0))?;
            }
        }
        let now = self.unix_secs();
        let commit = self
            .alloc
            .commit(&step.changes, now)
            .map_err(|source| DemoError::Alloc {
                label: step.label.clone(),
                source,
            })?;
        self.write(&commit)?;
        for c in &step.changes {
            if let Change::RemoveServer { dip, .. } = c {
                // Its stack is gone with it.
                self.servers.remove(dip);
            }
        }
        self.record(step.label.clone(), commit, progress);
        Ok(())
    }

    fn expire(&mut self, progress: &mut dyn FnMut(Event<'_>)) -> Result<(), DemoError> {
        let now = self.unix_secs();
        if self.alloc.next_expiry().is_none_or(|t| t > now) {
            return Ok(());
        }
        let commit = self.alloc.expire(now).map_err(|source| DemoError::Alloc {
            label: "expiry".into(),
            source,
        })?;
        if let Some(c) = commit {
            self.write(&c)?;
            self.record(
                format!("chains expire ({} buckets)", c.report.expired),
                c,
                progress,
            );
        }
        Ok(())
    }

    fn record(&mut self, label: String, commit: Commit, progress: &mut dyn FnMut(Event<'_>)) {
        self.steps.push(StepOutcome {
            label,
            now: self.unix_secs(),
            commit: Some(commit),
        });
        let load = self.load();
        progress(Event::Commit {
            t: self.secs(),
            outcome: self.steps.last().expect("just pushed"),
            load: &load,
            totals: &self.totals,
        });
    }

    fn add_server(&mut self, dip: Ipv4Addr, port: u16) -> Result<(), DemoError> {
        let mut hc = HostConfig::new(dip, vec![VIP], vec![TUNNEL_SRC], self.cfg.bucket_bits);
        hc.server_ports = vec![port];
        hc.daisy_timeout_secs = self.cfg.daisy_timeout_secs;
        hc.chaining = self.chaining;
        let s = SimServer::new(hc).map_err(|source| DemoError::Host { dip, source })?;
        self.servers.insert(dip, s);
        Ok(())
    }

    /// Writes a commit to the switch as the controller does over
    /// P4Runtime: batch after batch, each whole, then the generation.
    fn write(&mut self, commit: &Commit) -> Result<(), DemoError> {
        self.read_port_counters();
        let g = Update::SetConfig(SwitchConfig {
            tunnel_src: TUNNEL_SRC,
            generation: commit.generation,
        });
        for batch in commit.diff.batches.iter().chain([&vec![g]]) {
            let batch = self.over_p4runtime(batch)?;
            for (u, r) in batch.iter().zip(self.switch.apply(&batch)) {
                r.map_err(|e| switch_error(u, e))?;
            }
        }
        // Counts of per-server ports that were just deleted.
        let present: HashSet<VipKey> = self
            .switch
            .entries(TableKind::Vip)
            .into_iter()
            .filter_map(|e| match e {
                Entry::Vip(k, _) => Some(k),
                _ => None,
            })
            .collect();
        let gone: Vec<VipKey> = self
            .port_counts
            .keys()
            .filter(|k| !present.contains(k))
            .copied()
            .collect();
        for k in gone {
            self.port_counts_retired += self.port_counts.remove(&k).unwrap_or(0);
        }
        Ok(())
    }

    /// A batch as the switch's P4Runtime server gets it: each update
    /// encoded as a `p4.v1.Update` and decoded against the pipeline.
    fn over_p4runtime(&self, batch: &[Update]) -> Result<Vec<Update>, DemoError> {
        batch
            .iter()
            .map(|u| {
                self.pipeline
                    .write_from_p4(&update_to_p4(u))
                    .map_err(|e| switch_error(u, e))?
                    .to_update()
                    .ok_or_else(|| switch_error(u, "decoded as a counter write"))
            })
            .collect()
    }

    fn read_port_counters(&mut self) {
        for e in self.switch.entries(TableKind::Vip) {
            let Entry::Vip(k, VipAction::ToServer { .. }) = e else {
                continue;
            };
            if let Ok(c) = self.switch.counter(&EntryKey::Vip(k)) {
                self.port_counts.insert(k, c.packets);
            }
        }
    }

    /// Each server's share now: buckets as the switch holds them.
    fn load(&self) -> Vec<ServerLoad> {
        let mut buckets: BTreeMap<Ipv4Addr, u32> = BTreeMap::new();
        for e in self.switch.entries(TableKind::Buckets) {
            if let Entry::Bucket(_, a) = e {
                *buckets.entry(a.dip).or_default() += 1;
            }
        }
        let Some(vip) = self.alloc.vip(VIP_ID) else {
            return Vec::new();
        };
        vip.servers()
            .map(|s| {
                let sim = self.servers.get(&s.dip);
                ServerLoad {
                    dip: s.dip,
                    state: s.state,
                    weight: s.weight,
                    buckets: buckets.get(&s.dip).copied().unwrap_or(0),
                    connections: sim.map_or(0, |x| x.owned),
                    sockets: sim.map_or(0, |x| x.sockets.len() as u32),
                }
            })
            .collect()
    }

    // ---- clients ----

    fn client_addr(&mut self) -> Ipv4Addr {
        // 100.64.0.0/10: addresses no server or VIP uses.
        Ipv4Addr::from(0x6440_0000 | (self.rng.next_u32() & 0x003f_ffff))
    }

    fn new_flow(&mut self, client: Ipv4Addr, vip_port: u16) -> Flow {
        loop {
            let f = Flow {
                client,
                client_port: self.rng.range(1024, 65_535) as u16,
                vip: VIP,
                vip_port,
            };
            if self.flows.insert(f) {
                return f;
            }
        }
    }

    fn open(&mut self, at: u64) {
        let client = self.client_addr();
        let flow = self.new_flow(client, SERVICE_PORT);
        let mptcp = self.rng.percent(self.cfg.mptcp_percent);
        let life = self.rng.range(
            u64::from(self.cfg.min_lifetime_secs) * 1000,
            u64::from(self.cfg.max_lifetime_secs) * 1000,
        );
        let join_client = self.client_addr();
        let seq = self.rng.next_u32();
        let id = self.conns.len() as u32;
        self.conns.push(Conn {
            mptcp,
            subs: vec![Subflow {
                flow,
                seq,
                state: SubState::New,
            }],
            owner: None,
            join_client,
            ends_at: at + life,
            state: ConnState::Active,
            next_sub: 0,
        });
        self.totals.opened += 1;
        self.totals.live += 1;
        self.totals.mptcp_opened += u64::from(mptcp);
        self.queue.push(Reverse((at, id)));
    }

    /// Runs every event of this tick, in one or more switch batches.
    fn tick(&mut self) {
        let end = self.now + TICK_MS;
        while let Some(&Reverse((t, id))) = self.queue.peek() {
            if t >= end {
                break;
            }
            self.queue.pop();
            self.act(id, t);
            if self.batch.len() + 2 > self.batch.capacity() {
                self.flush();
            }
        }
        self.flush();
    }

    /// A connection's next move at time `t`.
    fn act(&mut self, id: u32, t: u64) {
        let c = &self.conns[id as usize];
        if c.state != ConnState::Active {
            return;
        }
        let first = c.subs[0].state;
        let (ends_at, mptcp, owner, join_client) = (c.ends_at, c.mptcp, c.owner, c.join_client);
        let open: Vec<usize> = (0..c.subs.len())
            .filter(|&i| c.subs[i].state == SubState::Open)
            .collect();
        let joined = c.subs.len() > 1;
        let next_sub = c.next_sub;
        match first {
            SubState::New => {
                self.send(id, 0, Kind::Syn);
                self.queue.push(Reverse((t + RTT_MS, id)));
                return;
            }
            SubState::SynSent => {
                self.queue.push(Reverse((t + RTT_MS, id)));
                return;
            }
            _ => {}
        }
        if t >= ends_at {
            self.conns[id as usize].state = ConnState::Closing;
            for i in open {
                self.send(id, i, Kind::Fin);
            }
            self.settle(id);
            return;
        }
        if let (true, false, SubState::Open, Some(owner)) = (mptcp, joined, first, owner) {
            // The server announced ADD_ADDR(VIP, its per-server port); the
            // client joins from its second address.
            let port = plan::server_port(owner.octets()[3]);
            let flow = self.new_flow(join_client, port);
            let seq = self.rng.next_u32();
            self.conns[id as usize].subs.push(Subflow {
                flow,
                seq,
                state: SubState::New,
            });
            self.send(id, 1, Kind::Join);
            self.queue.push(Reverse((t + RTT_MS, id)));
            return;
        }
        // Round robin over the open subflows.
        if let Some(&i) = open.iter().find(|&&i| i >= next_sub).or(open.first()) {
            self.conns[id as usize].next_sub = i + 1;
            self.send(id, i, Kind::Data);
        }
        let max = u64::from(self.cfg.max_gap_ms);
        let gap = self.rng.range(max / 4, max);
        self.queue.push(Reverse((t + gap, id)));
    }

    /// Builds a client packet and puts it in the switch batch.
    fn send(&mut self, id: u32, sub: usize, kind: Kind) {
        let s = &mut self.conns[id as usize].subs[sub];
        let (flags, payload): (u8, &[u8]) = match kind {
            Kind::Syn | Kind::Join => (TCP_SYN, &[]),
            Kind::Data => (TCP_ACK | TCP_PSH, PAYLOAD),
            Kind::Fin => (TCP_ACK | TCP_FIN, &[]),
        };
        let seg = TcpSegment {
            src: s.flow.client,
            src_port: s.flow.client_port,
            dst: s.flow.vip,
            dst_port: s.flow.vip_port,
            seq: s.seq,
            ack: 1,
            flags,
            payload: payload.to_vec(),
        };
        s.seq = s
            .seq
            .wrapping_add(payload.len() as u32)
            .wrapping_add(u32::from(flags & (TCP_SYN | TCP_FIN) != 0));
        if matches!(kind, Kind::Syn | Kind::Join) {
            s.state = SubState::SynSent;
        }
        self.frame.clear();
        self.frame.extend_from_slice(&SWITCH_MAC.0);
        self.frame.extend_from_slice(&ROUTER_MAC.0);
        self.frame.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        self.frame.extend_from_slice(&seg.to_ipv4());
        self.batch
            .push(&self.frame, CLIENT_PORT)
            .expect("the batch has room and the frame fits");
        self.sent.push(Sent {
            conn: id,
            sub,
            kind,
        });
        self.totals.packets += 1;
    }

    /// Runs the batch through the switch and hands each output packet to
    /// the server it is addressed to.
    fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        self.worker.process_batch(&mut self.batch);
        let now = self.host_time();
        for i in 0..self.batch.len() {
            let p = self.batch.get(i).expect("i < len");
            let delivery = match p.verdict {
                Some(Verdict::Forward { port }) => {
                    debug_assert_eq!(port, SERVER_PORT);
                    self.packet.clear();
                    self.packet
                        .extend_from_slice(p.frame.get(ethernet::HEADER_LEN..).unwrap_or(&[]));
                    let s = self.sent[i];
                    let join = (s.kind == Kind::Join).then_some(s.conn);
                    server::deliver(
                        &mut self.servers,
                        &mut self.packet,
                        now,
                        join,
                        &mut self.totals.chained,
                    )
                }
                _ => {
                    self.totals.switch_drops += 1;
                    self.fail(self.sent[i]);
                    continue;
                }
            };
            self.outcome(self.sent[i], delivery);
        }
        self.batch.clear();
        self.sent.clear();
    }

    fn outcome(&mut self, s: Sent, d: Delivery) {
        match d {
            Delivery::Stack { dip, answer } => match (s.kind, answer) {
                (Kind::Syn | Kind::Join, Answer::Accepted) => {
                    let c = &mut self.conns[s.conn as usize];
                    c.subs[s.sub].state = SubState::Open;
                    if s.kind == Kind::Join {
                        self.totals.joins += 1;
                    } else {
                        c.owner = Some(dip);
                        let mptcp = c.mptcp;
                        if let Some(srv) = self.servers.get_mut(&dip) {
                            srv.owned += 1;
                            if mptcp {
                                srv.add_token(s.conn);
                            }
                        }
                    }
                }
                (Kind::Fin, Answer::Closed) => {
                    self.conns[s.conn as usize].subs[s.sub].state = SubState::Closed;
                    self.settle(s.conn);
                }
                (_, Answer::Reset) => self.fail(s),
                // Data to a socket the stack has.
                _ => {}
            },
            Delivery::HostDrop(_) | Delivery::TooManyHops => {
                self.totals.host_drops += 1;
                self.fail(s);
            }
            Delivery::NoServer(_) => {
                self.totals.to_removed_server += 1;
                self.fail(s);
            }
        }
    }

    /// A subflow was reset or lost its packet. (A lost packet would take
    /// the same path when retransmitted, so the subflow is given up.)
    fn fail(&mut self, s: Sent) {
        let c = &mut self.conns[s.conn as usize];
        if c.state == ConnState::Done {
            return;
        }
        c.subs[s.sub].state = SubState::Dead;
        let mptcp = c.mptcp;
        if !self.settle(s.conn) && mptcp {
            self.totals.subflow_resets += 1;
        }
    }

    /// Ends the connection if nothing is pending any more; true if it
    /// broke.
    fn settle(&mut self, id: u32) -> bool {
        let c = &self.conns[id as usize];
        let pending = c
            .subs
            .iter()
            .any(|s| matches!(s.state, SubState::New | SubState::SynSent | SubState::Open));
        let closed = c.subs.iter().any(|s| s.state == SubState::Closed);
        match c.state {
            ConnState::Done => false,
            _ if !pending && !closed => {
                self.end(id, true);
                true
            }
            ConnState::Closing if !pending => {
                self.end(id, false);
                false
            }
            _ => false,
        }
    }

    fn end(&mut self, id: u32, broken: bool) {
        let c = &mut self.conns[id as usize];
        c.state = ConnState::Done;
        let flows: Vec<Flow> = c.subs.iter().map(|s| s.flow).collect();
        let (mptcp, owner) = (c.mptcp, c.owner);
        self.totals.live -= 1;
        if broken {
            if mptcp {
                self.totals.broken_mptcp += 1;
            } else {
                self.totals.broken_tcp += 1;
            }
            // The client gave up; whatever socket a server still holds
            // for it times out there.
            for srv in self.servers.values_mut() {
                for f in &flows {
                    srv.forget(f, None);
                }
            }
        } else {
            self.totals.completed += 1;
        }
        if let Some(srv) = owner.and_then(|o| self.servers.get_mut(&o)) {
            srv.owned -= 1;
            srv.forget(&flows[0], Some(id));
        }
        for f in &flows {
            self.flows.remove(f);
        }
        if self.now < u64::from(self.plan.open_until) * 1000 {
            let at = self.now + TICK_MS + self.rng.range(0, 999);
            self.open(at);
        }
    }
}
