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
use beamer_testbed::python;
use std::path::Path;
use std::process::Command;

#[test]
fn official_python_bindings_read_the_committed_p4info() {
    let Some(python) = python::with_modules(
        "official_python_bindings_read_the_committed_p4info",
        python::P4RUNTIME,
    ) else {
        return;
    };
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
