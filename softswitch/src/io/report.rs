//! What `beamer switch` prints: the switch's counters (per VIP entry, per
//! bucket entry, per drop reason) and the backend's per-port I/O counters.
//!
//! [`CounterReport::collect`] reads the counters through the same
//! [`Switch`] API a P4Runtime read uses, so the printed numbers are the
//! ones a controller would see. [`IoCounters`] are the backend's own
//! counters, shared between the data-path thread (which adds to them once
//! per batch) and whoever prints them.

use crate::counters::CounterData;
use crate::switch::{Switch, TableKind};
use beamer_pipeline::DropReason;
use beamer_pipeline::entries::{BucketAction, BucketKey, Entry, EntryKey, VipAction, VipKey};
use beamer_pipeline::schema::SWITCH_PORT_BITS;
use beamer_pipeline::wire::ipv4::{PROTO_TCP, PROTO_UDP};
use std::fmt;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering::Relaxed};

/// How much of the bucket table a report lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportOptions {
    /// The most non-zero bucket entries listed one by one (the busiest
    /// first); the rest are summed on one line.
    pub max_buckets: usize,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions { max_buckets: 32 }
    }
}

/// One counted entry: its key, its action and its counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted<K, A> {
    /// The entry's key.
    pub key: K,
    /// The entry's action.
    pub action: A,
    /// Its direct counter.
    pub counter: CounterData,
}

/// A reading of every counter of a switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterReport {
    /// Frames received and forwarded by all workers.
    pub received: CounterData,
    /// Frames forwarded.
    pub forwarded: CounterData,
    /// Every VIP entry, in key order.
    pub vips: Vec<Counted<VipKey, VipAction>>,
    /// The VIP table's default entry (TCP/UDP packets to no VIP entry).
    pub vip_miss: CounterData,
    /// Bucket entries with a non-zero counter, busiest first, at most
    /// [`ReportOptions::max_buckets`].
    pub buckets: Vec<Counted<BucketKey, BucketAction>>,
    /// Bucket entries present.
    pub bucket_entries: usize,
    /// Non-zero bucket entries not in `buckets`: how many, and their sum.
    pub other_buckets: (usize, CounterData),
    /// The bucket table's default entry (bucket_miss drops).
    pub bucket_miss: CounterData,
    /// One counter per drop reason, in [`DropReason::ALL`] order.
    pub drops: [CounterData; DropReason::COUNT],
}

impl CounterReport {
    /// Reads every counter of `switch`.
    pub fn collect(switch: &Switch, opts: &ReportOptions) -> CounterReport {
        let totals = switch.totals();
        let counter = |key: EntryKey| switch.counter(&key).unwrap_or_default();
        let vips = switch
            .entries(TableKind::Vip)
            .into_iter()
            .filter_map(|e| match e {
                Entry::Vip(key, action) => Some(Counted {
                    key,
                    action,
                    counter: counter(EntryKey::Vip(key)),
                }),
                _ => None,
            })
            .collect();
        let all_buckets = switch.entries(TableKind::Buckets);
        let bucket_entries = all_buckets.len();
        let mut buckets: Vec<_> = all_buckets
            .into_iter()
            .filter_map(|e| match e {
                Entry::Bucket(key, action) => Some(Counted {
                    key,
                    action,
                    counter: counter(EntryKey::Bucket(key)),
                }),
                _ => None,
            })
            .filter(|c| c.counter.packets != 0 || c.counter.bytes != 0)
            .collect();
        // Busiest first; equal ones in key order, so reports are stable.
        buckets.sort_by(|a, b| {
            b.counter
                .packets
                .cmp(&a.counter.packets)
                .then(a.key.cmp(&b.key))
        });
        let rest = buckets.split_off(buckets.len().min(opts.max_buckets));
        let other_buckets = (
            rest.len(),
            rest.iter()
                .fold(CounterData::default(), |acc, c| acc.wrapping_add(c.counter)),
        );
        CounterReport {
            received: totals.received,
            forwarded: totals.forwarded,
            vips,
            vip_miss: switch.default_counter(TableKind::Vip).unwrap_or_default(),
            buckets,
            bucket_entries,
            other_buckets,
            bucket_miss: switch
                .default_counter(TableKind::Buckets)
                .unwrap_or_default(),
            drops: switch.drop_counters(),
        }
    }

    /// Packets dropped, all reasons together.
    pub fn dropped(&self) -> CounterData {
        self.drops
            .iter()
            .fold(CounterData::default(), |acc, c| acc.wrapping_add(*c))
    }
}

