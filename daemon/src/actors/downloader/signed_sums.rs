//! `[[trust]]` rules for http(s) sources: a matching source must be pinned
//! from a `sha_url` whose detached OpenPGP signature (`<sha_url>.gpg`,
//! `.sign` or `.asc`, the first that exists) verifies with one of the
//! rule's keyrings, and the pin must be the digest that signed file lists
//! for the image. Checked at add time and before every transfer, beside the
//! `oras://` cosign check, so an entry pinned before the rule existed (or
//! imported with a pin) is refused until it verifies.

use bty_fetch::FetchError;
use bty_openpgp::{Keyring, MAX_SIGNATURE_BYTES, PgpError, verify_detached};
use bty_store::canon::{SrcError, canonicalise_src, url_file_name};
use bty_store::sums::{MAX_SUMS_BYTES, SumsError, digest_for};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

/// The longest one checksum or signature file fetch may take.
const DOCUMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a detached signature is looked for, after the sums URL.
const SIGNATURE_SUFFIXES: [&str; 3] = [".gpg", ".sign", ".asc"];

/// One `[[trust]]` rule over http(s) sources, keyrings loaded.
#[derive(Debug, Clone)]
pub struct HttpTrustRule {
    /// Prefix of the canonical source URL the rule covers.
    pub prefix: String,
    /// The keyrings, one per file.
    pub keyrings: Vec<Keyring>,
}

/// Rules are equal when they cover the same prefix with the same keys
/// (config comparisons; keys compare by fingerprint).
impl PartialEq for HttpTrustRule {
    fn eq(&self, other: &Self) -> bool {
        self.prefix == other.prefix && self.fingerprints() == other.fingerprints()
    }
}

impl HttpTrustRule {
    fn fingerprints(&self) -> String {
        let all: Vec<String> = self
            .keyrings
            .iter()
            .flat_map(Keyring::fingerprints)
            .collect();
        all.join(", ")
    }
}

/// Every http(s) `[[trust]]` rule, in config order (the first match decides).
#[derive(Debug, Clone, Default)]
pub struct HttpTrust(Arc<Vec<HttpTrustRule>>);

impl HttpTrust {
    /// The rules, in config order.
    pub fn new(rules: Vec<HttpTrustRule>) -> Self {
        Self(Arc::new(rules))
    }

    fn rule_for(&self, src: &str) -> Option<&HttpTrustRule> {
        self.0.iter().find(|r| src.starts_with(&r.prefix))
    }
}

/// Why an http(s) source a rule covers is refused.
#[derive(Debug, Error)]
pub enum SignedSumsError {
    /// The entry has no `sha_url` to verify.
    #[error(
        "[[trust]] match = {rule:?} requires {src} to be pinned from a signed sha_url, and it has none"
    )]
    NoShaUrl {
        /// The rule's `match`.
        rule: String,
        /// The source.
        src: String,
    },
    /// The entry has no pin.
    #[error("[[trust]] match = {rule:?} requires {src} to be pinned, and it is not")]
    NotPinned {
        /// The rule's `match`.
        rule: String,
        /// The source.
        src: String,
    },
    /// The `sha_url` is not a URL bty fetches.
    #[error("[[trust]] match = {rule:?}: invalid sha_url {sha_url:?}")]
    BadShaUrl {
        /// The rule's `match`.
        rule: String,
        /// The sums URL as given.
        sha_url: String,
        /// Why.
        #[source]
        source: SrcError,
    },
    /// A sums or signature fetch failed (a missing signature is
    /// [`Self::NoSignature`]).
    #[error("[[trust]] match = {rule:?}: fetching {url}")]
    Fetch {
        /// The rule's `match`.
        rule: String,
        /// What was fetched.
        url: String,
        /// Why it failed.
        #[source]
        source: DocumentFetchError,
    },
    /// None of `.gpg`, `.sign`, `.asc` exists next to the sums file.
    #[error(
        "[[trust]] match = {rule:?}: no signature found for {sha_url} (tried .gpg, .sign, .asc; keys {keys})"
    )]
    NoSignature {
        /// The rule's `match`.
        rule: String,
        /// The sums URL.
        sha_url: String,
        /// The keys' fingerprints.
        keys: String,
    },
    /// The signature does not verify with the rule's keys.
    #[error("[[trust]] match = {rule:?}: {signature} over {sha_url}, keys tried {keys}: {reason}")]
    Signature {
        /// The rule's `match`.
        rule: String,
        /// The sums URL.
        sha_url: String,
        /// The signature URL.
        signature: String,
        /// The keys' fingerprints.
        keys: String,
        /// Why (bad signature, unknown key, not a signature).
        reason: PgpError,
    },
    /// The signed file gives no digest for the image.
    #[error("[[trust]] match = {rule:?}: signed {sha_url}: {reason}")]
    Sums {
        /// The rule's `match`.
        rule: String,
        /// The sums URL.
        sha_url: String,
        /// Why.
        reason: SumsError,
    },
    /// The pin is not what the signed file lists.
    #[error(
        "[[trust]] match = {rule:?}: digest mismatch: the entry is pinned to {pinned}, the signed {sha_url} lists {listed}"
    )]
    Mismatch {
        /// The rule's `match`.
        rule: String,
        /// The sums URL.
        sha_url: String,
        /// The entry's pin.
        pinned: String,
        /// What the signed file lists.
        listed: String,
    },
}

