//! `[[trust]]`: which sources need a signature and by which keys: cosign
//! signatures by PEM `keys` for `oras://` sources, OpenPGP-signed checksum
//! files by `keyrings` for http(s) sources. Keys are read and parsed here,
//! at start-up, so a missing or bad key file stops btyd instead of failing
//! pulls later.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::actors::downloader::HttpTrustRule;
use bty_cosign::{MAX_PEM_BYTES, PublicKey};
use bty_oci::TrustRule;
use bty_openpgp::{Keyring, MAX_KEYRING_BYTES};
use serde::Deserialize;

use super::ConfigError;

/// A `[[trust]]` table as written.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrustSection {
    /// Prefix of the canonical `oras://` or http(s) source the rule covers.
    #[serde(rename = "match")]
    pub prefix: String,
    /// What is required: `"signed"` (the only policy so far).
    pub require: String,
    /// PEM public key files (P-256 or Ed25519), for `oras://` rules.
    #[serde(default)]
    pub keys: Vec<PathBuf>,
    /// OpenPGP public keyring files (binary or armoured), for http(s) rules.
    #[serde(default)]
    pub keyrings: Vec<PathBuf>,
}

/// A rule with its keys loaded.
#[derive(Debug)]
pub(crate) enum LoadedRule {
    /// Over `oras://` sources.
    Oras(TrustRule),
    /// Over http(s) sources.
    Http(HttpTrustRule),
}

impl TrustSection {
    /// Check the rule and load its keys.
    pub(crate) fn load(&self) -> Result<LoadedRule, ConfigError> {
        let lower = self.prefix.to_ascii_lowercase();
        let http_scheme = ["https://", "http://"]
            .into_iter()
            .find(|s| lower.starts_with(s));
        if let Some(scheme) = http_scheme {
            return self.load_http(scheme).map(LoadedRule::Http);
        }
        if !self.prefix.starts_with("oras://") || self.prefix.len() <= "oras://".len() {
            return Err(ConfigError::Invalid {
                key: "trust.match",
                value: self.prefix.clone(),
                why: "must be a prefix of oras:// or http(s):// sources, starting with the scheme and a host",
            });
        }
        self.check_require()?;
        self.only_files(
            (
                "trust.keys",
                &self.keys,
                "a rule needs at least one public key file",
            ),
            (
                "trust.keyrings",
                &self.keyrings,
                "keyrings (OpenPGP) are for http(s) rules; an oras:// rule takes keys (PEM)",
            ),
        )?;
        let keys = self.load_files(&self.keys, read_key)?;
        Ok(LoadedRule::Oras(TrustRule {
            prefix: canonical_oras_prefix(&self.prefix),
            keys,
        }))
    }

    /// An http(s) rule: OpenPGP keyrings that sign `sha_url` files.
    fn load_http(&self, scheme: &str) -> Result<HttpTrustRule, ConfigError> {
        // Sources are compared in canonical form (lowercase scheme and
        // host), so the prefix is canonicalised the same way.
        let prefix = match bty_store::canon::canonicalise_src(&self.prefix) {
            Ok(p) if self.prefix.len() > scheme.len() => p,
            _ => {
                return Err(ConfigError::Invalid {
                    key: "trust.match",
                    value: self.prefix.clone(),
                    why: "must be an http(s) URL prefix with a host",
                });
            }
        };
        self.check_require()?;
        self.only_files(
            (
                "trust.keyrings",
                &self.keyrings,
                "an http(s) rule needs at least one OpenPGP keyring file",
            ),
            (
                "trust.keys",
                &self.keys,
                "keys (PEM, cosign) are for oras:// rules; an http(s) rule takes keyrings (OpenPGP)",
            ),
        )?;
        let keyrings = self.load_files(&self.keyrings, read_keyring)?;
        Ok(HttpTrustRule { prefix, keyrings })
    }

