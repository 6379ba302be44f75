//! `oras://host/repo:tag` and `oras://host/repo@sha256:<hex>` references:
//! parsing, validation and the canonical spelling.

use std::fmt;

use thiserror::Error;

/// The scheme prefix, matched case-sensitively here; [`crate::canon`]
/// lower-cases it before calling [`OrasRef::parse`].
const PREFIX: &str = "oras://";
/// OCI caps tags at 128 characters.
const MAX_TAG_LEN: usize = 128;
/// Only sha256 digests are accepted.
const DIGEST_ALGO: &str = "sha256:";

/// Why an `oras://` reference was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OrasRefError {
    /// Does not start with `oras://`.
    #[error("oras reference {0:?} does not start with oras://")]
    NotOras(String),
    /// Nothing after `oras://`.
    #[error("oras reference is empty after oras://")]
    Empty,
    /// The registry host (with optional `:port`) is malformed.
    #[error("oras reference {reference:?}: invalid registry host {host:?}")]
    Host {
        /// The whole reference.
        reference: String,
        /// The host part.
        host: String,
    },
    /// The repository is not `owner/name` in lowercase.
    #[error(
        "oras reference {reference:?}: invalid repository {repository:?} \
         (lowercase [a-z0-9._-] components, at least owner/name)"
    )]
    Repository {
        /// The whole reference.
        reference: String,
        /// The repository part.
        repository: String,
    },
    /// Neither `:tag` nor `@sha256:…` follows the repository.
    #[error("oras reference {0:?} has neither a :tag nor an @sha256: digest")]
    MissingReference(String),
    /// The tag has characters outside `[A-Za-z0-9._-]` or is too long.
    #[error(
        "oras reference {reference:?}: invalid tag {tag:?} ([A-Za-z0-9._-], 1 to 128 characters)"
    )]
    Tag {
        /// The whole reference.
        reference: String,
        /// The tag part.
        tag: String,
    },
    /// The digest is not `sha256:` + 64 lowercase hex.
    #[error(
        "oras reference {reference:?}: invalid digest {digest:?} (expected sha256:<64 lowercase hex>)"
    )]
    Digest {
        /// The whole reference.
        reference: String,
        /// The digest part.
        digest: String,
    },
}

/// What a reference points at inside its repository.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reference {
    /// A (possibly rolling) tag, case kept.
    Tag(String),
    /// An immutable manifest digest, `sha256:<64 lowercase hex>`.
    Digest(String),
}

/// A parsed `oras://` reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrasRef {
    /// Registry host with optional `:port`, as written.
    pub host: String,
    /// Repository path (`owner/name[/…]`), lowercase.
    pub repository: String,
    /// Tag or digest.
    pub reference: Reference,
}

impl OrasRef {
    /// Parse and validate `oras://host[:port]/owner/repo(:tag|@sha256:hex)`.
    ///
    /// The repository must already be lowercase: canonicalisation
    /// ([`crate::canon::canonicalise_src`]) lower-cases host and repository
    /// first, so a mixed-case repository here is a caller error.
    pub fn parse(s: &str) -> Result<OrasRef, OrasRefError> {
        let body = s
            .strip_prefix(PREFIX)
            .ok_or_else(|| OrasRefError::NotOras(s.to_owned()))?;
        if body.is_empty() {
            return Err(OrasRefError::Empty);
        }
        let (host, rest) = body
            .split_once('/')
            .ok_or_else(|| OrasRefError::MissingReference(s.to_owned()))?;
        if !valid_host(host) {
            // A host with userinfo must not echo the password into logs.
            let masked = |text: &str| match text.rsplit_once('@') {
                Some((_, after)) => format!("***@{after}"),
                None => text.to_owned(),
            };
            return Err(OrasRefError::Host {
                reference: format!("{PREFIX}{}", masked(body)),
                host: masked(host),
            });
        }
        // The repository grammar has neither '@' nor ':', so the first of
        // them ends it unambiguously.
        let (repository, reference) = if let Some((repo, digest)) = rest.split_once('@') {
            (repo, parse_digest(s, digest)?)
        } else if let Some((repo, tag)) = rest.split_once(':') {
            (repo, parse_tag(s, tag)?)
        } else {
            return Err(OrasRefError::MissingReference(s.to_owned()));
        };
        if !valid_repository(repository) {
            return Err(OrasRefError::Repository {
                reference: s.to_owned(),
                repository: repository.to_owned(),
            });
        }
        Ok(OrasRef {
            host: host.to_owned(),
            repository: repository.to_owned(),
            reference,
        })
    }

