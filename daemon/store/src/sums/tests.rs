//! Tests for checksum-file parsing: each line form, the lookup rules, and
//! hostile input.

use super::*;

const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const C: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn lookup(text: &str, name: &str) -> Result<String, SumsError> {
    digest_for(text.as_bytes(), Some(name))
}

#[test]
fn every_line_form_gives_its_name() {
    let text =
        format!("{A} one.img\n{B}  two.img\n{C} *three.img\n{A}  ./four.img\n{B} *./five.img\n");
    assert_eq!(lookup(&text, "one.img").unwrap(), A);
    assert_eq!(lookup(&text, "two.img").unwrap(), B);
    assert_eq!(lookup(&text, "three.img").unwrap(), C);
    assert_eq!(lookup(&text, "four.img").unwrap(), A);
    assert_eq!(lookup(&text, "five.img").unwrap(), B);
}

#[test]
fn a_debian_sums_file_pins_the_named_image() {
    let text = format!(
        "{A}  debian-12-generic-amd64.json\n{B}  debian-12-generic-amd64.qcow2\n{C}  debian-12-generic-amd64.raw\n"
    );
    assert_eq!(lookup(&text, "debian-12-generic-amd64.qcow2").unwrap(), B);
}

#[test]
fn uppercase_digests_come_out_lowercase() {
    let text = format!("{}  x.img\n", C.to_ascii_uppercase());
    assert_eq!(lookup(&text, "x.img").unwrap(), C);
}

#[test]
fn blank_lines_and_comments_are_skipped() {
    let text = format!("# made by hand\n\n   \n  # indented comment\n{A}  x.img\n\n");
    assert_eq!(lookup(&text, "x.img").unwrap(), A);
}

#[test]
fn one_bare_digest_applies_to_any_name() {
    assert_eq!(lookup(&format!("{A}\n"), "whatever.iso").unwrap(), A);
    assert_eq!(lookup(A, "whatever.iso").unwrap(), A);
    assert_eq!(digest_for(A.as_bytes(), None).unwrap(), A);
}

#[test]
fn a_bare_digest_among_named_lines_matches_nothing() {
    let text = format!("{A}\n{B}  x.img\n");
    assert_eq!(lookup(&text, "x.img").unwrap(), B);
    assert!(matches!(
        lookup(&text, "y.img"),
        Err(SumsError::NotListed { .. })
    ));
}

#[test]
fn a_missing_name_is_refused_listing_a_few_names() {
    let text: String = (0..9).map(|i| format!("{A}  file{i}.img\n")).collect();
    let err = lookup(&text, "other.img").unwrap_err();
    let message = err.to_string();
    assert!(message.contains("\"other.img\" is not listed"), "{message}");
    for i in 0..5 {
        assert!(message.contains(&format!("\"file{i}.img\"")), "{message}");
    }
    assert!(!message.contains("file5.img"), "{message}");
    assert!(message.contains("and 4 more"), "{message}");
}

#[test]
fn a_malformed_line_is_refused_by_number() {
    let text = format!("# header\n{A}  x.img\nnot a digest  y.img\n");
    assert_eq!(
        lookup(&text, "x.img"),
        Err(SumsError::Malformed { line: 3 })
    );
    assert_eq!(
        lookup(&text, "x.img").unwrap_err().to_string(),
        "malformed sha256 line 3"
    );
    // Too short, too long, a non-hex digit, a digest glued to its name.
    for bad in [
        &A[..63],
        &format!("{A}a")[..],
        &format!("g{}", &A[1..])[..],
        &format!("{A}x.img")[..],
        "SHA256 (x.img) = 00",
    ] {
        assert_eq!(
            lookup(bad, "x.img"),
            Err(SumsError::Malformed { line: 1 }),
            "{bad}"
        );
    }
}

#[test]
fn a_sha512_line_gets_its_own_error() {
    let text = format!("{A}{A}  x.img\n");
    let err = lookup(&text, "x.img").unwrap_err();
    assert_eq!(err, SumsError::Sha512 { line: 1 });
    let message = err.to_string();
    assert!(
        message.contains("SHA512 sums are not supported; give a SHA256SUMS file"),
        "{message}"
    );
}

