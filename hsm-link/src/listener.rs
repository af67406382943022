//! The TCP edge the HSM's listeners share.
//!
//! - [`AcceptLoop`]: an accept loop on its own thread that stops, and is woken to see that it
//!   must, when it is dropped. A thread blocked in `accept` does not look at a flag; stopping
//!   sets the flag and then opens one connection to the listener itself, so that `accept`
//!   returns and the loop sees the flag before it hands that connection to anyone.
//! - [`Connections`]: the connections a listener serves at once, a slot each. A slot is given
//!   back when its guard drops, also when the thread serving it panics. Nobody can take every
//!   slot by connecting and saying nothing: each source address has a cap, and when all slots
//!   are taken a new connection sheds one that has not finished its handshake (or hello) yet,
//!   the oldest of the source holding the most, so that connections that authenticated are
//!   never pushed out and a flood sheds itself before it sheds a terminal.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long stopping waits to reach its own listener (it is local: this is generous).
const WAKE_TIMEOUT: Duration = Duration::from_secs(1);

/// After a failed `accept` (out of file descriptors, say), the loop pauses this long instead of
/// spinning.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(10);

/// A listener's accept loop, running on its own thread until [`stop`](AcceptLoop::stop) or
/// drop. It only accepts; what happens to each connection is the caller's `on_accept`.
pub struct AcceptLoop {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl AcceptLoop {
    /// Hands every connection accepted on `listener` to `on_accept`, on a thread named
    /// `name`. `on_accept` runs on that thread: it should admit or drop the stream and return
    /// quickly (serve the connection on a thread of its own).
    pub fn spawn(
        listener: TcpListener,
        name: &str,
        mut on_accept: impl FnMut(TcpStream) + Send + 'static,
    ) -> std::io::Result<AcceptLoop> {
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if stopped.load(Ordering::SeqCst) {
                        break;
                    }
                    match stream {
                        Ok(stream) => on_accept(stream),
                        Err(_) => std::thread::sleep(ACCEPT_ERROR_PAUSE),
                    }
                }
            })?;
        Ok(AcceptLoop {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting: sets the flag, wakes the loop and waits for its thread. Connections
    /// already handed out are the caller's to end. Calling it again does nothing.
    pub fn stop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&wake_addr(self.addr), WAKE_TIMEOUT);
        let _ = thread.join();
    }
}

impl Drop for AcceptLoop {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A TCP stream whose reads must all be done by one deadline until it is lifted: how a
/// listener that reads its hello with plain `Read` (rather than through
/// [`serve_connection`](crate::server::serve_connection)) bounds the whole hello, not each read,
/// so that a peer trickling a byte at a time cannot stretch it. After the deadline a read fails
/// with [`std::io::ErrorKind::TimedOut`]; once lifted, each read waits at most `per_read`.
pub struct DeadlineStream {
    stream: TcpStream,
    deadline: Option<std::time::Instant>,
    per_read: Duration,
}

impl DeadlineStream {
    /// Reads on `stream` end by `deadline`, and each waits at most `per_read`.
    pub fn new(stream: TcpStream, deadline: std::time::Instant, per_read: Duration) -> Self {
        DeadlineStream {
            stream,
            deadline: Some(deadline),
            per_read,
        }
    }

    /// The hello is done: from now on only the per-read timeout applies.
    pub fn lift(&mut self) {
        self.deadline = None;
    }

    /// The stream inside.
    pub fn get_ref(&self) -> &TcpStream {
        &self.stream
    }
}

impl std::io::Read for DeadlineStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let wait = match self.deadline {
            None => self.per_read,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    return Err(std::io::ErrorKind::TimedOut.into());
                }
                left.min(self.per_read)
            }
        };
        self.stream.set_read_timeout(Some(wait))?;
        self.stream.read(buf)
    }
}

impl std::io::Write for DeadlineStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.stream.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.stream.flush()
    }
}

