//! `[[trust]]`: which `oras://` sources need a cosign signature and by
//! which keys. Keys are read and parsed here, at start-up, so a missing
//! or bad key file stops btyd instead of failing pulls later.

use std::io::Read;
use std::path::{Path, PathBuf};

use bty_cosign::{MAX_PEM_BYTES, PublicKey};
use bty_oci::TrustRule;
use serde::Deserialize;

use super::ConfigError;

/// A `[[trust]]` table as written.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrustSection {
    /// Prefix of the canonical `oras://` source the rule covers.
    #[serde(rename = "match")]
    pub prefix: String,
    /// What is required: `"signed"` (the only policy so far).
    pub require: String,
    /// PEM public key files (P-256 or Ed25519).
    pub keys: Vec<PathBuf>,
}

impl TrustSection {
    /// Check the rule and load its keys.
    pub(crate) fn load(&self) -> Result<TrustRule, ConfigError> {
        if !self.prefix.starts_with("oras://") || self.prefix.len() <= "oras://".len() {
            return Err(ConfigError::Invalid {
                key: "trust.match",
                value: self.prefix.clone(),
                why: "must be a prefix of oras:// sources, starting oras://<host>",
            });
        }
        if self.require != "signed" {
            return Err(ConfigError::Invalid {
                key: "trust.require",
                value: self.require.clone(),
                why: "the only policy is \"signed\"",
            });
        }
        if self.keys.is_empty() {
            return Err(ConfigError::Invalid {
                key: "trust.keys",
                value: String::new(),
                why: "a rule needs at least one public key file",
            });
        }
        let keys = self
            .keys
            .iter()
            .map(|path| {
                read_key(path).map_err(|reason| ConfigError::TrustKey {
                    rule: self.prefix.clone(),
                    path: path.clone(),
                    reason,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(TrustRule {
            prefix: self.prefix.clone(),
            keys,
        })
    }
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
