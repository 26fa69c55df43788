//! The Tofino device config: bf-p4c's output for the TNA program, packed
//! into the message Stratum takes.
//!
//! A Tofino switch run by Stratum (`stratum_bfrt`) receives its pipeline in
//! `SetForwardingPipelineConfig`: the P4Info that bf-p4c wrote, and as
//! `p4_device_config` a serialized [`BfPipelineConfig`] (Stratum's
//! `bf.proto`, package `stratum.hal.barefoot`):
//!
//! | field | number | content |
//! |---|---|---|
//! | `p4_name` | 1 | the program name (`beamer`) |
//! | `bfruntime_info` | 2 | `bfrt.json`, the BF Runtime schema |
//! | `profiles` | 3 | one per P4 `Pipeline` instance: |
//! | `profiles.profile_name` | 1 | the pipeline's name (`pipe`) |
//! | `profiles.context` | 2 | `<pipe>/context.json` |
//! | `profiles.binary` | 3 | `<pipe>/tofino.bin` (`tofino2.bin`, ... on later chips) |
//! | `profiles.pipe_scope` | 4 | the hardware pipes that run it |
//!
//! # Where bf-p4c puts the files
//!
//! `bf-p4c --arch tna -o DIR --bf-rt-schema DIR/bfrt.json ... beamer.p4`
//! writes:
//!
//! ```text
//! DIR/beamer.conf        JSON for bf_switchd: program name, the files below, pipe scopes
//! DIR/manifest.json      what was built; its "conf_file" names the .conf
//! DIR/bfrt.json          the BF Runtime schema (wherever --bf-rt-schema says;
//!                        DIR/bfrt.json is bf-p4c's default)
//! DIR/pipe/context.json  one directory per pipeline
//! DIR/pipe/tofino.bin
//! ```
//!
//! The `.conf` names the files as the compiler was told them, often
//! relative to the directory bf-p4c ran in. So every file is looked for
//! first at its place inside `DIR`, then where the `.conf` says. The
//! layout that the SDE installs (`share/tofinopd/beamer/`: `bf-rt.json`,
//! `pipe/context.json`, `pipe/tofino.bin`, its `.conf` elsewhere) is read
//! too: without a `.conf`, every subdirectory holding a `context.json` is a
//! pipeline, and a single pipeline runs on [`DEFAULT_PIPE_SCOPE`].
//!
//! ```no_run
//! use beamer_p4gen::tofino::{PackOptions, encode, pack_dir};
//! use std::path::Path;
//!
//! let config = pack_dir(Path::new("build/tna"), &PackOptions::default())?;
//! std::fs::write("build/tna/device_config.pb", encode(&config))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use beamer_pipeline::schema::PROGRAM_NAME;
use p4runtime_proto::prost::Message;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub use p4runtime_proto::stratum::BfPipelineConfig;
pub use p4runtime_proto::stratum::bf_pipeline_config::Profile;

/// The hardware pipes a lone pipeline runs on when no `.conf` says: all
/// four pipes of a Tofino, as bf-p4c's `.conf` has it for one pipeline.
pub const DEFAULT_PIPE_SCOPE: [u32; 4] = [0, 1, 2, 3];

/// Name of the BF Runtime schema that bf-p4c writes by default.
pub const BFRT_FILE: &str = "bfrt.json";
/// Name the SDE gives the BF Runtime schema when it installs a program.
pub const BFRT_INSTALLED_FILE: &str = "bf-rt.json";
/// Name of each pipeline's context file.
pub const CONTEXT_FILE: &str = "context.json";
/// Name of each pipeline's binary on Tofino (1).
pub const BINARY_FILE: &str = "tofino.bin";

