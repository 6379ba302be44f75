//! A tiny DER reader: just enough to take a SubjectPublicKeyInfo apart.
//! Every length is checked against what is left, so truncated or hostile
//! input fails with an error instead of reading out of bounds.

use crate::error::KeyError;

/// `SEQUENCE`.
pub(crate) const SEQUENCE: u8 = 0x30;
/// `OBJECT IDENTIFIER`.
pub(crate) const OID: u8 = 0x06;
/// `BIT STRING`.
pub(crate) const BIT_STRING: u8 = 0x03;

/// A cursor over DER bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next element, which must have tag `want`: its contents.
    pub(crate) fn expect(&mut self, want: u8) -> Result<&'a [u8], KeyError> {
        let (tag, value) = self.next()?;
        if tag != want {
            return Err(KeyError::Der(format!(
                "expected tag 0x{want:02x}, found 0x{tag:02x}"
            )));
        }
        Ok(value)
    }

    /// The next element's tag and contents.
    fn next(&mut self) -> Result<(u8, &'a [u8]), KeyError> {
        let [tag, first, rest @ ..] = self.rest else {
            return Err(KeyError::Der("truncated element header".to_owned()));
        };
        // Multi-byte tags never occur in the structures we read.
        if tag & 0x1f == 0x1f {
            return Err(KeyError::Der(
                "multi-byte tags are not supported".to_owned(),
            ));
        }
        let (len, rest) = match *first {
            short @ 0..=0x7f => (usize::from(short), rest),
            0x80 => return Err(KeyError::Der("indefinite length is not DER".to_owned())),
            long => {
                let count = usize::from(long & 0x7f);
                // Keys are small: four length bytes is already far more
                // than anything real, and keeps the sum from overflowing.
                if count > 4 || count > rest.len() {
                    return Err(KeyError::Der(format!("bad length of {count} bytes")));
                }
                let (len_bytes, rest) = rest.split_at(count);
                if len_bytes.first() == Some(&0) {
                    return Err(KeyError::Der("length with a leading zero".to_owned()));
                }
                let len = len_bytes
                    .iter()
                    .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
                if len < 0x80 {
                    return Err(KeyError::Der("long form for a short length".to_owned()));
                }
                (len, rest)
            }
        };
        if len > rest.len() {
            return Err(KeyError::Der(format!(
                "element of {len} bytes with only {} left",
                rest.len()
            )));
        }
        let (value, rest) = rest.split_at(len);
        self.rest = rest;
        Ok((*tag, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_short_and_long_lengths() {
        let mut r = Reader::new(&[0x06, 0x01, 0x2a, 0x30, 0x00]);
        assert_eq!(r.expect(OID).unwrap(), &[0x2a]);
        assert_eq!(r.expect(SEQUENCE).unwrap(), &[] as &[u8]);
        assert!(r.is_empty());

        let mut long = vec![0x03, 0x81, 0x80];
        long.extend(std::iter::repeat_n(7u8, 0x80));
        assert_eq!(Reader::new(&long).expect(BIT_STRING).unwrap().len(), 0x80);
    }

    #[test]
    fn refuses_hostile_encodings() {
        let cases: &[(&[u8], &str)] = &[
            (&[], "truncated"),
            (&[0x30], "truncated"),
            (&[0x30, 0x05, 0x01], "only 1 left"),
            (&[0x30, 0x80, 0x00, 0x00], "indefinite"),
            (&[0x30, 0x85, 1, 2, 3, 4, 5], "bad length"),
            (&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff], "only 0 left"),
            (&[0x30, 0x82, 0x01], "bad length"),
            (&[0x30, 0x81, 0x05, 0, 0, 0, 0, 0], "long form"),
            (&[0x30, 0x82, 0x00, 0x90], "leading zero"),
            (&[0x1f, 0x01, 0x00], "multi-byte"),
        ];
        for (bytes, want) in cases {
            let err = Reader::new(bytes).expect(SEQUENCE).unwrap_err();
            assert!(err.to_string().contains(want), "{bytes:?}: {err}");
        }
        let err = Reader::new(&[0x06, 0x00]).expect(SEQUENCE).unwrap_err();
        assert!(err.to_string().contains("expected tag 0x30"), "{err}");
    }
}
