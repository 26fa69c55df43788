//! The files committed under `p4/v1model/` and `p4/tna/` are exactly what
//! the generator writes for the default parameters.

use beamer_pipeline::{PipelineParams, Target};
use std::path::Path;

#[test]
fn committed_files_equal_the_generator_output() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut stale = Vec::new();
    for target in Target::ALL {
        let out = beamer_p4gen::generate(target, &PipelineParams::default()).unwrap();
        for (name, want) in out.files() {
            let path = root.join(target.name()).join(name);
            match std::fs::read(&path) {
                Ok(have) if have == want => {}
                Ok(_) => stale.push(format!("{} differs", path.display())),
                Err(e) => stale.push(format!("{} cannot be read: {e}", path.display())),
            }
        }
    }
    assert!(
        stale.is_empty(),
        "the committed P4 output is out of date with the generator:\n  {}\n\
         regenerate it with\n  cargo run -p beamer-p4gen --example regenerate\n\
         (the same as `beamer gen --target v1model --out p4/v1model` and \
         `beamer gen --target tna --out p4/tna`), then commit p4/v1model and p4/tna",
        stale.join("\n  ")
    );
}
