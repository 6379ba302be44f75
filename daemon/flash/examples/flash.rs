//! `flash IMAGE TARGET [--no-verify] [--incremental] [--sha256 HEX]`: flash an image file
//! (any supported format, sniffed by content) to a block device or regular
//! file, the way the daemon's flasher does; used by `scripts/bench-flash`.
//! With `--sha256` the stored file is checked against it as btyd checks a
//! stored image: a compressed one on its way into the decoder, a raw one
//! by the pipeline's own hash when verifying.

use std::fs::File;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use bty_flash::{
    FlashOptions, HashingReader, Progress, ReadAhead, Source, TargetKind, TargetSpec, flash,
    flash_qcow2, open_decoder, virtual_size,
};
use bty_store::format::{Container, sniff_file};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let verify = !args.iter().any(|a| a == "--no-verify");
    let incremental = args.iter().any(|a| a == "--incremental");
    let sha256 = args
        .iter()
        .position(|a| a == "--sha256")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let paths: Vec<&String> = args
        .iter()
        .filter(|a| !a.starts_with("--") && Some(*a) != sha256.as_ref())
        .collect();
    let [image, target] = paths[..] else {
        eprintln!("usage: flash IMAGE TARGET [--no-verify] [--incremental] [--sha256 HEX]");
        return ExitCode::from(2);
    };
    let (image, target) = (PathBuf::from(image), PathBuf::from(target));
    let kind = match std::fs::metadata(&target) {
        Ok(m) if std::os::unix::fs::FileTypeExt::is_block_device(&m.file_type()) => {
            TargetKind::BlockDevice
        }
        _ => TargetKind::RegularFile,
    };
    let targets = vec![TargetSpec {
        path: target,
        kind,
        size_bytes: None,
        expect: None,
    }];
    let container = match sniff_file(&image) {
        Ok(c) => c.unwrap_or(Container::Raw),
        Err(e) => {
            eprintln!("flash: {}: {e}", image.display());
            return ExitCode::FAILURE;
        }
    };
    let file = match File::open(&image) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("flash: {}: {e}", image.display());
            return ExitCode::FAILURE;
        }
    };
    let mut opts = FlashOptions {
        verify,
        incremental,
        image_size: virtual_size(&file).ok().flatten(),
        ..FlashOptions::default()
    };
    let cancel = AtomicBool::new(false);
    let start = Instant::now();
    // Phase changes with their times on stderr: where a flash spends time.
    let phase = std::sync::Mutex::new(None);
    let observer = |p: Progress| {
        let mut last = phase.lock().unwrap_or_else(|e| e.into_inner());
        if *last != Some(p.phase) {
            eprintln!("flash: {:.2}s {:?}", start.elapsed().as_secs_f64(), p.phase);
            *last = Some(p.phase);
        }
    };
    let report = if container == Container::Qcow2 {
        flash_qcow2(&file, targets, &opts, &observer, &cancel)
    } else {
        let source = if container == Container::Raw {
            // Holes skipped, data read with O_DIRECT, as the daemon does.
            if verify {
                opts.expected_image_sha256 = sha256;
            }
            Source::RawFile(file)
        } else {
            let mut hashing = HashingReader::new(file);
            if let Some(sha) = sha256 {
                hashing = hashing.expect_sha256(sha);
            }
            opts.source_meter = Some(hashing.tally());
            match open_decoder(ReadAhead::start(hashing), container) {
                Ok(s) => Source::Stream(s),
                Err(e) => {
                    eprintln!("flash: {e}");
                    return ExitCode::FAILURE;
                }
            }
        };
        flash(source, targets, &opts, &observer, &cancel)
    };
    let mut ok = true;
    for t in &report.targets {
        match &t.result {
            Ok(done) => {
                eprintln!(
                    "flash: {} <- {} bytes in {:.2}s, verified {:?}, sha256 {}",
                    t.path.display(),
                    done.written,
                    start.elapsed().as_secs_f64(),
                    done.verified,
                    report.image_sha256
                );
                if let Some(diff) = done.diff {
                    eprintln!(
                        "flash: incremental: compared {} written {} skipped {}",
                        diff.compared, diff.written, diff.skipped
                    );
                }
            }
            Err(e) => {
                ok = false;
                let mut msg = e.to_string();
                let mut src = std::error::Error::source(e);
                while let Some(s) = src {
                    msg.push_str(&format!(": {s}"));
                    src = s.source();
                }
                eprintln!("flash: {}: {msg}", t.path.display());
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
