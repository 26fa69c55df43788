//! The controller's configuration file (TOML, parsed with serde).
//!
//! [`Config::load`] reads the file, the P4Info and device config of every
//! switch, checks everything (including a trial run of the allocator), and
//! either returns a complete [`Config`] or a [`ConfigError`] listing every
//! problem as `file:line:column: field: message`. Nothing is applied before
//! the whole file is accepted.
//!
//! ```toml
//! [controller]
//! tunnel_src = "10.0.0.1"          # source of every outer header (required)
//! election_id = 1                  # P4Runtime election id (default 1)
//! daisy_timeout = "240s"           # how long a moved bucket keeps prev_dip
//! admin_listen = "127.0.0.1:9090"  # HTTP/JSON admin API (default)
//! metrics_listen = "127.0.0.1:9091" # Prometheus text (default)
//!
//! [[vips]]
//! address = "192.0.2.10"
//! ports = ["tcp/80", "tcp/443"]    # service ports ("80" means tcp/80)
//! buckets = 65536                  # must match the P4Info's bucket key width
//!
//! [[vips.servers]]
//! dip = "10.1.0.1"
//! port = 9001                      # per-server port (optional)
//! weight = 2                       # default 1
//! health = { port = 80, interval = "2s", fall = 3, rise = 2 }  # optional
//!
//! [[switches]]
//! name = "mux-a"
//! address = "127.0.0.1:9559"
//! target = "softswitch"            # softswitch | bmv2 | tofino
//! device_id = 1
//! # p4info = "p4/v1model/p4info.txt"   (default for softswitch: built in)
//! # device_config = "build/beamer.json" (bmv2 JSON; tofino: package file)
//!
//! [[next_hops]]
//! name = "core"
//! port = 1
//! mac = "02:00:00:00:00:fe"
//! src_mac = "02:00:00:00:00:01"
//!
//! [[routes]]
//! prefix = "10.1.0.0/16"
//! next_hop = "core"
//! ```
//!
//! `daisy_timeout` defaults to
//! [`beamer_pipeline::daisy::DEFAULT_DAISY_TIMEOUT_SECS`],
//! the value above.

mod duration;
pub mod locate;

pub use duration::Dur;
pub use locate::FieldPath;

use crate::alloc::{AllocConfig, AllocError, Allocator, Change, ServerSpec, ServicePort, VipSpec};
use crate::health::HealthConfig;
use beamer_pipeline::daisy::DEFAULT_DAISY_TIMEOUT_SECS;
use beamer_pipeline::entries::{RouteAction, RouteKey};
use beamer_pipeline::p4rt::p4runtime_proto::p4::config::v1::P4Info;
use beamer_pipeline::p4rt::p4runtime_proto::prost::Message;
use beamer_pipeline::p4rt::{Pipeline, check_p4info, expected_p4info};
use beamer_pipeline::params::MAX_BUCKETS;
use beamer_pipeline::wire::MacAddr;
use beamer_pipeline::wire::ipv4::{PROTO_TCP, PROTO_UDP};
use beamer_pipeline::{PipelineParams, Target};
use locate::{line_col, path_at, span_of};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use toml::de::DeTable;

// ---- the file as written ----------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    controller: RawController,
    #[serde(default)]
    vips: Vec<RawVip>,
    #[serde(default)]
    switches: Vec<RawSwitch>,
    #[serde(default)]
    next_hops: Vec<RawNextHop>,
    #[serde(default)]
    routes: Vec<RawRoute>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawController {
    tunnel_src: Ipv4Addr,
    #[serde(default = "default_election_id")]
    election_id: u64,
    #[serde(default)]
    election_id_high: u64,
    daisy_timeout: Option<Dur>,
    admin_listen: Option<SocketAddr>,
    metrics_listen: Option<SocketAddr>,
    write_batch: Option<usize>,
    resync_interval: Option<Dur>,
    probe_interval: Option<Dur>,
    connect_timeout: Option<Dur>,
    rpc_timeout: Option<Dur>,
    backoff_initial: Option<Dur>,
    backoff_max: Option<Dur>,
    startup_timeout: Option<Dur>,
}

