//! The terminal's blocking connection: hello, handshake, requests, bulk downloads.

use std::io::Write;
use std::time::{Duration, Instant};

use audit_log::AuditKey;
use sha2::{Digest, Sha256};

use crate::domain::PartitionId;
use crate::error::{Error, PeerMisbehaved};
use crate::handshake::client::{self as hs, ClientMode, ClientOptions, ClientProgress};
use crate::keys::StaticKeypair;
use crate::limits::STREAM_WINDOW;
use crate::message::{AdminRequest, CloseReason, Packet, Request, Response};
use crate::session::Session;
use crate::transport::{FrameTransport, TransportError};

/// How long the HSM may take to answer the requests that go through a whole partition in one
/// transaction (a restore's dry run and its swap): minutes for a full partition on a slow
/// device, where every other request answers within [`ConnectOptions::response_timeout`]. A
/// swap given up on by the terminal would still commit at the HSM, reported as a failure.
pub const WHOLE_PARTITION_TIMEOUT: Duration = Duration::from_secs(600);

/// Timeouts and handshake options of a connection.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// Versions and rekeying.
    pub handshake: ClientOptions,
    /// How long each handshake step may take.
    pub handshake_timeout: Duration,
    /// How long a request may wait for its response (or for the next chunk of a transfer).
    pub response_timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            handshake: ClientOptions::default(),
            handshake_timeout: Duration::from_secs(10),
            response_timeout: Duration::from_secs(30),
        }
    }
}

/// An established connection from the terminal to a partition.
pub struct Connection<T> {
    transport: T,
    session: Session,
    partition: PartitionId,
    paired_now: bool,
    /// The audit key the HSM sent with its pairing confirmation (pairing only).
    paired_audit_key: Option<AuditKey>,
    next_id: u64,
    response_timeout: Duration,
}

impl<T: FrameTransport> std::fmt::Debug for Connection<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("partition", &self.partition)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

/// Runs the hello and handshake over `transport`. With [`ClientMode::Pairing`], success means
/// the HSM proved it knew the code: the caller should now pin [`Session::remote_key`].
pub fn connect<T: FrameTransport>(
    mut transport: T,
    identity: &StaticKeypair,
    partition: PartitionId,
    mode: ClientMode,
    options: ConnectOptions,
) -> Result<Connection<T>, Error> {
    let wait = options.handshake_timeout;
    let (state, hello) = hs::start(identity, partition.clone(), mode, options.handshake);
    transport.send(&hello)?;
    let (state, first) = state.handle(&transport.recv(wait)?)?;
    transport.send(&first)?;
    let (session, paired_now, paired_audit_key) = match state.handle(&transport.recv(wait)?)? {
        ClientProgress::Established(session) => (session, false, None),
        ClientProgress::Pairing(state, last) => {
            transport.send(&last)?;
            let (session, audit_key) = state.handle(&transport.recv(wait)?)?;
            (session, true, audit_key)
        }
    };
    Ok(Connection {
        transport,
        session,
        partition,
        paired_now,
        paired_audit_key,
        next_id: 1,
        response_timeout: options.response_timeout,
    })
}

/// What a link test measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkTestReport {
    /// Payload bytes received and checked.
    pub bytes: u64,
    /// Time from request to verified end.
    pub elapsed: Duration,
}

impl<T: FrameTransport> Connection<T> {
    /// The secure session (channel binding, the HSM's key, the version).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The partition this connection administers.
    pub fn partition(&self) -> &PartitionId {
        &self.partition
    }

    /// Whether this connection began with a pairing.
    pub fn paired_now(&self) -> bool {
        self.paired_now
    }

    /// After a pairing: the HSM's audit public key, sent inside the session with the proof that
    /// the HSM knew the code, to be pinned with [`Session::remote_key`]. `None` for a pinned
    /// session, or from an endpoint that keeps no log.
    pub fn paired_audit_key(&self) -> Option<AuditKey> {
        self.paired_audit_key
    }

    fn send(&mut self, packet: &Packet) -> Result<(), Error> {
        let frame = self.session.seal(packet)?;
        match self.transport.send(&frame) {
            Ok(()) => Ok(()),
            Err(TransportError::Closed) => Err(self.explain_close()),
            Err(e) => Err(e.into()),
        }
    }

    /// The peer went away while we were sending: a Close it sent first may still be queued.
    fn explain_close(&mut self) -> Error {
        match self.transport.recv(Duration::from_millis(50)) {
            Ok(frame) => match self.session.open(&frame) {
                Ok(Packet::Close(reason)) => close_error(reason),
                _ => TransportError::Closed.into(),
            },
            Err(_) => TransportError::Closed.into(),
        }
    }

