//! Zero-copy views of the headers the mux reads and writes.
//!
//! Each view wraps a buffer `T: AsRef<[u8]>`, is built with `new_checked`
//! (which checks the length once), and then offers accessors that cannot
//! panic. Mutable accessors exist when `T: AsMut<[u8]>`. Field positions are
//! named ranges in each module's `field` submodule, so the P4 generator and
//! the tests read the same offsets the software switch uses.

pub mod ethernet;
pub mod ipv4;
pub mod l4;
pub mod option;

pub use ethernet::{EthernetFrame, MacAddr};
pub use ipv4::Ipv4Packet;
pub use l4::{TcpHeader, UdpHeader};
pub use option::BeamerOption;

/// A buffer was too short for the header a view was asked to cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("truncated {header} header: need {needed} bytes, have {have}")]
pub struct Truncated {
    /// Which header was being read.
    pub header: &'static str,
    /// Bytes the header needs.
    pub needed: usize,
    /// Bytes the buffer has.
    pub have: usize,
}

pub(crate) fn check_len(header: &'static str, have: usize, needed: usize) -> Result<(), Truncated> {
    if have < needed {
        Err(Truncated {
            header,
            needed,
            have,
        })
    } else {
        Ok(())
    }
}

/// Reads a big-endian u16 at `at`. Callers have checked the length.
#[inline(always)]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Reads a big-endian u32 at `at`. Callers have checked the length.
#[inline(always)]
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The Internet checksum (RFC 1071): the ones' complement of the ones'
/// complement sum of `data` taken as big-endian 16-bit words, an odd last
/// byte padded with zero.
pub fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_rfc1071_example() {
        // RFC 1071 section 3 sums 0001 f203 f4f5 f6f7 to 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(internet_checksum(&data), !0xddf2);
    }

    #[test]
    fn checksum_pads_odd_byte() {
        assert_eq!(internet_checksum(&[0x12]), !0x1200);
    }

    #[test]
    fn checksum_of_valid_header_verifies_to_zero() {
        // A real IPv4 header (from a capture) with its checksum in place.
        let hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(internet_checksum(&hdr), 0);
    }
}
