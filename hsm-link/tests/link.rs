//! Client and server state machines paired in memory: pairing, pinned reconnect, refusals,
//! idle expiry, rekeying, transfers, and tampering on the wire.

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use hsm_link::Error;
use hsm_link::client::{self, ConnectOptions, Connection};
use hsm_link::domain::PartitionId;
use hsm_link::frame::LinkFrame;
use hsm_link::handshake::client::{ClientMode, ClientOptions};
use hsm_link::hello::{ClientHello, Refusal, VersionRange};
use hsm_link::keys::{PublicKey, StaticKeypair};
use hsm_link::limits::{CHUNK_SIZE, DEFAULT_MAX_PAIRING_FAILURES};
use hsm_link::message::{CloseReason, Request, Response};
use hsm_link::pairing::PairingCode;
use hsm_link::server::{self, ServeOptions, SessionEnd, SessionSummary};
use hsm_link::transport::memory::{self, MemoryTransport};
use hsm_link::transport::{FrameTransport, TransportError};
use hsm_link::trust::{MemoryTrustStore, TrustStore};

/// Rewrites the n-th outgoing frame.
type Rewrite = Box<dyn FnMut(usize, Vec<u8>) -> Vec<u8> + Send>;

/// A transport that lets a test see and rewrite frames on their way.
struct Tap {
    inner: MemoryTransport,
    sent: Arc<Mutex<Vec<Vec<u8>>>>,
    rewrite_outgoing: Option<Rewrite>,
    count: usize,
}

impl Tap {
    fn new(inner: MemoryTransport) -> Self {
        Tap {
            inner,
            sent: Arc::default(),
            rewrite_outgoing: None,
            count: 0,
        }
    }
    fn send_raw(&mut self, frame: &[u8]) {
        self.inner.send(frame).unwrap();
    }
}

impl FrameTransport for Tap {
    fn send(&mut self, frame: &[u8]) -> Result<(), TransportError> {
        let mut frame = frame.to_vec();
        if let Some(f) = self.rewrite_outgoing.as_mut() {
            frame = f(self.count, frame);
        }
        self.count += 1;
        self.sent.lock().unwrap().push(frame.clone());
        self.inner.send(&frame)
    }
    fn recv(&mut self, timeout: Duration) -> Result<Vec<u8>, TransportError> {
        self.inner.recv(timeout)
    }
}

struct Hsm {
    identity: Arc<StaticKeypair>,
    trust: Arc<MemoryTrustStore>,
    partition: PartitionId,
}

impl Hsm {
    fn new() -> Self {
        let partition = PartitionId::new("p1").unwrap();
        let trust = Arc::new(MemoryTrustStore::default());
        trust.add_partition(partition.clone());
        Hsm {
            identity: Arc::new(StaticKeypair::generate().unwrap()),
            trust,
            partition,
        }
    }

    /// Serves one connection in a thread; returns the client end.
    fn spawn(
        &self,
        options: ServeOptions,
    ) -> (
        MemoryTransport,
        thread::JoinHandle<Result<SessionSummary, Error>>,
    ) {
        let (client_end, mut server_end) = memory::pair();
        let (identity, trust) = (Arc::clone(&self.identity), Arc::clone(&self.trust));
        let handle = thread::spawn(move || {
            server::serve_connection(
                &mut server_end,
                &identity,
                &options,
                &*trust,
                &server::NoAdministration,
            )
        });
        (client_end, handle)
    }
}

fn quick() -> ConnectOptions {
    ConnectOptions {
        response_timeout: Duration::from_secs(5),
        handshake_timeout: Duration::from_secs(5),
        ..ConnectOptions::default()
    }
}