/// How many connections a listener serves at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections at once, from everyone.
    pub max_connections: usize,
    /// Connections at once from one source: one IPv4 address, or one IPv6 /64 (a single host
    /// commonly holds a whole /64).
    pub max_per_source: usize,
}

/// Why a connection got no slot (it is closed at once).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Its source address already holds [`ConnectionLimits::max_per_source`] connections.
    SourceFull,
    /// Every slot is held by a connection that finished its handshake.
    AllEstablished,
    /// The socket failed before it could be admitted (its peer already gone, say).
    Socket,
}

/// The connections a listener serves, one slot each, within [`ConnectionLimits`].
pub struct Connections {
    limits: ConnectionLimits,
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    /// By admission order: the smallest id is the oldest connection.
    open: BTreeMap<u64, Entry>,
    next_id: u64,
}

struct Entry {
    source: IpAddr,
    /// A second handle to the socket, to cut it when it is shed or the listener stops.
    socket: TcpStream,
    established: bool,
}

impl Connections {
    /// An empty table.
    pub fn new(limits: ConnectionLimits) -> Arc<Connections> {
        Arc::new(Connections {
            limits,
            table: Mutex::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // A panic while the table was locked leaves it consistent (every change is one
        // insert or remove), so a poisoned lock is still usable.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a slot for `stream`. When every slot is taken, a connection that has not finished
    /// its handshake is cut (its socket shut down, its slot freed at once) to make room: the
    /// oldest of the source that holds the most such connections. Only when every slot is
    /// established is the new connection refused.
    pub fn admit(self: &Arc<Self>, stream: &TcpStream) -> Result<Slot, Refused> {
        let source = stream.peer_addr().map_err(|_| Refused::Socket)?.ip();
        // A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d: one source either way.
        let source = source.to_canonical();
        let socket = stream.try_clone().map_err(|_| Refused::Socket)?;
        let mut table = self.lock();
        let key = source_key(source);
        let from_source = table
            .open
            .values()
            .filter(|e| source_key(e.source) == key)
            .count();
        if from_source >= self.limits.max_per_source {
            return Err(Refused::SourceFull);
        }
        if table.open.len() >= self.limits.max_connections {
            let pending = table
                .open
                .iter()
                .filter(|(_, e)| !e.established)
                .map(|(id, e)| (*id, source_key(e.source)));
            let victim = shed_candidate(pending).ok_or(Refused::AllEstablished)?;
            if let Some(shed) = table.open.remove(&victim) {
                let _ = shed.socket.shutdown(Shutdown::Both);
            }
        }
        let id = table.next_id;
        table.next_id += 1;
        table.open.insert(
            id,
            Entry {
                source,
                socket,
                established: false,
            },
        );
        Ok(Slot {
            id,
            source,
            connections: Arc::clone(self),
        })
    }

    /// Connections holding a slot now.
    pub fn len(&self) -> usize {
        self.lock().open.len()
    }

    /// Whether no connection holds a slot.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Shuts every open connection down (when the listener stops); their threads see the
    /// socket closed and end.
    pub fn shutdown_all(&self) {
        for entry in self.lock().open.values() {
            let _ = entry.socket.shutdown(Shutdown::Both);
        }
    }
}

/// A connection's slot, given back when dropped: also when the thread serving the connection
/// panics, so that no panic can leak a slot.
pub struct Slot {
    id: u64,
    source: IpAddr,
    connections: Arc<Connections>,
}

impl Slot {
    /// The connection's source address.
    pub fn source(&self) -> IpAddr {
        self.source
    }

    /// The connection finished its handshake (or hello): it is never shed to make room. A
    /// connection already shed stays shed.
    pub fn established(&self) {
        if let Some(entry) = self.connections.lock().open.get_mut(&self.id) {
            entry.established = true;
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.connections.lock().open.remove(&self.id);
    }
}

/// The connection to shed, from the connections still in their handshake (`(id, source)`, in
/// admission order): the oldest one of the source that holds the most of them. Shedding the
/// plain oldest would let a few hosts that reconnect quickly shed every terminal's handshake in
/// turn; this way a flood sheds its own connections first, and a terminal's one handshake is
/// shed only when no source holds more than one.
fn shed_candidate(pending: impl Iterator<Item = (u64, IpAddr)>) -> Option<u64> {
    let mut by_source: HashMap<IpAddr, (usize, u64)> = HashMap::new();
    for (id, source) in pending {
        by_source.entry(source).or_insert((0, id)).0 += 1;
    }
    by_source
        .into_values()
        // Most connections first; among equals, the oldest.
        .max_by(|(n, id), (m, other)| n.cmp(m).then(other.cmp(id)))
        .map(|(_, oldest)| oldest)
}

/// What counts as one source for [`ConnectionLimits::max_per_source`]: an IPv4 address, or
/// the /64 prefix of an IPv6 address.
fn source_key(source: IpAddr) -> IpAddr {
    match source {
        IpAddr::V4(_) => source,
        IpAddr::V6(ip) => IpAddr::V6(Ipv6Addr::from_bits(ip.to_bits() & !u128::from(u64::MAX))),
    }
}

/// Where to connect to reach a listener bound to `addr`: an unspecified address is reached on
/// the loopback address of its family.
fn wake_addr(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn connections_reach_the_callback_until_the_loop_is_stopped() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (tx, rx) = mpsc::channel();
        let mut accept = AcceptLoop::spawn(listener, "test-accept", move |stream| {
            let _ = tx.send(stream.peer_addr().unwrap());
        })
        .unwrap();
        let addr = accept.local_addr();
        let client = TcpStream::connect(addr).unwrap();
        let seen = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(seen, client.local_addr().unwrap());
        accept.stop();
        // The wake-up connection was not handed out, and the thread (with the callback and its
        // sender) is gone.
        assert!(matches!(
            rx.recv_timeout(Duration::from_secs(5)),
            Err(mpsc::RecvTimeoutError::Disconnected)
        ));
        accept.stop();
    }

    /// A connected pair on loopback: (the client's end, the server's accepted end).
    fn pair(listener: &TcpListener) -> (TcpStream, TcpStream) {
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (client, server)
    }

    fn is_cut(client: &mut TcpStream) -> bool {
        use std::io::{ErrorKind, Read};
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        match client.read(&mut [0u8; 1]) {
            Ok(n) => n == 0,
            Err(e) => e.kind() == ErrorKind::ConnectionReset,
        }
    }

    fn is_open(client: &mut TcpStream) -> bool {
        use std::io::{ErrorKind, Read};
        client
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        matches!(client.read(&mut [0u8; 1]), Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut))
    }

    #[test]
    fn a_full_table_sheds_the_oldest_unestablished_connection_and_keeps_established_ones() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let table = Connections::new(ConnectionLimits {
            max_connections: 3,
            max_per_source: 10,
        });
        let (mut c0, s0) = pair(&listener);
        let (mut c1, s1) = pair(&listener);
        let (mut c2, s2) = pair(&listener);
        let slot0 = table.admit(&s0).unwrap();
        let slot1 = table.admit(&s1).unwrap();
        let slot2 = table.admit(&s2).unwrap();
        slot0.established();
        // Full: the oldest connection still in its handshake (1) makes room, not 0.
        let (mut c3, s3) = pair(&listener);
        let slot3 = table.admit(&s3).unwrap();
        assert_eq!(table.len(), 3);
        assert!(
            is_cut(&mut c1),
            "the oldest unestablished connection is cut"
        );
        assert!(is_open(&mut c0) && is_open(&mut c2) && is_open(&mut c3));
        // Its guard dropping later frees nothing twice.
        drop(slot1);
        assert_eq!(table.len(), 3);
        slot2.established();
        slot3.established();
        let (_c4, s4) = pair(&listener);
        assert_eq!(table.admit(&s4).err(), Some(Refused::AllEstablished));
        drop(slot0);
        assert_eq!(table.len(), 2);
        assert!(table.admit(&s4).is_ok());
    }

    #[test]
    fn one_source_is_capped() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let table = Connections::new(ConnectionLimits {
            max_connections: 10,
            max_per_source: 2,
        });
        let (_c0, s0) = pair(&listener);
        let (_c1, s1) = pair(&listener);
        let (_c2, s2) = pair(&listener);
        let _slots = (table.admit(&s0).unwrap(), table.admit(&s1).unwrap());
        assert_eq!(table.admit(&s2).err(), Some(Refused::SourceFull));
        assert_eq!(table.len(), 2);
    }

