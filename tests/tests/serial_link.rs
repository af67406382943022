//! The admin link over a real serial line: two linked pseudo-terminals from socat.

use std::io::Write;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use hsm_link::Error;
use hsm_link::client::{self, ConnectOptions};
use hsm_link::domain::PartitionId;
use hsm_link::handshake::client::ClientMode;
use hsm_link::keys::StaticKeypair;
use hsm_link::message::{CloseReason, Request, Response};
use hsm_link::server::{self, ServeOptions, SessionSummary};
use hsm_link::transport::{StreamTransport, TransportError};
use hsm_link::trust::MemoryTrustStore;
use tessera_tests::SocatPair;

const BAUD: u32 = 115_200;

/// Serves sessions on one serial line, one after another as a real HSM's serial port would,
/// reporting how each ended, until the receiver is dropped or the line goes away.
fn serve_line(
    path: String,
    identity: Arc<StaticKeypair>,
    trust: Arc<MemoryTrustStore>,
) -> mpsc::Receiver<Result<SessionSummary, Error>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut line = StreamTransport::open_serial(&path, BAUD).expect("open HSM end");
        let options = ServeOptions {
            handshake_timeout: Duration::from_secs(5),
            ..ServeOptions::default()
        };
        loop {
            let result = server::serve_connection(
                &mut line,
                &identity,
                &options,
                &*trust,
                &server::NoAdministration,
            );
            match result {
                // Waiting for a hello that did not come is not a session.
                Err(Error::Transport(TransportError::Timeout)) => continue,
                Err(Error::Transport(TransportError::Closed | TransportError::Io(_))) => return,
                _ => {}
            }
            if tx.send(result).is_err() {
                return;
            }
        }
    });
    rx
}

fn options() -> ConnectOptions {
    ConnectOptions {
        handshake_timeout: Duration::from_secs(5),
        response_timeout: Duration::from_secs(5),
        ..ConnectOptions::default()
    }
}

#[test]
fn pairing_pinned_sessions_and_a_transfer_over_a_serial_line() {
    let line = SocatPair::start().unwrap();
    let partition = PartitionId::new("serial-p").unwrap();
    let trust = Arc::new(MemoryTrustStore::default());
    trust.add_partition(partition.clone());
    let code = trust.issue_pairing_code(&partition).unwrap();
    let hsm = Arc::new(StaticKeypair::generate().unwrap());
    let ended = serve_line(line.b_str().into(), Arc::clone(&hsm), Arc::clone(&trust));
    let terminal = StaticKeypair::generate().unwrap();

    let t = StreamTransport::open_serial(line.a_str(), BAUD).unwrap();
    let conn = client::connect(
        t,
        &terminal,
        partition.clone(),
        ClientMode::Pairing(code),
        options(),
    )
    .unwrap();
    let pinned = conn.session().remote_key();
    assert_eq!(pinned, hsm.public());
    conn.close().unwrap();
    let first = ended
        .recv_timeout(Duration::from_secs(10))
        .unwrap()
        .unwrap();
    assert!(first.paired_now);

    let t = StreamTransport::open_serial(line.a_str(), BAUD).unwrap();
    let mut conn = client::connect(
        t,
        &terminal,
        partition.clone(),
        ClientMode::Pinned { hsm: pinned },
        options(),
    )
    .unwrap();
    let Response::SessionInfo(info) = conn.call(Request::SessionInfo).unwrap() else {
        panic!("wrong response")
    };
    assert_eq!(info.terminal, terminal.public().fingerprint());
    let report = conn.link_test(256 * 1024).unwrap();
    assert_eq!(report.bytes, 256 * 1024);
    conn.close().unwrap();
    let second = ended
        .recv_timeout(Duration::from_secs(10))
        .unwrap()
        .unwrap();
    assert_eq!(second.requests, 2);
}

#[test]
fn a_garbled_line_ends_the_session_with_a_fault_and_the_next_session_resynchronises() {
    let line = SocatPair::start().unwrap();
    let partition = PartitionId::new("serial-q").unwrap();
    let trust = Arc::new(MemoryTrustStore::default());
    trust.add_partition(partition.clone());
    let code = trust.issue_pairing_code(&partition).unwrap();
    let hsm = Arc::new(StaticKeypair::generate().unwrap());
    let ended = serve_line(line.b_str().into(), Arc::clone(&hsm), Arc::clone(&trust));
    let terminal = StaticKeypair::generate().unwrap();

    let t = StreamTransport::open_serial(line.a_str(), BAUD).unwrap();
    client::connect(
        t,
        &terminal,
        partition.clone(),
        ClientMode::Pairing(code),
        options(),
    )
    .unwrap()
    .close()
    .unwrap();
    ended
        .recv_timeout(Duration::from_secs(10))
        .unwrap()
        .unwrap();

    // This end is opened without exclusive access, so that the test can open the same line a
    // second time to inject noise into it.
    let mut port = serialport::new(line.a_str(), BAUD).open_native().unwrap();
    port.set_exclusive(false).unwrap();
    let t = StreamTransport::serial(Box::new(port));
    let mut conn = client::connect(
        t,
        &terminal,
        partition.clone(),
        ClientMode::Pinned { hsm: hsm.public() },
        options(),
    )
    .unwrap();
    assert_eq!(conn.call(Request::Ping).unwrap(), Response::Pong);

    // Noise on the line: bytes that are no frame, ended by a delimiter.
    let mut noise = std::fs::OpenOptions::new()
        .write(true)
        .open(&line.a)
        .unwrap();
    noise.write_all(&[0x55, 0x13, 0x37, 0xaa, 0x00]).unwrap();
    noise.flush().unwrap();

    let fault = ended.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(
        matches!(
            fault,
            Err(Error::Transport(
                hsm_link::transport::TransportError::Frame(_)
            ))
        ),
        "{fault:?}"
    );
    let err = conn.call(Request::Ping).unwrap_err();
    assert!(
        matches!(err, Error::Closed(CloseReason::LineFault)),
        "{err}"
    );
    assert!(err.to_string().contains("garbled or dropped bytes"));
    drop(conn);

    // Reconnect on the same line: discard stale answers, then a fresh session works.
    let mut t = StreamTransport::open_serial(line.a_str(), BAUD).unwrap();
    t.discard_input(Duration::from_millis(300)).unwrap();
    let mut conn = client::connect(
        t,
        &terminal,
        partition,
        ClientMode::Pinned { hsm: hsm.public() },
        options(),
    )
    .unwrap();
    assert_eq!(conn.call(Request::Ping).unwrap(), Response::Pong);
    conn.close().unwrap();
}
