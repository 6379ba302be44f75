//! The in-process surfaces: bty-store's parsers called directly.

use bty_store::canon::canonicalise_src;
use bty_store::catalog_file::CatalogFile;
use bty_store::chain::chain;
use bty_store::format::detect;
use bty_store::names::validate_image_file_name;
use bty_store::oras_ref::OrasRef;
use bty_store::sidecar::check_sidecar;

use super::manifest::{Case, clip};

/// Run `case` on one pure surface. `Ok` when it behaved as the case says.
pub(crate) fn run(case: &Case, surface: &str) -> Result<(), String> {
    let outcome: Result<String, String> = match surface {
        "parse" => CatalogFile::parse(&case.bytes(), &case.id)
            .map(|file| format!("{} entries", file.entries.len()))
            .map_err(|e| e.to_string()),
        "validate" => validate_image_file_name(&case.text())
            .map(|()| "valid".to_owned())
            .map_err(|e| e.to_string()),
        "canon" => canonicalise_src(&case.text()).map_err(|e| chain(&e)),
        "oras" => OrasRef::parse(&case.text())
            .map(|r| r.to_string())
            .map_err(|e| e.to_string()),
        "detect" => {
            let name = case.name.as_deref().unwrap_or("image");
            detect(name, &case.bytes())
                .map(|f| f.as_str().to_owned())
                .map_err(|e| e.to_string())
        }
        // A sidecar without a sha256 is judged Invalid (and hashed again);
        // the error says why, as the daemon's log does.
        "sidecar" => check_sidecar(&case.text()).map_err(|e| e.to_string()),
        other => return Err(format!("unknown pure surface {other:?}")),
    };
    judge(case, outcome)
}

/// Compare an outcome with the case's expectation.
pub(crate) fn judge(case: &Case, outcome: Result<String, String>) -> Result<(), String> {
    match (outcome, case.ok) {
        (Err(message), false) => case.check_message(&message),
        (Ok(value), false) => Err(format!("accepted ({})", clip(&value))),
        (Ok(value), true) => match &case.canonical {
            Some(want) if *want != value => Err(format!("canonical {value:?}, want {want:?}")),
            _ => Ok(()),
        },
        (Err(message), true) => Err(format!("refused a valid input: {}", clip(&message))),
    }
}
