//! The application link's bytes: the preamble, then length-prefixed postcard frames. Works on
//! any `Read`/`Write`, so both ends are tested over memory as well as TCP.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{APP_MAGIC, APP_PROTOCOL_VERSION, FRAME_LENGTH_LEN, MAX_APP_FRAME, PREAMBLE_LEN};

/// Why bytes on the application link could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The socket failed or timed out.
    #[error("application link I/O: {0}")]
    Io(#[from] io::Error),
    /// The peer does not speak this protocol: its first bytes are not `TSAP`.
    #[error("the peer does not speak the Tessera application protocol (no TSAP preamble)")]
    BadMagic,
    /// The peer speaks another version of the protocol.
    #[error(
        "the peer speaks application protocol version {theirs}, this end version {ours}: update one of them"
    )]
    Version {
        /// The version this end speaks.
        ours: u8,
        /// The version the peer announced.
        theirs: u8,
    },
    /// A frame length above [`MAX_APP_FRAME`], refused before anything was allocated for it.
    #[error("frame of {len} bytes exceeds the limit of {MAX_APP_FRAME} bytes")]
    Oversize {
        /// The announced length.
        len: u64,
    },
    /// The connection closed in the middle of the preamble or a frame.
    #[error("the connection closed in the middle of a frame")]
    Truncated,
    /// A frame that does not decode as the expected message, or has bytes left over.
    #[error("a frame did not decode as an application message")]
    Malformed,
}

fn eof_is_truncation(error: io::Error) -> WireError {
    if error.kind() == io::ErrorKind::UnexpectedEof {
        WireError::Truncated
    } else {
        WireError::Io(error)
    }
}

/// The preamble this end sends: magic and version.
pub(super) fn preamble() -> [u8; PREAMBLE_LEN] {
    let mut out = [0; PREAMBLE_LEN];
    out[..APP_MAGIC.len()].copy_from_slice(APP_MAGIC);
    out[APP_MAGIC.len()] = APP_PROTOCOL_VERSION;
    out
}

/// Reads the peer's preamble and returns the version it announces (which may differ from
/// ours: the caller decides what to say). A wrong magic is [`WireError::BadMagic`].
pub(super) fn read_preamble<R: Read>(reader: &mut R) -> Result<u8, WireError> {
    let mut bytes = [0; PREAMBLE_LEN];
    reader.read_exact(&mut bytes).map_err(eof_is_truncation)?;
    if &bytes[..APP_MAGIC.len()] != APP_MAGIC {
        return Err(WireError::BadMagic);
    }
    Ok(bytes[APP_MAGIC.len()])
}

/// Encodes `value` as one frame (length and body). The buffer is sized once from the encoded
/// length, so no copy of a secret is left behind by a reallocation, and wiped when dropped.
pub(super) fn encode_frame<T: Serialize>(value: &T) -> Result<Zeroizing<Vec<u8>>, WireError> {
    let len = postcard::serialize_with_flavor(value, postcard::ser_flavors::Size::default())
        .map_err(|_| WireError::Malformed)?;
    if len > MAX_APP_FRAME {
        return Err(WireError::Oversize { len: len as u64 });
    }
    let mut frame = Zeroizing::new(vec![0; FRAME_LENGTH_LEN + len]);
    let prefix = u32::try_from(len).map_err(|_| WireError::Oversize { len: len as u64 })?;
    frame[..FRAME_LENGTH_LEN].copy_from_slice(&prefix.to_be_bytes());
    postcard::to_slice(value, &mut frame[FRAME_LENGTH_LEN..]).map_err(|_| WireError::Malformed)?;
    Ok(frame)
}

/// Writes one already encoded frame (or the preamble).
pub(super) fn write_frame<W: Write>(writer: &mut W, frame: &[u8]) -> Result<(), WireError> {
    writer.write_all(frame)?;
    writer.flush()?;
    Ok(())
}

/// Reads one frame's body. `None` when the peer closed cleanly between frames. The length is
/// checked against [`MAX_APP_FRAME`] before the body is allocated or read.
pub(super) fn read_frame<R: Read>(reader: &mut R) -> Result<Option<Zeroizing<Vec<u8>>>, WireError> {
    let mut prefix = [0; FRAME_LENGTH_LEN];
    let mut filled = 0;
    while filled < FRAME_LENGTH_LEN {
        match reader.read(&mut prefix[filled..]) {
            Ok(0) if filled == 0 => return Ok(None),
            Ok(0) => return Err(WireError::Truncated),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(WireError::Io(e)),
        }
    }
    let len = u64::from(u32::from_be_bytes(prefix));
    if len > MAX_APP_FRAME as u64 {
        return Err(WireError::Oversize { len });
    }
    read_body(reader, len as usize).map(Some)
}

/// First buffer for a frame body; it doubles as bytes arrive, up to the announced length.
pub(super) const FIRST_BODY_CHUNK: usize = 4096;

