//! Generates the rollup.v1 API with a vendored protoc, so no system install is needed.
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // Build scripts are single-threaded; setting the variable here is safe.
    std::env::set_var("PROTOC", protoc);
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    println!("cargo:rerun-if-changed=proto/rollup/v1/rollup.proto");
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("rollup_v1_descriptor.bin"))
        .compile_protos(&["proto/rollup/v1/rollup.proto"], &["proto"])?;
    Ok(())
}
