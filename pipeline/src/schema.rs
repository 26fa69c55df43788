//! The control-plane face of the pipeline: tables, match fields, actions,
//! parameters, counters, their P4Runtime IDs and bit widths.
//!
//! The generator writes these into the P4 source (as `@id` and `@name`
//! annotations) and into the P4Info; the software switch checks a pushed
//! P4Info against them; the controller builds its writes from them.
//!
//! ```text
//! vip      exact (dst_addr:32, protocol:8, dst_port:16)
//!          to_buckets(vip_id:16) | to_server(dip:32) | const default vip_miss()
//! buckets  exact (vip_id:16, bucket:k)
//!          forward(dip:32, prev_dip:32, change_time:32) | const default bucket_miss()
//! routes   lpm   (dst_addr:32)
//!          route(port:9, dst_mac:48, src_mac:48) | const default no_route()
//! config   keyless
//!          default set_config(tunnel_src:32, generation:32)
//! drops    counter[7] indexed by DropReason, packets and bytes
//! vip_counter, bucket_counter: direct counters, packets and bytes
//! ```

use crate::drop::DropReason;
use crate::params::PipelineParams;

/// Name of the P4 program (`@pkginfo(name=...)`, P4Info `pkg_info.name`).
pub const PROGRAM_NAME: &str = "beamer";
/// Name of the ingress control in both P4 programs.
pub const INGRESS_CONTROL: &str = "BeamerIngress";
/// Name of the TNA `Pipeline` instance.
pub const TNA_PIPE: &str = "pipe";

/// Bit width of `vip_id`.
pub const VIP_ID_BITS: u32 = 16;
/// Bit width of an IPv4 address.
pub const IPV4_BITS: u32 = 32;
/// Bit width of the IP protocol field.
pub const PROTOCOL_BITS: u32 = 8;
/// Bit width of an L4 port.
pub const L4_PORT_BITS: u32 = 16;
/// Bit width of a switch port number (v1model `egress_spec`, TNA `PortId_t`).
pub const SWITCH_PORT_BITS: u32 = 9;
/// Bit width of a MAC address.
pub const MAC_BITS: u32 = 48;
/// Bit width of a change time (Unix seconds).
pub const TIME_BITS: u32 = 32;
/// Bit width of the mux generation.
pub const GENERATION_BITS: u32 = 32;

/// P4Runtime ID prefixes (the top byte of every ID), per the P4Info spec.
pub mod id_prefix {
    /// Actions.
    pub const ACTION: u8 = 0x01;
    /// Tables.
    pub const TABLE: u8 = 0x02;
    /// Indexed counters.
    pub const COUNTER: u8 = 0x12;
    /// Direct counters.
    pub const DIRECT_COUNTER: u8 = 0x13;
}

const fn id(prefix: u8, n: u32) -> u32 {
    ((prefix as u32) << 24) | n
}

/// The bit width of a match field or action parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    /// A fixed number of bits.
    Bits(u32),
    /// k, the bucket bits, set by the generator's bucket count.
    BucketBits,
}

impl Width {
    /// The width in bits for a pipeline of `params`.
    pub fn bits(self, params: &PipelineParams) -> u32 {
        match self {
            Width::Bits(b) => b,
            Width::BucketBits => params.bucket_bits().into(),
        }
    }
}

/// How a key field is matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchKind {
    /// Exact match.
    Exact,
    /// Longest-prefix match.
    Lpm,
}

/// A key field of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchField {
    /// P4Runtime match field ID (unique within the table).
    pub id: u32,
    /// Name (the key's `@name`).
    pub name: &'static str,
    /// Bit width.
    pub width: Width,
    /// Match kind.
    pub kind: MatchKind,
}

/// A parameter of an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    /// P4Runtime parameter ID (unique within the action).
    pub id: u32,
    /// Name.
    pub name: &'static str,
    /// Bit width.
    pub width: Width,
}

/// An action.
#[derive(Debug, PartialEq, Eq)]
pub struct Action {
    /// P4Runtime action ID.
    pub id: u32,
    /// Name in the P4 source.
    pub name: &'static str,
    /// Parameters, in order.
    pub params: &'static [Param],
}

impl Action {
    /// The parameter called `name`.
    pub fn param(&self, name: &str) -> Option<&'static Param> {
        self.params.iter().find(|p| p.name == name)
    }
}

/// Where an action may be used in a table (P4Info `ActionRef.scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// In entries and as the default action.
    TableAndDefault,
    /// Only in entries (`@tableonly`).
    TableOnly,
    /// Only as the default action (`@defaultonly`).
    DefaultOnly,
}

/// An action a table may use, with its scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionRef {
    /// The action.
    pub action: &'static Action,
    /// Where it may be used.
    pub scope: Scope,
}

