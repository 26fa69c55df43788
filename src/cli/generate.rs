//! `beamer gen`: write the P4 program and its P4Info for a target.

use beamer_pipeline::{PipelineParams, Target};
use std::path::PathBuf;

/// Arguments of `beamer gen`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Architecture to write for: v1model (bmv2) or tna (Tofino).
    #[arg(long)]
    pub target: Target,
    /// Directory to write into (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Buckets per VIP: a power of two.
    #[arg(long, default_value_t = PipelineParams::default().buckets)]
    pub buckets: u32,
    /// VIPs that can have buckets.
    #[arg(long, default_value_t = PipelineParams::default().max_vips)]
    pub max_vips: u32,
    /// Entries of the VIP table (service ports and per-server ports).
    #[arg(long, default_value_t = PipelineParams::default().max_vip_entries)]
    pub max_vip_entries: u32,
    /// Entries of the route table.
    #[arg(long, default_value_t = PipelineParams::default().routes)]
    pub routes: u32,
}

impl Args {
    /// The pipeline sizes these arguments ask for.
    pub fn params(&self) -> PipelineParams {
        PipelineParams {
            buckets: self.buckets,
            max_vips: self.max_vips,
            max_vip_entries: self.max_vip_entries,
            routes: self.routes,
        }
    }
}

/// Checks the parameters for the target, then writes the program and its
/// P4Info into `--out`. On bad parameters nothing is written and the error
/// names the parameter and its valid range.
pub fn run(args: Args) -> anyhow::Result<()> {
    let written = beamer_p4gen::write_files(&args.out, args.target, &args.params())?;
    for path in written {
        println!("wrote {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(argv: &[&str]) -> Result<Args, clap::Error> {
        crate::cli::parse_args(argv)
    }

    #[test]
    fn defaults_are_the_pipeline_defaults() {
        let a = parse(&["--target", "tna", "--out", "d"]).unwrap();
        assert_eq!(a.target, Target::Tna);
        assert_eq!(a.params(), PipelineParams::default());
        let a = parse(&[
            "--target",
            "v1model",
            "--out",
            "d",
            "--buckets",
            "256",
            "--max-vips",
            "3",
            "--max-vip-entries",
            "9",
            "--routes",
            "5",
        ])
        .unwrap();
        let want = PipelineParams {
            buckets: 256,
            max_vips: 3,
            max_vip_entries: 9,
            routes: 5,
        };
        assert_eq!(a.params(), want);
    }

    #[test]
    fn unknown_target_is_refused() {
        let err = parse(&["--target", "psa", "--out", "d"]).unwrap_err();
        assert!(err.to_string().contains("v1model or tna"), "{err}");
    }

    #[test]
    fn bad_parameter_is_named_and_nothing_is_written() {
        let dir = std::env::temp_dir().join(format!("beamer-gen-cli-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let out = dir.to_str().unwrap();
        let args = parse(&["--target", "tna", "--out", out, "--routes", "0"]).unwrap();
        let err = run(args).unwrap_err().to_string();
        assert!(err.contains("--routes 0"), "{err}");
        assert!(!dir.exists());
    }
}
