//! bty-openpgp: OpenPGP public keyrings and detached signatures, the way
//! distributions sign their `SHA256SUMS` files (`SHA256SUMS.gpg`,
//! `.sign`, `.asc`). Bytes in, verdicts out: no network, no keyservers.
//!
//! The only place bty touches the `pgp` crate, so its types and errors stay
//! behind [`Keyring`], [`verify_detached`] and [`PgpError`].

#![warn(missing_docs)]

use pgp::composed::{Deserializable, DetachedSignature, SignedPublicKey};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::Signature;
use pgp::types::{KeyDetails, VerifyingKey};
use std::io::Cursor;
use thiserror::Error;

/// The most a keyring file may hold (a distribution's keyring is a few
/// dozen KiB; a mistaken path to a large file stops here).
pub const MAX_KEYRING_BYTES: usize = 1 << 20;

/// The most a detached signature file may hold: one signature is well under
/// 1 KiB, a file with a few is still tiny.
pub const MAX_SIGNATURE_BYTES: usize = 64 << 10;

/// Why a keyring or a signature was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PgpError {
    /// Not OpenPGP public key material (binary or ASCII-armoured).
    #[error("not an OpenPGP public keyring: {0}")]
    Keyring(String),
    /// The file parsed but held no public key.
    #[error("the keyring holds no public key")]
    NoKeys,
    /// A key's self-signatures (user IDs, subkey bindings) do not verify.
    #[error("key {fingerprint}: its self-signatures do not verify: {reason}")]
    Binding {
        /// The primary key's fingerprint.
        fingerprint: String,
        /// What the crate reported.
        reason: String,
    },
    /// The signature file is not an OpenPGP detached signature.
    #[error("not an OpenPGP detached signature: {0}")]
    Signature(String),
    /// No signature in the file names one of the keys.
    #[error("unknown key: signed by {issuers}, which is not in the rule's keyrings")]
    UnknownKey {
        /// The issuers the signatures name (key IDs or fingerprints).
        issuers: String,
    },
    /// A signature names one of the keys but does not verify over the data.
    #[error("bad signature by {fingerprint}: {reason}")]
    BadSignature {
        /// The key's (primary) fingerprint.
        fingerprint: String,
        /// What the crate reported.
        reason: String,
    },
}

/// The public keys of one keyring file.
#[derive(Clone)]
pub struct Keyring {
    keys: Vec<SignedPublicKey>,
}

/// Fingerprints only: the key material would flood `--check-config`.
impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("fingerprints", &self.fingerprints())
            .finish()
    }
}

impl Keyring {
    /// Parse a keyring (`gpg --export`, armoured or binary; one or several
    /// keys). Every key's self-signatures must verify, so a tampered
    /// keyring fails when it is loaded rather than when it is used.
    pub fn parse(bytes: &[u8]) -> Result<Self, PgpError> {
        let (keys, _) = SignedPublicKey::from_reader_many(Cursor::new(bytes))
            .map_err(|e| PgpError::Keyring(e.to_string()))?;
        let keys = keys
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| PgpError::Keyring(e.to_string()))?;
        if keys.is_empty() {
            return Err(PgpError::NoKeys);
        }
        for key in &keys {
            key.verify_bindings().map_err(|e| PgpError::Binding {
                fingerprint: fingerprint(key),
                reason: e.to_string(),
            })?;
        }
        Ok(Self { keys })
    }

    /// The primary keys' fingerprints (uppercase hex).
    pub fn fingerprints(&self) -> Vec<String> {
        self.keys.iter().map(fingerprint).collect()
    }
}

/// A primary key's fingerprint, uppercase hex as `gpg` prints it.
fn fingerprint(key: &SignedPublicKey) -> String {
    format!("{:X}", key.fingerprint())
}

/// Verify a detached signature file (armoured or binary, one or several
/// signatures) over `data` with the keys of `keyrings`. Returns the
/// fingerprint of the primary key whose key (or signing subkey) made a
/// signature that verifies.
pub fn verify_detached(
    keyrings: &[Keyring],
    signature: &[u8],
    data: &[u8],
) -> Result<String, PgpError> {
    let (sigs, _) = DetachedSignature::from_reader_many(Cursor::new(signature))
        .map_err(|e| PgpError::Signature(e.to_string()))?;
    let sigs = sigs
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PgpError::Signature(e.to_string()))?;
    if sigs.is_empty() {
        return Err(PgpError::Signature("no signature in the file".to_owned()));
    }
    let mut bad: Option<PgpError> = None;
    for sig in &sigs {
        for key in keyrings.iter().flat_map(|k| &k.keys) {
            match verify_with(key, &sig.signature, data) {
                Some(Ok(())) => return Ok(fingerprint(key)),
                Some(Err(reason)) => {
                    bad.get_or_insert(PgpError::BadSignature {
                        fingerprint: fingerprint(key),
                        reason,
                    });
                }
                None => {}
            }
        }
    }
    Err(bad.unwrap_or_else(|| PgpError::UnknownKey {
        issuers: issuers(&sigs),
    }))
}

/// `None` when neither the primary key nor a subkey is the signature's
/// issuer; otherwise whether it verifies. Subkeys' bindings were checked
/// when the keyring was parsed.
fn verify_with(key: &SignedPublicKey, sig: &Signature, data: &[u8]) -> Option<Result<(), String>> {
    if names(sig, &key.primary_key) {
        return Some(check(sig, &key.primary_key, data));
    }
    key.public_subkeys
        .iter()
        .find(|sub| names(sig, &sub.key))
        .map(|sub| check(sig, &sub.key, data))
}

fn check(sig: &Signature, key: &impl VerifyingKey, data: &[u8]) -> Result<(), String> {
    strong_hash(sig)?;
    sig.verify(key, data).map_err(|e| e.to_string())
}

/// The crate holds classical signatures to no hash strength; a
/// collision-prone hash would let another sums file carry the signature.
fn strong_hash(sig: &Signature) -> Result<(), String> {
    match sig.hash_alg() {
        Some(
            HashAlgorithm::None
            | HashAlgorithm::Md5
            | HashAlgorithm::Sha1
            | HashAlgorithm::Ripemd160,
        )
        | None => Err(format!(
            "weak hash algorithm {} refused",
            sig.hash_alg()
                .map_or_else(|| "unknown".to_owned(), |h| h.to_string())
        )),
        Some(_) => Ok(()),
    }
}

/// Whether `sig` names `key` as its issuer (by key ID or fingerprint).
fn names(sig: &Signature, key: &impl KeyDetails) -> bool {
    sig.issuer_key_id()
        .iter()
        .any(|id| **id == key.legacy_key_id())
        || sig
            .issuer_fingerprint()
            .iter()
            .any(|fp| **fp == key.fingerprint())
}

/// The issuers the signatures name, for an "unknown key" error.
fn issuers(sigs: &[DetachedSignature]) -> String {
    let mut named: Vec<String> = Vec::new();
    for sig in sigs {
        let fps = sig.signature.issuer_fingerprint();
        if fps.is_empty() {
            named.extend(
                sig.signature
                    .issuer_key_id()
                    .iter()
                    .map(|id| format!("key ID {}", hex_upper(id.as_ref()))),
            );
        } else {
            named.extend(fps.iter().map(|fp| format!("{fp:X}")));
        }
    }
    named.dedup();
    if named.is_empty() {
        "no named issuer".to_owned()
    } else {
        named.join(", ")
    }
}

/// Bytes as uppercase hex, as `gpg` prints key IDs.
fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

#[cfg(test)]
mod tests;
