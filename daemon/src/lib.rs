//! btyd: the bty daemon. It owns the image store and the disks; every front
//! end (btyctl, bty-web, scripts) is a client of its gRPC API.
//!
//! Inside, a ractor supervision tree of actors that own one concern each and
//! talk only by messages (see `actors`); the pure store logic lives in the
//! `bty-store` crate.

pub mod actors;
pub mod allocator;
pub mod config;
pub mod daemon;
pub mod domain;
pub mod events;
pub mod grpc;
pub mod hotplug;
pub mod jobs;
pub mod metrics;
pub mod serve;
mod store_dirs;
pub mod watch;
pub mod web;
