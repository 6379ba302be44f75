//! The operator's confirmation at the terminal before a flash.

use crate::exit::CtlError;
use std::io::{BufRead, IsTerminal, Write};

/// Ask "Write IMAGE to these N targets? … Type yes:" on the terminal;
/// anything but `yes` aborts. Never prompts a pipe: a script must say
/// `--yes` rather than have an answer piped in by accident.
pub(crate) async fn ask(image: &str, count: usize) -> Result<(), CtlError> {
    if !std::io::stdin().is_terminal() {
        return Err(CtlError::NoTerminal);
    }
    let question = question(image, count);
    // Reading stdin blocks; keep it off the runtime's only thread.
    let answer = tokio::task::spawn_blocking(move || read_answer(&question))
        .await
        .map_err(|err| CtlError::Prompt(std::io::Error::other(err)))?
        .map_err(CtlError::Prompt)?;
    if accepts(&answer) {
        Ok(())
    } else {
        Err(CtlError::NotConfirmed)
    }
}

fn question(image: &str, count: usize) -> String {
    let targets = if count == 1 {
        "this target".to_owned()
    } else {
        format!("these {count} targets")
    };
    format!("Write {image} to {targets}? Everything on them will be lost. Type yes: ")
}

fn read_answer(question: &str) -> std::io::Result<String> {
    let mut stderr = std::io::stderr().lock();
    stderr.write_all(question.as_bytes())?;
    stderr.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer)
}

/// Only the word itself counts: `y`, `YES` or an empty line (EOF) do not.
fn accepts(answer: &str) -> bool {
    answer.trim() == "yes"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_yes_confirms() {
        assert!(accepts("yes\n"));
        assert!(accepts("  yes \r\n"));
        for answer in ["", "\n", "y\n", "YES\n", "yes please\n", "no\n"] {
            assert!(!accepts(answer), "{answer:?}");
        }
    }

    #[test]
    fn question_counts_the_targets() {
        assert_eq!(
            question("debian.img", 2),
            "Write debian.img to these 2 targets? Everything on them will be lost. Type yes: "
        );
        assert!(question("debian.img", 1).contains("to this target?"));
    }
}
