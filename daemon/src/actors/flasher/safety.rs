//! The safety gate in front of every write: the disk rules of `bty-disks`
//! plus "this is the device the operator confirmed", checked when the job
//! is requested and again just before the first byte (and, by the
//! pipeline, on the opened descriptor).

use super::error::Refused;
use super::messages::ConfirmedTarget;
use bty_disks::{SystemPaths, Target, TargetKind, check_target, same_identity};
use std::path::Path;

/// Where targets may be: the system's disks, and regular files only
/// inside the directory the daemon's config names.
#[derive(Debug, Clone, Default)]
pub struct TargetRules {
    /// Where sysfs/procfs live (tests may point elsewhere).
    pub paths: SystemPaths,
    /// `[flash] file_targets_dir`: the one directory whose regular files
    /// may be targets (image building, tests). Never set by a request.
    pub file_targets_dir: Option<std::path::PathBuf>,
}

/// Check one target against the rules and the confirmed identity.
pub(crate) fn check_confirmed(
    rules: &TargetRules,
    confirmed: &ConfirmedTarget,
    needed: Option<u64>,
) -> Result<Target, Refused> {
    let target = check_target(
        &rules.paths,
        &confirmed.path,
        needed,
        rules.file_targets_dir.as_deref(),
    )
    .map_err(Refused::Rules)?;
    if matches!(target.kind, TargetKind::BlockDevice { .. }) {
        matches_confirmation(&confirmed.path, confirmed, &target)?;
    }
    Ok(target)
}

/// The device found is the one the operator saw: size, serial, model and,
/// when the client sent it, the kernel's disk sequence number (which tells
/// two identical sticks, or a loop re-attached to a same-size file, apart).
fn matches_confirmation(
    path: &Path,
    confirmed: &ConfirmedTarget,
    target: &Target,
) -> Result<(), Refused> {
    let path = path.to_owned();
    if confirmed.size_bytes == 0 {
        return Err(Refused::NotConfirmed { path });
    }
    if confirmed.size_bytes != target.size_bytes {
        return Err(Refused::Size {
            path,
            found: target.size_bytes,
            confirmed: confirmed.size_bytes,
        });
    }
    if confirmed.serial.is_some() && confirmed.serial != target.identity.serial {
        return Err(Refused::Serial {
            path,
            confirmed: confirmed.serial.clone(),
            found: target.identity.serial.clone(),
        });
    }
    if confirmed.model.is_some() && confirmed.model != target.identity.model {
        return Err(Refused::Model {
            path,
            confirmed: confirmed.model.clone(),
            found: target.identity.model.clone(),
        });
    }
    if let (Some(want), Some(found)) = (confirmed.diskseq, target.identity.diskseq)
        && want != found
    {
        return Err(Refused::Diskseq {
            path,
            confirmed: want,
            found,
        });
    }
    Ok(())
}

/// Re-check just before writing: same rules, same device as at request time.
pub(crate) fn recheck(
    rules: &TargetRules,
    confirmed: &ConfirmedTarget,
    first: &Target,
    needed: Option<u64>,
) -> Result<Target, Refused> {
    let fresh = check_confirmed(rules, confirmed, needed)?;
    if !same_identity(&first.identity, &fresh.identity) {
        return Err(Refused::Changed {
            path: confirmed.path.clone(),
        });
    }
    Ok(fresh)
}
