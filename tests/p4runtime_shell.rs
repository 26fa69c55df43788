//! p4runtime-shell (PyPI `p4runtime-shell`), the P4Runtime client
//! operators use by hand, against the real `beamer switch --p4rt` binary.
//!
//! The switch reads frames from a FIFO (`--pcap-in`), so they go through
//! only after the shell has written the tables. `tests/p4runtime_shell.py`
//! sets the pipeline from the generator's committed P4Info (with an empty
//! device config), inserts VIP, bucket and route entries and the config,
//! reads them back, modifies one bucket and deletes another; this test
//! then sends frames, the script reads the direct and drop counters, and
//! the frames the switch wrote out are compared with what the same entries
//! give in an in-process switch, byte for byte.
//!
//! Python comes from `BEAMER_PYTHON` (default `python3`). Without
//! p4runtime-shell the test fails when `BEAMER_REQUIRE_PYTHON=1` (as in
//! CI) and otherwise prints a loud SKIPPED line.

use beamer_pipeline::entries::{
    BucketAction, BucketKey, Entry, RouteAction, SwitchConfig, Update, VipAction, VipKey,
};
use beamer_pipeline::hash::bucket_of;
use beamer_pipeline::{DropReason, PipelineParams, Target, schema};
use beamer_softswitch::io::pcap::PcapInput;
use beamer_softswitch::{Batch, Switch, Verdict};
use beamer_testbed::{Scratch, python};
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
const VIP_ID: u16 = 1;
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 9);
const SERVER_PORT: u16 = 40001;
const NEW_DIP: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 42);
const CHANGE_TIME: u32 = 1_700_000_000;
const EGRESS: u16 = 5;
const NEXT_HOP: &str = "02:00:00:00:00:01";
const OUR_MAC: &str = "02:00:00:00:00:fe";
const CONFIG: SwitchConfig = SwitchConfig {
    tunnel_src: Ipv4Addr::new(192, 0, 2, 1),
    generation: 7,
};
const FRAME_LEN: usize = 54;

/// A child process killed when dropped (a failed test leaves no switch).
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A flow to the VIP's service port, and how many frames it sends.
struct Flow {
    src: Ipv4Addr,
    sport: u16,
    bucket: u32,
    dip: Ipv4Addr,
    packets: usize,
}

/// Three flows in three different buckets: the first one's bucket is
/// modified, the second's kept, the third's deleted.
fn flows(bits: u8) -> Vec<Flow> {
    let mut out: Vec<Flow> = Vec::new();
    let dips = [
        Ipv4Addr::new(10, 1, 0, 1),
        Ipv4Addr::new(10, 1, 0, 2),
        Ipv4Addr::new(10, 1, 0, 3),
    ];
    let packets = [3, 2, 1];
    for i in 0u16.. {
        let (src, sport) = (Ipv4Addr::new(198, 51, 100, 1 + (i % 200) as u8), 20_000 + i);
        let bucket = bucket_of(src, sport, bits);
        if out.iter().all(|f| f.bucket != bucket) {
            let n = out.len();
            out.push(Flow {
                src,
                sport,
                bucket,
                dip: dips[n],
                packets: packets[n],
            });
            if out.len() == 3 {
                break;
            }
        }
    }
    out
}

/// A TCP SYN frame, built by the golden fixtures' frame builder.
fn tcp_frame(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> Vec<u8> {
    let f = beamer_fixtures::Pkt::tcp(
        (&src.to_string(), sport),
        (&dst.to_string(), dport),
        beamer_fixtures::SYN,
    )
    .build();
    assert_eq!(f.len(), FRAME_LEN);
    f
}

/// A classic pcap file: its header, then records.
fn pcap_header() -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&4u16.to_le_bytes());
    h.extend_from_slice(&[0; 8]); // thiszone, sigfigs
    h.extend_from_slice(&65_535u32.to_le_bytes());
    h.extend_from_slice(&1u32.to_le_bytes()); // Ethernet
    h
}

fn pcap_record(i: u32, frame: &[u8]) -> Vec<u8> {
    let mut r = Vec::new();
    r.extend_from_slice(&1_700_000_000u32.to_le_bytes());
    r.extend_from_slice(&i.to_le_bytes());
    r.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    r.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    r.extend_from_slice(frame);
    r
}

