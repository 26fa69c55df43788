//! Test support for Beamer's integration tests on Linux: network
//! namespaces, veth links, processes and threads inside namespaces, and
//! TCP/MPTCP sockets, each cleaned up by a guard.
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
//! - [`missing`]: why a test cannot run here (not root, a tool missing), so
//!   it can say so loudly instead of failing.
//!
//! Everything here needs root and iproute2; [`missing`] checks first.
#![cfg(target_os = "linux")]

mod netns;
mod proc;
pub mod sock;

pub use netns::{Netns, offloads_off, sweep_stale, veth};
pub use proc::Proc;

use std::io;
use std::path::PathBuf;
use std::process::Command;

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
pub fn missing(tools: &[&str], tun: bool) -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root".into());
    }
    if tun && !std::path::Path::new("/dev/net/tun").exists() {
        return Some("no /dev/net/tun".into());
    }
    let absent: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| which(t).is_none())
        .collect();
    if !absent.is_empty() {
        return Some(format!("not on PATH: {}", absent.join(", ")));
    }
    None
}

/// Prints `SKIPPED (NOT RUN): what — why` to stderr, where the test
/// harness does not capture it.
pub fn say_skipped(what: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(io::stderr(), "SKIPPED (NOT RUN): {what} — {why}");
}