fn pair(hsm: &Hsm, terminal: &StaticKeypair) -> PublicKey {
    let code = hsm.trust.issue_pairing_code(&hsm.partition).unwrap();
    let (t, server) = hsm.spawn(ServeOptions::default());
    let conn = client::connect(
        t,
        terminal,
        hsm.partition.clone(),
        ClientMode::Pairing(code),
        quick(),
    )
    .unwrap();
    assert!(conn.paired_now());
    let key = conn.session().remote_key();
    conn.close().unwrap();
    let summary = server.join().unwrap().unwrap();
    assert!(summary.paired_now);
    assert_eq!(summary.terminal, terminal.public());
    key
}

fn pinned(
    hsm: &Hsm,
    terminal: &StaticKeypair,
    options: ServeOptions,
) -> (
    Connection<MemoryTransport>,
    thread::JoinHandle<Result<SessionSummary, Error>>,
) {
    let (t, server) = hsm.spawn(options);
    let conn = client::connect(
        t,
        terminal,
        hsm.partition.clone(),
        ClientMode::Pinned {
            hsm: hsm.identity.public(),
        },
        quick(),
    )
    .unwrap();
    (conn, server)
}

#[test]
fn pairing_pins_both_keys_and_pinned_reconnect_works() {
    let hsm = Hsm::new();
    let terminal = StaticKeypair::generate().unwrap();
    let pinned_hsm = pair(&hsm, &terminal);
    assert_eq!(pinned_hsm, hsm.identity.public());
    assert_eq!(
        hsm.trust.pinned_terminals(&hsm.partition),
        vec![terminal.public()]
    );

    let (mut conn, server) = pinned(&hsm, &terminal, ServeOptions::default());
    assert!(!conn.paired_now());
    let Response::SessionInfo(info) = conn.call(Request::SessionInfo).unwrap() else {
        panic!("wrong response");
    };
    assert_eq!(info.protocol_version, 1);
    assert_eq!(info.hsm, hsm.identity.public().fingerprint());
    assert_eq!(info.terminal, terminal.public().fingerprint());
    assert_eq!(conn.call(Request::Ping).unwrap(), Response::Pong);
    conn.close().unwrap();
    let summary = server.join().unwrap().unwrap();
    assert_eq!(summary.requests, 2);
    assert_eq!(summary.end, SessionEnd::Closed(CloseReason::Goodbye));
}

#[test]
fn the_pairing_confirmation_carries_the_audit_key_and_a_pinned_session_none() {
    let hsm = Hsm::new();
    let terminal = StaticKeypair::generate().unwrap();
    // An endpoint that keeps no log sends none.
    let code = hsm.trust.issue_pairing_code(&hsm.partition).unwrap();
    let (t, server) = hsm.spawn(ServeOptions::default());
    let mode = ClientMode::Pairing(code);
    let conn = client::connect(t, &terminal, hsm.partition.clone(), mode, quick()).unwrap();
    assert_eq!(conn.paired_audit_key(), None);
    conn.close().unwrap();
    server.join().unwrap().unwrap();

    let audit = audit_log::AuditSigner::from_secret_bytes(&[3; 32]).public();
    hsm.trust.set_audit_key(audit);
    let code = hsm.trust.issue_pairing_code(&hsm.partition).unwrap();
    let (t, server) = hsm.spawn(ServeOptions::default());
    let mode = ClientMode::Pairing(code);
    let conn = client::connect(t, &terminal, hsm.partition.clone(), mode, quick()).unwrap();
    assert_eq!(conn.paired_audit_key(), Some(audit));
    conn.close().unwrap();
    server.join().unwrap().unwrap();

    // Later sessions prove the link key only; the audit key was pinned at pairing.
    let (conn, server) = pinned(&hsm, &terminal, ServeOptions::default());
    assert_eq!(conn.paired_audit_key(), None);
    conn.close().unwrap();
    server.join().unwrap().unwrap();
}

