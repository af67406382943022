//! The admin link over real TCP on loopback.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use hsm_link::Error;
use hsm_link::client::{self, ConnectOptions};
use hsm_link::domain::PartitionId;
use hsm_link::frame::FrameError;
use hsm_link::handshake::client::{ClientMode, ClientOptions};
use hsm_link::hello::Refusal;
use hsm_link::keys::StaticKeypair;
use hsm_link::listener::ConnectionLimits;
use hsm_link::message::{AdminRequest, Request, Response};
use hsm_link::pairing::PairingCode;
use hsm_link::server::{
    AdminService, Handler, MAX_TCP_CONNECTIONS, MAX_TCP_CONNECTIONS_PER_SOURCE, NoAdministration,
    Reply, ServeOptions, SessionContext, SessionSummary, TcpServer,
};
use hsm_link::transport::{FrameTransport, StreamTransport, TransportError};
use hsm_link::trust::MemoryTrustStore;

struct Fixture {
    server: TcpServer,
    ended: Mutex<mpsc::Receiver<Result<SessionSummary, Error>>>,
    partition: PartitionId,
    trust: Arc<MemoryTrustStore>,
    hsm: Arc<StaticKeypair>,
}

fn fixture() -> Fixture {
    fixture_with(
        ServeOptions {
            handshake_timeout: Duration::from_secs(5),
            ..ServeOptions::default()
        },
        Arc::new(NoAdministration),
    )
}

fn fixture_with(options: ServeOptions, admin: Arc<dyn AdminService>) -> Fixture {
    let partition = PartitionId::new("tcp-p").unwrap();
    let trust = Arc::new(MemoryTrustStore::default());
    trust.add_partition(partition.clone());
    let hsm = Arc::new(StaticKeypair::generate().unwrap());
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let server = TcpServer::spawn(
        "127.0.0.1:0".parse().unwrap(),
        Arc::clone(&hsm),
        options,
        trust.clone(),
        admin,
        move |r| {
            let _ = tx.lock().unwrap().send(r);
        },
    )
    .unwrap();
    Fixture {
        server,
        ended: Mutex::new(rx),
        partition,
        trust,
        hsm,
    }
}

impl Fixture {
    fn connect(
        &self,
        terminal: &StaticKeypair,
        mode: ClientMode,
    ) -> Result<client::Connection<impl FrameTransport + use<>>, Error> {
        let stream = TcpStream::connect(self.server.local_addr()).unwrap();
        let t = StreamTransport::tcp(stream).unwrap();
        client::connect(
            t,
            terminal,
            self.partition.clone(),
            mode,
            ConnectOptions::default(),
        )
    }

    fn next_end(&self) -> Result<SessionSummary, Error> {
        self.ended
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(10))
            .expect("the server reports every session")
    }
}

#[test]
fn pairing_then_pinned_session_over_loopback_tcp() {
    let f = fixture();
    let terminal = StaticKeypair::generate().unwrap();
    let code = f.trust.issue_pairing_code(&f.partition).unwrap();
    let conn = f.connect(&terminal, ClientMode::Pairing(code)).unwrap();
    assert_eq!(conn.session().remote_key(), f.hsm.public());
    conn.close().unwrap();
    assert!(f.next_end().unwrap().paired_now);

    let mut conn = f
        .connect(
            &terminal,
            ClientMode::Pinned {
                hsm: f.hsm.public(),
            },
        )
        .unwrap();
    assert_eq!(conn.call(Request::Ping).unwrap(), Response::Pong);
    assert_eq!(conn.link_test(3 << 20).unwrap().bytes, 3 << 20);
    conn.close().unwrap();
    assert_eq!(f.next_end().unwrap().requests, 2);
}

