//! Unit tests of each allocation rule, with 16 buckets and a virtual clock.

use super::*;
use beamer_pipeline::entries::{Entry, EntryKey, Update};

const T0: u32 = 1_700_000_000;
const VIP: u16 = 0;
const VIP_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

fn dip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, n)
}

fn spec(n: u8, weight: u32) -> ServerSpec {
    ServerSpec {
        dip: dip(n),
        port: Some(10_000 + u16::from(n)),
        weight,
    }
}

fn add(n: u8, weight: u32) -> Change {
    Change::AddServer {
        vip_id: VIP,
        server: spec(n, weight),
    }
}
fn remove(n: u8) -> Change {
    Change::RemoveServer {
        vip_id: VIP,
        dip: dip(n),
    }
}
fn drain(n: u8) -> Change {
    Change::DrainServer {
        vip_id: VIP,
        dip: dip(n),
    }
}
fn activate(n: u8) -> Change {
    Change::ActivateServer {
        vip_id: VIP,
        dip: dip(n),
    }
}
fn weight(n: u8, weight: u32) -> Change {
    Change::SetWeight {
        vip_id: VIP,
        dip: dip(n),
        weight,
    }
}
fn add_vip() -> Change {
    Change::AddVip(VipSpec {
        vip_id: VIP,
        addr: VIP_ADDR,
        service_ports: vec![ServicePort::tcp(80)],
    })
}

fn config(bits: u8) -> AllocConfig {
    AllocConfig {
        bucket_bits: bits,
        ..AllocConfig::default()
    }
}

/// An allocator whose VIP 0 has servers 10.0.0.1..=n, weight 1, 16 buckets.
fn with_servers(n: u8) -> Allocator {
    let mut a = Allocator::new(config(4)).unwrap();
    let mut c = vec![add_vip()];
    c.extend((1..=n).map(|i| add(i, 1)));
    a.commit(&c, T0).unwrap();
    a
}

fn buckets(a: &Allocator) -> Vec<BucketState> {
    a.vip(VIP).unwrap().buckets().to_vec()
}

fn count(a: &Allocator, n: u8) -> u32 {
    a.vip(VIP)
        .unwrap()
        .counts()
        .get(&dip(n))
        .copied()
        .unwrap_or(0)
}

fn counts(a: &Allocator, servers: &[u8]) -> Vec<u32> {
    servers.iter().map(|&n| count(a, n)).collect()
}

/// Buckets whose server changed: (bucket, old, new).
fn moves(old: &[BucketState], new: &[BucketState]) -> Vec<(usize, Ipv4Addr, Ipv4Addr)> {
    old.iter()
        .zip(new)
        .enumerate()
        .filter(|(_, (o, n))| o.dip != n.dip)
        .map(|(i, (o, n))| (i, o.dip, n.dip))
        .collect()
}

#[test]
fn first_commit_assigns_every_bucket_without_chains() {
    let a = with_servers(3);
    assert_eq!(a.generation(), 1);
    assert_eq!(counts(&a, &[1, 2, 3]), [6, 5, 5]);
    for b in buckets(&a) {
        assert_eq!(
            (b.prev_dip, b.change_time, b.changed_in),
            (Ipv4Addr::UNSPECIFIED, 0, 1)
        );
    }
    assert_eq!(a.next_expiry(), None);
}

#[test]
fn first_commit_report_and_diff() {
    let mut a = Allocator::new(config(4)).unwrap();
    let c = a.commit(&[add_vip(), add(1, 1), add(2, 1)], T0).unwrap();
    let v = &c.report.vips[0];
    assert_eq!((v.assigned, v.moved, v.minimum), (16, 0, 0));
    assert!(v.balanced());
    // Per-server ports, then buckets, then the service port.
    assert_eq!(c.diff.batches.len(), 3);
    assert_eq!(c.diff.batches[0].len(), 2);
    assert!(
        c.diff.batches[0]
            .iter()
            .all(|u| matches!(u, Update::Insert(Entry::Vip(_, VipAction::ToServer { .. }))))
    );
    assert_eq!(c.diff.batches[1].len(), 16);
    assert!(
        c.diff.batches[1]
            .iter()
            .all(|u| matches!(u, Update::Insert(Entry::Bucket(..))))
    );
    assert_eq!(
        c.diff.batches[2],
        [Update::Insert(Entry::Vip(
            VipKey {
                dst: VIP_ADDR,
                protocol: 6,
                port: 80
            },
            VipAction::ToBuckets { vip_id: VIP }
        ))]
    );
}

#[test]
fn add_moves_only_what_the_new_server_needs_all_to_it() {
    let mut a = with_servers(3);
    let old = buckets(&a);
    let c = a.commit(&[add(4, 1)], T0 + 5).unwrap();
    assert_eq!(counts(&a, &[1, 2, 3, 4]), [4, 4, 4, 4]);
    let m = moves(&old, &buckets(&a));
    assert_eq!(m.len(), 4);
    assert!(m.iter().all(|&(_, _, to)| to == dip(4)));
    let v = &c.report.vips[0];
    assert_eq!((v.moved, v.minimum, v.chains_broken), (4, 4, 0));
    for &(i, from, _) in &m {
        let b = buckets(&a)[i];
        assert_eq!((b.prev_dip, b.change_time, b.changed_in), (from, T0 + 5, 2));
    }
}

