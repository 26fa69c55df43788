//! Entries written over P4Runtime steer packets through the switch's data
//! path exactly as they say, and the direct and drop counters read over
//! P4Runtime count those packets.

mod p4rt_support;

use beamer_pipeline::entries::{
    BucketAction, BucketKey, Entry, EntryKey, RouteAction, SwitchConfig, VipAction, VipKey,
};
use beamer_pipeline::hash::bucket_of;
use beamer_pipeline::p4rt::{config_to_p4, entry_to_p4, key_to_p4};
use beamer_pipeline::{DropReason, schema};
use p4rt_support::*;
use p4runtime_proto::p4::v1;
use std::collections::HashMap;
use std::net::Ipv4Addr;

const VIP: &str = "203.0.113.10";
const DIPS: [&str; 3] = ["10.1.0.1", "10.1.0.2", "10.1.0.3"];
const NEXT_HOP: &str = "02:00:00:00:00:01";
const OUR_MAC: &str = "02:00:00:00:00:fe";
const BITS: u8 = 12;

fn vip_entry() -> Entry {
    Entry::Vip(
        VipKey {
            dst: ip(VIP),
            protocol: 6,
            port: 80,
        },
        VipAction::ToBuckets { vip_id: 1 },
    )
}

fn per_server_entry() -> Entry {
    Entry::Vip(
        VipKey {
            dst: ip(VIP),
            protocol: 6,
            port: 40001,
        },
        VipAction::ToServer { dip: ip(DIPS[2]) },
    )
}

fn bucket(b: u32, dip: &str) -> Entry {
    Entry::Bucket(
        BucketKey {
            vip_id: 1,
            bucket: b,
        },
        BucketAction {
            dip: ip(dip),
            prev_dip: Ipv4Addr::UNSPECIFIED,
            change_time: 0,
        },
    )
}

fn dip_of(b: u32) -> &'static str {
    DIPS[b as usize % DIPS.len()]
}

fn route() -> Entry {
    Entry::Route(
        "10.1.0.0/16".parse().unwrap(),
        RouteAction {
            port: 5,
            dst_mac: NEXT_HOP.parse().unwrap(),
            src_mac: OUR_MAC.parse().unwrap(),
        },
    )
}

const CONFIG: SwitchConfig = SwitchConfig {
    tunnel_src: Ipv4Addr::new(192, 0, 2, 1),
    generation: 7,
};

/// Every bucket of vip_id 1, the VIP, a per-server port, the route, the
/// config: all over P4Runtime.
async fn install(client: &mut Client) {
    let mut updates: Vec<v1::Update> = (0..1u32 << BITS)
        .map(|b| insert(entry_to_p4(&bucket(b, dip_of(b)))))
        .collect();
    updates.extend(
        [vip_entry(), per_server_entry(), route()]
            .iter()
            .map(|e| insert(entry_to_p4(e))),
    );
    updates.push(modify(config_to_p4(&CONFIG)));
    write(client, updates).await.unwrap();
}

fn clients(n: u16) -> Vec<(Ipv4Addr, u16)> {
    (0..n)
        .map(|i| {
            (
                Ipv4Addr::new(198, 51, 100, (i % 200) as u8 + 1),
                10_000 + i * 7,
            )
        })
        .collect()
}

