//! The P4Runtime client of one switch: connection, StreamChannel
//! arbitration, pipeline push, batched writes and reads. Thin: every
//! message is built and decoded by `beamer_pipeline::p4rt`.

use crate::config::SwitchSpec;
use crate::plan::Installed;
use beamer_pipeline::DropReason;
use beamer_pipeline::entries::Update;
use beamer_pipeline::p4rt::p4runtime_proto::google::rpc::Code;
use beamer_pipeline::p4rt::p4runtime_proto::p4::v1;
use beamer_pipeline::p4rt::p4runtime_proto::p4::v1::p4_runtime_client::P4RuntimeClient;
use beamer_pipeline::p4rt::p4runtime_proto::prost::Message;
use beamer_pipeline::p4rt::p4runtime_proto::status::batch_errors;
use beamer_pipeline::p4rt::p4runtime_proto::tonic;
use beamer_pipeline::p4rt::{Counts, EntryAction, Pipeline, Write, update_to_p4};
use beamer_pipeline::schema;
use std::fmt;
use std::time::Duration;
use tokio::sync::mpsc;
use tonic::transport::{Channel, Endpoint};

/// gRPC message size limit, both ways: device configs (a Tofino binary
/// with its context, a large bmv2 JSON) run to many megabytes.
pub const MAX_MESSAGE_BYTES: usize = 256 << 20;

/// Time without a frame from the switch after which the client sends an
/// HTTP/2 keepalive ping on a connection with a call open (the stream
/// channel always is): 6 minutes.
///
/// gRPC C++ servers (bmv2's PI server, Stratum) allow a client one ping
/// per 5 minutes while they send no data or headers (their
/// `min_recv_ping_interval_without_data`), and answer the third ping
/// that comes sooner with GOAWAY `too_many_pings`, which drops every call
/// on the connection. A backup controller waiting on the stream channel,
/// or a primary with a long `probe_interval`, gets nothing from the
/// switch for long stretches, so shorter intervals (5 s here, before)
/// made bmv2 close the connection every 20 s or so. A dead switch is
/// found by the primary's periodic pipeline probe (an RPC with
/// `rpc_timeout`), and by a backup's re-sent arbitration requests; this
/// ping is the last resort for a silent connection, kept above the
/// servers' minimum with a margin for timer slack.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(6 * 60);

/// How long a keepalive ping may go unanswered before the connection is
/// given up (gRPC's default).
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Why an exchange with a switch failed, sorted by what the caller does
/// about it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SwitchError {
    /// The switch cannot be reached (connect, transport, deadline): retry
    /// with backoff.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The switch has no pipeline (FAILED_PRECONDITION): push it again.
    #[error("no pipeline on the switch: {0}")]
    NoPipeline(String),
    /// Another controller is primary, or we lost primary status
    /// (PERMISSION_DENIED): arbitrate again.
    #[error("not primary: {0}")]
    NotPrimary(String),
    /// The switch refused the pipeline config (INVALID_ARGUMENT and such),
    /// with its status message.
    #[error("pipeline rejected: {0}")]
    PipelineRejected(String),
    /// The switch refused updates of a write: the switch is out of sync.
    #[error("write rejected: {0}")]
    Rejected(String),
    /// The switch answered something this pipeline cannot read.
    #[error("unexpected answer: {0}")]
    Protocol(String),
}

impl SwitchError {
    /// The message without the kind.
    pub fn detail(&self) -> &str {
        match self {
            SwitchError::Unreachable(m)
            | SwitchError::NoPipeline(m)
            | SwitchError::NotPrimary(m)
            | SwitchError::PipelineRejected(m)
            | SwitchError::Rejected(m)
            | SwitchError::Protocol(m) => m,
        }
    }

    /// Sorts a gRPC status of `what` (an RPC name) into an error kind.
    pub fn from_status(what: &str, s: &tonic::Status) -> Self {
        let text = format!("{what}: {} ({:?})", s.message(), s.code());
        match s.code() {
            tonic::Code::FailedPrecondition => SwitchError::NoPipeline(text),
            tonic::Code::PermissionDenied => SwitchError::NotPrimary(text),
            tonic::Code::Unavailable
            | tonic::Code::DeadlineExceeded
            | tonic::Code::Cancelled
            | tonic::Code::Aborted => SwitchError::Unreachable(text),
            // "Service was not ready" and other transport failures come as
            // UNKNOWN without P4Runtime details.
            tonic::Code::Unknown if batch_errors(s).is_empty() && s.details().is_empty() => {
                SwitchError::Unreachable(text)
            }
            _ => SwitchError::Protocol(text),
        }
    }
}

