//! Error types: why a key could not be used, why a signature was refused.

use thiserror::Error;

/// Why a key file could not be used.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// Not PEM, or not the PEM block we need.
    #[error("not a PEM {wanted} block: {why}")]
    Pem {
        /// The block label expected (`PUBLIC KEY`, `PRIVATE KEY`).
        wanted: &'static str,
        /// What is wrong.
        why: String,
    },
    /// The DER inside is malformed.
    #[error("malformed DER: {0}")]
    Der(String),
    /// A well-formed key of an algorithm or curve we do not verify with.
    #[error("unsupported key algorithm: {0} (P-256 ECDSA and Ed25519 are supported)")]
    Unsupported(String),
    /// The key bytes themselves were refused by the crypto library.
    #[error("key rejected: {0}")]
    Rejected(String),
}

/// Why a signature layer did not verify.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SignatureError {
    /// The signature manifest or a layer is not what cosign writes.
    #[error("malformed signature: {0}")]
    Malformed(String),
    /// No allowed key verifies the signature.
    #[error(
        "the signature verifies with none of the allowed keys (signed by another key, or over other bytes)"
    )]
    BadSignature,
    /// A valid signature over a payload of the wrong type.
    #[error("payload type is {0:?}, not \"cosign container image signature\"")]
    WrongType(String),
    /// A valid signature over a payload for another manifest.
    #[error("payload signs manifest {named}, not {wanted}")]
    OtherDigest {
        /// The digest the payload names.
        named: String,
        /// The digest being pulled.
        wanted: String,
    },
}
