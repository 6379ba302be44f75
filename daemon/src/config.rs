//! btyd configuration: the TOML file (`/etc/bty/btyd.toml` or `--config`),
//! upstream's `BTY_*` variables over it, command-line overrides over both,
//! and systemd's directory variables, resolved once at start-up into one
//! validated [`Config`]. Nothing reads the environment later.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use thiserror::Error;

mod grpc;
mod secret;
mod trust;
mod upstream_env;
mod web;

pub use grpc::{GrpcSection, GrpcTcp};
pub use secret::Secret;
pub use trust::TrustSection;
pub use upstream_env::UpstreamVars;
pub use web::{WebConfig, WebSection};

/// The system-wide config file read when `--config` is not given.
pub const SYSTEM_CONFIG: &str = "/etc/bty/btyd.toml";
/// The release catalog upstream publishes ("Fetch latest catalog").
pub const DEFAULT_RELEASE_CATALOG_URL: &str =
    "https://github.com/safl/bty/releases/latest/download/catalog.toml";
/// Where the web listener binds by default.
pub const DEFAULT_WEB_LISTEN: &str = "127.0.0.1:8080";

/// Why the configuration could not be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid TOML or has unknown keys.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (names the key and line).
        message: String,
    },
    /// A setting has a value that cannot work.
    #[error("invalid setting {key} = {value:?}: {why}")]
    Invalid {
        /// The setting's dotted name.
        key: &'static str,
        /// The value given.
        value: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A `[[trust]]` key file that cannot be read or is not a usable key.
    #[error("[[trust]] match = {rule:?}: key file {path}: {reason}")]
    TrustKey {
        /// The rule's `match`.
        rule: String,
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// The config file as written: every key optional, unknown keys rejected.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    /// Where catalog.toml, jobs/ and (by default) images/ live.
    pub state_dir: Option<PathBuf>,
    /// The image store; default `<state_dir>/images`.
    pub image_root: Option<PathBuf>,
    /// The catalog "Fetch latest catalog" imports.
    pub release_catalog_url: Option<String>,
    /// `[grpc]`
    pub grpc: GrpcSection,
    /// `[web]`
    pub web: WebSection,
    /// `[downloads]`
    pub downloads: WorkerSection,
    /// `[hashing]`
    pub hashing: WorkerSection,
    /// `[uploads]`
    pub uploads: UploadSection,
    /// `[flash]`
    pub flash: FlashSection,
    /// `[catalog]`
    pub catalog: CatalogSection,
    /// `[events]`
    pub events: EventsSection,
    /// `[registries."host:port"]`
    pub registries: BTreeMap<String, RegistryConfig>,
    /// `[[trust]]`: sources that need a cosign signature.
    pub trust: Vec<TrustSection>,
}

/// `[downloads]` / `[hashing]` sections.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerSection {
    /// How many jobs run at once.
    pub max_parallel: Option<u32>,
    /// Downloads only: seconds without a byte before a transfer is retried.
    pub stall_timeout_secs: Option<u64>,
    /// Downloads only: largest image accepted when the catalog does not
    /// declare its size (streamed to disk or to a flash), in bytes.
    pub max_image_bytes: Option<u64>,
}

/// `[uploads]` section.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct UploadSection {
    /// Largest upload accepted, in bytes.
    pub max_bytes: Option<u64>,
}

/// `[flash]` section.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FlashSection {
    /// The one directory whose regular files may be flash targets (image
    /// building, tests). Unset: only block devices. No request can widen
    /// this; it is the daemon's own setting.
    pub file_targets_dir: Option<PathBuf>,
}

/// `[catalog]` section.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogSection {
    /// The one catalog size limit, in bytes: an import larger than this is
    /// refused before parsing, a change that would write a larger
    /// catalog.toml is refused before writing, and a larger catalog.toml is
    /// not loaded.
    pub max_catalog_bytes: Option<u64>,
}

