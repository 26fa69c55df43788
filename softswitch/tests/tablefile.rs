//! The table file: the committed example loads and switches packets, and
//! each kind of mistake gets an error naming its field.

mod common;

use beamer_pipeline::entries::{BucketKey, EntryKey, VipKey};
use beamer_softswitch::tablefile::{TableFile, TableFileError};
use beamer_softswitch::{Batch, TableKind, Verdict};
use common::*;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/tables.toml");

#[test]
fn the_example_loads_and_switches() {
    let file = TableFile::load(EXAMPLE).unwrap();
    assert_eq!(file.params, beamer_pipeline::PipelineParams::default());
    let s = file.build().unwrap();
    assert_eq!(s.len(TableKind::Vip), 8);
    assert_eq!(s.len(TableKind::Buckets), 65536);
    assert_eq!(s.len(TableKind::Routes), 2);
    assert_eq!(s.config().generation, 3);
    let b = |bucket| EntryKey::Bucket(BucketKey { vip_id: 1, bucket });
    let e = s.entry(&b(4)).unwrap();
    assert_eq!(
        e,
        beamer_pipeline::entries::Entry::Bucket(
            BucketKey {
                vip_id: 1,
                bucket: 4
            },
            beamer_pipeline::entries::BucketAction {
                dip: ip("10.1.0.4"),
                prev_dip: ip("10.1.0.2"),
                change_time: 1_700_000_000,
            }
        )
    );
    // Round robin: bucket 5 -> round_robin[5 % 3] = 10.1.0.3.
    match s.entry(&b(5)).unwrap() {
        beamer_pipeline::entries::Entry::Bucket(_, a) => assert_eq!(a.dip, ip("10.1.0.3")),
        other => panic!("{other:?}"),
    }
    // The second address shares vip_id 1.
    assert!(
        s.entry(&EntryKey::Vip(VipKey {
            dst: ip("192.0.2.11"),
            protocol: 6,
            port: 80
        }))
        .is_some()
    );
    let mut w = s.worker();
    let mut batch = Batch::with_defaults();
    batch
        .push(&Pkt::tcp(CLIENT_A, ("192.0.2.11", 80), 0x02).build(), 0)
        .unwrap();
    batch
        .push(&Pkt::tcp(CLIENT_A, ("192.0.2.10", 40003), 0x10).build(), 0)
        .unwrap();
    batch
        .push(&Pkt::icmp(CLIENT_A.0, "8.8.8.8").build(), 1)
        .unwrap();
    w.process_batch(&mut batch);
    let v: Vec<_> = batch.iter().map(|p| p.verdict.unwrap()).collect();
    assert_eq!(
        v,
        vec![
            Verdict::Forward { port: 1 },
            Verdict::Forward { port: 1 },
            Verdict::Forward { port: 0 }
        ]
    );
    // The per-server packet went to 10.1.0.3, IHL 5.
    let f = batch.get(1).unwrap().frame;
    assert_eq!((f[14], &f[30..34]), (0x45, &[10, 1, 0, 3][..]));
}

const BASE: &str = r#"
[config]
tunnel_src = "10.0.0.1"
"#;

fn err(extra: &str) -> String {
    match TableFile::parse(&format!("{BASE}{extra}")) {
        Ok(_) => panic!("accepted:\n{extra}"),
        Err(e) => e.to_string(),
    }
}

fn assert_names(extra: &str, field: &str, detail: &str) {
    let e = err(extra);
    assert!(
        e.starts_with(field) || e.contains(&format!("{field}:")) || e.contains(field),
        "error does not name {field}: {e}"
    );
    assert!(e.contains(detail), "error lacks {detail:?}: {e}");
}