fn default_election_id() -> u64 {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVip {
    id: Option<u16>,
    address: Ipv4Addr,
    ports: Vec<String>,
    buckets: Option<u32>,
    #[serde(default)]
    servers: Vec<RawServer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    dip: Ipv4Addr,
    port: Option<u16>,
    #[serde(default = "default_weight")]
    weight: u32,
    #[serde(default)]
    state: ServerAdmin,
    health: Option<RawHealth>,
}

fn default_weight() -> u32 {
    1
}

/// How the operator wants a server: serving, or draining.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerAdmin {
    /// Gets its weighted share (unless its health check says down).
    #[default]
    Active,
    /// Gets no buckets; its connections finish.
    Draining,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHealth {
    port: Option<u16>,
    interval: Option<Dur>,
    timeout: Option<Dur>,
    fall: Option<u32>,
    rise: Option<u32>,
    hold_down: Option<Dur>,
    hold_down_max: Option<Dur>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSwitch {
    name: Option<String>,
    address: String,
    target: TargetKind,
    #[serde(default = "default_device_id")]
    device_id: u64,
    p4info: Option<PathBuf>,
    device_config: Option<PathBuf>,
}

fn default_device_id() -> u64 {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNextHop {
    name: String,
    port: u16,
    mac: String,
    src_mac: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    prefix: String,
    next_hop: String,
}

// ---- the checked configuration ---------------------------------------------

/// The kind of P4Runtime target a switch is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// `beamer switch`: no device config.
    Softswitch,
    /// bmv2 `simple_switch_grpc`: the bmv2 JSON as device config.
    Bmv2,
    /// Tofino through Stratum: a serialized `BfPipelineConfig`.
    Tofino,
}

impl TargetKind {
    /// Lower-case name, as in the file.
    pub const fn name(self) -> &'static str {
        match self {
            TargetKind::Softswitch => "softswitch",
            TargetKind::Bmv2 => "bmv2",
            TargetKind::Tofino => "tofino",
        }
    }

    /// The P4 architecture of the program the target runs.
    pub const fn arch(self) -> Target {
        match self {
            TargetKind::Softswitch | TargetKind::Bmv2 => Target::V1model,
            TargetKind::Tofino => Target::Tna,
        }
    }
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Controller-wide settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ControllerSettings {
    /// Source address of every outer header.
    pub tunnel_src: Ipv4Addr,
    /// P4Runtime election id (the same for every switch).
    pub election_id: u128,
    /// Seconds a moved bucket keeps its previous DIP (0: no chaining;
    /// default [`DEFAULT_DAISY_TIMEOUT_SECS`]).
    pub daisy_timeout: u32,
    /// Where the admin API listens.
    pub admin_listen: SocketAddr,
    /// Where the Prometheus metrics are served.
    pub metrics_listen: SocketAddr,
    /// Most updates in one P4Runtime `WriteRequest`.
    pub write_batch: usize,
    /// How often an in-sync switch is read back and reconciled anyway
    /// (`None`: never).
    pub resync_interval: Option<Duration>,
    /// How often an in-sync switch is asked whether its pipeline is still
    /// there.
    pub probe_interval: Duration,
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Time allowed for one unary RPC (a write of one batch, a read).
    pub rpc_timeout: Duration,
    /// First retry delay after a failure.
    pub backoff_initial: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
    /// How long to wait at start for switches to report their tables, so
    /// that a controller restart moves no bucket.
    pub startup_timeout: Duration,
}

/// One server as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Address, per-server port and weight.
    pub spec: ServerSpec,
    /// Active or draining.
    pub admin: ServerAdmin,
    /// Health check, if any.
    pub health: Option<HealthConfig>,
}

/// One VIP as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct VipConfig {
    /// ID, address and service ports.
    pub spec: VipSpec,
    /// Its servers.
    pub servers: Vec<ServerConfig>,
}

