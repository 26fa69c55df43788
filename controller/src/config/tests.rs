use super::*;

const GOOD: &str = r#"
[controller]
tunnel_src = "10.0.0.1"
election_id = 7
daisy_timeout = "120s"
admin_listen = "127.0.0.1:19090"

[[vips]]
address = "192.0.2.10"
ports = ["tcp/80", "443", "udp/53"]
buckets = 65536

[[vips.servers]]
dip = "10.1.0.1"
port = 9001
weight = 2
health = { port = 80, interval = "500ms", fall = 2 }

[[vips.servers]]
dip = "10.1.0.2"
state = "draining"

[[vips.servers]]
dip = "10.1.0.3"

[[switches]]
name = "mux-a"
address = "127.0.0.1:9559"
target = "softswitch"

[[switches]]
address = "localhost:9560"
target = "softswitch"
device_id = 2

[[next_hops]]
name = "core"
port = 1
mac = "02:00:00:00:00:fe"
src_mac = "02:00:00:00:00:01"

[[routes]]
prefix = "10.1.0.0/16"
next_hop = "core"

[[routes]]
prefix = "0.0.0.0/0"
next_hop = "core"
"#;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("beamer.toml"), Path::new("."))
}

/// The first problem of a bad config, as `line: field: message`.
fn first_problem(text: &str) -> (usize, String, String) {
    let e = parse(text).expect_err("the config must be refused");
    let p = &e.problems[0];
    (p.line, p.field.to_string(), p.message.clone())
}

fn line_of(text: &str, needle: &str) -> usize {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in the text"));
    text[..at].matches('\n').count() + 1
}

#[test]
fn a_complete_config() {
    let c = parse(GOOD).unwrap();
    assert_eq!(c.controller.tunnel_src, Ipv4Addr::new(10, 0, 0, 1));
    assert_eq!(c.controller.election_id, 7);
    assert_eq!(c.controller.daisy_timeout, 120);
    assert_eq!(c.controller.admin_listen.port(), 19090);
    assert_eq!(c.controller.metrics_listen.to_string(), "127.0.0.1:9091");
    let v = &c.vips[0];
    assert_eq!(v.spec.vip_id, 0);
    assert_eq!(
        v.spec.service_ports,
        [
            ServicePort::tcp(80),
            ServicePort::tcp(443),
            ServicePort::udp(53)
        ]
    );
    assert_eq!(v.servers.len(), 3);
    assert_eq!(v.servers[0].spec.weight, 2);
    assert_eq!(v.servers[0].spec.port, Some(9001));
    let h = v.servers[0].health.unwrap();
    assert_eq!(
        (h.port, h.interval, h.fall),
        (80, Duration::from_millis(500), 2)
    );
    assert_eq!(h.rise, HealthConfig::new(80).rise);
    assert_eq!(v.servers[1].admin, ServerAdmin::Draining);
    assert_eq!(v.servers[2].spec.weight, 1);
    assert_eq!(c.switches.len(), 2);
    assert_eq!(c.switches[1].name, "switch1");
    assert_eq!(c.switches[1].device_id, 2);
    assert_eq!(c.switches[0].pipeline.params.buckets, 65536);
    assert!(c.switches[0].device_config.bytes.is_empty());
    assert_eq!(c.alloc.bucket_bits, 16);
    assert_eq!(c.alloc.daisy_timeout, 120);
    assert_eq!(c.routes.len(), 2);
    let changes = c.initial_changes();
    assert!(matches!(changes[0], Change::AddVip(_)));
    assert!(matches!(changes.last(), Some(Change::DrainServer { .. })));
}

#[test]
fn the_built_in_softswitch_p4info_follows_the_bucket_count() {
    let text = GOOD.replace("buckets = 65536", "buckets = 1024");
    let c = parse(&text).unwrap();
    assert_eq!(c.alloc.bucket_bits, 10);
    assert_eq!(c.switches[0].pipeline.params.buckets, 1024);
}

