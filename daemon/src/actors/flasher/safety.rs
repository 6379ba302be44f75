//! The safety gate in front of every write: the disk rules of `bty-disks`
//! plus "this is the device the operator confirmed", checked when the job
//! is requested and again just before the first byte (and, by the
//! pipeline, on the opened descriptor).

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
) -> Result<Target, String> {
    let target = check_target(
        &rules.paths,
        &confirmed.path,
        needed,
        rules.file_targets_dir.as_deref(),
    )
    .map_err(|refusals| {
        refusals
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })?;
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
) -> Result<(), String> {
    let path = path.display();
    if confirmed.size_bytes == 0 {
        return Err(format!(
            "refusing {path}: not confirmed (a flash request must carry the size, serial and model \
             the operator confirmed; btyctl flash asks, --yes confirms)"
        ));
    }
    if confirmed.size_bytes != target.size_bytes {
        return Err(format!(
            "refusing {path}: it is {} bytes but {} bytes were confirmed; is it still the same disk?",
            target.size_bytes, confirmed.size_bytes
        ));
    }
    if confirmed.serial.is_some() && confirmed.serial != target.identity.serial {
        return Err(format!(
            "refusing {path}: serial {:?} was confirmed but the disk reports {:?}",
            confirmed.serial, target.identity.serial
        ));
    }
    if confirmed.model.is_some() && confirmed.model != target.identity.model {
        return Err(format!(
            "refusing {path}: model {:?} was confirmed but the disk reports {:?}",
            confirmed.model, target.identity.model
        ));
    }
    if let (Some(want), Some(found)) = (confirmed.diskseq, target.identity.diskseq)
        && want != found
    {
        return Err(format!(
            "refusing {path}: disk sequence number {want} was confirmed but the device now has \
             {found}: it was replaced or re-attached since it was listed"
        ));
    }
    Ok(())
}

/// Re-check just before writing: same rules, same device as at request time.
pub(crate) fn recheck(
    rules: &TargetRules,
    confirmed: &ConfirmedTarget,
    first: &Target,
    needed: Option<u64>,
) -> Result<Target, String> {
    let fresh = check_confirmed(rules, confirmed, needed)?;
    if !same_identity(&first.identity, &fresh.identity) {
        return Err(format!(
            "refusing {}: the device changed since the flash was requested",
            confirmed.path.display()
        ));
    }
    Ok(fresh)
}
