//! Generates the gRPC code of `proto/crowsnest.proto`.

use std::path::PathBuf;

fn main() {
    compile_grpc_protos();
}

/// gRPC code from `proto/*.proto`, parsed by `protox` (pure Rust) so that no system `protoc` is needed.
fn compile_grpc_protos() {
    let proto_dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default()).join("../../proto");
    let file = proto_dir.join("crowsnest.proto");
    println!("cargo:rerun-if-changed={}", file.display());
    let descriptors = match protox::compile([&file], [&proto_dir]) {
        Ok(descriptors) => descriptors,
        Err(err) => panic!("cannot parse {}: {err}", file.display()),
    };
    if let Err(err) = tonic_prost_build::configure().compile_fds(descriptors) {
        panic!("cannot generate gRPC code: {err}");
    }
}
