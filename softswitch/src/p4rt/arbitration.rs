//! Client arbitration: which `StreamChannel` is the primary of each
//! (device, role), as the P4Runtime specification (v1.5.0) prescribes in
//! "Client Arbitration and Controller Replication", "Rules for Handling
//! MasterArbitrationUpdate Messages" and "Client Arbitration
//! Notifications". Sans-IO: the gRPC service feeds it stream events and
//! sends the notices it returns.
//!
//! The rules, in short:
//! - the primary is the live stream whose election id equals the highest
//!   election id ever accepted for its role (`election_id_past`); a stream
//!   that sends an id at least that high becomes primary;
//! - when the primary goes away (its stream closes, or it downgrades
//!   itself), there is no primary until some stream sends an id at least as
//!   high as `election_id_past`: the backups are told so (status
//!   NOT_FOUND), they are not promoted (the spec dropped that in v1.1.0);
//! - election ids are unique among the live streams of a role
//!   (INVALID_ARGUMENT otherwise); an unset id is lower than any id.

use beamer_pipeline::p4rt::{Code, P4rtError};
use p4runtime_proto::google::rpc;
use p4runtime_proto::p4::v1;
use std::collections::HashMap;

/// Identifies one `StreamChannel` for the lifetime of the server.
pub type StreamId = u64;

/// An arbitration message to send on a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// The stream to send it on.
    pub to: StreamId,
    /// The message.
    pub update: v1::MasterArbitrationUpdate,
}

/// The outcome of an accepted `MasterArbitrationUpdate`.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Notices to send, in order.
    pub notices: Vec<Notice>,
    /// The stream became (or stayed) primary. The last notice is then its
    /// own, to be sent once the writes already under way have finished
    /// (spec: "finish processing any Write requests that have already
    /// started", then notify the new primary).
    pub primary: bool,
}

#[derive(Debug)]
struct Controller {
    stream: StreamId,
    election_id: Option<u128>,
}

#[derive(Debug, Default)]
struct Role {
    /// `election_id_past`: the highest election id accepted for this role.
    highest: Option<u128>,
    /// Live streams, in the order they arbitrated.
    controllers: Vec<Controller>,
}

impl Role {
    fn primary(&self) -> Option<StreamId> {
        let highest = self.highest?;
        self.controllers
            .iter()
            .find(|c| c.election_id == Some(highest))
            .map(|c| c.stream)
    }
}

/// The arbitration state of one device.
#[derive(Debug)]
pub struct Arbitration {
    device_id: u64,
    max_streams_per_role: usize,
    /// By role name ("" for the default role). A role is known once a
    /// stream has arbitrated for it, and stays known (its highest id must
    /// be remembered).
    roles: HashMap<String, Role>,
    /// The role of each live stream that arbitrated.
    streams: HashMap<StreamId, String>,
}

fn election(id: Option<&v1::Uint128>) -> Option<u128> {
    id.map(|v| u128::from(*v))
}

fn role_name(update: &v1::MasterArbitrationUpdate) -> &str {
    update.role.as_ref().map_or("", |r| r.name.as_str())
}

impl Arbitration {
    /// The arbitration of device `device_id`, allowing at most
    /// `max_streams_per_role` live streams per role.
    pub fn new(device_id: u64, max_streams_per_role: usize) -> Self {
        Arbitration {
            device_id,
            max_streams_per_role,
            roles: HashMap::new(),
            streams: HashMap::new(),
        }
    }

    /// The device this arbitration is for.
    pub fn device_id(&self) -> u64 {
        self.device_id
    }

