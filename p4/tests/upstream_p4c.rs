//! The generated programs through the upstream P4 compilers, when they are
//! installed (they are not in any package registry, so CI does not run
//! this; `bmv2/README.md` says how to install p4c, which comes with
//! p4test):
//!
//! - `p4c --target bmv2 --arch v1model` compiles the v1model program, and
//!   the P4Info p4c derives from it is the generator's P4Info message, field
//!   for field, except for an empty `type_info` that p4c always adds;
//! - `p4test` (p4c's front and mid end) accepts the TNA program against
//!   `tna.p4` from bf-p4c's include directory (`P4C_TNA_INCLUDE`).
//!
//! Both run on the committed programs (default parameters) and on a program
//! generated with other sizes. `P4C` and `P4TEST` name the compilers when
//! they are not on PATH. Without them the test prints one `SKIPPED (NOT
//! RUN)` line per missing part, and checks nothing else: the committed
//! files are checked against the generator in `committed.rs`, and the
//! P4Info against the pipeline schema in `p4info_schema.rs`.

use beamer_pipeline::{PipelineParams, Target};
use beamer_testbed::Scratch;
use p4runtime_proto::p4::config::v1::P4Info;
use p4runtime_proto::prost::Message;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What the test is called in its SKIPPED lines.
const WHAT: &str = "upstream P4 compilers on the generated programs";

/// Sizes other than the defaults: every size parameter changes a table's
/// size or a key's width in the program and the P4Info.
fn other_sizes() -> PipelineParams {
    PipelineParams {
        buckets: 4096,
        max_vips: 4,
        max_vip_entries: 256,
        routes: 512,
    }
}

fn committed(target: Target, file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(target.name())
        .join(file)
}

/// The program named by environment variable `var` (a path, or a name
/// looked up on PATH), else `name` on PATH; `Err` says why there is none.
fn tool(var: &str, name: &str) -> Result<PathBuf, String> {
    match std::env::var_os(var).filter(|v| !v.is_empty()) {
        Some(v) => {
            let p = PathBuf::from(&v);
            if p.is_file() {
                Ok(p)
            } else {
                beamer_testbed::which(&p.to_string_lossy())
                    .ok_or_else(|| format!("{var}={} not found", p.display()))
            }
        }
        None => beamer_testbed::which(name).ok_or_else(|| format!("{name} not on PATH ({var})")),
    }
}

/// The directory with bf-p4c's `tna.p4`, from `P4C_TNA_INCLUDE`.
fn tna_include() -> Result<PathBuf, String> {
    let dir = std::env::var_os("P4C_TNA_INCLUDE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .ok_or("P4C_TNA_INCLUDE (bf-p4c's p4include directory, with tna.p4) not set")?;
    if dir.join("tna.p4").is_file() {
        Ok(dir)
    } else {
        Err(format!("no tna.p4 in P4C_TNA_INCLUDE={}", dir.display()))
    }
}

/// Runs `cmd` in `dir`; panics with its output unless it succeeds.
fn run_ok(what: &str, cmd: &mut Command, dir: &Path) -> String {
    let out = cmd
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{what}: {cmd:?} failed:\n{text}");
    text
}

fn decode(what: &str, path: &Path) -> P4Info {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{what}: {}: {e}", path.display()));
    P4Info::decode(bytes.as_slice()).unwrap_or_else(|e| panic!("{what}: {}: {e}", path.display()))
}

/// The programs of `target` to compile: (description, program, the
/// generator's P4Info for it).
fn programs(target: Target, scratch: &Scratch) -> Vec<(String, PathBuf, P4Info)> {
    let dir = scratch.path(format!("{}-other-sizes", target.name()));
    beamer_p4gen::write_files(&dir, target, &other_sizes()).expect("generate");
    let p = other_sizes();
    vec![
        (
            format!("committed {} program (default sizes)", target.name()),
            committed(target, beamer_p4gen::PROGRAM_FILE),
            decode(
                "committed",
                &committed(target, beamer_p4gen::P4INFO_BIN_FILE),
            ),
        ),
        (
            format!(
                "{} program with --buckets {} --max-vips {} --max-vip-entries {} --routes {}",
                target.name(),
                p.buckets,
                p.max_vips,
                p.max_vip_entries,
                p.routes
            ),
            dir.join(beamer_p4gen::PROGRAM_FILE),
            decode("generated", &dir.join(beamer_p4gen::P4INFO_BIN_FILE)),
        ),
    ]
}

fn check_bmv2(p4c: &Path, scratch: &Scratch) {
    for (i, (what, program, ours)) in programs(Target::V1model, scratch).into_iter().enumerate() {
        let out = scratch.path(format!("p4c-{i}"));
        std::fs::create_dir_all(&out).unwrap();
        let p4info = out.join("p4info.bin");
        let said = run_ok(
            &what,
            Command::new(p4c)
                .args(["--target", "bmv2", "--arch", "v1model", "--std", "p4-16"])
                .arg("-o")
                .arg(&out)
                .arg("--p4runtime-files")
                .arg(&p4info)
                .arg(&program),
            &out,
        );
        // A clean compile: no warning either.
        assert!(said.trim().is_empty(), "{what}: p4c said:\n{said}");
        let json = out.join("beamer.json");
        assert!(
            std::fs::metadata(&json).is_ok_and(|m| m.len() > 0),
            "{what}: no bmv2 JSON at {}",
            json.display()
        );

        let mut theirs = decode(&what, &p4info);
        // p4c always adds the type_info of P4Runtime-translated types, empty
        // for a program without any; the generator leaves it out.
        let type_info = theirs.type_info.take();
        assert_eq!(
            type_info.unwrap_or_default(),
            Default::default(),
            "{what}: p4c's type_info is not empty"
        );
        assert_eq!(theirs, ours, "{what}: p4c's P4Info differs from ours");
        eprintln!("upstream p4c: {what}: compiled; P4Info identical but for an empty type_info");
    }
}

fn check_tna(p4test: &Path, include: &Path, scratch: &Scratch) {
    for (i, (what, program, _)) in programs(Target::Tna, scratch).into_iter().enumerate() {
        let dir = scratch.path(format!("p4test-{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let said = run_ok(
            &what,
            Command::new(p4test)
                // tna.p4 refuses to be read unless the Tofino generation is set.
                .args(["--std", "p4-16", "-D__TARGET_TOFINO__=1", "-I"])
                .arg(include)
                .arg(&program),
            &dir,
        );
        assert!(said.trim().is_empty(), "{what}: p4test said:\n{said}");
        eprintln!("upstream p4test: {what}: front and mid end passed");
    }
}

#[test]
fn upstream_compilers_accept_the_generated_programs() {
    let p4c = tool("P4C", "p4c");
    let tna = tool("P4TEST", "p4test").and_then(|t| Ok((t, tna_include()?)));
    if let (Err(a), Err(b)) = (&p4c, &tna) {
        beamer_testbed::say_skipped(
            WHAT,
            &format!("{a}; {b}; bmv2/README.md says how to install p4c (with p4test)"),
        );
        return;
    }
    let scratch = Scratch::new("beamer-upstream-p4c");
    match &p4c {
        Ok(p4c) => check_bmv2(p4c, &scratch),
        Err(why) => beamer_testbed::say_skipped(&format!("{WHAT}: v1model with p4c (bmv2)"), why),
    }
    match &tna {
        Ok((p4test, include)) => check_tna(p4test, include, &scratch),
        Err(why) => beamer_testbed::say_skipped(&format!("{WHAT}: TNA with p4test"), why),
    }
}
