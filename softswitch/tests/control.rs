//! The control-plane API: P4Runtime write semantics, reads, counters, and
//! table updates while traffic runs.

mod common;

use beamer_pipeline::DropReason;
use beamer_pipeline::PipelineParams;
use beamer_pipeline::entries::{
    BucketAction, BucketKey, Entry, EntryKey, RouteAction, RouteKey, SwitchConfig, Update,
    VipAction, VipKey,
};
use beamer_pipeline::wire::MacAddr;
use beamer_softswitch::{
    Batch, BatchSize, CounterData, CounterError, Switch, TableKind, UpdateError, Verdict,
};
use common::*;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};

fn small() -> PipelineParams {
    PipelineParams {
        buckets: 16,
        max_vips: 2,
        max_vip_entries: 3,
        routes: 2,
    }
}

fn vip_key(port: u16) -> VipKey {
    VipKey {
        dst: ip(VIP),
        protocol: 6,
        port,
    }
}

fn vip(port: u16, vip_id: u16) -> Entry {
    Entry::Vip(vip_key(port), VipAction::ToBuckets { vip_id })
}

fn bucket(vip_id: u16, b: u32, dip: &str) -> Entry {
    Entry::Bucket(
        BucketKey { vip_id, bucket: b },
        BucketAction {
            dip: ip(dip),
            prev_dip: Ipv4Addr::UNSPECIFIED,
            change_time: 0,
        },
    )
}

fn route(prefix: &str, port: u16) -> Entry {
    Entry::Route(
        prefix.parse().unwrap(),
        RouteAction {
            port,
            dst_mac: MacAddr([2, 0, 0, 0, 1, port as u8]),
            src_mac: MacAddr([2, 0, 0, 0, 0, 1]),
        },
    )
}

#[test]
fn insert_modify_delete_follow_p4runtime() {
    let s = Switch::new(small()).unwrap();
    let r = s.apply(&[
        Update::Insert(vip(80, 0)),
        Update::Insert(vip(80, 1)),
        Update::Modify(vip(81, 0)),
        Update::Delete(EntryKey::Vip(vip_key(81))),
        Update::Modify(vip(80, 1)),
    ]);
    assert_eq!(r[0], Ok(()));
    assert_eq!(
        r[1],
        Err(UpdateError::AlreadyExists(EntryKey::Vip(vip_key(80))))
    );
    assert_eq!(r[2], Err(UpdateError::NotFound(EntryKey::Vip(vip_key(81)))));
    assert_eq!(r[3], Err(UpdateError::NotFound(EntryKey::Vip(vip_key(81)))));
    assert_eq!(r[4], Ok(()));
    assert_eq!(s.entry(&EntryKey::Vip(vip_key(80))), Some(vip(80, 1)));
    assert_eq!(
        s.apply(&[Update::Delete(EntryKey::Vip(vip_key(80)))]),
        vec![Ok(())]
    );
    assert_eq!(s.entry(&EntryKey::Vip(vip_key(80))), None);

    // The same for buckets and routes.
    let bk = BucketKey {
        vip_id: 0,
        bucket: 3,
    };
    let r = s.apply(&[
        Update::Insert(bucket(0, 3, "10.1.0.1")),
        Update::Insert(bucket(0, 3, "10.1.0.2")),
        Update::Modify(bucket(0, 4, "10.1.0.2")),
        Update::Delete(EntryKey::Bucket(BucketKey {
            vip_id: 1,
            bucket: 3,
        })),
        Update::Insert(route("10.0.0.0/8", 1)),
        Update::Insert(route("10.0.0.0/8", 2)),
        Update::Delete(EntryKey::Route("11.0.0.0/8".parse().unwrap())),
    ]);
    assert_eq!(r[0], Ok(()));
    assert_eq!(r[1], Err(UpdateError::AlreadyExists(EntryKey::Bucket(bk))));
    assert!(matches!(r[2], Err(UpdateError::NotFound(_))));
    assert!(matches!(r[3], Err(UpdateError::NotFound(_))));
    assert_eq!(r[4], Ok(()));
    assert!(matches!(r[5], Err(UpdateError::AlreadyExists(_))));
    assert!(matches!(r[6], Err(UpdateError::NotFound(_))));
    assert_eq!(
        s.entry(&EntryKey::Bucket(bk)),
        Some(bucket(0, 3, "10.1.0.1"))
    );
    assert_eq!(s.entries(TableKind::Routes), vec![route("10.0.0.0/8", 1)]);
}

