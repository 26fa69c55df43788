//! The admin API's messages (JSON), shared by the controller's HTTP
//! server and `beamer ctl`.
//!
//! | method and path | body | does |
//! |---|---|---|
//! | `GET /v1/status` | | [`Status`] |
//! | `POST /v1/vips/{vip}/servers` | [`AddServer`] | add a server |
//! | `DELETE /v1/vips/{vip}/servers/{dip}` | | remove it |
//! | `POST /v1/vips/{vip}/servers/{dip}/drain` | | drain it |
//! | `POST /v1/vips/{vip}/servers/{dip}/activate` | | undo a drain |
//! | `PUT /v1/vips/{vip}/servers/{dip}/weight` | [`SetWeight`] | change its weight |
//!
//! `{vip}` is a VIP id or address. Changes answer 200 with a
//! [`CommandResult`]; errors answer with an [`ApiError`]: 404 for an
//! unknown VIP or server, 409 for a change the allocator refuses (a VIP
//! left without a server, a port conflict), 400 for bad input.

use crate::switch::SwitchStatus;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// Body of `POST /v1/vips/{vip}/servers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddServer {
    /// The server's address.
    pub dip: Ipv4Addr,
    /// Its per-server TCP port on the VIP, if any.
    #[serde(default)]
    pub port: Option<u16>,
    /// Its weight (default 1).
    #[serde(default)]
    pub weight: Option<u32>,
    /// A TCP health check, if wanted.
    #[serde(default)]
    pub health: Option<HealthSpec>,
}

/// A health check as given in a command; unset fields take the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthSpec {
    /// Port to probe (default: the VIP's first TCP service port).
    #[serde(default)]
    pub port: Option<u16>,
    /// Milliseconds between probes.
    #[serde(default)]
    pub interval_ms: Option<u64>,
    /// Milliseconds a probe may take.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Failures that drain the server.
    #[serde(default)]
    pub fall: Option<u32>,
    /// Successes that bring it back.
    #[serde(default)]
    pub rise: Option<u32>,
}

/// Body of `PUT .../weight`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetWeight {
    /// The new weight, above 0.
    pub weight: u32,
}

/// The answer to a change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandResult {
    /// The generation after the change (unchanged if nothing moved).
    pub generation: u32,
    /// Whether a new generation was committed.
    pub committed: bool,
    /// Buckets moved, and the fewest that could have moved.
    pub moved: u64,
    /// The theoretical minimum.
    pub minimum: u64,
    /// What happened, for humans (the allocator's report).
    pub message: String,
}

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// What went wrong, with the allocator's explanation for a refusal.
    pub error: String,
}

/// One server in the status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerStatus {
    /// Its address.
    pub dip: Ipv4Addr,
    /// Its per-server port.
    pub port: Option<u16>,
    /// Its weight.
    pub weight: u32,
    /// What the operator asked: `active` or `draining`.
    pub admin: String,
    /// Health check verdict (`up`, `down`), if it has a check.
    pub health: Option<String>,
    /// What the allocator does: `active` or `draining`.
    pub state: String,
    /// Buckets it holds.
    pub buckets: u32,
    /// Its ideal share in buckets (0 unless active).
    pub ideal: f64,
    /// Anything worth knowing (e.g. why a failing server was kept).
    pub note: Option<String>,
}

/// One VIP in the status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VipStatus {
    /// Its id (bucket set).
    pub id: u16,
    /// Its address.
    pub address: Ipv4Addr,
    /// Service ports, as `tcp/80`.
    pub ports: Vec<String>,
    /// Buckets.
    pub buckets: u32,
    /// Buckets whose previous DIP is still set (live daisy chains).
    pub chained: u32,
    /// Its servers.
    pub servers: Vec<ServerStatus>,
}

/// `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The current generation.
    pub generation: u32,
    /// Daisy-chain timeout in seconds.
    pub daisy_timeout: u32,
    /// When the next chain expires (Unix seconds).
    pub next_expiry: Option<u32>,
    /// VIPs.
    pub vips: Vec<VipStatus>,
    /// Switches.
    pub switches: Vec<SwitchStatus>,
    /// The last commit's report.
    pub last_commit: Option<String>,
}

impl Status {
    /// The VIP named `vip` (id or address).
    pub fn find_vip(&self, vip: &str) -> Option<&VipStatus> {
        if let Ok(id) = vip.parse::<u16>() {
            return self.vips.iter().find(|v| v.id == id);
        }
        let addr: Ipv4Addr = vip.parse().ok()?;
        self.vips.iter().find(|v| v.address == addr)
    }

    /// Whether every switch holds generation `generation` or later.
    pub fn all_in_sync_at(&self, generation: u32) -> bool {
        self.switches.iter().all(|s| {
            matches!(s.state, crate::switch::SyncState::InSync { generation: g } if g >= generation)
        })
    }

    /// A human-readable table.
    pub fn render(&self) -> String {
        let mut out = format!(
            "generation {}   daisy timeout {}s   next expiry {}\n",
            self.generation,
            self.daisy_timeout,
            self.next_expiry
                .map_or_else(|| "none".to_string(), |t| format!("at {t}"))
        );
        for v in &self.vips {
            out.push_str(&format!(
                "\nVIP {} {} [{}]  {} buckets, {} chained\n",
                v.id,
                v.address,
                v.ports.join(", "),
                v.buckets,
                v.chained
            ));
            out.push_str(&format!(
                "  {:<15} {:>5} {:>6} {:<9} {:<6} {:<9} {:>7} {:>7} {:>9}\n",
                "server", "port", "weight", "admin", "health", "state", "buckets", "share", "ideal"
            ));
            for s in &v.servers {
                out.push_str(&format!(
                    "  {:<15} {:>5} {:>6} {:<9} {:<6} {:<9} {:>7} {:>6.2}% {:>9.2}{}\n",
                    s.dip.to_string(),
                    s.port.map_or_else(|| "-".into(), |p| p.to_string()),
                    s.weight,
                    s.admin,
                    s.health.as_deref().unwrap_or("-"),
                    s.state,
                    s.buckets,
                    100.0 * f64::from(s.buckets) / f64::from(v.buckets.max(1)),
                    s.ideal,
                    s.note
                        .as_deref()
                        .map(|n| format!("  ({n})"))
                        .unwrap_or_default()
                ));
            }
        }
        out.push_str("\nswitches:\n");
        for s in &self.switches {
            out.push_str(&format!(
                "  {:<12} {:<22} {:<10} {}\n",
                s.name,
                s.address,
                s.target.name(),
                s.state.describe()
            ));
        }
        out
    }
}
