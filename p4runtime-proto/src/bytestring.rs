//! Canonical bytestrings (P4Runtime spec, "Bytestrings").
//!
//! Every unsigned P4 integer (`bit<W>`: match fields, action parameters,
//! packet metadata) travels as a big-endian byte string.
//! - A sender writes the *canonical* form: the shortest string that holds
//!   the value, one byte at least (0 is `\x00`). This gives read-write
//!   symmetry: what a client writes is byte for byte what it reads back.
//! - A receiver accepts any length, zero padding included, as long as the
//!   value fits in `W` bits once leading zero bits are removed. An empty
//!   string, or a value wider than `W` bits, is rejected with
//!   `OUT_OF_RANGE`.
//!
//! Signed (`int<W>`) values only occur in `P4Data`, which this project
//! does not use; they are not handled here.

use crate::google::rpc::Code;

/// A received bytestring does not encode a `bit<W>` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BytestringError {
    /// The string has no bytes.
    #[error("empty bytestring for a bit<{bitwidth}> value")]
    Empty {
        /// The expected width.
        bitwidth: u32,
    },
    /// The value needs more bits than the field has.
    #[error("bytestring 0x{hex} needs {needed} bits, more than bit<{bitwidth}> holds")]
    TooWide {
        /// The bytes received, in hex.
        hex: String,
        /// Significant bits of the value.
        needed: u32,
        /// The expected width.
        bitwidth: u32,
    },
}

impl BytestringError {
    /// The gRPC code the spec prescribes for a rejected bytestring.
    pub fn code(&self) -> Code {
        Code::OutOfRange
    }
}

/// Number of significant bits of a big-endian unsigned value: 0 for zero.
pub fn significant_bits(bytes: &[u8]) -> u32 {
    match bytes.iter().position(|&b| b != 0) {
        None => 0,
        Some(i) => (bytes.len() - i) as u32 * 8 - bytes[i].leading_zeros(),
    }
}

/// The canonical form of a big-endian unsigned value: leading zero bytes
/// removed, one byte kept for zero. The empty string stays empty.
pub fn canonical(bytes: &[u8]) -> &[u8] {
    let first = bytes
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(bytes.len().saturating_sub(1));
    &bytes[first..]
}

/// The canonical bytestring of `value`.
pub fn from_u64(value: u64) -> Vec<u8> {
    canonical(&value.to_be_bytes()).to_vec()
}

/// The canonical bytestring of a big-endian unsigned value of any width
/// (a MAC address, say).
pub fn from_be_bytes(bytes: &[u8]) -> Vec<u8> {
    if bytes.is_empty() {
        return vec![0];
    }
    canonical(bytes).to_vec()
}

/// Checks that `bytes` encodes a `bit<bitwidth>` value.
pub fn check(bytes: &[u8], bitwidth: u32) -> Result<(), BytestringError> {
    if bytes.is_empty() {
        return Err(BytestringError::Empty { bitwidth });
    }
    let needed = significant_bits(bytes);
    if needed > bitwidth {
        return Err(BytestringError::TooWide {
            hex: bytes.iter().map(|b| format!("{b:02x}")).collect(),
            needed,
            bitwidth,
        });
    }
    Ok(())
}