#[test]
fn a_wrong_code_over_tcp_is_refused_with_attempts_left() {
    let f = fixture();
    let terminal = StaticKeypair::generate().unwrap();
    f.trust.issue_pairing_code(&f.partition).unwrap();
    let err = f
        .connect(
            &terminal,
            ClientMode::Pairing(PairingCode::generate().unwrap()),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Refused(Refusal::PairingFailed { attempts_left: 2 })
        ),
        "{err}"
    );
    assert!(f.next_end().is_err());
}

#[test]
fn an_oversize_length_is_refused_and_the_server_keeps_serving() {
    let f = fixture();
    let mut raw = TcpStream::connect(f.server.local_addr()).unwrap();
    raw.write_all(&u32::MAX.to_be_bytes()).unwrap();
    match f.next_end() {
        Err(Error::Transport(TransportError::Frame(FrameError::Oversize { len, .. }))) => {
            assert_eq!(len, u32::MAX as usize)
        }
        other => panic!("{other:?}"),
    }
    // The server closed that connection without reading a body...
    raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 16];
    assert!(matches!(raw.read(&mut buf), Ok(0) | Err(_)));

    // ...and random garbage on another connection gets a typed error too...
    let mut raw = TcpStream::connect(f.server.local_addr()).unwrap();
    let mut garbage = vec![0, 0, 0, 40];
    garbage.extend((0..40u8).map(|i| i.wrapping_mul(97)));
    raw.write_all(&garbage).unwrap();
    assert!(f.next_end().is_err());

    // ...while a well-behaved terminal is still served.
    let terminal = StaticKeypair::generate().unwrap();
    let code = f.trust.issue_pairing_code(&f.partition).unwrap();
    let mut conn = f.connect(&terminal, ClientMode::Pairing(code)).unwrap();
    assert_eq!(conn.call(Request::Ping).unwrap(), Response::Pong);
}

#[test]
fn a_truncated_frame_then_hang_up_is_reported_not_waited_on() {
    let f = fixture();
    let mut raw = TcpStream::connect(f.server.local_addr()).unwrap();
    raw.write_all(&[0, 0, 0, 200, 1, 2, 3]).unwrap();
    drop(raw);
    assert!(matches!(
        f.next_end(),
        Err(Error::Transport(TransportError::Closed))
    ));
}

// --- Held connections: nothing a peer without credentials holds keeps a terminal out. ---

/// A connection to `to` from the loopback address `source` (any of 127.0.0.0/8 reaches a
/// listener on 127.0.0.1), so that one test can play several hosts.
fn connect_from(source: [u8; 4], to: SocketAddr) -> TcpStream {
    use rustix::net::{AddressFamily, SocketType, bind, connect, socket};
    let fd = socket(AddressFamily::INET, SocketType::STREAM, None).unwrap();
    bind(&fd, &SocketAddr::from((source, 0))).unwrap();
    connect(&fd, &to).unwrap();
    TcpStream::from(fd)
}

/// Whether the server closed `stream` (rather than leaving it open for `within`).
fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).unwrap();
    match stream.read(&mut [0u8; 1]) {
        Ok(n) => n == 0,
        Err(e) => e.kind() == ErrorKind::ConnectionReset,
    }
}

