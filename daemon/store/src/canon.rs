//! `src` canonicalisation and the image `ref`: the sha256 of the canonical
//! src, a provenance id that survives content changes. The rules per scheme
//! and upstream's test vectors are in docs/behaviour.md, "src
//! canonicalisation and the ref".
//!
//! Differences from upstream, on purpose: a URL carrying userinfo
//! (`user:pw@`) is refused instead of silently losing it, and IPv6 literal
//! hosts keep their brackets.

use thiserror::Error;

use crate::oras_ref::{OrasRef, OrasRefError};

/// Why a `src` has no canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SrcError {
    /// Empty string.
    #[error("src is empty")]
    Empty,
    /// Not `file://`, `http://`, `https://` or `oras://`.
    #[error("unsupported src scheme in {0:?}: expected file://, http(s)://, or oras://")]
    UnsupportedScheme(String),
    /// A control character (newline, NUL, …) somewhere in the src.
    #[error("src {0:?} contains a control character")]
    ControlChar(String),
    /// A `file://` path with a `..` segment.
    #[error("src {0:?}: '..' segments are not allowed in file:// paths")]
    FileTraversal(String),
    /// A `file://` path with nothing left after dropping `.` and empty segments.
    #[error("src {0:?}: file:// path is empty")]
    FileEmpty(String),
    /// `http(s)://` without a host.
    #[error("src {0:?} has no host")]
    MissingHost(String),
    /// `user:password@` in the authority; the src shown has it masked.
    #[error(
        "src {0:?} carries userinfo (user:password@): bty never sends credentials, remove them from the url"
    )]
    Userinfo(String),
    /// A host with characters no host name or IPv6 literal has.
    #[error("src {src:?}: invalid host {host:?}")]
    Host {
        /// The whole src.
        src: String,
        /// The host part.
        host: String,
    },
    /// A port that is not a number in 0..=65535.
    #[error("src {src:?}: invalid port {port:?}")]
    Port {
        /// The whole src.
        src: String,
        /// The port part.
        port: String,
    },
    /// An `oras://` src that is not a valid reference.
    // The reason is in the message: operators read `to_string()`, and
    // "malformed" alone does not say what to fix.
    #[error("malformed oras src {src:?}: {source}")]
    Oras {
        /// The whole src.
        src: String,
        /// What is wrong with it.
        #[source]
        source: OrasRefError,
    },
}

/// A supported `src` scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `file://<path relative to the image root>`, internal only.
    File,
    /// `http://`
    Http,
    /// `https://`
    Https,
    /// `oras://` (OCI registry artifact).
    Oras,
}

impl Scheme {
    /// The prefix including `://`, lowercase.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::File => "file://",
            Self::Http => "http://",
            Self::Https => "https://",
            Self::Oras => "oras://",
        }
    }

    /// Whether this scheme names a remote source (everything but `file://`).
    pub fn is_remote(self) -> bool {
        self != Self::File
    }
}

const SCHEMES: [Scheme; 4] = [Scheme::File, Scheme::Http, Scheme::Https, Scheme::Oras];

/// The scheme of `src`, matched case-insensitively on the prefix.
pub fn scheme(src: &str) -> Result<Scheme, SrcError> {
    if src.is_empty() {
        return Err(SrcError::Empty);
    }
    SCHEMES
        .into_iter()
        .find(|s| strip_prefix_ci(src, s.prefix()).is_some())
        .ok_or_else(|| SrcError::UnsupportedScheme(src.to_owned()))
}

/// The canonical spelling of `src`: equal canonical strings mean the same
/// source.
pub fn canonicalise_src(src: &str) -> Result<String, SrcError> {
    let scheme = scheme(src)?;
    if src.chars().any(char::is_control) {
        return Err(SrcError::ControlChar(mask_userinfo(src)));
    }
    // `scheme()` matched this prefix, so the slice is on a char boundary.
    let body = &src[scheme.prefix().len()..];
    match scheme {
        Scheme::File => canonical_file(src, body),
        Scheme::Http => canonical_http(src, body, Scheme::Http, 80),
        Scheme::Https => canonical_http(src, body, Scheme::Https, 443),
        Scheme::Oras => canonical_oras(src, body),
    }
}

/// `ref` = lowercase hex sha256 of the canonical src.
pub fn image_ref(src: &str) -> Result<String, SrcError> {
    let canonical = canonicalise_src(src)?;
    Ok(crate::digest::sha256_bytes(canonical.as_bytes()))
}

