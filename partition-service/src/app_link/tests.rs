//! The listener and the client against each other over loopback TCP, with a fake backend that
//! answers every request and records what it was asked; and the listener on its own over
//! memory, fed bytes a hostile client would send.

use std::io::{self, Cursor, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use hsm_link::domain::{
    KeyAttributes, KeyId, KeyKind, KeyLabel, KeyObjectSummary, KeyState, Parameter, PartitionId,
};
use sha2::{Digest, Sha256};

use super::*;
use crate::access::ApiProvider;

const SETUP_PASSWORD: &str = "setup-7Hq2-ZkP9";
const PERMANENT_SECRET: &str = "perm-secret-4f1c9a";
const MISSING: KeyId = KeyId(404);
/// The fake backend answers a request naming this key as if the credentials had been reset.
const RESET: KeyId = KeyId(205);

/// Answers every request with something derived from it, and records each call (never a
/// secret).
#[derive(Default)]
struct FakeBackend {
    calls: Mutex<Vec<String>>,
}

impl FakeBackend {
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    fn record(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }
}

fn partition() -> PartitionId {
    PartitionId::new("payments").unwrap()
}

fn attributes() -> KeyAttributes {
    KeyAttributes {
        extractable: true,
        sensitive: false,
        modifiable: false,
    }
}

fn summary(id: u64, label: &KeyLabel, kind: KeyKind, size: usize) -> KeyObjectSummary {
    KeyObjectSummary {
        id: KeyId(id),
        label: label.clone(),
        kind,
        attributes: attributes(),
        created_unix: 1_790_000_000,
        size_bytes: size as u64,
        state: KeyState::Active,
    }
}

fn fake_signature(id: KeyId, message: &[u8]) -> Vec<u8> {
    Sha256::new()
        .chain_update(id.0.to_be_bytes())
        .chain_update(message)
        .finalize()
        .to_vec()
}

fn xor(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().map(|b| b ^ 0x5a).collect()
}

impl AppBackend for FakeBackend {
    fn authenticate(
        &self,
        _connection: &mut AppConnection,
        peer: IpAddr,
        partition: &PartitionId,
        provider: ApiProvider,
        auth: &AppAuth,
    ) -> Result<Option<SecretText>, AppError> {
        let kind = if auth.is_setup_password() {
            "setup"
        } else {
            "permanent"
        };
        self.record(format!(
            "authenticate {peer} {partition} {provider:?} {kind}"
        ));
        if partition.as_str() != "payments" {
            return Err(AppError::UnknownPartition);
        }
        if provider == ApiProvider::Cng {
            return Err(AppError::ProviderDisabled(Parameter::ApiCng));
        }
        match (auth, auth.expose()) {
            (AppAuth::SetupPassword(_), SETUP_PASSWORD) => {
                Ok(Some(SecretText::new(PERMANENT_SECRET.into()).unwrap()))
            }
            (AppAuth::SetupPassword(_), "expired") => Err(AppError::SetupPasswordExpired),
            (AppAuth::PermanentSecret(_), PERMANENT_SECRET) => Ok(None),
            _ => Err(AppError::BadCredentials),
        }
    }

    fn execute(
        &self,
        _connection: &mut AppConnection,
        peer: IpAddr,
        partition: &PartitionId,
        provider: ApiProvider,
        request: AppRequest,
    ) -> Result<AppResponse, AppError> {
        self.record(format!(
            "{} {peer} {partition} {provider:?}",
            request.name()
        ));
        let check = |id: KeyId| {
            if id == MISSING {
                Err(AppError::NoSuchKey(id))
            } else if id == RESET {
                Err(AppError::CredentialsReset)
            } else {
                Ok(())
            }
        };
        Ok(match request {
            AppRequest::Hello { .. } => return Err(AppError::Internal),
            AppRequest::Generate {
                kind,
                label,
                session,
                ..
            } => AppResponse::Key(summary(if session { 900 } else { 1 }, &label, kind, 32)),
            AppRequest::List => {
                let label = KeyLabel::new("listed").unwrap();
                AppResponse::Keys(vec![
                    summary(1, &label, KeyKind::Aes256, 32),
                    summary(2, &label, KeyKind::Ed25519, 64),
                ])
            }
            AppRequest::Sign { id, message } => {
                check(id)?;
                AppResponse::Signature(fake_signature(id, &message))
            }
            AppRequest::Verify {
                id,
                message,
                signature,
            } => {
                check(id)?;
                if signature == fake_signature(id, &message) {
                    AppResponse::Verified
                } else {
                    return Err(AppError::VerificationFailed);
                }
            }
            AppRequest::Encrypt { id, plaintext } => {
                check(id)?;
                AppResponse::Ciphertext(xor(plaintext.expose()))
            }
            AppRequest::Decrypt { id, ciphertext } => {
                check(id)?;
                AppResponse::Plaintext(SecretBytes::new(xor(&ciphertext)))
            }
            AppRequest::Wrap { wrapping, target } => {
                check(wrapping)?;
                check(target)?;
                AppResponse::Wrapped([wrapping.0.to_be_bytes(), target.0.to_be_bytes()].concat())
            }
            AppRequest::Unwrap {
                wrapping,
                kind,
                label,
                blob,
                ..
            } => {
                check(wrapping)?;
                AppResponse::Key(summary(3, &label, kind, blob.len()))
            }
            AppRequest::ExportPlain { id } => {
                check(id)?;
                AppResponse::Material(SecretBytes::new(vec![0x42; 32]))
            }
            AppRequest::ImportPlain {
                kind,
                label,
                material,
                ..
            } => AppResponse::Key(summary(4, &label, kind, material.len())),
            AppRequest::Delete { id } => {
                check(id)?;
                AppResponse::Deleted { to_bin: true }
            }
        })
    }
}

fn loopback() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

fn server() -> (AppServer, Arc<FakeBackend>) {
    let backend = Arc::new(FakeBackend::default());
    let server = AppServer::spawn(loopback(), backend.clone()).unwrap();
    (server, backend)
}

/// A server whose observer reports how each connection ended.
fn observed_server() -> (AppServer, mpsc::Receiver<String>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let server = AppServer::spawn_with_observer(
        loopback(),
        Arc::new(FakeBackend::default()),
        move |_, end| {
            let _ = tx.lock().unwrap().send(match end {
                Ok(()) => "closed".to_owned(),
                Err(e) => e.to_string(),
            });
        },
    )
    .unwrap();
    (server, rx)
}

fn connect_permanent(addr: SocketAddr) -> AppClient {
    let auth = AppAuth::PermanentSecret(PERMANENT_SECRET.into());
    let (client, secret) =
        AppClient::connect(addr, &partition(), ApiProvider::Pkcs11, auth).unwrap();
    assert!(secret.is_none());
    client
}

fn hello_frame() -> Vec<u8> {
    let hello = AppRequest::Hello {
        partition: partition(),
        provider: ApiProvider::Jce,
        auth: AppAuth::PermanentSecret(PERMANENT_SECRET.into()),
    };
    wire::encode_frame(&hello).unwrap().to_vec()
}

/// Reads one reply frame from a raw stream.
fn read_reply(stream: &mut impl Read) -> AppReply {
    let body = wire::read_frame(stream).unwrap().expect("a reply");
    wire::decode(&body).unwrap()
}

fn label(text: &str) -> KeyLabel {
    KeyLabel::new(text).unwrap()
}

#[test]
fn every_request_round_trips_over_tcp() {
    let (server, backend) = server();
    let addr = server.local_addr();

    // First contact trades the setup password for the permanent secret, shown once.
    let auth = AppAuth::SetupPassword(SETUP_PASSWORD.into());
    let (_first, secret) = AppClient::connect(addr, &partition(), ApiProvider::Jce, auth).unwrap();
    let secret = secret.expect("the permanent secret");
    assert_eq!(secret.expose(), PERMANENT_SECRET);

    let (mut app, again) = AppClient::connect(
        addr,
        &partition(),
        ApiProvider::Pkcs11,
        AppAuth::permanent(&secret),
    )
    .unwrap();
    assert!(again.is_none());

    let key = app
        .generate(KeyKind::Aes256, label("kek"), attributes(), false)
        .unwrap();
    assert_eq!((key.id, key.label.as_str()), (KeyId(1), "kek"));
    let session = app
        .generate(KeyKind::EcP256, label("eph"), attributes(), true)
        .unwrap();
    assert_eq!(session.id, KeyId(900));

    let keys = app.list().unwrap();
    assert_eq!(
        keys.iter().map(|k| k.id).collect::<Vec<_>>(),
        [KeyId(1), KeyId(2)]
    );

    let signature = app.sign(KeyId(2), b"pay 100 CHF").unwrap();
    assert_eq!(signature, fake_signature(KeyId(2), b"pay 100 CHF"));
    app.verify(KeyId(2), b"pay 100 CHF", &signature).unwrap();
    assert!(matches!(
        app.verify(KeyId(2), b"pay 999 CHF", &signature),
        Err(AppClientError::Refused(AppError::VerificationFailed))
    ));

    let ciphertext = app.encrypt(KeyId(1), b"card data").unwrap();
    assert_eq!(ciphertext, xor(b"card data"));
    assert_eq!(
        app.decrypt(KeyId(1), &ciphertext).unwrap().expose(),
        b"card data"
    );

    let blob = app.wrap(KeyId(1), KeyId(2)).unwrap();
    assert_eq!(blob, [1u64.to_be_bytes(), 2u64.to_be_bytes()].concat());
    let unwrapped = app
        .unwrap(
            KeyId(1),
            KeyKind::Ed25519,
            label("back"),
            attributes(),
            &blob,
        )
        .unwrap();
    assert_eq!((unwrapped.id, unwrapped.size_bytes), (KeyId(3), 16));

    assert_eq!(app.export_plain(KeyId(1)).unwrap().expose(), [0x42; 32]);
    let imported = app
        .import_plain(
            KeyKind::Aes256,
            label("imported"),
            attributes(),
            SecretBytes::new(vec![9; 32]),
        )
        .unwrap();
    assert_eq!((imported.id, imported.size_bytes), (KeyId(4), 32));

    assert!(app.delete(KeyId(4)).unwrap());

    // A refusal is an answer: the connection goes on.
    assert!(matches!(
        app.sign(MISSING, b"x"),
        Err(AppClientError::Refused(AppError::NoSuchKey(MISSING)))
    ));
    // Empty and largest messages.
    assert_eq!(
        app.sign(KeyId(2), b"").unwrap(),
        fake_signature(KeyId(2), b"")
    );
    let big = vec![0xa5; MAX_APP_MESSAGE];
    assert_eq!(app.encrypt(KeyId(1), &big).unwrap(), xor(&big));
    // One byte more is refused by the client before anything is sent.
    assert!(matches!(
        app.sign(KeyId(2), &vec![0; MAX_APP_MESSAGE + 1]),
        Err(AppClientError::RequestTooLarge { request: "sign" })
    ));
    assert_eq!(app.list().unwrap().len(), 2);

    let calls = backend.calls();
    let expected = [
        "authenticate 127.0.0.1 payments Jce setup",
        "authenticate 127.0.0.1 payments Pkcs11 permanent",
        "generate 127.0.0.1 payments Pkcs11",
        "generate 127.0.0.1 payments Pkcs11",
        "list 127.0.0.1 payments Pkcs11",
        "sign 127.0.0.1 payments Pkcs11",
        "verify 127.0.0.1 payments Pkcs11",
        "verify 127.0.0.1 payments Pkcs11",
        "encrypt 127.0.0.1 payments Pkcs11",
        "decrypt 127.0.0.1 payments Pkcs11",
        "wrap 127.0.0.1 payments Pkcs11",
        "unwrap 127.0.0.1 payments Pkcs11",
        "export-plain 127.0.0.1 payments Pkcs11",
        "import-plain 127.0.0.1 payments Pkcs11",
        "delete 127.0.0.1 payments Pkcs11",
        "sign 127.0.0.1 payments Pkcs11",
        "sign 127.0.0.1 payments Pkcs11",
        "encrypt 127.0.0.1 payments Pkcs11",
        "list 127.0.0.1 payments Pkcs11",
    ];
    assert_eq!(calls, expected);
}

#[test]
fn refused_hellos_say_why_and_close() {
    let (server, _backend) = server();
    let addr = server.local_addr();
    let cases = [
        (
            partition(),
            ApiProvider::Jce,
            AppAuth::PermanentSecret("wrong".into()),
            AppError::BadCredentials,
        ),
        (
            partition(),
            ApiProvider::Jce,
            AppAuth::SetupPassword("expired".into()),
            AppError::SetupPasswordExpired,
        ),
        (
            partition(),
            ApiProvider::Cng,
            AppAuth::PermanentSecret(PERMANENT_SECRET.into()),
            AppError::ProviderDisabled(Parameter::ApiCng),
        ),
        (
            PartitionId::new("other").unwrap(),
            ApiProvider::Jce,
            AppAuth::PermanentSecret(PERMANENT_SECRET.into()),
            AppError::UnknownPartition,
        ),
    ];
    for (partition, provider, auth, expected) in cases {
        match AppClient::connect(addr, &partition, provider, auth) {
            Err(AppClientError::Refused(error)) => assert_eq!(error, expected),
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("accepted"),
        }
    }

    // Over raw TCP: after the refusal the listener closes.
    let mut raw = TcpStream::connect(addr).unwrap();
    let hello = AppRequest::Hello {
        partition: partition(),
        provider: ApiProvider::Rest,
        auth: AppAuth::PermanentSecret("wrong".into()),
    };
    raw.write_all(&wire::preamble()).unwrap();
    raw.write_all(&wire::encode_frame(&hello).unwrap()).unwrap();
    assert_eq!(wire::read_preamble(&mut raw).unwrap(), APP_PROTOCOL_VERSION);
    assert!(matches!(
        read_reply(&mut raw),
        Err(AppError::BadCredentials)
    ));
    assert!(wire::read_frame(&mut raw).unwrap().is_none());
}

#[test]
fn hello_comes_first_and_only_once() {
    let (server, backend) = server();
    let mut raw = TcpStream::connect(server.local_addr()).unwrap();
    raw.write_all(&wire::preamble()).unwrap();
    raw.write_all(&wire::encode_frame(&AppRequest::List).unwrap())
        .unwrap();
    assert_eq!(wire::read_preamble(&mut raw).unwrap(), APP_PROTOCOL_VERSION);
    assert!(matches!(read_reply(&mut raw), Err(AppError::HelloFirst)));
    assert!(wire::read_frame(&mut raw).unwrap().is_none(), "closed");
    assert!(backend.calls().is_empty(), "the backend never heard of it");

    // A second hello on an authenticated connection ends it.
    let mut raw = TcpStream::connect(server.local_addr()).unwrap();
    raw.write_all(&wire::preamble()).unwrap();
    raw.write_all(&hello_frame()).unwrap();
    wire::read_preamble(&mut raw).unwrap();
    assert!(matches!(
        read_reply(&mut raw),
        Ok(AppResponse::Welcome { .. })
    ));
    raw.write_all(&hello_frame()).unwrap();
    assert!(matches!(read_reply(&mut raw), Err(AppError::Malformed)));
    assert!(wire::read_frame(&mut raw).unwrap().is_none(), "closed");
    assert_eq!(backend.calls().len(), 1, "one authenticate, nothing else");
}

/// An in-memory connection: scripted input, recorded output.
struct Memory {
    input: Cursor<Vec<u8>>,
    output: Vec<u8>,
}

impl Memory {
    fn new(input: Vec<u8>) -> Memory {
        Memory {
            input: Cursor::new(input),
            output: Vec::new(),
        }
    }
}

impl Read for Memory {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for Memory {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn serve_memory(input: Vec<u8>) -> (Result<(), ServeError>, Vec<u8>, Vec<String>) {
    let backend = FakeBackend::default();
    let mut memory = Memory::new(input);
    let end = serve_connection(&mut memory, IpAddr::V4(Ipv4Addr::LOCALHOST), &backend);
    (end, memory.output, backend.calls())
}

/// Splits the listener's output into its preamble and its replies.
fn replies(output: &[u8]) -> Vec<AppReply> {
    let mut reader = output;
    assert_eq!(
        wire::read_preamble(&mut reader).unwrap(),
        APP_PROTOCOL_VERSION
    );
    let mut out = Vec::new();
    while let Some(body) = wire::read_frame(&mut reader).unwrap() {
        out.push(wire::decode(&body).unwrap());
    }
    out
}

#[test]
fn listener_over_memory_serves_and_ends_cleanly() {
    let mut input = wire::preamble().to_vec();
    input.extend(hello_frame());
    input.extend(wire::encode_frame(&AppRequest::List).unwrap().iter());
    let (end, output, calls) = serve_memory(input);
    assert!(end.is_ok(), "{end:?}");
    let answers = replies(&output);
    assert!(matches!(
        answers[0],
        Ok(AppResponse::Welcome {
            permanent_secret: None
        })
    ));
    assert!(matches!(&answers[1], Ok(AppResponse::Keys(keys)) if keys.len() == 2));
    assert_eq!(calls.len(), 2);
}

#[test]
fn a_credentials_reset_closes_the_connection_at_the_server() {
    let mut input = wire::preamble().to_vec();
    input.extend(hello_frame());
    let sign = AppRequest::Sign {
        id: RESET,
        message: b"after the reset".to_vec(),
    };
    input.extend(wire::encode_frame(&sign).unwrap().iter());
    // A client that ignores the refusal and goes on is not served again.
    input.extend(wire::encode_frame(&AppRequest::List).unwrap().iter());
    let (end, output, calls) = serve_memory(input);
    assert!(
        matches!(end, Err(ServeError::Closed(AppError::CredentialsReset))),
        "{end:?}"
    );
    let answers = replies(&output);
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert!(matches!(answers[1], Err(AppError::CredentialsReset)));
    assert!(!calls.iter().any(|c| c.starts_with("list")), "{calls:?}");
}

#[test]
fn wrong_magic_gets_no_answer() {
    let (end, output, calls) = serve_memory(b"GET / HTTP/1.1\r\nHost: hsm\r\n\r\n".to_vec());
    assert!(matches!(end, Err(ServeError::Wire(WireError::BadMagic))));
    assert!(output.is_empty(), "nothing said to a stranger");
    assert!(calls.is_empty());
    assert_eq!(
        end.unwrap_err().to_string(),
        "the peer does not speak the Tessera application protocol (no TSAP preamble)"
    );

    // Over TCP the listener closes without a byte, and says why to its observer.
    let (server, ends) = observed_server();
    let mut raw = TcpStream::connect(server.local_addr()).unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let mut rest = Vec::new();
    raw.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    let why = ends.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(why.contains("no TSAP preamble"), "{why}");
}

#[test]
fn another_version_is_refused_clearly_on_both_sides() {
    // The listener answers with its own version, then closes.
    let (end, output, calls) = serve_memory(b"TSAP\x02".to_vec());
    assert!(matches!(
        end,
        Err(ServeError::Wire(WireError::Version { ours: 1, theirs: 2 }))
    ));
    assert_eq!(output, wire::preamble());
    assert!(calls.is_empty());

    // The client facing a listener of version 2, and something that is no listener at all.
    for (answer, expected) in [
        (
            &b"TSAP\x02"[..],
            "the peer speaks application protocol version 2, this end version 1: update one of them",
        ),
        (
            &b"HTTP/1.1 400 Bad Request\r\n\r\n"[..],
            "the peer does not speak the Tessera application protocol (no TSAP preamble)",
        ),
    ] {
        let listener = TcpListener::bind(loopback()).unwrap();
        let addr = listener.local_addr().unwrap();
        let fake = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut preamble = [0; PREAMBLE_LEN];
            stream.read_exact(&mut preamble).unwrap();
            stream.write_all(answer).unwrap();
            preamble
        });
        let auth = AppAuth::PermanentSecret(PERMANENT_SECRET.into());
        let error =
            AppClient::connect(addr, &partition(), ApiProvider::Jce, auth).expect_err("refused");
        assert_eq!(error.to_string(), expected);
        assert_eq!(fake.join().unwrap(), *b"TSAP\x01");
    }
}

#[test]
fn an_oversize_length_is_refused_before_reading_and_others_are_still_served() {
    // Over memory: a length of 4 GiB with no body is Oversize, not Truncated, so the listener
    // judged the length without trying to read (or allocate for) the body.
    let mut input = wire::preamble().to_vec();
    input.extend(hello_frame());
    input.extend([0xff; 4]);
    let (end, output, _) = serve_memory(input);
    assert!(matches!(
        end,
        Err(ServeError::Wire(WireError::Oversize { len: 0xffff_ffff }))
    ));
    assert!(matches!(
        replies(&output)[..],
        [Ok(AppResponse::Welcome { .. }), Err(AppError::Malformed)]
    ));

    // One past the limit, before the hello.
    let mut input = wire::preamble().to_vec();
    input.extend(((MAX_APP_FRAME + 1) as u32).to_be_bytes());
    let (end, output, _) = serve_memory(input);
    assert!(matches!(
        end,
        Err(ServeError::Wire(WireError::Oversize { .. }))
    ));
    assert!(matches!(replies(&output)[..], [Err(AppError::Malformed)]));

    // Over TCP: the listener answers at once (it does not wait for a body), closes, and
    // keeps serving other clients.
    let (server, _backend) = server();
    let mut raw = TcpStream::connect(server.local_addr()).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    raw.write_all(&wire::preamble()).unwrap();
    raw.write_all(&hello_frame()).unwrap();
    raw.write_all(&[0xff; 4]).unwrap();
    wire::read_preamble(&mut raw).unwrap();
    assert!(matches!(
        read_reply(&mut raw),
        Ok(AppResponse::Welcome { .. })
    ));
    assert!(matches!(read_reply(&mut raw), Err(AppError::Malformed)));
    assert!(wire::read_frame(&mut raw).unwrap().is_none(), "closed");

    let mut other = connect_permanent(server.local_addr());
    assert_eq!(other.list().unwrap().len(), 2);
}

#[test]
fn truncated_and_undecodable_frames_end_the_connection() {
    // A length of 10 and three bytes.
    let mut input = wire::preamble().to_vec();
    input.extend(hello_frame());
    input.extend([0, 0, 0, 10, 1, 2, 3]);
    let (end, _, calls) = serve_memory(input);
    assert!(matches!(end, Err(ServeError::Wire(WireError::Truncated))));
    assert_eq!(calls.len(), 1, "only the hello reached the backend");

    // Half a preamble.
    let (end, output, _) = serve_memory(b"TS".to_vec());
    assert!(matches!(end, Err(ServeError::Wire(WireError::Truncated))));
    assert!(output.is_empty());

    // A body that is no request (variant 200), and a request with a byte left over.
    let mut list_and_junk = wire::encode_frame(&AppRequest::List).unwrap().to_vec();
    list_and_junk[3] = 2;
    list_and_junk.push(0);
    for frame in [vec![0, 0, 0, 1, 200], list_and_junk, vec![0, 0, 0, 0]] {
        let mut input = wire::preamble().to_vec();
        input.extend(hello_frame());
        input.extend(&frame);
        let (end, output, calls) = serve_memory(input);
        assert!(
            matches!(end, Err(ServeError::Wire(WireError::Malformed))),
            "{frame:?}"
        );
        assert!(matches!(
            replies(&output)[..],
            [Ok(AppResponse::Welcome { .. }), Err(AppError::Malformed)]
        ));
        assert_eq!(calls.len(), 1);
    }

    // Over TCP: a client that stops in the middle of a frame; the observer hears why.
    let (server, ends) = observed_server();
    let mut raw = TcpStream::connect(server.local_addr()).unwrap();
    raw.write_all(&wire::preamble()).unwrap();
    raw.write_all(&hello_frame()).unwrap();
    raw.write_all(&[0, 0, 0, 10, 1, 2, 3]).unwrap();
    raw.shutdown(Shutdown::Write).unwrap();
    wire::read_preamble(&mut raw).unwrap();
    assert!(matches!(
        read_reply(&mut raw),
        Ok(AppResponse::Welcome { .. })
    ));
    assert!(matches!(read_reply(&mut raw), Err(AppError::Malformed)));
    let why = ends.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(why, "the connection closed in the middle of a frame");
}

#[test]
fn protocol_bytes_are_as_documented() {
    assert_eq!(wire::preamble(), *b"TSAP\x01");
    assert_eq!(
        *wire::encode_frame(&AppRequest::List).unwrap(),
        [0, 0, 0, 1, 2]
    );
    let verified: AppReply = Ok(AppResponse::Verified);
    assert_eq!(*wire::encode_frame(&verified).unwrap(), [0, 0, 0, 2, 0, 4]);
    let refused: AppReply = Err(AppError::NoSuchKey(KeyId(7)));
    assert_eq!(
        *wire::encode_frame(&refused).unwrap(),
        [0, 0, 0, 3, 1, 7, 7]
    );
    let delete = AppRequest::Delete { id: KeyId(300) };
    assert_eq!(
        *wire::encode_frame(&delete).unwrap(),
        [0, 0, 0, 3, 11, 0xac, 0x02]
    );
}

#[test]
fn debug_of_requests_and_responses_shows_no_secret() {
    let shown = [
        format!(
            "{:?}",
            AppRequest::Hello {
                partition: partition(),
                provider: ApiProvider::Jce,
                auth: AppAuth::SetupPassword("hunter2".into()),
            }
        ),
        format!(
            "{:?}",
            AppRequest::ImportPlain {
                kind: KeyKind::Aes256,
                label: label("k"),
                attributes: attributes(),
                material: SecretBytes::from_slice(b"hunter2"),
            }
        ),
        format!(
            "{:?}",
            AppRequest::Encrypt {
                id: KeyId(1),
                plaintext: SecretBytes::from_slice(b"hunter2"),
            }
        ),
        format!(
            "{:?}",
            AppResponse::Welcome {
                permanent_secret: Some(SecretText::new("hunter2".into()).unwrap()),
            }
        ),
        format!(
            "{:?}",
            AppResponse::Material(SecretBytes::from_slice(b"hunter2"))
        ),
        format!(
            "{:?}",
            AppResponse::Plaintext(SecretBytes::from_slice(b"hunter2"))
        ),
    ];
    for text in shown {
        assert!(!text.contains("hunter2"), "{text}");
        // Nor the bytes as numbers.
        assert!(!text.contains("104, 117, 110"), "{text}");
    }
}

/// A loopback source address of its own for connection `i`, within the per-source cap.
fn source(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        127,
        0,
        1,
        1 + (i / MAX_APP_CONNECTIONS_PER_SOURCE) as u8,
    ))
}

