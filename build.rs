//! Compiles `proto/` with protox (a pure-Rust protobuf compiler), so a fresh
//! machine needs no system `protoc`. Also writes the file descriptor set that
//! server reflection and gateways use (with the `google.api.http` options
//! kept), and generates the canonical proto3 JSON mapping with pbjson.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler.include_imports(true).include_source_info(true).open_files(["dora/v1/dora.proto"])?;
    // Encoded by protox itself: `file_descriptor_set()` would drop extension
    // options such as `google.api.http`, which gateways read.
    let encoded = compiler.encode_file_descriptor_set();
    std::fs::write(out.join("dora_descriptor.bin"), &encoded)?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // prost's codec, but a request that does not decode is INVALID_ARGUMENT.
        .codec_path("crate::api::codec::ProtoCodec")
        // Well-known types with serde impls, so Timestamp is RFC 3339 in JSON.
        .compile_well_known_types(true)
        .extern_path(".google.protobuf", "::pbjson_types")
        .compile_fds(compiler.file_descriptor_set())?;
    pbjson_build::Builder::new().register_descriptors(&encoded)?.build(&[".dora.v1"])?;
    Ok(())
}
