//! A readable TOML file that fills the tables, for pcap runs and tests.
//!
//! ```toml
//! # Sizes of the pipeline (optional; the generator's defaults otherwise).
//! [pipeline]
//! buckets = 65536          # per vip_id, a power of two
//! max_vips = 2             # vip_ids with buckets
//! max_vip_entries = 1024
//! routes = 1024
//!
//! # The config table: outer source address and mux generation.
//! [config]
//! tunnel_src = "10.0.0.1"
//! generation = 1           # optional, 0 by default
//!
//! [[vip]]
//! addr = "192.0.2.10"
//! vip_id = 0               # required with service ports or buckets
//! service_ports = ["tcp/80", "udp/443"]
//! per_server_ports = [     # TCP ports owned by one server each
//!   { port = 40001, dip = "10.1.0.1" },
//! ]
//!
//! [vip.buckets]            # the buckets of this vip_id
//! round_robin = ["10.1.0.1", "10.1.0.2"]   # bucket b -> round_robin[b % n]
//! overrides = [            # explicit entries, after round_robin
//!   { bucket = 7, dip = "10.1.0.2", prev_dip = "10.1.0.1", change_time = 1700000000 },
//! ]
//!
//! [[route]]
//! prefix = "10.1.0.0/24"
//! port = 1
//! dst_mac = "02:00:00:00:01:01"
//! src_mac = "02:00:00:00:00:01"
//! ```
//!
//! VIPs that share a `vip_id` share its buckets; exactly one of them gives
//! `buckets`. Every error names the field it is about, e.g.
//! `vip[1].buckets.overrides[0].dip: invalid IPv4 address "10.1.0"`.

use crate::switch::{Switch, UpdateError};
use beamer_pipeline::entries::{
    BucketAction, BucketKey, Entry, RouteAction, RouteKey, SwitchConfig, Update, VipAction, VipKey,
};
use beamer_pipeline::wire::MacAddr;
use beamer_pipeline::wire::ipv4::{PROTO_TCP, PROTO_UDP};
use beamer_pipeline::{PipelineParams, Target, schema};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::path::Path;

/// A table file could not be read or is invalid.
#[derive(Debug, thiserror::Error)]
pub enum TableFileError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The text is not valid TOML, or a field has the wrong type or name
    /// (the message gives the line, column and key).
    #[error("{0}")]
    Syntax(String),
    /// A field has a value the tables cannot take.
    #[error("{field}: {message}")]
    Field {
        /// Path of the field, e.g. `vip[0].service_ports[1]`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The switch rejected an entry (a bug in this loader if it happens).
    #[error("entry {index}: {error}")]
    Rejected {
        /// Index of the update.
        index: usize,
        /// The switch's error.
        error: UpdateError,
    },
}

