//! The image-root scan: which files in the flat image root are images,
//! with their identity (device, inode, size, mtime), format (by content
//! where the bytes say more than the name) and sidecar state. The scan
//! never hashes.
//!
//! Every entry is opened with `O_NOFOLLOW | O_NONBLOCK` and judged by the
//! descriptor, so a symlink is never listed, a FIFO never blocks the scan,
//! and the identity recorded is that of the bytes whose header was read.
//! Readers later compare it with what they open
//! ([`crate::identity::VerifiedImage`]).

use std::fs;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::atomic::is_temp_file_name;
use crate::format::{ImageFormat, detect, format_from_name, read_header_of};
use crate::identity::{FileIdentity, OpenImageError, open_regular};
use crate::names::{self, MARKER_FILE, PARTIAL_SUFFIX, SIDECAR_SUFFIX};
use crate::sidecar::{Sidecar, read_sidecar};
use crate::signed::{SIGNED_SUFFIX, read_signed};

/// One image file found in the image root.
#[derive(Debug, Clone, PartialEq)]
pub struct ScannedFile {
    /// Bare file name.
    pub name: String,
    /// `root/name`.
    pub path: PathBuf,
    /// On-disk (possibly compressed) size.
    pub size_bytes: u64,
    /// Last modification time.
    pub modified: SystemTime,
    /// Device, inode, size and mtime of the file that was listed: what a
    /// reader must find when it opens the name.
    pub identity: FileIdentity,
    /// Format by content, else by name.
    pub format: ImageFormat,
    /// State of `<name>.sha256`.
    pub sidecar: Sidecar,
    /// The 12-hex ref prefix when the name is a cached catalog download.
    pub cache_ref_prefix: Option<String>,
    /// Who signed these bytes, when a `[[trust]]` check passed as they
    /// were downloaded (`<name>.signed`, for the fresh sidecar's sha256).
    pub signed_by: Option<String>,
}

/// How the scan treats a directory entry.
enum Class {
    /// bty's own bookkeeping (marker, sidecars, partials, temps, dotfiles).
    Own,
    /// A listed image.
    Image(ScannedFile),
    /// A regular file that is neither.
    Unrecognised,
    /// Gone, not a regular file, or not UTF-8: not reported at all.
    Skip,
}

/// Whether the scan leaves `name` alone because bty (or an interrupted
/// write) owns it. Every dotfile counts: temps of downloads and writes are
/// dotfiles, and hidden files are never images to list.
fn is_own_name(name: &str) -> bool {
    name == MARKER_FILE
        || name.starts_with('.')
        || name.ends_with(SIDECAR_SUFFIX)
        || name.ends_with(SIGNED_SUFFIX)
        || name.ends_with(PARTIAL_SUFFIX)
        || is_temp_file_name(name)
}

fn classify(root: &Path, entry: &fs::DirEntry) -> io::Result<Class> {
    let Ok(name) = entry.file_name().into_string() else {
        return Ok(Class::Skip);
    };
    // DirEntry::metadata does not follow symlinks: a symlink is skipped, so
    // the root never lists (or serves) bytes from outside itself.
    classify_named(root, name, entry.metadata())
}

/// Classify `root/name`, given its metadata as read without following a
/// symlink.
fn classify_named(root: &Path, name: String, meta: io::Result<fs::Metadata>) -> io::Result<Class> {
    let meta = match meta {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Class::Skip),
        Err(e) => return Err(e),
    };
    if !meta.is_file() {
        return Ok(Class::Skip);
    }
    if is_own_name(&name) {
        return Ok(Class::Own);
    }
    let path = root.join(&name);
    // The name may have been swapped since the listing: what counts is
    // what the no-follow open gets.
    let (file, meta) = match open_regular(&path, &name) {
        Ok(opened) => opened,
        // A symlink, FIFO or device now, or gone: not an image.
        Err(e) if e.is_hard_linked() => {
            return Ok(Class::Unrecognised);
        }
        Err(OpenImageError::Changed { .. } | OpenImageError::BadName { .. }) => {
            return Ok(Class::Skip);
        }
        // Unreadable (permissions): listed by its name, as before.
        Err(OpenImageError::Io { .. }) => {
            return Ok(match format_from_name(&name) {
                Some(format) => Class::Image(scanned(name, path, &meta, format)),
                None => Class::Unrecognised,
            });
        }
    };
    let header = read_header_of(&file).ok();
    let by_name = format_from_name(&name);
    let format = match header.as_deref().map(|h| detect(&name, h)) {
        Some(Ok(f)) => Some(f),
        // A damaged or misnamed file is still listed under its name's
        // format; flashing it reports the mismatch.
        Some(Err(_)) | None => by_name,
    };
    Ok(match format {
        Some(format) => Class::Image(scanned(name, path, &meta, format)),
        None => Class::Unrecognised,
    })
}

