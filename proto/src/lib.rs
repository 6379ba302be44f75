//! The bty gRPC contract: generated `bty.v1` messages, clients and servers,
//! and the one way clients (btyctl, bty-web) open a channel to btyd.

pub mod auth;
pub mod channel;

/// Version 1 of the bty API.
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("bty.v1");
}

/// Encoded `FileDescriptorSet` of `bty.v1` (with imports), for reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("bty_descriptor");

/// Default Unix socket of a system-wide btyd.
pub const DEFAULT_SOCKET: &str = "/run/bty/btyd.sock";
