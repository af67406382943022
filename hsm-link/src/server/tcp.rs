//! The admin link's TCP listener: a thread per connection, within [`ConnectionLimits`].
//!
//! Nobody reaches an administration request without finishing the handshake, so what an
//! attacker without a pinned key or a pairing code can hold is a connection before its
//! handshake. Such a connection ends at the handshake deadline (counted from accept, however
//! slowly its bytes trickle), no source address holds more than its share of the slots, and
//! when every slot is taken a new connection sheds the oldest one still in its handshake:
//! idle sockets cannot lock terminals out, and a session that authenticated is never pushed
//! out.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Instant;

use super::{AdminService, Endpoint, HandshakeClock, ServeOptions, SessionSummary};
use crate::error::Error;
use crate::keys::StaticKeypair;
use crate::listener::{AcceptLoop, Connections, Slot};
use crate::transport::{StreamTransport, TransportError};
use crate::trust::TrustStore;

/// The default [`ConnectionLimits::max_connections`](crate::listener::ConnectionLimits) of a
/// [`TcpServer`]: a thread each, so that a flood of connections cannot exhaust the HSM's
/// threads.
pub const MAX_TCP_CONNECTIONS: usize = 32;

/// The default [`ConnectionLimits::max_per_source`](crate::listener::ConnectionLimits): a
/// terminal holds one or two connections; one host cannot take every slot.
pub const MAX_TCP_CONNECTIONS_PER_SOURCE: usize = 8;

/// A TCP listener serving sessions, one thread per connection (at most
/// [`ServeOptions::tcp_limits`]), until it is dropped. Sessions already running when it is
/// dropped run on to their end.
pub struct TcpServer {
    accept: AcceptLoop,
    connections: Arc<Connections>,
}

impl TcpServer {
    /// Binds `addr` and serves in the background. `on_session` hears how each connection ended
    /// (not a connection refused or shed before it was served, nor one whose handler panicked).
    pub fn spawn(
        addr: SocketAddr,
        identity: Arc<StaticKeypair>,
        options: ServeOptions,
        trust: Arc<dyn TrustStore>,
        admin: Arc<dyn AdminService>,
        on_session: impl Fn(Result<SessionSummary, Error>) + Send + Sync + 'static,
    ) -> std::io::Result<Self> {
        let connections = Connections::new(options.tcp_limits);
        let served = Arc::new(Served {
            identity,
            options,
            trust,
            admin,
            on_session: Box::new(on_session),
        });
        let table = Arc::clone(&connections);
        let accept = AcceptLoop::spawn(
            TcpListener::bind(addr)?,
            "tessera-link-accept",
            move |stream| {
                let accepted = Instant::now();
                let Ok(slot) = table.admit(&stream) else {
                    return; // dropping the stream closes it
                };
                let served = Arc::clone(&served);
                // If the thread cannot start, the closure (with the slot and stream) is
                // dropped: the slot is given back and the connection closed.
                let _ = std::thread::Builder::new()
                    .name("tessera-link-conn".into())
                    .spawn(move || served.run(stream, accepted, slot));
            },
        )?;
        Ok(TcpServer {
            accept,
            connections,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.accept.local_addr()
    }

    /// Connections holding a slot now (in their handshake or in a session).
    pub fn open_connections(&self) -> usize {
        self.connections.len()
    }
}

/// What every connection of a [`TcpServer`] is served with.
struct Served {
    identity: Arc<StaticKeypair>,
    options: ServeOptions,
    trust: Arc<dyn TrustStore>,
    admin: Arc<dyn AdminService>,
    on_session: Box<dyn Fn(Result<SessionSummary, Error>) + Send + Sync>,
}

impl Served {
    /// Serves one connection on its own thread. The slot is given back as the thread ends,
    /// also by unwinding if the handler panics.
    fn run(&self, stream: TcpStream, accepted: Instant, slot: Slot) {
        let result = self.serve(stream, accepted, &slot);
        drop(slot);
        (self.on_session)(result);
    }

    fn serve(
        &self,
        stream: TcpStream,
        accepted: Instant,
        slot: &Slot,
    ) -> Result<SessionSummary, Error> {
        let mut transport = StreamTransport::tcp(stream).map_err(TransportError::from)?;
        let endpoint = Endpoint {
            identity: &self.identity,
            options: &self.options,
            trust: &*self.trust,
            admin: &*self.admin,
        };
        endpoint.serve(&mut transport, HandshakeClock::Since(accepted), &|| {
            slot.established()
        })
    }
}
