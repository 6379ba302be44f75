//! The progress shown on stderr: a job's bar (bytes, the daemon's rate and
//! an ETA derived from it, plus one line per flash target) and the bar of a
//! local transfer (upload). Hidden for `--json` and when stderr is not a
//! terminal, so scripts and logs see no control codes.

use crate::job::{kind_name, state_name, target_line};
use crate::output::{format_bytes, format_duration, format_rate};
use bty_proto::v1::{Job, JobState};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

const BAR_TEMPLATE: &str = "{prefix} [{bar:30.cyan/blue}] {msg}";
const SPINNER_TEMPLATE: &str = "{spinner} {prefix} {msg}";
const TARGET_TEMPLATE: &str = "  {msg}";
const TRANSFER_TEMPLATE: &str = "{prefix} [{bar:30.cyan/blue}] {binary_bytes} / {binary_total_bytes}  {binary_bytes_per_sec}  ETA {eta}";

/// Whether progress may be drawn: not for `--json`, not into a pipe or log.
fn visible(json: bool) -> bool {
    !json && std::io::stderr().is_terminal()
}

/// A progress bar following one job's snapshots, with a line per flash
/// target under it.
#[derive(Debug)]
pub(crate) struct JobProgress {
    /// Holds the bar and the target lines together; `None` when hidden.
    multi: Option<MultiProgress>,
    bar: ProgressBar,
    targets: Vec<ProgressBar>,
}

impl JobProgress {
    /// A bar on stderr, or a hidden one when `json` or stderr is no TTY.
    pub(crate) fn new(json: bool) -> Self {
        if !visible(json) {
            return Self {
                multi: None,
                bar: ProgressBar::hidden(),
                targets: Vec::new(),
            };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let bar = multi.add(ProgressBar::no_length());
        bar.set_style(style(SPINNER_TEMPLATE));
        // The spinner keeps moving between snapshots so a slow job looks alive.
        bar.enable_steady_tick(Duration::from_millis(120));
        Self {
            multi: Some(multi),
            bar,
            targets: Vec::new(),
        }
    }

    /// Show the latest snapshot of the job.
    pub(crate) fn update(&mut self, job: &Job) {
        // Text first, so the first frame drawn by a style change is complete.
        self.bar
            .set_prefix(format!("{} {}", kind_name(job.kind()), job.subject));
        self.bar.set_message(status_text(job));
        match job.bytes_total {
            Some(total) if self.bar.length() != Some(total) => {
                self.bar.set_style(style(BAR_TEMPLATE));
                self.bar.set_length(total);
            }
            None if self.bar.length().is_some() => {
                self.bar.set_style(style(SPINNER_TEMPLATE));
                self.bar.unset_length();
            }
            _ => {}
        }
        self.bar.set_position(job.bytes_done);
        self.update_targets(job);
    }

    /// One line per target; the daemon may add targets after the first
    /// snapshot, so lines are created as they appear.
    fn update_targets(&mut self, job: &Job) {
        let Some(multi) = &self.multi else {
            return;
        };
        while self.targets.len() < job.targets.len() {
            let line = multi.add(ProgressBar::no_length());
            line.set_style(style(TARGET_TEMPLATE));
            self.targets.push(line);
        }
        for (line, target) in self.targets.iter().zip(&job.targets) {
            line.set_message(target_line(target));
        }
    }

    /// Remove the bar and the target lines; the caller prints the outcome.
    pub(crate) fn finish(&self) {
        for line in &self.targets {
            line.finish_and_clear();
        }
        self.bar.finish_and_clear();
    }
}

/// A bar for bytes btyctl itself moves (an upload), with indicatif's own
/// rate and ETA since no daemon reports them.
#[derive(Debug)]
pub(crate) struct TransferProgress {
    bar: ProgressBar,
}

impl TransferProgress {
    /// A bar of `total` bytes labelled `label`, hidden like [`JobProgress`].
    pub(crate) fn new(json: bool, total: u64, label: String) -> Self {
        if !visible(json) {
            return Self {
                bar: ProgressBar::hidden(),
            };
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(style(TRANSFER_TEMPLATE));
        bar.set_prefix(label);
        Self { bar }
    }

    /// A handle that counts bytes as they are sent (cheap to clone).
    pub(crate) fn counter(&self) -> ProgressBar {
        self.bar.clone()
    }

    /// Remove the bar; the caller prints the outcome.
    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

fn style(template: &str) -> ProgressStyle {
    // The templates are constants; a bad one falls back to a plain bar.
    ProgressStyle::with_template(template)
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// `1.5 GiB / 3.0 GiB  12.0 MiB/s  ETA 2:08  writing`.
fn status_text(job: &Job) -> String {
    let mut parts = Vec::new();
    match job.bytes_total {
        Some(total) => parts.push(format!(
            "{} / {}",
            format_bytes(job.bytes_done),
            format_bytes(total)
        )),
        None => parts.push(format_bytes(job.bytes_done)),
    }
    if job.state() == JobState::Running {
        parts.push(format_rate(job.rate_bps));
        if let Some(eta) = eta_secs(job) {
            parts.push(format!("ETA {}", format_duration(eta)));
        }
    }
    let phase = match job.phase_text() {
        "" => state_name(job.state()),
        phase => phase,
    };
    parts.push(phase.to_owned());
    // Flash jobs read a (maybe compressed) source besides writing targets.
    if job.source_bytes > 0 {
        parts.push(format!("{} read", format_bytes(job.source_bytes)));
    }
    parts.join("  ")
}

/// Seconds left at the daemon's current rate, when both are known.
fn eta_secs(job: &Job) -> Option<u64> {
    let total = job.bytes_total?;
    (job.rate_bps > 0).then(|| total.saturating_sub(job.bytes_done).div_ceil(job.rate_bps))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running(done: u64, total: Option<u64>, rate: u64) -> Job {
        Job {
            state: JobState::Running.into(),
            bytes_done: done,
            bytes_total: total,
            rate_bps: rate,
            phase: bty_proto::v1::JobPhase::Downloading.into(),
            ..Job::default()
        }
    }

    #[test]
    fn templates_parse() {
        for template in [
            BAR_TEMPLATE,
            SPINNER_TEMPLATE,
            TARGET_TEMPLATE,
            TRANSFER_TEMPLATE,
        ] {
            assert!(ProgressStyle::with_template(template).is_ok(), "{template}");
        }
    }

    #[test]
    fn eta_uses_daemon_rate() {
        assert_eq!(eta_secs(&running(0, Some(1000), 100)), Some(10));
        assert_eq!(eta_secs(&running(950, Some(1000), 100)), Some(1));
        assert_eq!(eta_secs(&running(0, Some(1000), 0)), None);
        assert_eq!(eta_secs(&running(0, None, 100)), None);
    }

    #[test]
    fn status_text_shows_bytes_rate_eta_phase() {
        let text = status_text(&running(1024, Some(4096), 1024));
        assert_eq!(text, "1.0 KiB / 4.0 KiB  1.0 KiB/s  ETA 0:03  downloading");
    }

    #[test]
    fn status_text_shows_source_bytes_of_flash_jobs() {
        let job = Job {
            source_bytes: 512,
            ..running(1024, None, 0)
        };
        assert_eq!(status_text(&job), "1.0 KiB  0 B/s  downloading  512 B read");
    }
}
