//! How fast bucket entries go in over P4Runtime: a server on loopback, a
//! tonic client on the calling thread, one `Write` at a time (as the
//! controller writes). For `beamer bench --p4rt`; a benchmark, not a test.
//!
//! Measured:
//! - bucket-entry MODIFYs per second at each batch size, over a full
//!   table (each Write waits for the previous one's answer);
//! - the time to install a full table of buckets (one VIP) from empty, in
//!   one Write and in Writes of 10,000.
//!
//! Requests are built before the clock starts; their encoding, the
//! transport, decoding, the table update and the answer are all timed.

use super::{ServeError, builder};
use crate::switch::Switch;
use beamer_pipeline::entries::{BucketAction, BucketKey, Entry};
use beamer_pipeline::p4rt::{entry_to_p4, expected_p4info};
use beamer_pipeline::{ParamError, PipelineParams, Target};
use p4runtime_proto::p4::v1;
use p4runtime_proto::p4::v1::p4_runtime_client::P4RuntimeClient;
use std::fmt;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use v1::set_forwarding_pipeline_config_request::Action;

/// What to measure.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Updates per Write for the rate measurements.
    pub batch_sizes: Vec<usize>,
    /// How long each rate measurement runs.
    pub duration: Duration,
    /// Buckets per VIP: the full table's size.
    pub buckets: u32,
    /// Updates per Write for the full-table installs (besides one Write
    /// for the whole table).
    pub install_batch: usize,
}

impl Default for Spec {
    /// Batches of 1, 100 and 10,000, 2 s each, 65,536 buckets.
    fn default() -> Self {
        Spec {
            batch_sizes: vec![1, 100, 10_000],
            duration: Duration::from_secs(2),
            buckets: 1 << 16,
            install_batch: 10_000,
        }
    }
}

/// One rate measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WriteRate {
    /// Updates per Write.
    pub batch: usize,
    /// Writes done.
    pub writes: u64,
    /// Updates done.
    pub updates: u64,
    /// How long they took.
    pub elapsed: Duration,
}

impl WriteRate {
    /// Bucket entries written per second.
    pub fn updates_per_sec(&self) -> f64 {
        self.updates as f64 / self.elapsed.as_secs_f64()
    }

    /// Write RPCs per second.
    pub fn writes_per_sec(&self) -> f64 {
        self.writes as f64 / self.elapsed.as_secs_f64()
    }
}

/// One full-table install from empty.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Install {
    /// Updates per Write.
    pub batch: usize,
    /// Entries installed.
    pub entries: usize,
    /// How long it took.
    pub elapsed: Duration,
}

/// The results.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Buckets per VIP.
    pub buckets: u32,
    /// Full-table installs.
    pub installs: Vec<Install>,
    /// Rates, one per batch size.
    pub rates: Vec<WriteRate>,
}

