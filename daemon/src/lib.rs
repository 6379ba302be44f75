//! btyd
