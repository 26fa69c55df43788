//! Packing bf-p4c's output into Stratum's `BfPipelineConfig`, on output
//! directories these tests make in the layouts bf-p4c and the SDE write.
//! The result is decoded back field by field, once with the generated
//! bindings and once by walking the protobuf wire format by hand against
//! the field numbers of Stratum's `bf.proto`.

use beamer_p4gen::tofino::{
    BfPipelineConfig, CompiledProgram, DEFAULT_PIPE_SCOPE, PackError, PackOptions, decode, encode,
    load_device_config, pack_dir,
};
use beamer_testbed::Scratch;
use std::fs;
use std::path::Path;

const BFRT: &[u8] =
    br#"{"schema_version": "1.0.0", "tables": [{"name": "pipe.BeamerIngress.vip"}]}"#;
const CONTEXT: &[u8] = br#"{"program_name": "beamer", "tables": [], "schema_version": "1.12.0"}"#;

/// A binary with every byte value, so nothing in the path treats it as text.
fn binary() -> Vec<u8> {
    (0..=255u8).cycle().take(1000).collect()
}

/// bf-p4c's `.conf` for `beamer`, naming files as bf-p4c does when run from
/// a repository root with `-o build/tna`: relative to that root, not to
/// the output directory.
fn conf(pipelines: &[(&str, &str, &[u32])]) -> Vec<u8> {
    let pipes: Vec<String> = pipelines
        .iter()
        .map(|(name, bin, scope)| {
            format!(
                r#"{{"p4_pipeline_name": "{name}",
                    "context": "build/tna/{name}/context.json",
                    "config": "build/tna/{name}/{bin}",
                    "pipe_scope": {scope:?},
                    "path": "build/tna"}}"#
            )
        })
        .collect();
    format!(
        r#"{{"chip_list": [{{"chip_family": "tofino", "instance": 0}}],
            "p4_devices": [{{"device-id": 0,
              "p4_programs": [{{"program-name": "beamer",
                "bfrt-config": "build/tna/bfrt.json",
                "p4_pipelines": [{}]}}],
              "agent0": "lib/libpltfm_mgr.so"}}]}}"#,
        pipes.join(",")
    )
    .into_bytes()
}

/// The output directory of `bf-p4c --arch tna -o build/tna
/// --bf-rt-schema build/tna/bfrt.json beamer.p4`, one pipeline `pipe`.
fn bf_p4c_output(tag: &str) -> Scratch {
    let d = Scratch::new(&format!("beamer-tofino-{tag}"));
    d.write(
        "beamer.conf",
        conf(&[("pipe", "tofino.bin", &[0, 1, 2, 3])]),
    );
    d.write(
        "manifest.json",
        br#"{"schema_version": "2.0.6", "conf_file": "beamer.conf", "programs": []}"#,
    );
    d.write("bfrt.json", BFRT);
    d.write("pipe/context.json", CONTEXT);
    d.write("pipe/tofino.bin", binary());
    d.write("pipe/logs/table_summary.log", b"stage 0 ...");
    d.write("p4info.txt", b"pkg_info { arch: \"tna\" }");
    d
}

#[test]
fn packs_bf_p4c_output_and_decodes_it_back_field_by_field() {
    let d = bf_p4c_output("full");
    let bytes = encode(&pack_dir(d.dir(), &PackOptions::default()).unwrap());

    let back = decode(&bytes).unwrap();
    assert_eq!(back.p4_name, "beamer");
    assert_eq!(back.bfruntime_info, BFRT);
    assert_eq!(back.profiles.len(), 1);
    let p = &back.profiles[0];
    assert_eq!(p.profile_name, "pipe");
    assert_eq!(p.context, CONTEXT);
    assert_eq!(p.binary, binary());
    assert_eq!(p.pipe_scope, [0, 1, 2, 3]);
}

// --- the wire format, by hand -------------------------------------------

