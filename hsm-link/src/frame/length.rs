//! Length-prefixed framing for TCP.

use super::{FrameError, Framing};
use crate::limits::MAX_FRAME;

const PREFIX: usize = 4;

/// Four-byte big-endian length, then the frame. Lengths are checked against [`MAX_FRAME`]
/// before the body is awaited or allocated.
#[derive(Debug, Default)]
pub struct LengthPrefixed {
    buf: Vec<u8>,
    start: usize,
}

impl LengthPrefixed {
    /// A new, empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    fn pending(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

impl Framing for LengthPrefixed {
    fn encode(&self, frame: &[u8], out: &mut Vec<u8>) {
        debug_assert!(frame.len() <= MAX_FRAME);
        out.extend_from_slice(&(frame.len() as u32).to_be_bytes());
        out.extend_from_slice(frame);
    }

    fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let pending = self.pending();
        if pending.len() < PREFIX {
            return Ok(None);
        }
        let len = u32::from_be_bytes(pending[..PREFIX].try_into().expect("four bytes")) as usize;
        if len > MAX_FRAME {
            return Err(FrameError::Oversize {
                len,
                max: MAX_FRAME,
            });
        }
        if len == 0 {
            return Err(FrameError::Empty);
        }
        if pending.len() < PREFIX + len {
            return Ok(None);
        }
        let frame = pending[PREFIX..PREFIX + len].to_vec();
        self.start += PREFIX + len;
        if self.start > 4 * MAX_FRAME {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        Ok(Some(frame))
    }

    fn recoverable(&self) -> bool {
        false
    }

    fn capacity(&self) -> usize {
        self.buf.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_arrive_whole_whatever_the_split() {
        let codec = LengthPrefixed::new();
        let frames: Vec<Vec<u8>> = vec![vec![1], vec![2; 300], vec![3; MAX_FRAME]];
        let mut wire = Vec::new();
        for f in &frames {
            codec.encode(f, &mut wire);
        }
        for piece in [1usize, 7, 4096] {
            let mut dec = LengthPrefixed::new();
            let mut got = Vec::new();
            for chunk in wire.chunks(piece) {
                dec.push(chunk);
                while let Some(f) = dec.next_frame().unwrap() {
                    got.push(f);
                }
            }
            assert_eq!(got, frames, "piece size {piece}");
        }
    }

    #[test]
    fn oversize_length_is_refused_before_the_body_arrives() {
        let mut dec = LengthPrefixed::new();
        dec.push(&u32::MAX.to_be_bytes());
        assert_eq!(
            dec.next_frame(),
            Err(FrameError::Oversize {
                len: u32::MAX as usize,
                max: MAX_FRAME
            })
        );
        let mut dec = LengthPrefixed::new();
        dec.push(&[0, 0, 0, 0]);
        assert_eq!(dec.next_frame(), Err(FrameError::Empty));
    }

    #[test]
    fn a_largest_length_alone_allocates_only_what_arrived() {
        let mut dec = LengthPrefixed::new();
        dec.push(&(MAX_FRAME as u32).to_be_bytes());
        dec.push(&[0x03, 1, 2]);
        assert_eq!(dec.next_frame(), Ok(None));
        assert!(dec.capacity() < 64, "{} bytes held", dec.capacity());
    }
}
