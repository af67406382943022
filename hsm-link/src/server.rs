//! The HSM's blocking session driver: one connection, from hello to close.
//!
//! Link requests (ping, session info, link test) are answered here; administration requests go
//! to a [`Handler`] that the partition service provides, one per session.

mod tcp;

use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::domain::PartitionId;
use crate::error::{Error, PeerMisbehaved};
use crate::handshake::server::{
    self as hs, Rejection, ServerOptions, ServerProgress, ServerSession,
};
use crate::keys::{PublicKey, StaticKeypair};
use crate::limits::{CHUNK_SIZE, MAX_LINK_TEST_BYTES, MAX_PLAINTEXT, STREAM_WINDOW};
use crate::listener::ConnectionLimits;
use crate::message::{
    AdminRequest, CloseReason, Packet, Quantity, RemoteError, Request, Response, SessionInfo,
};
use crate::transport::{FrameTransport, TransportError};
use crate::trust::TrustStore;

pub use tcp::{MAX_TCP_CONNECTIONS, MAX_TCP_CONNECTIONS_PER_SOURCE, TcpServer};

/// Timeouts and handshake options of the server.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Versions and rekeying.
    pub handshake: ServerOptions,
    /// How long the hello and the whole handshake may take together: one deadline, however
    /// the peer spreads its bytes. A [`TcpServer`] counts it from the moment it accepts the
    /// connection; [`serve_connection`] (a line that is always there) waits this long for a
    /// hello and counts it from the hello's arrival.
    pub handshake_timeout: Duration,
    /// A session with no request for this long is closed, and told so.
    pub idle_timeout: Duration,
    /// A session from which nothing at all (not even a keep-alive) arrives for this long is
    /// dropped as lost.
    pub dead_after: Duration,
    /// How many connections a [`TcpServer`] serves at once, in all and per source address.
    pub tcp_limits: ConnectionLimits,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            handshake: ServerOptions::default(),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            idle_timeout: Duration::from_secs(15 * 60),
            dead_after: Duration::from_secs(20 * 60),
            tcp_limits: ConnectionLimits {
                max_connections: MAX_TCP_CONNECTIONS,
                max_per_source: MAX_TCP_CONNECTIONS_PER_SOURCE,
            },
        }
    }
}

/// What a handler knows about its session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionContext {
    /// The partition administered.
    pub partition: PartitionId,
    /// The terminal's authenticated key.
    pub terminal: PublicKey,
    /// The Noise handshake hash: logins bind their card signatures to it.
    pub channel_binding: [u8; 32],
    /// Whether the session began with a pairing.
    pub paired_now: bool,
    /// The protocol version.
    pub version: u16,
}

/// A bulk answer, produced chunk by chunk under the terminal's flow control, so that a large
/// export never sits in memory whole.
pub trait ReplyStream: Send {
    /// Appends at most `max` bytes to `chunk`; returns `false` once nothing more will come.
    fn fill(&mut self, chunk: &mut Vec<u8>, max: usize) -> Result<bool, RemoteError>;
    /// The final response, after the last chunk.
    fn finish(self: Box<Self>) -> Result<Response, RemoteError>;
}

/// A handler's answer to a request.
pub enum Reply {
    /// One response.
    Response(Result<Response, RemoteError>),
    /// A bulk transfer, then a final response.
    Stream(Box<dyn ReplyStream>),
}

/// Answers administration requests for one session.
pub trait Handler: Send {
    /// Answers one request.
    fn handle(&mut self, ctx: &SessionContext, request: AdminRequest) -> Reply;
    /// Called between requests, at least twice a second: a reason ends the session after the
    /// terminal is told (a newer management session took over, the HSM shuts down).
    fn poll(&mut self, _ctx: &SessionContext) -> Option<CloseReason> {
        None
    }
    /// Called once when the session ends, however it ends.
    fn ended(&mut self, _ctx: &SessionContext) {}
}

/// Creates a handler for each established session.
pub trait AdminService: Send + Sync {
    /// The handler for a new session.
    fn session(&self, ctx: &SessionContext) -> Box<dyn Handler>;
}

/// A bare link endpoint: answers link requests only, refuses administration.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoAdministration;

impl Handler for NoAdministration {
    fn handle(&mut self, _ctx: &SessionContext, _request: AdminRequest) -> Reply {
        Reply::Response(Err(RemoteError::NoAdministration))
    }
}

impl AdminService for NoAdministration {
    fn session(&self, _ctx: &SessionContext) -> Box<dyn Handler> {
        Box::new(NoAdministration)
    }
}