/// Field numbers of Stratum's `stratum/hal/lib/barefoot/bf.proto`.
mod stratum_bf_proto {
    pub const P4_NAME: u64 = 1;
    pub const BFRUNTIME_INFO: u64 = 2;
    pub const PROFILES: u64 = 3;
    pub const PROFILE_NAME: u64 = 1;
    pub const CONTEXT: u64 = 2;
    pub const BINARY: u64 = 3;
    pub const PIPE_SCOPE: u64 = 4;
}

fn varint(b: &[u8], at: &mut usize) -> u64 {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = b[*at];
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return v;
        }
    }
    panic!("varint too long");
}

/// Every (field number, payload) of a message whose fields are all
/// length-delimited (wire type 2), in wire order.
fn len_fields(b: &[u8]) -> Vec<(u64, &[u8])> {
    let mut at = 0;
    let mut out = Vec::new();
    while at < b.len() {
        let key = varint(b, &mut at);
        assert_eq!(key & 7, 2, "field {} is not length-delimited", key >> 3);
        let len = varint(b, &mut at) as usize;
        out.push((key >> 3, &b[at..at + len]));
        at += len;
    }
    out
}

#[test]
fn wire_bytes_carry_stratums_field_numbers() {
    use stratum_bf_proto as field;
    let d = bf_p4c_output("wire");
    let opts = PackOptions {
        pipe_scope: Some(vec![0, 2, 300]), // 300 takes two varint bytes
        ..Default::default()
    };
    let bytes = encode(&pack_dir(d.dir(), &opts).unwrap());

    let top = len_fields(&bytes);
    let numbers: Vec<u64> = top.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        numbers,
        [field::P4_NAME, field::BFRUNTIME_INFO, field::PROFILES]
    );
    assert_eq!(top[0].1, b"beamer");
    assert_eq!(top[1].1, BFRT);

    let profile = len_fields(top[2].1);
    let numbers: Vec<u64> = profile.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        numbers,
        [
            field::PROFILE_NAME,
            field::CONTEXT,
            field::BINARY,
            field::PIPE_SCOPE
        ]
    );
    assert_eq!(profile[0].1, b"pipe");
    assert_eq!(profile[1].1, CONTEXT);
    assert_eq!(profile[2].1, binary().as_slice());
    // proto3 packs repeated uint32: one run of varints.
    assert_eq!(profile[3].1, [0x00, 0x02, 0xac, 0x02]);
}

// --- layouts ------------------------------------------------------------

#[test]
fn sde_installed_layout_without_conf() {
    let d = Scratch::new("beamer-tofino-installed");
    d.write("bf-rt.json", BFRT);
    d.write("pipe/context.json", CONTEXT);
    d.write("pipe/tofino.bin", binary());
    d.write("events.json", b"{}");

    let program = CompiledProgram::locate(d.dir()).unwrap();
    assert_eq!(program.conf, None);
    assert_eq!(program.bfrt, d.path("bf-rt.json"));
    let config = program.pack(&PackOptions::default()).unwrap();
    assert_eq!(config.p4_name, "beamer");
    assert_eq!(config.bfruntime_info, BFRT);
    assert_eq!(config.profiles[0].profile_name, "pipe");
    assert_eq!(config.profiles[0].pipe_scope, DEFAULT_PIPE_SCOPE);
}

#[test]
fn conf_paths_as_written_are_found_outside_the_directory() {
    // --bf-rt-schema pointed outside the output directory, by absolute path.
    let elsewhere = Scratch::new("beamer-tofino-elsewhere");
    let bfrt = elsewhere.write("schema/beamer-bfrt.json", BFRT);
    let d = Scratch::new("beamer-tofino-abs");
    let conf = String::from_utf8(conf(&[("pipe", "tofino.bin", &[0, 1])]))
        .unwrap()
        .replace("build/tna/bfrt.json", bfrt.to_str().unwrap());
    d.write("beamer.conf", conf.as_bytes());
    d.write("pipe/context.json", CONTEXT);
    d.write("pipe/tofino.bin", binary());

    let config = pack_dir(d.dir(), &PackOptions::default()).unwrap();
    assert_eq!(config.bfruntime_info, BFRT);
    assert_eq!(config.profiles[0].pipe_scope, [0, 1]);
}