/// What the stream channel tells us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// We are the primary controller.
    Primary,
    /// Another controller is primary, or none is (and we are a backup):
    /// the switch's message.
    Backup(String),
    /// The stream ended (switch restarted, connection lost).
    Closed(String),
}

/// A 64-bit FNV-1a hash of the P4Info and device config: the pipeline's
/// cookie, so that a reconnect can tell whether the switch still runs
/// what we pushed without fetching megabytes back.
pub fn pipeline_cookie(spec: &SwitchSpec) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    feed(&spec.p4info.encode_to_vec());
    feed(&[0xff]);
    feed(&spec.device_config.bytes);
    h
}

/// A connected P4Runtime client for one device.
#[derive(Clone)]
pub struct Client {
    rpc: P4RuntimeClient<Channel>,
    device_id: u64,
    election_id: v1::Uint128,
    pipeline: Pipeline,
    rpc_timeout: Duration,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Client(device {})", self.device_id)
    }
}

impl Client {
    /// Connects to the switch's P4Runtime server.
    pub async fn connect(
        spec: &SwitchSpec,
        election_id: u128,
        connect_timeout: Duration,
        rpc_timeout: Duration,
    ) -> Result<Client, SwitchError> {
        let uri = if spec.address.contains("://") {
            spec.address.clone()
        } else {
            format!("http://{}", spec.address)
        };
        let endpoint = Endpoint::from_shared(uri)
            .map_err(|e| SwitchError::Unreachable(format!("bad address {}: {e}", spec.address)))?
            .connect_timeout(connect_timeout)
            .tcp_nodelay(true)
            // Pings the switch's gRPC server accepts (see
            // KEEPALIVE_INTERVAL), and none on a connection without a call:
            // gRPC servers allow those once in two hours.
            .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
            .keep_alive_timeout(KEEPALIVE_TIMEOUT)
            .keep_alive_while_idle(false)
            // Per-update errors of a big batch travel in the trailers.
            .http2_max_header_list_size(16 << 20)
            .http2_adaptive_window(true);
        let channel = tokio::time::timeout(connect_timeout, endpoint.connect())
            .await
            .map_err(|_| {
                SwitchError::Unreachable(format!(
                    "connect to {}: timed out after {connect_timeout:?}",
                    spec.address
                ))
            })?
            .map_err(|e| {
                SwitchError::Unreachable(format!(
                    "connect to {}: {}",
                    spec.address,
                    error_chain(&e)
                ))
            })?;
        let rpc = P4RuntimeClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        Ok(Client {
            rpc,
            device_id: spec.device_id,
            election_id: election_id.into(),
            pipeline: spec.pipeline,
            rpc_timeout,
        })
    }

    async fn deadline<T>(
        &self,
        what: &str,
        f: impl Future<Output = Result<T, tonic::Status>>,
    ) -> Result<T, SwitchError> {
        match tokio::time::timeout(self.rpc_timeout, f).await {
            Err(_) => Err(SwitchError::Unreachable(format!(
                "{what}: no answer within {:?}",
                self.rpc_timeout
            ))),
            Ok(Err(s)) => Err(SwitchError::from_status(what, &s)),
            Ok(Ok(v)) => Ok(v),
        }
    }

    fn arbitration(&self) -> v1::StreamMessageRequest {
        v1::StreamMessageRequest {
            update: Some(v1::stream_message_request::Update::Arbitration(
                v1::MasterArbitrationUpdate {
                    device_id: self.device_id,
                    election_id: Some(self.election_id),
                    ..Default::default()
                },
            )),
        }
    }