/// The outer header of an encapsulated frame: (dst MAC, outer src, outer
/// dst, option's prev_dip and generation, inner frame after the outer
/// header).
fn outer(frame: &[u8]) -> (String, Ipv4Addr, Ipv4Addr, Ipv4Addr, u32, &[u8]) {
    let mac = frame[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    let ip4 = |at: usize| Ipv4Addr::new(frame[at], frame[at + 1], frame[at + 2], frame[at + 3]);
    assert_eq!(frame[14], 0x49, "IPv4 with IHL 9 (the option)");
    assert_eq!(&frame[34..36], &[0x61, 16]);
    (
        mac,
        ip4(26),
        ip4(30),
        ip4(38),
        u32::from_be_bytes(frame[46..50].try_into().unwrap()),
        &frame[50..],
    )
}

async fn direct_counter(client: &mut Client, key: &EntryKey) -> (i64, i64) {
    let (got, status) = read(
        client,
        vec![v1::Entity {
            entity: Some(v1::entity::Entity::DirectCounterEntry(
                v1::DirectCounterEntry {
                    table_entry: Some(key_to_p4(key)),
                    data: None,
                },
            )),
        }],
    )
    .await;
    status.unwrap();
    match &got[..] {
        [
            v1::Entity {
                entity: Some(v1::entity::Entity::DirectCounterEntry(d)),
            },
        ] => {
            let d = d.data.unwrap();
            (d.packet_count, d.byte_count)
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn packets_follow_the_entries_and_are_counted() {
    let (server, mut client, _p) = ready(small_params()).await;
    install(&mut client).await;

    let flows = clients(600);
    let frames: Vec<Vec<u8>> = flows
        .iter()
        .map(|(src, sport)| tcp_frame(*src, *sport, ip(VIP), 80))
        .collect();
    let out = send(&server.switch, &frames);
    let mut per_bucket: HashMap<u32, i64> = HashMap::new();
    for ((src, sport), (o, sent)) in flows.iter().zip(out.iter().zip(&frames)) {
        let b = bucket_of(*src, *sport, BITS);
        *per_bucket.entry(b).or_default() += 1;
        let Out::Forward { port, frame } = o else {
            panic!("{src}:{sport} was dropped: {o:?}")
        };
        assert_eq!(*port, 5, "the route's port");
        let (mac, osrc, odst, prev, generation, inner) = outer(frame);
        assert_eq!(mac, NEXT_HOP);
        assert_eq!(osrc, CONFIG.tunnel_src);
        assert_eq!(odst, ip(dip_of(b)), "bucket {b} of {src}:{sport}");
        assert_eq!(prev, Ipv4Addr::UNSPECIFIED);
        assert_eq!(generation, CONFIG.generation);
        assert_eq!(inner, &sent[14..], "the inner packet is untouched");
    }

    // Each bucket's direct counter counted its packets (54-byte frames);
    // the VIP entry's counted them all.
    for (b, n) in &per_bucket {
        let key = bucket(*b, "0.0.0.0").key();
        assert_eq!(direct_counter(&mut client, &key).await, (*n, n * 54));
    }
    assert_eq!(
        direct_counter(&mut client, &vip_entry().key()).await,
        (600, 600 * 54)
    );

    // A per-server port: IP-in-IP to its server, no option.
    let out = send(
        &server.switch,
        &[tcp_frame(ip("198.51.100.9"), 5555, ip(VIP), 40001)],
    );
    let Out::Forward { port: 5, frame } = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!(frame[14], 0x45);
    assert_eq!(&frame[30..34], &ip(DIPS[2]).octets());
    server.stop().await;
}

#[tokio::test]
async fn modify_and_delete_change_forwarding() {
    let (server, mut client, _p) = ready(small_params()).await;
    install(&mut client).await;
    let (src, sport) = (ip("198.51.100.77"), 4242);
    let b = bucket_of(src, sport, BITS);
    let frame = tcp_frame(src, sport, ip(VIP), 80);

    // MODIFY the flow's bucket: now to a new server, with the old one as
    // previous DIP.
    let moved = Entry::Bucket(
        BucketKey {
            vip_id: 1,
            bucket: b,
        },
        BucketAction {
            dip: ip("10.1.0.42"),
            prev_dip: ip(dip_of(b)),
            change_time: 1_700_000_000,
        },
    );
    write(&mut client, vec![modify(entry_to_p4(&moved))])
        .await
        .unwrap();
    let out = send(&server.switch, std::slice::from_ref(&frame));
    let Out::Forward { frame: f, .. } = &out[0] else {
        panic!("{out:?}")
    };
    let (_, _, odst, prev, _, _) = outer(f);
    assert_eq!((odst, prev), (ip("10.1.0.42"), ip(dip_of(b))));
    assert_eq!(
        u32::from_be_bytes(f[42..46].try_into().unwrap()),
        1_700_000_000
    );

    // DELETE it: a bucket miss, counted in the drop counter and in the
    // bucket table's default entry.
    write(&mut client, vec![delete(key_to_p4(&moved.key()))])
        .await
        .unwrap();
    let out = send(&server.switch, std::slice::from_ref(&frame));
    assert_eq!(out, [Out::Drop(DropReason::BucketMiss)]);
    let (got, status) = read(
        &mut client,
        vec![v1::Entity {
            entity: Some(v1::entity::Entity::CounterEntry(v1::CounterEntry {
                counter_id: schema::DROPS.id,
                index: Some(v1::Index {
                    index: DropReason::BucketMiss.index() as i64,
                }),
                data: None,
            })),
        }],
    )
    .await;
    status.unwrap();
    let Some(v1::entity::Entity::CounterEntry(c)) = &got[0].entity else {
        panic!("{got:?}")
    };
    assert_eq!(c.data.unwrap().packet_count, 1);

    // DELETE the route: the other flows are now dropped as no_route.
    write(&mut client, vec![delete(key_to_p4(&route().key()))])
        .await
        .unwrap();
    let out = send(
        &server.switch,
        &[tcp_frame(ip("198.51.100.1"), 1, ip(VIP), 80)],
    );
    let expected = if bucket_of(ip("198.51.100.1"), 1, BITS) == b {
        DropReason::BucketMiss
    } else {
        DropReason::NoRoute
    };
    assert_eq!(out, [Out::Drop(expected)]);
    server.stop().await;
}

#[tokio::test]
async fn the_data_path_keeps_running_through_writes() {
    let (server, mut client, _p) = ready(small_params()).await;
    install(&mut client).await;
    let flows = clients(256);
    let frames: Vec<Vec<u8>> = flows
        .iter()
        .map(|(s, p)| tcp_frame(*s, *p, ip(VIP), 80))
        .collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let data_path = {
        let (switch, stop, frames, flows) = (
            server.switch.clone(),
            stop.clone(),
            frames.clone(),
            flows.clone(),
        );
        std::thread::spawn(move || {
            let mut worker = switch.worker();
            let mut batches = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for ((src, sport), o) in flows.iter().zip(send_with(&mut worker, &frames)) {
                    // Every packet sees a whole entry: its bucket's old or
                    // new server, never anything else.
                    let b = bucket_of(*src, *sport, BITS);
                    let Out::Forward { frame, .. } = o else {
                        panic!("{o:?}")
                    };
                    let (_, _, odst, prev, _, _) = outer(&frame);
                    let old = (ip(dip_of(b)), Ipv4Addr::UNSPECIFIED);
                    let new = (ip(dip_of(b + 1)), ip(dip_of(b)));
                    assert!((odst, prev) == old || (odst, prev) == new, "bucket {b}");
                }
                batches += 1;
            }
            batches
        })
    };
    // Move every bucket, 256 at a time, while packets flow.
    for chunk in (0..1u32 << BITS).collect::<Vec<_>>().chunks(256) {
        let updates = chunk
            .iter()
            .map(|b| {
                modify(entry_to_p4(&Entry::Bucket(
                    BucketKey {
                        vip_id: 1,
                        bucket: *b,
                    },
                    BucketAction {
                        dip: ip(dip_of(b + 1)),
                        prev_dip: ip(dip_of(*b)),
                        change_time: 1,
                    },
                )))
            })
            .collect();
        write(&mut client, updates).await.unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let batches = data_path.join().unwrap();
    assert!(batches > 0);
    // After the last write, every packet goes to its bucket's new server.
    for ((src, sport), o) in flows.iter().zip(send(&server.switch, &frames)) {
        let b = bucket_of(*src, *sport, BITS);
        let Out::Forward { frame, .. } = o else {
            panic!("{o:?}")
        };
        assert_eq!(outer(&frame).2, ip(dip_of(b + 1)));
    }
    server.stop().await;
}
