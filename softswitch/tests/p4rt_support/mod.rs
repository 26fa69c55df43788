//! Shared by the `p4rt_*` tests: an in-process P4Runtime server on a free
//! loopback port, a tonic client, stream and request helpers, and frames.
#![allow(dead_code)]

use beamer_pipeline::entries::{Entry, SwitchConfig};
use beamer_pipeline::p4rt::{Code, expected_p4info};
use beamer_pipeline::{DropReason, PipelineParams, Target};
use beamer_softswitch::{CounterData, Switch, p4rt};
use p4runtime_proto::p4::config::v1::P4Info;
use p4runtime_proto::p4::v1;
use p4runtime_proto::p4::v1::p4_runtime_client::P4RuntimeClient;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::sync::mpsc;
use tonic::transport::Channel;

pub type Client = P4RuntimeClient<Channel>;

pub const DEV: u64 = p4rt::DEFAULT_DEVICE_ID;

/// The sizes most tests use: 2^12 buckets per VIP, so the bucket key is
/// 12 bits wide.
pub fn small_params() -> PipelineParams {
    PipelineParams {
        buckets: 1 << 12,
        max_vips: 2,
        max_vip_entries: 16,
        routes: 16,
    }
}

/// The generator's P4Info for `params` (it writes exactly this one).
pub fn p4info(params: &PipelineParams) -> P4Info {
    expected_p4info(params, Target::V1model)
}