    /// Handles a `MasterArbitrationUpdate` received on `stream`. An error
    /// terminates the stream with its code (the stream's previous state, if
    /// any, is kept until [`Arbitration::close`]).
    pub fn arbitrate(
        &mut self,
        stream: StreamId,
        update: &v1::MasterArbitrationUpdate,
    ) -> Result<Outcome, P4rtError> {
        let name = role_name(update);
        let election_id = election(update.election_id.as_ref());
        let config_set = update.role.as_ref().is_some_and(|r| r.config.is_some());
        let no_role_scheme = || {
            P4rtError::new(
                Code::InvalidArgument,
                "role.config is set, but this switch has no role configuration scheme: \
                 leave it unset for full pipeline access",
            )
        };
        let taken = |role: Option<&Role>| {
            election_id.is_some()
                && role.is_some_and(|r| {
                    r.controllers
                        .iter()
                        .any(|c| c.stream != stream && c.election_id == election_id)
                })
        };
        let in_use = || {
            P4rtError::new(
                Code::InvalidArgument,
                format!(
                    "election id {} is already used by another live controller of role {name:?}",
                    election_id.unwrap_or_default()
                ),
            )
        };

        match self.streams.get(&stream) {
            None => {
                // Rules 1.1 to 1.5, in the spec's order.
                if update.device_id != self.device_id {
                    return Err(P4rtError::new(
                        Code::NotFound,
                        format!(
                            "device id {} is not known (this switch is device {})",
                            update.device_id, self.device_id
                        ),
                    ));
                }
                if taken(self.roles.get(name)) {
                    return Err(in_use());
                }
                if config_set {
                    return Err(no_role_scheme());
                }
                let live = self.roles.get(name).map_or(0, |r| r.controllers.len());
                if live >= self.max_streams_per_role {
                    return Err(P4rtError::new(
                        Code::ResourceExhausted,
                        format!(
                            "role {name:?} already has {live} open streams, the most this \
                             switch accepts"
                        ),
                    ));
                }
                self.streams.insert(stream, name.to_string());
                self.roles
                    .entry(name.to_string())
                    .or_default()
                    .controllers
                    .push(Controller {
                        stream,
                        election_id,
                    });
            }
            Some(current) => {
                // Rules 2.1 to 2.5.
                if update.device_id != self.device_id {
                    return Err(P4rtError::new(
                        Code::FailedPrecondition,
                        format!(
                            "this stream is for device {}, not {}",
                            self.device_id, update.device_id
                        ),
                    ));
                }
                if current != name {
                    return Err(P4rtError::new(
                        Code::FailedPrecondition,
                        format!(
                            "this stream has role {current:?}, not {name:?}: open a new stream \
                             to change roles"
                        ),
                    ));
                }
                if config_set {
                    return Err(no_role_scheme());
                }
                if taken(self.roles.get(name)) {
                    return Err(in_use());
                }
            }
        }

        let (previous_primary, becomes_primary, others) = {
            let role = self.roles.get_mut(name).expect("added above");
            let previous_primary = role.primary();
            let me = role
                .controllers
                .iter_mut()
                .find(|c| c.stream == stream)
                .expect("added above");
            me.election_id = election_id;
            // Unset ids are lower than any id, and Option orders None first.
            let becomes_primary = election_id.is_some() && election_id >= role.highest;
            if becomes_primary {
                role.highest = election_id;
            }
            let others: Vec<StreamId> = role
                .controllers
                .iter()
                .map(|c| c.stream)
                .filter(|s| *s != stream)
                .collect();
            (previous_primary, becomes_primary, others)
        };

        let notices = if becomes_primary {
            // Everyone is told; the new primary last.
            others
                .iter()
                .chain([&stream])
                .map(|s| self.notice(name, *s))
                .collect()
        } else if previous_primary == Some(stream) {
            // A primary downgraded itself: everyone learns there is none.
            [stream]
                .iter()
                .chain(&others)
                .map(|s| self.notice(name, *s))
                .collect()
        } else {
            vec![self.notice(name, stream)]
        };
        Ok(Outcome {
            notices,
            primary: becomes_primary,
        })
    }

    /// Forgets a stream that closed (or broke). If it was the primary, the
    /// other streams of its role are told that there is no primary now.
    pub fn close(&mut self, stream: StreamId) -> Vec<Notice> {
        let Some(name) = self.streams.remove(&stream) else {
            return Vec::new();
        };
        let role = self.roles.get_mut(&name).expect("streams name known roles");
        let was_primary = role.primary() == Some(stream);
        role.controllers.retain(|c| c.stream != stream);
        if !was_primary {
            return Vec::new();
        }
        self.roles[&name]
            .controllers
            .iter()
            .map(|c| self.notice(&name, c.stream))
            .collect()
    }

    /// Checks that a `Write` or `SetForwardingPipelineConfig` with `role`
    /// and `election_id` comes from the primary (spec, "Write RPC": an
    /// unknown role is NOT_FOUND, anyone but the primary PERMISSION_DENIED).
    pub fn check_primary(
        &self,
        role: &str,
        election_id: Option<&v1::Uint128>,
    ) -> Result<(), P4rtError> {
        let Some(r) = self.roles.get(role) else {
            if role.is_empty() {
                return Err(no_primary(role));
            }
            return Err(P4rtError::new(
                Code::NotFound,
                format!("role {role:?} is not known: no controller has arbitrated for it"),
            ));
        };
        match (r.primary(), election(election_id)) {
            (None, _) => Err(no_primary(role)),
            (Some(_), Some(id)) if Some(id) == r.highest => Ok(()),
            (Some(_), id) => Err(P4rtError::new(
                Code::PermissionDenied,
                format!(
                    "election id {} is not the primary's ({}) for role {role:?}: only the \
                     primary may write",
                    id.map_or_else(|| "unset".to_string(), |i| i.to_string()),
                    r.highest.unwrap_or_default()
                ),
            )),
        }
    }

