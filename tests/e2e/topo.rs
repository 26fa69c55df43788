//! The testbed: namespaces, links, addresses, static neighbours, the
//! agents, the services, the switch and the controller; all of it torn
//! down on drop, in reverse order, also when a step fails.

use super::services::Echo;
use super::*;
use beamer_controller::api;
use beamer_testbed::{Netns, Proc, offloads_off, veth};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The switch's P4Runtime address, inside the mux namespace.
pub const P4RT_ADDR: &str = "127.0.0.1:9559";
/// The controller's admin API, inside the mux namespace.
pub const ADMIN_ADDR: &str = "127.0.0.1:9090";
/// The P4Runtime device id.
pub const DEVICE_ID: u64 = 1;
/// Namespaces are named `e2e-<pid>-<tag>-<role>`.
pub const NS_PREFIX: &str = "e2e-";

/// Why the testbed is not up.
#[derive(Debug)]
pub enum Failure {
    /// A tool the variant needs is missing: what to print instead.
    Skip(String),
    /// Something went wrong.
    Error(String),
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::Error(e.to_string())
    }
}

/// What bmv2 runs: the compiled program and its P4Info.
#[derive(Debug, Clone)]
pub struct Bmv2Files {
    /// p4c's P4Info (text).
    pub p4info: PathBuf,
    /// p4c's bmv2 JSON.
    pub json: PathBuf,
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The bmv2 scripts' "tool missing" exit status.
const EX_UNAVAILABLE: i32 = 69;

/// Generates the v1model program for this testbed's bucket count and
/// compiles it with `bmv2/compile.sh`. Skips with one line when p4c or
/// simple_switch_grpc is missing.
pub fn prepare_bmv2(bin: &Path, dir: &Path) -> Result<Bmv2Files, Failure> {
    let tool = |env: &str, default: &str| std::env::var(env).unwrap_or_else(|_| default.into());
    let (p4c, ssg) = (
        tool("P4C", "p4c"),
        tool("SIMPLE_SWITCH_GRPC", "simple_switch_grpc"),
    );
    let absent: Vec<&str> = [p4c.as_str(), ssg.as_str()]
        .into_iter()
        .filter(|t| beamer_testbed::which(t).is_none() && !Path::new(t).is_file())
        .collect();
    if !absent.is_empty() {
        return Err(Failure::Skip(format!(
            "{} not on PATH; bmv2/README.md says how to install p4c and bmv2",
            absent.join(" and ")
        )));
    }
    let p4 = dir.join("p4");
    beamer_testbed::run(
        Command::new(bin)
            .args([
                "gen",
                "--target",
                "v1model",
                "--buckets",
                &(1u32 << BUCKET_BITS).to_string(),
                "--out",
            ])
            .arg(&p4),
    )?;
    let out = dir.join("bmv2-build");
    let r = Command::new(repo().join("bmv2/compile.sh"))
        .arg("--p4")
        .arg(p4.join(beamer_p4gen::PROGRAM_FILE))
        .arg("--out")
        .arg(&out)
        .output()?;
    let text = String::from_utf8_lossy(&r.stderr).trim().to_string();
    match r.status.code() {
        Some(0) => {}
        Some(EX_UNAVAILABLE) => return Err(Failure::Skip(text)),
        _ => return Err(Failure::Error(format!("bmv2/compile.sh: {text}"))),
    }
    let stem = beamer_p4gen::PROGRAM_FILE.trim_end_matches(".p4");
    Ok(Bmv2Files {
        p4info: out.join("p4info.txt"),
        json: out.join(format!("{stem}.json")),
    })
}

/// A simple_switch_grpc started by `bmv2/start.sh`, stopped by
/// `bmv2/stop.sh` on drop.
struct Bmv2Run {
    mux: String,
    run_dir: PathBuf,
}

impl Drop for Bmv2Run {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "exec", &self.mux])
            .arg(repo().join("bmv2/stop.sh"))
            .arg("--run-dir")
            .arg(&self.run_dir)
            .arg("--quiet")
            .output();
    }
}

/// Everything the test runs on. Fields drop in order: the controller and
/// the switch first, then the agents and services, the namespaces last.
pub struct Testbed {
    /// Which mux.
    pub kind: SwitchKind,
    /// Whether the agents chain (`--no-chain` otherwise).
    pub chaining: bool,
    /// Configs and logs.
    pub dir: PathBuf,
    bin: PathBuf,
    controller: Option<Proc>,
    switch: Option<Proc>,
    bmv2: Option<Bmv2Run>,
    hosts: BTreeMap<u8, Proc>,
    echo: Vec<Echo>,
    /// The client.
    pub client: Netns,
    /// The mux: the switch, its P4Runtime server, the controller.
    pub mux: Netns,
    /// The server network: a bridge joining the switch's port 2 and the
    /// servers (chained packets go server to server here).
    pub fabric: Netns,
    /// Servers 1 to 4 (index n - 1).
    pub servers: Vec<Netns>,
}

