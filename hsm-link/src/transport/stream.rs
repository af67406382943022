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

/// Link frames over a byte stream, in a given framing.
pub struct StreamTransport<S, F> {
    stream: S,
    framing: F,
    read_buf: Box<[u8]>,
    write_buf: Vec<u8>,
}

impl<S: ReadTimeout, F: Framing> StreamTransport<S, F> {
    /// Wraps `stream` with `framing`.
    pub fn new(stream: S, framing: F) -> Self {
        StreamTransport {
            stream,
            framing,
            read_buf: vec![0; 64 * 1024].into_boxed_slice(),
            write_buf: Vec::with_capacity(70 * 1024),
        }
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
            match self.stream.read(&mut self.read_buf) {
                Ok(0) => return Err(TransportError::Closed),
                Ok(n) => self.framing.push(&self.read_buf[..n]),
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
