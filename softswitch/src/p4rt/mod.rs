//! The software switch as a P4Runtime target: a tonic gRPC server that
//! serves P4Runtime v1 (v1.5.0 semantics) for one device while the data
//! path forwards.
//!
//! - [`Builder`] (from [`builder`]): device id, limits, an optional
//!   pre-installed P4Info; then [`Builder::serve`] (a future, for a tokio
//!   runtime you own), [`Builder::spawn`] (its own thread and runtime, for
//!   a synchronous caller such as `beamer switch --p4rt`), or
//!   [`Builder::service`] (to add to your own tonic server). [`serve`] is
//!   the one-line form.
//! - [`arbitration`]: primary and backup controllers (sans-IO).
//! - [`device`]: pipeline config, `Write` and `Read` on the [`Switch`]
//!   (sans-IO).
//! - [`bench`](mod@bench): write throughput over loopback gRPC.
//!
//! What is served (codes are the spec's; messages name the table, field or
//! entry):
//! - `StreamChannel`: arbitration per (device, role); primary OK, backups
//!   ALREADY_EXISTS (NOT_FOUND while there is no primary), with the
//!   highest election id; everyone told on every change. A duplicate
//!   election id ends the stream with INVALID_ARGUMENT, an unknown device
//!   with NOT_FOUND. Packet-out, digests: a `StreamError`.
//! - `SetForwardingPipelineConfig`: VERIFY, VERIFY_AND_SAVE, COMMIT,
//!   VERIFY_AND_COMMIT (clears the tables), RECONCILE_AND_COMMIT (keeps
//!   them when the pipeline is unchanged); primary only. A P4Info that is
//!   not the Beamer pipeline is INVALID_ARGUMENT listing every difference.
//!   `p4_device_config` is opaque here (the program is built in): stored
//!   and given back as is, so an empty one is fine.
//! - `GetForwardingPipelineConfig`: the committed config, per
//!   `response_type`; `config` unset before one is set.
//! - `Write`: table entries, the config table's default entry, direct
//!   counters (in entries and as `DirectCounterEntry`), the drop counter;
//!   CONTINUE_ON_ERROR and ROLLBACK_ON_ERROR (DATAPLANE_ATOMIC is
//!   UNIMPLEMENTED, see [`Device::write`]); errors as UNKNOWN with one
//!   `p4.v1.Error` per update. Writes reach the data path through the
//!   switch's snapshot swap: it never stops.
//! - `Read`: wildcards as the spec defines them, counter data on request,
//!   streamed in chunks of at most [`READ_CHUNK_BYTES`].
//! - `Capabilities`: [`P4RUNTIME_API_VERSION`].
//!
//! Limits: a `Write` of more than [`device::MAX_UPDATES_PER_WRITE`]
//! updates is RESOURCE_EXHAUSTED as a whole (nothing applied); a message
//! over [`MAX_MESSAGE_BYTES`] is RESOURCE_EXHAUSTED from gRPC itself, as
//! gRPC C++ servers answer. Note for clients of big batches: the per-update
//! errors travel in gRPC trailers, which clients cap (8 KiB by default in
//! gRPC C++ and Python); raise the client's metadata limit (spec, "gRPC
//! Metadata Maximum Size") to see them for batches of more than about a
//! hundred updates.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use beamer_softswitch::{Switch, p4rt};
//! let switch = Switch::new(Default::default())?;
//! p4rt::serve("0.0.0.0:9559".parse()?, p4rt::DEFAULT_DEVICE_ID, switch).await?;
//! # Ok(()) }
//! ```

pub mod arbitration;
pub mod bench;
pub mod device;
mod service;

pub use device::Device;
pub use service::P4rtService;

use crate::switch::Switch;
use beamer_pipeline::p4rt::P4rtError;
use p4runtime_proto::p4::config::v1::P4Info;
use p4runtime_proto::p4::v1::p4_runtime_server::P4RuntimeServer;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::task::{Context, Poll};
use tonic::codegen::{BoxFuture, Service, http};
use tonic::server::NamedService;

/// The P4Runtime version served (the version of the `.proto` files and of
/// the specification followed).
pub const P4RUNTIME_API_VERSION: &str = "1.5.0";

/// The device id a switch answers to unless told otherwise
/// (p4runtime-shell's default too). 0 is never valid (spec, "Default Role
/// and Default Device ID").
pub const DEFAULT_DEVICE_ID: u64 = 1;