/// Which generator parameter sets a table's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableSize {
    /// `max_vip_entries`.
    VipEntries,
    /// `max_vips` x `buckets`.
    BucketEntries,
    /// `routes`.
    Routes,
    /// A keyless table: one (default) entry.
    One,
}

/// What a packet and byte counter counts (P4Info `CounterSpec.unit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterUnit {
    /// Packets and bytes.
    Both,
}

/// A direct counter, one cell per entry of its table.
#[derive(Debug, PartialEq, Eq)]
pub struct DirectCounter {
    /// P4Runtime ID. bf-p4c ignores `@id` here, so the controller reaches
    /// direct counters through their table, never through this ID.
    pub id: u32,
    /// Name in the P4 source.
    pub name: &'static str,
    /// Unit.
    pub unit: CounterUnit,
}

/// An indexed counter.
#[derive(Debug, PartialEq, Eq)]
pub struct Counter {
    /// P4Runtime ID.
    pub id: u32,
    /// Name in the P4 source.
    pub name: &'static str,
    /// Unit.
    pub unit: CounterUnit,
    /// Number of cells.
    pub size: u64,
}

/// A match-action table.
#[derive(Debug, PartialEq, Eq)]
pub struct Table {
    /// P4Runtime table ID.
    pub id: u32,
    /// Name in the P4 source.
    pub name: &'static str,
    /// Key fields, in order.
    pub keys: &'static [MatchField],
    /// Actions the table may use.
    pub actions: &'static [ActionRef],
    /// The default action (applied on a miss).
    pub default_action: &'static Action,
    /// Whether the default action is `const` (P4Runtime cannot modify it).
    pub const_default_action: bool,
    /// The direct counter attached to the table, if any.
    pub direct_counter: Option<&'static DirectCounter>,
    /// Which parameter sets the size.
    pub size: TableSize,
}

impl Table {
    /// The key field called `name`.
    pub fn key(&self, name: &str) -> Option<&'static MatchField> {
        self.keys.iter().find(|k| k.name == name)
    }

    /// The action reference for action `action_id`, if the table uses it.
    pub fn action_ref(&self, action_id: u32) -> Option<&'static ActionRef> {
        self.actions.iter().find(|a| a.action.id == action_id)
    }
}

// ---- actions --------------------------------------------------------------

/// Parameter IDs of `to_buckets`.
pub mod to_buckets {
    /// `vip_id`: which VIP's buckets to use.
    pub const VIP_ID: u32 = 1;
}
/// Parameter IDs of `to_server`.
pub mod to_server {
    /// `dip`: the server that owns this per-server port.
    pub const DIP: u32 = 1;
}
/// Parameter IDs of `forward`.
pub mod forward {
    /// `dip`: the bucket's current server.
    pub const DIP: u32 = 1;
    /// `prev_dip`: the bucket's previous server, 0 for none.
    pub const PREV_DIP: u32 = 2;
    /// `change_time`: when the bucket last changed (Unix seconds).
    pub const CHANGE_TIME: u32 = 3;
}
/// Parameter IDs of `route`.
pub mod route {
    /// `port`: egress port.
    pub const PORT: u32 = 1;
    /// `dst_mac`: next hop's MAC address.
    pub const DST_MAC: u32 = 2;
    /// `src_mac`: the switch's MAC address on that port.
    pub const SRC_MAC: u32 = 3;
}
/// Parameter IDs of `set_config`.
pub mod set_config {
    /// `tunnel_src`: source address of every outer header.
    pub const TUNNEL_SRC: u32 = 1;
    /// `generation`: the mux generation written into the option.
    pub const GENERATION: u32 = 2;
}

/// VIP hit on a service port: look up the VIP's buckets.
pub static TO_BUCKETS: Action = Action {
    id: id(id_prefix::ACTION, 1),
    name: "to_buckets",
    params: &[Param {
        id: to_buckets::VIP_ID,
        name: "vip_id",
        width: Width::Bits(VIP_ID_BITS),
    }],
};

/// VIP hit on a per-server port: encapsulate to that server, no option.
pub static TO_SERVER: Action = Action {
    id: id(id_prefix::ACTION, 2),
    name: "to_server",
    params: &[Param {
        id: to_server::DIP,
        name: "dip",
        width: Width::Bits(IPV4_BITS),
    }],
};

/// VIP miss: the packet is routed.
pub static VIP_MISS: Action = Action {
    id: id(id_prefix::ACTION, 3),
    name: "vip_miss",
    params: &[],
};

/// Bucket hit: encapsulate to `dip` with the option.
pub static FORWARD: Action = Action {
    id: id(id_prefix::ACTION, 4),
    name: "forward",
    params: &[
        Param {
            id: forward::DIP,
            name: "dip",
            width: Width::Bits(IPV4_BITS),
        },
        Param {
            id: forward::PREV_DIP,
            name: "prev_dip",
            width: Width::Bits(IPV4_BITS),
        },
        Param {
            id: forward::CHANGE_TIME,
            name: "change_time",
            width: Width::Bits(TIME_BITS),
        },
    ],
};

