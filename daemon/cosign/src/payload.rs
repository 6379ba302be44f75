//! The simple-signing payload cosign signs: which manifest digest, in
//! which repository, and the fixed type string.

use serde::Deserialize;
use serde_json::json;

use crate::error::SignatureError;

/// `critical.type` of every cosign signature payload.
pub const PAYLOAD_TYPE: &str = "cosign container image signature";

/// The payload cosign writes for `digest` pushed to `docker_reference`
/// (`host[:port]/repository`, no tag). serde_json sorts keys, which is
/// the order cosign writes them in too.
pub fn payload(docker_reference: &str, digest: &str) -> Vec<u8> {
    json!({
        "critical": {
            "identity": { "docker-reference": docker_reference },
            "image": { "docker-manifest-digest": digest },
            "type": PAYLOAD_TYPE,
        },
        "optional": null,
    })
    .to_string()
    .into_bytes()
}

#[derive(Deserialize)]
struct Payload {
    critical: Critical,
}

#[derive(Deserialize)]
struct Critical {
    #[serde(rename = "type")]
    kind: String,
    image: Image,
}

#[derive(Deserialize)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    digest: String,
}

/// Check a (signature-verified) payload: the cosign type and the digest
/// of the manifest being pulled. The identity is not checked, as
/// `cosign verify` does not by default: a signature is for content.
pub fn check_payload(bytes: &[u8], wanted_digest: &str) -> Result<(), SignatureError> {
    let parsed: Payload = serde_json::from_slice(bytes).map_err(|e| {
        SignatureError::Malformed(format!("payload is not simple-signing JSON: {e}"))
    })?;
    if parsed.critical.kind != PAYLOAD_TYPE {
        return Err(SignatureError::WrongType(parsed.critical.kind));
    }
    if parsed.critical.image.digest != wanted_digest {
        return Err(SignatureError::OtherDigest {
            named: parsed.critical.image.digest,
            wanted: wanted_digest.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const E: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn writes_what_cosign_writes() {
        let p = String::from_utf8(payload("r.example:5000/a/b", D)).unwrap();
        assert_eq!(
            p,
            format!(
                "{{\"critical\":{{\"identity\":{{\"docker-reference\":\"r.example:5000/a/b\"}},\
                 \"image\":{{\"docker-manifest-digest\":\"{D}\"}},\
                 \"type\":\"cosign container image signature\"}},\"optional\":null}}"
            )
        );
        assert_eq!(check_payload(p.as_bytes(), D), Ok(()));
    }

    #[test]
    fn refuses_other_digests_types_and_junk() {
        let p = payload("h/r", D);
        assert_eq!(
            check_payload(&p, E),
            Err(SignatureError::OtherDigest {
                named: D.to_owned(),
                wanted: E.to_owned()
            })
        );
        let other_type = String::from_utf8(p)
            .unwrap()
            .replace(PAYLOAD_TYPE, "atomic container signature");
        assert!(matches!(
            check_payload(other_type.as_bytes(), D),
            Err(SignatureError::WrongType(_))
        ));
        for junk in [
            &b""[..],
            b"null",
            b"[]",
            b"{\"critical\":{}}",
            b"{\"critical\":{\"type\":1}}",
            &[0xff, 0xfe, 0x00],
        ] {
            assert!(
                matches!(check_payload(junk, D), Err(SignatureError::Malformed(_))),
                "{junk:?}"
            );
        }
        // Deep nesting is refused by the parser's depth limit, not a crash.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(check_payload(deep.as_bytes(), D).is_err());
    }
}