    /// What to ask the registry's manifest endpoint for: the digest when
    /// pinned, else the tag.
    pub fn locator(&self) -> &str {
        match &self.reference {
            Reference::Tag(tag) => tag,
            Reference::Digest(digest) => digest,
        }
    }
}

impl fmt::Display for OrasRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}/{}", self.host, self.repository)?;
        match &self.reference {
            Reference::Tag(tag) => write!(f, ":{tag}"),
            Reference::Digest(digest) => write!(f, "@{digest}"),
        }
    }
}

/// `[a-zA-Z0-9][a-zA-Z0-9.-]*(:port)?` with a port that fits in 16 bits.
fn valid_host(host: &str) -> bool {
    let (name, port) = match host.split_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    let name_ok = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    let port_ok = port.is_none_or(|p| {
        !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok()
    });
    name_ok && port_ok
}

/// Lowercase `[a-z0-9][a-z0-9._-]*` components joined by `/`, at least two.
/// Stricter than upstream's regex, which also let `a//b` and `a/` through:
/// registries refuse those anyway.
fn valid_repository(repo: &str) -> bool {
    let mut components = 0;
    for part in repo.split('/') {
        let ok = part
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && part.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            });
        if !ok {
            return false;
        }
        components += 1;
    }
    components >= 2
}

fn parse_tag(reference: &str, tag: &str) -> Result<Reference, OrasRefError> {
    let ok = !tag.is_empty()
        && tag.len() <= MAX_TAG_LEN
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(Reference::Tag(tag.to_owned()))
    } else {
        Err(OrasRefError::Tag {
            reference: reference.to_owned(),
            tag: tag.to_owned(),
        })
    }
}