#[test]
fn drain_moves_only_its_buckets_and_keeps_its_port() {
    let mut a = with_servers(3);
    let old = buckets(&a);
    let c = a.commit(&[drain(2)], T0 + 5).unwrap();
    assert_eq!(counts(&a, &[1, 2, 3]), [8, 0, 8]);
    let m = moves(&old, &buckets(&a));
    assert_eq!(m.len(), 5);
    assert!(m.iter().all(|&(_, from, _)| from == dip(2)));
    // Draining servers stay a chain target: prev_dip is the drained one.
    for &(i, _, _) in &m {
        assert_eq!(buckets(&a)[i].prev_dip, dip(2));
    }
    assert!(
        a.vip_entries()
            .any(|(k, v)| k.port == 10_002 && v == VipAction::ToServer { dip: dip(2) })
    );
    assert!(!c.diff.updates().any(|u| matches!(u, Update::Delete(_))));
    assert_eq!(
        a.vip(VIP).unwrap().server(dip(2)).unwrap().state,
        ServerState::Draining
    );
}

#[test]
fn activate_brings_a_drained_server_back() {
    let mut a = with_servers(2);
    a.commit(&[drain(2)], T0 + 5).unwrap();
    let old = buckets(&a);
    a.commit(&[activate(2)], T0 + 10).unwrap();
    assert_eq!(counts(&a, &[1, 2]), [8, 8]);
    let m = moves(&old, &buckets(&a));
    assert!(m.iter().all(|&(_, f, t)| f == dip(1) && t == dip(2)));
    assert_eq!(m.len(), 8);
}

#[test]
fn remove_without_drain_does_not_chain_to_the_dead_server() {
    let mut a = with_servers(3);
    let old = buckets(&a);
    let c = a.commit(&[remove(3)], T0 + 5).unwrap();
    assert_eq!(counts(&a, &[1, 2]), [8, 8]);
    let new = buckets(&a);
    let m = moves(&old, &new);
    assert_eq!(m.len(), 5);
    for &(i, from, _) in &m {
        assert_eq!(from, dip(3));
        assert_eq!(
            (new[i].prev_dip, new[i].change_time),
            (Ipv4Addr::UNSPECIFIED, 0)
        );
        assert_eq!(new[i].changed_in, 2);
    }
    // Its per-server port goes, last, after the buckets.
    let last = c.diff.batches.last().unwrap();
    assert_eq!(
        last,
        &[Update::Delete(EntryKey::Vip(VipKey {
            dst: VIP_ADDR,
            protocol: 6,
            port: 10_003
        }))]
    );
    assert!(
        c.diff.batches[..c.diff.batches.len() - 1]
            .iter()
            .flatten()
            .all(|u| matches!(u, Update::Modify(Entry::Bucket(..))))
    );
    assert_eq!(a.next_expiry(), None);
}

#[test]
fn removing_a_drained_server_clears_chains_to_it() {
    let mut a = with_servers(3);
    a.commit(&[drain(3)], T0 + 5).unwrap();
    let chained: Vec<usize> = buckets(&a)
        .iter()
        .enumerate()
        .filter(|(_, b)| b.prev_dip == dip(3))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(chained.len(), 5);
    let old = buckets(&a);
    let c = a.commit(&[remove(3)], T0 + 60).unwrap();
    let new = buckets(&a);
    assert!(moves(&old, &new).is_empty());
    for i in chained {
        assert_eq!(
            (new[i].prev_dip, new[i].change_time),
            (Ipv4Addr::UNSPECIFIED, 0)
        );
        assert_eq!(new[i].dip, old[i].dip);
    }
    let v = &c.report.vips[0];
    assert_eq!((v.moved, v.chains_cleared), (0, 5));
    assert_eq!(c.diff.len(), 5 + 1, "5 bucket modifies and the port delete");
    assert_eq!(a.next_expiry(), None);
}

#[test]
fn buckets_leaving_a_removed_server_keep_its_live_predecessor() {
    // 1 and 2 share 16 buckets; 3 joins (taking 5 buckets, chained to their
    // old owner); before those chains expire, 3 is removed and 4 added.
    let mut a = with_servers(2);
    a.commit(&[add(3, 1)], T0 + 10).unwrap();
    let mid = buckets(&a);
    let c = a.commit(&[remove(3), add(4, 1)], T0 + 20).unwrap();
    let new = buckets(&a);
    let m = moves(&mid, &new);
    assert_eq!(m.len(), 5);
    for &(i, from, to) in &m {
        assert_eq!((from, to), (dip(3), dip(4)));
        // Chains past the dead server to the one that still has the
        // connections, with the original change time.
        assert!(mid[i].prev_dip == dip(1) || mid[i].prev_dip == dip(2));
        assert_eq!(
            (new[i].prev_dip, new[i].change_time),
            (mid[i].prev_dip, T0 + 10)
        );
    }
    assert_eq!(c.report.vips[0].chains_inherited, 5);
    assert_eq!(c.report.vips[0].chains_broken, 0);
    assert_eq!(a.next_expiry(), Some(T0 + 10 + DEFAULT_DAISY_TIMEOUT));
}

