//! Typed entries to P4Runtime messages, with canonical bytestrings (the
//! shortest big-endian string, spec "Bytestrings"), so that what the
//! controller writes is byte for byte what a switch reads back.

use super::Counts;
use crate::entries::{Entry, EntryKey, RouteKey, SwitchConfig, Update};
use crate::schema::{self, Table};
use p4runtime_proto::bytestring;
use p4runtime_proto::p4::v1;

fn exact(field_id: u32, value: u64) -> v1::FieldMatch {
    v1::FieldMatch::exact(field_id, bytestring::from_u64(value))
}

fn param(param_id: u32, value: u64) -> v1::action::Param {
    v1::action::Param::new(param_id, bytestring::from_u64(value))
}

fn action(action_id: u32, params: Vec<v1::action::Param>) -> Option<v1::TableAction> {
    Some(v1::TableAction::action(action_id, params))
}

fn match_of(key: &EntryKey) -> Vec<v1::FieldMatch> {
    use schema::{buckets_key, routes_key, vip_key};
    match *key {
        EntryKey::Vip(k) => vec![
            exact(vip_key::DST_ADDR, u32::from(k.dst).into()),
            exact(vip_key::PROTOCOL, k.protocol.into()),
            exact(vip_key::DST_PORT, k.port.into()),
        ],
        EntryKey::Bucket(k) => vec![
            exact(buckets_key::VIP_ID, k.vip_id.into()),
            exact(buckets_key::BUCKET, k.bucket.into()),
        ],
        // A /0 prefix is "don't care": the field is left out (spec, "Match
        // Format").
        EntryKey::Route(RouteKey { len: 0, .. }) => vec![],
        EntryKey::Route(k) => vec![v1::FieldMatch::lpm(
            routes_key::DST_ADDR,
            bytestring::from_u64(u32::from(k.prefix).into()),
            k.len.into(),
        )],
    }
}

/// The `TableEntry` naming `key`: table and match, nothing else (for
/// DELETE, reads and direct counters).
pub fn key_to_p4(key: &EntryKey) -> v1::TableEntry {
    v1::TableEntry {
        table_id: key.table_id(),
        r#match: match_of(key),
        ..Default::default()
    }
}

/// The full `TableEntry` of `entry`: table, match and action.
pub fn entry_to_p4(entry: &Entry) -> v1::TableEntry {
    use schema::{forward, route, to_buckets, to_server};
    let table_action = match *entry {
        Entry::Vip(_, crate::entries::VipAction::ToBuckets { vip_id }) => action(
            schema::TO_BUCKETS.id,
            vec![param(to_buckets::VIP_ID, vip_id.into())],
        ),
        Entry::Vip(_, crate::entries::VipAction::ToServer { dip }) => action(
            schema::TO_SERVER.id,
            vec![param(to_server::DIP, u32::from(dip).into())],
        ),
        Entry::Bucket(_, a) => action(
            schema::FORWARD.id,
            vec![
                param(forward::DIP, u32::from(a.dip).into()),
                param(forward::PREV_DIP, u32::from(a.prev_dip).into()),
                param(forward::CHANGE_TIME, a.change_time.into()),
            ],
        ),
        Entry::Route(_, a) => action(
            schema::ROUTE.id,
            vec![
                param(route::PORT, a.port.into()),
                param(route::DST_MAC, a.dst_mac.to_u64()),
                param(route::SRC_MAC, a.src_mac.to_u64()),
            ],
        ),
    };
    v1::TableEntry {
        action: table_action,
        ..key_to_p4(&entry.key())
    }
}

/// The config table's default entry holding `config`:
/// `set_config(tunnel_src, generation)`.
pub fn config_to_p4(config: &SwitchConfig) -> v1::TableEntry {
    use schema::set_config;
    v1::TableEntry {
        table_id: schema::CONFIG.id,
        is_default_action: true,
        action: action(
            schema::SET_CONFIG.id,
            vec![
                param(set_config::TUNNEL_SRC, u32::from(config.tunnel_src).into()),
                param(set_config::GENERATION, config.generation.into()),
            ],
        ),
        ..Default::default()
    }
}

/// The default entry of `table`, as a read returns it: the config table's
/// holds `config`, the others their (parameterless, const) miss action.
pub fn default_entry_to_p4(table: &Table, config: &SwitchConfig) -> v1::TableEntry {
    if table.id == schema::CONFIG.id {
        return config_to_p4(config);
    }
    v1::TableEntry {
        table_id: table.id,
        is_default_action: true,
        action: action(table.default_action.id, vec![]),
        ..Default::default()
    }
}

/// The `p4.v1.Update` of `update`: INSERT and MODIFY carry the full entry,
/// DELETE the key, and a config change is a MODIFY of the config table's
/// default entry.
pub fn update_to_p4(update: &Update) -> v1::Update {
    use v1::update::Type;
    let (kind, entry) = match update {
        Update::Insert(e) => (Type::Insert, entry_to_p4(e)),
        Update::Modify(e) => (Type::Modify, entry_to_p4(e)),
        Update::Delete(k) => (Type::Delete, key_to_p4(k)),
        Update::SetConfig(c) => (Type::Modify, config_to_p4(c)),
    };
    v1::Update {
        r#type: kind as i32,
        entity: Some(v1::Entity {
            entity: Some(v1::entity::Entity::TableEntry(entry)),
        }),
    }
}

/// The `DirectCounterEntry` of the entry with `key`, holding `counts`.
pub fn direct_counter_entry_to_p4(key: &EntryKey, counts: Counts) -> v1::DirectCounterEntry {
    v1::DirectCounterEntry {
        table_entry: Some(key_to_p4(key)),
        data: Some(counts.to_p4()),
    }
}
