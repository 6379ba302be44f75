//! `catalog.toml`: parse, validate and serialize (schema v1; the fields
//! and rules are in docs/behaviour.md, "The catalog file (catalog.toml)").
//!
//! Stricter than upstream where upstream crashed or let bad data through:
//! `size_bytes` must be a non-negative integer, `src` must canonicalise,
//! two entries with the same canonical src are refused, and the input is
//! capped (btyd's `max_catalog_bytes`, [`DEFAULT_MAX_CATALOG_BYTES`] unless
//! configured). Unknown keys are kept and written back.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use crate::canon::{self, Scheme, SrcError};
use crate::digest::Sha256Digest;
use crate::format::{ImageFormat, format_from_name};
use serde::Serialize;

mod error;
pub use error::CatalogError;

/// The default of the one catalog size limit btyd applies to an import
/// (checked before parsing: remote catalogs are untrusted input), to what
/// it writes and to what it loads, so it always loads what it wrote: room
/// for several hundred thousand entries.
pub const DEFAULT_MAX_CATALOG_BYTES: usize = 64 * 1024 * 1024;

/// The only `version` this bty understands.
pub const SCHEMA_VERSION: i64 = 1;

/// Per-entry keys with a meaning; everything else goes to `extra`.
const ENTRY_KEYS: [&str; 7] = [
    "name",
    "src",
    "sha256",
    "format",
    "size_bytes",
    "description",
    "ref",
];
/// Keys of bty's own record on an entry ([`EntryRecord`]).
const RECORD_KEYS: [&str; 5] = [
    "origin",
    "added_at",
    "cached_etag",
    "cached_last_modified",
    "sha_url",
];
/// Top-level keys with a meaning.
const TOP_KEYS: [&str; 2] = ["version", "images"];

/// One `[[images]]` entry: a remote image (http(s):// or oras://).
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogEntry {
    /// Display label (unique within a file). Shared, not copied, by the
    /// merged rows and the name index.
    pub name: Arc<str>,
    /// Remote source as written (canonicalise with [`crate::canon`]).
    /// Shared with the merged rows' sources.
    pub src: Arc<str>,
    /// Pinned content sha256: fetched bytes must match. Written as 64
    /// lowercase hex.
    pub sha256: Option<Sha256Digest>,
    /// Format id such as `img.gz`, `qcow2`, `img` (borrowed when it is one
    /// bty knows: no copy per entry).
    pub format: Option<Cow<'static, str>>,
    /// Size of the stored (possibly compressed) bytes, when known.
    pub size_bytes: Option<u64>,
    /// Free text.
    pub description: Option<Box<str>>,
    /// What this catalog recorded about the entry (keys upstream ignores).
    pub record: EntryRecord,
    /// Keys bty does not know, kept verbatim when the file is rewritten.
    pub extra: toml::Table,
}

/// bty's own bookkeeping on an entry, written to catalog.toml under keys
/// upstream ignores. Typed fields rather than `extra` keys: an entry's
/// `extra` map costs a ~600-byte node once it holds any key, 60 MB at
/// 100 000 entries. Boxed strings: no spare capacity, 8 bytes less each.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EntryRecord {
    /// How the entry was added (`url`: one operator's URL, not an import).
    pub origin: Option<Box<str>>,
    /// When this catalog added the entry (RFC 3339, UTC).
    pub added_at: Option<Box<str>>,
    /// `ETag` of the cached download, for a conditional update.
    pub cached_etag: Option<Box<str>>,
    /// `Last-Modified` of the cached download.
    pub cached_last_modified: Option<Box<str>>,
    /// The checksum file (`SHA256SUMS`) the entry's `sha256` was read
    /// from when it was added (upstream's `sha_url`); shown, never fetched
    /// again.
    pub sha_url: Option<Box<str>>,
}

