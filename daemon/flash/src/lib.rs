//! bty-flash: being written.