#[test]
fn errors_name_file_line_and_field() {
    struct Case {
        what: &'static str,
        from: &'static str,
        to: &'static str,
        /// Text on the line the error must point at (after the change).
        line_of: &'static str,
        field: &'static str,
        message: &'static str,
    }
    let cases = [
        Case {
            what: "a value of the wrong syntax (serde)",
            from: "dip = \"10.1.0.3\"",
            to: "dip = \"10.1.0.300\"",
            line_of: "10.1.0.300",
            field: "vips[0].servers[2].dip",
            message: "invalid IPv4 address",
        },
        Case {
            what: "an unknown field (serde)",
            from: "weight = 2",
            to: "wieght = 2",
            line_of: "wieght",
            field: "vips[0].servers[0].wieght",
            message: "unknown field `wieght`",
        },
        Case {
            what: "a wrong type (serde)",
            from: "device_id = 2",
            to: "device_id = \"two\"",
            line_of: "device_id = \"two\"",
            field: "switches[1].device_id",
            message: "invalid type",
        },
        Case {
            what: "an unknown target kind (serde)",
            from: "target = \"softswitch\"\ndevice_id = 2",
            to: "target = \"tofinno\"\ndevice_id = 2",
            line_of: "tofinno",
            field: "switches[1].target",
            message: "unknown variant `tofinno`",
        },
        Case {
            what: "a bad duration",
            from: "daisy_timeout = \"120s\"",
            to: "daisy_timeout = \"2 minutes\"",
            line_of: "daisy_timeout",
            field: "controller.daisy_timeout",
            message: "invalid duration",
        },
        Case {
            what: "a service port that is not tcp or udp",
            from: "\"udp/53\"",
            to: "\"sctp/53\"",
            line_of: "sctp/53",
            field: "vips[0].ports[2]",
            message: "protocol must be tcp or udp",
        },
        Case {
            what: "weight 0",
            from: "weight = 2",
            to: "weight = 0",
            line_of: "weight = 0",
            field: "vips[0].servers[0].weight",
            message: "must be at least 1",
        },
        Case {
            what: "a duplicate server",
            from: "dip = \"10.1.0.3\"",
            to: "dip = \"10.1.0.1\"",
            line_of: "dip = \"10.1.0.1\"\n\n[[switches",
            field: "vips[0].servers[2].dip",
            message: "listed twice",
        },
        Case {
            what: "a route to an unknown next hop",
            from: "next_hop = \"core\"\n\n[[routes]]",
            to: "next_hop = \"edge\"\n\n[[routes]]",
            line_of: "\"edge\"",
            field: "routes[0].next_hop",
            message: "no next hop named \"edge\"",
        },
        Case {
            what: "a prefix with host bits",
            from: "prefix = \"10.1.0.0/16\"",
            to: "prefix = \"10.1.0.1/16\"",
            line_of: "10.1.0.1/16",
            field: "routes[0].prefix",
            message: "host bits",
        },
        Case {
            what: "a bad MAC",
            from: "mac = \"02:00:00:00:00:fe\"",
            to: "mac = \"02:00:00:00:fe\"",
            line_of: "mac = \"02:00:00:00:fe\"",
            field: "next_hops[0].mac",
            message: "not a MAC address",
        },
        Case {
            what: "a port conflict found by the allocator",
            from: "port = 9001",
            to: "port = 443",
            line_of: "port = 443",
            field: "vips[0].servers[0].port",
            message: "claimed twice",
        },
        Case {
            what: "a missing P4Info file",
            from: "target = \"softswitch\"\n\n[[switches]]",
            to: "target = \"softswitch\"\np4info = \"no/such/p4info.txt\"\n\n[[switches]]",
            line_of: "no/such/p4info.txt",
            field: "switches[0].p4info",
            message: "cannot read",
        },
        Case {
            what: "a missing required field",
            from: "tunnel_src = \"10.0.0.1\"\n",
            to: "",
            line_of: "[controller]",
            field: "controller",
            message: "missing field `tunnel_src`",
        },
        Case {
            what: "TOML syntax",
            from: "weight = 2",
            to: "weight = = 2",
            line_of: "weight = = 2",
            field: "(top level)",
            message: "TOML syntax",
        },
    ];
    for c in cases {
        assert!(GOOD.contains(c.from), "{}: fixture", c.what);
        let text = GOOD.replacen(c.from, c.to, 1);
        let line_text = c.line_of;
        let e =
            Config::parse(&text, Path::new("/etc/beamer.toml"), Path::new(".")).expect_err(c.what);
        let p = &e.problems[0];
        assert_eq!(p.line, line_of(&text, line_text), "{}: {e}", c.what);
        assert_eq!(p.field.to_string(), c.field, "{}: {e}", c.what);
        assert!(p.message.contains(c.message), "{}: {e}", c.what);
        let shown = e.to_string();
        assert!(
            shown.starts_with(&format!("/etc/beamer.toml:{}:", p.line)),
            "{}: {shown}",
            c.what
        );
        assert!(shown.contains(c.field), "{}: {shown}", c.what);
    }
}

#[test]
fn a_bucket_count_the_p4info_does_not_have_is_refused_with_the_p4info_named() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = GOOD
        .replacen("buckets = 65536", "buckets = 4096", 1)
        .replacen(
            "name = \"mux-a\"",
            "name = \"mux-a\"\np4info = \"p4/v1model/p4info.txt\"",
            1,
        );
    let e = Config::parse(&text, Path::new("b.toml"), &dir).unwrap_err();
    let p = &e.problems[0];
    assert_eq!(p.field.to_string(), "vips[0].buckets");
    assert!(p.message.contains("16-bit bucket key"), "{e}");
    assert!(p.message.contains("65536"), "{e}");
}

#[test]
fn every_problem_is_listed_and_nothing_is_half_accepted() {
    let text = GOOD
        .replacen("weight = 2", "weight = 0", 1)
        .replacen("\"udp/53\"", "\"udp/0\"", 1)
        .replacen("prefix = \"10.1.0.0/16\"", "prefix = \"10.1.0.0/40\"", 1);
    let e = parse(&text).unwrap_err();
    let fields: Vec<_> = e.problems.iter().map(|p| p.field.to_string()).collect();
    assert_eq!(
        fields,
        [
            "vips[0].ports[2]",
            "vips[0].servers[0].weight",
            "routes[0].prefix"
        ]
    );
    // In file order, one line each.
    assert_eq!(e.to_string().lines().count(), 3);
}