impl EntryRecord {
    /// Whether the field written under `key` holds a value.
    fn is_set(&self, key: &str) -> bool {
        match key {
            "origin" => self.origin.is_some(),
            "added_at" => self.added_at.is_some(),
            "cached_etag" => self.cached_etag.is_some(),
            "cached_last_modified" => self.cached_last_modified.is_some(),
            "sha_url" => self.sha_url.is_some(),
            _ => false,
        }
    }

    /// The record's keys in an entry's table: string values only
    /// (anything else stays an unknown key, written back as it was).
    fn from_table(table: &toml::Table) -> Self {
        let take = |key: &str| match table.get(key) {
            Some(toml::Value::String(s)) => Some(Box::from(s.as_str())),
            _ => None,
        };
        Self {
            origin: take("origin"),
            added_at: take("added_at"),
            cached_etag: take("cached_etag"),
            cached_last_modified: take("cached_last_modified"),
            sha_url: take("sha_url"),
        }
    }

    /// Whether `key = value` in an entry's table is a record field.
    fn holds(key: &str, value: &toml::Value) -> bool {
        RECORD_KEYS.contains(&key) && value.is_str()
    }
}

/// A whole catalog file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CatalogFile {
    /// The `[[images]]` entries in file order.
    pub entries: Vec<CatalogEntry>,
    /// Unknown top-level keys, kept verbatim.
    pub extra: toml::Table,
}

impl CatalogFile {
    /// Parse and validate a catalog of at most
    /// [`DEFAULT_MAX_CATALOG_BYTES`]. `source` labels it in error messages
    /// (a path or URL).
    pub fn parse(bytes: &[u8], source: &str) -> Result<CatalogFile, CatalogError> {
        Self::parse_up_to(bytes, source, DEFAULT_MAX_CATALOG_BYTES)
    }

    /// [`Self::parse`] with the configured size limit.
    pub fn parse_up_to(
        bytes: &[u8],
        source: &str,
        max: usize,
    ) -> Result<CatalogFile, CatalogError> {
        ParsedCatalog::parse(bytes, source, max).map(|parsed| parsed.file)
    }

    /// Serialize as `catalog.toml`: `version = 1`, the unknown top-level
    /// keys, then one `[[images]]` per entry with the known fields in a fixed
    /// order followed by the entry's unknown keys. Re-parses to `self`
    /// (entries with the same data, unknown keys included).
    pub fn to_toml_string(&self) -> String {
        let full = DocOut::new(self, true);
        match toml::to_string(&full) {
            Ok(text) => text,
            // Only the unknown keys are arbitrary values; bty's own fields
            // are strings and in-range integers and always serialize.
            Err(_) => toml::to_string(&DocOut::new(self, false)).unwrap_or_default(),
        }
    }
}

/// A parsed catalog with each entry's ref (sha256 of its canonical src),
/// computed once while validating: btyd indexes entries by ref, and a
/// 100 000-entry catalog is not canonicalised twice.
#[derive(Debug, Clone, Default)]
pub struct ParsedCatalog {
    /// The catalog.
    pub file: CatalogFile,
    /// `refs[i]` is the ref of `file.entries[i]`.
    pub refs: Vec<Sha256Digest>,
}

