use super::*;
use crate::config::Config;
use std::path::Path;

const CONFIG: &str = r#"
[controller]
tunnel_src = "10.0.0.1"
daisy_timeout = "60s"

[[vips]]
address = "192.0.2.10"
ports = ["tcp/80"]
buckets = 64

[[vips.servers]]
dip = "10.1.0.1"
health = { port = 80, fall = 2, rise = 1 }

[[vips.servers]]
dip = "10.1.0.2"
health = { port = 80 }

[[switches]]
address = "127.0.0.1:9559"
target = "softswitch"

[[next_hops]]
name = "core"
port = 1
mac = "02:00:00:00:00:fe"
src_mac = "02:00:00:00:00:01"

[[routes]]
prefix = "10.1.0.0/16"
next_hop = "core"
"#;

fn core() -> Core {
    let c = Config::parse(CONFIG, Path::new("t.toml"), Path::new(".")).unwrap();
    Core::new(&c, 0, 1_000).unwrap()
}

fn dip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 1, 0, n)
}

fn buckets_of(core: &Core, d: Ipv4Addr) -> usize {
    core.desired()
        .buckets
        .values()
        .filter(|a| a.dip == d)
        .count()
}

#[test]
fn the_configuration_is_the_first_generation() {
    let c = core();
    assert_eq!(c.generation(), 1);
    let d = c.desired();
    assert_eq!(d.buckets.len(), 64);
    assert_eq!(d.vips.len(), 1);
    assert_eq!(d.routes.len(), 1);
    assert_eq!(d.tunnel_src, Ipv4Addr::new(10, 0, 0, 1));
    assert_eq!(buckets_of(&c, dip(1)), 32);
    assert_eq!(c.health_checks().count(), 2);
    // Generations continue above what switches reported.
    let cfg = Config::parse(CONFIG, Path::new("t.toml"), Path::new(".")).unwrap();
    assert_eq!(Core::new(&cfg, 41, 1_000).unwrap().generation(), 42);
}

#[test]
fn commands_commit_new_generations_with_the_allocator_diff() {
    let mut c = core();
    let o = c
        .apply(
            &Command::add_server(
                0,
                ServerSpec {
                    dip: dip(3),
                    port: Some(9003),
                    weight: 2,
                },
                None,
            ),
            1_010,
        )
        .unwrap();
    assert_eq!(o.generation, 2);
    let r = o.report.unwrap();
    assert_eq!((r.moved(), r.minimum()), (32, 32));
    assert_eq!(buckets_of(&c, dip(3)), 32);
    let d = c.desired().clone();
    assert_eq!(d.generation, 2);
    assert!(d.diff.is_some());
    // Moved buckets name their previous server and the change time.
    let moved: Vec<_> = d.buckets.values().filter(|a| a.dip == dip(3)).collect();
    assert!(
        moved
            .iter()
            .all(|a| a.prev_dip != Ipv4Addr::UNSPECIFIED && a.change_time == 1_010)
    );

    let o = c
        .apply(
            &Command::from(Change::SetWeight {
                vip_id: 0,
                dip: dip(3),
                weight: 2,
            }),
            1_020,
        )
        .unwrap();
    assert!(o.report.is_none(), "same weight: nothing to commit");
    assert_eq!(o.generation, 2);
}

#[test]
fn removing_the_last_server_is_refused_with_the_allocators_explanation() {
    let mut c = core();
    c.apply(
        &Command::from(Change::RemoveServer {
            vip_id: 0,
            dip: dip(1),
        }),
        1_010,
    )
    .unwrap();
    let before = c.desired().clone();
    let e = c
        .apply(
            &Command::from(Change::RemoveServer {
                vip_id: 0,
                dip: dip(2),
            }),
            1_020,
        )
        .unwrap_err();
    assert!(matches!(e, AllocError::NoActiveServer { .. }));
    assert!(e.to_string().contains("would have no active server"), "{e}");
    let e = c
        .apply(
            &Command::from(Change::DrainServer {
                vip_id: 0,
                dip: dip(2),
            }),
            1_020,
        )
        .unwrap_err();
    assert!(matches!(e, AllocError::NoActiveServer { .. }));
    assert!(Arc::ptr_eq(&before, c.desired()), "nothing changed");
    assert_eq!(c.stats().refused, 2);
    let e = c
        .apply(
            &Command::from(Change::DrainServer {
                vip_id: 0,
                dip: dip(9),
            }),
            1_020,
        )
        .unwrap_err();
    assert!(matches!(e, AllocError::UnknownServer { .. }));
}

