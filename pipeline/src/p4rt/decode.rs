//! P4Runtime messages to typed entries, with the checks and error codes of
//! the P4Runtime specification (v1.5.0). Section names below are the
//! spec's.
//!
//! Codes, in short:
//! - INVALID_ARGUMENT: a malformed entity: unknown table, action, field or
//!   parameter IDs, missing or duplicate fields and parameters, a match kind
//!   that is not the field's, LPM with host bits set or a zero prefix
//!   length, a priority on a table without ternary fields, a default entry
//!   with match fields, INSERT or DELETE of a default entry, INSERT into a
//!   keyless table, counter data for a table without a direct counter.
//! - OUT_OF_RANGE: a bytestring that is empty or does not fit the field's
//!   bitwidth ("Bytestrings"), a counter index past the end.
//! - PERMISSION_DENIED: an action used outside its scope, a change to a
//!   const default action ("Action Specification", "Default Entry").
//! - UNIMPLEMENTED: what this pipeline does not store (entry metadata),
//!   meter counter data ("MeterCounterData"), replication entries.

use super::{Counts, EntryAction, P4rtError, Pipeline};
use crate::drop::DropReason;
use crate::entries::{
    BucketAction, BucketKey, Entry, EntryKey, RouteAction, RouteKey, SwitchConfig, Update,
    VipAction, VipKey,
};
use crate::schema::{self, Action, MatchKind, Scope, Table};
use crate::wire::MacAddr;
use p4runtime_proto::bytestring;
use p4runtime_proto::google::rpc::Code;
use p4runtime_proto::p4::v1;
use std::net::Ipv4Addr;

/// One decoded, valid `p4.v1.Update`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// INSERT of a table entry, with its direct counter's initial value
    /// when given (otherwise 0).
    Insert {
        /// The entry.
        entry: Entry,
        /// Initial direct counter value, if `counter_data` was set.
        counts: Option<Counts>,
    },
    /// MODIFY of a table entry. An unset action keeps the entry's action;
    /// unset counter data keeps the counter ("Action Specification",
    /// "Direct Resources").
    Modify {
        /// The entry's key.
        key: EntryKey,
        /// The new action, if given.
        action: Option<EntryAction>,
        /// The new direct counter value, if given.
        counts: Option<Counts>,
    },
    /// DELETE of a table entry.
    Delete(EntryKey),
    /// MODIFY of the config table's default entry. An unset action resets
    /// it to the program's initial default, [`SwitchConfig::default`].
    SetConfig(SwitchConfig),
    /// MODIFY of a `DirectCounterEntry`: set one entry's counter.
    SetDirectCounter {
        /// The entry whose counter it is.
        key: EntryKey,
        /// The value; `None` (data unset) changes nothing.
        counts: Option<Counts>,
    },
    /// MODIFY of a `CounterEntry` of the drop counter.
    SetDropCounter {
        /// The cell; `None` sets every cell.
        reason: Option<DropReason>,
        /// The value; `None` (data unset) changes nothing.
        counts: Option<Counts>,
    },
}

impl Write {
    /// The table change of this write as an [`Update`], counter values
    /// left out; `None` for counter writes and for a MODIFY without action.
    pub fn to_update(&self) -> Option<Update> {
        match *self {
            Write::Insert { entry, .. } => Some(Update::Insert(entry)),
            Write::Modify {
                key,
                action: Some(a),
                ..
            } => a.with_key(key).map(Update::Modify),
            Write::Delete(k) => Some(Update::Delete(k)),
            Write::SetConfig(c) => Some(Update::SetConfig(c)),
            Write::Modify { action: None, .. }
            | Write::SetDirectCounter { .. }
            | Write::SetDropCounter { .. } => None,
        }
    }
}

impl From<Update> for Write {
    fn from(u: Update) -> Self {
        match u {
            Update::Insert(entry) => Write::Insert {
                entry,
                counts: None,
            },
            Update::Modify(entry) => Write::Modify {
                key: entry.key(),
                action: Some(EntryAction::of(&entry)),
                counts: None,
            },
            Update::Delete(k) => Write::Delete(k),
            Update::SetConfig(c) => Write::SetConfig(c),
        }
    }
}

