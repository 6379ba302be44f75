//! What btyctl prints on stdout: one JSON document with `--json`, else
//! readable text and aligned tables; plus the shared number formatting.

use crate::exit::CtlError;
use serde::Serialize;
use std::io::Write;

/// The output mode chosen on the command line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    json: bool,
}

impl Output {
    /// Output in JSON (`true`) or human form.
    pub(crate) fn new(json: bool) -> Self {
        Self { json }
    }

    /// Whether stdout carries JSON (and so nothing else may go there).
    pub(crate) fn is_json(self) -> bool {
        self.json
    }

    /// Print `value` as JSON, or the text `human` renders, on stdout.
    pub(crate) fn emit<T: Serialize>(
        self,
        value: &T,
        human: impl FnOnce() -> String,
    ) -> Result<(), CtlError> {
        if self.json {
            let text = serde_json::to_string_pretty(value)
                .map_err(|e| CtlError::Output(std::io::Error::other(e)))?;
            write_stdout(&text)
        } else {
            write_stdout(&human())
        }
    }
}

/// Write `text` and a final newline to stdout, reporting a closed pipe as an
/// error instead of panicking like `println!`.
fn write_stdout(text: &str) -> Result<(), CtlError> {
    let mut out = std::io::stdout().lock();
    let text = text.strip_suffix('\n').unwrap_or(text);
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(CtlError::Output)
}

/// A table with a header row, columns padded to their widest cell.
#[derive(Debug)]
pub(crate) struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these column headers.
    pub(crate) fn new(headers: &[&'static str]) -> Self {
        Self {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Append one row (one cell per header).
    pub(crate) fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    /// The table as lines separated by `\n`, two spaces between columns.
    pub(crate) fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let header: Vec<String> = self.headers.iter().map(|h| (*h).to_owned()).collect();
        std::iter::once(&header)
            .chain(&self.rows)
            .map(|row| render_row(row, &widths))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn render_row(row: &[String], widths: &[usize]) -> String {
    let mut line = String::new();
    for (i, (cell, width)) in row.iter().zip(widths).enumerate() {
        if i > 0 {
            line.push_str("  ");
        }
        line.push_str(cell);
        // Pad every column but the last so lines carry no trailing blanks.
        if i + 1 < row.len() {
            let pad = width.saturating_sub(cell.chars().count());
            line.extend(std::iter::repeat_n(' ', pad));
        }
    }
    line.trim_end().to_owned()
}

/// Bytes in base-1024 units with one decimal: `512 B`, `1.5 KiB`, `3.0 GiB`.
pub(crate) fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    // f64 loses precision only past 2^53 bytes, far beyond one decimal.
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1023.95 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A rate as `1.5 MiB/s`.
pub(crate) fn format_rate(bytes_per_sec: u64) -> String {
    format!("{}/s", format_bytes(bytes_per_sec))
}

/// A duration as `m:ss` or `h:mm:ss`.
pub(crate) fn format_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// The first 12 characters of a hex digest, enough to tell rows apart.
pub(crate) fn short_hash(hex: &str) -> &str {
    hex.get(..12).unwrap_or(hex)
}

/// `-` for a missing value in a table cell.
pub(crate) fn or_dash(value: Option<String>) -> String {
    value.unwrap_or_else(|| "-".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_bytes_base_1024_one_decimal() {
        let table = [
            (0, "0 B"),
            (1023, "1023 B"),
            (1024, "1.0 KiB"),
            (1536, "1.5 KiB"),
            (10 * 1024 * 1024, "10.0 MiB"),
            (1024 * 1024 - 1, "1.0 MiB"),
            (3 * 1024 * 1024 * 1024 + 300 * 1024 * 1024, "3.3 GiB"),
            (u64::MAX, "16.0 EiB"),
        ];
        for (bytes, expected) in table {
            assert_eq!(format_bytes(bytes), expected, "{bytes}");
        }
    }

    #[test]
    fn formats_durations() {
        assert_eq!(format_duration(0), "0:00");
        assert_eq!(format_duration(62), "1:02");
        assert_eq!(format_duration(3723), "1:02:03");
    }

    #[test]
    fn aligns_table_columns_without_trailing_blanks() {
        let mut table = Table::new(&["NAME", "SIZE"]);
        table.push(vec!["debian.img".into(), "1.0 GiB".into()]);
        table.push(vec!["a".into(), "-".into()]);
        assert_eq!(
            table.render(),
            "NAME        SIZE\ndebian.img  1.0 GiB\na           -"
        );
    }

    #[test]
    fn shortens_hashes_safely() {
        assert_eq!(short_hash("0123456789abcdef"), "0123456789ab");
        assert_eq!(short_hash("abc"), "abc");
    }
}