/// Reads a body of `len` bytes into a buffer that grows only as bytes arrive, so a length
/// prefix alone (up to [`MAX_APP_FRAME`]) allocates next to nothing. Every buffer is wiped
/// when dropped, also the smaller ones left behind as it grows (they may hold a secret).
fn read_body<R: Read>(reader: &mut R, len: usize) -> Result<Zeroizing<Vec<u8>>, WireError> {
    let mut body = Zeroizing::new(vec![0; len.min(FIRST_BODY_CHUNK)]);
    let mut filled = 0;
    while filled < len {
        if filled == body.len() {
            let mut grown = Zeroizing::new(vec![0; (body.len() * 2).min(len)]);
            grown[..filled].copy_from_slice(&body[..filled]);
            body = grown;
        }
        match reader.read(&mut body[filled..]) {
            Ok(0) => return Err(WireError::Truncated),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(WireError::Io(e)),
        }
    }
    Ok(body)
}

/// Decodes a frame body as one `T`, refusing bytes left over.
pub(super) fn decode<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, WireError> {
    match postcard::take_from_bytes(body) {
        Ok((value, [])) => Ok(value),
        _ => Err(WireError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preamble_is_tsap_and_version_one() {
        assert_eq!(preamble(), [b'T', b'S', b'A', b'P', 1]);
        assert_eq!(read_preamble(&mut &preamble()[..]).unwrap(), 1);
        assert_eq!(read_preamble(&mut &b"TSAP\x02"[..]).unwrap(), 2);
        assert!(matches!(
            read_preamble(&mut &b"GET / HTTP/1.1\r\n"[..]),
            Err(WireError::BadMagic)
        ));
        assert!(matches!(
            read_preamble(&mut &b"TSA"[..]),
            Err(WireError::Truncated)
        ));
    }

    #[test]
    fn frames_round_trip_at_their_bounds() {
        for len in [0usize, 1, 1000] {
            let value = vec![7u8; len];
            let frame = encode_frame(&value).unwrap();
            let mut reader = &frame[..];
            let body = read_frame(&mut reader).unwrap().unwrap();
            assert_eq!(decode::<Vec<u8>>(&body).unwrap(), value);
            assert!(read_frame(&mut reader).unwrap().is_none(), "clean end");
        }
        // The largest body accepted, and one byte more.
        let mut exact = (MAX_APP_FRAME as u32).to_be_bytes().to_vec();
        exact.resize(FRAME_LENGTH_LEN + MAX_APP_FRAME, 0);
        assert_eq!(
            read_frame(&mut &exact[..]).unwrap().unwrap().len(),
            MAX_APP_FRAME
        );
        let over = ((MAX_APP_FRAME + 1) as u32).to_be_bytes();
        assert!(matches!(
            read_frame(&mut &over[..]),
            Err(WireError::Oversize { len }) if len == MAX_APP_FRAME as u64 + 1
        ));
    }

    /// A peer that announces a body and then sends a byte at a time; it records the largest
    /// buffer it was asked to fill.
    struct Trickle {
        bytes: Vec<u8>,
        at: usize,
        largest_request: usize,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.largest_request = self.largest_request.max(buf.len());
            if self.at == self.bytes.len() || buf.is_empty() {
                return Ok(0);
            }
            buf[0] = self.bytes[self.at];
            self.at += 1;
            Ok(1)
        }
    }

    #[test]
    fn a_length_prefix_alone_allocates_next_to_nothing() {
        let mut bytes = (MAX_APP_FRAME as u32).to_be_bytes().to_vec();
        bytes.extend_from_slice(&[1, 2, 3]);
        let mut peer = Trickle {
            bytes,
            at: 0,
            largest_request: 0,
        };
        assert!(matches!(read_frame(&mut peer), Err(WireError::Truncated)));
        assert!(
            peer.largest_request <= FIRST_BODY_CHUNK,
            "asked for {} bytes at once",
            peer.largest_request
        );
        // A body that does arrive is read whole across the buffer's growth.
        let body: Vec<u8> = (0..3 * FIRST_BODY_CHUNK + 5).map(|i| i as u8).collect();
        let mut bytes = (body.len() as u32).to_be_bytes().to_vec();
        bytes.extend_from_slice(&body);
        let mut peer = Trickle {
            bytes,
            at: 0,
            largest_request: 0,
        };
        assert_eq!(*read_frame(&mut peer).unwrap().unwrap(), body);
    }

    #[test]
    fn an_oversize_value_is_not_encoded() {
        let value = vec![0u8; MAX_APP_FRAME];
        assert!(matches!(
            encode_frame(&value),
            Err(WireError::Oversize { .. })
        ));
    }

    #[test]
    fn truncated_and_trailing_bytes_are_refused() {
        // Two bytes of a length prefix.
        assert!(matches!(
            read_frame(&mut &[0u8, 0][..]),
            Err(WireError::Truncated)
        ));
        // A length of 10 and three bytes of body.
        assert!(matches!(
            read_frame(&mut &[0u8, 0, 0, 10, 1, 2, 3][..]),
            Err(WireError::Truncated)
        ));
        // A body with a byte after the value.
        assert!(matches!(decode::<u8>(&[1, 2]), Err(WireError::Malformed)));
        assert!(matches!(decode::<u8>(&[]), Err(WireError::Malformed)));
    }
}