#[test]
fn a_bucket_returns_to_its_previous_server_when_that_one_gains() {
    // 3 joins and is removed again: each of its buckets goes back to the
    // server it came from, with no chain (its connections are local there).
    let mut a = with_servers(2);
    let first = buckets(&a);
    a.commit(&[add(3, 1)], T0 + 10).unwrap();
    let c = a.commit(&[remove(3)], T0 + 20).unwrap();
    let back = buckets(&a);
    for (o, n) in first.iter().zip(&back) {
        assert_eq!(n.dip, o.dip);
        assert!(!n.has_chain());
    }
    assert_eq!(
        (c.report.vips[0].chains_broken, c.report.vips[0].moved),
        (0, 5)
    );

    // Same with a weight change: buckets chained to 1 return to 1 first.
    let mut a = with_servers(2);
    a.commit(&[drain(1)], T0 + 10).unwrap();
    a.commit(&[activate(1), add(3, 1)], T0 + 20).unwrap();
    let chained_home = buckets(&a)
        .iter()
        .filter(|b| b.dip == dip(1) && b.prev_dip == dip(2) && b.changed_in == 3)
        .count();
    assert_eq!(chained_home, count(&a, 1) as usize);
}

#[test]
fn weight_change_moves_the_minimum() {
    let mut a = with_servers(2);
    let old = buckets(&a);
    let c = a.commit(&[weight(2, 3)], T0 + 5).unwrap();
    assert_eq!(counts(&a, &[1, 2]), [4, 12]);
    let m = moves(&old, &buckets(&a));
    assert_eq!(m.len(), 4);
    assert!(m.iter().all(|&(_, f, t)| f == dip(1) && t == dip(2)));
    assert_eq!((c.report.moved(), c.report.minimum()), (4, 4));
}

#[test]
fn least_recently_changed_buckets_move_first() {
    // 2 drains: server 1 then holds 8 old buckets and 8 fresh ones chained
    // to 2. When 3 joins, 1 must give its old buckets and keep every chain.
    let mut a = with_servers(2);
    a.commit(&[drain(2)], T0 + 5).unwrap();
    let mid = buckets(&a);
    let c = a.commit(&[add(3, 1)], T0 + 10).unwrap();
    let new = buckets(&a);
    let m = moves(&mid, &new);
    assert_eq!(m.len(), 8);
    for &(i, from, _) in &m {
        assert_eq!(from, dip(1));
        assert_eq!(mid[i].changed_in, 1, "bucket {i} changed recently");
    }
    assert_eq!(new.iter().filter(|b| b.prev_dip == dip(2)).count(), 8);
    assert_eq!(c.report.vips[0].chains_broken, 0);
}

#[test]
fn ties_in_age_go_by_bucket_number() {
    let mut a = with_servers(1);
    a.commit(&[add(2, 1)], T0 + 5).unwrap();
    // All 16 buckets were equally old: the 8 lowest moved.
    let moved: Vec<usize> = buckets(&a)
        .iter()
        .enumerate()
        .filter(|(_, b)| b.dip == dip(2))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(moved, (0..8).collect::<Vec<_>>());
}

#[test]
fn forced_moves_of_chained_buckets_are_reported() {
    // 1 drains to 2 (all 8 of 1's buckets chained to 1); then 2 is drained
    // at once: 2's chained buckets must move again.
    let mut a = with_servers(3);
    a.commit(&[drain(1)], T0 + 5).unwrap();
    let c = a.commit(&[drain(2)], T0 + 10).unwrap();
    assert_eq!(counts(&a, &[1, 2, 3]), [0, 0, 16]);
    let v = &c.report.vips[0];
    assert_eq!(v.moved, v.minimum);
    let chained_to_1_on_2 = 3; // of 1's 6 buckets, 3 went to 2
    assert_eq!(v.chains_broken, chained_to_1_on_2);
}

#[test]
fn batch_remove_and_add_moves_straight_to_the_newcomer() {
    let mut a = with_servers(4);
    let old = buckets(&a);
    let c = a.commit(&[remove(2), add(5, 1)], T0 + 5).unwrap();
    let m = moves(&old, &buckets(&a));
    assert_eq!(m.len(), 4);
    assert!(m.iter().all(|&(_, f, t)| f == dip(2) && t == dip(5)));
    assert_eq!(c.report.vips[0].minimum, 4);
}

