//! `beamer bench` prints its table: Mpps, floor Mpps and their ratio per
//! batch size, table memory, and the update cost. A small workload and
//! short runs; no figure is checked (speed targets live in the benchmark
//! itself, not in tests).

use std::process::Command;

fn bench(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_beamer"))
        .arg("bench")
        .args(args)
        .output()
        .expect("run beamer bench")
}

#[test]
fn prints_the_table() {
    let out = bench(&[
        "--duration",
        "0.02",
        "--rounds",
        "1",
        "--clients",
        "2048",
        "--buckets",
        "256",
        "--batch-sizes",
        "1,32",
        "--update-sizes",
        "1,16",
        "--update-duration",
        "0.02",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let find = |first: &str| {
        rows.iter()
            .find(|r| r.first() == Some(&first))
            .unwrap_or_else(|| panic!("no row {first:?} in:\n{text}"))
    };
    assert_eq!(find("batch"), &["batch", "Mpps", "floor", "Mpps", "ratio"]);
    for batch in ["1", "32"] {
        let r = find(batch);
        assert_eq!(r.len(), 4, "{r:?}");
        let (mpps, floor, ratio): (f64, f64, f64) = (
            r[1].parse().unwrap(),
            r[2].parse().unwrap(),
            r[3].parse().unwrap(),
        );
        assert!(mpps > 0.0 && floor > 0.0, "{r:?}");
        assert!((ratio - mpps / floor).abs() < 0.01 + ratio * 0.02, "{r:?}");
    }
    // The bucket table holds every bucket of every VIP of the workload
    // line ("..., N VIPs x 256 buckets, ...").
    let workload = text.lines().find(|l| l.starts_with("workload:")).unwrap();
    let vips: u32 = workload
        .split(", ")
        .find_map(|part| {
            part.strip_suffix(" buckets")?
                .strip_suffix(" x 256")?
                .strip_suffix(" VIPs")
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no \"N VIPs x 256 buckets\" in {workload:?}"));
    assert_eq!(find("buckets")[1], (vips * 256).to_string());
    assert!(text.contains("resident: tables"), "{text}");
    assert!(text.contains("entries/write"), "{text}");
    assert!(text.contains("headline:"), "{text}");
}

#[test]
fn bad_options_are_named() {
    let out = bench(&["--batch-sizes", "0"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 to 256"));
    let out = bench(&["--duration", "0"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--duration"));
    let out = bench(&["--buckets", "1000"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--buckets"));
}
