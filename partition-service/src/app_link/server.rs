//! The listener: the backend trait the partition implements, one connection served from
//! preamble to close, and the blocking TCP server around it.

use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hsm_link::domain::PartitionId;
use hsm_link::listener::{AcceptLoop, ConnectionLimits, Connections, Slot};

use super::protocol::{AppError, AppReply, AppRequest, AppResponse};
use super::secret::{AppAuth, SecretText};
use super::wire::{self, WireError};
use super::{
    APP_HELLO_TIMEOUT, APP_IDLE_TIMEOUT, APP_PROTOCOL_VERSION, MAX_APP_CONNECTIONS,
    MAX_APP_CONNECTIONS_PER_SOURCE,
};
use crate::access::ApiProvider;

/// What the application listener asks of the partition. The backend checks everything that
/// depends on the partition (IP allow-list, API provider switch, credentials, configuration,
/// quota, log) and logs; the listener only frames, keeps the order (hello first), and passes
/// the peer's real address.
pub trait AppBackend: Send + Sync {
    /// Checks a hello. Returns the new permanent secret when a setup password was traded
    /// (sent to the client once), `None` for a permanent secret.
    fn authenticate(
        &self,
        connection: &mut AppConnection,
        peer: IpAddr,
        partition: &PartitionId,
        provider: ApiProvider,
        auth: &AppAuth,
    ) -> Result<Option<SecretText>, AppError>;

    /// Runs one request of an authenticated connection. Never called with
    /// [`AppRequest::Hello`].
    fn execute(
        &self,
        connection: &mut AppConnection,
        peer: IpAddr,
        partition: &PartitionId,
        provider: ApiProvider,
        request: AppRequest,
    ) -> Result<AppResponse, AppError>;
}

/// Why the listener ended a connection (other than the client closing it cleanly).
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The bytes on the link were wrong: no preamble, another version, an oversize, truncated
    /// or undecodable frame, or the socket failed.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The first request was not the hello.
    #[error("the client sent a request before the hello")]
    HelloFirst,
    /// The client sent a second hello.
    #[error("the client sent a second hello")]
    HelloRepeated,
    /// The backend refused the hello.
    #[error("the hello was refused: {0}")]
    Refused(AppError),
    /// The backend answered a request with a refusal that ends the connection (the
    /// application's credentials were reset since the hello); the listener closed it.
    #[error("the connection was closed after: {0}")]
    Closed(AppError),
}

/// Serves one application connection from its preamble to its end, on any byte stream.
/// `peer` is the client's address as the socket reports it (IPv4-mapped IPv6 addresses
/// already turned into IPv4).
///
/// The preamble is answered with this end's own; a wrong magic gets no answer. Every frame
/// gets one reply; a frame that cannot be read or decoded is answered with
/// [`AppError::Malformed`] (when the socket still takes it) and ends the connection, as does a
/// refused hello. `Ok` means the client closed the connection between frames.
pub fn serve_connection<S: Read + Write>(
    stream: &mut S,
    peer: IpAddr,
    backend: &dyn AppBackend,
) -> Result<(), ServeError> {
    serve_connection_with(stream, peer, backend, |_| {})
}

/// As [`serve_connection`]; `on_authenticated` runs once the backend accepted the hello, with
/// the stream (the TCP server lifts the hello's deadline and marks the slot as one never shed).
pub fn serve_connection_with<S: Read + Write>(
    stream: &mut S,
    peer: IpAddr,
    backend: &dyn AppBackend,
    on_authenticated: impl FnOnce(&mut S),
) -> Result<(), ServeError> {
    let version = wire::read_preamble(stream)?;
    wire::write_frame(stream, &wire::preamble())?;
    if version != APP_PROTOCOL_VERSION {
        return Err(WireError::Version {
            ours: APP_PROTOCOL_VERSION,
            theirs: version,
        }
        .into());
    }
    let Some(session) = AwaitingHello { peer }.handle(stream, backend)? else {
        return Ok(());
    };
    on_authenticated(stream);
    session.serve(stream, backend)
}

/// Reads the next request; answers and ends the connection on a bad frame.
fn next_request<S: Read + Write>(stream: &mut S) -> Result<Option<AppRequest>, ServeError> {
    let result = wire::read_frame(stream).and_then(|frame| {
        frame
            .map(|body| wire::decode::<AppRequest>(&body))
            .transpose()
    });
    match result {
        Ok(request) => Ok(request),
        Err(error) => {
            // Best effort: a closed or broken socket cannot take the refusal.
            if !matches!(error, WireError::Io(_)) {
                let _ = send(stream, Err(AppError::Malformed));
            }
            Err(error.into())
        }
    }
}

