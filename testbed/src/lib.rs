//! Test support for Beamer's integration tests: network namespaces, veth
//! links, processes and threads inside namespaces, TCP/MPTCP sockets, each
//! cleaned up by a guard (Linux), and the checks that let a test say loudly
//! that it did not run.
//!
//! - [`Netns`]: a named network namespace, deleted on drop; commands and
//!   threads inside it ([`Netns::ip`], [`Netns::command`], [`Netns::run`],
//!   [`Netns::spawn`]);
//! - [`veth`] and [`offloads_off`]: links between namespaces, with the
//!   checksum and segmentation offloads that break software switches off;
//! - [`Proc`]: a child process in its own process group with its output in
//!   a log file, stopped (the whole group) on drop;
//! - [`sock`]: plain and MPTCP sockets bound, connected and inspected with
//!   the calls `std` does not offer;
//! - [`missing`] and [`not_on_path`]: why a test cannot run here (not root,
//!   a tool missing); [`skip_unless_required`] then says so loudly, or fails
//!   the test when CI asks for it ([`REQUIRE_TOOLS`]);
//! - [`Scratch`]: a temporary directory removed on drop;
//! - [`python`]: the Python interpreter (`BEAMER_PYTHON`) of the tests that
//!   check against the official P4Runtime tools.
//!
//! The namespace, process and socket parts need Linux, root and iproute2;
//! [`missing`] checks first.

#[cfg(target_os = "linux")]
mod netns;
#[cfg(target_os = "linux")]
mod proc;
pub mod python;
#[cfg(target_os = "linux")]
pub mod sock;

#[cfg(target_os = "linux")]
pub use netns::{Netns, offloads_off, sweep_stale, veth};
#[cfg(target_os = "linux")]
pub use proc::Proc;

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Runs `cmd` and returns its stdout; a failure names the command and
/// carries its stderr.
pub fn run(cmd: &mut Command) -> io::Result<String> {
    let out = cmd.output().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("{}: {e}", cmd.get_program().to_string_lossy()),
        )
    })?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "`{}` failed ({}): {}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The command line, for messages.
pub fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Where `tool` is on PATH, if it is.
pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// Why a namespace test cannot run here: not root, no `/dev/net/tun` when
/// `tun` is asked for, or one of `tools` not on PATH. `None` when it can.
#[cfg(target_os = "linux")]
pub fn missing(tools: &[&str], tun: bool) -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root".into());
    }
    if tun && !std::path::Path::new("/dev/net/tun").exists() {
        return Some("no /dev/net/tun".into());
    }
    not_on_path(tools)
}

/// Which of `tools` are not on PATH, as a reason for not running; `None`
/// when all are.
pub fn not_on_path(tools: &[&str]) -> Option<String> {
    let absent: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| which(t).is_none())
        .collect();
    (!absent.is_empty()).then(|| format!("not on PATH: {}", absent.join(", ")))
}

/// Set to `1` (as CI does), a test whose root, tools or kernel features are
/// missing fails instead of skipping.
pub const REQUIRE_TOOLS: &str = "BEAMER_REQUIRE_TOOLS";

/// Whether the environment variable `var` is `1`.
pub fn required(var: &str) -> bool {
    std::env::var_os(var).is_some_and(|v| v == "1")
}

/// Test `what` cannot run here, because of `why`: it fails when `var` is
/// `1` (e.g. [`REQUIRE_TOOLS`], as CI sets), and otherwise says loudly that
/// it did not run ([`say_skipped`]); the caller then returns.
#[track_caller]
pub fn skip_unless_required(var: &str, what: &str, why: &str) {
    if required(var) {
        panic!("{what} needs: {why} ({var}=1)");
    }
    say_skipped(what, why);
}

/// Prints `SKIPPED (NOT RUN): what — why` to stderr, where the test
/// harness does not capture it.
pub fn say_skipped(what: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(io::stderr(), "SKIPPED (NOT RUN): {what} — {why}");
}

/// A fresh directory under the system temp dir, removed with everything in
/// it when dropped (also when the test fails).
#[derive(Debug)]
pub struct Scratch(PathBuf);

impl Scratch {
    /// Creates `<temp>/<name>-<pid>-<n>`, `n` counting this process's
    /// scratch directories (so two with one name do not meet), replacing a
    /// leftover. Panics when it cannot: a test cannot go on without it.
    pub fn new(name: &str) -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("scratch directory {}: {e}", dir.display()));
        Scratch(dir)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.0
    }

    /// `rel` inside the directory.
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.0.join(rel)
    }

    /// Writes `contents` to `rel` inside the directory, creating the
    /// directories on the way; returns the file's path.
    pub fn write(&self, rel: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("creating {}: {e}", parent.display()));
        }
        std::fs::write(&p, contents).unwrap_or_else(|e| panic!("writing {}: {e}", p.display()));
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
