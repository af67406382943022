//! Bodies of the fuzz targets, shared by `cargo fuzz` (in `fuzz/`) and the ordinary corpus
//! tests, so that CI exercises them on the stable toolchain.

use crate::frame::{Cobs, Framing, LengthPrefixed, LinkFrame};
use crate::hello::{ClientHello, Refusal, ServerHello};
use crate::limits::MAX_FRAME;
use crate::message::Packet;

/// Feeds arbitrary bytes to both frame decoders in pieces whose sizes the input chooses, and
/// parses every frame that comes out as a link frame, a hello and a packet. Must never panic,
/// never yield a frame above [`MAX_FRAME`], and must leave the COBS decoder able to carry a
/// good frame afterwards.
pub fn frame_decoders(data: &[u8]) {
    let split = usize::from(data.first().copied().unwrap_or(1)).max(1);
    let body = data.get(1..).unwrap_or_default();
    let mut length = LengthPrefixed::new();
    let mut cobs = Cobs::new();
    for piece in body.chunks(split) {
        length.push(piece);
        cobs.push(piece);
        drain(&mut length);
        drain(&mut cobs);
    }
    // After any garbage, a zero byte and a good frame get through the serial decoder.
    let mut wire = vec![0];
    cobs.encode(b"\x01resync", &mut wire);
    cobs.push(&wire);
    let mut resynced = false;
    loop {
        match cobs.next_frame() {
            Ok(Some(frame)) => resynced = frame == b"\x01resync",
            Ok(None) => break,
            Err(_) => resynced = false,
        }
    }
    assert!(resynced, "the serial decoder did not resynchronise");
}

fn drain(framing: &mut dyn Framing) {
    loop {
        match framing.next_frame() {
            Ok(Some(frame)) => {
                assert!(frame.len() <= MAX_FRAME);
                inspect(&frame);
            }
            Ok(None) => return,
            Err(_) if framing.recoverable() => continue,
            Err(_) => return,
        }
    }
}

fn inspect(frame: &[u8]) {
    if let Ok(parsed) = LinkFrame::parse(frame) {
        match parsed {
            LinkFrame::ClientHello(b) => drop(ClientHello::decode(b)),
            LinkFrame::ServerHello(b) => drop(ServerHello::decode(b)),
            LinkFrame::Refusal(b) => drop(Refusal::decode(b)),
            LinkFrame::Handshake(_) => {}
            LinkFrame::Transport { ciphertext, .. } => drop(Packet::decode(ciphertext)),
        }
    }
}