    /// The stream that is primary for `role`, if any.
    pub fn primary(&self, role: &str) -> Option<StreamId> {
        self.roles.get(role).and_then(Role::primary)
    }

    /// The arbitration message a stream that has arbitrated gets now.
    pub fn current_notice(&self, stream: StreamId) -> Option<Notice> {
        let name = self.streams.get(&stream)?;
        Some(self.notice(name, stream))
    }

    /// The role of a stream that has arbitrated.
    pub fn role_of(&self, stream: StreamId) -> Option<&str> {
        self.streams.get(&stream).map(String::as_str)
    }

    /// The arbitration message `to` gets now (spec, "Client Arbitration
    /// Notifications").
    fn notice(&self, name: &str, to: StreamId) -> Notice {
        let role = &self.roles[name];
        let primary = role.primary();
        let (code, message) = match primary {
            Some(p) if p == to => (Code::Ok, "you are the primary"),
            Some(_) => (Code::AlreadyExists, "another controller is the primary"),
            None => (Code::NotFound, "there is no primary"),
        };
        Notice {
            to,
            update: v1::MasterArbitrationUpdate {
                device_id: self.device_id,
                role: (!name.is_empty()).then(|| v1::Role {
                    name: name.to_string(),
                    ..Default::default()
                }),
                election_id: role.highest.map(Into::into),
                status: Some(rpc::Status {
                    code: code as i32,
                    message: message.to_string(),
                    details: Vec::new(),
                }),
            },
        }
    }
}

