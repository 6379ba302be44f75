//! `[[trust]]` checks against a real `docker-registry` behind the token
//! proxy: a signature pushed by `push_signature` verifies for its digest;
//! the first matching rule decides; unmatched references need nothing; a
//! Docker v2 signature manifest is accepted like an OCI one.

#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod support;

use bty_cosign::{PublicKey, SigningKey};
use bty_oci::{OciConfig, OciError, TrustRule};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
use support::{ProxyOptions, Registry, TokenProxy};

fn p256() -> SigningKey {
    let rng = SystemRandom::new();
    let alg = &ECDSA_P256_SHA256_ASN1_SIGNING;
    let doc = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
    SigningKey::EcdsaP256(EcdsaKeyPair::from_pkcs8(alg, doc.as_ref(), &rng).unwrap())
}

fn rule(prefix: String, keys: &[&SigningKey]) -> TrustRule {
    TrustRule {
        prefix,
        keys: keys.iter().map(|k| k.public()).collect::<Vec<PublicKey>>(),
    }
}

#[tokio::test]
async fn signatures_pushed_for_a_digest_verify_under_the_first_matching_rule() {
    let registry = Registry::start();
    let proxy = TokenProxy::start(&registry.url(), ProxyOptions::default()).await;
    let host = proxy.host();
    let dir = tempfile::tempdir().unwrap();
    let file = support::write(dir.path(), "disk.img", &support::noise(1 << 20, 5));
    let tag = support::oras(&host, "lab/images/disk:v1");
    let plain = support::client(support::config(&[&host]));
    let pushed = plain
        .push(&tag, &file, "disk.img", "application/octet-stream")
        .await
        .unwrap();
    let (signer, stranger) = (p256(), p256());
    let payload =
        bty_cosign::payload::payload(&format!("{host}/lab/images/disk"), &pushed.manifest_digest);
    let signature = signer.sign(&payload).unwrap();
    let sig_tag = plain
        .push_signature(&tag, &pushed.manifest_digest, &payload, &signature)
        .await
        .unwrap();
    assert_eq!(
        sig_tag,
        format!("{}.sig", pushed.manifest_digest.replace(':', "-"))
    );

    let with_rules = |rules: Vec<TrustRule>| {
        support::client(OciConfig {
            trust: rules,
            ..support::config(&[&host])
        })
    };
    let client = with_rules(vec![
        rule(format!("oras://{host}/elsewhere/"), &[&stranger]),
        rule(format!("oras://{host}/lab/"), &[&stranger, &signer]),
    ]);
    let resolved = client.resolve(&tag).await.unwrap();
    assert_eq!(
        client
            .check_trust(&tag, &resolved.manifest_digest)
            .await
            .unwrap(),
        Some(signer.public().fingerprint())
    );
    // No rule covers this repository: nothing is required.
    let other = support::oras(&host, "other/disk:v1");
    assert_eq!(
        client
            .check_trust(&other, &resolved.manifest_digest)
            .await
            .unwrap(),
        None
    );
    // The first matching rule decides, even when a later one would pass.
    let client = with_rules(vec![
        rule(format!("oras://{host}/lab/"), &[&stranger]),
        rule(format!("oras://{host}/lab/images/"), &[&signer]),
    ]);
    match client.check_trust(&tag, &resolved.manifest_digest).await {
        Err(OciError::Untrusted(u)) => {
            assert_eq!(u.rule, format!("oras://{host}/lab/"));
            assert_eq!(u.keys, stranger.public().fingerprint());
            assert!(
                u.reason.contains("none of the allowed keys"),
                "{}",
                u.reason
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_docker_v2_signature_manifest_is_accepted() {
    let registry = Registry::start();
    let host = registry.host();
    let dir = tempfile::tempdir().unwrap();
    let file = support::write(dir.path(), "disk.img", &support::noise(1 << 20, 9));
    let tag = support::oras(&host, "lab/disk:v1");
    let signer = p256();
    let client = support::client(OciConfig {
        trust: vec![rule(format!("oras://{host}/lab/"), &[&signer])],
        ..support::config(&[&host])
    });
    let pushed = client
        .push(&tag, &file, "disk.img", "application/octet-stream")
        .await
        .unwrap();
    let payload =
        bty_cosign::payload::payload(&format!("{host}/lab/disk"), &pushed.manifest_digest);
    let signature = signer.sign(&payload).unwrap();
    let sig_tag = client
        .push_signature(&tag, &pushed.manifest_digest, &payload, &signature)
        .await
        .unwrap();
    // Rewrite the signature manifest as Docker v2 schema 2 (blobs stay).
    let url = format!("{}/v2/lab/disk/manifests/{sig_tag}", registry.url());
    let http = support::http();
    let body = support::get_manifest(&url).await;
    let oci: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let mut docker = oci.clone();
    docker["mediaType"] = bty_oci::manifest::DOCKER_MANIFEST.into();
    docker["config"]["mediaType"] = "application/vnd.docker.container.image.v1+json".into();
    let put = http
        .put(&url)
        .header("content-type", bty_oci::manifest::DOCKER_MANIFEST)
        .body(docker.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201);
    assert_eq!(
        client
            .check_trust(&tag, &pushed.manifest_digest)
            .await
            .unwrap(),
        Some(signer.public().fingerprint())
    );
}