/// The IANA port of P4Runtime, on every address.
pub const DEFAULT_ADDR: &str = "0.0.0.0:9559";

/// The largest gRPC message accepted (spec, "gRPC Server Maximum Receive
/// Message Size": never below the 4 MiB default). 64 MiB holds a `Write`
/// of [`device::MAX_UPDATES_PER_WRITE`] bucket updates.
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// The most entities' bytes in one `ReadResponse`.
pub const READ_CHUNK_BYTES: usize = 1 << 20;

/// Messages queued for one `StreamChannel` client before stream errors are
/// dropped.
pub const STREAM_QUEUE: usize = 64;

/// How long [`ServerHandle::shutdown`] lets requests under way finish
/// before it closes every connection.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// Default for [`Builder::max_streams_per_role`].
pub const MAX_STREAMS_PER_ROLE: usize = 16;

/// The server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listening address could not be bound.
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, #[source] std::io::Error),
    /// The server's runtime or thread could not be started.
    #[error("cannot start the P4Runtime server: {0}")]
    Runtime(#[source] std::io::Error),
    /// The pre-installed P4Info does not describe the switch's pipeline.
    #[error("pre-installed P4Info: {0}")]
    Pipeline(#[source] P4rtError),
    /// The gRPC transport failed.
    #[error("P4Runtime server: {0}")]
    Transport(#[source] tonic::transport::Error),
}

/// Settings of a P4Runtime server for one switch.
#[derive(Debug)]
pub struct Builder {
    switch: Switch,
    device_id: u64,
    max_updates: usize,
    max_message_bytes: usize,
    max_streams_per_role: usize,
    preinstalled: Option<P4Info>,
}

/// A server for `switch` with the defaults: device
/// [`DEFAULT_DEVICE_ID`], no pipeline set.
pub fn builder(switch: Switch) -> Builder {
    Builder {
        switch,
        device_id: DEFAULT_DEVICE_ID,
        max_updates: device::MAX_UPDATES_PER_WRITE,
        max_message_bytes: MAX_MESSAGE_BYTES,
        max_streams_per_role: MAX_STREAMS_PER_ROLE,
        preinstalled: None,
    }
}

/// Serves P4Runtime for `switch` as device `device_id` on `addr` until the
/// future is dropped.
pub fn serve(
    addr: SocketAddr,
    device_id: u64,
    switch: Switch,
) -> impl Future<Output = Result<(), ServeError>> {
    builder(switch).device_id(device_id).serve(addr)
}

impl Builder {
    /// The device id clients must name (not 0).
    pub fn device_id(mut self, id: u64) -> Self {
        self.device_id = id;
        self
    }

    /// The most updates one `Write` may carry (RESOURCE_EXHAUSTED above).
    pub fn max_updates_per_write(mut self, n: usize) -> Self {
        self.max_updates = n;
        self
    }

    /// The largest gRPC message accepted, in bytes.
    pub fn max_message_bytes(mut self, n: usize) -> Self {
        self.max_message_bytes = n;
        self
    }

    /// The most live `StreamChannel`s per role (RESOURCE_EXHAUSTED above).
    pub fn max_streams_per_role(mut self, n: usize) -> Self {
        self.max_streams_per_role = n;
        self
    }

    /// Serves with `p4info` already committed, keeping the switch's
    /// entries (say, loaded from a table file): reads and writes work
    /// before any `SetForwardingPipelineConfig`. Checked when the service
    /// is built: the P4Info must describe the pipeline the switch runs.
    pub fn preinstalled(mut self, p4info: P4Info) -> Self {
        self.preinstalled = Some(p4info);
        self
    }

    /// The service, to add to a tonic server of your own. Fails when a
    /// pre-installed P4Info does not describe the switch's pipeline.
    pub fn service(self) -> Result<P4RuntimeService, P4rtError> {
        let mut device = Device::new(self.switch);
        device.set_max_updates(self.max_updates);
        if let Some(p4info) = self.preinstalled {
            device.preinstall(p4info)?;
        }
        let service = P4rtService::new(self.device_id, device, self.max_streams_per_role);
        let device = service.device();
        let inner = P4RuntimeServer::new(service).max_decoding_message_size(self.max_message_bytes);
        Ok(P4RuntimeService { inner, device })
    }

    /// Serves on `addr` until the future is dropped.
    pub async fn serve(self, addr: SocketAddr) -> Result<(), ServeError> {
        self.serve_with_shutdown(addr, std::future::pending()).await
    }

    /// Serves on `addr` until `shutdown` completes.
    pub async fn serve_with_shutdown(
        self,
        addr: SocketAddr,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServeError> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| ServeError::Bind(addr, e))?;
        self.serve_listener(listener, shutdown).await
    }

    /// Serves on a bound listener until `shutdown` completes.
    pub async fn serve_listener(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServeError> {
        let service = self.service().map_err(ServeError::Pipeline)?;
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
            .map_err(ServeError::Transport)
    }

    /// Serves on `addr` from a thread of its own (with its own tokio
    /// runtime) and returns once the port is bound. For synchronous
    /// callers; the server stops when the handle is shut down or dropped.
    pub fn spawn(self, addr: SocketAddr) -> Result<ServerHandle, ServeError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("p4rt")
            .enable_all()
            .build()
            .map_err(ServeError::Runtime)?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(addr))
            .map_err(|e| ServeError::Bind(addr, e))?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| ServeError::Bind(addr, e))?;
        // Fail here, not in the thread, on a bad pre-installed P4Info.
        if let Some(p4info) = &self.preinstalled {
            Device::new(self.switch.clone())
                .preinstall(p4info.clone())
                .map_err(ServeError::Pipeline)?;
        }
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("p4rt-server".into())
            .spawn(move || {
                let (grace_tx, grace_rx) = tokio::sync::oneshot::channel::<()>();
                let result = runtime.block_on(async move {
                    let serve = self.serve_listener(listener, async move {
                        let _ = stop_rx.await;
                        let _ = grace_tx.send(());
                    });
                    // A graceful shutdown waits for every connection to
                    // close, and a controller's StreamChannel never does:
                    // after SHUTDOWN_GRACE the runtime goes, and them with it.
                    let deadline = async {
                        match grace_rx.await {
                            Ok(()) => tokio::time::sleep(SHUTDOWN_GRACE).await,
                            Err(_) => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        r = serve => r,
                        () = deadline => Ok(()),
                    }
                });
                runtime.shutdown_timeout(SHUTDOWN_GRACE);
                result
            })
            .map_err(ServeError::Runtime)?;
        Ok(ServerHandle {
            local_addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }
}

/// A server started by [`Builder::spawn`].
#[derive(Debug)]
pub struct ServerHandle {
    local_addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), ServeError>>>,
}

impl ServerHandle {
    /// The address the server listens on (the real port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops the server: requests under way get [`SHUTDOWN_GRACE`] to
    /// finish, then every connection (open streams included) is closed.
    pub fn shutdown(mut self) -> Result<(), ServeError> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> Result<(), ServeError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => Ok(()),
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}

/// The P4Runtime gRPC service, ready for a tonic server. It answers a
/// message over the size limit with RESOURCE_EXHAUSTED, like gRPC C++
/// servers (tonic alone says OUT_OF_RANGE).
#[derive(Clone)]
pub struct P4RuntimeService {
    inner: P4RuntimeServer<P4rtService>,
    device: std::sync::Arc<tokio::sync::Mutex<Device>>,
}

impl std::fmt::Debug for P4RuntimeService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("P4RuntimeService").finish_non_exhaustive()
    }
}

impl P4RuntimeService {
    /// The device behind the service.
    pub fn device(&self) -> std::sync::Arc<tokio::sync::Mutex<Device>> {
        std::sync::Arc::clone(&self.device)
    }
}

impl NamedService for P4RuntimeService {
    const NAME: &'static str = <P4RuntimeServer<P4rtService> as NamedService>::NAME;
}

/// tonic's message for a message over the decoding limit.
const TOO_LARGE: &str = "Error, decoded message length too large";

impl<B> Service<http::Request<B>> for P4RuntimeService
where
    P4RuntimeServer<P4rtService>:
        Service<http::Request<B>, Response = http::Response<tonic::body::Body>, Error = Infallible>,
    <P4RuntimeServer<P4rtService> as Service<http::Request<B>>>::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let fut = self.inner.call(req);
        Box::pin(async move {
            let mut response = fut.await?;
            if let Some(s) = tonic::Status::from_header_map(response.headers())
                && s.code() == tonic::Code::OutOfRange
                && s.message().starts_with(TOO_LARGE)
            {
                let remapped = tonic::Status::resource_exhausted(s.message());
                let _ = remapped.add_header(response.headers_mut());
            }
            Ok(response)
        })
    }
}
