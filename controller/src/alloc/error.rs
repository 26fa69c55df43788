//! Why the allocator refused a configuration or a commit.

use super::model::ServicePort;
use std::fmt;
use std::net::Ipv4Addr;

/// Who uses a VIP table key: a VIP's service port or a server's per-server
/// port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortUser {
    /// A service port of VIP `vip_id`.
    Service {
        /// The VIP.
        vip_id: u16,
    },
    /// The per-server port of server `dip` of VIP `vip_id`.
    Server {
        /// The VIP.
        vip_id: u16,
        /// The server.
        dip: Ipv4Addr,
    },
}

impl fmt::Display for PortUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortUser::Service { vip_id } => write!(f, "a service port of VIP {vip_id}"),
            PortUser::Server { vip_id, dip } => {
                write!(f, "the per-server port of {dip} on VIP {vip_id}")
            }
        }
    }
}

/// A configuration or change the allocator refuses. A refused commit changes
/// nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocError {
    /// The bucket count is not a power of two the pipeline supports.
    #[error(
        "bucket key width {bits} bits gives an unsupported bucket count (valid: {min} to {max} buckets, a power of two)"
    )]
    BucketBits {
        /// The width given.
        bits: u8,
        /// Fewest buckets.
        min: u32,
        /// Most buckets.
        max: u32,
    },
    /// The commit has no changes.
    #[error("nothing to commit: the batch has no changes")]
    EmptyCommit,
    /// The 32-bit generation counter would wrap.
    #[error("generation {0} is the last one; restart the controller's numbering")]
    GenerationExhausted(u32),
    /// A VIP ID is not below the pipeline's number of VIPs.
    #[error("VIP {vip_id} is out of range: the pipeline has bucket sets 0 to {}", .max_vips - 1)]
    VipIdOutOfRange {
        /// The VIP ID given.
        vip_id: u16,
        /// Bucket sets the pipeline holds.
        max_vips: u32,
    },
    /// A VIP with this ID exists already.
    #[error("VIP {0} exists already")]
    DuplicateVip(u16),
    /// No VIP has this ID.
    #[error("no VIP {0}")]
    UnknownVip(u16),
    /// The VIP address cannot be a destination (0.0.0.0, broadcast or
    /// multicast).
    #[error("VIP {vip_id}: {addr} cannot be a VIP address (unspecified, broadcast or multicast)")]
    InvalidVipAddr {
        /// The VIP.
        vip_id: u16,
        /// The address given.
        addr: Ipv4Addr,
    },
    /// The VIP declares no service port.
    #[error("VIP {0} has no service port: declare at least one")]
    NoServicePorts(u16),
    /// A service port is not TCP or UDP.
    #[error("VIP {vip_id}: service port {port} is neither TCP nor UDP")]
    UnsupportedProtocol {
        /// The VIP.
        vip_id: u16,
        /// The port given.
        port: ServicePort,
    },
    /// A port number is 0.
    #[error("VIP {vip_id}: port 0 is not a valid {what}")]
    PortZero {
        /// The VIP.
        vip_id: u16,
        /// "service port" or "per-server port".
        what: &'static str,
    },
    /// The server's address cannot be a tunnel destination.
    #[error(
        "VIP {vip_id}: {dip} cannot be a server address (unspecified, broadcast, multicast or the VIP itself)"
    )]
    InvalidDip {
        /// The VIP.
        vip_id: u16,
        /// The address given.
        dip: Ipv4Addr,
    },
    /// The VIP has this server already.
    #[error("VIP {vip_id} has server {dip} already")]
    DuplicateServer {
        /// The VIP.
        vip_id: u16,
        /// The server.
        dip: Ipv4Addr,
    },
    /// The VIP has no such server.
    #[error("VIP {vip_id} has no server {dip}")]
    UnknownServer {
        /// The VIP.
        vip_id: u16,
        /// The server.
        dip: Ipv4Addr,
    },
    /// A weight is 0; draining is the way to give a server no buckets.
    #[error(
        "VIP {vip_id}: weight 0 for {dip} is not allowed (drain the server to give it no buckets)"
    )]
    ZeroWeight {
        /// The VIP.
        vip_id: u16,
        /// The server.
        dip: Ipv4Addr,
    },
    /// Draining a server that is not active.
    #[error("VIP {vip_id}: server {dip} is not active, so it cannot be drained")]
    NotActive {
        /// The VIP.
        vip_id: u16,
        /// The server.
        dip: Ipv4Addr,
    },
    /// Activating a server that is not draining.
    #[error("VIP {vip_id}: server {dip} is not draining, so it cannot be activated")]
    NotDraining {
        /// The VIP.
        vip_id: u16,
        /// The server.
        dip: Ipv4Addr,
    },
    /// Two users claim one VIP table key (address, protocol, port).
    #[error("{addr} {port} is claimed twice: by {first} and by {second}")]
    PortConflict {
        /// The VIP address.
        addr: Ipv4Addr,
        /// Protocol and port.
        port: ServicePort,
        /// The first claimant.
        first: PortUser,
        /// The second claimant.
        second: PortUser,
    },
    /// The VIP table would hold more entries than the pipeline has room for.
    #[error("the VIP table would need {entries} entries, more than the pipeline's {limit}")]
    TooManyVipEntries {
        /// Entries needed.
        entries: usize,
        /// The table's size.
        limit: u32,
    },
    /// The commit would leave a VIP with no active server.
    #[error(
        "refused: VIP {vip_id} ({addr}) would have no active server \
         ({draining} draining); its traffic would have nowhere to go. \
         Add or activate a server in the same commit, or remove the VIP"
    )]
    NoActiveServer {
        /// The VIP.
        vip_id: u16,
        /// Its address.
        addr: Ipv4Addr,
        /// Its draining servers.
        draining: usize,
    },
}
