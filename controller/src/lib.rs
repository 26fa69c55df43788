//! The Beamer controller: owns the bucket-to-server mapping and keeps every
//! switch's tables equal to it.
//!
//! - [`alloc`]: the bucket allocator, pure and deterministic (sans-IO).
//! - [`config`]: the TOML configuration, checked as a whole.
//! - [`core`]: commands, health verdicts and expiry to commits (sans-IO).
//! - [`plan`]: desired and installed state, and the ordered writes between
//!   ([`batches`]: the one shape of those writes and of the allocator's diff).
//! - [`health`]: the health-check state machine and its TCP probe.
//! - [`backoff`]: retry delays.
//! - [`bench`](mod@bench): the measurements of `benches/sync.rs`.
//! - [`switch`]: one switch's P4Runtime client and sync task.
//! - [`service`]: the running controller; [`admin`], [`api`] and
//!   [`metrics`]: its HTTP/JSON admin API and Prometheus metrics;
//!   [`admin_client`]: the client `beamer ctl` uses.

pub mod alloc;

pub mod admin;
pub mod admin_client;
pub mod api;
pub mod backoff;
pub mod batches;
pub mod bench;
pub mod config;
pub mod core;
pub mod health;
pub mod metrics;
pub mod plan;
pub mod service;
pub mod switch;