/// Why no device config could be made or read.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// The bf-p4c output directory cannot be listed.
    #[error("bf-p4c output directory {}: {source}", dir.display())]
    Dir {
        /// The directory given.
        dir: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A file the device config needs is not in the output directory.
    #[error("bf-p4c output {} is incomplete: {} is missing{detail}", dir.display(), file.display())]
    Missing {
        /// The output directory.
        dir: PathBuf,
        /// The missing file, relative to `dir` where it belongs there.
        file: PathBuf,
        /// Where else it was looked for, or how to get it (may be empty).
        detail: String,
    },
    /// A file is there but empty, as when bf-p4c stopped midway.
    #[error("bf-p4c output {} is incomplete: {} is empty", dir.display(), file.display())]
    Empty {
        /// The output directory.
        dir: PathBuf,
        /// The empty file.
        file: PathBuf,
    },
    /// A JSON file (the `.conf`, `bfrt.json`, a `context.json`) does not parse.
    #[error("{}: not valid JSON, was the compilation interrupted? ({source})", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        source: serde_json::Error,
    },
    /// The `.conf` parses but does not describe one program as Stratum needs.
    #[error("{}: {reason}", path.display())]
    Conf {
        /// The `.conf` file.
        path: PathBuf,
        /// What is wrong, naming the field.
        reason: String,
    },
    /// The output directory holds several `.conf` files and none is ours.
    #[error("bf-p4c output {} has several .conf files ({}); keep only the program's", dir.display(), found.join(", "))]
    AmbiguousConf {
        /// The output directory.
        dir: PathBuf,
        /// The `.conf` files found.
        found: Vec<String>,
    },
    /// A pipeline directory holds more than one `tofino*.bin`.
    #[error("{}: several binaries ({}); keep only the one bf-p4c wrote last", dir.display(), found.join(", "))]
    AmbiguousBinary {
        /// The pipeline directory.
        dir: PathBuf,
        /// The binaries found.
        found: Vec<String>,
    },
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// `--profile` names no pipeline of the program.
    #[error("--profile {name:?}: the program has no such pipeline (it has {})", available.join(", "))]
    UnknownProfile {
        /// The name asked for.
        name: String,
        /// The pipelines the program has.
        available: Vec<String>,
    },
    /// A pipe scope that Stratum would refuse, or none where one is needed.
    #[error("pipe scope of {profile:?}: {reason}")]
    PipeScope {
        /// The profile (pipeline) it belongs to.
        profile: String,
        /// What is wrong.
        reason: String,
    },
    /// The bytes are not a serialized `BfPipelineConfig`.
    #[error("not a Stratum BfPipelineConfig: {0}")]
    Decode(#[from] p4runtime_proto::prost::DecodeError),
    /// A `BfPipelineConfig` that lacks something Stratum needs.
    #[error("incomplete BfPipelineConfig: {0}")]
    Incomplete(String),
}

/// Choices that the bf-p4c output does not make, or that override it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackOptions {
    /// `p4_name`; by default the `.conf`'s `program-name`, else
    /// [`PROGRAM_NAME`].
    pub p4_name: Option<String>,
    /// Pack only the pipeline (profile) of this name.
    pub profile: Option<String>,
    /// Pipe scope of the one profile packed, instead of the `.conf`'s.
    pub pipe_scope: Option<Vec<u32>>,
}

/// One compiled program: where each of its files is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledProgram {
    /// The bf-p4c output directory.
    pub dir: PathBuf,
    /// The `.conf` the file names came from, if there is one.
    pub conf: Option<PathBuf>,
    /// The program name (`program-name` of the `.conf`).
    pub p4_name: Option<String>,
    /// The BF Runtime schema.
    pub bfrt: PathBuf,
    /// The pipelines, in the `.conf`'s order (else by name).
    pub pipelines: Vec<CompiledPipeline>,
}

/// One pipeline (profile) of a compiled program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledPipeline {
    /// Its name: the P4 `Pipeline` instance, `pipe` for the Beamer program.
    pub name: String,
    /// Its `context.json`.
    pub context: PathBuf,
    /// Its `tofino.bin`.
    pub binary: PathBuf,
    /// The pipes it runs on, when the `.conf` (or the layout) says.
    pub pipe_scope: Option<Vec<u32>>,
}

// The part of bf-p4c's .conf that names the program's files. Unknown
// fields (chip_list, agent0, model_json_path, ...) are ignored.
#[derive(Deserialize)]
struct Conf {
    p4_devices: Vec<ConfDevice>,
}

#[derive(Deserialize)]
struct ConfDevice {
    p4_programs: Vec<ConfProgram>,
}

