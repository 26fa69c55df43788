//! Keeping one switch equal to the desired state: a P4Runtime
//! [`client`], and the [`task`] that runs one switch's sync loop, with the
//! status it reports.

pub mod client;
pub mod task;

use crate::config::TargetKind;
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
    /// Writing towards `target`.
    Syncing {
        /// The generation being written.
        target: u32,
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
            SyncState::Syncing { target } => format!("syncing to generation {target}"),
            SyncState::InSync { generation } => format!("in sync at generation {generation}"),
            SyncState::OutOfSync { error, retry_in_ms } => format!(
                "OUT OF SYNC (retrying in {:.1}s): {error}",
                *retry_in_ms as f64 / 1000.0
            ),
        }
    }
}

/// A switch's status, as the admin API and metrics show it.
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