#[test]
fn the_pairing_code_is_spent_on_success() {
    let hsm = Hsm::new();
    let code = hsm.trust.issue_pairing_code(&hsm.partition).unwrap();
    let again = PairingCode::parse(&code.display()).unwrap();
    let (t, server) = hsm.spawn(ServeOptions::default());
    let first = StaticKeypair::generate().unwrap();
    client::connect(
        t,
        &first,
        hsm.partition.clone(),
        ClientMode::Pairing(code),
        quick(),
    )
    .unwrap()
    .close()
    .unwrap();
    server.join().unwrap().unwrap();

    let (t, server) = hsm.spawn(ServeOptions::default());
    let second = StaticKeypair::generate().unwrap();
    let err = client::connect(
        t,
        &second,
        hsm.partition.clone(),
        ClientMode::Pairing(again),
        quick(),
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::Refused(Refusal::NoPairingCode { .. })),
        "{err}"
    );
    assert!(server.join().unwrap().is_err());
    assert_eq!(
        hsm.trust.pinned_terminals(&hsm.partition),
        vec![first.public()]
    );
}

#[test]
fn a_wrong_pairing_code_is_refused_and_the_code_burns_after_the_bounded_failures() {
    let hsm = Hsm::new();
    let code = hsm.trust.issue_pairing_code(&hsm.partition).unwrap();
    let shown = code.display().to_string();
    let terminal = StaticKeypair::generate().unwrap();
    for attempt in 1..=DEFAULT_MAX_PAIRING_FAILURES {
        let wrong = PairingCode::generate().unwrap();
        let (t, server) = hsm.spawn(ServeOptions::default());
        let err = client::connect(
            t,
            &terminal,
            hsm.partition.clone(),
            ClientMode::Pairing(wrong),
            quick(),
        )
        .unwrap_err();
        let left = DEFAULT_MAX_PAIRING_FAILURES - attempt;
        match err {
            Error::Refused(Refusal::PairingFailed { attempts_left }) => {
                assert_eq!(attempts_left, left)
            }
            other => panic!("attempt {attempt}: {other}"),
        }
        assert!(server.join().unwrap().is_err());
    }
    assert!(hsm.trust.code_burned(&hsm.partition));
    // Even the right code is now refused, before any handshake.
    let (t, server) = hsm.spawn(ServeOptions::default());
    let right = PairingCode::parse(&shown).unwrap();
    let err = client::connect(
        t,
        &terminal,
        hsm.partition.clone(),
        ClientMode::Pairing(right),
        quick(),
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::Refused(Refusal::NoPairingCode { .. })),
        "{err}"
    );
    assert!(server.join().unwrap().is_err());
    assert!(hsm.trust.pinned_terminals(&hsm.partition).is_empty());
}

#[test]
fn a_terminal_whose_key_is_not_pinned_is_refused_clearly() {
    let hsm = Hsm::new();
    let stranger = StaticKeypair::generate().unwrap();
    let (t, server) = hsm.spawn(ServeOptions::default());
    let err = client::connect(
        t,
        &stranger,
        hsm.partition.clone(),
        ClientMode::Pinned {
            hsm: hsm.identity.public(),
        },
        quick(),
    )
    .unwrap_err();
    match err {
        Error::Refused(Refusal::UnknownTerminal { terminal, .. }) => {
            assert_eq!(terminal, stranger.public().fingerprint());
            assert!(
                err.to_string()
                    .contains("pair it with a new management pairing code")
            );
        }
        other => panic!("{other}"),
    }
    assert!(server.join().unwrap().is_err());
}

