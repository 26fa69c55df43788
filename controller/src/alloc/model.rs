//! What the operator declares (VIPs, servers, changes) and what the
//! allocator holds for each VIP (servers and buckets).

use beamer_pipeline::entries::{BucketAction, BucketKey, VipAction, VipKey};
use beamer_pipeline::wire::ipv4::{PROTO_TCP, PROTO_UDP};
use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

/// A port on which a VIP offers its service; packets to it are hashed into
/// the VIP's buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServicePort {
    /// IP protocol: 6 (TCP) or 17 (UDP).
    pub protocol: u8,
    /// L4 destination port.
    pub port: u16,
}

impl ServicePort {
    /// A TCP service port.
    pub const fn tcp(port: u16) -> Self {
        ServicePort {
            protocol: PROTO_TCP,
            port,
        }
    }

    /// A UDP service port.
    pub const fn udp(port: u16) -> Self {
        ServicePort {
            protocol: PROTO_UDP,
            port,
        }
    }
}

impl fmt::Display for ServicePort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.protocol {
            PROTO_TCP => write!(f, "tcp/{}", self.port),
            PROTO_UDP => write!(f, "udp/{}", self.port),
            p => write!(f, "proto{p}/{}", self.port),
        }
    }
}

/// A VIP as declared: its bucket set, address and service ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipSpec {
    /// The bucket set's ID in the pipeline, below the pipeline's `max_vips`.
    pub vip_id: u16,
    /// The virtual address clients connect to.
    pub addr: Ipv4Addr,
    /// Ports hashed into the buckets; at least one.
    pub service_ports: Vec<ServicePort>,
}

/// A server as declared when it is added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerSpec {
    /// The server's own address: where the mux tunnels its packets.
    pub dip: Ipv4Addr,
    /// Its per-server TCP port on the VIP (MPTCP subflows reach it there),
    /// if it has one.
    pub port: Option<u16>,
    /// Relative share of the VIP's buckets, above 0.
    pub weight: u32,
}

/// Where a server is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServerState {
    /// Gets its weighted share of buckets.
    Active,
    /// Gets no buckets but keeps its per-server port and stays a valid
    /// previous DIP, so its connections finish.
    Draining,
    /// Gone: no buckets, no per-server port, and never a previous DIP. Only
    /// seen in reports; the allocator forgets removed servers.
    Removed,
}

impl ServerState {
    /// Lower-case name, for tables and logs.
    pub const fn name(self) -> &'static str {
        match self {
            ServerState::Active => "active",
            ServerState::Draining => "draining",
            ServerState::Removed => "removed",
        }
    }
}

impl fmt::Display for ServerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// A server of a VIP, as the allocator holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Server {
    /// The server's address.
    pub dip: Ipv4Addr,
    /// Its per-server TCP port on the VIP, if any.
    pub port: Option<u16>,
    /// Its weight (kept while draining, used again when it returns).
    pub weight: u32,
    /// Active or draining.
    pub state: ServerState,
}

/// One operator change. A commit applies a batch of them atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Create a VIP. The same commit must give it an active server.
    AddVip(VipSpec),
    /// Delete a VIP with its buckets and all its servers.
    RemoveVip {
        /// The VIP.
        vip_id: u16,
    },
    /// Add a server to a VIP; it takes its share of buckets.
    AddServer {
        /// The VIP.
        vip_id: u16,
        /// The server.
        server: ServerSpec,
    },
    /// Take a server away for good; its buckets move and nothing chains to
    /// it any more.
    RemoveServer {
        /// The VIP.
        vip_id: u16,
        /// The server.
        dip: Ipv4Addr,
    },
    /// Move a server's buckets away but let its connections finish.
    DrainServer {
        /// The VIP.
        vip_id: u16,
        /// The server.
        dip: Ipv4Addr,
    },
    /// Bring a draining server back to its weighted share.
    ActivateServer {
        /// The VIP.
        vip_id: u16,
        /// The server.
        dip: Ipv4Addr,
    },
    /// Change a server's weight.
    SetWeight {
        /// The VIP.
        vip_id: u16,
        /// The server.
        dip: Ipv4Addr,
        /// The new weight, above 0.
        weight: u32,
    },
}

