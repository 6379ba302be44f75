//! Push or pull an `oras://` artifact the way btyd does; used by
//! `scripts/bench-download`. Plain http is allowed to the reference's host
//! (a loopback test registry).
//!
//! - `oras push FILE oras://HOST/REPO:TAG` publishes FILE as the single
//!   layer and prints the layer digest.
//! - `oras pull oras://HOST/REPO:TAG DEST` resolves the reference, picks the
//!   disk-image layer and downloads it with bty-fetch (inline sha256 checked
//!   against the layer digest, fsync, rename), like the daemon's
//!   downloader, then prints throughput and sha256.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::Instant;

use bty_fetch::{ClientOptions, FetchOptions, FetchRequest, Progress, fetch, http_client};
use bty_oci::{OciClient, OciConfig};
use bty_store::oras_ref::OrasRef;
use tokio_util::sync::CancellationToken;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["push", file, reference] => push(Path::new(file), reference).await,
        ["pull", reference, dest] => pull(reference, PathBuf::from(dest)).await,
        _ => Err(
            "usage: oras push FILE oras://HOST/REPO:TAG | oras pull oras://HOST/REPO:TAG DEST"
                .into(),
        ),
    }
}

/// A client that may use plain http to `r`'s host.
fn client(r: &OrasRef) -> Result<(OciClient, reqwest::Client)> {
    let http = http_client(&ClientOptions::default())?;
    let config = OciConfig {
        insecure: [r.host.clone()].into(),
        ..OciConfig::default()
    };
    Ok((OciClient::new(config, http.clone()), http))
}

async fn push(file: &Path, reference: &str) -> Result<()> {
    let r = OrasRef::parse(reference)?;
    let (oci, _) = client(&r)?;
    let title = file
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or("FILE needs a UTF-8 file name")?;
    let pushed = oci
        .push(&r, file, title, "application/octet-stream")
        .await?;
    println!("{}", pushed.layer_digest);
    Ok(())
}

async fn pull(reference: &str, dest: PathBuf) -> Result<()> {
    let r = OrasRef::parse(reference)?;
    let (oci, http) = client(&r)?;
    let started = Instant::now();
    let resolved = oci.resolve(&r).await?;
    let layer = resolved.layer;
    let (url, headers) = oci.blob_request(&r, &layer.digest).await?;
    let mut partial = dest.clone().into_os_string();
    partial.push(".partial");
    let req = FetchRequest {
        url,
        headers,
        partial: partial.into(),
        dest,
        checkpoint: None,
        expected_sha256: layer.digest.strip_prefix("sha256:").map(str::to_owned),
        expected_size: Some(layer.size),
    };
    let quiet = |_: Progress| {};
    let got = fetch(
        &http,
        &req,
        &FetchOptions::default(),
        &quiet,
        &CancellationToken::new(),
    )
    .await?;
    let secs = started.elapsed().as_secs_f64();
    let mib = got.size as f64 / f64::from(1 << 20);
    println!(
        "{:.1} MiB/s {} bytes {:.3} s sha256 {}",
        mib / secs,
        got.size,
        secs,
        got.sha256
    );
    Ok(())
}
