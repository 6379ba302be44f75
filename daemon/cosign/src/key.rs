//! Keys: PEM SubjectPublicKeyInfo public keys (ECDSA P-256 or Ed25519)
//! that verify, and PKCS#8 private keys that sign.

use std::fmt;

use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

use crate::der::{self, Reader};
use crate::error::KeyError;
use crate::pem;

/// DER contents of the OID id-ecPublicKey (1.2.840.10045.2.1).
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// DER contents of the OID prime256v1 (1.2.840.10045.3.1.7).
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// DER contents of the OID id-Ed25519 (1.3.101.112).
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
/// The SPKI DER before a P-256 uncompressed point (fingerprints of keys
/// we only hold as a private key).
const P256_SPKI_PREFIX: &[u8] = &[
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
/// The SPKI DER before a raw Ed25519 key.
const ED25519_SPKI_PREFIX: &[u8] = &[
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// Which signature scheme a key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// ECDSA on P-256 with SHA-256, ASN.1 DER signatures.
    EcdsaP256,
    /// Ed25519 over the message itself.
    Ed25519,
}

/// A public key allowed to sign.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    algorithm: Algorithm,
    /// The key as ring takes it: the uncompressed point, or 32 raw bytes.
    raw: Vec<u8>,
    /// The whole SubjectPublicKeyInfo DER (the fingerprint is over it).
    spki: Vec<u8>,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({:?}, {})", self.algorithm, self.fingerprint())
    }
}

impl PublicKey {
    /// Parse a PEM `PUBLIC KEY` block (what `openssl pkey -pubout` and
    /// `cosign generate-key-pair` write).
    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        Self::from_spki(&pem::decode(text, "PUBLIC KEY")?)
    }

    /// Parse SubjectPublicKeyInfo DER.
    pub fn from_spki(spki: &[u8]) -> Result<Self, KeyError> {
        let mut outer = Reader::new(spki);
        let mut info = Reader::new(outer.expect(der::SEQUENCE)?);
        if !outer.is_empty() {
            return Err(KeyError::Der("bytes after the key".to_owned()));
        }
        let mut alg = Reader::new(info.expect(der::SEQUENCE)?);
        let bits = info.expect(der::BIT_STRING)?;
        if !info.is_empty() {
            return Err(KeyError::Der("extra fields in the key info".to_owned()));
        }
        let Some((&0, key)) = bits.split_first() else {
            return Err(KeyError::Der("key BIT STRING has unused bits".to_owned()));
        };
        let oid = alg.expect(der::OID)?;
        let algorithm = if oid == OID_EC_PUBLIC_KEY {
            let curve = alg.expect(der::OID)?;
            if curve != OID_P256 {
                return Err(KeyError::Unsupported(format!(
                    "EC key on curve OID {}",
                    hex(curve)
                )));
            }
            if key.len() != 65 || key.first() != Some(&0x04) {
                return Err(KeyError::Rejected(
                    "a P-256 key must be a 65-byte uncompressed point".to_owned(),
                ));
            }
            Algorithm::EcdsaP256
        } else if oid == OID_ED25519 {
            if key.len() != 32 {
                return Err(KeyError::Rejected(
                    "an Ed25519 key must be 32 bytes".to_owned(),
                ));
            }
            Algorithm::Ed25519
        } else {
            return Err(KeyError::Unsupported(format!("algorithm OID {}", hex(oid))));
        };
        if !alg.is_empty() {
            return Err(KeyError::Der("extra algorithm parameters".to_owned()));
        }
        Ok(Self {
            algorithm,
            raw: key.to_vec(),
            spki: spki.to_vec(),
        })
    }

    /// The scheme this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// First 16 hex digits of the sha256 of the SPKI DER: what logs,
    /// errors and job notes call the key.
    pub fn fingerprint(&self) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, &self.spki);
        let mut s = hex(digest.as_ref());
        s.truncate(16);
        s
    }

    /// Whether `signature` is this key's signature over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let alg: &dyn signature::VerificationAlgorithm = match self.algorithm {
            Algorithm::EcdsaP256 => &signature::ECDSA_P256_SHA256_ASN1,
            Algorithm::Ed25519 => &signature::ED25519,
        };
        UnparsedPublicKey::new(alg, &self.raw)
            .verify(message, signature)
            .is_ok()
    }
}

/// A private key that signs (PKCS#8, unencrypted).
pub enum SigningKey {
    /// ECDSA P-256.
    EcdsaP256(EcdsaKeyPair),
    /// Ed25519.
    Ed25519(Ed25519KeyPair),
}

impl fmt::Debug for SigningKey {
    // Never print key material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({})", self.public().fingerprint())
    }
}