/// Sends one reply. A response that would break the client's bounds is replaced by
/// [`AppError::Internal`].
fn send<S: Write>(stream: &mut S, reply: AppReply) -> Result<(), WireError> {
    let reply = match reply {
        Ok(response) if !response.within_bounds() => Err(AppError::Internal),
        other => other,
    };
    let frame = match wire::encode_frame(&reply) {
        Ok(frame) => frame,
        Err(_) => wire::encode_frame(&AppReply::Err(AppError::Internal))?,
    };
    wire::write_frame(stream, &frame)
}

/// A connection past its preamble, before its hello.
struct AwaitingHello {
    peer: IpAddr,
}

impl AwaitingHello {
    /// Reads and checks the hello. `None` when the client closed before sending one.
    fn handle<S: Read + Write>(
        self,
        stream: &mut S,
        backend: &dyn AppBackend,
    ) -> Result<Option<Authenticated>, ServeError> {
        let Some(request) = next_request(stream)? else {
            return Ok(None);
        };
        let AppRequest::Hello {
            partition,
            provider,
            auth,
        } = request
        else {
            send(stream, Err(AppError::HelloFirst))?;
            return Err(ServeError::HelloFirst);
        };
        let mut connection = AppConnection::default();
        match backend.authenticate(&mut connection, self.peer, &partition, provider, &auth) {
            Ok(permanent_secret) => {
                send(stream, Ok(AppResponse::Welcome { permanent_secret }))?;
                Ok(Some(Authenticated {
                    peer: self.peer,
                    partition,
                    provider,
                    connection,
                }))
            }
            Err(error) => {
                send(stream, Err(error.clone()))?;
                Err(ServeError::Refused(error))
            }
        }
    }
}

/// A connection whose hello the backend accepted. Only this state reaches
/// [`AppBackend::execute`].
struct Authenticated {
    peer: IpAddr,
    partition: PartitionId,
    provider: ApiProvider,
    /// The backend's state for this connection (session objects, credentials epoch).
    connection: AppConnection,
}

impl Authenticated {
    fn serve<S: Read + Write>(
        mut self,
        stream: &mut S,
        backend: &dyn AppBackend,
    ) -> Result<(), ServeError> {
        // Session objects of this connection die with it (zeroized on drop).
        let connection = &mut self.connection;
        while let Some(request) = next_request(stream)? {
            if matches!(request, AppRequest::Hello { .. }) {
                send(stream, Err(AppError::Malformed))?;
                return Err(ServeError::HelloRepeated);
            }
            let reply = backend.execute(
                connection,
                self.peer,
                &self.partition,
                self.provider,
                request,
            );
            // A refusal that ends the session (the credentials were reset since the hello)
            // ends it here, at the server: the client is not trusted to go away.
            let closing = match &reply {
                Err(error) if error.closes_connection() => Some(error.clone()),
                _ => None,
            };
            send(stream, reply)?;
            if let Some(error) = closing {
                return Err(ServeError::Closed(error));
            }
        }
        Ok(())
    }
}

/// State the backend keeps for one authenticated connection: its session objects, which are
/// never stored and end (zeroized) with the connection.
#[derive(Debug, Default)]
pub struct AppConnection {
    /// The connection's session objects.
    pub session_objects: crate::application::SessionObjects,
    /// The credentials' epoch at the hello: a reset or trade since then ends the connection.
    pub credentials_epoch: u64,
}

/// How a connection ended, as the server's observer hears it.
pub type ConnectionEnd = Result<(), ServeError>;

type Observer = dyn Fn(IpAddr, &ConnectionEnd) + Send + Sync;

/// How an [`AppServer`] bounds what unauthenticated clients can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppServerOptions {
    /// Connections at once, and from one source address (an IPv6 /64 counts as one).
    pub limits: ConnectionLimits,
    /// How long the preamble and the hello may take together, counted from accept.
    pub hello_timeout: Duration,
}

impl Default for AppServerOptions {
    fn default() -> Self {
        AppServerOptions {
            limits: ConnectionLimits {
                max_connections: MAX_APP_CONNECTIONS,
                max_per_source: MAX_APP_CONNECTIONS_PER_SOURCE,
            },
            hello_timeout: APP_HELLO_TIMEOUT,
        }
    }
}

