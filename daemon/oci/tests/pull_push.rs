//! Push, resolve and pull against a real `docker-registry`, directly and
//! through the token proxy: tags and digests, rolling tags, image indexes,
//! refused layers, catalog artifacts.

#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod support;

use bty_oci::OciError;
use bty_oci::blob::CATALOG_CAP;
use bty_oci::manifest::{OCI_INDEX, OCI_MANIFEST};
use support::{ProxyOptions, Registry, TokenProxy};

const OCTET: &str = "application/octet-stream";

#[tokio::test]
async fn pushes_resolves_and_downloads_through_the_token_proxy() {
    let registry = Registry::start();
    let proxy = TokenProxy::start(&registry.url(), ProxyOptions::default()).await;
    let host = proxy.host();
    let client = support::client(support::config(&[&host]));
    let dir = tempfile::tempdir().unwrap();
    let bytes = support::noise(3 << 20, 7);
    let file = support::write(dir.path(), "disk.img.zst", &bytes);

    let tag = support::oras(&host, "bty/images/disk:v1");
    let pushed = client
        .push(&tag, &file, "disk.img.zst", OCTET)
        .await
        .unwrap();
    assert_eq!(pushed.layer_digest, support::digest(&bytes));
    assert_eq!(pushed.size, bytes.len() as u64);

    let resolved = client.resolve(&tag).await.unwrap();
    assert_eq!(resolved.manifest_digest, pushed.manifest_digest);
    assert_eq!(resolved.platform_manifest, None);
    assert_eq!(resolved.layer.digest, pushed.layer_digest);
    assert_eq!(resolved.layer.size, pushed.size);
    assert_eq!(resolved.layer.media_type, OCTET);
    assert_eq!(resolved.layer.title.as_deref(), Some("disk.img.zst"));
    assert_eq!(resolved.format.as_deref(), Some("img.zst"));

    let pinned = support::oras(
        &host,
        &format!("bty/images/disk@{}", pushed.manifest_digest),
    );
    assert_eq!(client.resolve(&pinned).await.unwrap(), resolved);

    let (url, headers) = client
        .blob_request(&tag, &resolved.layer.digest)
        .await
        .unwrap();
    assert_eq!(
        url,
        format!(
            "http://{host}/v2/bty/images/disk/blobs/{}",
            pushed.layer_digest
        )
    );
    assert!(
        headers
            .get("authorization")
            .is_some_and(|v| v.to_str().unwrap().starts_with("Bearer ")),
        "{headers:?}"
    );
    let got = support::get_bytes(&url, headers).await;
    assert_eq!(support::digest(&got), pushed.layer_digest);
    // Push asked for pull,push; the pulls for pull.
    let queries = proxy.token_queries();
    assert!(
        queries.iter().any(|q| q.contains("pull%2Cpush")),
        "{queries:?}"
    );
    // The realm's own query is kept; ours is appended.
    assert!(
        queries
            .iter()
            .all(|q| q.starts_with("account=bty&service=bty-test&scope=")),
        "{queries:?}"
    );
}

#[tokio::test]
async fn manifest_digest_follows_a_rolling_tag() {
    let registry = Registry::start();
    let client = support::client(support::config(&[&registry.host()]));
    let dir = tempfile::tempdir().unwrap();
    let tag = support::oras(&registry.host(), "bty/rolling:latest");

    let first = support::write(dir.path(), "a.img", &support::noise(64 << 10, 1));
    let pushed1 = client.push(&tag, &first, "a.img", OCTET).await.unwrap();
    let seen1 = client.manifest_digest(&tag).await.unwrap();
    assert_eq!(seen1, pushed1.manifest_digest);

    let second = support::write(dir.path(), "b.img", &support::noise(64 << 10, 2));
    let pushed2 = client.push(&tag, &second, "a.img", OCTET).await.unwrap();
    let seen2 = client.manifest_digest(&tag).await.unwrap();
    assert_eq!(seen2, pushed2.manifest_digest);
    assert_ne!(seen1, seen2);

    // Pushing the same bytes again uploads nothing new and lands on the
    // same manifest.
    let again = client.push(&tag, &second, "a.img", OCTET).await.unwrap();
    assert_eq!(again, pushed2);
    // A digest reference reports itself (after checking it exists).
    let pinned = support::oras(&registry.host(), &format!("bty/rolling@{seen1}"));
    assert_eq!(client.manifest_digest(&pinned).await.unwrap(), seen1);
}

