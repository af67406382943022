//! Link frames and the two byte framings that carry them.
//!
//! A *link frame* is one kind byte and a body: a plaintext hello, a Noise handshake message, a
//! plaintext refusal, or a transport message (an explicit eight-byte counter and a Noise
//! ciphertext). Byte streams carry link frames in one of two framings:
//!
//! - [`LengthPrefixed`] for TCP: a four-byte big-endian length, then the frame. A length above
//!   [`MAX_FRAME`] is refused before anything is allocated; a TCP stream cannot resynchronise, so
//!   that error ends the connection.
//! - [`Cobs`] for a serial line: the frame and its CRC-32, COBS-encoded, then a zero byte. A
//!   line that drops or garbles bytes yields a checksum or encoding error for the damaged frame,
//!   and the decoder resynchronises at the next zero byte.
//!
//! Both decoders are incremental: feed them whatever arrived, take out whole frames.

mod cobs;
mod length;

pub use cobs::Cobs;
pub use length::LengthPrefixed;

use crate::limits::{FRAME_HEADER_LEN, MAX_FRAME, MAX_HELLO, MAX_NOISE_MESSAGE};

/// A decoded link frame, borrowing its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkFrame<'a> {
    /// The client's plaintext hello.
    ClientHello(&'a [u8]),
    /// The server's plaintext hello (accept or refuse).
    ServerHello(&'a [u8]),
    /// A Noise handshake message.
    Handshake(&'a [u8]),
    /// A Noise transport message with its explicit counter.
    Transport {
        /// The sender's message counter, which is also the Noise nonce.
        counter: u64,
        /// The Noise ciphertext.
        ciphertext: &'a [u8],
    },
    /// A plaintext refusal sent when a handshake fails (there are no keys to encrypt it).
    Refusal(&'a [u8]),
}

mod kind {
    pub(super) const CLIENT_HELLO: u8 = 0x01;
    pub(super) const SERVER_HELLO: u8 = 0x02;
    pub(super) const HANDSHAKE: u8 = 0x03;
    pub(super) const TRANSPORT: u8 = 0x04;
    pub(super) const REFUSAL: u8 = 0x05;
}

/// A frame that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A length prefix larger than the protocol allows.
    #[error("frame length {len} exceeds the limit of {max} bytes")]
    Oversize {
        /// The announced or accumulated length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A frame with no content.
    #[error("empty frame")]
    Empty,
    /// The first byte names no known frame kind.
    #[error("unknown frame kind 0x{0:02x}")]
    UnknownKind(u8),
    /// The frame ends before its header does.
    #[error("truncated frame: {len} bytes is shorter than its header")]
    Truncated {
        /// Bytes received.
        len: usize,
    },
    /// A serial frame whose COBS encoding is broken (bytes dropped or garbled on the line).
    #[error("serial line fault: a frame's encoding is broken (bytes dropped or garbled)")]
    Encoding,
    /// A serial frame whose CRC-32 does not match (bytes garbled on the line).
    #[error("serial line fault: a frame's checksum does not match (bytes garbled)")]
    Checksum,
}

impl<'a> LinkFrame<'a> {
    /// Parses a link frame, checking each kind's length bound.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, FrameError> {
        let (&kind, body) = bytes.split_first().ok_or(FrameError::Empty)?;
        if bytes.len() > MAX_FRAME {
            return Err(FrameError::Oversize {
                len: bytes.len(),
                max: MAX_FRAME,
            });
        }
        let bounded = |max: usize| {
            if body.len() > max {
                Err(FrameError::Oversize {
                    len: body.len(),
                    max,
                })
            } else {
                Ok(body)
            }
        };
        match kind {
            kind::CLIENT_HELLO => Ok(LinkFrame::ClientHello(bounded(MAX_HELLO)?)),
            kind::SERVER_HELLO => Ok(LinkFrame::ServerHello(bounded(MAX_HELLO)?)),
            kind::REFUSAL => Ok(LinkFrame::Refusal(bounded(MAX_HELLO)?)),
            kind::HANDSHAKE => Ok(LinkFrame::Handshake(bounded(MAX_NOISE_MESSAGE)?)),
            kind::TRANSPORT => {
                if bytes.len() < FRAME_HEADER_LEN {
                    return Err(FrameError::Truncated { len: bytes.len() });
                }
                let (counter, ciphertext) = body.split_at(8);
                let counter = u64::from_be_bytes(counter.try_into().expect("eight bytes"));
                Ok(LinkFrame::Transport {
                    counter,
                    ciphertext,
                })
            }
            other => Err(FrameError::UnknownKind(other)),
        }
    }

    /// Appends the encoded frame to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match *self {
            LinkFrame::ClientHello(b) => push(out, kind::CLIENT_HELLO, b),
            LinkFrame::ServerHello(b) => push(out, kind::SERVER_HELLO, b),
            LinkFrame::Handshake(b) => push(out, kind::HANDSHAKE, b),
            LinkFrame::Refusal(b) => push(out, kind::REFUSAL, b),
            LinkFrame::Transport {
                counter,
                ciphertext,
            } => {
                out.push(kind::TRANSPORT);
                out.extend_from_slice(&counter.to_be_bytes());
                out.extend_from_slice(ciphertext);
            }
        }
    }

    /// The encoded frame as a new vector.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }
}

fn push(out: &mut Vec<u8>, kind: u8, body: &[u8]) {
    out.push(kind);
    out.extend_from_slice(body);
}

/// A byte framing: how link frames travel over a byte stream.
pub trait Framing: Send {
    /// Appends `frame`, framed, to `out`.
    fn encode(&self, frame: &[u8], out: &mut Vec<u8>);
    /// Feeds received bytes to the decoder.
    fn push(&mut self, bytes: &[u8]);
    /// Takes the next whole frame out of the decoder, if one has arrived. An error reports a
    /// damaged frame; whether the stream can go on after it is [`Framing::recoverable`].
    fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError>;
    /// Whether the decoder resynchronises after an error (a serial line) or not (TCP).
    fn recoverable(&self) -> bool;
    /// Bytes the decoder holds allocated. It grows only with bytes pushed, never with a length
    /// a peer announces.
    fn capacity(&self) -> usize;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips() {
        let frames = [
            LinkFrame::ClientHello(b"hi"),
            LinkFrame::ServerHello(b""),
            LinkFrame::Handshake(&[1, 2, 3]),
            LinkFrame::Refusal(b"no"),
            LinkFrame::Transport {
                counter: 0x0102_0304_0506_0708,
                ciphertext: &[9; 40],
            },
        ];
        for frame in frames {
            let bytes = frame.to_vec();
            assert_eq!(LinkFrame::parse(&bytes).unwrap(), frame);
        }
    }

    #[test]
    fn bad_frames_are_typed() {
        assert_eq!(LinkFrame::parse(&[]), Err(FrameError::Empty));
        assert_eq!(
            LinkFrame::parse(&[0x77]),
            Err(FrameError::UnknownKind(0x77))
        );
        assert_eq!(
            LinkFrame::parse(&[kind::TRANSPORT, 1, 2]),
            Err(FrameError::Truncated { len: 3 })
        );
        let big_hello = [vec![kind::CLIENT_HELLO], vec![0; MAX_HELLO + 1]].concat();
        assert!(matches!(
            LinkFrame::parse(&big_hello),
            Err(FrameError::Oversize { .. })
        ));
    }
}