/// How a session ended without error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionEnd {
    /// The terminal closed it.
    Closed(CloseReason),
    /// The server closed it for idleness (and told the terminal).
    IdleTimeout,
    /// The terminal went away without a word.
    Disconnected,
    /// The HSM ended it (and told the terminal why).
    EndedByHsm(CloseReason),
}

/// The outcome of one served session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionSummary {
    /// The partition administered.
    pub partition: PartitionId,
    /// The terminal's key.
    pub terminal: PublicKey,
    /// Whether it paired in this session.
    pub paired_now: bool,
    /// Requests served.
    pub requests: u64,
    /// How it ended.
    pub end: SessionEnd,
}

/// The default [`ServeOptions::handshake_timeout`]: a real terminal needs a fraction of it
/// (the pairing code is typed before it connects), and a peer that says nothing holds a
/// connection no longer.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves one connection on `transport`: hello, handshake, then requests until the session
/// ends. Refusals are sent to the terminal before the error is returned. The wait for the hello
/// and the handshake after it are each bounded by [`ServeOptions::handshake_timeout`].
pub fn serve_connection<T: FrameTransport + ?Sized>(
    transport: &mut T,
    identity: &StaticKeypair,
    options: &ServeOptions,
    trust: &dyn TrustStore,
    admin: &dyn AdminService,
) -> Result<SessionSummary, Error> {
    let endpoint = Endpoint {
        identity,
        options,
        trust,
        admin,
    };
    endpoint.serve(transport, HandshakeClock::FromHello, &|| {})
}

/// The HSM end of a session: what every session is served with.
struct Endpoint<'a> {
    identity: &'a StaticKeypair,
    options: &'a ServeOptions,
    trust: &'a dyn TrustStore,
    admin: &'a dyn AdminService,
}

/// When the hello and handshake must be over.
#[derive(Clone, Copy, Debug)]
enum HandshakeClock {
    /// A line that is always there: the hello may take the timeout to come, and the handshake
    /// after it must end within the timeout of its arrival.
    FromHello,
    /// A connection accepted at this instant: hello and handshake end within the timeout of
    /// it, together.
    Since(Instant),
}

impl Endpoint<'_> {
    /// Serves one session; `established` is called once the handshake has authenticated it.
    fn serve<T: FrameTransport + ?Sized>(
        &self,
        transport: &mut T,
        clock: HandshakeClock,
        established: &dyn Fn(),
    ) -> Result<SessionSummary, Error> {
        let options = self.options;
        let server = handshake(transport, self, clock, established)?;
        let ctx = SessionContext {
            partition: server.partition.clone(),
            terminal: server.terminal,
            channel_binding: *server.session.channel_binding(),
            paired_now: server.paired_now,
            version: server.session.version(),
        };
        let mut handler = self.admin.session(&ctx);
        let result = Driver {
            transport,
            options,
            requests: 0,
            server,
            handler: &mut *handler,
            ctx: &ctx,
        }
        .run();
        handler.ended(&ctx);
        result
    }
}

/// How often a session wakes to ask its handler whether to end.
const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Runs the hello and handshake. `established` is called as soon as the session is
/// authenticated, before the last handshake frame goes out: from then on the connection counts
/// as a session (a listener never sheds it), even before the terminal has heard so.
fn handshake<T: FrameTransport + ?Sized>(
    transport: &mut T,
    endpoint: &Endpoint<'_>,
    clock: HandshakeClock,
    established: &dyn Fn(),
) -> Result<ServerSession, Error> {
    let Endpoint {
        identity,
        options,
        trust,
        ..
    } = *endpoint;
    let timeout = options.handshake_timeout;
    let reject = |transport: &mut T, r: Rejection| -> Error {
        if let Some(reply) = r.reply {
            let _ = transport.send(&reply);
        }
        r.error
    };
    let (hello, deadline) = match clock {
        HandshakeClock::FromHello => {
            let hello = transport.recv(timeout)?;
            (hello, Instant::now() + timeout)
        }
        HandshakeClock::Since(accepted) => {
            (recv_by(transport, accepted + timeout)?, accepted + timeout)
        }
    };
    let (state, reply) = match hs::accept(identity, &options.handshake, trust, &hello) {
        Ok(ok) => ok,
        Err(r) => return Err(reject(transport, r)),
    };
    transport.send(&reply)?;
    let first = recv_by(transport, deadline)?;
    match state.handle(&first) {
        Err(r) => Err(reject(transport, r)),
        Ok(ServerProgress::Established(session, reply)) => {
            established();
            transport.send(&reply)?;
            Ok(*session)
        }
        Ok(ServerProgress::AwaitFinal(state, reply)) => {
            transport.send(&reply)?;
            let last = recv_by(transport, deadline)?;
            match state.handle(&last, trust) {
                Err(r) => Err(reject(transport, r)),
                Ok((session, confirm)) => {
                    established();
                    transport.send(&confirm)?;
                    Ok(session)
                }
            }
        }
    }
}