impl ParsedCatalog {
    /// Parse and validate a catalog of at most `max` bytes. `source`
    /// labels it in error messages (a path or URL).
    ///
    /// The TOML document is read in full first and dropped in one piece
    /// at the end: every entry is a fresh copy of what it keeps, made
    /// while the document is still alive, so the entries do not end up
    /// scattered through the document's freed memory (which then goes
    /// back to the kernel whole instead of staying resident around them).
    pub fn parse(bytes: &[u8], source: &str, max: usize) -> Result<Self, CatalogError> {
        let at = source.to_owned();
        if bytes.len() > max {
            return Err(CatalogError::TooLarge {
                at,
                size: bytes.len(),
                max,
            });
        }
        let doc = parse_toml(bytes, &at)?;
        match doc.get("version") {
            Some(toml::Value::Integer(SCHEMA_VERSION)) => {}
            // A float 1.0 is refused too: upstream's `== 1` accepted it by accident.
            other => {
                let found = other.map_or_else(|| "(missing)".to_owned(), ToString::to_string);
                return Err(CatalogError::Version { at, found });
            }
        }
        let images: &[toml::Value] = match doc.get("images") {
            None => &[],
            Some(toml::Value::Array(items)) => items,
            Some(other) => {
                return Err(CatalogError::ImagesNotArray {
                    at,
                    found: other.type_str(),
                });
            }
        };
        let mut entries: Vec<CatalogEntry> = Vec::with_capacity(images.len());
        let mut refs: Vec<Sha256Digest> = Vec::with_capacity(images.len());
        // Sets, not scans: a large catalog parses in linear time.
        let mut by_ref: HashMap<Sha256Digest, usize> = HashMap::with_capacity(images.len());
        let mut names: HashSet<&str> = HashSet::with_capacity(images.len());
        for (i, item) in images.iter().enumerate() {
            let index = i + 1;
            let toml::Value::Table(table) = item else {
                return Err(CatalogError::EntryNotTable {
                    at,
                    index,
                    found: item.type_str(),
                });
            };
            let (entry, image_ref) = parse_entry(table, index, &at)?;
            if let Some(toml::Value::String(name)) = table.get("name")
                && !names.insert(name.as_str())
            {
                return Err(CatalogError::DuplicateName {
                    at,
                    name: name.clone(),
                });
            }
            if let Some(&first) = by_ref.get(&image_ref) {
                return Err(CatalogError::DuplicateSrc {
                    at,
                    first: entries[first].name.to_string(),
                    second: entry.name.to_string(),
                    canonical: canon::canonicalise_src(&entry.src).unwrap_or_default(),
                });
            }
            by_ref.insert(image_ref, entries.len());
            entries.push(entry);
            refs.push(image_ref);
        }
        let extra: toml::Table = doc
            .iter()
            .filter(|(key, _)| !TOP_KEYS.contains(&key.as_str()))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        Ok(Self {
            file: CatalogFile { entries, extra },
            refs,
        })
    }
}

impl CatalogEntry {
    /// An entry with only a name and a src; every optional field empty.
    pub fn new(name: impl Into<Arc<str>>, src: impl Into<Arc<str>>) -> Self {
        Self {
            name: name.into(),
            src: src.into(),
            sha256: None,
            format: None,
            size_bytes: None,
            description: None,
            record: EntryRecord::default(),
            extra: toml::Table::new(),
        }
    }

    /// The entry's ref: sha256 of its canonical src.
    pub fn image_ref(&self) -> Result<String, SrcError> {
        canon::image_ref(&self.src)
    }

    /// File name of the entry's cached download in the image root.
    pub fn cache_file_name(&self) -> Result<String, SrcError> {
        let image_ref = self.image_ref()?;
        Ok(crate::names::cache_file_name(
            &image_ref,
            &self.name,
            self.format.as_deref(),
        ))
    }
}

