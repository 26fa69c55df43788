//! `beamer package-tofino`: pack a bf-p4c output directory into the
//! serialized Stratum `BfPipelineConfig` that a Tofino switch takes as its
//! P4Runtime device config. The packing is `beamer_p4gen::tofino`.

use anyhow::Context;
use beamer_p4gen::tofino::{self, BfPipelineConfig, PackOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Arguments of `beamer package-tofino`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// bf-p4c's output directory (its `-o`): the .conf, bfrt.json and one
    /// directory per pipeline with context.json and tofino.bin. The SDE's
    /// installed layout (bf-rt.json, pipe/..., no .conf) works too.
    #[arg(long, value_name = "DIR")]
    pub bf_p4c_out: PathBuf,
    /// File to write the serialized BfPipelineConfig to (replaced
    /// atomically; nothing is written on error).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Program name (p4_name); default: the .conf's program-name, else
    /// "beamer".
    #[arg(long, value_name = "NAME")]
    pub p4_name: Option<String>,
    /// Pack only this pipeline (profile); default: all of them.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Hardware pipes for the one profile packed, e.g. 0,1,2,3; default:
    /// the .conf's pipe_scope.
    #[arg(long, value_name = "PIPES", value_delimiter = ',')]
    pub pipe_scope: Option<Vec<u32>>,
}

impl Args {
    /// The packing options these arguments ask for.
    pub fn options(&self) -> PackOptions {
        PackOptions {
            p4_name: self.p4_name.clone(),
            profile: self.profile.clone(),
            pipe_scope: self.pipe_scope.clone(),
        }
    }
}

/// Packs `--bf-p4c-out`, writes `--out` and prints what went in.
pub fn run(args: Args) -> anyhow::Result<()> {
    let program = tofino::CompiledProgram::locate(&args.bf_p4c_out)?;
    let config = program.pack(&args.options())?;
    let bytes = tofino::encode(&config);
    write_atomically(&args.out, &bytes)?;
    print!("{}", summary(&program, &config, &args.out, bytes.len()));
    Ok(())
}

/// Writes a temporary file beside `path`, then renames it over `path`, so
/// that a reader never sees half a device config.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("--out {}: not a file name", path.display()))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let result = std::fs::File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write --out {}", path.display()));
    }
    Ok(())
}

/// One line per file packed, then the result.
fn summary(
    program: &tofino::CompiledProgram,
    config: &BfPipelineConfig,
    out: &Path,
    len: usize,
) -> String {
    let mut s = String::new();
    match &program.conf {
        Some(conf) => s.push_str(&format!("conf           {}\n", conf.display())),
        None => s.push_str("conf           (none: read the directory layout)\n"),
    }
    s.push_str(&format!("p4_name        {}\n", config.p4_name));
    s.push_str(&format!(
        "bfruntime_info {} ({} bytes)\n",
        program.bfrt.display(),
        config.bfruntime_info.len()
    ));
    for p in &config.profiles {
        let files = program.pipelines.iter().find(|c| c.name == p.profile_name);
        let (context, binary) = files.map_or((String::new(), String::new()), |c| {
            (
                c.context.display().to_string(),
                c.binary.display().to_string(),
            )
        });
        s.push_str(&format!(
            "profile {}: pipes {:?}\n  context      {context} ({} bytes)\n  binary       {binary} ({} bytes)\n",
            p.profile_name,
            p.pipe_scope,
            p.context.len(),
            p.binary.len()
        ));
    }
    s.push_str(&format!(
        "wrote {} ({len} bytes, {:.1} MiB)\n",
        out.display(),
        len as f64 / (1024.0 * 1024.0)
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use beamer_testbed::Scratch;
    use std::fs;

    fn parse(argv: &[&str]) -> Result<Args, clap::Error> {
        crate::cli::parse_args(argv)
    }

    #[test]
    fn arguments() {
        let a = parse(&["--bf-p4c-out", "build/tna", "--out", "dc.pb"]).unwrap();
        assert_eq!(a.bf_p4c_out, Path::new("build/tna"));
        assert_eq!(a.options(), PackOptions::default());
        let a = parse(&[
            "--bf-p4c-out",
            "d",
            "--out",
            "o",
            "--p4-name",
            "lb",
            "--profile",
            "pipe",
            "--pipe-scope",
            "0,2",
        ])
        .unwrap();
        assert_eq!(
            a.options(),
            PackOptions {
                p4_name: Some("lb".into()),
                profile: Some("pipe".into()),
                pipe_scope: Some(vec![0, 2]),
            }
        );
        assert!(parse(&["--out", "o"]).is_err(), "--bf-p4c-out is required");
        let err = parse(&["--bf-p4c-out", "d", "--out", "o", "--pipe-scope", "0,x"]).unwrap_err();
        assert!(err.to_string().contains("--pipe-scope"), "{err}");
    }

    #[test]
    fn writes_a_device_config_that_decodes() {
        let s = Scratch::new("beamer-package-tofino-ok");
        let dir = s.path("build");
        fs::create_dir_all(dir.join("pipe")).unwrap();
        fs::write(dir.join("bfrt.json"), br#"{"tables": []}"#).unwrap();
        fs::write(dir.join("pipe/context.json"), br#"{"tables": []}"#).unwrap();
        fs::write(dir.join("pipe/tofino.bin"), [0u8, 1, 2, 0xff]).unwrap();
        let out = s.path("dc.pb");
        let args = parse(&[
            "--bf-p4c-out",
            dir.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--pipe-scope",
            "0,1",
        ])
        .unwrap();
        run(args).unwrap();

        let config = tofino::decode(&fs::read(&out).unwrap()).unwrap();
        assert_eq!(config.p4_name, "beamer");
        assert_eq!(config.profiles[0].binary, [0, 1, 2, 0xff]);
        assert_eq!(config.profiles[0].pipe_scope, [0, 1]);
        // No temporary file is left beside it.
        let names: Vec<_> = fs::read_dir(s.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn incomplete_output_names_the_file_and_writes_nothing() {
        let s = Scratch::new("beamer-package-tofino-missing");
        let dir = s.path("build");
        fs::create_dir_all(dir.join("pipe")).unwrap();
        fs::write(dir.join("bfrt.json"), b"{}").unwrap();
        fs::write(dir.join("pipe/context.json"), b"{}").unwrap();
        let out = s.path("dc.pb");
        let args = parse(&[
            "--bf-p4c-out",
            dir.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .unwrap();
        let err = run(args).unwrap_err().to_string();
        assert!(err.contains("pipe/tofino.bin is missing"), "{err}");
        assert!(!out.exists());
    }
}
