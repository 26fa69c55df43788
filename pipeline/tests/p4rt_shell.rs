//! The pipeline's P4Info and entries against p4runtime-shell (PyPI
//! `p4runtime-shell`), the P4Runtime client operators use by hand.
//!
//! Rust writes the P4Info in text format and the entries of [`ENTRIES`] as a
//! WriteRequest; `p4runtime-proto/tests/python/shell_entries.py` loads the
//! P4Info into the shell, builds the same entries by name and checks that
//! Rust's bytes equal the shell's canonical ones. Rust then decodes what the
//! shell built, in canonical and in zero-padded bytestring mode.
//!
//! Python comes from `BEAMER_PYTHON` (default `python3`). Without
//! p4runtime-shell the test fails when `BEAMER_REQUIRE_PYTHON=1` (as in CI)
//! and otherwise prints a loud SKIPPED line.

use beamer_pipeline::entries::{
    BucketAction, BucketKey, Entry, RouteAction, SwitchConfig, Update, VipAction, VipKey,
};
use beamer_pipeline::p4rt::p4runtime_proto::p4::v1;
use beamer_pipeline::p4rt::p4runtime_proto::p4info_to_text;
use beamer_pipeline::p4rt::p4runtime_proto::prost::Message;
use beamer_pipeline::p4rt::{Pipeline, Write, check_p4info, expected_p4info, update_to_p4};
use beamer_pipeline::{PipelineParams, Target};
use beamer_testbed::python;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

/// The updates of the shell script's docstring, in its order.
fn updates() -> Vec<Update> {
    let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
    let vip = |port| VipKey {
        dst: ip("203.0.113.10"),
        protocol: 6,
        port,
    };
    let route = |prefix: &str, port, dst: &str, src: &str| {
        Entry::Route(
            prefix.parse().unwrap(),
            RouteAction {
                port,
                dst_mac: dst.parse().unwrap(),
                src_mac: src.parse().unwrap(),
            },
        )
    };
    vec![
        Update::Insert(Entry::Vip(vip(80), VipAction::ToBuckets { vip_id: 3 })),
        Update::Insert(Entry::Vip(
            vip(8001),
            VipAction::ToServer {
                dip: ip("10.0.0.9"),
            },
        )),
        Update::Insert(Entry::Bucket(
            BucketKey {
                vip_id: 3,
                bucket: 4095,
            },
            BucketAction {
                dip: ip("10.0.0.2"),
                prev_dip: ip("10.0.0.3"),
                change_time: 1_700_000_000,
            },
        )),
        Update::Insert(Entry::Bucket(
            BucketKey {
                vip_id: 0,
                bucket: 0,
            },
            BucketAction {
                dip: ip("10.0.0.2"),
                prev_dip: Ipv4Addr::UNSPECIFIED,
                change_time: 0,
            },
        )),
        Update::Insert(route(
            "10.1.0.0/16",
            511,
            "02:00:00:00:00:01",
            "00:00:5e:00:53:01",
        )),
        Update::Insert(route(
            "192.0.2.1/32",
            1,
            "00:00:00:00:00:01",
            "00:00:00:00:00:02",
        )),
        Update::SetConfig(SwitchConfig {
            tunnel_src: ip("192.0.2.1"),
            generation: 7,
        }),
    ]
}

#[test]
fn p4runtime_shell_builds_the_same_entries() {
    let Some(python) = python::with_modules(
        "p4runtime_shell_builds_the_same_entries",
        python::P4RUNTIME_SHELL,
    ) else {
        return;
    };

    // 2^12 buckets, so the bucket key is 12 bits and 4095 its largest value.
    let params = PipelineParams {
        buckets: 1 << 12,
        ..Default::default()
    };
    let p4info = expected_p4info(&params, Target::V1model);
    let pipeline: Pipeline = check_p4info(&p4info).unwrap();

    let dir = std::env::temp_dir().join(format!("beamer-p4rt-shell-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("beamer.p4info.txt"), p4info_to_text(&p4info)).unwrap();
    let request = v1::WriteRequest {
        updates: updates().iter().map(update_to_p4).collect(),
        ..Default::default()
    };
    std::fs::write(dir.join("rust_entries.bin"), request.encode_to_vec()).unwrap();

    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../p4runtime-proto/tests/python/shell_entries.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    assert!(
        out.status.success() && stdout.contains("shell_entries: OK"),
        "shell_entries.py failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );

    for file in ["shell_canonical.bin", "shell_padded.bin"] {
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let request = v1::WriteRequest::decode(bytes.as_slice()).unwrap();
        let writes: Vec<Write> = request
            .updates
            .iter()
            .map(|u| pipeline.write_from_p4(u))
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("{file}: {e} ({:?})", e.code));
        let expected: Vec<Write> = updates().into_iter().map(Write::from).collect();
        assert_eq!(writes, expected, "{file}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