#[test]
fn a_terminal_claiming_a_pinned_fingerprint_without_the_key_fails_the_handshake() {
    let hsm = Hsm::new();
    let real = StaticKeypair::generate().unwrap();
    pair(&hsm, &real);
    // An impostor sends the real terminal's hello (its fingerprint) but holds another key.
    let impostor = StaticKeypair::generate().unwrap();
    let (t, server) = hsm.spawn(ServeOptions::default());
    let mut tap = Tap::new(t);
    let real_fp = real.public().fingerprint();
    tap.rewrite_outgoing = Some(Box::new(move |i, frame| {
        if i != 0 {
            return frame;
        }
        let LinkFrame::ClientHello(body) = LinkFrame::parse(&frame).unwrap() else {
            panic!()
        };
        let mut hello = ClientHello::decode(body).unwrap();
        hello.terminal = real_fp;
        LinkFrame::ClientHello(&hello.encode()).to_vec()
    }));
    let err = client::connect(
        tap,
        &impostor,
        hsm.partition.clone(),
        ClientMode::Pinned {
            hsm: hsm.identity.public(),
        },
        quick(),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Refused(Refusal::HandshakeFailed) | Error::Authentication { .. }
        ),
        "{err}"
    );
    assert!(matches!(
        server.join().unwrap(),
        Err(Error::Authentication { .. })
    ));
}

#[test]
fn an_hsm_impostor_is_detected_by_the_pinned_key() {
    let hsm = Hsm::new();
    let terminal = StaticKeypair::generate().unwrap();
    pair(&hsm, &terminal);
    let impostor_key = StaticKeypair::generate().unwrap();
    let (t, server) = hsm.spawn(ServeOptions::default());
    let err = client::connect(
        t,
        &terminal,
        hsm.partition.clone(),
        ClientMode::Pinned {
            hsm: impostor_key.public(),
        },
        quick(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::HsmKeyMismatch { .. }), "{err}");
    drop(server);
}

#[test]
fn version_mismatch_and_unknown_partition_are_refused_before_any_handshake() {
    let hsm = Hsm::new();
    let terminal = StaticKeypair::generate().unwrap();
    pair(&hsm, &terminal);
    let (t, server) = hsm.spawn(ServeOptions::default());
    let options = ConnectOptions {
        handshake: ClientOptions {
            versions: VersionRange { min: 2, max: 3 },
            ..ClientOptions::default()
        },
        ..quick()
    };
    let err = client::connect(
        t,
        &terminal,
        hsm.partition.clone(),
        ClientMode::Pinned {
            hsm: hsm.identity.public(),
        },
        options,
    )
    .unwrap_err();
    match &err {
        Error::Refused(Refusal::VersionMismatch { supported, offered }) => {
            assert_eq!(*supported, VersionRange { min: 1, max: 1 });
            assert_eq!(*offered, VersionRange { min: 2, max: 3 });
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("update the older side"));
    assert!(server.join().unwrap().is_err());

    let (t, server) = hsm.spawn(ServeOptions::default());
    let err = client::connect(
        t,
        &terminal,
        PartitionId::new("nope").unwrap(),
        ClientMode::Pinned {
            hsm: hsm.identity.public(),
        },
        quick(),
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::Refused(Refusal::UnknownPartition { .. })),
        "{err}"
    );
    assert!(server.join().unwrap().is_err());
}

#[test]
fn tampering_with_the_hello_breaks_the_handshake() {
    let hsm = Hsm::new();
    let terminal = StaticKeypair::generate().unwrap();
    pair(&hsm, &terminal);
    let (t, server) = hsm.spawn(ServeOptions::default());
    let mut tap = Tap::new(t);
    // A downgrade in transit: the terminal offers 1..=2, the attacker rewrites it to 1..=1.
    // The server accepts the rewritten hello, but the prologues now differ.
    tap.rewrite_outgoing = Some(Box::new(|i, frame| {
        if i != 0 {
            return frame;
        }
        let LinkFrame::ClientHello(body) = LinkFrame::parse(&frame).unwrap() else {
            panic!()
        };
        let mut hello = ClientHello::decode(body).unwrap();
        hello.versions = VersionRange { min: 1, max: 1 };
        LinkFrame::ClientHello(&hello.encode()).to_vec()
    }));
    let options = ConnectOptions {
        handshake: ClientOptions {
            versions: VersionRange { min: 1, max: 2 },
            ..ClientOptions::default()
        },
        ..quick()
    };
    let err = client::connect(
        tap,
        &terminal,
        hsm.partition.clone(),
        ClientMode::Pinned {
            hsm: hsm.identity.public(),
        },
        options,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Refused(Refusal::HandshakeFailed) | Error::Authentication { .. }
        ),
        "{err}"
    );
    assert!(matches!(
        server.join().unwrap(),
        Err(Error::Authentication { .. })
    ));
}