/// A running server and its switch.
pub struct Server {
    pub switch: Switch,
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// A server for a switch of `params` (no pipeline set), with `f`
    /// applied to the builder.
    pub async fn start_with(
        params: PipelineParams,
        f: impl FnOnce(p4rt::Builder) -> p4rt::Builder,
    ) -> Server {
        let switch = Switch::new(params).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let builder = f(p4rt::builder(switch.clone()));
        let task = tokio::spawn(async move {
            builder
                .serve_listener(listener, async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Server {
            switch,
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub async fn start(params: PipelineParams) -> Server {
        Self::start_with(params, |b| b).await
    }

    pub async fn client(&self) -> Client {
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{}", self.addr))
            .unwrap()
            // Room for the per-update errors of big batches (they travel
            // in trailers).
            .http2_max_header_list_size(64 << 20);
        let channel = endpoint.connect().await.unwrap();
        P4RuntimeClient::new(channel)
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(256 << 20)
    }

    /// Stops serving. A graceful shutdown waits for clients to hang up,
    /// and the tests' clients live on, so the server gets a moment and is
    /// then dropped.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(mut t) = self.task.take() {
            match tokio::time::timeout(Duration::from_millis(100), &mut t).await {
                // A server task that ended on its own must have ended well.
                Ok(result) => result.unwrap(),
                Err(_) => t.abort(),
            }
        }
    }
}

/// One `StreamChannel`, client side.
pub struct Stream {
    tx: mpsc::Sender<v1::StreamMessageRequest>,
    rx: tonic::Streaming<v1::StreamMessageResponse>,
}

const WAIT: Duration = Duration::from_secs(5);

impl Stream {
    pub async fn open(client: &mut Client) -> Stream {
        let (tx, rx) = mpsc::channel(16);
        let response = client
            .stream_channel(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .unwrap();
        Stream {
            tx,
            rx: response.into_inner(),
        }
    }

    pub async fn send(&self, update: v1::stream_message_request::Update) {
        self.tx
            .send(v1::StreamMessageRequest {
                update: Some(update),
            })
            .await
            .unwrap();
    }

    pub async fn arbitrate(&self, device_id: u64, role: &str, election_id: Option<u128>) {
        self.send(v1::stream_message_request::Update::Arbitration(
            v1::MasterArbitrationUpdate {
                device_id,
                role: (!role.is_empty()).then(|| v1::Role {
                    name: role.into(),
                    ..Default::default()
                }),
                election_id: election_id.map(Into::into),
                status: None,
            },
        ))
        .await;
    }

    /// The next message, or the status that ended the stream.
    pub async fn next(&mut self) -> Result<Option<v1::StreamMessageResponse>, tonic::Status> {
        tokio::time::timeout(WAIT, self.rx.message())
            .await
            .expect("no stream message within 5 s")
    }

    /// The next arbitration message: (status code, election id).
    pub async fn next_arbitration(&mut self) -> (Code, Option<u128>) {
        let msg = self.next().await.unwrap().expect("stream ended");
        match msg.update {
            Some(v1::stream_message_response::Update::Arbitration(a)) => (
                Code::try_from(a.status.unwrap().code).unwrap(),
                a.election_id.map(u128::from),
            ),
            other => panic!("expected an arbitration message, got {other:?}"),
        }
    }

    /// The status that ends the stream.
    pub async fn ended_with(&mut self) -> tonic::Code {
        match self.next().await {
            Err(s) => s.code(),
            Ok(m) => panic!("expected the stream to end with an error, got {m:?}"),
        }
    }

    /// Asserts nothing arrives for a short while.
    pub async fn assert_quiet(&mut self) {
        if let Ok(m) = tokio::time::timeout(Duration::from_millis(200), self.rx.message()).await {
            panic!("unexpected stream message: {m:?}");
        }
    }

    /// Closes the client side (the server forgets the controller).
    pub fn close(self) {}
}

/// Opens a stream and becomes primary of the default role with
/// `election_id`.
pub async fn primary(client: &mut Client, election_id: u128) -> Stream {
    let mut s = Stream::open(client).await;
    s.arbitrate(DEV, "", Some(election_id)).await;
    assert_eq!(s.next_arbitration().await, (Code::Ok, Some(election_id)));
    s
}

pub async fn set_pipeline(
    client: &mut Client,
    election_id: u128,
    action: v1::set_forwarding_pipeline_config_request::Action,
    p4info: Option<P4Info>,
) -> Result<(), tonic::Status> {
    client
        .set_forwarding_pipeline_config(v1::SetForwardingPipelineConfigRequest {
            device_id: DEV,
            election_id: Some(election_id.into()),
            action: action as i32,
            config: p4info.map(|p| v1::ForwardingPipelineConfig {
                p4info: Some(p),
                p4_device_config: Vec::new(),
                cookie: Some(v1::forwarding_pipeline_config::Cookie { cookie: 42 }),
            }),
            ..Default::default()
        })
        .await
        .map(drop)
}

/// A server with `params`, a primary (election id 1) and the pipeline set.
pub async fn ready(params: PipelineParams) -> (Server, Client, Stream) {
    let server = Server::start(params).await;
    let mut client = server.client().await;
    let stream = primary(&mut client, 1).await;
    set_pipeline(
        &mut client,
        1,
        v1::set_forwarding_pipeline_config_request::Action::VerifyAndCommit,
        Some(p4info(&params)),
    )
    .await
    .unwrap();
    (server, client, stream)
}

pub fn write_request(election_id: u128, updates: Vec<v1::Update>) -> v1::WriteRequest {
    v1::WriteRequest {
        device_id: DEV,
        election_id: Some(election_id.into()),
        updates,
        ..Default::default()
    }
}

/// Writes `updates` as the primary with election id 1.
pub async fn write(client: &mut Client, updates: Vec<v1::Update>) -> Result<(), tonic::Status> {
    client.write(write_request(1, updates)).await.map(drop)
}

/// The per-update codes of a failed batch (UNKNOWN with details).
pub fn batch_codes(status: &tonic::Status) -> Vec<Code> {
    assert_eq!(status.code(), tonic::Code::Unknown, "{status:?}");
    p4runtime_proto::status::batch_errors(status)
        .iter()
        .map(|e| Code::try_from(e.canonical_code).unwrap())
        .collect()
}

/// Reads `entities`: every entity returned, or the final status.
pub async fn read(
    client: &mut Client,
    entities: Vec<v1::Entity>,
) -> (Vec<v1::Entity>, Result<(), tonic::Status>) {
    let mut stream = match client
        .read(v1::ReadRequest {
            device_id: DEV,
            entities,
            ..Default::default()
        })
        .await
    {
        Ok(r) => r.into_inner(),
        Err(s) => return (Vec::new(), Err(s)),
    };
    let mut out = Vec::new();
    loop {
        match stream.message().await {
            Ok(Some(r)) => out.extend(r.entities),
            Ok(None) => return (out, Ok(())),
            Err(s) => return (out, Err(s)),
        }
    }
}

pub fn table_entity(te: v1::TableEntry) -> v1::Entity {
    v1::Entity {
        entity: Some(v1::entity::Entity::TableEntry(te)),
    }
}

pub fn update(kind: v1::update::Type, entity: v1::entity::Entity) -> v1::Update {
    v1::Update {
        r#type: kind as i32,
        entity: Some(v1::Entity {
            entity: Some(entity),
        }),
    }
}

pub fn insert(te: v1::TableEntry) -> v1::Update {
    update(v1::update::Type::Insert, v1::entity::Entity::TableEntry(te))
}

pub fn modify(te: v1::TableEntry) -> v1::Update {
    update(v1::update::Type::Modify, v1::entity::Entity::TableEntry(te))
}

pub fn delete(te: v1::TableEntry) -> v1::Update {
    update(v1::update::Type::Delete, v1::entity::Entity::TableEntry(te))
}

/// Everything a write can change: entries, config, counters.
#[derive(Debug, PartialEq)]
pub struct State {
    pub entries: Vec<Entry>,
    pub config: SwitchConfig,
    pub counters: Vec<CounterData>,
    pub drops: [CounterData; DropReason::COUNT],
}

pub fn state(switch: &Switch) -> State {
    let entries = switch.all_entries();
    let counters = entries
        .iter()
        .filter_map(|e| switch.counter(&e.key()).ok())
        .collect();
    State {
        entries,
        config: switch.config(),
        counters,
        drops: switch.drop_counters(),
    }
}

pub fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// An Ethernet + IPv4 + TCP SYN frame (no payload), built by the golden
/// fixtures' frame builder.
pub fn tcp_frame(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> Vec<u8> {
    beamer_fixtures::Pkt::tcp(
        (&src.to_string(), sport),
        (&dst.to_string(), dport),
        beamer_fixtures::SYN,
    )
    .build()
}

/// What came out of the switch for one frame.
#[derive(Debug, PartialEq)]
pub enum Out {
    Forward { port: u16, frame: Vec<u8> },
    Drop(DropReason),
}

/// Runs `frames` (ingress port 1) through the switch's data path, one
/// batch, and returns each verdict with the output frame.
pub fn send(switch: &Switch, frames: &[Vec<u8>]) -> Vec<Out> {
    send_with(&mut switch.worker(), frames)
}

/// [`send`] through a worker of your own (a data-path thread's).
pub fn send_with(worker: &mut beamer_softswitch::Worker, frames: &[Vec<u8>]) -> Vec<Out> {
    let mut batch = beamer_softswitch::Batch::with_defaults();
    let mut out = Vec::new();
    for chunk in frames.chunks(batch.capacity()) {
        batch.clear();
        for f in chunk {
            batch.push(f, 1).unwrap();
        }
        worker.process_batch(&mut batch);
        for p in batch.iter() {
            out.push(match p.verdict.unwrap() {
                beamer_softswitch::Verdict::Forward { port } => Out::Forward {
                    port,
                    frame: p.frame.to_vec(),
                },
                beamer_softswitch::Verdict::Drop(r) => Out::Drop(r),
            });
        }
    }
    out
}