    /// Opens the stream channel and asks to be primary. Returns a handle
    /// to ask again and the stream's events; the first event answers the
    /// request.
    pub async fn open_stream(
        &mut self,
    ) -> Result<(Arbiter, mpsc::Receiver<StreamEvent>), SwitchError> {
        let (tx, rx) = mpsc::channel::<v1::StreamMessageRequest>(4);
        tx.send(self.arbitration())
            .await
            .map_err(|_| SwitchError::Unreachable("stream closed".into()))?;
        let mut rpc = self.rpc.clone();
        let stream = self
            .deadline(
                "StreamChannel",
                rpc.stream_channel(tokio_stream::wrappers::ReceiverStream::new(rx)),
            )
            .await?;
        let mut inbound = stream.into_inner();
        let (ev_tx, ev_rx) = mpsc::channel(16);
        let device_id = self.device_id;
        let ours = self.election_id;
        let reader = tokio::spawn(async move {
            let closed = loop {
                match inbound.message().await {
                    Ok(Some(msg)) => {
                        let Some(event) = stream_event(msg, device_id, ours) else {
                            continue;
                        };
                        if ev_tx.send(event).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => break "the switch closed the stream".to_string(),
                    Err(s) => break format!("stream error: {} ({:?})", s.message(), s.code()),
                }
            };
            let _ = ev_tx.send(StreamEvent::Closed(closed)).await;
        });
        Ok((
            Arbiter {
                tx,
                request: self.arbitration(),
                _reader: std::sync::Arc::new(AbortOnDrop(reader)),
            },
            ev_rx,
        ))
    }

    /// The cookie of the pipeline the switch runs; `NoPipeline` when it
    /// runs none.
    pub async fn pipeline_cookie(&mut self) -> Result<Option<u64>, SwitchError> {
        let req = v1::GetForwardingPipelineConfigRequest {
            device_id: self.device_id,
            response_type: v1::get_forwarding_pipeline_config_request::ResponseType::CookieOnly
                as i32,
        };
        let mut rpc = self.rpc.clone();
        let resp = self
            .deadline(
                "GetForwardingPipelineConfig",
                rpc.get_forwarding_pipeline_config(req),
            )
            .await?
            .into_inner();
        Ok(resp.config.and_then(|c| c.cookie).map(|c| c.cookie))
    }

    /// Pushes the P4Info and device config (VERIFY_AND_COMMIT): the switch
    /// starts from empty tables.
    pub async fn set_pipeline(
        &mut self,
        spec: &SwitchSpec,
        cookie: u64,
    ) -> Result<(), SwitchError> {
        let req = v1::SetForwardingPipelineConfigRequest {
            device_id: self.device_id,
            election_id: Some(self.election_id),
            action: v1::set_forwarding_pipeline_config_request::Action::VerifyAndCommit as i32,
            config: Some(v1::ForwardingPipelineConfig {
                p4info: Some((*spec.p4info).clone()),
                p4_device_config: (*spec.device_config.bytes).clone(),
                cookie: Some(v1::forwarding_pipeline_config::Cookie { cookie }),
            }),
            ..Default::default()
        };
        let mut rpc = self.rpc.clone();
        let timeout = self.rpc_timeout;
        match tokio::time::timeout(timeout, rpc.set_forwarding_pipeline_config(req)).await {
            Err(_) => Err(SwitchError::Unreachable(format!(
                "SetForwardingPipelineConfig: no answer within {timeout:?}"
            ))),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(s)) => Err(
                match SwitchError::from_status("SetForwardingPipelineConfig", &s) {
                    e @ (SwitchError::Unreachable(_) | SwitchError::NotPrimary(_)) => e,
                    _ => SwitchError::PipelineRejected(format!("{} ({:?})", s.message(), s.code())),
                },
            ),
        }
    }

