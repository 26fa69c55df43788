//! The demo's text output: progress lines, load tables and the contrast
//! between the runs with and without daisy chaining.

use crate::plan::{SERVICE_PORT, VIP};
use crate::{Comparison, DemoConfig, RunSummary, ServerLoad, StepOutcome, Totals};
use beamer_controller::alloc::scenario::movement_table;
use std::fmt::Write as _;

/// What is simulated, in a few lines.
pub fn intro(cfg: &DemoConfig) -> String {
    let plan = crate::plan::plan(cfg);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "beamer demo: VIP {VIP} tcp/{SERVICE_PORT}, {} buckets, {} servers, {} connections kept open \
         ({}% MPTCP, {}-{} s each), daisy timeout {} s, seed {}",
        cfg.buckets(),
        cfg.servers,
        cfg.connections,
        cfg.mptcp_percent,
        cfg.min_lifetime_secs,
        cfg.max_lifetime_secs,
        cfg.daisy_timeout_secs,
        cfg.seed
    );
    let _ = writeln!(
        s,
        "In one process, {} s of virtual time, twice:\n\
         - the controller's allocator moves buckets; each diff is written to the software switch\n\
         \x20 batch by batch through its control-plane API, as over P4Runtime, generation last;\n\
         - every client packet goes through the switch pipeline as an Ethernet frame;\n\
         - each simulated server runs beamer-host's decision on the encapsulated packets it gets;\n\
         - a packet that reaches a server without its connection gets a RST: the connection BREAKS.",
        plan.end
    );
    let _ = writeln!(s, "Script:");
    for (t, step) in plan.times().iter().zip(&plan.steps) {
        let _ = writeln!(s, "  t={t:>4}s  {}", step.label);
    }
    let _ = writeln!(
        s,
        "  new connections until t={}s; chains time out {} s after each move.",
        plan.open_until, cfg.daisy_timeout_secs
    );
    s
}

/// A run's heading.
pub fn heading(chaining: bool) -> String {
    if chaining {
        "== run 1 of 2: daisy chaining ON (beamer host) ==".into()
    } else {
        "== run 2 of 2: daisy chaining OFF (beamer host --no-chain), same seed ==".into()
    }
}

/// One line for a committed generation.
pub fn commit_line(t: u32, outcome: &StepOutcome) -> String {
    let Some(c) = &outcome.commit else {
        return format!("[t={t:>4}s] {}: nothing to do", outcome.label);
    };
    let r = &c.report;
    let assigned: u64 = r.vips.iter().map(|v| v.assigned).sum();
    let mut s = format!(
        "[t={t:>4}s] {}: generation {}, {} table writes, buckets moved {} (minimum {})",
        outcome.label,
        c.generation,
        c.diff.len(),
        r.moved(),
        r.minimum()
    );
    if assigned > 0 {
        let _ = write!(s, ", assigned {assigned}");
    }
    if r.expired > 0 {
        let _ = write!(s, ", chains cleared {}", r.expired);
    }
    s
}

/// The servers' shares, one line each.
pub fn load_table(load: &[ServerLoad]) -> String {
    let mut s = format!(
        "    {:<12} {:<8} {:>6} {:>8} {:>11} {:>8}\n",
        "server", "state", "weight", "buckets", "connections", "sockets"
    );
    for l in load {
        let _ = writeln!(
            s,
            "    {:<12} {:<8} {:>6} {:>8} {:>11} {:>8}",
            l.dip.to_string(),
            l.state,
            l.weight,
            l.buckets,
            l.connections,
            l.sockets
        );
    }
    s
}

/// A progress line.
pub fn tick_line(t: u32, totals: &Totals) -> String {
    format!(
        "[t={t:>4}s] live {}, opened {}, completed {}, broken {} (tcp {}, mptcp {}), \
         MPTCP subflows reset {} | packets {}, daisy-chained {}",
        totals.live,
        totals.opened,
        totals.completed,
        totals.broken(),
        totals.broken_tcp,
        totals.broken_mptcp,
        totals.subflow_resets,
        totals.packets,
        totals.chained
    )
}

/// A run's totals and its movement table.
pub fn run_summary(run: &RunSummary) -> String {
    let t = &run.totals;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "chaining {}: {} connections opened ({} MPTCP, {} subflows joined on per-server ports), \
         {} completed intact, {} broken, {} packets lost",
        if run.chaining { "on" } else { "off" },
        t.opened,
        t.mptcp_opened,
        t.joins,
        t.completed,
        t.broken(),
        t.lost()
    );
    let _ = write!(s, "{}", movement_table(&run.steps));
    s
}

/// The two runs side by side.
pub fn contrast(c: &Comparison) -> String {
    let (a, b) = (&c.on.totals, &c.off.totals);
    let moved = |r: &RunSummary| {
        r.steps
            .iter()
            .filter_map(|o| o.commit.as_ref())
            .fold((0, 0), |(m, n), c| {
                (m + c.report.moved(), n + c.report.minimum())
            })
    };
    let (ma, na) = moved(&c.on);
    let (mb, nb) = moved(&c.off);
    let mut s = String::from(
        "== survival: the same script, seed and tables, with and without daisy chaining ==\n",
    );
    let _ = writeln!(s, "{:<48} {:>14} {:>14}", "", "chaining on", "chaining off");
    let mut row = |label: &str, x: String, y: String| {
        let _ = writeln!(s, "{label:<48} {x:>14} {y:>14}");
    };
    row(
        "connections opened",
        a.opened.to_string(),
        b.opened.to_string(),
    );
    row(
        "  completed with every packet delivered",
        a.completed.to_string(),
        b.completed.to_string(),
    );
    row(
        "  BROKEN (a server without their state sent RST)",
        a.broken().to_string(),
        b.broken().to_string(),
    );
    row(
        "    of them TCP",
        a.broken_tcp.to_string(),
        b.broken_tcp.to_string(),
    );
    row(
        "    of them MPTCP (every subflow lost)",
        a.broken_mptcp.to_string(),
        b.broken_mptcp.to_string(),
    );
    row(
        "MPTCP subflows reset, connection survived",
        a.subflow_resets.to_string(),
        b.subflow_resets.to_string(),
    );
    row(
        "packets through the switch",
        a.packets.to_string(),
        b.packets.to_string(),
    );
    row(
        "  of them via per-server ports (switch counter)",
        c.on.server_port_packets.to_string(),
        c.off.server_port_packets.to_string(),
    );
    row(
        "  daisy-chain hops at the servers",
        a.chained.to_string(),
        b.chained.to_string(),
    );
    row("  lost", a.lost().to_string(), b.lost().to_string());
    row(
        "buckets moved (theoretical minimum)",
        format!("{ma} ({na})"),
        format!("{mb} ({nb})"),
    );
    s
}
