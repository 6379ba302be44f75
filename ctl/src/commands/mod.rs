//! One module per top-level command: its clap arguments and its `run`,
//! which calls btyd once or twice and prints the result.

pub(crate) mod cache;
pub(crate) mod catalog;
pub(crate) mod disks;
mod disks_watch;
pub(crate) mod docs;
pub(crate) mod entries;
pub(crate) mod events;
pub(crate) mod fetch;
pub(crate) mod flash;
pub(crate) mod hash;
pub(crate) mod images;
pub(crate) mod jobs;
pub(crate) mod push;
pub(crate) mod update;
pub(crate) mod upload;

/// What an image ID on the command line may be (shown in `--help`).
pub(crate) const ID_HELP: &str = "\
ID may be any of:
  - a row id from `btyctl images list --json` (the content sha256, or the
    entry ref while the content is not known yet)
  - a content sha256 (64 hex)
  - an entry ref (sha256 of the canonical src)
  - an entry's src URL (http(s)://… or oras://…)
  - an entry name";