#[test]
fn an_idle_session_expires_and_says_so() {
    let hsm = Hsm::new();
    let terminal = StaticKeypair::generate().unwrap();
    pair(&hsm, &terminal);
    let options = ServeOptions {
        idle_timeout: Duration::from_millis(300),
        ..ServeOptions::default()
    };
    let (mut conn, server) = pinned(&hsm, &terminal, options);
    assert_eq!(conn.call(Request::Ping).unwrap(), Response::Pong);
    // Keep-alives keep the link alive but do not count as activity.
    conn.keep_alive().unwrap();
    thread::sleep(Duration::from_millis(700));
    let err = conn.call(Request::Ping).unwrap_err();
    assert!(
        matches!(err, Error::IdleExpired { after } if after == Duration::from_millis(300)),
        "{err}"
    );
    assert!(err.to_string().contains("session expired"));
    assert_eq!(server.join().unwrap().unwrap().end, SessionEnd::IdleTimeout);
}

#[test]
fn both_ends_rekey_in_step_and_disagreeing_intervals_fail() {
    let hsm = Hsm::new();
    let terminal = StaticKeypair::generate().unwrap();
    pair(&hsm, &terminal);
    let mut options = ServeOptions::default();
    options.handshake.rekey_interval = 3;
    let (t, server) = hsm.spawn(options.clone());
    let mut client_options = quick();
    client_options.handshake.rekey_interval = 3;
    let mut conn = client::connect(
        t,
        &terminal,
        hsm.partition.clone(),
        ClientMode::Pinned {
            hsm: hsm.identity.public(),
        },
        client_options.clone(),
    )
    .unwrap();
    for _ in 0..20 {
        assert_eq!(conn.call(Request::Ping).unwrap(), Response::Pong);
    }
    conn.close().unwrap();
    server.join().unwrap().unwrap();

    // If only one side rekeyed, the fourth message would not decrypt: rekeying really happens.
    client_options.handshake.rekey_interval = 5;
    let (t, server) = hsm.spawn(options);
    let mut conn = client::connect(
        t,
        &terminal,
        hsm.partition.clone(),
        ClientMode::Pinned {
            hsm: hsm.identity.public(),
        },
        client_options,
    )
    .unwrap();
    let mut failed = None;
    for i in 0..6 {
        if let Err(e) = conn.call(Request::Ping) {
            failed = Some((i, e));
            break;
        }
    }
    let (i, _) = failed.expect("mismatched rekeying must fail");
    assert_eq!(i, 3);
    assert!(matches!(
        server.join().unwrap(),
        Err(Error::Authentication { .. })
    ));
}

#[test]
fn bulk_transfers_round_trip_at_chunk_boundaries() {
    let hsm = Hsm::new();
    let terminal = StaticKeypair::generate().unwrap();
    pair(&hsm, &terminal);
    let (mut conn, server) = pinned(&hsm, &terminal, ServeOptions::default());
    let sizes = [
        0,
        1,
        CHUNK_SIZE as u64,
        3 * CHUNK_SIZE as u64 + 1,
        20 * CHUNK_SIZE as u64,
    ];
    for bytes in sizes {
        let report = conn.link_test(bytes).unwrap();
        assert_eq!(report.bytes, bytes);
    }
    let err = conn
        .call(Request::LinkTest { bytes: u64::MAX })
        .unwrap_err();
    assert!(matches!(err, Error::Remote(_)), "{err}");
    // The session is still usable after a refused request.
    assert_eq!(conn.call(Request::Ping).unwrap(), Response::Pong);
    conn.close().unwrap();
    server.join().unwrap().unwrap();
}

