//! Upstream bty's `BTY_*` environment variables, read as aliases of config
//! keys so a unit or container written for upstream keeps its settings.
//!
//! Precedence: a command-line flag beats the variable, the variable beats
//! the config file, the file beats systemd's `$STATE_DIRECTORY` and the
//! defaults. Unlike upstream, a value that cannot work is an error naming
//! the variable, never a silent fall-back to the default. Upstream
//! variables btyd has no use for are named in a warning and otherwise
//! ignored (docs/operations.md, "Upstream's environment variables").

use super::{ConfigError, FileConfig};
use std::path::PathBuf;

/// The variables read, in the order they apply, with the key each sets.
const ALIASES: &[(&str, &str)] = &[
    ("BTY_STATE_DIR", "state_dir"),
    ("BTY_IMAGE_ROOT", "image_root"),
    ("BTY_CATALOG_MAX_PARALLEL", "downloads.max_parallel"),
    ("BTY_HASH_MAX_PARALLEL", "hashing.max_parallel"),
    ("BTY_MAX_UPLOAD_BYTES", "uploads.max_bytes"),
    ("BTY_WEB_HOST", "web.listen (host)"),
    ("BTY_WEB_PORT", "web.listen (port)"),
];

/// Upstream variables btyd does not read, and why.
const IGNORED: &[(&str, &str)] = &[
    (
        "BTY_CATALOG_FILE",
        "catalog.toml is always <state_dir>/catalog.toml; set BTY_STATE_DIR or state_dir",
    ),
    (
        "BTY_SESSION_SECRET",
        "web sessions are signed with a key made at each start",
    ),
    (
        "BTY_TRUSTED_PROXY",
        "btyd never takes the client address from X-Forwarded-For",
    ),
    ("BTY_BOOT_RELEASE_REPO", "set release_catalog_url instead"),
    ("BTY_BOOT_DIR", "netboot artifacts are not served by btyd"),
    ("BTY_BACKUP_DIR", "backups are not part of btyd"),
    ("BTY_BACKUP_MAX_PARALLEL", "backups are not part of btyd"),
];

/// The upstream variables set in the environment (empty values count as
/// unset, as upstream treats them).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UpstreamVars(Vec<(&'static str, String)>);

impl UpstreamVars {
    /// Pick the known variables out of `lookup` (the process environment in
    /// `main`, a map in tests).
    pub fn read(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let known = ALIASES.iter().chain(IGNORED).map(|(name, _)| *name);
        Self(
            known
                .filter_map(|name| {
                    let value = lookup(name)?;
                    (!value.trim().is_empty()).then_some((name, value))
                })
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.trim())
    }

    /// The ignored upstream variables that are set, each with the reason.
    pub fn ignored(&self) -> impl Iterator<Item = (&'static str, &'static str)> + '_ {
        IGNORED
            .iter()
            .filter(|(name, _)| self.get(name).is_some())
            .copied()
    }

    /// Write the aliased settings over the config file's.
    pub(super) fn apply(&self, file: &mut FileConfig) -> Result<(), ConfigError> {
        if let Some(dir) = self.get("BTY_STATE_DIR") {
            file.state_dir = Some(absolute("BTY_STATE_DIR", dir)?);
        }
        if let Some(dir) = self.get("BTY_IMAGE_ROOT") {
            file.image_root = Some(absolute("BTY_IMAGE_ROOT", dir)?);
        }
        if let Some(n) = self.get("BTY_CATALOG_MAX_PARALLEL") {
            file.downloads.max_parallel = Some(count("BTY_CATALOG_MAX_PARALLEL", n)?);
        }
        if let Some(n) = self.get("BTY_HASH_MAX_PARALLEL") {
            file.hashing.max_parallel = Some(count("BTY_HASH_MAX_PARALLEL", n)?);
        }
        if let Some(n) = self.get("BTY_MAX_UPLOAD_BYTES") {
            let bytes = n.parse::<u64>().ok().filter(|&b| b > 0);
            file.uploads.max_bytes = Some(bytes.ok_or_else(|| {
                invalid(
                    "BTY_MAX_UPLOAD_BYTES",
                    n,
                    "must be a positive number of bytes",
                )
            })?);
        }
        let (host, port) = (self.get("BTY_WEB_HOST"), self.get("BTY_WEB_PORT"));
        if host.is_some() || port.is_some() {
            let current = file
                .web
                .listen
                .clone()
                .unwrap_or_else(|| super::DEFAULT_WEB_LISTEN.to_owned());
            file.web.listen = Some(listen(&current, host, port)?);
        }
        Ok(())
    }
}