fn no_primary(role: &str) -> P4rtError {
    P4rtError::new(
        Code::PermissionDenied,
        format!("role {role:?} has no primary controller: open a StreamChannel and arbitrate"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEV: u64 = 1;

    fn update(
        device_id: u64,
        role: &str,
        election_id: Option<u128>,
    ) -> v1::MasterArbitrationUpdate {
        v1::MasterArbitrationUpdate {
            device_id,
            role: (!role.is_empty()).then(|| v1::Role {
                name: role.into(),
                ..Default::default()
            }),
            election_id: election_id.map(Into::into),
            status: None,
        }
    }

    /// (stream, status code, election id) of each notice.
    fn summary(notices: &[Notice]) -> Vec<(StreamId, Code, Option<u128>)> {
        notices
            .iter()
            .map(|n| {
                (
                    n.to,
                    Code::try_from(n.update.status.as_ref().unwrap().code).unwrap(),
                    n.update.election_id.map(u128::from),
                )
            })
            .collect()
    }

    #[test]
    fn first_primary_then_backup_then_takeover() {
        let mut a = Arbitration::new(DEV, 8);
        let out = a.arbitrate(1, &update(DEV, "", Some(10))).unwrap();
        assert!(out.primary);
        assert_eq!(summary(&out.notices), [(1, Code::Ok, Some(10))]);

        // A lower id: a backup, told alone, with the primary's id.
        let out = a.arbitrate(2, &update(DEV, "", Some(5))).unwrap();
        assert!(!out.primary);
        assert_eq!(summary(&out.notices), [(2, Code::AlreadyExists, Some(10))]);
        a.check_primary("", Some(&10u128.into())).unwrap();
        assert_eq!(
            a.check_primary("", Some(&5u128.into())).unwrap_err().code,
            Code::PermissionDenied
        );

        // A higher id takes over: everyone is told, the new primary last.
        let out = a.arbitrate(3, &update(DEV, "", Some(20))).unwrap();
        assert!(out.primary);
        assert_eq!(
            summary(&out.notices),
            [
                (1, Code::AlreadyExists, Some(20)),
                (2, Code::AlreadyExists, Some(20)),
                (3, Code::Ok, Some(20)),
            ]
        );
        assert_eq!(
            a.check_primary("", Some(&10u128.into())).unwrap_err().code,
            Code::PermissionDenied
        );
        a.check_primary("", Some(&20u128.into())).unwrap();
    }

    #[test]
    fn closing_the_primary_leaves_no_primary_until_a_high_enough_id() {
        let mut a = Arbitration::new(DEV, 8);
        a.arbitrate(1, &update(DEV, "", Some(10))).unwrap();
        a.arbitrate(2, &update(DEV, "", Some(9))).unwrap();
        a.arbitrate(3, &update(DEV, "", None)).unwrap();

        // A backup closing tells no one.
        assert!(a.close(3).is_empty());
        let notices = a.close(1);
        assert_eq!(summary(&notices), [(2, Code::NotFound, Some(10))]);
        assert_eq!(a.primary(""), None);
        assert_eq!(
            a.check_primary("", Some(&9u128.into())).unwrap_err().code,
            Code::PermissionDenied
        );

        // Re-sending a lower id keeps it a backup; 10 (the highest seen) wins.
        let out = a.arbitrate(2, &update(DEV, "", Some(9))).unwrap();
        assert_eq!(summary(&out.notices), [(2, Code::NotFound, Some(10))]);
        let out = a.arbitrate(2, &update(DEV, "", Some(10))).unwrap();
        assert!(out.primary);
        assert_eq!(summary(&out.notices), [(2, Code::Ok, Some(10))]);
    }

    #[test]
    fn a_primary_that_downgrades_tells_everyone() {
        let mut a = Arbitration::new(DEV, 8);
        a.arbitrate(1, &update(DEV, "", Some(10))).unwrap();
        a.arbitrate(2, &update(DEV, "", Some(3))).unwrap();
        let out = a.arbitrate(1, &update(DEV, "", Some(4))).unwrap();
        assert!(!out.primary);
        assert_eq!(
            summary(&out.notices),
            [(1, Code::NotFound, Some(10)), (2, Code::NotFound, Some(10))]
        );
    }

    #[test]
    fn bad_arbitration_messages() {
        let mut a = Arbitration::new(DEV, 2);
        let code = |r: Result<Outcome, P4rtError>| r.unwrap_err().code;
        assert_eq!(
            code(a.arbitrate(1, &update(7, "", Some(1)))),
            Code::NotFound
        );
        assert_eq!(
            code(a.arbitrate(1, &update(0, "", Some(1)))),
            Code::NotFound
        );
        a.arbitrate(1, &update(DEV, "", Some(5))).unwrap();
        // The same id on a second live stream of the role.
        assert_eq!(
            code(a.arbitrate(2, &update(DEV, "", Some(5)))),
            Code::InvalidArgument
        );
        // ... is fine in another role.
        a.arbitrate(2, &update(DEV, "other", Some(5))).unwrap();
        // An unset id is never "in use".
        a.arbitrate(3, &update(DEV, "", None)).unwrap();
        // The role's stream limit.
        assert_eq!(
            code(a.arbitrate(4, &update(DEV, "", Some(1)))),
            Code::ResourceExhausted
        );
        // A live stream changes device or role.
        assert_eq!(
            code(a.arbitrate(1, &update(2, "", Some(5)))),
            Code::FailedPrecondition
        );
        assert_eq!(
            code(a.arbitrate(1, &update(DEV, "other", Some(5)))),
            Code::FailedPrecondition
        );
        // A live stream takes another live stream's id.
        a.arbitrate(3, &update(DEV, "", Some(4))).unwrap();
        assert_eq!(
            code(a.arbitrate(3, &update(DEV, "", Some(5)))),
            Code::InvalidArgument
        );
        // A role configuration: there is no scheme to match.
        let mut with_config = update(DEV, "cfg", Some(1));
        with_config.role.as_mut().unwrap().config = Some(Default::default());
        assert_eq!(code(a.arbitrate(9, &with_config)), Code::InvalidArgument);
        // Nothing above changed the primary.
        assert_eq!(a.primary(""), Some(1));
        // An unknown named role.
        assert_eq!(
            a.check_primary("nobody", Some(&1u128.into()))
                .unwrap_err()
                .code,
            Code::NotFound
        );
        assert_eq!(
            a.check_primary("", None).unwrap_err().code,
            Code::PermissionDenied
        );
    }

    #[test]
    fn the_same_id_can_come_back_after_its_stream_closed() {
        let mut a = Arbitration::new(DEV, 8);
        a.arbitrate(1, &update(DEV, "", Some(7))).unwrap();
        a.close(1);
        let out = a.arbitrate(2, &update(DEV, "", Some(7))).unwrap();
        assert!(out.primary);
        a.check_primary("", Some(&7u128.into())).unwrap();
    }
}
