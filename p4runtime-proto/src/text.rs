//! Protobuf text format, through prost-reflect and the
//! [`FILE_DESCRIPTOR_SET`](crate::FILE_DESCRIPTOR_SET).
//!
//! bmv2 (`--p4info` files), p4runtime-shell and p4c all exchange the P4Info
//! as text; [`to_text`] writes what Python's `google.protobuf.text_format`
//! and C++'s `TextFormat` parse.

use crate::p4::config::v1::P4Info;
use prost_reflect::{
    DescriptorPool, DynamicMessage, MessageDescriptor, text_format::FormatOptions,
};
use std::sync::OnceLock;

/// A text-format document could not be read as the expected message.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    /// The text is not valid text format for the message type.
    #[error("invalid text format for {message}: {source}")]
    Parse {
        /// Full name of the message type.
        message: String,
        /// What the parser found.
        #[source]
        source: prost_reflect::text_format::ParseError,
    },
    /// The message type is not in the descriptor set (a bug in this crate).
    #[error("message type {0} is not in the descriptor set")]
    UnknownType(String),
    /// The parsed message could not be converted to the generated type.
    #[error("cannot convert {message}: {source}")]
    Convert {
        /// Full name of the message type.
        message: String,
        /// The decoder's complaint.
        #[source]
        source: prost::DecodeError,
    },
}

/// The descriptor pool of every message of this crate, decoded once.
pub fn descriptor_pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(crate::FILE_DESCRIPTOR_SET)
            .expect("the build script's descriptor set decodes")
    })
}

/// The descriptor of generated message type `M`.
pub fn descriptor<M: prost::Name>() -> Result<MessageDescriptor, TextError> {
    let name = M::full_name();
    descriptor_pool()
        .get_message_by_name(&name)
        .ok_or(TextError::UnknownType(name))
}

/// `msg` in protobuf text format, one field per line, nested messages
/// indented, `google.protobuf.Any` expanded when its type is known.
pub fn to_text<M: prost::Message + prost::Name>(msg: &M) -> String {
    let desc = descriptor::<M>().expect("generated types are in the pool");
    let mut dynamic = DynamicMessage::new(desc);
    dynamic
        .transcode_from(msg)
        .expect("a generated message transcodes to its own descriptor");
    let mut text = dynamic.to_text_format_with_options(
        &FormatOptions::new()
            .pretty(true)
            .expand_any(true)
            .print_message_fields_in_index_order(false),
    );
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// Parses protobuf text format as message type `M`.
pub fn from_text<M: prost::Message + prost::Name + Default>(text: &str) -> Result<M, TextError> {
    let desc = descriptor::<M>()?;
    let dynamic =
        DynamicMessage::parse_text_format(desc, text).map_err(|source| TextError::Parse {
            message: M::full_name(),
            source,
        })?;
    dynamic.transcode_to().map_err(|source| TextError::Convert {
        message: M::full_name(),
        source,
    })
}

/// A P4Info in text format, as p4c writes `--p4runtime-files x.p4info.txt`.
pub fn p4info_to_text(p4info: &P4Info) -> String {
    to_text(p4info)
}

/// Parses a text-format P4Info (p4c's `.p4info.txt`).
pub fn p4info_from_text(text: &str) -> Result<P4Info, TextError> {
    from_text(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::p4::config::v1::{Preamble, Table};
    use crate::p4::v1;

    #[test]
    fn p4info_round_trips_through_text() {
        let p4info = P4Info {
            tables: vec![Table {
                preamble: Some(Preamble {
                    id: 0x0200_0001,
                    name: "Ingress.t".into(),
                    alias: "t".into(),
                    ..Default::default()
                }),
                size: 1024,
                ..Default::default()
            }],
            ..Default::default()
        };
        let text = p4info_to_text(&p4info);
        assert!(text.contains("name: \"Ingress.t\""), "{text}");
        assert!(text.contains("id: 33554433"), "{text}");
        assert_eq!(p4info_from_text(&text).unwrap(), p4info);
    }

    #[test]
    fn bytes_and_enums_are_readable() {
        let update = v1::Update {
            r#type: v1::update::Type::Modify as i32,
            entity: Some(v1::Entity {
                entity: Some(v1::entity::Entity::TableEntry(v1::TableEntry {
                    table_id: 7,
                    r#match: vec![v1::FieldMatch {
                        field_id: 1,
                        field_match_type: Some(v1::field_match::FieldMatchType::Exact(
                            v1::field_match::Exact {
                                value: vec![0x0a, 0x00, b'"', 0xff],
                            },
                        )),
                    }],
                    ..Default::default()
                })),
            }),
        };
        let text = to_text(&update);
        assert!(text.contains("type: MODIFY"), "{text}");
        assert_eq!(from_text::<v1::Update>(&text).unwrap(), update);
    }

    #[test]
    fn errors_name_the_message() {
        let err = p4info_from_text("tables { bogus: 1 }").unwrap_err();
        assert!(err.to_string().contains("p4.config.v1.P4Info"), "{err}");
    }
}