#[derive(Deserialize)]
struct ConfProgram {
    #[serde(rename = "program-name")]
    program_name: String,
    #[serde(rename = "bfrt-config")]
    bfrt_config: Option<String>,
    p4_pipelines: Vec<ConfPipeline>,
}

#[derive(Deserialize)]
struct ConfPipeline {
    p4_pipeline_name: String,
    context: String,
    config: String,
    pipe_scope: Option<Vec<u32>>,
}

#[derive(Deserialize)]
struct Manifest {
    conf_file: Option<String>,
}

/// Packs the bf-p4c output in `dir`: [`CompiledProgram::locate`], then
/// [`CompiledProgram::pack`].
pub fn pack_dir(dir: &Path, options: &PackOptions) -> Result<BfPipelineConfig, PackError> {
    CompiledProgram::locate(dir)?.pack(options)
}

/// The serialized message: what goes into `p4_device_config`.
pub fn encode(config: &BfPipelineConfig) -> Vec<u8> {
    config.encode_to_vec()
}

/// Decodes a serialized `BfPipelineConfig` and [`check`]s it.
pub fn decode(bytes: &[u8]) -> Result<BfPipelineConfig, PackError> {
    let config = BfPipelineConfig::decode(bytes)?;
    check(&config)?;
    Ok(config)
}

/// Checks what Stratum needs of a `BfPipelineConfig`: a program name, at
/// least one profile, and for each a name, a non-empty context and binary,
/// and a pipe scope without duplicates that no other profile shares.
pub fn check(config: &BfPipelineConfig) -> Result<(), PackError> {
    let incomplete = |what: String| Err(PackError::Incomplete(what));
    if config.p4_name.is_empty() {
        return incomplete("p4_name is empty".into());
    }
    if config.bfruntime_info.is_empty() {
        return incomplete("bfruntime_info (bfrt.json) is empty".into());
    }
    if config.profiles.is_empty() {
        return incomplete("no profiles".into());
    }
    for (i, p) in config.profiles.iter().enumerate() {
        if p.profile_name.is_empty() {
            return incomplete(format!("profiles[{i}].profile_name is empty"));
        }
        if p.context.is_empty() {
            return incomplete(format!(
                "profiles[{i}] ({}): context is empty",
                p.profile_name
            ));
        }
        if p.binary.is_empty() {
            return incomplete(format!(
                "profiles[{i}] ({}): binary is empty",
                p.profile_name
            ));
        }
    }
    let scopes: Vec<_> = config
        .profiles
        .iter()
        .map(|p| (p.profile_name.as_str(), p.pipe_scope.as_slice()))
        .collect();
    check_scopes(&scopes)
}

