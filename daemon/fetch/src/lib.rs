//! bty-fetch: being written.
