//! `bty-web`: the web adapter on its own, in front of a local or remote
//! btyd (btyd usually embeds it instead).

use anyhow::Context as _;
use bty_proto::channel::Target;
use bty_web::{WebAuth, WebOptions, router, serve, validate};
use clap::Parser;
use std::net::SocketAddr;
use tracing_subscriber::EnvFilter;

/// Serve bty's web pages and HTTP routes over btyd's gRPC API.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// btyd's gRPC endpoint: `unix:///path`, a socket path, or `http://host:port`.
    #[arg(long, env = "BTY_SOCKET", default_value = bty_proto::DEFAULT_SOCKET)]
    endpoint: String,
    /// Address to serve HTTP on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Image root to show while btyd cannot be asked for it.
    #[arg(long)]
    image_root_hint: Option<String>,
    /// Hex sha256 of the login password (required off loopback unless a
    /// token is set).
    #[arg(long, env = "BTY_WEB_PASSWORD_SHA256")]
    password_sha256: Option<String>,
    /// Bearer token for API clients (also accepted on the login form).
    #[arg(long, env = "BTY_WEB_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();

    let auth = (args.password_sha256.is_some() || args.token.is_some()).then_some(WebAuth {
        password_sha256: args.password_sha256,
        token: args.token,
    });
    validate(args.listen, &auth)?;
    let target = Target::parse(&args.endpoint)?;
    // Lazy: the web adapter starts (and answers 503) while btyd is down.
    let channel = target.lazy_channel()?;
    let app = router(
        channel,
        WebOptions {
            image_root_hint: args.image_root_hint,
            auth,
        },
    );
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(listen = %args.listen, endpoint = %target, "bty-web serving");
    serve(listener, app, shutdown_signal())
        .await
        .context("web server failed")?;
    tracing::info!("bty-web stopped");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM (systemd's stop).
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
