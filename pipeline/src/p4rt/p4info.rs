//! The P4Info of this pipeline: building it, and checking a pushed one.

use crate::params::{MAX_BUCKETS, MIN_BUCKETS, PipelineParams, Target};
use crate::schema::{self, CounterUnit, MatchKind, Scope, TableSize, Width};
use p4runtime_proto::p4::config::v1 as cfg;
use std::fmt;

/// The pipeline as a P4Info describes it: its sizes, and the IDs that a
/// compiler may choose itself (bf-p4c ignores `@id` on direct counters).
/// Tables, actions, match fields and parameters always have the IDs of
/// [`crate::schema`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pipeline {
    /// Sizes, with the bucket bits taken from the bucket key's bitwidth.
    pub params: PipelineParams,
    /// The architecture the P4Info is for (from `pkg_info.arch`, else from
    /// the naming of its objects).
    pub target: Target,
    /// ID of the drop counter.
    pub drops_counter_id: u32,
    /// ID of the VIP table's direct counter.
    pub vip_counter_id: u32,
    /// ID of the bucket table's direct counter.
    pub bucket_counter_id: u32,
}

impl Pipeline {
    /// The pipeline of `params` with every ID as [`crate::schema`] pins it.
    pub fn new(params: PipelineParams, target: Target) -> Self {
        Pipeline {
            params,
            target,
            drops_counter_id: schema::DROPS.id,
            vip_counter_id: schema::VIP_COUNTER.id,
            bucket_counter_id: schema::BUCKET_COUNTER.id,
        }
    }
}

/// A P4Info that does not describe this pipeline: every difference found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct P4InfoMismatch {
    /// One line per difference, e.g. "missing action 0x01000004 (forward)".
    pub differences: Vec<String>,
}

impl fmt::Display for P4InfoMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the P4Info does not describe the Beamer pipeline: {}",
            self.differences.join("; ")
        )
    }
}