#[test]
fn full_tables_are_resource_exhausted_and_change_nothing() {
    let s = Switch::new(small()).unwrap();
    let r = s.apply(&[
        Update::Insert(vip(1, 0)),
        Update::Insert(vip(2, 0)),
        Update::Insert(vip(3, 0)),
        Update::Insert(vip(4, 0)),
    ]);
    assert!(r[..3].iter().all(Result::is_ok));
    assert!(
        matches!(
            &r[3],
            Err(UpdateError::ResourceExhausted { table: "vip", .. })
        ),
        "{r:?}"
    );
    assert_eq!(s.len(TableKind::Vip), 3);
    // Deleting frees the room again.
    s.apply_all(&[Update::Delete(EntryKey::Vip(vip_key(1)))])
        .unwrap();
    s.apply_all(&[Update::Insert(vip(4, 0))]).unwrap();

    // Routes: 2.
    let r = s.apply(&[
        Update::Insert(route("10.0.0.0/8", 1)),
        Update::Insert(route("11.0.0.0/8", 1)),
        Update::Insert(route("12.0.0.0/8", 1)),
    ]);
    assert!(matches!(
        &r[2],
        Err(UpdateError::ResourceExhausted {
            table: "routes",
            ..
        })
    ));
    assert_eq!(s.len(TableKind::Routes), 2);

    // Buckets: at most max_vips = 2 vip_ids.
    let r = s.apply(&[
        Update::Insert(bucket(10, 0, "10.1.0.1")),
        Update::Insert(bucket(11, 0, "10.1.0.1")),
        Update::Insert(bucket(12, 0, "10.1.0.1")),
        Update::Insert(bucket(11, 15, "10.1.0.1")),
    ]);
    assert_eq!(r[0], Ok(()));
    assert_eq!(r[1], Ok(()));
    assert!(matches!(
        &r[2],
        Err(UpdateError::ResourceExhausted {
            table: "buckets",
            ..
        })
    ));
    assert_eq!(r[3], Ok(()));
    assert_eq!(s.len(TableKind::Buckets), 3);
    // Emptying a vip_id frees its set for another one.
    s.apply_all(&[Update::Delete(EntryKey::Bucket(BucketKey {
        vip_id: 10,
        bucket: 0,
    }))])
    .unwrap();
    s.apply_all(&[Update::Insert(bucket(12, 0, "10.1.0.1"))])
        .unwrap();
}

#[test]
fn invalid_entries_are_rejected_and_change_nothing() {
    let s = Switch::new(small()).unwrap();
    let bad_bucket = bucket(0, 16, "10.1.0.1"); // 16 buckets: 0..=15
    let host_bits = Entry::Route(
        RouteKey {
            prefix: ip("10.0.0.1"),
            len: 8,
        },
        RouteAction {
            port: 1,
            dst_mac: MacAddr::default(),
            src_mac: MacAddr::default(),
        },
    );
    let wide_port = route("10.0.0.0/8", 512); // ports are 9 bits
    let r = s.apply(&[
        Update::Insert(bad_bucket),
        Update::Insert(host_bits),
        Update::Insert(wide_port),
    ]);
    for (i, res) in r.iter().enumerate() {
        assert!(
            matches!(res, Err(UpdateError::InvalidArgument(_))),
            "{i}: {res:?}"
        );
    }
    assert!(s.all_entries().is_empty());
    let msg = r[0].as_ref().unwrap_err().to_string();
    assert!(msg.contains("bucket 16") && msg.contains("16"), "{msg}");
}

#[test]
fn reads_all_per_table_and_by_key() {
    let s = fixture_switch();
    assert_eq!(s.entries(TableKind::Vip).len(), 5);
    assert_eq!(s.entries(TableKind::Buckets).len(), 2);
    assert_eq!(s.entries(TableKind::Routes).len(), 3);
    assert!(s.entries(TableKind::Config).is_empty());
    assert_eq!(s.all_entries().len(), 10);
    assert_eq!(
        s.config(),
        SwitchConfig {
            tunnel_src: ip(TUNNEL_SRC),
            generation: GENERATION
        }
    );
    // Buckets read back in (vip_id, bucket) order with their actions.
    let buckets = s.entries(TableKind::Buckets);
    assert_eq!(
        buckets[1],
        Entry::Bucket(
            BucketKey {
                vip_id: 1,
                bucket: BUCKET_A
            },
            BucketAction {
                dip: ip("10.1.0.2"),
                prev_dip: Ipv4Addr::UNSPECIFIED,
                change_time: 0
            }
        )
    );
    for e in s.all_entries() {
        assert_eq!(s.entry(&e.key()), Some(e));
        assert_eq!(TableKind::of_key(&e.key()).schema().id, e.key().table_id());
    }
    assert_eq!(
        TableKind::from_id(beamer_pipeline::schema::ROUTES.id),
        Some(TableKind::Routes)
    );
}

fn run(s: &Switch, frames: &[Vec<u8>]) -> Vec<Verdict> {
    let mut w = s.worker();
    let mut batch = Batch::new(BatchSize::MAX, 1600);
    for f in frames {
        batch.push(f, 0).unwrap();
    }
    w.process_batch(&mut batch);
    batch.iter().map(|p| p.verdict.unwrap()).collect()
}