    fn check_require(&self) -> Result<(), ConfigError> {
        if self.require == "signed" {
            return Ok(());
        }
        Err(ConfigError::Invalid {
            key: "trust.require",
            value: self.require.clone(),
            why: "the only policy is \"signed\"",
        })
    }

    /// The rule's own kind of key file is given, the other kind is not:
    /// each `(key, files, why)` names the setting, what was given and what
    /// to say when it is wrong.
    fn only_files(
        &self,
        own: (&'static str, &[PathBuf], &'static str),
        other: (&'static str, &[PathBuf], &'static str),
    ) -> Result<(), ConfigError> {
        if !other.1.is_empty() {
            return Err(ConfigError::Invalid {
                key: other.0,
                value: self.prefix.clone(),
                why: other.2,
            });
        }
        if own.1.is_empty() {
            return Err(ConfigError::Invalid {
                key: own.0,
                value: String::new(),
                why: own.2,
            });
        }
        Ok(())
    }

    /// Read every file with `read`; the first failure names the rule and
    /// the file.
    fn load_files<T>(
        &self,
        paths: &[PathBuf],
        read: fn(&Path) -> Result<T, String>,
    ) -> Result<Vec<T>, ConfigError> {
        paths
            .iter()
            .map(|path| {
                read(path).map_err(|reason| ConfigError::TrustKey {
                    rule: self.prefix.clone(),
                    path: path.clone(),
                    reason,
                })
            })
            .collect()
    }
}

/// Read and parse one OpenPGP keyring, capped.
fn read_keyring(path: &Path) -> Result<Keyring, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(MAX_KEYRING_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() > MAX_KEYRING_BYTES {
        return Err(format!("larger than {MAX_KEYRING_BYTES} bytes"));
    }
    let ring = Keyring::parse(&bytes).map_err(|e| e.to_string())?;
    tracing::info!(keyring = %path.display(), fingerprints = ?ring.fingerprints(), "loaded trust keyring");
    Ok(ring)
}

/// An `oras://` prefix in the form sources are compared in: registry and
/// repository lowercase (as `canonicalise_src` writes them), a tag left as
/// written. Without this, `oras://Registry.lab/images/` would match no
/// canonical source, and the rule would silently require nothing.
fn canonical_oras_prefix(prefix: &str) -> String {
    let body = prefix.strip_prefix("oras://").unwrap_or(prefix);
    let last_segment = body.rfind('/').map_or(0, |i| i + 1);
    // Only the last segment's `:` or `@` starts a tag or digest (an
    // earlier `:` is the registry's port).
    let tag_at = body[last_segment..]
        .find([':', '@'])
        .filter(|_| last_segment > 0)
        .map_or(body.len(), |i| last_segment + i);
    format!(
        "oras://{}{}",
        body[..tag_at].to_ascii_lowercase(),
        &body[tag_at..]
    )
}

/// Read and parse one PEM public key, capped (a key file is tiny).
fn read_key(path: &Path) -> Result<PublicKey, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut text = String::new();
    file.take(MAX_PEM_BYTES as u64 + 1)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    let key = PublicKey::from_pem(&text).map_err(|e| e.to_string())?;
    tracing::info!(key = %path.display(), fingerprint = key.fingerprint(), "loaded trust key");
    Ok(key)
}

#[cfg(test)]
mod prefix_tests {
    use super::canonical_oras_prefix;

    #[test]
    fn oras_prefixes_are_compared_lowercase_but_tags_keep_their_case() {
        for (given, canonical) in [
            (
                "oras://Registry.Lab:5000/Images/",
                "oras://registry.lab:5000/images/",
            ),
            ("oras://REG:5000", "oras://reg:5000"),
            ("oras://reg/Team/Disk:V1", "oras://reg/team/disk:V1"),
            (
                "oras://reg/team/disk@sha256:AB",
                "oras://reg/team/disk@sha256:AB",
            ),
            ("oras://reg/", "oras://reg/"),
        ] {
            assert_eq!(canonical_oras_prefix(given), canonical, "{given}");
        }
    }
}
