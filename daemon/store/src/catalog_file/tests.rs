//! Tests for catalog.toml parsing: one per rule, round-trips, fixtures.

use super::*;

const AT: &str = "test.toml";
const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// Copy of `shared/reference/starter-catalog.toml` (v0.33.29).
const STARTER: &str = r#"version = 1

[[images]]
name = "nosi debian-sysdev (x86_64, rolling)"
src = "oras://ghcr.io/safl/nosi/debian-sysdev:latest"
format = "img.gz"
description = "Debian 13 trixie sysdev image, x86_64"

[[images]]
name = "nosi ubuntu-sysdev (x86_64, rolling)"
src = "oras://ghcr.io/safl/nosi/ubuntu-sysdev:latest"
format = "img.gz"
description = "Ubuntu 26.04 LTS resolute sysdev image, x86_64"

[[images]]
name = "nosi fedora-sysdev (x86_64, rolling)"
src = "oras://ghcr.io/safl/nosi/fedora-sysdev:latest"
format = "img.gz"
description = "Fedora 44 sysdev image, x86_64"

[[images]]
name = "bty-server (x86_64, v0.33.29)"
src = "https://github.com/safl/bty/releases/download/v0.33.29/bty-server-x86_64-v0.33.29.img.gz"
format = "img.gz"
description = "bty-server v0.33.29 appliance for x86_64"
"#;

fn parse(text: &str) -> Result<CatalogFile, CatalogError> {
    CatalogFile::parse(text.as_bytes(), AT)
}

/// A catalog with one entry made of `body` lines.
fn one(body: &str) -> String {
    format!("version = 1\n[[images]]\n{body}\n")
}

fn roundtrip(file: &CatalogFile) -> CatalogFile {
    let text = file.to_toml_string();
    CatalogFile::parse(text.as_bytes(), "rewritten")
        .unwrap_or_else(|e| panic!("rewritten catalog does not parse: {e}\n{text}"))
}

#[test]
fn starter_catalog_parses() {
    let cat = parse(STARTER).unwrap();
    assert_eq!(cat.entries.len(), 4);
    let first = &cat.entries[0];
    assert_eq!(&*first.name, "nosi debian-sysdev (x86_64, rolling)");
    assert_eq!(&*first.src, "oras://ghcr.io/safl/nosi/debian-sysdev:latest");
    assert_eq!(first.format.as_deref(), Some("img.gz"));
    assert_eq!(first.sha256, None);
    assert_eq!(
        first.description.as_deref(),
        Some("Debian 13 trixie sysdev image, x86_64")
    );
    assert_eq!(
        first.image_ref().unwrap(),
        "ecfc56475d8b8affa67d7c6d1297b48b8b2f5c5494b45c8d153e56f608037e7c"
    );
    assert_eq!(
        first.cache_file_name().unwrap(),
        "catalog-ecfc56475d8b-nosi-debian-sysdev-x86_64-rolling.img.gz"
    );
    assert_eq!(roundtrip(&cat), cat);
}

#[test]
fn valid_catalogs() {
    for (text, entries) in [
        ("version = 1\n", 0),
        ("version = 1\nimages = []\n", 0),
        (&one("name = \"a\"\nsrc = \"https://h/a.img\"") as &str, 1),
        (
            &one(&format!(
                "name = \"a\"\nsrc = \"https://h/a.img\"\nsha256 = \"  {}  \"\nsize_bytes = 0",
                HEX.to_uppercase()
            )),
            1,
        ),
        (
            "version = 1\n[[images]]\nname = \"a\"\nsrc = \"oras://ghcr.io/a/b:t\"\n[[images]]\nname = \"b\"\nsrc = \"oras://ghcr.io/a/b:T\"\n",
            2,
        ),
    ] {
        let cat = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(cat.entries.len(), entries, "{text}");
    }
}

#[test]
fn sha256_is_trimmed_and_lowercased() {
    let text = one(&format!(
        "name = \"a\"\nsrc = \"https://h/a\"\nsha256 = \" {} \"",
        HEX.to_uppercase()
    ));
    assert_eq!(
        parse(&text).unwrap().entries[0].sha256.map(|d| d.to_hex()),
        Some(HEX.to_owned())
    );
}

