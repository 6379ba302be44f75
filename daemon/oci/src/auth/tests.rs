//! Tables for the challenge parser, token URLs, token responses and the
//! cache.

use super::*;

fn ch(scheme: &str, params: &[(&str, &str)]) -> Challenge {
    Challenge {
        scheme: scheme.into(),
        params: params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

#[test]
fn parses_www_authenticate_headers() {
    let cases: Vec<(&str, Vec<Challenge>)> = vec![
        (
            r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:a/b:pull""#,
            vec![ch(
                "bearer",
                &[
                    ("realm", "https://ghcr.io/token"),
                    ("service", "ghcr.io"),
                    ("scope", "repository:a/b:pull"),
                ],
            )],
        ),
        // Commas inside quotes, odd case, spaces around '='.
        (
            r#"bEaReR Realm = "https://r/t?x=1" , SCOPE="repository:a/b:pull,push""#,
            vec![ch(
                "bearer",
                &[
                    ("realm", "https://r/t?x=1"),
                    ("scope", "repository:a/b:pull,push"),
                ],
            )],
        ),
        // Escapes inside quoted strings.
        (
            r#"Bearer realm="a\"b\\c""#,
            vec![ch("bearer", &[("realm", r#"a"b\c"#)])],
        ),
        // Unquoted token values.
        (
            "Bearer realm=https://r/token,service=reg",
            vec![ch(
                "bearer",
                &[("realm", "https://r/token"), ("service", "reg")],
            )],
        ),
        (
            r#"Basic realm="Registry Realm""#,
            vec![ch("basic", &[("realm", "Registry Realm")])],
        ),
        // Two challenges in one header.
        (
            r#"Basic realm="x", Bearer realm="https://r/t",service="s""#,
            vec![
                ch("basic", &[("realm", "x")]),
                ch("bearer", &[("realm", "https://r/t"), ("service", "s")]),
            ],
        ),
        // A scheme with no parameters.
        ("Negotiate", vec![ch("negotiate", &[])]),
        (
            r#"Bearer error="insufficient_scope",realm="https://r/t""#,
            vec![ch(
                "bearer",
                &[("error", "insufficient_scope"), ("realm", "https://r/t")],
            )],
        ),
        // Unterminated quote: keep what is there.
        (
            r#"Bearer realm="https://r/t"#,
            vec![ch("bearer", &[("realm", "https://r/t")])],
        ),
        ("", vec![]),
        ("  ,  ", vec![]),
    ];
    for (input, want) in cases {
        assert_eq!(parse_www_authenticate(input), want, "{input}");
    }
}

#[test]
fn garbage_does_not_hang_or_panic() {
    for input in [
        "=\"",
        "\"\"\"",
        "Bearer ==,,=",
        "@@@ Bearer realm=x",
        "Bearer realm=\"",
    ] {
        let _ = parse_www_authenticate(input);
    }
}

#[test]
fn token_url_appends_to_existing_query() {
    let url = token_url(
        "https://auth.example/token?account=x",
        Some("reg ist"),
        &["repository:a/b:pull", "repository:a/b:pull,push"],
    )
    .unwrap();
    assert_eq!(
        url.as_str(),
        "https://auth.example/token?account=x&service=reg+ist\
         &scope=repository%3Aa%2Fb%3Apull&scope=repository%3Aa%2Fb%3Apull%2Cpush"
    );
    assert!(token_url("/relative", None, &[]).is_none());
    assert!(token_url("ftp://x/token", None, &[]).is_none());
}

#[test]
fn reads_token_responses() {
    type Want = Result<(&'static str, u64), &'static str>;
    let cases: Vec<(&str, Want)> = vec![
        (r#"{"token":"t1","expires_in":300}"#, Ok(("t1", 300))),
        (r#"{"access_token":"t2"}"#, Ok(("t2", 60))),
        (
            r#"{"token":"","access_token":"t3","expires_in":0}"#,
            Ok(("t3", 60)),
        ),
        (r#"{"foo":1}"#, Err("neither")),
        ("not json", Err("JSON")),
    ];
    for (body, want) in cases {
        let got = parse_token_response(body.as_bytes());
        match (got, want) {
            (Ok((t, ttl)), Ok((wt, ws))) => {
                assert_eq!((t.as_str(), ttl.as_secs()), (wt, ws), "{body}");
            }
            (Err(e), Err(needle)) => assert!(e.contains(needle), "{body}: {e}"),
            (got, want) => panic!("{body}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn cache_expires_tokens_early() {
    let cache = TokenCache::default();
    cache.store("h", "s", "long".into(), Duration::from_secs(300));
    assert_eq!(cache.token("h", "s").as_deref(), Some("long"));
    assert_eq!(cache.token("h", "other"), None);
    assert_eq!(cache.token("other", "s"), None);
    cache.store("h", "s", "gone".into(), Duration::ZERO);
    assert_eq!(cache.token("h", "s"), None);
    cache.store("h", "s", "x".into(), Duration::from_secs(300));
    cache.forget("h", "s");
    assert_eq!(cache.token("h", "s"), None);
    assert_eq!(usable_ttl(Duration::from_secs(60)), Duration::from_secs(50));
    assert_eq!(usable_ttl(Duration::from_secs(10)), Duration::from_secs(5));
}

#[test]
fn basic_header_encodes_credentials() {
    let creds = Credentials {
        username: "aladdin".into(),
        password: "opensesame".into(),
    };
    assert_eq!(basic_header(&creds), "Basic YWxhZGRpbjpvcGVuc2VzYW1l");
}