#[test]
fn expiry_clears_chains_in_a_new_generation() {
    let mut a = with_servers(2);
    a.commit(&[add(3, 1)], T0 + 10).unwrap();
    assert_eq!(a.generation(), 2);
    let due = T0 + 10 + DEFAULT_DAISY_TIMEOUT;
    assert_eq!(a.next_expiry(), Some(due));
    assert_eq!(a.expire(due - 1).unwrap(), None);
    assert_eq!(a.generation(), 2);
    let before = buckets(&a);
    let c = a.expire(due).unwrap().unwrap();
    assert_eq!((c.generation, a.generation()), (3, 3));
    assert_eq!(c.report.expired, 5);
    assert_eq!(c.diff.len(), 5);
    for (o, n) in before.iter().zip(buckets(&a)) {
        assert_eq!(n.dip, o.dip);
        assert_eq!(n.changed_in, o.changed_in, "age survives expiry");
        assert_eq!((n.prev_dip, n.change_time), (Ipv4Addr::UNSPECIFIED, 0));
    }
    assert!(
        c.diff
            .updates()
            .all(|u| matches!(u, Update::Modify(Entry::Bucket(_, a)) if a.prev_dip.is_unspecified() && a.change_time == 0))
    );
    assert_eq!(a.next_expiry(), None);
    assert_eq!(a.expire(due + 1000).unwrap(), None);
}

#[test]
fn next_expiry_follows_the_oldest_chain() {
    let mut a = with_servers(2);
    a.commit(&[add(3, 1)], T0 + 10).unwrap();
    a.commit(&[add(4, 1)], T0 + 100).unwrap();
    let t = DEFAULT_DAISY_TIMEOUT;
    assert_eq!(a.next_expiry(), Some(T0 + 10 + t));
    let c = a.expire(T0 + 10 + t).unwrap().unwrap();
    assert!(c.report.expired > 0);
    assert_eq!(a.next_expiry(), Some(T0 + 100 + t));
}

#[test]
fn a_commit_also_expires_due_chains() {
    let mut a = with_servers(2);
    a.commit(&[add(3, 1)], T0 + 10).unwrap();
    let c = a
        .commit(&[weight(1, 2)], T0 + 10 + DEFAULT_DAISY_TIMEOUT)
        .unwrap();
    assert_eq!(c.report.expired, 5);
    assert_eq!(c.generation, 3);
}

#[test]
fn configurable_timeout_and_zero_disables_chaining() {
    let mut a = Allocator::new(AllocConfig {
        daisy_timeout: 30,
        ..config(4)
    })
    .unwrap();
    a.commit(&[add_vip(), add(1, 1), add(2, 1)], T0).unwrap();
    a.commit(&[add(3, 1)], T0 + 1).unwrap();
    assert_eq!(a.next_expiry(), Some(T0 + 31));

    let mut a = Allocator::new(AllocConfig {
        daisy_timeout: 0,
        ..config(4)
    })
    .unwrap();
    a.commit(&[add_vip(), add(1, 1), add(2, 1)], T0).unwrap();
    a.commit(&[add(3, 1)], T0 + 1).unwrap();
    assert!(
        buckets(&a)
            .iter()
            .all(|b| !b.has_chain() && b.change_time == 0)
    );
    assert_eq!(a.next_expiry(), None);
}

#[test]
fn generations_continue_from_the_configured_start() {
    let mut a = Allocator::new(AllocConfig {
        first_generation: 41,
        ..config(4)
    })
    .unwrap();
    assert_eq!(a.generation(), 41);
    let c = a.commit(&[add_vip(), add(1, 1)], T0).unwrap();
    assert_eq!(c.generation, 42);

    let mut a = Allocator::new(AllocConfig {
        first_generation: u32::MAX,
        ..config(4)
    })
    .unwrap();
    assert_eq!(
        a.commit(&[add_vip(), add(1, 1)], T0).unwrap_err(),
        AllocError::GenerationExhausted(u32::MAX)
    );
}

#[test]
fn every_commit_is_a_new_generation_even_without_moves() {
    let mut a = with_servers(2);
    // Same weight again: nothing to write, but the operator's commit is
    // acknowledged with its own generation.
    let c = a.commit(&[weight(1, 1)], T0 + 1).unwrap();
    assert_eq!(c.generation, 2);
    assert!(c.diff.is_empty());
}

#[test]
fn time_never_goes_back() {
    let mut a = with_servers(2);
    a.commit(&[add(3, 1)], T0 + 100).unwrap();
    // The wall clock stepped back: the commit counts as at the latest time
    // seen, and its moves are stamped after the latest change time, so its
    // chains are not cut short and hosts learn them.
    let old = buckets(&a);
    let c = a.commit(&[add(4, 1)], T0 + 50).unwrap();
    assert_eq!((c.report.now, c.report.stamp), (T0 + 100, T0 + 101));
    for (i, _, _) in moves(&old, &buckets(&a)) {
        assert_eq!(buckets(&a)[i].change_time, T0 + 101);
    }
    assert_eq!(a.clock(), T0 + 100);
}

