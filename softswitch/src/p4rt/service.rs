//! The gRPC face: the tonic `P4Runtime` service over a [`Device`] and an
//! [`Arbitration`]. Thin: device ids, arbitration and locking here,
//! everything else in the sans-IO modules.
//!
//! Concurrency: `Write`, `Read` and `SetForwardingPipelineConfig` take the
//! device's (async) mutex and do their work on a blocking thread, so they
//! are serialized (spec, "Parallelism of Read and Write Requests") and a
//! big batch never stalls the runtime. A `Read` collects its answer under
//! the lock and streams it after, so a slow reader never holds up writes.

use super::arbitration::{Arbitration, Notice, StreamId};
use super::device::Device;
use super::{P4RUNTIME_API_VERSION, READ_CHUNK_BYTES, STREAM_QUEUE};
use beamer_pipeline::p4rt::{Code, P4rtError};
use p4runtime_proto::p4::v1;
use p4runtime_proto::p4::v1::p4_runtime_server::P4Runtime;
use p4runtime_proto::prost::Message;
use p4runtime_proto::status::batch_status;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

type StreamItem = Result<v1::StreamMessageResponse, Status>;

/// The live streams: arbitration state and where to send each stream's
/// messages, under one lock so a notice never goes to a forgotten stream.
struct Sessions {
    arbitration: Arbitration,
    senders: HashMap<StreamId, mpsc::Sender<StreamItem>>,
}

impl Sessions {
    fn deliver(&self, notices: impl IntoIterator<Item = Notice>) {
        for n in notices {
            if let Some(tx) = self.senders.get(&n.to) {
                // The queue is sized so that arbitration notices fit: a
                // client that leaves STREAM_QUEUE messages unread misses
                // them (stream errors are dropped first, see send_error).
                let _ = tx.try_send(Ok(v1::StreamMessageResponse {
                    update: Some(v1::stream_message_response::Update::Arbitration(n.update)),
                }));
            }
        }
    }
}

struct Shared {
    device_id: u64,
    device: Arc<tokio::sync::Mutex<Device>>,
    sessions: Mutex<Sessions>,
    next_stream: AtomicU64,
}

/// The `P4Runtime` gRPC service of one software switch (one device). Made
/// by [`super::Builder::service`].
#[derive(Clone)]
pub struct P4rtService {
    shared: Arc<Shared>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Sessions stay consistent between statements that can panic.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn status(e: &P4rtError) -> Status {
    e.to_status()
}

fn internal(e: tokio::task::JoinError) -> Status {
    Status::internal(format!("the request's worker failed: {e}"))
}

/// The status of a batch some of whose elements failed (spec, "Error
/// Reporting"): UNKNOWN, with one `p4.v1.Error` per element.
fn batch_failure(what: &str, results: &[Result<(), P4rtError>]) -> Option<Status> {
    let failed = results.iter().filter(|r| r.is_err()).count();
    if failed == 0 {
        return None;
    }
    let errors: Vec<v1::Error> = results
        .iter()
        .map(|r| match r {
            Ok(()) => v1::Error::default(),
            Err(e) => e.to_p4_error(),
        })
        .collect();
    let first = results
        .iter()
        .position(|r| r.is_err())
        .and_then(|i| results[i].as_ref().err().map(|e| (i, e)))
        .map(|(i, e)| format!("; first: #{i}: {e}"))
        .unwrap_or_default();
    Some(batch_status(
        &format!("{failed} of {} {what} failed{first}", results.len()),
        &errors,
    ))
}

impl P4rtService {
    pub(super) fn new(device_id: u64, device: Device, max_streams_per_role: usize) -> Self {
        P4rtService {
            shared: Arc::new(Shared {
                device_id,
                device: Arc::new(tokio::sync::Mutex::new(device)),
                sessions: Mutex::new(Sessions {
                    arbitration: Arbitration::new(device_id, max_streams_per_role),
                    senders: HashMap::new(),
                }),
                next_stream: AtomicU64::new(1),
            }),
        }
    }

    /// The device behind the service, for callers that share the process
    /// (tests, the CLI printing counters).
    pub fn device(&self) -> Arc<tokio::sync::Mutex<Device>> {
        Arc::clone(&self.shared.device)
    }

    fn check_device(&self, device_id: u64) -> Result<(), Status> {
        if device_id == self.shared.device_id {
            Ok(())
        } else {
            Err(Status::not_found(format!(
                "device id {device_id} is not known (this switch is device {})",
                self.shared.device_id
            )))
        }
    }