/// Waits (at most five seconds) until the server holds `n` connections.
fn wait_for_open(f: &Fixture, n: usize) {
    let until = Instant::now() + Duration::from_secs(5);
    while f.server.open_connections() != n {
        assert!(
            Instant::now() < until,
            "the server holds {} connections, not {n}",
            f.server.open_connections()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Options under which only the limits act: the handshake deadline is far away.
fn patient() -> ServeOptions {
    ServeOptions {
        handshake_timeout: Duration::from_secs(60),
        ..ServeOptions::default()
    }
}

fn pair_and_ping(f: &Fixture) -> StaticKeypair {
    let terminal = StaticKeypair::generate().unwrap();
    let code = f.trust.issue_pairing_code(&f.partition).unwrap();
    let mut conn = f.connect(&terminal, ClientMode::Pairing(code)).unwrap();
    assert!(conn.paired_now());
    assert_eq!(conn.call(Request::Ping).unwrap(), Response::Pong);
    conn.close().unwrap();
    terminal
}

#[test]
fn idle_sockets_in_every_slot_do_not_keep_a_terminal_from_pairing() {
    let f = fixture_with(patient(), Arc::new(NoAdministration));
    let addr = f.server.local_addr();
    // Four hosts, each at its cap, fill every slot and say nothing.
    let mut idle: Vec<TcpStream> = (0..MAX_TCP_CONNECTIONS)
        .map(|i| {
            connect_from(
                [127, 0, 0, 2 + (i / MAX_TCP_CONNECTIONS_PER_SOURCE) as u8],
                addr,
            )
        })
        .collect();
    wait_for_open(&f, MAX_TCP_CONNECTIONS);
    // A terminal still pairs, and then connects with its pinned key...
    let terminal = pair_and_ping(&f);
    let mut conn = f
        .connect(
            &terminal,
            ClientMode::Pinned {
                hsm: f.hsm.public(),
            },
        )
        .unwrap();
    assert_eq!(conn.call(Request::Ping).unwrap(), Response::Pong);
    // ...because the oldest connection that had not finished a handshake made room (the
    // pinned connection took the pairing's freed slot, or shed the next oldest).
    assert!(closed_by_server(&mut idle[0], Duration::from_secs(5)));
    let newest = idle.last_mut().unwrap();
    assert!(!closed_by_server(newest, Duration::from_millis(100)));
    conn.close().unwrap();
}

#[test]
fn sessions_that_finished_their_handshake_are_never_shed() {
    let options = ServeOptions {
        tcp_limits: ConnectionLimits {
            max_connections: 2,
            max_per_source: 8,
        },
        ..patient()
    };
    let f = fixture_with(options, Arc::new(NoAdministration));
    let terminal = pair_and_ping(&f);
    wait_for_open(&f, 0);
    let pinned = || ClientMode::Pinned {
        hsm: f.hsm.public(),
    };
    let mut a = f.connect(&terminal, pinned()).unwrap();
    let mut b = f.connect(&terminal, pinned()).unwrap();
    wait_for_open(&f, 2);
    // Every slot holds an authenticated session: a new connection is refused, not them.
    let mut extra = connect_from([127, 0, 0, 2], f.server.local_addr());
    assert!(closed_by_server(&mut extra, Duration::from_secs(5)));
    assert_eq!(a.call(Request::Ping).unwrap(), Response::Pong);
    assert_eq!(b.call(Request::Ping).unwrap(), Response::Pong);
}

#[test]
fn one_source_is_capped_and_another_still_gets_in() {
    let f = fixture_with(patient(), Arc::new(NoAdministration));
    let addr = f.server.local_addr();
    let _held: Vec<TcpStream> = (0..MAX_TCP_CONNECTIONS_PER_SOURCE)
        .map(|_| connect_from([127, 0, 0, 2], addr))
        .collect();
    wait_for_open(&f, MAX_TCP_CONNECTIONS_PER_SOURCE);
    let mut over = connect_from([127, 0, 0, 2], addr);
    assert!(
        closed_by_server(&mut over, Duration::from_secs(5)),
        "a connection over its source's cap is closed at once"
    );
    assert_eq!(f.server.open_connections(), MAX_TCP_CONNECTIONS_PER_SOURCE);
    // Another host is not held back by that one.
    let stream = connect_from([127, 0, 0, 3], addr);
    let terminal = StaticKeypair::generate().unwrap();
    let code = f.trust.issue_pairing_code(&f.partition).unwrap();
    let mut conn = client::connect(
        StreamTransport::tcp(stream).unwrap(),
        &terminal,
        f.partition.clone(),
        ClientMode::Pairing(code),
        ConnectOptions::default(),
    )
    .unwrap();
    assert_eq!(conn.call(Request::Ping).unwrap(), Response::Pong);
}

#[test]
fn a_slowloris_is_cut_at_the_handshake_deadline_not_per_step() {
    let deadline = Duration::from_secs(2);
    let f = fixture_with(
        ServeOptions {
            handshake_timeout: deadline,
            ..ServeOptions::default()
        },
        Arc::new(NoAdministration),
    );
    f.trust.issue_pairing_code(&f.partition).unwrap();
    let terminal = StaticKeypair::generate().unwrap();
    // A valid pairing hello, so that the server moves on to the handshake.
    let code = PairingCode::generate().unwrap();
    let (_, hello) = hsm_link::handshake::client::start(
        &terminal,
        f.partition.clone(),
        ClientMode::Pairing(code),
        ClientOptions::default(),
    );
    let mut wire = (hello.len() as u32).to_be_bytes().to_vec();
    wire.extend_from_slice(&hello);
    let mut stream = TcpStream::connect(f.server.local_addr()).unwrap();
    let started = Instant::now();
    let reader = {
        let mut stream = stream.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut sink = [0u8; 256];
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
            started.elapsed()
        })
    };
    // The hello trickles in over three quarters of the deadline (each piece well inside any
    // per-read timeout), then the first handshake message trickles a byte at a time.
    let pieces = wire.chunks(wire.len().div_ceil(15));
    let pause = deadline * 3 / 4 / 15;
    let handshake_start = [0, 0, 0, 49, 0x03];
    for piece in pieces
        .chain(handshake_start.chunks(1))
        .chain([[0u8].as_slice(); 40])
    {
        if reader.is_finished() || stream.write_all(piece).is_err() {
            break;
        }
        std::thread::sleep(pause);
    }
    let cut_after = reader.join().unwrap();
    assert!(
        cut_after >= deadline,
        "cut before the deadline: {cut_after:?}"
    );
    // With a timeout per step it would have run to 1.5 + 2 seconds.
    assert!(
        cut_after < deadline + Duration::from_secs(1),
        "cut only after {cut_after:?}"
    );
    assert!(matches!(
        f.next_end(),
        Err(Error::Transport(TransportError::Timeout))
    ));
}

/// Administration that crashes: a bug in a handler must not cost the listener a slot.
struct Panicking;

impl AdminService for Panicking {
    fn session(&self, _ctx: &SessionContext) -> Box<dyn Handler> {
        Box::new(Panicking)
    }
}

impl Handler for Panicking {
    fn handle(&mut self, _ctx: &SessionContext, _request: AdminRequest) -> Reply {
        panic!("a handler bug (this panic is the test's, not a failure)");
    }
}

#[test]
fn a_panicking_handler_does_not_leak_its_slot() {
    let limits = ConnectionLimits {
        max_connections: 2,
        max_per_source: 2,
    };
    let f = fixture_with(
        ServeOptions {
            tcp_limits: limits,
            ..ServeOptions::default()
        },
        Arc::new(Panicking),
    );
    let terminal = pair_and_ping(&f);
    for _ in 0..2 * limits.max_connections {
        let mut conn = f
            .connect(
                &terminal,
                ClientMode::Pinned {
                    hsm: f.hsm.public(),
                },
            )
            .unwrap();
        assert!(conn.call(Request::Admin(AdminRequest::GetConfig)).is_err());
        wait_for_open(&f, 0);
    }
    let mut conn = f
        .connect(
            &terminal,
            ClientMode::Pinned {
                hsm: f.hsm.public(),
            },
        )
        .unwrap();
    assert_eq!(conn.call(Request::Ping).unwrap(), Response::Pong);
}

#[test]
fn a_terminal_pairs_and_works_through_a_flood_of_idle_and_garbage_connections() {
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let f = fixture();
    let addr = f.server.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let made = Arc::new(AtomicUsize::new(0));
    // Eight hosts, each reconnecting every 10 ms: some connections stay idle, some send an
    // oversize length, some a few garbage bytes. At most 1,000 connections per host.
    let flood: Vec<_> = (2..10u8)
        .map(|host| {
            let (stop, made) = (Arc::clone(&stop), Arc::clone(&made));
            std::thread::spawn(move || {
                let mut held = VecDeque::new();
                for i in 0..1000u32 {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let mut s = connect_from([127, 0, 0, host], addr);
                    made.fetch_add(1, Ordering::SeqCst);
                    match i % 3 {
                        0 => held.push_back(s),
                        1 => drop(s.write_all(&u32::MAX.to_be_bytes())),
                        _ => drop(s.write_all(&[0, 0, 0, 9, 0x01, 0xde, 0xad])),
                    }
                    if held.len() > 12 {
                        held.pop_front();
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        })
        .collect();
    wait_for_open(&f, MAX_TCP_CONNECTIONS);

    let before = made.load(Ordering::SeqCst);
    let mut sessions = Vec::new();
    for _ in 0..5 {
        let terminal = pair_and_ping(&f);
        let mut conn = f
            .connect(
                &terminal,
                ClientMode::Pinned {
                    hsm: f.hsm.public(),
                },
            )
            .unwrap();
        assert_eq!(conn.call(Request::Ping).unwrap(), Response::Pong);
        assert_eq!(conn.link_test(1 << 20).unwrap().bytes, 1 << 20);
        sessions.push(conn);
    }
    let during = made.load(Ordering::SeqCst) - before;
    stop.store(true, Ordering::SeqCst);
    for host in flood {
        host.join().unwrap();
    }
    assert!(
        during >= 8,
        "the flood went on while the terminals worked ({during} connections)"
    );
    // The sessions outlived the flood, and the flood left nothing behind.
    for mut conn in sessions {
        assert_eq!(conn.call(Request::Ping).unwrap(), Response::Pong);
        conn.close().unwrap();
    }
    wait_for_open(&f, 0);
}

#[test]
fn hosts_that_reconnect_quickly_shed_their_own_handshakes_before_a_terminals() {
    let f = fixture_with(patient(), Arc::new(NoAdministration));
    let addr = f.server.local_addr();
    let terminal = pair_and_ping(&f);
    wait_for_open(&f, 0);
    // The terminal starts a pinned handshake: its hello is accepted...
    let mut line = StreamTransport::tcp(TcpStream::connect(addr).unwrap()).unwrap();
    let mode = ClientMode::Pinned {
        hsm: f.hsm.public(),
    };
    let (state, hello) = hsm_link::handshake::client::start(
        &terminal,
        f.partition.clone(),
        mode,
        ClientOptions::default(),
    );
    line.send(&hello).unwrap();
    let wait = Duration::from_secs(5);
    let (state, first) = state.handle(&line.recv(wait).unwrap()).unwrap();
    // ...and before it sends its first message, eight hosts fill every other slot and go on
    // connecting: each new connection sheds one that has not finished a handshake.
    let sources = |i: usize| [127, 0, 0, 2 + (i % 8) as u8];
    let mut idle: Vec<TcpStream> = (0..MAX_TCP_CONNECTIONS - 1)
        .map(|i| connect_from(sources(i), addr))
        .collect();
    wait_for_open(&f, MAX_TCP_CONNECTIONS);
    for i in 0..2 * MAX_TCP_CONNECTIONS {
        idle.push(connect_from(sources(i), addr));
    }
    wait_for_open(&f, MAX_TCP_CONNECTIONS);
    // The terminal's handshake, the oldest of all, was never the one shed: it completes.
    line.send(&first).unwrap();
    let reply = line
        .recv(wait)
        .expect("the terminal's connection was not shed");
    assert!(matches!(
        state.handle(&reply).unwrap(),
        hsm_link::handshake::client::ClientProgress::Established(_)
    ));
}
