//! The Beamer controller: owns the bucket-to-server mapping and keeps every
//! switch's tables equal to it.
//!
//! - [`alloc`]: the bucket allocator, pure and deterministic (sans-IO).

pub mod alloc;
