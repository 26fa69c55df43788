//! The Beamer IPv4 option, carried by the outer header of the bucket path.
//!
//! ```text
//!  0        1        2        3
//! +--------+--------+--------+--------+
//! |  0x61  |   16   |   0    |   0    |   type, length, two zero bytes
//! +--------+--------+--------+--------+
//! |          previous DIP             |
//! +--------+--------+--------+--------+
//! |   change time (Unix s, big-endian)|
//! +--------+--------+--------+--------+
//! |   mux generation (big-endian)     |
//! +--------+--------+--------+--------+
//! ```

use super::{Truncated, be32, check_len};
use std::net::Ipv4Addr;

/// Field ranges of the option.
pub mod field {
    use core::ops::Range;
    /// Option type byte.
    pub const TYPE: usize = 0;
    /// Option length byte.
    pub const LEN: usize = 1;
    /// Two bytes that are always zero.
    pub const PAD: Range<usize> = 2..4;
    /// Previous DIP.
    pub const PREV_DIP: Range<usize> = 4..8;
    /// Time of the bucket's last change.
    pub const CHANGE_TIME: Range<usize> = 8..12;
    /// Generation of the mux that encapsulated the packet.
    pub const GENERATION: Range<usize> = 12..16;
}

/// Option type byte.
pub const OPTION_TYPE: u8 = 0x61;
/// Option length (the whole option, in bytes).
pub const OPTION_LEN: usize = 16;
/// IHL of an outer header carrying the option: (20 + 16) / 4.
pub const OUTER_IHL: u8 = ((super::ipv4::HEADER_LEN + OPTION_LEN) / 4) as u8;
/// Length of an outer header carrying the option.
pub const OUTER_HEADER_LEN: usize = super::ipv4::HEADER_LEN + OPTION_LEN;
/// TTL of every outer header the mux writes.
pub const OUTER_TTL: u8 = 64;

/// A view of the 16-byte Beamer option.
#[derive(Debug, Clone)]
pub struct BeamerOption<T: AsRef<[u8]>> {
    buf: T,
}

/// The option failed validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OptionError {
    /// Fewer bytes than the option needs.
    #[error(transparent)]
    Truncated(#[from] Truncated),
    /// The type byte is not 0x61.
    #[error("option type {0:#04x} is not the Beamer option (0x61)")]
    WrongType(u8),
    /// The length byte is not 16.
    #[error("option length {0} is not 16")]
    WrongLength(u8),
}

impl<T: AsRef<[u8]>> BeamerOption<T> {
    /// Wraps `buf` after checking it holds 16 bytes.
    pub fn new_checked(buf: T) -> Result<Self, Truncated> {
        check_len("Beamer option", buf.as_ref().len(), OPTION_LEN)?;
        Ok(BeamerOption { buf })
    }

    /// Wraps `buf` after checking its length, type and length byte, as a
    /// receiver of untrusted packets must.
    pub fn new_validated(buf: T) -> Result<Self, OptionError> {
        let o = Self::new_checked(buf)?;
        if o.option_type() != OPTION_TYPE {
            return Err(OptionError::WrongType(o.option_type()));
        }
        if usize::from(o.option_len()) != OPTION_LEN {
            return Err(OptionError::WrongLength(o.option_len()));
        }
        Ok(o)
    }

    /// Type byte.
    pub fn option_type(&self) -> u8 {
        self.buf.as_ref()[field::TYPE]
    }

    /// Length byte.
    pub fn option_len(&self) -> u8 {
        self.buf.as_ref()[field::LEN]
    }

    /// Previous DIP (0.0.0.0 when the bucket has none).
    pub fn prev_dip(&self) -> Ipv4Addr {
        Ipv4Addr::from(be32(self.buf.as_ref(), field::PREV_DIP.start))
    }

    /// Change time in Unix seconds.
    pub fn change_time(&self) -> u32 {
        be32(self.buf.as_ref(), field::CHANGE_TIME.start)
    }

    /// Mux generation.
    pub fn generation(&self) -> u32 {
        be32(self.buf.as_ref(), field::GENERATION.start)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> BeamerOption<T> {
    /// Writes the whole option.
    pub fn emit(&mut self, prev_dip: Ipv4Addr, change_time: u32, generation: u32) {
        let b = self.buf.as_mut();
        b[field::TYPE] = OPTION_TYPE;
        b[field::LEN] = OPTION_LEN as u8;
        b[field::PAD].fill(0);
        b[field::PREV_DIP].copy_from_slice(&prev_dip.octets());
        b[field::CHANGE_TIME].copy_from_slice(&change_time.to_be_bytes());
        b[field::GENERATION].copy_from_slice(&generation.to_be_bytes());
    }

    /// Sets the change time (a server zeroes it when it chains a packet on).
    pub fn set_change_time(&mut self, t: u32) {
        self.buf.as_mut()[field::CHANGE_TIME].copy_from_slice(&t.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPT: [u8; 16] = [
        0x61, 16, 0, 0, // type, length, zeros
        10, 0, 0, 2, // previous DIP 10.0.0.2
        0x65, 0x53, 0xf1, 0x00, // change time 1700000000
        0, 0, 0, 7, // generation 7
    ];

    #[test]
    fn emit_matches_literal_bytes() {
        let mut b = [0xffu8; 16];
        BeamerOption::new_checked(&mut b[..]).unwrap().emit(
            Ipv4Addr::new(10, 0, 0, 2),
            1_700_000_000,
            7,
        );
        assert_eq!(b, OPT);
    }

    #[test]
    fn parse_literal_bytes() {
        let o = BeamerOption::new_validated(&OPT[..]).unwrap();
        assert_eq!(o.prev_dip(), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(o.change_time(), 1_700_000_000);
        assert_eq!(o.generation(), 7);
    }

    #[test]
    fn validation_rejects_wrong_type_and_length() {
        let mut b = OPT;
        b[0] = 0x62;
        assert_eq!(
            BeamerOption::new_validated(&b[..]).unwrap_err(),
            OptionError::WrongType(0x62)
        );
        let mut b = OPT;
        b[1] = 12;
        assert_eq!(
            BeamerOption::new_validated(&b[..]).unwrap_err(),
            OptionError::WrongLength(12)
        );
        assert!(matches!(
            BeamerOption::new_validated(&OPT[..15]),
            Err(OptionError::Truncated(_))
        ));
    }

    #[test]
    fn outer_header_geometry() {
        assert_eq!(OUTER_IHL, 9);
        assert_eq!(OUTER_HEADER_LEN, 36);
    }
}
