use super::*;
use crate::entries::{BucketKey, SwitchConfig, Update, VipKey};
use crate::params::{PipelineParams, Target};
use crate::schema;
use crate::wire::MacAddr;
use p4runtime_proto::p4::config::v1 as cfg;
use p4runtime_proto::p4::v1::{self, field_match::FieldMatchType as M};
use std::net::Ipv4Addr;

/// 2^12 buckets: the bucket key is 12 bits wide.
fn params() -> PipelineParams {
    PipelineParams {
        buckets: 1 << 12,
        max_vips: 4,
        max_vip_entries: 64,
        routes: 128,
    }
}

fn pipeline() -> Pipeline {
    Pipeline::new(params(), Target::V1model)
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn mac(s: &str) -> MacAddr {
    s.parse().unwrap()
}

fn vip_key() -> VipKey {
    VipKey {
        dst: ip("203.0.113.10"),
        protocol: 6,
        port: 80,
    }
}

fn entries() -> Vec<(&'static str, Entry)> {
    let bucket = BucketAction {
        dip: ip("10.0.0.2"),
        prev_dip: ip("10.0.0.3"),
        change_time: 1_700_000_000,
    };
    let route = RouteAction {
        port: 511,
        dst_mac: mac("02:00:00:00:00:01"),
        src_mac: mac("00:00:5e:00:53:01"),
    };
    vec![
        (
            "vip to_buckets",
            Entry::Vip(vip_key(), VipAction::ToBuckets { vip_id: 3 }),
        ),
        (
            "vip to_server, UDP port 0",
            Entry::Vip(
                VipKey {
                    dst: ip("0.0.0.0"),
                    protocol: 17,
                    port: 0,
                },
                VipAction::ToServer {
                    dip: ip("10.0.0.9"),
                },
            ),
        ),
        (
            "bucket, top bucket and vip_id",
            Entry::Bucket(
                BucketKey {
                    vip_id: u16::MAX,
                    bucket: (1 << 12) - 1,
                },
                bucket,
            ),
        ),
        (
            "bucket 0, no previous dip",
            Entry::Bucket(
                BucketKey {
                    vip_id: 0,
                    bucket: 0,
                },
                BucketAction {
                    dip: ip("10.0.0.2"),
                    prev_dip: Ipv4Addr::UNSPECIFIED,
                    change_time: 0,
                },
            ),
        ),
        (
            "route /16",
            Entry::Route("10.1.0.0/16".parse().unwrap(), route),
        ),
        (
            "route /32",
            Entry::Route("192.0.2.1/32".parse().unwrap(), route),
        ),
        (
            "default route /0",
            Entry::Route("0.0.0.0/0".parse().unwrap(), route),
        ),
    ]
}

fn table_update(kind: v1::update::Type, te: v1::TableEntry) -> v1::Update {
    v1::Update {
        r#type: kind as i32,
        entity: Some(v1::Entity {
            entity: Some(v1::entity::Entity::TableEntry(te)),
        }),
    }
}

fn exact(field_id: u32, value: &[u8]) -> v1::FieldMatch {
    v1::FieldMatch::exact(field_id, value)
}

fn lpm(value: &[u8], prefix_len: i32) -> v1::FieldMatch {
    v1::FieldMatch::lpm(schema::routes_key::DST_ADDR, value, prefix_len)
}

fn action(action_id: u32, params: &[(u32, &[u8])]) -> Option<v1::TableAction> {
    let params = params.iter().map(|&(id, v)| v1::action::Param::new(id, v));
    Some(v1::TableAction::action(action_id, params))
}

// ---- encoding: exact bytes -----------------------------------------------------

#[test]
fn vip_entry_encodes_to_canonical_bytestrings() {
    let entry = Entry::Vip(vip_key(), VipAction::ToBuckets { vip_id: 3 });
    assert_eq!(
        entry_to_p4(&entry),
        v1::TableEntry {
            table_id: schema::VIP.id,
            r#match: vec![
                exact(schema::vip_key::DST_ADDR, b"\xcb\x00\x71\x0a"),
                exact(schema::vip_key::PROTOCOL, b"\x06"),
                exact(schema::vip_key::DST_PORT, b"\x50"),
            ],
            action: action(
                schema::TO_BUCKETS.id,
                &[(schema::to_buckets::VIP_ID, b"\x03")]
            ),
            ..Default::default()
        }
    );
}