#[test]
fn health_drains_and_returns_but_respects_the_operator() {
    let mut c = core();
    // Health down: drained.
    let o = c.health(0, dip(1), Transition::WentDown, 1_010).unwrap();
    assert_eq!(o.generation, 2);
    assert_eq!(buckets_of(&c, dip(1)), 0);
    let s = c.status();
    let s1 = s.vips[0].servers.iter().find(|s| s.dip == dip(1)).unwrap();
    assert_eq!(
        (s1.admin.as_str(), s1.health.as_deref(), s1.state.as_str()),
        ("active", Some("down"), "draining")
    );

    // The operator drains it too: nothing moves; activating it waits for
    // the check.
    let o = c
        .apply(
            &Command::from(Change::DrainServer {
                vip_id: 0,
                dip: dip(1),
            }),
            1_020,
        )
        .unwrap();
    assert!(o.report.is_none());
    let o = c
        .apply(
            &Command::from(Change::ActivateServer {
                vip_id: 0,
                dip: dip(1),
            }),
            1_030,
        )
        .unwrap();
    assert!(o.report.is_none());
    assert!(o.note.unwrap().contains("once its health check passes"));
    // Health back: active again.
    let o = c.health(0, dip(1), Transition::CameUp, 1_040).unwrap();
    assert_eq!(buckets_of(&c, dip(1)), 32);
    assert_eq!(o.generation, 3);

    // Drained by the operator: a passing check does not bring it back.
    c.apply(
        &Command::from(Change::DrainServer {
            vip_id: 0,
            dip: dip(1),
        }),
        1_050,
    )
    .unwrap();
    assert!(c.health(0, dip(1), Transition::WentDown, 1_060).is_none());
    assert!(c.health(0, dip(1), Transition::CameUp, 1_070).is_none());
    assert_eq!(buckets_of(&c, dip(1)), 0);
}

#[test]
fn the_last_server_failing_its_check_is_kept_until_another_can_serve() {
    let mut c = core();
    c.health(0, dip(1), Transition::WentDown, 1_010).unwrap();
    // dip 2 is the last active server: kept, with a note.
    assert!(c.health(0, dip(2), Transition::WentDown, 1_020).is_none());
    assert_eq!(buckets_of(&c, dip(2)), 64);
    let note = c.server_meta(0, dip(2)).unwrap().note.clone().unwrap();
    assert!(note.contains("kept"), "{note}");
    // dip 1 comes back: it gets buckets, and dip 2 is drained after all.
    c.health(0, dip(1), Transition::CameUp, 1_030).unwrap();
    assert_eq!(buckets_of(&c, dip(2)), 0);
    assert_eq!(buckets_of(&c, dip(1)), 64);
    assert!(c.server_meta(0, dip(2)).unwrap().note.is_none());
}

#[test]
fn chains_expire_when_due_in_a_new_generation() {
    let mut c = core();
    c.apply(
        &Command::from(Change::DrainServer {
            vip_id: 0,
            dip: dip(2),
        }),
        1_010,
    )
    .unwrap();
    assert_eq!(c.next_expiry(), Some(1_070));
    assert!(c.expire(1_069).is_none());
    let g = c.generation();
    let o = c.expire(1_070).unwrap();
    assert_eq!(o.generation, g + 1);
    assert_eq!(o.report.unwrap().expired, 32);
    assert!(
        c.desired()
            .buckets
            .values()
            .all(|a| a.prev_dip.is_unspecified() && a.change_time == 0)
    );
    assert_eq!(c.next_expiry(), None);
    assert_eq!(c.stats().expired, 32);
}

#[test]
fn resume_adopts_a_switch_table_and_moves_nothing() {
    let cfg = Config::parse(CONFIG, Path::new("t.toml"), Path::new(".")).unwrap();
    let mut first = Core::new(&cfg, 0, 1_000).unwrap();
    first
        .apply(
            &Command::from(Change::SetWeight {
                vip_id: 0,
                dip: dip(1),
                weight: 3,
            }),
            1_010,
        )
        .unwrap();
    // The configuration still says weight 1: resume from a table that has
    // dip 1 at 48 buckets moves it back to 32, and only those 16.
    let table: Vec<_> = first
        .desired()
        .buckets
        .iter()
        .map(|(k, a)| (*k, *a))
        .collect();
    let resumed = Core::resume(&cfg, table, first.generation(), 1_020).unwrap();
    assert_eq!(resumed.generation(), first.generation() + 1);
    let moved = resumed
        .desired()
        .buckets
        .iter()
        .filter(|(k, a)| first.desired().buckets[k].dip != a.dip)
        .count();
    assert_eq!(moved, 16);
}

#[test]
fn vip_changes_go_to_the_allocator_as_they_are() {
    let mut c = core();
    // A VIP alone has no active server: the allocator refuses it.
    let e = c
        .apply(
            &Command::from(Change::AddVip(crate::alloc::VipSpec {
                vip_id: 1,
                addr: Ipv4Addr::new(192, 0, 2, 11),
                service_ports: vec![crate::alloc::ServicePort::tcp(80)],
            })),
            1_010,
        )
        .unwrap_err();
    assert!(
        matches!(e, AllocError::NoActiveServer { vip_id: 1, .. }),
        "{e}"
    );
    assert_eq!(c.generation(), 1);

    // Removing the VIP takes its buckets, service port and health checks.
    let o = c
        .apply(&Command::from(Change::RemoveVip { vip_id: 0 }), 1_020)
        .unwrap();
    assert_eq!(o.generation, 2);
    assert!(c.desired().buckets.is_empty());
    assert!(c.desired().vips.is_empty());
    assert_eq!(c.health_checks().count(), 0);
    assert!(c.server_meta(0, dip(1)).is_none());
}