/// What is pushed to a switch with its P4Info.
#[derive(Clone, PartialEq)]
pub struct DeviceConfig {
    /// The bytes of `p4_device_config` (empty for the software switch).
    pub bytes: Arc<Vec<u8>>,
    /// Where they came from, for logs.
    pub source: String,
}

impl fmt::Debug for DeviceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DeviceConfig({} bytes from {})",
            self.bytes.len(),
            self.source
        )
    }
}

/// One switch as configured, with its pipeline loaded and checked.
#[derive(Debug, Clone)]
pub struct SwitchSpec {
    /// Name, for logs, status and metrics.
    pub name: String,
    /// `host:port` of its P4Runtime server.
    pub address: String,
    /// Target kind.
    pub target: TargetKind,
    /// P4Runtime device id.
    pub device_id: u64,
    /// The P4Info pushed to it.
    pub p4info: Arc<P4Info>,
    /// What the P4Info describes: sizes and the IDs the compiler chose.
    pub pipeline: Pipeline,
    /// Its device config.
    pub device_config: DeviceConfig,
    /// Where the P4Info came from, for logs.
    pub p4info_source: String,
}

/// A complete, checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    /// Controller-wide settings.
    pub controller: ControllerSettings,
    /// VIPs with their servers, by VIP ID.
    pub vips: Vec<VipConfig>,
    /// Switches.
    pub switches: Vec<SwitchSpec>,
    /// Route table entries (the same on every switch).
    pub routes: Vec<(RouteKey, RouteAction)>,
    /// The allocator's settings, from the switches' pipelines.
    pub alloc: AllocConfig,
}

// ---- errors -----------------------------------------------------------------

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line (0 when the file could not be read).
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The field, e.g. `vips[0].servers[2].dip`.
    pub field: FieldPath,
    /// What is wrong.
    pub message: String,
}

/// A config file that was not accepted: every problem found, each with
/// file, line and field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// The problems, in file order.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            if p.line == 0 {
                write!(f, "{}: {}", self.file.display(), p.message)?;
            } else {
                write!(
                    f,
                    "{}:{}:{}: {}: {}",
                    self.file.display(),
                    p.line,
                    p.column,
                    p.field,
                    p.message
                )?;
            }
        }
        Ok(())
    }
}

/// Problems found while checking, with paths; turned into lines at the end.
struct Problems<'a> {
    text: &'a str,
    doc: &'a toml::Spanned<DeTable<'a>>,
    list: Vec<Problem>,
}

impl Problems<'_> {
    fn add(&mut self, field: FieldPath, message: impl Into<String>) {
        let span = span_of(self.doc, &field);
        let (line, column) = line_col(self.text, span.start);
        self.list.push(Problem {
            line,
            column,
            field,
            message: message.into(),
        });
    }
}

// ---- loading ------------------------------------------------------------------

impl Config {
    /// Reads and checks the config file at `path`, and loads the files it
    /// names (relative to its directory).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            problems: vec![Problem {
                line: 0,
                column: 0,
                field: FieldPath::root(),
                message: format!("cannot read the config file: {e}"),
            }],
        })?;
        let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        Self::parse(&text, path, &base)
    }

    /// Checks config `text` as if read from `file`, resolving relative
    /// paths against `base`.
    pub fn parse(text: &str, file: &Path, base: &Path) -> Result<Config, ConfigError> {
        let err = |problems| ConfigError {
            file: file.to_path_buf(),
            problems,
        };
        let doc = DeTable::parse(text).map_err(|e| {
            let (line, column) = line_col(text, e.span().map_or(0, |s| s.start));
            err(vec![Problem {
                line,
                column,
                field: FieldPath::root(),
                message: format!("TOML syntax: {}", e.message()),
            }])
        })?;
        let raw = toml::from_str::<RawConfig>(text).map_err(|e| {
            let at = e.span().map_or(0, |s| s.start);
            let (line, column) = line_col(text, at);
            err(vec![Problem {
                line,
                column,
                field: path_at(&doc, at),
                message: e.message().to_string(),
            }])
        })?;
        let mut p = Problems {
            text,
            doc: &doc,
            list: Vec::new(),
        };
        let config = check(raw, base, &mut p);
        let mut problems = p.list;
        problems.sort_by_key(|p| (p.line, p.column));
        match config {
            Some(c) if problems.is_empty() => Ok(c.with_path(file)),
            _ => Err(err(problems)),
        }
    }

    fn with_path(mut self, file: &Path) -> Self {
        self.path = file.to_path_buf();
        self
    }

    /// The allocator changes that create the configured VIPs and servers:
    /// `AddVip`, `AddServer`, then `DrainServer` for draining ones.
    pub fn initial_changes(&self) -> Vec<Change> {
        let mut changes = Vec::new();
        for v in &self.vips {
            changes.push(Change::AddVip(v.spec.clone()));
            for s in &v.servers {
                changes.push(Change::AddServer {
                    vip_id: v.spec.vip_id,
                    server: s.spec,
                });
            }
        }
        for v in &self.vips {
            for s in &v.servers {
                if s.admin == ServerAdmin::Draining {
                    changes.push(Change::DrainServer {
                        vip_id: v.spec.vip_id,
                        dip: s.spec.dip,
                    });
                }
            }
        }
        changes
    }
}