fn scanned(name: String, path: PathBuf, meta: &fs::Metadata, format: ImageFormat) -> ScannedFile {
    let sidecar = read_sidecar(&path);
    let signed_by = read_signed(&path, sidecar.fresh_sha256());
    let cache_ref_prefix = names::cache_ref_prefix(&name).map(str::to_owned);
    let identity = FileIdentity::of(meta);
    ScannedFile {
        size_bytes: identity.size,
        modified: identity.mtime,
        identity,
        format,
        sidecar,
        cache_ref_prefix,
        signed_by,
        name,
        path,
    }
}

/// Classify every entry directly in `root` (non-recursive).
fn classify_all(root: &Path) -> io::Result<Vec<(String, Class)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(root)? {
        let entry = match entry {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let class = classify(root, &entry)?;
        out.push((entry.file_name().to_string_lossy().into_owned(), class));
    }
    // Byte order of the names, as upstream's sorted path order.
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The image files in `root`, sorted by name: regular files with one link
/// (no symlinks, no directories, no hard links to files elsewhere) that
/// are not bty's own files and whose name has an image
/// extension or whose first bytes carry a known magic. Files that vanish
/// during the scan are skipped.
pub fn scan_image_root(root: &Path) -> io::Result<Vec<ScannedFile>> {
    Ok(classify_all(root)?
        .into_iter()
        .filter_map(|(_, class)| match class {
            Class::Image(f) => Some(f),
            _ => None,
        })
        .collect())
}

/// The one file `name` in `root` as a scan would list it, or `None` when a
/// scan would not list it (gone, a link, bty's own, not an image): what
/// a download or upload that just landed tells the catalog, so the
/// catalog need not scan the whole root for it.
pub fn scan_one(root: &Path, name: &str) -> io::Result<Option<ScannedFile>> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Ok(None);
    }
    let meta = fs::symlink_metadata(root.join(name));
    Ok(match classify_named(root, name.to_owned(), meta)? {
        Class::Image(file) => Some(file),
        _ => None,
    })
}