/// `[events]` section.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EventsSection {
    /// How many events the event log keeps (in memory and in
    /// `<state_dir>/events.jsonl`); older ones are dropped.
    pub history: Option<u32>,
}

/// Bounds of `[events] history`: every kept event is held in memory.
const EVENTS_HISTORY_RANGE: std::ops::RangeInclusive<u32> = 1..=100_000;

/// Bounds of `[catalog] max_catalog_bytes`: a catalog is held in memory
/// several times over while it is parsed and merged.
const CATALOG_BYTES_RANGE: std::ops::RangeInclusive<u64> = 1024..=(1 << 30);

/// Default upload cap: 200 GiB, as upstream.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 200 << 30;
/// Default stall timeout of downloads.
pub const DEFAULT_STALL_TIMEOUT_SECS: u64 = 30;

/// `[registries."host:port"]`: per-registry settings.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    /// Plain http allowed (loopback test registries).
    pub insecure: bool,
    /// Optional credentials for the token flow.
    pub username: Option<String>,
    /// Optional credentials for the token flow.
    pub password: Option<Secret>,
}

/// Command-line overrides; each beats the config file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--config`
    pub config_file: Option<PathBuf>,
    /// `--state-dir`
    pub state_dir: Option<PathBuf>,
    /// `--image-root`
    pub image_root: Option<PathBuf>,
    /// `--socket`
    pub socket: Option<PathBuf>,
    /// `--web-listen` (`off` disables)
    pub web_listen: Option<String>,
    /// `--grpc-tcp`
    pub grpc_tcp: Option<String>,
}

/// What the process environment contributes, read once by `main`.
#[derive(Debug, Default, Clone)]
pub struct Environment {
    /// systemd `$STATE_DIRECTORY`.
    pub state_directory: Option<PathBuf>,
    /// systemd `$RUNTIME_DIRECTORY`.
    pub runtime_directory: Option<PathBuf>,
    /// `$HOME`, for the non-root default state dir.
    pub home: Option<PathBuf>,
    /// Whether the process runs as root.
    pub is_root: bool,
    /// Upstream bty's `BTY_*` variables: aliases of config keys.
    pub upstream: UpstreamVars,
}

impl Environment {
    /// Read the process environment (only `main` calls this).
    pub fn from_process() -> Self {
        let var = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        // systemd may pass several colon-separated dirs; the first is ours.
        let first = |p: PathBuf| {
            p.to_str()
                .and_then(|s| s.split(':').next())
                .map(PathBuf::from)
                .unwrap_or(p)
        };
        Self {
            state_directory: var("STATE_DIRECTORY").map(first),
            runtime_directory: var("RUNTIME_DIRECTORY").map(first),
            home: var("HOME"),
            is_root: rustix::process::geteuid().is_root(),
            upstream: UpstreamVars::read(|k| std::env::var(k).ok()),
        }
    }
}

/// The resolved configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// State directory (catalog.toml, jobs/).
    pub state_dir: PathBuf,
    /// Image store.
    pub image_root: PathBuf,
    /// `<state_dir>/catalog.toml`.
    pub catalog_path: PathBuf,
    /// gRPC Unix socket.
    pub socket: PathBuf,
    /// Optional gRPC TCP listener (token, TLS).
    pub grpc_tcp: Option<GrpcTcp>,
    /// Web listener, `None` = off.
    pub web_listen: Option<SocketAddr>,
    /// The rest of `[web]`.
    pub web: WebConfig,
    /// "Fetch latest catalog" source.
    pub release_catalog_url: String,
    /// Parallel downloads.
    pub downloads_max_parallel: u32,
    /// Parallel hash jobs.
    pub hashing_max_parallel: u32,
    /// Seconds without a byte before a download is retried.
    pub downloads_stall_timeout_secs: u64,
    /// Largest upload accepted.
    pub max_upload_bytes: u64,
    /// Largest download (or stream to a flash) whose size the catalog does
    /// not declare.
    pub downloads_max_image_bytes: u64,
    /// Per-registry settings.
    pub registries: BTreeMap<String, RegistryConfig>,
    /// The directory whose regular files may be flash targets.
    pub file_targets_dir: Option<PathBuf>,
    /// The one catalog size limit (import, write, load).
    pub max_catalog_bytes: usize,
    /// How many events the event log keeps.
    pub events_history: usize,
    /// `[[trust]]` rules over `oras://` sources, keys loaded.
    pub trust: Vec<bty_oci::TrustRule>,
    /// `[[trust]]` rules over http(s) sources, keyrings loaded.
    pub http_trust: Vec<crate::actors::downloader::HttpTrustRule>,
}

