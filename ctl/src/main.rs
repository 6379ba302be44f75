//! btyctl: the command-line client of btyd. Parses the command line,
//! connects, dispatches to one command module, and turns the outcome into
//! the documented exit code.

mod client;
mod commands;
mod exit;
mod job;
mod output;
mod progress;

use crate::client::{Ctx, Daemon};
use crate::exit::{CtlError, EXIT_CODES_HELP};
use crate::output::Output;
use bty_proto::auth::ClientAuth;
use bty_proto::channel::Target;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// The version `--version` prints: the package version and the git revision
/// it was built from (`unknown` outside a git checkout).
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("BTY_GIT_REV"), ")");

/// Manage the images, catalog, jobs and disks of a bty daemon.
#[derive(Debug, Parser)]
#[command(name = "btyctl", version = VERSION, after_help = EXIT_CODES_HELP)]
struct Cli {
    /// Unix socket of btyd.
    #[arg(
        long,
        global = true,
        env = "BTY_SOCKET",
        value_name = "PATH",
        default_value = bty_proto::DEFAULT_SOCKET
    )]
    socket: PathBuf,
    /// btyd endpoint instead of the socket: unix:///path, http://host:port
    /// or https://host:port (btyd's `[grpc] tcp`).
    #[arg(long, global = true, value_name = "URL", value_parser = parse_endpoint)]
    endpoint: Option<Target>,
    /// File holding btyd's `[grpc] token`, sent on TCP endpoints (or set
    /// BTY_TOKEN; a token is never taken from the command line, where
    /// every local user could read it).
    #[arg(long, global = true, env = "BTY_TOKEN_FILE", value_name = "PATH")]
    token_file: Option<PathBuf>,
    /// PEM CA certificate(s) to trust for an https:// endpoint (default:
    /// the system bundle).
    #[arg(long, global = true, env = "BTY_TLS_CA", value_name = "PATH")]
    tls_ca: Option<PathBuf>,
    /// Print exactly one JSON document on stdout (lists as arrays).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List images.
    #[command(subcommand)]
    Images(commands::images::ImagesCommand),
    /// Import, export and refresh the catalog.
    #[command(subcommand)]
    Catalog(commands::catalog::CatalogCommand),
    /// Add and remove remote catalog entries.
    #[command(subcommand)]
    Entries(commands::entries::EntriesCommand),
    /// List, watch and cancel jobs.
    #[command(subcommand)]
    Jobs(commands::jobs::JobsCommand),
    /// Queue a sha256 job for a file in the image root.
    Hash(commands::hash::HashArgs),
    /// Download a remote entry's bytes into the cache and watch the job.
    Fetch(commands::fetch::FetchArgs),
    /// Re-pull a cached remote entry if upstream changed, and watch the job.
    Update(commands::update::UpdateArgs),
    /// Remove cached bytes of remote entries.
    #[command(subcommand)]
    Cache(commands::cache::CacheCommand),
    /// Stream a local file into btyd's image root.
    Upload(commands::upload::UploadArgs),
    /// Publish an image to an OCI registry as an ORAS artifact.
    Push(commands::push::PushArgs),
    /// List block devices and whether bty may write them.
    Disks(commands::disks::DisksArgs),
    /// Write an image to one or more disks, after confirmation.
    Flash(commands::flash::FlashArgs),
    /// Read btyd's event log and acknowledge events.
    #[command(subcommand)]
    Events(commands::events::EventsCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(commands::docs::CompletionsArgs),
    /// Write the man pages into a directory (packaging).
    #[command(hide = true)]
    ManPages(commands::docs::ManPagesArgs),
}

fn parse_endpoint(endpoint: &str) -> Result<Target, String> {
    Target::parse(endpoint).map_err(|err| err.to_string())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = parse_cli();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("btyctl: {}", err.report());
            ExitCode::from(u8::from(err.exit()))
        }
    }
}

/// Parse the command line (clap exits 2 on usage errors). `--socket` and
/// `--endpoint` exclude each other only when both are typed: a `BTY_SOCKET`
/// from the environment must not stop `--endpoint` from overriding it.
fn parse_cli() -> Cli {
    use clap::parser::ValueSource;
    use clap::{CommandFactory, FromArgMatches};

    let mut command = Cli::command();
    let matches = command.get_matches_mut();
    let typed_socket = matches.value_source("socket") == Some(ValueSource::CommandLine);
    if typed_socket
        && matches.contains_id("endpoint")
        && matches.get_one::<Target>("endpoint").is_some()
    {
        command
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                "the argument '--socket <PATH>' cannot be used with '--endpoint <URL>'",
            )
            .exit();
    }
    Cli::from_arg_matches(&matches).unwrap_or_else(|err| err.exit())
}

/// The bearer token: `--token-file`/`BTY_TOKEN_FILE`, else `BTY_TOKEN`.
fn token(file: Option<&std::path::Path>) -> Result<Option<String>, CtlError> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|source| CtlError::ReadFile {
            path: path.to_owned(),
            source,
        })?;
        return Ok(Some(text.trim().to_owned()));
    }
    Ok(std::env::var("BTY_TOKEN")
        .ok()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty()))
}

async fn run(cli: Cli) -> Result<(), CtlError> {
    // Generated from the command line's own definition; no daemon needed.
    match &cli.command {
        Command::Completions(args) => {
            return commands::docs::completions(<Cli as clap::CommandFactory>::command(), args);
        }
        Command::ManPages(args) => {
            return commands::docs::man_pages(<Cli as clap::CommandFactory>::command(), args);
        }
        _ => {}
    }
    let target = cli.endpoint.unwrap_or(Target::Unix(cli.socket));
    let auth = ClientAuth {
        token: token(cli.token_file.as_deref())?,
        tls_ca: cli.tls_ca,
    };
    let ctx = Ctx {
        daemon: Daemon::connect(&target, &auth).await?,
        out: Output::new(cli.json),
    };
    let outcome = match cli.command {
        Command::Images(command) => commands::images::run(&ctx, command).await,
        Command::Catalog(command) => commands::catalog::run(&ctx, command).await,
        Command::Entries(command) => commands::entries::run(&ctx, command).await,
        Command::Jobs(command) => commands::jobs::run(&ctx, command).await,
        Command::Hash(args) => commands::hash::run(&ctx, args).await,
        Command::Fetch(args) => commands::fetch::run(&ctx, args).await,
        Command::Update(args) => commands::update::run(&ctx, args).await,
        Command::Cache(command) => commands::cache::run(&ctx, command).await,
        Command::Upload(args) => commands::upload::run(&ctx, args).await,
        Command::Push(args) => commands::push::run(&ctx, args).await,
        Command::Disks(args) => commands::disks::run(&ctx, args).await,
        Command::Flash(args) => commands::flash::run(&ctx, args).await,
        Command::Events(command) => commands::events::run(&ctx, command).await,
        // Answered above, before connecting.
        Command::Completions(_) | Command::ManPages(_) => Ok(()),
    };
    outcome.map_err(|err| err.with_target(&target))
}
