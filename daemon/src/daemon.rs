//! Start-up and shutdown of a whole btyd: check the store, spawn the actor
//! tree, the directory watcher, the gRPC listeners and the embedded web
//! adapter; tell systemd when ready; stop in order.

use crate::actors::Unavailable;
use crate::actors::call::ask_ref;
use crate::actors::catalog::{CatalogArgs, CatalogHandle};
use crate::actors::downloader::{DownloaderArgs, DownloaderHandle};
use crate::actors::flasher::{FlasherArgs, FlasherHandle, RunningFlashes, TargetRules};
use crate::actors::hasher::{HasherArgs, HasherHandle};
use crate::actors::supervisor::{RestartBudget, Supervisor, SupervisorArgs, SupervisorMessage};
use crate::config::Config;
use crate::events::{EventBus, Timeline};
use crate::grpc::{self, CatalogApi, EventApi, FlashApi, JobApi, Services};
use ractor::Actor;
use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use thiserror::Error;
use tokio_util::sync::CancellationToken;

/// How long shutdown waits for the children to stop one by one (blocking
/// work gets 3 s each); inside systemd's `TimeoutStopSec=30s`.
const SHUTDOWN: std::time::Duration = std::time::Duration::from_secs(20);

/// The daemon's version, in markers and `DescribeStore`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Why btyd could not start (or stopped with an error).
#[derive(Debug, Error)]
pub enum DaemonError {
    /// A directory could not be created.
    #[error("cannot create {path}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The storage marker says this image root is not ours to use.
    #[error(transparent)]
    Marker(#[from] bty_store::marker::MarkerError),
    /// Another btyd already serves the socket.
    #[error("another btyd is already listening on {0}; stop it or pass --socket")]
    SocketInUse(PathBuf),
    /// A listener could not be bound.
    #[error("cannot listen on {what}")]
    Bind {
        /// Which listener.
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The actor tree could not start.
    #[error("cannot start the actors")]
    Actors(#[source] ractor::SpawnErr),
    /// The directory watcher could not start.
    #[error("cannot watch the image root {path}")]
    Watch {
        /// The image root.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// gRPC failed.
    #[error(transparent)]
    Grpc(#[from] grpc::GrpcError),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client")]
    Http(#[source] bty_fetch::FetchError),
    /// The web settings cannot be used (e.g. no login off loopback).
    #[error("invalid web settings")]
    WebConfig(#[source] bty_web::ConfigError),
    /// The web listener's certificate or key cannot be used.
    #[error("invalid web TLS settings")]
    WebTls(#[source] bty_web::TlsError),
    /// The web adapter cannot name btyd's own socket as its gRPC target.
    #[error("cannot reach btyd's socket from the web adapter")]
    WebChannel(#[source] bty_proto::channel::ChannelError),
    /// The web listener failed.
    #[error("web server failed")]
    Web(#[source] std::io::Error),
    /// The web access token file could not be written (or an old one removed).
    #[error("cannot write the web access token to {path}")]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The event log cannot be opened.
    #[error(transparent)]
    EventLog(#[from] crate::events::JournalError),
    /// The supervisor gave up.
    #[error("the actor supervisor stopped: restart budget exhausted")]
    SupervisorStopped,
}

/// Run btyd until `shutdown` resolves or the supervisor gives up.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), DaemonError> {
    crate::store_dirs::prepare_store(&config)?;

    let events = EventBus::with_timeline(
        Timeline::persisted(&config.event_log_path(), config.events_history)
            .map_err(DaemonError::EventLog)?,
    );
    let hasher = HasherHandle::default();
    let catalog = CatalogHandle::default();
    let downloader = DownloaderHandle::default();
    let flasher = FlasherHandle::default();
    let http =
        bty_fetch::http_client(&bty_fetch::ClientOptions::default()).map_err(DaemonError::Http)?;
    let args = SupervisorArgs {
        hasher: HasherArgs {
            image_root: config.image_root.clone(),
            max_parallel: config.hashing_max_parallel as usize,
            events: events.clone(),
            catalog: catalog.clone(),
            me: hasher.clone(),
        },
        catalog: CatalogArgs {
            image_root: config.image_root.clone(),
            catalog_path: config.catalog_path.clone(),
            max_catalog_bytes: config.max_catalog_bytes,
            events: events.clone(),
            hasher: hasher.clone(),
        },
        catalog_handle: catalog.clone(),
        downloader: Some(DownloaderArgs {
            image_root: config.image_root.clone(),
            jobs_dir: config.jobs_dir(),
            max_parallel: config.downloads_max_parallel as usize,
            max_upload_bytes: config.max_upload_bytes,
            oci: bty_oci::OciClient::new(oci_config(&config), http.clone()),
            http,
            fetch_options: bty_fetch::FetchOptions {
                stall_timeout: std::time::Duration::from_secs(config.downloads_stall_timeout_secs),
                max_size: Some(config.downloads_max_image_bytes),
                ..bty_fetch::FetchOptions::default()
            },
            events: events.clone(),
            catalog: catalog.clone(),
            http_trust: crate::actors::downloader::HttpTrust::new(config.http_trust.clone()),
            me: downloader.clone(),
            tasks: std::sync::Arc::default(),
        }),
        flasher: Some(FlasherArgs {
            rules: TargetRules {
                paths: bty_disks::SystemPaths::default(),
                file_targets_dir: config.file_targets_dir.clone(),
            },
            events: events.clone(),
            me: flasher.clone(),
            running: RunningFlashes::default(),
            catalog: catalog.clone(),
            downloader: downloader.clone(),
            trusted_prefixes: std::sync::Arc::new(
                config
                    .trust
                    .iter()
                    .map(|r| r.prefix.clone())
                    .chain(config.http_trust.iter().map(|r| r.prefix.clone()))
                    .collect(),
            ),
        }),
        budget: RestartBudget::default(),
    };
    let (supervisor, supervisor_done) = Actor::spawn(None, Supervisor, args)
        .await
        .map_err(DaemonError::Actors)?;
    let watcher =
        crate::watch::spawn_watcher(&config.image_root, catalog.clone()).map_err(|source| {
            DaemonError::Watch {
                path: config.image_root.clone(),
                source,
            }
        })?;

    // Dropped (and so stopped) when btyd stops.
    let _disk_watcher = crate::hotplug::spawn(bty_disks::SystemPaths::default(), events.clone());

    let jobs = JobApi {
        hasher: hasher.clone(),
        downloader: downloader.clone(),
        flasher: flasher.clone(),
        events: events.clone(),
    };
    let services = Services {
        catalog: CatalogApi {
            catalog: catalog.clone(),
            hasher: hasher.clone(),
            downloader: downloader.clone(),
            info: bty_proto::v1::StoreInfo {
                image_root: config.image_root.display().to_string(),
                catalog_path: config.catalog_path.display().to_string(),
                release_catalog_url: config.release_catalog_url.clone(),
                daemon_version: VERSION.to_owned(),
                download_max_parallel: config.downloads_max_parallel,
                hash_max_parallel: config.hashing_max_parallel,
                max_catalog_bytes: config.max_catalog_bytes as u64,
            },
            events: events.clone(),
        },
        jobs: jobs.clone(),
        events: EventApi {
            events: events.clone(),
            jobs,
            catalog: catalog.clone(),
        },
        flash: FlashApi {
            flasher,
            events: events.clone(),
        },
    };

    let stop = CancellationToken::new();
    let mut servers = tokio::task::JoinSet::new();
    let unix = bind_socket(&config.socket)?;
    let token = stop.clone();
    let unix_services = services.clone();
    servers.spawn(async move {
        grpc::serve_unix(unix_services, unix, token.cancelled_owned())
            .await
            .map_err(DaemonError::from)
    });
    if let Some(tcp_config) = config.grpc_tcp.clone() {
        let tls = match &tcp_config.tls {
            Some((cert, key)) => Some(grpc::load_tls(cert, key)?),
            None => None,
        };
        let tcp = bind_tcp(tcp_config.addr, "gRPC TCP").await?;
        let token = stop.clone();
        let bearer = tcp_config.token.expose().to_owned();
        servers.spawn(async move {
            grpc::serve_tcp(services, tcp, bearer, tls, token.cancelled_owned())
                .await
                .map_err(DaemonError::from)
        });
    }
    let web_addr = match crate::web::prepare(&config).await? {
        Some(web) => {
            let token = stop.clone();
            let addr = web.addr;
            servers.spawn(async move {
                bty_web::serve(web.listener, web.router, web.tls, token.cancelled_owned())
                    .await
                    .map_err(DaemonError::Web)
            });
            Some(addr)
        }
        None => None,
    };

    tracing::info!(
        socket = %config.socket.display(),
        web = %web_addr.map_or("off".to_owned(), |a| a.to_string()),
        image_root = %config.image_root.display(),
        "btyd ready"
    );
    notify_ready();
    let watchdog = sd_notify::watchdog_enabled().map(|period| {
        let catalog = catalog.clone();
        tokio::spawn(keep_alive(period, catalog))
    });

    let mut supervisor_done = supervisor_done;
    let outcome = tokio::select! {
        () = shutdown => Ok(()),
        _ = &mut supervisor_done => Err(DaemonError::SupervisorStopped),
        Some(result) = servers.join_next() => match result {
            Ok(Err(e)) => Err(e),
            _ => Ok(()),
        },
    };
    tracing::info!("btyd stopping");
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    stop.cancel();
    watcher.abort();
    if let Some(watchdog) = watchdog {
        watchdog.abort();
    }
    if outcome.is_ok() {
        match ask_ref(
            &supervisor,
            "supervisor",
            SHUTDOWN,
            SupervisorMessage::Shutdown,
        )
        .await
        {
            // Wedged children: exit anyway rather than wait for systemd's kill.
            Err(e @ Unavailable::Timeout { .. }) => {
                tracing::error!(error = %e, "children did not stop in time; exiting without them");
            }
            _ => {
                let _ = supervisor_done.await;
            }
        }
    }
    while servers.join_next().await.is_some() {}
    let _ = std::fs::remove_file(&config.socket);
    // The last events (a flash cut short, a download checkpointed) reach
    // the log before the process exits.
    let timeline = events.clone();
    let flushed = tokio::task::spawn_blocking(move || {
        timeline.timeline().flush(std::time::Duration::from_secs(2))
    })
    .await
    .unwrap_or(false);
    if !flushed {
        tracing::warn!("the event log was not flushed before exit");
    }
    outcome
}

/// Bind the Unix socket: refuse if a live daemon answers on it, replace a
/// stale one, and open it to the socket's group (mode 0660).
fn bind_socket(path: &Path) -> Result<tokio::net::UnixListener, DaemonError> {
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(DaemonError::SocketInUse(path.to_owned()));
        }
        let _ = std::fs::remove_file(path);
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| DaemonError::CreateDir {
            path: parent.to_owned(),
            source,
        })?;
    }
    let bind_error = |source| DaemonError::Bind {
        what: format!("unix socket {}", path.display()),
        source,
    };
    let listener = tokio::net::UnixListener::bind(path).map_err(bind_error)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(bind_error)?;
    Ok(listener)
}

async fn bind_tcp(
    addr: std::net::SocketAddr,
    what: &str,
) -> Result<tokio::net::TcpListener, DaemonError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| DaemonError::Bind {
            what: format!("{what} {addr}"),
            source,
        })
}

/// READY=1 for systemd's `Type=notify`; a no-op outside systemd.
fn notify_ready() {
    if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
        tracing::debug!(error = %e, "sd_notify failed");
    }
}

/// Registry settings from the config, for the OCI client.
fn oci_config(config: &Config) -> bty_oci::OciConfig {
    let mut oci = bty_oci::OciConfig {
        trust: config.trust.clone(),
        ..bty_oci::OciConfig::default()
    };
    for (host, registry) in &config.registries {
        if registry.insecure {
            oci.insecure.insert(host.clone());
        }
        if let (Some(username), Some(password)) = (&registry.username, &registry.password) {
            oci.credentials.insert(
                host.clone(),
                bty_oci::Credentials {
                    username: username.clone(),
                    password: password.expose().to_owned(),
                },
            );
        }
    }
    oci
}

/// systemd watchdog keep-alives, sent only while the catalog actor answers:
/// a wedged actor tree stops the pings and systemd restarts the daemon.
async fn keep_alive(period: std::time::Duration, catalog: CatalogHandle) {
    let mut tick = tokio::time::interval(period / 2);
    loop {
        tick.tick().await;
        let healthy = tokio::time::timeout(period / 4, catalog.list())
            .await
            .is_ok_and(|r| r.is_ok());
        if healthy {
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
        } else {
            tracing::error!("catalog actor did not answer; withholding the watchdog ping");
        }
    }
}
