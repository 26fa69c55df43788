//! The committed P4Info files read back with the official Python bindings
//! (PyPI `p4runtime`): binary and text are the same message, re-encoding
//! changes no byte, and the text is exactly what protobuf's own printer
//! writes. (`p4info_schema.rs` checks the content against the schema in
//! Rust; this checks the files as other P4Runtime tools see them.)
//!
//! Python comes from `BEAMER_PYTHON` (default `python3`). Without the
//! `p4runtime` module the test fails when `BEAMER_REQUIRE_PYTHON=1` (as in
//! CI) and otherwise prints a loud SKIPPED line.

use beamer_pipeline::Target;
use std::path::Path;
use std::process::Command;

#[test]
fn official_python_bindings_read_the_committed_p4info() {
    let python = std::env::var("BEAMER_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = Command::new(&python)
        .args(["-c", "import p4.config.v1.p4info_pb2"])
        .output();
    let usable = matches!(&probe, Ok(o) if o.status.success());
    if !usable {
        let why = match probe {
            Ok(o) => String::from_utf8_lossy(&o.stderr)
                .lines()
                .last()
                .unwrap_or("")
                .to_string(),
            Err(e) => e.to_string(),
        };
        let msg = format!(
            "{python} cannot import the p4runtime bindings ({why}); install with: \
             python3 -m venv /tmp/venv && /tmp/venv/bin/pip install -r tests/python-requirements.txt \
             && export BEAMER_PYTHON=/tmp/venv/bin/python"
        );
        if std::env::var("BEAMER_REQUIRE_PYTHON").as_deref() == Ok("1") {
            panic!("{msg}");
        }
        eprintln!("SKIPPED official_python_bindings_read_the_committed_p4info: {msg}");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("tests/python/p4info_check.py");
    for target in Target::ALL {
        let dir = root.join(target.name());
        let out = Command::new(&python)
            .arg(&script)
            .arg(&dir)
            .arg(target.name())
            .output()
            .expect("runs the check script");
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{target}:\n{report}");
        println!("{report}");
    }
}
