use super::pipeline::{BUF_BYTES, BUFFERS};
use super::*;
use crate::digest::sha256_bytes;

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 253) as u8).collect()
}

#[test]
fn a_write_error_ends_the_intake_and_is_returned() {
    // /dev/full: every write fails with ENOSPC, through this descriptor
    // and through the O_DIRECT one reopened from it.
    let path = std::path::Path::new("/dev/full");
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    let mut intake = IntakeFile::start(file, path, 0, Sha256::new()).unwrap();
    let chunk = vec![7u8; BUF_BYTES];
    // The writer fails on the first buffer; the pool runs dry behind it.
    let err = (0..(BUFFERS + 3))
        .find_map(|_| intake.write(&chunk).err())
        .expect("write should notice the writer ended");
    assert!(matches!(err, IntakeError::Write { .. }), "{err:?}");
    let io: std::io::Error = err.into();
    assert_eq!(io.raw_os_error(), Some(libc::ENOSPC), "{io}");
    // Later use says so instead of hanging or writing on.
    let again = intake.write(b"x").unwrap_err();
    assert!(matches!(again, IntakeError::Failed { .. }), "{again:?}");
    assert!(matches!(intake.finish(), Err(IntakeError::Failed { .. })));
}

#[test]
fn finish_writes_and_hashes_a_partial_buffer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let mut intake = IntakeFile::create(&path).unwrap();
    intake.write(b"ab").unwrap();
    intake.write(b"c").unwrap();
    assert_eq!(intake.size(), 3);
    let written = intake.finish().unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"abc");
    assert_eq!(
        written,
        Written {
            size: 3,
            sha256: sha256_bytes(b"abc")
        }
    );
}

#[test]
fn many_buffers_from_aligned_and_unaligned_resume_offsets() {
    let data = pattern(BUF_BYTES * (BUFFERS + 2) + 777);
    for start in [1000, ALIGN, 3 * ALIGN + 1, BUF_BYTES] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, &data[..start]).unwrap();
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let mut seed = Sha256::new();
        seed.update(&data[..start]);
        let mut intake = IntakeFile::start(file, &path, start as u64, seed).unwrap();
        for chunk in data[start..].chunks(65_537) {
            intake.write(chunk).unwrap();
        }
        let written = intake.finish().unwrap();
        assert!(
            std::fs::read(&path).unwrap() == data,
            "content differs when resuming at {start}"
        );
        assert_eq!(written.size, data.len() as u64);
        assert_eq!(written.sha256, sha256_bytes(&data), "resuming at {start}");
    }
}

#[test]
fn writes_every_byte_for_any_split_and_tail() {
    let dir = tempfile::tempdir().unwrap();
    for (i, sizes) in [
        vec![],
        vec![0],
        vec![1],
        vec![ALIGN],
        vec![BUF_BYTES],
        vec![BUF_BYTES + 1],
        vec![3, BUF_BYTES - 3, ALIGN + 7, 100_000],
        vec![1, 0, 70_000, 1 << 20, 5, 3],
        vec![2 * BUF_BYTES + ALIGN],
    ]
    .into_iter()
    .enumerate()
    {
        let path = dir.path().join(format!("f{i}"));
        let mut intake = IntakeFile::create(&path).unwrap();
        let data = pattern(sizes.iter().sum());
        let mut at = 0;
        for n in sizes {
            intake.write(&data[at..at + n]).unwrap();
            at += n;
        }
        let written = intake.finish().unwrap();
        assert!(std::fs::read(&path).unwrap() == data, "case {i}");
        assert_eq!(written.size, data.len() as u64, "case {i}");
        assert_eq!(written.sha256, sha256_bytes(&data), "case {i}");
    }
}

#[test]
fn try_write_takes_at_most_the_pool_and_waits_for_room_after() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let data = pattern(BUF_BYTES * (2 * BUFFERS + 1) + 5);
    let mut intake = IntakeFile::create(&path).unwrap();
    let mut rest = &data[..];
    let mut waits = 0;
    while !rest.is_empty() {
        let taken = intake.try_write(rest).unwrap();
        rest = &rest[taken..];
        if !rest.is_empty() {
            intake.wait_for_room().unwrap();
            waits += 1;
        }
    }
    // Whatever the threads' pace, the pool is too small for all of it.
    assert!(waits > 0);
    let written = intake.finish().unwrap();
    assert!(std::fs::read(&path).unwrap() == data, "content differs");
    assert_eq!(written.sha256, sha256_bytes(&data));
}

#[test]
fn drain_hands_back_the_file_and_hash_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let mut intake = IntakeFile::create(&path).unwrap();
    intake.write(b"hello ").unwrap();
    let (file, hasher) = intake.drain().unwrap();
    let mut intake = IntakeFile::start(file, &path, 6, hasher).unwrap();
    intake.write(b"world").unwrap();
    let written = intake.finish().unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"hello world");
    assert_eq!(written.sha256, sha256_bytes(b"hello world"));
}

#[test]
fn dropping_abandons_without_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let mut intake = IntakeFile::create(&path).unwrap();
    intake.write(&pattern(3 * BUF_BYTES)).unwrap();
    drop(intake);
    // The file may hold some of the bytes; removing it is always fine.
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn create_in_a_missing_directory_fails() {
    let dir = tempfile::tempdir().unwrap();
    let err = IntakeFile::create(&dir.path().join("no/such/f")).err();
    assert!(matches!(err, Some(IntakeError::Create { .. })), "{err:?}");
}

#[test]
fn create_refuses_a_planted_link_and_writes_reach_the_created_inode() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, b"victim bytes").unwrap();
    let planted = dir.path().join("f.partial");
    std::os::unix::fs::symlink(&victim, &planted).unwrap();
    assert!(matches!(
        IntakeFile::create(&planted),
        Err(IntakeError::Create { .. })
    ));
    // The name is swapped for a link after the create: the direct and the
    // buffered writes still land in the file that was created.
    let path = dir.path().join("g");
    let mut intake = IntakeFile::create(&path).unwrap();
    std::fs::rename(&path, dir.path().join("moved")).unwrap();
    std::os::unix::fs::symlink(&victim, &path).unwrap();
    let data = pattern(BUF_BYTES * 2 + 5);
    intake.write(&data).unwrap();
    intake.finish().unwrap();
    assert!(std::fs::read(dir.path().join("moved")).unwrap() == data);
    assert_eq!(std::fs::read(&victim).unwrap(), b"victim bytes");
}
