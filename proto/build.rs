//! Compiles `bty/v1/*.proto` with protox (pure Rust, no system `protoc`) and
//! writes the encoded descriptor set that the reflection service serves.

use prost::Message;
use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "bty/v1/catalog.proto",
    "bty/v1/jobs.proto",
    "bty/v1/events.proto",
    "bty/v1/flash.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let fds = protox::Compiler::new(["."])?
        .include_imports(true)
        .include_source_info(true)
        .open_files(PROTOS)?
        .file_descriptor_set();
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("bty_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        // Bulk data as `Bytes`: decoding slices the received buffer instead
        // of copying every chunk into a fresh `Vec`, and senders hand over
        // buffers they already own.
        .bytes(".bty.v1.UploadImageChunk.data")
        .bytes(".bty.v1.ImageChunk.data")
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
