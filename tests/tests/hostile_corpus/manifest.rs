//! `tests/corpus/cases.toml`: the case schema, loading, and turning a case
//! into its input bytes (inline text, hex, a data file, or a generated fill).

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Where the corpus lives.
pub(crate) fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

/// The whole manifest.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Manifest {
    pub(crate) case: Vec<Case>,
}

/// What kind of input a case is, which picks its default surfaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    Catalog,
    Name,
    Src,
    Oras,
    Format,
    Sidecar,
    Stream,
    Http,
    Qcow2,
}

/// One hostile input and what must happen to it (field docs: the header of
/// cases.toml).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Case {
    pub(crate) id: String,
    pub(crate) kind: Kind,
    pub(crate) input: Option<String>,
    pub(crate) input_hex: Option<String>,
    pub(crate) file: Option<String>,
    #[serde(default)]
    pub(crate) fill: Vec<String>,
    pub(crate) fill_count: Option<usize>,
    pub(crate) expect: Option<String>,
    pub(crate) forbid: Option<String>,
    pub(crate) code: Option<i32>,
    pub(crate) surfaces: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) ok: bool,
    pub(crate) canonical: Option<String>,
    pub(crate) known_bug: Option<String>,
    pub(crate) bug_surfaces: Option<Vec<String>>,
    pub(crate) name: Option<String>,
    pub(crate) codec: Option<String>,
    pub(crate) damage: Option<String>,
    pub(crate) method: Option<String>,
    pub(crate) path: Option<String>,
    #[serde(default)]
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Option<String>,
    pub(crate) raw: Option<String>,
    pub(crate) raw_hex: Option<String>,
    #[serde(default)]
    pub(crate) status: Vec<u16>,
    /// http cases: the right answer is closing the connection without a
    /// response (instead of a `status`).
    #[serde(default)]
    pub(crate) expect_close: bool,
    /// http cases: the credential sent (`session`, the default: cookie and
    /// CSRF header of a logged-in browser; `bearer`; `none`).
    pub(crate) auth: Option<String>,
}

/// Read and check the manifest: ids unique, exactly one input per case
/// that needs one, and every refusal pinned (see [`Case::unpinned`]).
pub(crate) fn load() -> Vec<Case> {
    let path = corpus_dir().join("cases.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let manifest: Manifest =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{} is malformed: {e}", path.display()));
    let mut seen = std::collections::HashSet::new();
    for case in &manifest.case {
        assert!(
            seen.insert(case.id.clone()),
            "duplicate case id {}",
            case.id
        );
        let inputs = [&case.input, &case.input_hex, &case.file]
            .iter()
            .filter(|i| i.is_some())
            .count();
        let wants_input = !matches!(case.kind, Kind::Stream | Kind::Http);
        assert!(
            !wants_input || inputs == 1,
            "case {}: give exactly one of input, input_hex, file",
            case.id
        );
    }
    let unpinned: Vec<String> = manifest
        .case
        .iter()
        .filter_map(|case| case.unpinned().map(|why| format!("{}: {why}", case.id)))
        .collect();
    assert!(
        unpinned.is_empty(),
        "{} cases do not say exactly how they are refused:\n{}",
        unpinned.len(),
        unpinned.join("\n")
    );
    manifest.case
}

impl Case {
    /// What is missing for this case to be a strict check, if anything. A
    /// refusal must name what was wrong, so every refused case has an
    /// `expect`. An http case also pins the answer: a `status` list (no 0:
    /// a timeout is never a refusal) or `expect_close`, which has nothing
    /// to say and so no `expect`. Accepted (`ok`) cases are pinned by
    /// `canonical` or by being accepted at all.
    fn unpinned(&self) -> Option<String> {
        if self.ok {
            return None;
        }
        if self.kind != Kind::Http {
            return self
                .expect
                .is_none()
                .then(|| "no `expect`: the error must name what was wrong".to_owned());
        }
        if self.status.contains(&0) {
            return Some(
                "status 0 is not an answer: list the statuses, or set expect_close".to_owned(),
            );
        }
        match (self.expect_close, self.status.is_empty(), &self.expect) {
            (true, true, None) => None,
            (true, _, _) => Some("expect_close takes no `status` and no `expect`".to_owned()),
            (false, true, _) => Some("no `status` (or expect_close)".to_owned()),
            (false, false, None) => Some("no `expect`: what the answer must say".to_owned()),
            (false, false, Some(_)) => None,
        }
    }

    /// The surfaces this case runs on, before NUL filtering.
    pub(crate) fn surfaces(&self) -> Vec<String> {
        if let Some(list) = &self.surfaces {
            return list.clone();
        }
        let defaults: &[&str] = match self.kind {
            Kind::Catalog => &["parse", "import"],
            Kind::Name => &["validate", "hash", "upload"],
            Kind::Src => &["canon", "add"],
            Kind::Oras => &["oras", "canon", "add"],
            Kind::Format => &["detect"],
            Kind::Sidecar => &["sidecar"],
            Kind::Stream => &["decode", "flash"],
            Kind::Http => &["http"],
            Kind::Qcow2 => &["inspect"],
        };
        defaults.iter().map(|s| (*s).to_owned()).collect()
    }

    /// Whether a failure on `surface` is the case's known bug.
    pub(crate) fn is_known_bug_on(&self, surface: &str) -> bool {
        self.known_bug.is_some()
            && self
                .bug_surfaces
                .as_ref()
                .is_none_or(|list| list.iter().any(|s| s == surface))
    }

    /// The input bytes.
    pub(crate) fn bytes(&self) -> Vec<u8> {
        if let Some(hex) = &self.input_hex {
            return decode_hex(hex).unwrap_or_else(|| panic!("case {}: bad input_hex", self.id));
        }
        if let Some(file) = &self.file {
            let path = corpus_dir().join(file);
            return std::fs::read(&path)
                .unwrap_or_else(|e| panic!("case {}: reading {}: {e}", self.id, path.display()));
        }
        let mut text = self.input.clone().unwrap_or_default();
        let count = self.fill_count.unwrap_or(1);
        for (i, fill) in self.fill.iter().enumerate() {
            text = text.replace(&format!("@FILL{i}@"), &fill.repeat(count));
        }
        text.into_bytes()
    }

    /// The input as text (lossy: only non-UTF-8 catalog cases have other
    /// bytes, and those go through the byte surfaces).
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes()).into_owned()
    }

    /// Whether `message` names what was wrong: it contains one of the
    /// `|`-separated expectations (case-insensitive) and not `forbid`.
    pub(crate) fn check_message(&self, message: &str) -> Result<(), String> {
        let lower = message.to_lowercase();
        if let Some(forbid) = &self.forbid
            && lower.contains(&forbid.to_lowercase())
        {
            return Err(format!("error leaks {forbid:?}: {}", clip(message)));
        }
        let Some(expect) = &self.expect else {
            return Ok(());
        };
        if expect
            .split('|')
            .any(|want| lower.contains(&want.to_lowercase()))
        {
            Ok(())
        } else {
            Err(format!(
                "want {expect:?} in the error, got: {}",
                clip(message)
            ))
        }
    }
}

/// The first 300 characters of a message, for reports about huge inputs.
pub(crate) fn clip(message: &str) -> String {
    let mut out: String = message.chars().take(300).collect();
    if out.len() < message.len() {
        out.push('…');
    }
    out
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    let hex: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    hex.chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
}
