//! `beamer-p4gen`: writes the Beamer mux pipeline as a P4_16 program for
//! v1model (bmv2) or TNA (Tofino), with its P4Info.
//!
//! Everything the program and the P4Info say about tables, actions,
//! parameters, match fields, counters, their IDs, names, widths and sizes,
//! the header layouts, the option bytes and the hash comes from
//! [`beamer_pipeline`]; this crate only turns it into text and messages.
//!
//! ```
//! use beamer_p4gen::{generate, PROGRAM_FILE};
//! use beamer_pipeline::{PipelineParams, Target};
//!
//! let out = generate(Target::V1model, &PipelineParams::default()).unwrap();
//! assert!(out.program.contains("table buckets"));
//! assert_eq!(PROGRAM_FILE, "beamer.p4");
//! ```

mod layout;
mod program;
pub mod tofino;
mod writer;

pub use program::{TOFINO_COUNTED_FCS_BYTES, command_line, program};

use beamer_pipeline::p4rt::expected_p4info;
use beamer_pipeline::{ParamError, PipelineParams, Target};
use p4runtime_proto::p4::config::v1::P4Info;
use p4runtime_proto::p4info_to_text;
use p4runtime_proto::prost::Message;
use std::path::{Path, PathBuf};

/// File name of the P4 program in the output directory.
pub const PROGRAM_FILE: &str = "beamer.p4";
/// File name of the binary (protobuf wire format) P4Info.
pub const P4INFO_BIN_FILE: &str = "p4info.bin";
/// File name of the text-format P4Info.
pub const P4INFO_TXT_FILE: &str = "p4info.txt";

/// Everything the generator writes for one target.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// The P4_16 program.
    pub program: String,
    /// The P4Info message.
    pub p4info: P4Info,
    /// The P4Info in protobuf wire format.
    pub p4info_bin: Vec<u8>,
    /// The P4Info in protobuf text format.
    pub p4info_txt: String,
}

impl Output {
    /// (file name, contents) of every file, in the order they are written.
    pub fn files(&self) -> Vec<(&'static str, &[u8])> {
        vec![
            (PROGRAM_FILE, self.program.as_bytes()),
            (P4INFO_BIN_FILE, &self.p4info_bin),
            (P4INFO_TXT_FILE, self.p4info_txt.as_bytes()),
        ]
    }
}

/// Why the generator wrote nothing (or not everything).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A parameter is out of range for the target.
    #[error(transparent)]
    Params(#[from] ParamError),
    /// A file or directory could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Generates the program and its P4Info for `target`, after checking
/// `params` against it.
pub fn generate(target: Target, params: &PipelineParams) -> Result<Output, ParamError> {
    params.validate(target)?;
    let p4info = expected_p4info(params, target);
    Ok(Output {
        program: program(target, params),
        p4info_bin: p4info.encode_to_vec(),
        p4info_txt: p4info_to_text(&p4info),
        p4info,
    })
}

/// Generates the files for `target` and writes them into `dir` (created if
/// missing). Bad parameters are reported before anything is created.
/// Returns the paths written.
pub fn write_files(
    dir: &Path,
    target: Target,
    params: &PipelineParams,
) -> Result<Vec<PathBuf>, Error> {
    let out = generate(target, params)?;
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut written = Vec::new();
    for (name, contents) in out.files() {
        let path = dir.join(name);
        std::fs::write(&path, contents).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}