impl Testbed {
    /// Builds the testbed and waits until the switch holds the controller's
    /// first generation. `tag` keeps the names of parallel or leftover
    /// testbeds apart.
    pub fn up(
        kind: SwitchKind,
        chaining: bool,
        tag: &str,
        bin: &Path,
        dir: &Path,
        bmv2: Option<&Bmv2Files>,
    ) -> Result<Testbed, Failure> {
        let name = |s: &str| format!("{NS_PREFIX}{}-{tag}-{s}", std::process::id());
        let client = Netns::new(name("cl"))?;
        let mux = Netns::new(name("mx"))?;
        let fabric = Netns::new(name("fb"))?;
        let servers = (1..=SERVERS)
            .map(|n| Netns::new(name(&format!("s{n}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let mut tb = Testbed {
            kind,
            chaining,
            dir: dir.to_path_buf(),
            bin: bin.to_path_buf(),
            controller: None,
            switch: None,
            bmv2: None,
            hosts: BTreeMap::new(),
            echo: Vec::new(),
            client,
            mux,
            fabric,
            servers,
        };
        tb.wire()?;
        for n in 1..=SERVERS {
            tb.start_host(n)?;
            tb.echo.push(Echo::start(tb.server(n), dip(n))?);
        }
        tb.start_switch(bmv2)?;
        tb.start_controller(bmv2)?;
        tb.wait_in_sync(Duration::from_secs(60))?;
        Ok(tb)
    }

    /// Server `n`'s namespace.
    pub fn server(&self, n: u8) -> &Netns {
        &self.servers[usize::from(n - 1)]
    }

    fn all(&self) -> impl Iterator<Item = &Netns> {
        [&self.client, &self.mux, &self.fabric]
            .into_iter()
            .chain(&self.servers)
    }

    /// Links, addresses, routes and static neighbours.
    fn wire(&self) -> Result<(), Failure> {
        for ns in self.all() {
            ns.disable_ipv6()?;
        }
        let (c, m, f) = (&self.client, &self.mux, &self.fabric);
        veth(m, "p1", c, "eth0")?;
        veth(m, "p2", f, "swp")?;
        // No multicast snooping: the bridge's IGMP reports carry the
        // Router Alert option, and the mux would count them as ip_options,
        // which the test keeps for chained packets crossing the mux.
        f.ip("link add br0 type bridge mcast_snooping 0")?;
        f.ip("link set br0 up")?;
        f.ip("link set swp master br0")?;
        for n in 1..=SERVERS {
            let port = format!("s{n}");
            veth(f, &port, self.server(n), "eth0")?;
            f.ip(&format!("link set {port} master br0"))?;
        }
        m.ip(&format!("link set p1 address {}", mac::PORT1))?;
        m.ip(&format!("link set p2 address {}", mac::PORT2))?;
        c.ip(&format!("link set eth0 address {}", mac::CLIENT))?;
        m.ip(&format!("link set p1 mtu {CLIENT_MTU}"))?;
        c.ip(&format!("link set eth0 mtu {CLIENT_MTU}"))?;
        for (ns, ifc) in [(m, "p1"), (m, "p2"), (c, "eth0"), (f, "swp")] {
            offloads_off(ns, ifc)?;
        }
        // The client: two addresses, the switch as gateway.
        c.ip(&format!("addr add {CLIENT_TCP}/24 dev eth0"))?;
        c.ip(&format!("addr add {CLIENT_MPTCP}/24 dev eth0"))?;
        c.ip(&format!(
            "neigh add {CLIENT_GW} lladdr {} dev eth0 nud permanent",
            mac::PORT1
        ))?;
        c.ip(&format!("route add default via {CLIENT_GW}"))?;
        // Accept one address a server announces, and a subflow to it.
        c.ip("mptcp limits set add_addr_accepted 1 subflows 2")?;
        for n in 1..=SERVERS {
            let s = self.server(n);
            offloads_off(f, &format!("s{n}"))?;
            offloads_off(s, "eth0")?;
            s.ip(&format!("link set eth0 address {}", mac::server(n)))?;
            s.ip(&format!("addr add {}/24 dev eth0", dip(n)))?;
            s.ip(&format!(
                "neigh add {SERVER_GW} lladdr {} dev eth0 nud permanent",
                mac::PORT2
            ))?;
            s.ip(&format!("route add default via {SERVER_GW}"))?;
            for o in (1..=SERVERS).filter(|&o| o != n) {
                s.ip(&format!(
                    "neigh add {} lladdr {} dev eth0 nud permanent",
                    dip(o),
                    mac::server(o)
                ))?;
            }
        }
        Ok(())
    }

    fn beamer(&self, ns: &Netns) -> Command {
        ns.command(&self.bin)
    }

    fn start_host(&mut self, n: u8) -> Result<(), Failure> {
        let mut cmd = self.beamer(self.server(n));
        cmd.args(["host", "--dip", &dip(n).to_string()])
            .args(["--vip", &VIP.to_string()])
            .args(["--port", &server_port(n).to_string()])
            .args(["--tunnel-src", &TUNNEL_SRC.to_string()])
            .args(["--bucket-bits", &BUCKET_BITS.to_string()])
            .args(["--daisy-timeout", &DAISY_TIMEOUT.to_string()])
            .args(["--tun", "beamer0", "--mptcp-subflows", "2"]);
        if !self.chaining {
            cmd.arg("--no-chain");
        }
        let mut p = Proc::spawn(&format!("host-s{n}"), cmd, &self.dir)?;
        if !p.wait_for("beamer host: dip", Duration::from_secs(15)) {
            return Err(Failure::Error(format!(
                "beamer host on server {n} did not start:\n{}",
                p.log_tail(20)
            )));
        }
        self.hosts.insert(n, p);
        Ok(())
    }

    /// Stops server `n`'s agent (it prints its counters as it goes) and
    /// returns its log.
    pub fn stop_host(&mut self, n: u8) -> String {
        match self.hosts.remove(&n) {
            Some(mut p) => {
                p.stop(Duration::from_secs(5));
                p.log()
            }
            None => String::new(),
        }
    }

    fn start_switch(&mut self, bmv2: Option<&Bmv2Files>) -> Result<(), Failure> {
        match self.kind {
            SwitchKind::Softswitch => {
                let mut cmd = self.beamer(&self.mux);
                cmd.args(["switch", "--port", "1=p1", "--port", "2=p2"])
                    .args(["--p4rt", P4RT_ADDR]);
                let mut p = Proc::spawn("switch", cmd, &self.dir)?;
                if !p.wait_for("P4Runtime on", Duration::from_secs(15)) {
                    return Err(Failure::Error(format!(
                        "beamer switch did not start:\n{}",
                        p.log_tail(20)
                    )));
                }
                self.switch = Some(p);
            }
            SwitchKind::Bmv2 => {
                if bmv2.is_none() {
                    return Err(Failure::Error("bmv2 without a compiled program".into()));
                }
                let run_dir = self.dir.join("bmv2-run");
                let r = self
                    .mux
                    .command(repo().join("bmv2/start.sh"))
                    .args(["--grpc", P4RT_ADDR, "--device-id", &DEVICE_ID.to_string()])
                    .args(["--iface", "1@p1", "--iface", "2@p2", "--log-level", "warn"])
                    .arg("--run-dir")
                    .arg(&run_dir)
                    .output()?;
                let text = String::from_utf8_lossy(&r.stderr).trim().to_string();
                match r.status.code() {
                    Some(0) => {}
                    Some(EX_UNAVAILABLE) => return Err(Failure::Skip(text)),
                    _ => return Err(Failure::Error(format!("bmv2/start.sh: {text}"))),
                }
                self.bmv2 = Some(Bmv2Run {
                    mux: self.mux.name().to_string(),
                    run_dir,
                });
            }
        }
        Ok(())
    }

    /// The controller's configuration: the VIP with servers 1 to 3, the
    /// switch, and routes to the client and to every server.
    fn controller_config(&self, bmv2: Option<&Bmv2Files>) -> String {
        let mut c = String::new();
        let _ = writeln!(
            c,
            "[controller]\ntunnel_src = \"{TUNNEL_SRC}\"\nelection_id = 10\n\
             daisy_timeout = \"{DAISY_TIMEOUT}s\"\nadmin_listen = \"{ADMIN_ADDR}\"\n\
             metrics_listen = \"127.0.0.1:9091\"\nstartup_timeout = \"1s\"\n"
        );
        let _ = writeln!(
            c,
            "[[vips]]\naddress = \"{VIP}\"\nports = [\"tcp/{TCP_PORT}\", \"tcp/{MPTCP_PORT}\"]\n\
             buckets = {}\n",
            1u32 << BUCKET_BITS
        );
        for n in 1..=INITIAL_SERVERS {
            let _ = writeln!(
                c,
                "[[vips.servers]]\ndip = \"{}\"\nport = {}\nweight = 1\n",
                dip(n),
                server_port(n)
            );
        }
        let _ = writeln!(
            c,
            "[[switches]]\nname = \"mux\"\naddress = \"{P4RT_ADDR}\"\ntarget = \"{}\"\ndevice_id = {DEVICE_ID}",
            self.kind.name()
        );
        if let Some(b) = bmv2 {
            let _ = writeln!(
                c,
                "p4info = \"{}\"\ndevice_config = \"{}\"",
                b.p4info.display(),
                b.json.display()
            );
        }
        let _ = writeln!(
            c,
            "\n[[next_hops]]\nname = \"client\"\nport = 1\nmac = \"{}\"\nsrc_mac = \"{}\"\n",
            mac::CLIENT,
            mac::PORT1
        );
        let _ = writeln!(
            c,
            "[[routes]]\nprefix = \"10.88.0.0/24\"\nnext_hop = \"client\"\n"
        );
        for n in 1..=SERVERS {
            let _ = writeln!(
                c,
                "[[next_hops]]\nname = \"s{n}\"\nport = 2\nmac = \"{}\"\nsrc_mac = \"{}\"\n\n\
                 [[routes]]\nprefix = \"{}/32\"\nnext_hop = \"s{n}\"\n",
                mac::server(n),
                mac::PORT2,
                dip(n)
            );
        }
        c
    }

    fn start_controller(&mut self, bmv2: Option<&Bmv2Files>) -> Result<(), Failure> {
        let path = self.dir.join("controller.toml");
        std::fs::write(&path, self.controller_config(bmv2))?;
        let mut cmd = self.beamer(&self.mux);
        cmd.arg("controller").arg("--config").arg(&path);
        self.controller = Some(Proc::spawn("controller", cmd, &self.dir)?);
        Ok(())
    }

    /// Runs `beamer ctl --admin ADMIN <args>` in the mux namespace.
    pub fn ctl(&self, args: &[&str]) -> Result<String, String> {
        beamer_testbed::run(
            self.beamer(&self.mux)
                .args(["ctl", "--admin", ADMIN_ADDR])
                .args(args),
        )
        .map_err(|e| e.to_string())
    }

    /// The controller's status.
    pub fn status(&self) -> Result<api::Status, String> {
        let out = self.ctl(&["--json", "status"])?;
        serde_json::from_str(&out).map_err(|e| format!("status: {e}: {out}"))
    }

    /// A server change through `beamer ctl server ... --wait`: returns the
    /// controller's answer once the switch holds the new generation.
    pub fn change(&self, args: &[&str]) -> Result<api::CommandResult, String> {
        let mut a = vec!["--json", "server"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["--wait", "30"]);
        let out = self.ctl(&a)?;
        serde_json::Deserializer::from_str(&out)
            .into_iter::<api::CommandResult>()
            .next()
            .ok_or_else(|| format!("no answer: {out}"))?
            .map_err(|e| format!("{e}: {out}"))
    }

    fn wait_in_sync(&mut self, timeout: Duration) -> Result<(), Failure> {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        while Instant::now() < deadline {
            if let Some(p) = self.controller.as_mut() {
                if p.exited().is_some() {
                    return Err(Failure::Error(format!(
                        "the controller exited:\n{}",
                        p.log_tail(30)
                    )));
                }
            }
            match self.status() {
                Ok(s) if s.generation >= 1 && s.all_in_sync_at(s.generation) => return Ok(()),
                Ok(s) => last = format!("{s:?}"),
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(Failure::Error(format!(
            "the switch did not get the controller's tables within {timeout:?}: {last}\n\
             controller:\n{}\nswitch:\n{}",
            self.controller
                .as_ref()
                .map(|p| p.log_tail(30))
                .unwrap_or_default(),
            self.switch
                .as_ref()
                .map(|p| p.log_tail(30))
                .unwrap_or_default()
        )))
    }

    /// The last lines of every process's log, for a failure message.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        let procs = self
            .controller
            .iter()
            .chain(self.switch.iter())
            .chain(self.hosts.values());
        for p in procs {
            let _ = writeln!(s, "--- {} ---\n{}", p.name(), p.log_tail(15));
        }
        // simple_switch_grpc's output and log, where bmv2/start.sh put them.
        if let Some(b) = &self.bmv2 {
            for f in ["stdout.log", "bmv2.log.txt"] {
                let path = b.run_dir.join(f);
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(15)..].join("\n");
                let _ = writeln!(s, "--- bmv2 {} ---\n{tail}", path.display());
            }
        }
        s
    }
}
