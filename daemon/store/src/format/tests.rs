//! Table tests for magic-byte sniffing and [`super::detect`].

use super::*;

fn zstd() -> Vec<u8> {
    vec![0x28, 0xB5, 0x2F, 0xFD, 0x04, 0x00]
}
fn xz() -> Vec<u8> {
    vec![0xFD, b'7', b'z', b'X', b'Z', 0x00, 0x00, 0x04]
}
fn gzip() -> Vec<u8> {
    vec![0x1F, 0x8B, 0x08, 0x00, 0, 0, 0, 0]
}
fn bzip2() -> Vec<u8> {
    b"BZh91AY&SY\x00\x01".to_vec()
}
fn bzip2_empty() -> Vec<u8> {
    b"BZh9\x17\x72\x45\x38\x50\x90\x00\x00\x00\x00".to_vec()
}
fn qcow2(version: u8) -> Vec<u8> {
    let mut h = b"QFI\xfb\x00\x00\x00".to_vec();
    h.push(version);
    h.extend_from_slice(&[0; 8]);
    h
}
fn tar() -> Vec<u8> {
    let mut h = vec![0u8; 512];
    h[..5].copy_from_slice(b"a.img");
    h[257..262].copy_from_slice(b"ustar");
    h
}
fn raw() -> Vec<u8> {
    let mut h = vec![0u8; 512];
    h[510] = 0x55;
    h[511] = 0xAA;
    h
}

#[test]
fn sniff_table() {
    for (header, want) in [
        (zstd(), Some(Container::Zstd)),
        (xz(), Some(Container::Xz)),
        (gzip(), Some(Container::Gzip)),
        (bzip2(), Some(Container::Bzip2)),
        (bzip2_empty(), Some(Container::Bzip2)),
        (qcow2(2), Some(Container::Qcow2)),
        (qcow2(3), Some(Container::Qcow2)),
        (qcow2(1), None),
        (qcow2(4), None),
        (b"QFI\xfb".to_vec(), None),
        (b"BZh0".to_vec(), None),
        (b"BZh9hello!".to_vec(), None),
        (b"BZh9".to_vec(), None),
        (vec![0x1F, 0x8B, 0x07], None),
        (vec![0x28, 0xB5, 0x2F], None),
        (raw(), None),
        (Vec::new(), None),
    ] {
        assert_eq!(sniff(&header), want, "{header:02x?}");
    }
}

#[test]
fn container_of_each_format() {
    for (f, c) in [
        (ImageFormat::Img, Container::Raw),
        (ImageFormat::Raw, Container::Raw),
        (ImageFormat::Iso, Container::Raw),
        (ImageFormat::ImgZst, Container::Zstd),
        (ImageFormat::ImgXz, Container::Xz),
        (ImageFormat::ImgGz, Container::Gzip),
        (ImageFormat::ImgBz2, Container::Bzip2),
        (ImageFormat::Qcow2, Container::Qcow2),
    ] {
        assert_eq!(f.container(), c);
        if c != Container::Raw {
            assert_eq!(c.default_format(), f);
        }
    }
}

#[test]
fn detect_trusts_bytes_over_name() {
    use ImageFormat::*;
    for (name, header, want) in [
        ("a.img.zst", zstd(), ImgZst),
        ("a.img", zstd(), ImgZst),
        ("a.img", qcow2(3), Qcow2),
        ("a.raw", xz(), ImgXz),
        ("a.img.gz", xz(), ImgXz),
        ("a.qcow2", gzip(), ImgGz),
        ("a.img.bz2", bzip2(), ImgBz2),
        ("disk", gzip(), ImgGz),
        ("disk.bin", qcow2(2), Qcow2),
        ("download", bzip2_empty(), ImgBz2),
        ("a.img", raw(), Img),
        ("a.iso", raw(), Iso),
        ("a.raw", raw(), Raw),
        ("a.IMG.XZ", xz(), ImgXz),
        // No bytes yet: the name is all there is.
        ("a.img.gz", Vec::new(), ImgGz),
        ("a.qcow2", Vec::new(), Qcow2),
    ] {
        assert_eq!(detect(name, &header), Ok(want), "{name}");
    }
}

#[test]
fn detect_errors() {
    for (name, header) in [("a.bin", raw()), ("notes.txt", Vec::new())] {
        let err = detect(name, &header).expect_err(name);
        assert!(matches!(err, FormatError::Unrecognised { .. }), "{name}");
        assert!(err.to_string().contains(SUPPORTED_EXTENSIONS), "{err}");
    }
    for (name, header) in [
        ("a.tar.gz", gzip()),
        ("a.tgz", Vec::new()),
        ("a.tar", raw()),
        ("a.img", tar()),
        ("upload", tar()),
    ] {
        let err = detect(name, &header).expect_err(name);
        assert!(matches!(err, FormatError::Tarball { .. }), "{name}");
        assert!(err.to_string().contains("tar -xf"), "{err}");
    }
    for (name, header, claimed) in [
        ("a.img.gz", raw(), ImageFormat::ImgGz),
        ("a.qcow2", raw(), ImageFormat::Qcow2),
        ("a.img.bz2", b"BZh9".to_vec(), ImageFormat::ImgBz2),
    ] {
        assert_eq!(
            detect(name, &header),
            Err(FormatError::Mismatch {
                name: name.to_owned(),
                claimed
            })
        );
    }
}

#[test]
fn image_names() {
    for (name, want) in [
        ("a.img", true),
        ("a.ISO", true),
        ("a.img.zst", true),
        (".img", false),
        ("a.tar.gz", false),
        ("a.gz", false),
        ("a", false),
    ] {
        assert_eq!(is_image_name(name), want, "{name}");
    }
}

#[test]
fn sniffs_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("x");
    let mut long = qcow2(3);
    long.resize(4096, 0xEE);
    std::fs::write(&path, &long).expect("write");
    assert_eq!(read_header(&path).expect("read").len(), SNIFF_LEN);
    assert_eq!(sniff_file(&path).expect("sniff"), Some(Container::Qcow2));
    std::fs::write(&path, b"").expect("write");
    assert_eq!(sniff_file(&path).expect("sniff"), None);
    assert!(sniff_file(&dir.path().join("missing")).is_err());
}
