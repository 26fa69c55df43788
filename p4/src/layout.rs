//! The P4 header types, laid out from the byte ranges of
//! [`beamer_pipeline::wire`].
//!
//! Every field width here is computed from a pipeline range or length; only
//! the split of a byte into nibbles (version/IHL, TCP data offset) is a P4
//! layout choice. The tests check that each field starts at the byte the
//! pipeline names.

use beamer_pipeline::schema;
use beamer_pipeline::wire::{ethernet, ipv4, l4, option};
use core::ops::Range;

/// One field of a P4 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// Name in the P4 source.
    pub name: &'static str,
    /// Width in bits.
    pub bits: u32,
}

/// A P4 header type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Type name in the P4 source.
    pub type_name: &'static str,
    /// Fields, in wire order.
    pub fields: Vec<Field>,
}

impl Header {
    /// Total width in bits.
    #[cfg(test)]
    pub fn bits(&self) -> u32 {
        self.fields.iter().map(|f| f.bits).sum()
    }

    /// The field called `name`.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Bit offset of the field called `name` from the start of the header.
    #[cfg(test)]
    pub fn offset_bits(&self, name: &str) -> Option<u32> {
        let mut at = 0;
        for f in &self.fields {
            if f.name == name {
                return Some(at);
            }
            at += f.bits;
        }
        None
    }
}

const fn f(name: &'static str, bits: u32) -> Field {
    Field { name, bits }
}

fn bytes(r: Range<usize>) -> u32 {
    ((r.end - r.start) * 8) as u32
}

/// Bits of a single-byte field.
const BYTE: u32 = 8;
/// Bits of a nibble (half of the version/IHL byte, of the TCP offset byte).
const NIBBLE: u32 = 4;

/// Ethernet II, no VLAN tag.
pub fn ethernet() -> Header {
    use ethernet::field::*;
    Header {
        type_name: "ethernet_h",
        fields: vec![
            f("dst_addr", bytes(DST)),
            f("src_addr", bytes(SRC)),
            f("ether_type", bytes(ETHERTYPE)),
        ],
    }
}

/// The fixed 20-byte IPv4 header. Flags and fragment offset stay one 16-bit
/// field so the pipeline's masks apply to it as they are.
pub fn ipv4() -> Header {
    use ipv4::field::*;
    Header {
        type_name: "ipv4_h",
        fields: vec![
            f("version", NIBBLE),
            f("ihl", NIBBLE),
            f("tos", BYTE),
            f("total_len", bytes(TOTAL_LEN)),
            f("identification", bytes(IDENT)),
            f("flags_frag", bytes(FLAGS_FRAG)),
            f("ttl", BYTE),
            f("protocol", schema::PROTOCOL_BITS),
            f("hdr_checksum", bytes(CHECKSUM)),
            f("src_addr", bytes(SRC)),
            f("dst_addr", bytes(DST)),
        ],
    }
}

/// The 16-byte Beamer option.
pub fn beamer_option() -> Header {
    use option::field::*;
    Header {
        type_name: "beamer_option_h",
        fields: vec![
            f("opt_type", BYTE),
            f("opt_len", BYTE),
            f("zero", bytes(PAD)),
            f("prev_dip", bytes(PREV_DIP)),
            f("change_time", bytes(CHANGE_TIME)),
            f("generation", bytes(GENERATION)),
        ],
    }
}

/// The fixed 20-byte TCP header (options are not parsed).
pub fn tcp() -> Header {
    use l4::field::*;
    let window_start = TCP_FLAGS + 1;
    Header {
        type_name: "tcp_h",
        fields: vec![
            f("src_port", bytes(SRC_PORT)),
            f("dst_port", bytes(DST_PORT)),
            f("seq_no", bytes(TCP_SEQ)),
            f("ack_no", bytes(TCP_ACK)),
            f("data_offset", NIBBLE),
            f("res", NIBBLE),
            f("flags", BYTE),
            f("window", bytes(window_start..TCP_CHECKSUM.start)),
            f("checksum", bytes(TCP_CHECKSUM)),
            f("urgent_ptr", bytes(TCP_CHECKSUM.end..l4::TCP_HEADER_LEN)),
        ],
    }
}

