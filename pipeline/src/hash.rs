//! The bucket hash.
//!
//! bucket = the low k bits of CRC-32 over the client's IPv4 source address
//! followed by its L4 source port, both as they appear on the wire. CRC-32
//! here is the reflected IEEE 802.3 CRC (polynomial 0x04C11DB7, reflected in
//! and out, initial value and final XOR 0xFFFFFFFF): bmv2's `crc32`, zlib's
//! `crc32`, and on Tofino `CRCPolynomial<bit<32>>(0x04C11DB7, true, false,
//! false, 0xFFFFFFFF, 0xFFFFFFFF)`.

use std::net::Ipv4Addr;

/// Length of the hash input: 4 bytes of address, 2 bytes of port.
pub const HASH_INPUT_LEN: usize = 6;

/// The CRC-32 polynomial in normal (not reflected) form.
pub const CRC32_POLY: u32 = 0x04C1_1DB7;
/// Initial value of the CRC register.
pub const CRC32_INIT: u32 = 0xFFFF_FFFF;
/// Value XORed into the final CRC.
pub const CRC32_XOR_OUT: u32 = 0xFFFF_FFFF;
/// Whether input bytes and the result are bit-reflected (they are: the
/// register shifts right, least significant bit first).
pub const CRC32_REFLECTED: bool = true;

/// The six bytes the bucket hash covers.
#[inline]
pub fn hash_input(src: Ipv4Addr, src_port: u16) -> [u8; HASH_INPUT_LEN] {
    let a = src.octets();
    let p = src_port.to_be_bytes();
    [a[0], a[1], a[2], a[3], p[0], p[1]]
}

/// CRC-32 of `data` (reflected IEEE, as zlib).
#[inline]
pub fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

/// The mask selecting the low `bucket_bits` bits of the CRC.
#[inline]
pub const fn bucket_mask(bucket_bits: u8) -> u32 {
    if bucket_bits >= 32 {
        u32::MAX
    } else {
        (1u32 << bucket_bits) - 1
    }
}

/// The bucket of a client: low `bucket_bits` bits of the CRC of its
/// (source address, source port).
#[inline]
pub fn bucket_of(src: Ipv4Addr, src_port: u16, bucket_bits: u8) -> u32 {
    crc32(&hash_input(src, src_port)) & bucket_mask(bucket_bits)
}

/// The bucket from the raw wire bytes of the source address and port, for
/// callers holding a packet view.
#[inline]
pub fn bucket_of_wire(src: [u8; 4], src_port: [u8; 2], bucket_bits: u8) -> u32 {
    let input = [src[0], src[1], src[2], src[3], src_port[0], src_port[1]];
    crc32(&input) & bucket_mask(bucket_bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_check_value() {
        // The standard CRC-32 check value over "123456789".
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn bitwise_reference_agrees() {
        // A bit-at-a-time CRC written from the parameters above.
        fn reference(data: &[u8]) -> u32 {
            let poly_reflected = CRC32_POLY.reverse_bits();
            let mut crc = CRC32_INIT;
            for &b in data {
                crc ^= u32::from(b);
                for _ in 0..8 {
                    crc = if crc & 1 == 1 {
                        (crc >> 1) ^ poly_reflected
                    } else {
                        crc >> 1
                    };
                }
            }
            crc ^ CRC32_XOR_OUT
        }
        for input in [
            hash_input(Ipv4Addr::new(10, 1, 2, 3), 40000),
            hash_input(Ipv4Addr::new(255, 255, 255, 255), 65535),
            hash_input(Ipv4Addr::new(0, 0, 0, 0), 0),
        ] {
            assert_eq!(crc32(&input), reference(&input));
        }
    }

    #[test]
    fn input_is_address_then_port_big_endian() {
        assert_eq!(
            hash_input(Ipv4Addr::new(192, 0, 2, 1), 0x1234),
            [192, 0, 2, 1, 0x12, 0x34]
        );
    }

    #[test]
    fn bucket_masks_low_bits() {
        let src = Ipv4Addr::new(198, 51, 100, 7);
        let full = crc32(&hash_input(src, 5555));
        assert_eq!(bucket_of(src, 5555, 16), full & 0xffff);
        assert_eq!(bucket_of(src, 5555, 1), full & 1);
        assert_eq!(bucket_of(src, 5555, 32), full);
        assert_eq!(
            bucket_of_wire(src.octets(), 5555u16.to_be_bytes(), 16),
            bucket_of(src, 5555, 16)
        );
    }
}