/// Decodes a `bit<bitwidth>` value, `bitwidth` at most 64.
pub fn to_u64(bytes: &[u8], bitwidth: u32) -> Result<u64, BytestringError> {
    debug_assert!(bitwidth <= 64);
    check(bytes, bitwidth)?;
    Ok(canonical(bytes)
        .iter()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

/// Decodes a `bit<bitwidth>` value of any width into exactly
/// `(bitwidth + 7) / 8` big-endian bytes.
pub fn to_be_bytes(bytes: &[u8], bitwidth: u32) -> Result<Vec<u8>, BytestringError> {
    check(bytes, bitwidth)?;
    let len = bitwidth.div_ceil(8) as usize;
    let value = canonical(bytes);
    // `check` guarantees the canonical value fits in `len` bytes (or is a
    // single zero byte, when bitwidth is 0).
    let mut out = vec![0; len.max(value.len())];
    let at = out.len() - value.len();
    out[at..].copy_from_slice(value);
    out.drain(..out.len() - len);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec's table of valid encodings, plus this project's widths.
    #[test]
    fn accepted_encodings() {
        let cases: &[(&str, u32, &[u8], u64)] = &[
            ("bit<8> canonical", 8, b"\x63", 0x63),
            ("bit<16> padded", 16, b"\x00\x63", 0x63),
            ("bit<16> canonical", 16, b"\x63", 0x63),
            ("bit<16> two bytes", 16, b"\x30\x64", 0x3064),
            (
                "bit<16> over-long, zero padded",
                16,
                b"\x00\x30\x64",
                0x3064,
            ),
            ("bit<12> padded", 12, b"\x00\x63", 0x63),
            ("bit<12> canonical", 12, b"\x63", 0x63),
            ("bit<12> padded twice", 12, b"\x00\x00\x63", 0x63),
            ("bit<12> full", 12, b"\x0f\xff", 0xfff),
            ("zero", 32, b"\x00", 0),
            ("zero, padded", 32, b"\x00\x00\x00\x00\x00", 0),
            ("bit<9> port 511", 9, b"\x01\xff", 511),
            ("bit<1>", 1, b"\x01", 1),
            (
                "bit<48> MAC",
                48,
                b"\x02\x00\x00\x00\x00\x01",
                0x0200_0000_0001,
            ),
            (
                "bit<64> max",
                64,
                b"\xff\xff\xff\xff\xff\xff\xff\xff",
                u64::MAX,
            ),
        ];
        for &(what, w, bytes, value) in cases {
            assert_eq!(to_u64(bytes, w), Ok(value), "{what}");
        }
    }

    /// The spec's table of invalid encodings (unsigned rows), plus more.
    #[test]
    fn rejected_encodings_are_out_of_range() {
        let cases: &[(&str, u32, &[u8], u32)] = &[
            ("bit<8> nine bits", 8, b"\x01\x63", 9),
            ("bit<16> seventeen bits", 16, b"\x01\x00\x63", 17),
            ("bit<12> thirteen bits", 12, b"\x10\x63", 13),
            ("bit<12> padded, seventeen bits", 12, b"\x01\x00\x63", 17),
            ("bit<12> padded, fifteen bits", 12, b"\x00\x40\x63", 15),
            ("bit<9> port 512", 9, b"\x02\x00", 10),
            ("bit<32> five bytes", 32, b"\x01\x00\x00\x00\x00", 33),
        ];
        for &(what, w, bytes, needed) in cases {
            let err = to_u64(bytes, w).unwrap_err();
            assert!(
                matches!(err, BytestringError::TooWide { needed: n, bitwidth, .. } if n == needed && bitwidth == w),
                "{what}: {err:?}"
            );
            assert_eq!(err.code(), Code::OutOfRange, "{what}");
        }
        let empty = to_u64(b"", 8).unwrap_err();
        assert_eq!(empty, BytestringError::Empty { bitwidth: 8 });
        assert_eq!(empty.code(), Code::OutOfRange);
        assert_eq!(
            to_u64(b"\x10\x63", 12).unwrap_err().to_string(),
            "bytestring 0x1063 needs 13 bits, more than bit<12> holds"
        );
    }

    #[test]
    fn canonical_encoding() {
        let cases: &[(u64, &[u8])] = &[
            (0, b"\x00"),
            (1, b"\x01"),
            (0x63, b"\x63"),
            (0x100, b"\x01\x00"),
            (0x3064, b"\x30\x64"),
            (0x0a00_0001, b"\x0a\x00\x00\x01"),
            (0x0000_0001, b"\x01"),
            (u64::MAX, b"\xff\xff\xff\xff\xff\xff\xff\xff"),
        ];
        for &(v, bytes) in cases {
            assert_eq!(from_u64(v), bytes, "{v:#x}");
            assert_eq!(to_u64(bytes, 64), Ok(v));
        }
        assert_eq!(
            from_be_bytes(b"\x00\x00\x5e\x00\x53\x01"),
            b"\x5e\x00\x53\x01"
        );
        assert_eq!(from_be_bytes(b"\x00\x00\x00"), b"\x00");
        assert_eq!(from_be_bytes(b""), b"\x00");
        assert_eq!(canonical(b"\x00\x00\x07"), b"\x07");
        assert_eq!(canonical(b""), b"");
    }

    #[test]
    fn fixed_width_decoding() {
        assert_eq!(
            to_be_bytes(b"\x5e\x00\x53\x01", 48).unwrap(),
            b"\x00\x00\x5e\x00\x53\x01"
        );
        assert_eq!(
            to_be_bytes(b"\x00\x00\x00\x02\x00\x00\x00\x00\x01", 48).unwrap(),
            b"\x02\x00\x00\x00\x00\x01"
        );
        assert_eq!(to_be_bytes(b"\x00", 9).unwrap(), b"\x00\x00");
        assert_eq!(to_be_bytes(b"\x01\xff", 9).unwrap(), b"\x01\xff");
        assert!(to_be_bytes(b"\x02\x00", 9).is_err());
        assert!(to_be_bytes(b"\x01\x00\x00\x00\x00\x00\x00", 48).is_err());
    }

    #[test]
    fn significant_bit_counts() {
        assert_eq!(significant_bits(b""), 0);
        assert_eq!(significant_bits(b"\x00\x00"), 0);
        assert_eq!(significant_bits(b"\x01"), 1);
        assert_eq!(significant_bits(b"\x00\x80"), 8);
        assert_eq!(significant_bits(b"\x01\x00"), 9);
    }
}