fn connect_permanent_from(local: IpAddr, addr: SocketAddr) -> Result<AppClient, AppClientError> {
    let auth = AppAuth::PermanentSecret(PERMANENT_SECRET.into());
    AppClient::connect_from(local, addr, &partition(), ApiProvider::Jce, auth).map(|(c, _)| c)
}

/// A raw connection from `local` that says nothing.
fn idle_from(local: IpAddr, addr: SocketAddr) -> TcpStream {
    use rustix::net::{AddressFamily, SocketType};
    let fd = rustix::net::socket(AddressFamily::INET, SocketType::STREAM, None).unwrap();
    rustix::net::bind(&fd, &SocketAddr::new(local, 0)).unwrap();
    rustix::net::connect(&fd, &addr).unwrap();
    TcpStream::from(fd)
}

/// Whether the server closed `stream` (it reads end of file or a reset within 5 s).
fn closed_by_server(stream: &mut TcpStream) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut byte = [0u8; 16];
    loop {
        match stream.read(&mut byte) {
            Ok(0) => return true,
            // The server's preamble, when ours was complete.
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

fn wait_for_slots(server: &AppServer, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.open_connections() != n {
        assert!(
            Instant::now() < deadline,
            "{} open",
            server.open_connections()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn connections_beyond_the_limit_are_closed() {
    let (server, _backend) = server();
    let addr = server.local_addr();
    let mut held: Vec<AppClient> = (0..MAX_APP_CONNECTIONS)
        .map(|i| connect_permanent_from(source(i), addr).unwrap())
        .collect();
    // A request answered on each: the server has finished authenticating every one (a client
    // is connected as soon as it sent its last handshake message, before the server read it;
    // an unauthenticated slot would be shed for the newcomer).
    for client in &mut held {
        assert_eq!(client.list().unwrap().len(), 2);
    }
    wait_for_slots(&server, MAX_APP_CONNECTIONS);

    // Every slot is authenticated: nothing is shed, the new connection is closed.
    let other = IpAddr::V4(Ipv4Addr::new(127, 0, 2, 1));
    match connect_permanent_from(other, addr) {
        Err(AppClientError::Closed | AppClientError::Wire(WireError::Io(_))) => {}
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("served a connection over the limit"),
    }
    assert_eq!(held[0].list().unwrap().len(), 2, "the others go on");

    // A freed slot is taken again.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match connect_permanent_from(other, addr) {
            Ok(mut client) => {
                assert_eq!(client.list().unwrap().len(), 2);
                break;
            }
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(error) => panic!("slot not freed: {error}"),
        }
    }
}

fn small_server(max_connections: usize, max_per_source: usize) -> AppServer {
    let options = AppServerOptions {
        limits: hsm_link::listener::ConnectionLimits {
            max_connections,
            max_per_source,
        },
        hello_timeout: APP_HELLO_TIMEOUT,
    };
    AppServer::spawn_with_options(
        loopback(),
        Arc::new(FakeBackend::default()),
        options,
        |_, _| {},
    )
    .unwrap()
}

#[test]
fn one_source_holds_at_most_its_share_of_the_slots() {
    let server = small_server(16, 2);
    let addr = server.local_addr();
    let greedy = IpAddr::V4(Ipv4Addr::new(127, 0, 3, 1));
    let mut held: Vec<TcpStream> = (0..2).map(|_| idle_from(greedy, addr)).collect();
    wait_for_slots(&server, 2);
    let mut third = idle_from(greedy, addr);
    assert!(
        closed_by_server(&mut third),
        "a third from one source is closed"
    );
    // Another source is served.
    let mut app = connect_permanent_from(IpAddr::V4(Ipv4Addr::new(127, 0, 3, 2)), addr).unwrap();
    assert_eq!(app.list().unwrap().len(), 2);
    held.clear();
}

#[test]
fn idle_connections_are_shed_for_new_ones_and_authenticated_ones_never() {
    let server = small_server(4, 2);
    let addr = server.local_addr();
    let ip = |last| IpAddr::V4(Ipv4Addr::new(127, 0, 4, last));
    let mut idle: Vec<TcpStream> = (0..4).map(|i| idle_from(ip(1 + i / 2), addr)).collect();
    wait_for_slots(&server, 4);
    // Every slot is held by someone who said nothing: the application still gets in, and
    // the oldest idle connection is the one cut.
    let mut app = connect_permanent_from(ip(9), addr).unwrap();
    assert_eq!(app.list().unwrap().len(), 2);
    assert!(
        closed_by_server(&mut idle[0]),
        "the oldest idle connection was shed"
    );
    // More idle connections shed each other, never the authenticated one.
    let mut more: Vec<TcpStream> = (0..8).map(|i| idle_from(ip(20 + i), addr)).collect();
    assert_eq!(app.list().unwrap().len(), 2, "the application goes on");
    assert!(closed_by_server(&mut more[0]));
}

#[test]
fn the_hello_has_one_deadline_however_slowly_its_bytes_arrive() {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let options = AppServerOptions {
        hello_timeout: Duration::from_secs(1),
        ..AppServerOptions::default()
    };
    let server = AppServer::spawn_with_options(
        loopback(),
        Arc::new(FakeBackend::default()),
        options,
        move |_, end| {
            let _ = tx.lock().unwrap().send(format!("{end:?}"));
        },
    )
    .unwrap();
    // One byte every 100 ms: each read is well within the idle timeout, the hello never is.
    let mut stream = TcpStream::connect(server.local_addr()).unwrap();
    let mut bytes = wire::preamble().to_vec();
    bytes.extend(hello_frame());
    let trickle = std::thread::spawn(move || {
        for byte in bytes.iter().take(50) {
            if stream.write_all(&[*byte]).is_err() {
                return true; // closed by the server
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    });
    let end = rx
        .recv_timeout(Duration::from_secs(4))
        .expect("the listener ended the connection at the hello's deadline");
    assert!(end.contains("Io"), "{end}");
    let _ = trickle.join();
}

#[test]
fn dropping_the_server_stops_listening_and_closes_connections() {
    let (server, _backend) = server();
    let addr = server.local_addr();
    let mut client = connect_permanent(addr);
    drop(server);
    assert!(matches!(
        client.list(),
        Err(AppClientError::Closed | AppClientError::Wire(_))
    ));
    assert!(matches!(client.list(), Err(AppClientError::Broken)));
    assert!(TcpStream::connect(addr).is_err(), "nobody listens any more");
}

#[test]
fn the_backend_hears_the_real_peer_address() {
    // `std` cannot choose a client's source address, and on Linux a connection to 127.0.0.2
    // still comes from 127.0.0.1. A dual-stack listener does see two addresses: 127.0.0.1
    // (reported as ::ffff:127.0.0.1, which the listener turns back into IPv4) and ::1.
    let backend = Arc::new(FakeBackend::default());
    let any6 = SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0));
    let Ok(server) = AppServer::spawn(any6, backend.clone()) else {
        return; // no IPv6 on this machine
    };
    let port = server.local_addr().port();
    let mut seen = Vec::new();
    for ip in [
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ] {
        let auth = AppAuth::PermanentSecret(PERMANENT_SECRET.into());
        match AppClient::connect(
            SocketAddr::new(ip, port),
            &partition(),
            ApiProvider::Jce,
            auth,
        ) {
            Ok(_) => seen.push(ip),
            // A listener bound IPv6-only, or no ::1: nothing to compare.
            Err(AppClientError::Wire(WireError::Io(_))) => return,
            Err(other) => panic!("{other}"),
        }
    }
    assert_eq!(
        backend.calls(),
        [
            "authenticate 127.0.0.1 payments Jce permanent",
            "authenticate ::1 payments Jce permanent",
        ]
    );
    assert_eq!(seen.len(), 2);
}
