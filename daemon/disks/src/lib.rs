//! bty-disks: being written.
