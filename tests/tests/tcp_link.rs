//! The admin link over real TCP on loopback.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use hsm_link::Error;
use hsm_link::client::{self, ConnectOptions};
use hsm_link::domain::PartitionId;
use hsm_link::frame::FrameError;
use hsm_link::handshake::client::ClientMode;
use hsm_link::hello::Refusal;
use hsm_link::keys::StaticKeypair;
use hsm_link::message::{Request, Response};
use hsm_link::pairing::PairingCode;
use hsm_link::server::{ServeOptions, SessionSummary, TcpServer};
use hsm_link::transport::{StreamTransport, TransportError};
use hsm_link::trust::MemoryTrustStore;

struct Fixture {
    server: TcpServer,
    ended: Mutex<mpsc::Receiver<Result<SessionSummary, Error>>>,
    partition: PartitionId,
    trust: Arc<MemoryTrustStore>,
    hsm: Arc<StaticKeypair>,
}

fn fixture() -> Fixture {
    let partition = PartitionId::new("tcp-p").unwrap();
    let trust = Arc::new(MemoryTrustStore::default());
    trust.add_partition(partition.clone());
    let hsm = Arc::new(StaticKeypair::generate().unwrap());
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let server = TcpServer::spawn(
        "127.0.0.1:0".parse().unwrap(),
        Arc::clone(&hsm),
        ServeOptions {
            handshake_timeout: Duration::from_secs(5),
            ..ServeOptions::default()
        },
        trust.clone(),
        Arc::new(hsm_link::server::NoAdministration),
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
    ) -> Result<client::Connection<impl hsm_link::transport::FrameTransport>, Error> {
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

#[test]
fn a_flood_of_idle_connections_is_capped() {
    use hsm_link::server::MAX_TCP_CONNECTIONS;
    let f = fixture();
    let idle: Vec<TcpStream> = (0..MAX_TCP_CONNECTIONS)
        .map(|_| TcpStream::connect(f.server.local_addr()).unwrap())
        .collect();
    // Wait until the server has taken all of them (each waits for a hello).
    std::thread::sleep(Duration::from_millis(200));
    let mut extra = TcpStream::connect(f.server.local_addr()).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut buf = [0u8; 1];
    assert!(
        matches!(extra.read(&mut buf), Ok(0)),
        "the connection over the cap is closed at once"
    );
    drop(idle);
    // Once the idle ones are gone, a terminal is served again.
    for _ in 0..MAX_TCP_CONNECTIONS {
        assert!(f.next_end().is_err());
    }
    let terminal = StaticKeypair::generate().unwrap();
    let code = f.trust.issue_pairing_code(&f.partition).unwrap();
    let mut conn = f.connect(&terminal, ClientMode::Pairing(code)).unwrap();
    assert_eq!(conn.call(Request::Ping).unwrap(), Response::Pong);
}
