//! The committed pcap example (`examples/pcap/`): its input is what the
//! frame table makes, every frame gets the verdict the table says, and the
//! committed outputs are what the pcap backend writes.
//!
//! `BEAMER_BLESS=1 cargo test -p beamer-softswitch --test pcap_example`
//! rewrites the committed files instead of comparing (review the diff,
//! e.g. with tshark, before committing).

#[path = "../examples/pcap/frames.rs"]
mod frames;

use beamer_pipeline::wire::ethernet::HEADER_LEN as ETH_LEN;
use beamer_pipeline::wire::option::{OPTION_TYPE, OUTER_HEADER_LEN};
use beamer_pipeline::wire::{EthernetFrame, Ipv4Packet};
use beamer_softswitch::io::pcap::{
    FrameSink, MAX_PCAP_FRAME, PcapBackend, PcapInput, PcapNgSink, PcapSink, PortDir,
};
use beamer_softswitch::io::{MemoryBackend, run};
use beamer_softswitch::tablefile::TableFile;
use beamer_softswitch::{Batch, BatchSize, Switch};
use frames::{Expect, fixtures};
use pcap_file::TsResolution;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/pcap")
}

fn bless() -> bool {
    std::env::var_os("BEAMER_BLESS").is_some_and(|v| v == "1")
}

/// Compares `got` with the committed file `name`, or rewrites it.
fn check_file(name: &str, got: &[u8]) {
    let path = dir().join(name);
    if bless() {
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        want == got,
        "{} differs from what is made now ({} bytes committed, {} made); \
         rerun with BEAMER_BLESS=1 and review",
        path.display(),
        want.len(),
        got.len()
    );
}

fn switch() -> Switch {
    TableFile::load(dir().join("tables.toml"))
        .unwrap()
        .build()
        .unwrap()
}

#[test]
fn committed_input_is_the_frame_table() {
    check_file("input.pcap", &frames::input_pcap());
}

#[test]
fn every_frame_gets_the_verdict_of_the_table() {
    let fixtures = fixtures();
    let switch = switch();
    let mut worker = switch.worker();
    for (i, f) in fixtures.iter().enumerate() {
        let mut batch = Batch::new(BatchSize::MIN, 2048);
        batch.push(&f.frame, 0).unwrap();
        worker.process_batch(&mut batch);
        let p = batch.get(0).unwrap();
        let verdict = p.verdict.unwrap();
        let what = format!("frame {} ({}): {verdict:?}", i + 1, f.what);
        match f.expect {
            Expect::Drop(reason) => {
                assert_eq!(verdict, beamer_softswitch::Verdict::Drop(reason), "{what}");
            }
            Expect::Encap(port) | Expect::Routed(port) => {
                assert_eq!(verdict.egress_port(), Some(port), "{what}");
                let eth = EthernetFrame::new_checked(p.frame).unwrap();
                let outer = Ipv4Packet::new_checked(eth.payload()).unwrap();
                assert!(outer.checksum_ok(), "{what}");
                let inner_in = &f.frame[ETH_LEN..];
                if let Expect::Encap(_) = f.expect {
                    assert_eq!(outer.protocol(), 4, "{what}");
                    // The inner packet is carried unchanged.
                    assert_eq!(&eth.payload()[outer.header_len()..], inner_in, "{what}");
                    let with_option = outer.header_len() == OUTER_HEADER_LEN;
                    let per_server = f.what.contains("per-server");
                    assert_eq!(with_option, !per_server, "{what}");
                    if with_option {
                        assert_eq!(outer.options()[0], OPTION_TYPE, "{what}");
                    }
                } else {
                    // Routed: same packet, TTL - 1.
                    let inner = Ipv4Packet::new_checked(inner_in).unwrap();
                    assert_eq!(outer.ttl(), inner.ttl() - 1, "{what}");
                    assert_eq!(outer.src(), inner.src(), "{what}");
                    assert_eq!(&eth.payload()[20..], &inner_in[20..], "{what}");
                }
            }
        }
    }
    // Every drop reason but one (VLAN and ARP share non_ipv4) appears.
    let drops = switch.drop_counters();
    assert!(drops.iter().all(|c| c.packets > 0), "{drops:?}");
}

#[test]
fn moved_bucket_carries_the_previous_server() {
    let f = &fixtures()[1];
    assert!(f.what.contains("bucket 7"));
    let switch = switch();
    let mut mem = MemoryBackend::with_input([(0, f.frame.clone())]);
    run(
        &mut switch.worker(),
        &mut mem,
        &mut Batch::with_defaults(),
        &AtomicBool::new(false),
    )
    .unwrap();
    let (port, out) = &mem.output()[0];
    assert_eq!(*port, 2);
    // Ethernet | outer IPv4 (20) | option: 61 10 00 00, prev 10.1.0.1,
    // change time 1700000000, generation 7 | inner packet.
    #[rustfmt::skip]
    let option = [
        0x61, 0x10, 0x00, 0x00,
        10, 1, 0, 1,
        0x65, 0x53, 0xf1, 0x00,
        0x00, 0x00, 0x00, 0x07,
    ];
    assert_eq!(&out[ETH_LEN + 20..ETH_LEN + 36], &option);
    assert_eq!(
        &out[ETH_LEN + 16..ETH_LEN + 20],
        &[10, 1, 0, 2],
        "outer dst"
    );
}

/// A `Write` whose bytes stay readable after the sink is boxed.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn committed_outputs_are_what_the_pcap_backend_writes() {
    let input = frames::input_pcap();
    let (ng, classic) = (Shared::default(), Shared::default());
    let ports_dir = std::env::temp_dir().join(format!("beamer-example-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&ports_dir);
    let sinks: Vec<Box<dyn FrameSink>> = vec![
        Box::new(PcapNgSink::new(ng.clone(), "ng").unwrap()),
        Box::new(PcapSink::new(classic.clone(), "classic", TsResolution::MicroSecond).unwrap()),
        Box::new(PortDir::new(&ports_dir, TsResolution::MicroSecond).unwrap()),
    ];
    let switch = switch();
    let mut backend = PcapBackend::new(PcapInput::new(&input[..], "in", 0).unwrap(), "in", sinks);
    // Odd batch size: batches straddle the frames' verdict groups.
    let mut batch = Batch::new(BatchSize::new(3).unwrap(), MAX_PCAP_FRAME);
    let n = run(
        &mut switch.worker(),
        &mut backend,
        &mut batch,
        &AtomicBool::new(false),
    )
    .unwrap();
    backend.finish().unwrap();
    assert_eq!(n as usize, fixtures().len());

    check_file("expected.pcapng", &ng.0.lock().unwrap());
    check_file("expected.pcap", &classic.0.lock().unwrap());
    for port in [1, 2] {
        let got = std::fs::read(PortDir::path_of(&ports_dir, port)).unwrap();
        check_file(&format!("expected-port{port}.pcap"), &got);
    }
    std::fs::remove_dir_all(&ports_dir).unwrap();
}
