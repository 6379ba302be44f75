//! File names in the image root: cached-download names (storage format v1),
//! the reserved names bty owns, and validation of operator-given bare file
//! names (uploads, hash requests).

use thiserror::Error;

/// The storage marker file at the top of the image root.
pub const MARKER_FILE: &str = ".bty-storage.json";
/// Suffix of sha256 sidecar files.
pub const SIDECAR_SUFFIX: &str = ".sha256";
/// Suffix of in-progress downloads and uploads.
pub const PARTIAL_SUFFIX: &str = ".partial";
/// Prefix of cached catalog downloads.
pub const CACHE_PREFIX: &str = "catalog-";
/// Number of hex digits of the ref kept in a cached file name.
pub const REF_PREFIX_LEN: usize = 12;

/// Why an operator-given file name was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    /// Empty name.
    #[error("invalid name {0:?}: must not be empty")]
    Empty(String),
    /// `.` or `..`, or a path separator / NUL inside.
    #[error("invalid name {0:?}: must be a bare file name (no '/', '\\', NUL, '.' or '..')")]
    NotBare(String),
    /// Control characters (newlines, escapes) inside.
    #[error("invalid name {0:?}: must not contain control characters")]
    Control(String),
    /// A name bty itself owns in the image root.
    #[error("invalid name {0:?}: reserved for bty's own files ({1})")]
    Reserved(String, &'static str),
    /// Longer than a Linux file name may be.
    #[error("invalid name {0:?}: longer than 255 bytes")]
    TooLong(String),
}

/// `slug(name)`: lower-case, every run of characters outside `[a-z0-9_]`
/// becomes one `-`, no leading/trailing `-`; empty → `image`.
pub fn slug(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for ch in name.chars().flat_map(char::to_lowercase) {
        if ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_' {
            out.push(ch);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        "image".to_owned()
    } else {
        out
    }
}

/// `catalog-<ref[:12]>-<slug(name)>.<ext>` where ext is the format without
/// leading dots, or `img` when the format is unknown.
pub fn cache_file_name(image_ref: &str, name: &str, format: Option<&str>) -> String {
    let prefix: String = image_ref.chars().take(REF_PREFIX_LEN).collect();
    // The format becomes an extension: anything but a plain format id
    // (e.g. "img/../x") falls back to `img`, so the name stays bare.
    let ext = format
        .filter(|f| crate::catalog_file::is_format_id(f))
        .map(|f| f.trim_start_matches('.'))
        .unwrap_or("img");
    format!("{CACHE_PREFIX}{prefix}-{}.{ext}", slug(name))
}

/// The 12-hex ref prefix of a cached file name, recognised by the full
/// grammar (`catalog-` + 12 lowercase hex + `-` + something), not the prefix
/// alone: an operator file called `catalog-foo.img` is not a cache file.
pub fn cache_ref_prefix(file_name: &str) -> Option<&str> {
    let rest = file_name.strip_prefix(CACHE_PREFIX)?;
    let prefix = rest.get(..REF_PREFIX_LEN)?;
    let tail = rest.get(REF_PREFIX_LEN..)?;
    let is_hex = prefix
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    (is_hex && tail.len() > 1 && tail.starts_with('-')).then_some(prefix)
}

/// Whether `file_name` is a cached catalog download.
pub fn is_cache_file_name(file_name: &str) -> bool {
    cache_ref_prefix(file_name).is_some()
}

/// Validate a bare file name an operator gives for a file in the image root
/// (upload target, hash request). Refuses traversal and bty's own names.
pub fn validate_image_file_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty(name.to_owned()));
    }
    if name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
        return Err(NameError::NotBare(name.to_owned()));
    }
    if name.chars().any(char::is_control) {
        return Err(NameError::Control(name.to_owned()));
    }
    if name.len() > 255 {
        return Err(NameError::TooLong(name.to_owned()));
    }
    let reserved = if name == MARKER_FILE {
        Some("storage marker")
    } else if name.ends_with(SIDECAR_SUFFIX) {
        Some("sha256 sidecar")
    } else if name.ends_with(crate::signed::SIGNED_SUFFIX) {
        Some("signer record")
    } else if name.ends_with(PARTIAL_SUFFIX) {
        Some("partial transfer")
    } else if is_cache_file_name(name) {
        Some("cached catalog download")
    } else if name.starts_with('.') {
        Some("hidden temp file")
    } else {
        None
    };
    match reserved {
        Some(why) => Err(NameError::Reserved(name.to_owned(), why)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_table() {
        for (name, want) in [
            (
                "nosi debian-sysdev (x86_64, rolling)",
                "nosi-debian-sysdev-x86_64-rolling",
            ),
            ("My.Image.img.gz", "my-image-img-gz"),
            ("foo_bar--baz", "foo_bar-baz"),
            ("ÄÖÜ", "image"),
            ("", "image"),
            ("--x--", "x"),
            ("Ubuntu 24.04", "ubuntu-24-04"),
        ] {
            assert_eq!(slug(name), want, "slug({name:?})");
        }
    }

    #[test]
    fn cache_file_name_matches_upstream_example() {
        let r = "ecfc56475d8b8affa67d7c6d1297b48b8b2f5c5494b45c8d153e56f608037e7c";
        assert_eq!(
            cache_file_name(r, "nosi debian-sysdev (x86_64, rolling)", Some("img.gz")),
            "catalog-ecfc56475d8b-nosi-debian-sysdev-x86_64-rolling.img.gz"
        );
        assert_eq!(cache_file_name(r, "x", None), "catalog-ecfc56475d8b-x.img");
        assert_eq!(
            cache_file_name(r, "x", Some(".qcow2")),
            "catalog-ecfc56475d8b-x.qcow2"
        );
    }

    #[test]
    fn cache_grammar_is_full_not_prefix_only() {
        assert_eq!(
            cache_ref_prefix("catalog-ecfc56475d8b-x.img"),
            Some("ecfc56475d8b")
        );
        for name in [
            "catalog-foo.img",
            "catalog-ECFC56475D8B-x.img",
            "catalog-ecfc56475d8b.img",
            "catalog-ecfc56475d8b-",
            "catalog-ecfc5647-x.img",
            "xcatalog-ecfc56475d8b-x.img",
        ] {
            assert_eq!(cache_ref_prefix(name), None, "{name}");
        }
    }

    #[test]
    fn validates_operator_names() {
        assert!(validate_image_file_name("debian.img.gz").is_ok());
        assert!(validate_image_file_name("catalog-foo.img").is_ok());
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "../x",
            "a\\b",
            "a\0b",
            ".bty-storage.json",
        ] {
            assert!(validate_image_file_name(bad).is_err(), "{bad:?}");
        }
        for reserved in [
            "x.img.sha256",
            "x.img.partial",
            "catalog-ecfc56475d8b-x.img",
            ".hidden",
        ] {
            assert!(
                matches!(
                    validate_image_file_name(reserved),
                    Err(NameError::Reserved(..))
                ),
                "{reserved}"
            );
        }
        assert!(matches!(
            validate_image_file_name(&"a".repeat(256)),
            Err(NameError::TooLong(_))
        ));
    }
}
