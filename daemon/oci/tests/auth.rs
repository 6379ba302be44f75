//! Auth and trust against a real registry behind the token proxy: token
//! caching and expiry, credentials, plain-http refusal, redirects to blob
//! storage, digest checks on manifests.

#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod support;

use std::time::Duration;

use bty_oci::{Credentials, OciClient, OciError, Pushed};
use bty_store::oras_ref::OrasRef;
use support::{ProxyOptions, Registry, TokenProxy};

/// Push a small image straight to the registry (no proxy).
async fn seed(registry: &Registry, repo_tag: &str, len: usize) -> Pushed {
    let client = support::client(support::config(&[&registry.host()]));
    let dir = tempfile::tempdir().unwrap();
    let file = support::write(dir.path(), "disk.img", &support::noise(len, 3));
    let tag = support::oras(&registry.host(), repo_tag);
    client
        .push(&tag, &file, "disk.img", "application/octet-stream")
        .await
        .unwrap()
}

fn proxied(proxy: &TokenProxy) -> OciClient {
    support::client(support::config(&[&proxy.host()]))
}

#[tokio::test]
async fn one_token_serves_resolve_blob_request_and_manifest_digest() {
    let registry = Registry::start();
    let pushed = seed(&registry, "bty/cached:v1", 4096).await;
    let proxy = TokenProxy::start(&registry.url(), ProxyOptions::default()).await;
    let client = proxied(&proxy);
    let tag = support::oras(&proxy.host(), "bty/cached:v1");

    let resolved = client.resolve(&tag).await.unwrap();
    let (url, headers) = client
        .blob_request(&tag, &resolved.layer.digest)
        .await
        .unwrap();
    let bytes = support::get_bytes(&url, headers).await;
    assert_eq!(support::digest(&bytes), pushed.layer_digest);
    assert_eq!(
        client.manifest_digest(&tag).await.unwrap(),
        pushed.manifest_digest
    );
    // A clone shares the cache.
    client.clone().resolve(&tag).await.unwrap();

    assert_eq!(proxy.count("/token"), 1, "{:?}", proxy.token_queries());
    // Only the very first request went without a token.
    assert_eq!(proxy.count("/v2/bty/cached/manifests/v1"), 4);
}

#[tokio::test]
async fn blob_request_fetches_a_token_up_front() {
    let registry = Registry::start();
    let pushed = seed(&registry, "bty/upfront:v1", 4096).await;
    let proxy = TokenProxy::start(&registry.url(), ProxyOptions::default()).await;
    let client = proxied(&proxy);
    let tag = support::oras(&proxy.host(), "bty/upfront:v1");

    // No resolve first: the client pings /v2/ to learn the challenge.
    let (url, headers) = client
        .blob_request(&tag, &pushed.layer_digest)
        .await
        .unwrap();
    assert!(headers.contains_key("authorization"));
    support::get_bytes(&url, headers).await;
    assert_eq!(proxy.count("/v2/"), 1);
    assert_eq!(proxy.count("/token"), 1);
    let queries = proxy.token_queries();
    assert!(
        queries[0].contains("scope=repository%3Abty%2Fupfront%3Apull"),
        "{queries:?}"
    );
}