fn proto_name(protocol: u8) -> String {
    match protocol {
        PROTO_TCP => "tcp".into(),
        PROTO_UDP => "udp".into(),
        p => format!("proto{p}"),
    }
}

/// `packets  bytes` columns.
fn cols(c: CounterData) -> String {
    format!("{:>12} {:>14}", c.packets, c.bytes)
}

impl fmt::Display for CounterReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dropped = self.dropped();
        writeln!(
            f,
            "frames: received {} ({} bytes), forwarded {} ({} bytes), dropped {} ({} bytes)",
            self.received.packets,
            self.received.bytes,
            self.forwarded.packets,
            self.forwarded.bytes,
            dropped.packets,
            dropped.bytes
        )?;
        writeln!(f)?;
        writeln!(f, "{:<48} {:>12} {:>14}", "vip entry", "packets", "bytes")?;
        for v in &self.vips {
            let target = match v.action {
                VipAction::ToBuckets { vip_id } => format!("buckets of vip_id {vip_id}"),
                VipAction::ToServer { dip } => format!("server {dip}"),
            };
            let name = format!(
                "{} {}/{} -> {target}",
                v.key.dst,
                proto_name(v.key.protocol),
                v.key.port
            );
            writeln!(f, "{name:<48} {}", cols(v.counter))?;
        }
        writeln!(f, "{:<48} {}", "(no entry: routed)", cols(self.vip_miss))?;
        writeln!(f)?;
        writeln!(
            f,
            "{:<48} {:>12} {:>14}",
            format!(
                "bucket entry ({} of {} non-zero)",
                self.buckets.len() + self.other_buckets.0,
                self.bucket_entries
            ),
            "packets",
            "bytes"
        )?;
        for b in &self.buckets {
            let mut name = format!(
                "vip_id {} bucket {} -> {}",
                b.key.vip_id, b.key.bucket, b.action.dip
            );
            if !b.action.prev_dip.is_unspecified() {
                name.push_str(&format!(" (prev {})", b.action.prev_dip));
            }
            writeln!(f, "{name:<48} {}", cols(b.counter))?;
        }
        if self.other_buckets.0 > 0 {
            let name = format!("... {} more non-zero entries", self.other_buckets.0);
            writeln!(f, "{name:<48} {}", cols(self.other_buckets.1))?;
        }
        writeln!(
            f,
            "{:<48} {}",
            "(no entry: bucket_miss)",
            cols(self.bucket_miss)
        )?;
        writeln!(f)?;
        writeln!(f, "{:<48} {:>12} {:>14}", "drop reason", "packets", "bytes")?;
        for (r, c) in DropReason::ALL.iter().zip(self.drops.iter()) {
            writeln!(f, "{:<48} {}", r.name(), cols(*c))?;
        }
        Ok(())
    }
}

/// The I/O counters of one port, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortReading {
    /// The P4 port number.
    pub port: u16,
    /// What the port is (an interface name, an output file).
    pub name: String,
    /// Frames handed to the pipeline from this port.
    pub rx: CounterData,
    /// Frames sent out of this port.
    pub tx: CounterData,
    /// Frames the backend could not send (the kernel refused them).
    pub tx_errors: u64,
    /// Why the last refused frame was refused.
    pub last_tx_error: Option<String>,
    /// Frames lost before the switch saw them (the kernel's ring was
    /// full), when the backend can tell.
    pub rx_lost: u64,
}

/// A reading of a backend's I/O counters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IoReading {
    /// One line per port.
    pub ports: Vec<PortReading>,
    /// Forwarded frames per egress port (non-zero ones), in port order.
    pub egress: Vec<(u16, CounterData)>,
    /// Frames skipped on receive because they were longer than a batch
    /// slot (they never reached the pipeline).
    pub oversize: u64,
    /// Frames received with their L4 checksum left to the sender's
    /// offload (forwarded, but with that checksum unfinished).
    pub csum_not_ready: u64,
    /// Forwarded frames whose egress port has no interface or output.
    pub unmapped: CounterData,
}

