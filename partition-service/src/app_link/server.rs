//! The listener: the backend trait the partition implements, one connection served from
//! preamble to close, and the blocking TCP server around it.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use hsm_link::domain::PartitionId;

use super::protocol::{AppError, AppReply, AppRequest, AppResponse};
use super::secret::{AppAuth, SecretText};
use super::wire::{self, WireError};
use super::{APP_IDLE_TIMEOUT, APP_PROTOCOL_VERSION, MAX_APP_CONNECTIONS};
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

/// The application listener: a TCP accept loop serving each connection on its own thread, at
/// most [`MAX_APP_CONNECTIONS`] at once (more are closed at once). A connection idle for
/// [`APP_IDLE_TIMEOUT`] is closed. Dropping the server stops the accept loop and shuts the
/// open connections down (a request already inside the backend finishes first).
pub struct AppServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    connections: Arc<Connections>,
    thread: Option<JoinHandle<()>>,
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
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(Connections::default());
        let observer: Arc<Observer> = Arc::new(observer);
        let thread = std::thread::Builder::new()
            .name("tessera-app-accept".into())
            .spawn({
                let stop = Arc::clone(&stop);
                let connections = Arc::clone(&connections);
                move || accept_loop(listener, &stop, &connections, &backend, &observer)
            })?;
        Ok(AppServer {
            addr,
            stop,
            connections,
            thread: Some(thread),
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for AppServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect_timeout(&wake_addr(self.addr), Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        for stream in self.connections.lock().values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// Where to connect to reach a listener bound to `addr` (an unspecified address is reached on
/// the loopback address of its family).
fn wake_addr(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

fn accept_loop(
    listener: TcpListener,
    stop: &AtomicBool,
    connections: &Arc<Connections>,
    backend: &Arc<dyn AppBackend>,
    observer: &Arc<Observer>,
) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let stream = match stream {
            Ok(stream) => stream,
            Err(_) => {
                // Out of file descriptors and the like: do not spin.
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let Some(slot) = Connections::admit(connections, &stream) else {
            continue; // over the limit: dropping the stream closes it
        };
        let backend = Arc::clone(backend);
        let observer = Arc::clone(observer);
        // If the thread cannot start, the closure (and with it the slot and stream) is dropped.
        let _ = std::thread::Builder::new()
            .name("tessera-app-conn".into())
            .spawn(move || {
                let _slot = slot;
                serve_tcp(stream, &*backend, &*observer);
            });
    }
}

fn serve_tcp(mut stream: TcpStream, backend: &dyn AppBackend, observer: &Observer) {
    let Ok(peer) = stream.peer_addr() else {
        return;
    };
    // A dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d; allow-lists name them as
    // a.b.c.d.
    let peer = peer.ip().to_canonical();
    if stream.set_read_timeout(Some(APP_IDLE_TIMEOUT)).is_err()
        || stream.set_write_timeout(Some(APP_IDLE_TIMEOUT)).is_err()
    {
        return;
    }
    let _ = stream.set_nodelay(true);
    let end = serve_connection(&mut stream, peer, backend);
    let _ = stream.shutdown(Shutdown::Write);
    observer(peer, &end);
}

/// The open connections (a handle to each, to shut them down when the server stops).
#[derive(Default)]
struct Connections {
    open: Mutex<HashMap<u64, TcpStream>>,
    next_id: AtomicU64,
}

impl Connections {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, TcpStream>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a slot for `stream`, or `None` when all are taken.
    fn admit(this: &Arc<Connections>, stream: &TcpStream) -> Option<Slot> {
        let handle = stream.try_clone().ok()?;
        let mut open = this.lock();
        if open.len() >= MAX_APP_CONNECTIONS {
            return None;
        }
        let id = this.next_id.fetch_add(1, Ordering::Relaxed);
        open.insert(id, handle);
        Some(Slot {
            id,
            connections: Arc::clone(this),
        })
    }
}

/// A taken connection slot, given back when dropped (also when its thread panics).
struct Slot {
    id: u64,
    connections: Arc<Connections>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.connections.lock().remove(&self.id);
    }
}
