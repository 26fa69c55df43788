//! The binary P4Info, decoded, describes exactly the pipeline of
//! `beamer_pipeline::schema`: every table, match field, action reference,
//! action, parameter, counter and direct counter, with its ID, name, width,
//! kind and size. The test walks the schema and looks each item up in the
//! decoded message by ID; it shares no code with the P4Info builder.

use beamer_pipeline::schema::{self, CounterUnit, MatchKind, Scope, Table};
use beamer_pipeline::{PipelineParams, Target};
use p4runtime_proto::p4::config::v1::{self as p4i, P4Info, action_ref, counter_spec, match_field};
use p4runtime_proto::prost::Message;
use std::collections::HashSet;
use std::path::Path;

fn find<'a, T>(items: &'a [T], id: u32, what: &str, id_of: impl Fn(&T) -> u32) -> &'a T {
    let found: Vec<&T> = items.iter().filter(|i| id_of(i) == id).collect();
    assert_eq!(found.len(), 1, "{what} {id:#010x}: expected exactly one");
    found[0]
}

fn pre_id(p: &Option<p4i::Preamble>) -> u32 {
    p.as_ref().expect("preamble").id
}

fn check_preamble(p: &Option<p4i::Preamble>, target: Target, short: &str) {
    let p = p.as_ref().expect("preamble");
    assert_eq!(p.name, target.p4info_name(short), "name of {short}");
    assert_eq!(p.alias, short, "alias of {short}");
}

fn unit(u: CounterUnit) -> counter_spec::Unit {
    match u {
        CounterUnit::Both => counter_spec::Unit::Both,
    }
}

fn check_table(info: &P4Info, target: Target, params: &PipelineParams, t: &Table) {
    let pt = find(&info.tables, t.id, "table", |x| pre_id(&x.preamble));
    check_preamble(&pt.preamble, target, t.name);
    assert_eq!(
        pt.size,
        params.table_size(t.size) as i64,
        "size of {}",
        t.name
    );

    assert_eq!(pt.match_fields.len(), t.keys.len(), "keys of {}", t.name);
    for k in t.keys {
        let f = find(&pt.match_fields, k.id, "match field", |x| x.id);
        assert_eq!(f.name, k.name, "{}.{}", t.name, k.name);
        assert_eq!(
            f.bitwidth as u32,
            k.width.bits(params),
            "{}.{}",
            t.name,
            k.name
        );
        let want = match k.kind {
            MatchKind::Exact => match_field::MatchType::Exact,
            MatchKind::Lpm => match_field::MatchType::Lpm,
        };
        assert_eq!(
            f.r#match,
            Some(match_field::Match::MatchType(want as i32)),
            "{}.{}",
            t.name,
            k.name
        );
    }

    assert_eq!(
        pt.action_refs.len(),
        t.actions.len(),
        "actions of {}",
        t.name
    );
    for r in t.actions {
        let ar = find(&pt.action_refs, r.action.id, "action ref", |x| x.id);
        let want = match r.scope {
            Scope::TableAndDefault => action_ref::Scope::TableAndDefault,
            Scope::TableOnly => action_ref::Scope::TableOnly,
            Scope::DefaultOnly => action_ref::Scope::DefaultOnly,
        };
        assert_eq!(
            ar.scope, want as i32,
            "scope of {} in {}",
            r.action.name, t.name
        );
    }

    let const_default = if t.const_default_action {
        t.default_action.id
    } else {
        0
    };
    assert_eq!(pt.const_default_action_id, const_default, "{}", t.name);
    let init = pt.initial_default_action.as_ref().expect("initial default");
    assert_eq!(init.action_id, t.default_action.id, "{}", t.name);
    let params_of_default: HashSet<u32> = t.default_action.params.iter().map(|p| p.id).collect();
    let args: HashSet<u32> = init.arguments.iter().map(|a| a.param_id).collect();
    assert_eq!(args, params_of_default, "default arguments of {}", t.name);

    let direct: Vec<u32> = t.direct_counter.iter().map(|c| c.id).collect();
    assert_eq!(
        pt.direct_resource_ids, direct,
        "direct resources of {}",
        t.name
    );
}

