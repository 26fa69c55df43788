//! Protobuf text format, through prost-reflect and the
//! [`FILE_DESCRIPTOR_SET`](crate::FILE_DESCRIPTOR_SET).
//!
//! bmv2 (`--p4info` files), p4runtime-shell and p4c all exchange the P4Info
//! as text; [`to_text`] writes what Python's `google.protobuf.text_format`
//! and C++'s `TextFormat` parse.

use crate::p4::config::v1::P4Info;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, Value,
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

/// `msg` in protobuf text format, laid out as p4c writes `.p4info.txt`:
/// one field per line in field-number order, repeated fields as repeated
/// `name { ... }` blocks or lines, map entries as `key`/`value` blocks.
/// Python's `text_format.Merge`, C++'s `TextFormat::Parse` and
/// [`from_text`] read it.
pub fn to_text<M: prost::Message + prost::Name>(msg: &M) -> String {
    let desc = descriptor::<M>().expect("generated types are in the pool");
    let mut dynamic = DynamicMessage::new(desc);
    dynamic
        .transcode_from(msg)
        .expect("a generated message transcodes to its own descriptor");
    let mut out = String::new();
    write_message(&mut out, &dynamic, 0);
    out
}

fn write_message(out: &mut String, msg: &DynamicMessage, depth: usize) {
    let mut fields: Vec<_> = msg.fields().collect();
    fields.sort_by_key(|(f, _)| f.number());
    for (field, value) in fields {
        match value {
            Value::List(items) => {
                for item in items {
                    write_field(out, &field, item, depth);
                }
            }
            Value::Map(map) => {
                let entry = match field.kind() {
                    Kind::Message(entry) => entry,
                    _ => unreachable!("a map field's kind is its entry message"),
                };
                let (key_field, value_field) =
                    (entry.map_entry_key_field(), entry.map_entry_value_field());
                let mut keys: Vec<_> = map.keys().collect();
                keys.sort_by_key(|k| map_key_sort(k));
                for key in keys {
                    indent(out, depth);
                    out.push_str(field.name());
                    out.push_str(" {\n");
                    write_field(out, &key_field, &Value::from(key.clone()), depth + 1);
                    write_field(out, &value_field, &map[key], depth + 1);
                    indent(out, depth);
                    out.push_str("}\n");
                }
            }
            single => write_field(out, &field, single, depth),
        }
    }
}

fn map_key_sort(key: &MapKey) -> (u8, i128, String) {
    match key {
        MapKey::Bool(b) => (0, i128::from(*b), String::new()),
        MapKey::I32(v) => (1, i128::from(*v), String::new()),
        MapKey::I64(v) => (1, i128::from(*v), String::new()),
        MapKey::U32(v) => (1, i128::from(*v), String::new()),
        MapKey::U64(v) => (1, i128::from(*v), String::new()),
        MapKey::String(s) => (2, 0, s.clone()),
    }
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

fn write_field(out: &mut String, field: &FieldDescriptor, value: &Value, depth: usize) {
    use std::fmt::Write;
    indent(out, depth);
    out.push_str(field.name());
    match value {
        Value::Message(m) => {
            out.push_str(" {\n");
            write_message(out, m, depth + 1);
            indent(out, depth);
            out.push_str("}\n");
            return;
        }
        Value::Bool(b) => write!(out, ": {b}"),
        Value::I32(v) => write!(out, ": {v}"),
        Value::I64(v) => write!(out, ": {v}"),
        Value::U32(v) => write!(out, ": {v}"),
        Value::U64(v) => write!(out, ": {v}"),
        Value::F32(v) => write!(out, ": {}", float(f64::from(*v))),
        Value::F64(v) => write!(out, ": {}", float(*v)),
        Value::String(s) => write!(out, ": \"{}\"", escape(s.as_bytes())),
        Value::Bytes(b) => write!(out, ": \"{}\"", escape(b)),
        Value::EnumNumber(n) => match field.kind() {
            Kind::Enum(e) => match e.get_value(*n) {
                Some(v) => write!(out, ": {}", v.name()),
                None => write!(out, ": {n}"),
            },
            _ => write!(out, ": {n}"),
        },
        Value::List(_) | Value::Map(_) => unreachable!("handled by write_message"),
    }
    .expect("writing to a String cannot fail");
    out.push('\n');
}

fn float(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format!("{v:?}")
    }
}

/// C-style escaping: printable ASCII as is, the usual backslash escapes,
/// every other byte (UTF-8 included) as three octal digits.
fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            b'\'' => s.push_str("\\'"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            0x20..=0x7e => s.push(char::from(b)),
            _ => s.push_str(&format!("\\{b:03o}")),
        }
    }
    s
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
    fn layout_is_p4c_style() {
        let mut p4info = P4Info {
            tables: vec![
                Table {
                    direct_resource_ids: vec![1, 2],
                    ..Default::default()
                },
                Table::default(),
            ],
            ..Default::default()
        };
        let mut types = crate::p4::config::v1::P4TypeInfo::default();
        for name in ["b_t", "a_t"] {
            types.new_types.insert(name.into(), Default::default());
        }
        p4info.type_info = Some(types);
        let text = p4info_to_text(&p4info);
        assert_eq!(
            text,
            "tables {\n  direct_resource_ids: 1\n  direct_resource_ids: 2\n}\n\
             tables {\n}\n\
             type_info {\n  new_types {\n    key: \"a_t\"\n    value {\n    }\n  }\n\
             \x20 new_types {\n    key: \"b_t\"\n    value {\n    }\n  }\n}\n"
        );
        assert_eq!(p4info_from_text(&text).unwrap(), p4info);
    }

    #[test]
    fn strings_are_escaped() {
        assert_eq!(
            escape(b"a\"b\\c'\n\x00\xff\xc3\xaf"),
            r#"a\"b\\c\'\n\000\377\303\257"#
        );
    }

    #[test]
    fn errors_name_the_message() {
        let err = p4info_from_text("tables { bogus: 1 }").unwrap_err();
        assert!(err.to_string().contains("p4.config.v1.P4Info"), "{err}");
    }
}
