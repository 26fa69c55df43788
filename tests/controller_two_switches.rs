//! The controller drives two software switches over P4Runtime.
//!
//! Servers are added, drained, re-weighted and removed through the admin
//! API (what `beamer ctl` uses). After each step every packet of 2,000
//! fixed clients leaves EACH switch towards the server the allocation
//! says, with the expected previous DIP, change time and generation in the
//! option; and each step moved what it should (new server gains only,
//! drained and removed servers get nothing, nothing chains to a removed
//! server). A command that would leave the VIP without a server is refused
//! with the allocator's explanation. Then one switch is restarted empty:
//! the controller notices, pushes the pipeline, and fills the tables; the
//! switch forwards every client exactly as before, byte for byte the same
//! frames as the other switch.
//!
//! ```text
//!  client 198.18.a.b:port ──► [mux A] ──┐      outer: 10.0.0.1 → dip, IHL 9,
//!                         ──► [mux B] ──┴──► option 0x61 (prev_dip, change
//!                                              time, generation); inner as sent
//! ```

use beamer_controller::admin_client::{AdminClient, ClientError};
use beamer_controller::api;
use beamer_controller::bench::{self, MUX_MAC, SERVER_MAC, SERVER_PORT, TUNNEL_SRC, VIP};
use beamer_controller::config::Config;
use beamer_controller::plan::Desired;
use beamer_controller::service::{self, unix_now};
use beamer_controller::switch::{SwitchCounters, SyncState};
use beamer_pipeline::PipelineParams;
use beamer_pipeline::entries::BucketKey;
use beamer_pipeline::hash::bucket_of;
use beamer_pipeline::wire::ethernet::{ETHERTYPE_IPV4, HEADER_LEN as ETH_LEN};
use beamer_pipeline::wire::ipv4::{PROTO_IPIP, PROTO_TCP};
use beamer_pipeline::wire::l4::TCP_SYN;
use beamer_pipeline::wire::option::OPTION_TYPE;
use beamer_pipeline::wire::{BeamerOption, EthernetFrame, Ipv4Packet, TcpHeader};
use beamer_softswitch::p4rt::{self, ServerHandle};
use beamer_softswitch::{Batch, Switch};
use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

const CLIENTS: usize = 2000;
const BUCKET_BITS: u8 = 12;
const WAIT: Duration = Duration::from_secs(60);

fn dip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 1, 0, n)
}

/// Client `i`: a source address and port.
fn client(i: usize) -> (Ipv4Addr, u16) {
    let i = i as u32;
    (
        Ipv4Addr::new(198, 18, (i / 200) as u8, (i % 200 + 1) as u8),
        1024 + ((i * 7919) % 60000) as u16,
    )
}

/// A TCP SYN from client `i` to VIP:80, as it arrives at a mux.
fn syn(i: usize) -> Vec<u8> {
    let (src, sport) = client(i);
    let mut f = vec![0u8; ETH_LEN + 20 + 20];
    f[0..6].copy_from_slice(&MUX_MAC.0);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0x09, 0x09]);
    f[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    {
        let mut ip = Ipv4Packet::new_checked(&mut f[ETH_LEN..]).unwrap();
        ip.set_version_ihl(4, 5);
        ip.set_total_len(40);
        ip.set_ident(i as u16);
        ip.set_ttl(64);
        ip.set_protocol(PROTO_TCP);
        ip.set_src(src);
        ip.set_dst(VIP);
        ip.fill_checksum();
    }
    let mut tcp = TcpHeader::new_checked(&mut f[ETH_LEN + 20..]).unwrap();
    tcp.set_src_port(sport);
    tcp.set_dst_port(80);
    tcp.set_flags(TCP_SYN);
    f[ETH_LEN + 20 + 12] = 5 << 4;
    f
}

/// What the test reads from one output frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Out {
    port: u16,
    dip: Ipv4Addr,
    prev_dip: Ipv4Addr,
    change_time: u32,
    generation: u32,
}

