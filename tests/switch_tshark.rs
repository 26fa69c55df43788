//! tshark, an independent decoder, reads what `beamer switch` writes: the
//! outer and inner IPv4 headers, the 16-byte Beamer option (type 0x61), a
//! valid outer checksum, and the inner TCP ports, unchanged from the input.
//!
//! The golden tests of the core and `switch_pcap.rs` check the bytes; this
//! checks that a real tool agrees on what they mean. Needs tshark (Debian
//! package `tshark`). Without it the test prints a SKIPPED line, and fails
//! when `BEAMER_REQUIRE_TOOLS=1` (as CI sets).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("softswitch/examples/pcap")
        .join(name)
}

fn tshark_available() -> bool {
    let Some(why) = beamer_testbed::not_on_path(&["tshark"]) else {
        return true;
    };
    beamer_testbed::skip_unless_required(
        beamer_testbed::REQUIRE_TOOLS,
        "decoding the output pcap with tshark, an independent tool",
        &format!("{why}; install Debian package `tshark`"),
    );
    false
}

/// One decoded field: its name (empty for tshark's unnamed fields), the
/// shown value, and the raw bytes in hex.
#[derive(Debug, Clone)]
struct Field {
    proto_index: usize,
    name: String,
    show: String,
    value: String,
}

/// One packet of tshark's PDML output: the protocols in order and every
/// field, tagged with the index of the protocol it belongs to.
#[derive(Debug, Default)]
struct Packet {
    protos: Vec<String>,
    fields: Vec<Field>,
}

impl Packet {
    /// Values of `name` in the `n`-th occurrence of protocol `proto`.
    fn get(&self, proto: &str, n: usize, name: &str) -> Option<&Field> {
        let idx = self
            .protos
            .iter()
            .enumerate()
            .filter(|(_, p)| *p == proto)
            .nth(n)?
            .0;
        self.fields
            .iter()
            .find(|f| f.proto_index == idx && f.name == name)
    }

    fn show(&self, proto: &str, n: usize, name: &str) -> String {
        self.get(proto, n, name)
            .map(|f| f.show.clone())
            .unwrap_or_else(|| panic!("no {name} in {proto}#{n}: {:?}", self.protos))
    }

    fn count(&self, proto: &str) -> usize {
        self.protos.iter().filter(|p| *p == proto).count()
    }
}

/// The value of `attr="..."` in a PDML line.
fn attr<'a>(line: &'a str, attr: &str) -> Option<&'a str> {
    let key = format!(" {attr}=\"");
    let start = line.find(&key)? + key.len();
    let end = line[start..].find('"')? + start;
    Some(&line[start..end])
}

fn parse_pdml(xml: &str) -> Vec<Packet> {
    let mut packets = Vec::new();
    let mut cur: Option<Packet> = None;
    for line in xml.lines().map(str::trim) {
        if line.starts_with("<packet") {
            cur = Some(Packet::default());
        } else if line.starts_with("</packet") {
            packets.extend(cur.take());
        } else if let Some(p) = cur.as_mut() {
            if line.starts_with("<proto ") {
                p.protos.push(attr(line, "name").unwrap_or("").to_string());
            } else if line.starts_with("<field ") {
                p.fields.push(Field {
                    proto_index: p.protos.len().saturating_sub(1),
                    name: attr(line, "name").unwrap_or("").to_string(),
                    show: attr(line, "show").unwrap_or("").to_string(),
                    value: attr(line, "value").unwrap_or("").to_string(),
                });
            }
        }
    }
    packets
}

fn tshark_pdml(file: &Path) -> Vec<Packet> {
    let out = Command::new("tshark")
        .args(["-n", "-o", "ip.check_checksum:TRUE", "-T", "pdml", "-r"])
        .arg(file)
        .output()
        .expect("run tshark");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_pdml(&String::from_utf8_lossy(&out.stdout))
}