/// The `p4_device_config` for a Tofino switch, from `path`: either a file
/// that `beamer package-tofino` (or Stratum's `bf_pipeline_builder`)
/// wrote, returned as it is after [`decode`] accepts it, or a bf-p4c
/// output directory, packed with the default [`PackOptions`].
pub fn load_device_config(path: &Path) -> Result<Vec<u8>, PackError> {
    if path.is_dir() {
        return Ok(encode(&pack_dir(path, &PackOptions::default())?));
    }
    let bytes = fs::read(path).map_err(|source| PackError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    decode(&bytes)?;
    Ok(bytes)
}

impl CompiledProgram {
    /// Finds the program's files in the bf-p4c output directory `dir` and
    /// checks that each is there. The `.conf` is the one `manifest.json`
    /// names, else the only `*.conf` in `dir` (or `beamer.conf` among
    /// several); without one, the layout alone is read.
    pub fn locate(dir: &Path) -> Result<CompiledProgram, PackError> {
        let entries = list_dir(dir)?;
        match find_conf(dir, &entries)? {
            Some(conf) => Self::from_conf(dir, &conf),
            None => Self::from_layout(dir, &entries),
        }
    }

    fn from_conf(dir: &Path, conf_path: &Path) -> Result<CompiledProgram, PackError> {
        let conf_err = |reason: String| PackError::Conf {
            path: conf_path.to_path_buf(),
            reason,
        };
        let text = read(conf_path)?;
        let conf: Conf = serde_json::from_slice(&text).map_err(|e| {
            if e.is_data() {
                conf_err(format!(
                    "not a BF-RT .conf ({e}); bf-p4c writes one for P4_16 programs given --bf-rt-schema"
                ))
            } else {
                PackError::Json {
                    path: conf_path.to_path_buf(),
                    source: e,
                }
            }
        })?;
        let [device] = conf.p4_devices.as_slice() else {
            return Err(conf_err(format!(
                "p4_devices has {} entries; Stratum takes exactly one",
                conf.p4_devices.len()
            )));
        };
        let [program] = device.p4_programs.as_slice() else {
            return Err(conf_err(format!(
                "p4_devices[0].p4_programs has {} entries; a BfPipelineConfig holds exactly one",
                device.p4_programs.len()
            )));
        };
        if program.p4_pipelines.is_empty() {
            return Err(conf_err(
                "p4_devices[0].p4_programs[0].p4_pipelines is empty".into(),
            ));
        }
        let conf_name = conf_path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let named_in_conf = |written: &str| format!(" ({conf_name} names {written})");

        let bfrt = match &program.bfrt_config {
            Some(written) => {
                let written_name = Path::new(written).file_name().map(PathBuf::from);
                let layout = written_name.unwrap_or_else(|| PathBuf::from(BFRT_FILE));
                find_file(dir, &layout, Some(written)).ok_or_else(|| PackError::Missing {
                    dir: dir.to_path_buf(),
                    file: layout.clone(),
                    detail: named_in_conf(written),
                })?
            }
            None => find_bfrt(dir)?,
        };

        let mut pipelines = Vec::new();
        let mut names = BTreeSet::new();
        for (i, p) in program.p4_pipelines.iter().enumerate() {
            let field = format!("p4_devices[0].p4_programs[0].p4_pipelines[{i}]");
            if !is_plain_name(&p.p4_pipeline_name) {
                return Err(conf_err(format!(
                    "{field}.p4_pipeline_name {:?} is not a directory name",
                    p.p4_pipeline_name
                )));
            }
            if !names.insert(p.p4_pipeline_name.clone()) {
                return Err(conf_err(format!(
                    "{field}.p4_pipeline_name {:?} appears twice",
                    p.p4_pipeline_name
                )));
            }
            let pipe = Path::new(&p.p4_pipeline_name);
            let locate = |written: &str, default: &str| {
                let name = Path::new(written)
                    .file_name()
                    .map_or_else(|| PathBuf::from(default), PathBuf::from);
                let layout = pipe.join(name);
                find_file(dir, &layout, Some(written)).ok_or_else(|| PackError::Missing {
                    dir: dir.to_path_buf(),
                    file: layout,
                    detail: named_in_conf(written),
                })
            };
            pipelines.push(CompiledPipeline {
                name: p.p4_pipeline_name.clone(),
                context: locate(&p.context, CONTEXT_FILE)?,
                binary: locate(&p.config, BINARY_FILE)?,
                pipe_scope: p.pipe_scope.clone(),
            });
        }
        Ok(CompiledProgram {
            dir: dir.to_path_buf(),
            conf: Some(conf_path.to_path_buf()),
            p4_name: Some(program.program_name.clone()),
            bfrt,
            pipelines,
        })
    }

    fn from_layout(dir: &Path, entries: &[PathBuf]) -> Result<CompiledProgram, PackError> {
        let bfrt = find_bfrt(dir)?;
        let mut pipelines = Vec::new();
        for sub in entries.iter().filter(|p| p.is_dir()) {
            let name = sub
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            let context = sub.join(CONTEXT_FILE);
            let binaries = binaries_in(sub)?;
            if !context.is_file() && binaries.is_empty() {
                continue; // logs/, graphs/, ...: not a pipeline
            }
            if !context.is_file() {
                return Err(PackError::Missing {
                    dir: dir.to_path_buf(),
                    file: Path::new(&name).join(CONTEXT_FILE),
                    detail: String::new(),
                });
            }
            let binary = match binaries.as_slice() {
                [one] => one.clone(),
                [] => {
                    return Err(PackError::Missing {
                        dir: dir.to_path_buf(),
                        file: Path::new(&name).join(BINARY_FILE),
                        detail: " (or tofino2.bin, ...: the assembler's output)".into(),
                    });
                }
                several => {
                    return Err(PackError::AmbiguousBinary {
                        dir: sub.clone(),
                        found: several.iter().map(|p| file_name(p)).collect(),
                    });
                }
            };
            pipelines.push(CompiledPipeline {
                name,
                context,
                binary,
                pipe_scope: None,
            });
        }
        match pipelines.as_mut_slice() {
            [] => {
                return Err(PackError::Missing {
                    dir: dir.to_path_buf(),
                    file: Path::new("pipe").join(CONTEXT_FILE),
                    detail: " (no .conf, and no pipeline directory holding a context.json)".into(),
                });
            }
            [one] => one.pipe_scope = Some(DEFAULT_PIPE_SCOPE.to_vec()),
            _ => {} // their scopes are unknown without the .conf
        }
        Ok(CompiledProgram {
            dir: dir.to_path_buf(),
            conf: None,
            p4_name: None,
            bfrt,
            pipelines,
        })
    }

    /// Reads the files and builds the message. `options` pick the name,
    /// the profile and its pipe scope. Every JSON file must parse and no
    /// file may be empty.
    pub fn pack(&self, options: &PackOptions) -> Result<BfPipelineConfig, PackError> {
        let selected: Vec<&CompiledPipeline> = match &options.profile {
            Some(name) => {
                let found = self.pipelines.iter().find(|p| &p.name == name);
                vec![found.ok_or_else(|| PackError::UnknownProfile {
                    name: name.clone(),
                    available: self.pipelines.iter().map(|p| p.name.clone()).collect(),
                })?]
            }
            None => self.pipelines.iter().collect(),
        };
        let mut scopes = Vec::with_capacity(selected.len());
        for p in &selected {
            let scope = match (&options.pipe_scope, &p.pipe_scope) {
                (Some(given), _) if selected.len() == 1 => given.clone(),
                (Some(_), _) => {
                    return Err(PackError::PipeScope {
                        profile: p.name.clone(),
                        reason: format!(
                            "one --pipe-scope for {} pipelines; choose one with --profile",
                            selected.len()
                        ),
                    });
                }
                (None, Some(scope)) => scope.clone(),
                (None, None) => {
                    return Err(PackError::PipeScope {
                        profile: p.name.clone(),
                        reason: "unknown: no .conf gives the pipe scopes of several pipelines; \
                                 pack each with --profile and --pipe-scope"
                            .into(),
                    });
                }
            };
            scopes.push(scope);
        }
        let named: Vec<_> = selected
            .iter()
            .zip(&scopes)
            .map(|(p, s)| (p.name.as_str(), s.as_slice()))
            .collect();
        check_scopes(&named)?;

        let bfruntime_info = self.read_json(&self.bfrt)?;
        let mut profiles = Vec::with_capacity(selected.len());
        for (p, pipe_scope) in selected.iter().zip(scopes) {
            profiles.push(Profile {
                profile_name: p.name.clone(),
                context: self.read_json(&p.context)?,
                binary: self.read_nonempty(&p.binary)?,
                pipe_scope,
            });
        }
        let p4_name = options
            .p4_name
            .clone()
            .or_else(|| self.p4_name.clone())
            .unwrap_or_else(|| PROGRAM_NAME.to_string());
        let config = BfPipelineConfig {
            p4_name,
            bfruntime_info,
            profiles,
        };
        check(&config)?;
        Ok(config)
    }

    fn read_nonempty(&self, path: &Path) -> Result<Vec<u8>, PackError> {
        let bytes = read(path)?;
        if bytes.is_empty() {
            return Err(PackError::Empty {
                dir: self.dir.clone(),
                file: relative_to(path, &self.dir),
            });
        }
        Ok(bytes)
    }

    fn read_json(&self, path: &Path) -> Result<Vec<u8>, PackError> {
        let bytes = self.read_nonempty(path)?;
        serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).map_err(|source| {
            PackError::Json {
                path: path.to_path_buf(),
                source,
            }
        })?;
        Ok(bytes)
    }
}

