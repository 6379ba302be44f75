//! bty-fetch: resumable, verified HTTP(S) downloads into a file, streams
//! that hand a body on without landing it (flashing from the network), plus
//! small capped document fetches and HEAD probes.
//!
//! [`fetch`] streams a body into a `.partial` file while hashing it, retries
//! transient failures with backoff, resumes with `Range` + `If-Range`
//! (also across daemon restarts, via a JSON checkpoint), checks length and
//! sha256, and only then renames the file into place. [`http_client`] builds
//! the one `reqwest::Client` everything shares.

#![warn(missing_docs)]

mod attempt;
mod body;
mod checkpoint;
mod client;
mod document;
mod error;
mod exchange;
mod fetch;
mod probe;
mod request;
mod retry;
mod sink;
mod stream;

pub use body::{BodyReader, body_channel};
pub use checkpoint::Checkpoint;
pub use client::{ClientOptions, InsecureRedirect, USER_AGENT, http_client, redirect_policy};
pub use document::{Document, fetch_bytes, fetch_document};
pub use error::FetchError;
pub use fetch::{discard, fetch};
pub use probe::{RemoteMeta, Unchanged, probe, unchanged};
pub use request::{FetchRequest, Fetched, Progress};
pub use retry::{DEFAULT_MAX_SIZE, FetchOptions};
pub use stream::{StreamRequest, StreamState, stream};