/// Push two artifacts and an OCI index over them (by hand, as a
/// multi-platform publisher would).
async fn push_index(registry: &Registry, repo: &str) -> (String, String) {
    let client = support::client(support::config(&[&registry.host()]));
    let dir = tempfile::tempdir().unwrap();
    let http = support::http();
    let mut entries = Vec::new();
    let mut layers = Vec::new();
    for (arch, seed) in [("amd64", 11), ("arm64", 12)] {
        let file = support::write(
            dir.path(),
            "disk.img",
            &support::noise(10_000 + seed, seed as u64),
        );
        let tag = support::oras(&registry.host(), &format!("{repo}:{arch}"));
        let pushed = client.push(&tag, &file, "disk.img", OCTET).await.unwrap();
        let manifest =
            support::get_manifest(&format!("{}/v2/{repo}/manifests/{arch}", registry.url())).await;
        entries.push(serde_json::json!({
            "mediaType": OCI_MANIFEST,
            "digest": pushed.manifest_digest,
            "size": manifest.len(),
            "platform": { "os": "linux", "architecture": arch },
        }));
        layers.push(pushed.layer_digest);
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": entries,
    });
    let resp = http
        .put(format!("{}/v2/{repo}/manifests/multi", registry.url()))
        .header("content-type", OCI_INDEX)
        .body(index.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    (layers.remove(0), layers.remove(0))
}

#[tokio::test]
async fn image_index_picks_our_platform_or_lists_the_choices() {
    let registry = Registry::start();
    let (amd64_layer, arm64_layer) = push_index(&registry, "bty/multi").await;
    let multi = support::oras(&registry.host(), "bty/multi:multi");

    let mut config = support::config(&[&registry.host()]);
    config.platform.architecture = "amd64".into();
    let resolved = support::client(config.clone())
        .resolve(&multi)
        .await
        .unwrap();
    assert_eq!(resolved.layer.digest, amd64_layer);
    assert!(resolved.platform_manifest.is_some());
    assert_ne!(
        resolved.platform_manifest,
        Some(resolved.manifest_digest.clone())
    );

    config.platform.architecture = "arm64".into();
    let resolved = support::client(config.clone())
        .resolve(&multi)
        .await
        .unwrap();
    assert_eq!(resolved.layer.digest, arm64_layer);

    config.platform.architecture = "riscv64".into();
    match support::client(config).resolve(&multi).await {
        Err(OciError::NoMatchingPlatform {
            wanted, available, ..
        }) => {
            assert_eq!(wanted, "linux/riscv64");
            assert_eq!(available, ["linux/amd64", "linux/arm64"]);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn refuses_a_manifest_whose_only_layer_is_a_signature() {
    let registry = Registry::start();
    let client = support::client(support::config(&[&registry.host()]));
    let dir = tempfile::tempdir().unwrap();
    let file = support::write(dir.path(), "sig", br#"{"critical":{}}"#);
    let tag = support::oras(&registry.host(), "bty/signed:sha256-abc.sig");
    let cosign = "application/vnd.dev.cosign.simplesigning.v1+json";
    client.push(&tag, &file, "signature", cosign).await.unwrap();

    let err = client.resolve(&tag).await.unwrap_err();
    match &err {
        OciError::NoImageLayer { refused, .. } => {
            assert_eq!(
                refused,
                &[(cosign.to_owned(), Some("signature".to_owned()))]
            );
        }
        other => panic!("{other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("no disk-image layer") && text.contains(cosign),
        "{text}"
    );
}

#[tokio::test]
async fn fetches_a_catalog_artifact_under_its_cap() {
    let registry = Registry::start();
    let client = support::client(support::config(&[&registry.host()]));
    let dir = tempfile::tempdir().unwrap();
    let catalog = b"[[images]]\nname = \"debian\"\nsrc = \"https://example.invalid/d.img\"\n";
    let file = support::write(dir.path(), "catalog.toml", catalog);
    let tag = support::oras(&registry.host(), "bty/catalog:latest");
    client
        .push(&tag, &file, "catalog.toml", "application/toml")
        .await
        .unwrap();

    let resolved = client.resolve(&tag).await.unwrap();
    assert_eq!(resolved.layer.title.as_deref(), Some("catalog.toml"));
    assert_eq!(resolved.format, None);
    let got = client
        .fetch_blob(&tag, &resolved.layer.digest, CATALOG_CAP)
        .await
        .unwrap();
    assert_eq!(got, catalog);

    match client.fetch_blob(&tag, &resolved.layer.digest, 16).await {
        Err(e @ OciError::TooLarge { .. }) => assert!(e.to_string().contains("16-byte cap")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_missing_tag_is_an_http_error_naming_the_url() {
    let registry = Registry::start();
    let client = support::client(support::config(&[&registry.host()]));
    let missing = support::oras(&registry.host(), "bty/nothing:here");
    match client.resolve(&missing).await {
        Err(e @ OciError::Http { status: 404, .. }) => {
            let text = e.to_string();
            assert!(text.contains("/v2/bty/nothing/manifests/here"), "{text}");
            assert!(text.contains("MANIFEST_UNKNOWN"), "{text}");
        }
        other => panic!("{other:?}"),
    }
}