/// A read filter over table entries ("Wildcard Reads"), from a
/// `TableEntry` or the `table_entry` of a `DirectCounterEntry`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableRead {
    /// The table; `None` for every table (`table_id` 0).
    pub table: Option<&'static Table>,
    /// One entry; `None` for every entry (match unset). Note that a /0
    /// route has an empty match, so it can only be read by a wildcard.
    pub key: Option<EntryKey>,
    /// Only the table's default entry (`is_default_action`).
    pub default_entry: bool,
    /// Only entries using this action.
    pub action_id: Option<u32>,
    /// The reply carries counter values (`counter_data` set in the request,
    /// or a `DirectCounterEntry` read).
    pub with_counters: bool,
}

impl TableRead {
    /// Whether the filter selects entries (or the default entry) of table
    /// `table_id`.
    pub fn includes_table(&self, table_id: u32) -> bool {
        self.table.is_none_or(|t| t.id == table_id)
    }

    /// Whether a non-default `entry` is selected.
    pub fn matches(&self, entry: &Entry) -> bool {
        let key = entry.key();
        !self.default_entry
            && self.includes_table(key.table_id())
            && self.key.is_none_or(|k| k == key)
            && self
                .action_id
                .is_none_or(|a| a == action_id_of(&EntryAction::of(entry)))
    }

    /// Whether the default entry of `table` is selected: only when asked
    /// for explicitly (`is_default_action` set).
    pub fn matches_default(&self, table: &Table) -> bool {
        self.default_entry
            && self.includes_table(table.id)
            && self.action_id.is_none_or(|a| a == table.default_action.id)
    }
}

fn action_id_of(a: &EntryAction) -> u32 {
    match a {
        EntryAction::Vip(VipAction::ToBuckets { .. }) => schema::TO_BUCKETS.id,
        EntryAction::Vip(VipAction::ToServer { .. }) => schema::TO_SERVER.id,
        EntryAction::Bucket(_) => schema::FORWARD.id,
        EntryAction::Route(_) => schema::ROUTE.id,
    }
}

/// One decoded, valid entity of a `ReadRequest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// Table entries, answered as `TableEntry`s.
    Tables(TableRead),
    /// Direct counters, answered as `DirectCounterEntry`s. `table` is
    /// `None` for every table that has one.
    DirectCounters(TableRead),
    /// Cells of the drop counter, answered as `CounterEntry`s.
    DropCounter {
        /// One cell, or `None` for all.
        reason: Option<DropReason>,
    },
    /// A wildcard over an entity kind this pipeline has none of (action
    /// profiles, meters, registers, ...): the answer is empty.
    Nothing,
}

const MAX_PREFIX: i32 = 32;

/// The most key fields of a table and parameters of an action in the
/// schema: decoding keeps values on the stack.
const MAX_FIELDS: usize = 4;
const _: () = {
    let mut i = 0;
    while i < schema::TABLES.len() {
        assert!(schema::TABLES[i].keys.len() <= MAX_FIELDS);
        i += 1;
    }
    let mut i = 0;
    while i < schema::ACTIONS.len() {
        assert!(schema::ACTIONS[i].params.len() <= MAX_FIELDS);
        i += 1;
    }
};

fn table(table_id: u32) -> Result<&'static Table, P4rtError> {
    if table_id == 0 {
        return Err(P4rtError::invalid(
            "table_id 0 is not a table (0 is never a valid P4 ID)",
        ));
    }
    schema::table_by_id(table_id)
        .ok_or_else(|| P4rtError::invalid(format!("unknown table id {table_id:#010x}")))
}

/// "match field NAME of table TABLE" or "param NAME of action ACTION", for
/// messages; formatted only when an error is built.
#[derive(Clone, Copy)]
struct Named(&'static str, &'static str, &'static str, &'static str);

impl std::fmt::Display for Named {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} of {} {}", self.0, self.1, self.2, self.3)
    }
}