    fn check_primary(&self, role: &str, election_id: Option<&v1::Uint128>) -> Result<(), Status> {
        lock(&self.shared.sessions)
            .arbitration
            .check_primary(role, election_id)
            .map_err(|e| status(&e))
    }
}

impl Shared {
    /// Handles one message of stream `id`. `Err` terminates the stream.
    async fn on_stream_message(
        &self,
        id: StreamId,
        tx: &mpsc::Sender<StreamItem>,
        msg: v1::StreamMessageRequest,
    ) -> Result<(), Status> {
        use v1::stream_error::Details;
        use v1::stream_message_request::Update as U;
        match msg.update {
            Some(U::Arbitration(update)) => {
                let outcome = {
                    let mut s = lock(&self.sessions);
                    let outcome = s
                        .arbitration
                        .arbitrate(id, &update)
                        .map_err(|e| status(&e))?;
                    s.senders.entry(id).or_insert_with(|| tx.clone());
                    let mut notices = outcome.notices;
                    let own = if outcome.primary { notices.pop() } else { None };
                    s.deliver(notices);
                    own
                };
                if outcome.is_some() {
                    // A new primary is told once the writes already under
                    // way are done (spec, "Rules for Handling
                    // MasterArbitrationUpdate Messages").
                    drop(self.device.lock().await);
                    let s = lock(&self.sessions);
                    let notice = s.arbitration.current_notice(id);
                    s.deliver(notice);
                }
                Ok(())
            }
            Some(U::Packet(_)) => {
                let primary = {
                    let s = lock(&self.sessions);
                    s.arbitration
                        .role_of(id)
                        .is_some_and(|r| s.arbitration.primary(r) == Some(id))
                };
                let (code, message) = if primary {
                    (
                        Code::Unimplemented,
                        "packet-out is not supported: the Beamer pipeline has no controller \
                         packet metadata",
                    )
                } else {
                    (
                        Code::PermissionDenied,
                        "only the primary controller may send packets",
                    )
                };
                send_error(tx, code, message, Details::PacketOut(Default::default()));
                Ok(())
            }
            Some(U::DigestAck(ack)) => {
                send_error(
                    tx,
                    Code::InvalidArgument,
                    &format!(
                        "unknown digest id {:#010x}: the Beamer pipeline has no digests",
                        ack.digest_id
                    ),
                    Details::DigestListAck(v1::DigestListAckError {
                        digest_list_ack: Some(ack),
                    }),
                );
                Ok(())
            }
            Some(U::Other(_)) | None => {
                send_error(
                    tx,
                    Code::Unimplemented,
                    "this stream message is not supported",
                    Details::Other(Default::default()),
                );
                Ok(())
            }
        }
    }

    /// Forgets stream `id`; if it was primary, its role's other streams
    /// are told there is no primary.
    fn close_stream(&self, id: StreamId) {
        let mut s = lock(&self.sessions);
        s.senders.remove(&id);
        let notices = s.arbitration.close(id);
        s.deliver(notices);
    }
}

/// Reports an error about a stream message (spec, "Stream Error
/// Reporting"), unless the client's queue is half full: such reports are
/// the first thing dropped under load.
fn send_error(
    tx: &mpsc::Sender<StreamItem>,
    code: Code,
    message: &str,
    details: v1::stream_error::Details,
) {
    if tx.capacity() <= STREAM_QUEUE / 2 {
        return;
    }
    let _ = tx.try_send(Ok(v1::StreamMessageResponse {
        update: Some(v1::stream_message_response::Update::Error(
            v1::StreamError {
                canonical_code: code as i32,
                message: message.to_string(),
                details: Some(details),
                ..Default::default()
            },
        )),
    }));
}

/// Packs read entities into responses of at most [`READ_CHUNK_BYTES`]
/// (well under the 4 MiB a default gRPC client accepts).
#[derive(Default)]
struct Chunker {
    done: Vec<v1::ReadResponse>,
    current: v1::ReadResponse,
    bytes: usize,
}

impl Chunker {
    fn push(&mut self, entity: v1::Entity) {
        let len = entity.encoded_len() + 8;
        if self.bytes + len > READ_CHUNK_BYTES && !self.current.entities.is_empty() {
            self.done.push(std::mem::take(&mut self.current));
            self.bytes = 0;
        }
        self.bytes += len;
        self.current.entities.push(entity);
    }

