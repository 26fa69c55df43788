//! Configuration the agent applies to the network namespace it runs in,
//! and takes back when it stops: the TUN device's link and addresses,
//! two sysctls, and the MPTCP endpoints that make the server announce its
//! per-server port.
//!
//! Done through the `ip` command of iproute2 (and /proc/sys), which keeps
//! the exact commands visible in logs and easy to reproduce by hand:
//! ```text
//! ip link set dev beamer0 up
//! ip addr add <VIP>/32 dev beamer0
//! sysctl net.ipv4.conf.beamer0.rp_filter=2
//! sysctl net.mptcp.allow_join_initial_addr_port=0
//! ip mptcp endpoint add <VIP> port <P> signal
//! ```

use std::fs;
use std::io;
use std::net::Ipv4Addr;
use std::process::Command;

/// Runs `ip` with `args`; its stdout, or an error carrying the command and
/// its stderr.
pub fn ip(args: &[&str]) -> io::Result<String> {
    let out = Command::new("ip").args(args).output().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "running `ip {}` (is iproute2 installed?): {e}",
                args.join(" ")
            ),
        )
    })?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The path of a sysctl under /proc/sys, `a.b.c` to `a/b/c`.
fn sysctl_path(name: &str) -> String {
    format!("/proc/sys/{}", name.replace('.', "/"))
}

/// Reads a sysctl of the current network namespace.
pub fn read_sysctl(name: &str) -> io::Result<String> {
    fs::read_to_string(sysctl_path(name))
        .map(|s| s.trim().to_owned())
        .map_err(|e| io::Error::new(e.kind(), format!("reading sysctl {name}: {e}")))
}

/// Writes a sysctl of the current network namespace.
pub fn write_sysctl(name: &str, value: &str) -> io::Result<()> {
    fs::write(sysctl_path(name), value)
        .map_err(|e| io::Error::new(e.kind(), format!("writing sysctl {name}={value}: {e}")))
}

#[derive(Debug)]
enum Undo {
    Sysctl { name: String, old: String },
    MptcpEndpoint { id: u32 },
    MptcpSubflows { old: String },
}

/// What was changed, undone in reverse order on drop.
#[derive(Debug, Default)]
pub struct NetSetup {
    undo: Vec<Undo>,
    /// The commands run, for the log.
    pub log: Vec<String>,
}

impl NetSetup {
    /// Nothing changed yet.
    pub fn new() -> Self {
        NetSetup::default()
    }

    /// Runs a command that changes something, and logs it.
    fn run(&mut self, args: &[&str]) -> io::Result<String> {
        self.log.push(format!("ip {}", args.join(" ")));
        ip(args)
    }

    /// Sets a sysctl, remembering the old value.
    pub fn sysctl(&mut self, name: &str, value: &str) -> io::Result<()> {
        let old = read_sysctl(name)?;
        self.log.push(format!("sysctl {name}={value}"));
        if old != value {
            write_sysctl(name, value)?;
            self.undo.push(Undo::Sysctl {
                name: name.to_owned(),
                old,
            });
        }
        Ok(())
    }

    /// Brings the TUN device up with the VIPs on it, and lets it receive
    /// packets whose source is routed elsewhere (direct server return:
    /// clients are reached through the normal uplink, not the TUN).
    pub fn tun_up(&mut self, dev: &str, vips: &[Ipv4Addr]) -> io::Result<()> {
        self.run(&["link", "set", "dev", dev, "up"])?;
        for v in vips {
            self.run(&["addr", "add", &format!("{v}/32"), "dev", dev])?;
        }
        // Loose reverse-path filtering: strict would drop every client
        // packet, since the route back to a client is not via the TUN. The
        // effective value is the larger of `all` and the device's.
        self.sysctl(&format!("net.ipv4.conf.{dev}.rp_filter"), "2")?;
        // Keep IPv6 router solicitations out of the device's queue.
        let _ = self.sysctl(&format!("net.ipv6.conf.{dev}.disable_ipv6"), "1");
        Ok(())
    }

    /// Makes the server announce ADD_ADDR(VIP, port) on its MPTCP
    /// connections, refuse further subflows to the initial address and port
    /// (the MP_CAPABLE "C" flag), and accept up to `subflows` subflows per
    /// connection if given.
    pub fn mptcp(&mut self, vips: &[Ipv4Addr], port: u16, subflows: Option<u8>) -> io::Result<()> {
        if read_sysctl("net.mptcp.enabled")? != "1" {
            return Err(io::Error::other(
                "MPTCP is disabled (net.mptcp.enabled=0); enable it or pass --no-mptcp",
            ));
        }
        self.sysctl("net.mptcp.allow_join_initial_addr_port", "0")?;
        if let Some(n) = subflows {
            let old = ip(&["mptcp", "limits", "show"])?;
            let old = field_after(&old, "subflows").unwrap_or("2").to_owned();
            self.run(&["mptcp", "limits", "set", "subflows", &n.to_string()])?;
            self.undo.push(Undo::MptcpSubflows { old });
        }
        let port_s = port.to_string();
        for v in vips {
            let v_s = v.to_string();
            self.run(&["mptcp", "endpoint", "add", &v_s, "port", &port_s, "signal"])?;
            let shown = ip(&["mptcp", "endpoint", "show"])?;
            let id = shown
                .lines()
                .find(|l| {
                    let w: Vec<&str> = l.split_whitespace().collect();
                    w.first() == Some(&v_s.as_str()) && field_after(l, "port") == Some(&port_s)
                })
                .and_then(|l| field_after(l, "id"))
                .and_then(|id| id.parse().ok())
                .ok_or_else(|| {
                    io::Error::other(format!("added MPTCP endpoint {v} port {port} but `ip mptcp endpoint show` does not list it"))
                })?;
            self.undo.push(Undo::MptcpEndpoint { id });
        }
        Ok(())
    }
}

/// The word after `key` in a line of `ip` output.
fn field_after<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let mut w = line.split_whitespace();
    while let Some(x) = w.next() {
        if x == key {
            return w.next();
        }
    }
    None
}

impl Drop for NetSetup {
    fn drop(&mut self) {
        while let Some(u) = self.undo.pop() {
            // Best effort: a failure here leaves a setting behind, which the
            // next start overwrites; nothing else can be done in drop.
            let _ = match u {
                Undo::Sysctl { name, old } => write_sysctl(&name, &old).map(drop),
                Undo::MptcpEndpoint { id } => {
                    ip(&["mptcp", "endpoint", "delete", "id", &id.to_string()]).map(drop)
                }
                Undo::MptcpSubflows { old } => {
                    ip(&["mptcp", "limits", "set", "subflows", &old]).map(drop)
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_ip_output() {
        let l = "10.0.0.100 port 20001 id 3 signal ";
        assert_eq!(field_after(l, "port"), Some("20001"));
        assert_eq!(field_after(l, "id"), Some("3"));
        assert_eq!(
            field_after("add_addr_accepted 0 subflows 2", "subflows"),
            Some("2")
        );
        assert_eq!(field_after(l, "dev"), None);
        assert_eq!(
            sysctl_path("net.ipv4.conf.beamer0.rp_filter"),
            "/proc/sys/net/ipv4/conf/beamer0/rp_filter"
        );
    }
}
