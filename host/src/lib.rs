//! The server-side agent of Beamer: it decapsulates the mux's IP-in-IP
//! packets and daisy-chains the packets of connections that live on the
//! server a bucket was moved away from.
//!
//! The crate has a sans-IO core and thin Linux adapters:
//! - [`Host`]: the per-packet decision ([`Verdict`]), pure and deterministic,
//!   driven by an injected clock ([`Time`]) and a [`LocalConnections`] lookup.
//!   The rules, the learning and the loop guard are described in its module;
//! - [`CachedLookup`]: a small cache in front of any lookup;
//! - [`craft`]: packets as a client and the mux build them;
//! - `linux` (Linux only): raw sockets, a TUN device, `sock_diag`, MPTCP
//!   configuration and the [`linux::Agent`] loop behind `beamer host`.
//!
//! ## Decisions
//! - **SYN cookies.** Userspace cannot check a kernel SYN cookie, and does
//!   not try. A cookie is valid only on the host that answered the SYN, and
//!   every SYN goes to the local stack of the host that receives it, so the
//!   host remembers the SYNs it delivered ([`RecentSyns`]) and sends the ACK
//!   with `seq = ISN + 1` of such a 4-tuple to its stack, cookie or not; the
//!   kernel then validates the cookie. No cookie-mode detection is needed.
//! - **Loop guard.** Chaining follows each host's own learned predecessor,
//!   so chains of several hops work. A packet already chained (change time
//!   0 with a previous DIP) is not chained again by a host whose predecessor
//!   is the option's previous DIP, where the packet has already been: this
//!   ends an A-B-A reassignment after A -> B -> A. Each hop also decrements
//!   the outer TTL and a packet with TTL <= 1 is not chained, which bounds
//!   any other cycle of stale learned state.
//! - **Lookups only when they matter.** When the bucket has no recent
//!   previous server and the generation is current, rules 2 to 5 all lead to
//!   the local stack, so no lookup is made: in steady state the kernel is
//!   never asked.
//! - **UDP** goes to the local stack: it has no connection to follow.
//! - **Inner destination** must be a configured VIP: a spoofed encapsulated
//!   packet cannot reach other local addresses through the TUN device.
//!
//! ## Deployment notes
//! - The path from the mux to the servers, and between servers, must carry
//!   the client's MTU + 36 bytes unfragmented (the mux does not fragment;
//!   a raw `IP_HDRINCL` send larger than the route's MTU fails and is
//!   counted as a send error).
//! - The VIP sits on the TUN device. As in any direct-server-return setup,
//!   keep servers from answering ARP for it on their uplink when the VIP's
//!   subnet is reachable there (`net.ipv4.conf.all.arp_ignore=1`,
//!   `arp_announce=2`); the agent does not change these host-wide settings.
//! - The agent sets the TUN device's `rp_filter` to loose (2): client
//!   packets arrive on the TUN device but their return route is the uplink.

mod cache;
mod core;
mod counters;
pub mod craft;
mod flow;
mod syns;
mod time;

#[cfg(target_os = "linux")]
pub mod linux;

pub use crate::cache::{CacheStats, CachedLookup};
pub use crate::core::{
    ConfigError, DEFAULT_DAISY_TIMEOUT_SECS, Host, HostConfig, Learned, LocalConnections, Verdict,
};
pub use crate::counters::{Counters, Discard, LocalReason};
pub use crate::flow::Flow;
pub use crate::syns::{RecentSyns, SYN_MEMORY_SECS};
pub use crate::time::Time;
