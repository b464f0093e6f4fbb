//! The rollup.v1 gRPC API (tonic + prost), generated at build time from
//! `proto/rollup/v1/rollup.proto` with a vendored protoc.

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod v1 {
    tonic::include_proto!("rollup.v1");

    /// Encoded file descriptor set, for gRPC server reflection (so `grpcurl` works).
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("rollup_v1_descriptor");
}

pub mod convert;
pub mod work;
