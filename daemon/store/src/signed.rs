//! `<name>.signed`: who signed the bytes of a download that passed a
//! `[[trust]]` check, written by the downloader when it lands them and read
//! by the scan. One line, `<sha256> <fingerprint>`.
//!
//! Only btyd writes it, but it sits in the image root, so it is read as
//! untrusted input: opened without following links, capped, and believed
//! only when well-formed and naming the sha256 the file's fresh sidecar
//! holds (bytes replaced since are not claimed as signed).

use std::ffi::OsString;
use std::fs;
use std::io::{self, ErrorKind, Read};
use std::path::{Path, PathBuf};

use crate::atomic::write_atomic;
use crate::digest::is_sha256_hex;
use crate::identity::open_nofollow;

/// The suffix of a signer file.
pub const SIGNED_SUFFIX: &str = ".signed";

/// Longest line read: a sha256, a space, a 64-hex fingerprint, a newline.
const MAX_SIGNED_LEN: u64 = 256;

/// `<file>.signed`.
pub fn signed_path(file: &Path) -> PathBuf {
    let mut s = OsString::from(file.as_os_str());
    s.push(SIGNED_SUFFIX);
    PathBuf::from(s)
}

/// Whether `fingerprint` is one bty prints: 16 to 64 hex digits (cosign
/// key fingerprints are 16, OpenPGP v4 40, v6 64).
pub fn is_fingerprint(fingerprint: &str) -> bool {
    (16..=64).contains(&fingerprint.len()) && fingerprint.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Record that `file`, whose content is `sha256`, was signed by
/// `fingerprint` (atomically).
pub fn write_signed(file: &Path, sha256: &str, fingerprint: &str) -> io::Result<()> {
    let sha = sha256.to_ascii_lowercase();
    if !is_sha256_hex(&sha) || !is_fingerprint(fingerprint) {
        return Err(io::Error::new(
            ErrorKind::InvalidInput,
            format!("not a sha256 and a fingerprint: {sha256:?} {fingerprint:?}"),
        ));
    }
    write_atomic(
        &signed_path(file),
        format!("{sha} {fingerprint}\n").as_bytes(),
    )
}

/// Remove `file`'s signer record, if any.
pub fn remove_signed(file: &Path) -> io::Result<()> {
    match fs::remove_file(signed_path(file)) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The signer recorded for `file`, when the record is well-formed and names
/// `fresh_sha256` (the sha256 of the file's fresh sidecar).
pub fn read_signed(file: &Path, fresh_sha256: Option<&str>) -> Option<String> {
    let fresh = fresh_sha256?;
    let opened = open_nofollow(&signed_path(file)).ok()?;
    if !opened.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    opened.take(MAX_SIGNED_LEN).read_to_string(&mut text).ok()?;
    parse_signed(&text, fresh)
}

/// The fingerprint in a record's text, when it is `<sha> <fingerprint>`
/// for `sha`; as written (cosign's are lowercase, OpenPGP's uppercase).
pub fn parse_signed(text: &str, sha: &str) -> Option<String> {
    let mut words = text.split_whitespace();
    let (recorded, fingerprint) = (words.next()?, words.next()?);
    (words.next().is_none()
        && recorded.eq_ignore_ascii_case(sha)
        && is_sha256_hex(&recorded.to_ascii_lowercase())
        && is_fingerprint(fingerprint))
    .then(|| fingerprint.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn a_record_is_believed_only_for_the_content_it_names() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.img");
        fs::write(&file, b"abc").unwrap();
        write_signed(&file, SHA, "0123456789abcdef").unwrap();
        assert_eq!(
            read_signed(&file, Some(SHA)).as_deref(),
            Some("0123456789abcdef")
        );
        assert_eq!(read_signed(&file, Some(&"0".repeat(64))), None);
        assert_eq!(read_signed(&file, None), None);
        remove_signed(&file).unwrap();
        assert_eq!(read_signed(&file, Some(SHA)), None);
        remove_signed(&file).unwrap();
        assert!(write_signed(&file, SHA, "not hex!").is_err());
        assert!(write_signed(&file, "abc", "0123456789abcdef").is_err());
    }

    #[test]
    fn malformed_and_planted_records_are_ignored() {
        let fp = "A".repeat(40);
        assert_eq!(
            parse_signed(&format!("{SHA} {fp}\n"), SHA),
            Some(fp.clone())
        );
        for bad in [
            String::new(),
            SHA.to_owned(),
            format!("{SHA} {fp} extra"),
            format!("{SHA} short"),
            format!("{SHA} {}", "A".repeat(65)),
            format!("{SHA} <script>alert(1)</script>"),
            format!("{} {fp}", "0".repeat(64)),
        ] {
            assert_eq!(parse_signed(&bad, SHA), None, "{bad}");
        }
        // A link planted in the record's place is not followed.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("b.img");
        let target = dir.path().join("elsewhere");
        fs::write(&target, format!("{SHA} {fp}\n")).unwrap();
        std::os::unix::fs::symlink(&target, signed_path(&file)).unwrap();
        assert_eq!(read_signed(&file, Some(SHA)), None);
    }
}
