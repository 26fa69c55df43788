//! Where the pipeline's typed entries meet P4Runtime messages (feature
//! `p4runtime`). The software switch's P4Runtime server and the controller
//! both go through here, so both read and write the same bytes.
//!
//! - [`check_p4info`]: does a P4Info describe this pipeline? Gives the
//!   [`Pipeline`] (sizes, IDs) it describes, or says exactly what differs.
//!   [`expected_p4info`] is the P4Info this pipeline has on a target.
//! - Encoding (infallible, canonical bytestrings): [`entry_to_p4`],
//!   [`key_to_p4`], [`config_to_p4`], [`default_entry_to_p4`],
//!   [`update_to_p4`], [`direct_counter_entry_to_p4`], [`Counts::to_p4`].
//! - Decoding with the checks and gRPC codes the P4Runtime spec
//!   prescribes: [`Pipeline::entry_from_p4`], [`Pipeline::key_from_p4`],
//!   [`Pipeline::write_from_p4`] (any `p4.v1.Update`),
//!   [`Pipeline::read_from_p4`] (any `p4.v1.Entity` of a `ReadRequest`).
//!   Errors are [`P4rtError`]s: a `google.rpc.Code` and a message.

mod decode;
mod encode;
mod p4info;

pub use decode::{Read, TableRead, Write};
pub use encode::{
    config_to_p4, default_entry_to_p4, direct_counter_entry_to_p4, entry_to_p4, key_to_p4,
    update_to_p4,
};
pub use p4info::{P4InfoMismatch, Pipeline, check_p4info, expected_p4info};
pub use p4runtime_proto;
pub use p4runtime_proto::google::rpc::Code;

use crate::entries::{BucketAction, Entry, EntryKey, RouteAction, VipAction};
use p4runtime_proto::p4::v1;

/// A P4Runtime request (or one element of a batch) that the pipeline
/// rejects, with the canonical code the spec prescribes for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct P4rtError {
    /// The gRPC / `google.rpc` code.
    pub code: Code,
    /// What is wrong, naming the table, field or parameter.
    pub message: String,
}

impl P4rtError {
    /// An error with `code`.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        P4rtError {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidArgument, message)
    }

    /// The `p4.v1.Error` of this element of a batch.
    pub fn to_p4_error(&self) -> v1::Error {
        v1::Error {
            canonical_code: self.code as i32,
            message: self.message.clone(),
            ..Default::default()
        }
    }

    /// A gRPC status with this code and message.
    pub fn to_status(&self) -> p4runtime_proto::tonic::Status {
        p4runtime_proto::tonic::Status::new(self.code.to_tonic(), self.message.clone())
    }
}

/// Packet and byte counts of one counter cell (P4Runtime `CounterData`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Counts {
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
}

impl Counts {
    /// The `CounterData` message; counts beyond `i64::MAX` saturate.
    pub fn to_p4(self) -> v1::CounterData {
        v1::CounterData {
            byte_count: i64::try_from(self.bytes).unwrap_or(i64::MAX),
            packet_count: i64::try_from(self.packets).unwrap_or(i64::MAX),
        }
    }

    /// Counts from a `CounterData`; negative counts are INVALID_ARGUMENT.
    pub fn from_p4(data: &v1::CounterData) -> Result<Self, P4rtError> {
        let count = |v: i64, what: &str| {
            u64::try_from(v)
                .map_err(|_| P4rtError::invalid(format!("counter_data.{what} {v} is negative")))
        };
        Ok(Counts {
            packets: count(data.packet_count, "packet_count")?,
            bytes: count(data.byte_count, "byte_count")?,
        })
    }
}

/// The action part of an entry of any table with a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryAction {
    /// A VIP table action.
    Vip(VipAction),
    /// A bucket table action.
    Bucket(BucketAction),
    /// A route table action.
    Route(RouteAction),
}

impl EntryAction {
    /// The entry made of `key` and this action, if both are of one table.
    pub fn with_key(self, key: EntryKey) -> Option<Entry> {
        match (key, self) {
            (EntryKey::Vip(k), EntryAction::Vip(a)) => Some(Entry::Vip(k, a)),
            (EntryKey::Bucket(k), EntryAction::Bucket(a)) => Some(Entry::Bucket(k, a)),
            (EntryKey::Route(k), EntryAction::Route(a)) => Some(Entry::Route(k, a)),
            _ => None,
        }
    }

    /// The action of `entry`.
    pub fn of(entry: &Entry) -> Self {
        match *entry {
            Entry::Vip(_, a) => EntryAction::Vip(a),
            Entry::Bucket(_, a) => EntryAction::Bucket(a),
            Entry::Route(_, a) => EntryAction::Route(a),
        }
    }
}

#[cfg(test)]
mod tests;