/// The application listener: a TCP accept loop serving each connection on its own thread,
/// within [`AppServerOptions`] (the accept loop and the slot table are the admin link's, from
/// `hsm_link::listener`). Nobody can hold the slots without credentials: the preamble and
/// hello must arrive within [`APP_HELLO_TIMEOUT`] of the accept however slowly their bytes
/// trickle, a source holds at most [`MAX_APP_CONNECTIONS_PER_SOURCE`] connections, and when
/// every slot is taken a new connection sheds the oldest one that has not said an accepted
/// hello (an authenticated connection is never shed). An authenticated connection idle for
/// [`APP_IDLE_TIMEOUT`] is closed. Dropping the server stops the accept loop and shuts the
/// open connections down (a request already inside the backend finishes first).
pub struct AppServer {
    accept: AcceptLoop,
    connections: Arc<Connections>,
}

impl AppServer {
    /// Binds `addr` (port 0 picks a free port) and serves in the background.
    pub fn spawn(addr: SocketAddr, backend: Arc<dyn AppBackend>) -> std::io::Result<AppServer> {
        AppServer::spawn_with_observer(addr, backend, |_, _| {})
    }

    /// As [`spawn`](AppServer::spawn), and `observer` hears how each connection ended (for
    /// the HSM's own log: refusals before the hello never reach the backend).
    pub fn spawn_with_observer(
        addr: SocketAddr,
        backend: Arc<dyn AppBackend>,
        observer: impl Fn(IpAddr, &ConnectionEnd) + Send + Sync + 'static,
    ) -> std::io::Result<AppServer> {
        AppServer::spawn_with_options(addr, backend, AppServerOptions::default(), observer)
    }

    /// As [`spawn_with_observer`](AppServer::spawn_with_observer), within `options`.
    pub fn spawn_with_options(
        addr: SocketAddr,
        backend: Arc<dyn AppBackend>,
        options: AppServerOptions,
        observer: impl Fn(IpAddr, &ConnectionEnd) + Send + Sync + 'static,
    ) -> std::io::Result<AppServer> {
        let connections = Connections::new(options.limits);
        let observer: Arc<Observer> = Arc::new(observer);
        let table = Arc::clone(&connections);
        let accept = AcceptLoop::spawn(TcpListener::bind(addr)?, "tessera-app-accept", {
            move |stream| {
                let accepted = Instant::now();
                let Ok(slot) = table.admit(&stream) else {
                    return; // over a limit: dropping the stream closes it
                };
                let backend = Arc::clone(&backend);
                let observer = Arc::clone(&observer);
                let deadline = accepted + options.hello_timeout;
                // If the thread cannot start, the closure (with the slot and stream) is
                // dropped: the slot is given back and the connection closed.
                let _ = std::thread::Builder::new()
                    .name("tessera-app-conn".into())
                    .spawn(move || serve_tcp(stream, deadline, &slot, &*backend, &*observer));
            }
        })?;
        Ok(AppServer {
            accept,
            connections,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.accept.local_addr()
    }

    /// Connections holding a slot now.
    pub fn open_connections(&self) -> usize {
        self.connections.len()
    }
}

impl Drop for AppServer {
    fn drop(&mut self) {
        self.accept.stop();
        self.connections.shutdown_all();
    }
}

/// A TCP stream whose reads end at the hello's deadline until the hello is accepted, and
/// after that at [`APP_IDLE_TIMEOUT`] per read.
struct Timed {
    stream: TcpStream,
    hello_deadline: Option<Instant>,
    /// The read timeout last set (set again only when it changes).
    timeout: Option<Duration>,
}

impl Read for Timed {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let timeout = match self.hello_deadline {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the hello did not arrive in time",
                    ));
                }
                left.min(APP_IDLE_TIMEOUT)
            }
            None => APP_IDLE_TIMEOUT,
        };
        if self.timeout != Some(timeout) {
            self.stream.set_read_timeout(Some(timeout))?;
            self.timeout = Some(timeout);
        }
        self.stream.read(buf)
    }
}

impl Write for Timed {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.stream.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.stream.flush()
    }
}

fn serve_tcp(
    stream: TcpStream,
    hello_deadline: Instant,
    slot: &Slot,
    backend: &dyn AppBackend,
    observer: &Observer,
) {
    let Ok(peer) = stream.peer_addr() else {
        return;
    };
    // A dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d; allow-lists name them as
    // a.b.c.d.
    let peer = peer.ip().to_canonical();
    if stream.set_write_timeout(Some(APP_IDLE_TIMEOUT)).is_err() {
        return;
    }
    let _ = stream.set_nodelay(true);
    let mut timed = Timed {
        stream,
        hello_deadline: Some(hello_deadline),
        timeout: None,
    };
    let end = serve_connection_with(&mut timed, peer, backend, |timed: &mut Timed| {
        timed.hello_deadline = None;
        slot.established();
    });
    let _ = timed.stream.shutdown(Shutdown::Write);
    observer(peer, &end);
}
