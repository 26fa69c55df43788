//! IPv4 headers.

use super::{Truncated, be16, be32, check_len, internet_checksum};
use std::net::Ipv4Addr;

/// Field ranges of the fixed IPv4 header.
pub mod field {
    use core::ops::Range;
    /// Version (high nibble) and IHL (low nibble).
    pub const VER_IHL: usize = 0;
    /// Type of service / DSCP and ECN.
    pub const TOS: usize = 1;
    /// Total length.
    pub const TOTAL_LEN: Range<usize> = 2..4;
    /// Identification.
    pub const IDENT: Range<usize> = 4..6;
    /// Flags (3 high bits) and fragment offset (13 low bits).
    pub const FLAGS_FRAG: Range<usize> = 6..8;
    /// Time to live.
    pub const TTL: usize = 8;
    /// Protocol of the payload.
    pub const PROTOCOL: usize = 9;
    /// Header checksum.
    pub const CHECKSUM: Range<usize> = 10..12;
    /// Source address.
    pub const SRC: Range<usize> = 12..16;
    /// Destination address.
    pub const DST: Range<usize> = 16..20;
}

/// Length of an IPv4 header without options.
pub const HEADER_LEN: usize = 20;
/// The version field of an IPv4 header.
pub const VERSION: u8 = 4;
/// The IHL of a header without options.
pub const IHL_NO_OPTIONS: u8 = 5;
/// IP protocol number of ICMP.
pub const PROTO_ICMP: u8 = 1;
/// IP protocol number of IP-in-IP encapsulation.
pub const PROTO_IPIP: u8 = 4;
/// IP protocol number of TCP.
pub const PROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const PROTO_UDP: u8 = 17;
/// The "more fragments" flag within the flags/offset field.
pub const FLAG_MF: u16 = 0x2000;
/// The "don't fragment" flag within the flags/offset field.
pub const FLAG_DF: u16 = 0x4000;
/// The fragment offset bits within the flags/offset field.
pub const FRAG_OFFSET_MASK: u16 = 0x1fff;

