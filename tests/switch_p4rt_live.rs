//! `beamer switch --p4rt` on live ports: a P4Runtime client moves a bucket
//! while the switch forwards, and the next packet of that bucket goes to
//! the new server, with the previous one in the option.
//!
//! Same namespaces as `switch_afpacket.rs` (root and iproute2 needed; a
//! SKIPPED line otherwise, a failure with `BEAMER_REQUIRE_TOOLS=1`).

mod support_netns;

use beamer_pipeline::entries::{BucketAction, BucketKey, Entry, Update};
use beamer_pipeline::hash::bucket_of_wire;
use beamer_pipeline::p4rt::p4runtime_proto as proto;
use beamer_pipeline::p4rt::update_to_p4;
use beamer_softswitch::io::pcap::PcapInput;
use proto::p4::v1;
use proto::tonic;
use std::net::Ipv4Addr;
use support_netns::{SwitchProcess, Tap, Topology, can_run, capture, example};
use tonic::codegen::tokio_stream::{self, StreamExt};

/// The first frame of the pcap example: a TCP SYN to the service port.
fn syn() -> Vec<u8> {
    let mut input = PcapInput::open(&example("input.pcap"), 1).unwrap();
    input.next_frame().unwrap().unwrap().data.to_vec()
}

/// Becomes primary (election id 1) on the switch at `addr` and writes
/// `update`. Runs on the calling thread (so in its network namespace).
fn p4rt_write(addr: &str, update: Update) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut client = v1::p4_runtime_client::P4RuntimeClient::connect(format!("http://{addr}"))
            .await
            .expect("connect to the switch's P4Runtime server");
        let arbitration = v1::StreamMessageRequest {
            update: Some(v1::stream_message_request::Update::Arbitration(
                v1::MasterArbitrationUpdate {
                    device_id: 1,
                    election_id: Some(1u128.into()),
                    ..Default::default()
                },
            )),
        };
        // Keep the stream open (and so stay primary) until the write.
        let requests = tokio_stream::iter(vec![arbitration]).chain(tokio_stream::pending());
        let mut stream = client.stream_channel(requests).await.unwrap().into_inner();
        match stream.message().await.unwrap().and_then(|m| m.update) {
            Some(v1::stream_message_response::Update::Arbitration(a)) => {
                assert_eq!(a.status.map(|s| s.code), Some(0), "primary");
            }
            other => panic!("expected the arbitration answer, got {other:?}"),
        }
        client
            .write(v1::WriteRequest {
                device_id: 1,
                election_id: Some(1u128.into()),
                updates: vec![update_to_p4(&update)],
                ..Default::default()
            })
            .await
            .expect("write");
    });
}

#[test]
fn a_bucket_moved_over_p4runtime_takes_effect_on_the_live_path() {
    if !can_run("a_bucket_moved_over_p4runtime_takes_effect_on_the_live_path") {
        return;
    }
    let topo = Topology::new("p");
    let c1 = topo.cl.run(|| Tap::open("c1"));
    let v2 = topo.sv.run(|| Tap::open("v2"));
    let switch = SwitchProcess::start(&topo.sw, &["--p4rt", "127.0.0.1:0"]);
    let addr = switch
        .startup
        .iter()
        .find_map(|l| l.strip_prefix("beamer switch: P4Runtime on "))
        .unwrap_or_else(|| panic!("no P4Runtime address in {:?}", switch.startup))
        .to_string();

    let frame = syn();
    let bucket = bucket_of_wire(
        frame[26..30].try_into().unwrap(),
        frame[34..36].try_into().unwrap(),
        4, // tables.toml: 16 buckets
    );
    let outer_dst = |f: &[u8]| Ipv4Addr::new(f[30], f[31], f[32], f[33]);

    // Before: round robin puts the bucket on 10.1.0.1 or 10.1.0.2.
    c1.send(&frame);
    let before = capture(&v2, 1);
    assert_eq!(before.len(), 1);
    let old = outer_dst(&before[0]);
    assert_ne!(old, Ipv4Addr::new(10, 1, 0, 3));

    // A controller moves the bucket to 10.1.0.3.
    let moved = Update::Modify(Entry::Bucket(
        BucketKey { vip_id: 0, bucket },
        BucketAction {
            dip: Ipv4Addr::new(10, 1, 0, 3),
            prev_dip: old,
            change_time: 1_700_000_100,
        },
    ));
    topo.sw.run(|| p4rt_write(&addr, moved));

    // After: the same packet goes to 10.1.0.3, the option names the old
    // server and the change time.
    c1.send(&frame);
    let after = capture(&v2, 1);
    assert_eq!(after.len(), 1);
    let f = &after[0];
    assert_eq!(outer_dst(f), Ipv4Addr::new(10, 1, 0, 3));
    assert_eq!(&f[34..38], &[0x61, 0x10, 0x00, 0x00]);
    assert_eq!(&f[38..42], &old.octets());
    assert_eq!(&f[42..46], &1_700_000_100u32.to_be_bytes());

    switch.signal(libc::SIGUSR1);
    let report = switch.report();
    let row = format!("vip_id 0 bucket {bucket} -> 10.1.0.3 (prev {old})");
    assert!(report.contains(&row), "missing {row:?} in:\n{report}");
    switch.signal(libc::SIGTERM);
    assert!(switch.report().contains("(SIGTERM)"));
    let mut switch = switch;
    assert!(switch.child.wait().unwrap().success());
    drop(topo);
}
