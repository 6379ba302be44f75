//! How an error reaches people (statuses, job errors, events, logs): its
//! message and every cause on one line ("gave up on …: connection reset").
//! Errors keep their causes as `source()`, so the text is built here once.

use std::fmt;

/// Displays an error followed by its causes, separated by ": ".
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&chain(self.0))
    }
}

/// An error and its causes on one line. A cause whose text the message
/// already ends with (a library that prints its source too) is not repeated.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !said.is_empty() && !text.ends_with(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot store x")]
    struct Outer(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("bad ref: {0}")]
    struct Repeats(#[source] std::io::Error);

    #[test]
    fn every_cause_is_on_the_line_once() {
        let e = Outer(std::io::Error::other("disk full"));
        assert_eq!(chain(&e), "cannot store x: disk full");
        assert_eq!(Chain(&e).to_string(), "cannot store x: disk full");
        let e = Repeats(std::io::Error::other("no tag"));
        assert_eq!(chain(&e), "bad ref: no tag");
    }
}