fn parse_port(s: &str) -> Result<ServicePort, String> {
    let (proto, port) = match s.split_once('/') {
        Some((p, n)) => (p, n),
        None => ("tcp", s),
    };
    let protocol = match proto {
        "tcp" => PROTO_TCP,
        "udp" => PROTO_UDP,
        _ => return Err(format!("{s:?}: protocol must be tcp or udp")),
    };
    let port: u16 =
        port.parse().ok().filter(|&p| p != 0).ok_or_else(|| {
            format!("{s:?}: expected \"tcp/PORT\" or \"udp/PORT\", PORT 1 to 65535")
        })?;
    Ok(ServicePort { protocol, port })
}

fn dur_or(d: Option<Dur>, default: Duration) -> Duration {
    d.map_or(default, |d| d.0)
}

fn check(raw: RawConfig, base: &Path, p: &mut Problems<'_>) -> Option<Config> {
    let root = FieldPath::root();
    let c = &raw.controller;
    let cp = root.key("controller");
    let daisy = dur_or(
        c.daisy_timeout,
        Duration::from_secs(DEFAULT_DAISY_TIMEOUT_SECS.into()),
    );
    if daisy.subsec_millis() != 0 || daisy.as_secs() > u64::from(u32::MAX) {
        p.add(
            cp.key("daisy_timeout"),
            "must be a whole number of seconds (the option's change time has 1 s resolution)",
        );
    }
    if c.tunnel_src.is_unspecified() || c.tunnel_src.is_multicast() || c.tunnel_src.is_broadcast() {
        p.add(cp.key("tunnel_src"), "must be a unicast address");
    }
    let write_batch = c.write_batch.unwrap_or(8192);
    if write_batch == 0 {
        p.add(cp.key("write_batch"), "must be at least 1");
    }
    let election_id = (u128::from(c.election_id_high) << 64) | u128::from(c.election_id);
    if election_id == 0 {
        p.add(
            cp.key("election_id"),
            "0 is not a valid election id (P4Runtime reserves it)",
        );
    }
    let backoff_initial = dur_or(c.backoff_initial, Duration::from_millis(100));
    let backoff_max = dur_or(c.backoff_max, Duration::from_secs(10));
    if backoff_initial.is_zero() || backoff_max < backoff_initial {
        p.add(
            cp.key("backoff_max"),
            "backoff_initial must be above 0 and backoff_max at least backoff_initial",
        );
    }
    let settings = ControllerSettings {
        tunnel_src: c.tunnel_src,
        election_id,
        daisy_timeout: daisy.as_secs().min(u64::from(u32::MAX)) as u32,
        admin_listen: c
            .admin_listen
            .unwrap_or_else(|| "127.0.0.1:9090".parse().expect("valid")),
        metrics_listen: c
            .metrics_listen
            .unwrap_or_else(|| "127.0.0.1:9091".parse().expect("valid")),
        write_batch: write_batch.max(1),
        resync_interval: Some(dur_or(c.resync_interval, Duration::from_secs(300)))
            .filter(|d| !d.is_zero()),
        probe_interval: dur_or(c.probe_interval, Duration::from_secs(1))
            .max(Duration::from_millis(10)),
        connect_timeout: dur_or(c.connect_timeout, Duration::from_secs(2)),
        rpc_timeout: dur_or(c.rpc_timeout, Duration::from_secs(30)),
        backoff_initial,
        backoff_max,
        startup_timeout: dur_or(c.startup_timeout, Duration::from_secs(3)),
    };

    // VIPs and servers.
    let mut vips = Vec::new();
    let mut vip_ids: HashMap<u16, usize> = HashMap::new();
    let mut bucket_counts: Vec<(usize, u32)> = Vec::new();
    if raw.vips.is_empty() {
        p.add(root.key("vips"), "declare at least one VIP ([[vips]])");
    }
    for (i, v) in raw.vips.iter().enumerate() {
        let vp = root.key("vips").index(i);
        let vip_id = match v.id {
            Some(id) => id,
            None => match u16::try_from(i) {
                Ok(id) => id,
                Err(_) => {
                    p.add(vp.key("id"), "too many VIPs");
                    continue;
                }
            },
        };
        if let Some(first) = vip_ids.insert(vip_id, i) {
            p.add(
                vp.key("id"),
                format!("VIP id {vip_id} is used by vips[{first}] already"),
            );
        }
        let mut service_ports = Vec::new();
        if v.ports.is_empty() {
            p.add(vp.key("ports"), "declare at least one service port");
        }
        for (j, s) in v.ports.iter().enumerate() {
            match parse_port(s) {
                Ok(sp) if service_ports.contains(&sp) => {
                    p.add(vp.key("ports").index(j), format!("{sp} is listed twice"))
                }
                Ok(sp) => service_ports.push(sp),
                Err(e) => p.add(vp.key("ports").index(j), e),
            }
        }
        if let Some(b) = v.buckets {
            if !b.is_power_of_two() || !(2..=MAX_BUCKETS).contains(&b) {
                p.add(
                    vp.key("buckets"),
                    format!("{b} is not a power of two from 2 to {MAX_BUCKETS}"),
                );
            } else {
                bucket_counts.push((i, b));
            }
        }
        let first_tcp = service_ports
            .iter()
            .find(|s| s.protocol == PROTO_TCP)
            .map(|s| s.port);
        let mut servers = Vec::new();
        let mut dips = HashSet::new();
        if v.servers.is_empty() {
            p.add(
                vp.key("servers"),
                "a VIP needs at least one server ([[vips.servers]])",
            );
        }
        for (j, s) in v.servers.iter().enumerate() {
            let sp = vp.key("servers").index(j);
            if !dips.insert(s.dip) {
                p.add(sp.key("dip"), format!("server {} is listed twice", s.dip));
            }
            if s.weight == 0 {
                p.add(
                    sp.key("weight"),
                    "must be at least 1 (use state = \"draining\" to give a server no buckets)",
                );
            }
            if s.port == Some(0) {
                p.add(sp.key("port"), "port 0 is not a valid per-server port");
            }
            let health = s.health.as_ref().and_then(|h| {
                let hp = sp.key("health");
                let port = match h.port.or(first_tcp) {
                    Some(0) => {
                        p.add(hp.key("port"), "port 0 cannot be probed");
                        return None;
                    }
                    Some(port) => port,
                    None => {
                        p.add(
                            hp.key("port"),
                            "the VIP has no TCP service port to probe: give one",
                        );
                        return None;
                    }
                };
                let d = HealthConfig::new(port);
                let cfg = HealthConfig {
                    port,
                    interval: dur_or(h.interval, d.interval),
                    timeout: dur_or(h.timeout, d.timeout),
                    fall: h.fall.unwrap_or(d.fall),
                    rise: h.rise.unwrap_or(d.rise),
                    hold_down: dur_or(h.hold_down, d.hold_down),
                    hold_down_max: dur_or(h.hold_down_max, d.hold_down_max),
                };
                if cfg.interval.is_zero() {
                    p.add(hp.key("interval"), "must be above 0");
                }
                if cfg.timeout.is_zero() {
                    p.add(hp.key("timeout"), "must be above 0");
                }
                if cfg.fall == 0 {
                    p.add(hp.key("fall"), "must be at least 1");
                }
                if cfg.rise == 0 {
                    p.add(hp.key("rise"), "must be at least 1");
                }
                if cfg.hold_down_max < cfg.hold_down {
                    p.add(hp.key("hold_down_max"), "must be at least hold_down");
                }
                Some(cfg)
            });
            servers.push(ServerConfig {
                spec: ServerSpec {
                    dip: s.dip,
                    port: s.port,
                    weight: s.weight,
                },
                admin: s.state,
                health,
            });
        }
        vips.push(VipConfig {
            spec: VipSpec {
                vip_id,
                addr: v.address,
                service_ports,
            },
            servers,
        });
    }

    // Next hops and routes.
    let mut hops: HashMap<&str, RouteAction> = HashMap::new();
    for (i, h) in raw.next_hops.iter().enumerate() {
        let hp = root.key("next_hops").index(i);
        let dst_mac = h.mac.parse::<MacAddr>();
        let src_mac = h.src_mac.parse::<MacAddr>();
        if dst_mac.is_err() {
            p.add(hp.key("mac"), format!("{:?} is not a MAC address", h.mac));
        }
        if src_mac.is_err() {
            p.add(
                hp.key("src_mac"),
                format!("{:?} is not a MAC address", h.src_mac),
            );
        }
        if h.port >= 1 << beamer_pipeline::schema::SWITCH_PORT_BITS {
            p.add(
                hp.key("port"),
                format!(
                    "port {} does not fit the pipeline's {}-bit port",
                    h.port,
                    beamer_pipeline::schema::SWITCH_PORT_BITS
                ),
            );
        }
        if let (Ok(dst_mac), Ok(src_mac)) = (dst_mac, src_mac) {
            let a = RouteAction {
                port: h.port,
                dst_mac,
                src_mac,
            };
            if hops.insert(h.name.as_str(), a).is_some() {
                p.add(
                    hp.key("name"),
                    format!("next hop {:?} is declared twice", h.name),
                );
            }
        }
    }
    let mut routes: BTreeMap<RouteKey, RouteAction> = BTreeMap::new();
    for (i, r) in raw.routes.iter().enumerate() {
        let rp = root.key("routes").index(i);
        let key = match r.prefix.parse::<RouteKey>() {
            Ok(k) => k,
            Err(e) => {
                p.add(rp.key("prefix"), e.to_string());
                continue;
            }
        };
        let Some(a) = hops.get(r.next_hop.as_str()) else {
            let known: Vec<_> = raw.next_hops.iter().map(|h| h.name.as_str()).collect();
            p.add(
                rp.key("next_hop"),
                format!("no next hop named {:?} (declared: {known:?})", r.next_hop),
            );
            continue;
        };
        if routes.insert(key, *a).is_some() {
            p.add(rp.key("prefix"), format!("{key} is routed twice"));
        }
    }

    // Switches and their pipelines.
    let mut switches = Vec::new();
    let mut names = HashSet::new();
    if raw.switches.is_empty() {
        p.add(
            root.key("switches"),
            "declare at least one switch ([[switches]])",
        );
    }
    let wanted_buckets = bucket_counts.first().map(|&(_, b)| b);
    for (i, s) in raw.switches.iter().enumerate() {
        let sp = root.key("switches").index(i);
        let name = s.name.clone().unwrap_or_else(|| format!("switch{i}"));
        if !names.insert(name.clone()) {
            p.add(
                sp.key("name"),
                format!("switch name {name:?} is used twice"),
            );
        }
        if s.address.parse::<SocketAddr>().is_err()
            && s.address
                .rsplit_once(':')
                .is_none_or(|(h, port)| h.is_empty() || port.parse::<u16>().is_err())
        {
            p.add(
                sp.key("address"),
                format!("{:?} is not HOST:PORT", s.address),
            );
        }
        let (p4info, p4info_source) = match &s.p4info {
            Some(path) => {
                let full = base.join(path);
                match load_p4info(&full) {
                    Ok(i) => (i, full.display().to_string()),
                    Err(e) => {
                        p.add(sp.key("p4info"), e);
                        continue;
                    }
                }
            }
            None if s.target == TargetKind::Softswitch => {
                // The software switch takes its sizes from the P4Info it is
                // given: build the generator's P4Info for this file.
                let params = PipelineParams {
                    buckets: wanted_buckets.unwrap_or(PipelineParams::default().buckets),
                    max_vips: PipelineParams::default().max_vips.max(
                        vips.iter()
                            .map(|v| u32::from(v.spec.vip_id) + 1)
                            .max()
                            .unwrap_or(1),
                    ),
                    ..PipelineParams::default()
                };
                (
                    expected_p4info(&params, Target::V1model),
                    format!("built in ({} buckets)", params.buckets),
                )
            }
            None => {
                p.add(
                    sp.key("p4info"),
                    format!(
                        "target {} needs the P4Info its program was compiled with",
                        s.target
                    ),
                );
                continue;
            }
        };
        let pipeline = match check_p4info(&p4info) {
            Ok(pl) => pl,
            Err(e) => {
                p.add(sp.key("p4info"), e.to_string());
                continue;
            }
        };
        if pipeline.target != s.target.arch() {
            p.add(
                sp.key("p4info"),
                format!(
                    "describes a {} program, but target {} runs {}",
                    pipeline.target,
                    s.target,
                    s.target.arch()
                ),
            );
        }
        let device_config = match load_device_config(s, base) {
            Ok(d) => d,
            Err(e) => {
                p.add(sp.key("device_config"), e);
                continue;
            }
        };
        switches.push(SwitchSpec {
            name,
            address: s.address.clone(),
            target: s.target,
            device_id: s.device_id,
            p4info: Arc::new(p4info),
            pipeline,
            device_config,
            p4info_source,
        });
    }

    // Every switch and every VIP must agree on the bucket count.
    let first = switches.first()?;
    let k = first.pipeline.params.bucket_bits();
    for (i, s) in switches.iter().enumerate() {
        let b = s.pipeline.params.bucket_bits();
        if b != k {
            p.add(
                root.key("switches").index(i).key("p4info"),
                format!(
                    "has {} buckets per VIP but switch {:?} has {}: every switch must run the same bucket count",
                    1u64 << b,
                    first.name,
                    1u64 << k
                ),
            );
        }
    }
    for &(i, b) in &bucket_counts {
        if b != 1 << k {
            p.add(
                root.key("vips").index(i).key("buckets"),
                format!(
                    "{b} buckets, but the P4Info of switch {:?} ({}) has a {k}-bit bucket key: {} buckets",
                    first.name,
                    first.p4info_source,
                    1u64 << k
                ),
            );
        }
    }
    let min = |f: fn(&PipelineParams) -> u32| {
        switches
            .iter()
            .map(|s| f(&s.pipeline.params))
            .min()
            .unwrap_or(0)
    };
    let max_routes = min(|p| p.routes);
    if routes.len() > max_routes as usize {
        p.add(
            root.key("routes"),
            format!(
                "{} routes, but the smallest switch's route table holds {max_routes}",
                routes.len()
            ),
        );
    }
    let alloc = AllocConfig {
        bucket_bits: k,
        max_vips: min(|p| p.max_vips),
        max_vip_entries: min(|p| p.max_vip_entries),
        daisy_timeout: settings.daisy_timeout,
        first_generation: 0,
    };

    let config = Config {
        path: PathBuf::new(),
        controller: settings,
        vips,
        switches,
        routes: routes.into_iter().collect(),
        alloc,
    };
    if !p.list.is_empty() {
        return None;
    }
    // A trial run of the allocator: whatever it would refuse is a config
    // error, reported at the field it concerns.
    let changes = config.initial_changes();
    let trial = Allocator::new(config.alloc).and_then(|mut a| a.commit(&changes, 1).map(|_| ()));
    if let Err(e) = trial {
        let field = alloc_error_field(&config, &e);
        p.add(field, e.to_string());
        return None;
    }
    Some(config)
}

