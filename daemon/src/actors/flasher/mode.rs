//! How a listing row would be flashed. The flasher's rule, published with
//! every row so clients (the web's flash page, btyctl) carry none of their
//! own: a local copy is read in place; a remote image is streamed, except a
//! qcow2, which qemu-img converts from a file and is therefore downloaded
//! first (see [`super::resolve`]).

use bty_store::merge::Row;

/// How a row is flashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlashMode {
    /// No local copy and nothing to download.
    None,
    /// From the file in the image root.
    Local,
    /// Streamed from its source, stored nowhere.
    Streamed,
    /// Downloaded into the image root first.
    FetchedFirst,
}

/// Whether an image of `format` must land in a file before it is flashed.
fn needs_a_file(format: Option<&str>) -> bool {
    format == Some("qcow2")
}

/// The same rule for a file name (a download's cache name).
pub(crate) fn name_needs_a_file(name: &str) -> bool {
    name.ends_with(".qcow2")
}

/// How `row` would be flashed now.
pub fn flash_mode(row: &Row) -> FlashMode {
    if row.cached {
        FlashMode::Local
    } else if !row.actions.fetch {
        FlashMode::None
    } else if needs_a_file(row.format.as_deref()) {
        FlashMode::FetchedFirst
    } else {
        FlashMode::Streamed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bty_store::merge::Actions;

    fn row(cached: bool, fetch: bool, format: &str) -> Row {
        Row {
            image_ref: bty_store::digest::Sha256Digest([0; 32]),
            names: Box::new(["x".into()]),
            sha256: None,
            format: Some(format.to_owned().into()),
            size_bytes: None,
            sources: Box::new([]),
            cached,
            actions: Actions {
                fetch,
                ..Actions::default()
            },
            file_name: None,
            signed_by: None,
            merged_refs: Box::new([]),
        }
    }

    #[test]
    fn local_copies_are_read_remote_images_stream_and_qcow2_lands_first() {
        assert_eq!(flash_mode(&row(true, false, "qcow2")), FlashMode::Local);
        assert_eq!(
            flash_mode(&row(false, true, "img.zst")),
            FlashMode::Streamed
        );
        assert_eq!(
            flash_mode(&row(false, true, "qcow2")),
            FlashMode::FetchedFirst
        );
        assert_eq!(flash_mode(&row(false, false, "img")), FlashMode::None);
        assert!(name_needs_a_file("vm.qcow2") && !name_needs_a_file("vm.img.xz"));
    }
}
