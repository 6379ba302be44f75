//! `virtual_size` per format, and `HashingReader` against `sha256sum`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fs::File;
use std::io::Read;
use std::process::Command;

use bty_flash::{HashingReader, virtual_size};
use support::*;

#[test]
fn virtual_size_per_format() {
    for ext in ["img", "img.zst", "img.xz", "qcow2"] {
        assert_eq!(
            virtual_size(&File::open(image(&format!("disk.{ext}"))).unwrap()).unwrap(),
            Some(IMAGE_SIZE),
            "{ext}"
        );
    }
    for ext in ["img.zst", "img.xz"] {
        assert_eq!(
            virtual_size(&File::open(image(&format!("multi.{ext}"))).unwrap()).unwrap(),
            Some(IMAGE_SIZE),
            "multi.{ext}"
        );
    }
    // gzip's ISIZE is mod 2^32 and bzip2 has no size: unknown.
    assert_eq!(
        virtual_size(&File::open(image("disk.img.gz")).unwrap()).unwrap(),
        None
    );
    assert_eq!(
        virtual_size(&File::open(image("disk.img.bz2")).unwrap()).unwrap(),
        None
    );
    // Damaged metadata is "unknown", not a wrong number.
    assert_eq!(
        virtual_size(&File::open(image("truncated.img.xz")).unwrap()).unwrap(),
        None
    );
}

#[test]
fn zstd_without_content_size_is_unknown() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("piped.zst");
    // From a pipe, zstd cannot write the content size into the header.
    run(Command::new("bash").arg("-c").arg(format!(
        "head -c 100000 /dev/urandom | zstd -q -c > {}",
        out.display()
    )));
    assert_eq!(virtual_size(&File::open(&out).unwrap()).unwrap(), None);
}

#[test]
fn hashing_reader_matches_sha256sum() {
    let path = image("disk.img.xz");
    let mut r = HashingReader::new(File::open(&path).unwrap());
    let tally = r.tally();
    std::io::copy(&mut r, &mut std::io::sink()).unwrap();
    let out = String::from_utf8(run(Command::new("sha256sum").arg(&path))).unwrap();
    assert_eq!(
        tally.sha256().unwrap(),
        out.split_whitespace().next().unwrap()
    );
    assert_eq!(tally.bytes(), std::fs::metadata(&path).unwrap().len());
    // The same digest, expected, passes.
    let mut r = HashingReader::new(File::open(&path).unwrap())
        .expect_sha256(tally.sha256().unwrap().to_uppercase());
    r.read_to_end(&mut Vec::new()).unwrap();
}