#[test]
fn errors_name_the_field() {
    let vip = |body: &str| format!("[[vip]]\naddr = \"192.0.2.10\"\n{body}\n");
    assert_names(
        &vip(
            "vip_id = 0\nservice_ports = [\"tcp/80\", \"sctp/80\"]\n[vip.buckets]\nround_robin = [\"10.1.0.1\"]",
        ),
        "vip[0].service_ports[1]",
        "sctp/80",
    );
    assert_names(
        &vip(
            "vip_id = 0\nservice_ports = [\"tcp/80\"]\n[vip.buckets]\nround_robin = [\"10.1.0.1\", \"10.1.0\"]",
        ),
        "vip[0].buckets.round_robin[1]",
        "10.1.0",
    );
    assert_names(
        &vip("service_ports = [\"tcp/80\"]"),
        "vip[0].vip_id",
        "required",
    );
    assert_names(
        &vip("vip_id = 0\nservice_ports = [\"tcp/80\"]"),
        "vip[0].buckets",
        "no VIP gives its buckets",
    );
    assert_names(
        &vip(
            "vip_id = 0\nservice_ports = [\"tcp/80\"]\n[vip.buckets]\noverrides = [{ bucket = 65536, dip = \"10.1.0.1\" }]",
        ),
        "vip[0].buckets.overrides[0].bucket",
        "65536",
    );
    assert_names(
        &vip(
            "vip_id = 0\nservice_ports = [\"tcp/80\"]\n[vip.buckets]\noverrides = [{ bucket = 1, dip = \"10.1.0.1\", prev_dip = \"x\" }]",
        ),
        "vip[0].buckets.overrides[0].prev_dip",
        "\"x\"",
    );
    assert_names(
        &vip(
            "per_server_ports = [{ port = 1, dip = \"10.1.0.1\" }, { port = 1, dip = \"10.1.0.2\" }]",
        ),
        "vip[0].per_server_ports[1].port",
        "already defined at vip[0].per_server_ports[0].port",
    );
    assert_names(
        &vip("vip_id = 0\n[vip.buckets]"),
        "vip[0].buckets",
        "round_robin",
    );
    assert_names(
        "[[vip]]\naddr = \"192.0.2.300\"",
        "vip[0].addr",
        "192.0.2.300",
    );
    assert_names(
        "[[route]]\nprefix = \"10.1.0.1/24\"\nport = 1\ndst_mac = \"02:00:00:00:00:01\"\nsrc_mac = \"02:00:00:00:00:02\"",
        "route[0].prefix",
        "host bits",
    );
    assert_names(
        "[[route]]\nprefix = \"10.1.0.0/24\"\nport = 512\ndst_mac = \"02:00:00:00:00:01\"\nsrc_mac = \"02:00:00:00:00:02\"",
        "route[0].port",
        "9 bits",
    );
    assert_names(
        "[[route]]\nprefix = \"10.1.0.0/24\"\nport = 1\ndst_mac = \"02:00:00:00:00\"\nsrc_mac = \"02:00:00:00:00:02\"",
        "route[0].dst_mac",
        "02:00:00:00:00",
    );
    assert_names(
        "[[route]]\nprefix = \"10.0.0.0/8\"\nport = 1\ndst_mac = \"02:00:00:00:00:01\"\nsrc_mac = \"02:00:00:00:00:02\"\n[[route]]\nprefix = \"10.0.0.0/8\"\nport = 2\ndst_mac = \"02:00:00:00:00:01\"\nsrc_mac = \"02:00:00:00:00:02\"",
        "route[1].prefix",
        "already routed at route[0]",
    );
    // Two VIPs both giving the buckets of one vip_id.
    let two = "[[vip]]\naddr = \"192.0.2.10\"\nvip_id = 0\n[vip.buckets]\nround_robin = [\"10.1.0.1\"]\n\
               [[vip]]\naddr = \"192.0.2.11\"\nvip_id = 0\n[vip.buckets]\nround_robin = [\"10.1.0.1\"]\n";
    assert_names(two, "vip[1].buckets", "already given at vip[0]");
}

#[test]
fn sizes_are_checked_against_the_pipeline_section() {
    assert_names("[pipeline]\nbuckets = 1000", "pipeline", "--buckets 1000");
    let routes = (0..3)
        .map(|i| {
            format!(
                "[[route]]\nprefix = \"10.{i}.0.0/16\"\nport = 1\ndst_mac = \"02:00:00:00:00:01\"\nsrc_mac = \"02:00:00:00:00:02\"\n"
            )
        })
        .collect::<String>();
    assert_names(
        &format!("[pipeline]\nroutes = 2\n{routes}"),
        "pipeline.routes",
        "3 routes",
    );
    let vips = (0..3)
        .map(|i| {
            format!("[[vip]]\naddr = \"192.0.2.{i}\"\nvip_id = {i}\n[vip.buckets]\nround_robin = [\"10.1.0.1\"]\n")
        })
        .collect::<String>();
    assert_names(
        &format!("[pipeline]\nbuckets = 2\n{vips}"),
        "pipeline.max_vips",
        "3 vip_ids",
    );
}

#[test]
fn syntax_and_unknown_fields_are_reported_with_their_key() {
    let e = err("[[vip]]\naddr = \"192.0.2.10\"\nservce_ports = [\"tcp/80\"]\n");
    assert!(e.contains("servce_ports"), "{e}");
    let e = err(
        "[[route]]\nprefix = \"10.0.0.0/8\"\nport = \"one\"\ndst_mac = \"a\"\nsrc_mac = \"b\"\n",
    );
    assert!(e.contains("port"), "{e}");
    let e = TableFile::parse("[[vip]]\naddr = \"192.0.2.10\"\n").unwrap_err();
    assert!(e.to_string().contains("config"), "{e}");
    assert!(matches!(
        TableFile::load("/nonexistent/tables.toml"),
        Err(TableFileError::Io { .. })
    ));
}

#[test]
fn a_minimal_file_is_only_a_config() {
    let f = TableFile::parse("[config]\ntunnel_src = \"10.0.0.1\"\ngeneration = 9\n").unwrap();
    let s = f.build().unwrap();
    assert!(s.all_entries().is_empty());
    assert_eq!(s.config().generation, 9);
}
