//! `beamer demo` as a user runs it: the comparison it prints, the same
//! figures for the same seed, and arguments it refuses.

use std::process::Command;

fn demo(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_beamer"))
        .arg("demo")
        .args(args)
        .output()
        .expect("running beamer demo")
}

/// The two figures at the end of the row that starts with `label`.
fn row(out: &str, label: &str) -> (String, String) {
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no row {label:?} in:\n{out}"));
    let cols: Vec<&str> = line.split_whitespace().collect();
    let n = cols.len();
    (cols[n - 2].to_string(), cols[n - 1].to_string())
}

const SMALL: &[&str] = &[
    "--connections",
    "300",
    "--servers",
    "4",
    "--buckets",
    "256",
    "--seed",
    "3",
];

#[test]
fn prints_survival_with_and_without_chaining() {
    let mut args = SMALL.to_vec();
    args.push("--quiet");
    let out = demo(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (on, off) = row(&text, "BROKEN");
    assert_eq!(on, "0", "{text}");
    assert!(off.parse::<u64>().unwrap() > 0, "{text}");
    // "moved (minimum)" for each run: "N (N) N (N)".
    let label = "buckets moved (theoretical minimum)";
    let line = text
        .lines()
        .find(|l| l.starts_with(label))
        .expect("moved row");
    let cols: Vec<&str> = line[label.len()..].split_whitespace().collect();
    assert_eq!(cols.len(), 4, "{line}");
    for pair in cols.chunks(2) {
        assert_eq!(format!("({})", pair[0]), pair[1], "{line}");
    }

    // The same seed prints the same figures (all but the wall-clock line).
    let again = demo(&args);
    let figures = |o: &[u8]| {
        String::from_utf8_lossy(o)
            .lines()
            .filter(|l| !l.contains("virtual time"))
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert_eq!(figures(&out.stdout), figures(&again.stdout));
}

#[test]
fn progress_shows_each_step_and_the_servers_load() {
    let out = demo(SMALL);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "run 1 of 2: daisy chaining ON",
        "run 2 of 2: daisy chaining OFF",
        "add server 5: generation 2",
        "drain server 1",
        "remove server 1 (drained)",
        "server       state    weight  buckets connections  sockets",
        "10.0.0.1     draining",
        "chains expire",
    ] {
        assert!(text.contains(want), "{want:?} missing from:\n{text}");
    }
}

#[test]
fn bad_arguments_are_named() {
    for (args, want) in [
        (&["--buckets", "1000"][..], "--buckets 1000"),
        (&["--servers", "2"][..], "servers"),
        (&["--connections", "0"][..], "connections"),
    ] {
        let out = demo(args);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{want:?} not in {err}");
    }
}
