//! Named network namespaces and the links between them.

use crate::run;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::thread::{self, JoinHandle};

/// A named network namespace (`ip netns add`), deleted on drop together
/// with the interfaces in it (a veth goes with either end).
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates the namespace `name` (deleting a leftover of the same name
    /// first) with its loopback up.
    pub fn new(name: impl Into<String>) -> io::Result<Netns> {
        let name = name.into();
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        run(Command::new("ip").args(["netns", "add", &name]))?;
        let ns = Netns { name };
        ns.ip("link set lo up")?;
        Ok(ns)
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip -n NAME <args>` (split on whitespace); returns stdout.
    pub fn ip(&self, args: &str) -> io::Result<String> {
        run(Command::new("ip")
            .args(["-n", &self.name])
            .args(args.split_whitespace()))
    }

    /// A command that runs `program` inside the namespace
    /// (`ip netns exec NAME program`, which execs it: the child's pid is
    /// the program's).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// Runs `program args` inside the namespace; returns stdout.
    pub fn exec(&self, program: &str, args: &[&str]) -> io::Result<String> {
        run(self.command(program).args(args))
    }

    /// Sets a sysctl (`key=value`) inside the namespace.
    pub fn sysctl(&self, kv: &str) -> io::Result<()> {
        self.exec("sysctl", &["-qw", kv]).map(drop)
    }

    /// Turns IPv6 off on every interface of the namespace, present and to
    /// come, so that router solicitations and MLD reports do not reach the
    /// switch under test: the tests see only their own frames.
    pub fn disable_ipv6(&self) -> io::Result<()> {
        self.sysctl("net.ipv6.conf.all.disable_ipv6=1")?;
        self.sysctl("net.ipv6.conf.default.disable_ipv6=1")
    }

    /// Moves the calling thread into the namespace. Sockets it creates
    /// from then on live there.
    pub fn enter(&self) -> io::Result<()> {
        let f = File::open(format!("/run/netns/{}", self.name))?;
        // SAFETY: setns on an open namespace fd; it changes only this
        // thread's network namespace.
        if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Runs `f` on a thread inside the namespace and waits for it.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        thread::scope(|s| {
            s.spawn(|| {
                self.enter().expect("entering the namespace");
                f()
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    /// Starts `f` on a new thread inside the namespace.
    pub fn spawn<T: Send + 'static>(
        &self,
        name: impl Into<String>,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> JoinHandle<T> {
        let ns = self.name.clone();
        thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                Netns { name: ns.clone() }.enter_and_forget();
                f()
            })
            .expect("spawning a thread")
    }

    /// Enters without deleting the namespace when this handle drops.
    fn enter_and_forget(self) {
        self.enter().expect("entering the namespace");
        std::mem::forget(self);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Deletes the namespaces named `<prefix><pid>-...` whose process `pid`
/// is gone: what a killed test run left behind (its guards never ran).
pub fn sweep_stale(prefix: &str) {
    let Ok(out) = run(Command::new("ip").args(["netns", "list"])) else {
        return;
    };
    for line in out.lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        let Some(rest) = name.strip_prefix(prefix) else {
            continue;
        };
        let pid: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("ip").args(["netns", "del", name]).output();
        }
    }
}

/// A veth pair: `a_if` in `a`, `b_if` in `b`, both up, no addresses.
pub fn veth(a: &Netns, a_if: &str, b: &Netns, b_if: &str) -> io::Result<()> {
    a.ip(&format!(
        "link add {a_if} type veth peer name {b_if} netns {}",
        b.name()
    ))?;
    a.ip(&format!("link set dev {a_if} up"))?;
    b.ip(&format!("link set dev {b_if} up"))?;
    Ok(())
}

/// Turns off transmit checksum offload, segmentation (TSO, GSO) and GRO on
/// `iface`: a veth otherwise hands a packet socket TCP segments with a
/// partial checksum, or bigger than the MTU, that a software switch then
/// forwards as they are. Needs `ethtool`.
pub fn offloads_off(ns: &Netns, iface: &str) -> io::Result<()> {
    ns.exec(
        "ethtool",
        &[
            "-K", iface, "tx", "off", "tso", "off", "gso", "off", "gro", "off",
        ],
    )
    .map(drop)
}