/// What a verified check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedDigest {
    /// The digest the signed file lists for the image.
    pub sha256: String,
    /// The signing key's (primary) fingerprint.
    pub signed_by: String,
}

/// The check before a transfer: `None` when no rule covers `src`; the
/// signer when the signed sums list exactly `pinned`.
pub(crate) async fn check_pinned(
    http: &reqwest::Client,
    trust: &HttpTrust,
    src: &str,
    sha_url: Option<&str>,
    pinned: Option<&str>,
) -> Result<Option<String>, SignedSumsError> {
    let Some(rule) = trust.rule_for(src) else {
        return Ok(None);
    };
    let Some(pinned) = pinned else {
        return Err(SignedSumsError::NotPinned {
            rule: rule.prefix.clone(),
            src: src.to_owned(),
        });
    };
    let signed = verified_digest(http, rule, src, sha_url).await?;
    if signed.sha256 != pinned.to_ascii_lowercase() {
        return Err(SignedSumsError::Mismatch {
            rule: rule.prefix.clone(),
            sha_url: sha_url.unwrap_or_default().to_owned(),
            pinned: pinned.to_owned(),
            listed: signed.sha256,
        });
    }
    Ok(Some(signed.signed_by))
}

/// The add-time check: `None` when no rule covers `src`; otherwise the
/// digest the signed sums list for it, and who signed.
pub(crate) async fn check_add(
    http: &reqwest::Client,
    trust: &HttpTrust,
    src: &str,
    sha_url: Option<&str>,
) -> Result<Option<SignedDigest>, SignedSumsError> {
    match trust.rule_for(src) {
        None => Ok(None),
        Some(rule) => verified_digest(http, rule, src, sha_url).await.map(Some),
    }
}

/// Fetch `sha_url` and its signature, verify, and read the image's digest.
/// The signature is checked before the sums file is parsed.
async fn verified_digest(
    http: &reqwest::Client,
    rule: &HttpTrustRule,
    src: &str,
    sha_url: Option<&str>,
) -> Result<SignedDigest, SignedSumsError> {
    let rule_name = || rule.prefix.clone();
    let Some(sha_url) = sha_url else {
        return Err(SignedSumsError::NoShaUrl {
            rule: rule_name(),
            src: src.to_owned(),
        });
    };
    let sums_url = canonicalise_src(sha_url).map_err(|source| SignedSumsError::BadShaUrl {
        rule: rule_name(),
        sha_url: sha_url.chars().take(200).collect(),
        source,
    })?;
    let sums = fetch(http, &sums_url, MAX_SUMS_BYTES)
        .await
        .map_err(|source| SignedSumsError::Fetch {
            rule: rule_name(),
            url: sums_url.clone(),
            source,
        })?;
    let mut found = None;
    for suffix in SIGNATURE_SUFFIXES {
        let url = format!("{sums_url}{suffix}");
        match fetch(http, &url, MAX_SIGNATURE_BYTES).await {
            Ok(bytes) => {
                found = Some((url, bytes));
                break;
            }
            Err(DocumentFetchError::NotFound) => continue,
            Err(source) => {
                return Err(SignedSumsError::Fetch {
                    rule: rule_name(),
                    url,
                    source,
                });
            }
        }
    }
    let Some((signature, bytes)) = found else {
        return Err(SignedSumsError::NoSignature {
            rule: rule_name(),
            sha_url: sums_url,
            keys: rule.fingerprints(),
        });
    };
    let signed_by = verify_detached(&rule.keyrings, &bytes, &sums).map_err(|reason| {
        SignedSumsError::Signature {
            rule: rule_name(),
            sha_url: sums_url.clone(),
            signature,
            keys: rule.fingerprints(),
            reason,
        }
    })?;
    let name = url_file_name(src);
    let sha256 = digest_for(&sums, name.as_deref()).map_err(|reason| SignedSumsError::Sums {
        rule: rule_name(),
        sha_url: sums_url.clone(),
        reason,
    })?;
    tracing::debug!(src, sha_url = %sums_url, signed_by, "signed checksum file verified");
    Ok(SignedDigest { sha256, signed_by })
}

/// Why a sums or signature fetch failed; "not there" is told apart, as
/// the next signature suffix is then tried.
#[derive(Debug, Error)]
pub enum DocumentFetchError {
    /// 404 or 410.
    #[error("not found")]
    NotFound,
    /// No whole answer within the time a small document gets.
    #[error("took longer than {}s", .0.as_secs())]
    TimedOut(std::time::Duration),
    /// Any other failure.
    #[error(transparent)]
    Fetch(FetchError),
}

async fn fetch(
    http: &reqwest::Client,
    url: &str,
    cap: usize,
) -> Result<Vec<u8>, DocumentFetchError> {
    let fetched = tokio::time::timeout(
        DOCUMENT_TIMEOUT,
        bty_fetch::fetch_bytes(http, url, &HeaderMap::new(), cap),
    )
    .await
    .map_err(|_| DocumentFetchError::TimedOut(DOCUMENT_TIMEOUT))?;
    fetched.map_err(|e: FetchError| match e.status() {
        Some(StatusCode::NOT_FOUND | StatusCode::GONE) => DocumentFetchError::NotFound,
        _ => DocumentFetchError::Fetch(e),
    })
}
