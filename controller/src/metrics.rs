//! Metrics in the Prometheus text exposition format (version 0.0.4).

use crate::api::Status;
use crate::core::CoreStats;
use crate::switch::{SwitchCounters, SyncState};
use std::fmt::Write;
use std::sync::Arc;

/// Escapes a label value (backslash, double quote, newline).
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Out(String);

impl Out {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", esc(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }
}

/// The metrics page for a status, the decision counters and the switch
/// counters.
pub fn render(
    status: &Status,
    stats: &CoreStats,
    counters: &[(String, Arc<SwitchCounters>)],
) -> String {
    let mut o = Out(String::new());
    o.head(
        "beamer_generation",
        "gauge",
        "The controller's current generation.",
    );
    o.sample("beamer_generation", &[], status.generation);
    o.head("beamer_commits_total", "counter", "Generations committed.");
    o.sample("beamer_commits_total", &[], stats.commits);
    o.head(
        "beamer_buckets_moved_total",
        "counter",
        "Buckets moved between servers.",
    );
    o.sample("beamer_buckets_moved_total", &[], stats.moved);
    o.head(
        "beamer_chains_expired_total",
        "counter",
        "Daisy chains cleared by expiry.",
    );
    o.sample("beamer_chains_expired_total", &[], stats.expired);
    o.head(
        "beamer_commands_refused_total",
        "counter",
        "Operator commands refused.",
    );
    o.sample("beamer_commands_refused_total", &[], stats.refused);

    o.head(
        "beamer_server_buckets",
        "gauge",
        "Buckets held by each server.",
    );
    for v in &status.vips {
        let vip = v.address.to_string();
        for s in &v.servers {
            let dip = s.dip.to_string();
            o.sample(
                "beamer_server_buckets",
                &[("vip", &vip), ("dip", &dip), ("state", &s.state)],
                s.buckets,
            );
        }
    }
    o.head("beamer_server_weight", "gauge", "Each server's weight.");
    for v in &status.vips {
        let vip = v.address.to_string();
        for s in &v.servers {
            let dip = s.dip.to_string();
            o.sample(
                "beamer_server_weight",
                &[("vip", &vip), ("dip", &dip)],
                s.weight,
            );
        }
    }
    o.head(
        "beamer_server_healthy",
        "gauge",
        "1 when a health-checked server passes its check.",
    );
    for v in &status.vips {
        let vip = v.address.to_string();
        for s in &v.servers {
            if let Some(h) = &s.health {
                let dip = s.dip.to_string();
                o.sample(
                    "beamer_server_healthy",
                    &[("vip", &vip), ("dip", &dip)],
                    u8::from(h == "up"),
                );
            }
        }
    }
    o.head(
        "beamer_vip_chained_buckets",
        "gauge",
        "Buckets with a live previous DIP.",
    );
    for v in &status.vips {
        o.sample(
            "beamer_vip_chained_buckets",
            &[("vip", &v.address.to_string())],
            v.chained,
        );
    }

    o.head(
        "beamer_switch_sync_state",
        "gauge",
        "1 for the state each switch is in (connecting, unreachable, not_primary, syncing, in_sync, out_of_sync).",
    );
    for s in &status.switches {
        for name in SyncState::NAMES {
            o.sample(
                "beamer_switch_sync_state",
                &[("switch", &s.name), ("state", name)],
                u8::from(s.state.name() == name),
            );
        }
    }
    o.head(
        "beamer_switch_generation",
        "gauge",
        "The generation each switch holds completely (-1 when unknown).",
    );
    for s in &status.switches {
        o.sample(
            "beamer_switch_generation",
            &[("switch", &s.name)],
            s.holds_generation.map_or(-1, i64::from),
        );
    }
    type Pick = fn(&SwitchCounters) -> &std::sync::atomic::AtomicU64;
    let per_switch: [(&str, &str, Pick); 7] = [
        (
            "beamer_switch_updates_total",
            "Table updates acknowledged by each switch.",
            |c| &c.updates,
        ),
        (
            "beamer_switch_write_requests_total",
            "WriteRequests acknowledged by each switch.",
            |c| &c.write_requests,
        ),
        (
            "beamer_switch_rejected_writes_total",
            "Writes each switch rejected.",
            |c| &c.rejected_writes,
        ),
        (
            "beamer_switch_errors_total",
            "Failed RPCs and connection attempts per switch.",
            |c| &c.rpc_errors,
        ),
        (
            "beamer_switch_sessions_total",
            "P4Runtime sessions opened per switch.",
            |c| &c.sessions,
        ),
        (
            "beamer_switch_pipeline_pushes_total",
            "Pipelines pushed per switch.",
            |c| &c.pipeline_pushes,
        ),
        (
            "beamer_switch_reconciles_total",
            "Read-backs and reconciliations per switch.",
            |c| &c.reconciles,
        ),
    ];
    for (name, help, pick) in per_switch {
        o.head(name, "counter", help);
        for (sw, c) in counters {
            o.sample(name, &[("switch", sw)], SwitchCounters::get(pick(c)));
        }
    }
    o.head(
        "beamer_switch_dropped_packets_total",
        "counter",
        "Packets each switch dropped, per reason (its drop counter, read periodically).",
    );
    let drops: Vec<(
        String,
        Vec<(beamer_pipeline::DropReason, beamer_pipeline::p4rt::Counts)>,
    )> = counters
        .iter()
        .map(|(sw, c)| {
            (
                sw.clone(),
                c.drops.lock().map(|d| d.clone()).unwrap_or_default(),
            )
        })
        .collect();
    for (sw, d) in &drops {
        for (r, n) in d {
            o.sample(
                "beamer_switch_dropped_packets_total",
                &[("switch", sw), ("reason", r.name())],
                n.packets,
            );
        }
    }
    o.head(
        "beamer_switch_dropped_bytes_total",
        "counter",
        "Bytes each switch dropped, per reason.",
    );
    for (sw, d) in &drops {
        for (r, n) in d {
            o.sample(
                "beamer_switch_dropped_bytes_total",
                &[("switch", sw), ("reason", r.name())],
                n.bytes,
            );
        }
    }
    o.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ServerStatus, VipStatus};
    use crate::config::TargetKind;
    use crate::switch::SwitchStatus;

    #[test]
    fn text_format() {
        let status = Status {
            generation: 7,
            daisy_timeout: beamer_pipeline::daisy::DEFAULT_DAISY_TIMEOUT_SECS,
            next_expiry: None,
            vips: vec![VipStatus {
                id: 0,
                address: "192.0.2.1".parse().unwrap(),
                ports: vec!["tcp/80".into()],
                buckets: 16,
                chained: 3,
                servers: vec![ServerStatus {
                    dip: "10.0.0.1".parse().unwrap(),
                    port: None,
                    weight: 2,
                    admin: "active".into(),
                    health: Some("up".into()),
                    state: "active".into(),
                    buckets: 16,
                    ideal: 16.0,
                    note: None,
                }],
            }],
            switches: vec![SwitchStatus {
                name: "a\"b".into(),
                address: "x".into(),
                target: TargetKind::Softswitch,
                state: SyncState::InSync { generation: 7 },
                holds_generation: Some(7),
                since_ms: 0,
                last_error: None,
            }],
            last_commit: None,
        };
        let c = Arc::new(SwitchCounters::default());
        SwitchCounters::add(&c.updates, 42);
        *c.drops.lock().unwrap() = vec![(
            beamer_pipeline::DropReason::Truncated,
            beamer_pipeline::p4rt::Counts {
                packets: 3,
                bytes: 30,
            },
        )];
        let text = render(&status, &CoreStats::default(), &[("a\"b".into(), c)]);
        for line in [
            "# TYPE beamer_generation gauge",
            "beamer_generation 7",
            "beamer_server_buckets{vip=\"192.0.2.1\",dip=\"10.0.0.1\",state=\"active\"} 16",
            "beamer_server_healthy{vip=\"192.0.2.1\",dip=\"10.0.0.1\"} 1",
            "beamer_switch_sync_state{switch=\"a\\\"b\",state=\"in_sync\"} 1",
            "beamer_switch_sync_state{switch=\"a\\\"b\",state=\"syncing\"} 0",
            "beamer_switch_generation{switch=\"a\\\"b\"} 7",
            "beamer_switch_updates_total{switch=\"a\\\"b\"} 42",
            "beamer_switch_dropped_packets_total{switch=\"a\\\"b\",reason=\"truncated\"} 3",
            "beamer_switch_dropped_bytes_total{switch=\"a\\\"b\",reason=\"truncated\"} 30",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        // Every sample line is `name{labels} value` or `name value`.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let value = l.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{l}");
        }
    }
}