    /// The next packet that is not link housekeeping; answers keep-alives on the way.
    fn next_packet(&mut self, id: u64, timeout: Duration) -> Result<Packet, Error> {
        loop {
            let frame = match self.transport.recv(timeout) {
                Ok(frame) => frame,
                Err(TransportError::Timeout) => {
                    return Err(Error::ResponseTimeout { id, after: timeout });
                }
                Err(e) => return Err(e.into()),
            };
            match self.session.open(&frame)? {
                Packet::KeepAlive => self.send(&Packet::KeepAliveAck)?,
                Packet::KeepAliveAck => {}
                Packet::Close(reason) => return Err(close_error(reason)),
                other => return Ok(other),
            }
        }
    }

    fn start(&mut self, body: Request) -> Result<u64, Error> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&Packet::Request { id, body })?;
        Ok(id)
    }

    /// Sends a request and waits for its response.
    pub fn call(&mut self, request: Request) -> Result<Response, Error> {
        let timeout = match &request {
            Request::Admin(AdminRequest::RestoreDryRun | AdminRequest::RestoreCommit { .. }) => {
                self.response_timeout.max(WHOLE_PARTITION_TIMEOUT)
            }
            _ => self.response_timeout,
        };
        let id = self.start(request)?;
        match self.next_packet(id, timeout)? {
            Packet::Response { id: got, body } if got == id => Ok(body?),
            _ => Err(self.violation(PeerMisbehaved::ExpectedResponse)),
        }
    }

    /// Sends a request whose answer is a bulk transfer, writing the chunks to `sink` as they
    /// arrive (at most [`STREAM_WINDOW`] chunks are in flight), and returns the final response.
    pub fn call_download(
        &mut self,
        request: Request,
        sink: &mut dyn Write,
    ) -> Result<Response, Error> {
        let id = self.start(request)?;
        let mut expected_seq = 0u32;
        let mut since_credit = 0u32;
        loop {
            match self.next_packet(id, self.response_timeout)? {
                Packet::Data {
                    id: got,
                    seq,
                    bytes,
                } if got == id => {
                    if seq != expected_seq {
                        return Err(self.violation(PeerMisbehaved::ChunkOutOfSequence));
                    }
                    expected_seq = expected_seq.wrapping_add(1);
                    sink.write_all(&bytes).map_err(Error::Sink)?;
                    since_credit += 1;
                    if since_credit >= STREAM_WINDOW / 2 {
                        self.send(&Packet::Credit {
                            id,
                            chunks: since_credit,
                        })?;
                        since_credit = 0;
                    }
                }
                Packet::Response { id: got, body } if got == id => return Ok(body?),
                _ => return Err(self.violation(PeerMisbehaved::UnexpectedPacketDuringBulkTransfer)),
            }
        }
    }

    fn violation(&mut self, fault: PeerMisbehaved) -> Error {
        let _ = self.send(&Packet::Close(CloseReason::ProtocolViolation));
        Error::PeerMisbehaved(fault)
    }

    /// Asks the HSM to stream `bytes` bytes and checks their digest: a throughput check.
    pub fn link_test(&mut self, bytes: u64) -> Result<LinkTestReport, Error> {
        struct Hashing(Sha256, u64);
        impl Write for Hashing {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.update(buf);
                self.1 += buf.len() as u64;
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let started = Instant::now();
        let mut sink = Hashing(Sha256::new(), 0);
        match self.call_download(Request::LinkTest { bytes }, &mut sink)? {
            Response::LinkTestDone {
                bytes: sent,
                sha256,
            } => {
                let digest: [u8; 32] = sink.0.finalize().into();
                if sent != sink.1 || sent != bytes || digest != sha256 {
                    return Err(Error::TransferCorrupted);
                }
                Ok(LinkTestReport {
                    bytes: sent,
                    elapsed: started.elapsed(),
                })
            }
            _ => Err(self.violation(PeerMisbehaved::ExpectedLinkTestEnd)),
        }
    }

    /// Sends a keep-alive and waits for the answer.
    pub fn keep_alive(&mut self) -> Result<(), Error> {
        self.send(&Packet::KeepAlive)?;
        loop {
            let frame = match self.transport.recv(self.response_timeout) {
                Ok(frame) => frame,
                Err(TransportError::Timeout) => {
                    return Err(Error::LinkLost {
                        silent_for: self.response_timeout,
                    });
                }
                Err(e) => return Err(e.into()),
            };
            match self.session.open(&frame)? {
                Packet::KeepAliveAck => return Ok(()),
                Packet::KeepAlive => self.send(&Packet::KeepAliveAck)?,
                Packet::Close(reason) => return Err(close_error(reason)),
                _ => return Err(self.violation(PeerMisbehaved::UnexpectedPacketWhileIdle)),
            }
        }
    }

    /// Ends the session politely.
    pub fn close(mut self) -> Result<(), Error> {
        self.send(&Packet::Close(CloseReason::Goodbye))
    }

    /// The transport, for tests that tamper with it.
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }
}

fn close_error(reason: CloseReason) -> Error {
    match reason {
        CloseReason::IdleTimeout { after_ms } => Error::IdleExpired {
            after: Duration::from_millis(after_ms),
        },
        other => Error::Closed(other),
    }
}