/// Names of regular files in `root` that the scan ignores and bty does not
/// own (hard-linked files included), sorted: for the start-up
/// "unrecognised file" warning.
pub fn unrecognised_files(root: &Path) -> io::Result<Vec<String>> {
    Ok(classify_all(root)?
        .into_iter()
        .filter_map(|(name, class)| matches!(class, Class::Unrecognised).then_some(name))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sidecar::write_sidecar;

    const SHA: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    const ZSTD: &[u8] = &[0x28, 0xB5, 0x2F, 0xFD, 0, 0, 0, 0];

    fn put(root: &Path, name: &str, bytes: &[u8]) {
        fs::write(root.join(name), bytes).expect("write");
    }

    fn root_with_everything() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = dir.path();
        for (name, bytes) in [
            ("b.img", &b"raw bytes"[..]),
            ("a.img.gz", &[0x1F, 0x8B, 0x08, 0][..]),
            ("zstd-in-disguise.img", ZSTD),
            ("noext", ZSTD),
            ("catalog-ecfc56475d8b-x.img.gz", &[0x1F, 0x8B, 0x08, 0][..]),
            ("catalog-foo.img", b"operator file"),
            ("notes.txt", b"hello"),
            ("disk.tar.gz", &[0x1F, 0x8B, 0x08, 0][..]),
            (MARKER_FILE, b"{}"),
            ("a.img.gz.sha256", b"x"),
            ("up.img.partial", b"x"),
            (".hidden.img", b"x"),
            (".b.img.sha256.tmp-1-2", b"x"),
            ("b.img.sha256.tmp", b"x"),
        ] {
            put(r, name, bytes);
        }
        fs::create_dir(r.join("dir.img")).expect("mkdir");
        // Another name for a file elsewhere: never listed, only warned about.
        fs::write(r.join(".elsewhere"), b"raw bytes").expect("write");
        fs::hard_link(r.join(".elsewhere"), r.join("hardlink.img")).expect("link");
        let fifo = std::ffi::CString::new(r.join("fifo.img").to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        std::os::unix::fs::symlink("/etc/hostname", r.join("link.img")).expect("symlink");
        std::os::unix::fs::symlink("missing", r.join("dangling.img")).expect("symlink");
        dir
    }

    #[test]
    fn lists_images_only_sorted() {
        let dir = root_with_everything();
        let files = scan_image_root(dir.path()).expect("scan");
        let got: Vec<(&str, ImageFormat, Option<&str>)> = files
            .iter()
            .map(|f| (f.name.as_str(), f.format, f.cache_ref_prefix.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("a.img.gz", ImageFormat::ImgGz, None),
                ("b.img", ImageFormat::Img, None),
                (
                    "catalog-ecfc56475d8b-x.img.gz",
                    ImageFormat::ImgGz,
                    Some("ecfc56475d8b")
                ),
                ("catalog-foo.img", ImageFormat::Img, None),
                ("noext", ImageFormat::ImgZst, None),
                ("zstd-in-disguise.img", ImageFormat::ImgZst, None),
            ]
        );
        let b = &files[1];
        assert_eq!(b.path, dir.path().join("b.img"));
        assert_eq!(b.size_bytes, 9);
        let meta = fs::symlink_metadata(&b.path).expect("stat");
        assert_eq!(b.identity, FileIdentity::of(&meta));
        assert_eq!(b.sidecar, Sidecar::Missing);
        assert_eq!(files[0].sidecar, Sidecar::Invalid);
    }

    #[test]
    fn reports_sidecar_state() {
        let dir = tempfile::tempdir().expect("tempdir");
        put(dir.path(), "x.img", b"abc");
        write_sidecar(&dir.path().join("x.img"), SHA).expect("sidecar");
        let files = scan_image_root(dir.path()).expect("scan");
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].sidecar, Sidecar::Fresh(SHA.to_owned()));
    }

    #[test]
    fn misnamed_file_keeps_its_name_format() {
        let dir = tempfile::tempdir().expect("tempdir");
        put(dir.path(), "broken.img.xz", b"not xz at all");
        let files = scan_image_root(dir.path()).expect("scan");
        assert_eq!(files[0].format, ImageFormat::ImgXz);
    }

    #[test]
    fn unrecognised_are_foreign_regular_files() {
        let dir = root_with_everything();
        assert_eq!(
            unrecognised_files(dir.path()).expect("survey"),
            ["disk.tar.gz", "hardlink.img", "notes.txt"]
        );
    }

    #[test]
    fn one_file_is_listed_as_the_whole_scan_lists_it() {
        let dir = root_with_everything();
        let whole = scan_image_root(dir.path()).expect("scan");
        for file in &whole {
            let one = scan_one(dir.path(), &file.name).expect("scan one");
            assert_eq!(one.as_ref(), Some(file), "{}", file.name);
        }
        for unlisted in [
            "link.img",
            "dangling.img",
            "fifo.img",
            "dir.img",
            "hardlink.img",
            "notes.txt",
            "a.img.gz.sha256",
            "up.img.partial",
            ".hidden.img",
            "missing.img",
            "../b.img",
            "..",
            "",
        ] {
            let one = scan_one(dir.path(), unlisted).expect("scan one");
            assert_eq!(one, None, "{unlisted:?} is not listed");
        }
    }

    #[test]
    fn empty_and_missing_roots() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(scan_image_root(dir.path()).expect("scan").is_empty());
        assert!(scan_image_root(&dir.path().join("nope")).is_err());
    }
}
