//! The controller against in-process software switches over P4Runtime:
//! convergence, a switch that is down at start, a rejected write, a
//! switch that lost its pipeline, another primary controller, and
//! expiry of daisy chains.

use beamer_controller::alloc::Change;
use beamer_controller::bench;
use beamer_controller::config::Config;
use beamer_controller::core::Command;
use beamer_controller::plan::{Desired, Installed};
use beamer_controller::service::{self, Running};
use beamer_controller::switch::{SwitchStatus, SyncState};
use beamer_pipeline::PipelineParams;
use beamer_pipeline::entries::{Entry, EntryKey, Update, VipAction, VipKey};
use beamer_pipeline::p4rt::EntryAction;
use beamer_pipeline::p4rt::p4runtime_proto::tonic;
use beamer_softswitch::Switch;
use beamer_softswitch::p4rt;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Runtime;
use tokio::sync::watch;

const WAIT: Duration = Duration::from_secs(30);

/// A software switch with its P4Runtime server on a thread and runtime
/// of its own: stopping it drops every connection at once, as a crash
/// would.
struct TestSwitch {
    switch: Switch,
    device: Arc<tokio::sync::Mutex<p4rt::Device>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    addr: SocketAddr,
}

impl TestSwitch {
    fn start(addr: SocketAddr) -> TestSwitch {
        let switch = Switch::new(PipelineParams::default()).unwrap();
        let service = p4rt::builder(switch.clone())
            .device_id(1)
            .service()
            .unwrap();
        let device = service.device();
        let listener = TcpListener::bind(addr).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
                let serve = tonic::transport::Server::builder()
                    .add_service(service)
                    .serve_with_incoming(incoming);
                tokio::select! {
                    _ = serve => {}
                    _ = stopped => {}
                }
            });
            // Dropping the runtime ends every connection task.
        });
        TestSwitch {
            switch,
            device,
            stop: Some(stop),
            thread: Some(thread),
            addr,
        }
    }

    fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }

    /// What the switch holds, as the controller would read it.
    fn installed(&self) -> Installed {
        Installed {
            config: Some(self.switch.config()),
            entries: self
                .switch
                .all_entries()
                .iter()
                .map(|e| (e.key(), Some(EntryAction::of(e))))
                .collect(),
        }
    }
}

