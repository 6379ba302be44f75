// The git revision for `--version`: one script for every binary of bty.
include!("../daemon/build.rs");