#[test]
fn change_times_strictly_increase_within_one_second() {
    // A host learns a previous DIP only from a strictly newer change time:
    // two moves in the same second must not carry the same one.
    let mut a = with_servers(2);
    let c1 = a.commit(&[add(3, 1)], T0 + 10).unwrap();
    let c2 = a.commit(&[add(4, 1)], T0 + 10).unwrap();
    let c3 = a.commit(&[add(5, 1)], T0 + 10).unwrap();
    assert_eq!(
        (c1.report.stamp, c2.report.stamp, c3.report.stamp),
        (T0 + 10, T0 + 11, T0 + 12)
    );
    assert_eq!(a.clock(), T0 + 10);
    // A commit that moves nothing writes no change time.
    let c4 = a.commit(&[weight(1, 1)], T0 + 10).unwrap();
    assert_eq!(c4.report.stamp, T0 + 13);
    let c5 = a.commit(&[add(6, 1)], T0 + 10).unwrap();
    assert_eq!(c5.report.stamp, T0 + 13);
    // Real time catching up ends the drift.
    assert_eq!(
        a.commit(&[add(7, 1)], T0 + 20).unwrap().report.stamp,
        T0 + 20
    );
    // Chains expire by their own change time.
    assert_eq!(a.next_expiry(), Some(T0 + 10 + DEFAULT_DAISY_TIMEOUT));
}

#[test]
fn full_state_is_every_entry_as_inserts_in_safe_order() {
    let mut a = with_servers(3);
    a.commit(&[drain(1)], T0 + 5).unwrap();
    let full = a.full_state();
    let mut want: Vec<Entry> = a
        .vip_entries()
        .map(|(k, v)| Entry::Vip(k, v))
        .chain(a.bucket_entries().map(|(k, b)| Entry::Bucket(k, b)))
        .collect();
    let mut got: Vec<Entry> = full
        .updates()
        .map(|u| match u {
            Update::Insert(e) => *e,
            other => panic!("not an insert: {other:?}"),
        })
        .collect();
    let key = |e: &Entry| e.key();
    want.sort_by_key(key);
    got.sort_by_key(key);
    assert_eq!(got, want);
    assert_eq!(full.batches.len(), 3);
    assert!(matches!(
        full.batches[2][0],
        Update::Insert(Entry::Vip(_, VipAction::ToBuckets { .. }))
    ));
}

#[test]
fn removing_a_vip_stops_its_service_ports_first() {
    let mut a = with_servers(2);
    let c = a
        .commit(&[Change::RemoveVip { vip_id: VIP }], T0 + 5)
        .unwrap();
    assert_eq!(c.diff.batches.len(), 3);
    assert!(matches!(
        c.diff.batches[0][..],
        [Update::Delete(EntryKey::Vip(VipKey { port: 80, .. }))]
    ));
    assert_eq!(c.diff.batches[1].len(), 16);
    assert!(
        c.diff.batches[1]
            .iter()
            .all(|u| matches!(u, Update::Delete(EntryKey::Bucket(_))))
    );
    assert_eq!(c.diff.batches[2].len(), 2);
    assert_eq!(a.vips().count(), 0);
    assert_eq!(a.bucket_entries().count(), 0);
}

#[test]
fn two_vips_are_independent() {
    let mut a = with_servers(2);
    let other = Change::AddVip(VipSpec {
        vip_id: 1,
        addr: Ipv4Addr::new(192, 0, 2, 2),
        service_ports: vec![ServicePort::tcp(443), ServicePort::udp(443)],
    });
    let c = a
        .commit(
            &[
                other,
                Change::AddServer {
                    vip_id: 1,
                    server: spec(1, 1),
                },
            ],
            T0 + 5,
        )
        .unwrap();
    // Same DIP and same per-server port number on another VIP address: fine.
    assert_eq!(c.report.vips.len(), 1);
    assert_eq!(c.report.vips[0].vip_id, 1);
    assert_eq!(a.bucket_entries().count(), 32);
    assert_eq!(a.vip_entries().count(), 3 + 3);
}

