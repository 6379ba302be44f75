//! Credentials out of the URLs the fetch routes show. Catalog sources may
//! carry a user:password or a token in the query string (presigned links);
//! `GET /images` and `GET /catalog.toml` hand source URLs to other
//! machines, so they never show those parts:
//!
//! - to a client without a credential (`[web] public_read`), a URL loses
//!   its userinfo, query string and fragment entirely;
//! - to an authenticated client, it loses its userinfo, and the values of
//!   query parameters whose names look like credentials (token, key, sig,
//!   secret, pass, auth, …) become `REDACTED`.

/// Who is looking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Audience {
    /// No credential came with the request.
    Public,
    /// The request carried the token, a password login or a session.
    Authenticated,
}

impl Audience {
    pub(crate) fn of(authenticated: bool) -> Self {
        if authenticated {
            Self::Authenticated
        } else {
            Self::Public
        }
    }
}

/// What replaces a credential's value.
pub(crate) const REDACTED: &str = "REDACTED";

/// Parts of query parameter names that mark them as credentials.
const CREDENTIAL_NAMES: [&str; 14] = [
    "token", "key", "sig", "secret", "pass", "pwd", "auth", "cred", "session", "jwt", "code",
    "x-amz-", "x-goog-", "sas",
];

fn is_credential_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    CREDENTIAL_NAMES.iter().any(|c| name.contains(c))
}

/// `url` as `audience` may see it; strings that are not `scheme://…` URLs
/// come back unchanged.
pub(crate) fn url(url: &str, audience: Audience) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    {
        return url.to_owned();
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let (path, query_and_fragment) = match tail.find(['?', '#']) {
        Some(i) => tail.split_at(i),
        None => (tail, ""),
    };
    let mut out = format!("{scheme}://{host}{path}");
    if audience == Audience::Public {
        return out;
    }
    let (query, fragment) = match query_and_fragment.find('#') {
        Some(i) => query_and_fragment.split_at(i),
        None => (query_and_fragment, ""),
    };
    if let Some(query) = query.strip_prefix('?') {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) if is_credential_name(name) => format!("{name}={REDACTED}"),
                _ => pair.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    // A fragment never reaches a server, but may still hold a token.
    if !fragment.is_empty() && audience == Audience::Authenticated && !is_credential_name(fragment)
    {
        out.push_str(fragment);
    }
    out
}

/// The catalog TOML with every URL-looking string redacted for `audience`.
/// `None` when the text is not TOML (then nothing may be shown).
pub(crate) fn catalog_toml(text: &str, audience: Audience) -> Option<String> {
    let mut table: toml::Table = text.parse().ok()?;
    let mut changed = false;
    for (_, value) in table.iter_mut() {
        redact_value(value, audience, &mut changed);
    }
    if !changed {
        return Some(text.to_owned());
    }
    toml::to_string(&table).ok()
}

fn redact_value(value: &mut toml::Value, audience: Audience, changed: &mut bool) {
    match value {
        toml::Value::String(s) if s.contains("://") => {
            let redacted = url(s, audience);
            if redacted != *s {
                *s = redacted;
                *changed = true;
            }
        }
        toml::Value::Array(items) => {
            for item in items {
                redact_value(item, audience, changed);
            }
        }
        toml::Value::Table(table) => {
            for (_, item) in table.iter_mut() {
                redact_value(item, audience, changed);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_views_lose_userinfo_query_and_fragment() {
        let public = |u: &str| url(u, Audience::Public);
        assert_eq!(
            public("https://admin:hunter2@h.example:8443/x.img?token=SECRET#frag"),
            "https://h.example:8443/x.img"
        );
        assert_eq!(public("https://h/x.img?a=1"), "https://h/x.img");
        assert_eq!(public("https://u@h?x=SECRET"), "https://h");
        assert_eq!(
            public("oras://reg:5000/repo:tag"),
            "oras://reg:5000/repo:tag"
        );
        assert_eq!(public("/srv/images/x.img"), "/srv/images/x.img");
    }

    #[test]
    fn authenticated_views_lose_userinfo_and_credential_parameters() {
        let auth = |u: &str| url(u, Audience::Authenticated);
        assert_eq!(
            auth("https://a:b@h/x.img?token=SECRET&v=2"),
            "https://h/x.img?token=REDACTED&v=2"
        );
        assert_eq!(
            auth("https://s3/b/x.img?X-Amz-Signature=S&X-Amz-Credential=C&X-Amz-Expires=60"),
            "https://s3/b/x.img?X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED&X-Amz-Expires=REDACTED"
        );
        assert_eq!(
            auth("https://h/x.img?sv=1&sig=S"),
            "https://h/x.img?sv=1&sig=REDACTED"
        );
        assert_eq!(auth("https://h/x.img#part"), "https://h/x.img#part");
    }

    #[test]
    fn catalog_urls_are_redacted_wherever_they_are() {
        let text =
            "version = 1\n\n[[images]]\nname = \"x\"\nsrc = \"https://u:p@h/x.img?token=SECRET\"\n";
        let public = catalog_toml(text, Audience::Public).unwrap_or_default();
        assert!(
            !public.contains("SECRET") && !public.contains("u:p"),
            "{public}"
        );
        assert!(public.contains("https://h/x.img"), "{public}");
        let clean = "version = 1\n";
        assert_eq!(
            catalog_toml(clean, Audience::Public).as_deref(),
            Some(clean)
        );
        assert!(catalog_toml("not [[ toml", Audience::Public).is_none());
    }
}