impl SigningKey {
    /// Parse a PEM `PRIVATE KEY` block (`openssl genpkey`'s output).
    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        let der = pem::decode(text, "PRIVATE KEY")?;
        let rng = SystemRandom::new();
        let ec = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &der, &rng);
        match ec {
            Ok(pair) => Ok(Self::EcdsaP256(pair)),
            Err(ec_err) => Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
                .map(Self::Ed25519)
                .map_err(|ed_err| {
                    KeyError::Rejected(format!(
                        "neither a P-256 ({ec_err}) nor an Ed25519 ({ed_err}) PKCS#8 key"
                    ))
                }),
        }
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        let (algorithm, prefix, raw) = match self {
            Self::EcdsaP256(pair) => (
                Algorithm::EcdsaP256,
                P256_SPKI_PREFIX,
                pair.public_key().as_ref(),
            ),
            Self::Ed25519(pair) => (
                Algorithm::Ed25519,
                ED25519_SPKI_PREFIX,
                pair.public_key().as_ref(),
            ),
        };
        let mut spki = prefix.to_vec();
        spki.extend_from_slice(raw);
        PublicKey {
            algorithm,
            raw: raw.to_vec(),
            spki,
        }
    }

    /// Sign `message` (ASN.1 DER ECDSA, or raw Ed25519).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match self {
            Self::EcdsaP256(pair) => pair
                .sign(&SystemRandom::new(), message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|e| KeyError::Rejected(format!("signing failed: {e}"))),
            Self::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::Ed25519KeyPair;

    fn spki(prefix: &[u8], key: &[u8]) -> Vec<u8> {
        let mut v = prefix.to_vec();
        v.extend_from_slice(key);
        v
    }

    fn ed25519_pair() -> SigningKey {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        SigningKey::Ed25519(Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap())
    }

    fn p256_pair() -> SigningKey {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_ASN1_SIGNING;
        let doc = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        SigningKey::EcdsaP256(EcdsaKeyPair::from_pkcs8(alg, doc.as_ref(), &rng).unwrap())
    }

    #[test]
    fn signs_and_verifies_with_both_algorithms() {
        for pair in [p256_pair(), ed25519_pair()] {
            let public = pair.public();
            // The SPKI we build for the private key parses back the same.
            assert_eq!(PublicKey::from_spki(&public.spki).unwrap(), public);
            let sig = pair.sign(b"payload").unwrap();
            assert!(public.verify(b"payload", &sig));
            assert!(!public.verify(b"payloaD", &sig));
            assert_eq!(public.fingerprint().len(), 16);
        }
        assert!(
            !p256_pair()
                .public()
                .verify(b"x", &p256_pair().sign(b"x").unwrap())
        );
    }

    #[test]
    fn refuses_wrong_oids_and_shapes() {
        let point = {
            let mut p = vec![4u8];
            p.extend([1u8; 64]);
            p
        };
        assert_eq!(
            PublicKey::from_spki(&spki(P256_SPKI_PREFIX, &point))
                .unwrap()
                .algorithm(),
            Algorithm::EcdsaP256
        );
        // P-384 curve OID (1.3.132.0.34) in place of prime256v1.
        let mut p384 = spki(P256_SPKI_PREFIX, &point);
        p384.splice(13..23, [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22]);
        p384[1] -= 3;
        p384[3] -= 3;
        let err = PublicKey::from_spki(&p384).unwrap_err();
        assert!(matches!(err, KeyError::Unsupported(_)), "{err}");
        // RSA's OID.
        let rsa = [
            0x30, 0x10, 0x30, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01,
            0x01, 0x03, 0x01, 0x00,
        ];
        let err = PublicKey::from_spki(&rsa).unwrap_err();
        assert!(matches!(err, KeyError::Unsupported(_)), "{err}");
        // Wrong sizes, compressed point, unused bits, trailing bytes.
        let short = spki(ED25519_SPKI_PREFIX, &[1u8; 31]);
        assert!(PublicKey::from_spki(&short).is_err());
        let mut compressed = point.clone();
        compressed[0] = 2;
        assert!(PublicKey::from_spki(&spki(P256_SPKI_PREFIX, &compressed)).is_err());
        let mut unused = spki(ED25519_SPKI_PREFIX, &[1u8; 32]);
        unused[11] = 1;
        assert!(PublicKey::from_spki(&unused).is_err());
        let mut trailing = spki(ED25519_SPKI_PREFIX, &[1u8; 32]);
        trailing.push(0);
        assert!(PublicKey::from_spki(&trailing).is_err());
    }

    #[test]
    fn truncations_and_huge_lengths_never_panic() {
        let good = spki(ED25519_SPKI_PREFIX, &[9u8; 32]);
        assert!(PublicKey::from_spki(&good).is_ok());
        for n in 0..good.len() {
            assert!(PublicKey::from_spki(&good[..n]).is_err(), "prefix {n}");
        }
        let huge = [0x30, 0x84, 0x7f, 0xff, 0xff, 0xff, 0x30, 0x00];
        assert!(PublicKey::from_spki(&huge).is_err());
    }

    #[test]
    fn private_key_pem_errors_are_clear() {
        let err = SigningKey::from_pem("nope").unwrap_err();
        assert!(err.to_string().contains("PRIVATE KEY"), "{err}");
        let junk = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(matches!(
            SigningKey::from_pem(junk).unwrap_err(),
            KeyError::Rejected(_)
        ));
    }
}