fn field_err(field: impl Into<String>, message: impl Into<String>) -> TableFileError {
    TableFileError::Field {
        field: field.into(),
        message: message.into(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    pipeline: Option<RawPipeline>,
    config: RawConfig,
    #[serde(default)]
    vip: Vec<RawVip>,
    #[serde(default)]
    route: Vec<RawRoute>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPipeline {
    buckets: Option<u32>,
    max_vips: Option<u32>,
    max_vip_entries: Option<u32>,
    routes: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    tunnel_src: String,
    #[serde(default)]
    generation: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVip {
    addr: String,
    vip_id: Option<u16>,
    #[serde(default)]
    service_ports: Vec<String>,
    #[serde(default)]
    per_server_ports: Vec<RawPerServer>,
    buckets: Option<RawBuckets>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPerServer {
    port: u16,
    dip: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBuckets {
    #[serde(default)]
    round_robin: Vec<String>,
    #[serde(default)]
    overrides: Vec<RawBucket>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBucket {
    bucket: u32,
    dip: String,
    prev_dip: Option<String>,
    change_time: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    prefix: String,
    port: u16,
    dst_mac: String,
    src_mac: String,
}

/// The contents of a table file: the pipeline sizes and the updates that
/// fill the tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableFile {
    /// Sizes of the pipeline.
    pub params: PipelineParams,
    /// The config, then every entry, as INSERTs.
    pub updates: Vec<Update>,
}

fn ip(field: impl FnOnce() -> String, text: &str) -> Result<Ipv4Addr, TableFileError> {
    text.parse()
        .map_err(|_| field_err(field(), format!("invalid IPv4 address {text:?}")))
}

fn mac(field: impl FnOnce() -> String, text: &str) -> Result<MacAddr, TableFileError> {
    text.parse().map_err(|e| field_err(field(), format!("{e}")))
}

/// Parses `tcp/80` or `udp/53` into (protocol, port).
fn service_port(text: &str) -> Option<(u8, u16)> {
    let (proto, port) = text.split_once('/')?;
    let proto = match proto {
        "tcp" => PROTO_TCP,
        "udp" => PROTO_UDP,
        _ => return None,
    };
    Some((proto, port.parse().ok()?))
}

impl TableFile {
    /// Reads and checks the file at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<TableFile, TableFileError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| TableFileError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Checks the TOML text of a table file.
    pub fn parse(text: &str) -> Result<TableFile, TableFileError> {
        let raw: RawFile =
            toml::from_str(text).map_err(|e| TableFileError::Syntax(e.to_string()))?;
        let params = Self::params(raw.pipeline.as_ref())?;
        let mut updates = vec![Update::SetConfig(SwitchConfig {
            tunnel_src: ip(|| "config.tunnel_src".into(), &raw.config.tunnel_src)?,
            generation: raw.config.generation,
        })];

        // VIP entries, with the VIP that defined each key, for duplicates.
        let mut vip_keys: HashMap<VipKey, String> = HashMap::new();
        let mut add_vip = |updates: &mut Vec<Update>,
                           field: String,
                           key: VipKey,
                           action: VipAction|
         -> Result<(), TableFileError> {
            if let Some(first) = vip_keys.get(&key) {
                return Err(field_err(
                    field,
                    format!(
                        "{}/{} on {} is already defined at {first}",
                        if key.protocol == PROTO_TCP {
                            "tcp"
                        } else {
                            "udp"
                        },
                        key.port,
                        key.dst
                    ),
                ));
            }
            vip_keys.insert(key, field);
            updates.push(Update::Insert(Entry::Vip(key, action)));
            Ok(())
        };
        // vip_id -> the VIP that gave its buckets.
        let mut bucket_owner: BTreeMap<u16, String> = BTreeMap::new();
        let mut service_ids: BTreeMap<u16, String> = BTreeMap::new();

        for (i, v) in raw.vip.iter().enumerate() {
            let at = format!("vip[{i}]");
            let addr = ip(|| format!("{at}.addr"), &v.addr)?;
            let needs_id = !v.service_ports.is_empty() || v.buckets.is_some();
            let vip_id = match (v.vip_id, needs_id) {
                (Some(id), _) => Some(id),
                (None, false) => None,
                (None, true) => {
                    return Err(field_err(
                        format!("{at}.vip_id"),
                        "required when service_ports or buckets are given",
                    ));
                }
            };
            for (j, sp) in v.service_ports.iter().enumerate() {
                let field = format!("{at}.service_ports[{j}]");
                let (protocol, port) = service_port(sp).ok_or_else(|| {
                    field_err(field.clone(), format!("{sp:?} is not tcp/PORT or udp/PORT"))
                })?;
                let vip_id = vip_id.unwrap_or_default();
                service_ids.entry(vip_id).or_insert_with(|| at.clone());
                let key = VipKey {
                    dst: addr,
                    protocol,
                    port,
                };
                add_vip(&mut updates, field, key, VipAction::ToBuckets { vip_id })?;
            }
            for (j, ps) in v.per_server_ports.iter().enumerate() {
                let field = format!("{at}.per_server_ports[{j}]");
                let dip = ip(|| format!("{field}.dip"), &ps.dip)?;
                let key = VipKey {
                    dst: addr,
                    protocol: PROTO_TCP,
                    port: ps.port,
                };
                add_vip(
                    &mut updates,
                    format!("{field}.port"),
                    key,
                    VipAction::ToServer { dip },
                )?;
            }
            if let (Some(b), Some(vip_id)) = (&v.buckets, vip_id) {
                let field = format!("{at}.buckets");
                if let Some(first) = bucket_owner.get(&vip_id) {
                    return Err(field_err(
                        field,
                        format!("the buckets of vip_id {vip_id} are already given at {first}"),
                    ));
                }
                bucket_owner.insert(vip_id, at.clone());
                Self::buckets(&field, vip_id, b, &params, &mut updates)?;
            }
        }
        for (vip_id, at) in &service_ids {
            if !bucket_owner.contains_key(vip_id) {
                return Err(field_err(
                    format!("{at}.buckets"),
                    format!("vip_id {vip_id} has service ports but no VIP gives its buckets"),
                ));
            }
        }
        let ids: BTreeSet<u16> = bucket_owner.keys().copied().collect();
        if ids.len() > params.max_vips as usize {
            return Err(field_err(
                "pipeline.max_vips",
                format!(
                    "{} vip_ids have buckets, more than max_vips = {}",
                    ids.len(),
                    params.max_vips
                ),
            ));
        }
        if vip_keys.len() > params.max_vip_entries as usize {
            return Err(field_err(
                "pipeline.max_vip_entries",
                format!(
                    "the file has {} VIP entries, more than max_vip_entries = {}",
                    vip_keys.len(),
                    params.max_vip_entries
                ),
            ));
        }

        let mut prefixes: HashMap<RouteKey, usize> = HashMap::new();
        for (i, r) in raw.route.iter().enumerate() {
            let at = format!("route[{i}]");
            let key: RouteKey = r
                .prefix
                .parse()
                .map_err(|e| field_err(format!("{at}.prefix"), format!("{e}")))?;
            if let Some(first) = prefixes.insert(key, i) {
                return Err(field_err(
                    format!("{at}.prefix"),
                    format!("{key} is already routed at route[{first}]"),
                ));
            }
            if u32::from(r.port) >> schema::SWITCH_PORT_BITS != 0 {
                return Err(field_err(
                    format!("{at}.port"),
                    format!(
                        "{} does not fit in {} bits",
                        r.port,
                        schema::SWITCH_PORT_BITS
                    ),
                ));
            }
            let action = RouteAction {
                port: r.port,
                dst_mac: mac(|| format!("{at}.dst_mac"), &r.dst_mac)?,
                src_mac: mac(|| format!("{at}.src_mac"), &r.src_mac)?,
            };
            updates.push(Update::Insert(Entry::Route(key, action)));
        }
        if prefixes.len() > params.routes as usize {
            return Err(field_err(
                "pipeline.routes",
                format!(
                    "the file has {} routes, more than routes = {}",
                    prefixes.len(),
                    params.routes
                ),
            ));
        }
        Ok(TableFile { params, updates })
    }

    fn params(raw: Option<&RawPipeline>) -> Result<PipelineParams, TableFileError> {
        let d = PipelineParams::default();
        let p = match raw {
            None => d,
            Some(r) => PipelineParams {
                buckets: r.buckets.unwrap_or(d.buckets),
                max_vips: r.max_vips.unwrap_or(d.max_vips),
                max_vip_entries: r.max_vip_entries.unwrap_or(d.max_vip_entries),
                routes: r.routes.unwrap_or(d.routes),
            },
        };
        p.validate(Target::V1model)
            .map_err(|e| field_err("pipeline", e.to_string()))?;
        Ok(p)
    }

    fn buckets(
        at: &str,
        vip_id: u16,
        raw: &RawBuckets,
        params: &PipelineParams,
        updates: &mut Vec<Update>,
    ) -> Result<(), TableFileError> {
        if raw.round_robin.is_empty() && raw.overrides.is_empty() {
            return Err(field_err(at, "give round_robin, overrides, or both"));
        }
        let mut entries: BTreeMap<u32, BucketAction> = BTreeMap::new();
        let dips: Vec<Ipv4Addr> = raw
            .round_robin
            .iter()
            .enumerate()
            .map(|(j, d)| ip(|| format!("{at}.round_robin[{j}]"), d))
            .collect::<Result<_, _>>()?;
        if !dips.is_empty() {
            for b in 0..params.buckets {
                let action = BucketAction {
                    dip: dips[b as usize % dips.len()],
                    prev_dip: Ipv4Addr::UNSPECIFIED,
                    change_time: 0,
                };
                entries.insert(b, action);
            }
        }
        let mut seen = BTreeSet::new();
        for (j, o) in raw.overrides.iter().enumerate() {
            let f = format!("{at}.overrides[{j}]");
            if o.bucket >= params.buckets {
                return Err(field_err(
                    format!("{f}.bucket"),
                    format!(
                        "{} is not below the bucket count {}",
                        o.bucket, params.buckets
                    ),
                ));
            }
            if !seen.insert(o.bucket) {
                return Err(field_err(
                    format!("{f}.bucket"),
                    format!("bucket {} is overridden twice", o.bucket),
                ));
            }
            let action = BucketAction {
                dip: ip(|| format!("{f}.dip"), &o.dip)?,
                prev_dip: match &o.prev_dip {
                    Some(p) => ip(|| format!("{f}.prev_dip"), p)?,
                    None => Ipv4Addr::UNSPECIFIED,
                },
                change_time: o.change_time.unwrap_or(0),
            };
            entries.insert(o.bucket, action);
        }
        updates.extend(
            entries
                .into_iter()
                .map(|(bucket, a)| Update::Insert(Entry::Bucket(BucketKey { vip_id, bucket }, a))),
        );
        Ok(())
    }

    /// Applies the file's updates to `switch`, whose sizes must be able to
    /// hold them.
    pub fn apply_to(&self, switch: &Switch) -> Result<(), TableFileError> {
        switch
            .apply_all(&self.updates)
            .map_err(|(index, error)| TableFileError::Rejected { index, error })
    }

    /// A new switch sized by the file and filled from it.
    pub fn build(&self) -> Result<Switch, TableFileError> {
        let switch = Switch::new(self.params).map_err(|e| field_err("pipeline", e.to_string()))?;
        self.apply_to(&switch)?;
        Ok(switch)
    }
}
