//! Keeping one switch equal to the desired state: a P4Runtime
//! [`client`], and the [`task`] that runs one switch's sync loop, with the
//! status it reports.

pub mod client;
pub mod task;

use crate::config::TargetKind;
use beamer_pipeline::DropReason;
use beamer_pipeline::p4rt::Counts;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// Where a switch is with respect to the desired state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SyncState {
    /// Not yet connected.
    Connecting,
    /// Cannot be reached; retrying.
    Unreachable {
        /// The last error.
        error: String,
        /// Failed attempts in a row.
        attempts: u32,
        /// Milliseconds until the next attempt.
        retry_in_ms: u64,
    },
    /// Connected, but another controller is primary (or none is).
    NotPrimary {
        /// The switch's arbitration answer.
        detail: String,
    },
    /// Writing towards generation `towards`.
    Syncing {
        /// The generation being written.
        towards: u32,
    },
    /// Holds the desired state of `generation`.
    InSync {
        /// The generation it holds.
        generation: u32,
    },
    /// A write (or the pipeline) was rejected; its tables are not what
    /// they should be until a later attempt reconciles them.
    OutOfSync {
        /// The rejection, with its P4Runtime error.
        error: String,
        /// Milliseconds until the next attempt.
        retry_in_ms: u64,
    },
}

impl SyncState {
    /// Short name: `in_sync`, `syncing`, ...
    pub fn name(&self) -> &'static str {
        match self {
            SyncState::Connecting => "connecting",
            SyncState::Unreachable { .. } => "unreachable",
            SyncState::NotPrimary { .. } => "not_primary",
            SyncState::Syncing { .. } => "syncing",
            SyncState::InSync { .. } => "in_sync",
            SyncState::OutOfSync { .. } => "out_of_sync",
        }
    }

    /// Every name, for metrics.
    pub const NAMES: [&'static str; 6] = [
        "connecting",
        "unreachable",
        "not_primary",
        "syncing",
        "in_sync",
        "out_of_sync",
    ];

    /// One line for humans.
    pub fn describe(&self) -> String {
        match self {
            SyncState::Connecting => "connecting".into(),
            SyncState::Unreachable {
                error,
                attempts,
                retry_in_ms,
            } => format!(
                "unreachable ({attempts} attempts, retrying in {:.1}s): {error}",
                *retry_in_ms as f64 / 1000.0
            ),
            SyncState::NotPrimary { detail } => format!("not primary: {detail}"),
            SyncState::Syncing { towards } => format!("syncing to generation {towards}"),
            SyncState::InSync { generation } => format!("in sync at generation {generation}"),
            SyncState::OutOfSync { error, retry_in_ms } => format!(
                "OUT OF SYNC (retrying in {:.1}s): {error}",
                *retry_in_ms as f64 / 1000.0
            ),
        }
    }
}

/// A switch's status, as the admin API and metrics show it. (The
/// state's fields are flattened into it: no state field may share a name
/// with a field here.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchStatus {
    /// Its name.
    pub name: String,
    /// Its P4Runtime address.
    pub address: String,
    /// Its target kind.
    pub target: TargetKind,
    /// Where it is.
    #[serde(flatten)]
    pub state: SyncState,
    /// The generation it is known to hold completely, if any.
    pub holds_generation: Option<u32>,
    /// When `state` last changed (Unix milliseconds).
    pub since_ms: u64,
    /// The last error, kept after recovery.
    pub last_error: Option<String>,
}

/// Counters of one switch, cheap to bump from its task.
#[derive(Debug, Default)]
pub struct SwitchCounters {
    /// Table updates acknowledged.
    pub updates: AtomicU64,
    /// `WriteRequest`s acknowledged.
    pub write_requests: AtomicU64,
    /// Writes rejected by the switch.
    pub rejected_writes: AtomicU64,
    /// Failed RPCs and connection attempts.
    pub rpc_errors: AtomicU64,
    /// Sessions opened (first connection included).
    pub sessions: AtomicU64,
    /// Pipelines pushed.
    pub pipeline_pushes: AtomicU64,
    /// Times the tables were read back and reconciled.
    pub reconciles: AtomicU64,
    /// The drop counter as last read: packets and bytes per reason.
    pub drops: std::sync::Mutex<Vec<(DropReason, Counts)>>,
}

impl SwitchCounters {
    /// Adds `n` to counter `c`.
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads counter `c`.
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// Unix time in milliseconds.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The state is flattened into the status: every state must survive a
    /// JSON round trip (no field name shared with the status).
    #[test]
    fn every_state_round_trips_through_json() {
        for state in [
            SyncState::Connecting,
            SyncState::Unreachable {
                error: "e".into(),
                attempts: 2,
                retry_in_ms: 100,
            },
            SyncState::NotPrimary { detail: "d".into() },
            SyncState::Syncing { towards: 3 },
            SyncState::InSync { generation: 3 },
            SyncState::OutOfSync {
                error: "e".into(),
                retry_in_ms: 5,
            },
        ] {
            let s = SwitchStatus {
                name: "n".into(),
                address: "a".into(),
                target: TargetKind::Bmv2,
                state,
                holds_generation: Some(2),
                since_ms: 1,
                last_error: Some("x".into()),
            };
            let json = serde_json::to_string(&s).unwrap();
            let back: SwitchStatus = serde_json::from_str(&json).unwrap();
            assert_eq!(back, s, "{json}");
        }
    }
}