/// A view of an IPv4 header and what follows it.
#[derive(Debug, Clone)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps `buf` after checking it holds the 20-byte fixed header.
    /// Options, if the IHL announces them, are not checked here.
    pub fn new_checked(buf: T) -> Result<Self, Truncated> {
        check_len("IPv4", buf.as_ref().len(), HEADER_LEN)?;
        Ok(Ipv4Packet { buf })
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buf
    }

    fn b(&self) -> &[u8] {
        self.buf.as_ref()
    }

    /// IP version (4 for IPv4).
    pub fn version(&self) -> u8 {
        self.b()[field::VER_IHL] >> 4
    }

    /// Internet header length in 32-bit words.
    pub fn ihl(&self) -> u8 {
        self.b()[field::VER_IHL] & 0x0f
    }

    /// Header length in bytes as the IHL announces it.
    pub fn header_len(&self) -> usize {
        usize::from(self.ihl()) * 4
    }

    /// Type of service byte.
    pub fn tos(&self) -> u8 {
        self.b()[field::TOS]
    }

    /// Total length field.
    pub fn total_len(&self) -> u16 {
        be16(self.b(), field::TOTAL_LEN.start)
    }

    /// Identification field.
    pub fn ident(&self) -> u16 {
        be16(self.b(), field::IDENT.start)
    }

    /// Flags and fragment offset, as one 16-bit field.
    pub fn flags_frag(&self) -> u16 {
        be16(self.b(), field::FLAGS_FRAG.start)
    }

    /// True for a fragment: MF set or a non-zero offset. The reserved flag
    /// bit plays no part.
    pub fn is_fragment(&self) -> bool {
        self.flags_frag() & (FLAG_MF | FRAG_OFFSET_MASK) != 0
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.b()[field::TTL]
    }

    /// Protocol of the payload.
    pub fn protocol(&self) -> u8 {
        self.b()[field::PROTOCOL]
    }

    /// Header checksum field.
    pub fn checksum(&self) -> u16 {
        be16(self.b(), field::CHECKSUM.start)
    }

    /// Source address.
    pub fn src(&self) -> Ipv4Addr {
        Ipv4Addr::from(be32(self.b(), field::SRC.start))
    }

    /// Destination address.
    pub fn dst(&self) -> Ipv4Addr {
        Ipv4Addr::from(be32(self.b(), field::DST.start))
    }

    /// The header bytes as the IHL announces them, clamped to the buffer.
    pub fn header(&self) -> &[u8] {
        let b = self.b();
        &b[..self.header_len().clamp(HEADER_LEN, b.len())]
    }

    /// The option bytes (between the fixed header and the payload), clamped
    /// to the buffer.
    pub fn options(&self) -> &[u8] {
        &self.header()[HEADER_LEN..]
    }

    /// True when the header checksum verifies over the announced header.
    pub fn checksum_ok(&self) -> bool {
        internet_checksum(self.header()) == 0
    }

    /// The bytes after the announced header (empty if the buffer is shorter).
    pub fn payload(&self) -> &[u8] {
        let b = self.b();
        b.get(self.header_len().max(HEADER_LEN)..).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    fn m(&mut self) -> &mut [u8] {
        self.buf.as_mut()
    }

    /// Sets version and IHL together.
    pub fn set_version_ihl(&mut self, version: u8, ihl: u8) {
        self.m()[field::VER_IHL] = (version << 4) | (ihl & 0x0f);
    }

    /// Sets the type of service byte.
    pub fn set_tos(&mut self, tos: u8) {
        self.m()[field::TOS] = tos;
    }

    /// Sets the total length field.
    pub fn set_total_len(&mut self, len: u16) {
        self.m()[field::TOTAL_LEN].copy_from_slice(&len.to_be_bytes());
    }

    /// Sets the identification field.
    pub fn set_ident(&mut self, ident: u16) {
        self.m()[field::IDENT].copy_from_slice(&ident.to_be_bytes());
    }

    /// Sets flags and fragment offset.
    pub fn set_flags_frag(&mut self, v: u16) {
        self.m()[field::FLAGS_FRAG].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the time to live.
    pub fn set_ttl(&mut self, ttl: u8) {
        self.m()[field::TTL] = ttl;
    }

    /// Sets the payload protocol.
    pub fn set_protocol(&mut self, proto: u8) {
        self.m()[field::PROTOCOL] = proto;
    }

    /// Sets the checksum field as is.
    pub fn set_checksum(&mut self, sum: u16) {
        self.m()[field::CHECKSUM].copy_from_slice(&sum.to_be_bytes());
    }

    /// Sets the source address.
    pub fn set_src(&mut self, a: Ipv4Addr) {
        self.m()[field::SRC].copy_from_slice(&a.octets());
    }

    /// Sets the destination address.
    pub fn set_dst(&mut self, a: Ipv4Addr) {
        self.m()[field::DST].copy_from_slice(&a.octets());
    }

    /// Recomputes the header checksum over the announced header.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let sum = internet_checksum(self.header());
        self.set_checksum(sum);
    }

    /// The option bytes, mutably (clamped to the buffer).
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len().clamp(HEADER_LEN, self.b().len());
        &mut self.m()[HEADER_LEN..hl]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 192.168.0.1 -> 192.168.0.199, UDP, total length 0x73, DF, TTL 64.
    const HDR: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];

    #[test]
    fn parse_fields() {
        let p = Ipv4Packet::new_checked(&HDR[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.ihl(), 5);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 0x73);
        assert_eq!(p.flags_frag(), FLAG_DF);
        assert!(!p.is_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), PROTO_UDP);
        assert_eq!(p.src(), Ipv4Addr::new(192, 168, 0, 1));
        assert_eq!(p.dst(), Ipv4Addr::new(192, 168, 0, 199));
        assert!(p.checksum_ok());
        assert!(p.options().is_empty());
    }

    #[test]
    fn emit_round_trip() {
        let mut buf = [0u8; 20];
        let mut p = Ipv4Packet::new_checked(&mut buf[..]).unwrap();
        p.set_version_ihl(4, 5);
        p.set_total_len(0x73);
        p.set_flags_frag(FLAG_DF);
        p.set_ttl(64);
        p.set_protocol(PROTO_UDP);
        p.set_src(Ipv4Addr::new(192, 168, 0, 1));
        p.set_dst(Ipv4Addr::new(192, 168, 0, 199));
        p.fill_checksum();
        assert_eq!(buf, HDR);
    }

    #[test]
    fn fragments() {
        let mut buf = HDR;
        let mut p = Ipv4Packet::new_checked(&mut buf[..]).unwrap();
        p.set_flags_frag(FLAG_MF);
        assert!(p.is_fragment());
        p.set_flags_frag(1);
        assert!(p.is_fragment());
        // The reserved bit alone is not a fragment.
        p.set_flags_frag(0x8000 | FLAG_DF);
        assert!(!p.is_fragment());
    }

    #[test]
    fn options_are_clamped_to_buffer() {
        let mut buf = HDR;
        buf[0] = 0x4f; // IHL 15 = 60 bytes announced, 20 present
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.header_len(), 60);
        assert!(p.options().is_empty());
        assert!(p.payload().is_empty());
    }

    #[test]
    fn short_header_is_truncated() {
        assert!(Ipv4Packet::new_checked(&HDR[..19]).is_err());
    }
}