/// Runs every client's SYN through `switch`; checks the frame's fixed
/// parts and returns what varies, with the raw frames.
fn run_clients(switch: &Switch) -> (Vec<Out>, Vec<Vec<u8>>) {
    let mut worker = switch.worker();
    let mut batch = Batch::with_defaults();
    let mut outs = Vec::with_capacity(CLIENTS);
    let mut frames = Vec::with_capacity(CLIENTS);
    let mut inputs = Vec::new();
    let mut flush = |batch: &mut Batch, inputs: &mut Vec<Vec<u8>>| {
        worker.process_batch(batch);
        for (p, input) in batch.iter().zip(inputs.iter()) {
            let port = p
                .verdict
                .and_then(|v| v.egress_port())
                .unwrap_or_else(|| panic!("dropped: {:?}", p.verdict));
            let eth = EthernetFrame::new_checked(p.frame).unwrap();
            assert_eq!(eth.dst(), SERVER_MAC);
            assert_eq!(eth.src(), MUX_MAC);
            assert_eq!(eth.ethertype(), ETHERTYPE_IPV4);
            let outer = Ipv4Packet::new_checked(eth.payload()).unwrap();
            assert_eq!(outer.ihl(), 9, "bucket path: outer header with the option");
            assert_eq!(outer.protocol(), PROTO_IPIP);
            assert_eq!(outer.src(), TUNNEL_SRC);
            assert_eq!(outer.ttl(), 64);
            assert!(outer.checksum_ok());
            assert_eq!(usize::from(outer.total_len()), 40 + 36);
            let opt = BeamerOption::new_checked(outer.options()).unwrap();
            assert_eq!(opt.option_type(), OPTION_TYPE);
            // The inner packet is the client's, untouched.
            assert_eq!(outer.payload(), &input[ETH_LEN..]);
            outs.push(Out {
                port,
                dip: outer.dst(),
                prev_dip: opt.prev_dip(),
                change_time: opt.change_time(),
                generation: opt.generation(),
            });
            frames.push(p.frame.to_vec());
        }
        batch.clear();
        inputs.clear();
    };
    for i in 0..CLIENTS {
        let f = syn(i);
        batch.push(&f, 0).unwrap();
        inputs.push(f);
        if batch.is_full() {
            flush(&mut batch, &mut inputs);
        }
    }
    if !batch.is_empty() {
        flush(&mut batch, &mut inputs);
    }
    (outs, frames)
}

/// What the allocation says for every client.
fn expected(d: &Desired) -> Vec<Out> {
    (0..CLIENTS)
        .map(|i| {
            let (src, sport) = client(i);
            let key = BucketKey {
                vip_id: 0,
                bucket: bucket_of(src, sport, BUCKET_BITS),
            };
            let a = d.buckets[&key];
            Out {
                port: SERVER_PORT,
                dip: a.dip,
                prev_dip: a.prev_dip,
                change_time: a.change_time,
                generation: d.generation,
            }
        })
        .collect()
}

struct Mux {
    switch: Switch,
    server: Option<ServerHandle>,
    addr: SocketAddr,
}

impl Mux {
    fn start(addr: SocketAddr) -> Mux {
        let switch = Switch::new(PipelineParams::default()).unwrap();
        let server = p4rt::builder(switch.clone())
            .device_id(1)
            .spawn(addr)
            .unwrap();
        Mux {
            addr: server.local_addr(),
            switch,
            server: Some(server),
        }
    }
}