#[test]
fn refusals_name_the_problem_and_change_nothing() {
    let other_vip = |id, addr| {
        Change::AddVip(VipSpec {
            vip_id: id,
            addr,
            service_ports: vec![ServicePort::tcp(80)],
        })
    };
    let port = |n: u8, p: Option<u16>| Change::AddServer {
        vip_id: VIP,
        server: ServerSpec {
            dip: dip(n),
            port: p,
            weight: 1,
        },
    };
    // (description, batch, expected error)
    let cases: Vec<(&str, Vec<Change>, AllocError)> = vec![
        ("empty batch", vec![], AllocError::EmptyCommit),
        (
            "remove the last active server",
            vec![remove(1), remove(2)],
            AllocError::NoActiveServer {
                vip_id: VIP,
                addr: VIP_ADDR,
                draining: 0,
            },
        ),
        (
            "drain the last active server",
            vec![drain(1), drain(2)],
            AllocError::NoActiveServer {
                vip_id: VIP,
                addr: VIP_ADDR,
                draining: 2,
            },
        ),
        (
            "new VIP without a server",
            vec![other_vip(1, Ipv4Addr::new(192, 0, 2, 9))],
            AllocError::NoActiveServer {
                vip_id: 1,
                addr: Ipv4Addr::new(192, 0, 2, 9),
                draining: 0,
            },
        ),
        (
            "duplicate DIP",
            vec![add(1, 1)],
            AllocError::DuplicateServer {
                vip_id: VIP,
                dip: dip(1),
            },
        ),
        (
            "duplicate per-server port",
            vec![port(3, Some(10_001))],
            AllocError::PortConflict {
                addr: VIP_ADDR,
                port: ServicePort::tcp(10_001),
                first: PortUser::Server {
                    vip_id: VIP,
                    dip: dip(1),
                },
                second: PortUser::Server {
                    vip_id: VIP,
                    dip: dip(3),
                },
            },
        ),
        (
            "per-server port equal to a service port",
            vec![port(3, Some(80))],
            AllocError::PortConflict {
                addr: VIP_ADDR,
                port: ServicePort::tcp(80),
                first: PortUser::Service { vip_id: VIP },
                second: PortUser::Server {
                    vip_id: VIP,
                    dip: dip(3),
                },
            },
        ),
        (
            "per-server port 0",
            vec![port(3, Some(0))],
            AllocError::PortZero {
                vip_id: VIP,
                what: "per-server port",
            },
        ),
        (
            "weight 0 on add",
            vec![add(3, 0)],
            AllocError::ZeroWeight {
                vip_id: VIP,
                dip: dip(3),
            },
        ),
        (
            "weight 0 on change",
            vec![weight(1, 0)],
            AllocError::ZeroWeight {
                vip_id: VIP,
                dip: dip(1),
            },
        ),
        (
            "DIP 0.0.0.0 (means 'no server' in the option)",
            vec![Change::AddServer {
                vip_id: VIP,
                server: ServerSpec {
                    dip: Ipv4Addr::UNSPECIFIED,
                    port: None,
                    weight: 1,
                },
            }],
            AllocError::InvalidDip {
                vip_id: VIP,
                dip: Ipv4Addr::UNSPECIFIED,
            },
        ),
        (
            "DIP equal to the VIP",
            vec![Change::AddServer {
                vip_id: VIP,
                server: ServerSpec {
                    dip: VIP_ADDR,
                    port: None,
                    weight: 1,
                },
            }],
            AllocError::InvalidDip {
                vip_id: VIP,
                dip: VIP_ADDR,
            },
        ),
        (
            "unknown VIP",
            vec![Change::RemoveVip { vip_id: 1 }],
            AllocError::UnknownVip(1),
        ),
        (
            "unknown server",
            vec![remove(9)],
            AllocError::UnknownServer {
                vip_id: VIP,
                dip: dip(9),
            },
        ),
        (
            "duplicate VIP",
            vec![other_vip(VIP, Ipv4Addr::new(192, 0, 2, 9))],
            AllocError::DuplicateVip(VIP),
        ),
        (
            "VIP ID beyond the pipeline's bucket sets",
            vec![other_vip(2, Ipv4Addr::new(192, 0, 2, 9))],
            AllocError::VipIdOutOfRange {
                vip_id: 2,
                max_vips: 2,
            },
        ),
        (
            "VIP address 0.0.0.0",
            vec![other_vip(1, Ipv4Addr::UNSPECIFIED)],
            AllocError::InvalidVipAddr {
                vip_id: 1,
                addr: Ipv4Addr::UNSPECIFIED,
            },
        ),
        (
            "VIP without service ports",
            vec![Change::AddVip(VipSpec {
                vip_id: 1,
                addr: Ipv4Addr::new(192, 0, 2, 9),
                service_ports: vec![],
            })],
            AllocError::NoServicePorts(1),
        ),
        (
            "service port neither TCP nor UDP",
            vec![Change::AddVip(VipSpec {
                vip_id: 1,
                addr: Ipv4Addr::new(192, 0, 2, 9),
                service_ports: vec![ServicePort {
                    protocol: 132,
                    port: 80,
                }],
            })],
            AllocError::UnsupportedProtocol {
                vip_id: 1,
                port: ServicePort {
                    protocol: 132,
                    port: 80,
                },
            },
        ),
        (
            "same VIP address and port as another VIP",
            vec![
                other_vip(1, VIP_ADDR),
                Change::AddServer {
                    vip_id: 1,
                    server: ServerSpec {
                        dip: dip(7),
                        port: None,
                        weight: 1,
                    },
                },
            ],
            AllocError::PortConflict {
                addr: VIP_ADDR,
                port: ServicePort::tcp(80),
                first: PortUser::Service { vip_id: VIP },
                second: PortUser::Service { vip_id: 1 },
            },
        ),
        (
            "drain a draining server",
            vec![drain(1), drain(1)],
            AllocError::NotActive {
                vip_id: VIP,
                dip: dip(1),
            },
        ),
        (
            "activate an active server",
            vec![activate(1)],
            AllocError::NotDraining {
                vip_id: VIP,
                dip: dip(1),
            },
        ),
        (
            "a valid change then an invalid one: all refused",
            vec![add(3, 1), add(4, 0)],
            AllocError::ZeroWeight {
                vip_id: VIP,
                dip: dip(4),
            },
        ),
    ];
    for (desc, batch, want) in cases {
        let mut a = with_servers(2);
        let before = (
            a.generation(),
            buckets(&a),
            a.vip_entries().collect::<Vec<_>>(),
        );
        let got = a.commit(&batch, T0 + 5).unwrap_err();
        assert_eq!(got, want, "{desc}");
        assert!(!got.to_string().is_empty());
        let after = (
            a.generation(),
            buckets(&a),
            a.vip_entries().collect::<Vec<_>>(),
        );
        assert_eq!(before, after, "{desc}: state changed");
        assert_eq!(a.next_expiry(), None, "{desc}");
    }
}