#[test]
fn tofino2_binary_name_comes_from_the_conf() {
    let d = Scratch::new("beamer-tofino-t2");
    d.write(
        "beamer.conf",
        conf(&[("pipe", "tofino2.bin", &[0, 1, 2, 3])]),
    );
    d.write("bfrt.json", BFRT);
    d.write("pipe/context.json", CONTEXT);
    d.write("pipe/tofino2.bin", binary());
    let config = pack_dir(d.dir(), &PackOptions::default()).unwrap();
    assert_eq!(config.profiles[0].binary, binary());
}

/// A folded program: two pipelines, interleaved over the four pipes.
fn two_pipelines(tag: &str) -> Scratch {
    let d = Scratch::new(&format!("beamer-tofino-{tag}"));
    d.write(
        "beamer.conf",
        conf(&[
            ("pipe0", "tofino.bin", &[0, 2]),
            ("pipe1", "tofino.bin", &[1, 3]),
        ]),
    );
    d.write("bfrt.json", BFRT);
    for p in ["pipe0", "pipe1"] {
        d.write(format!("{p}/context.json"), CONTEXT);
        d.write(format!("{p}/tofino.bin"), p.as_bytes());
    }
    d
}

#[test]
fn several_profiles_keep_the_conf_order_and_scopes() {
    let d = two_pipelines("two");
    let config = pack_dir(d.dir(), &PackOptions::default()).unwrap();
    let got: Vec<(&str, &[u8], &[u32])> = config
        .profiles
        .iter()
        .map(|p| {
            (
                p.profile_name.as_str(),
                p.binary.as_slice(),
                p.pipe_scope.as_slice(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("pipe0", &b"pipe0"[..], &[0, 2][..]),
            ("pipe1", &b"pipe1"[..], &[1, 3][..])
        ]
    );
}

#[test]
fn options_pick_name_profile_and_scope() {
    let d = two_pipelines("opts");
    let config = pack_dir(
        d.dir(),
        &PackOptions {
            p4_name: Some("beamer_lb".into()),
            profile: Some("pipe1".into()),
            pipe_scope: Some(vec![1, 2, 3]),
        },
    )
    .unwrap();
    assert_eq!(config.p4_name, "beamer_lb");
    assert_eq!(config.profiles.len(), 1);
    assert_eq!(config.profiles[0].profile_name, "pipe1");
    assert_eq!(config.profiles[0].binary, b"pipe1");
    assert_eq!(config.profiles[0].pipe_scope, [1, 2, 3]);
}

// --- bad input ----------------------------------------------------------

/// Packs `d` and returns the error's message.
fn pack_err(d: &Path, opts: &PackOptions) -> (PackError, String) {
    let e = pack_dir(d, opts).expect_err("packing should fail");
    let msg = e.to_string();
    (e, msg)
}

#[test]
fn missing_or_broken_files_are_named() {
    type Damage = fn(&Scratch);
    // (description, damage done to a complete output, expected in the message)
    let cases: &[(&str, Damage, &str)] = &[
        (
            "no bfrt.json",
            |d| fs::remove_file(d.path("bfrt.json")).unwrap(),
            "is incomplete: bfrt.json is missing (beamer.conf names build/tna/bfrt.json)",
        ),
        (
            "no context.json",
            |d| fs::remove_file(d.path("pipe/context.json")).unwrap(),
            "is incomplete: pipe/context.json is missing (beamer.conf names build/tna/pipe/context.json)",
        ),
        (
            "no tofino.bin",
            |d| fs::remove_file(d.path("pipe/tofino.bin")).unwrap(),
            "is incomplete: pipe/tofino.bin is missing",
        ),
        (
            "empty tofino.bin",
            |d| {
                d.write("pipe/tofino.bin", b"");
            },
            "is incomplete: pipe/tofino.bin is empty",
        ),
        (
            "truncated context.json",
            |d| {
                d.write("pipe/context.json", &CONTEXT[..CONTEXT.len() / 2]);
            },
            "pipe/context.json: not valid JSON",
        ),
        (
            "truncated .conf",
            |d| {
                d.write("beamer.conf", b"{\"p4_devices\": [");
            },
            "beamer.conf: not valid JSON",
        ),
        (
            "PD-style .conf",
            |d| {
                d.write("beamer.conf", br#"{"p4_program_list": []}"#);
            },
            "not a BF-RT .conf (missing field `p4_devices`",
        ),
        (
            "two programs",
            |d| {
                let two = String::from_utf8(conf(&[("pipe", "tofino.bin", &[0])]))
                    .unwrap()
                    .replace(
                        r#""p4_programs": [{"#,
                        r#""p4_programs": [{"program-name": "x", "p4_pipelines": []}, {"#,
                    );
                d.write("beamer.conf", two.as_bytes());
            },
            "p4_devices[0].p4_programs has 2 entries",
        ),
        (
            "pipeline name with a slash",
            |d| {
                d.write("beamer.conf", conf(&[("../pipe", "tofino.bin", &[0])]));
            },
            "p4_pipelines[0].p4_pipeline_name \"../pipe\" is not a directory name",
        ),
        (
            "a pipeline listed twice",
            |d| {
                d.write(
                    "beamer.conf",
                    conf(&[
                        ("pipe", "tofino.bin", &[0, 1]),
                        ("pipe", "tofino.bin", &[1]),
                    ]),
                );
            },
            "p4_pipeline_name \"pipe\" appears twice",
        ),
        (
            "several .conf files",
            |d| {
                fs::remove_file(d.path("manifest.json")).unwrap();
                fs::rename(d.path("beamer.conf"), d.path("a.conf")).unwrap();
                d.write("b.conf", b"{}");
            },
            "has several .conf files (a.conf, b.conf)",
        ),
    ];
    for (what, damage, expected) in cases {
        let d = bf_p4c_output("damaged");
        damage(&d);
        let (_, msg) = pack_err(d.dir(), &PackOptions::default());
        assert!(msg.contains(expected), "{what}: {msg:?} lacks {expected:?}");
    }
}

#[test]
fn layout_without_conf_names_what_is_missing() {
    type Setup = fn(&Scratch);
    let cases: &[(&str, Setup, &str)] = &[
        (
            "empty directory",
            |_| {},
            "is incomplete: bfrt.json is missing (nor bf-rt.json; compile with --bf-rt-schema",
        ),
        (
            "schema only",
            |d| {
                d.write("bfrt.json", BFRT);
                d.write("logs/x.log", b"");
            },
            "is incomplete: pipe/context.json is missing (no .conf, and no pipeline directory",
        ),
        (
            "binary without context",
            |d| {
                d.write("bfrt.json", BFRT);
                d.write("pipe/tofino.bin", b"x");
            },
            "is incomplete: pipe/context.json is missing",
        ),
        (
            "context without binary",
            |d| {
                d.write("bfrt.json", BFRT);
                d.write("pipe/context.json", CONTEXT);
            },
            "is incomplete: pipe/tofino.bin is missing",
        ),
        (
            "two binaries",
            |d| {
                d.write("bfrt.json", BFRT);
                d.write("pipe/context.json", CONTEXT);
                d.write("pipe/tofino.bin", b"x");
                d.write("pipe/tofino2.bin", b"y");
            },
            "several binaries (tofino.bin, tofino2.bin)",
        ),
        (
            "two pipelines, no scopes",
            |d| {
                d.write("bfrt.json", BFRT);
                for p in ["pipe0", "pipe1"] {
                    d.write(format!("{p}/context.json"), CONTEXT);
                    d.write(format!("{p}/tofino.bin"), b"x");
                }
            },
            "pipe scope of \"pipe0\": unknown: no .conf gives the pipe scopes",
        ),
    ];
    for (what, setup, expected) in cases {
        let d = Scratch::new("beamer-tofino-layout");
        setup(&d);
        let (_, msg) = pack_err(d.dir(), &PackOptions::default());
        assert!(msg.contains(expected), "{what}: {msg:?} lacks {expected:?}");
    }
}

#[test]
fn a_directory_that_is_not_there() {
    let d = Scratch::new("beamer-tofino-gone");
    let gone = d.path("nope");
    let (e, msg) = pack_err(&gone, &PackOptions::default());
    assert!(matches!(e, PackError::Dir { .. }), "{e:?}");
    assert!(msg.contains("nope"), "{msg}");
}

#[test]
fn bad_options_are_refused() {
    let cases: &[(&str, PackOptions, &str)] = &[
        (
            "unknown profile",
            PackOptions {
                profile: Some("egress".into()),
                ..Default::default()
            },
            "--profile \"egress\": the program has no such pipeline (it has pipe0, pipe1)",
        ),
        (
            "one scope for two profiles",
            PackOptions {
                pipe_scope: Some(vec![0]),
                ..Default::default()
            },
            "one --pipe-scope for 2 pipelines; choose one with --profile",
        ),
        (
            "empty scope",
            PackOptions {
                profile: Some("pipe0".into()),
                pipe_scope: Some(vec![]),
                ..Default::default()
            },
            "pipe scope of \"pipe0\": empty",
        ),
        (
            "pipe twice",
            PackOptions {
                profile: Some("pipe0".into()),
                pipe_scope: Some(vec![1, 1]),
                ..Default::default()
            },
            "pipe 1 is listed twice",
        ),
    ];
    let d = two_pipelines("badopts");
    for (what, opts, expected) in cases {
        let (_, msg) = pack_err(d.dir(), opts);
        assert!(msg.contains(expected), "{what}: {msg:?} lacks {expected:?}");
    }
}

#[test]
fn overlapping_scopes_in_the_conf_are_refused() {
    let d = two_pipelines("overlap");
    d.write(
        "beamer.conf",
        conf(&[
            ("pipe0", "tofino.bin", &[0, 1]),
            ("pipe1", "tofino.bin", &[1, 3]),
        ]),
    );
    let (_, msg) = pack_err(d.dir(), &PackOptions::default());
    assert!(
        msg.contains("pipe scope of \"pipe1\": pipe 1 is also in the scope of \"pipe0\""),
        "{msg}"
    );
}

// --- loading a device config --------------------------------------------

#[test]
fn load_device_config_from_a_packed_file_or_a_directory() {
    let d = bf_p4c_output("load");
    let packed = encode(&pack_dir(d.dir(), &PackOptions::default()).unwrap());
    let file = d.write("device_config.pb", &packed);

    assert_eq!(load_device_config(&file).unwrap(), packed);
    assert_eq!(load_device_config(d.dir()).unwrap(), packed);
}

#[test]
fn load_device_config_refuses_what_stratum_would() {
    let d = Scratch::new("beamer-tofino-loadbad");
    let cases: &[(&str, Vec<u8>, &str)] = &[
        (
            "not protobuf",
            vec![0xff, 0xff, 0xff],
            "not a Stratum BfPipelineConfig",
        ),
        (
            "empty file",
            vec![],
            "incomplete BfPipelineConfig: p4_name is empty",
        ),
        (
            "no profiles",
            encode(&BfPipelineConfig {
                p4_name: "beamer".into(),
                bfruntime_info: BFRT.to_vec(),
                profiles: vec![],
            }),
            "incomplete BfPipelineConfig: no profiles",
        ),
    ];
    for (what, bytes, expected) in cases {
        let f = d.write("x.pb", bytes);
        let msg = load_device_config(&f).unwrap_err().to_string();
        assert!(msg.contains(expected), "{what}: {msg:?} lacks {expected:?}");
    }
    let msg = load_device_config(&d.path("absent.pb"))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("cannot read") && msg.contains("absent.pb"),
        "{msg}"
    );
}
