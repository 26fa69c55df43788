//! Reads the switch's tables and counters over P4Runtime, as any target
//! answers them: where each bucket goes, how many packets each per-server
//! port carried, and what the switch dropped, per reason.

use beamer_pipeline::entries::{Entry, VipAction, VipKey};
use beamer_pipeline::p4rt::p4runtime_proto::p4::v1;
use beamer_pipeline::p4rt::p4runtime_proto::p4::v1::p4_runtime_client::P4RuntimeClient;
use beamer_pipeline::p4rt::{Counts, Pipeline};
use beamer_pipeline::{DropReason, PipelineParams, Target, schema};
use beamer_testbed::Netns;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

/// What the switch holds.
#[derive(Debug, Default, Clone)]
pub struct Tables {
    /// Bucket -> server, for VIP id 0.
    pub buckets: BTreeMap<u32, Ipv4Addr>,
    /// Per-server ports: (key, server, packets counted).
    pub server_ports: Vec<(VipKey, Ipv4Addr, u64)>,
    /// Packets dropped, per reason (the drop counter).
    pub drops: BTreeMap<DropReason, u64>,
}

/// Reads the VIP and bucket tables, with counters, and the drop counter
/// from the P4Runtime server at `addr` inside `ns`.
pub fn read(ns: &Netns, addr: &str, device_id: u64, bucket_bits: u8) -> Result<Tables, String> {
    let uri = format!("http://{addr}");
    ns.run(move || {
        // The runtime's socket is made on this thread, inside `ns`.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async move {
            let mut c = tokio::time::timeout(Duration::from_secs(5), P4RuntimeClient::connect(uri))
                .await
                .map_err(|_| "P4Runtime connect: timed out".to_string())?
                .map_err(|e| format!("P4Runtime connect: {e}"))?
                .max_decoding_message_size(64 << 20);
            let entry = |table_id| v1::Entity {
                entity: Some(v1::entity::Entity::TableEntry(v1::TableEntry {
                    table_id,
                    counter_data: Some(v1::CounterData::default()),
                    ..Default::default()
                })),
            };
            let drops = v1::Entity {
                entity: Some(v1::entity::Entity::CounterEntry(v1::CounterEntry {
                    counter_id: schema::DROPS.id,
                    ..Default::default()
                })),
            };
            let req = v1::ReadRequest {
                device_id,
                entities: vec![entry(schema::VIP.id), entry(schema::BUCKETS.id), drops],
                ..Default::default()
            };
            let mut stream = c
                .read(req)
                .await
                .map_err(|s| format!("P4Runtime Read: {s}"))?
                .into_inner();
            let params = PipelineParams {
                buckets: 1 << bucket_bits,
                ..PipelineParams::default()
            };
            let pipeline = Pipeline::new(params, Target::V1model);
            let mut t = Tables::default();
            while let Some(resp) = stream
                .message()
                .await
                .map_err(|s| format!("P4Runtime Read: {s}"))?
            {
                for e in resp.entities {
                    let te = match e.entity {
                        Some(v1::entity::Entity::TableEntry(te)) => te,
                        Some(v1::entity::Entity::CounterEntry(c)) => {
                            let reason = c
                                .index
                                .and_then(|i| usize::try_from(i.index).ok())
                                .and_then(DropReason::from_index)
                                .ok_or_else(|| format!("drop counter cell {:?}", c.index))?;
                            let n = c
                                .data
                                .as_ref()
                                .map(Counts::from_p4)
                                .transpose()
                                .map_err(|e| format!("drop counter {reason}: {e}"))?
                                .map_or(0, |c| c.packets);
                            t.drops.insert(reason, n);
                            continue;
                        }
                        _ => continue,
                    };
                    let entry = pipeline
                        .entry_from_p4(&te)
                        .map_err(|e| format!("decoding {te:?}: {e}"))?;
                    let packets = te
                        .counter_data
                        .as_ref()
                        .and_then(|d| Counts::from_p4(d).ok())
                        .map_or(0, |c| c.packets);
                    match entry {
                        Entry::Bucket(k, a) if k.vip_id == 0 => {
                            t.buckets.insert(k.bucket, a.dip);
                        }
                        Entry::Vip(k, VipAction::ToServer { dip }) => {
                            t.server_ports.push((k, dip, packets));
                        }
                        _ => {}
                    }
                }
            }
            Ok(t)
        })
    })
}