    #[test]
    fn the_busiest_source_sheds_its_own_oldest_handshake() {
        let ip = |last: u8| IpAddr::V4(Ipv4Addr::new(127, 0, 0, last));
        // The terminal (.1) began first, but .2 holds more: .2's oldest goes.
        let pending = [(1, ip(1)), (2, ip(2)), (3, ip(3)), (4, ip(2)), (5, ip(3))];
        assert_eq!(shed_candidate(pending.into_iter()), Some(2));
        // Equal counts: the oldest overall.
        let pending = [(7, ip(3)), (8, ip(1)), (9, ip(2))];
        assert_eq!(shed_candidate(pending.into_iter()), Some(7));
        assert_eq!(shed_candidate(std::iter::empty()), None);
    }

    #[test]
    fn an_ipv6_host_counts_as_one_source_across_its_slash_64() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(source_key(a), source_key(b));
        assert_ne!(source_key(a), source_key(c));
        let (v4a, v4b): (IpAddr, IpAddr) =
            ("127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap());
        assert_ne!(source_key(v4a), source_key(v4b));
    }

    #[test]
    fn a_deadline_stream_ends_a_trickled_read_at_the_deadline_until_lifted() {
        use std::io::{ErrorKind, Read, Write};
        use std::time::Instant;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (mut peer, server) = pair(&listener);
        let per_read = Duration::from_millis(400);
        let deadline = Instant::now() + Duration::from_millis(300);
        let mut stream = DeadlineStream::new(server, deadline, per_read);
        // A byte every 100 ms: every read succeeds within its own timeout...
        let mut got = 0;
        let err = loop {
            peer.write_all(&[1]).unwrap();
            match stream.read(&mut [0u8; 16]) {
                Ok(n) => got += n,
                Err(e) => break e,
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        // ...but the reads together end at the deadline.
        assert!(matches!(
            err.kind(),
            ErrorKind::TimedOut | ErrorKind::WouldBlock
        ));
        assert!(Instant::now() >= deadline);
        assert!((1..=5).contains(&got), "{got} bytes before the deadline");
        stream.lift();
        peer.write_all(&[2]).unwrap();
        let mut rest = [0u8; 16];
        let n = stream.read(&mut rest).unwrap();
        assert_eq!(rest[n - 1], 2, "reads go on once the deadline is lifted");
    }

    #[test]
    fn a_panicking_holder_gives_its_slot_back() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let table = Connections::new(ConnectionLimits {
            max_connections: 1,
            max_per_source: 1,
        });
        let (_c0, s0) = pair(&listener);
        let slot = table.admit(&s0).unwrap();
        slot.established();
        let held = std::thread::spawn(move || {
            let _slot = slot;
            panic!("a handler bug");
        });
        assert!(held.join().is_err());
        assert!(table.is_empty());
        let (_c1, s1) = pair(&listener);
        assert!(table.admit(&s1).is_ok());
    }

    #[test]
    fn a_listener_on_the_unspecified_address_is_woken_on_loopback() {
        let listener = TcpListener::bind("0.0.0.0:0").unwrap();
        let accept = AcceptLoop::spawn(listener, "test-accept", drop).unwrap();
        assert_eq!(
            wake_addr(accept.local_addr()).ip(),
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        );
        // Dropping returns: the loop was woken and joined.
        drop(accept);
    }
}
