use super::*;
use crate::alloc::{AllocConfig, Change, ServerSpec, ServicePort, VipSpec};
use beamer_pipeline::wire::MacAddr;
use std::collections::HashSet;

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const TUNNEL: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

fn dip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 1, 0, n)
}

fn server(n: u8) -> ServerSpec {
    ServerSpec {
        dip: dip(n),
        port: Some(9000 + u16::from(n)),
        weight: 1,
    }
}

fn routes() -> BTreeMap<RouteKey, RouteAction> {
    let a = RouteAction {
        port: 1,
        dst_mac: MacAddr([2, 0, 0, 0, 0, 1]),
        src_mac: MacAddr([2, 0, 0, 0, 0, 2]),
    };
    [("10.1.0.0/16".parse().unwrap(), a)].into_iter().collect()
}

/// An allocator with one VIP of 16 buckets and servers 1..=3.
fn start() -> (Allocator, Desired) {
    let mut a = Allocator::new(AllocConfig {
        bucket_bits: 4,
        ..AllocConfig::default()
    })
    .unwrap();
    let mut changes = vec![Change::AddVip(VipSpec {
        vip_id: 0,
        addr: VIP,
        service_ports: vec![ServicePort::tcp(80)],
    })];
    changes.extend((1..=3).map(|n| Change::AddServer {
        vip_id: 0,
        server: server(n),
    }));
    let c = a.commit(&changes, 1000).unwrap();
    let d = Desired::from_allocator(&a, TUNNEL, &routes(), Some(Arc::new(c.diff)));
    (a, d)
}

fn step(a: &mut Allocator, changes: &[Change], now: u32) -> Desired {
    let c = a.commit(changes, now).unwrap();
    Desired::from_allocator(a, TUNNEL, &routes(), Some(Arc::new(c.diff)))
}

/// What a packet to the VIP would meet at each point of writing `plan`
/// onto `installed`: every service port leads to a complete bucket set,
/// every bucket's server has a route, and a generation is announced only
/// once its buckets are all in place.
fn check_every_prefix(installed: &Installed, plan: &Plan, desired: &Desired) {
    let mut state = installed.clone();
    let final_buckets: HashSet<_> = desired.buckets.iter().map(|(k, a)| (*k, *a)).collect();
    for (i, u) in plan.updates().enumerate() {
        let one = Plan {
            batches: vec![vec![*u]],
        };
        apply(&mut state, &one).unwrap_or_else(|e| panic!("update {i}: {e}"));
        let mut vip_ids = HashSet::new();
        for (k, a) in &state.entries {
            if let (EntryKey::Vip(_), Some(EntryAction::Vip(VipAction::ToBuckets { vip_id }))) =
                (k, a)
            {
                vip_ids.insert(*vip_id);
            }
        }
        for vip_id in vip_ids {
            for b in 0..16 {
                let key = EntryKey::Bucket(BucketKey { vip_id, bucket: b });
                let Some(Some(EntryAction::Bucket(a))) = state.entries.get(&key) else {
                    panic!("after update {i}: service port leads to missing bucket {b}");
                };
                let routed = state
                    .entries
                    .keys()
                    .any(|k| matches!(k, EntryKey::Route(r) if r.contains(a.dip)));
                assert!(routed, "after update {i}: no route to {}", a.dip);
            }
        }
        if state.config.map(|c| c.generation) == Some(desired.generation) {
            for kb in &final_buckets {
                assert_eq!(
                    state.entries.get(&EntryKey::Bucket(kb.0)),
                    Some(&Some(EntryAction::Bucket(kb.1))),
                    "generation {} announced before bucket {:?} was written",
                    desired.generation,
                    kb.0
                );
            }
        }
    }
    assert!(state.matches(desired));
}

