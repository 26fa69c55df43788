//! Typed table entries: what the controller computes, what P4Runtime
//! carries, and what the software switch holds.
//!
//! Each table of [`crate::schema`] has a key type and an action type here.
//! Converting to and from P4Runtime `TableEntry` messages happens in
//! [`crate::p4rt`] (feature `p4runtime`); the software switch and the
//! controller work with these types.

use crate::wire::MacAddr;
use std::fmt;
use std::net::Ipv4Addr;

/// Key of the VIP table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VipKey {
    /// The virtual IP address.
    pub dst: Ipv4Addr,
    /// IP protocol (6 for TCP, 17 for UDP).
    pub protocol: u8,
    /// L4 destination port.
    pub port: u16,
}

/// Action of a VIP entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VipAction {
    /// A service port: hash into the buckets of `vip_id`.
    ToBuckets {
        /// The bucket set.
        vip_id: u16,
    },
    /// A per-server port: IP-in-IP to `dip` without the option.
    ToServer {
        /// The server owning the port.
        dip: Ipv4Addr,
    },
}

/// Key of the bucket table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BucketKey {
    /// The bucket set (from the VIP entry's `to_buckets`).
    pub vip_id: u16,
    /// The bucket, below 2^k.
    pub bucket: u32,
}

/// Action of a bucket entry: `forward(dip, prev_dip, change_time)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BucketAction {
    /// The current server.
    pub dip: Ipv4Addr,
    /// The previous server, 0.0.0.0 for none.
    pub prev_dip: Ipv4Addr,
    /// When the bucket last changed, Unix seconds (0 when `prev_dip` is 0).
    pub change_time: u32,
}

/// Key of the route table: an IPv4 prefix with its host bits zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteKey {
    /// The prefix's address.
    pub prefix: Ipv4Addr,
    /// Prefix length, 0 to 32.
    pub len: u8,
}

/// A route prefix was malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    /// The length is over 32.
    #[error("prefix length {0} is over 32")]
    TooLong(u8),
    /// Bits beyond the prefix length are set.
    #[error("{prefix}/{len} has host bits set")]
    HostBits {
        /// The address given.
        prefix: Ipv4Addr,
        /// The length given.
        len: u8,
    },
    /// The text is not `a.b.c.d/len`.
    #[error("invalid prefix {0:?}: expected a.b.c.d/len")]
    Syntax(String),
}

impl RouteKey {
    /// A prefix, checked: length at most 32 and no host bits set.
    pub fn new(prefix: Ipv4Addr, len: u8) -> Result<Self, PrefixError> {
        if len > 32 {
            return Err(PrefixError::TooLong(len));
        }
        if u32::from(prefix) & !Self::mask(len) != 0 {
            return Err(PrefixError::HostBits { prefix, len });
        }
        Ok(RouteKey { prefix, len })
    }

    /// The netmask of a prefix length (at most 32).
    pub fn mask(len: u8) -> u32 {
        if len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(len.min(32)))
        }
    }

    /// True when `addr` falls inside the prefix.
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & Self::mask(self.len) == u32::from(self.prefix)
    }
}

impl fmt::Display for RouteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.prefix, self.len)
    }
}

impl std::str::FromStr for RouteKey {
    type Err = PrefixError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, l) = s
            .split_once('/')
            .ok_or_else(|| PrefixError::Syntax(s.into()))?;
        let a: Ipv4Addr = a.parse().map_err(|_| PrefixError::Syntax(s.into()))?;
        let l: u8 = l.parse().map_err(|_| PrefixError::Syntax(s.into()))?;
        RouteKey::new(a, l)
    }
}

/// Action of a route entry: `route(port, dst_mac, src_mac)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteAction {
    /// Egress port (9 bits).
    pub port: u16,
    /// The next hop's MAC address.
    pub dst_mac: MacAddr,
    /// The switch's MAC address on that port.
    pub src_mac: MacAddr,
}

/// The switch-wide settings: the default action of the config table,
/// `set_config(tunnel_src, generation)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SwitchConfig {
    /// Source address of every outer header.
    pub tunnel_src: Ipv4Addr,
    /// The mux generation written into every option.
    pub generation: u32,
}

impl Default for SwitchConfig {
    /// The P4 program's initial default action: `set_config(0, 0)`.
    fn default() -> Self {
        SwitchConfig {
            tunnel_src: Ipv4Addr::UNSPECIFIED,
            generation: 0,
        }
    }
}

/// One entry of any table with a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Entry {
    /// A VIP table entry.
    Vip(VipKey, VipAction),
    /// A bucket table entry.
    Bucket(BucketKey, BucketAction),
    /// A route table entry.
    Route(RouteKey, RouteAction),
}

/// The key of an entry of any table with a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntryKey {
    /// A VIP table key.
    Vip(VipKey),
    /// A bucket table key.
    Bucket(BucketKey),
    /// A route table key.
    Route(RouteKey),
}

impl Entry {
    /// The entry's key.
    pub fn key(&self) -> EntryKey {
        match self {
            Entry::Vip(k, _) => EntryKey::Vip(*k),
            Entry::Bucket(k, _) => EntryKey::Bucket(*k),
            Entry::Route(k, _) => EntryKey::Route(*k),
        }
    }
}

impl EntryKey {
    /// The P4Runtime ID of the key's table.
    pub fn table_id(&self) -> u32 {
        match self {
            EntryKey::Vip(_) => crate::schema::VIP.id,
            EntryKey::Bucket(_) => crate::schema::BUCKETS.id,
            EntryKey::Route(_) => crate::schema::ROUTES.id,
        }
    }
}

/// A change to the tables, with P4Runtime's meaning: INSERT fails on an
/// existing key, MODIFY and DELETE fail on a missing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    /// Add an entry whose key is not present.
    Insert(Entry),
    /// Change the action of a present entry.
    Modify(Entry),
    /// Remove a present entry.
    Delete(EntryKey),
    /// Set the config table's default action.
    SetConfig(SwitchConfig),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        let k: RouteKey = "10.1.0.0/16".parse().unwrap();
        assert!(k.contains(Ipv4Addr::new(10, 1, 200, 3)));
        assert!(!k.contains(Ipv4Addr::new(10, 2, 0, 1)));
        assert_eq!(k.to_string(), "10.1.0.0/16");
        let any: RouteKey = "0.0.0.0/0".parse().unwrap();
        assert!(any.contains(Ipv4Addr::new(203, 0, 113, 9)));
        assert_eq!(
            "10.1.0.1/16".parse::<RouteKey>().unwrap_err(),
            PrefixError::HostBits {
                prefix: Ipv4Addr::new(10, 1, 0, 1),
                len: 16
            }
        );
        assert!(matches!(
            "10.1.0.0/33".parse::<RouteKey>(),
            Err(PrefixError::TooLong(33))
        ));
        assert!(matches!(
            "10.1.0.0".parse::<RouteKey>(),
            Err(PrefixError::Syntax(_))
        ));
    }
}
