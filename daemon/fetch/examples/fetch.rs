//! Download one URL with bty-fetch and print throughput and sha256:
//! `cargo run --release -p bty-fetch --example fetch -- URL DEST`.

use std::error::Error;
use std::path::PathBuf;
use std::time::Instant;

use bty_fetch::{ClientOptions, FetchOptions, FetchRequest, Progress, fetch, http_client};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(dest)) = (args.next(), args.next()) else {
        return Err("usage: fetch URL DEST".into());
    };
    let dest = PathBuf::from(dest);
    let mut partial = dest.clone().into_os_string();
    partial.push(".partial");
    let req = FetchRequest {
        url,
        headers: reqwest::header::HeaderMap::new(),
        partial: partial.into(),
        dest,
        checkpoint: None,
        expected_sha256: None,
        expected_size: None,
    };
    let client = http_client(&ClientOptions::default())?;
    let started = Instant::now();
    let quiet = |_: Progress| {};
    let got = fetch(
        &client,
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