#[test]
fn format_is_derived_from_name_when_absent_or_empty() {
    for (fields, want) in [
        ("name = \"debian.img.gz\"", Some("img.gz")),
        ("name = \"Debian.QCOW2\"\nformat = \"\"", Some("qcow2")),
        ("name = \"no extension\"", None),
        ("name = \"x.img\"\nformat = \"weird\"", Some("weird")),
    ] {
        let text = one(&format!("{fields}\nsrc = \"https://h/x\""));
        let cat = parse(&text).unwrap_or_else(|e| panic!("{fields}: {e}"));
        assert_eq!(cat.entries[0].format.as_deref(), want, "{fields}");
    }
}

#[test]
fn ref_is_verified_and_not_stored() {
    let good = "8901a5e57899d932786eeee7b6db93ec98a0e2c386cf3dc3541f2203a90f9dbe";
    let text = one(&format!(
        "name = \"a\"\nsrc = \"https://EXAMPLE.com:443/foo.img.gz\"\nref = \" {} \"",
        good.to_uppercase()
    ));
    let cat = parse(&text).unwrap();
    assert!(cat.entries[0].extra.is_empty(), "ref is not kept");
    assert!(!cat.to_toml_string().contains("ref"));
}

#[test]
fn size_bytes_is_a_u64() {
    let text = one("name = \"a\"\nsrc = \"https://h/a\"\nsize_bytes = 9223372036854775807");
    assert_eq!(
        parse(&text).unwrap().entries[0].size_bytes,
        Some(i64::MAX as u64)
    );
}