    /// Writes `updates` in one `WriteRequest` (CONTINUE_ON_ERROR). A
    /// rejected batch names each failed update with its P4Runtime error.
    pub async fn write(&mut self, updates: &[Update]) -> Result<(), SwitchError> {
        let req = v1::WriteRequest {
            device_id: self.device_id,
            election_id: Some(self.election_id),
            updates: updates.iter().map(update_to_p4).collect(),
            atomicity: v1::write_request::Atomicity::ContinueOnError as i32,
            ..Default::default()
        };
        let mut rpc = self.rpc.clone();
        let timeout = self.rpc_timeout;
        let status = match tokio::time::timeout(timeout, rpc.write(req)).await {
            Err(_) => {
                return Err(SwitchError::Unreachable(format!(
                    "Write: no answer within {timeout:?}"
                )));
            }
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(s)) => s,
        };
        let errors = batch_errors(&status);
        if errors.is_empty() {
            return Err(match SwitchError::from_status("Write", &status) {
                SwitchError::Protocol(m) => SwitchError::Rejected(m),
                e => e,
            });
        }
        Err(describe_batch_errors(updates, &errors))
    }

    /// Reads every table entry and the config table's default entry.
    pub async fn read_installed(&mut self) -> Result<Installed, SwitchError> {
        let table = |te: v1::TableEntry| v1::Entity {
            entity: Some(v1::entity::Entity::TableEntry(te)),
        };
        let req = v1::ReadRequest {
            device_id: self.device_id,
            entities: vec![
                table(v1::TableEntry::default()),
                table(v1::TableEntry {
                    table_id: schema::CONFIG.id,
                    is_default_action: true,
                    ..Default::default()
                }),
            ],
            ..Default::default()
        };
        let mut rpc = self.rpc.clone();
        let timeout = self.rpc_timeout;
        let pipeline = self.pipeline;
        let read = async move {
            let mut stream = rpc.read(req).await?.into_inner();
            let mut installed = Installed {
                config: None,
                entries: Default::default(),
            };
            let mut skipped = 0usize;
            while let Some(resp) = stream.message().await? {
                for e in resp.entities {
                    let Some(v1::entity::Entity::TableEntry(te)) = e.entity else {
                        continue;
                    };
                    if !decode_into(&pipeline, te, &mut installed) {
                        skipped += 1;
                    }
                }
            }
            Ok::<_, tonic::Status>((installed, skipped))
        };
        let (installed, skipped) = match tokio::time::timeout(timeout, read).await {
            Err(_) => {
                return Err(SwitchError::Unreachable(format!(
                    "Read: no answer within {timeout:?}"
                )));
            }
            Ok(Err(s)) => return Err(SwitchError::from_status("Read", &s)),
            Ok(Ok(v)) => v,
        };
        if skipped > 0 {
            tracing::warn!(
                skipped,
                "read back entries of tables this pipeline does not have"
            );
        }
        Ok(installed)
    }
}

impl Client {
    /// Reads every cell of the drop counter, resolved in the P4Info the
    /// switch runs (bf-p4c chooses its own id for it).
    pub async fn read_drops(&mut self) -> Result<Vec<(DropReason, Counts)>, SwitchError> {
        let req = v1::ReadRequest {
            device_id: self.device_id,
            entities: vec![v1::Entity {
                entity: Some(v1::entity::Entity::CounterEntry(v1::CounterEntry {
                    counter_id: self.pipeline.drops_counter_id,
                    ..Default::default()
                })),
            }],
            ..Default::default()
        };
        let mut rpc = self.rpc.clone();
        let read = async move {
            let mut stream = rpc.read(req).await?.into_inner();
            let mut out = Vec::new();
            while let Some(resp) = stream.message().await? {
                for e in resp.entities {
                    let Some(v1::entity::Entity::CounterEntry(c)) = e.entity else {
                        continue;
                    };
                    let reason = c
                        .index
                        .and_then(|i| usize::try_from(i.index).ok())
                        .and_then(DropReason::from_index);
                    let counts = c.data.as_ref().map(Counts::from_p4);
                    if let (Some(r), Some(Ok(n))) = (reason, counts) {
                        out.push((r, n));
                    }
                }
            }
            Ok::<_, tonic::Status>(out)
        };
        match tokio::time::timeout(self.rpc_timeout, read).await {
            Err(_) => Err(SwitchError::Unreachable("Read (drops): no answer".into())),
            Ok(Err(s)) => Err(SwitchError::from_status("Read (drops)", &s)),
            Ok(Ok(v)) => Ok(v),
        }
    }
}

/// Sends arbitration requests on an open stream. Dropping the last clone
/// closes the stream, which gives up primary status.
#[derive(Debug, Clone)]
pub struct Arbiter {
    tx: mpsc::Sender<v1::StreamMessageRequest>,
    request: v1::StreamMessageRequest,
    _reader: std::sync::Arc<AbortOnDrop>,
}

/// Stops the stream's reader (and so drops the stream) when dropped.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Arbiter {
    /// Asks again to be primary (after losing it).
    pub async fn request_primary(&self) -> Result<(), SwitchError> {
        self.tx
            .send(self.request.clone())
            .await
            .map_err(|_| SwitchError::Unreachable("stream closed".into()))
    }
}