#[test]
fn tshark_decodes_the_encapsulated_packets() {
    if !tshark_available() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("beamer-switch-tshark-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out_file = dir.join("out.pcapng");
    let status = Command::new(env!("CARGO_BIN_EXE_beamer"))
        .arg("switch")
        .arg("--tables")
        .arg(example("tables.toml"))
        .arg("--pcap-in")
        .arg(example("input.pcap"))
        .arg("--pcap-out")
        .arg(&out_file)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let output = tshark_pdml(&out_file);
    let input = tshark_pdml(&example("input.pcap"));
    std::fs::remove_dir_all(&dir).unwrap();

    // Input frames by capture time, to find each output frame's source.
    let input_by_time: BTreeMap<String, &Packet> = input
        .iter()
        .map(|p| (p.show("frame", 0, "frame.time_epoch"), p))
        .collect();

    assert_eq!(output.len(), 7, "7 frames are forwarded");
    let (mut with_option, mut plain, mut routed) = (0, 0, 0);
    for (i, p) in output.iter().enumerate() {
        let what = format!("output frame {}", i + 1);
        let port = p.show("frame", 0, "frame.interface_name");
        let src = input_by_time[&p.show("frame", 0, "frame.time_epoch")];
        // Every IPv4 header tshark sees has a good checksum.
        for n in 0..p.count("ip") {
            assert_eq!(
                p.get("ip", n, "ip.checksum.status")
                    .map(|f| f.show.as_str()),
                Some("1"),
                "{what}: ip#{n} checksum status (1 = good)"
            );
        }
        if p.count("ip") == 2 {
            assert_eq!(port, "port2", "{what}");
            // Outer header: protocol 4, from the tunnel source, TTL 64.
            assert_eq!(p.show("ip", 0, "ip.proto"), "4", "{what}");
            assert_eq!(p.show("ip", 0, "ip.src"), "10.0.0.1", "{what}");
            assert_eq!(p.show("ip", 0, "ip.ttl"), "64", "{what}");
            assert!(p.show("ip", 0, "ip.dst").starts_with("10.1.0."), "{what}");
            // Inner header and ports: those of the input frame.
            for f in ["ip.src", "ip.dst", "ip.ttl", "ip.id"] {
                assert_eq!(
                    p.show("ip", 1, f),
                    src.show("ip", 0, f),
                    "{what}: inner {f}"
                );
            }
            for (proto, f) in [("tcp", "tcp.srcport"), ("tcp", "tcp.dstport")] {
                if src.count(proto) == 1 {
                    assert_eq!(p.show(proto, 0, f), src.show(proto, 0, f), "{what}: {f}");
                }
            }
            match p.show("ip", 0, "ip.hdr_len").as_str() {
                "36" => {
                    // The 16-byte option, as tshark cuts it out.
                    let opt = p
                        .fields
                        .iter()
                        .find(|f| f.name.is_empty() && f.show.starts_with("Unknown (0x61)"))
                        .unwrap_or_else(|| panic!("{what}: no option 0x61"));
                    assert_eq!(opt.show, "Unknown (0x61) (16 bytes)", "{what}");
                    assert_eq!(opt.value.len(), 32, "{what}");
                    assert!(opt.value.starts_with("61100000"), "{what}: {}", opt.value);
                    assert!(opt.value.ends_with("00000007"), "{what}: generation 7");
                    if p.show("ip", 0, "ip.dst") == "10.1.0.2" && src.count("tcp") == 1 {
                        // Bucket 7: previous server 10.1.0.1, changed at
                        // 1700000000 (0x6553f100).
                        assert_eq!(opt.value, "611000000a0100016553f10000000007", "{what}");
                    }
                    with_option += 1;
                }
                "20" => {
                    // The per-server port: plain IP-in-IP.
                    assert_eq!(p.show("tcp", 0, "tcp.dstport"), "40001", "{what}");
                    assert_eq!(p.show("ip", 0, "ip.dst"), "10.1.0.3", "{what}");
                    plain += 1;
                }
                other => panic!("{what}: outer header length {other}"),
            }
        } else {
            // Routed: one IPv4 header, TTL one less than on input.
            assert_eq!(port, "port1", "{what}");
            let ttl: u8 = p.show("ip", 0, "ip.ttl").parse().unwrap();
            let ttl_in: u8 = src.show("ip", 0, "ip.ttl").parse().unwrap();
            assert_eq!(ttl + 1, ttl_in, "{what}");
            routed += 1;
        }
    }
    assert_eq!((with_option, plain, routed), (4, 1, 2));
}
