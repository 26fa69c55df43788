//! Longest-prefix match for the route table: a 16-8-8 multibit trie.
//!
//! The first level is a flat array of 65,536 cells indexed by the top 16
//! bits of the address; a cell holds a next hop, or points to a group of
//! 256 cells for the next 8 bits, which may point to a last group for the
//! last 8. A lookup is one to three dependent loads, and the first level
//! (256 KiB) stays cache-resident for the ~1,000 routes of a mux.
//!
//! The trie is immutable: it is rebuilt from the route set whenever a
//! write changes the routes (rare, and done by the control thread), by
//! painting prefixes in order of increasing length, so a longer prefix
//! always overwrites the shorter ones it lies inside.

use beamer_pipeline::entries::{RouteAction, RouteKey};
use std::collections::{BTreeMap, HashMap};

/// A cell pointing to a group rather than holding a next hop.
const GROUP: u32 = 1 << 31;
/// Cells per group.
const GROUP_LEN: usize = 256;
/// Cells of the first level.
const TOP_LEN: usize = 1 << 16;

/// The route table as the data path reads it.
#[derive(Clone)]
pub(crate) struct Lpm {
    /// Cells: 0 = no route, `n` = next hop `n - 1`, `GROUP | g` = group g.
    top: Box<[u32]>,
    groups: Vec<u32>,
    hops: Vec<RouteAction>,
}

impl Lpm {
    /// A table without routes.
    pub(crate) fn empty() -> Lpm {
        Lpm {
            top: vec![0; TOP_LEN].into_boxed_slice(),
            groups: Vec::new(),
            hops: Vec::new(),
        }
    }

    /// Builds the trie for `routes`, whose keys are valid prefixes.
    pub(crate) fn build(routes: &BTreeMap<RouteKey, RouteAction>) -> Lpm {
        let mut lpm = Lpm::empty();
        let mut by_len: Vec<(&RouteKey, &RouteAction)> = routes.iter().collect();
        by_len.sort_by_key(|(k, _)| k.len);
        let mut hop_index: HashMap<RouteAction, u32> = HashMap::new();
        for (key, action) in by_len {
            let hop = *hop_index.entry(*action).or_insert_with(|| {
                lpm.hops.push(*action);
                lpm.hops.len() as u32
            });
            lpm.paint(u32::from(key.prefix), key.len.min(32), hop);
        }
        lpm.groups.shrink_to_fit();
        lpm.hops.shrink_to_fit();
        lpm
    }

    fn new_group(&mut self, fill: u32) -> u32 {
        let g = (self.groups.len() / GROUP_LEN) as u32;
        self.groups.resize(self.groups.len() + GROUP_LEN, fill);
        g
    }

    /// The start of the group a cell points to, creating the group (filled
    /// with what the cell held) if the cell holds a next hop.
    fn group_at(&mut self, cell: Cell) -> usize {
        let v = match cell {
            Cell::Top(i) => self.top[i],
            Cell::Group(i) => self.groups[i],
        };
        let g = if v & GROUP != 0 {
            v & !GROUP
        } else {
            let g = self.new_group(v);
            match cell {
                Cell::Top(i) => self.top[i] = GROUP | g,
                Cell::Group(i) => self.groups[i] = GROUP | g,
            }
            g
        };
        g as usize * GROUP_LEN
    }

    fn paint(&mut self, addr: u32, len: u8, hop: u32) {
        let len = u32::from(len);
        let top = (addr >> 16) as usize;
        let mid = ((addr >> 8) & 0xff) as usize;
        let low = (addr & 0xff) as usize;
        if len <= 16 {
            self.top[top..top + (1 << (16 - len))].fill(hop);
        } else if len <= 24 {
            let g = self.group_at(Cell::Top(top)) + mid;
            self.groups[g..g + (1 << (24 - len))].fill(hop);
        } else {
            let g = self.group_at(Cell::Top(top));
            let h = self.group_at(Cell::Group(g + mid)) + low;
            self.groups[h..h + (1 << (32 - len))].fill(hop);
        }
    }

