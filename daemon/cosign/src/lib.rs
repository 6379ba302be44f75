//! bty-cosign: signatures in cosign's key-based layout, without network.
//!
//! - `der`, `pem`: the small readers keys need
//! - [`key`]: [`PublicKey`] (verify) and [`SigningKey`] (sign)
//! - [`payload`]: the simple-signing payload and its check
//! - [`layout`]: the `.sig` tag, signature manifest and config
//!
//! Registry traffic lives in bty-oci; this crate only turns bytes into
//! verdicts, so it is shared by btyd (verify) and btyctl (sign).

#![warn(missing_docs)]

mod der;
pub mod error;
pub mod key;
pub mod layout;
pub mod payload;
mod pem;

pub use error::{KeyError, SignatureError};
pub use key::{Algorithm, PublicKey, SigningKey};
pub use pem::MAX_PEM_BYTES;

/// Verify one signature layer: `signature` over `payload` by one of
/// `keys`, then the payload's type and digest. Returns the signer's
/// fingerprint. The signature is checked before the payload is trusted.
pub fn verify_layer(
    payload: &[u8],
    signature: &[u8],
    keys: &[PublicKey],
    wanted_digest: &str,
) -> Result<String, SignatureError> {
    let signer = keys
        .iter()
        .find(|k| k.verify(payload, signature))
        .ok_or(SignatureError::BadSignature)?;
    payload::check_payload(payload, wanted_digest)?;
    Ok(signer.fingerprint())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};

    fn key() -> SigningKey {
        let rng = SystemRandom::new();
        let alg = &ECDSA_P256_SHA256_ASN1_SIGNING;
        let doc = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        SigningKey::EcdsaP256(EcdsaKeyPair::from_pkcs8(alg, doc.as_ref(), &rng).unwrap())
    }

    #[test]
    fn verifies_only_good_signatures_for_the_wanted_digest() {
        let d = format!("sha256:{}", "1".repeat(64));
        let e = format!("sha256:{}", "2".repeat(64));
        let (signer, stranger) = (key(), key());
        let keys = [stranger.public(), signer.public()];
        let p = payload::payload("h/r", &d);
        let sig = signer.sign(&p).unwrap();
        assert_eq!(
            verify_layer(&p, &sig, &keys, &d),
            Ok(signer.public().fingerprint())
        );
        // Another digest: a valid signature, but not for this manifest.
        assert!(matches!(
            verify_layer(&p, &sig, &keys, &e),
            Err(SignatureError::OtherDigest { .. })
        ));
        // Another key, tampered payload, garbage signature.
        let other = stranger.sign(&p).unwrap();
        assert_eq!(
            verify_layer(&p, &other, &[signer.public()], &d),
            Err(SignatureError::BadSignature)
        );
        let mut tampered = p.clone();
        tampered[5] ^= 1;
        assert_eq!(
            verify_layer(&tampered, &sig, &keys, &d),
            Err(SignatureError::BadSignature)
        );
        assert_eq!(
            verify_layer(&p, &[0x30, 0x00], &keys, &d),
            Err(SignatureError::BadSignature)
        );
        assert_eq!(
            verify_layer(&p, &sig, &[], &d),
            Err(SignatureError::BadSignature)
        );
    }
}

/// Keys as operators make them: `openssl genpkey` and `openssl pkey -pubout`.
#[cfg(test)]
mod openssl_keys {
    use super::*;
    use std::process::Command;

    fn openssl(args: &[&str]) -> Vec<u8> {
        let out = Command::new("openssl").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{:?}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    #[test]
    fn openssl_p256_and_ed25519_keys_sign_and_verify() {
        let dir = std::env::temp_dir().join(format!("bty-cosign-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, gen_args) in [
            (
                "ec",
                &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"][..],
            ),
            ("ed", &["-algorithm", "ed25519"][..]),
        ] {
            let key = dir.join(format!("{name}.key"));
            let key = key.to_str().unwrap();
            let mut args = vec!["genpkey"];
            args.extend(gen_args);
            args.extend(["-out", key]);
            openssl(&args);
            let public = openssl(&["pkey", "-in", key, "-pubout"]);
            let public = PublicKey::from_pem(std::str::from_utf8(&public).unwrap()).unwrap();
            let signer = SigningKey::from_pem(&std::fs::read_to_string(key).unwrap()).unwrap();
            assert_eq!(signer.public(), public, "{name}");
            let d = format!("sha256:{}", "3".repeat(64));
            let p = payload::payload("h/r", &d);
            let sig = signer.sign(&p).unwrap();
            assert_eq!(
                verify_layer(&p, &sig, std::slice::from_ref(&public), &d),
                Ok(public.fingerprint())
            );
            // openssl agrees with ring: it verifies the signature we made.
            let (pfile, sfile, kfile) = (dir.join("p"), dir.join("s"), dir.join("k.pub"));
            std::fs::write(&pfile, &p).unwrap();
            std::fs::write(&sfile, &sig).unwrap();
            std::fs::write(&kfile, openssl(&["pkey", "-in", key, "-pubout"])).unwrap();
            let (k, s, p) = (
                kfile.to_str().unwrap(),
                sfile.to_str().unwrap(),
                pfile.to_str().unwrap(),
            );
            let out = if name == "ec" {
                // ECDSA over the payload's sha256, as cosign signs.
                openssl(&["dgst", "-sha256", "-verify", k, "-signature", s, p])
            } else {
                let args = ["pkeyutl", "-verify", "-pubin", "-inkey", k, "-rawin"];
                let mut args = args.to_vec();
                args.extend(["-sigfile", s, "-in", p]);
                openssl(&args)
            };
            let out = String::from_utf8(out).unwrap();
            assert!(out.contains("Verified"), "{name}: {out}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
