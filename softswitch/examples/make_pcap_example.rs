//! Writes `examples/pcap/input.pcap`, the input of the pcap example, from
//! the frame table in `examples/pcap/frames.rs`.
//!
//! ```text
//! cargo run -p beamer-softswitch --example make_pcap_example
//! ```
//!
//! The expected outputs are what `beamer switch` makes of it; see
//! `examples/pcap/README.md` for the commands that remake them.

#[path = "pcap/frames.rs"]
mod frames;

use std::path::Path;

fn main() -> std::io::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/pcap");
    let path = dir.join("input.pcap");
    std::fs::write(&path, frames::input_pcap())?;
    for (i, f) in frames::fixtures().iter().enumerate() {
        println!("{:>2}  {:?}  {}", i + 1, f.expect, f.what);
    }
    println!("wrote {}", path.display());
    Ok(())
}
