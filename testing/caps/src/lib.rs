//! The machine capabilities bty's tests need, checked the same way by
//! every crate's tests. A missing capability fails the test and names
//! what is missing; there is no switch to skip silently.

use std::path::Path;

/// Where loop devices are created.
const LOOP_CONTROL: &str = "/dev/loop-control";

/// Fail the test, naming the missing capability, unless this process may
/// create loop devices (root and `/dev/loop-control`). Never a silent skip.
pub fn require_loop_devices() {
    assert!(
        can_use_loop_devices(),
        "this test needs loop devices: run it as root on a machine with /dev/loop-control \
         (scripts/test does)"
    );
}

/// Whether this process may create loop devices: its effective user is
/// root and `/dev/loop-control` exists.
pub fn can_use_loop_devices() -> bool {
    is_root() && Path::new(LOOP_CONTROL).exists()
}

/// Whether the effective user is root.
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}