#[tokio::test]
async fn expired_tokens_are_fetched_again() {
    let registry = Registry::start();
    seed(&registry, "bty/expiry:v1", 1024).await;
    let opts = ProxyOptions {
        expires_in: 1,
        access_token_field: true,
        ..ProxyOptions::default()
    };
    let proxy = TokenProxy::start(&registry.url(), opts).await;
    let client = proxied(&proxy);
    let tag = support::oras(&proxy.host(), "bty/expiry:v1");

    client.resolve(&tag).await.unwrap();
    assert_eq!(proxy.count("/token"), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    client.resolve(&tag).await.unwrap();
    assert_eq!(proxy.count("/token"), 2);
}

#[tokio::test]
async fn credentials_are_sent_to_the_token_service() {
    let registry = Registry::start();
    seed(&registry, "bty/private:v1", 1024).await;
    let opts = ProxyOptions {
        credentials: Some(("robot".into(), "s3cret".into())),
        ..ProxyOptions::default()
    };
    let proxy = TokenProxy::start(&registry.url(), opts).await;
    let tag = support::oras(&proxy.host(), "bty/private:v1");

    let anonymous = proxied(&proxy);
    let err = anonymous.resolve(&tag).await.unwrap_err();
    assert!(matches!(err, OciError::Auth { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("401")
            && text.contains(&format!(
                "no credentials are configured for {}",
                proxy.host()
            )),
        "{text}"
    );

    let mut config = support::config(&[&proxy.host()]);
    config.credentials.insert(
        proxy.host(),
        Credentials {
            username: "robot".into(),
            password: "wrong".into(),
        },
    );
    let text = support::client(config.clone())
        .resolve(&tag)
        .await
        .unwrap_err()
        .to_string();
    assert!(text.contains("check the configured credentials"), "{text}");
    assert!(!text.contains("wrong"), "password leaked: {text}");

    config.credentials.insert(
        proxy.host(),
        Credentials {
            username: "robot".into(),
            password: "s3cret".into(),
        },
    );
    support::client(config).resolve(&tag).await.unwrap();
}

#[tokio::test]
async fn plain_http_registries_must_be_listed_as_insecure() {
    let registry = Registry::start();
    let client = support::client(support::config(&[]));
    let tag = support::oras(&registry.host(), "bty/plain:v1");
    match client.resolve(&tag).await {
        Err(e @ OciError::InsecureNotAllowed { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains(&registry.host()) && text.contains("insecure"),
                "{text}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_http_token_realm_needs_its_host_listed() {
    let registry = Registry::start();
    let proxy = TokenProxy::start(&registry.url(), ProxyOptions::default()).await;
    // The registry is reached as localhost (listed), but its realm names
    // 127.0.0.1, which is not listed: no token request may go there.
    let port = proxy.addr.port();
    let client = support::client(support::config(&[&format!("localhost:{port}")]));
    let via_localhost = OrasRef::parse(&format!("oras://localhost:{port}/bty/realm:v1")).unwrap();
    match client.resolve(&via_localhost).await {
        Err(OciError::InsecureNotAllowed { host }) => assert_eq!(host, proxy.host()),
        other => panic!("{other:?}"),
    }
    assert_eq!(proxy.count("/token"), 0);
}

#[tokio::test]
async fn redirects_to_blob_storage_do_not_carry_the_token() {
    let registry = Registry::start();
    let pushed = seed(&registry, "bty/redirected:v1", 256 << 10).await;
    let opts = ProxyOptions {
        redirect_blobs: true,
        ..ProxyOptions::default()
    };
    let proxy = TokenProxy::start(&registry.url(), opts).await;
    let client = proxied(&proxy);
    let tag = support::oras(&proxy.host(), "bty/redirected:v1");

    let resolved = client.resolve(&tag).await.unwrap();
    let (url, headers) = client
        .blob_request(&tag, &resolved.layer.digest)
        .await
        .unwrap();
    assert!(headers.contains_key("authorization"));
    let bytes = support::get_bytes(&url, headers).await;
    assert_eq!(support::digest(&bytes), pushed.layer_digest);
    // The registry saw the token (it would have answered 401 otherwise) ...
    assert_eq!(proxy.count_matching("/blobs/sha256:"), 1);
    // ... and blob storage, on another port, did not.
    assert_eq!(proxy.storage_auth(), vec![None]);
}

#[tokio::test]
async fn manifests_that_do_not_match_their_digest_are_refused() {
    let registry = Registry::start();
    let pushed = seed(&registry, "bty/tampered:v1", 1024).await;
    let opts = ProxyOptions {
        tamper_manifests: true,
        ..ProxyOptions::default()
    };
    let proxy = TokenProxy::start(&registry.url(), opts).await;
    let client = proxied(&proxy);

    let pinned = support::oras(
        &proxy.host(),
        &format!("bty/tampered@{}", pushed.manifest_digest),
    );
    match client.resolve(&pinned).await {
        Err(OciError::DigestMismatch {
            expected, actual, ..
        }) => {
            assert_eq!(expected, pushed.manifest_digest);
            assert_ne!(actual, pushed.manifest_digest);
        }
        other => panic!("{other:?}"),
    }
    // By tag, the registry's Docker-Content-Digest gives it away.
    let tag = support::oras(&proxy.host(), "bty/tampered:v1");
    match client.resolve(&tag).await {
        Err(e @ OciError::DigestMismatch { .. }) => {
            assert!(e.to_string().contains("Docker-Content-Digest"), "{e}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn basic_challenges_use_configured_credentials() {
    let registry = Registry::start();
    seed(&registry, "bty/basic:v1", 1024).await;
    let opts = ProxyOptions {
        basic_registry: true,
        credentials: Some(("robot".into(), "s3cret".into())),
        ..ProxyOptions::default()
    };
    let proxy = TokenProxy::start(&registry.url(), opts).await;
    let tag = support::oras(&proxy.host(), "bty/basic:v1");

    let text = proxied(&proxy).resolve(&tag).await.unwrap_err().to_string();
    assert!(
        text.contains("wants Basic credentials and none are configured"),
        "{text}"
    );

    let mut config = support::config(&[&proxy.host()]);
    config.credentials.insert(
        proxy.host(),
        Credentials {
            username: "robot".into(),
            password: "s3cret".into(),
        },
    );
    let client = support::client(config);
    let resolved = client.resolve(&tag).await.unwrap();
    let (url, headers) = client
        .blob_request(&tag, &resolved.layer.digest)
        .await
        .unwrap();
    assert!(
        headers["authorization"]
            .to_str()
            .unwrap()
            .starts_with("Basic ")
    );
    support::get_bytes(&url, headers).await;
    assert_eq!(proxy.count("/token"), 0);
}

#[tokio::test]
async fn transient_manifest_failures_are_retried_then_reported() {
    let registry = Registry::start();
    seed(&registry, "bty/flaky:v1", 1024).await;
    let tag_on = |proxy: &TokenProxy| support::oras(&proxy.host(), "bty/flaky:v1");

    let two = ProxyOptions {
        fail_manifests: 2,
        ..ProxyOptions::default()
    };
    let proxy = TokenProxy::start(&registry.url(), two).await;
    proxied(&proxy).resolve(&tag_on(&proxy)).await.unwrap();
    assert_eq!(proxy.count("/v2/bty/flaky/manifests/v1"), 4);

    let three = ProxyOptions {
        fail_manifests: 3,
        ..ProxyOptions::default()
    };
    let proxy = TokenProxy::start(&registry.url(), three).await;
    match proxied(&proxy).resolve(&tag_on(&proxy)).await {
        Err(OciError::Http { status: 503, .. }) => {}
        other => panic!("{other:?}"),
    }
}