/// What the switch's entries are after the script's writes, as typed
/// entries, for the reference switch.
fn final_entries(flows: &[Flow]) -> Vec<Update> {
    let vip = |port, action| {
        Update::Insert(Entry::Vip(
            VipKey {
                dst: VIP,
                protocol: 6,
                port,
            },
            action,
        ))
    };
    let mut u = vec![
        vip(80, VipAction::ToBuckets { vip_id: VIP_ID }),
        vip(SERVER_PORT, VipAction::ToServer { dip: SERVER }),
        Update::Insert(Entry::Route(
            "10.1.0.0/16".parse().unwrap(),
            RouteAction {
                port: EGRESS,
                dst_mac: NEXT_HOP.parse().unwrap(),
                src_mac: OUR_MAC.parse().unwrap(),
            },
        )),
        Update::SetConfig(CONFIG),
    ];
    let bucket = |f: &Flow, dip, prev_dip, change_time| {
        Update::Insert(Entry::Bucket(
            BucketKey {
                vip_id: VIP_ID,
                bucket: f.bucket,
            },
            BucketAction {
                dip,
                prev_dip,
                change_time,
            },
        ))
    };
    u.push(bucket(&flows[0], NEW_DIP, flows[0].dip, CHANGE_TIME));
    u.push(bucket(&flows[1], flows[1].dip, Ipv4Addr::UNSPECIFIED, 0));
    u
}

