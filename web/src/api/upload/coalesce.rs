//! Turning HTTP body frames into gRPC data messages without copying them.
//!
//! hyper hands the body over in frames sliced from its read buffer (a few
//! KiB at first, up to ~400 KiB once the connection streams). Each frame is
//! already a `Bytes`, so a large one goes out as a message as is: the gRPC
//! encoder copies it once into the HTTP/2 stream and nothing else touches
//! it. Only small frames are gathered, so the per-message cost (framing,
//! channel hops, one write on the daemon side) stays negligible next to
//! the bytes moved; an oversized frame is sliced (no copy either) so no
//! message nears the daemon's 4 MiB message limit.

use axum::body::Bytes;

/// Frames at least this big are sent on their own; smaller ones are
/// gathered until they add up to this much.
pub(super) const MIN_MESSAGE: usize = 64 << 10;

/// Largest message sent.
pub(super) const MAX_MESSAGE: usize = 1 << 20;

/// Gathers small frames; passes large ones through.
#[derive(Debug, Default)]
pub(super) struct Coalescer {
    small: Vec<u8>,
}

impl Coalescer {
    /// The messages ready to send after `frame`, in order: none while small
    /// frames are still gathering; else what was gathered, then the frame.
    pub(super) fn push(&mut self, mut frame: Bytes) -> Vec<Bytes> {
        let mut ready = Vec::new();
        if frame.len() < MIN_MESSAGE {
            if self.small.is_empty() {
                self.small.reserve_exact(MIN_MESSAGE);
            }
            self.small.extend_from_slice(&frame);
            if self.small.len() >= MIN_MESSAGE {
                ready.extend(self.take());
            }
            return ready;
        }
        ready.extend(self.take());
        while frame.len() > MAX_MESSAGE {
            ready.push(frame.split_to(MAX_MESSAGE));
        }
        ready.push(frame);
        ready
    }

    /// What is left at the end of the body.
    pub(super) fn finish(mut self) -> Option<Bytes> {
        self.take()
    }

    fn take(&mut self) -> Option<Bytes> {
        (!self.small.is_empty()).then(|| Bytes::from(std::mem::take(&mut self.small)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(coalescer: &mut Coalescer, frame: usize) -> Vec<usize> {
        coalescer
            .push(Bytes::from(vec![7u8; frame]))
            .iter()
            .map(Bytes::len)
            .collect()
    }

    #[test]
    fn large_frames_pass_through_without_a_copy() {
        let mut c = Coalescer::default();
        let frame = Bytes::from(vec![1u8; MIN_MESSAGE * 2]);
        let out = c.push(frame.clone());
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].as_ptr(),
            frame.as_ptr(),
            "the same buffer, not a copy"
        );
        assert!(c.finish().is_none());
    }

    #[test]
    fn small_frames_gather_into_one_message() {
        let mut c = Coalescer::default();
        let quarter = MIN_MESSAGE / 4;
        for _ in 0..3 {
            assert!(sizes(&mut c, quarter).is_empty());
        }
        assert_eq!(sizes(&mut c, quarter), [MIN_MESSAGE]);
        assert_eq!(sizes(&mut c, 10), Vec::<usize>::new());
        assert_eq!(c.finish().map(|m| m.len()), Some(10));
    }

    #[test]
    fn a_large_frame_flushes_what_was_gathered_first() {
        let mut c = Coalescer::default();
        let mut out = Vec::new();
        out.extend(c.push(Bytes::from_static(b"abc")));
        out.extend(c.push(Bytes::from(vec![b'd'; MIN_MESSAGE])));
        out.extend(c.push(Bytes::from_static(b"e")));
        out.extend(c.finish());
        let joined: Vec<u8> = out.iter().flat_map(|m| m.iter().copied()).collect();
        let mut want = b"abc".to_vec();
        want.extend(vec![b'd'; MIN_MESSAGE]);
        want.push(b'e');
        assert_eq!(joined, want);
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn an_oversized_frame_is_sliced_in_place() {
        let mut c = Coalescer::default();
        let frame = Bytes::from(vec![3u8; 2 * MAX_MESSAGE + 5]);
        let out = c.push(frame.clone());
        let sizes: Vec<usize> = out.iter().map(Bytes::len).collect();
        assert_eq!(sizes, [MAX_MESSAGE, MAX_MESSAGE, 5]);
        assert_eq!(
            out[1].as_ptr(),
            frame[MAX_MESSAGE..].as_ptr(),
            "a slice, not a copy"
        );
    }
}
