//! Two transport ends joined in process.

use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};

use super::{FrameTransport, TransportError};

/// Frames buffered in each direction before a sender blocks.
const CAPACITY: usize = 64;

/// One end of an in-memory pair.
#[derive(Debug)]
pub struct MemoryTransport {
    tx: Sender<Vec<u8>>,
    rx: Receiver<Vec<u8>>,
}

/// Two joined ends: what one sends, the other receives. Dropping an end closes the pair.
pub fn pair() -> (MemoryTransport, MemoryTransport) {
    let (a_tx, b_rx) = bounded(CAPACITY);
    let (b_tx, a_rx) = bounded(CAPACITY);
    (
        MemoryTransport { tx: a_tx, rx: a_rx },
        MemoryTransport { tx: b_tx, rx: b_rx },
    )
}

impl MemoryTransport {
    /// A probe that tells how many frames wait to be received at this end (for tests of flow
    /// control).
    pub fn queued_probe(&self) -> impl Fn() -> usize + Send + 'static {
        let rx = self.rx.clone();
        move || rx.len()
    }
}

impl FrameTransport for MemoryTransport {
    fn send(&mut self, frame: &[u8]) -> Result<(), TransportError> {
        self.tx
            .send(frame.to_vec())
            .map_err(|_| TransportError::Closed)
    }

    fn recv(&mut self, timeout: Duration) -> Result<Vec<u8>, TransportError> {
        match self.rx.recv_timeout(timeout) {
            Ok(frame) => Ok(frame),
            Err(RecvTimeoutError::Timeout) => Err(TransportError::Timeout),
            Err(RecvTimeoutError::Disconnected) => Err(TransportError::Closed),
        }
    }
}