/// The next frame, if it arrives by `deadline`.
fn recv_by<T: FrameTransport + ?Sized>(
    transport: &mut T,
    deadline: Instant,
) -> Result<Vec<u8>, TransportError> {
    transport.recv(deadline.saturating_duration_since(Instant::now()))
}

struct Driver<'a, T: ?Sized> {
    transport: &'a mut T,
    options: &'a ServeOptions,
    requests: u64,
    server: ServerSession,
    handler: &'a mut dyn Handler,
    ctx: &'a SessionContext,
}

impl<T: FrameTransport + ?Sized> Driver<'_, T> {
    fn summary(&self, end: SessionEnd) -> SessionSummary {
        SessionSummary {
            partition: self.server.partition.clone(),
            terminal: self.server.terminal,
            paired_now: self.server.paired_now,
            requests: self.requests,
            end,
        }
    }

    fn send(&mut self, packet: &Packet) -> Result<(), Error> {
        let frame = self.server.session.seal(packet)?;
        Ok(self.transport.send(&frame)?)
    }

    /// Tells the terminal the session ends because it broke the protocol, then returns `e`.
    fn violation(&mut self, e: Error) -> Error {
        let _ = self.send(&Packet::Close(CloseReason::ProtocolViolation));
        e
    }

    fn run(mut self) -> Result<SessionSummary, Error> {
        let mut last_request = Instant::now();
        let mut last_rx = Instant::now();
        loop {
            let now = Instant::now();
            let idle_at = last_request + self.options.idle_timeout;
            let dead_at = last_rx + self.options.dead_after;
            if now >= idle_at {
                let after_ms = self.options.idle_timeout.as_millis() as u64;
                let _ = self.send(&Packet::Close(CloseReason::IdleTimeout { after_ms }));
                return Ok(self.summary(SessionEnd::IdleTimeout));
            }
            if now >= dead_at {
                return Err(Error::LinkLost {
                    silent_for: now - last_rx,
                });
            }
            if let Some(reason) = self.handler.poll(self.ctx) {
                let _ = self.send(&Packet::Close(reason.clone()));
                return Ok(self.summary(SessionEnd::EndedByHsm(reason)));
            }
            let wait = (idle_at.min(dead_at) - now).min(POLL_INTERVAL);
            let frame = match self.transport.recv(wait) {
                Ok(frame) => frame,
                Err(TransportError::Timeout) => continue,
                Err(TransportError::Closed) => return Ok(self.summary(SessionEnd::Disconnected)),
                Err(TransportError::Frame(e)) => {
                    // A damaged frame: the counters can no longer agree. Say so and end.
                    let _ = self.send(&Packet::Close(CloseReason::LineFault));
                    return Err(TransportError::Frame(e).into());
                }
                Err(e) => return Err(e.into()),
            };
            last_rx = Instant::now();
            let packet = match self.server.session.open(&frame) {
                Ok(p) => p,
                Err(e) => return Err(self.violation(e)),
            };
            match packet {
                Packet::Request { id, body } => {
                    last_request = Instant::now();
                    self.requests += 1;
                    self.request(id, body)?;
                }
                Packet::KeepAlive => self.send(&Packet::KeepAliveAck)?,
                // Credit for a transfer that already ended (the terminal grants as it reads).
                Packet::KeepAliveAck | Packet::Credit { .. } => {}
                Packet::Close(reason) => return Ok(self.summary(SessionEnd::Closed(reason))),
                _ => {
                    return Err(self.violation(PeerMisbehaved::UnexpectedPacketFromTerminal.into()));
                }
            }
        }
    }

    fn request(&mut self, id: u64, body: Request) -> Result<(), Error> {
        let reply = match body {
            Request::Ping => Reply::Response(Ok(Response::Pong)),
            Request::SessionInfo => Reply::Response(Ok(Response::SessionInfo(SessionInfo {
                protocol_version: self.server.session.version(),
                partition: self.server.partition.clone(),
                hsm: self.server.hsm.fingerprint(),
                terminal: self.server.terminal.fingerprint(),
            }))),
            Request::LinkTest { bytes } if bytes > MAX_LINK_TEST_BYTES => {
                Reply::Response(Err(RemoteError::TooLarge {
                    what: Quantity::LinkTestBytes,
                    requested: bytes,
                    limit: MAX_LINK_TEST_BYTES,
                }))
            }
            Request::LinkTest { bytes } => Reply::Stream(Box::new(LinkTestStream {
                total: bytes,
                sent: 0,
                digest: Sha256::new(),
            })),
            Request::Admin(request) => self.handler.handle(self.ctx, request),
        };
        match reply {
            Reply::Response(body) => self.respond(id, body),
            Reply::Stream(stream) => self.stream(id, stream),
        }
    }

    /// Sends a response; one that would not fit in a packet becomes a typed error instead of
    /// ending the session (a handler's page limits should prevent it).
    fn respond(&mut self, id: u64, body: Result<Response, RemoteError>) -> Result<(), Error> {
        let packet = Packet::Response { id, body };
        let len = packet.encode().len();
        if len > MAX_PLAINTEXT {
            let body = Err(RemoteError::TooLarge {
                what: Quantity::ResponseBytes,
                requested: len as u64,
                limit: MAX_PLAINTEXT as u64,
            });
            return self.send(&Packet::Response { id, body });
        }
        self.send(&packet)
    }

    /// Sends a bulk answer under flow control: at most [`STREAM_WINDOW`] chunks ahead of the
    /// terminal's credit.
    fn stream(&mut self, id: u64, mut stream: Box<dyn ReplyStream>) -> Result<(), Error> {
        let mut credit = STREAM_WINDOW;
        let mut seq = 0u32;
        let mut chunk = Vec::with_capacity(CHUNK_SIZE);
        loop {
            chunk.clear();
            let more = match stream.fill(&mut chunk, CHUNK_SIZE) {
                Ok(more) => more,
                Err(e) => return self.send(&Packet::Response { id, body: Err(e) }),
            };
            debug_assert!(chunk.len() <= CHUNK_SIZE);
            if !chunk.is_empty() {
                while credit == 0 {
                    credit = self.await_credit(id)?;
                }
                self.send(&Packet::Data {
                    id,
                    seq,
                    bytes: std::mem::take(&mut chunk),
                })?;
                seq = seq.wrapping_add(1);
                credit -= 1;
            }
            if !more {
                break;
            }
        }
        let body = stream.finish();
        self.respond(id, body)
    }

    fn await_credit(&mut self, id: u64) -> Result<u32, Error> {
        let frame = match self.transport.recv(self.options.dead_after) {
            Ok(frame) => frame,
            Err(TransportError::Timeout) => {
                return Err(Error::LinkLost {
                    silent_for: self.options.dead_after,
                });
            }
            Err(e) => return Err(e.into()),
        };
        match self.server.session.open(&frame) {
            Ok(Packet::Credit { id: got, chunks }) if got == id => Ok(chunks.min(STREAM_WINDOW)),
            Ok(Packet::KeepAlive) => {
                self.send(&Packet::KeepAliveAck)?;
                Ok(0)
            }
            Ok(Packet::Close(reason)) => Err(Error::Closed(reason)),
            Ok(_) => Err(self.violation(PeerMisbehaved::UnexpectedPacketDuringTransfer.into())),
            Err(e) => Err(self.violation(e)),
        }
    }
}

/// Test data for a link test: a fixed pattern, and its digest for the terminal to check.
struct LinkTestStream {
    total: u64,
    sent: u64,
    digest: Sha256,
}

impl ReplyStream for LinkTestStream {
    fn fill(&mut self, chunk: &mut Vec<u8>, max: usize) -> Result<bool, RemoteError> {
        let n = (self.total - self.sent).min(max as u64) as usize;
        let start = chunk.len();
        chunk.extend((0..n).map(|i| {
            let at = self.sent as usize + i;
            at.wrapping_mul(2_654_435_761) as u8 ^ (i >> 8) as u8
        }));
        self.digest.update(&chunk[start..]);
        self.sent += n as u64;
        Ok(self.sent < self.total)
    }

    fn finish(self: Box<Self>) -> Result<Response, RemoteError> {
        Ok(Response::LinkTestDone {
            bytes: self.total,
            sha256: self.digest.finalize().into(),
        })
    }
}