/// The field an allocator error is about, as near as it can be told.
fn alloc_error_field(config: &Config, e: &AllocError) -> FieldPath {
    let root = FieldPath::root();
    let vip_index = |id: u16| config.vips.iter().position(|v| v.spec.vip_id == id);
    let server_path = |id: u16, dip: Ipv4Addr| {
        vip_index(id).map(|i| {
            let p = root.key("vips").index(i);
            match config.vips[i]
                .servers
                .iter()
                .position(|s| s.spec.dip == dip)
            {
                Some(j) => p.key("servers").index(j),
                None => p,
            }
        })
    };
    let path = match *e {
        AllocError::VipIdOutOfRange { vip_id, .. }
        | AllocError::InvalidVipAddr { vip_id, .. }
        | AllocError::NoActiveServer { vip_id, .. } => {
            vip_index(vip_id).map(|i| root.key("vips").index(i))
        }
        AllocError::InvalidDip { vip_id, dip }
        | AllocError::DuplicateServer { vip_id, dip }
        | AllocError::ZeroWeight { vip_id, dip } => server_path(vip_id, dip),
        AllocError::PortConflict { second, .. } => match second {
            crate::alloc::PortUser::Service { vip_id } => {
                vip_index(vip_id).map(|i| root.key("vips").index(i).key("ports"))
            }
            crate::alloc::PortUser::Server { vip_id, dip } => {
                server_path(vip_id, dip).map(|p| p.key("port"))
            }
        },
        _ => None,
    };
    path.unwrap_or_else(|| root.key("vips"))
}