fn stream_event(
    msg: v1::StreamMessageResponse,
    device_id: u64,
    ours: v1::Uint128,
) -> Option<StreamEvent> {
    use v1::stream_message_response::Update as U;
    match msg.update? {
        U::Arbitration(a) => {
            if a.device_id != device_id && a.device_id != 0 {
                return None;
            }
            let code = a.status.as_ref().map_or(Code::Ok as i32, |s| s.code);
            // The switch tells each controller the primary's election id;
            // OK means we are it.
            if code == Code::Ok as i32 && a.election_id.is_none_or(|e| e == ours) {
                Some(StreamEvent::Primary)
            } else {
                let primary = a
                    .election_id
                    .map(|e| u128::from(e).to_string())
                    .unwrap_or_else(|| "none".into());
                let message = a.status.map(|s| s.message).unwrap_or_default();
                Some(StreamEvent::Backup(format!(
                    "primary election id {primary}, ours {}: {message} (code {code})",
                    u128::from(ours)
                )))
            }
        }
        U::Error(e) => {
            tracing::warn!(code = e.canonical_code, message = %e.message, "stream error from switch");
            None
        }
        _ => None,
    }
}

/// Decodes one read-back table entry into `installed`; false when it is
/// not an entry of this pipeline at all.
fn decode_into(pipeline: &Pipeline, te: v1::TableEntry, installed: &mut Installed) -> bool {
    if te.is_default_action {
        if te.table_id != schema::CONFIG.id {
            // Const miss actions of the other tables: nothing to hold.
            return true;
        }
        // The config entry decodes as the MODIFY that would set it.
        let update = v1::Update {
            r#type: v1::update::Type::Modify as i32,
            entity: Some(v1::Entity {
                entity: Some(v1::entity::Entity::TableEntry(te)),
            }),
        };
        if let Ok(Write::SetConfig(c)) = pipeline.write_from_p4(&update) {
            installed.config = Some(c);
        }
        return true;
    }
    match pipeline.entry_from_p4(&te) {
        Ok(e) => {
            installed.entries.insert(e.key(), Some(EntryAction::of(&e)));
            true
        }
        Err(_) => match pipeline.key_from_p4(&te) {
            // A key we know with an action we cannot read: overwrite it.
            Ok(k) => {
                installed.entries.insert(k, None);
                true
            }
            Err(_) => false,
        },
    }
}

/// A one-line account of a rejected batch: how many updates failed, and
/// the first few with their P4Runtime code and message.
pub fn describe_batch_errors(updates: &[Update], errors: &[v1::Error]) -> SwitchError {
    let failed: Vec<(usize, &v1::Error)> = errors
        .iter()
        .enumerate()
        .filter(|(_, e)| e.canonical_code != Code::Ok as i32)
        .collect();
    if !failed.is_empty()
        && failed
            .iter()
            .all(|(_, e)| e.canonical_code == Code::FailedPrecondition as i32)
    {
        return SwitchError::NoPipeline(failed[0].1.message.clone());
    }
    if !failed.is_empty()
        && failed
            .iter()
            .all(|(_, e)| e.canonical_code == Code::PermissionDenied as i32)
    {
        return SwitchError::NotPrimary(failed[0].1.message.clone());
    }
    let mut text = format!("{} of {} updates failed", failed.len(), updates.len());
    for (i, e) in failed.iter().take(3) {
        let code = Code::try_from(e.canonical_code).map_or_else(
            |_| e.canonical_code.to_string(),
            |c| c.as_str_name().to_string(),
        );
        let what = updates
            .get(*i)
            .map_or_else(|| "?".to_string(), describe_update);
        text.push_str(&format!("; #{i} {what}: {code}: {}", e.message));
    }
    if failed.len() > 3 {
        text.push_str("; ...");
    }
    SwitchError::Rejected(text)
}

/// A short description of an update, for logs.
pub fn describe_update(u: &Update) -> String {
    match u {
        Update::Insert(e) => format!("INSERT {:?}", e.key()),
        Update::Modify(e) => format!("MODIFY {:?}", e.key()),
        Update::Delete(k) => format!("DELETE {k:?}"),
        Update::SetConfig(c) => format!(
            "MODIFY config(tunnel_src {}, generation {})",
            c.tunnel_src, c.generation
        ),
    }
}

