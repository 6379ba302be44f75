//! The hostile-input corpus (`tests/corpus/cases.toml`): every case is
//! refused with an error naming what was wrong, and nothing stored changes.
//! Pure cases call bty-store and bty-flash in-process; daemon cases go to
//! one real btyd through btyctl and raw HTTP. Adding a case is one entry in
//! the manifest.
//!
//! `BTY_CORPUS_CASE=<substring>` runs only the matching case ids.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "hostile_corpus/daemon.rs"]
mod daemon;
#[path = "hostile_corpus/manifest.rs"]
mod manifest;
#[path = "hostile_corpus/pure.rs"]
mod pure;
#[path = "hostile_corpus/qcow2.rs"]
mod qcow2;
#[path = "hostile_corpus/streams.rs"]
mod streams;

use std::collections::HashMap;
use std::io::Write;

use manifest::Case;

/// Surfaces that need the daemon; everything else runs in-process.
const DAEMON_SURFACES: [&str; 5] = ["import", "hash", "upload", "add", "http"];
/// Surfaces whose input travels in an argv, which cannot carry NUL.
const ARGV_SURFACES: [&str; 4] = ["import", "hash", "upload", "add"];

/// How one case ended.
enum Outcome {
    Passed,
    Failed(Vec<String>),
    /// A `known_bug` case that is still mishandled.
    Known(String),
    /// A `known_bug` case that now behaves: its marker can go.
    Fixed,
}

#[test]
fn hostile_corpus_is_refused_and_changes_nothing() {
    let filter = std::env::var("BTY_CORPUS_CASE").unwrap_or_default();
    let cases: Vec<Case> = manifest::load()
        .into_iter()
        .filter(|c| c.id.contains(&filter))
        .collect();
    assert!(!cases.is_empty(), "no case matches {filter:?}");
    let scratch = tempfile::tempdir().unwrap();
    // In-process cases run before the daemon fixture exists, so the stream
    // cases' peak-memory measurement sees only their own allocations.
    let needs_daemon = cases.iter().any(|c| daemon_surfaces(c).next().is_some());
    // Per case: (surface, why) for every surface that misbehaved.
    let mut failures = HashMap::<String, Vec<(String, String)>>::new();
    let mut record = |case: &Case, surface: &str, result: Result<(), String>| {
        if let Err(why) = result {
            failures
                .entry(case.id.clone())
                .or_default()
                .push((surface.to_owned(), why));
        }
    };
    for case in &cases {
        for surface in case.surfaces() {
            if DAEMON_SURFACES.contains(&surface.as_str()) {
                continue;
            }
            let result = match case.kind {
                manifest::Kind::Stream => streams::run(case, &surface, scratch.path()),
                manifest::Kind::Qcow2 => qcow2::run(case, &surface, scratch.path()),
                _ => pure::run(case, &surface),
            };
            record(case, &surface, result);
        }
    }
    if needs_daemon {
        let fixture = daemon::Fixture::start();
        for case in &cases {
            for surface in daemon_surfaces(case) {
                record(case, &surface, fixture.run(case, &surface));
            }
        }
        if failures
            .keys()
            .any(|id| cases.iter().any(|c| c.id == *id && c.known_bug.is_none()))
        {
            eprintln!(
                "--- btyd log (tail) ---\n{}",
                tail(&fixture.daemon.log(), 40)
            );
        }
    }
    let outcomes: Vec<(String, Outcome)> = cases
        .iter()
        .map(|case| {
            let failed = failures.remove(&case.id).unwrap_or_default();
            let (known, real): (Vec<_>, Vec<_>) = failed
                .into_iter()
                .partition(|(s, _)| case.is_known_bug_on(s));
            let outcome = if !real.is_empty() {
                Outcome::Failed(
                    real.into_iter()
                        .map(|(s, why)| format!("[{s}] {why}"))
                        .collect(),
                )
            } else if let Some(bug) = &case.known_bug {
                if known.is_empty() {
                    Outcome::Fixed
                } else {
                    Outcome::Known(bug.clone())
                }
            } else {
                Outcome::Passed
            };
            (case.id.clone(), outcome)
        })
        .collect();
    assert!(
        report(&outcomes),
        "hostile corpus: some cases failed (see above)"
    );
}

/// The daemon surfaces of a case: none for `ok` cases (accepting them
/// would change the daemon's state for later cases), and no argv surface
/// for input holding NUL.
fn daemon_surfaces(case: &Case) -> impl Iterator<Item = String> + '_ {
    let skip_all = case.ok;
    let has_nul = case.bytes().contains(&0);
    case.surfaces().into_iter().filter(move |s| {
        DAEMON_SURFACES.contains(&s.as_str())
            && !skip_all
            && !(has_nul && ARGV_SURFACES.contains(&s.as_str()))
    })
}

/// Print one line per case that did not simply pass, the known bugs, and
/// the totals; true when no case failed. Written to stdout directly, past
/// libtest's capture, so the totals show on a passing run too.
fn report(outcomes: &[(String, Outcome)]) -> bool {
    let mut lines = Vec::new();
    let (mut passed, mut failed, mut known) = (0, 0, 0);
    // Known bugs grouped by description: one bug often covers many cases.
    let mut bugs: Vec<(&str, Vec<&str>)> = Vec::new();
    for (id, outcome) in outcomes {
        match outcome {
            Outcome::Passed => passed += 1,
            Outcome::Failed(why) => {
                failed += 1;
                for line in why {
                    lines.push(format!("FAIL {id}: {line}"));
                }
            }
            Outcome::Known(bug) => {
                known += 1;
                match bugs.iter_mut().find(|(b, _)| b == bug) {
                    Some((_, ids)) => ids.push(id),
                    None => bugs.push((bug, vec![id])),
                }
            }
            Outcome::Fixed => {
                passed += 1;
                lines.push(format!(
                    "FIXED {id}: behaves now, remove its known_bug marker"
                ));
            }
        }
    }
    for (bug, ids) in &bugs {
        lines.push(format!(
            "KNOWN BUG ({}): {bug}\n    cases: {}",
            ids.len(),
            ids.join(", ")
        ));
    }
    let total = outcomes.len();
    lines.push(format!(
        "hostile corpus: {total} cases, {passed} passed, {failed} failed, {known} known bugs"
    ));
    // The plain closing line CI reads; known bugs count as skipped.
    lines.push(format!("{passed} passed, {failed} failed, {known} skipped"));
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "\n{}", lines.join("\n"));
    failed == 0
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