impl IoReading {
    /// Adds the counters of another worker's backend over the same ports
    /// (rows are matched by position).
    pub fn add(&mut self, other: &IoReading) {
        if self.ports.is_empty() {
            self.ports = other.ports.clone();
        } else {
            for (a, b) in self.ports.iter_mut().zip(&other.ports) {
                a.rx = a.rx.wrapping_add(b.rx);
                a.tx = a.tx.wrapping_add(b.tx);
                a.tx_errors += b.tx_errors;
                a.rx_lost += b.rx_lost;
                if b.last_tx_error.is_some() {
                    a.last_tx_error.clone_from(&b.last_tx_error);
                }
            }
        }
        for (port, c) in &other.egress {
            match self.egress.binary_search_by_key(port, |(p, _)| *p) {
                Ok(i) => self.egress[i].1 = self.egress[i].1.wrapping_add(*c),
                Err(i) => self.egress.insert(i, (*port, *c)),
            }
        }
        self.oversize += other.oversize;
        self.csum_not_ready += other.csum_not_ready;
        self.unmapped = self.unmapped.wrapping_add(other.unmapped);
    }
}

impl fmt::Display for IoReading {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = self
            .ports
            .iter()
            .map(|p| p.name.len())
            .max()
            .unwrap_or(0)
            .max("interface".len());
        if !self.ports.is_empty() {
            writeln!(
                f,
                "{:>5} {:<w$} {:>12} {:>12} {:>10} {:>10}",
                "port", "interface", "rx", "tx", "tx errors", "rx lost"
            )?;
        }
        for p in &self.ports {
            writeln!(
                f,
                "{:>5} {:<w$} {:>12} {:>12} {:>10} {:>10}",
                p.port, p.name, p.rx.packets, p.tx.packets, p.tx_errors, p.rx_lost
            )?;
        }
        for p in &self.ports {
            if let Some(e) = &p.last_tx_error {
                writeln!(f, "port {}: last transmit error: {e}", p.port)?;
            }
        }
        for (port, c) in &self.egress {
            writeln!(
                f,
                "forwarded by egress port {port}: {} frames, {} bytes",
                c.packets, c.bytes
            )?;
        }
        if self.unmapped.packets > 0 {
            writeln!(
                f,
                "forwarded to a port with no interface (not sent): {} frames",
                self.unmapped.packets
            )?;
        }
        if self.oversize > 0 {
            writeln!(
                f,
                "skipped on receive, longer than a batch slot: {} frames \
                 (GRO/TSO on the link? see --max-frame)",
                self.oversize
            )?;
        }
        if self.csum_not_ready > 0 {
            writeln!(
                f,
                "received with the L4 checksum left to offload: {} frames \
                 (turn off tx checksum offload on the sender)",
                self.csum_not_ready
            )?;
        }
        Ok(())
    }
}

/// A packets/bytes pair that one thread adds to and any thread reads.
#[derive(Debug, Default)]
pub(crate) struct SharedCell {
    packets: AtomicU64,
    bytes: AtomicU64,
}

impl SharedCell {
    /// Adds to the cell. One writer per cell, so load + store loses
    /// nothing and costs no locked instruction.
    #[inline]
    pub(crate) fn add(&self, packets: u64, bytes: u64) {
        self.packets
            .store(self.packets.load(Relaxed).wrapping_add(packets), Relaxed);
        self.bytes
            .store(self.bytes.load(Relaxed).wrapping_add(bytes), Relaxed);
    }

    pub(crate) fn get(&self) -> CounterData {
        CounterData {
            packets: self.packets.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
        }
    }
}

/// One port's counters, written by the data-path thread.
#[derive(Debug, Default)]
pub(crate) struct PortCells {
    pub(crate) rx: SharedCell,
    pub(crate) tx: SharedCell,
    pub(crate) tx_errors: AtomicU64,
    /// errno of the last refused frame.
    pub(crate) last_tx_errno: AtomicI32,
    pub(crate) rx_lost: AtomicU64,
}

/// A backend's I/O counters, shared with readers: see
/// [`IoCounters::read`].
#[derive(Debug)]
pub struct IoCounters {
    names: Vec<(u16, String)>,
    pub(crate) ports: Vec<PortCells>,
    /// Forwarded frames per egress port number, sent or not.
    pub(crate) egress: Box<[SharedCell]>,
    pub(crate) oversize: AtomicU64,
    pub(crate) csum_not_ready: AtomicU64,
    pub(crate) unmapped: SharedCell,
}

impl IoCounters {
    /// Counters for `ports`: (P4 port number, name).
    pub(crate) fn new(ports: Vec<(u16, String)>) -> IoCounters {
        IoCounters {
            ports: ports.iter().map(|_| PortCells::default()).collect(),
            names: ports,
            egress: (0..1usize << SWITCH_PORT_BITS)
                .map(|_| SharedCell::default())
                .collect(),
            oversize: AtomicU64::new(0),
            csum_not_ready: AtomicU64::new(0),
            unmapped: SharedCell::default(),
        }
    }

