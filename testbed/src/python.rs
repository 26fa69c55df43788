//! The Python interpreter of the tests that check Beamer against the
//! official P4Runtime tools (PyPI `p4runtime` and `p4runtime-shell`).
//!
//! The interpreter comes from [`PYTHON`] (default `python3`). A test whose
//! modules it cannot import prints a loud `SKIPPED (NOT RUN)` line, or
//! fails when [`REQUIRE_PYTHON`] is `1` (as CI sets).

use std::process::Command;

/// Where the interpreter comes from; `python3` when unset.
pub const PYTHON: &str = "BEAMER_PYTHON";

/// Set to `1`, a missing interpreter or module fails the test instead of
/// skipping it.
pub const REQUIRE_PYTHON: &str = "BEAMER_REQUIRE_PYTHON";

/// How to get an interpreter with every module the tests import (the path
/// is the repository's).
pub const INSTALL_HINT: &str = "install with: python3 -m venv /tmp/venv && \
     /tmp/venv/bin/pip install -r tests/python-requirements.txt && \
     export BEAMER_PYTHON=/tmp/venv/bin/python";

/// The official bindings (PyPI `p4runtime`), as an import list.
pub const P4RUNTIME: &str = "p4.v1.p4runtime_pb2, p4.config.v1.p4info_pb2, google.rpc.status_pb2";

/// p4runtime-shell (PyPI `p4runtime-shell`), as an import list.
pub const P4RUNTIME_SHELL: &str = "p4runtime_sh.shell";

/// The interpreter: `$BEAMER_PYTHON`, or `python3`.
pub fn interpreter() -> String {
    std::env::var(PYTHON).unwrap_or_else(|_| "python3".into())
}

/// `Ok` when `python` runs `import <modules>`; otherwise why not (the
/// interpreter cannot start, or Python's last error line).
pub fn can_import(python: &str, modules: &str) -> Result<(), String> {
    let probe = Command::new(python)
        .args(["-c", &format!("import {modules}")])
        .output()
        .map_err(|e| format!("cannot run {python:?}: {e}"))?;
    if probe.status.success() {
        return Ok(());
    }
    Err(format!(
        "{python} cannot import {modules}: {}",
        String::from_utf8_lossy(&probe.stderr)
            .lines()
            .last()
            .unwrap_or("no error output")
    ))
}

/// The interpreter, when it imports `modules`, for test `what`. When it
/// does not: a panic if [`REQUIRE_PYTHON`] is `1`, otherwise a loud
/// `SKIPPED (NOT RUN)` line and `None` (the test then returns).
#[track_caller]
pub fn with_modules(what: &str, modules: &str) -> Option<String> {
    let python = interpreter();
    match can_import(&python, modules) {
        Ok(()) => Some(python),
        Err(why) => {
            crate::skip_unless_required(REQUIRE_PYTHON, what, &format!("{why}; {INSTALL_HINT}"));
            None
        }
    }
}