/// The last dotted component of a P4Info name: "vip" for
/// "BeamerIngress.vip" (p4c) and "pipe.BeamerIngress.vip" (bf-p4c).
fn short(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

fn match_type(kind: MatchKind) -> cfg::match_field::MatchType {
    match kind {
        MatchKind::Exact => cfg::match_field::MatchType::Exact,
        MatchKind::Lpm => cfg::match_field::MatchType::Lpm,
    }
}

fn scope(s: Scope) -> cfg::action_ref::Scope {
    match s {
        Scope::TableAndDefault => cfg::action_ref::Scope::TableAndDefault,
        Scope::TableOnly => cfg::action_ref::Scope::TableOnly,
        Scope::DefaultOnly => cfg::action_ref::Scope::DefaultOnly,
    }
}

fn unit(u: CounterUnit) -> cfg::counter_spec::Unit {
    match u {
        CounterUnit::Both => cfg::counter_spec::Unit::Both,
    }
}

fn preamble(id: u32, short: &str, target: Target) -> Option<cfg::Preamble> {
    Some(cfg::Preamble {
        id,
        name: target.p4info_name(short),
        alias: short.into(),
        ..Default::default()
    })
}

/// The P4Info of this pipeline with `params` on `target`, as p4c writes it
/// for the generated program: ingress objects named after the ingress
/// control (and the pipe, on TNA), every ID from [`crate::schema`].
/// [`check_p4info`] accepts it and gives back `params`.
pub fn expected_p4info(params: &PipelineParams, target: Target) -> cfg::P4Info {
    let tables = schema::TABLES
        .iter()
        .map(|t| cfg::Table {
            preamble: preamble(t.id, t.name, target),
            match_fields: t
                .keys
                .iter()
                .map(|k| cfg::MatchField {
                    id: k.id,
                    name: k.name.into(),
                    bitwidth: k.width.bits(params) as i32,
                    r#match: Some(cfg::match_field::Match::MatchType(match_type(k.kind) as i32)),
                    ..Default::default()
                })
                .collect(),
            action_refs: t
                .actions
                .iter()
                .map(|a| cfg::ActionRef {
                    id: a.action.id,
                    scope: scope(a.scope) as i32,
                    annotations: match a.scope {
                        Scope::TableAndDefault => vec![],
                        Scope::TableOnly => vec!["@tableonly".into()],
                        Scope::DefaultOnly => vec!["@defaultonly".into()],
                    },
                    ..Default::default()
                })
                .collect(),
            const_default_action_id: if t.const_default_action {
                t.default_action.id
            } else {
                0
            },
            // p4c writes the program's default action with its arguments,
            // here all zero, padded to each parameter's width in bytes.
            initial_default_action: Some(cfg::TableActionCall {
                action_id: t.default_action.id,
                arguments: t
                    .default_action
                    .params
                    .iter()
                    .map(|p| cfg::table_action_call::Argument {
                        param_id: p.id,
                        value: vec![0; p.width.bits(params).div_ceil(8) as usize],
                    })
                    .collect(),
            }),
            direct_resource_ids: t.direct_counter.iter().map(|c| c.id).collect(),
            size: params.table_size(t.size) as i64,
            ..Default::default()
        })
        .collect();
    let actions = schema::ACTIONS
        .iter()
        .map(|a| cfg::Action {
            preamble: preamble(a.id, a.name, target),
            params: a
                .params
                .iter()
                .map(|p| cfg::action::Param {
                    id: p.id,
                    name: p.name.into(),
                    bitwidth: p.width.bits(params) as i32,
                    ..Default::default()
                })
                .collect(),
        })
        .collect();
    let counters = schema::COUNTERS
        .iter()
        .map(|c| cfg::Counter {
            preamble: preamble(c.id, c.name, target),
            spec: Some(cfg::CounterSpec {
                unit: unit(c.unit) as i32,
            }),
            size: c.size as i64,
            ..Default::default()
        })
        .collect();
    let direct_counters = schema::DIRECT_COUNTERS
        .iter()
        .map(|(c, t)| cfg::DirectCounter {
            preamble: preamble(c.id, c.name, target),
            spec: Some(cfg::CounterSpec {
                unit: unit(c.unit) as i32,
            }),
            direct_table_id: t.id,
        })
        .collect();
    cfg::P4Info {
        pkg_info: Some(cfg::PkgInfo {
            name: schema::PROGRAM_NAME.into(),
            arch: target.name().into(),
            ..Default::default()
        }),
        tables,
        actions,
        counters,
        direct_counters,
        ..Default::default()
    }
}

/// Checks that `p4info` describes this pipeline, and returns its sizes and
/// IDs.
///
/// Compared: every table, action, parameter, match field and counter of
/// [`crate::schema`], by ID (direct counters by `direct_table_id`, since
/// bf-p4c ignores their `@id`), with names compared by their last dotted
/// component, bitwidths, match kinds, action scopes, const default actions
/// and counter units. Tables the schema does not have are differences too,
/// except compiler-made ones (a name component starting with `$`).
/// The bucket key may be 1 to 20 bits wide; that width gives the bucket
/// count, and the table sizes give the other parameters, which must then
/// pass [`PipelineParams::validate`] for the target.
pub fn check_p4info(p4info: &cfg::P4Info) -> Result<Pipeline, P4InfoMismatch> {
    let mut diff = Vec::new();
    let target = detect_target(p4info);

    let mut bucket_bits = None;
    let mut sizes = [0i64; 3]; // vip, buckets, routes
    for t in schema::TABLES {
        let what = format!("table {:#010x} ({})", t.id, t.name);
        let Some(pt) = p4info
            .tables
            .iter()
            .find(|pt| pt.preamble.as_ref().is_some_and(|p| p.id == t.id))
        else {
            diff.push(format!("missing {what}"));
            continue;
        };
        let name = pt.preamble.as_ref().map_or("", |p| p.name.as_str());
        if short(name) != t.name {
            diff.push(format!("{what} is named {name:?}"));
        }
        check_match_fields(&what, t, pt, &mut bucket_bits, &mut diff);
        check_action_refs(&what, t, pt, &mut diff);
        let const_default = if t.const_default_action {
            t.default_action.id
        } else {
            0
        };
        if pt.const_default_action_id != const_default {
            diff.push(format!(
                "{what} has const_default_action_id {:#010x}, expected {const_default:#010x}",
                pt.const_default_action_id
            ));
        }
        if pt.implementation_id != 0 {
            diff.push(format!(
                "{what} has implementation {:#010x}, expected a direct table",
                pt.implementation_id
            ));
        }
        check_direct_counter(&what, t, pt, p4info, &mut diff);
        let slot = match t.size {
            TableSize::VipEntries => Some(0),
            TableSize::BucketEntries => Some(1),
            TableSize::Routes => Some(2),
            TableSize::One => None,
        };
        if let Some(slot) = slot {
            sizes[slot] = pt.size;
        }
    }
    for pt in &p4info.tables {
        let (id, name) = pt
            .preamble
            .as_ref()
            .map_or((0, ""), |p| (p.id, p.name.as_str()));
        let compiler_made = name.split('.').any(|c| c.starts_with('$'));
        if schema::table_by_id(id).is_none() && !compiler_made {
            diff.push(format!("unexpected table {id:#010x} ({name})"));
        }
    }
    for a in schema::ACTIONS {
        check_action(a, p4info, &mut diff);
    }
    let drops_counter_id = check_drops(p4info, &mut diff);
    let direct_id = |table: &schema::Table| {
        p4info
            .direct_counters
            .iter()
            .find(|c| c.direct_table_id == table.id)
            .and_then(|c| c.preamble.as_ref())
            .map_or(0, |p| p.id)
    };

    let params = bucket_bits.and_then(|k: u32| sizes_to_params(k, sizes, target, &mut diff));
    match params {
        Some(params) if diff.is_empty() => Ok(Pipeline {
            params,
            target,
            drops_counter_id,
            vip_counter_id: direct_id(&schema::VIP),
            bucket_counter_id: direct_id(&schema::BUCKETS),
        }),
        _ => Err(P4InfoMismatch { differences: diff }),
    }
}

fn detect_target(p4info: &cfg::P4Info) -> Target {
    match p4info.pkg_info.as_ref().map(|p| p.arch.as_str()) {
        Some("v1model") => Target::V1model,
        Some("tna" | "t2na") => Target::Tna,
        _ => {
            let pipe_prefix = format!("{}.", schema::TNA_PIPE);
            let tna_named = p4info
                .tables
                .iter()
                .filter_map(|t| t.preamble.as_ref())
                .any(|p| p.name.starts_with(&pipe_prefix));
            if tna_named {
                Target::Tna
            } else {
                Target::V1model
            }
        }
    }
}

fn check_match_fields(
    what: &str,
    t: &schema::Table,
    pt: &cfg::Table,
    bucket_bits: &mut Option<u32>,
    diff: &mut Vec<String>,
) {
    for k in t.keys {
        let field = format!("{what}: match field {} ({})", k.id, k.name);
        let Some(pf) = pt.match_fields.iter().find(|f| f.id == k.id) else {
            diff.push(format!("{what}: missing match field {} ({})", k.id, k.name));
            continue;
        };
        if short(&pf.name) != k.name {
            diff.push(format!("{field} is named {:?}", pf.name));
        }
        let want = match_type(k.kind);
        match &pf.r#match {
            Some(cfg::match_field::Match::MatchType(m)) if *m == want as i32 => {}
            Some(cfg::match_field::Match::MatchType(m)) => diff.push(format!(
                "{field} has match type {}, expected {}",
                cfg::match_field::MatchType::try_from(*m)
                    .map_or_else(|_| m.to_string(), |m| m.as_str_name().to_string()),
                want.as_str_name()
            )),
            Some(cfg::match_field::Match::OtherMatchType(o)) => diff.push(format!(
                "{field} has match type {o:?}, expected {}",
                want.as_str_name()
            )),
            None => diff.push(format!("{field} has no match type")),
        }
        match k.width {
            Width::Bits(bits) => {
                if pf.bitwidth != bits as i32 {
                    diff.push(format!(
                        "{field} has bitwidth {}, expected {bits}",
                        pf.bitwidth
                    ));
                }
            }
            Width::BucketBits => {
                let range = MIN_BUCKETS.trailing_zeros()..=MAX_BUCKETS.trailing_zeros();
                match u32::try_from(pf.bitwidth) {
                    Ok(bits) if range.contains(&bits) => *bucket_bits = Some(bits),
                    _ => diff.push(format!(
                        "{field} has bitwidth {}, expected {}..={} bits",
                        pf.bitwidth,
                        range.start(),
                        range.end()
                    )),
                }
            }
        }
    }
    for pf in &pt.match_fields {
        if !t.keys.iter().any(|k| k.id == pf.id) {
            diff.push(format!(
                "{what}: unexpected match field {} ({})",
                pf.id, pf.name
            ));
        }
    }
}

