//! The bucket CRC against published check values and against zlib (the C
//! library, through libz-sys), for the pipeline crate's crc32fast-based
//! function and the switch's table-driven 6-byte form.

use beamer_pipeline::hash::{bucket_of, bucket_of_wire, crc32, hash_input};
use beamer_softswitch::hash::Crc6;
use std::net::Ipv4Addr;

fn zlib_crc32(data: &[u8]) -> u32 {
    // SAFETY: zlib reads `len` bytes from a valid pointer; the initial value
    // comes from crc32(0, NULL, 0) as zlib documents.
    unsafe {
        let init = libz_sys::crc32(0, std::ptr::null(), 0);
        libz_sys::crc32(init, data.as_ptr(), data.len() as libz_sys::uInt) as u32
    }
}

#[test]
fn published_check_values() {
    // The CRC-32/ISO-HDLC check value (the catalogue's "check" field).
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    // Other widely quoted values of the same CRC.
    assert_eq!(crc32(b""), 0x0000_0000);
    assert_eq!(crc32(b"a"), 0xE8B7_BE43);
    assert_eq!(
        crc32(b"The quick brown fox jumps over the lazy dog"),
        0x414F_A339
    );
    // Six bytes: the switch's form on the first six of the check string.
    assert_eq!(Crc6::get().crc(*b"123456"), crc32(b"123456"));
}

#[test]
fn zlib_agrees_on_check_values() {
    for input in [
        &b"123456789"[..],
        b"",
        b"a",
        b"The quick brown fox jumps over the lazy dog",
    ] {
        assert_eq!(zlib_crc32(input), crc32(input), "{input:?}");
    }
}

#[test]
fn zlib_agrees_on_hash_inputs() {
    let c = Crc6::get();
    let mut x = 0xdead_beef_cafe_f00du64;
    for i in 0..200_000u32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let addr = Ipv4Addr::from((x >> 16) as u32);
        let port = x as u16;
        let input = hash_input(addr, port);
        let z = zlib_crc32(&input);
        assert_eq!(crc32(&input), z, "{addr}:{port}");
        assert_eq!(c.crc(input), z, "{addr}:{port}");
        let bits = (i % 20 + 1) as u8;
        let want = z & ((1u32 << bits) - 1);
        assert_eq!(bucket_of(addr, port, bits), want);
        assert_eq!(
            c.bucket(addr.octets(), port.to_be_bytes(), bits),
            bucket_of_wire(addr.octets(), port.to_be_bytes(), bits)
        );
    }
}

#[test]
fn hash_input_edges() {
    let c = Crc6::get();
    for (addr, port) in [
        (Ipv4Addr::UNSPECIFIED, 0),
        (Ipv4Addr::BROADCAST, u16::MAX),
        (Ipv4Addr::new(10, 0, 0, 1), 80),
    ] {
        let input = hash_input(addr, port);
        assert_eq!(c.crc(input), zlib_crc32(&input));
    }
}