fn parse_digest(reference: &str, digest: &str) -> Result<Reference, OrasRefError> {
    let ok = digest.strip_prefix(DIGEST_ALGO).is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    if ok {
        Ok(Reference::Digest(digest.to_owned()))
    } else {
        Err(OrasRefError::Digest {
            reference: reference.to_owned(),
            digest: digest.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn parses_valid_references() {
        let digest = format!("sha256:{HEX}");
        let cases: Vec<(String, &str, &str, Reference)> = vec![
            (
                "oras://ghcr.io/safl/nosi/debian-sysdev:latest".into(),
                "ghcr.io",
                "safl/nosi/debian-sysdev",
                Reference::Tag("latest".into()),
            ),
            (
                "oras://ghcr.io/safl/foo:LATEST".into(),
                "ghcr.io",
                "safl/foo",
                Reference::Tag("LATEST".into()),
            ),
            (
                "oras://localhost:5000/a/b:v1.2_3-rc".into(),
                "localhost:5000",
                "a/b",
                Reference::Tag("v1.2_3-rc".into()),
            ),
            (
                format!("oras://ghcr.io/safl/foo@{digest}"),
                "ghcr.io",
                "safl/foo",
                Reference::Digest(digest.clone()),
            ),
            (
                "oras://GHCR.io/a.b/c_d-e:t".into(),
                "GHCR.io",
                "a.b/c_d-e",
                Reference::Tag("t".into()),
            ),
        ];
        for (input, host, repo, reference) in cases {
            let parsed = OrasRef::parse(&input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(parsed.host, host, "{input}");
            assert_eq!(parsed.repository, repo, "{input}");
            assert_eq!(parsed.reference, reference, "{input}");
            assert_eq!(parsed.to_string(), input, "display round-trips");
        }
    }

    #[test]
    fn locator_is_tag_or_digest() {
        let tag = OrasRef::parse("oras://ghcr.io/a/b:v1").unwrap();
        assert_eq!(tag.locator(), "v1");
        let pinned = OrasRef::parse(&format!("oras://ghcr.io/a/b@sha256:{HEX}")).unwrap();
        assert_eq!(pinned.locator(), format!("sha256:{HEX}"));
    }

    #[test]
    fn rejects_malformed_references() {
        let long_tag = format!("oras://ghcr.io/a/b:{}", "t".repeat(129));
        let upper_digest = format!("oras://ghcr.io/a/b@sha256:{}", HEX.to_uppercase());
        let other_algo = format!("oras://ghcr.io/a/b@sha512:{HEX}");
        type Check = fn(&OrasRefError) -> bool;
        let cases: Vec<(&str, Check)> = vec![
            ("https://ghcr.io/a/b:t", |e| {
                matches!(e, OrasRefError::NotOras(_))
            }),
            ("ORAS://ghcr.io/a/b:t", |e| {
                matches!(e, OrasRefError::NotOras(_))
            }),
            ("oras://", |e| matches!(e, OrasRefError::Empty)),
            ("oras://ghcr.io", |e| {
                matches!(e, OrasRefError::MissingReference(_))
            }),
            ("oras://ghcr.io/a/b", |e| {
                matches!(e, OrasRefError::MissingReference(_))
            }),
            ("oras://ghcr.io/foo:latest", |e| {
                matches!(e, OrasRefError::Repository { .. })
            }),
            ("oras://ghcr.io/Safl/foo:latest", |e| {
                matches!(e, OrasRefError::Repository { .. })
            }),
            ("oras://ghcr.io/a//b:t", |e| {
                matches!(e, OrasRefError::Repository { .. })
            }),
            ("oras://ghcr.io/a/b/:t", |e| {
                matches!(e, OrasRefError::Repository { .. })
            }),
            ("oras://ghcr.io/-a/b:t", |e| {
                matches!(e, OrasRefError::Repository { .. })
            }),
            ("oras://-ghcr.io/a/b:t", |e| {
                matches!(e, OrasRefError::Host { .. })
            }),
            ("oras://gh_cr.io/a/b:t", |e| {
                matches!(e, OrasRefError::Host { .. })
            }),
            ("oras://ghcr.io:/a/b:t", |e| {
                matches!(e, OrasRefError::Host { .. })
            }),
            ("oras://ghcr.io:99999/a/b:t", |e| {
                matches!(e, OrasRefError::Host { .. })
            }),
            ("oras:///a/b:t", |e| matches!(e, OrasRefError::Host { .. })),
            ("oras://ghcr.io/a/b:", |e| {
                matches!(e, OrasRefError::Tag { .. })
            }),
            ("oras://ghcr.io/a/b:t:u", |e| {
                matches!(e, OrasRefError::Tag { .. })
            }),
            ("oras://ghcr.io/a/b:t/x", |e| {
                matches!(e, OrasRefError::Tag { .. })
            }),
            (&long_tag, |e| matches!(e, OrasRefError::Tag { .. })),
            ("oras://ghcr.io/a/b@sha256:abc", |e| {
                matches!(e, OrasRefError::Digest { .. })
            }),
            (&upper_digest, |e| matches!(e, OrasRefError::Digest { .. })),
            (&other_algo, |e| matches!(e, OrasRefError::Digest { .. })),
        ];
        for (input, is_expected) in cases {
            match OrasRef::parse(input) {
                Ok(r) => panic!("{input} parsed as {r:?}"),
                Err(e) => assert!(is_expected(&e), "{input}: unexpected {e:?}"),
            }
        }
    }

    #[test]
    fn accepts_tag_of_exactly_128_chars() {
        let input = format!("oras://ghcr.io/a/b:{}", "t".repeat(128));
        assert!(OrasRef::parse(&input).is_ok());
    }

    #[test]
    fn errors_name_the_offending_part() {
        let e = OrasRef::parse("oras://ghcr.io/foo:latest").unwrap_err();
        assert!(e.to_string().contains("\"foo\""), "{e}");
        let e = OrasRef::parse("oras://ghcr.io/a/b:bad tag").unwrap_err();
        assert!(e.to_string().contains("\"bad tag\""), "{e}");
    }
}
