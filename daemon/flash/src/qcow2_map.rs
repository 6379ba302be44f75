//! The layout of a plain qcow2 image, from `qemu-img info` and `qemu-img
//! map`: when every guest byte is either zero or stored uncompressed in the
//! image file itself (no backing file, no encryption, no external data
//! file, no compressed cluster), the guest disk is a list of zero runs and
//! file ranges, and the pipeline streams it like a sparse raw file — one
//! read for every target, zero runs skipped, per-piece verify. Anything else
//! goes through `qemu-img convert` ([`crate::flash_qcow2`]).

use std::fs::File;

use serde_json::Value;

use crate::qemu_img;
use bty_dio::ALIGN;

/// A guest range of a plain qcow2 image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MapExtent {
    /// Guest offset.
    pub(crate) start: u64,
    /// Bytes.
    pub(crate) len: u64,
    /// Where the bytes are stored in the image file; `None`: zeros.
    pub(crate) host: Option<u64>,
}

/// The layout of the qcow2 image open as `image` when it is plain (see the
/// module docs), covering exactly `[0, virtual size)`; `None` when it is
/// not, or qemu-img could not tell. Call only after
/// [`crate::qcow2_header::inspect_qcow2`] accepted the image: qemu-img
/// opens it.
pub(crate) fn plain_layout(image: &File) -> Option<Vec<MapExtent>> {
    let info = qemu_img_json(image, "info")?;
    let file_size = image.metadata().ok()?.len();
    let virtual_size = plain_virtual_size(&info)?;
    let map = qemu_img_json(image, "map")?;
    layout_from_map(&map, virtual_size, file_size)
}

fn qemu_img_json(image: &File, command: &str) -> Option<Value> {
    let out = qemu_img::command(&[image])
        .args([command, "--output=json", "--image-opts"])
        .arg(qemu_img::qcow2_opts(image))
        .output()
        .ok()?;
    if !out.status.success() {
        tracing::debug!(command, stderr = %String::from_utf8_lossy(&out.stderr), "qemu-img failed");
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// The virtual size from `qemu-img info`, if nothing in it rules out a
/// direct read of the file.
fn plain_virtual_size(info: &Value) -> Option<u64> {
    let specific = &info["format-specific"]["data"];
    let plain = info["format"] == "qcow2"
        && info.get("backing-filename").is_none()
        && info["encrypted"] != true
        && specific.get("data-file").is_none()
        && specific.get("encrypt").is_none()
        && specific["corrupt"] != true;
    plain.then(|| info["virtual-size"].as_u64())?
}

/// `qemu-img map` entries as extents; `None` on anything but zero runs and
/// uncompressed, aligned data in the file itself, in order, covering the
/// whole disk.
fn layout_from_map(map: &Value, virtual_size: u64, file_size: u64) -> Option<Vec<MapExtent>> {
    let mut extents = Vec::new();
    let mut at = 0u64;
    for entry in map.as_array()? {
        let start = entry["start"].as_u64()?;
        let len = entry["length"].as_u64()?;
        if start != at || entry["depth"].as_u64()? != 0 || entry["compressed"] == true {
            return None;
        }
        let host = if entry["data"] == true {
            let host = entry["offset"].as_u64()?;
            let aligned = [start, host].iter().all(|v| v % ALIGN as u64 == 0);
            if !aligned || host.checked_add(len)? > file_size {
                return None;
            }
            Some(host)
        } else {
            None
        };
        extents.push(MapExtent { start, len, host });
        at = start.checked_add(len)?;
    }
    (at == virtual_size).then_some(extents)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn zero_runs_and_file_data_make_a_layout() {
        let map = json!([
            {"start": 0, "length": 65536, "depth": 0, "present": true, "zero": false, "data": true, "compressed": false, "offset": 327680},
            {"start": 65536, "length": 131072, "depth": 0, "present": false, "zero": true, "data": false, "compressed": false},
            {"start": 196608, "length": 4096, "depth": 0, "present": true, "zero": false, "data": true, "compressed": false, "offset": 393216}
        ]);
        let layout = layout_from_map(&map, 200_704, 1 << 20).unwrap();
        assert_eq!(layout.len(), 3);
        assert_eq!(layout[1].host, None);
        assert_eq!(layout[2].host, Some(393_216));
        // Not the whole disk.
        assert!(layout_from_map(&map, 300_000, 1 << 20).is_none());
        // Data past the end of the file.
        assert!(layout_from_map(&map, 200_704, 395_000).is_none());
    }

    #[test]
    fn compressed_backed_or_unaligned_data_is_not_plain() {
        let one = |extra: Value| {
            let mut e = json!({"start": 0, "length": 65536, "depth": 0, "present": true,
                "zero": false, "data": true, "compressed": false, "offset": 65536});
            for (k, v) in extra.as_object().unwrap() {
                e[k] = v.clone();
            }
            layout_from_map(&json!([e]), 65536, 1 << 20)
        };
        assert!(one(json!({})).is_some());
        assert!(one(json!({"compressed": true})).is_none());
        assert!(one(json!({"depth": 1})).is_none());
        assert!(one(json!({"offset": 1000})).is_none());
        assert!(one(json!({"offset": null})).is_none());
    }

    fn qemu_img(args: &[&str]) {
        let ok = std::process::Command::new("qemu-img")
            .args(args)
            .arg("-q")
            .status()
            .unwrap()
            .success();
        assert!(ok, "qemu-img {args:?}");
    }

    #[test]
    fn real_images_plain_or_not() {
        let tmp = tempfile::tempdir().unwrap();
        let p = |name: &str| tmp.path().join(name).to_string_lossy().into_owned();
        let mut data = vec![0u8; 4 << 20];
        data[..1 << 20].fill(0x5A);
        data[3 << 20..].fill(0xA5);
        std::fs::write(p("raw"), &data).unwrap();
        qemu_img(&[
            "convert",
            "-f",
            "raw",
            "-O",
            "qcow2",
            &p("raw"),
            &p("plain.qcow2"),
        ]);
        let open = |name: &str| File::open(p(name)).unwrap();
        let layout = plain_layout(&open("plain.qcow2")).unwrap();
        assert_eq!(layout.iter().map(|e| e.len).sum::<u64>(), 4 << 20);
        assert!(layout.iter().any(|e| e.host.is_none()), "{layout:?}");

        qemu_img(&[
            "convert",
            "-c",
            "-f",
            "raw",
            "-O",
            "qcow2",
            &p("raw"),
            &p("comp.qcow2"),
        ]);
        assert!(plain_layout(&open("comp.qcow2")).is_none());
        // Not a qcow2 at all.
        assert!(plain_layout(&open("raw")).is_none());
    }

    #[test]
    fn info_rules_out_backing_files_encryption_and_data_files() {
        let plain = json!({"format": "qcow2", "virtual-size": 1024,
            "format-specific": {"type": "qcow2", "data": {"corrupt": false}}});
        assert_eq!(plain_virtual_size(&plain), Some(1024));
        for (key, value) in [
            ("backing-filename", json!("base.qcow2")),
            ("encrypted", json!(true)),
        ] {
            let mut info = plain.clone();
            info[key] = value;
            assert_eq!(plain_virtual_size(&info), None, "{key}");
        }
        let mut info = plain.clone();
        info["format-specific"]["data"]["data-file"] = json!("data.raw");
        assert_eq!(plain_virtual_size(&info), None);
        let mut info = plain;
        info["format-specific"]["data"]["corrupt"] = json!(true);
        assert_eq!(plain_virtual_size(&info), None);
    }
}
