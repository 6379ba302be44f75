//! The safety gate in front of every write: the disk rules of `bty-disks`
//! plus "this is the device the operator confirmed", checked when the job
//! is requested and again just before the first byte.

use super::messages::ConfirmedTarget;
use bty_disks::{SystemPaths, Target, TargetKind, check_target, same_identity};

/// Check one target against the rules and the confirmed identity.
pub(crate) fn check_confirmed(
    paths: &SystemPaths,
    confirmed: &ConfirmedTarget,
    needed: Option<u64>,
    allow_file: bool,
) -> Result<Target, String> {
    let target = check_target(paths, &confirmed.path, needed, allow_file).map_err(|refusals| {
        refusals
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    if matches!(target.kind, TargetKind::BlockDevice { .. }) {
        let path = confirmed.path.display();
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
    }
    Ok(target)
}

/// Re-check just before writing: same rules, same device as at request time.
pub(crate) fn recheck(
    paths: &SystemPaths,
    confirmed: &ConfirmedTarget,
    first: &Target,
    needed: Option<u64>,
    allow_file: bool,
) -> Result<Target, String> {
    let fresh = check_confirmed(paths, confirmed, needed, allow_file)?;
    if !same_identity(&first.identity, &fresh.identity) {
        return Err(format!(
            "refusing {}: the device changed since the flash was requested",
            confirmed.path.display()
        ));
    }
    Ok(fresh)
}