fn invalid(name: &'static str, value: &str, why: &'static str) -> ConfigError {
    ConfigError::Invalid {
        key: name,
        value: value.to_owned(),
        why,
    }
}

fn absolute(name: &'static str, value: &str) -> Result<PathBuf, ConfigError> {
    let path = PathBuf::from(value);
    if path.is_absolute() {
        Ok(path)
    } else {
        Err(invalid(name, value, "must be an absolute path"))
    }
}

fn count(name: &'static str, value: &str) -> Result<u32, ConfigError> {
    value
        .parse::<u32>()
        .ok()
        .filter(|&n| n >= 1)
        .ok_or_else(|| invalid(name, value, "must be a whole number, at least 1"))
}

/// `host:port` from the variables, each part defaulting to `current`'s
/// (`current` may be `off`: the variables then turn the listener on, on
/// the default address's other part).
fn listen(current: &str, host: Option<&str>, port: Option<&str>) -> Result<String, ConfigError> {
    let base: std::net::SocketAddr = current
        .trim()
        .parse()
        .or_else(|_| super::DEFAULT_WEB_LISTEN.parse())
        .map_err(|_| invalid("web.listen", current, "is not host:port"))?;
    let ip = match host {
        Some(h) => h
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .map_err(|_| invalid("BTY_WEB_HOST", h, "must be an IP address"))?,
        None => base.ip(),
    };
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| invalid("BTY_WEB_PORT", p, "must be a port number (0-65535)"))?,
        None => base.port(),
    };
    Ok(std::net::SocketAddr::new(ip, port).to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> UpstreamVars {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        UpstreamVars::read(|k| map.get(k).cloned())
    }

    #[test]
    fn aliases_override_the_file() {
        let mut file = FileConfig::parse(
            "state_dir = \"/srv/file\"\n[hashing]\nmax_parallel = 3\n[web]\nlisten = \"127.0.0.1:9000\"\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        vars(&[
            ("BTY_STATE_DIR", "/srv/env"),
            ("BTY_HASH_MAX_PARALLEL", "4"),
            ("BTY_CATALOG_MAX_PARALLEL", "5"),
            ("BTY_MAX_UPLOAD_BYTES", "1048576"),
            ("BTY_WEB_PORT", "9100"),
            ("BTY_IMAGE_ROOT", ""),
        ])
        .apply(&mut file)
        .unwrap();
        assert_eq!(file.state_dir, Some(PathBuf::from("/srv/env")));
        assert_eq!(file.image_root, None, "an empty variable is unset");
        assert_eq!(file.hashing.max_parallel, Some(4));
        assert_eq!(file.downloads.max_parallel, Some(5));
        assert_eq!(file.uploads.max_bytes, Some(1 << 20));
        assert_eq!(file.web.listen.as_deref(), Some("127.0.0.1:9100"));
    }

    #[test]
    fn host_and_port_combine_with_the_default_listener() {
        let mut file = FileConfig::default();
        vars(&[("BTY_WEB_HOST", "::1")]).apply(&mut file).unwrap();
        assert_eq!(file.web.listen.as_deref(), Some("[::1]:8080"));
        let mut file = FileConfig::default();
        vars(&[("BTY_WEB_HOST", "0.0.0.0"), ("BTY_WEB_PORT", "80")])
            .apply(&mut file)
            .unwrap();
        assert_eq!(file.web.listen.as_deref(), Some("0.0.0.0:80"));
    }

    #[test]
    fn a_value_that_cannot_work_names_the_variable() {
        for (name, value) in [
            ("BTY_HASH_MAX_PARALLEL", "0"),
            ("BTY_CATALOG_MAX_PARALLEL", "two"),
            ("BTY_MAX_UPLOAD_BYTES", "-1"),
            ("BTY_WEB_PORT", "99999"),
            ("BTY_WEB_HOST", "example.com"),
            ("BTY_STATE_DIR", "relative/dir"),
        ] {
            let err = vars(&[(name, value)])
                .apply(&mut FileConfig::default())
                .unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn ignored_variables_are_reported() {
        let v = vars(&[
            ("BTY_CATALOG_FILE", "/x/catalog.toml"),
            ("BTY_LOG", "debug"),
        ]);
        let ignored: Vec<_> = v.ignored().map(|(name, _)| name).collect();
        assert_eq!(ignored, ["BTY_CATALOG_FILE"]);
    }
}
