//! The bucket hash of [`beamer_pipeline::hash`], table-driven for its
//! fixed 6-byte input.
//!
//! For messages of one length, CRC-32 is affine over GF(2):
//! crc(a ^ b) = crc(a) ^ crc(b) ^ crc(0). So the CRC of the six hash bytes
//! is crc(0, 0, 0, 0, 0, 0) xor, for each position i, `T[i][byte i]`, where
//! `T[i][v]` = crc(v at position i, zeros elsewhere) ^ crc(0, ..., 0).
//! The tables are computed once from [`beamer_pipeline::hash::crc32`]
//! (crc32fast) itself, so this is the same function; it costs six
//! independent loads from 6 KiB instead of a call chain with CPU dispatch.

use beamer_pipeline::hash::{HASH_INPUT_LEN, bucket_mask, crc32};
use std::sync::LazyLock;

/// CRC-32 of 6-byte inputs.
pub struct Crc6 {
    zero: u32,
    tables: [[u32; 256]; HASH_INPUT_LEN],
}

static CRC6: LazyLock<Crc6> = LazyLock::new(Crc6::build);

impl Crc6 {
    fn build() -> Crc6 {
        let zero = crc32(&[0; HASH_INPUT_LEN]);
        let mut tables = [[0u32; 256]; HASH_INPUT_LEN];
        for (i, table) in tables.iter_mut().enumerate() {
            for (v, cell) in table.iter_mut().enumerate() {
                let mut input = [0u8; HASH_INPUT_LEN];
                input[i] = v as u8;
                *cell = crc32(&input) ^ zero;
            }
        }
        Crc6 { zero, tables }
    }

    /// The shared instance (built on first use).
    pub fn get() -> &'static Crc6 {
        &CRC6
    }

    /// CRC-32 of `input`, equal to `crc32(&input)`.
    #[inline(always)]
    pub fn crc(&self, input: [u8; HASH_INPUT_LEN]) -> u32 {
        let t = &self.tables;
        self.zero
            ^ t[0][usize::from(input[0])]
            ^ t[1][usize::from(input[1])]
            ^ t[2][usize::from(input[2])]
            ^ t[3][usize::from(input[3])]
            ^ t[4][usize::from(input[4])]
            ^ t[5][usize::from(input[5])]
    }

    /// The bucket of a client, equal to
    /// [`beamer_pipeline::hash::bucket_of_wire`].
    #[inline(always)]
    pub fn bucket(&self, src: [u8; 4], src_port: [u8; 2], bucket_bits: u8) -> u32 {
        let input = [src[0], src[1], src[2], src[3], src_port[0], src_port[1]];
        self.crc(input) & bucket_mask(bucket_bits)
    }

    /// The bucket with a precomputed [`bucket_mask`].
    #[inline(always)]
    pub fn bucket_masked(&self, src: [u8; 4], src_port: [u8; 2], mask: u32) -> u32 {
        let input = [src[0], src[1], src[2], src[3], src_port[0], src_port[1]];
        self.crc(input) & mask
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use beamer_pipeline::hash::bucket_of_wire;

    #[test]
    fn equals_crc32_on_every_single_byte_and_random_inputs() {
        let c = Crc6::get();
        for i in 0..HASH_INPUT_LEN {
            for v in 0..=255u8 {
                let mut input = [0x5au8; HASH_INPUT_LEN];
                input[i] = v;
                assert_eq!(c.crc(input), crc32(&input));
            }
        }
        let mut x = 0x0123_4567_89ab_cdefu64;
        for _ in 0..100_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let b = x.to_be_bytes();
            let (src, port) = ([b[0], b[1], b[2], b[3]], [b[4], b[5]]);
            assert_eq!(c.crc([b[0], b[1], b[2], b[3], b[4], b[5]]), crc32(&b[..6]));
            for bits in [1, 12, 16, 20] {
                assert_eq!(c.bucket(src, port, bits), bucket_of_wire(src, port, bits));
            }
        }
    }

    #[test]
    fn published_check_value_of_six_bytes() {
        // CRC-32 of "123456" (the first six bytes of the standard check
        // string) is 0x0972D361.
        assert_eq!(Crc6::get().crc(*b"123456"), 0x0972_D361);
    }
}