fn out_of_range(what: Named, e: bytestring::BytestringError) -> P4rtError {
    // "Bytestrings": a string that is empty or too wide for the P4Info
    // bitwidth is OUT_OF_RANGE.
    P4rtError::new(e.code(), format!("{what}: {e}"))
}

impl Pipeline {
    fn bits(&self, width: schema::Width) -> u32 {
        width.bits(&self.params)
    }

    /// The key of `te`, checked ("Match Format"): every field known and
    /// given once, of its table's match kind, values in range, exact fields
    /// present, LPM without host bits or zero length, priority 0.
    pub fn key_from_p4(&self, te: &v1::TableEntry) -> Result<EntryKey, P4rtError> {
        let t = table(te.table_id)?;
        self.key_of(t, te)
    }

    fn key_of(&self, t: &'static Table, te: &v1::TableEntry) -> Result<EntryKey, P4rtError> {
        if te.priority != 0 {
            // "TableEntry": priority must be 0 unless the key has a
            // ternary, range or optional field; ours never do.
            return Err(P4rtError::invalid(format!(
                "priority {} on table {} which has no ternary, range or optional field",
                te.priority, t.name
            )));
        }
        if t.keys.is_empty() {
            return Err(P4rtError::invalid(format!(
                "table {} is keyless: it only has its default entry",
                t.name
            )));
        }
        // values[i]: the value of t.keys[i] (LPM: value, prefix length).
        let mut values = [None::<(u64, u32)>; MAX_FIELDS];
        for m in &te.r#match {
            let Some(i) = t.keys.iter().position(|k| k.id == m.field_id) else {
                return Err(P4rtError::invalid(format!(
                    "unknown match field id {} in table {}",
                    m.field_id, t.name
                )));
            };
            let k = &t.keys[i];
            if values[i].is_some() {
                return Err(P4rtError::invalid(format!(
                    "match field {} ({}) of table {} is given twice",
                    k.id, k.name, t.name
                )));
            }
            let bits = self.bits(k.width);
            let what = Named("match field", k.name, "table", t.name);
            use v1::field_match::FieldMatchType as M;
            values[i] = Some(match (&m.field_match_type, k.kind) {
                (Some(M::Exact(e)), MatchKind::Exact) => (
                    bytestring::to_u64(&e.value, bits).map_err(|e| out_of_range(what, e))?,
                    bits,
                ),
                (Some(M::Lpm(l)), MatchKind::Lpm) => {
                    if l.prefix_len == 0 {
                        return Err(P4rtError::invalid(format!(
                            "{what}: prefix length 0 is \"don't care\", which must be \
                             expressed by leaving the field out"
                        )));
                    }
                    if !(1..=MAX_PREFIX.min(bits as i32)).contains(&l.prefix_len) {
                        return Err(P4rtError::invalid(format!(
                            "{what}: prefix length {} is outside 1..={bits}",
                            l.prefix_len
                        )));
                    }
                    let v =
                        bytestring::to_u64(&l.value, bits).map_err(|e| out_of_range(what, e))?;
                    let len = l.prefix_len as u32;
                    if v & !prefix_mask(len, bits) != 0 {
                        return Err(P4rtError::invalid(format!(
                            "{what}: {}/{len} has bits set beyond the prefix length",
                            Ipv4Addr::from(v as u32)
                        )));
                    }
                    (v, len)
                }
                (None, _) => {
                    return Err(P4rtError::invalid(format!("{what} has no match value")));
                }
                (Some(_), kind) => {
                    return Err(P4rtError::invalid(format!(
                        "{what} is matched {}, but the request uses another match kind",
                        match kind {
                            MatchKind::Exact => "exact",
                            MatchKind::Lpm => "lpm",
                        }
                    )));
                }
            });
        }
        let mut value = |i: usize| -> Result<(u64, u32), P4rtError> {
            let k = &t.keys[i];
            match (values[i].take(), k.kind) {
                (Some(v), _) => Ok(v),
                // A missing LPM field is the /0 "don't care" match.
                (None, MatchKind::Lpm) => Ok((0, 0)),
                (None, MatchKind::Exact) => Err(P4rtError::invalid(format!(
                    "missing exact match field {} ({}) of table {}",
                    k.id, k.name, t.name
                ))),
            }
        };
        let key = if t.id == schema::VIP.id {
            EntryKey::Vip(VipKey {
                dst: Ipv4Addr::from(value(0)?.0 as u32),
                protocol: value(1)?.0 as u8,
                port: value(2)?.0 as u16,
            })
        } else if t.id == schema::BUCKETS.id {
            EntryKey::Bucket(BucketKey {
                vip_id: value(0)?.0 as u16,
                bucket: value(1)?.0 as u32,
            })
        } else if t.id == schema::ROUTES.id {
            let (prefix, len) = value(0)?;
            EntryKey::Route(RouteKey {
                prefix: Ipv4Addr::from(prefix as u32),
                len: len as u8,
            })
        } else {
            unreachable!("every keyed table of the schema is handled")
        };
        Ok(key)
    }

    /// The action of `te` checked against table `t` ("Action
    /// Specification"): a direct action the table uses, allowed in this
    /// place (`default` or an entry), every parameter given once and in
    /// range.
    fn action_of(
        &self,
        t: &'static Table,
        te: &v1::TableEntry,
        default: bool,
    ) -> Result<Option<(&'static Action, [u64; MAX_FIELDS])>, P4rtError> {
        let Some(ta) = &te.action else {
            return Ok(None);
        };
        let a = match &ta.r#type {
            Some(v1::table_action::Type::Action(a)) => a,
            Some(_) => {
                return Err(P4rtError::invalid(format!(
                    "table {} is a direct table: its action must be an Action, not an \
                     action profile member, group or action set",
                    t.name
                )));
            }
            None => return Err(P4rtError::invalid("TableAction has no action set")),
        };
        let Some(r) = t.action_ref(a.action_id) else {
            return Err(P4rtError::invalid(format!(
                "action id {:#010x} is not an action of table {}",
                a.action_id, t.name
            )));
        };
        match (r.scope, default) {
            (Scope::DefaultOnly, false) => {
                return Err(P4rtError::new(
                    Code::PermissionDenied,
                    format!(
                        "action {} is @defaultonly in table {}: not allowed in an entry",
                        r.action.name, t.name
                    ),
                ));
            }
            (Scope::TableOnly, true) => {
                return Err(P4rtError::new(
                    Code::PermissionDenied,
                    format!(
                        "action {} is @tableonly in table {}: not allowed as the default",
                        r.action.name, t.name
                    ),
                ));
            }
            _ => {}
        }
        let action = r.action;
        let mut values = [None::<u64>; MAX_FIELDS];
        for p in &a.params {
            let Some(i) = action.params.iter().position(|q| q.id == p.param_id) else {
                return Err(P4rtError::invalid(format!(
                    "unknown param id {} of action {}",
                    p.param_id, action.name
                )));
            };
            let q = &action.params[i];
            if values[i].is_some() {
                return Err(P4rtError::invalid(format!(
                    "param {} ({}) of action {} is given twice",
                    q.id, q.name, action.name
                )));
            }
            let what = Named("param", q.name, "action", action.name);
            values[i] = Some(
                bytestring::to_u64(&p.value, self.bits(q.width))
                    .map_err(|e| out_of_range(what, e))?,
            );
        }
        let mut out = [0u64; MAX_FIELDS];
        for (i, q) in action.params.iter().enumerate() {
            out[i] = values[i].ok_or_else(|| {
                P4rtError::invalid(format!(
                    "missing param {} ({}) of action {}",
                    q.id, q.name, action.name
                ))
            })?;
        }
        Ok(Some((action, out)))
    }

    fn entry_action(action: &Action, v: &[u64]) -> EntryAction {
        let ip = |x: u64| Ipv4Addr::from(x as u32);
        if action.id == schema::TO_BUCKETS.id {
            EntryAction::Vip(VipAction::ToBuckets {
                vip_id: v[0] as u16,
            })
        } else if action.id == schema::TO_SERVER.id {
            EntryAction::Vip(VipAction::ToServer { dip: ip(v[0]) })
        } else if action.id == schema::FORWARD.id {
            EntryAction::Bucket(BucketAction {
                dip: ip(v[0]),
                prev_dip: ip(v[1]),
                change_time: v[2] as u32,
            })
        } else if action.id == schema::ROUTE.id {
            EntryAction::Route(RouteAction {
                port: v[0] as u16,
                dst_mac: MacAddr::from_u64(v[1]),
                src_mac: MacAddr::from_u64(v[2]),
            })
        } else {
            unreachable!("only entry actions get here; scopes keep defaults out")
        }
    }

    /// The fields a write must leave unset: no idle timeout, no meters,
    /// no metadata (not stored), not const ("TableEntry", "Idle-timeout",
    /// "MeterCounterData").
    fn check_unsupported(t: &Table, te: &v1::TableEntry) -> Result<(), P4rtError> {
        if te.is_const {
            return Err(P4rtError::invalid("is_const must be false in a write"));
        }
        if te.idle_timeout_ns != 0 || te.time_since_last_hit.is_some() {
            return Err(P4rtError::invalid(format!(
                "table {} has no idle timeout",
                t.name
            )));
        }
        if te.meter_config.is_some() {
            return Err(P4rtError::invalid(format!(
                "table {} has no direct meter",
                t.name
            )));
        }
        if te.meter_counter_data.is_some() {
            return Err(P4rtError::new(
                Code::Unimplemented,
                "meter counter data is not supported",
            ));
        }
        #[allow(deprecated)]
        let cookie = te.controller_metadata;
        if cookie != 0 || !te.metadata.is_empty() {
            return Err(P4rtError::new(
                Code::Unimplemented,
                "entry metadata and controller_metadata are not stored by this target",
            ));
        }
        Ok(())
    }

    fn counts_of(t: &Table, te: &v1::TableEntry) -> Result<Option<Counts>, P4rtError> {
        match &te.counter_data {
            None => Ok(None),
            Some(_) if t.direct_counter.is_none() => Err(P4rtError::invalid(format!(
                "table {} has no direct counter, so counter_data must be unset",
                t.name
            ))),
            Some(d) => Counts::from_p4(d).map(Some),
        }
    }

    /// The full entry of `te` (table, match and action, as an INSERT
    /// carries it), checked. Other fields are not looked at.
    pub fn entry_from_p4(&self, te: &v1::TableEntry) -> Result<Entry, P4rtError> {
        let t = table(te.table_id)?;
        if te.is_default_action {
            return Err(P4rtError::invalid(format!(
                "the default entry of table {} is not a match entry",
                t.name
            )));
        }
        let key = self.key_of(t, te)?;
        let (action, values) = self.action_of(t, te, false)?.ok_or_else(|| {
            P4rtError::invalid(format!("the entry for table {} has no action", t.name))
        })?;
        Ok(Self::entry_action(action, &values)
            .with_key(key)
            .expect("the table's actions build its entries"))
    }

    /// One `p4.v1.Update` of a `WriteRequest`, checked as the spec
    /// prescribes (see the module documentation for the codes).
    pub fn write_from_p4(&self, update: &v1::Update) -> Result<Write, P4rtError> {
        use v1::update::Type;
        let kind = match Type::try_from(update.r#type) {
            Ok(Type::Unspecified) | Err(_) => {
                return Err(P4rtError::invalid(format!(
                    "update type {} is not INSERT, MODIFY or DELETE",
                    update.r#type
                )));
            }
            Ok(kind) => kind,
        };
        let entity = update
            .entity
            .as_ref()
            .and_then(|e| e.entity.as_ref())
            .ok_or_else(|| P4rtError::invalid("the update has no entity"))?;
        use v1::entity::Entity as E;
        match entity {
            E::TableEntry(te) => self.table_write(kind, te),
            E::DirectCounterEntry(dce) => {
                // "DirectCounterEntry": MODIFY only.
                if kind != Type::Modify {
                    return Err(P4rtError::invalid(
                        "a DirectCounterEntry can only be modified (not inserted or deleted)",
                    ));
                }
                let te = dce.table_entry.as_ref().ok_or_else(|| {
                    P4rtError::invalid("DirectCounterEntry without a table_entry")
                })?;
                let t = table(te.table_id)?;
                if t.direct_counter.is_none() {
                    return Err(P4rtError::invalid(format!(
                        "table {} has no direct counter",
                        t.name
                    )));
                }
                if te.is_default_action {
                    return Err(P4rtError::new(
                        Code::Unimplemented,
                        format!(
                            "the counter of the default entry of table {} cannot be written",
                            t.name
                        ),
                    ));
                }
                let key = self.key_of(t, te)?;
                let counts = dce.data.as_ref().map(Counts::from_p4).transpose()?;
                Ok(Write::SetDirectCounter { key, counts })
            }
            E::CounterEntry(ce) => {
                // "CounterEntry": MODIFY only.
                if kind != Type::Modify {
                    return Err(P4rtError::invalid(
                        "a CounterEntry can only be modified (not inserted or deleted)",
                    ));
                }
                self.check_counter_id(ce.counter_id)?;
                let reason = self.drop_index(ce.index.as_ref())?;
                let counts = ce.data.as_ref().map(Counts::from_p4).transpose()?;
                Ok(Write::SetDropCounter { reason, counts })
            }
            other => Err(Self::absent_kind(other)),
        }
    }

    fn table_write(&self, kind: v1::update::Type, te: &v1::TableEntry) -> Result<Write, P4rtError> {
        use v1::update::Type;
        let t = table(te.table_id)?;
        if te.is_default_action {
            // "Default Entry".
            if kind != Type::Modify {
                return Err(P4rtError::invalid(format!(
                    "the default entry of table {} can only be modified, not inserted or deleted",
                    t.name
                )));
            }
            if !te.r#match.is_empty() || te.priority != 0 {
                return Err(P4rtError::invalid(format!(
                    "the default entry of table {} takes no match fields and priority 0",
                    t.name
                )));
            }
            Self::check_unsupported(t, te)?;
            if t.const_default_action {
                return Err(P4rtError::new(
                    Code::PermissionDenied,
                    format!(
                        "the default action of table {} is const ({})",
                        t.name, t.default_action.name
                    ),
                ));
            }
            Self::counts_of(t, te)?;
            debug_assert_eq!(t.id, schema::CONFIG.id, "the only non-const default");
            return Ok(Write::SetConfig(match self.action_of(t, te, true)? {
                // Unset action: back to the program's initial default.
                None => SwitchConfig::default(),
                Some((_, v)) => SwitchConfig {
                    tunnel_src: Ipv4Addr::from(v[0] as u32),
                    generation: v[1] as u32,
                },
            }));
        }
        if kind == Type::Insert && t.keys.is_empty() {
            // "TableEntry": a keyless table takes no INSERT.
            return Err(P4rtError::invalid(format!(
                "table {} is keyless: entries cannot be inserted, only its default entry \
                 modified",
                t.name
            )));
        }
        let key = self.key_of(t, te)?;
        if kind == Type::Delete {
            // DELETE looks at the key only; other fields are ignored.
            return Ok(Write::Delete(key));
        }
        Self::check_unsupported(t, te)?;
        let counts = Self::counts_of(t, te)?;
        let action = self
            .action_of(t, te, false)?
            .map(|(a, v)| Self::entry_action(a, &v));
        match (kind, action) {
            (Type::Insert, None) => Err(P4rtError::invalid(format!(
                "INSERT into table {} needs an action",
                t.name
            ))),
            (Type::Insert, Some(a)) => Ok(Write::Insert {
                entry: a
                    .with_key(key)
                    .expect("the table's actions build its entries"),
                counts,
            }),
            (_, action) => Ok(Write::Modify {
                key,
                action,
                counts,
            }),
        }
    }

    fn check_counter_id(&self, id: u32) -> Result<(), P4rtError> {
        if id == self.drops_counter_id {
            Ok(())
        } else {
            Err(P4rtError::invalid(format!("unknown counter id {id:#010x}")))
        }
    }

    fn drop_index(&self, index: Option<&v1::Index>) -> Result<Option<DropReason>, P4rtError> {
        let Some(index) = index else {
            return Ok(None);
        };
        // "CounterEntry": negative is INVALID_ARGUMENT, past the end
        // OUT_OF_RANGE.
        let i = usize::try_from(index.index).map_err(|_| {
            P4rtError::invalid(format!("counter index {} is negative", index.index))
        })?;
        DropReason::from_index(i).map(Some).ok_or_else(|| {
            P4rtError::new(
                Code::OutOfRange,
                format!(
                    "counter index {i} is past the end of {} ({} cells)",
                    schema::DROPS.name,
                    DropReason::COUNT
                ),
            )
        })
    }

    /// The error for an entity kind this pipeline has none of. (On a
    /// read, a wildcard over such a kind is not an error but empty.)
    fn absent_kind(entity: &v1::entity::Entity) -> P4rtError {
        match absent_id(entity) {
            None => P4rtError::new(
                Code::Unimplemented,
                "multicast groups and clone sessions are not supported",
            ),
            Some((kind, id)) => P4rtError::invalid(format!(
                "unknown {kind} id {id:#010x}: the Beamer pipeline has no {kind}s"
            )),
        }
    }

    /// One entity of a `ReadRequest`, checked ("Wildcard Reads"): unset
    /// or zero fields are wildcards; `table_id` 0 allows no other filter.
    pub fn read_from_p4(&self, entity: &v1::Entity) -> Result<Read, P4rtError> {
        use v1::entity::Entity as E;
        let entity = entity.entity.as_ref().ok_or_else(|| {
            // "Wildcard Reads": an empty Entity is not a wildcard.
            P4rtError::invalid("the read entity has no type set")
        })?;
        match entity {
            E::TableEntry(te) => {
                let with_counters = te.counter_data.is_some();
                self.table_read(te, with_counters, false).map(Read::Tables)
            }
            E::DirectCounterEntry(dce) => {
                let read = match &dce.table_entry {
                    None => TableRead {
                        table: None,
                        key: None,
                        default_entry: false,
                        action_id: None,
                        with_counters: true,
                    },
                    Some(te) => self.table_read(te, true, true)?,
                };
                if let Some(t) = read.table
                    && t.direct_counter.is_none()
                {
                    return Err(P4rtError::invalid(format!(
                        "table {} has no direct counter",
                        t.name
                    )));
                }
                Ok(Read::DirectCounters(read))
            }
            E::CounterEntry(ce) => {
                if ce.counter_id != 0 {
                    self.check_counter_id(ce.counter_id)?;
                } else if ce.index.is_some() {
                    return Err(P4rtError::invalid(
                        "counter_id 0 reads every counter: no index may be given",
                    ));
                }
                Ok(Read::DropCounter {
                    reason: self.drop_index(ce.index.as_ref())?,
                })
            }
            other => match absent_id(other) {
                Some((_, 0)) => Ok(Read::Nothing),
                _ => Err(Self::absent_kind(other)),
            },
        }
    }

    fn table_read(
        &self,
        te: &v1::TableEntry,
        with_counters: bool,
        direct_counter_read: bool,
    ) -> Result<TableRead, P4rtError> {
        #[allow(deprecated)]
        let cookie = te.controller_metadata;
        if cookie != 0 || !te.metadata.is_empty() {
            return Err(P4rtError::new(
                Code::Unimplemented,
                "filtering on metadata is not supported: this target stores none",
            ));
        }
        if te.meter_counter_data.is_some() {
            return Err(P4rtError::new(
                Code::Unimplemented,
                "meter counter data is not supported",
            ));
        }
        if te.meter_config.is_some() || te.time_since_last_hit.is_some() {
            return Err(P4rtError::invalid(
                "this pipeline has no direct meters and no idle timeouts",
            ));
        }
        let action_id = match te.action.as_ref().map(|a| &a.r#type) {
            None => None,
            Some(Some(v1::table_action::Type::Action(a))) => Some(a.action_id),
            Some(_) => {
                return Err(P4rtError::invalid(
                    "reads filter on an action id only (direct tables)",
                ));
            }
        };
        if te.table_id == 0 {
            // "Wildcard Reads": table_id 0 selects every table, and no
            // other filter can be used.
            if !te.r#match.is_empty()
                || te.priority != 0
                || te.is_default_action
                || action_id.is_some()
            {
                return Err(P4rtError::invalid(
                    "a read of every table (table_id 0) takes no match, action, priority \
                     or is_default_action",
                ));
            }
            return Ok(TableRead {
                table: None,
                key: None,
                default_entry: false,
                action_id: None,
                with_counters,
            });
        }
        let t = table(te.table_id)?;
        if with_counters && !direct_counter_read && t.direct_counter.is_none() {
            return Err(P4rtError::invalid(format!(
                "table {} has no direct counter, so counter_data must be unset",
                t.name
            )));
        }
        if let Some(a) = action_id
            && t.action_ref(a).is_none()
        {
            return Err(P4rtError::invalid(format!(
                "action id {a:#010x} is not an action of table {}",
                t.name
            )));
        }
        if te.is_default_action {
            if !te.r#match.is_empty() || te.priority != 0 {
                return Err(P4rtError::invalid(format!(
                    "the default entry of table {} takes no match fields and priority 0",
                    t.name
                )));
            }
            return Ok(TableRead {
                table: Some(t),
                key: None,
                default_entry: true,
                action_id,
                with_counters,
            });
        }
        let key = if te.r#match.is_empty() {
            if te.priority != 0 {
                return Err(P4rtError::invalid(format!(
                    "priority {} on table {} which has no ternary, range or optional field",
                    te.priority, t.name
                )));
            }
            None
        } else {
            Some(self.key_of(t, te)?)
        };
        Ok(TableRead {
            table: Some(t),
            key,
            default_entry: false,
            action_id,
            with_counters,
        })
    }

    /// The `CounterEntry` of the drop counter's cell for `reason`.
    pub fn drop_counter_entry_to_p4(&self, reason: DropReason, counts: Counts) -> v1::CounterEntry {
        v1::CounterEntry {
            counter_id: self.drops_counter_id,
            index: Some(v1::Index {
                index: reason.index() as i64,
            }),
            data: Some(counts.to_p4()),
        }
    }
}