/// Every rule: the catalog and a fragment its message must contain.
#[test]
fn rejects_with_message() {
    let long = format!("version = 1\n# {}\n", "x".repeat(DEFAULT_MAX_CATALOG_BYTES));
    let cases: Vec<(String, &str)> = vec![
        (long, "over the 67108864-byte limit (max_catalog_bytes)"),
        ("version = ".into(), "is not valid TOML: "),
        ("version = 1\nversion = 1\n".into(), "is not valid TOML"),
        ("".into(), "version=(missing), this bty understands version=1"),
        ("images = []".into(), "version=(missing)"),
        ("version = 2".into(), "version=2, this bty understands version=1"),
        ("version = \"1\"".into(), "version=\"1\", this bty"),
        ("version = 1.0".into(), "version=1.0, this bty"),
        ("version = 1\nimages = \"x\"".into(), "`images` must be an array of tables, got string"),
        ("version = 1\n[images]\nname = \"a\"".into(), "`images` must be an array of tables, got table"),
        ("version = 1\nimages = [1]".into(), "`images` entry #1 must be a table, got integer"),
        (one("src = \"https://h/a\""), "catalog entry missing required field: 'name' (entry #1)"),
        (one("name = \"a\""), "catalog entry missing required field: 'src' (entry #1 (\"a\"))"),
        (one("name = 42\nsrc = \"https://h/a\""), "entry #1: `name` must be a string, got integer"),
        (one("name = \"\"\nsrc = \"https://h/a\""), "name must not be empty"),
        (one("name = \"  \"\nsrc = \"https://h/a\""), "name must not be empty"),
        (one("name = \"a\"\nsrc = 1"), "`src` must be a string, got integer"),
        (one("name = \"a\"\nsrc = \"file://a.img\""), "catalog manifests carry only remote sources (oras:// / http:// / https://)"),
        (one("name = \"a\"\nsrc = \"FILE://a.img\""), "src \"FILE://a.img\" is local"),
        (one("name = \"a\"\nsrc = \"ftp://h/a.img\""), "entry #1 (\"a\"): unsupported src scheme in \"ftp://h/a.img\""),
        (one("name = \"a\"\nsrc = \"https://u:p@h/a.img\""), "entry #1 (\"a\"): src \"https://***@h/a.img\" carries userinfo"),
        (one("name = \"a\"\nsrc = \"oras://ghcr.io/foo:latest\""), "malformed oras src \"oras://ghcr.io/foo:latest\""),
        (one("name = \"a\"\nsrc = \"https://h/a\"\nsha256 = \"abc\""), "sha256 must be a 64-char lower-case hex string, got \"abc\""),
        (one(&format!("name = \"a\"\nsrc = \"https://h/a\"\nsha256 = \"{}g\"", &HEX[1..])), "sha256 must be a 64-char"),
        (one("name = \"a\"\nsrc = \"https://h/a\"\nsha256 = 5"), "sha256 must be a 64-char lower-case hex string, got 5"),
        (one("name = \"a\"\nsrc = \"https://h/a\"\nsize_bytes = -1"), "size_bytes must be a non-negative integer, got -1"),
        (one("name = \"a\"\nsrc = \"https://h/a\"\nsize_bytes = \"12\""), "size_bytes must be a non-negative integer, got \"12\""),
        (one("name = \"a\"\nsrc = \"https://h/a\"\nsize_bytes = 1.5"), "size_bytes must be a non-negative integer, got 1.5"),
        (one("name = \"a\"\nsrc = \"https://h/a\"\ndescription = 3"), "`description` must be a string, got integer"),
        (one("name = \"a\"\nsrc = \"https://h/a\"\nformat = true"), "`format` must be a string, got boolean"),
        (one(&format!("name = \"a\"\nsrc = \"https://h/a\"\nref = \"{HEX}\"")), "ref 0123456789abcdef"),
        (one("name = \"a\"\nsrc = \"ftp://h/a\"\nref = \"abc\""), "cannot verify ref because src is malformed"),
        (one("name = \"a\"\nsrc = \"https://h/a\"\nref = 1"), "`ref` must be a string, got integer"),
        (
            "version = 1\n[[images]]\nname = \"a\"\nsrc = \"https://h/a\"\n[[images]]\nname = \"a\"\nsrc = \"https://h/b\"\n".into(),
            "duplicate image name \"a\"",
        ),
        (
            "version = 1\n[[images]]\nname = \"a\"\nsrc = \"https://h/a\"\n[[images]]\nname = \"b\"\nsrc = \"HTTPS://H:443/a\"\n".into(),
            "duplicate src https://h/a: entries \"a\" and \"b\"",
        ),
    ];
    for (text, want) in cases {
        let shown: String = text.chars().take(120).collect();
        match parse(&text) {
            Ok(cat) => panic!("{shown:?} parsed: {cat:?}"),
            Err(e) => {
                let msg = e.to_string();
                assert!(
                    msg.contains(want),
                    "{shown:?}\n  got:  {msg}\n  want: {want}"
                );
                assert!(msg.starts_with("catalog at test.toml"), "{msg}");
            }
        }
    }
}

