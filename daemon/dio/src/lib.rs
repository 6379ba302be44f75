//! The byte-moving basics every hot path shares: files opened for direct
//! I/O where the filesystem takes `O_DIRECT` (and buffered where it does
//! not), buffers and offsets aligned for it, and the sha256 loop over a
//! file or reader. Used by the store's landing path, downloads, the
//! hasher, pushes and the flasher, so each decision (what counts as a
//! refusal, what alignment, what chunk size) is made once.

pub mod aligned;
pub mod direct;
pub mod sha256;

pub use aligned::{ALIGN, AlignedBuf};
pub use sha256::{DigestError, to_hex};