#[test]
fn an_empty_file_lists_nothing() {
    assert_eq!(lookup("", "x.img"), Err(SumsError::Empty));
    assert_eq!(lookup("# only\n\n", "x.img"), Err(SumsError::Empty));
}

#[test]
fn several_sums_need_a_name() {
    let text = format!("{A}  x.img\n{B}  y.img\n");
    assert_eq!(digest_for(text.as_bytes(), None), Err(SumsError::NoName));
}

#[test]
fn the_same_name_twice_must_agree() {
    let same = format!("{A}  x.img\n{A} *x.img\n");
    assert_eq!(lookup(&same, "x.img").unwrap(), A);
    let differ = format!("{A}  x.img\n{B}  x.img\n");
    assert!(matches!(
        lookup(&differ, "x.img"),
        Err(SumsError::Ambiguous { .. })
    ));
}

#[test]
fn crlf_line_ends_are_accepted() {
    let text = format!("# windows\r\n{A}  x.img\r\n{B} *y.img\r\n");
    assert_eq!(lookup(&text, "x.img").unwrap(), A);
    assert_eq!(lookup(&text, "y.img").unwrap(), B);
}

#[test]
fn names_with_spaces_are_whole() {
    let text = format!("{A}  my disk image.img\n{B}  my\n");
    assert_eq!(lookup(&text, "my disk image.img").unwrap(), A);
    assert_eq!(lookup(&text, "my").unwrap(), B);
}

#[test]
fn path_traversal_names_are_only_compared() {
    let text = format!("{A}  ../../etc/passwd\n{B}  /etc/shadow\n");
    // Only the exact string matches; nothing is opened.
    assert_eq!(lookup(&text, "../../etc/passwd").unwrap(), A);
    let err = lookup(&text, "passwd").unwrap_err().to_string();
    assert!(err.contains("\"../../etc/passwd\""), "{err}");
    assert!(matches!(
        lookup(&text, "shadow"),
        Err(SumsError::NotListed { .. })
    ));
}

#[test]
fn nul_bytes_and_invalid_utf8_do_not_match_or_leak() {
    let mut bytes = format!("{A}  x.img\0evil\n").into_bytes();
    bytes.extend_from_slice(B.as_bytes());
    bytes.extend_from_slice(b"  y\xff.img\n");
    assert!(matches!(
        digest_for(&bytes, Some("x.img")),
        Err(SumsError::NotListed { .. })
    ));
    let message = digest_for(&bytes, Some("z.img")).unwrap_err().to_string();
    // Control bytes are shown escaped, never raw.
    assert!(message.contains("\\0evil"), "{message}");
    assert!(!message.contains('\0'), "{message}");
    // A NUL inside the digest is a malformed line.
    let glued = format!("{}\0{}  x.img\n", &A[..32], &A[33..]);
    assert_eq!(
        lookup(&glued, "x.img"),
        Err(SumsError::Malformed { line: 1 })
    );
}

#[test]
fn huge_lines_are_refused_or_cut_short_in_messages() {
    // One megabyte of hex on one line: malformed, and the reply is short.
    let hex = "a".repeat(MAX_SUMS_BYTES);
    let err = lookup(&hex, "x.img").unwrap_err();
    assert_eq!(err, SumsError::Malformed { line: 1 });
    // A huge name is quoted cut short in the "not listed" list.
    let text = format!("{A}  {}\n", "n".repeat(MAX_SUMS_BYTES - 70));
    let message = lookup(&text, "x.img").unwrap_err().to_string();
    assert!(message.len() < 400, "{} bytes", message.len());
    assert!(message.contains('…'), "{message}");
}

#[test]
fn many_lines_parse_in_one_pass() {
    let text: String = (0..10_000).map(|i| format!("{A}  f{i}.img\n")).collect();
    assert_eq!(lookup(&text, "f9999.img").unwrap(), A);
    assert_eq!(parse_sums(text.as_bytes()).unwrap().len(), 10_000);
}