/// The benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The sizes are not a valid pipeline.
    #[error("bucket count: {0}")]
    Params(#[from] ParamError),
    /// The server did not start.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// The client runtime could not start.
    #[error("client runtime: {0}")]
    Runtime(#[from] std::io::Error),
    /// The client could not connect.
    #[error("connecting to the server: {0}")]
    Connect(#[from] tonic::transport::Error),
    /// A request failed.
    #[error("{what}: {status}")]
    Rpc {
        /// The request.
        what: String,
        /// Its status.
        status: tonic::Status,
    },
    /// A batch size of 0.
    #[error("batch sizes must be at least 1")]
    EmptyBatch,
}

fn rpc(what: impl Into<String>) -> impl FnOnce(tonic::Status) -> BenchError {
    let what = what.into();
    move |status| BenchError::Rpc { what, status }
}

/// The entry of bucket `b` of vip_id 0, in one of two versions.
fn bucket(b: u32, version: u32) -> Entry {
    Entry::Bucket(
        BucketKey {
            vip_id: 0,
            bucket: b,
        },
        BucketAction {
            dip: Ipv4Addr::from(0x0a00_0000 | ((b % 1000) + version)),
            prev_dip: Ipv4Addr::UNSPECIFIED,
            change_time: 0,
        },
    )
}

fn request(updates: impl Iterator<Item = v1::Update>) -> v1::WriteRequest {
    v1::WriteRequest {
        device_id: super::DEFAULT_DEVICE_ID,
        election_id: Some(1u128.into()),
        updates: updates.collect(),
        ..Default::default()
    }
}

fn update(kind: v1::update::Type, e: &Entry) -> v1::Update {
    v1::Update {
        r#type: kind as i32,
        entity: Some(v1::Entity {
            entity: Some(v1::entity::Entity::TableEntry(entry_to_p4(e))),
        }),
    }
}

/// Runs the benchmark. Takes a few seconds per batch size.
pub fn run(spec: &Spec) -> Result<Report, BenchError> {
    if spec.batch_sizes.contains(&0) || spec.install_batch == 0 {
        return Err(BenchError::EmptyBatch);
    }
    let params = PipelineParams {
        buckets: spec.buckets,
        ..PipelineParams::default()
    };
    params.validate(Target::V1model)?;
    let switch = Switch::new(params)?;
    let server = builder(switch).spawn("127.0.0.1:0".parse().expect("an address"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(measure(
        spec,
        params,
        format!("http://{}", server.local_addr()),
    ))
}

async fn measure(spec: &Spec, params: PipelineParams, url: String) -> Result<Report, BenchError> {
    let channel = tonic::transport::Endpoint::from_shared(url)
        .map_err(|e| BenchError::Rpc {
            what: "endpoint".into(),
            status: tonic::Status::invalid_argument(e.to_string()),
        })?
        .connect()
        .await?;
    let mut client = P4RuntimeClient::new(channel)
        .max_encoding_message_size(super::MAX_MESSAGE_BYTES)
        .max_decoding_message_size(super::MAX_MESSAGE_BYTES);

    // Become primary; the stream must stay open while we write.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(v1::StreamMessageRequest {
        update: Some(v1::stream_message_request::Update::Arbitration(
            v1::MasterArbitrationUpdate {
                device_id: super::DEFAULT_DEVICE_ID,
                election_id: Some(1u128.into()),
                ..Default::default()
            },
        )),
    })
    .await
    .expect("the receiver is alive");
    let mut stream = client
        .stream_channel(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .map_err(rpc("StreamChannel"))?
        .into_inner();
    stream.message().await.map_err(rpc("arbitration"))?;

    let mut installs = Vec::new();
    for batch in [spec.buckets as usize, spec.install_batch] {
        installs.push(install(&mut client, params, batch).await?);
    }
    let mut rates = Vec::new();
    for &batch in &spec.batch_sizes {
        rates.push(rate(&mut client, spec, batch).await?);
    }
    drop(tx);
    Ok(Report {
        buckets: spec.buckets,
        installs,
        rates,
    })
}

async fn set_pipeline(
    client: &mut P4RuntimeClient<Channel>,
    params: PipelineParams,
) -> Result<(), BenchError> {
    client
        .set_forwarding_pipeline_config(v1::SetForwardingPipelineConfigRequest {
            device_id: super::DEFAULT_DEVICE_ID,
            election_id: Some(1u128.into()),
            action: Action::VerifyAndCommit as i32,
            config: Some(v1::ForwardingPipelineConfig {
                p4info: Some(expected_p4info(&params, Target::V1model)),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .map_err(rpc("SetForwardingPipelineConfig"))?;
    Ok(())
}

/// Clears the switch (a fresh pipeline) and inserts every bucket of one
/// VIP in Writes of `batch`.
async fn install(
    client: &mut P4RuntimeClient<Channel>,
    params: PipelineParams,
    batch: usize,
) -> Result<Install, BenchError> {
    set_pipeline(client, params).await?;
    let all: Vec<u32> = (0..params.buckets).collect();
    let requests: Vec<v1::WriteRequest> = all
        .chunks(batch)
        .map(|c| {
            request(
                c.iter()
                    .map(|b| update(v1::update::Type::Insert, &bucket(*b, 0))),
            )
        })
        .collect();
    let start = Instant::now();
    for r in requests {
        client
            .write(r)
            .await
            .map_err(rpc(format!("installing in Writes of {batch}")))?;
    }
    Ok(Install {
        batch,
        entries: all.len(),
        elapsed: start.elapsed(),
    })
}

/// MODIFYs of the (full) table's buckets in Writes of `batch`, for the
/// spec's duration.
async fn rate(
    client: &mut P4RuntimeClient<Channel>,
    spec: &Spec,
    batch: usize,
) -> Result<WriteRate, BenchError> {
    // Enough distinct requests to sweep the table a few times, each
    // bucket flipping between two versions.
    let n_requests = (4 * spec.buckets as usize).div_ceil(batch).clamp(2, 4096);
    let requests: Vec<v1::WriteRequest> = (0..n_requests)
        .map(|r| {
            request((0..batch).map(|i| {
                let k = (r * batch + i) as u32;
                let b = k % spec.buckets;
                update(
                    v1::update::Type::Modify,
                    &bucket(b, 1 + (k / spec.buckets) % 2),
                )
            }))
        })
        .collect();
    let (mut writes, mut updates) = (0u64, 0u64);
    let start = Instant::now();
    while start.elapsed() < spec.duration {
        let r = &requests[writes as usize % requests.len()];
        client
            .write(r.clone())
            .await
            .map_err(rpc(format!("Writes of {batch}")))?;
        writes += 1;
        updates += batch as u64;
    }
    Ok(WriteRate {
        batch,
        writes,
        updates,
        elapsed: start.elapsed(),
    })
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "P4Runtime over loopback gRPC: bucket entries, one Write at a time"
        )?;
        writeln!(
            f,
            "{:>12}  {:>12}  {:>14}",
            "batch", "Writes/s", "entries/s"
        )?;
        for r in &self.rates {
            writeln!(
                f,
                "{:>12}  {:>12}  {:>14}",
                thousands(r.batch as u64),
                thousands(r.writes_per_sec().round() as u64),
                thousands(r.updates_per_sec().round() as u64)
            )?;
        }
        for i in &self.installs {
            let how = if i.batch >= i.entries {
                "in one Write".to_string()
            } else {
                format!("in Writes of {}", thousands(i.batch as u64))
            };
            writeln!(
                f,
                "full table of {} buckets from empty, {how}: {:.3} s ({} entries/s)",
                thousands(i.entries as u64),
                i.elapsed.as_secs_f64(),
                thousands((i.entries as f64 / i.elapsed.as_secs_f64()).round() as u64)
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The benchmark runs end to end (tiny sizes; figures not checked).
    #[test]
    fn runs_and_reports() {
        let report = run(&Spec {
            batch_sizes: vec![1, 7],
            duration: Duration::from_millis(50),
            buckets: 1 << 6,
            install_batch: 10,
        })
        .unwrap();
        assert_eq!(report.installs.len(), 2);
        assert_eq!(report.installs[0].entries, 64);
        assert_eq!(
            report.rates.iter().map(|r| r.batch).collect::<Vec<_>>(),
            [1, 7]
        );
        assert!(
            report
                .rates
                .iter()
                .all(|r| r.updates == r.writes * r.batch as u64)
        );
        let text = report.to_string();
        assert!(text.contains("in Writes of 10"), "{text}");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