    /// Counts a forwarded frame by its egress port.
    #[inline]
    pub(crate) fn egress(&self, port: u16, packets: u64, bytes: u64) {
        if let Some(c) = self.egress.get(usize::from(port)) {
            c.add(packets, bytes);
        }
    }

    /// Reads every counter.
    pub fn read(&self) -> IoReading {
        IoReading {
            ports: self
                .names
                .iter()
                .zip(&self.ports)
                .map(|((port, name), c)| PortReading {
                    port: *port,
                    name: name.clone(),
                    rx: c.rx.get(),
                    tx: c.tx.get(),
                    tx_errors: c.tx_errors.load(Relaxed),
                    last_tx_error: match c.last_tx_errno.load(Relaxed) {
                        0 => None,
                        e => Some(std::io::Error::from_raw_os_error(e).to_string()),
                    },
                    rx_lost: c.rx_lost.load(Relaxed),
                })
                .collect(),
            egress: self
                .egress
                .iter()
                .enumerate()
                .map(|(port, c)| (port as u16, c.get()))
                .filter(|(_, c)| c.packets != 0)
                .collect(),
            oversize: self.oversize.load(Relaxed),
            csum_not_ready: self.csum_not_ready.load(Relaxed),
            unmapped: self.unmapped.get(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{syn, two_servers};
    use crate::{Batch, BatchSize};

    #[test]
    fn report_lists_hit_entries_and_every_drop_reason() {
        let switch = two_servers();
        let mut worker = switch.worker();
        let mut batch = Batch::new(BatchSize::new(8).unwrap(), 128);
        batch.push(&syn([198, 51, 100, 1], 1000), 1).unwrap();
        batch.push(&syn([198, 51, 100, 1], 1000), 1).unwrap();
        batch.push(&syn([198, 51, 100, 2], 2000), 1).unwrap();
        batch.push(&[0u8; 10], 1).unwrap(); // truncated
        worker.process_batch(&mut batch);

        let r = CounterReport::collect(&switch, &ReportOptions { max_buckets: 1 });
        assert_eq!(r.received.packets, 4);
        assert_eq!(r.forwarded.packets, 3);
        assert_eq!(r.dropped().packets, 1);
        assert_eq!(r.drops[DropReason::Truncated.index()].bytes, 10);
        assert_eq!(r.vips.len(), 1);
        assert_eq!(r.vips[0].counter.packets, 3);
        assert_eq!(r.bucket_entries, 16);
        // Listed: the busiest bucket only; the other non-zero one is summed.
        let listed: u64 = r.buckets.iter().map(|b| b.counter.packets).sum();
        assert_eq!(listed + r.other_buckets.1.packets, 3);
        assert_eq!(r.buckets.len(), 1);

        let text = r.to_string();
        assert!(
            text.contains("192.0.2.10 tcp/80 -> buckets of vip_id 0"),
            "{text}"
        );
        for reason in DropReason::ALL {
            assert!(text.contains(reason.name()), "{text}");
        }
    }

    #[test]
    fn io_counters_read_back() {
        let io = IoCounters::new(vec![(1, "veth0".into()), (2, "veth1".into())]);
        io.ports[0].rx.add(3, 180);
        io.ports[1].tx.add(2, 200);
        io.ports[1].tx_errors.store(1, Relaxed);
        io.egress(2, 3, 300);
        io.egress(511, 1, 60);
        io.egress(512, 1, 60); // past the port space: ignored
        let r = io.read();
        assert_eq!(r.ports[0].rx.packets, 3);
        assert_eq!(r.ports[1].tx.bytes, 200);
        assert_eq!(r.ports[1].port, 2);
        assert_eq!(
            r.egress,
            vec![
                (
                    2,
                    CounterData {
                        packets: 3,
                        bytes: 300
                    }
                ),
                (
                    511,
                    CounterData {
                        packets: 1,
                        bytes: 60
                    }
                )
            ]
        );
        let text = r.to_string();
        assert!(text.contains("veth1"), "{text}");
        assert!(text.contains("egress port 511"), "{text}");

        // Two workers over the same ports add up.
        let mut sum = IoReading::default();
        sum.add(&r);
        sum.add(&r);
        assert_eq!(sum.ports[0].rx.packets, 6);
        assert_eq!(sum.ports[1].tx_errors, 2);
        assert_eq!(
            sum.egress[0],
            (
                2,
                CounterData {
                    packets: 6,
                    bytes: 600
                }
            )
        );
    }
}
