//! Tests for src canonicalisation: upstream's test vectors (the refs must
//! stay byte-identical, or stored refs stop matching) and the fixes.

use super::*;

#[test]
fn reference_hashes_match_upstream() {
    for (src, want) in [
        (
            "oras://ghcr.io/safl/nosi/debian-sysdev:latest",
            "ecfc56475d8b8affa67d7c6d1297b48b8b2f5c5494b45c8d153e56f608037e7c",
        ),
        (
            "oras://ghcr.io/safl/nosi/ubuntu-sysdev:latest",
            "8e54fdb2152263965fbdeb8b2a60cdadcd3335c4a600a098affcf75726acd4b9",
        ),
        (
            "oras://ghcr.io/safl/nosi/fedora-sysdev:latest",
            "e3a4d87079adf8daab37f7533dc397bfac3f69ef74e98ab6d6a84421f866295f",
        ),
        (
            "file://debian.img.gz",
            "2851310dad05bf963ec0c718ad83579b4157d4a387b4bc5f6997f2e6c837460d",
        ),
        (
            "https://example.com/foo.img.gz",
            "8901a5e57899d932786eeee7b6db93ec98a0e2c386cf3dc3541f2203a90f9dbe",
        ),
        (
            "https://EXAMPLE.com:443/foo.img.gz",
            "8901a5e57899d932786eeee7b6db93ec98a0e2c386cf3dc3541f2203a90f9dbe",
        ),
    ] {
        assert_eq!(image_ref(src).unwrap(), want, "{src}");
    }
}

#[test]
fn canonicalises_table() {
    let digest = format!("sha256:{}", "ab".repeat(32));
    let digest_src = format!("oras://ghcr.io/safl/foo@{digest}");
    let upper_digest_src = format!("oras://GHCR.io/SAFL/foo@{digest}");
    for (src, want) in [
        // file://
        ("file://./x", "file://x"),
        ("file://a//b", "file://a/b"),
        ("file:///x", "file://x"),
        ("file://a/./b/c", "file://a/b/c"),
        ("file://Debian.IMG", "file://Debian.IMG"),
        ("FILE://x", "file://x"),
        // http(s)://
        ("https://EXAMPLE.com/foo", "https://example.com/foo"),
        ("HTTPS://example.com/foo", "https://example.com/foo"),
        ("Http://example.com/foo", "http://example.com/foo"),
        ("https://example.com:443/foo", "https://example.com/foo"),
        ("http://example.com:80/foo", "http://example.com/foo"),
        ("http://example.com:443/foo", "http://example.com:443/foo"),
        ("https://example.com:80/foo", "https://example.com:80/foo"),
        (
            "https://example.com:8080/foo",
            "https://example.com:8080/foo",
        ),
        (
            "https://example.com/Path/Foo.GZ",
            "https://example.com/Path/Foo.GZ",
        ),
        (
            "https://example.com/foo?a=1&b=2",
            "https://example.com/foo?a=1&b=2",
        ),
        ("https://example.com/p/", "https://example.com/p/"),
        ("https://example.com/a%20b", "https://example.com/a%20b"),
        ("https://example.com/a#Frag", "https://example.com/a#Frag"),
        ("https://example.com", "https://example.com"),
        ("https://example.com?q", "https://example.com?q"),
        ("http://example.com:/a", "http://example.com/a"),
        ("http://example.com:0080/a", "http://example.com/a"),
        // fixed upstream bug: IPv6 literals keep their brackets
        ("http://[::1]:8080/a", "http://[::1]:8080/a"),
        ("http://[::1]:80/a", "http://[::1]/a"),
        ("https://[FE80::1]/a", "https://[fe80::1]/a"),
        // oras://
        (
            "oras://GHCR.IO/safl/foo:latest",
            "oras://ghcr.io/safl/foo:latest",
        ),
        (
            "oras://ghcr.io/SAFL/Foo:latest",
            "oras://ghcr.io/safl/foo:latest",
        ),
        (
            "oras://ghcr.io/safl/foo:LATEST",
            "oras://ghcr.io/safl/foo:LATEST",
        ),
        ("ORAS://ghcr.io/safl/foo:v1", "oras://ghcr.io/safl/foo:v1"),
        ("oras://localhost:5000/a/b:T", "oras://localhost:5000/a/b:T"),
        (&digest_src, &digest_src),
        (&upper_digest_src, &digest_src),
    ] {
        assert_eq!(canonicalise_src(src).as_deref(), Ok(want), "{src}");
    }
}

