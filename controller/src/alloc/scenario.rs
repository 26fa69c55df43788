//! Scripted scenarios: a list of steps (time passes, then a batch of
//! changes) run against an allocator, and a table of buckets moved against
//! the minimum. `beamer demo` and `beamer ctl` reuse it.

use super::{AllocError, Allocator, Change, Commit, ServerSpec, ServicePort, VipSpec};
use std::fmt::Write as _;
use std::net::Ipv4Addr;

/// One step of a scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// What the step does, for the table.
    pub label: String,
    /// Seconds that pass before it.
    pub advance: u32,
    /// The batch committed; empty means "just let time pass" (expiry only).
    pub changes: Vec<Change>,
}

impl Step {
    /// A step committing `changes` after `advance` seconds.
    pub fn new(label: impl Into<String>, advance: u32, changes: Vec<Change>) -> Self {
        Step {
            label: label.into(),
            advance,
            changes,
        }
    }
}

/// What one step produced.
#[derive(Debug, Clone, PartialEq)]
pub struct StepOutcome {
    /// The step's label.
    pub label: String,
    /// The time it ran at.
    pub now: u32,
    /// Its commit, or the expiry it caused; `None` when only time passed and
    /// no chain was due.
    pub commit: Option<Commit>,
}

/// A step was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("step {step} ({label}): {source}")]
pub struct ScenarioError {
    /// Index of the step.
    pub step: usize,
    /// Its label.
    pub label: String,
    /// Why.
    pub source: AllocError,
}

/// Runs `steps` on `alloc`, starting at time `start` (Unix seconds).
pub fn run(
    alloc: &mut Allocator,
    start: u32,
    steps: &[Step],
) -> Result<Vec<StepOutcome>, ScenarioError> {
    let mut now = start;
    let mut out = Vec::with_capacity(steps.len());
    for (i, s) in steps.iter().enumerate() {
        now = now.saturating_add(s.advance);
        let commit = if s.changes.is_empty() {
            alloc.expire(now)
        } else {
            alloc.commit(&s.changes, now).map(Some)
        }
        .map_err(|source| ScenarioError {
            step: i,
            label: s.label.clone(),
            source,
        })?;
        out.push(StepOutcome {
            label: s.label.clone(),
            now,
            commit,
        });
    }
    Ok(out)
}

/// One line per step: generation, buckets moved against the minimum, daisy
/// chains broken, inherited, cleared and expired, entries written, and the
/// worst distance of a server's share from its ideal.
pub fn movement_table(outcomes: &[StepOutcome]) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{:<34} {:>5} {:>7} {:>7} {:>6} {:>6} {:>6} {:>6} {:>7} {:>6}",
        "step", "gen", "moved", "minimum", "broken", "inher", "clear", "expir", "writes", "maxdev"
    );
    for o in outcomes {
        let Some(c) = &o.commit else {
            let _ = writeln!(t, "{:<34} {:>5}", o.label, "-");
            continue;
        };
        let r = &c.report;
        let sum = |f: fn(&super::VipReport) -> u64| r.vips.iter().map(f).sum::<u64>();
        let maxdev = r.vips.iter().map(|v| v.max_deviation()).fold(0.0, f64::max);
        let _ = writeln!(
            t,
            "{:<34} {:>5} {:>7} {:>7} {:>6} {:>6} {:>6} {:>6} {:>7} {:>6.2}",
            o.label,
            c.generation,
            r.moved(),
            r.minimum(),
            sum(|v| v.chains_broken),
            sum(|v| v.chains_inherited),
            sum(|v| v.chains_cleared),
            r.expired,
            c.diff.len(),
            maxdev
        );
    }
    t
}

/// A server of the example: 10.0.0.`n`, per-server port 10000 + `n`.
pub fn example_server(n: u8, weight: u32) -> ServerSpec {
    ServerSpec {
        dip: Ipv4Addr::new(10, 0, 0, n),
        port: Some(10_000 + u16::from(n)),
        weight,
    }
}

/// An example life of one VIP (ID `vip_id`, 192.0.2.1 tcp/80): four
/// servers, then an add, a drain, a weight change, removals with and
/// without draining, a batch, and quiet periods where chains expire.
pub fn example(vip_id: u16) -> Vec<Step> {
    let dip = |n| Ipv4Addr::new(10, 0, 0, n);
    let add = |n, w| Change::AddServer {
        vip_id,
        server: example_server(n, w),
    };
    let mut create = vec![Change::AddVip(VipSpec {
        vip_id,
        addr: Ipv4Addr::new(192, 0, 2, 1),
        service_ports: vec![ServicePort::tcp(80)],
    })];
    create.extend((1..=4).map(|n| add(n, 1)));
    vec![
        Step::new("create VIP, servers .1-.4", 0, create),
        Step::new("add .5", 10, vec![add(5, 1)]),
        Step::new(
            "drain .2",
            10,
            vec![Change::DrainServer {
                vip_id,
                dip: dip(2),
            }],
        ),
        Step::new(
            "weight .3 -> 3",
            10,
            vec![Change::SetWeight {
                vip_id,
                dip: dip(3),
                weight: 3,
            }],
        ),
        Step::new("quiet: chains expire", 300, vec![]),
        Step::new(
            "remove drained .2",
            10,
            vec![Change::RemoveServer {
                vip_id,
                dip: dip(2),
            }],
        ),
        Step::new("add .6 (weight 2)", 10, vec![add(6, 2)]),
        Step::new(
            "remove .6 at once (not drained)",
            10,
            vec![Change::RemoveServer {
                vip_id,
                dip: dip(6),
            }],
        ),
        Step::new(
            "batch: add .7, .8, remove .1",
            10,
            vec![
                add(7, 1),
                add(8, 1),
                Change::RemoveServer {
                    vip_id,
                    dip: dip(1),
                },
            ],
        ),
        Step::new(
            "drain .4",
            10,
            vec![Change::DrainServer {
                vip_id,
                dip: dip(4),
            }],
        ),
        Step::new(
            "activate .4 again",
            10,
            vec![Change::ActivateServer {
                vip_id,
                dip: dip(4),
            }],
        ),
        Step::new("quiet: chains expire", 300, vec![]),
    ]
}