impl FileConfig {
    /// Parse config text; `path` names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// Read the explicit `--config` file, else the system one if present.
    pub fn load(explicit: Option<&Path>) -> Result<Self, ConfigError> {
        let (path, required) = match explicit {
            Some(p) => (p.to_owned(), true),
            None => (PathBuf::from(SYSTEM_CONFIG), false),
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text, &path),
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(ConfigError::Read { path, source }),
        }
    }
}

impl Config {
    /// Resolve file settings, overrides and environment into a `Config`.
    pub fn resolve(
        file: FileConfig,
        overrides: &Overrides,
        env: &Environment,
    ) -> Result<Self, ConfigError> {
        let mut file = file;
        env.upstream.apply(&mut file)?;
        let state_dir_flag = overrides.state_dir.clone();
        let state_dir = state_dir_flag
            .clone()
            .or(file.state_dir)
            .or_else(|| env.state_directory.clone())
            .unwrap_or_else(|| default_state_dir(env));
        let image_root = overrides
            .image_root
            .clone()
            .or(file.image_root)
            .unwrap_or_else(|| state_dir.join("images"));
        let socket = overrides
            .socket
            .clone()
            .or_else(|| state_dir_flag.as_ref().map(|d| d.join("btyd.sock")))
            .or(file.grpc.socket.clone())
            .or_else(|| env.runtime_directory.as_ref().map(|d| d.join("btyd.sock")))
            .unwrap_or_else(|| {
                if env.is_root {
                    PathBuf::from(bty_proto::DEFAULT_SOCKET)
                } else {
                    state_dir.join("btyd.sock")
                }
            });
        let mut web_section = file.web;
        let web_listen = overrides
            .web_listen
            .clone()
            .or(web_section.listen.take())
            .unwrap_or_else(|| DEFAULT_WEB_LISTEN.to_owned());
        let web_listen = parse_listen("web.listen", &web_listen)?;
        let web = WebConfig::resolve(web_section, web_listen)?;
        let grpc_tcp = GrpcTcp::resolve(&file.grpc, overrides.grpc_tcp.clone())?;
        let downloads_max_parallel =
            positive("downloads.max_parallel", file.downloads.max_parallel, 2)?;
        let hashing_max_parallel = positive("hashing.max_parallel", file.hashing.max_parallel, 1)?;
        let stall = file
            .downloads
            .stall_timeout_secs
            .unwrap_or(DEFAULT_STALL_TIMEOUT_SECS);
        if stall == 0 {
            return Err(ConfigError::Invalid {
                key: "downloads.stall_timeout_secs",
                value: "0".to_owned(),
                why: "must be at least 1",
            });
        }
        let max_upload_bytes = file.uploads.max_bytes.unwrap_or(DEFAULT_MAX_UPLOAD_BYTES);
        let events_history = file
            .events
            .history
            .unwrap_or(crate::events::DEFAULT_CAPACITY as u32);
        if !EVENTS_HISTORY_RANGE.contains(&events_history) {
            return Err(ConfigError::Invalid {
                key: "events.history",
                value: events_history.to_string(),
                why: "must be between 1 and 100000",
            });
        }
        let file_targets_dir = match file.flash.file_targets_dir {
            Some(dir) if !dir.is_absolute() => {
                return Err(ConfigError::Invalid {
                    key: "flash.file_targets_dir",
                    value: dir.display().to_string(),
                    why: "must be an absolute path",
                });
            }
            dir => dir,
        };
        let downloads_max_image_bytes = file
            .downloads
            .max_image_bytes
            .unwrap_or(bty_fetch::DEFAULT_MAX_SIZE);
        if downloads_max_image_bytes == 0 {
            return Err(ConfigError::Invalid {
                key: "downloads.max_image_bytes",
                value: "0".to_owned(),
                why: "must be at least 1",
            });
        }
        let max_catalog_bytes = file.catalog.max_catalog_bytes.map_or(
            Ok(bty_store::catalog_file::DEFAULT_MAX_CATALOG_BYTES),
            |n| {
                if CATALOG_BYTES_RANGE.contains(&n) {
                    usize::try_from(n).map_err(|_| "does not fit this machine's memory")
                } else {
                    Err("must be between 1024 and 1073741824 (1 GiB)")
                }
                .map_err(|why| ConfigError::Invalid {
                    key: "catalog.max_catalog_bytes",
                    value: n.to_string(),
                    why,
                })
            },
        )?;
        let release_catalog_url = file
            .release_catalog_url
            .unwrap_or_else(|| DEFAULT_RELEASE_CATALOG_URL.to_owned());
        if !(release_catalog_url.starts_with("http://")
            || release_catalog_url.starts_with("https://")
            || release_catalog_url.starts_with("oras://"))
        {
            return Err(ConfigError::Invalid {
                key: "release_catalog_url",
                value: release_catalog_url,
                why: "must be an http(s):// URL or an oras:// reference",
            });
        }
        let mut trust = Vec::new();
        let mut http_trust = Vec::new();
        for section in &file.trust {
            match section.load()? {
                trust::LoadedRule::Oras(rule) => trust.push(rule),
                trust::LoadedRule::Http(rule) => http_trust.push(rule),
            }
        }
        Ok(Self {
            catalog_path: state_dir.join("catalog.toml"),
            state_dir,
            image_root,
            socket,
            grpc_tcp,
            web_listen,
            web,
            release_catalog_url,
            downloads_max_parallel,
            hashing_max_parallel,
            downloads_stall_timeout_secs: stall,
            max_upload_bytes,
            downloads_max_image_bytes,
            registries: file.registries,
            file_targets_dir,
            max_catalog_bytes,
            events_history: events_history as usize,
            trust,
            http_trust,
        })
    }

