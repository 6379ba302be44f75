//! Decoders by container (magic bytes, not names), and the classification of
//! read errors into decode / source / digest failures.

use std::io::{self, BufRead, Read};

use liblzma::bufread::XzDecoder;
use liblzma::stream::MtStreamBuilder;

use bty_store::format::{Container, FormatError, detect};

use crate::FlashError;
use crate::hashing::{DigestMismatch, SourceReadError};

/// A reader of the raw disk bytes inside `reader`, which holds `container`.
///
/// Every decoder reads its input to the end (concatenated zstd frames, xz
/// streams, gzip members and bzip2 streams all decode; bzip2 on every core),
/// so a [`crate::HashingReader`] below it sees the whole source. Decoder errors
/// surface from the returned reader marked so that the pipeline reports them
/// as [`FlashError::Decode`].
pub fn open_decoder(
    reader: impl BufRead + Send + 'static,
    container: Container,
) -> Result<Box<dyn Read + Send>, FlashError> {
    let format = container_name(container);
    let decoded: Box<dyn Read + Send> = match container {
        Container::Raw => return Ok(Box::new(reader)),
        Container::Qcow2 => return Err(FlashError::NeedsQemuImg),
        Container::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(reader).map_err(
            |e| FlashError::DecoderInit {
                format,
                source: FlashError::arc(e),
            },
        )?),
        Container::Xz => Box::new(XzStreams::new(reader)?),
        Container::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(reader)),
        Container::Bzip2 => bty_bzip2::decoder(reader),
    };
    Ok(Box::new(DecodeReader {
        inner: decoded,
        format,
        produced: 0,
    }))
}

/// The container of an image from its name (file name or URL path segment)
/// and first bytes ([`bty_store::format::SNIFF_LEN`]; empty when not yet
/// known), trusting the bytes over the name. Tarballs and unknown formats
/// are refused with [`FlashError::Tarball`] / [`FlashError::Unsupported`]
/// (whose message lists the supported formats).
pub fn detect_container(name: &str, header: &[u8]) -> Result<Container, FlashError> {
    match detect(name, header) {
        Ok(format) => Ok(format.container()),
        Err(FormatError::Tarball { .. }) => Err(FlashError::Tarball),
        Err(FormatError::Unrecognised { .. }) => Err(FlashError::Unsupported),
        Err(e @ FormatError::Mismatch { .. }) => Err(FlashError::Format(e)),
    }
}

/// The short name of a container for messages (`zstd`, `xz`…).
pub fn container_name(container: Container) -> &'static str {
    match container {
        Container::Raw => "raw",
        Container::Zstd => "zstd",
        Container::Xz => "xz",
        Container::Gzip => "gzip",
        Container::Bzip2 => "bzip2",
        Container::Qcow2 => "qcow2",
    }
}

/// Marks decoder errors (as opposed to source errors passing through).
struct DecodeReader {
    inner: Box<dyn Read + Send>,
    format: &'static str,
    produced: u64,
}

impl Read for DecodeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.produced += n as u64;
                Ok(n)
            }
            Err(e) if is_marked(&e) => Err(e),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => Err(io::Error::new(
                e.kind(),
                DecodeFailure {
                    format: self.format,
                    source: e,
                },
            )),
        }
    }
}

fn is_marked(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|i| {
        i.is::<SourceReadError>()
            || i.is::<DigestMismatch>()
            || i.is::<DecodeFailure>()
            || i.is::<MemLimitHit>()
    })
}

/// io-error payload: the decoder rejected its input.
#[derive(Debug, thiserror::Error)]
#[error("{format} decoding failed")]
struct DecodeFailure {
    format: &'static str,
    #[source]
    source: io::Error,
}

/// Turn a read error of the decoded stream (after `at` decoded bytes) into
/// the matching [`FlashError`].
pub(crate) fn classify(err: io::Error, at: u64) -> FlashError {
    let kind = err.kind();
    let Some(inner) = err.get_ref() else {
        return FlashError::Read {
            at,
            source: FlashError::arc(err),
        };
    };
    if let Some(hit) = inner.downcast_ref::<MemLimitHit>() {
        return FlashError::MemoryLimit {
            format: hit.format,
            limit_mib: hit.limit >> 20,
        };
    }
    if !(inner.is::<DecodeFailure>()
        || inner.is::<DigestMismatch>()
        || inner.is::<SourceReadError>())
    {
        return FlashError::Read {
            at,
            source: FlashError::arc(err),
        };
    }
    // Checked above: one of our payloads, so `into_inner` is `Some`.
    let Some(payload) = err.into_inner() else {
        return FlashError::Read {
            at,
            source: FlashError::arc(io::Error::from(kind)),
        };
    };
    let payload = match payload.downcast::<DecodeFailure>() {
        Ok(d) => {
            return FlashError::Decode {
                format: d.format,
                at,
                source: FlashError::arc(d.source),
            };
        }
        Err(p) => p,
    };
    let payload = match payload.downcast::<DigestMismatch>() {
        Ok(d) => {
            return FlashError::SourceDigestMismatch {
                expected: d.expected,
                actual: d.actual,
            };
        }
        Err(p) => p,
    };
    match payload.downcast::<SourceReadError>() {
        Ok(s) => FlashError::Read {
            at,
            source: FlashError::arc(s.0),
        },
        Err(p) => FlashError::Read {
            at,
            source: FlashError::arc(io::Error::new(kind, p)),
        },
    }
}