fn check_action_refs(what: &str, t: &schema::Table, pt: &cfg::Table, diff: &mut Vec<String>) {
    for r in t.actions {
        let a = r.action;
        match pt.action_refs.iter().find(|pr| pr.id == a.id) {
            None => diff.push(format!(
                "{what}: missing action {:#010x} ({})",
                a.id, a.name
            )),
            Some(pr) if pr.scope != scope(r.scope) as i32 => diff.push(format!(
                "{what}: action {:#010x} ({}) has scope {}, expected {}",
                a.id,
                a.name,
                cfg::action_ref::Scope::try_from(pr.scope)
                    .map_or_else(|_| pr.scope.to_string(), |s| s.as_str_name().to_string()),
                scope(r.scope).as_str_name()
            )),
            Some(_) => {}
        }
    }
    for pr in &pt.action_refs {
        if t.action_ref(pr.id).is_none() {
            diff.push(format!("{what}: unexpected action {:#010x}", pr.id));
        }
    }
}

fn check_direct_counter(
    what: &str,
    t: &schema::Table,
    pt: &cfg::Table,
    p4info: &cfg::P4Info,
    diff: &mut Vec<String>,
) {
    let found: Vec<_> = p4info
        .direct_counters
        .iter()
        .filter(|c| c.direct_table_id == t.id)
        .collect();
    match (t.direct_counter, found.as_slice()) {
        (None, []) => {}
        (None, [c, ..]) => diff.push(format!(
            "{what} has a direct counter ({}), expected none",
            c.preamble.as_ref().map_or("", |p| p.name.as_str())
        )),
        (Some(dc), []) => diff.push(format!(
            "{what}: missing direct counter {} (a Tofino program needs \
             bf-p4c --p4runtime-force-std-externs)",
            dc.name
        )),
        (Some(dc), [c]) => {
            let (id, name) = c
                .preamble
                .as_ref()
                .map_or((0, ""), |p| (p.id, p.name.as_str()));
            if short(name) != dc.name {
                diff.push(format!(
                    "{what}: direct counter {id:#010x} is named {name:?}, expected {}",
                    dc.name
                ));
            }
            let u = c.spec.as_ref().map_or(0, |s| s.unit);
            if u != unit(dc.unit) as i32 {
                diff.push(format!(
                    "{what}: direct counter {} counts unit {u}, expected BOTH (packets and bytes)",
                    dc.name
                ));
            }
            if !pt.direct_resource_ids.contains(&id) {
                diff.push(format!(
                    "{what}: direct_resource_ids do not list its direct counter {id:#010x}"
                ));
            }
        }
        (Some(dc), _) => diff.push(format!(
            "{what} has {} direct counters, expected one ({})",
            found.len(),
            dc.name
        )),
    }
}

