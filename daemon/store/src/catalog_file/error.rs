//! The errors of catalog parsing: one variant per validation rule, every
//! message starting `catalog at <source>`.

use thiserror::Error;

use crate::canon::SrcError;

/// Why a catalog was refused. `at` is the caller's label for where the
/// catalog came from (a path or a URL); `entry` is `#<n>` (1-based) plus the
/// name once known.
#[derive(Debug, Error)]
pub enum CatalogError {
    /// Larger than the limit (btyd's `max_catalog_bytes`).
    #[error("catalog at {at} is {size} bytes, over the {max}-byte limit (max_catalog_bytes)")]
    TooLarge {
        /// Source label.
        at: String,
        /// Size of the input.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Not UTF-8, or a TOML syntax error.
    #[error("catalog at {at} is not valid TOML: {detail}")]
    NotToml {
        /// Source label.
        at: String,
        /// Parser message with line and column.
        detail: String,
    },
    /// `version` missing or not the integer 1.
    #[error("catalog at {at}: version={found}, this bty understands version=1")]
    Version {
        /// Source label.
        at: String,
        /// The value found, in TOML spelling, or `(missing)`.
        found: String,
    },
    /// `images` is not an array.
    #[error("catalog at {at}: `images` must be an array of tables, got {found}")]
    ImagesNotArray {
        /// Source label.
        at: String,
        /// TOML type found.
        found: &'static str,
    },
    /// An element of `images` is not a table.
    #[error("catalog at {at}: `images` entry #{index} must be a table, got {found}")]
    EntryNotTable {
        /// Source label.
        at: String,
        /// 1-based position.
        index: usize,
        /// TOML type found.
        found: &'static str,
    },
    /// `name` or `src` absent.
    #[error("catalog at {at}: catalog entry missing required field: '{field}' (entry {entry})")]
    MissingField {
        /// Source label.
        at: String,
        /// Which entry.
        entry: String,
        /// `name` or `src`.
        field: &'static str,
    },
    /// A known field with the wrong TOML type.
    #[error("catalog at {at}: entry {entry}: `{field}` must be a {expected}, got {found}")]
    FieldType {
        /// Source label.
        at: String,
        /// Which entry.
        entry: String,
        /// Field name.
        field: &'static str,
        /// Expected TOML type.
        expected: &'static str,
        /// TOML type found.
        found: &'static str,
    },
    /// `name` is empty or only whitespace.
    #[error("catalog at {at}: entry {entry}: name must not be empty")]
    EmptyName {
        /// Source label.
        at: String,
        /// Which entry.
        entry: String,
    },
    /// `name` holds control characters (they would reach terminals and logs).
    #[error("catalog at {at}: entry {entry}: name must not contain control characters")]
    ControlName {
        /// Source label.
        at: String,
        /// Which entry.
        entry: String,
    },
    /// `format` is not a format id (it becomes a file-name extension).
    #[error(
        "catalog at {at}: entry {entry}: format {format:?} is not a format id \
         (letters, digits and single dots, e.g. \"img.zst\")"
    )]
    BadFormat {
        /// Source label.
        at: String,
        /// Which entry.
        entry: String,
        /// The value given.
        format: String,
    },
    /// `src` is `file://`: catalogs describe remote images only.
    #[error(
        "catalog at {at}: entry {entry}: src {src:?} is local; catalog manifests carry only \
         remote sources (oras:// / http:// / https://)"
    )]
    LocalSrc {
        /// Source label.
        at: String,
        /// Which entry.
        entry: String,
        /// The src as written.
        src: String,
    },
    /// `src` has an unsupported scheme or does not canonicalise.
    ///
    /// The reason is part of the message rather than a `#[source]`: callers
    /// flash `to_string()` to operators, who need to see which src is wrong.
    #[error("catalog at {at}: entry {entry}: {reason}")]
    BadSrc {
        /// Source label.
        at: String,
        /// Which entry.
        entry: String,
        /// What is wrong with the src (names it, password masked).
        reason: Box<SrcError>,
    },
    /// `sha256` is not 64 hex digits.
    #[error(
        "catalog at {at}: entry {entry}: sha256 must be a 64-char lower-case hex string, got {found}"
    )]
    BadSha256 {
        /// Source label.
        at: String,
        /// Which entry.
        entry: String,
        /// The value found, in TOML spelling.
        found: String,
    },
    /// `size_bytes` is not a non-negative integer.
    #[error(
        "catalog at {at}: entry {entry}: size_bytes must be a non-negative integer, got {found}"
    )]
    BadSize {
        /// Source label.
        at: String,
        /// Which entry.
        entry: String,
        /// The value found, in TOML spelling.
        found: String,
    },
    /// `ref` was given and is not the sha256 of the canonical src.
    #[error(
        "catalog at {at}: entry {entry}: ref {supplied} does not match src (expected {expected})"
    )]
    RefMismatch {
        /// Source label.
        at: String,
        /// Which entry.
        entry: String,
        /// The ref as written (trimmed, lowercased).
        supplied: String,
        /// The ref of the src.
        expected: String,
    },
    /// `ref` was given but the src has no canonical form to check it with.
    #[error("catalog at {at}: entry {entry}: cannot verify ref because src is malformed: {reason}")]
    RefUnverifiable {
        /// Source label.
        at: String,
        /// Which entry.
        entry: String,
        /// What is wrong with the src.
        reason: Box<SrcError>,
    },
    /// Two entries with the same name (exact compare).
    #[error("catalog at {at}: duplicate image name {name:?}")]
    DuplicateName {
        /// Source label.
        at: String,
        /// The repeated name.
        name: String,
    },
    /// Two entries whose src canonicalise to the same string.
    #[error("catalog at {at}: duplicate src {canonical}: entries {first:?} and {second:?}")]
    DuplicateSrc {
        /// Source label.
        at: String,
        /// Name of the earlier entry.
        first: String,
        /// Name of the later entry.
        second: String,
        /// The shared canonical src.
        canonical: String,
    },
}
