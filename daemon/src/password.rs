//! `btyd hash-password`: the argon2id PHC string for `[web] password_hash`.

use anyhow::Context as _;
use std::io::{BufRead as _, Write as _};

/// Read the password (twice, without echo, on a terminal; one line from a
/// pipe otherwise) and print its hash on stdout.
pub(crate) fn hash_password_command() -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    let password = if rustix::termios::isatty(&stdin) {
        let first = read_hidden("Password: ")?;
        let again = read_hidden("Again: ")?;
        anyhow::ensure!(first == again, "the two passwords differ");
        first
    } else {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    };
    anyhow::ensure!(!password.is_empty(), "the password is empty");
    let hash = bty_web::hash_password(&password)?;
    println!("{hash}");
    Ok(())
}

/// One line from the terminal with echo off (restored afterwards, also
/// when reading fails).
fn read_hidden(prompt: &str) -> anyhow::Result<String> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin).context("cannot read the terminal settings")?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    tcsetattr(&stdin, OptionalActions::Flush, &quiet).context("cannot turn echo off")?;
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    let restored = tcsetattr(&stdin, OptionalActions::Flush, &saved);
    eprintln!();
    read.context("cannot read the password")?;
    restored.context("cannot restore the terminal settings")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}
