//! sha256 as the store spells it: digests of byte strings and the
//! canonical hex form. The loop over files and readers is `bty_dio::sha256`.

use bty_dio::to_hex;
use sha2::{Digest, Sha256};

/// Whether `s` is a sha256 in bty's canonical spelling: 64 lowercase hex.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// sha256 of an in-memory byte string, as lowercase hex.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    to_hex(&Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn known_vectors() {
        assert_eq!(sha256_bytes(b""), EMPTY);
        assert_eq!(
            sha256_bytes(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn canonical_spelling() {
        assert!(is_sha256_hex(EMPTY));
        for bad in [
            &EMPTY[1..],
            &EMPTY.to_uppercase(),
            &format!("{}g", &EMPTY[1..]),
            "",
        ] {
            assert!(!is_sha256_hex(bad), "{bad}");
        }
    }
}
