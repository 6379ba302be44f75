//! PEM: one `-----BEGIN <label>-----` block, base64 between the lines.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::error::KeyError;

/// Cap on a key file's PEM text: real keys are a few hundred bytes.
pub const MAX_PEM_BYTES: usize = 16 << 10;

/// The DER inside the first `label` block of `text`.
pub(crate) fn decode(text: &str, label: &'static str) -> Result<Vec<u8>, KeyError> {
    let err = |why: String| KeyError::Pem { wanted: label, why };
    if text.len() > MAX_PEM_BYTES {
        return Err(err(format!("larger than {MAX_PEM_BYTES} bytes")));
    }
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text
        .find(&begin)
        .ok_or_else(|| err(format!("no {begin} line")))?
        + begin.len();
    let len = text[start..]
        .find(&end)
        .ok_or_else(|| err(format!("no {end} line")))?;
    let body: String = text[start..start + len]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    if body.contains(':') {
        return Err(err("encrypted or headered PEM is not supported".to_owned()));
    }
    STANDARD
        .decode(body)
        .map_err(|e| err(format!("bad base64: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_refuses() {
        let ok = "junk\n-----BEGIN PUBLIC KEY-----\nAAEC\nAw==\n-----END PUBLIC KEY-----\n";
        assert_eq!(decode(ok, "PUBLIC KEY").unwrap(), vec![0, 1, 2, 3]);
        for bad in [
            "",
            "-----BEGIN PUBLIC KEY-----\nAAEC",
            "-----BEGIN PRIVATE KEY-----\nAAEC\n-----END PRIVATE KEY-----",
            "-----BEGIN PUBLIC KEY-----\n!!\n-----END PUBLIC KEY-----",
            "-----BEGIN PUBLIC KEY-----\nProc-Type: 4,ENCRYPTED\n-----END PUBLIC KEY-----",
        ] {
            assert!(decode(bad, "PUBLIC KEY").is_err(), "{bad:?}");
        }
        let huge = "A".repeat(MAX_PEM_BYTES + 1);
        assert!(decode(&huge, "PUBLIC KEY").is_err());
    }
}
