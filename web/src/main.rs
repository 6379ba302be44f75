//! `bty-web`: the web adapter on its own, in front of a local or remote
//! btyd (btyd usually embeds it instead).

use anyhow::Context as _;
use bty_proto::channel::Target;
use bty_web::{WebAuth, WebOptions, load_tls, login_url, random_token, router, serve, validate};
use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use tracing_subscriber::EnvFilter;

/// Serve bty's web pages and HTTP routes over btyd's gRPC API.
#[derive(Debug, Parser)]
#[command(version = bty_web::VERSION, about)]
struct Args {
    /// btyd's gRPC endpoint: `unix:///path`, a socket path, or `http://host:port`.
    #[arg(long, env = "BTY_SOCKET", default_value = bty_proto::DEFAULT_SOCKET)]
    endpoint: String,
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Image root to show while btyd cannot be asked for it.
    #[arg(long)]
    image_root_hint: Option<String>,
    /// The access token (bearer header, `/login?token=`, or the login form);
    /// default: a random one, printed in a login URL on stderr at start.
    #[arg(long, env = "BTY_WEB_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// argon2id PHC string of a login password (`btyd hash-password`).
    #[arg(long, env = "BTY_WEB_PASSWORD_HASH", hide_env_values = true)]
    password_hash: Option<String>,
    /// A host name this listener answers to besides its address (and
    /// `localhost` on loopback); repeat for several. Other Host headers get 421.
    #[arg(long = "host")]
    hosts: Vec<String>,
    /// Serve `GET /images`, `/images/*` and `/catalog.toml` without a login.
    #[arg(long)]
    public_read: bool,
    /// PEM certificate chain to serve HTTPS with (needs --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Allow plain HTTP on a non-loopback address.
    #[arg(long)]
    insecure: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("BTY_LOG")
                .or_else(|_| EnvFilter::try_from_default_env())
                .unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();

    let configured = args.token.clone().filter(|t| !t.trim().is_empty());
    let token = match &configured {
        Some(token) => token.trim().to_owned(),
        None => random_token().context("cannot read random bytes for the access token")?,
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(load_tls(cert, key)?),
        _ => None,
    };
    let options = WebOptions {
        image_root_hint: args.image_root_hint,
        auth: WebAuth {
            token: token.clone(),
            password_hash: args.password_hash.filter(|h| !h.trim().is_empty()),
        },
        listen: args.listen,
        hosts: args.hosts,
        public_read: args.public_read,
        tls: tls.is_some(),
    };
    validate(&options, args.insecure)?;
    let target = Target::parse(&args.endpoint)?;
    // Lazy: the web adapter starts (and answers 503) while btyd is down.
    let channel = target.lazy_channel()?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let mut shown = options.clone();
    shown.listen = listener.local_addr().unwrap_or(args.listen);
    if configured.is_none() {
        // Only a token made here is printed; a configured one is a secret
        // the operator already has.
        eprintln!("bty-web: log in at {}", login_url(&shown, &token));
    }
    let app = router(channel, options);
    tracing::info!(listen = %shown.listen, endpoint = %target, tls = shown.tls, "bty-web serving");
    serve(listener, app, tls, shutdown_signal())
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