    fn finish(mut self) -> Vec<v1::ReadResponse> {
        if !self.current.entities.is_empty() {
            self.done.push(self.current);
        }
        self.done
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl P4Runtime for P4rtService {
    async fn write(
        &self,
        request: Request<v1::WriteRequest>,
    ) -> Result<Response<v1::WriteResponse>, Status> {
        let request = request.into_inner();
        // Spec, "Write RPC": device, then primary, then pipeline.
        self.check_device(request.device_id)?;
        let device = Arc::clone(&self.shared.device).lock_owned().await;
        self.check_primary(&request.role, request.election_id.as_ref())?;
        let results = tokio::task::spawn_blocking(move || {
            let mut device = device;
            device.write(&request)
        })
        .await
        .map_err(internal)?
        .map_err(|e| status(&e))?;
        match batch_failure("updates", &results) {
            None => Ok(Response::new(v1::WriteResponse {})),
            Some(s) => Err(s),
        }
    }

    type ReadStream = BoxStream<v1::ReadResponse>;

    async fn read(
        &self,
        request: Request<v1::ReadRequest>,
    ) -> Result<Response<Self::ReadStream>, Status> {
        let request = request.into_inner();
        self.check_device(request.device_id)?;
        // Every role has full pipeline access (no role configuration
        // scheme), so `role` filters nothing.
        let device = Arc::clone(&self.shared.device).lock_owned().await;
        let (chunks, results) = tokio::task::spawn_blocking(move || {
            let mut chunker = Chunker::default();
            let results = device.read(&request.entities, &mut |e| chunker.push(e))?;
            Ok::<_, P4rtError>((chunker.finish(), results))
        })
        .await
        .map_err(internal)?
        .map_err(|e| status(&e))?;
        let mut items: Vec<Result<v1::ReadResponse, Status>> = chunks.into_iter().map(Ok).collect();
        if let Some(s) = batch_failure("read requests", &results) {
            items.push(Err(s));
        }
        Ok(Response::new(Box::pin(tokio_stream::iter(items))))
    }

    async fn set_forwarding_pipeline_config(
        &self,
        request: Request<v1::SetForwardingPipelineConfigRequest>,
    ) -> Result<Response<v1::SetForwardingPipelineConfigResponse>, Status> {
        let request = request.into_inner();
        self.check_device(request.device_id)?;
        let device = Arc::clone(&self.shared.device).lock_owned().await;
        self.check_primary(&request.role, request.election_id.as_ref())?;
        tokio::task::spawn_blocking(move || {
            let mut device = device;
            device.set_pipeline(request.action, request.config)
        })
        .await
        .map_err(internal)?
        .map_err(|e| status(&e))?;
        Ok(Response::new(v1::SetForwardingPipelineConfigResponse {}))
    }

    async fn get_forwarding_pipeline_config(
        &self,
        request: Request<v1::GetForwardingPipelineConfigRequest>,
    ) -> Result<Response<v1::GetForwardingPipelineConfigResponse>, Status> {
        let request = request.into_inner();
        self.check_device(request.device_id)?;
        let device = self.shared.device.lock().await;
        let config = device
            .get_pipeline(request.response_type)
            .map_err(|e| status(&e))?;
        Ok(Response::new(v1::GetForwardingPipelineConfigResponse {
            config,
        }))
    }

    type StreamChannelStream = BoxStream<v1::StreamMessageResponse>;

    async fn stream_channel(
        &self,
        request: Request<Streaming<v1::StreamMessageRequest>>,
    ) -> Result<Response<Self::StreamChannelStream>, Status> {
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(STREAM_QUEUE);
        let id = self.shared.next_stream.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::clone(&self.shared);
        tokio::spawn(async move {
            let end = loop {
                match inbound.message().await {
                    Ok(Some(msg)) => {
                        if let Err(s) = shared.on_stream_message(id, &tx, msg).await {
                            break Some(s);
                        }
                    }
                    // Closed by the client, or broken: either way the
                    // controller is gone.
                    Ok(None) | Err(_) => break None,
                }
            };
            shared.close_stream(id);
            if let Some(s) = end {
                let _ = tx.send(Err(s)).await;
            }
            // Dropping the last sender ends the response stream.
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn capabilities(
        &self,
        request: Request<v1::CapabilitiesRequest>,
    ) -> Result<Response<v1::CapabilitiesResponse>, Status> {
        // Spec, "Capabilities RPC": device_id 0 asks for server-wide ones.
        let device_id = request.into_inner().device_id;
        if device_id != 0 {
            self.check_device(device_id)?;
        }
        Ok(Response::new(v1::CapabilitiesResponse {
            p4runtime_api_version: P4RUNTIME_API_VERSION.to_string(),
            experimental: None,
        }))
    }
}