#[test]
fn counters_reset_on_insert_keep_on_modify_and_can_be_set() {
    let s = fixture_switch();
    let key = EntryKey::Bucket(BucketKey {
        vip_id: 1,
        bucket: BUCKET_A,
    });
    let syn = Pkt::tcp(CLIENT_A, (VIP, 80), 0x02).build();
    let n = syn.len() as u64;
    run(&s, &[syn.clone(), syn.clone()]);
    assert_eq!(
        s.counter(&key).unwrap(),
        CounterData {
            packets: 2,
            bytes: 2 * n
        }
    );

    // MODIFY keeps the counter.
    s.apply_all(&[Update::Modify(bucket(1, BUCKET_A, "10.1.0.9"))])
        .unwrap();
    run(&s, std::slice::from_ref(&syn));
    assert_eq!(s.counter(&key).unwrap().packets, 3);

    // DELETE then INSERT starts from zero.
    s.apply_all(&[Update::Delete(key)]).unwrap();
    assert_eq!(s.counter(&key), Err(CounterError::NotFound(key)));
    s.apply_all(&[Update::Insert(bucket(1, BUCKET_A, "10.1.0.2"))])
        .unwrap();
    assert_eq!(s.counter(&key).unwrap(), CounterData::default());
    run(&s, std::slice::from_ref(&syn));
    assert_eq!(
        s.counter(&key).unwrap(),
        CounterData {
            packets: 1,
            bytes: n
        }
    );

    // Writing a counter sets what later reads add to.
    s.set_counter(
        &key,
        CounterData {
            packets: 100,
            bytes: 1000,
        },
    )
    .unwrap();
    run(&s, std::slice::from_ref(&syn));
    assert_eq!(
        s.counter(&key).unwrap(),
        CounterData {
            packets: 101,
            bytes: 1000 + n
        }
    );

    // VIP entries likewise, and the drop counter.
    let vk = EntryKey::Vip(vip_key(80));
    assert_eq!(s.counter(&vk).unwrap().packets, 5);
    s.set_counter(&vk, CounterData::default()).unwrap();
    assert_eq!(s.counter(&vk).unwrap(), CounterData::default());
    run(&s, &[vec![0u8; 5]]);
    assert_eq!(
        s.drop_counter(DropReason::Truncated),
        CounterData {
            packets: 1,
            bytes: 5
        }
    );
    s.set_drop_counter(DropReason::Truncated, CounterData::default());
    assert_eq!(
        s.drop_counter(DropReason::Truncated),
        CounterData::default()
    );
    s.set_default_counter(
        TableKind::Vip,
        CounterData {
            packets: 7,
            bytes: 7,
        },
    )
    .unwrap();
    assert_eq!(s.default_counter(TableKind::Vip).unwrap().packets, 7);

    // Routes have no direct counter.
    let rk = EntryKey::Route("10.1.0.0/24".parse().unwrap());
    assert_eq!(s.counter(&rk), Err(CounterError::NoCounter("routes")));
    assert!(s.default_counter(TableKind::Routes).is_err());
}