fn check_action(a: &schema::Action, p4info: &cfg::P4Info, diff: &mut Vec<String>) {
    let what = format!("action {:#010x} ({})", a.id, a.name);
    let Some(pa) = p4info
        .actions
        .iter()
        .find(|pa| pa.preamble.as_ref().is_some_and(|p| p.id == a.id))
    else {
        diff.push(format!("missing {what}"));
        return;
    };
    let name = pa.preamble.as_ref().map_or("", |p| p.name.as_str());
    if short(name) != a.name {
        diff.push(format!("{what} is named {name:?}"));
    }
    for p in a.params {
        let Some(pp) = pa.params.iter().find(|pp| pp.id == p.id) else {
            diff.push(format!("{what}: missing param {} ({})", p.id, p.name));
            continue;
        };
        if short(&pp.name) != p.name {
            diff.push(format!(
                "{what}: param {} ({}) is named {:?}",
                p.id, p.name, pp.name
            ));
        }
        // Action parameters all have fixed widths.
        let Width::Bits(bits) = p.width else {
            unreachable!("no action parameter is bucket-wide")
        };
        if pp.bitwidth != bits as i32 {
            let translated = pp
                .type_name
                .as_ref()
                .map(|t| format!(" (type {})", t.name))
                .unwrap_or_default();
            diff.push(format!(
                "{what}: param {} ({}) has bitwidth {}{translated}, expected {bits}",
                p.id, p.name, pp.bitwidth
            ));
        }
    }
    for pp in &pa.params {
        if !a.params.iter().any(|p| p.id == pp.id) {
            diff.push(format!("{what}: unexpected param {} ({})", pp.id, pp.name));
        }
    }
}