#[test]
fn ref_mismatch_names_expected() {
    let text = one(&format!(
        "name = \"a\"\nsrc = \"https://example.com/foo.img.gz\"\nref = \"{HEX}\""
    ));
    let err = parse(&text).unwrap_err();
    assert!(matches!(err, CatalogError::RefMismatch { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("8901a5e57899d932786eeee7b6db93ec98a0e2c386cf3dc3541f2203a90f9dbe")
    );
}

#[test]
fn rejects_non_utf8() {
    let err = CatalogFile::parse(b"version = 1\nname = \"\xff\"\n", AT).unwrap_err();
    assert!(matches!(err, CatalogError::NotToml { .. }), "{err:?}");
    assert!(
        err.to_string().contains("not valid TOML: not UTF-8"),
        "{err}"
    );
}

#[test]
fn syntax_error_reports_line() {
    let err = parse("version = 1\n[[images]\n").unwrap_err();
    assert!(err.to_string().contains("at line 2"), "{err}");
}

#[test]
fn size_limit_is_inclusive() {
    let mut text = String::from("version = 1\n#");
    text.push_str(&"x".repeat(DEFAULT_MAX_CATALOG_BYTES - text.len()));
    assert_eq!(text.len(), DEFAULT_MAX_CATALOG_BYTES);
    assert!(parse(&text).is_ok());
    text.push('x');
    assert!(matches!(parse(&text), Err(CatalogError::TooLarge { .. })));
}

#[test]
fn bad_src_message_masks_the_password() {
    let err = parse(&one("name = \"a\"\nsrc = \"https://u:hunter2@h/a.img\"")).unwrap_err();
    assert!(matches!(err, CatalogError::BadSrc { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("https://***@h/a.img"), "{msg}");
    assert!(!msg.contains("hunter2"), "{msg}");
}

#[test]
fn unknown_keys_survive_a_rewrite() {
    let text = r#"version = 1
maintainer = "ops"
mirrors = ["a", "b"]
[meta]
team = "infra"
when = 1979-05-27T07:32:00Z

[[images]]
name = "a"
src = "https://h/a.img"
channel = "stable"
weight = 1.5
"quoted key" = true
labels = { arch = "x86_64" }
[images.notes]
text = "nested"

[[images]]
name = "b"
src = "oras://ghcr.io/a/b:t"
"#;
    let cat = parse(text).unwrap();
    assert_eq!(cat.extra.len(), 3, "{:?}", cat.extra);
    assert_eq!(cat.entries[0].extra.len(), 5, "{:?}", cat.entries[0].extra);
    let again = roundtrip(&cat);
    assert_eq!(again, cat);
    assert_eq!(again.extra["meta"]["team"].as_str(), Some("infra"));
    assert_eq!(
        again.entries[0].extra["notes"]["text"].as_str(),
        Some("nested")
    );
}

#[test]
fn output_layout() {
    let cat = CatalogFile {
        entries: vec![CatalogEntry {
            name: "a".into(),
            src: "https://h/a.img".into(),
            sha256: crate::digest::Sha256Digest::from_hex(HEX),
            format: Some("img".into()),
            size_bytes: Some(7),
            description: None,
            record: Default::default(),
            extra: toml::Table::from_iter([("zz".to_owned(), toml::Value::Integer(1))]),
        }],
        extra: toml::Table::from_iter([("top".to_owned(), toml::Value::Boolean(true))]),
    };
    let text = cat.to_toml_string();
    assert!(text.starts_with("version = 1\ntop = true\n"), "{text}");
    let order: Vec<usize> = [
        "[[images]]",
        "name =",
        "src =",
        "sha256 =",
        "format =",
        "size_bytes =",
        "zz =",
    ]
    .iter()
    .map(|k| {
        text.find(k)
            .unwrap_or_else(|| panic!("{k} missing in\n{text}"))
    })
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
    assert!(!text.contains("description"));
    assert_eq!(roundtrip(&cat), cat);
}

#[test]
fn extra_keys_never_shadow_known_fields() {
    let mut cat = parse(&one("name = \"a\"\nsrc = \"https://h/a\"")).unwrap();
    cat.extra.insert("version".into(), toml::Value::Integer(9));
    cat.entries[0]
        .extra
        .insert("name".into(), toml::Value::String("b".into()));
    let again = roundtrip(&cat);
    assert_eq!(&*again.entries[0].name, "a");
    assert!(again.extra.is_empty() && again.entries[0].extra.is_empty());
}

#[test]
fn hostile_names_round_trip() {
    let names = [
        "quote \" inside",
        "back\\slash",
        "ünïcødé 日本 (x86_64, rolling)",
        "'single' and \"\"\" triple",
        "ends with backslash \\",
        "[[images]] name = \"x\"",
    ];
    let cat = CatalogFile {
        entries: names
            .iter()
            .enumerate()
            .map(|(i, name)| CatalogEntry {
                name: (*name).into(),
                src: format!("https://h/{i}").into(),
                sha256: None,
                format: None,
                size_bytes: None,
                description: Some(format!("desc of {name}").into()),
                record: Default::default(),
                extra: toml::Table::new(),
            })
            .collect(),
        extra: toml::Table::new(),
    };
    assert_eq!(roundtrip(&cat), cat);
}

#[test]
fn names_with_control_characters_are_refused() {
    for name in ["new\\nline", "tab\\there", "esc\\u001b[2J"] {
        let err = parse(&one(&format!(
            "name = \"{name}\"\nsrc = \"https://h/a.img\""
        )))
        .unwrap_err();
        assert!(err.to_string().contains("control characters"), "{err}");
    }
}

#[test]
fn formats_must_be_format_ids() {
    for bad in ["img/../../x", "img\\u0000.sh", "img..gz", "a b", ""] {
        let text = one(&format!(
            "name = \"x\"\nsrc = \"https://h/a.img\"\nformat = \"{bad}\""
        ));
        match parse(&text) {
            Err(err) => assert!(err.to_string().contains("format"), "{bad}: {err}"),
            // An empty format means "derive it from the name".
            Ok(cat) => assert!(
                bad.is_empty(),
                "{bad:?} accepted: {:?}",
                cat.entries[0].format
            ),
        }
    }
    let cat = parse(&one(
        "name = \"x\"\nsrc = \"https://h/a\"\nformat = \"img.zst\"",
    ))
    .unwrap();
    assert_eq!(cat.entries[0].format.as_deref(), Some("img.zst"));
}

/// The configured limit is the one applied; a large catalog parses, and a
/// duplicate name deep in it is still found.
#[test]
fn the_given_limit_applies_and_large_catalogs_parse() {
    let mut text = String::from("version = 1\n");
    let mut i = 0;
    while text.len() <= 4 << 20 {
        text.push_str(&format!(
            "[[images]]\nname = \"n{i}.img\"\nsrc = \"https://h.example/{i}/n{i}.img\"\n"
        ));
        i += 1;
    }
    let err = CatalogFile::parse_up_to(text.as_bytes(), "import", 4 << 20).unwrap_err();
    assert!(
        matches!(err, CatalogError::TooLarge { max, .. } if max == 4 << 20),
        "{err}"
    );
    let file = CatalogFile::parse(text.as_bytes(), "state").unwrap();
    assert_eq!(file.entries.len(), i);
    text.push_str("[[images]]\nname = \"n0.img\"\nsrc = \"https://h.example/again/n0.img\"\n");
    let err = CatalogFile::parse(text.as_bytes(), "state")
        .unwrap_err()
        .to_string();
    assert!(err.contains("n0.img"), "{err}");
}

#[test]
fn bty_record_keys_are_typed_fields_and_round_trip() {
    let text = r#"version = 1

[[images]]
name = "a"
src = "https://h/a.img"
origin = "url"
added_at = "2026-12-03T08:00:00Z"
cached_etag = "\"abc\""
cached_last_modified = "Tue, 01 Dec 2026 10:00:00 GMT"
sha_url = "https://h/SHA256SUMS"

[[images]]
name = "b"
src = "https://h/b.img"
added_at = 5
"#;
    let cat = parse(text).unwrap();
    let a = &cat.entries[0];
    assert_eq!(a.record.origin.as_deref(), Some("url"));
    assert_eq!(a.record.added_at.as_deref(), Some("2026-12-03T08:00:00Z"));
    assert_eq!(a.record.cached_etag.as_deref(), Some("\"abc\""));
    assert_eq!(
        a.record.cached_last_modified.as_deref(),
        Some("Tue, 01 Dec 2026 10:00:00 GMT")
    );
    assert_eq!(a.record.sha_url.as_deref(), Some("https://h/SHA256SUMS"));
    assert!(a.extra.is_empty(), "{:?}", a.extra);
    // A value bty would not have written stays in the table, as written.
    let b = &cat.entries[1];
    assert_eq!(b.record, EntryRecord::default());
    assert_eq!(b.extra["added_at"].as_integer(), Some(5));
    assert_eq!(roundtrip(&cat), cat);
    assert!(
        cat.to_toml_string()
            .contains("added_at = \"2026-12-03T08:00:00Z\"")
    );
    assert!(
        cat.to_toml_string()
            .contains("sha_url = \"https://h/SHA256SUMS\"")
    );
}
