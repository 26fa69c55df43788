//! The P4Info of the generated program, built from [`schema`] and the
//! pipeline's sizes.
//!
//! It describes what p4c writes for the program: every ID is the one pinned
//! by an `@id` annotation, names carry the target's prefix
//! ([`Target::p4info_name`]), aliases are the short names, action references
//! carry their scope and scope annotation, and each table's initial default
//! action has its arguments as p4c encodes them (zero, padded to the
//! parameter's width in bytes).

use crate::program::PROGRAM_NAME;
use beamer_pipeline::schema::{self, CounterUnit, MatchKind, Scope};
use beamer_pipeline::{PipelineParams, Target};
use p4runtime_proto::p4::config::v1 as p4i;

/// The P4Info of the program for `target` and `params` (which must have
/// passed [`PipelineParams::validate`] for `target`).
pub fn p4info(target: Target, params: &PipelineParams) -> p4i::P4Info {
    p4i::P4Info {
        pkg_info: Some(p4i::PkgInfo {
            name: PROGRAM_NAME.to_string(),
            arch: target.name().to_string(),
            ..Default::default()
        }),
        tables: schema::TABLES
            .iter()
            .map(|t| table(target, params, t))
            .collect(),
        actions: schema::ACTIONS
            .iter()
            .map(|a| action(target, params, a))
            .collect(),
        counters: schema::COUNTERS
            .iter()
            .map(|c| p4i::Counter {
                preamble: Some(preamble(target, c.id, c.name)),
                spec: Some(spec(c.unit)),
                size: c.size as i64,
                ..Default::default()
            })
            .collect(),
        direct_counters: schema::DIRECT_COUNTERS
            .iter()
            .map(|(c, t)| p4i::DirectCounter {
                preamble: Some(preamble(target, c.id, c.name)),
                spec: Some(spec(c.unit)),
                direct_table_id: t.id,
            })
            .collect(),
        ..Default::default()
    }
}

fn preamble(target: Target, id: u32, short: &str) -> p4i::Preamble {
    p4i::Preamble {
        id,
        name: target.p4info_name(short),
        alias: short.to_string(),
        ..Default::default()
    }
}

fn spec(unit: CounterUnit) -> p4i::CounterSpec {
    let unit = match unit {
        CounterUnit::Both => p4i::counter_spec::Unit::Both,
    };
    p4i::CounterSpec { unit: unit.into() }
}

fn table(target: Target, params: &PipelineParams, t: &schema::Table) -> p4i::Table {
    use p4i::action_ref::Scope as S;
    use p4i::match_field::{Match, MatchType};
    let default = t.default_action;
    p4i::Table {
        preamble: Some(preamble(target, t.id, t.name)),
        match_fields: t
            .keys
            .iter()
            .map(|k| p4i::MatchField {
                id: k.id,
                name: k.name.to_string(),
                bitwidth: k.width.bits(params) as i32,
                r#match: Some(Match::MatchType(
                    match k.kind {
                        MatchKind::Exact => MatchType::Exact,
                        MatchKind::Lpm => MatchType::Lpm,
                    }
                    .into(),
                )),
                ..Default::default()
            })
            .collect(),
        action_refs: t
            .actions
            .iter()
            .map(|r| {
                let (scope, annotations) = match r.scope {
                    Scope::TableAndDefault => (S::TableAndDefault, vec![]),
                    Scope::TableOnly => (S::TableOnly, vec!["@tableonly".to_string()]),
                    Scope::DefaultOnly => (S::DefaultOnly, vec!["@defaultonly".to_string()]),
                };
                p4i::ActionRef {
                    id: r.action.id,
                    annotations,
                    scope: scope.into(),
                    ..Default::default()
                }
            })
            .collect(),
        const_default_action_id: if t.const_default_action {
            default.id
        } else {
            0
        },
        // The program's default actions take all-zero arguments.
        initial_default_action: Some(p4i::TableActionCall {
            action_id: default.id,
            arguments: default
                .params
                .iter()
                .map(|p| p4i::table_action_call::Argument {
                    param_id: p.id,
                    value: vec![0; p.width.bits(params).div_ceil(8) as usize],
                })
                .collect(),
        }),
        direct_resource_ids: t.direct_counter.iter().map(|c| c.id).collect(),
        size: params.table_size(t.size) as i64,
        ..Default::default()
    }
}

fn action(target: Target, params: &PipelineParams, a: &schema::Action) -> p4i::Action {
    p4i::Action {
        preamble: Some(preamble(target, a.id, a.name)),
        params: a
            .params
            .iter()
            .map(|p| p4i::action::Param {
                id: p.id,
                name: p.name.to_string(),
                bitwidth: p.width.bits(params) as i32,
                ..Default::default()
            })
            .collect(),
    }
}
