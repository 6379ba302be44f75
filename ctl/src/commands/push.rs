//! `btyctl push`: publish an image from the store to an OCI registry,
//! optionally signing the pushed manifest cosign's way with a local key.

use crate::client::Ctx;
use crate::commands::jobs::{watch, watch_with};
use crate::exit::CtlError;
use crate::job::{JobView, summary_line};
use bty_cosign::SigningKey;
use bty_proto::v1::{PushImageRequest, PushSignatureRequest};
use clap::Args;
use std::io::Read;
use std::path::{Path, PathBuf};

/// What IMAGE and TARGET accept (shown in `--help`).
const PUSH_HELP: &str = "\
IMAGE is a row id (content sha256 or entry ref) or a file name in the image
root. TARGET is oras://host[:port]/repository:tag; registries configured as
insecure in btyd's config are reached over plain http.

--sign KEYFILE signs the pushed manifest the way `cosign sign --key` does:
KEYFILE is an unencrypted PKCS#8 PEM private key (P-256 or Ed25519, from
`openssl genpkey`), read by btyctl; only the signature is sent to btyd,
which pushes it under the tag sha256-<hex>.sig beside the artifact.";

/// `btyctl push IMAGE oras://host/repo:tag [--detach] [--sign KEYFILE]`
#[derive(Debug, Args)]
#[command(after_help = PUSH_HELP)]
pub(crate) struct PushArgs {
    /// The image to publish (see below).
    image: String,
    /// Where to publish it.
    #[arg(value_name = "oras://HOST/REPO:TAG", value_parser = parse_oras)]
    target: String,
    /// Print the queued push job and return instead of watching it.
    #[arg(long, conflicts_with = "sign")]
    detach: bool,
    /// Sign the pushed manifest with this PEM private key (cosign layout).
    #[arg(long, value_name = "KEYFILE")]
    sign: Option<PathBuf>,
}

/// Catch a missing scheme as a usage error before btyd is asked.
fn parse_oras(target: &str) -> Result<String, String> {
    if target.starts_with("oras://") {
        Ok(target.to_owned())
    } else {
        Err("expected oras://host[:port]/repository:tag".to_owned())
    }
}

/// Queue the push and watch it (exit 7 if it fails); with `--sign`, then
/// sign the pushed manifest and have btyd publish the signature.
pub(crate) async fn run(ctx: &Ctx, args: PushArgs) -> Result<(), CtlError> {
    // The key is read before anything is pushed, so a bad key fails fast.
    let key = args.sign.as_deref().map(read_key).transpose()?;
    let job = ctx
        .daemon
        .catalog()
        .push_image(PushImageRequest {
            image: args.image,
            target: args.target.clone(),
        })
        .await?
        .into_inner();
    if args.detach {
        return ctx.out.emit(&JobView::from(&job), || summary_line(&job));
    }
    let Some(key) = key else {
        return watch(ctx, &job.id).await;
    };
    let done = watch_with(ctx, &job.id, summary_line).await?;
    let (reference, digest) = done
        .note
        .as_deref()
        .and_then(pushed_manifest)
        .ok_or_else(|| CtlError::NoPushedManifest(done.id.clone()))?;
    let payload = bty_cosign::payload::payload(&reference, &digest);
    let signature = key.sign(&payload).map_err(|e| CtlError::SigningKey {
        path: args.sign.clone().unwrap_or_default(),
        reason: e.to_string(),
    })?;
    let pushed = ctx
        .daemon
        .catalog()
        .push_signature(PushSignatureRequest {
            target: args.target,
            manifest_digest: digest.clone(),
            payload,
            signature,
        })
        .await?
        .into_inner();
    // stdout carries the job (one JSON document with --json); the
    // signature is reported beside it.
    eprintln!(
        "signed {digest} with key {} (tag {})",
        key.public().fingerprint(),
        pushed.tag
    );
    Ok(())
}

/// Read and parse a PEM private key, capped (key files are tiny).
fn read_key(path: &Path) -> Result<SigningKey, CtlError> {
    let file = std::fs::File::open(path).map_err(|source| CtlError::ReadFile {
        path: path.to_owned(),
        source,
    })?;
    let mut text = String::new();
    file.take(bty_cosign::MAX_PEM_BYTES as u64 + 1)
        .read_to_string(&mut text)
        .map_err(|source| CtlError::ReadFile {
            path: path.to_owned(),
            source,
        })?;
    SigningKey::from_pem(&text).map_err(|e| CtlError::SigningKey {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// `host/repo` and the manifest digest from a push job's note, which btyd
/// writes as `pushed oras://host/repo:tag (manifest sha256:<hex>)`.
fn pushed_manifest(note: &str) -> Option<(String, String)> {
    let rest = note.strip_prefix("pushed oras://")?;
    let (reference, tail) = rest.split_once(" (manifest ")?;
    let digest = tail.strip_suffix(')')?;
    let hex = digest.strip_prefix("sha256:")?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    // Drop the tag: the payload names the repository.
    let slash = reference.rfind('/')?;
    let repo_end = reference[slash..]
        .find(':')
        .map_or(reference.len(), |i| slash + i);
    Some((reference[..repo_end].to_owned(), digest.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_pushed_manifest_from_the_note() {
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            pushed_manifest(&format!(
                "pushed oras://127.0.0.1:5000/lab/img:v1 (manifest {d})"
            )),
            Some(("127.0.0.1:5000/lab/img".to_owned(), d.clone()))
        );
        for bad in [
            String::new(),
            "up to date".to_owned(),
            format!("pushed oras://h/r:t (manifest {d}"),
            "pushed oras://h/r:t (manifest sha256:zz)".to_owned(),
        ] {
            assert_eq!(pushed_manifest(&bad), None, "{bad}");
        }
    }
}