#[test]
fn an_empty_switch_gets_everything_in_a_safe_order() {
    let (_, d) = start();
    let empty = Installed::empty();
    let plan = reconcile(&empty, &d);
    // routes, per-server ports, buckets, service port, then generation.
    let kinds: Vec<&str> = plan
        .batches
        .iter()
        .map(|b| match b[0] {
            Update::Insert(Entry::Route(..)) => "routes",
            Update::Insert(Entry::Vip(_, VipAction::ToServer { .. })) => "server ports",
            Update::Insert(Entry::Bucket(..)) => "buckets",
            Update::Insert(Entry::Vip(_, VipAction::ToBuckets { .. })) => "service ports",
            Update::SetConfig(_) => "config",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "config",
            "routes",
            "server ports",
            "buckets",
            "service ports",
            "config"
        ]
    );
    // The tunnel source changes from 0.0.0.0 first, with the old
    // generation; the generation last.
    assert_eq!(
        plan.batches[0],
        [Update::SetConfig(SwitchConfig {
            tunnel_src: TUNNEL,
            generation: 0
        })]
    );
    assert_eq!(
        plan.batches.last().unwrap(),
        &[Update::SetConfig(d.config())]
    );
    assert_eq!(plan.len(), 1 + 1 + 3 + 16 + 1 + 1);
    check_every_prefix(&empty, &plan, &d);
}

#[test]
fn between_consecutive_generations_the_plan_is_the_allocator_diff() {
    let (mut a, g1) = start();
    let g2 = step(
        &mut a,
        &[Change::AddServer {
            vip_id: 0,
            server: server(4),
        }],
        1010,
    );
    let plan = incremental(&g1, &g2).expect("consecutive generations");
    let diff = g2.diff.as_ref().unwrap();
    // The diff's batches, then the generation; the tunnel is unchanged.
    assert_eq!(&plan.batches[..plan.batches.len() - 1], &diff.batches[..]);
    assert_eq!(
        plan.batches.last().unwrap(),
        &[Update::SetConfig(g2.config())]
    );
    // Buckets moved: 4 of 16 go to the new server, the minimum.
    let moved = diff
        .updates()
        .filter(|u| matches!(u, Update::Modify(Entry::Bucket(..))))
        .count();
    assert_eq!(moved, 4);
    let mut installed = Installed::from_desired(&g1);
    check_every_prefix(&installed, &plan, &g2);

    // Reconciling from a read-back of g1 writes the same updates.
    let rec = reconcile(&installed, &g2);
    let a_set: HashSet<String> = plan.updates().map(|u| format!("{u:?}")).collect();
    let b_set: HashSet<String> = rec.updates().map(|u| format!("{u:?}")).collect();
    assert_eq!(a_set, b_set);
    apply(&mut installed, &rec).unwrap();
    assert!(installed.matches(&g2));
}

#[test]
fn a_switch_several_generations_behind_is_not_given_a_single_diff() {
    let (mut a, g1) = start();
    let _g2 = step(
        &mut a,
        &[Change::DrainServer {
            vip_id: 0,
            dip: dip(1),
        }],
        1010,
    );
    let g3 = step(
        &mut a,
        &[Change::RemoveServer {
            vip_id: 0,
            dip: dip(2),
        }],
        1020,
    );
    assert!(incremental(&g1, &g3).is_none());
    let installed = Installed::from_desired(&g1);
    let plan = reconcile(&installed, &g3);
    check_every_prefix(&installed, &plan, &g3);
    // The removed server's per-server port goes after the buckets.
    let last_table_write = &plan.batches[plan.batches.len() - 2];
    assert!(
        last_table_write
            .iter()
            .all(|u| matches!(u, Update::Delete(EntryKey::Vip(_)))),
        "{last_table_write:?}"
    );
}

