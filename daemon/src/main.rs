//! `btyd`: command line, logging, signals; everything else is in the library.

use anyhow::Context;
use btyd::config::{Config, Environment, FileConfig, Overrides};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

mod password;

/// The version `--version` prints: the package version and the git revision
/// it was built from (`unknown` outside a git checkout).
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("BTY_GIT_REV"), ")");

/// The bty daemon: image catalog, downloads, hashing and flashing behind a
/// gRPC API, with the web pages embedded.
#[derive(Debug, Parser)]
#[command(version = VERSION, about)]
struct Args {
    /// Config file (default /etc/bty/btyd.toml when it exists).
    #[arg(long)]
    config: Option<PathBuf>,
    /// State directory (catalog.toml, jobs/, default image root).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Image store directory (default <state-dir>/images).
    #[arg(long)]
    image_root: Option<PathBuf>,
    /// gRPC Unix socket (default <state-dir>/btyd.sock with --state-dir).
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Web listener host:port, or "off".
    #[arg(long)]
    web_listen: Option<String>,
    /// Optional gRPC TCP listener host:port.
    #[arg(long)]
    grpc_tcp: Option<String>,
    /// Validate the configuration, print it, and exit.
    #[arg(long)]
    check_config: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read a password (from the terminal without echo, or from stdin) and
    /// print its argon2id hash for `[web] password_hash`.
    HashPassword,
    /// Write the man pages into a directory (packaging).
    #[command(hide = true)]
    ManPages {
        /// Directory to write btyd.1 into (created if missing).
        dir: PathBuf,
    },
}

/// Errors end the process with their whole chain on one line
/// (`btyd: btyd failed: cannot listen on web …: Address already in use`),
/// never a backtrace: `RUST_BACKTRACE=1` in an operator's environment must
/// not bury the cause.
fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("btyd: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.command {
        Some(Command::HashPassword) => return password::hash_password_command(),
        Some(Command::ManPages { dir }) => return man_pages(&dir),
        None => {}
    }
    init_logging();
    btyd::allocator::tune_for_bulk_transfers();
    let overrides = Overrides {
        config_file: args.config.clone(),
        state_dir: args.state_dir,
        image_root: args.image_root,
        socket: args.socket,
        web_listen: args.web_listen,
        grpc_tcp: args.grpc_tcp,
    };
    let file = FileConfig::load(overrides.config_file.as_deref())?;
    let env = Environment::from_process();
    for (name, why) in env.upstream.ignored() {
        tracing::warn!("{name} (upstream bty's) is not read by btyd: {why}");
    }
    let config = Config::resolve(file, &overrides, &env)?;
    if args.check_config {
        println!("{config:#?}");
        return Ok(());
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let outcome = runtime.block_on(async move {
        btyd::daemon::run(config, shutdown_signal())
            .await
            .context("btyd failed")
    });
    // Blocking work (a read, a write) gets a moment to end; a stop must not
    // hang on it, so SIGTERM exits well within systemd's stop timeout.
    runtime.shutdown_timeout(std::time::Duration::from_secs(3));
    outcome
}

/// btyd's man pages, generated from the clap definition above.
fn man_pages(dir: &std::path::Path) -> anyhow::Result<()> {
    use clap::CommandFactory;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    clap_mangen::generate_to(Args::command(), dir)
        .with_context(|| format!("cannot write man pages into {}", dir.display()))
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("BTY_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM; only Ctrl-C stops btyd");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
