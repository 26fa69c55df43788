//! Compiles the .proto files under `proto/` with protox (no system protoc)
//! and generates prost messages and tonic clients and servers.

use prost::Message;
use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "google/rpc/code.proto",
    "google/rpc/status.proto",
    "p4/config/v1/p4types.proto",
    "p4/config/v1/p4info.proto",
    "p4/v1/p4data.proto",
    "p4/v1/p4runtime.proto",
    "tofino/bf_pipeline_config.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let out = PathBuf::from(std::env::var("OUT_DIR")?);

    // protox bundles google/protobuf/*.proto, so any.proto resolves too.
    let fds = protox::compile(PROTOS, ["proto"])?;
    std::fs::write(out.join("descriptor_set.bin"), fds.encode_to_vec())?;

    // Type names (prost::Name) let the text-format helpers find each
    // message's descriptor, and pack messages into google.protobuf.Any with
    // the usual "type.googleapis.com/" URLs (p4.v1.Error in Status details).
    let mut config = prost_build::Config::new();
    config.enable_type_names();
    config.type_name_domain(["."], "type.googleapis.com");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .emit_rerun_if_changed(false)
        .compile_fds_with_config(fds, config)?;
    Ok(())
}
