//! qcow2 images that name another file, through bty-flash's own header
//! check: made by qemu-img from the case's `input` (its `create` options,
//! `@SCRATCH@` standing for a scratch dir) or given as raw `input_hex`.
//! qemu-img never reads them; the refusal must say why.

use std::process::Command;

use bty_flash::inspect_qcow2;
use bty_store::chain::chain;

use super::manifest::Case;
use super::pure::judge;

/// Run a qcow2 case on `surface` (`inspect`).
pub(crate) fn run(case: &Case, surface: &str, scratch: &std::path::Path) -> Result<(), String> {
    if surface != "inspect" {
        return Err(format!("unknown qcow2 surface {surface:?}"));
    }
    let dir = scratch.join(&case.id);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let image = dir.join("image.qcow2");
    if case.input_hex.is_some() {
        std::fs::write(&image, case.bytes()).map_err(|e| e.to_string())?;
    } else {
        let options = case.text().replace("@SCRATCH@", &dir.to_string_lossy());
        let out = Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2"])
            .args(options.split_whitespace())
            .arg(&image)
            .arg("4M")
            .output()
            .map_err(|e| format!("qemu-img: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "qemu-img create failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    let file = std::fs::File::open(&image).map_err(|e| e.to_string())?;
    let outcome = inspect_qcow2(&file)
        .map(|info| format!("qcow2 v{} of {} bytes", info.version, info.virtual_size))
        .map_err(|e| chain(&e));
    judge(case, outcome)
}