/// Checks `info` against the schema for `target` and `params`.
fn check(info: &P4Info, target: Target, params: &PipelineParams) {
    let pkg = info.pkg_info.as_ref().expect("pkg_info");
    assert_eq!(pkg.arch, target.name());

    assert_eq!(info.tables.len(), schema::TABLES.len());
    for t in schema::TABLES {
        check_table(info, target, params, t);
    }

    assert_eq!(info.actions.len(), schema::ACTIONS.len());
    for a in schema::ACTIONS {
        let pa = find(&info.actions, a.id, "action", |x| pre_id(&x.preamble));
        check_preamble(&pa.preamble, target, a.name);
        assert_eq!(pa.params.len(), a.params.len(), "params of {}", a.name);
        for p in a.params {
            let pp = find(&pa.params, p.id, "param", |x| x.id);
            assert_eq!(pp.name, p.name, "{}({})", a.name, p.name);
            assert_eq!(
                pp.bitwidth as u32,
                p.width.bits(params),
                "{}({})",
                a.name,
                p.name
            );
        }
    }

    assert_eq!(info.counters.len(), schema::COUNTERS.len());
    for c in schema::COUNTERS {
        let pc = find(&info.counters, c.id, "counter", |x| pre_id(&x.preamble));
        check_preamble(&pc.preamble, target, c.name);
        assert_eq!(pc.size as u64, c.size, "size of {}", c.name);
        assert_eq!(pc.spec.as_ref().unwrap().unit, unit(c.unit) as i32);
    }

    assert_eq!(info.direct_counters.len(), schema::DIRECT_COUNTERS.len());
    for (c, t) in schema::DIRECT_COUNTERS {
        let pc = find(&info.direct_counters, c.id, "direct counter", |x| {
            pre_id(&x.preamble)
        });
        check_preamble(&pc.preamble, target, c.name);
        assert_eq!(pc.direct_table_id, t.id, "table of {}", c.name);
        assert_eq!(pc.spec.as_ref().unwrap().unit, unit(c.unit) as i32);
    }

    // Nothing else, and no ID twice.
    assert!(info.meters.is_empty() && info.direct_meters.is_empty());
    assert!(info.registers.is_empty() && info.externs.is_empty());
    assert!(info.action_profiles.is_empty() && info.digests.is_empty());
    let ids: Vec<u32> = info
        .tables
        .iter()
        .map(|x| pre_id(&x.preamble))
        .chain(info.actions.iter().map(|x| pre_id(&x.preamble)))
        .chain(info.counters.iter().map(|x| pre_id(&x.preamble)))
        .chain(info.direct_counters.iter().map(|x| pre_id(&x.preamble)))
        .collect();
    let unique: HashSet<u32> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "duplicate IDs");
}

#[test]
fn committed_binary_p4info_matches_the_schema() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for target in Target::ALL {
        let path = root.join(target.name()).join(beamer_p4gen::P4INFO_BIN_FILE);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let info = P4Info::decode(bytes.as_slice()).expect("p4info.bin decodes");
        check(&info, target, &PipelineParams::default());
    }
}

#[test]
fn generated_p4info_follows_the_parameters() {
    // (description, parameters): sizes and the bucket key width follow them.
    let cases = [
        (
            "4096 buckets, 3 VIPs",
            PipelineParams {
                buckets: 1 << 12,
                max_vips: 3,
                max_vip_entries: 100,
                routes: 77,
            },
        ),
        (
            "smallest",
            PipelineParams {
                buckets: 2,
                max_vips: 1,
                max_vip_entries: 1,
                routes: 1,
            },
        ),
    ];
    for (what, params) in cases {
        for target in Target::ALL {
            let out = beamer_p4gen::generate(target, &params).expect(what);
            let info = P4Info::decode(out.p4info_bin.as_slice()).expect("decodes");
            check(&info, target, &params);
            assert_eq!(info, out.p4info, "{what}");
        }
    }
}

#[test]
fn text_p4info_is_the_binary_one() {
    for target in Target::ALL {
        let out = beamer_p4gen::generate(target, &PipelineParams::default()).unwrap();
        let from_text = p4runtime_proto::p4info_from_text(&out.p4info_txt).expect("parses");
        let from_bin = P4Info::decode(out.p4info_bin.as_slice()).unwrap();
        assert_eq!(from_text, from_bin, "{target}");
    }
}

#[test]
fn both_targets_carry_the_same_ids() {
    let ids = |t: Target| {
        let info = beamer_pipeline::p4rt::expected_p4info(&PipelineParams::default(), t);
        let mut v: Vec<u32> = info
            .tables
            .iter()
            .flat_map(|x| {
                std::iter::once(pre_id(&x.preamble))
                    .chain(x.match_fields.iter().map(|m| m.id))
                    .chain(x.action_refs.iter().map(|a| a.id))
            })
            .chain(info.actions.iter().flat_map(|a| {
                std::iter::once(pre_id(&a.preamble)).chain(a.params.iter().map(|p| p.id))
            }))
            .chain(info.counters.iter().map(|x| pre_id(&x.preamble)))
            .chain(info.direct_counters.iter().map(|x| pre_id(&x.preamble)))
            .collect();
        v.sort_unstable();
        v
    };
    assert_eq!(ids(Target::V1model), ids(Target::Tna));
}