/// Scopes must be non-empty, without duplicates, and disjoint: the SDE
/// loads each pipe with one profile.
fn check_scopes(scopes: &[(&str, &[u32])]) -> Result<(), PackError> {
    let mut owner = std::collections::BTreeMap::new();
    for (profile, scope) in scopes {
        let err = |reason: String| PackError::PipeScope {
            profile: (*profile).to_string(),
            reason,
        };
        if scope.is_empty() {
            return Err(err("empty; list the hardware pipes, e.g. 0,1,2,3".into()));
        }
        let mut seen = BTreeSet::new();
        for pipe in *scope {
            if !seen.insert(pipe) {
                return Err(err(format!("pipe {pipe} is listed twice")));
            }
            if let Some(other) = owner.insert(*pipe, *profile) {
                return Err(err(format!(
                    "pipe {pipe} is also in the scope of {other:?}"
                )));
            }
        }
    }
    Ok(())
}

fn list_dir(dir: &Path) -> Result<Vec<PathBuf>, PackError> {
    let dir_err = |source| PackError::Dir {
        dir: dir.to_path_buf(),
        source,
    };
    let mut entries = fs::read_dir(dir)
        .map_err(dir_err)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(dir_err)?;
    entries.sort();
    Ok(entries)
}

fn find_conf(dir: &Path, entries: &[PathBuf]) -> Result<Option<PathBuf>, PackError> {
    // bf-p4c records the .conf it wrote in the manifest; a manifest that
    // does not parse or names no existing file is left to the search below.
    let named = fs::read(dir.join("manifest.json"))
        .ok()
        .and_then(|text| serde_json::from_slice::<Manifest>(&text).ok())
        .and_then(|m| m.conf_file)
        .map(|name| dir.join(name))
        .filter(|conf| conf.is_file());
    if named.is_some() {
        return Ok(named);
    }
    let confs: Vec<&PathBuf> = entries
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "conf") && p.is_file())
        .collect();
    match confs.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some((*one).clone())),
        several => {
            let ours = format!("{PROGRAM_NAME}.conf");
            match several.iter().find(|p| file_name(p) == ours) {
                Some(p) => Ok(Some((*p).clone())),
                None => Err(PackError::AmbiguousConf {
                    dir: dir.to_path_buf(),
                    found: several.iter().map(|p| file_name(p)).collect(),
                }),
            }
        }
    }
}