/// Multithreaded xz decoding of every concatenated stream in the input.
///
/// liblzma's multithreaded decoder cannot be given `LZMA_CONCATENATED`
/// (the builder has no flags setter), so each stream gets its own decoder:
/// after a stream ends, stream padding (NUL bytes) is skipped and a new
/// decoder starts if more input follows.
struct XzStreams<R: BufRead> {
    decoder: Option<XzDecoder<R>>,
}

impl<R: BufRead> XzStreams<R> {
    fn new(reader: R) -> Result<Self, FlashError> {
        Ok(Self {
            decoder: Some(XzDecoder::new_stream(reader, mt_stream()?)),
        })
    }
}

/// Most memory one xz stream may make the decoder use. The largest
/// presets need 65 MiB per thread; an image claiming a dictionary near
/// xz's 1.5 GiB maximum is an attack on the daemon's memory, not a disk.
pub const XZ_MEMLIMIT: u64 = 1 << 30;

fn mt_stream() -> Result<liblzma::stream::Stream, FlashError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    MtStreamBuilder::new()
        .threads(u32::try_from(threads).unwrap_or(1))
        // Fewer threads when they would need more than the limit together…
        .memlimit_threading(XZ_MEMLIMIT)
        // …and an error when one thread would (0, the default, fails all).
        .memlimit_stop(XZ_MEMLIMIT)
        .decoder()
        .map_err(|e| FlashError::DecoderInit {
            format: "xz",
            source: FlashError::arc(e.into()),
        })
}

impl<R: BufRead> Read for XzStreams<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let Some(decoder) = self.decoder.as_mut() else {
                return Ok(0);
            };
            let n = decoder.read(buf).map_err(name_memlimit)?;
            if n > 0 {
                return Ok(n);
            }
            // End of one stream: more streams may follow after padding.
            let Some(done) = self.decoder.take() else {
                return Ok(0);
            };
            let mut input = done.into_inner();
            if !skip_stream_padding(&mut input)? {
                return Ok(0);
            }
            let stream = mt_stream().map_err(io::Error::other)?;
            self.decoder = Some(XzDecoder::new_stream(input, stream));
        }
    }
}

/// liblzma's bare "memory limit reached" as our error naming the limit
/// (it passes the decode classification as itself).
fn name_memlimit(e: io::Error) -> io::Error {
    let is_limit = e
        .get_ref()
        .and_then(|i| i.downcast_ref::<liblzma::stream::Error>())
        .is_some_and(|le| matches!(le, liblzma::stream::Error::MemLimit));
    if is_limit {
        io::Error::other(MemLimitHit {
            format: "xz",
            limit: XZ_MEMLIMIT,
        })
    } else {
        e
    }
}

/// io-error payload: a stream needs more decoder memory than allowed.
#[derive(Debug, thiserror::Error)]
#[error("{format} stream needs more than the {} MiB decoder memory limit", .limit >> 20)]
struct MemLimitHit {
    format: &'static str,
    limit: u64,
}

/// io-error payload: the NUL padding between or after xz streams is not a
/// whole number of 4-byte words, which the xz format requires (`xz -dc`
/// calls such a file corrupt).
#[derive(Debug, thiserror::Error)]
#[error("xz stream padding of {bytes} bytes is not a multiple of 4: the file is corrupt")]
struct BadXzPadding {
    bytes: u64,
}