fn parse_toml(bytes: &[u8], at: &str) -> Result<toml::Table, CatalogError> {
    let not_toml = |detail: String| CatalogError::NotToml {
        at: at.to_owned(),
        detail,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| {
        not_toml(format!(
            "not UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })?;
    text.parse::<toml::Table>().map_err(|e| {
        let message = e.message().trim_end();
        match e.span() {
            Some(span) => {
                let (line, column) = line_column(text, span.start);
                not_toml(format!("{message} at line {line}, column {column}"))
            }
            None => not_toml(message.to_owned()),
        }
    })
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

/// Validate one entry; returns a copy of what it keeps, with its ref.
fn parse_entry(
    table: &toml::Table,
    index: usize,
    at: &str,
) -> Result<(CatalogEntry, Sha256Digest), CatalogError> {
    let mut entry_label = format!("#{index}");
    let missing = |field, entry: &str| CatalogError::MissingField {
        at: at.to_owned(),
        entry: entry.to_owned(),
        field,
    };
    let name_value = table
        .get("name")
        .ok_or_else(|| missing("name", &entry_label))?;
    let name = string_field(name_value, "name", &entry_label, at)?;
    entry_label = format!("#{index} ({name:?})");
    let entry = entry_label.as_str();
    if name.trim().is_empty() {
        return Err(CatalogError::EmptyName {
            at: at.to_owned(),
            entry: entry.to_owned(),
        });
    }
    if name.chars().any(char::is_control) {
        return Err(CatalogError::ControlName {
            at: at.to_owned(),
            entry: entry.to_owned(),
        });
    }
    let src_value = table.get("src").ok_or_else(|| missing("src", entry))?;
    let src = string_field(src_value, "src", entry, at)?;
    let supplied_ref = table
        .get("ref")
        .map(|v| string_field(v, "ref", entry, at))
        .transpose()?;
    let image_ref = check_src(src, supplied_ref, entry, at)?;

    let sha256 = table
        .get("sha256")
        .map(|v| parse_sha256(v, entry, at))
        .transpose()?;
    let format = table
        .get("format")
        .map(|v| string_field(v, "format", entry, at))
        .transpose()?
        .filter(|f| !f.is_empty())
        .map(ImageFormat::id_as_held)
        .or_else(|| format_from_name(name).map(|f| Cow::Borrowed(f.as_str())));
    if let Some(f) = &format
        && !is_format_id(f)
    {
        return Err(CatalogError::BadFormat {
            at: at.to_owned(),
            entry: entry.to_owned(),
            format: f.to_string(),
        });
    }
    let size_bytes = table
        .get("size_bytes")
        .map(|v| parse_size(v, entry, at))
        .transpose()?;
    let description = table
        .get("description")
        .map(|v| string_field(v, "description", entry, at))
        .transpose()?
        .map(Box::from);
    let record = EntryRecord::from_table(table);
    let extra: toml::Table = table
        .iter()
        .filter(|(key, value)| {
            !ENTRY_KEYS.contains(&key.as_str()) && !EntryRecord::holds(key, value)
        })
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    let entry = CatalogEntry {
        name: name.into(),
        src: src.into(),
        sha256,
        format,
        size_bytes,
        description,
        record,
        extra,
    };
    Ok((entry, image_ref))
}

/// A format id becomes a file-name extension: `[A-Za-z0-9]+` parts joined by
/// single dots (an optional leading dot is tolerated), at most 32 bytes.
pub fn is_format_id(format: &str) -> bool {
    let body = format.strip_prefix('.').unwrap_or(format);
    !body.is_empty()
        && body.len() <= 32
        && body
            .split('.')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Refuse local and malformed srcs, verify a supplied ref; returns the
/// ref (sha256 of the canonical src).
fn check_src(
    src: &str,
    supplied_ref: Option<&str>,
    entry: &str,
    at: &str,
) -> Result<Sha256Digest, CatalogError> {
    if canon::scheme(src) == Ok(Scheme::File) {
        return Err(CatalogError::LocalSrc {
            at: at.to_owned(),
            entry: entry.to_owned(),
            src: src.to_owned(),
        });
    }
    let canonical = canon::canonicalise_src(src).map_err(|e| {
        let reason = Box::new(e);
        match supplied_ref {
            Some(_) => CatalogError::RefUnverifiable {
                at: at.to_owned(),
                entry: entry.to_owned(),
                reason,
            },
            None => CatalogError::BadSrc {
                at: at.to_owned(),
                entry: entry.to_owned(),
                reason,
            },
        }
    })?;
    let image_ref = Sha256Digest::of(canonical.as_bytes());
    if let Some(supplied) = supplied_ref {
        let supplied = supplied.trim().to_ascii_lowercase();
        let expected = image_ref.to_hex();
        if supplied != expected {
            return Err(CatalogError::RefMismatch {
                at: at.to_owned(),
                entry: entry.to_owned(),
                supplied,
                expected,
            });
        }
    }
    Ok(image_ref)
}

fn string_field<'a>(
    value: &'a toml::Value,
    field: &'static str,
    entry: &str,
    at: &str,
) -> Result<&'a str, CatalogError> {
    match value {
        toml::Value::String(s) => Ok(s),
        other => Err(CatalogError::FieldType {
            at: at.to_owned(),
            entry: entry.to_owned(),
            field,
            expected: "string",
            found: other.type_str(),
        }),
    }
}

/// Trimmed and lower-cased, like upstream, then 64 hex digits.
fn parse_sha256(value: &toml::Value, entry: &str, at: &str) -> Result<Sha256Digest, CatalogError> {
    let digest = match &value {
        toml::Value::String(s) => Sha256Digest::from_hex(s.trim()),
        _ => None,
    };
    match digest {
        Some(digest) => Ok(digest),
        _ => Err(CatalogError::BadSha256 {
            at: at.to_owned(),
            entry: entry.to_owned(),
            found: value.to_string(),
        }),
    }
}

fn parse_size(value: &toml::Value, entry: &str, at: &str) -> Result<u64, CatalogError> {
    match &value {
        toml::Value::Integer(n) if *n >= 0 => Ok(n.unsigned_abs()),
        _ => Err(CatalogError::BadSize {
            at: at.to_owned(),
            entry: entry.to_owned(),
            found: value.to_string(),
        }),
    }
}

/// The document as written: field order here is the order in the file.
#[derive(Serialize)]
struct DocOut<'a> {
    version: i64,
    #[serde(flatten)]
    extra: BTreeMap<&'a str, &'a toml::Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    images: Vec<EntryOut<'a>>,
}

#[derive(Serialize)]
struct EntryOut<'a> {
    name: &'a str,
    src: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<&'a Sha256Digest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    size_bytes: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    origin: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    added_at: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cached_etag: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cached_last_modified: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha_url: Option<&'a str>,
    #[serde(flatten)]
    extra: BTreeMap<&'a str, &'a toml::Value>,
}

impl<'a> DocOut<'a> {
    fn new(file: &'a CatalogFile, with_extra: bool) -> Self {
        DocOut {
            version: SCHEMA_VERSION,
            extra: unknown_keys(&file.extra, &TOP_KEYS, with_extra),
            images: file
                .entries
                .iter()
                .map(|e| EntryOut {
                    name: &e.name,
                    src: &e.src,
                    sha256: e.sha256.as_ref(),
                    format: e.format.as_deref(),
                    // TOML integers are i64; a larger size cannot be written.
                    size_bytes: e.size_bytes.and_then(|n| i64::try_from(n).ok()),
                    description: e.description.as_deref(),
                    origin: e.record.origin.as_deref(),
                    added_at: e.record.added_at.as_deref(),
                    cached_etag: e.record.cached_etag.as_deref(),
                    cached_last_modified: e.record.cached_last_modified.as_deref(),
                    sha_url: e.record.sha_url.as_deref(),
                    extra: {
                        // A set record field wins over a same-named odd
                        // value left in the table (one key, not two).
                        let mut extra = unknown_keys(&e.extra, &ENTRY_KEYS, with_extra);
                        extra.retain(|key, _| !e.record.is_set(key));
                        extra
                    },
                })
                .collect(),
        }
    }
}

/// The extra keys to write: a key that shadows a known one would make a
/// duplicate key, so the known field wins.
fn unknown_keys<'a>(
    table: &'a toml::Table,
    known: &[&str],
    with_extra: bool,
) -> BTreeMap<&'a str, &'a toml::Value> {
    if !with_extra {
        return BTreeMap::new();
    }
    table
        .iter()
        .filter(|(k, _)| !known.contains(&k.as_str()))
        .map(|(k, v)| (k.as_str(), v))
        .collect()
}

#[cfg(test)]
mod tests;
