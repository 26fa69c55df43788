//! Rewrites the committed output under `p4/v1model/` and `p4/tna/` for the
//! default parameters:
//!
//! ```text
//! cargo run -p beamer-p4gen --example regenerate
//! ```
//!
//! It writes what `beamer gen --target T --out p4/T` writes.

use beamer_pipeline::{PipelineParams, Target};
use std::path::Path;

fn main() -> Result<(), beamer_p4gen::Error> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for target in Target::ALL {
        let dir = root.join(target.name());
        for path in beamer_p4gen::write_files(&dir, target, &PipelineParams::default())? {
            println!("wrote {}", path.display());
        }
    }
    Ok(())
}
