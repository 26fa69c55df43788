//! Wire compatibility with the official Python bindings (PyPI `p4runtime`).
//!
//! Rust encodes a WriteRequest, a P4Info (binary and text) and a
//! StreamMessageRequest; `tests/python/wire_check.py` decodes them with
//! `p4.v1.p4runtime_pb2` and friends and checks every field, compares the
//! crate's descriptors with the package's, and writes messages built in
//! Python, which this test decodes and checks field for field.
//!
//! Python comes from `BEAMER_PYTHON` (default `python3`). Without the
//! `p4runtime` module the test fails when `BEAMER_REQUIRE_PYTHON=1` (as in
//! CI) and otherwise prints a loud SKIPPED line.

use beamer_testbed::python;
use p4runtime_proto::google::rpc;
use p4runtime_proto::p4::config::v1 as cfg;
use p4runtime_proto::p4::v1;
use p4runtime_proto::prost::{Message, Name};
use p4runtime_proto::{FILE_DESCRIPTOR_SET, p4info_from_text, p4info_to_text};
use std::path::{Path, PathBuf};
use std::process::Command;

// ---- messages built in Rust (wire_check.py rebuilds the same values) ----------

fn exact(field_id: u32, value: &[u8]) -> v1::FieldMatch {
    v1::FieldMatch::exact(field_id, value)
}

fn lpm(field_id: u32, value: &[u8], prefix_len: i32) -> v1::FieldMatch {
    v1::FieldMatch::lpm(field_id, value, prefix_len)
}

fn action(action_id: u32, params: &[(u32, &[u8])]) -> Option<v1::TableAction> {
    let params = params.iter().map(|&(id, v)| v1::action::Param::new(id, v));
    Some(v1::TableAction::action(action_id, params))
}

fn update(kind: v1::update::Type, entity: v1::entity::Entity) -> v1::Update {
    v1::Update {
        r#type: kind as i32,
        entity: Some(v1::Entity {
            entity: Some(entity),
        }),
    }
}

fn rust_write_request() -> v1::WriteRequest {
    use v1::entity::Entity;
    use v1::update::Type;
    let vip = v1::TableEntry {
        table_id: 0x0200_0001,
        r#match: vec![
            exact(1, b"\x0a\x00\x00\x01"),
            exact(2, b"\x06"),
            exact(3, b"\x50"),
        ],
        action: action(0x0100_0001, &[(1, b"\x07")]),
        counter_data: Some(v1::CounterData {
            byte_count: 1500,
            packet_count: 1,
        }),
        ..Default::default()
    };
    let route = v1::TableEntry {
        table_id: 0x0200_0003,
        r#match: vec![lpm(1, b"\x0a\x01\x00\x00", 16)],
        action: action(
            0x0100_0006,
            &[
                (1, b"\x01\xff"),
                (2, b"\x02\x00\x00\x00\x00\x01"),
                (3, b"\x5e\x00\x53\x01"),
            ],
        ),
        ..Default::default()
    };
    let config = v1::TableEntry {
        table_id: 0x0200_0004,
        is_default_action: true,
        action: action(0x0100_0008, &[(1, b"\xc0\x00\x02\x01"), (2, b"\x2a")]),
        ..Default::default()
    };
    let delete = v1::TableEntry {
        table_id: 0x0200_0002,
        r#match: vec![exact(1, b"\x01"), exact(2, b"\x0f\xff")],
        ..Default::default()
    };
    use v1::field_match::{FieldMatchType as M, Optional, Range, Ternary};
    let acl = v1::TableEntry {
        table_id: 0x0200_00AA,
        priority: 10,
        r#match: vec![
            v1::FieldMatch {
                field_id: 1,
                field_match_type: Some(M::Ternary(Ternary {
                    value: b"\x0a\x00".to_vec(),
                    mask: b"\xff\x00".to_vec(),
                })),
            },
            v1::FieldMatch {
                field_id: 2,
                field_match_type: Some(M::Range(Range {
                    low: b"\x04\x00".to_vec(),
                    high: b"\x07\xff".to_vec(),
                })),
            },
            v1::FieldMatch {
                field_id: 3,
                field_match_type: Some(M::Optional(Optional {
                    value: b"\x11".to_vec(),
                })),
            },
        ],
        action: action(0x0100_00AA, &[]),
        ..Default::default()
    };
    let direct_counter = v1::DirectCounterEntry {
        table_entry: Some(v1::TableEntry {
            table_id: 0x0200_0002,
            r#match: vec![exact(1, b"\x01"), exact(2, b"\x00")],
            ..Default::default()
        }),
        data: Some(v1::CounterData {
            byte_count: 1 << 40,
            packet_count: (1 << 33) + 5,
        }),
    };
    let counter = v1::CounterEntry {
        counter_id: 0x1200_0001,
        index: Some(v1::Index { index: 4 }),
        data: Some(v1::CounterData {
            byte_count: 64,
            packet_count: 1,
        }),
    };
    v1::WriteRequest {
        device_id: 1,
        role: "beamer".into(),
        election_id: Some(((1u128 << 64) | 0x10).into()),
        atomicity: v1::write_request::Atomicity::RollbackOnError as i32,
        updates: vec![
            update(Type::Insert, Entity::TableEntry(vip)),
            update(Type::Modify, Entity::TableEntry(route)),
            update(Type::Modify, Entity::TableEntry(config)),
            update(Type::Delete, Entity::TableEntry(delete)),
            update(Type::Insert, Entity::TableEntry(acl)),
            update(Type::Modify, Entity::DirectCounterEntry(direct_counter)),
            update(Type::Modify, Entity::CounterEntry(counter)),
        ],
        ..Default::default()
    }
}