/// Bucket miss: drop, counted as [`DropReason::BucketMiss`].
pub static BUCKET_MISS: Action = Action {
    id: id(id_prefix::ACTION, 5),
    name: "bucket_miss",
    params: &[],
};

/// Route hit: send out of `port` with the given MACs.
pub static ROUTE: Action = Action {
    id: id(id_prefix::ACTION, 6),
    name: "route",
    params: &[
        Param {
            id: route::PORT,
            name: "port",
            width: Width::Bits(SWITCH_PORT_BITS),
        },
        Param {
            id: route::DST_MAC,
            name: "dst_mac",
            width: Width::Bits(MAC_BITS),
        },
        Param {
            id: route::SRC_MAC,
            name: "src_mac",
            width: Width::Bits(MAC_BITS),
        },
    ],
};

/// Route miss: drop, counted as [`DropReason::NoRoute`].
pub static NO_ROUTE: Action = Action {
    id: id(id_prefix::ACTION, 7),
    name: "no_route",
    params: &[],
};

/// The switch-wide settings, held as the config table's default action.
pub static SET_CONFIG: Action = Action {
    id: id(id_prefix::ACTION, 8),
    name: "set_config",
    params: &[
        Param {
            id: set_config::TUNNEL_SRC,
            name: "tunnel_src",
            width: Width::Bits(IPV4_BITS),
        },
        Param {
            id: set_config::GENERATION,
            name: "generation",
            width: Width::Bits(GENERATION_BITS),
        },
    ],
};

// ---- counters -------------------------------------------------------------

/// Packets and bytes per VIP entry.
pub static VIP_COUNTER: DirectCounter = DirectCounter {
    id: id(id_prefix::DIRECT_COUNTER, 1),
    name: "vip_counter",
    unit: CounterUnit::Both,
};

/// Packets and bytes per bucket entry.
pub static BUCKET_COUNTER: DirectCounter = DirectCounter {
    id: id(id_prefix::DIRECT_COUNTER, 2),
    name: "bucket_counter",
    unit: CounterUnit::Both,
};

/// Dropped packets and bytes, indexed by [`DropReason::index`].
pub static DROPS: Counter = Counter {
    id: id(id_prefix::COUNTER, 1),
    name: "drops",
    unit: CounterUnit::Both,
    size: DropReason::COUNT as u64,
};

// ---- tables ---------------------------------------------------------------

/// Match field IDs of the VIP table.
pub mod vip_key {
    /// IPv4 destination.
    pub const DST_ADDR: u32 = 1;
    /// IP protocol.
    pub const PROTOCOL: u32 = 2;
    /// L4 destination port.
    pub const DST_PORT: u32 = 3;
}
/// Match field IDs of the bucket table.
pub mod buckets_key {
    /// The VIP's bucket set.
    pub const VIP_ID: u32 = 1;
    /// The bucket.
    pub const BUCKET: u32 = 2;
}
/// Match field IDs of the route table.
pub mod routes_key {
    /// IPv4 destination (the outer one after encapsulation).
    pub const DST_ADDR: u32 = 1;
}

/// Exact match on (IPv4 destination, IP protocol, L4 destination port).
pub static VIP: Table = Table {
    id: id(id_prefix::TABLE, 1),
    name: "vip",
    keys: &[
        MatchField {
            id: vip_key::DST_ADDR,
            name: "dst_addr",
            width: Width::Bits(IPV4_BITS),
            kind: MatchKind::Exact,
        },
        MatchField {
            id: vip_key::PROTOCOL,
            name: "protocol",
            width: Width::Bits(PROTOCOL_BITS),
            kind: MatchKind::Exact,
        },
        MatchField {
            id: vip_key::DST_PORT,
            name: "dst_port",
            width: Width::Bits(L4_PORT_BITS),
            kind: MatchKind::Exact,
        },
    ],
    actions: &[
        ActionRef {
            action: &TO_BUCKETS,
            scope: Scope::TableOnly,
        },
        ActionRef {
            action: &TO_SERVER,
            scope: Scope::TableOnly,
        },
        ActionRef {
            action: &VIP_MISS,
            scope: Scope::DefaultOnly,
        },
    ],
    default_action: &VIP_MISS,
    const_default_action: true,
    direct_counter: Some(&VIP_COUNTER),
    size: TableSize::VipEntries,
};

