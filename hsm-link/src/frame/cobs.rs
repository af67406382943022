//! COBS framing with a CRC-32 for a serial line.

use super::{FrameError, Framing};
use crate::limits::MAX_FRAME;

const CRC_LEN: usize = 4;
/// Longest COBS encoding of a frame and its checksum (one overhead byte per 254).
const MAX_ENCODED: usize = (MAX_FRAME + CRC_LEN) + (MAX_FRAME + CRC_LEN) / 254 + 2;

/// Each frame is `COBS(frame ‖ CRC-32(frame))` followed by a zero byte. Empty frames (runs of
/// zero bytes) are skipped, so a sender may flush a line with zeros. After a damaged or
/// oversize frame the decoder drops bytes up to the next zero and goes on.
#[derive(Debug, Default)]
pub struct Cobs {
    raw: Vec<u8>,
    ready: std::collections::VecDeque<Result<Vec<u8>, FrameError>>,
    discarding: bool,
}

impl Cobs {
    /// A new, empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    fn finish_frame(&mut self) {
        if self.discarding {
            self.discarding = false;
            self.raw.clear();
            return;
        }
        if self.raw.is_empty() {
            return;
        }
        let result = match cobs::decode_vec(&self.raw) {
            Err(_) => Err(FrameError::Encoding),
            Ok(decoded) if decoded.len() <= CRC_LEN => Err(FrameError::Encoding),
            Ok(mut decoded) => {
                let split = decoded.len() - CRC_LEN;
                let crc = u32::from_be_bytes(decoded[split..].try_into().expect("four bytes"));
                decoded.truncate(split);
                if crc32fast::hash(&decoded) == crc {
                    Ok(decoded)
                } else {
                    Err(FrameError::Checksum)
                }
            }
        };
        self.raw.clear();
        self.ready.push_back(result);
    }
}

impl Framing for Cobs {
    fn encode(&self, frame: &[u8], out: &mut Vec<u8>) {
        debug_assert!(frame.len() <= MAX_FRAME);
        let mut with_crc = Vec::with_capacity(frame.len() + CRC_LEN);
        with_crc.extend_from_slice(frame);
        with_crc.extend_from_slice(&crc32fast::hash(frame).to_be_bytes());
        out.extend_from_slice(&cobs::encode_vec(&with_crc));
        out.push(0);
    }

    fn push(&mut self, bytes: &[u8]) {
        for piece in bytes.split_inclusive(|&b| b == 0) {
            let (body, ends) = match piece.split_last() {
                Some((0, body)) => (body, true),
                _ => (piece, false),
            };
            if !self.discarding {
                if self.raw.len() + body.len() > MAX_ENCODED {
                    self.discarding = true;
                    self.raw.clear();
                    self.ready.push_back(Err(FrameError::Oversize {
                        len: MAX_ENCODED + 1,
                        max: MAX_ENCODED,
                    }));
                } else {
                    self.raw.extend_from_slice(body);
                }
            }
            if ends {
                self.finish_frame();
            }
        }
    }

    fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        self.ready.pop_front().transpose()
    }

    fn recoverable(&self) -> bool {
        true
    }

    fn capacity(&self) -> usize {
        let ready: usize = self
            .ready
            .iter()
            .map(|r| r.as_ref().map_or(0, Vec::capacity))
            .sum();
        self.raw.capacity() + ready
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(dec: &mut Cobs) -> Vec<Result<Vec<u8>, FrameError>> {
        let mut out = Vec::new();
        loop {
            match dec.next_frame() {
                Ok(None) => return out,
                Ok(Some(f)) => out.push(Ok(f)),
                Err(e) => out.push(Err(e)),
            }
        }
    }

    #[test]
    fn frames_with_zero_bytes_round_trip_in_any_split() {
        let codec = Cobs::new();
        let frames = vec![vec![0u8; 10], vec![1, 0, 2, 0, 0, 3], (0..=255).collect()];
        let mut wire = vec![0, 0];
        for f in &frames {
            codec.encode(f, &mut wire);
        }
        for piece in [1usize, 3, 1000] {
            let mut dec = Cobs::new();
            for chunk in wire.chunks(piece) {
                dec.push(chunk);
            }
            let got: Vec<_> = decode_all(&mut dec)
                .into_iter()
                .map(Result::unwrap)
                .collect();
            assert_eq!(got, frames);
        }
    }

    #[test]
    fn a_garbled_frame_is_reported_and_the_next_one_survives() {
        let codec = Cobs::new();
        let mut first = Vec::new();
        codec.encode(b"first frame", &mut first);
        first[3] ^= 0x40;
        let mut wire = first;
        codec.encode(b"second", &mut wire);
        let mut dec = Cobs::new();
        dec.push(&wire);
        let got = decode_all(&mut dec);
        assert!(matches!(
            got[0],
            Err(FrameError::Checksum | FrameError::Encoding)
        ));
        assert_eq!(got[1], Ok(b"second".to_vec()));
    }

    #[test]
    fn a_dropped_delimiter_merges_two_frames_into_one_error() {
        let codec = Cobs::new();
        let mut wire = Vec::new();
        codec.encode(b"one", &mut wire);
        wire.pop(); // the line drops the zero byte
        codec.encode(b"two", &mut wire);
        codec.encode(b"three", &mut wire);
        let mut dec = Cobs::new();
        dec.push(&wire);
        let got = decode_all(&mut dec);
        assert_eq!(got.len(), 2);
        assert!(got[0].is_err());
        assert_eq!(got[1], Ok(b"three".to_vec()));
    }

    #[test]
    fn endless_garbage_is_bounded_and_resynchronises() {
        let mut dec = Cobs::new();
        let garbage = vec![0x55u8; MAX_ENCODED + 10];
        dec.push(&garbage);
        assert!(matches!(dec.next_frame(), Err(FrameError::Oversize { .. })));
        assert!(dec.raw.is_empty(), "nothing is kept while discarding");
        dec.push(&[0]);
        let mut wire = Vec::new();
        Cobs::new().encode(b"ok", &mut wire);
        dec.push(&wire);
        assert_eq!(dec.next_frame(), Ok(Some(b"ok".to_vec())));
    }
}
