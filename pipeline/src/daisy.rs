//! Daisy chaining: how long a bucket's previous server stays reachable.
//!
//! When the controller moves a bucket it writes the old server as `prev_dip`
//! with the time of the change. For the daisy timeout after that, a server
//! that receives a non-SYN packet with no local connection sends it on to
//! `prev_dip`; afterwards the controller clears `prev_dip`. Controller and
//! servers must agree on the timeout.

/// Default daisy timeout, in seconds: comfortably above TCP's usual
/// handshake and retransmission timescales, as in Beamer.
pub const DEFAULT_DAISY_TIMEOUT_SECS: u32 = 240;
