//! Write and Read over gRPC: every table, default entries, direct and
//! drop counters, wildcards, canonical bytestrings; and every bad input
//! answered with the spec's code, changing nothing.

mod p4rt_support;

use beamer_pipeline::entries::{
    BucketAction, BucketKey, Entry, EntryKey, RouteAction, SwitchConfig, VipAction, VipKey,
};
use beamer_pipeline::p4rt::{Code, config_to_p4, default_entry_to_p4, entry_to_p4, key_to_p4};
use beamer_pipeline::schema::{self, buckets_key, forward, route, routes_key, vip_key};
use beamer_pipeline::{DropReason, PipelineParams};
use beamer_softswitch::CounterData;
use p4rt_support::*;
use p4runtime_proto::p4::v1;
use p4runtime_proto::prost::Message;
use v1::entity::Entity as E;
use v1::update::Type;

fn vip_key(port: u16) -> VipKey {
    VipKey {
        dst: ip("203.0.113.10"),
        protocol: 6,
        port,
    }
}

fn bucket_entry(vip_id: u16, bucket: u32, dip: &str, prev: &str, t: u32) -> Entry {
    Entry::Bucket(
        BucketKey { vip_id, bucket },
        BucketAction {
            dip: ip(dip),
            prev_dip: ip(prev),
            change_time: t,
        },
    )
}

fn route_entry(prefix: &str, port: u16) -> Entry {
    Entry::Route(
        prefix.parse().unwrap(),
        RouteAction {
            port,
            dst_mac: "02:00:00:00:00:01".parse().unwrap(),
            src_mac: "02:00:00:00:00:fe".parse().unwrap(),
        },
    )
}

/// A VIP with buckets, a per-server port, five buckets and two routes (one
/// of them /0, whose match is empty).
fn fixture() -> Vec<Entry> {
    vec![
        Entry::Vip(vip_key(80), VipAction::ToBuckets { vip_id: 1 }),
        Entry::Vip(
            vip_key(8001),
            VipAction::ToServer {
                dip: ip("10.0.0.9"),
            },
        ),
        bucket_entry(1, 0, "10.0.0.1", "0.0.0.0", 0),
        bucket_entry(1, 1, "10.0.0.2", "0.0.0.0", 0),
        bucket_entry(1, 2, "10.0.0.3", "0.0.0.0", 0),
        bucket_entry(1, 3, "10.0.0.1", "0.0.0.0", 0),
        bucket_entry(1, 4095, "10.0.0.2", "10.0.0.3", 1_700_000_000),
        route_entry("10.0.0.0/8", 2),
        route_entry("0.0.0.0/0", 3),
    ]
}

fn entities(entries: &[Entry]) -> Vec<v1::Entity> {
    entries
        .iter()
        .map(|e| table_entity(entry_to_p4(e)))
        .collect()
}

/// Entities in a comparable order.
fn sorted(mut v: Vec<v1::Entity>) -> Vec<v1::Entity> {
    v.sort_by_key(|e| e.encode_to_vec());
    v
}

async fn loaded() -> (Server, Client, Stream) {
    let (server, mut client, p) = ready(small_params()).await;
    write(
        &mut client,
        fixture().iter().map(|e| insert(entry_to_p4(e))).collect(),
    )
    .await
    .unwrap();
    (server, client, p)
}

fn table_read(table_id: u32) -> v1::Entity {
    table_entity(v1::TableEntry {
        table_id,
        ..Default::default()
    })
}

