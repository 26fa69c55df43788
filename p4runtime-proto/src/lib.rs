//! P4Runtime v1 protobuf bindings, generated at build time with prost and
//! tonic from `.proto` files written for this project from the P4Runtime
//! specification (v1.5.0 wire format).
//!
//! - [`p4::v1`]: the `P4Runtime` service (client and server), entities,
//!   stream messages;
//! - [`p4::config::v1`]: the P4Info;
//! - [`google::rpc`]: `Status` and `Code`;
//! - [`stratum`]: Stratum's Tofino device config, `BfPipelineConfig`;
//! - [`bytestring`]: canonical integer bytestrings;
//! - [`status`]: batch errors (`p4.v1.Error`s in gRPC status details);
//! - [`text`]: protobuf text format (P4Info files for bmv2 and
//!   p4runtime-shell), through the [`FILE_DESCRIPTOR_SET`].

pub mod bytestring;
pub mod status;
pub mod text;

pub use text::{p4info_from_text, p4info_to_text};
// The versions the generated code was built against, for dependents.
pub use {prost, prost_types, tonic};

/// Generated code, one module per protobuf package.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod p4 {
    /// Package `p4.v1`: the service and its messages.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/p4.v1.rs"));
    }
    /// Package `p4.config.v1`.
    pub mod config {
        /// Package `p4.config.v1`: the P4Info and P4 types.
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/p4.config.v1.rs"));
        }
    }
}

/// Package `google.rpc`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod google {
    /// Package `google.rpc`: `Status` and `Code`.
    pub mod rpc {
        include!(concat!(env!("OUT_DIR"), "/google.rpc.rs"));
    }
}

/// Package `stratum.hal.barefoot`: the `p4_device_config` of a Stratum
/// Tofino switch.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod stratum {
    include!(concat!(env!("OUT_DIR"), "/stratum.hal.barefoot.rs"));
}

/// The encoded `google.protobuf.FileDescriptorSet` of every file above,
/// imports (`google/protobuf/any.proto`) included.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/descriptor_set.bin"));

impl From<u128> for p4::v1::Uint128 {
    fn from(v: u128) -> Self {
        p4::v1::Uint128 {
            high: (v >> 64) as u64,
            low: v as u64,
        }
    }
}

impl From<p4::v1::Uint128> for u128 {
    fn from(v: p4::v1::Uint128) -> Self {
        (u128::from(v.high) << 64) | u128::from(v.low)
    }
}

impl p4::v1::FieldMatch {
    /// An exact match of field `field_id` on the bytestring `value`.
    pub fn exact(field_id: u32, value: impl Into<Vec<u8>>) -> Self {
        p4::v1::FieldMatch {
            field_id,
            field_match_type: Some(p4::v1::field_match::FieldMatchType::Exact(
                p4::v1::field_match::Exact {
                    value: value.into(),
                },
            )),
        }
    }

    /// A longest-prefix match of field `field_id`: the first `prefix_len`
    /// bits of the bytestring `value`.
    pub fn lpm(field_id: u32, value: impl Into<Vec<u8>>, prefix_len: i32) -> Self {
        p4::v1::FieldMatch {
            field_id,
            field_match_type: Some(p4::v1::field_match::FieldMatchType::Lpm(
                p4::v1::field_match::Lpm {
                    value: value.into(),
                    prefix_len,
                },
            )),
        }
    }
}

impl p4::v1::action::Param {
    /// Parameter `param_id` with the bytestring `value`.
    pub fn new(param_id: u32, value: impl Into<Vec<u8>>) -> Self {
        p4::v1::action::Param {
            param_id,
            value: value.into(),
        }
    }
}

impl p4::v1::TableAction {
    /// A direct action with its parameters.
    pub fn action(action_id: u32, params: impl IntoIterator<Item = p4::v1::action::Param>) -> Self {
        p4::v1::TableAction {
            r#type: Some(p4::v1::table_action::Type::Action(p4::v1::Action {
                action_id,
                params: params.into_iter().collect(),
            })),
        }
    }
}

impl google::rpc::Code {
    /// The same code as a tonic status code.
    pub fn to_tonic(self) -> tonic::Code {
        tonic::Code::from_i32(self as i32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn uint128_halves() {
        let v: p4::v1::Uint128 = 0x0000_0000_0000_0001_0000_0000_0000_0002_u128.into();
        assert_eq!((v.high, v.low), (1, 2));
        assert_eq!(u128::from(v), (1 << 64) | 2);
    }

    #[test]
    fn codes_agree_with_tonic() {
        use google::rpc::Code;
        for (ours, theirs) in [
            (Code::Ok, tonic::Code::Ok),
            (Code::InvalidArgument, tonic::Code::InvalidArgument),
            (Code::NotFound, tonic::Code::NotFound),
            (Code::AlreadyExists, tonic::Code::AlreadyExists),
            (Code::PermissionDenied, tonic::Code::PermissionDenied),
            (Code::ResourceExhausted, tonic::Code::ResourceExhausted),
            (Code::FailedPrecondition, tonic::Code::FailedPrecondition),
            (Code::OutOfRange, tonic::Code::OutOfRange),
            (Code::Unimplemented, tonic::Code::Unimplemented),
            (Code::Unauthenticated, tonic::Code::Unauthenticated),
        ] {
            assert_eq!(ours.to_tonic(), theirs);
        }
    }

    /// Field numbers are the wire format: spot-check a few by hand-encoding.
    #[test]
    fn table_entry_wire_bytes() {
        use p4::v1::*;
        let te = TableEntry {
            table_id: 0x0200_0001,
            r#match: vec![FieldMatch {
                field_id: 1,
                field_match_type: Some(field_match::FieldMatchType::Lpm(field_match::Lpm {
                    value: vec![10],
                    prefix_len: 8,
                })),
            }],
            is_default_action: true,
            ..Default::default()
        };
        assert_eq!(
            te.encode_to_vec(),
            [
                0x08, 0x81, 0x80, 0x80, 0x10, // 1: table_id varint
                0x12, 0x09, // 2: match, 9 bytes
                0x08, 0x01, //   1: field_id
                0x22, 0x05, //   4: lpm, 5 bytes
                0x0a, 0x01, 0x0a, //     1: value
                0x10, 0x08, //     2: prefix_len
                0x40, 0x01, // 8: is_default_action
            ]
        );
    }

    /// Stratum parses `p4_device_config` as this message; check its numbers.
    #[test]
    fn bf_pipeline_config_wire_bytes() {
        let cfg = stratum::BfPipelineConfig {
            p4_name: "b".into(),
            bfruntime_info: b"{}".to_vec(),
            profiles: vec![stratum::bf_pipeline_config::Profile {
                profile_name: "p".into(),
                context: b"c".to_vec(),
                binary: b"x".to_vec(),
                pipe_scope: vec![0, 1],
            }],
        };
        assert_eq!(
            cfg.encode_to_vec(),
            [
                0x0a, 0x01, b'b', // 1: p4_name
                0x12, 0x02, b'{', b'}', // 2: bfruntime_info
                0x1a, 0x0d, // 3: profiles, 13 bytes
                0x0a, 0x01, b'p', //   1: profile_name
                0x12, 0x01, b'c', //   2: context
                0x1a, 0x01, b'x', //   3: binary
                0x22, 0x02, 0x00, 0x01, //   4: pipe_scope, packed
            ]
        );
    }
}