#[test]
fn the_committed_p4infos_load_for_their_targets() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for (file, target) in [
        ("p4/v1model/p4info.txt", Target::V1model),
        ("p4/v1model/p4info.bin", Target::V1model),
        ("p4/tna/p4info.txt", Target::Tna),
        ("p4/tna/p4info.bin", Target::Tna),
    ] {
        let info = load_p4info(&root.join(file)).unwrap();
        let pl = check_p4info(&info).unwrap();
        assert_eq!(pl.target, target, "{file}");
    }
}

#[test]
fn device_configs_per_target() {
    let dir = std::env::temp_dir().join(format!("beamer-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::write(dir.join("beamer.json"), b"{\"program\": \"beamer\"}").unwrap();
    std::fs::write(dir.join("bad.json"), b"not json").unwrap();
    use beamer_p4gen::tofino::BfPipelineConfig;
    let pkg = BfPipelineConfig {
        p4_name: "beamer".into(),
        bfruntime_info: b"{}".to_vec(),
        profiles: vec![
            beamer_pipeline::p4rt::p4runtime_proto::stratum::bf_pipeline_config::Profile {
                profile_name: "pipe".into(),
                context: b"{}".to_vec(),
                binary: vec![1, 2, 3],
                pipe_scope: vec![0, 1, 2, 3],
            },
        ],
    };
    std::fs::write(dir.join("beamer.pb.bin"), pkg.encode_to_vec()).unwrap();
    let v1 = root.join("p4/v1model/p4info.txt");
    let tna = root.join("p4/tna/p4info.txt");
    let switch = |target: &str, p4info: &Path, dc: Option<&str>| {
        let dc = dc.map_or(String::new(), |d| {
            format!("device_config = \"{}\"\n", dir.join(d).display())
        });
        GOOD.replacen(
            "target = \"softswitch\"\n\n[[switches]]",
            &format!(
                "target = \"{target}\"\np4info = \"{}\"\n{dc}\n[[switches]]",
                p4info.display()
            ),
            1,
        )
    };
    let c = parse(&switch("bmv2", &v1, Some("beamer.json"))).unwrap();
    assert_eq!(
        &**c.switches[0].device_config.bytes,
        b"{\"program\": \"beamer\"}"
    );
    let c = parse(&switch("tofino", &tna, Some("beamer.pb.bin"))).unwrap();
    assert_eq!(*c.switches[0].device_config.bytes, pkg.encode_to_vec());

    for (text, message) in [
        (switch("bmv2", &v1, None), "needs the bmv2 JSON"),
        (switch("bmv2", &v1, Some("bad.json")), "not a bmv2 JSON"),
        (
            switch("tofino", &tna, Some("beamer.json")),
            "not a Stratum BfPipelineConfig",
        ),
        (switch("tofino", &tna, Some(".")), "bfrt.json"),
        (
            switch("tofino", &v1, Some("beamer.pb.bin")),
            "describes a v1model program",
        ),
        (
            switch("softswitch", &v1, Some("beamer.json")),
            "takes no device config",
        ),
    ] {
        let e = parse(&text).unwrap_err();
        assert!(
            e.problems[0].field.to_string().starts_with("switches[0]."),
            "{e}"
        );
        assert!(e.to_string().contains(message), "{message}: {e}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_vip_left_without_active_server_is_a_config_error() {
    let text = GOOD
        .replace(
            "dip = \"10.1.0.3\"",
            "dip = \"10.1.0.3\"\nstate = \"draining\"",
        )
        .replacen("health = {", "state = \"draining\"\nhealth = {", 1);
    let (line, field, message) = first_problem(&text);
    assert_eq!(field, "vips[0]");
    assert_eq!(line, line_of(&text, "[[vips]]"));
    assert!(message.contains("no active server"), "{message}");
}

#[test]
fn the_example_config_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/beamer.toml");
    let c = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(!c.vips.is_empty() && !c.switches.is_empty());
}

#[test]
fn the_bmv2_example_config_is_accepted() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let file = root.join("bmv2/beamer-bmv2.toml");
    let Ok(text) = std::fs::read_to_string(&file) else {
        panic!("{} is missing", file.display());
    };
    // Its P4Info and JSON come from bmv2/compile.sh (p4c); stand in the
    // committed P4Info and a JSON file.
    let dir = std::env::temp_dir().join(format!("beamer-bmv2cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("beamer.json"), b"{}").unwrap();
    let text = text
        .replace(
            "../build/v1model/p4info.txt",
            &root.join("p4/v1model/p4info.txt").display().to_string(),
        )
        .replace(
            "../build/v1model/beamer.json",
            &dir.join("beamer.json").display().to_string(),
        );
    let c = Config::parse(&text, &file, &root.join("bmv2")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.switches[0].target, TargetKind::Bmv2);
    assert_eq!(&**c.switches[0].device_config.bytes, b"{}");
    std::fs::remove_dir_all(&dir).unwrap();
}