impl Drop for TestSwitch {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn config(switches: &[SocketAddr], extra: &str) -> Config {
    let controller = format!(
        r#"election_id = 5
probe_interval = "100ms"
backoff_initial = "300ms"
backoff_max = "1s"
connect_timeout = "500ms"
startup_timeout = "500ms"
{extra}"#
    );
    let servers = [
        (Ipv4Addr::new(10, 1, 0, 1), 9001),
        (Ipv4Addr::new(10, 1, 0, 2), 9002),
    ];
    let names: Vec<String> = (0..switches.len()).map(|i| format!("s{i}")).collect();
    let switches: Vec<_> = names
        .iter()
        .map(String::as_str)
        .zip(switches.iter().copied())
        .collect();
    let text = bench::config_text(&controller, 256, &servers, &switches);
    Config::parse(&text, Path::new("test.toml"), Path::new(".")).unwrap_or_else(|e| panic!("{e}"))
}

fn wait_state(
    rt: &Runtime,
    w: &watch::Receiver<SwitchStatus>,
    what: &str,
    f: impl Fn(&SwitchStatus) -> bool,
) -> SwitchStatus {
    let mut rx = w.clone();
    rt.block_on(async {
        match tokio::time::timeout(WAIT, rx.wait_for(|s| f(s))).await {
            Ok(s) => s.unwrap().clone(),
            Err(_) => panic!("timed out waiting for {what}: {:?}", w.borrow()),
        }
    })
}

fn holds(switch: &TestSwitch, d: &Desired) -> bool {
    switch.installed().matches(d)
}

fn start_controller(rt: &Runtime, config: Config) -> Running {
    rt.block_on(service::start(config)).unwrap()
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn two_switches_converge_and_follow_commands() {
    let rt = runtime();
    let a = TestSwitch::start("127.0.0.1:0".parse().unwrap());
    let b = TestSwitch::start("127.0.0.1:0".parse().unwrap());
    let ctl = start_controller(&rt, config(&[a.addr, b.addr], ""));
    let h = ctl.handle.clone();
    assert!(rt.block_on(h.wait_in_sync(1, WAIT)));
    let d = h.desired();
    assert_eq!(d.buckets.len(), 256);
    assert!(holds(&a, &d) && holds(&b, &d));

    let o = rt
        .block_on(h.command(Command::from(Change::DrainServer {
            vip_id: 0,
            dip: Ipv4Addr::new(10, 1, 0, 2),
        })))
        .unwrap();
    assert_eq!(o.generation, 2);
    assert!(rt.block_on(h.wait_in_sync(2, WAIT)));
    let d = h.desired();
    assert!(holds(&a, &d) && holds(&b, &d));
    assert!(
        d.buckets
            .values()
            .all(|x| x.dip == Ipv4Addr::new(10, 1, 0, 1))
    );

    // Removing the last active server is refused; nothing changes.
    let e = rt
        .block_on(h.command(Command::from(Change::RemoveServer {
            vip_id: 0,
            dip: Ipv4Addr::new(10, 1, 0, 1),
        })))
        .unwrap_err();
    assert!(e.to_string().contains("no active server"), "{e}");
    assert_eq!(h.desired().generation, 2);

    // Status and metrics over HTTP.
    let admin = beamer_controller::admin_client::AdminClient::new(ctl.admin_addr.to_string());
    // The runtime's threads serve it; this thread blocks on the client.
    let status = admin.status().unwrap();
    assert_eq!(status.generation, 2);
    assert!(status.all_in_sync_at(2));
    assert_eq!(status.switches.len(), 2);
    // A runt frame through mux s0: its drop counter reaches the metrics.
    let mut worker = a.switch.worker();
    let mut batch = beamer_softswitch::Batch::with_defaults();
    batch.push(&[0u8; 10], 1).unwrap();
    worker.process_batch(&mut batch);
    let metrics_addr = ctl.metrics_addr;
    let scrape = || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(metrics_addr).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let drop_line = "beamer_switch_dropped_packets_total{switch=\"s0\",reason=\"truncated\"} 1";
    let mut text = scrape();
    for _ in 0..100 {
        if text.contains(drop_line) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        text = scrape();
    }
    assert!(text.contains(drop_line), "{text}");
    assert!(text.contains("beamer_generation 2"), "{text}");
    assert!(text.contains("beamer_switch_sync_state{switch=\"s0\",state=\"in_sync\"} 1"));
    assert!(text.contains(
        "beamer_server_buckets{vip=\"192.0.2.10\",dip=\"10.1.0.1\",state=\"active\"} 256"
    ));
    ctl.shutdown();
}

#[test]
fn a_switch_down_at_start_is_retried_and_filled_when_it_comes_up() {
    let rt = runtime();
    let a = TestSwitch::start("127.0.0.1:0".parse().unwrap());
    let b_addr = free_port();
    let ctl = start_controller(&rt, config(&[a.addr, b_addr], ""));
    let h = ctl.handle.clone();
    let w = h.watch_switches();
    // The live switch is not held up by the dead one.
    wait_state(&rt, &w[0], "a in sync", |s| {
        matches!(s.state, SyncState::InSync { generation: 1 })
    });
    let s = wait_state(
        &rt,
        &w[1],
        "b unreachable, retried",
        |s| matches!(s.state, SyncState::Unreachable { attempts, .. } if attempts >= 2),
    );
    assert!(s.last_error.unwrap().contains("connect"));
    let b = TestSwitch::start(b_addr);
    assert!(rt.block_on(h.wait_in_sync(1, WAIT)));
    assert!(holds(&b, &h.desired()));
    drop(a);
    ctl.shutdown();
}

#[test]
fn a_rejected_write_marks_the_switch_out_of_sync_until_reconciled() {
    let rt = runtime();
    let a = TestSwitch::start("127.0.0.1:0".parse().unwrap());
    let ctl = start_controller(&rt, config(&[a.addr], ""));
    let h = ctl.handle.clone();
    let w = h.watch_switches();
    assert!(rt.block_on(h.wait_in_sync(1, WAIT)));
    // Someone writes the per-server port of a server about to be added,
    // behind the controller's back: the controller's INSERT fails.
    let key = VipKey {
        dst: Ipv4Addr::new(192, 0, 2, 10),
        protocol: 6,
        port: 9003,
    };
    a.switch
        .apply_all(&[Update::Insert(Entry::Vip(
            key,
            VipAction::ToServer {
                dip: Ipv4Addr::new(10, 9, 9, 9),
            },
        ))])
        .unwrap();
    let o = rt
        .block_on(h.command(Command::add_server(
            0,
            beamer_controller::alloc::ServerSpec {
                dip: Ipv4Addr::new(10, 1, 0, 3),
                port: Some(9003),
                weight: 1,
            },
            None,
        )))
        .unwrap();
    let s = wait_state(&rt, &w[0], "out of sync", |s| {
        matches!(s.state, SyncState::OutOfSync { .. })
    });
    let SyncState::OutOfSync { error, .. } = &s.state else {
        unreachable!()
    };
    assert!(error.contains("ALREADY_EXISTS"), "{error}");
    assert_eq!(s.holds_generation, None);
    // The retry reads the switch back and overwrites the stranger.
    assert!(rt.block_on(h.wait_in_sync(o.generation, WAIT)));
    let d = h.desired();
    assert!(holds(&a, &d));
    assert_eq!(
        a.switch.entry(&EntryKey::Vip(key)),
        Some(Entry::Vip(
            key,
            VipAction::ToServer {
                dip: Ipv4Addr::new(10, 1, 0, 3)
            }
        ))
    );
    ctl.shutdown();
}

#[test]
fn a_restarted_switch_gets_everything_back() {
    let rt = runtime();
    let mut a = TestSwitch::start("127.0.0.1:0".parse().unwrap());
    let b = TestSwitch::start("127.0.0.1:0".parse().unwrap());
    let ctl = start_controller(&rt, config(&[a.addr, b.addr], ""));
    let h = ctl.handle.clone();
    assert!(rt.block_on(h.wait_in_sync(1, WAIT)));
    let w = h.watch_switches();
    let addr = a.addr;
    a.stop();
    wait_state(&rt, &w[0], "a unreachable", |s| {
        matches!(s.state, SyncState::Unreachable { .. })
    });
    // A commit while it is down reaches the other switch.
    let o = rt
        .block_on(h.command(Command::from(Change::SetWeight {
            vip_id: 0,
            dip: Ipv4Addr::new(10, 1, 0, 1),
            weight: 3,
        })))
        .unwrap();
    wait_state(
        &rt,
        &w[1],
        "b at the new generation",
        |s| matches!(s.state, SyncState::InSync { generation } if generation == o.generation),
    );
    let a2 = TestSwitch::start(addr);
    assert!(rt.block_on(h.wait_in_sync(o.generation, WAIT)));
    let d = h.desired();
    assert!(holds(&a2, &d) && holds(&b, &d));
    ctl.shutdown();
}

#[test]
fn a_switch_that_lost_its_pipeline_gets_it_pushed_again() {
    let rt = runtime();
    let a = TestSwitch::start("127.0.0.1:0".parse().unwrap());
    let ctl = start_controller(&rt, config(&[a.addr], ""));
    let h = ctl.handle.clone();
    assert!(rt.block_on(h.wait_in_sync(1, WAIT)));
    let c = ctl.handle.switch_counters()[0].1.clone();
    let pushes = beamer_controller::switch::SwitchCounters::get(&c.pipeline_pushes);
    // The switch's pipeline is replaced behind the controller's back (a
    // local agent reloading the program: same P4Info, no cookie, empty
    // tables). The controller's probe notices, pushes its own and fills
    // the tables again.
    rt.block_on(async {
        use beamer_pipeline::p4rt::p4runtime_proto::p4::v1;
        let p4info = beamer_pipeline::p4rt::expected_p4info(
            &PipelineParams {
                buckets: 256,
                ..Default::default()
            },
            beamer_pipeline::Target::V1model,
        );
        a.device
            .lock()
            .await
            .set_pipeline(
                v1::set_forwarding_pipeline_config_request::Action::VerifyAndCommit as i32,
                Some(v1::ForwardingPipelineConfig {
                    p4info: Some(p4info),
                    ..Default::default()
                }),
            )
            .unwrap();
    });
    assert!(a.switch.all_entries().is_empty());
    let w = h.watch_switches();
    wait_state(&rt, &w[0], "pushed again and in sync", |s| {
        matches!(s.state, SyncState::InSync { .. })
            && beamer_controller::switch::SwitchCounters::get(&c.pipeline_pushes) > pushes
    });
    rt.block_on(async {
        for _ in 0..300 {
            if holds(&a, &h.desired()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the switch did not get its tables back");
    });
    ctl.shutdown();
}

/// Another controller's session on the switch, with its election id.
fn other_controller(
    rt: &Runtime,
    addr: SocketAddr,
    election_id: u128,
) -> (
    beamer_controller::switch::client::Arbiter,
    tokio::sync::mpsc::Receiver<beamer_controller::switch::client::StreamEvent>,
) {
    let spec = config(&[addr], "").switches[0].clone();
    rt.block_on(async {
        let mut c = beamer_controller::switch::client::Client::connect(
            &spec,
            election_id,
            Duration::from_secs(2),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        c.open_stream().await.unwrap()
    })
}

#[test]
fn a_higher_election_id_elsewhere_makes_us_a_backup_that_never_writes() {
    use beamer_controller::switch::client::StreamEvent;
    let rt = runtime();
    let mut a = TestSwitch::start("127.0.0.1:0".parse().unwrap());
    let (other, mut other_events) = other_controller(&rt, a.addr, 1000);
    assert_eq!(rt.block_on(other_events.recv()), Some(StreamEvent::Primary));
    let ctl = start_controller(&rt, config(&[a.addr], ""));
    let w = ctl.handle.watch_switches();
    let s = wait_state(&rt, &w[0], "not primary", |s| {
        matches!(s.state, SyncState::NotPrimary { .. })
    });
    let SyncState::NotPrimary { detail } = &s.state else {
        unreachable!()
    };
    assert!(
        detail.contains("primary election id 1000, ours 5"),
        "{detail}"
    );
    // The other controller leaves. P4Runtime promotes nobody: a primary
    // must bring an election id at least as high as the highest seen (1000),
    // so we stay a backup and write nothing, asking again now and then.
    drop(other);
    rt.block_on(async { while other_events.recv().await.is_some() {} });
    wait_state(
        &rt,
        &w[0],
        "told there is no primary",
        |s| matches!(&s.state, SyncState::NotPrimary { detail } if detail.contains("no primary")),
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(a.switch.all_entries().is_empty());
    assert!(matches!(w[0].borrow().state, SyncState::NotPrimary { .. }));
    // A restarted switch has forgotten the old election ids: we take it.
    let addr = a.addr;
    a.stop();
    let a = TestSwitch::start(addr);
    assert!(rt.block_on(ctl.handle.wait_in_sync(1, WAIT)));
    assert!(holds(&a, &ctl.handle.desired()));
    ctl.shutdown();
}

#[test]
fn a_lower_election_id_elsewhere_is_preempted() {
    use beamer_controller::switch::client::StreamEvent;
    let rt = runtime();
    let a = TestSwitch::start("127.0.0.1:0".parse().unwrap());
    let (_other, mut other_events) = other_controller(&rt, a.addr, 3);
    assert_eq!(rt.block_on(other_events.recv()), Some(StreamEvent::Primary));
    let ctl = start_controller(&rt, config(&[a.addr], ""));
    assert!(rt.block_on(ctl.handle.wait_in_sync(1, WAIT)));
    assert!(holds(&a, &ctl.handle.desired()));
    let ev = rt.block_on(other_events.recv());
    assert!(
        matches!(&ev, Some(StreamEvent::Backup(m)) if m.contains("primary election id 5")),
        "{ev:?}"
    );
    ctl.shutdown();
}

#[test]
fn daisy_chains_expire_and_every_switch_gets_the_cleared_generation() {
    let rt = runtime();
    let a = TestSwitch::start("127.0.0.1:0".parse().unwrap());
    let ctl = start_controller(&rt, config(&[a.addr], "daisy_timeout = \"2s\""));
    let h = ctl.handle.clone();
    assert!(rt.block_on(h.wait_in_sync(1, WAIT)));
    let o = rt
        .block_on(h.command(Command::from(Change::DrainServer {
            vip_id: 0,
            dip: Ipv4Addr::new(10, 1, 0, 2),
        })))
        .unwrap();
    assert!(rt.block_on(h.wait_in_sync(o.generation, WAIT)));
    let chained = a
        .switch
        .all_entries()
        .iter()
        .filter(|e| matches!(e, Entry::Bucket(_, b) if !b.prev_dip.is_unspecified()))
        .count();
    assert_eq!(chained, 128);
    // The controller wakes up on its own when the chains are due.
    assert!(rt.block_on(h.wait_in_sync(o.generation + 1, Duration::from_secs(10))));
    let d = h.desired();
    assert!(
        d.buckets
            .values()
            .all(|b| b.prev_dip.is_unspecified() && b.change_time == 0)
    );
    assert!(holds(&a, &d));
    ctl.shutdown();
}

#[test]
fn a_server_failing_its_health_check_is_drained_and_comes_back() {
    // Servers on loopback addresses, probed with real TCP connects.
    let rt = runtime();
    let a = TestSwitch::start("127.0.0.1:0".parse().unwrap());
    let l2 = TcpListener::bind("127.0.0.2:0").unwrap();
    let port = l2.local_addr().unwrap().port();
    let _l3 = TcpListener::bind(("127.0.0.3", port)).unwrap();
    let text = format!(
        r#"
[controller]
tunnel_src = "10.0.0.1"
admin_listen = "127.0.0.1:0"
metrics_listen = "127.0.0.1:0"
startup_timeout = "200ms"

[[vips]]
address = "192.0.2.10"
ports = ["tcp/80"]
buckets = 256

[[vips.servers]]
dip = "127.0.0.2"
health = {{ port = {port}, interval = "50ms", timeout = "200ms", fall = 2, rise = 2, hold_down = "300ms", hold_down_max = "5s" }}

[[vips.servers]]
dip = "127.0.0.3"
health = {{ port = {port}, interval = "50ms", timeout = "200ms", fall = 2, rise = 2, hold_down = "300ms", hold_down_max = "5s" }}

[[next_hops]]
name = "lo"
port = 1
mac = "02:00:00:00:01:fe"
src_mac = "02:00:00:00:00:01"

[[routes]]
prefix = "127.0.0.0/8"
next_hop = "lo"

[[switches]]
address = "{}"
target = "softswitch"
"#,
        a.addr
    );
    let config = Config::parse(&text, Path::new("h.toml"), Path::new(".")).unwrap();
    let ctl = start_controller(&rt, config);
    let h = ctl.handle.clone();
    assert!(rt.block_on(h.wait_in_sync(1, WAIT)));
    let s2 = Ipv4Addr::new(127, 0, 0, 2);
    let on = |d: &Desired, dip: Ipv4Addr| d.buckets.values().filter(|b| b.dip == dip).count();
    assert_eq!(on(&h.desired(), s2), 128);

    // 127.0.0.2 stops listening: drained after two failed probes.
    drop(l2);
    let wait_for = |what: &str, f: &dyn Fn(&Desired) -> bool| {
        rt.block_on(async {
            for _ in 0..400 {
                let d = h.desired();
                if f(&d)
                    && h.wait_in_sync(d.generation, Duration::from_millis(10))
                        .await
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            panic!("timed out: {what}");
        })
    };
    wait_for("drained", &|d| on(d, s2) == 0);
    assert!(holds(&a, &h.desired()));
    let (status, _) = rt.block_on(h.status()).unwrap();
    let st = status.vips[0].servers.iter().find(|s| s.dip == s2).unwrap();
    assert_eq!(
        (st.health.as_deref(), st.state.as_str()),
        (Some("down"), "draining")
    );

    // Listening again: back after two good probes and the hold-down.
    let _l2 = TcpListener::bind(("127.0.0.2", port)).unwrap();
    wait_for("back", &|d| on(d, s2) == 128);
    assert!(holds(&a, &h.desired()));
    ctl.shutdown();
}

#[test]
fn a_restarted_controller_adopts_what_the_switches_hold() {
    let rt = runtime();
    let a = TestSwitch::start("127.0.0.1:0".parse().unwrap());
    let b = TestSwitch::start("127.0.0.1:0".parse().unwrap());
    let first = start_controller(&rt, config(&[a.addr, b.addr], ""));
    let h = first.handle.clone();
    assert!(rt.block_on(h.wait_in_sync(1, WAIT)));
    // A history a fresh start would not reproduce: a weight goes up and
    // back down, and the buckets given back are not the ones received.
    let dip1 = Ipv4Addr::new(10, 1, 0, 1);
    rt.block_on(h.command(Command::from(Change::SetWeight {
        vip_id: 0,
        dip: dip1,
        weight: 3,
    })))
    .unwrap();
    let o = rt
        .block_on(h.command(Command::from(Change::SetWeight {
            vip_id: 0,
            dip: dip1,
            weight: 1,
        })))
        .unwrap();
    assert!(rt.block_on(h.wait_in_sync(o.generation, WAIT)));
    let before = h.desired();
    first.shutdown();
    let fresh = beamer_controller::core::Core::new(&config(&[a.addr, b.addr], ""), 0, 1).unwrap();
    let differs = fresh
        .desired()
        .buckets
        .iter()
        .filter(|(k, x)| before.buckets[k].dip != x.dip)
        .count();
    assert!(
        differs > 0,
        "the history must leave a table a fresh start would not make"
    );

    let second = start_controller(&rt, config(&[a.addr, b.addr], ""));
    let h2 = second.handle.clone();
    let d = h2.desired();
    assert_eq!(d.generation, o.generation + 1, "generations go on");
    let moved = d
        .buckets
        .iter()
        .filter(|(k, x)| before.buckets[k].dip != x.dip)
        .count();
    assert_eq!(moved, 0, "nothing moves across a controller restart");
    assert!(rt.block_on(h2.wait_in_sync(d.generation, WAIT)));
    assert!(holds(&a, &d) && holds(&b, &d));
    second.shutdown();
}