#[test]
fn refusal_messages_explain() {
    let mut a = with_servers(1);
    let e = a.commit(&[drain(1)], T0 + 1).unwrap_err().to_string();
    assert!(
        e.contains("VIP 0 (192.0.2.1) would have no active server (1 draining)"),
        "{e}"
    );
    assert!(e.contains("Add or activate a server"), "{e}");
    let e = a
        .commit(
            &[
                add(2, 1),
                Change::AddServer {
                    vip_id: VIP,
                    server: ServerSpec {
                        port: Some(80),
                        ..spec(3, 1)
                    },
                },
            ],
            T0 + 1,
        )
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "192.0.2.1 tcp/80 is claimed twice: by a service port of VIP 0 and by the per-server port of 10.0.0.3 on VIP 0"
    );
}

#[test]
fn vip_table_capacity_is_enforced() {
    let mut a = Allocator::new(AllocConfig {
        max_vip_entries: 3,
        ..config(4)
    })
    .unwrap();
    a.commit(&[add_vip(), add(1, 1), add(2, 1)], T0).unwrap();
    assert_eq!(
        a.commit(&[add(3, 1)], T0).unwrap_err(),
        AllocError::TooManyVipEntries {
            entries: 4,
            limit: 3
        }
    );
    // A server without a per-server port takes no VIP entry.
    a.commit(
        &[Change::AddServer {
            vip_id: VIP,
            server: ServerSpec {
                port: None,
                ..spec(3, 1)
            },
        }],
        T0,
    )
    .unwrap();
}

#[test]
fn port_reuse_within_one_batch_is_a_modify() {
    let mut a = with_servers(2);
    let c = a
        .commit(
            &[
                remove(2),
                Change::AddServer {
                    vip_id: VIP,
                    server: ServerSpec {
                        port: Some(10_002),
                        ..spec(3, 1)
                    },
                },
            ],
            T0 + 5,
        )
        .unwrap();
    assert!(c.diff.batches[0].contains(&Update::Modify(Entry::Vip(
        VipKey {
            dst: VIP_ADDR,
            protocol: 6,
            port: 10_002
        },
        VipAction::ToServer { dip: dip(3) }
    ))));
    assert!(!c.diff.updates().any(|u| matches!(u, Update::Delete(_))));
}

#[test]
fn bucket_bits_must_fit_the_pipeline() {
    for bits in [0, 21, 40] {
        assert!(matches!(
            Allocator::new(config(bits)),
            Err(AllocError::BucketBits { .. })
        ));
    }
    Allocator::new(config(1)).unwrap();
    Allocator::new(config(20)).unwrap();
    assert_eq!(
        AllocConfig::new(&beamer_pipeline::PipelineParams::default()).buckets(),
        65_536
    );
}

#[test]
fn report_lists_removed_servers_and_ideals() {
    let mut a = with_servers(3);
    let c = a.commit(&[remove(3), weight(1, 3)], T0 + 5).unwrap();
    let v = &c.report.vips[0];
    let s: Vec<(Ipv4Addr, ServerState, u32, u32, u32)> = v
        .servers
        .iter()
        .map(|s| (s.dip, s.state, s.weight, s.before, s.after))
        .collect();
    assert_eq!(
        s,
        [
            (dip(1), ServerState::Active, 3, 6, 12),
            (dip(2), ServerState::Active, 1, 5, 4),
            (dip(3), ServerState::Removed, 1, 5, 0),
        ]
    );
    assert_eq!(v.servers[0].ideal.unwrap().as_f64(), 12.0);
    assert!(v.balanced());
    assert_eq!((v.moved, v.minimum), (6, 6));
    let text = c.report.to_string();
    assert!(text.contains("moved 6 (minimum 6)"), "{text}");
    assert!(text.contains("removed"), "{text}");
}