    /// The event log.
    pub fn event_log_path(&self) -> PathBuf {
        self.state_dir.join("events.jsonl")
    }

    /// Where interrupted downloads keep what they need to resume.
    pub fn jobs_dir(&self) -> PathBuf {
        self.state_dir.join("jobs")
    }
}

fn default_state_dir(env: &Environment) -> PathBuf {
    if env.is_root {
        PathBuf::from("/var/lib/bty")
    } else {
        env.home
            .as_ref()
            .map(|h| h.join(".local/state/bty"))
            .unwrap_or_else(|| PathBuf::from(".bty"))
    }
}

/// `off` or empty → `None`; otherwise a socket address.
fn parse_listen(key: &'static str, value: &str) -> Result<Option<SocketAddr>, ConfigError> {
    let value = value.trim();
    if value.is_empty() || value.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    value.parse().map(Some).map_err(|_| ConfigError::Invalid {
        key,
        value: value.to_owned(),
        why: "expected host:port (an IP address and a port) or \"off\"",
    })
}

fn positive(key: &'static str, value: Option<u32>, default: u32) -> Result<u32, ConfigError> {
    match value {
        None => Ok(default),
        Some(0) => Err(ConfigError::Invalid {
            key,
            value: "0".to_owned(),
            why: "must be at least 1",
        }),
        Some(n) => Ok(n),
    }
}

#[cfg(test)]
mod tests;
