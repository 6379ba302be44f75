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

/// A sha256 held as its 32 bytes: a ref or a content digest kept in
/// memory for every row of a listing costs half its hex spelling and no
/// allocation. Shown (`Display`) in the canonical 64-lowercase-hex form.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha256Digest(pub [u8; 32]);

/// Byte order, as the derived order of the array would be, but decided by
/// the first eight bytes as one integer in all but one case in 2^64: an
/// ordered set of digests then compares without a `memcmp` call per
/// comparison (the listing's incremental update makes millions).
impl Ord for Sha256Digest {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let word = |d: &Self| {
            let mut first = [0; 8];
            first.copy_from_slice(&d.0[..8]);
            u64::from_be_bytes(first)
        };
        word(self)
            .cmp(&word(other))
            .then_with(|| self.0[8..].cmp(&other.0[8..]))
    }
}

impl PartialOrd for Sha256Digest {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Sha256Digest {
    /// The digest spelled by 64 hex digits, either case; `None` for
    /// anything else.
    pub fn from_hex(hex: &str) -> Option<Self> {
        if hex.len() != 64 {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
            let digit = |c: u8| char::from(c).to_digit(16);
            *byte = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
        }
        Some(Self(bytes))
    }

    /// sha256 of an in-memory byte string.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// The canonical spelling: 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }

    /// Whether this digest's lowercase spelling starts with `prefix`
    /// (no allocation: a search compares it with every row).
    pub fn hex_starts_with(&self, prefix: &str) -> bool {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        prefix.len() <= 64
            && prefix.bytes().enumerate().all(|(i, c)| {
                let byte = self.0[i / 2];
                let nibble = if i % 2 == 0 { byte >> 4 } else { byte & 0x0f };
                DIGITS[usize::from(nibble)] == c
            })
    }

    /// Whether `hex` spells this digest (either case).
    pub fn is_spelled_by(&self, hex: &str) -> bool {
        Self::from_hex(hex) == Some(*self)
    }
}

/// Written as its canonical hex, without a heap allocation (a catalog
/// write serialises one per pinned entry).
impl serde::Serialize for Sha256Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut hex = [0u8; 64];
        for (pair, byte) in hex.chunks_exact_mut(2).zip(self.0) {
            pair[0] = DIGITS[usize::from(byte >> 4)];
            pair[1] = DIGITS[usize::from(byte & 0x0f)];
        }
        match std::str::from_utf8(&hex) {
            Ok(text) => serializer.serialize_str(text),
            Err(e) => Err(serde::ser::Error::custom(e)),
        }
    }
}

impl std::fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sha256Digest({self})")
    }
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
    fn digests_order_as_their_bytes() {
        let mut digests: Vec<Sha256Digest> = (0u8..40).map(|i| Sha256Digest::of(&[i])).collect();
        // Pairs that differ only past the first eight bytes, or not at all.
        let mut tail = digests[0];
        tail.0[31] ^= 1;
        digests.extend([
            digests[0],
            tail,
            Sha256Digest([0; 32]),
            Sha256Digest([0xff; 32]),
        ]);
        for a in &digests {
            for b in &digests {
                assert_eq!(a.cmp(b), a.0.cmp(&b.0), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn known_vectors() {
        assert_eq!(sha256_bytes(b""), EMPTY);
        assert_eq!(
            sha256_bytes(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_digest_reads_either_case_and_shows_lowercase() {
        let digest = Sha256Digest::from_hex(&EMPTY.to_uppercase()).unwrap();
        assert_eq!(digest.to_string(), EMPTY);
        assert_eq!(digest.to_hex(), EMPTY);
        assert_eq!(digest, Sha256Digest::of(b""));
        assert!(digest.is_spelled_by(EMPTY));
        assert_eq!(
            serde_json::to_string(&digest).unwrap(),
            format!("\"{EMPTY}\"")
        );
        assert!(digest.hex_starts_with(""));
        assert!(digest.hex_starts_with("e3b0c4"));
        assert!(digest.hex_starts_with(EMPTY));
        assert!(!digest.hex_starts_with("e3b0c5"));
        assert!(!digest.hex_starts_with("E3"));
        assert!(!digest.hex_starts_with(&format!("{EMPTY}0")));
        for bad in [&EMPTY[1..], &format!("{}g", &EMPTY[1..]), "", "é"] {
            assert_eq!(Sha256Digest::from_hex(bad), None, "{bad}");
        }
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
