//! Which disk or file each TARGET names, and the identity of it that the
//! operator confirms and btyd checks again before writing.

use crate::exit::CtlError;
use crate::output::format_bytes;
use bty_proto::v1::{Disk, FlashTarget};
use std::path::PathBuf;

/// A resolved target: what is sent, and how it is shown for confirmation.
#[derive(Debug)]
pub(crate) struct Chosen {
    /// The path and the confirmed identity.
    pub(crate) target: FlashTarget,
    /// One line naming it for the operator.
    pub(crate) description: String,
}

/// Resolve every name, in order, once each (a disk named twice, e.g. as
/// `sdb` and `/dev/sdb`, is written once).
pub(crate) async fn resolve(disks: &[Disk], names: &[String]) -> Result<Vec<Chosen>, CtlError> {
    let mut chosen: Vec<Chosen> = Vec::new();
    for name in names {
        let next = resolve_one(disks, name).await?;
        if !chosen.iter().any(|c| c.target.path == next.target.path) {
            chosen.push(next);
        }
    }
    Ok(chosen)
}

async fn resolve_one(disks: &[Disk], name: &str) -> Result<Chosen, CtlError> {
    if let Some(disk) = find_disk(disks, name) {
        return Ok(from_disk(disk));
    }
    // A symlink such as /dev/disk/by-id/… names a listed disk by its real path.
    let canonical = tokio::fs::canonicalize(name).await.ok();
    if let Some(disk) = canonical
        .as_deref()
        .and_then(|path| path.to_str())
        .and_then(|path| find_disk(disks, path))
    {
        return Ok(from_disk(disk));
    }
    match (tokio::fs::metadata(name).await, canonical) {
        (Ok(metadata), Some(path)) if metadata.is_file() => {
            // btyd decides whether a file may be a target (only inside the
            // directory its own config names); it does not share btyctl's
            // working directory, so it gets the absolute path.
            from_file(path, metadata.len()).ok_or_else(|| CtlError::NoSuchDisk(name.to_owned()))
        }
        _ => Err(CtlError::NoSuchDisk(name.to_owned())),
    }
}

/// The listed disk with this path or kernel name.
fn find_disk<'a>(disks: &'a [Disk], name: &str) -> Option<&'a Disk> {
    disks.iter().find(|d| d.path == name || d.name == name)
}

fn from_disk(disk: &Disk) -> Chosen {
    let mut description = format!(
        "{}  {}  {}  serial {}",
        disk.path,
        disk.model.as_deref().unwrap_or("unknown model"),
        format_bytes(disk.size_bytes),
        disk.serial.as_deref().unwrap_or("unknown"),
    );
    // Shown before the prompt so nobody confirms a write btyd will refuse.
    if !disk.writable {
        description.push_str(&format!("  (btyd refuses: {})", disk.refusals.join("; ")));
    }
    Chosen {
        target: FlashTarget {
            path: disk.path.clone(),
            confirmed_size_bytes: disk.size_bytes,
            confirmed_serial: disk.serial.clone(),
            confirmed_model: disk.model.clone(),
            confirmed_diskseq: disk.diskseq,
        },
        description,
    }
}

/// A regular file target: its current size and no serial or model.
fn from_file(path: PathBuf, size: u64) -> Option<Chosen> {
    let path = path.into_os_string().into_string().ok()?;
    Some(Chosen {
        description: format!("{path}  regular file  {}", format_bytes(size)),
        target: FlashTarget {
            path,
            confirmed_size_bytes: size,
            confirmed_serial: None,
            confirmed_model: None,
            confirmed_diskseq: None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stick() -> Disk {
        Disk {
            path: "/dev/sdb".into(),
            name: "sdb".into(),
            size_bytes: 32_000_000_000,
            model: Some("Ultra".into()),
            serial: Some("4C53".into()),
            writable: true,
            ..Disk::default()
        }
    }

    #[tokio::test]
    async fn disks_resolve_by_path_or_name_once() {
        let disks = [stick()];
        let names = ["sdb".to_owned(), "/dev/sdb".to_owned()];
        let chosen = resolve(&disks, &names).await.expect("resolves");
        assert_eq!(chosen.len(), 1);
        let target = &chosen[0].target;
        assert_eq!(target.path, "/dev/sdb");
        assert_eq!(target.confirmed_size_bytes, 32_000_000_000);
        assert_eq!(target.confirmed_serial.as_deref(), Some("4C53"));
        assert_eq!(target.confirmed_model.as_deref(), Some("Ultra"));
    }

    #[tokio::test]
    async fn files_go_to_btyd_by_absolute_path_and_unknown_names_are_not_found() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("target.img");
        std::fs::write(&file, [0u8; 100]).expect("write");
        let name = file.to_str().expect("utf-8").to_owned();
        let chosen = resolve(&[], std::slice::from_ref(&name))
            .await
            .expect("a file target");
        assert_eq!(chosen[0].target.confirmed_size_bytes, 100);
        assert_eq!(chosen[0].target.confirmed_serial, None);
        let canonical = std::fs::canonicalize(&file).expect("canonical");
        assert_eq!(chosen[0].target.path, canonical.to_str().expect("utf-8"));
        let missing = resolve(&[stick()], &["/dev/sdz".to_owned()]).await;
        assert!(matches!(missing, Err(CtlError::NoSuchDisk(name)) if name == "/dev/sdz"));
    }

    #[test]
    fn refused_disks_say_why_before_the_prompt() {
        let disk = Disk {
            writable: false,
            refusals: vec!["mounted at /boot".into()],
            ..stick()
        };
        let chosen = from_disk(&disk);
        assert_eq!(
            chosen.description,
            "/dev/sdb  Ultra  29.8 GiB  serial 4C53  (btyd refuses: mounted at /boot)"
        );
    }
}