/// Skip the NUL padding after an xz stream; whether input remains
/// afterwards. Padding that is not a multiple of 4 bytes is an error.
fn skip_stream_padding(input: &mut impl BufRead) -> io::Result<bool> {
    let mut skipped: u64 = 0;
    let more = loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            break false;
        }
        let zeros = buf.iter().take_while(|&&b| b == 0).count();
        let more = zeros < buf.len();
        input.consume(zeros);
        skipped += zeros as u64;
        if more {
            break true;
        }
    };
    if !skipped.is_multiple_of(4) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            BadXzPadding { bytes: skipped },
        ));
    }
    Ok(more)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_refuses_tarballs_and_unknown_formats() {
        let zstd = [0x28, 0xB5, 0x2F, 0xFD, 0, 0];
        assert_eq!(detect_container("x.img", &zstd).unwrap(), Container::Zstd);
        assert_eq!(
            detect_container("x.img", &[0; 512]).unwrap(),
            Container::Raw
        );
        assert!(matches!(
            detect_container("x.tar.gz", &[0x1F, 0x8B, 8]),
            Err(FlashError::Tarball)
        ));
        let err = detect_container("x.vmdk", &[1, 2, 3]).unwrap_err();
        assert!(matches!(err, FlashError::Unsupported));
        assert!(err.to_string().contains(".img.zst"), "{err}");
        assert!(FlashError::Tarball.to_string().contains("extract"));
        assert!(matches!(
            detect_container("x.img.xz", &[0; 16]),
            Err(FlashError::Format(_))
        ));
    }

    #[test]
    fn bzip2_failures_keep_their_class() {
        use std::io::{BufReader, Cursor, Write};

        use crate::HashingReader;

        let mut enc = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::new(1));
        enc.write_all(&b"bty flash ".repeat(60_000)).unwrap();
        let good = enc.finish().unwrap();
        let read_err = |input: Vec<u8>, digest: Option<String>| {
            let mut hashing = HashingReader::new(Cursor::new(input));
            if let Some(d) = digest {
                hashing = hashing.expect_sha256(d);
            }
            let mut decoder = open_decoder(BufReader::new(hashing), Container::Bzip2).unwrap();
            classify(decoder.read_to_end(&mut Vec::new()).unwrap_err(), 0)
        };
        // A wrong source digest surfaces from the parallel decoder's
        // scanner thread as the source's own error, not a decode error.
        let err = read_err(good.clone(), Some("00".repeat(32)));
        assert!(
            matches!(err, FlashError::SourceDigestMismatch { .. }),
            "{err:?}"
        );
        let mut bad = good.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0x55;
        let err = read_err(bad, None);
        assert!(
            matches!(
                err,
                FlashError::Decode {
                    format: "bzip2",
                    ..
                }
            ),
            "{err:?}"
        );
        let err = read_err(good[..good.len() - 3].to_vec(), None);
        assert!(matches!(err, FlashError::Decode { .. }), "{err:?}");
        assert!(err.to_string().contains("corrupt or truncated"), "{err}");
    }

    /// An xz stream of `raw` whose LZMA2 dictionary is declared as
    /// `dict_prop` (40 = 4 GiB - 1, 37 = 1.5 GiB), block header checksum
    /// fixed up: what `xz --lzma2=dict=1536MiB` writes, without the 1.8 GB
    /// the encoder would need.
    fn xz_with_dict(raw: &[u8], dict_prop: u8) -> Vec<u8> {
        use std::io::Write;
        let mut enc = liblzma::write::XzEncoder::new(Vec::new(), 1);
        enc.write_all(raw).unwrap();
        let mut xz = enc.finish().unwrap();
        let start = 12;
        let size = (usize::from(xz[start]) + 1) * 4;
        let flags = xz[start + 1];
        let mut at = start + 2;
        let skip_varint = |at: &mut usize, xz: &[u8]| {
            while xz[*at] & 0x80 != 0 {
                *at += 1;
            }
            *at += 1;
        };
        for present in [0x40, 0x80] {
            if flags & present != 0 {
                skip_varint(&mut at, &xz);
            }
        }
        assert_eq!(&xz[at..at + 2], &[0x21, 0x01], "one LZMA2 filter");
        xz[at + 2] = dict_prop;
        let mut crc = flate2::Crc::new();
        crc.update(&xz[start..start + size - 4]);
        xz[start + size - 4..start + size].copy_from_slice(&crc.sum().to_le_bytes());
        xz
    }

    #[test]
    fn an_xz_dictionary_past_the_memory_limit_is_refused_by_name() {
        let raw = vec![0x5Au8; 64 << 10];
        // Still within the limit (64 MiB): decodes.
        let ok = xz_with_dict(&raw, 26);
        let mut out = Vec::new();
        open_decoder(std::io::Cursor::new(ok), Container::Xz)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, raw);
        let hostile = xz_with_dict(&raw, 37);
        let mut decoder = open_decoder(std::io::Cursor::new(hostile), Container::Xz).unwrap();
        let err = classify(decoder.read_to_end(&mut Vec::new()).unwrap_err(), 0);
        assert!(matches!(err, FlashError::MemoryLimit { .. }), "{err:?}");
        assert!(
            err.to_string().contains("1024 MiB decoder memory limit"),
            "{err}"
        );
    }

    #[test]
    fn qcow2_is_not_streamed() {
        let r = std::io::Cursor::new(Vec::new());
        assert!(matches!(
            open_decoder(r, Container::Qcow2),
            Err(FlashError::NeedsQemuImg)
        ));
    }

    #[test]
    fn xz_padding_must_be_whole_words() {
        let mut four = io::Cursor::new(vec![0u8, 0, 0, 0, 0xFD]);
        assert!(skip_stream_padding(&mut four).expect("4 NULs are padding"));
        let mut eight_at_end = io::Cursor::new(vec![0u8; 8]);
        assert!(!skip_stream_padding(&mut eight_at_end).expect("8 NULs are padding"));
        for bad in [vec![0u8, 0xFD], vec![0u8; 3], vec![0u8, 0, 0, 0, 0, 0xFD]] {
            let n = bad.iter().take_while(|&&b| b == 0).count();
            let err = skip_stream_padding(&mut io::Cursor::new(bad)).expect_err("not whole words");
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            assert_eq!(
                err.to_string(),
                format!(
                    "xz stream padding of {n} bytes is not a multiple of 4: the file is corrupt"
                )
            );
        }
    }
}
