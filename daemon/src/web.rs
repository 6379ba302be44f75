//! The embedded web listener: its access token (configured, or random at
//! each start and written to `<state_dir>/web-token`, root-only), the login
//! URL in the log, TLS, and the adapter on btyd's own socket.
//!
//! Who can reach it: anyone who can connect to the listen address. Nothing
//! but `/healthz`, `/version` (and, with `[web] public_read`, the fetch
//! routes) answers without the token, the password or a session one of
//! them gave.

use crate::config::Config;
use crate::daemon::DaemonError;
use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// File name of the start-up token in the state directory.
pub const TOKEN_FILE: &str = "web-token";

/// A web listener ready to serve.
pub struct WebListener {
    /// The bound socket.
    pub listener: tokio::net::TcpListener,
    /// The adapter.
    pub router: axum::Router,
    /// TLS settings, when serving HTTPS.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Where it listens (the real port when 0 was asked for).
    pub addr: SocketAddr,
}

/// Bind the web listener of `config` (`None` when it is off) and publish
/// its login: the token file and the login URL in the log.
pub async fn prepare(config: &Config) -> Result<Option<WebListener>, DaemonError> {
    let token_path = config.state_dir.join(TOKEN_FILE);
    // A token file from an earlier run would name a dead token.
    remove_if_present(&token_path)?;
    let Some(listen) = config.web_listen else {
        return Ok(None);
    };
    let web = &config.web;
    let (token, generated) = match &web.token {
        Some(token) => (token.clone(), false),
        None => (
            bty_web::random_token().map_err(|source| DaemonError::TokenFile {
                path: token_path.clone(),
                source,
            })?,
            true,
        ),
    };
    let tls = match &web.tls {
        Some((cert, key)) => Some(bty_web::load_tls(cert, key).map_err(DaemonError::WebTls)?),
        None => None,
    };
    let mut options = bty_web::WebOptions {
        image_root_hint: Some(config.image_root.display().to_string()),
        auth: bty_web::WebAuth {
            token: token.clone(),
            password_hash: web.password_hash.clone(),
        },
        listen,
        hosts: web.hosts.clone(),
        public_read: web.public_read,
        tls: tls.is_some(),
    };
    bty_web::validate(&options, web.insecure).map_err(DaemonError::WebConfig)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| DaemonError::Bind {
            what: format!("web {listen}"),
            source,
        })?;
    let addr = listener.local_addr().unwrap_or(listen);
    options.listen = addr;
    if generated {
        write_token_file(&token_path, &token).map_err(|source| DaemonError::TokenFile {
            path: token_path.clone(),
            source,
        })?;
        if web.password_hash.is_none() {
            // The Jupyter convention: the operator clicks the URL in the log.
            tracing::info!(
                url = %bty_web::login_url(&options, &token),
                "web login (the token is also in {})",
                token_path.display()
            );
        } else {
            tracing::info!(path = %token_path.display(), "web access token written");
        }
    } else {
        tracing::info!("web access token from the config ([web] token)");
    }
    if web.public_read {
        tracing::info!("GET /images, /images/* and /catalog.toml answer without a login");
    }
    let channel = bty_proto::channel::Target::Unix(config.socket.clone())
        .lazy_channel()
        .map_err(DaemonError::WebChannel)?;
    let router = bty_web::router(channel, options);
    Ok(Some(WebListener {
        listener,
        router,
        tls,
        addr,
    }))
}

fn remove_if_present(path: &Path) -> Result<(), DaemonError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(DaemonError::TokenFile {
            path: path.to_owned(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Write `token` to `path`, mode 0600, atomically: a new file under an
/// unpredictable temp name (`O_CREAT|O_EXCL|O_NOFOLLOW`, so nothing planted
/// there is followed or reused), synced, then renamed over `path` (rename
/// replaces a symlink at `path` rather than following it).
fn write_token_file(path: &Path, token: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(TOKEN_FILE);
    let temp = temp_name(dir, name)?;
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&temp)?;
        file.write_all(format!("{token}\n").as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// `.<name>.tmp-<pid>-<random>`: the start-up clean-up's temp pattern, with
/// a part no other user can predict.
fn temp_name(dir: &Path, name: &str) -> std::io::Result<PathBuf> {
    let random = bty_web::random_token()?;
    let n = u64::from_str_radix(random.get(..15).unwrap_or("0"), 16).unwrap_or(0);
    Ok(dir.join(format!(".{name}.tmp-{}-{n}", std::process::id())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn token_file_is_private_and_replaces_a_planted_symlink() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join(TOKEN_FILE);
        std::os::unix::fs::symlink(&victim, &path).unwrap_or_else(|e| panic!("{e}"));
        write_token_file(&path, "abc").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            std::fs::read_to_string(&victim).ok().as_deref(),
            Some("keep")
        );
        let meta = std::fs::symlink_metadata(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(meta.file_type().is_file());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::read_to_string(&path).ok().as_deref(),
            Some("abc\n")
        );
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap_or_else(|e| panic!("{e}"))
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        assert_eq!(names.len(), 2, "no temp file left: {names:?}");
        let temp = temp_name(dir.path(), TOKEN_FILE).unwrap_or_default();
        let temp = temp.file_name().and_then(|n| n.to_str()).unwrap_or("");
        assert!(bty_store::atomic::is_temp_file_name(temp), "{temp}");
    }
}
