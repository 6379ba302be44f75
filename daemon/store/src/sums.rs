//! `sha256sum`-style checksum files (Debian's and Ubuntu's `SHA256SUMS`):
//! the digest a file lists for one name, which pins a catalog entry added
//! with a `sha_url`.
//!
//! The file is untrusted input. A name in it is only compared with the
//! image URL's file name, never used as a path; error messages quote names
//! escaped and cut short, so a hostile file cannot flood or forge a reply.

use thiserror::Error;

/// The most a checksum file may hold: real ones are a few KiB, and an image
/// pasted by mistake stops here instead of filling memory.
pub const MAX_SUMS_BYTES: usize = 1 << 20;

/// How many of a file's names a "not listed" error shows.
const NAMES_SHOWN: usize = 5;
/// How many characters of one name an error shows.
const NAME_CHARS_SHOWN: usize = 80;

/// Why a checksum file gave no digest for a name.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SumsError {
    /// A line's first token is not 64 hex digits.
    #[error("malformed sha256 line {line}")]
    Malformed {
        /// 1-based line number.
        line: usize,
    },
    /// A line holds a 128-hex (SHA-512) digest.
    #[error(
        "line {line} holds a SHA512 sum: SHA512 sums are not supported; give a SHA256SUMS file"
    )]
    Sha512 {
        /// 1-based line number.
        line: usize,
    },
    /// Nothing but blank lines and comments.
    #[error("the checksum file lists no sha256")]
    Empty,
    /// The image URL has no file name and the file lists several sums.
    #[error("the image URL has no file name to look up in the checksum file")]
    NoName,
    /// The name is not listed.
    #[error("{name} is not listed in the checksum file (it lists {listed})")]
    NotListed {
        /// The name looked for, quoted.
        name: String,
        /// A few of the names the file lists, quoted, and how many more.
        listed: String,
    },
    /// The name is listed twice with different digests.
    #[error("{name} is listed twice in the checksum file with different digests")]
    Ambiguous {
        /// The name, quoted.
        name: String,
    },
}

/// One parsed line: a lowercase digest and the name it is for (`None` for
/// a bare digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SumLine {
    /// 64 lowercase hex digits.
    pub sha256: String,
    /// The file name, `*` and `./` stripped.
    pub name: Option<String>,
}

/// Parse every line of a checksum file: blank lines and `#` comments are
/// skipped; each other line is `<digest>`, `<digest> <name>`,
/// `<digest>  <name>` or `<digest> *<name>`. CRLF line ends are accepted;
/// bytes that are not UTF-8 are replaced (such a name matches nothing).
pub fn parse_sums(bytes: &[u8]) -> Result<Vec<SumLine>, SumsError> {
    let text = String::from_utf8_lossy(bytes);
    let mut lines = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let line_no = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw).trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let token_end = line.find(char::is_whitespace).unwrap_or(line.len());
        let (token, rest) = line.split_at(token_end);
        if !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SumsError::Malformed { line: line_no });
        }
        match token.len() {
            64 => {}
            128 => return Err(SumsError::Sha512 { line: line_no }),
            _ => return Err(SumsError::Malformed { line: line_no }),
        }
        let name = rest.trim_start();
        let name = name.strip_prefix('*').unwrap_or(name);
        let name = name.strip_prefix("./").unwrap_or(name);
        lines.push(SumLine {
            sha256: token.to_ascii_lowercase(),
            name: (!name.is_empty()).then(|| name.to_owned()),
        });
    }
    Ok(lines)
}

/// The digest the file lists for `name` (the image URL's file name). A
/// file of one bare digest applies to any name; otherwise the name must be
/// listed, once or with one digest.
pub fn digest_for(bytes: &[u8], name: Option<&str>) -> Result<String, SumsError> {
    let lines = parse_sums(bytes)?;
    if let [only] = lines.as_slice()
        && only.name.is_none()
    {
        return Ok(only.sha256.clone());
    }
    if lines.is_empty() {
        return Err(SumsError::Empty);
    }
    let name = name.ok_or(SumsError::NoName)?;
    let mut found: Option<&str> = None;
    for line in lines.iter().filter(|l| l.name.as_deref() == Some(name)) {
        match found {
            Some(digest) if digest != line.sha256 => {
                return Err(SumsError::Ambiguous { name: quoted(name) });
            }
            _ => found = Some(&line.sha256),
        }
    }
    found
        .map(str::to_owned)
        .ok_or_else(|| SumsError::NotListed {
            name: quoted(name),
            listed: listed(&lines),
        })
}

/// A name for an error message: escaped (`{:?}`) and cut short.
fn quoted(name: &str) -> String {
    let mut shown: String = name.chars().take(NAME_CHARS_SHOWN).collect();
    if shown.len() < name.len() {
        shown.push('…');
    }
    format!("{shown:?}")
}

/// A few of the file's names, and how many more there are.
fn listed(lines: &[SumLine]) -> String {
    let names: Vec<&str> = lines.iter().filter_map(|l| l.name.as_deref()).collect();
    if names.is_empty() {
        return "no names".to_owned();
    }
    let shown: Vec<String> = names.iter().take(NAMES_SHOWN).map(|n| quoted(n)).collect();
    let more = names.len().saturating_sub(NAMES_SHOWN);
    let mut text = shown.join(", ");
    if more > 0 {
        text.push_str(&format!(" and {more} more"));
    }
    text
}

#[cfg(test)]
mod tests;