#[test]
fn a_drifted_switch_is_reconciled() {
    let (_, d) = start();
    let mut installed = Installed::from_desired(&d);
    // Someone else's entries, a wrong action, an entry we cannot decode,
    // a missing bucket, a stale generation.
    let stranger = VipKey {
        dst: Ipv4Addr::new(198, 51, 100, 1),
        protocol: 6,
        port: 80,
    };
    installed.entries.insert(
        EntryKey::Vip(stranger),
        Some(EntryAction::Vip(VipAction::ToBuckets { vip_id: 1 })),
    );
    let b3 = EntryKey::Bucket(BucketKey {
        vip_id: 0,
        bucket: 3,
    });
    installed.entries.insert(
        b3,
        Some(EntryAction::Bucket(BucketAction {
            dip: dip(9),
            prev_dip: Ipv4Addr::UNSPECIFIED,
            change_time: 0,
        })),
    );
    installed.entries.insert(
        EntryKey::Bucket(BucketKey {
            vip_id: 0,
            bucket: 5,
        }),
        None,
    );
    installed.entries.remove(&EntryKey::Bucket(BucketKey {
        vip_id: 0,
        bucket: 7,
    }));
    installed.config = Some(SwitchConfig {
        tunnel_src: TUNNEL,
        generation: d.generation - 1,
    });
    let plan = reconcile(&installed, &d);
    let shown: Vec<String> = plan.updates().map(|u| format!("{u:?}")).collect();
    assert_eq!(plan.len(), 5, "{shown:#?}");
    assert!(matches!(plan.batches[0][0], Update::Delete(EntryKey::Vip(k)) if k == stranger));
    apply(&mut installed, &plan).unwrap();
    assert!(installed.matches(&d));
    // Nothing left to do.
    assert!(reconcile(&installed, &d).is_empty());
}

#[test]
fn a_new_tunnel_source_is_written_first_with_the_old_generation() {
    let (mut a, g1) = start();
    let mut g2 = step(
        &mut a,
        &[Change::DrainServer {
            vip_id: 0,
            dip: dip(3),
        }],
        1010,
    );
    g2.tunnel_src = Ipv4Addr::new(10, 0, 0, 2);
    let plan = incremental(&g1, &g2).unwrap();
    assert_eq!(
        plan.batches[0],
        [Update::SetConfig(SwitchConfig {
            tunnel_src: Ipv4Addr::new(10, 0, 0, 2),
            generation: g1.generation,
        })]
    );
    assert_eq!(
        plan.batches.last().unwrap(),
        &[Update::SetConfig(g2.config())]
    );
    // When the switch's config is unknown, only the final write sets it.
    let mut unknown = Installed::from_desired(&g1);
    unknown.config = None;
    let plan = reconcile(&unknown, &g2);
    let configs: Vec<_> = plan
        .updates()
        .filter(|u| matches!(u, Update::SetConfig(_)))
        .collect();
    assert_eq!(configs, [&Update::SetConfig(g2.config())]);
}

#[test]
fn every_step_of_a_churn_history_is_safe() {
    let (mut a, mut prev) = start();
    let history: Vec<Vec<Change>> = vec![
        vec![Change::AddServer {
            vip_id: 0,
            server: server(4),
        }],
        vec![Change::SetWeight {
            vip_id: 0,
            dip: dip(1),
            weight: 3,
        }],
        vec![Change::DrainServer {
            vip_id: 0,
            dip: dip(2),
        }],
        vec![Change::RemoveServer {
            vip_id: 0,
            dip: dip(2),
        }],
        vec![Change::AddServer {
            vip_id: 0,
            server: server(5),
        }],
        vec![Change::RemoveServer {
            vip_id: 0,
            dip: dip(4),
        }],
        vec![
            Change::AddVip(VipSpec {
                vip_id: 1,
                addr: Ipv4Addr::new(192, 0, 2, 2),
                service_ports: vec![ServicePort::udp(53)],
            }),
            Change::AddServer {
                vip_id: 1,
                server: ServerSpec {
                    dip: dip(7),
                    port: None,
                    weight: 1,
                },
            },
        ],
        vec![Change::RemoveVip { vip_id: 1 }],
    ];
    for (i, changes) in history.iter().enumerate() {
        let next = step(&mut a, changes, 1010 + 10 * i as u32);
        let installed = Installed::from_desired(&prev);
        let inc = incremental(&prev, &next).expect("consecutive");
        check_every_prefix(&installed, &inc, &next);
        let rec = reconcile(&installed, &next);
        check_every_prefix(&installed, &rec, &next);
        prev = next;
    }
}
