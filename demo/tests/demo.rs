//! The demo's claims, on a small run: with daisy chaining no connection
//! breaks, without it some do, and every step moves the fewest buckets.

use beamer_demo::{Comparison, DemoConfig, RunSummary, compare, run};

fn small() -> DemoConfig {
    DemoConfig {
        seed: 7,
        connections: 400,
        servers: 4,
        bucket_bits: 8,
        ..DemoConfig::default()
    }
}

fn moved_is_minimum(r: &RunSummary) {
    for o in &r.steps {
        let c = o.commit.as_ref().expect("every recorded step committed");
        assert_eq!(
            c.report.moved(),
            c.report.minimum(),
            "{}: moved {} buckets, minimum {}",
            o.label,
            c.report.moved(),
            c.report.minimum()
        );
    }
}

#[test]
fn chaining_keeps_every_connection_and_without_it_some_break() {
    let Comparison { on, off } = compare(&small(), &mut |_, _| {}).unwrap();

    // With chaining: nothing breaks, nothing is lost, and chaining did the
    // work (packets were chained).
    assert_eq!(on.totals.broken(), 0, "{:?}", on.totals);
    assert_eq!(on.totals.lost(), 0, "{:?}", on.totals);
    assert_eq!(on.totals.completed, on.totals.opened);
    assert_eq!(on.totals.live, 0);
    assert!(on.totals.chained > 0);

    // Without: connections whose bucket moved are reset. MPTCP subflows
    // on per-server ports keep their connections alive.
    assert!(off.totals.broken_tcp > 0, "{:?}", off.totals);
    assert!(off.totals.subflow_resets > 0, "{:?}", off.totals);
    assert_eq!(off.totals.chained, 0);
    assert_eq!(off.totals.lost(), 0, "{:?}", off.totals);
    assert_eq!(
        off.totals.completed + off.totals.broken(),
        off.totals.opened
    );

    // Every step, scripted or expiry, moved exactly the minimum, and the
    // two runs had the same tables.
    moved_is_minimum(&on);
    moved_is_minimum(&off);
    let labels = |r: &RunSummary| r.steps.iter().map(|s| s.label.clone()).collect::<Vec<_>>();
    assert_eq!(labels(&on), labels(&off));
    assert!(labels(&on).iter().any(|l| l.starts_with("chains expire")));
    let moved: u64 = on
        .steps
        .iter()
        .filter_map(|s| s.commit.as_ref())
        .map(|c| c.report.moved())
        .sum();
    assert!(moved > 0);

    // MPTCP subflows were opened to per-server ports and the switch
    // counted their packets on the per-server VIP entries.
    assert!(on.totals.joins > 0 && on.totals.joins <= on.totals.mptcp_opened);
    assert!(on.server_port_packets >= 3 * on.totals.joins);
}

#[test]
fn the_script_adds_drains_reweights_and_removes() {
    let on = run(&small(), true, &mut |_| {}).unwrap();
    let labels: Vec<&str> = on.steps.iter().map(|s| s.label.as_str()).collect();
    for want in [
        "create VIP, servers 1-4",
        "add server 5",
        "drain server 1",
        "server 2: weight 1 -> 2",
        "remove server 1 (drained)",
        "add server 6",
    ] {
        assert!(labels.contains(&want), "{want:?} not in {labels:?}");
    }
    // At the end: server 1 is gone, server 2 holds twice the share of the
    // others, and every bucket has a server.
    let dips: Vec<String> = on.load.iter().map(|l| l.dip.to_string()).collect();
    assert_eq!(
        dips,
        ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]
    );
    let buckets: Vec<u32> = on.load.iter().map(|l| l.buckets).collect();
    assert_eq!(buckets.iter().sum::<u32>(), 256);
    assert!(
        buckets[1..].iter().all(|&b| b == 42 || b == 43),
        "{buckets:?}"
    );
    assert!((85..=86).contains(&buckets[0]), "{buckets:?}");
}

#[test]
fn same_seed_same_run_other_seed_other_run() {
    let cfg = DemoConfig {
        connections: 150,
        ..small()
    };
    let a = run(&cfg, false, &mut |_| {}).unwrap();
    let b = run(&cfg, false, &mut |_| {}).unwrap();
    assert_eq!(a.totals, b.totals);
    assert_eq!(a.load, b.load);
    let c = run(&DemoConfig { seed: 8, ..cfg }, false, &mut |_| {}).unwrap();
    assert_ne!(a.totals, c.totals);
}

#[test]
fn a_chain_shorter_than_the_connections_keeps_only_some() {
    // Connections live 30-180 s; chains of 20 s end before many of them.
    let cfg = DemoConfig {
        daisy_timeout_secs: 20,
        ..small()
    };
    let Comparison { on, off } = compare(&cfg, &mut |_, _| {}).unwrap();
    assert!(on.totals.broken() > 0, "{:?}", on.totals);
    assert!(on.totals.broken() < off.totals.broken());
}

#[test]
fn progress_reports_every_commit_and_ticks() {
    let mut commits = 0;
    let mut ticks = 0;
    let r = run(&small(), true, &mut |e| match e {
        beamer_demo::Event::Commit { load, .. } => {
            commits += 1;
            assert!(!load.is_empty());
        }
        beamer_demo::Event::Tick { .. } => ticks += 1,
    })
    .unwrap();
    assert_eq!(commits, r.steps.len());
    assert_eq!(ticks, r.virtual_secs / 30);
}

#[test]
fn bad_configurations_name_the_field() {
    for (cfg, field) in [
        (
            DemoConfig {
                servers: 2,
                ..small()
            },
            "servers",
        ),
        (
            DemoConfig {
                connections: 0,
                ..small()
            },
            "connections",
        ),
        (
            DemoConfig {
                bucket_bits: 0,
                ..small()
            },
            "buckets",
        ),
        (
            DemoConfig {
                bucket_bits: 30,
                ..small()
            },
            "buckets",
        ),
        (
            DemoConfig {
                daisy_timeout_secs: 0,
                ..small()
            },
            "daisy timeout",
        ),
        (
            DemoConfig {
                mptcp_percent: 101,
                ..small()
            },
            "mptcp",
        ),
        (
            DemoConfig {
                min_lifetime_secs: 200,
                ..small()
            },
            "lifetimes",
        ),
    ] {
        let e = run(&cfg, true, &mut |_| {}).unwrap_err().to_string();
        assert!(e.contains(field), "{e:?} does not name {field:?}");
    }
}
