//! bty-oci: being written.