/// One bucket: where it sends packets now, where it sent them before, and
/// when that changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BucketState {
    /// The current server; 0.0.0.0 only before the VIP's first allocation.
    pub dip: Ipv4Addr,
    /// The previous server, still reachable for daisy chaining; 0.0.0.0 for
    /// none.
    pub prev_dip: Ipv4Addr,
    /// When `prev_dip` was set (Unix seconds), 0 when there is none.
    pub change_time: u32,
    /// The generation that last changed `dip`; orders buckets for moving
    /// (least recently changed first). Kept after the chain expires.
    pub changed_in: u32,
}

impl BucketState {
    /// A bucket that has never been assigned.
    pub const UNASSIGNED: BucketState = BucketState {
        dip: Ipv4Addr::UNSPECIFIED,
        prev_dip: Ipv4Addr::UNSPECIFIED,
        change_time: 0,
        changed_in: 0,
    };

    /// The bucket table action for this bucket.
    pub fn action(&self) -> BucketAction {
        BucketAction {
            dip: self.dip,
            prev_dip: self.prev_dip,
            change_time: self.change_time,
        }
    }

    /// Whether a daisy chain to `prev_dip` is in place.
    pub fn has_chain(&self) -> bool {
        !self.prev_dip.is_unspecified()
    }

    pub(crate) fn clear_chain(&mut self) {
        self.prev_dip = Ipv4Addr::UNSPECIFIED;
        self.change_time = 0;
    }
}

/// A VIP as the allocator holds it: declaration, servers and buckets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vip {
    pub(crate) spec: VipSpec,
    pub(crate) servers: BTreeMap<Ipv4Addr, Server>,
    pub(crate) buckets: Vec<BucketState>,
}

impl Vip {
    pub(crate) fn new(spec: VipSpec, buckets: u32) -> Self {
        Vip {
            spec,
            servers: BTreeMap::new(),
            buckets: vec![BucketState::UNASSIGNED; buckets as usize],
        }
    }

    /// The bucket set's ID.
    pub fn vip_id(&self) -> u16 {
        self.spec.vip_id
    }

    /// The virtual address.
    pub fn addr(&self) -> Ipv4Addr {
        self.spec.addr
    }

    /// The declaration.
    pub fn spec(&self) -> &VipSpec {
        &self.spec
    }

    /// Active and draining servers, by address.
    pub fn servers(&self) -> impl Iterator<Item = &Server> {
        self.servers.values()
    }

    /// The server at `dip`, if it belongs to this VIP.
    pub fn server(&self, dip: Ipv4Addr) -> Option<&Server> {
        self.servers.get(&dip)
    }

    /// Every bucket, indexed by bucket number.
    pub fn buckets(&self) -> &[BucketState] {
        &self.buckets
    }

    /// Buckets held by each server (servers with none are listed with 0).
    pub fn counts(&self) -> BTreeMap<Ipv4Addr, u32> {
        let mut c: BTreeMap<Ipv4Addr, u32> = self.servers.keys().map(|&d| (d, 0)).collect();
        for b in &self.buckets {
            if !b.dip.is_unspecified() {
                *c.entry(b.dip).or_default() += 1;
            }
        }
        c
    }

    /// The VIP table entries of this VIP: its service ports, then the
    /// per-server ports of its servers.
    pub fn vip_entries(&self) -> impl Iterator<Item = (VipKey, VipAction)> + '_ {
        let addr = self.spec.addr;
        let vip_id = self.spec.vip_id;
        let service = self.spec.service_ports.iter().map(move |sp| {
            (
                VipKey {
                    dst: addr,
                    protocol: sp.protocol,
                    port: sp.port,
                },
                VipAction::ToBuckets { vip_id },
            )
        });
        let per_server = self.servers.values().filter_map(move |s| {
            s.port.map(|port| {
                (
                    VipKey {
                        dst: addr,
                        protocol: PROTO_TCP,
                        port,
                    },
                    VipAction::ToServer { dip: s.dip },
                )
            })
        });
        service.chain(per_server)
    }

    /// The bucket table entries of this VIP (assigned buckets only).
    pub fn bucket_entries(&self) -> impl Iterator<Item = (BucketKey, BucketAction)> + '_ {
        let vip_id = self.spec.vip_id;
        self.buckets
            .iter()
            .enumerate()
            .filter(|(_, b)| !b.dip.is_unspecified())
            .map(move |(i, b)| {
                (
                    BucketKey {
                        vip_id,
                        bucket: i as u32,
                    },
                    b.action(),
                )
            })
    }
}
