//! `btyctl completions SHELL` and the hidden `btyctl man-pages DIR`: both
//! generated from the clap definitions, so they never drift from `--help`.
//! Neither talks to btyd.

use crate::exit::CtlError;
use clap::Args;
use clap_complete::Shell;
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `btyctl completions`.
#[derive(Debug, Args)]
#[command(after_help = "\
Install (as the Debian package does):
  btyctl completions bash > /usr/share/bash-completion/completions/btyctl
  btyctl completions zsh  > /usr/share/zsh/vendor-completions/_btyctl
  btyctl completions fish > /usr/share/fish/vendor_completions.d/btyctl.fish")]
pub(crate) struct CompletionsArgs {
    /// The shell to write a completion script for.
    #[arg(value_enum)]
    shell: Shell,
}

/// Arguments of `btyctl man-pages` (used when packaging).
#[derive(Debug, Args)]
pub(crate) struct ManPagesArgs {
    /// Directory to write btyctl.1 and one page per subcommand into
    /// (created if missing).
    dir: PathBuf,
}

/// Write the completion script for `args.shell` to stdout.
pub(crate) fn completions(command: clap::Command, args: &CompletionsArgs) -> Result<(), CtlError> {
    let mut command = without_hidden_subcommands(command);
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "btyctl", &mut script);
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&script)
        .and_then(|()| stdout.flush())
        .map_err(CtlError::Output)
}

/// `command` less its hidden subcommands, which clap_complete would
/// otherwise offer (the man page generator skips them by itself).
fn without_hidden_subcommands(command: clap::Command) -> clap::Command {
    let visible: Vec<clap::Command> = command
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set())
        .cloned()
        .collect();
    clap::Command::new("btyctl")
        .version(crate::VERSION)
        .args(command.get_arguments().cloned())
        .subcommands(visible)
}

/// Write the man pages (roff) of `command` and its visible subcommands.
pub(crate) fn man_pages(command: clap::Command, args: &ManPagesArgs) -> Result<(), CtlError> {
    let write_error = |source| CtlError::WriteFile {
        path: args.dir.clone(),
        source,
    };
    std::fs::create_dir_all(&args.dir).map_err(write_error)?;
    clap_mangen::generate_to(command, &args.dir).map_err(write_error)
}