#[test]
fn scripted_scenario_moves_exactly_the_minimum() {
    let mut a = Allocator::new(config(6)).unwrap();
    let out = scenario::run(&mut a, T0, &scenario::example(VIP)).unwrap();
    let table = scenario::movement_table(&out);
    println!("{table}");
    let mut last = 0;
    for o in &out {
        if let Some(c) = &o.commit {
            assert!(c.generation > last);
            last = c.generation;
            for v in &c.report.vips {
                assert_eq!(v.moved, v.minimum, "{}", o.label);
                assert!(v.balanced(), "{}", o.label);
            }
        }
    }
    // Both quiet periods let chains expire.
    assert!(
        out.iter()
            .filter(|o| o.label.starts_with("quiet"))
            .all(|o| o.commit.as_ref().is_some_and(|c| c.report.expired > 0))
    );
    assert!(table.contains("add .5"));
    assert_eq!(table.lines().count(), out.len() + 1);
}

/// The changes that declare `a`'s VIP 0 as it is now, as a configuration
/// file would.
fn declaration(a: &Allocator) -> Vec<Change> {
    let v = a.vip(VIP).unwrap();
    let mut c = vec![Change::AddVip(v.spec().clone())];
    for s in v.servers() {
        c.push(Change::AddServer {
            vip_id: VIP,
            server: ServerSpec {
                dip: s.dip,
                port: s.port,
                weight: s.weight,
            },
        });
        if s.state == ServerState::Draining {
            c.push(drain_of(s.dip));
        }
    }
    c
}

fn drain_of(d: Ipv4Addr) -> Change {
    Change::DrainServer {
        vip_id: VIP,
        dip: d,
    }
}

fn resume_config(a: &Allocator) -> AllocConfig {
    AllocConfig {
        first_generation: a.generation(),
        ..*a.config()
    }
}

#[test]
fn resuming_from_the_switch_moves_nothing() {
    let mut a = with_servers(3);
    a.commit(&[add(4, 2)], T0 + 10).unwrap();
    a.commit(&[drain(1)], T0 + 20).unwrap();
    let (r, c) = Allocator::resume(
        resume_config(&a),
        &declaration(&a),
        a.bucket_entries(),
        T0 + 30,
    )
    .unwrap();
    assert_eq!(c.generation, a.generation() + 1);
    assert!(c.diff.is_empty(), "{:?}", c.diff);
    assert_eq!(c.report.moved(), 0);
    assert_eq!(
        r.bucket_entries().collect::<Vec<_>>(),
        a.bucket_entries().collect::<Vec<_>>()
    );
    assert_eq!(r.next_expiry(), a.next_expiry());
    // Chains adopted are young: other buckets move before them later.
    assert!(
        r.vip(VIP)
            .unwrap()
            .buckets()
            .iter()
            .all(|b| (b.changed_in == a.generation()) == b.has_chain())
    );
}

#[test]
fn resuming_with_a_changed_configuration_moves_the_minimum() {
    let a = with_servers(4);
    // While the controller was down, the operator replaced .4 with .5.
    let mut decl = declaration(&a);
    decl.retain(|c| !matches!(c, Change::AddServer { server, .. } if server.dip == dip(4)));
    decl.push(add(5, 1));
    let (r, c) = Allocator::resume(resume_config(&a), &decl, a.bucket_entries(), T0 + 30).unwrap();
    let v = &c.report.vips[0];
    assert_eq!((v.moved, v.minimum), (4, 4));
    let old = buckets(&a);
    for (o, n) in old.iter().zip(r.vip(VIP).unwrap().buckets()) {
        if o.dip == dip(4) {
            assert_eq!((n.dip, n.prev_dip), (dip(5), Ipv4Addr::UNSPECIFIED));
        } else {
            assert_eq!(n.dip, o.dip);
        }
    }
    assert_eq!(c.diff.len(), 4);
}

#[test]
fn resuming_repairs_missing_and_foreign_entries() {
    let a = with_servers(2);
    let mut installed: Vec<(BucketKey, BucketAction)> = a.bucket_entries().collect();
    installed.retain(|(k, _)| k.bucket % 4 != 0); // 4 buckets lost
    installed[0].1.prev_dip = dip(9); // a chain to a server nobody knows
    installed[0].1.change_time = T0 + 25;
    installed.push((
        BucketKey {
            vip_id: 1,
            bucket: 0,
        },
        installed[1].1,
    ));
    installed.push((
        BucketKey {
            vip_id: VIP,
            bucket: 99,
        },
        installed[1].1,
    ));
    let (r, c) =
        Allocator::resume(resume_config(&a), &declaration(&a), installed, T0 + 30).unwrap();
    let v = &c.report.vips[0];
    assert_eq!((v.moved, v.assigned), (0, 4));
    assert_eq!(c.diff.len(), 4 + 1, "4 inserts and the cleared chain");
    assert!(r.vip(VIP).unwrap().buckets().iter().all(|b| !b.has_chain()));
    assert!(v.balanced());
}
