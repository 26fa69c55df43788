//! The fixed TCP and UDP headers, as far as the mux reads them.
//!
//! The mux reads ports (and, on servers, TCP flags) from the fixed header and
//! never parses TCP options, so the TCP data offset is not validated.

use super::{Truncated, be16, be32, check_len};

/// Field ranges shared by the TCP and UDP headers.
pub mod field {
    use core::ops::Range;
    /// Source port.
    pub const SRC_PORT: Range<usize> = 0..2;
    /// Destination port.
    pub const DST_PORT: Range<usize> = 2..4;
    /// TCP sequence number.
    pub const TCP_SEQ: Range<usize> = 4..8;
    /// TCP acknowledgment number.
    pub const TCP_ACK: Range<usize> = 8..12;
    /// TCP data offset (high nibble).
    pub const TCP_DATA_OFF: usize = 12;
    /// TCP flags.
    pub const TCP_FLAGS: usize = 13;
    /// TCP checksum.
    pub const TCP_CHECKSUM: Range<usize> = 16..18;
    /// UDP length.
    pub const UDP_LEN: Range<usize> = 4..6;
    /// UDP checksum.
    pub const UDP_CHECKSUM: Range<usize> = 6..8;
}

/// Length of the TCP header without options.
pub const TCP_HEADER_LEN: usize = 20;
/// Length of the UDP header.
pub const UDP_HEADER_LEN: usize = 8;

/// TCP FIN flag.
pub const TCP_FIN: u8 = 0x01;
/// TCP SYN flag.
pub const TCP_SYN: u8 = 0x02;
/// TCP RST flag.
pub const TCP_RST: u8 = 0x04;
/// TCP PSH flag.
pub const TCP_PSH: u8 = 0x08;
/// TCP ACK flag.
pub const TCP_ACK: u8 = 0x10;

/// A view of a fixed 20-byte TCP header.
#[derive(Debug, Clone)]
pub struct TcpHeader<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> TcpHeader<T> {
    /// Wraps `buf` after checking it holds the fixed TCP header.
    pub fn new_checked(buf: T) -> Result<Self, Truncated> {
        check_len("TCP", buf.as_ref().len(), TCP_HEADER_LEN)?;
        Ok(TcpHeader { buf })
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        be16(self.buf.as_ref(), field::SRC_PORT.start)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        be16(self.buf.as_ref(), field::DST_PORT.start)
    }

    /// Sequence number.
    pub fn seq(&self) -> u32 {
        be32(self.buf.as_ref(), field::TCP_SEQ.start)
    }

    /// Acknowledgment number.
    pub fn ack(&self) -> u32 {
        be32(self.buf.as_ref(), field::TCP_ACK.start)
    }

    /// The flag byte (FIN, SYN, RST, PSH, ACK, URG, ECE, CWR).
    pub fn flags(&self) -> u8 {
        self.buf.as_ref()[field::TCP_FLAGS]
    }

    /// A connection-opening SYN: SYN set, ACK clear.
    pub fn is_syn_only(&self) -> bool {
        self.flags() & (TCP_SYN | TCP_ACK) == TCP_SYN
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpHeader<T> {
    /// Sets the source port.
    pub fn set_src_port(&mut self, p: u16) {
        self.buf.as_mut()[field::SRC_PORT].copy_from_slice(&p.to_be_bytes());
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, p: u16) {
        self.buf.as_mut()[field::DST_PORT].copy_from_slice(&p.to_be_bytes());
    }

    /// Sets the flag byte.
    pub fn set_flags(&mut self, f: u8) {
        self.buf.as_mut()[field::TCP_FLAGS] = f;
    }
}

/// A view of a UDP header.
#[derive(Debug, Clone)]
pub struct UdpHeader<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> UdpHeader<T> {
    /// Wraps `buf` after checking it holds the UDP header.
    pub fn new_checked(buf: T) -> Result<Self, Truncated> {
        check_len("UDP", buf.as_ref().len(), UDP_HEADER_LEN)?;
        Ok(UdpHeader { buf })
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        be16(self.buf.as_ref(), field::SRC_PORT.start)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        be16(self.buf.as_ref(), field::DST_PORT.start)
    }

    /// Length field.
    pub fn len(&self) -> u16 {
        be16(self.buf.as_ref(), field::UDP_LEN.start)
    }

    /// True when the length field is zero (never valid on the wire).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_syn() {
        let mut h = [0u8; 20];
        {
            let mut t = TcpHeader::new_checked(&mut h[..]).unwrap();
            t.set_src_port(40000);
            t.set_dst_port(80);
            t.set_flags(TCP_SYN);
        }
        assert_eq!(&h[..4], &[0x9c, 0x40, 0x00, 0x50]);
        let t = TcpHeader::new_checked(&h[..]).unwrap();
        assert!(t.is_syn_only());
        assert_eq!(t.src_port(), 40000);
        assert_eq!(t.dst_port(), 80);
        h[13] = TCP_SYN | TCP_ACK;
        assert!(!TcpHeader::new_checked(&h[..]).unwrap().is_syn_only());
    }

    #[test]
    fn udp_ports() {
        let h = [0x13, 0x88, 0x00, 0x35, 0x00, 0x0c, 0x00, 0x00];
        let u = UdpHeader::new_checked(&h[..]).unwrap();
        assert_eq!(u.src_port(), 5000);
        assert_eq!(u.dst_port(), 53);
        assert_eq!(u.len(), 12);
        assert!(UdpHeader::new_checked(&h[..7]).is_err());
        assert!(TcpHeader::new_checked(&[0u8; 19][..]).is_err());
    }
}
