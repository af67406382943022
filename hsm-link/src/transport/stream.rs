//! Frames over a byte stream: TCP or a serial line.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::{FrameTransport, TransportError};
use crate::frame::{Cobs, Framing, LengthPrefixed};

/// A byte stream whose reads can time out.
pub trait ReadTimeout: Read + Write + Send {
    /// Sets how long one read may wait.
    fn set_read_timeout(&mut self, timeout: Duration) -> std::io::Result<()>;
}

impl ReadTimeout for TcpStream {
    fn set_read_timeout(&mut self, timeout: Duration) -> std::io::Result<()> {
        TcpStream::set_read_timeout(self, Some(timeout.max(Duration::from_millis(1))))
    }
}

impl ReadTimeout for Box<dyn serialport::SerialPort> {
    fn set_read_timeout(&mut self, timeout: Duration) -> std::io::Result<()> {
        self.set_timeout(timeout.max(Duration::from_millis(1)))
            .map_err(std::io::Error::from)
    }
}

/// The read buffer a transport starts with: a hello or a handshake message fits.
const FIRST_READ_BUF: usize = 1024;
/// The read buffer grows (doubling each time a read fills it) up to this.
const MAX_READ_BUF: usize = 64 * 1024;

/// Link frames over a byte stream, in a given framing.
///
/// Its buffers grow only as bytes arrive, never on what a peer announces: a peer that opens a
/// connection and sends a length prefix costs a kilobyte, not a frame.
pub struct StreamTransport<S, F> {
    stream: S,
    framing: F,
    read_buf: Vec<u8>,
    write_buf: Vec<u8>,
}

impl<S: ReadTimeout, F: Framing> StreamTransport<S, F> {
    /// Wraps `stream` with `framing`.
    pub fn new(stream: S, framing: F) -> Self {
        StreamTransport {
            stream,
            framing,
            read_buf: vec![0; FIRST_READ_BUF],
            write_buf: Vec::new(),
        }
    }

    /// Bytes this transport holds allocated for buffering (its read and write buffers and its
    /// decoder's): what a peer's bytes have made it allocate.
    pub fn buffered_capacity(&self) -> usize {
        self.read_buf.capacity() + self.write_buf.capacity() + self.framing.capacity()
    }

    /// Reads what is there into the read buffer and feeds it to the decoder; a read that fills
    /// the buffer doubles it for the next one.
    fn read_some(&mut self) -> std::io::Result<usize> {
        let n = self.stream.read(&mut self.read_buf)?;
        self.framing.push(&self.read_buf[..n]);
        if n == self.read_buf.len() && n < MAX_READ_BUF {
            self.read_buf.resize((2 * n).min(MAX_READ_BUF), 0);
        }
        Ok(n)
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// Discards everything that arrives until the line has been quiet for `quiet`, and resets
    /// the decoder: what a terminal does before it reconnects over a serial line after a fault,
    /// so that stale answers to a dead session are not read as answers to the new one.
    pub fn discard_input(&mut self, quiet: Duration) -> Result<(), TransportError>
    where
        F: Default,
    {
        self.framing = F::default();
        loop {
            self.stream.set_read_timeout(quiet)?;
            match self.stream.read(&mut self.read_buf) {
                Ok(0) => return Err(TransportError::Closed),
                Ok(_) => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Ok(());
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl StreamTransport<TcpStream, LengthPrefixed> {
    /// Length-prefixed frames over TCP (Nagle off: frames are small and latency matters).
    pub fn tcp(stream: TcpStream) -> std::io::Result<Self> {
        stream.set_nodelay(true)?;
        Ok(Self::new(stream, LengthPrefixed::new()))
    }
}

impl StreamTransport<Box<dyn serialport::SerialPort>, Cobs> {
    /// COBS frames over a serial line.
    pub fn serial(port: Box<dyn serialport::SerialPort>) -> Self {
        Self::new(port, Cobs::new())
    }

    /// Opens the serial device at `path` (8N1, no flow control) and frames it with COBS.
    pub fn open_serial(path: &str, baud_rate: u32) -> Result<Self, serialport::Error> {
        let port = serialport::new(path, baud_rate)
            .timeout(Duration::from_millis(100))
            .open()?;
        Ok(Self::serial(port))
    }
}

impl<S: ReadTimeout, F: Framing> FrameTransport for StreamTransport<S, F> {
    fn send(&mut self, frame: &[u8]) -> Result<(), TransportError> {
        self.write_buf.clear();
        self.framing.encode(frame, &mut self.write_buf);
        match self.stream.write_all(&self.write_buf) {
            Ok(()) => {}
            Err(e) if is_closed(&e) => return Err(TransportError::Closed),
            Err(e) => return Err(e.into()),
        }
        self.stream.flush().map_err(TransportError::from)
    }

    fn recv(&mut self, timeout: Duration) -> Result<Vec<u8>, TransportError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(frame) = self.framing.next_frame()? {
                return Ok(frame);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(TransportError::Timeout);
            }
            self.stream.set_read_timeout(left)?;
            match self.read_some() {
                Ok(0) => return Err(TransportError::Closed),
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if is_closed(&e) => return Err(TransportError::Closed),
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn resynchronises(&self) -> bool {
        self.framing.recoverable()
    }
}

fn is_closed(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::BrokenPipe | ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
    )
}

#[cfg(test)]
mod tests {
    use std::net::{TcpListener, TcpStream};

    use super::*;
    use crate::limits::MAX_FRAME;

    #[test]
    fn a_bare_length_prefix_does_not_allocate_the_frame() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let mut transport = StreamTransport::tcp(listener.accept().unwrap().0).unwrap();
        // The largest frame announced, and one byte of it.
        peer.write_all(&(MAX_FRAME as u32).to_be_bytes()).unwrap();
        peer.write_all(&[0x03]).unwrap();
        assert!(matches!(
            transport.recv(Duration::from_millis(100)),
            Err(TransportError::Timeout)
        ));
        let held = transport.buffered_capacity();
        assert!(
            held <= 2 * FIRST_READ_BUF,
            "{held} bytes held for 5 received"
        );
        // The frame itself still arrives whole once its bytes do.
        peer.write_all(&vec![7; MAX_FRAME - 1]).unwrap();
        let frame = transport.recv(Duration::from_secs(5)).unwrap();
        assert_eq!(frame.len(), MAX_FRAME);
        assert!(transport.buffered_capacity() >= MAX_FRAME);
    }
}