/// The 8-byte UDP header.
pub fn udp() -> Header {
    use l4::field::*;
    Header {
        type_name: "udp_h",
        fields: vec![
            f("src_port", bytes(SRC_PORT)),
            f("dst_port", bytes(DST_PORT)),
            f("length", bytes(UDP_LEN)),
            f("checksum", bytes(UDP_CHECKSUM)),
        ],
    }
}

/// Every header type, in the order the program declares them.
pub fn all() -> Vec<Header> {
    vec![ethernet(), ipv4(), beamer_option(), tcp(), udp()]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (header, P4 field, the pipeline's byte offset of that field).
    fn offsets() -> Vec<(Header, &'static str, usize)> {
        use ethernet::field as e;
        use ipv4::field as i;
        use l4::field as l;
        use option::field as o;
        vec![
            (ethernet(), "dst_addr", e::DST.start),
            (ethernet(), "src_addr", e::SRC.start),
            (ethernet(), "ether_type", e::ETHERTYPE.start),
            (ipv4(), "version", i::VER_IHL),
            (ipv4(), "tos", i::TOS),
            (ipv4(), "total_len", i::TOTAL_LEN.start),
            (ipv4(), "identification", i::IDENT.start),
            (ipv4(), "flags_frag", i::FLAGS_FRAG.start),
            (ipv4(), "ttl", i::TTL),
            (ipv4(), "protocol", i::PROTOCOL),
            (ipv4(), "hdr_checksum", i::CHECKSUM.start),
            (ipv4(), "src_addr", i::SRC.start),
            (ipv4(), "dst_addr", i::DST.start),
            (beamer_option(), "opt_type", o::TYPE),
            (beamer_option(), "opt_len", o::LEN),
            (beamer_option(), "zero", o::PAD.start),
            (beamer_option(), "prev_dip", o::PREV_DIP.start),
            (beamer_option(), "change_time", o::CHANGE_TIME.start),
            (beamer_option(), "generation", o::GENERATION.start),
            (tcp(), "src_port", l::SRC_PORT.start),
            (tcp(), "dst_port", l::DST_PORT.start),
            (tcp(), "seq_no", l::TCP_SEQ.start),
            (tcp(), "ack_no", l::TCP_ACK.start),
            (tcp(), "data_offset", l::TCP_DATA_OFF),
            (tcp(), "flags", l::TCP_FLAGS),
            (tcp(), "checksum", l::TCP_CHECKSUM.start),
            (udp(), "src_port", l::SRC_PORT.start),
            (udp(), "dst_port", l::DST_PORT.start),
            (udp(), "length", l::UDP_LEN.start),
            (udp(), "checksum", l::UDP_CHECKSUM.start),
        ]
    }

    #[test]
    fn fields_start_where_the_pipeline_says() {
        for (h, name, byte) in offsets() {
            assert_eq!(
                h.offset_bits(name),
                Some(byte as u32 * 8),
                "{}.{name}",
                h.type_name
            );
        }
    }

    #[test]
    fn headers_have_the_pipeline_lengths() {
        let lens = [
            (ethernet(), ethernet::HEADER_LEN),
            (ipv4(), ipv4::HEADER_LEN),
            (beamer_option(), option::OPTION_LEN),
            (tcp(), l4::TCP_HEADER_LEN),
            (udp(), l4::UDP_HEADER_LEN),
        ];
        for (h, len) in lens {
            assert_eq!(h.bits(), len as u32 * 8, "{}", h.type_name);
        }
    }

    #[test]
    fn key_fields_have_the_schema_widths() {
        use schema::*;
        assert_eq!(ipv4().field("dst_addr").unwrap().bits, IPV4_BITS);
        assert_eq!(ipv4().field("src_addr").unwrap().bits, IPV4_BITS);
        assert_eq!(tcp().field("dst_port").unwrap().bits, L4_PORT_BITS);
        assert_eq!(udp().field("src_port").unwrap().bits, L4_PORT_BITS);
        assert_eq!(ethernet().field("dst_addr").unwrap().bits, MAC_BITS);
        assert_eq!(beamer_option().field("prev_dip").unwrap().bits, IPV4_BITS);
        assert_eq!(
            beamer_option().field("change_time").unwrap().bits,
            TIME_BITS
        );
        assert_eq!(
            beamer_option().field("generation").unwrap().bits,
            GENERATION_BITS
        );
    }
}