/// The drop counter, by ID, else by name; its ID.
fn check_drops(p4info: &cfg::P4Info, diff: &mut Vec<String>) -> u32 {
    let c = &schema::DROPS;
    let by_id = p4info
        .counters
        .iter()
        .find(|pc| pc.preamble.as_ref().is_some_and(|p| p.id == c.id));
    let found = by_id.or_else(|| {
        p4info.counters.iter().find(|pc| {
            pc.preamble
                .as_ref()
                .is_some_and(|p| short(&p.name) == c.name)
        })
    });
    let what = format!("counter {:#010x} ({})", c.id, c.name);
    let Some(pc) = found else {
        diff.push(format!("missing {what}"));
        return 0;
    };
    let (id, name) = pc
        .preamble
        .as_ref()
        .map_or((0, ""), |p| (p.id, p.name.as_str()));
    if short(name) != c.name {
        diff.push(format!("{what} is named {name:?}"));
    }
    if pc.size != c.size as i64 {
        diff.push(format!(
            "{what} has size {}, expected {} (one cell per drop reason)",
            pc.size, c.size
        ));
    }
    let u = pc.spec.as_ref().map_or(0, |s| s.unit);
    if u != unit(c.unit) as i32 {
        diff.push(format!(
            "{what} counts unit {u}, expected BOTH (packets and bytes)"
        ));
    }
    id
}

fn sizes_to_params(
    bucket_bits: u32,
    [vip, buckets, routes]: [i64; 3],
    target: Target,
    diff: &mut Vec<String>,
) -> Option<PipelineParams> {
    let per_vip = 1i64 << bucket_bits;
    if buckets % per_vip != 0 {
        diff.push(format!(
            "table {:#010x} ({}) has size {buckets}, not a multiple of the 2^{bucket_bits} \
             buckets per VIP",
            schema::BUCKETS.id,
            schema::BUCKETS.name
        ));
        return None;
    }
    let u32_size = |size: i64, table: &schema::Table, diff: &mut Vec<String>| {
        u32::try_from(size).ok().or_else(|| {
            diff.push(format!(
                "table {:#010x} ({}) has size {size}, out of range",
                table.id, table.name
            ));
            None
        })
    };
    let params = PipelineParams {
        buckets: 1 << bucket_bits,
        max_vips: u32_size(buckets / per_vip, &schema::BUCKETS, diff)?,
        max_vip_entries: u32_size(vip, &schema::VIP, diff)?,
        routes: u32_size(routes, &schema::ROUTES, diff)?,
    };
    if let Err(e) = params.validate(target) {
        diff.push(format!(
            "the sizes it gives are not valid for {target}: {e}"
        ));
        return None;
    }
    Some(params)
}
