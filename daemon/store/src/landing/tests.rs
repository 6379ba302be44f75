use super::pipeline::{BUF_BYTES, BUFFERS};
use super::*;
use crate::digest::sha256_bytes;

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 253) as u8).collect()
}

#[test]
fn a_write_error_ends_the_landing_and_is_returned() {
    // /dev/full: every write fails with ENOSPC, through this descriptor
    // and through the O_DIRECT one reopened from it.
    let path = std::path::Path::new("/dev/full");
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    let mut landing = LandingFile::start(file, path, 0, Sha256::new()).unwrap();
    let chunk = vec![7u8; BUF_BYTES];
    // The writer fails on the first buffer; the pool runs dry behind it.
    let err = (0..(BUFFERS + 3))
        .find_map(|_| landing.write(&chunk).err())
        .expect("write should notice the writer ended");
    assert!(matches!(err, LandingError::Write { .. }), "{err:?}");
    let io: std::io::Error = err.into();
    assert_eq!(io.raw_os_error(), Some(libc::ENOSPC), "{io}");
    // Later use says so instead of hanging or writing on.
    let again = landing.write(b"x").unwrap_err();
    assert!(matches!(again, LandingError::Failed { .. }), "{again:?}");
    assert!(matches!(landing.finish(), Err(LandingError::Failed { .. })));
}

#[test]
fn finish_writes_and_hashes_a_partial_buffer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let mut landing = LandingFile::create(&path).unwrap();
    landing.write(b"ab").unwrap();
    landing.write(b"c").unwrap();
    assert_eq!(landing.size(), 3);
    let written = landing.finish().unwrap();
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
        let mut landing = LandingFile::start(file, &path, start as u64, seed).unwrap();
        for chunk in data[start..].chunks(65_537) {
            landing.write(chunk).unwrap();
        }
        let written = landing.finish().unwrap();
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
        let mut landing = LandingFile::create(&path).unwrap();
        let data = pattern(sizes.iter().sum());
        let mut at = 0;
        for n in sizes {
            landing.write(&data[at..at + n]).unwrap();
            at += n;
        }
        let written = landing.finish().unwrap();
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
    let mut landing = LandingFile::create(&path).unwrap();
    let mut rest = &data[..];
    let mut waits = 0;
    while !rest.is_empty() {
        let taken = landing.try_write(rest).unwrap();
        rest = &rest[taken..];
        if !rest.is_empty() {
            landing.wait_for_room().unwrap();
            waits += 1;
        }
    }
    // Whatever the threads' pace, the pool is too small for all of it.
    assert!(waits > 0);
    let written = landing.finish().unwrap();
    assert!(std::fs::read(&path).unwrap() == data, "content differs");
    assert_eq!(written.sha256, sha256_bytes(&data));
}

#[test]
fn drain_hands_back_the_file_and_hash_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let mut landing = LandingFile::create(&path).unwrap();
    landing.write(b"hello ").unwrap();
    let (file, hasher) = landing.drain().unwrap();
    let mut landing = LandingFile::start(file, &path, 6, hasher).unwrap();
    landing.write(b"world").unwrap();
    let written = landing.finish().unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"hello world");
    assert_eq!(written.sha256, sha256_bytes(b"hello world"));
}

#[test]
fn dropping_abandons_without_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let mut landing = LandingFile::create(&path).unwrap();
    landing.write(&pattern(3 * BUF_BYTES)).unwrap();
    drop(landing);
    // The file may hold some of the bytes; removing it is always fine.
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn create_in_a_missing_directory_fails() {
    let dir = tempfile::tempdir().unwrap();
    let err = LandingFile::create(&dir.path().join("no/such/f")).err();
    assert!(matches!(err, Some(LandingError::Create { .. })), "{err:?}");
}

#[test]
fn create_refuses_a_planted_link_and_writes_reach_the_created_inode() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, b"victim bytes").unwrap();
    let planted = dir.path().join("f.partial");
    std::os::unix::fs::symlink(&victim, &planted).unwrap();
    assert!(matches!(
        LandingFile::create(&planted),
        Err(LandingError::Create { .. })
    ));
    // The name is swapped for a link after the create: the direct and the
    // buffered writes still land in the file that was created.
    let path = dir.path().join("g");
    let mut landing = LandingFile::create(&path).unwrap();
    std::fs::rename(&path, dir.path().join("moved")).unwrap();
    std::os::unix::fs::symlink(&victim, &path).unwrap();
    let data = pattern(BUF_BYTES * 2 + 5);
    landing.write(&data).unwrap();
    landing.finish().unwrap();
    assert!(std::fs::read(dir.path().join("moved")).unwrap() == data);
    assert_eq!(std::fs::read(&victim).unwrap(), b"victim bytes");
}