#[test]
fn route_and_config_encode_to_canonical_bytestrings() {
    let route = Entry::Route(
        "10.1.0.0/16".parse().unwrap(),
        RouteAction {
            port: 1,
            dst_mac: mac("00:00:5e:00:53:01"),
            src_mac: mac("02:00:00:00:00:00"),
        },
    );
    assert_eq!(
        entry_to_p4(&route),
        v1::TableEntry {
            table_id: schema::ROUTES.id,
            r#match: vec![lpm(b"\x0a\x01\x00\x00", 16)],
            action: action(
                schema::ROUTE.id,
                &[
                    (schema::route::PORT, b"\x01"),
                    (schema::route::DST_MAC, b"\x5e\x00\x53\x01"),
                    (schema::route::SRC_MAC, b"\x02\x00\x00\x00\x00\x00"),
                ]
            ),
            ..Default::default()
        }
    );
    // The /0 route is "don't care": no match field at all.
    let default_route = Entry::Route(
        "0.0.0.0/0".parse().unwrap(),
        RouteAction {
            port: 0,
            dst_mac: MacAddr::default(),
            src_mac: MacAddr::default(),
        },
    );
    assert!(entry_to_p4(&default_route).r#match.is_empty());

    let config = SwitchConfig {
        tunnel_src: ip("192.0.2.1"),
        generation: 0,
    };
    assert_eq!(
        config_to_p4(&config),
        v1::TableEntry {
            table_id: schema::CONFIG.id,
            is_default_action: true,
            action: action(
                schema::SET_CONFIG.id,
                &[
                    (schema::set_config::TUNNEL_SRC, b"\xc0\x00\x02\x01"),
                    (schema::set_config::GENERATION, b"\x00"),
                ]
            ),
            ..Default::default()
        }
    );
}

#[test]
fn const_default_entries_read_back_their_miss_action() {
    let te = default_entry_to_p4(&schema::BUCKETS, &SwitchConfig::default());
    assert!(te.is_default_action && te.r#match.is_empty());
    assert_eq!(te.action, action(schema::BUCKET_MISS.id, &[]));
    let cfg = SwitchConfig {
        tunnel_src: ip("192.0.2.1"),
        generation: 7,
    };
    assert_eq!(
        default_entry_to_p4(&schema::CONFIG, &cfg),
        config_to_p4(&cfg)
    );
}

// ---- round trips ---------------------------------------------------------------

#[test]
fn every_table_round_trips() {
    let p = pipeline();
    for (what, entry) in entries() {
        let te = entry_to_p4(&entry);
        assert_eq!(p.entry_from_p4(&te), Ok(entry), "{what}");
        assert_eq!(
            p.key_from_p4(&key_to_p4(&entry.key())),
            Ok(entry.key()),
            "{what}"
        );
        for update in [
            Update::Insert(entry),
            Update::Modify(entry),
            Update::Delete(entry.key()),
        ] {
            let w = p.write_from_p4(&update_to_p4(&update)).unwrap();
            assert_eq!(w, Write::from(update), "{what}: {update:?}");
            assert_eq!(w.to_update(), Some(update), "{what}");
        }
    }
    for config in [
        SwitchConfig::default(),
        SwitchConfig {
            tunnel_src: ip("198.51.100.1"),
            generation: u32::MAX,
        },
    ] {
        let update = Update::SetConfig(config);
        assert_eq!(
            p.write_from_p4(&update_to_p4(&update)),
            Ok(Write::SetConfig(config))
        );
    }
}

#[test]
fn padded_bytestrings_are_accepted() {
    let te = v1::TableEntry {
        table_id: schema::BUCKETS.id,
        r#match: vec![
            exact(schema::buckets_key::BUCKET, b"\x00\x00\x00\x00\x0f\xff"),
            exact(schema::buckets_key::VIP_ID, b"\x00\x00\x07"),
        ],
        action: action(
            schema::FORWARD.id,
            &[
                (schema::forward::CHANGE_TIME, b"\x00\x00\x00\x00\x00\x01"),
                (schema::forward::DIP, b"\x00\x0a\x00\x00\x02"),
                (schema::forward::PREV_DIP, b"\x00"),
            ],
        ),
        ..Default::default()
    };
    assert_eq!(
        pipeline().entry_from_p4(&te),
        Ok(Entry::Bucket(
            BucketKey {
                vip_id: 7,
                bucket: 0xfff,
            },
            BucketAction {
                dip: ip("10.0.0.2"),
                prev_dip: Ipv4Addr::UNSPECIFIED,
                change_time: 1,
            },
        ))
    );
}

#[test]
fn direct_counter_data_in_and_out() {
    let p = pipeline();
    let entry = entries()[0].1;
    let counts = Counts {
        packets: 3,
        bytes: 1 << 40,
    };
    let mut te = entry_to_p4(&entry);
    te.counter_data = Some(counts.to_p4());
    assert_eq!(
        p.write_from_p4(&table_update(v1::update::Type::Insert, te.clone())),
        Ok(Write::Insert {
            entry,
            counts: Some(counts),
        })
    );
    // MODIFY without an action: only the counter changes.
    te.action = None;
    assert_eq!(
        p.write_from_p4(&table_update(v1::update::Type::Modify, te)),
        Ok(Write::Modify {
            key: entry.key(),
            action: None,
            counts: Some(counts),
        })
    );
    let dce = direct_counter_entry_to_p4(&entry.key(), counts);
    assert_eq!(dce.data.unwrap().byte_count, 1 << 40);
    let update = v1::Update {
        r#type: v1::update::Type::Modify as i32,
        entity: Some(v1::Entity {
            entity: Some(v1::entity::Entity::DirectCounterEntry(dce)),
        }),
    };
    assert_eq!(
        p.write_from_p4(&update),
        Ok(Write::SetDirectCounter {
            key: entry.key(),
            counts: Some(counts),
        })
    );
    assert_eq!(
        Counts {
            packets: u64::MAX,
            bytes: 0,
        }
        .to_p4()
        .packet_count,
        i64::MAX
    );
}

#[test]
fn drop_counter_cells() {
    let p = pipeline();
    let counts = Counts {
        packets: 2,
        bytes: 128,
    };
    let ce = p.drop_counter_entry_to_p4(crate::DropReason::Fragment, counts);
    assert_eq!(ce.counter_id, schema::DROPS.id);
    assert_eq!(ce.index, Some(v1::Index { index: 3 }));
    let update = v1::Update {
        r#type: v1::update::Type::Modify as i32,
        entity: Some(v1::Entity {
            entity: Some(v1::entity::Entity::CounterEntry(ce)),
        }),
    };
    assert_eq!(
        p.write_from_p4(&update),
        Ok(Write::SetDropCounter {
            reason: Some(crate::DropReason::Fragment),
            counts: Some(counts),
        })
    );
}

#[test]
fn delete_ignores_everything_but_the_key() {
    // "TableEntry": for DELETE only the key counts, even with a
    // nonsensical action.
    let mut te = key_to_p4(&EntryKey::Vip(vip_key()));
    te.action = action(0x0100_0099, &[(9, b"")]);
    te.counter_data = Some(v1::CounterData {
        byte_count: -1,
        packet_count: -1,
    });
    assert_eq!(
        pipeline().write_from_p4(&table_update(v1::update::Type::Delete, te)),
        Ok(Write::Delete(EntryKey::Vip(vip_key())))
    );
}

#[test]
fn resetting_the_config_default() {
    let te = v1::TableEntry {
        table_id: schema::CONFIG.id,
        is_default_action: true,
        ..Default::default()
    };
    assert_eq!(
        pipeline().write_from_p4(&table_update(v1::update::Type::Modify, te)),
        Ok(Write::SetConfig(SwitchConfig::default()))
    );
}

// ---- write errors: one per case, with the spec's code ----------------------------

fn vip_entry() -> v1::TableEntry {
    entry_to_p4(&entries()[0].1)
}

fn bucket_entry() -> v1::TableEntry {
    entry_to_p4(&entries()[2].1)
}

fn route_entry() -> v1::TableEntry {
    entry_to_p4(&entries()[4].1)
}

fn with(mut te: v1::TableEntry, f: impl FnOnce(&mut v1::TableEntry)) -> v1::TableEntry {
    f(&mut te);
    te
}

fn entity_update(kind: v1::update::Type, entity: v1::entity::Entity) -> v1::Update {
    v1::Update {
        r#type: kind as i32,
        entity: Some(v1::Entity {
            entity: Some(entity),
        }),
    }
}

#[test]
fn bad_writes_get_the_spec_codes() {
    use Code::{InvalidArgument, OutOfRange, PermissionDenied, Unimplemented};
    use v1::entity::Entity as E;
    use v1::update::Type::{Delete, Insert, Modify, Unspecified};
    let ins = |te| table_update(Insert, te);
    let config_default = |kind, te| table_update(kind, te);
    let cases: Vec<(&str, v1::Update, Code, &str)> = vec![
        (
            "unknown table id",
            ins(with(vip_entry(), |t| t.table_id = 0x0200_0063)),
            InvalidArgument,
            "unknown table id 0x02000063",
        ),
        (
            "table id 0",
            ins(with(vip_entry(), |t| t.table_id = 0)),
            InvalidArgument,
            "table_id 0",
        ),
        (
            "unknown match field id",
            ins(with(vip_entry(), |t| t.r#match[2].field_id = 9)),
            InvalidArgument,
            "unknown match field id 9 in table vip",
        ),
        (
            "duplicate match field",
            ins(with(vip_entry(), |t| t.r#match[2] = t.r#match[1].clone())),
            InvalidArgument,
            "match field 2 (protocol) of table vip is given twice",
        ),
        (
            "missing exact match field",
            ins(with(vip_entry(), |t| {
                t.r#match.remove(0);
            })),
            InvalidArgument,
            "missing exact match field 1 (dst_addr) of table vip",
        ),
        (
            "match field without a value",
            ins(with(vip_entry(), |t| t.r#match[0].field_match_type = None)),
            InvalidArgument,
            "has no match value",
        ),
        (
            "LPM on an exact field",
            ins(with(vip_entry(), |t| {
                t.r#match[0] = lpm(b"\x0a\x00\x00\x00", 8);
                t.r#match[0].field_id = schema::vip_key::DST_ADDR;
            })),
            InvalidArgument,
            "is matched exact",
        ),
        (
            "ternary on an LPM field",
            ins(with(route_entry(), |t| {
                t.r#match[0].field_match_type = Some(M::Ternary(v1::field_match::Ternary {
                    value: vec![10],
                    mask: vec![255],
                }))
            })),
            InvalidArgument,
            "is matched lpm",
        ),
        (
            "bucket wider than 2^k",
            ins(with(bucket_entry(), |t| {
                t.r#match[1] = exact(2, b"\x10\x00")
            })),
            OutOfRange,
            "needs 13 bits, more than bit<12> holds",
        ),
        (
            "over-long IPv4 bytestring",
            ins(with(vip_entry(), |t| {
                t.r#match[0] = exact(1, b"\x01\x0a\x00\x00\x01")
            })),
            OutOfRange,
            "match field dst_addr of table vip",
        ),
        (
            "empty bytestring",
            ins(with(vip_entry(), |t| t.r#match[1] = exact(2, b""))),
            OutOfRange,
            "empty bytestring",
        ),
        (
            "LPM with host bits set",
            ins(with(route_entry(), |t| {
                t.r#match[0] = lpm(b"\x0a\x01\x00\x01", 16)
            })),
            InvalidArgument,
            "10.1.0.1/16 has bits set beyond the prefix length",
        ),
        (
            "LPM prefix length 0 present",
            ins(with(route_entry(), |t| t.r#match[0] = lpm(b"\x00", 0))),
            InvalidArgument,
            "prefix length 0",
        ),
        (
            "LPM prefix length 33",
            ins(with(route_entry(), |t| {
                t.r#match[0] = lpm(b"\x0a\x01\x00\x00", 33)
            })),
            InvalidArgument,
            "prefix length 33 is outside 1..=32",
        ),
        (
            "priority on an exact table",
            ins(with(vip_entry(), |t| t.priority = 10)),
            InvalidArgument,
            "priority 10 on table vip",
        ),
        (
            "action of another table",
            ins(with(vip_entry(), |t| t.action = bucket_entry().action)),
            InvalidArgument,
            "action id 0x01000004 is not an action of table vip",
        ),
        (
            "unknown action id",
            ins(with(vip_entry(), |t| t.action = action(0x0100_0063, &[]))),
            InvalidArgument,
            "action id 0x01000063",
        ),
        (
            "@defaultonly action in an entry",
            ins(with(vip_entry(), |t| {
                t.action = action(schema::VIP_MISS.id, &[])
            })),
            PermissionDenied,
            "vip_miss is @defaultonly",
        ),
        (
            "missing param",
            ins(with(bucket_entry(), |t| {
                if let Some(v1::TableAction {
                    r#type: Some(v1::table_action::Type::Action(a)),
                }) = &mut t.action
                {
                    a.params.pop();
                }
            })),
            InvalidArgument,
            "missing param 3 (change_time) of action forward",
        ),
        (
            "unknown param id",
            ins(with(vip_entry(), |t| {
                t.action = action(schema::TO_BUCKETS.id, &[(1, b"\x01"), (2, b"\x01")])
            })),
            InvalidArgument,
            "unknown param id 2 of action to_buckets",
        ),
        (
            "duplicate param",
            ins(with(vip_entry(), |t| {
                t.action = action(schema::TO_BUCKETS.id, &[(1, b"\x01"), (1, b"\x02")])
            })),
            InvalidArgument,
            "param 1 (vip_id) of action to_buckets is given twice",
        ),
        (
            "port 512 in a 9-bit param",
            ins(with(route_entry(), |t| {
                t.action = action(
                    schema::ROUTE.id,
                    &[(1, b"\x02\x00"), (2, b"\x01"), (3, b"\x01")],
                )
            })),
            OutOfRange,
            "param port of action route",
        ),
        (
            "INSERT without an action",
            ins(with(vip_entry(), |t| t.action = None)),
            InvalidArgument,
            "needs an action",
        ),
        (
            "action profile member in a direct table",
            ins(with(vip_entry(), |t| {
                t.action = Some(v1::TableAction {
                    r#type: Some(v1::table_action::Type::ActionProfileMemberId(1)),
                })
            })),
            InvalidArgument,
            "direct table",
        ),
        (
            "default entry with match fields",
            config_default(
                Modify,
                with(config_to_p4(&SwitchConfig::default()), |t| {
                    t.r#match = vec![exact(1, b"\x01")]
                }),
            ),
            InvalidArgument,
            "takes no match fields",
        ),
        (
            "INSERT of a default entry",
            config_default(Insert, config_to_p4(&SwitchConfig::default())),
            InvalidArgument,
            "can only be modified",
        ),
        (
            "DELETE of a default entry",
            config_default(Delete, config_to_p4(&SwitchConfig::default())),
            InvalidArgument,
            "can only be modified",
        ),
        (
            "MODIFY of a const default action",
            table_update(
                Modify,
                v1::TableEntry {
                    table_id: schema::VIP.id,
                    is_default_action: true,
                    action: action(schema::VIP_MISS.id, &[]),
                    ..Default::default()
                },
            ),
            PermissionDenied,
            "default action of table vip is const",
        ),
        (
            "another table's action as the config default",
            config_default(
                Modify,
                with(config_to_p4(&SwitchConfig::default()), |t| {
                    t.action = action(schema::NO_ROUTE.id, &[])
                }),
            ),
            InvalidArgument,
            "not an action of table config",
        ),
        (
            "INSERT into the keyless config table",
            ins(with(config_to_p4(&SwitchConfig::default()), |t| {
                t.is_default_action = false
            })),
            InvalidArgument,
            "keyless",
        ),
        (
            "counter data on a table without a direct counter",
            ins(with(route_entry(), |t| {
                t.counter_data = Some(Default::default())
            })),
            InvalidArgument,
            "table routes has no direct counter",
        ),
        (
            "negative counter data",
            ins(with(vip_entry(), |t| {
                t.counter_data = Some(v1::CounterData {
                    byte_count: -5,
                    packet_count: 1,
                })
            })),
            InvalidArgument,
            "byte_count -5 is negative",
        ),
        (
            "is_const in a write",
            ins(with(vip_entry(), |t| t.is_const = true)),
            InvalidArgument,
            "is_const",
        ),
        (
            "idle timeout",
            ins(with(vip_entry(), |t| t.idle_timeout_ns = 1_000_000)),
            InvalidArgument,
            "no idle timeout",
        ),
        (
            "idle timeout on the config default",
            config_default(
                Modify,
                with(config_to_p4(&SwitchConfig::default()), |t| {
                    t.time_since_last_hit = Some(Default::default())
                }),
            ),
            InvalidArgument,
            "no idle timeout",
        ),
        (
            "direct meter config",
            ins(with(vip_entry(), |t| {
                t.meter_config = Some(Default::default())
            })),
            InvalidArgument,
            "no direct meter",
        ),
        (
            "meter counter data",
            ins(with(vip_entry(), |t| {
                t.meter_counter_data = Some(Default::default())
            })),
            Unimplemented,
            "meter counter data",
        ),
        (
            "entry metadata",
            ins(with(vip_entry(), |t| t.metadata = b"cookie".to_vec())),
            Unimplemented,
            "metadata",
        ),
        (
            "update type UNSPECIFIED",
            table_update(Unspecified, vip_entry()),
            InvalidArgument,
            "update type 0",
        ),
        (
            "no entity",
            v1::Update {
                r#type: Insert as i32,
                entity: None,
            },
            InvalidArgument,
            "no entity",
        ),
        (
            "INSERT of a DirectCounterEntry",
            entity_update(
                Insert,
                E::DirectCounterEntry(direct_counter_entry_to_p4(
                    &EntryKey::Vip(vip_key()),
                    Counts::default(),
                )),
            ),
            InvalidArgument,
            "can only be modified",
        ),
        (
            "DirectCounterEntry of a table without one",
            entity_update(
                Modify,
                E::DirectCounterEntry(v1::DirectCounterEntry {
                    table_entry: Some(key_to_p4(&entries()[4].1.key())),
                    data: None,
                }),
            ),
            InvalidArgument,
            "table routes has no direct counter",
        ),
        (
            "unknown counter id",
            entity_update(
                Modify,
                E::CounterEntry(v1::CounterEntry {
                    counter_id: 0x1200_0063,
                    ..Default::default()
                }),
            ),
            InvalidArgument,
            "unknown counter id 0x12000063",
        ),
        (
            "negative counter index",
            entity_update(
                Modify,
                E::CounterEntry(v1::CounterEntry {
                    counter_id: schema::DROPS.id,
                    index: Some(v1::Index { index: -1 }),
                    data: None,
                }),
            ),
            InvalidArgument,
            "counter index -1 is negative",
        ),
        (
            "counter index past the end",
            entity_update(
                Modify,
                E::CounterEntry(v1::CounterEntry {
                    counter_id: schema::DROPS.id,
                    index: Some(v1::Index { index: 7 }),
                    data: None,
                }),
            ),
            OutOfRange,
            "counter index 7 is past the end of drops (7 cells)",
        ),
        (
            "DELETE of a CounterEntry",
            entity_update(
                Delete,
                E::CounterEntry(v1::CounterEntry {
                    counter_id: schema::DROPS.id,
                    ..Default::default()
                }),
            ),
            InvalidArgument,
            "can only be modified",
        ),
        (
            "action profile member",
            entity_update(
                Insert,
                E::ActionProfileMember(v1::ActionProfileMember {
                    action_profile_id: 0x1100_0001,
                    ..Default::default()
                }),
            ),
            InvalidArgument,
            "unknown action profile id 0x11000001",
        ),
        (
            "multicast group",
            entity_update(Insert, E::PacketReplicationEngineEntry(Default::default())),
            Unimplemented,
            "multicast",
        ),
    ];
    let p = pipeline();
    for (what, update, code, message) in cases {
        let err = p.write_from_p4(&update).expect_err(what);
        assert_eq!(err.code, code, "{what}: {err}");
        assert!(err.message.contains(message), "{what}: {err}");
        assert_eq!(err.to_p4_error().canonical_code, code as i32);
        assert_eq!(err.to_status().code(), code.to_tonic());
    }
}

// ---- reads -------------------------------------------------------------------------

fn read_table(te: v1::TableEntry) -> v1::Entity {
    v1::Entity {
        entity: Some(v1::entity::Entity::TableEntry(te)),
    }
}

#[test]
fn wildcard_reads() {
    let p = pipeline();
    let all = p
        .read_from_p4(&read_table(v1::TableEntry::default()))
        .unwrap();
    let Read::Tables(all) = all else {
        panic!("{all:?}")
    };
    for (what, e) in entries() {
        assert!(all.matches(&e), "{what}");
    }
    assert!(!all.with_counters);
    assert!(
        !all.matches_default(&schema::CONFIG),
        "defaults only on request"
    );

    let one_table = p
        .read_from_p4(&read_table(v1::TableEntry {
            table_id: schema::BUCKETS.id,
            counter_data: Some(Default::default()),
            ..Default::default()
        }))
        .unwrap();
    let Read::Tables(one_table) = one_table else {
        panic!()
    };
    assert!(one_table.with_counters);
    for (what, e) in entries() {
        assert_eq!(
            one_table.matches(&e),
            matches!(e, Entry::Bucket(..)),
            "{what}"
        );
    }

    let (_, entry) = entries()[1];
    let Read::Tables(one) = p
        .read_from_p4(&read_table(key_to_p4(&entry.key())))
        .unwrap()
    else {
        panic!()
    };
    for (what, e) in entries() {
        assert_eq!(one.matches(&e), e == entry, "{what}");
    }

    let Read::Tables(by_action) = p
        .read_from_p4(&read_table(v1::TableEntry {
            table_id: schema::VIP.id,
            action: action(schema::TO_SERVER.id, &[]),
            ..Default::default()
        }))
        .unwrap()
    else {
        panic!()
    };
    for (what, e) in entries() {
        assert_eq!(
            by_action.matches(&e),
            matches!(e, Entry::Vip(_, VipAction::ToServer { .. })),
            "{what}"
        );
    }

    let Read::Tables(default) = p
        .read_from_p4(&read_table(v1::TableEntry {
            table_id: schema::CONFIG.id,
            is_default_action: true,
            ..Default::default()
        }))
        .unwrap()
    else {
        panic!()
    };
    assert!(default.matches_default(&schema::CONFIG));
    assert!(!default.matches_default(&schema::VIP));
    assert!(!entries().iter().any(|(_, e)| default.matches(e)));
}

#[test]
fn counter_reads() {
    let p = pipeline();
    let dc = |te: Option<v1::TableEntry>| {
        p.read_from_p4(&v1::Entity {
            entity: Some(v1::entity::Entity::DirectCounterEntry(
                v1::DirectCounterEntry {
                    table_entry: te,
                    data: None,
                },
            )),
        })
    };
    let Ok(Read::DirectCounters(all)) = dc(None) else {
        panic!()
    };
    assert!(all.table.is_none() && all.with_counters);
    let key = entries()[2].1.key();
    let Ok(Read::DirectCounters(one)) = dc(Some(key_to_p4(&key))) else {
        panic!()
    };
    assert_eq!(
        (one.table.map(|t| t.id), one.key),
        (Some(schema::BUCKETS.id), Some(key))
    );

    let ce = |counter_id, index| {
        p.read_from_p4(&v1::Entity {
            entity: Some(v1::entity::Entity::CounterEntry(v1::CounterEntry {
                counter_id,
                index,
                data: None,
            })),
        })
    };
    assert_eq!(ce(0, None), Ok(Read::DropCounter { reason: None }));
    assert_eq!(
        ce(schema::DROPS.id, Some(v1::Index { index: 6 })),
        Ok(Read::DropCounter {
            reason: Some(crate::DropReason::NoRoute)
        })
    );
    assert_eq!(
        ce(schema::DROPS.id, Some(v1::Index { index: 9 }))
            .unwrap_err()
            .code,
        Code::OutOfRange
    );
}

#[test]
fn bad_reads_get_the_spec_codes() {
    use v1::entity::Entity as E;
    let p = pipeline();
    let cases: Vec<(&str, v1::Entity, Code)> = vec![
        (
            "empty entity",
            v1::Entity { entity: None },
            Code::InvalidArgument,
        ),
        (
            "table 0 with a match",
            read_table(v1::TableEntry {
                r#match: vec![exact(1, b"\x01")],
                ..Default::default()
            }),
            Code::InvalidArgument,
        ),
        (
            "unknown table",
            read_table(v1::TableEntry {
                table_id: 0x0200_0063,
                ..Default::default()
            }),
            Code::InvalidArgument,
        ),
        (
            "bad key",
            read_table(with(bucket_entry(), |t| {
                t.r#match[1] = exact(2, b"\xff\xff")
            })),
            Code::OutOfRange,
        ),
        (
            "counter data on routes",
            read_table(v1::TableEntry {
                table_id: schema::ROUTES.id,
                counter_data: Some(Default::default()),
                ..Default::default()
            }),
            Code::InvalidArgument,
        ),
        (
            "direct counters of routes",
            v1::Entity {
                entity: Some(E::DirectCounterEntry(v1::DirectCounterEntry {
                    table_entry: Some(v1::TableEntry {
                        table_id: schema::ROUTES.id,
                        ..Default::default()
                    }),
                    data: None,
                })),
            },
            Code::InvalidArgument,
        ),
        (
            "metadata filter",
            read_table(v1::TableEntry {
                table_id: schema::VIP.id,
                metadata: b"x".to_vec(),
                ..Default::default()
            }),
            Code::Unimplemented,
        ),
        (
            "a register that does not exist",
            v1::Entity {
                entity: Some(E::RegisterEntry(v1::RegisterEntry {
                    register_id: 0x1600_0001,
                    ..Default::default()
                })),
            },
            Code::InvalidArgument,
        ),
        (
            "clone sessions",
            v1::Entity {
                entity: Some(E::PacketReplicationEngineEntry(Default::default())),
            },
            Code::Unimplemented,
        ),
    ];
    for (what, entity, code) in cases {
        let err = p.read_from_p4(&entity).expect_err(what);
        assert_eq!(err.code, code, "{what}: {err}");
    }
    // A wildcard over a kind the pipeline has none of is empty, not wrong.
    let profiles = v1::Entity {
        entity: Some(E::ActionProfileMember(Default::default())),
    };
    assert_eq!(p.read_from_p4(&profiles), Ok(Read::Nothing));
}

// ---- P4Info --------------------------------------------------------------------

#[test]
fn expected_p4info_passes_the_check_on_every_target() {
    for target in Target::ALL {
        let info = expected_p4info(&params(), target);
        let checked = check_p4info(&info).unwrap();
        assert_eq!(checked, Pipeline::new(params(), target));
        let text = p4runtime_proto::p4info_to_text(&info);
        assert_eq!(p4runtime_proto::p4info_from_text(&text).unwrap(), info);
    }
    let tna = expected_p4info(&PipelineParams::default(), Target::Tna);
    assert_eq!(
        tna.tables[0].preamble.as_ref().unwrap().name,
        "pipe.BeamerIngress.vip"
    );
    assert_eq!(
        check_p4info(&tna).unwrap().params,
        PipelineParams::default()
    );
}

#[test]
fn p4c_style_names_and_tna_direct_counter_ids_are_accepted() {
    let mut info = expected_p4info(&params(), Target::Tna);
    info.pkg_info = None;
    // p4c names a key by its expression when it has no @name.
    info.tables[0].match_fields[0].name = "hdr.ipv4.dst_addr".into();
    // bf-p4c picks its own direct counter IDs.
    for (i, c) in info.direct_counters.iter_mut().enumerate() {
        let id = 0x1300_0100 + i as u32;
        c.preamble.as_mut().unwrap().id = id;
        let t = info
            .tables
            .iter_mut()
            .find(|t| t.preamble.as_ref().unwrap().id == c.direct_table_id)
            .unwrap();
        t.direct_resource_ids = vec![id];
    }
    let checked = check_p4info(&info).unwrap();
    assert_eq!(checked.target, Target::Tna);
    assert_eq!(
        (checked.vip_counter_id, checked.bucket_counter_id),
        (0x1300_0100, 0x1300_0101)
    );
}

fn table_mut(info: &mut cfg::P4Info, id: u32) -> &mut cfg::Table {
    info.tables
        .iter_mut()
        .find(|t| t.preamble.as_ref().unwrap().id == id)
        .unwrap()
}

#[test]
fn p4info_differences_are_named() {
    type Mutation = Box<dyn Fn(&mut cfg::P4Info)>;
    let cases: Vec<(&str, Mutation, &str)> = vec![
        (
            "bucket key too wide",
            Box::new(|i| table_mut(i, schema::BUCKETS.id).match_fields[1].bitwidth = 21),
            "table 0x02000002 (buckets): match field 2 (bucket) has bitwidth 21, expected 1..=20 bits",
        ),
        (
            "missing action",
            Box::new(|i| {
                i.actions
                    .retain(|a| a.preamble.as_ref().unwrap().name != "BeamerIngress.forward")
            }),
            "missing action 0x01000004 (forward)",
        ),
        (
            "missing table",
            Box::new(|i| i.tables.remove(2).preamble.map(|_| ()).unwrap()),
            "missing table 0x02000003 (routes)",
        ),
        (
            "port width",
            Box::new(|i| table_mut(i, schema::VIP.id).match_fields[2].bitwidth = 8),
            "table 0x02000001 (vip): match field 3 (dst_port) has bitwidth 8, expected 16",
        ),
        (
            "match kind",
            Box::new(|i| {
                table_mut(i, schema::ROUTES.id).match_fields[0].r#match = Some(
                    cfg::match_field::Match::MatchType(cfg::match_field::MatchType::Exact as i32),
                )
            }),
            "table 0x02000003 (routes): match field 1 (dst_addr) has match type EXACT, expected LPM",
        ),
        (
            "scope",
            Box::new(|i| table_mut(i, schema::VIP.id).action_refs[2].scope = 0),
            "table 0x02000001 (vip): action 0x01000003 (vip_miss) has scope TABLE_AND_DEFAULT, \
             expected DEFAULT_ONLY",
        ),
        (
            "table name",
            Box::new(|i| {
                table_mut(i, schema::VIP.id).preamble.as_mut().unwrap().name =
                    "BeamerIngress.vips".into()
            }),
            "table 0x02000001 (vip) is named \"BeamerIngress.vips\"",
        ),
        (
            "param width",
            Box::new(|i| {
                let route = i
                    .actions
                    .iter_mut()
                    .find(|a| a.preamble.as_ref().unwrap().id == schema::ROUTE.id)
                    .unwrap();
                route.params[0].bitwidth = 32;
                route.params[0].type_name = Some(cfg::P4NamedType {
                    name: "PortId_t".into(),
                });
            }),
            "action 0x01000006 (route): param 1 (port) has bitwidth 32 (type PortId_t), expected 9",
        ),
        (
            "missing param",
            Box::new(|i| {
                let f = i
                    .actions
                    .iter_mut()
                    .find(|a| a.preamble.as_ref().unwrap().id == schema::FORWARD.id)
                    .unwrap();
                f.params.pop();
            }),
            "action 0x01000004 (forward): missing param 3 (change_time)",
        ),
        (
            "direct counter as a Tofino extern",
            Box::new(|i| i.direct_counters.clear()),
            "table 0x02000001 (vip): missing direct counter vip_counter (a Tofino program needs \
             bf-p4c --p4runtime-force-std-externs)",
        ),
        (
            "unexpected table",
            Box::new(|i| {
                let mut t = i.tables[0].clone();
                t.preamble = Some(cfg::Preamble {
                    id: 0x0200_0009,
                    name: "BeamerIngress.acl".into(),
                    ..Default::default()
                });
                i.tables.push(t);
            }),
            "unexpected table 0x02000009 (BeamerIngress.acl)",
        ),
        (
            "bucket table size",
            Box::new(|i| table_mut(i, schema::BUCKETS.id).size = 5000),
            "table 0x02000002 (buckets) has size 5000, not a multiple of the 2^12 buckets per VIP",
        ),
        (
            "drop counter size",
            Box::new(|i| i.counters[0].size = 6),
            "counter 0x12000001 (drops) has size 6, expected 7 (one cell per drop reason)",
        ),
        (
            "const default",
            Box::new(|i| table_mut(i, schema::ROUTES.id).const_default_action_id = 0),
            "table 0x02000003 (routes) has const_default_action_id 0x00000000, expected 0x01000007",
        ),
        (
            "sizes the target cannot hold",
            Box::new(|i| table_mut(i, schema::VIP.id).size = 0),
            "the sizes it gives are not valid for v1model: --max-vip-entries 0 is out of range",
        ),
    ];
    for (what, mutate, expected) in cases {
        let mut info = expected_p4info(&params(), Target::V1model);
        mutate(&mut info);
        let err = check_p4info(&info).expect_err(what);
        assert!(
            err.differences.iter().any(|d| d.starts_with(expected)),
            "{what}: {err}"
        );
        assert!(err.to_string().contains(expected), "{what}");
    }
    // Compiler-made tables are not differences.
    let mut info = expected_p4info(&params(), Target::Tna);
    let mut t = info.tables[0].clone();
    t.preamble = Some(cfg::Preamble {
        id: 0x0200_0099,
        name: "pipe.BeamerIngressParser.$PORT_METADATA".into(),
        ..Default::default()
    });
    info.tables.push(t);
    assert!(check_p4info(&info).is_ok());
}
