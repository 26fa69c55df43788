//! `beamer switch --pcap-in ... --pcap-out ...` on the committed example
//! (`softswitch/examples/pcap/`): the outputs equal the committed files
//! byte for byte, and the printed counters are those of the frame table.

use beamer_testbed::Scratch;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("softswitch/examples/pcap")
        .join(name)
}

fn beamer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_beamer"))
        .args(args)
        .output()
        .expect("run beamer")
}

fn switch(extra: &[&str]) -> Output {
    let tables = example("tables.toml");
    let input = example("input.pcap");
    let mut args = vec![
        "switch",
        "--tables",
        tables.to_str().unwrap(),
        "--pcap-in",
        input.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = beamer(&args);
    assert!(
        out.status.success(),
        "beamer switch failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn assert_same_file(got: &Path, committed: &str) {
    let got_bytes = std::fs::read(got).unwrap_or_else(|e| panic!("{}: {e}", got.display()));
    let want = std::fs::read(example(committed)).unwrap();
    assert!(
        got_bytes == want,
        "{} differs from softswitch/examples/pcap/{committed}",
        got.display()
    );
}

/// The report with runs of spaces squeezed, for matching table rows.
fn squeezed(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn outputs_equal_the_committed_files_byte_for_byte() {
    let tmp = Scratch::new("beamer-switch-pcap-all");
    let (ng, classic, dir) = (
        tmp.path("out.pcapng"),
        tmp.path("out.pcap"),
        tmp.path("ports"),
    );
    let out = switch(&[
        "--pcap-out",
        ng.to_str().unwrap(),
        "--pcap-out-dir",
        dir.to_str().unwrap(),
    ]);
    assert_same_file(&ng, "expected.pcapng");
    assert_same_file(&dir.join("port1.pcap"), "expected-port1.pcap");
    assert_same_file(&dir.join("port2.pcap"), "expected-port2.pcap");
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "only ports 1 and 2 forward: {names:?}");

    // Classic pcap, and every batch size gives the same bytes.
    for batch in ["1", "7", "256"] {
        switch(&["--pcap-out", classic.to_str().unwrap(), "--batch", batch]);
        assert_same_file(&classic, "expected.pcap");
    }

    // The counters of the frame table (softswitch/examples/pcap/README.md).
    let report = squeezed(&out);
    for row in [
        "=== beamer switch counters (end of input) ===",
        "frames: received 16 (943 bytes), forwarded 7 (433 bytes), dropped 9 (510 bytes)",
        "192.0.2.10 tcp/80 -> buckets of vip_id 0 3 195",
        "192.0.2.10 tcp/40001 -> server 10.1.0.3 1 54",
        "192.0.2.10 udp/443 -> buckets of vip_id 0 1 58",
        "192.0.2.20 tcp/80 -> buckets of vip_id 1 1 54",
        "(no entry: routed) 2 110",
        "vip_id 0 bucket 7 -> 10.1.0.2 (prev 10.1.0.1) 1 87",
        "(no entry: bucket_miss) 1 54",
        "truncated 1 46",
        "non_ipv4 2 100",
        "ip_options 1 58",
        "fragment 1 58",
        "bucket_miss 1 54",
        "ttl 1 70",
        "no_route 2 124",
        "0 input.pcap (file) 16 0 0 0",
        "forwarded by egress port 1: 2 frames, 126 bytes",
        "forwarded by egress port 2: 5 frames, 471 bytes",
    ] {
        assert!(report.contains(row), "missing {row:?} in:\n{report}");
    }
}

#[test]
fn bucket_listing_is_capped() {
    let tmp = Scratch::new("beamer-switch-pcap-cap");
    let out = switch(&[
        "--pcap-out",
        tmp.path("o.pcap").to_str().unwrap(),
        "--show-buckets",
        "1",
    ]);
    let report = squeezed(&out);
    assert!(
        report.contains("bucket entry (2 of 17 non-zero)"),
        "{report}"
    );
    assert!(
        report.contains("... 1 more non-zero entries 1 87"),
        "{report}"
    );
}

#[test]
fn bad_inputs_are_errors_that_name_what_is_wrong() {
    let tmp = Scratch::new("beamer-switch-pcap-bad");
    let out_path = tmp.path("o.pcap");
    let out = out_path.to_str().unwrap();

    // A table file with a bad field: the field is named.
    let tables = tmp.path("bad.toml");
    let text = std::fs::read_to_string(example("tables.toml"))
        .unwrap()
        .replace("tunnel_src = \"10.0.0.1\"", "tunnel_src = \"10.0.0\"");
    std::fs::write(&tables, text).unwrap();
    let input = example("input.pcap");
    let r = beamer(&[
        "switch",
        "--tables",
        tables.to_str().unwrap(),
        "--pcap-in",
        input.to_str().unwrap(),
        "--pcap-out",
        out,
    ]);
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("config.tunnel_src"), "{err}");

    // A missing input: the file is named.
    let r = beamer(&[
        "switch",
        "--tables",
        example("tables.toml").to_str().unwrap(),
        "--pcap-in",
        "/nonexistent/in.pcap",
        "--pcap-out",
        out,
    ]);
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("/nonexistent/in.pcap"));

    // Not a capture: an error, after the counters (nothing was read).
    let r = beamer(&[
        "switch",
        "--tables",
        example("tables.toml").to_str().unwrap(),
        "--pcap-in",
        example("tables.toml").to_str().unwrap(),
        "--pcap-out",
        out,
    ]);
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("tables.toml"));

    // --pcap-in needs an output; pcap and live ports do not mix.
    let r = beamer(&["switch", "--pcap-in", input.to_str().unwrap()]);
    assert!(!r.status.success());
    let r = beamer(&[
        "switch",
        "--pcap-in",
        input.to_str().unwrap(),
        "--pcap-out",
        out,
        "--port",
        "1=lo",
    ]);
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("cannot be used with"));
}