/// The last path segment of an `http(s)://` src (before `?` / `#`), as
/// written (not percent-decoded). `None` for other schemes and for URLs
/// whose path is empty or ends in `/`.
pub fn url_file_name(src: &str) -> Option<String> {
    let body = strip_prefix_ci(src, Scheme::Https.prefix())
        .or_else(|| strip_prefix_ci(src, Scheme::Http.prefix()))?;
    let end = body.find(['?', '#']).unwrap_or(body.len());
    let (_authority, path) = body[..end].split_once('/')?;
    let last = path.rsplit('/').next().unwrap_or(path);
    (!last.is_empty()).then(|| last.to_owned())
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// `file://` paths are relative to the image root: no `..`, and `.` and
/// empty segments are dropped so `./x`, `//x` and `x` are one source.
fn canonical_file(src: &str, body: &str) -> Result<String, SrcError> {
    let mut segments = Vec::new();
    for segment in body.split('/') {
        match segment {
            "" | "." => {}
            ".." => return Err(SrcError::FileTraversal(src.to_owned())),
            s => segments.push(s),
        }
    }
    if segments.is_empty() {
        return Err(SrcError::FileEmpty(src.to_owned()));
    }
    Ok(format!("{}{}", Scheme::File.prefix(), segments.join("/")))
}

/// Lower-case scheme and host, drop the default port, keep everything from
/// the path on byte-for-byte.
fn canonical_http(
    src: &str,
    body: &str,
    scheme: Scheme,
    default_port: u16,
) -> Result<String, SrcError> {
    let split = body.find(['/', '?', '#']).unwrap_or(body.len());
    let (authority, rest) = body.split_at(split);
    if authority.contains('@') {
        return Err(SrcError::Userinfo(mask_userinfo(src)));
    }
    let (host, port) = split_host_port(src, authority)?;
    if host.is_empty() {
        return Err(SrcError::MissingHost(src.to_owned()));
    }
    let host = host.to_ascii_lowercase();
    // Parsed as a number like Python's urlsplit, so `:0080` is port 80.
    let port = match port {
        None | Some("") => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if p.bytes().all(|b| b.is_ascii_digit()) => Some(n),
            _ => {
                return Err(SrcError::Port {
                    src: src.to_owned(),
                    port: p.to_owned(),
                });
            }
        },
    };
    let mut out = format!("{}{host}", scheme.prefix());
    if let Some(port) = port.filter(|p| *p != default_port) {
        out.push(':');
        out.push_str(&port.to_string());
    }
    out.push_str(rest);
    Ok(out)
}

/// Split `host[:port]` or `[v6]:port`, validating the host characters.
fn split_host_port<'a>(
    src: &str,
    authority: &'a str,
) -> Result<(&'a str, Option<&'a str>), SrcError> {
    let bad_host = |host: &str| SrcError::Host {
        src: src.to_owned(),
        host: host.to_owned(),
    };
    if authority.starts_with('[') {
        let close = authority.find(']').ok_or_else(|| bad_host(authority))?;
        let (host, after) = authority.split_at(close + 1);
        let inner = &host[1..host.len() - 1];
        let inner_ok = inner.contains(':')
            && inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        if !inner_ok {
            return Err(bad_host(host));
        }
        return match after {
            "" => Ok((host, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err(bad_host(authority)),
            },
        };
    }
    let (host, port) = match authority.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    let host_ok = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'%') || b >= 0x80);
    if !host_ok {
        return Err(bad_host(host));
    }
    Ok((host, port))
}

/// Lower-case host and repository (everything before the last `@`, else the
/// last `:`), keep the tag or digest verbatim, then validate.
fn canonical_oras(src: &str, body: &str) -> Result<String, SrcError> {
    let oras_err = |source| SrcError::Oras {
        src: src.to_owned(),
        source,
    };
    if body.is_empty() {
        return Err(oras_err(OrasRefError::Empty));
    }
    // Registries get no credentials either; `@` before the first `/` can
    // only be userinfo, never a digest.
    let host_end = body.find('/').unwrap_or(body.len());
    if body[..host_end].contains('@') {
        return Err(SrcError::Userinfo(mask_userinfo(src)));
    }
    let split = body
        .rfind('@')
        .or_else(|| body.rfind(':'))
        .unwrap_or(body.len());
    let (head, tail) = body.split_at(split);
    let candidate = format!(
        "{}{}{tail}",
        Scheme::Oras.prefix(),
        head.to_ascii_lowercase()
    );
    OrasRef::parse(&candidate)
        .map(|r| r.to_string())
        .map_err(oras_err)
}

/// The src with any `user:password@` replaced by `***@`, so error messages
/// and logs never carry a password.
fn mask_userinfo(src: &str) -> String {
    let Some((scheme, body)) = src.split_once("://") else {
        return src.to_owned();
    };
    let end = body.find(['/', '?', '#']).unwrap_or(body.len());
    match body[..end].rfind('@') {
        Some(at) => format!("{scheme}://***{}", &body[at..]),
        None => src.to_owned(),
    }
}

#[cfg(test)]
mod tests;