fn config(a: SocketAddr, b: SocketAddr) -> Config {
    let text = bench::config_text(
        "election_id = 3\nbackoff_initial = \"100ms\"\nbackoff_max = \"500ms\"",
        1 << BUCKET_BITS,
        &[(dip(1), 9001), (dip(2), 9002), (dip(3), 9003)],
        &[("mux-a", a), ("mux-b", b)],
    );
    Config::parse(&text, Path::new("two-switches.toml"), Path::new("."))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The state of the test between steps.
struct Scene {
    rt: tokio::runtime::Runtime,
    handle: service::Handle,
    admin: AdminClient,
    muxes: [Mux; 2],
}

impl Scene {
    /// Waits until both switches hold `generation`, then checks every
    /// client on each switch against the allocation; returns the outputs.
    fn check(&self, generation: u32, step: &str) -> Vec<Out> {
        assert!(
            self.rt.block_on(self.handle.wait_in_sync(generation, WAIT)),
            "{step}: switches not at generation {generation}: {:#?}",
            self.handle.switch_statuses()
        );
        let d = self.handle.desired();
        assert_eq!(d.generation, generation, "{step}");
        let want = expected(&d);
        let (a, frames_a) = run_clients(&self.muxes[0].switch);
        let (b, frames_b) = run_clients(&self.muxes[1].switch);
        for (i, w) in want.iter().enumerate() {
            assert_eq!(a[i], *w, "{step}: client {i} {:?} on mux A", client(i));
            assert_eq!(b[i], *w, "{step}: client {i} {:?} on mux B", client(i));
        }
        assert_eq!(
            frames_a, frames_b,
            "{step}: both muxes write the same bytes"
        );
        a
    }

    fn status(&self) -> api::Status {
        self.admin.status().unwrap()
    }
}

fn per_server(outs: &[Out]) -> BTreeMap<Ipv4Addr, usize> {
    let mut m = BTreeMap::new();
    for o in outs {
        *m.entry(o.dip).or_default() += 1;
    }
    m
}

fn buckets_per_server(status: &api::Status) -> HashMap<Ipv4Addr, u32> {
    status.vips[0]
        .servers
        .iter()
        .map(|s| (s.dip, s.buckets))
        .collect()
}

#[test]
fn the_controller_keeps_two_software_switches_equal_to_the_allocation() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let muxes = [
        Mux::start("127.0.0.1:0".parse().unwrap()),
        Mux::start("127.0.0.1:0".parse().unwrap()),
    ];
    let running = rt
        .block_on(service::start(config(muxes[0].addr, muxes[1].addr)))
        .unwrap();
    let mut scene = Scene {
        handle: running.handle.clone(),
        admin: AdminClient::new(running.admin_addr.to_string()),
        muxes,
        rt,
    };
    let n = 1usize << BUCKET_BITS;

    // 1. The configuration: three servers of weight 1, no chains.
    let g = scene.status().generation;
    let before = scene.check(g, "initial");
    let share = per_server(&before);
    assert_eq!(
        share.keys().copied().collect::<Vec<_>>(),
        [dip(1), dip(2), dip(3)]
    );
    assert!(
        before
            .iter()
            .all(|o| o.prev_dip.is_unspecified() && o.change_time == 0)
    );

    // 2. Add a server: only buckets that go to it move, a quarter of them.
    let t0 = unix_now();
    let r = scene
        .admin
        .add_server(
            "0",
            &api::AddServer {
                dip: dip(4),
                port: Some(9004),
                weight: Some(1),
                health: None,
            },
        )
        .unwrap();
    assert!(r.committed);
    assert_eq!(r.moved, r.minimum);
    assert_eq!(r.moved, (n / 4) as u64);
    let after = scene.check(r.generation, "add 10.1.0.4");
    let mut moved = 0;
    for (b, a) in before.iter().zip(&after) {
        if b.dip != a.dip {
            moved += 1;
            assert_eq!(a.dip, dip(4), "a moved client goes to the new server");
            assert_eq!(a.prev_dip, b.dip, "and is chained to its old one");
            assert!(a.change_time >= t0 && a.change_time <= unix_now() + 5);
        } else {
            assert_eq!(a.prev_dip, b.prev_dip);
        }
    }
    assert!(
        moved > CLIENTS / 8,
        "about a quarter of the clients moved: {moved}"
    );
    let counts = buckets_per_server(&scene.status());
    assert_eq!(counts.values().sum::<u32>() as usize, n);
    assert!(counts.values().all(|&c| c.abs_diff((n / 4) as u32) <= 1));
    let before = after;

    // 3. Drain 10.1.0.2: its clients move away and are chained to it.
    let r = scene.admin.drain("192.0.2.10", "10.1.0.2").unwrap();
    let after = scene.check(r.generation, "drain 10.1.0.2");
    assert!(after.iter().all(|o| o.dip != dip(2)));
    for (b, a) in before.iter().zip(&after) {
        if b.dip == dip(2) {
            assert_eq!(a.prev_dip, dip(2));
        } else {
            assert_eq!(
                a,
                &Out {
                    generation: a.generation,
                    ..*b
                },
                "untouched client"
            );
        }
    }
    let before = after;

    // 4. Weight 3 for 10.1.0.1: it gains, nobody else does.
    let r = scene.admin.set_weight("0", "10.1.0.1", 3).unwrap();
    let after = scene.check(r.generation, "weight 10.1.0.1 = 3");
    for (b, a) in before.iter().zip(&after) {
        if b.dip != a.dip {
            assert_eq!(a.dip, dip(1));
        }
    }
    let counts = buckets_per_server(&scene.status());
    // weights 3 (.1), 1 (.3), 1 (.4): 3/5 of the buckets.
    assert!(
        counts[&dip(1)].abs_diff((3 * n / 5) as u32) <= 1,
        "{counts:?}"
    );
    assert_eq!(counts[&dip(2)], 0);
    let before = after;

    // 5. Remove 10.1.0.3: nobody goes to it and nothing is chained to it.
    let r = scene.admin.remove_server("0", "10.1.0.3").unwrap();
    let after = scene.check(r.generation, "remove 10.1.0.3");
    assert!(
        after
            .iter()
            .all(|o| o.dip != dip(3) && o.prev_dip != dip(3))
    );
    assert!(before.iter().any(|o| o.dip == dip(3)));
    assert!(
        scene.status().vips[0]
            .servers
            .iter()
            .all(|s| s.dip != dip(3))
    );

    // 6. Remove 10.1.0.4, then try to drain the last active server:
    //    refused with the allocator's explanation; nothing changes.
    let r = scene.admin.remove_server("0", "10.1.0.4").unwrap();
    let before = scene.check(r.generation, "remove 10.1.0.4");
    let err = scene.admin.drain("0", "10.1.0.1").unwrap_err();
    match &err {
        ClientError::Api { status, error } => {
            assert_eq!(*status, 409);
            assert!(error.contains("would have no active server"), "{error}");
        }
        e => panic!("expected a refusal, got {e}"),
    }
    let g = scene.status().generation;
    assert_eq!(g, r.generation);
    let after = scene.check(g, "refused drain");
    assert_eq!(before, after);

    // 7. Restart mux B empty. The controller sees the stream break,
    //    reconnects, pushes the pipeline and writes the full state.
    let pushes_before = SwitchCounters::get(&scene.handle.switch_counters()[1].1.pipeline_pushes);
    let addr = scene.muxes[1].addr;
    scene.muxes[1].server.take().unwrap().shutdown().unwrap();
    let fresh = Mux::start(addr);
    assert!(fresh.switch.all_entries().is_empty());
    scene.muxes[1] = fresh;
    let mut w = scene.handle.watch_switches()[1].clone();
    scene.rt.block_on(async {
        tokio::time::timeout(
            WAIT,
            w.wait_for(|s| {
                matches!(s.state, SyncState::InSync { generation } if generation == g)
                    && SwitchCounters::get(&scene.handle.switch_counters()[1].1.pipeline_pushes)
                        > pushes_before
            }),
        )
        .await
        .expect("mux B healed")
        .unwrap();
    });
    let healed = scene.check(g, "mux B restarted empty");
    assert_eq!(
        healed, after,
        "every client forwarded as before the restart"
    );
    let s = scene.status();
    assert!(s.all_in_sync_at(g));
    running.shutdown();
}
