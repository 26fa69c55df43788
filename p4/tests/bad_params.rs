//! A parameter no target (or not this target) can hold is reported with
//! its name and valid range, and nothing is written.

use beamer_pipeline::{PipelineParams, Target};
use std::path::PathBuf;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("beamer-p4gen-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn bad_parameters_write_nothing_and_name_the_parameter() {
    let d = PipelineParams::default();
    // (description, target, parameters, what the message must contain)
    let cases: Vec<(&str, Target, PipelineParams, &[&str])> = vec![
        (
            "bucket count not a power of two",
            Target::V1model,
            PipelineParams { buckets: 1000, ..d },
            &["--buckets 1000", "power of two"],
        ),
        (
            "one bucket",
            Target::Tna,
            PipelineParams { buckets: 1, ..d },
            &["--buckets 1", "valid: a power of two from 2 to"],
        ),
        (
            "too many buckets",
            Target::V1model,
            PipelineParams {
                buckets: 1 << 21,
                ..d
            },
            &["--buckets 2097152"],
        ),
        (
            "no routes",
            Target::V1model,
            PipelineParams { routes: 0, ..d },
            &["--routes 0", "valid: 1 to"],
        ),
        (
            "no VIP entries",
            Target::Tna,
            PipelineParams {
                max_vip_entries: 0,
                ..d
            },
            &["--max-vip-entries 0"],
        ),
        (
            "no VIPs",
            Target::Tna,
            PipelineParams { max_vips: 0, ..d },
            &["--max-vips 0"],
        ),
        (
            "VIP table too large for Tofino",
            Target::Tna,
            PipelineParams {
                max_vip_entries: 1 << 20,
                ..d
            },
            &["--max-vip-entries 1048576", "valid: 1 to"],
        ),
        (
            "bucket table too large for Tofino",
            Target::Tna,
            PipelineParams { max_vips: 8, ..d },
            &["buckets", "--buckets or --max-vips"],
        ),
    ];
    for (i, (what, target, params, needles)) in cases.into_iter().enumerate() {
        let dir = scratch(&format!("bad{i}"));
        let err = beamer_p4gen::write_files(&dir, target, &params)
            .expect_err(what)
            .to_string();
        for n in needles {
            assert!(err.contains(n), "{what}: {err:?} lacks {n:?}");
        }
        assert!(!dir.exists(), "{what}: {} was created", dir.display());
    }
}

#[test]
fn bad_parameters_leave_an_existing_directory_untouched() {
    let dir = scratch("existing");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(beamer_p4gen::PROGRAM_FILE), "old").unwrap();
    let params = PipelineParams {
        buckets: 3,
        ..Default::default()
    };
    assert!(beamer_p4gen::write_files(&dir, Target::V1model, &params).is_err());
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, [beamer_p4gen::PROGRAM_FILE]);
    assert_eq!(
        std::fs::read_to_string(dir.join(beamer_p4gen::PROGRAM_FILE)).unwrap(),
        "old"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn good_parameters_write_the_three_files() {
    let dir = scratch("good");
    let params = PipelineParams {
        buckets: 1 << 8,
        ..Default::default()
    };
    let written = beamer_p4gen::write_files(&dir, Target::Tna, &params).unwrap();
    let names: Vec<_> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        [
            beamer_p4gen::PROGRAM_FILE,
            beamer_p4gen::P4INFO_BIN_FILE,
            beamer_p4gen::P4INFO_TXT_FILE
        ]
    );
    let out = beamer_p4gen::generate(Target::Tna, &params).unwrap();
    for (name, contents) in out.files() {
        assert_eq!(std::fs::read(dir.join(name)).unwrap(), contents, "{name}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