/// For an entity kind the pipeline has none of: its name and the ID the
/// request names (0 for a wildcard); `None` for replication entries, which
/// are not supported at all.
fn absent_id(entity: &v1::entity::Entity) -> Option<(&'static str, u32)> {
    use v1::entity::Entity as E;
    Some(match entity {
        E::ExternEntry(e) => ("extern type", e.extern_type_id),
        E::ActionProfileMember(m) => ("action profile", m.action_profile_id),
        E::ActionProfileGroup(g) => ("action profile", g.action_profile_id),
        E::MeterEntry(m) => ("meter", m.meter_id),
        E::DirectMeterEntry(m) => (
            "direct meter on table",
            m.table_entry.as_ref().map_or(0, |t| t.table_id),
        ),
        E::ValueSetEntry(v) => ("value set", v.value_set_id),
        E::RegisterEntry(r) => ("register", r.register_id),
        E::DigestEntry(d) => ("digest", d.digest_id),
        E::PacketReplicationEngineEntry(_) => return None,
        E::TableEntry(_) | E::CounterEntry(_) | E::DirectCounterEntry(_) => {
            unreachable!("the pipeline has tables and counters")
        }
    })
}

/// The mask of the first `len` of `bits` bits.
fn prefix_mask(len: u32, bits: u32) -> u64 {
    let all = if bits >= 64 {
        u64::MAX
    } else {
        (1 << bits) - 1
    };
    if len == 0 { 0 } else { all & !(all >> len) }
}