    /// The route for `addr`, if any.
    #[inline]
    pub(crate) fn lookup(&self, addr: u32) -> Option<&RouteAction> {
        let mut v = self.top[(addr >> 16) as usize];
        if v & GROUP != 0 {
            v = self.groups[(v & !GROUP) as usize * GROUP_LEN + ((addr >> 8) & 0xff) as usize];
            if v & GROUP != 0 {
                v = self.groups[(v & !GROUP) as usize * GROUP_LEN + (addr & 0xff) as usize];
            }
        }
        self.hops.get((v as usize).wrapping_sub(1))
    }

    /// Bytes the trie occupies.
    pub(crate) fn memory_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.top)
            + self.groups.capacity() * std::mem::size_of::<u32>()
            + self.hops.capacity() * std::mem::size_of::<RouteAction>()
    }
}

#[derive(Clone, Copy)]
enum Cell {
    Top(usize),
    Group(usize),
}

#[cfg(test)]
mod tests {
    use super::*;
    use beamer_pipeline::wire::MacAddr;
    use std::net::Ipv4Addr;

    fn hop(port: u16) -> RouteAction {
        RouteAction {
            port,
            dst_mac: MacAddr([2, 0, 0, 0, 0, port as u8]),
            src_mac: MacAddr([2, 0, 0, 0, 1, 0]),
        }
    }

    /// The obvious definition: the longest prefix that contains `addr`.
    fn linear(routes: &BTreeMap<RouteKey, RouteAction>, addr: u32) -> Option<u16> {
        routes
            .iter()
            .filter(|(k, _)| k.contains(Ipv4Addr::from(addr)))
            .max_by_key(|(k, _)| k.len)
            .map(|(_, a)| a.port)
    }

    #[test]
    fn longest_prefix_wins_at_every_level() {
        let mut routes = BTreeMap::new();
        for (i, p) in [
            "0.0.0.0/0",
            "10.0.0.0/8",
            "10.1.0.0/16",
            "10.1.2.0/24",
            "10.1.2.128/25",
            "10.1.2.200/32",
            "10.1.3.0/31",
            "192.168.0.0/17",
            "192.168.128.0/23",
        ]
        .iter()
        .enumerate()
        {
            routes.insert(p.parse().unwrap(), hop(i as u16));
        }
        let lpm = Lpm::build(&routes);
        let port = |a: &str| {
            lpm.lookup(u32::from(a.parse::<Ipv4Addr>().unwrap()))
                .map(|h| h.port)
        };
        assert_eq!(port("1.2.3.4"), Some(0));
        assert_eq!(port("10.9.9.9"), Some(1));
        assert_eq!(port("10.1.9.9"), Some(2));
        assert_eq!(port("10.1.2.1"), Some(3));
        assert_eq!(port("10.1.2.129"), Some(4));
        assert_eq!(port("10.1.2.200"), Some(5));
        assert_eq!(port("10.1.2.201"), Some(4));
        assert_eq!(port("10.1.3.1"), Some(6));
        assert_eq!(port("10.1.3.2"), Some(2));
        assert_eq!(port("192.168.1.1"), Some(7));
        assert_eq!(port("192.168.129.1"), Some(8));
        assert_eq!(port("192.168.130.1"), Some(0));
    }

    #[test]
    fn no_route_without_default() {
        let mut routes = BTreeMap::new();
        routes.insert("10.0.0.0/8".parse().unwrap(), hop(1));
        let lpm = Lpm::build(&routes);
        assert!(lpm.lookup(u32::from(Ipv4Addr::new(11, 0, 0, 1))).is_none());
        assert!(Lpm::empty().lookup(0).is_none());
    }

    #[test]
    fn agrees_with_linear_scan_on_random_tables() {
        let mut x = 0x1234_5678_9abc_def0u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20 {
            let mut routes = BTreeMap::new();
            for i in 0..200u16 {
                let len = (next() % 33) as u8;
                // Cluster prefixes under 10.0.0.0/14 so they nest.
                let addr = (10u32 << 24) | (next() as u32 & 0x0003_ffff);
                let key = RouteKey::new(Ipv4Addr::from(addr & RouteKey::mask(len)), len).unwrap();
                routes.insert(key, hop(i));
            }
            let lpm = Lpm::build(&routes);
            for _ in 0..2000 {
                let addr = (10u32 << 24) | (next() as u32 & 0x0003_ffff);
                assert_eq!(
                    lpm.lookup(addr).map(|h| h.port),
                    linear(&routes, addr),
                    "{addr:#x}"
                );
            }
        }
    }
}