fn find_bfrt(dir: &Path) -> Result<PathBuf, PackError> {
    [BFRT_FILE, BFRT_INSTALLED_FILE]
        .iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| PackError::Missing {
            dir: dir.to_path_buf(),
            file: PathBuf::from(BFRT_FILE),
            detail: format!(
                " (nor {BFRT_INSTALLED_FILE}; compile with --bf-rt-schema {}/{BFRT_FILE})",
                dir.display()
            ),
        })
}

/// The file at `layout` inside `dir`, else where the `.conf` wrote it:
/// inside `dir` when relative, then as written (absolute, or relative to
/// the current directory, where bf-p4c usually ran).
fn find_file(dir: &Path, layout: &Path, written: Option<&str>) -> Option<PathBuf> {
    let mut candidates = vec![dir.join(layout)];
    if let Some(w) = written.filter(|w| !w.is_empty()) {
        let w = Path::new(w);
        if w.is_relative() {
            candidates.push(dir.join(w));
        }
        candidates.push(w.to_path_buf());
    }
    candidates.into_iter().find(|p| p.is_file())
}

/// The `tofino*.bin` files in a pipeline directory.
fn binaries_in(sub: &Path) -> Result<Vec<PathBuf>, PackError> {
    Ok(list_dir(sub)?
        .into_iter()
        .filter(|p| {
            let name = file_name(p);
            name.starts_with("tofino") && name.ends_with(".bin") && p.is_file()
        })
        .collect())
}

fn read(path: &Path) -> Result<Vec<u8>, PackError> {
    fs::read(path).map_err(|source| PackError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

fn relative_to(path: &Path, dir: &Path) -> PathBuf {
    path.strip_prefix(dir).unwrap_or(path).to_path_buf()
}

/// A pipeline name is used as a directory name: one plain component.
fn is_plain_name(name: &str) -> bool {
    let mut c = Path::new(name).components();
    matches!(
        (c.next(), c.next()),
        (Some(std::path::Component::Normal(_)), None)
    )
}