#[test]
fn rejects_table() {
    type Check = fn(&SrcError) -> bool;
    let cases: &[(&str, Check)] = &[
        ("", |e| matches!(e, SrcError::Empty)),
        ("ftp://example.com/x", |e| {
            matches!(e, SrcError::UnsupportedScheme(_))
        }),
        ("example.com/x", |e| {
            matches!(e, SrcError::UnsupportedScheme(_))
        }),
        ("file:/x", |e| matches!(e, SrcError::UnsupportedScheme(_))),
        ("file://../etc/passwd", |e| {
            matches!(e, SrcError::FileTraversal(_))
        }),
        ("file://a/../../x", |e| {
            matches!(e, SrcError::FileTraversal(_))
        }),
        ("file://", |e| matches!(e, SrcError::FileEmpty(_))),
        ("file://./.", |e| matches!(e, SrcError::FileEmpty(_))),
        ("file:///", |e| matches!(e, SrcError::FileEmpty(_))),
        ("file://a\0b", |e| matches!(e, SrcError::ControlChar(_))),
        ("https://example.com/a\nb", |e| {
            matches!(e, SrcError::ControlChar(_))
        }),
        ("https://", |e| matches!(e, SrcError::MissingHost(_))),
        ("https:///path", |e| matches!(e, SrcError::MissingHost(_))),
        ("https://:8080/path", |e| {
            matches!(e, SrcError::MissingHost(_))
        }),
        ("https://user:pw@example.com/a", |e| {
            matches!(e, SrcError::Userinfo(_))
        }),
        ("https://user@example.com/a", |e| {
            matches!(e, SrcError::Userinfo(_))
        }),
        ("http://u:p@[::1]/a", |e| matches!(e, SrcError::Userinfo(_))),
        ("oras://user:pw@ghcr.io/a/b:t", |e| {
            matches!(e, SrcError::Userinfo(_))
        }),
        ("https://example.com:99999/a", |e| {
            matches!(e, SrcError::Port { .. })
        }),
        ("https://example.com:8o/a", |e| {
            matches!(e, SrcError::Port { .. })
        }),
        ("https://example.com:+80/a", |e| {
            matches!(e, SrcError::Port { .. })
        }),
        ("https://exa mple.com/a", |e| {
            matches!(e, SrcError::Host { .. })
        }),
        ("http://[::1/a", |e| matches!(e, SrcError::Host { .. })),
        ("http://[::1]x/a", |e| matches!(e, SrcError::Host { .. })),
        ("http://[zz]/a", |e| matches!(e, SrcError::Host { .. })),
        ("oras://", |e| matches!(e, SrcError::Oras { .. })),
        ("oras://ghcr.io/foo:latest", |e| {
            matches!(e, SrcError::Oras { .. })
        }),
        ("oras://ghcr.io/safl/foo", |e| {
            matches!(e, SrcError::Oras { .. })
        }),
        ("oras://ghcr.io/safl/foo@sha256:abc", |e| {
            matches!(e, SrcError::Oras { .. })
        }),
    ];
    for (src, is_expected) in cases {
        match canonicalise_src(src) {
            Ok(c) => panic!("{src:?} canonicalised to {c:?}"),
            Err(e) => assert!(is_expected(&e), "{src:?}: unexpected {e:?}"),
        }
    }
}

#[test]
fn pinned_properties() {
    let r = |s| image_ref(s).unwrap();
    assert_ne!(
        r("file://Debian.img"),
        r("file://debian.img"),
        "file path case matters"
    );
    assert_ne!(
        r("oras://ghcr.io/a/b:Latest"),
        r("oras://ghcr.io/a/b:latest"),
        "tag case matters"
    );
    assert_eq!(
        r("oras://GHCR.io/a/b:t"),
        r("oras://ghcr.io/a/b:t"),
        "host case does not"
    );
    assert_ne!(
        r("https://h/p/"),
        r("https://h/p"),
        "trailing slash matters"
    );
    assert_ne!(r("file://debian.img.gz"), r("https://h/debian.img.gz"));
    assert_eq!(r("https://h/x").len(), 64);
}

#[test]
fn userinfo_error_masks_the_password() {
    let msg = canonicalise_src("https://alice:s3cret@example.com/a")
        .unwrap_err()
        .to_string();
    assert!(!msg.contains("s3cret"), "{msg}");
    assert!(msg.contains("https://***@example.com/a"), "{msg}");
}

#[test]
fn errors_name_the_value() {
    for src in [
        "ftp://x/y",
        "file://../x",
        "https://h:99999/a",
        "oras://ghcr.io/foo:t",
    ] {
        let msg = canonicalise_src(src).unwrap_err().to_string();
        assert!(msg.contains(src), "{msg}");
    }
}

#[test]
fn scheme_is_case_insensitive() {
    for (src, want) in [
        ("FILE://x", Scheme::File),
        ("hTTp://x", Scheme::Http),
        ("HTTPS://x", Scheme::Https),
        ("Oras://x", Scheme::Oras),
    ] {
        assert_eq!(scheme(src), Ok(want), "{src}");
    }
    assert_eq!(scheme(""), Err(SrcError::Empty));
    assert!(matches!(
        scheme("s3://b/k"),
        Err(SrcError::UnsupportedScheme(_))
    ));
}

#[test]
fn url_file_name_table() {
    for (src, want) in [
        ("https://host/dir/foo.img.gz", Some("foo.img.gz")),
        ("HTTP://host/foo.img?x=1/2#y", Some("foo.img")),
        ("https://host/a%20b.img", Some("a%20b.img")),
        ("https://host/x#frag/z", Some("x")),
        ("https://host", None),
        ("https://host/", None),
        ("https://host/dir/", None),
        ("https://host?q=a/b", None),
        ("oras://ghcr.io/a/b:t", None),
        ("file://x.img", None),
    ] {
        assert_eq!(url_file_name(src).as_deref(), want, "{src}");
    }
}