/// An error and its sources, each said once (transport errors repeat
/// their source's text).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if parts.last() != Some(&t) {
            parts.push(t);
        }
        cur = c.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use beamer_pipeline::entries::{BucketAction, BucketKey, Entry};
    use std::net::Ipv4Addr;

    fn bucket(i: u32) -> Update {
        Update::Insert(Entry::Bucket(
            BucketKey {
                vip_id: 0,
                bucket: i,
            },
            BucketAction {
                dip: Ipv4Addr::new(10, 0, 0, 1),
                prev_dip: Ipv4Addr::UNSPECIFIED,
                change_time: 0,
            },
        ))
    }

    fn err(code: Code, msg: &str) -> v1::Error {
        v1::Error {
            canonical_code: code as i32,
            message: msg.into(),
            ..Default::default()
        }
    }

    /// What a gRPC C++ server (gRPC 1.51 in bmv2/PI, Stratum) accepts by
    /// default: one ping per `min_recv_ping_interval_without_data` while
    /// it sends nothing.
    const GRPC_MIN_RECV_PING_INTERVAL: Duration = Duration::from_secs(5 * 60);

    #[test]
    fn keepalive_pings_stay_within_what_grpc_servers_accept() {
        assert!(KEEPALIVE_INTERVAL > GRPC_MIN_RECV_PING_INTERVAL);
        // A ping's answer is awaited for less time than the next ping.
        assert!(KEEPALIVE_TIMEOUT < KEEPALIVE_INTERVAL);
    }

    #[test]
    fn batch_errors_name_the_failed_updates() {
        let updates = [bucket(0), bucket(1), bucket(2)];
        let errors = [
            err(Code::Ok, ""),
            err(Code::AlreadyExists, "entry exists"),
            err(Code::Ok, ""),
        ];
        let SwitchError::Rejected(text) = describe_batch_errors(&updates, &errors) else {
            panic!("expected a rejection");
        };
        assert!(text.starts_with("1 of 3 updates failed"), "{text}");
        assert!(
            text.contains("#1 INSERT Bucket(BucketKey { vip_id: 0, bucket: 1 })"),
            "{text}"
        );
        assert!(text.contains("ALREADY_EXISTS: entry exists"), "{text}");
    }

    #[test]
    fn a_switch_without_pipeline_or_primary_is_told_apart() {
        let updates = [bucket(0), bucket(1)];
        let all = |c| [err(c, "x"), err(c, "x")];
        assert!(matches!(
            describe_batch_errors(&updates, &all(Code::FailedPrecondition)),
            SwitchError::NoPipeline(_)
        ));
        assert!(matches!(
            describe_batch_errors(&updates, &all(Code::PermissionDenied)),
            SwitchError::NotPrimary(_)
        ));
        let s = tonic::Status::failed_precondition("no pipeline");
        assert!(matches!(
            SwitchError::from_status("Read", &s),
            SwitchError::NoPipeline(_)
        ));
        let s = tonic::Status::unavailable("connection refused");
        assert!(matches!(
            SwitchError::from_status("Read", &s),
            SwitchError::Unreachable(_)
        ));
    }

    #[test]
    fn arbitration_answers() {
        let ours: v1::Uint128 = 7u128.into();
        let msg = |code: Code, id: u128| v1::StreamMessageResponse {
            update: Some(v1::stream_message_response::Update::Arbitration(
                v1::MasterArbitrationUpdate {
                    device_id: 1,
                    election_id: Some(id.into()),
                    status: Some(
                        beamer_pipeline::p4rt::p4runtime_proto::google::rpc::Status {
                            code: code as i32,
                            message: "m".into(),
                            details: vec![],
                        },
                    ),
                    ..Default::default()
                },
            )),
        };
        assert_eq!(
            stream_event(msg(Code::Ok, 7), 1, ours),
            Some(StreamEvent::Primary)
        );
        assert!(matches!(
            stream_event(msg(Code::AlreadyExists, 9), 1, ours),
            Some(StreamEvent::Backup(m)) if m.contains("primary election id 9")
        ));
        // Another device's arbitration is not ours.
        assert_eq!(stream_event(msg(Code::Ok, 7), 2, ours), None);
    }
}