/// Reads a P4Info: binary protobuf, or text format (p4c's `.txt`).
pub fn load_p4info(path: &Path) -> Result<P4Info, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let is_text = path
        .extension()
        .is_some_and(|e| e == "txt" || e == "pb.txt");
    if !is_text
        && let Ok(i) = P4Info::decode(bytes.as_slice())
        && !i.tables.is_empty()
    {
        return Ok(i);
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        format!(
            "{} is neither a binary P4Info nor P4Info text",
            path.display()
        )
    })?;
    beamer_pipeline::p4rt::p4runtime_proto::p4info_from_text(&text)
        .map_err(|e| format!("{}: not a P4Info: {e}", path.display()))
}

fn load_device_config(s: &RawSwitch, base: &Path) -> Result<DeviceConfig, String> {
    let Some(rel) = &s.device_config else {
        return match s.target {
            TargetKind::Softswitch => Ok(DeviceConfig {
                bytes: Arc::new(Vec::new()),
                source: "none".into(),
            }),
            TargetKind::Bmv2 => {
                Err("target bmv2 needs the bmv2 JSON (p4c --target bmv2 output)".into())
            }
            TargetKind::Tofino => Err(
                "target tofino needs a Stratum device config (beamer package-tofino output)".into(),
            ),
        };
    };
    let path = base.join(rel);
    let source = path.display().to_string();
    match s.target {
        TargetKind::Softswitch => {
            Err("the software switch takes no device config: remove this field".into())
        }
        TargetKind::Bmv2 => {
            let bytes = std::fs::read(&path).map_err(|e| format!("cannot read {source}: {e}"))?;
            if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
                return Err(format!("{source} is not a bmv2 JSON file"));
            }
            Ok(DeviceConfig {
                bytes: Arc::new(bytes),
                source,
            })
        }
        TargetKind::Tofino => {
            // A file from `beamer package-tofino`, or a bf-p4c output
            // directory packed on the fly.
            let bytes =
                beamer_p4gen::tofino::load_device_config(&path).map_err(|e| e.to_string())?;
            Ok(DeviceConfig {
                bytes: Arc::new(bytes),
                source,
            })
        }
    }
}

#[cfg(test)]
mod tests;
