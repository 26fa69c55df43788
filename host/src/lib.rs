//! The server-side agent of Beamer: it decapsulates the mux's IP-in-IP
//! packets and daisy-chains the packets of connections that live on the
//! server a bucket was moved away from.
//!
//! The crate has a sans-IO core and thin Linux adapters:
//! - [`Host`]: the per-packet decision ([`Verdict`]), pure and deterministic,
//!   driven by an injected clock ([`Time`]) and a [`LocalConnections`] lookup;
//! - [`CachedLookup`]: a small cache in front of any lookup;
//! - `linux` (Linux only): raw sockets, a TUN device, `sock_diag`, MPTCP
//!   configuration and the agent loop behind `beamer host`.

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