#[test]
fn counters_sum_over_workers() {
    let s = fixture_switch();
    let syn = Pkt::tcp(CLIENT_A, (VIP, 80), 0x02).build();
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let s = s.clone();
            let syn = syn.clone();
            std::thread::spawn(move || {
                for _ in 0..100 {
                    run(&s, std::slice::from_ref(&syn));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let key = EntryKey::Bucket(BucketKey {
        vip_id: 1,
        bucket: BUCKET_A,
    });
    assert_eq!(s.counter(&key).unwrap().packets, 200);
    assert_eq!(s.totals().forwarded.packets, 200);
}

#[test]
fn a_batch_sees_the_tables_it_started_with() {
    let s = fixture_switch();
    let mut w = s.worker();
    let syn = Pkt::tcp(CLIENT_A, (VIP, 80), 0x02).build();
    let through = |w: &mut beamer_softswitch::Worker, change: bool| {
        let mut buf = vec![0u8; 64 + syn.len()];
        buf[64..].copy_from_slice(&syn);
        let mut frame = beamer_softswitch::Frame::new(&mut buf, 64, syn.len()).unwrap();
        let mut run = w.begin();
        if change {
            // The tables change while the batch is in progress...
            s.apply_all(&[Update::Delete(EntryKey::Vip(vip_key(80)))])
                .unwrap();
        }
        run.process(&mut frame, 0)
    };
    // ...but the batch still sees the VIP entry.
    assert_eq!(through(&mut w, true), Verdict::Forward { port: 3 });
    // The same worker's next batch sees the change: the packet is routed,
    // and there is no route for the VIP's network.
    assert_eq!(through(&mut w, false), Verdict::Drop(DropReason::NoRoute));
}

/// Buckets flip between two complete actions while traffic runs; every
/// output must carry one of them whole, never a mix.
#[test]
fn updates_never_show_a_half_written_entry() {
    let s = fixture_switch();
    let states = [
        ("10.1.0.2", "0.0.0.0", 0u32),
        ("10.1.0.3", "10.1.0.2", CHANGE_TIME),
    ];
    let flip = |i: usize| {
        let (dip, prev, t) = states[i % 2];
        Update::Modify(Entry::Bucket(
            BucketKey {
                vip_id: 1,
                bucket: BUCKET_A,
            },
            BucketAction {
                dip: ip(dip),
                prev_dip: ip(prev),
                change_time: t,
            },
        ))
    };
    let stop = AtomicBool::new(false);
    let syn = Pkt::tcp(CLIENT_A, (VIP, 80), 0x02).build();
    std::thread::scope(|scope| {
        let traffic = scope.spawn(|| {
            let mut w = s.worker();
            let mut batch = Batch::new(BatchSize::new(64).unwrap(), 128);
            let mut seen = [0u64; 2];
            while !stop.load(Ordering::Relaxed) {
                batch.clear();
                while !batch.is_full() {
                    batch.push(&syn, 0).unwrap();
                }
                w.process_batch(&mut batch);
                for (_, f) in batch.forwarded() {
                    // Outer dst at 30..34, option prev at 38..42, time 42..46.
                    let got = (&f[30..34], &f[38..42], &f[42..46]);
                    let which = states
                        .iter()
                        .position(|(d, p, t)| {
                            got == (
                                &ip(d).octets()[..],
                                &ip(p).octets()[..],
                                &t.to_be_bytes()[..],
                            )
                        })
                        .unwrap_or_else(|| panic!("a mixed entry: {}", dump(f)));
                    seen[which] += 1;
                }
            }
            seen
        });
        for i in 0..3000 {
            s.apply_all(&[flip(i)]).unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        let seen = traffic.join().unwrap();
        assert!(seen[0] + seen[1] > 0);
    });
}

#[test]
fn reconfigure_clears_tables_and_counters_and_workers_follow() {
    let s = fixture_switch();
    let mut w = s.worker();
    let syn = Pkt::tcp(CLIENT_A, (VIP, 80), 0x02).build();
    let mut batch = Batch::with_defaults();
    batch.push(&syn, 0).unwrap();
    w.process_batch(&mut batch);
    assert_eq!(s.totals().received.packets, 1);

    let p = PipelineParams {
        buckets: 1 << 10,
        ..Default::default()
    };
    s.reconfigure(p).unwrap();
    assert_eq!(s.params(), p);
    assert!(s.all_entries().is_empty());
    assert_eq!(s.config(), SwitchConfig::default());
    assert_eq!(s.totals().received.packets, 0);

    batch.clear();
    batch.push(&syn, 0).unwrap();
    w.process_batch(&mut batch);
    // No VIP entry, no route: routed and dropped.
    assert_eq!(
        batch.get(0).unwrap().verdict,
        Some(Verdict::Drop(DropReason::NoRoute))
    );
    assert_eq!(s.totals().received.packets, 1);
    assert_eq!(s.drop_counter(DropReason::NoRoute).packets, 1);

    let bad = PipelineParams {
        buckets: 1000,
        ..Default::default()
    };
    assert!(s.reconfigure(bad).is_err());
    assert!(
        Switch::new(bad)
            .unwrap_err()
            .to_string()
            .contains("--buckets")
    );
}

#[test]
fn memory_report_counts_entries() {
    let s = fixture_switch();
    let _w = s.worker();
    let m = s.memory();
    assert_eq!((m.vip_entries, m.bucket_entries, m.routes), (5, 2, 3));
    assert!(m.bucket_bytes >= 2 * 16 && m.route_bytes >= 256 * 1024);
    assert_eq!(m.workers, 1);
    assert!(m.counter_bytes_per_worker >= (131_072 + 1024) * 16);
}

#[test]
fn counts_of_finished_workers_are_kept_and_their_blocks_folded() {
    let s = fixture_switch();
    let syn = Pkt::tcp(CLIENT_A, (VIP, 80), 0x02).build();
    for _ in 0..10 {
        run(&s, std::slice::from_ref(&syn)); // a worker each time, dropped
    }
    let live = s.worker();
    let m = s.memory();
    // One folded block for the ten finished workers, one for `live`.
    assert_eq!(m.workers, 2, "{m:?}");
    let key = EntryKey::Bucket(BucketKey {
        vip_id: 1,
        bucket: BUCKET_A,
    });
    assert_eq!(s.counter(&key).unwrap().packets, 10);
    assert_eq!(s.totals().received.packets, 10);
    drop(live);
}