fn wait_for_port(addr: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("beamer switch exited early: {status}");
        }
        assert!(Instant::now() < deadline, "no P4Runtime server on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn p4runtime_shell_drives_beamer_switch() {
    let Some(python) = python::with_modules(
        "p4runtime_shell_drives_beamer_switch",
        python::P4RUNTIME_SHELL,
    ) else {
        return;
    };

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scratch = Scratch::new("beamer-p4rt-shell");
    // The generator's committed P4Info: the default sizes, 2^16 buckets.
    let p4info = root.join("p4/v1model/p4info.txt");
    let params = PipelineParams::default();
    let bits = params.bucket_bits();
    let device_config = scratch.path("device_config.bin");
    std::fs::write(&device_config, b"").unwrap();
    let fifo = scratch.path("in.pcap");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo");
    let out_dir = scratch.path("out");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");

    // The switch: no table file, P4Runtime on a free port, frames one at a
    // time from the FIFO (it blocks on the FIFO until we open it).
    let mut switch = Reaped(
        Command::new(env!("CARGO_BIN_EXE_beamer"))
            .args([
                "switch",
                "--p4rt",
                &addr,
                "--device-id",
                "1",
                "--batch",
                "1",
            ])
            .arg("--pcap-in")
            .arg(&fifo)
            .arg("--pcap-out-dir")
            .arg(&out_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start beamer switch"),
    );
    wait_for_port(&addr, &mut switch.0);

    let flows = flows(bits);
    let spec = format!(
        r#"{{"grpc_addr": "{addr}", "device_id": 1, "p4info": "{}", "device_config": "{}",
            "vip": "{VIP}", "vip_id": {VIP_ID}, "server": "{SERVER}", "server_port": {SERVER_PORT},
            "flows": [{}],
            "new_dip": "{NEW_DIP}", "change_time": {CHANGE_TIME},
            "route": "10.1.0.0/16", "port": {EGRESS}, "next_hop": "{NEXT_HOP}",
            "our_mac": "{OUR_MAC}", "tunnel_src": "{}", "generation": {},
            "bucket_miss_index": {}, "frame_len": {FRAME_LEN},
            "buckets_table": "{}"}}"#,
        p4info.display(),
        device_config.display(),
        flows
            .iter()
            .map(|f| format!(
                r#"{{"bucket": {}, "dip": "{}", "packets": {}}}"#,
                f.bucket, f.dip, f.packets
            ))
            .collect::<Vec<_>>()
            .join(", "),
        CONFIG.tunnel_src,
        CONFIG.generation,
        DropReason::BucketMiss.index(),
        Target::V1model.p4info_name(schema::BUCKETS.name),
    );
    let spec_path = scratch.path("spec.json");
    std::fs::write(&spec_path, spec).unwrap();

    let mut script = Reaped(
        Command::new(&python)
            .arg(root.join("tests/p4runtime_shell.py"))
            .arg(&spec_path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the p4runtime-shell script"),
    );
    // A hung script (or switch) fails the test instead of hanging it.
    let (done, watchdog) = std::sync::mpsc::channel::<()>();
    let pids = [script.0.id(), switch.0.id()];
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
            watchdog.recv_timeout(Duration::from_secs(180))
        {
            eprintln!("p4runtime_shell: timed out after 180 s, killing the script and switch");
            for pid in pids {
                // SAFETY: plain kill(2) of our own children.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            }
        }
    });
    let mut lines = BufReader::new(script.0.stdout.take().unwrap()).lines();
    let mut transcript = String::new();
    let mut ready = false;
    for line in lines.by_ref() {
        let line = line.unwrap();
        println!("{line}");
        transcript.push_str(&line);
        transcript.push('\n');
        if line == "READY" {
            ready = true;
            break;
        }
    }
    if !ready {
        let status = script.0.wait().unwrap();
        let mut err = String::new();
        let _ = std::io::Read::read_to_string(script.0.stderr.as_mut().unwrap(), &mut err);
        panic!("the script stopped before READY ({status}):\n{transcript}\n{err}");
    }

    // The frames, in order: each flow's packets, then one to the
    // per-server port. The FIFO stays open until the script is done, so
    // the switch keeps serving.
    let mut frames: Vec<Vec<u8>> = Vec::new();
    for f in &flows {
        for _ in 0..f.packets {
            frames.push(tcp_frame(f.src, f.sport, VIP, 80));
        }
    }
    frames.push(tcp_frame(
        Ipv4Addr::new(198, 51, 100, 250),
        999,
        VIP,
        SERVER_PORT,
    ));
    let mut pcap = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    pcap.write_all(&pcap_header()).unwrap();
    for (i, f) in frames.iter().enumerate() {
        pcap.write_all(&pcap_record(i as u32, f)).unwrap();
    }
    pcap.flush().unwrap();
    writeln!(script.0.stdin.as_mut().unwrap(), "SENT").unwrap();

    for line in lines {
        let line = line.unwrap();
        println!("{line}");
        transcript.push_str(&line);
        transcript.push('\n');
    }
    let status = script.0.wait().unwrap();
    let mut err = String::new();
    let _ = std::io::Read::read_to_string(script.0.stderr.as_mut().unwrap(), &mut err);
    assert!(
        status.success() && transcript.contains("p4runtime_shell: OK"),
        "p4runtime_shell.py failed ({status}):\n{transcript}\n{err}"
    );

    // End of input: the switch writes its output and exits.
    drop(pcap);
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(s) = switch.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "beamer switch did not exit");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stdout = String::new();
    let _ = std::io::Read::read_to_string(switch.0.stdout.as_mut().unwrap(), &mut stdout);
    assert!(exit.success(), "beamer switch failed ({exit}):\n{stdout}");
    drop(done);

    // What the same entries do in an in-process switch, frame for frame.
    let reference = Switch::new(params).unwrap();
    reference.apply_all(&final_entries(&flows)).unwrap();
    let mut worker = reference.worker();
    let mut batch = Batch::with_defaults();
    let mut expected = Vec::new();
    for f in &frames {
        batch.clear();
        batch.push(f, 0).unwrap();
        worker.process_batch(&mut batch);
        let p = batch.get(0).unwrap();
        if let Some(Verdict::Forward { port }) = p.verdict {
            assert_eq!(port, EGRESS);
            expected.push(p.frame.to_vec());
        }
    }
    // The modified flow goes to the new dip with the old one as prev_dip;
    // the deleted one is dropped; the per-server port goes to its server.
    assert_eq!(expected.len(), frames.len() - flows[2].packets);
    assert_eq!(&expected[0][30..34], &NEW_DIP.octets());
    assert_eq!(&expected[0][38..42], &flows[0].dip.octets());
    assert_eq!(&expected[3][30..34], &flows[1].dip.octets());
    assert_eq!(&expected[5][30..34], &SERVER.octets());

    let mut out = PcapInput::open(&out_dir.join(format!("port{EGRESS}.pcap")), 0).unwrap();
    let mut got = Vec::new();
    while let Some(f) = out.next_frame().unwrap() {
        got.push(f.data.to_vec());
    }
    assert_eq!(got, expected, "the frames beamer switch forwarded");
    let others: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(others, [format!("port{EGRESS}.pcap")]);
    // Its own counters, printed at the end, agree.
    assert!(stdout.contains("bucket_miss"), "{stdout}");
}