fn preamble(id: u32, name: &str, alias: &str) -> Option<cfg::Preamble> {
    Some(cfg::Preamble {
        id,
        name: name.into(),
        alias: alias.into(),
        ..Default::default()
    })
}

fn match_field(
    id: u32,
    name: &str,
    bitwidth: i32,
    kind: cfg::match_field::MatchType,
) -> cfg::MatchField {
    cfg::MatchField {
        id,
        name: name.into(),
        bitwidth,
        r#match: Some(cfg::match_field::Match::MatchType(kind as i32)),
        ..Default::default()
    }
}

fn rust_p4info() -> cfg::P4Info {
    use cfg::match_field::MatchType;
    let both = Some(cfg::CounterSpec {
        unit: cfg::counter_spec::Unit::Both as i32,
    });
    cfg::P4Info {
        pkg_info: Some(cfg::PkgInfo {
            name: "beamer".into(),
            arch: "v1model".into(),
            doc: Some(cfg::Documentation {
                brief: "say \"hi\"\n\ttabbed \\ backslash".into(),
                description: "na\u{ef}ve \u{2013} \u{fc}nicode".into(),
            }),
            ..Default::default()
        }),
        tables: vec![cfg::Table {
            preamble: preamble(0x0200_0001, "BeamerIngress.vip", "vip"),
            match_fields: vec![
                match_field(1, "dst_addr", 32, MatchType::Exact),
                match_field(2, "prefix", 32, MatchType::Lpm),
            ],
            action_refs: vec![
                cfg::ActionRef {
                    id: 0x0100_0001,
                    ..Default::default()
                },
                cfg::ActionRef {
                    id: 0x0100_0003,
                    scope: cfg::action_ref::Scope::DefaultOnly as i32,
                    annotations: vec!["@defaultonly".into()],
                    ..Default::default()
                },
            ],
            const_default_action_id: 0x0100_0003,
            direct_resource_ids: vec![0x1300_0001],
            size: 1024,
            ..Default::default()
        }],
        actions: vec![
            cfg::Action {
                preamble: preamble(0x0100_0001, "BeamerIngress.to_buckets", "to_buckets"),
                params: vec![cfg::action::Param {
                    id: 1,
                    name: "vip_id".into(),
                    bitwidth: 16,
                    ..Default::default()
                }],
            },
            cfg::Action {
                preamble: preamble(0x0100_0003, "BeamerIngress.vip_miss", "vip_miss"),
                params: vec![],
            },
        ],
        counters: vec![cfg::Counter {
            preamble: preamble(0x1200_0001, "BeamerIngress.drops", "drops"),
            spec: both,
            size: 7,
            ..Default::default()
        }],
        direct_counters: vec![cfg::DirectCounter {
            preamble: preamble(0x1300_0001, "BeamerIngress.vip_counter", "vip_counter"),
            spec: both,
            direct_table_id: 0x0200_0001,
        }],
        type_info: Some(cfg::P4TypeInfo {
            new_types: [("PortId_t", 9), ("Mac_t", 48)]
                .into_iter()
                .map(|(name, bits)| {
                    let spec = cfg::P4NewTypeSpec {
                        representation: Some(cfg::p4_new_type_spec::Representation::OriginalType(
                            cfg::P4DataTypeSpec {
                                type_spec: Some(cfg::p4_data_type_spec::TypeSpec::Bitstring(
                                    cfg::P4BitstringLikeTypeSpec {
                                        type_spec: Some(
                                            cfg::p4_bitstring_like_type_spec::TypeSpec::Bit(
                                                cfg::P4BitTypeSpec { bitwidth: bits },
                                            ),
                                        ),
                                        ..Default::default()
                                    },
                                )),
                            },
                        )),
                        ..Default::default()
                    };
                    (name.to_string(), spec)
                })
                .collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn rust_stream_request() -> v1::StreamMessageRequest {
    v1::StreamMessageRequest {
        update: Some(v1::stream_message_request::Update::Arbitration(
            v1::MasterArbitrationUpdate {
                device_id: 1,
                role: Some(v1::Role {
                    name: "beamer".into(),
                    ..Default::default()
                }),
                election_id: Some(42u128.into()),
                status: None,
            },
        )),
    }
}

/// The gRPC status details of a failed two-update Write.
fn rust_batch_status() -> p4runtime_proto::tonic::Status {
    p4runtime_proto::status::batch_status(
        "1 of 2 updates failed",
        &[
            v1::Error {
                canonical_code: rpc::Code::Ok as i32,
                ..Default::default()
            },
            v1::Error {
                canonical_code: rpc::Code::OutOfRange as i32,
                message: "bucket 4096 needs 13 bits".into(),
                ..Default::default()
            },
        ],
    )
}

// ---- messages built in Python (wire_check.py `python_messages`) ----------------

fn python_write_request() -> v1::WriteRequest {
    use v1::entity::Entity;
    use v1::update::Type;
    v1::WriteRequest {
        device_id: 3,
        election_id: Some(2u128.into()),
        atomicity: v1::write_request::Atomicity::ContinueOnError as i32,
        updates: vec![
            update(Type::Insert, Entity::TableEntry(python_bucket_entry())),
            update(
                Type::Delete,
                Entity::TableEntry(v1::TableEntry {
                    table_id: 0x0200_0003,
                    r#match: vec![lpm(1, b"\xc0\xa8\x00\x00", 24)],
                    ..Default::default()
                }),
            ),
        ],
        ..Default::default()
    }
}

fn python_bucket_entry() -> v1::TableEntry {
    v1::TableEntry {
        table_id: 0x0200_0002,
        r#match: vec![exact(1, b"\x00\x01"), exact(2, b"\x00\x2a")],
        action: action(
            0x0100_0004,
            &[
                (1, b"\x0a\x00\x00\x02"),
                (2, b"\x0a\x00\x00\x03"),
                (3, b"\x65\x4f\x1a\x00"),
            ],
        ),
        // Set but empty: "send me the counter" in a read request.
        counter_data: Some(v1::CounterData::default()),
        ..Default::default()
    }
}

fn python_read_response() -> v1::ReadResponse {
    use v1::entity::Entity;
    let mut entry = python_bucket_entry();
    entry.counter_data = Some(v1::CounterData {
        byte_count: 9000,
        packet_count: 6,
    });
    v1::ReadResponse {
        entities: vec![
            v1::Entity {
                entity: Some(Entity::TableEntry(entry)),
            },
            v1::Entity {
                entity: Some(Entity::CounterEntry(v1::CounterEntry {
                    counter_id: 0x1200_0001,
                    index: Some(v1::Index { index: 0 }),
                    data: Some(v1::CounterData {
                        byte_count: 0,
                        packet_count: 3,
                    }),
                })),
            },
        ],
    }
}

fn python_stream_response() -> v1::StreamMessageResponse {
    v1::StreamMessageResponse {
        update: Some(v1::stream_message_response::Update::Arbitration(
            v1::MasterArbitrationUpdate {
                device_id: 3,
                role: None,
                election_id: Some(((5u128) << 64 | 6).into()),
                status: Some(rpc::Status {
                    code: rpc::Code::AlreadyExists as i32,
                    message: "you are a backup".into(),
                    details: vec![],
                }),
            },
        )),
    }
}

fn python_status() -> rpc::Status {
    let errors = [
        v1::Error {
            canonical_code: rpc::Code::ResourceExhausted as i32,
            message: "Table is full.".into(),
            space: "beamer".into(),
            code: 500,
            details: None,
        },
        v1::Error {
            canonical_code: rpc::Code::Ok as i32,
            ..Default::default()
        },
    ];
    rpc::Status {
        code: rpc::Code::Unknown as i32,
        message: "Write failure.".into(),
        details: errors
            .iter()
            .map(|e| p4runtime_proto::prost_types::Any::from_msg(e).unwrap())
            .collect(),
    }
}

fn python_p4info() -> cfg::P4Info {
    let mut new_types = std::collections::HashMap::new();
    new_types.insert(
        "PortId_t".to_string(),
        cfg::P4NewTypeSpec {
            representation: Some(cfg::p4_new_type_spec::Representation::TranslatedType(
                cfg::P4NewTypeTranslation {
                    uri: "tna/PortId_t".into(),
                    sdn_type: Some(cfg::p4_new_type_translation::SdnType::SdnBitwidth(32)),
                },
            )),
            ..Default::default()
        },
    );
    cfg::P4Info {
        pkg_info: Some(cfg::PkgInfo {
            arch: "tna".into(),
            ..Default::default()
        }),
        tables: vec![cfg::Table {
            preamble: preamble(0x0200_0003, "pipe.BeamerIngress.routes", "routes"),
            match_fields: vec![match_field(
                1,
                "dst_addr",
                32,
                cfg::match_field::MatchType::Lpm,
            )],
            action_refs: vec![cfg::ActionRef {
                id: 0x0100_0006,
                scope: cfg::action_ref::Scope::TableOnly as i32,
                annotations: vec!["@tableonly".into()],
                ..Default::default()
            }],
            size: 16384,
            ..Default::default()
        }],
        actions: vec![cfg::Action {
            preamble: preamble(0x0100_0006, "pipe.BeamerIngress.route", ""),
            params: vec![cfg::action::Param {
                id: 1,
                name: "port".into(),
                bitwidth: 9,
                ..Default::default()
            }],
        }],
        type_info: Some(cfg::P4TypeInfo {
            new_types,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn python_set_pipeline() -> v1::SetForwardingPipelineConfigRequest {
    v1::SetForwardingPipelineConfigRequest {
        device_id: 3,
        election_id: Some(2u128.into()),
        action: v1::set_forwarding_pipeline_config_request::Action::VerifyAndCommit as i32,
        config: Some(v1::ForwardingPipelineConfig {
            p4info: Some(python_p4info()),
            p4_device_config: b"\x00\x01binary".to_vec(),
            cookie: Some(v1::forwarding_pipeline_config::Cookie { cookie: 77 }),
        }),
        ..Default::default()
    }
}

// ---- the test ------------------------------------------------------------------

fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("p4runtime-proto-wire-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn decode<M: Message + Default + Name>(dir: &Path, file: &str) -> M {
    let bytes = std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    M::decode(bytes.as_slice()).unwrap_or_else(|e| panic!("{file} as {}: {e}", M::full_name()))
}

#[test]
fn python_bindings_agree_field_for_field() {
    let Some(python) =
        python::with_modules("python_bindings_agree_field_for_field", python::P4RUNTIME)
    else {
        return;
    };

    let dir = scratch_dir();
    let write = |name: &str, bytes: Vec<u8>| std::fs::write(dir.join(name), bytes).unwrap();
    write("descriptor_set.bin", FILE_DESCRIPTOR_SET.to_vec());
    write(
        "rust_write_request.bin",
        rust_write_request().encode_to_vec(),
    );
    write("rust_p4info.bin", rust_p4info().encode_to_vec());
    write(
        "rust_p4info.txt",
        p4info_to_text(&rust_p4info()).into_bytes(),
    );
    write(
        "rust_stream_request.bin",
        rust_stream_request().encode_to_vec(),
    );
    write("rust_status.bin", rust_batch_status().details().to_vec());

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/wire_check.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    print!("{stdout}");
    assert!(
        out.status.success() && stdout.contains("wire_check: OK"),
        "wire_check.py failed ({}):\n{stdout}\n{stderr}",
        out.status
    );

    assert_eq!(
        decode::<v1::WriteRequest>(&dir, "py_write_request.bin"),
        python_write_request()
    );
    assert_eq!(
        decode::<v1::ReadResponse>(&dir, "py_read_response.bin"),
        python_read_response()
    );
    assert_eq!(
        decode::<v1::StreamMessageResponse>(&dir, "py_stream_response.bin"),
        python_stream_response()
    );
    let status: rpc::Status = decode(&dir, "py_status.bin");
    assert_eq!(status, python_status());
    let first: v1::Error = status.details[0].to_msg().unwrap();
    assert_eq!(first.canonical_code, rpc::Code::ResourceExhausted as i32);
    assert_eq!(
        status.details[0].type_url,
        "type.googleapis.com/p4.v1.Error"
    );
    assert_eq!(
        decode::<cfg::P4Info>(&dir, "py_p4info.bin"),
        python_p4info()
    );
    assert_eq!(
        decode::<v1::SetForwardingPipelineConfigRequest>(&dir, "py_set_pipeline.bin"),
        python_set_pipeline()
    );
    let text = std::fs::read_to_string(dir.join("py_p4info.txt")).unwrap();
    assert_eq!(p4info_from_text(&text).unwrap(), python_p4info(), "{text}");

    std::fs::remove_dir_all(&dir).unwrap();
}
