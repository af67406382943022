//! Transports at the edge: they move link frames, and know nothing of their content.
//!
//! - [`memory::pair`]: two ends joined in process (tests and the terminal's embedded default).
//! - [`StreamTransport::tcp`]: length-prefixed frames over TCP.
//! - [`StreamTransport::serial`]: COBS frames over a serial line.

pub mod memory;
mod stream;

use std::time::Duration;

pub use stream::{ReadTimeout, StreamTransport};

use crate::frame::FrameError;

/// Moves whole link frames.
pub trait FrameTransport: Send {
    /// Sends one frame.
    fn send(&mut self, frame: &[u8]) -> Result<(), TransportError>;
    /// Waits up to `timeout` for the next frame.
    fn recv(&mut self, timeout: Duration) -> Result<Vec<u8>, TransportError>;
    /// Whether the framing resynchronises after a damaged frame (a serial line), so that the
    /// same transport can carry a new session after a fault.
    fn resynchronises(&self) -> bool {
        false
    }
}

impl<T: FrameTransport + ?Sized> FrameTransport for Box<T> {
    fn send(&mut self, frame: &[u8]) -> Result<(), TransportError> {
        (**self).send(frame)
    }
    fn recv(&mut self, timeout: Duration) -> Result<Vec<u8>, TransportError> {
        (**self).recv(timeout)
    }
    fn resynchronises(&self) -> bool {
        (**self).resynchronises()
    }
}

/// A transport failure.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// Nothing arrived in time.
    #[error("timed out waiting for the peer")]
    Timeout,
    /// The other end went away.
    #[error("the connection was closed by the other end")]
    Closed,
    /// A damaged frame on the line.
    #[error("line fault: {0}")]
    Frame(#[from] FrameError),
    /// An I/O error.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}