/// Exact match on (vip_id, bucket).
pub static BUCKETS: Table = Table {
    id: id(id_prefix::TABLE, 2),
    name: "buckets",
    keys: &[
        MatchField {
            id: buckets_key::VIP_ID,
            name: "vip_id",
            width: Width::Bits(VIP_ID_BITS),
            kind: MatchKind::Exact,
        },
        MatchField {
            id: buckets_key::BUCKET,
            name: "bucket",
            width: Width::BucketBits,
            kind: MatchKind::Exact,
        },
    ],
    actions: &[
        ActionRef {
            action: &FORWARD,
            scope: Scope::TableOnly,
        },
        ActionRef {
            action: &BUCKET_MISS,
            scope: Scope::DefaultOnly,
        },
    ],
    default_action: &BUCKET_MISS,
    const_default_action: true,
    direct_counter: Some(&BUCKET_COUNTER),
    size: TableSize::BucketEntries,
};

/// Longest-prefix match on the IPv4 destination (outer after encapsulation).
pub static ROUTES: Table = Table {
    id: id(id_prefix::TABLE, 3),
    name: "routes",
    keys: &[MatchField {
        id: routes_key::DST_ADDR,
        name: "dst_addr",
        width: Width::Bits(IPV4_BITS),
        kind: MatchKind::Lpm,
    }],
    actions: &[
        ActionRef {
            action: &ROUTE,
            scope: Scope::TableOnly,
        },
        ActionRef {
            action: &NO_ROUTE,
            scope: Scope::DefaultOnly,
        },
    ],
    default_action: &NO_ROUTE,
    const_default_action: true,
    direct_counter: None,
    size: TableSize::Routes,
};

/// Keyless; its default action holds the tunnel source and generation.
pub static CONFIG: Table = Table {
    id: id(id_prefix::TABLE, 4),
    name: "config",
    keys: &[],
    actions: &[ActionRef {
        action: &SET_CONFIG,
        scope: Scope::DefaultOnly,
    }],
    default_action: &SET_CONFIG,
    const_default_action: false,
    direct_counter: None,
    size: TableSize::One,
};

/// Every table, in the order the pipeline applies them.
pub static TABLES: [&Table; 4] = [&VIP, &BUCKETS, &ROUTES, &CONFIG];
/// Every action.
pub static ACTIONS: [&Action; 8] = [
    &TO_BUCKETS,
    &TO_SERVER,
    &VIP_MISS,
    &FORWARD,
    &BUCKET_MISS,
    &ROUTE,
    &NO_ROUTE,
    &SET_CONFIG,
];
/// Every indexed counter.
pub static COUNTERS: [&Counter; 1] = [&DROPS];
/// Every direct counter, with its table.
pub static DIRECT_COUNTERS: [(&DirectCounter, &Table); 2] =
    [(&VIP_COUNTER, &VIP), (&BUCKET_COUNTER, &BUCKETS)];

/// The table with P4Runtime ID `id`.
pub fn table_by_id(id: u32) -> Option<&'static Table> {
    TABLES.iter().copied().find(|t| t.id == id)
}

/// The action with P4Runtime ID `id`.
pub fn action_by_id(id: u32) -> Option<&'static Action> {
    ACTIONS.iter().copied().find(|a| a.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_and_prefixed() {
        let mut seen = HashSet::new();
        for t in TABLES {
            assert_eq!(t.id >> 24, u32::from(id_prefix::TABLE));
            assert!(seen.insert(t.id));
            let key_ids: HashSet<_> = t.keys.iter().map(|k| k.id).collect();
            assert_eq!(key_ids.len(), t.keys.len());
            assert!(t.action_ref(t.default_action.id).is_some());
        }
        for a in ACTIONS {
            assert_eq!(a.id >> 24, u32::from(id_prefix::ACTION));
            assert!(seen.insert(a.id));
            let ids: Vec<_> = a.params.iter().map(|p| p.id).collect();
            assert_eq!(ids, (1..=a.params.len() as u32).collect::<Vec<_>>());
        }
        for c in COUNTERS {
            assert_eq!(c.id >> 24, u32::from(id_prefix::COUNTER));
            assert!(seen.insert(c.id));
        }
        for (c, _) in DIRECT_COUNTERS {
            assert_eq!(c.id >> 24, u32::from(id_prefix::DIRECT_COUNTER));
            assert!(seen.insert(c.id));
        }
    }

    #[test]
    fn every_action_belongs_to_a_table() {
        for a in ACTIONS {
            assert!(
                TABLES.iter().any(|t| t.action_ref(a.id).is_some()),
                "{}",
                a.name
            );
            assert_eq!(action_by_id(a.id).unwrap().name, a.name);
        }
    }

    #[test]
    fn bucket_width_follows_params() {
        let p = PipelineParams {
            buckets: 1 << 12,
            ..Default::default()
        };
        assert_eq!(BUCKETS.key("bucket").unwrap().width.bits(&p), 12);
        assert_eq!(FORWARD.param("prev_dip").unwrap().id, forward::PREV_DIP);
    }
}