#[test]
fn a_transfer_stays_within_its_window_when_the_reader_stalls() {
    let hsm = Hsm::new();
    let terminal = StaticKeypair::generate().unwrap();
    pair(&hsm, &terminal);
    let (t, server) = hsm.spawn(ServeOptions::default());
    let mut conn = client::connect(
        t,
        &terminal,
        hsm.partition.clone(),
        ClientMode::Pinned {
            hsm: hsm.identity.public(),
        },
        quick(),
    )
    .unwrap();
    struct Slow(usize);
    impl std::io::Write for Slow {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            // The first chunk stalls the reader; without credit the HSM must stop sending.
            if self.0 == 0 {
                thread::sleep(Duration::from_millis(300));
            }
            self.0 += 1;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let queued = Arc::new(Mutex::new(0usize));
    let watcher = {
        let queued = Arc::clone(&queued);
        let probe = conn.transport_mut().queued_probe();
        thread::spawn(move || {
            for _ in 0..25 {
                let n = probe();
                let mut max = queued.lock().unwrap();
                *max = (*max).max(n);
                drop(max);
                thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let mut sink = Slow(0);
    let response = conn
        .call_download(
            Request::LinkTest {
                bytes: 40 * CHUNK_SIZE as u64,
            },
            &mut sink,
        )
        .unwrap();
    assert!(matches!(response, Response::LinkTestDone { .. }));
    watcher.join().unwrap();
    let max = *queued.lock().unwrap();
    assert!(max >= 4, "the watcher saw the queue fill ({max})");
    assert!(max <= 8, "at most the window is in flight, saw {max}");
    assert_eq!(sink.0, 40);
    conn.close().unwrap();
    server.join().unwrap().unwrap();
}

#[test]
fn a_replayed_frame_ends_the_session_with_a_named_error() {
    let hsm = Hsm::new();
    let terminal = StaticKeypair::generate().unwrap();
    pair(&hsm, &terminal);
    let (t, server) = hsm.spawn(ServeOptions::default());
    let tap = Tap::new(t);
    let sent = Arc::clone(&tap.sent);
    let mut conn = client::connect(
        tap,
        &terminal,
        hsm.partition.clone(),
        ClientMode::Pinned {
            hsm: hsm.identity.public(),
        },
        quick(),
    )
    .unwrap();
    assert_eq!(conn.call(Request::Ping).unwrap(), Response::Pong);
    let replay = sent.lock().unwrap().last().unwrap().clone();
    conn.transport_mut().send_raw(&replay);
    let err = conn.call(Request::Ping).unwrap_err();
    assert!(
        matches!(err, Error::Closed(CloseReason::ProtocolViolation)),
        "{err}"
    );
    match server.join().unwrap() {
        Err(Error::Replay { counter, expected }) => assert!(counter < expected),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_reordered_or_flipped_frame_ends_the_session() {
    // Skip one frame: the HSM sees counter 2 where it expects 1.
    let hsm = Hsm::new();
    let terminal = StaticKeypair::generate().unwrap();
    pair(&hsm, &terminal);
    let (t, server) = hsm.spawn(ServeOptions::default());
    let mut tap = Tap::new(t);
    // Frames 0 and 1 are the hello and the handshake; 2 is the first request. Hold frame 3.
    tap.rewrite_outgoing = Some(Box::new(|i, frame| {
        if i == 3 {
            let LinkFrame::Transport { ciphertext, .. } = LinkFrame::parse(&frame).unwrap() else {
                panic!()
            };
            LinkFrame::Transport {
                counter: 2,
                ciphertext,
            }
            .to_vec()
        } else {
            frame
        }
    }));
    let mut conn = client::connect(
        tap,
        &terminal,
        hsm.partition.clone(),
        ClientMode::Pinned {
            hsm: hsm.identity.public(),
        },
        quick(),
    )
    .unwrap();
    assert_eq!(conn.call(Request::Ping).unwrap(), Response::Pong);
    assert!(conn.call(Request::Ping).is_err());
    assert!(matches!(
        server.join().unwrap(),
        Err(Error::OutOfOrder {
            counter: 2,
            expected: 1
        })
    ));

    // Flip one bit of a ciphertext: authentication fails, opaquely.
    let (t, server) = hsm.spawn(ServeOptions::default());
    let mut tap = Tap::new(t);
    tap.rewrite_outgoing = Some(Box::new(|i, mut frame| {
        if i == 2 {
            let last = frame.len() - 1;
            frame[last] ^= 1;
        }
        frame
    }));
    let mut conn = client::connect(
        tap,
        &terminal,
        hsm.partition.clone(),
        ClientMode::Pinned {
            hsm: hsm.identity.public(),
        },
        quick(),
    )
    .unwrap();
    assert!(conn.call(Request::Ping).is_err());
    assert!(matches!(
        server.join().unwrap(),
        Err(Error::Authentication { .. })
    ));
}

#[test]
fn garbage_before_and_after_the_handshake_gives_typed_errors_and_no_hang() {
    let hsm = Hsm::new();
    let garbage: [&[u8]; 6] = [
        &[],
        &[0x01],
        &[0x01, b'T', b'S', b'R', b'L', 1, 0xff, 0xff],
        &[0x04, 0, 0, 0],
        &[0x03; 100],
        &[0x99, 1, 2, 3],
    ];
    for g in garbage {
        let (mut t, server) = hsm.spawn(ServeOptions {
            handshake_timeout: Duration::from_millis(500),
            ..ServeOptions::default()
        });
        t.send(g).unwrap();
        let result = server.join().unwrap();
        assert!(result.is_err(), "garbage {g:?} was accepted");
        // Whatever the server answered, it is a hello or a refusal, never a session.
        if let Ok(reply) = t.recv(Duration::from_millis(10)) {
            assert!(matches!(
                LinkFrame::parse(&reply),
                Ok(LinkFrame::ServerHello(_) | LinkFrame::Refusal(_))
            ));
        }
    }
}

#[test]
fn the_trust_store_is_consulted_for_every_decision() {
    // A sanity check that the memory store's pairing state machine matches what the server
    // relies on: a concurrent second success cannot pin a second terminal.
    let store = MemoryTrustStore::new(3);
    let p = PartitionId::new("p").unwrap();
    store.add_partition(p.clone());
    let psk = store.issue_pairing_code(&p).unwrap().psk(&p);
    let a = StaticKeypair::generate().unwrap().public();
    let b = StaticKeypair::generate().unwrap().public();
    assert!(store.pairing_succeeded(&p, &psk, a));
    assert!(!store.pairing_succeeded(&p, &psk, b));
    assert_eq!(store.pinned_terminals(&p), vec![a]);
    assert_eq!(store.pairing_failed(&p, &psk), 0);
}

#[test]
fn a_handshake_under_a_superseded_code_neither_pairs_nor_burns_the_new_code() {
    // A handshake keeps the code it was offered; when the code is reissued meanwhile, its
    // success is refused and its failures are not counted against the new code.
    let store = MemoryTrustStore::new(3);
    let p = PartitionId::new("p").unwrap();
    store.add_partition(p.clone());
    let old = store.issue_pairing_code(&p).unwrap().psk(&p);
    let new = store.issue_pairing_code(&p).unwrap().psk(&p);
    let a = StaticKeypair::generate().unwrap().public();
    for _ in 0..3 {
        assert_eq!(store.pairing_failed(&p, &old), 0);
    }
    assert!(!store.code_burned(&p));
    assert!(!store.pairing_succeeded(&p, &old, a));
    assert!(store.pinned_terminals(&p).is_empty());
    assert_eq!(
        store.pairing_failed(&p, &new),
        2,
        "old failures were not counted"
    );
    assert!(store.pairing_succeeded(&p, &new, a));
    assert_eq!(store.pinned_terminals(&p), vec![a]);
}

#[test]
fn a_bare_link_endpoint_refuses_administration_with_a_typed_error() {
    use hsm_link::message::{AdminRequest, RemoteError};
    let hsm = Hsm::new();
    let terminal = StaticKeypair::generate().unwrap();
    pair(&hsm, &terminal);
    let (mut conn, server) = pinned(&hsm, &terminal, ServeOptions::default());
    let err = conn
        .call(Request::Admin(AdminRequest::GetConfig))
        .unwrap_err();
    assert!(
        matches!(err, Error::Remote(RemoteError::NoAdministration)),
        "{err}"
    );
    assert_eq!(conn.call(Request::Ping).unwrap(), Response::Pong);
    conn.close().unwrap();
    server.join().unwrap().unwrap();
}

/// Answers every administration request after `delay`, the way an HSM busy with a whole
/// partition would.
struct Slow(Duration);

impl server::Handler for Slow {
    fn handle(
        &mut self,
        _ctx: &server::SessionContext,
        _request: hsm_link::message::AdminRequest,
    ) -> server::Reply {
        thread::sleep(self.0);
        server::Reply::Response(Err(hsm_link::message::RemoteError::NoAdministration))
    }
}

impl server::AdminService for Slow {
    fn session(&self, _ctx: &server::SessionContext) -> Box<dyn server::Handler> {
        Box::new(Slow(self.0))
    }
}

/// One connection served by an HSM that takes 600 ms over every administration answer.
fn slow_session(
    hsm: &Hsm,
) -> (
    MemoryTransport,
    thread::JoinHandle<Result<SessionSummary, Error>>,
) {
    let (client_end, mut server_end) = memory::pair();
    let (identity, trust) = (Arc::clone(&hsm.identity), Arc::clone(&hsm.trust));
    let server = thread::spawn(move || {
        server::serve_connection(
            &mut server_end,
            &identity,
            &ServeOptions::default(),
            &*trust,
            &Slow(Duration::from_millis(600)),
        )
    });
    (client_end, server)
}

#[test]
fn a_restore_swap_may_take_longer_than_an_ordinary_answer() {
    use hsm_link::message::AdminRequest;
    let hsm = Hsm::new();
    let terminal = StaticKeypair::generate().unwrap();
    let hsm_key = pair(&hsm, &terminal);
    let (client_end, server) = slow_session(&hsm);
    let options = ConnectOptions {
        response_timeout: Duration::from_millis(200),
        ..quick()
    };
    let mut conn = client::connect(
        client_end,
        &terminal,
        hsm.partition.clone(),
        ClientMode::Pinned { hsm: hsm_key },
        options.clone(),
    )
    .unwrap();
    // An ordinary request is given up on after the response timeout...
    match conn.call(Request::Admin(AdminRequest::GetUsage)) {
        Err(Error::ResponseTimeout { after, .. }) => {
            assert_eq!(after, Duration::from_millis(200))
        }
        other => panic!("{other:?}"),
    }
    drop(conn);
    let _ = server.join();

    // ...but the swap of a restore, one transaction over the whole partition, is waited for.
    let (client_end, server) = slow_session(&hsm);
    let mut conn = client::connect(
        client_end,
        &terminal,
        hsm.partition.clone(),
        ClientMode::Pinned { hsm: hsm_key },
        options,
    )
    .unwrap();
    let answer = conn.call(Request::Admin(AdminRequest::RestoreCommit {
        header_hash: [0; 32],
    }));
    assert!(
        matches!(
            answer,
            Err(Error::Remote(
                hsm_link::message::RemoteError::NoAdministration
            ))
        ),
        "{answer:?}"
    );
    conn.close().unwrap();
    let _ = server.join();
}
