//! One module per top-level command: its clap arguments and its `run`,
//! which calls btyd once or twice and prints the result.

pub(crate) mod catalog;
pub(crate) mod entries;
pub(crate) mod hash;
pub(crate) mod images;
pub(crate) mod jobs;
