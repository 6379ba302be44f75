//! The images page's "this Fetch failed" mark: a row whose latest download
//! job failed shows a short reason (the whole error in a tooltip) and a
//! Retry button, on a full page load as well as on a re-rendered row.

use super::jobs::of_kinds;
use crate::state::AppState;
use bty_proto::v1::{Job, JobKind, JobState};
use std::collections::HashMap;

/// Longest reason shown in the row; the tooltip has the rest.
const SHORT_REASON_CHARS: usize = 90;

/// The newest download job of each subject (an image's name).
#[derive(Default)]
pub(crate) struct LatestDownloads {
    by_subject: HashMap<String, Job>,
}

impl LatestDownloads {
    /// btyd's download jobs; none when it does not answer (the rows then
    /// simply carry no mark).
    pub(crate) async fn load(state: &AppState) -> Self {
        match of_kinds(state, &[JobKind::Download]).await {
            Ok(jobs) => Self::from_jobs(jobs),
            Err(status) => {
                tracing::warn!(code = ?status.code(), detail = status.message(), "download jobs unavailable");
                Self::default()
            }
        }
    }

    fn from_jobs(jobs: Vec<Job>) -> Self {
        let mut by_subject: HashMap<String, Job> = HashMap::new();
        for job in jobs {
            let newer = by_subject
                .get(&job.subject)
                .is_none_or(|seen| job.created_at_ms >= seen.created_at_ms);
            if newer {
                by_subject.insert(job.subject.clone(), job);
            }
        }
        Self { by_subject }
    }

    /// The failure to show for a row with these names and sources: its
    /// newest download job (over all its names) failed.
    pub(crate) fn failure(&self, names: &[String], sources: &[String]) -> Option<RowFailure> {
        let latest = names
            .iter()
            .filter_map(|name| self.by_subject.get(name))
            .max_by_key(|job| job.created_at_ms)?;
        if latest.state != JobState::Failed as i32 {
            return None;
        }
        let full = latest
            .error
            .clone()
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| "the download failed".to_owned());
        Some(RowFailure {
            short: short_reason(&full, sources),
            full,
        })
    }
}

/// A failed download, ready to print.
pub(crate) struct RowFailure {
    pub(crate) short: String,
    pub(crate) full: String,
}

/// The gist of a download error for a table cell: the innermost cause (the
/// last `: `-separated part of the chain), without the URL the HTTP client
/// repeats (` for url (…)`), the row's own source called "the source",
/// and cut to a line.
pub(crate) fn short_reason(error: &str, sources: &[String]) -> String {
    let mut text = strip_for_url(error);
    if let Some((_, last)) = text.rsplit_once(": ")
        && !last.trim().is_empty()
    {
        text = last.trim().to_owned();
    }
    for source in sources.iter().filter(|s| !s.is_empty()) {
        text = text.replace(source.as_str(), "the source");
    }
    if text.chars().count() > SHORT_REASON_CHARS {
        let cut: String = text.chars().take(SHORT_REASON_CHARS - 1).collect();
        text = format!("{}…", cut.trim_end());
    }
    text
}

/// Drop every ` for url (…)`.
fn strip_for_url(error: &str) -> String {
    const MARK: &str = " for url (";
    let mut out = String::with_capacity(error.len());
    let mut rest = error;
    while let Some(start) = rest.find(MARK) {
        out.push_str(&rest[..start]);
        let after = &rest[start + MARK.len()..];
        match after.find(')') {
            Some(end) => rest = &after[end + 1..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(subject: &str, created: i64, state: JobState, error: Option<&str>) -> Job {
        Job {
            subject: subject.to_owned(),
            created_at_ms: created,
            state: state as i32,
            error: error.map(str::to_owned),
            ..Job::default()
        }
    }

    #[test]
    fn the_row_is_marked_only_when_its_newest_download_failed() {
        let names = vec!["a.img".to_owned()];
        let failed_then_done = LatestDownloads::from_jobs(vec![
            job("a.img", 1, JobState::Failed, Some("boom")),
            job("a.img", 2, JobState::Completed, None),
        ]);
        assert!(failed_then_done.failure(&names, &[]).is_none());
        let done_then_failed = LatestDownloads::from_jobs(vec![
            job("a.img", 2, JobState::Failed, Some("disk full")),
            job("a.img", 1, JobState::Completed, None),
            job("b.img", 3, JobState::Failed, Some("other")),
        ]);
        let failure = done_then_failed.failure(&names, &[]).unwrap();
        assert_eq!(failure.full, "disk full");
        assert_eq!(failure.short, "disk full");
    }

    #[test]
    fn reasons_name_the_cause_once() {
        let url = "http://127.0.0.1:9/x.img".to_owned();
        let refused = format!(
            "fetching {url} failed: error sending request for url ({url}): client error (Connect): tcp connect error: Connection refused (os error 111)"
        );
        assert_eq!(
            short_reason(&refused, std::slice::from_ref(&url)),
            "Connection refused (os error 111)"
        );
        let not_found = format!("{url} answered http 404 Not Found");
        assert_eq!(
            short_reason(&not_found, &[url]),
            "the source answered http 404 Not Found"
        );
        let long = "x".repeat(200);
        assert_eq!(short_reason(&long, &[]).chars().count(), SHORT_REASON_CHARS);
    }
}