#[tokio::test]
async fn entries_of_every_table_read_back_as_written() {
    let (server, mut client, _p) = loaded().await;
    let mut expected = fixture();
    expected.sort_by_key(|e| e.key());
    assert_eq!(server.switch.all_entries(), expected);

    // table_id 0: every table.
    let (got, status) = read(&mut client, vec![table_read(0)]).await;
    status.unwrap();
    assert_eq!(sorted(got), sorted(entities(&fixture())));

    // One table at a time; the config table has only its default entry.
    for (table, n) in [
        (&schema::VIP, 2),
        (&schema::BUCKETS, 5),
        (&schema::ROUTES, 2),
        (&schema::CONFIG, 0),
    ] {
        let (got, status) = read(&mut client, vec![table_read(table.id)]).await;
        status.unwrap();
        assert_eq!(got.len(), n, "{}", table.name);
    }

    // One entry by its key; a key that is not there reads nothing.
    let one = fixture()[6];
    let (got, status) = read(&mut client, vec![table_entity(key_to_p4(&one.key()))]).await;
    status.unwrap();
    assert_eq!(got, entities(&[one]));
    let absent = key_to_p4(&EntryKey::Bucket(BucketKey {
        vip_id: 1,
        bucket: 77,
    }));
    let (got, status) = read(&mut client, vec![table_entity(absent)]).await;
    status.unwrap();
    assert!(got.is_empty());

    // By action: the per-server port only.
    let (got, status) = read(
        &mut client,
        vec![table_entity(v1::TableEntry {
            table_id: schema::VIP.id,
            action: Some(v1::TableAction {
                r#type: Some(v1::table_action::Type::Action(v1::Action {
                    action_id: schema::TO_SERVER.id,
                    params: vec![],
                })),
            }),
            ..Default::default()
        })],
    )
    .await;
    status.unwrap();
    assert_eq!(got, entities(&fixture()[1..2]));

    // Default entries, on request only: the const miss actions and the
    // config.
    for table in schema::TABLES {
        let (got, status) = read(
            &mut client,
            vec![table_entity(v1::TableEntry {
                table_id: table.id,
                is_default_action: true,
                ..Default::default()
            })],
        )
        .await;
        status.unwrap();
        assert_eq!(
            got,
            vec![table_entity(default_entry_to_p4(
                table,
                &SwitchConfig::default()
            ))],
            "{}",
            table.name
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn modify_and_delete() {
    let (server, mut client, _p) = loaded().await;
    let moved = bucket_entry(1, 2, "10.0.0.4", "10.0.0.3", 1_700_000_100);
    let rerouted = route_entry("10.0.0.0/8", 7);
    let retargeted = Entry::Vip(
        vip_key(8001),
        VipAction::ToServer {
            dip: ip("10.0.0.10"),
        },
    );
    let config = SwitchConfig {
        tunnel_src: ip("192.0.2.1"),
        generation: 5,
    };
    write(
        &mut client,
        vec![
            modify(entry_to_p4(&moved)),
            modify(entry_to_p4(&rerouted)),
            modify(entry_to_p4(&retargeted)),
            modify(config_to_p4(&config)),
        ],
    )
    .await
    .unwrap();
    for e in [moved, rerouted, retargeted] {
        assert_eq!(server.switch.entry(&e.key()), Some(e));
        let (got, status) = read(&mut client, vec![table_entity(key_to_p4(&e.key()))]).await;
        status.unwrap();
        assert_eq!(got, entities(&[e]));
    }
    assert_eq!(server.switch.config(), config);
    let (got, status) = read(
        &mut client,
        vec![table_entity(v1::TableEntry {
            table_id: schema::CONFIG.id,
            is_default_action: true,
            ..Default::default()
        })],
    )
    .await;
    status.unwrap();
    assert_eq!(got, vec![table_entity(config_to_p4(&config))]);

    // MODIFY of the config default with no action resets it (spec,
    // "Default Entry").
    write(
        &mut client,
        vec![modify(v1::TableEntry {
            table_id: schema::CONFIG.id,
            is_default_action: true,
            ..Default::default()
        })],
    )
    .await
    .unwrap();
    assert_eq!(server.switch.config(), SwitchConfig::default());

    // DELETE needs only the key.
    let gone = [fixture()[0], fixture()[2], fixture()[8]];
    write(
        &mut client,
        gone.iter().map(|e| delete(key_to_p4(&e.key()))).collect(),
    )
    .await
    .unwrap();
    for e in gone {
        assert_eq!(server.switch.entry(&e.key()), None);
    }
    assert_eq!(server.switch.all_entries().len(), fixture().len() - 3);
    server.stop().await;
}

fn counts(packets: i64, bytes: i64) -> Option<v1::CounterData> {
    Some(v1::CounterData {
        packet_count: packets,
        byte_count: bytes,
    })
}

fn direct_counter(te: Option<v1::TableEntry>, data: Option<v1::CounterData>) -> E {
    E::DirectCounterEntry(v1::DirectCounterEntry {
        table_entry: te,
        data,
    })
}

#[tokio::test]
async fn direct_counters_in_entries_and_as_entities() {
    let (server, mut client, _p) = loaded().await;
    let e = bucket_entry(1, 100, "10.0.0.5", "0.0.0.0", 0);
    let key = e.key();

    // INSERT with an initial value.
    write(
        &mut client,
        vec![insert(v1::TableEntry {
            counter_data: counts(5, 500),
            ..entry_to_p4(&e)
        })],
    )
    .await
    .unwrap();
    assert_eq!(
        server.switch.counter(&key).unwrap(),
        CounterData {
            packets: 5,
            bytes: 500
        }
    );
    // Read with counter_data set: the value comes back in the entry.
    let (got, status) = read(
        &mut client,
        vec![table_entity(v1::TableEntry {
            counter_data: Some(Default::default()),
            ..key_to_p4(&key)
        })],
    )
    .await;
    status.unwrap();
    assert_eq!(
        got,
        vec![table_entity(v1::TableEntry {
            counter_data: counts(5, 500),
            ..entry_to_p4(&e)
        })]
    );

    // MODIFY with counter data and no action: the action stays.
    write(
        &mut client,
        vec![modify(v1::TableEntry {
            counter_data: counts(7, 700),
            ..key_to_p4(&key)
        })],
    )
    .await
    .unwrap();
    assert_eq!(server.switch.entry(&key), Some(e));
    assert_eq!(server.switch.counter(&key).unwrap().packets, 7);

    // DirectCounterEntry MODIFY, then read by key.
    write(
        &mut client,
        vec![update(
            Type::Modify,
            direct_counter(Some(key_to_p4(&key)), counts(9, 900)),
        )],
    )
    .await
    .unwrap();
    let (got, status) = read(
        &mut client,
        vec![v1::Entity {
            entity: Some(direct_counter(Some(key_to_p4(&key)), None)),
        }],
    )
    .await;
    status.unwrap();
    assert_eq!(
        got,
        vec![v1::Entity {
            entity: Some(direct_counter(Some(key_to_p4(&key)), counts(9, 900)))
        }]
    );

    // Every direct counter: the VIP and bucket entries (8 of them), none
    // for routes.
    let (got, status) = read(
        &mut client,
        vec![v1::Entity {
            entity: Some(direct_counter(None, None)),
        }],
    )
    .await;
    status.unwrap();
    assert_eq!(got.len(), 2 + 6);
    // The default entry's counter (table misses).
    let (got, status) = read(
        &mut client,
        vec![v1::Entity {
            entity: Some(direct_counter(
                Some(v1::TableEntry {
                    table_id: schema::BUCKETS.id,
                    is_default_action: true,
                    ..Default::default()
                }),
                None,
            )),
        }],
    )
    .await;
    status.unwrap();
    assert_eq!(got.len(), 1);

    // A missing entry's counter: NOT_FOUND, for writes and reads.
    let absent = key_to_p4(&EntryKey::Bucket(BucketKey {
        vip_id: 1,
        bucket: 101,
    }));
    let before = state(&server.switch);
    let err = write(
        &mut client,
        vec![update(
            Type::Modify,
            direct_counter(Some(absent.clone()), counts(1, 1)),
        )],
    )
    .await
    .unwrap_err();
    assert_eq!(batch_codes(&err), [Code::NotFound]);
    let (got, status) = read(
        &mut client,
        vec![v1::Entity {
            entity: Some(direct_counter(Some(absent), None)),
        }],
    )
    .await;
    assert!(got.is_empty());
    assert_eq!(batch_codes(&status.unwrap_err()), [Code::NotFound]);
    // INSERT or DELETE of a DirectCounterEntry: INVALID_ARGUMENT.
    for kind in [Type::Insert, Type::Delete] {
        let err = write(
            &mut client,
            vec![update(
                kind,
                direct_counter(Some(key_to_p4(&key)), counts(1, 1)),
            )],
        )
        .await
        .unwrap_err();
        assert_eq!(batch_codes(&err), [Code::InvalidArgument], "{kind:?}");
    }
    assert_eq!(state(&server.switch), before);
    server.stop().await;
}

fn drop_cell(index: Option<i64>, data: Option<v1::CounterData>) -> E {
    E::CounterEntry(v1::CounterEntry {
        counter_id: schema::DROPS.id,
        index: index.map(|index| v1::Index { index }),
        data,
    })
}

#[tokio::test]
async fn the_drop_counter() {
    let (server, mut client, _p) = ready(small_params()).await;
    let all = |n: &[v1::Entity]| -> Vec<(i64, i64)> {
        n.iter()
            .map(|e| match &e.entity {
                Some(E::CounterEntry(c)) => (c.index.unwrap().index, c.data.unwrap().packet_count),
                other => panic!("{other:?}"),
            })
            .collect()
    };
    let (got, status) = read(
        &mut client,
        vec![v1::Entity {
            entity: Some(drop_cell(None, None)),
        }],
    )
    .await;
    status.unwrap();
    assert_eq!(all(&got), (0..7).map(|i| (i, 0)).collect::<Vec<_>>());

    // Set one cell, then all.
    write(
        &mut client,
        vec![update(Type::Modify, drop_cell(Some(6), counts(3, 300)))],
    )
    .await
    .unwrap();
    assert_eq!(server.switch.drop_counter(DropReason::NoRoute).packets, 3);
    let (got, status) = read(
        &mut client,
        vec![v1::Entity {
            entity: Some(drop_cell(Some(6), None)),
        }],
    )
    .await;
    status.unwrap();
    assert_eq!(all(&got), [(6, 3)]);
    write(
        &mut client,
        vec![update(Type::Modify, drop_cell(None, counts(1, 64)))],
    )
    .await
    .unwrap();
    assert!(server.switch.drop_counters().iter().all(|c| *c
        == CounterData {
            packets: 1,
            bytes: 64
        }));
    // Every counter of the program (counter_id 0): the drop counter.
    let (got, status) = read(
        &mut client,
        vec![v1::Entity {
            entity: Some(E::CounterEntry(Default::default())),
        }],
    )
    .await;
    status.unwrap();
    assert_eq!(got.len(), DropReason::COUNT);

    let before = state(&server.switch);
    for (what, entity, code) in [
        (
            "index 7",
            drop_cell(Some(7), counts(1, 1)),
            Code::OutOfRange,
        ),
        (
            "index -1",
            drop_cell(Some(-1), counts(1, 1)),
            Code::InvalidArgument,
        ),
        (
            "unknown counter",
            E::CounterEntry(v1::CounterEntry {
                counter_id: 0x1200_0099,
                index: None,
                data: counts(1, 1),
            }),
            Code::InvalidArgument,
        ),
    ] {
        let err = write(&mut client, vec![update(Type::Modify, entity.clone())])
            .await
            .unwrap_err();
        assert_eq!(batch_codes(&err), [code], "{what}");
        let (_, status) = read(
            &mut client,
            vec![v1::Entity {
                entity: Some(entity),
            }],
        )
        .await;
        assert_eq!(batch_codes(&status.unwrap_err()), [code], "read {what}");
    }
    let err = write(
        &mut client,
        vec![update(Type::Insert, drop_cell(Some(1), counts(1, 1)))],
    )
    .await
    .unwrap_err();
    assert_eq!(batch_codes(&err), [Code::InvalidArgument]);
    assert_eq!(state(&server.switch), before);
    server.stop().await;
}

#[tokio::test]
async fn padded_bytestrings_are_accepted_and_read_back_canonical() {
    let (server, mut client, _p) = ready(small_params()).await;
    let e = bucket_entry(1, 5, "10.0.0.1", "0.0.0.0", 0);
    let mut te = entry_to_p4(&e);
    // Pad every value to 8 bytes with zeros.
    for m in &mut te.r#match {
        if let Some(v1::field_match::FieldMatchType::Exact(x)) = &mut m.field_match_type {
            let mut padded = vec![0; 8 - x.value.len()];
            padded.extend_from_slice(&x.value);
            x.value = padded;
        }
    }
    if let Some(v1::table_action::Type::Action(a)) =
        te.action.as_mut().and_then(|a| a.r#type.as_mut())
    {
        for p in &mut a.params {
            let mut padded = vec![0; 8 - p.value.len()];
            padded.extend_from_slice(&p.value);
            p.value = padded;
        }
    }
    assert_ne!(te, entry_to_p4(&e));
    write(&mut client, vec![insert(te.clone())]).await.unwrap();
    // The padded form names the same entry: a second INSERT collides.
    let err = write(&mut client, vec![insert(entry_to_p4(&e))])
        .await
        .unwrap_err();
    assert_eq!(batch_codes(&err), [Code::AlreadyExists]);
    let (got, status) = read(&mut client, vec![table_read(schema::BUCKETS.id)]).await;
    status.unwrap();
    // Canonical: prev_dip 0 is one zero byte.
    assert_eq!(got, entities(&[e]));
    let Some(E::TableEntry(back)) = &got[0].entity else {
        unreachable!()
    };
    let Some(v1::table_action::Type::Action(a)) = back.action.as_ref().unwrap().r#type.as_ref()
    else {
        unreachable!()
    };
    assert_eq!(a.params[1].value, [0u8]);
    assert_eq!(a.params[0].value, [10, 0, 0, 1]);
    server.stop().await;
}

// ---- bad input --------------------------------------------------------------

fn exact(field_id: u32, value: &[u8]) -> v1::FieldMatch {
    v1::FieldMatch::exact(field_id, value)
}

fn action(action_id: u32, params: &[(u32, &[u8])]) -> Option<v1::TableAction> {
    let params = params.iter().map(|&(id, v)| v1::action::Param::new(id, v));
    Some(v1::TableAction::action(action_id, params))
}

/// A well-formed bucket INSERT, (vip_id 1, bucket 9) -> 10.0.0.1.
fn good_bucket() -> v1::TableEntry {
    v1::TableEntry {
        table_id: schema::BUCKETS.id,
        r#match: vec![
            exact(buckets_key::VIP_ID, &[1]),
            exact(buckets_key::BUCKET, &[9]),
        ],
        action: action(
            schema::FORWARD.id,
            &[
                (forward::DIP, &[10, 0, 0, 1]),
                (forward::PREV_DIP, &[0]),
                (forward::CHANGE_TIME, &[0]),
            ],
        ),
        ..Default::default()
    }
}

fn with(f: impl FnOnce(&mut v1::TableEntry)) -> v1::TableEntry {
    let mut te = good_bucket();
    f(&mut te);
    te
}

fn good_route() -> v1::TableEntry {
    entry_to_p4(&route_entry("192.0.2.0/24", 1))
}

/// Every bad update of the issue and then some: (what, update, code).
fn bad_updates() -> Vec<(&'static str, v1::Update, Code)> {
    use Code::*;
    let present = entry_to_p4(&fixture()[2]);
    let lpm = |value: &[u8], prefix_len| v1::FieldMatch {
        field_id: routes_key::DST_ADDR,
        field_match_type: Some(v1::field_match::FieldMatchType::Lpm(v1::field_match::Lpm {
            value: value.to_vec(),
            prefix_len,
        })),
    };
    vec![
        (
            "unknown table id",
            insert(with(|t| t.table_id = 0x0200_0099)),
            InvalidArgument,
        ),
        (
            "table id 0",
            insert(with(|t| t.table_id = 0)),
            InvalidArgument,
        ),
        (
            "an action id as table id",
            insert(with(|t| t.table_id = schema::FORWARD.id)),
            InvalidArgument,
        ),
        (
            "unknown action id",
            insert(with(|t| t.action = action(0x0100_0099, &[]))),
            InvalidArgument,
        ),
        (
            "another table's action",
            insert(with(|t| {
                t.action = action(schema::TO_SERVER.id, &[(1, &[1])])
            })),
            InvalidArgument,
        ),
        (
            "the miss action in an entry (@defaultonly)",
            insert(with(|t| t.action = action(schema::BUCKET_MISS.id, &[]))),
            PermissionDenied,
        ),
        (
            "unknown match field id",
            insert(with(|t| t.r#match.push(exact(9, &[1])))),
            InvalidArgument,
        ),
        (
            "missing match field",
            insert(with(|t| {
                t.r#match.pop();
            })),
            InvalidArgument,
        ),
        (
            "match field given twice",
            insert(with(|t| t.r#match.push(exact(buckets_key::BUCKET, &[9])))),
            InvalidArgument,
        ),
        (
            "an LPM match on an exact field",
            insert(with(|t| {
                t.r#match[1] = v1::FieldMatch {
                    field_id: buckets_key::BUCKET,
                    ..lpm(&[9], 8)
                }
            })),
            InvalidArgument,
        ),
        (
            "unknown param id",
            insert(with(|t| {
                t.action = action(
                    schema::FORWARD.id,
                    &[(1, &[1]), (2, &[0]), (3, &[0]), (4, &[0])],
                )
            })),
            InvalidArgument,
        ),
        (
            "missing param",
            insert(with(|t| {
                t.action = action(schema::FORWARD.id, &[(1, &[1]), (2, &[0])])
            })),
            InvalidArgument,
        ),
        (
            "bucket 4096 in a 12-bit key",
            insert(with(|t| {
                t.r#match[1] = exact(buckets_key::BUCKET, &[0x10, 0x00])
            })),
            OutOfRange,
        ),
        (
            "vip_id of 17 bits",
            insert(with(|t| {
                t.r#match[0] = exact(buckets_key::VIP_ID, &[1, 0, 0])
            })),
            OutOfRange,
        ),
        (
            "a 5-byte dip that needs 33 bits",
            insert(with(|t| {
                t.action = action(
                    schema::FORWARD.id,
                    &[(1, &[1, 0, 0, 0, 0]), (2, &[0]), (3, &[0])],
                )
            })),
            OutOfRange,
        ),
        (
            "an empty bytestring",
            insert(with(|t| t.r#match[0] = exact(buckets_key::VIP_ID, &[]))),
            OutOfRange,
        ),
        (
            "route port 512 in 9 bits",
            insert(v1::TableEntry {
                action: action(
                    schema::ROUTE.id,
                    &[
                        (route::PORT, &[2, 0]),
                        (route::DST_MAC, &[1]),
                        (route::SRC_MAC, &[1]),
                    ],
                ),
                ..good_route()
            }),
            OutOfRange,
        ),
        (
            "a MAC of 7 bytes",
            insert(v1::TableEntry {
                action: action(
                    schema::ROUTE.id,
                    &[
                        (route::PORT, &[1]),
                        (route::DST_MAC, &[1, 2, 3, 4, 5, 6, 7]),
                        (route::SRC_MAC, &[1]),
                    ],
                ),
                ..good_route()
            }),
            OutOfRange,
        ),
        (
            "LPM with host bits set",
            insert(v1::TableEntry {
                r#match: vec![lpm(&[192, 0, 2, 1], 24)],
                ..good_route()
            }),
            InvalidArgument,
        ),
        (
            "LPM prefix length 33",
            insert(v1::TableEntry {
                r#match: vec![lpm(&[192, 0, 2, 0], 33)],
                ..good_route()
            }),
            InvalidArgument,
        ),
        (
            "a priority",
            insert(with(|t| t.priority = 10)),
            InvalidArgument,
        ),
        (
            "is_const",
            insert(with(|t| t.is_const = true)),
            InvalidArgument,
        ),
        (
            "an idle timeout",
            insert(with(|t| t.idle_timeout_ns = 1_000)),
            InvalidArgument,
        ),
        (
            "metadata",
            insert(with(|t| t.metadata = b"x".to_vec())),
            Unimplemented,
        ),
        (
            "counter data on routes",
            insert(v1::TableEntry {
                counter_data: counts(1, 1),
                ..good_route()
            }),
            InvalidArgument,
        ),
        (
            "negative counter data",
            insert(with(|t| t.counter_data = counts(-1, 0))),
            InvalidArgument,
        ),
        (
            "INSERT with no action",
            insert(with(|t| t.action = None)),
            InvalidArgument,
        ),
        ("duplicate INSERT", insert(present.clone()), AlreadyExists),
        ("DELETE of a missing entry", delete(good_bucket()), NotFound),
        ("MODIFY of a missing entry", modify(good_bucket()), NotFound),
        (
            "MODIFY of a const default (vip_miss)",
            modify(v1::TableEntry {
                table_id: schema::VIP.id,
                is_default_action: true,
                action: action(schema::VIP_MISS.id, &[]),
                ..Default::default()
            }),
            PermissionDenied,
        ),
        (
            "INSERT of a default entry",
            insert(config_to_p4(&SwitchConfig::default())),
            InvalidArgument,
        ),
        (
            "DELETE of a default entry",
            delete(config_to_p4(&SwitchConfig::default())),
            InvalidArgument,
        ),
        (
            "a default entry with a match",
            modify(v1::TableEntry {
                r#match: vec![exact(1, &[1])],
                ..config_to_p4(&SwitchConfig::default())
            }),
            InvalidArgument,
        ),
        (
            "INSERT into the keyless config table",
            insert(v1::TableEntry {
                is_default_action: false,
                ..config_to_p4(&SwitchConfig::default())
            }),
            InvalidArgument,
        ),
        (
            "update type unset",
            v1::Update {
                r#type: 0,
                ..insert(good_bucket())
            },
            InvalidArgument,
        ),
        (
            "update type 9",
            v1::Update {
                r#type: 9,
                ..insert(good_bucket())
            },
            InvalidArgument,
        ),
        (
            "no entity",
            v1::Update {
                r#type: Type::Insert as i32,
                entity: None,
            },
            InvalidArgument,
        ),
        (
            "an empty entity",
            v1::Update {
                r#type: Type::Insert as i32,
                entity: Some(v1::Entity { entity: None }),
            },
            InvalidArgument,
        ),
        (
            "a meter (there are none)",
            update(
                Type::Modify,
                E::MeterEntry(v1::MeterEntry {
                    meter_id: 0x1500_0001,
                    ..Default::default()
                }),
            ),
            InvalidArgument,
        ),
        (
            "a multicast group",
            update(
                Type::Insert,
                E::PacketReplicationEngineEntry(Default::default()),
            ),
            Unimplemented,
        ),
    ]
}

#[tokio::test]
async fn every_bad_update_gets_the_spec_code_and_changes_nothing() {
    let (server, mut client, _p) = loaded().await;
    let before = state(&server.switch);
    for (what, bad, code) in bad_updates() {
        let err = write(&mut client, vec![bad]).await.unwrap_err();
        let details = p4runtime_proto::status::batch_errors(&err);
        assert_eq!(batch_codes(&err), [code], "{what}: {err:?}");
        assert!(!details[0].message.is_empty(), "{what}: no message");
        assert_eq!(state(&server.switch), before, "{what}");
    }
    // The same updates in one batch, each between two good ones: one error
    // per update, in order, OK for the good ones, which all took effect.
    let bad = bad_updates();
    let mut batch = Vec::new();
    let mut expected = Vec::new();
    let mut good = Vec::new();
    for (i, (_, u, code)) in bad.into_iter().enumerate() {
        let e = bucket_entry(0, 1000 + i as u32, "10.9.0.1", "0.0.0.0", 0);
        good.push(e);
        batch.push(insert(entry_to_p4(&e)));
        batch.push(u);
        expected.extend([Code::Ok, code]);
    }
    let err = write(&mut client, batch).await.unwrap_err();
    assert_eq!(batch_codes(&err), expected);
    assert!(err.message().contains("failed"), "{err:?}");
    for e in good {
        assert_eq!(server.switch.entry(&e.key()), Some(e));
    }
    let mut after = state(&server.switch);
    after
        .entries
        .retain(|e| !matches!(e, Entry::Bucket(k, _) if k.vip_id == 0));
    after.counters.truncate(0);
    let mut before = before;
    before.counters.truncate(0);
    assert_eq!(after, before);
    server.stop().await;
}

#[tokio::test]
async fn full_tables_are_resource_exhausted() {
    let params = PipelineParams {
        routes: 4,
        max_vips: 2,
        ..small_params()
    };
    let (server, mut client, _p) = ready(params).await;
    let routes: Vec<_> = (0..4)
        .map(|i| insert(entry_to_p4(&route_entry(&format!("10.{i}.0.0/16"), 1))))
        .collect();
    write(&mut client, routes).await.unwrap();
    write(
        &mut client,
        vec![
            insert(entry_to_p4(&bucket_entry(1, 0, "10.0.0.1", "0.0.0.0", 0))),
            insert(entry_to_p4(&bucket_entry(2, 0, "10.0.0.1", "0.0.0.0", 0))),
        ],
    )
    .await
    .unwrap();
    let before = state(&server.switch);
    let err = write(
        &mut client,
        vec![
            insert(entry_to_p4(&route_entry("10.9.0.0/16", 1))),
            // A third vip_id with buckets: max_vips is 2.
            insert(entry_to_p4(&bucket_entry(3, 0, "10.0.0.1", "0.0.0.0", 0))),
            // A new bucket of an existing vip_id still fits.
            insert(entry_to_p4(&bucket_entry(2, 1, "10.0.0.1", "0.0.0.0", 0))),
        ],
    )
    .await
    .unwrap_err();
    assert_eq!(
        batch_codes(&err),
        [Code::ResourceExhausted, Code::ResourceExhausted, Code::Ok]
    );
    let mut after = state(&server.switch);
    assert_eq!(after.entries.len(), before.entries.len() + 1);
    after
        .entries
        .retain(|e| e.key() != bucket_entry(2, 1, "0.0.0.0", "0.0.0.0", 0).key());
    assert_eq!(after.entries, before.entries);
    server.stop().await;
}

#[tokio::test]
async fn rollback_on_error_is_all_or_nothing() {
    use v1::write_request::Atomicity;
    let (server, mut client, _p) = loaded().await;
    let rollback = |updates| v1::WriteRequest {
        atomicity: Atomicity::RollbackOnError as i32,
        ..write_request(1, updates)
    };
    // Counters and config worth restoring.
    write(
        &mut client,
        vec![
            update(
                Type::Modify,
                direct_counter(Some(key_to_p4(&fixture()[3].key())), counts(4, 400)),
            ),
            update(Type::Modify, drop_cell(Some(2), counts(6, 600))),
            modify(config_to_p4(&SwitchConfig {
                tunnel_src: ip("192.0.2.1"),
                generation: 1,
            })),
        ],
    )
    .await
    .unwrap();
    let before = state(&server.switch);

    // Every kind of change, then a duplicate INSERT: all undone.
    let batch = vec![
        insert(entry_to_p4(&bucket_entry(1, 200, "10.0.0.8", "0.0.0.0", 0))),
        modify(entry_to_p4(&bucket_entry(1, 0, "10.0.0.8", "10.0.0.1", 5))),
        delete(key_to_p4(&fixture()[3].key())),
        delete(key_to_p4(&fixture()[0].key())),
        modify(entry_to_p4(&route_entry("10.0.0.0/8", 9))),
        update(
            Type::Modify,
            direct_counter(Some(key_to_p4(&fixture()[4].key())), counts(1, 1)),
        ),
        update(Type::Modify, drop_cell(None, counts(0, 0))),
        modify(config_to_p4(&SwitchConfig::default())),
        insert(entry_to_p4(&fixture()[1])),
    ];
    let n = batch.len();
    let err = client.write(rollback(batch)).await.unwrap_err();
    let mut expected = vec![Code::Aborted; n - 1];
    expected.push(Code::AlreadyExists);
    assert_eq!(batch_codes(&err), expected);
    assert_eq!(state(&server.switch), before);

    // An invalid update: nothing is even tried.
    let err = client
        .write(rollback(vec![
            insert(entry_to_p4(&bucket_entry(1, 201, "10.0.0.8", "0.0.0.0", 0))),
            insert(with(|t| t.table_id = 0x0200_0099)),
        ]))
        .await
        .unwrap_err();
    assert_eq!(batch_codes(&err), [Code::Aborted, Code::InvalidArgument]);
    assert_eq!(state(&server.switch), before);

    // A good batch is applied.
    let e = bucket_entry(1, 202, "10.0.0.8", "0.0.0.0", 0);
    client
        .write(rollback(vec![insert(entry_to_p4(&e))]))
        .await
        .unwrap();
    assert_eq!(server.switch.entry(&e.key()), Some(e));
    server.stop().await;
}

#[tokio::test]
async fn dataplane_atomic_is_unimplemented() {
    use v1::write_request::Atomicity;
    let (server, mut client, _p) = loaded().await;
    let before = state(&server.switch);
    for (atomicity, code) in [
        (
            Atomicity::DataplaneAtomic as i32,
            tonic::Code::Unimplemented,
        ),
        (7, tonic::Code::InvalidArgument),
    ] {
        let err = client
            .write(v1::WriteRequest {
                atomicity,
                ..write_request(1, vec![insert(good_bucket())])
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "{atomicity}");
        assert_eq!(state(&server.switch), before);
    }
    server.stop().await;
}

/// `n` bucket INSERTs over vip_ids 0 and 1.
fn bucket_inserts(n: u32, bits: u32) -> Vec<v1::Update> {
    (0..n)
        .map(|i| {
            insert(entry_to_p4(&bucket_entry(
                (i >> bits) as u16,
                i & ((1 << bits) - 1),
                "10.0.0.1",
                "0.0.0.0",
                0,
            )))
        })
        .collect()
}

#[tokio::test]
async fn huge_batches() {
    // Over the update limit: refused whole, RESOURCE_EXHAUSTED, no details.
    let server = Server::start_with(small_params(), |b| b.max_updates_per_write(1000)).await;
    let mut client = server.client().await;
    let _p = primary(&mut client, 1).await;
    set_pipeline(
        &mut client,
        1,
        v1::set_forwarding_pipeline_config_request::Action::VerifyAndCommit,
        Some(p4info(&small_params())),
    )
    .await
    .unwrap();
    let err = write(&mut client, bucket_inserts(1001, 12))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err:?}");
    assert!(p4runtime_proto::status::batch_errors(&err).is_empty());
    assert!(server.switch.all_entries().is_empty());
    write(&mut client, bucket_inserts(1000, 12)).await.unwrap();
    assert_eq!(server.switch.all_entries().len(), 1000);
    server.stop().await;

    // Over the message size: gRPC's RESOURCE_EXHAUSTED, nothing applied.
    let server = Server::start_with(small_params(), |b| b.max_message_bytes(64 << 10)).await;
    let mut client = server.client().await;
    let _p = primary(&mut client, 1).await;
    set_pipeline(
        &mut client,
        1,
        v1::set_forwarding_pipeline_config_request::Action::VerifyAndCommit,
        Some(p4info(&small_params())),
    )
    .await
    .unwrap();
    let updates = bucket_inserts(4000, 12);
    assert!(write_request(1, updates.clone()).encoded_len() > 64 << 10);
    let err = write(&mut client, updates).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err:?}");
    assert!(server.switch.all_entries().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn a_full_64k_bucket_table_in_one_write_and_one_read() {
    let params = PipelineParams::default();
    let (server, mut client, _p) = ready(params).await;
    write(&mut client, bucket_inserts(1 << 16, 16))
        .await
        .unwrap();
    assert_eq!(server.switch.all_entries().len(), 1 << 16);

    // One failing update in a big batch: 2^16 errors come back, in order.
    let mut batch = bucket_inserts(1 << 12, 16);
    batch.push(insert(entry_to_p4(&bucket_entry(
        1, 0, "10.0.0.1", "0.0.0.0", 0,
    ))));
    let err = write(&mut client, batch).await.unwrap_err();
    let codes = batch_codes(&err);
    assert_eq!(codes.len(), (1 << 12) + 1);
    assert!(codes[..1 << 12].iter().all(|c| *c == Code::AlreadyExists));
    assert_eq!(codes[1 << 12], Code::Ok);

    // The read comes back in several responses of at most ~1 MiB.
    let mut stream = client
        .read(v1::ReadRequest {
            device_id: DEV,
            entities: vec![table_read(schema::BUCKETS.id)],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let (mut messages, mut n) = (0, 0);
    while let Some(r) = stream.message().await.unwrap() {
        assert!(r.encoded_len() <= (1 << 20) + 1024);
        messages += 1;
        n += r.entities.len();
    }
    assert_eq!(n, (1 << 16) + 1);
    assert!(messages > 1, "{messages}");
    server.stop().await;
}

#[tokio::test]
async fn bad_reads_get_the_spec_code_per_request() {
    let (server, mut client, _p) = loaded().await;
    let good = table_read(schema::VIP.id);
    let bad = [
        (
            "table_id 0 with a match",
            table_entity(v1::TableEntry {
                r#match: vec![exact(1, &[1])],
                ..Default::default()
            }),
            Code::InvalidArgument,
        ),
        (
            "unknown table",
            table_read(0x0200_0042),
            Code::InvalidArgument,
        ),
        (
            "a bad key",
            table_entity(with(|t| {
                t.r#match[1] = exact(buckets_key::BUCKET, &[0xff, 0xff])
            })),
            Code::OutOfRange,
        ),
        (
            "counter data on routes",
            table_entity(v1::TableEntry {
                table_id: schema::ROUTES.id,
                counter_data: Some(Default::default()),
                ..Default::default()
            }),
            Code::InvalidArgument,
        ),
        (
            "an empty entity",
            v1::Entity { entity: None },
            Code::InvalidArgument,
        ),
    ];
    for (what, entity, code) in bad {
        let (got, status) = read(&mut client, vec![good.clone(), entity, good.clone()]).await;
        // The good requests are answered, then the status says which failed.
        assert_eq!(got.len(), 4, "{what}");
        assert_eq!(
            batch_codes(&status.unwrap_err()),
            [Code::Ok, code, Code::Ok],
            "{what}"
        );
    }
    // Wildcards over kinds the pipeline has none of: empty, not errors.
    let (got, status) = read(
        &mut client,
        vec![v1::Entity {
            entity: Some(E::RegisterEntry(Default::default())),
        }],
    )
    .await;
    status.unwrap();
    assert!(got.is_empty());
    // A wrong device is RPC-wide.
    let err = client
        .read(v1::ReadRequest {
            device_id: 2,
            entities: vec![good],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    let _ = vip_key::DST_ADDR;
    server.stop().await;
}
