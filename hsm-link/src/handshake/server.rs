//! The HSM's side of the hello and handshake.

use snow::{Builder, HandshakeState};
use zeroize::Zeroizing;

use super::client::remote_static;
use super::{PAIRING_PATTERN, PINNED_PATTERN, binding, params};
use crate::domain::PartitionId;
use crate::error::{Error, NoiseStep, PeerMisbehaved};
use crate::frame::LinkFrame;
use crate::hello::{ClientHello, Refusal, ServerHello, SessionMode, VersionRange, prologue};
use crate::keys::{Fingerprint, PublicKey, StaticKeypair};
use crate::limits::{DEFAULT_REKEY_INTERVAL, PROTOCOL_VERSIONS};
use crate::message::Packet;
use crate::session::Session;
use crate::trust::{PairingOffer, TrustStore};

/// Tunables of the server handshake.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Protocol versions accepted.
    pub versions: VersionRange,
    /// Messages per direction between rekeys.
    pub rekey_interval: u64,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            versions: PROTOCOL_VERSIONS,
            rekey_interval: DEFAULT_REKEY_INTERVAL,
        }
    }
}

/// A connection the server ends: the error, and the frame (a plaintext refusal) to send first.
#[derive(Debug)]
pub struct Rejection {
    /// What went wrong.
    pub error: Error,
    /// A frame to send before closing, if the terminal should be told.
    pub reply: Option<Vec<u8>>,
}

impl Rejection {
    fn refuse(refusal: Refusal, framed_as_hello: bool) -> Self {
        let reply = if framed_as_hello {
            LinkFrame::ServerHello(&ServerHello::Refuse(refusal.clone()).encode()).to_vec()
        } else {
            LinkFrame::Refusal(&refusal.encode()).to_vec()
        };
        Rejection {
            error: Error::Refused(refusal),
            reply: Some(reply),
        }
    }

    /// A refusal in place of the server hello.
    fn hello(refusal: Refusal) -> Self {
        Rejection::refuse(refusal, true)
    }

    fn silent(error: Error) -> Self {
        Rejection { error, reply: None }
    }
}

/// A session the server has established.
#[derive(Debug)]
pub struct ServerSession {
    /// The secure session.
    pub session: Session,
    /// The partition the terminal administers.
    pub partition: PartitionId,
    /// The terminal's authenticated static key.
    pub terminal: PublicKey,
    /// The HSM's own static key.
    pub hsm: PublicKey,
    /// Whether this session began with a pairing.
    pub paired_now: bool,
}

/// Takes a client hello: accepts (returning the next state and the server hello) or refuses.
pub fn accept(
    identity: &StaticKeypair,
    options: &ServerOptions,
    trust: &dyn TrustStore,
    frame: &[u8],
) -> Result<(AwaitFirstMessage, Vec<u8>), Rejection> {
    let body = match LinkFrame::parse(frame) {
        Ok(LinkFrame::ClientHello(body)) => body,
        Ok(_) => return Err(Rejection::hello(Refusal::MalformedHello)),
        Err(e) => return Err(Rejection::silent(e.into())),
    };
    let hello = ClientHello::decode(body).map_err(|_| Rejection::hello(Refusal::MalformedHello))?;
    let version = options
        .versions
        .highest_common(&hello.versions)
        .ok_or_else(|| {
            Rejection::hello(Refusal::VersionMismatch {
                supported: options.versions,
                offered: hello.versions,
            })
        })?;
    let credential = credential(trust, &hello)?;
    let reply = ServerHello::Accept {
        version,
        hsm: identity.public().fingerprint(),
    }
    .encode();
    let noise = responder(identity, &credential, &prologue(body, &reply))?;
    let state = AwaitFirstMessage {
        noise,
        hsm: identity.public(),
        pairing: matches!(credential, Credential::Psk(_)),
        terminal: hello.terminal,
        partition: hello.partition,
        version,
        rekey_interval: options.rekey_interval,
        credential,
    };
    Ok((state, LinkFrame::ServerHello(&reply).to_vec()))
}

/// What the terminal must prove in the handshake: the pairing code, or its pinned key.
enum Credential {
    Psk(Zeroizing<[u8; 32]>),
    Pinned(PublicKey),
}

/// Looks up the hello's partition and what its mode needs; refuses clearly when either is
/// missing, before any cryptography runs.
fn credential(trust: &dyn TrustStore, hello: &ClientHello) -> Result<Credential, Rejection> {
    let partition = &hello.partition;
    if !trust.partition_exists(partition) {
        return Err(Rejection::hello(Refusal::UnknownPartition {
            partition: partition.clone(),
        }));
    }
    match hello.mode {
        SessionMode::Pairing => match trust.pairing_offer(partition) {
            PairingOffer::Open(psk) => Ok(Credential::Psk(psk)),
            PairingOffer::None => Err(Rejection::hello(Refusal::NoPairingCode {
                partition: partition.clone(),
            })),
        },
        SessionMode::Pinned => match trust.pinned_terminal(partition, &hello.terminal) {
            Some(key) => Ok(Credential::Pinned(key)),
            None => Err(Rejection::hello(Refusal::UnknownTerminal {
                terminal: hello.terminal,
                partition: partition.clone(),
            })),
        },
    }
}

/// The Noise responder for `credential`, with both hellos in its prologue.
fn responder(
    identity: &StaticKeypair,
    credential: &Credential,
    prologue: &[u8],
) -> Result<HandshakeState, Rejection> {
    let builder = match credential {
        Credential::Psk(psk) => Builder::new(params(PAIRING_PATTERN))
            .local_private_key(identity.secret_bytes())
            .and_then(|b| b.psk(3, psk)),
        Credential::Pinned(terminal) => Builder::new(params(PINNED_PATTERN))
            .local_private_key(identity.secret_bytes())
            .and_then(|b| b.remote_public_key(&terminal.0)),
    };
    builder
        .and_then(|b| b.prologue(prologue))
        .and_then(|b| b.build_responder())
        .map_err(|_| Rejection::silent(NoiseStep::SetUp.into()))
}

/// Room for the server's own handshake messages (they carry no payload: 96 bytes at most).
const HANDSHAKE_REPLY_ROOM: usize = 256;

/// A buffer for reading `msg` (its payload is never longer than it) and writing the reply:
/// sized by the bytes that arrived, not by the largest Noise message, so that a peer before its
/// handshake cannot make the HSM allocate more than it sent.
fn handshake_buffer(msg: &[u8]) -> Vec<u8> {
    vec![0u8; msg.len().max(HANDSHAKE_REPLY_ROOM)]
}

fn handshake_message(frame: &[u8]) -> Result<&[u8], Rejection> {
    match LinkFrame::parse(frame) {
        Ok(LinkFrame::Handshake(msg)) => Ok(msg),
        Ok(_) => Err(Rejection::silent(
            PeerMisbehaved::ExpectedHandshakeMessage.into(),
        )),
        Err(e) => Err(Rejection::silent(e.into())),
    }
}

/// Waiting for the terminal's first handshake message.
pub struct AwaitFirstMessage {
    noise: HandshakeState,
    hsm: PublicKey,
    pairing: bool,
    terminal: Fingerprint,
    partition: PartitionId,
    version: u16,
    rekey_interval: u64,
    /// Kept (and zeroized on drop) until the handshake ends; a pairing names its code to the
    /// trust store, so that a code reissued meanwhile is not spent or burned by this handshake.
    credential: Credential,
}

/// Where the server handshake goes after the terminal's first message.
pub enum ServerProgress {
    /// Pinned: the session is up; send the frame.
    Established(Box<ServerSession>, Vec<u8>),
    /// Pairing: send the frame, then wait for the terminal's final message.
    AwaitFinal(Box<AwaitFinalMessage>, Vec<u8>),
}

impl AwaitFirstMessage {
    /// Takes the terminal's first handshake message.
    pub fn handle(mut self, frame: &[u8]) -> Result<ServerProgress, Rejection> {
        let msg = handshake_message(frame)?;
        let mut buf = handshake_buffer(msg);
        let payload = match self.noise.read_message(msg, &mut buf) {
            Ok(n) => n,
            Err(_) if self.pairing => {
                return Err(Rejection::silent(Error::Authentication {
                    during: "the handshake",
                }));
            }
            Err(_) => {
                let mut r = Rejection::refuse(Refusal::HandshakeFailed, false);
                r.error = Error::Authentication {
                    during: "the handshake",
                };
                return Err(r);
            }
        };
        if payload != 0 {
            // No request travels before the handshake completes.
            return Err(Rejection::silent(
                PeerMisbehaved::PayloadInFirstHandshakeMessage.into(),
            ));
        }
        let n = self
            .noise
            .write_message(&[], &mut buf)
            .map_err(|_| Rejection::silent(NoiseStep::Reply.into()))?;
        let reply = LinkFrame::Handshake(&buf[..n]).to_vec();
        if self.pairing {
            return Ok(ServerProgress::AwaitFinal(
                Box::new(AwaitFinalMessage { inner: self }),
                reply,
            ));
        }
        let terminal = remote_static(&self.noise).map_err(Rejection::silent)?;
        let session = finish(self.noise, self.version, terminal, self.rekey_interval)?;
        Ok(ServerProgress::Established(
            Box::new(ServerSession {
                session,
                partition: self.partition,
                terminal,
                hsm: self.hsm,
                paired_now: false,
            }),
            reply,
        ))
    }
}

fn finish(
    noise: HandshakeState,
    version: u16,
    remote: PublicKey,
    rekey_interval: u64,
) -> Result<Session, Rejection> {
    let hash = binding(noise.get_handshake_hash());
    let noise = noise
        .into_stateless_transport_mode()
        .map_err(|_| Rejection::silent(NoiseStep::Finish.into()))?;
    Ok(Session::new(noise, hash, version, remote, rekey_interval))
}

/// Pairing: waiting for the terminal's final message, the one that proves the code.
pub struct AwaitFinalMessage {
    inner: AwaitFirstMessage,
}

impl AwaitFinalMessage {
    /// Takes the final message. On success the code is spent, the terminal pinned, and the
    /// returned frame (the pairing confirmation) must be sent.
    pub fn handle(
        self,
        frame: &[u8],
        trust: &dyn TrustStore,
    ) -> Result<(ServerSession, Vec<u8>), Rejection> {
        let AwaitFirstMessage {
            mut noise,
            hsm,
            terminal,
            partition,
            version,
            rekey_interval,
            credential,
            ..
        } = self.inner;
        // Only a pairing reaches its final message, and a pairing's credential is its code.
        let Credential::Psk(psk) = credential else {
            return Err(Rejection::refuse(Refusal::HandshakeFailed, false));
        };
        let msg = handshake_message(frame)?;
        let mut buf = handshake_buffer(msg);
        let payload = match noise.read_message(msg, &mut buf) {
            Ok(n) => n,
            Err(_) => {
                let attempts_left = trust.pairing_failed(&partition, &psk);
                let mut r = Rejection::refuse(Refusal::PairingFailed { attempts_left }, false);
                r.error = Error::Refused(Refusal::PairingFailed { attempts_left });
                return Err(r);
            }
        };
        if payload != 0 {
            return Err(Rejection::silent(
                PeerMisbehaved::PayloadInFinalHandshakeMessage.into(),
            ));
        }
        let key = remote_static(&noise).map_err(Rejection::silent)?;
        if key.fingerprint() != terminal {
            return Err(Rejection::refuse(Refusal::HandshakeFailed, false));
        }
        if !trust.pairing_succeeded(&partition, &psk, key) {
            return Err(Rejection::refuse(
                Refusal::NoPairingCode {
                    partition: partition.clone(),
                },
                false,
            ));
        }
        let mut session = finish(noise, version, key, rekey_interval)?;
        let confirm = session
            .seal(&Packet::Paired {
                partition: partition.clone(),
                audit_key: trust.audit_key(&partition).map(|k| k.to_bytes()),
            })
            .map_err(Rejection::silent)?;
        Ok((
            ServerSession {
                session,
                partition,
                terminal: key,
                hsm,
                paired_now: true,
            },
            confirm,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::client::{self as c, ClientMode, ClientOptions};
    use crate::limits::MAX_NOISE_MESSAGE;
    use crate::trust::MemoryTrustStore;

    /// A terminal that does not follow the rules: its own Noise initiator, built from the two
    /// hellos exactly as the real terminal builds it, so that only the payload differs.
    fn rogue_initiator(
        terminal: &StaticKeypair,
        pattern: &str,
        credential: &Credential,
        hello: &[u8],
        reply: &[u8],
    ) -> HandshakeState {
        let (LinkFrame::ClientHello(hello), LinkFrame::ServerHello(reply)) = (
            LinkFrame::parse(hello).unwrap(),
            LinkFrame::parse(reply).unwrap(),
        ) else {
            panic!("hellos expected");
        };
        let prologue = prologue(hello, reply);
        let builder = Builder::new(params(pattern)).local_private_key(terminal.secret_bytes());
        let builder = match credential {
            Credential::Psk(psk) => builder.and_then(|b| b.psk(3, psk)),
            Credential::Pinned(hsm) => builder.and_then(|b| b.remote_public_key(&hsm.0)),
        };
        builder
            .and_then(|b| b.prologue(&prologue))
            .and_then(|b| b.build_initiator())
            .unwrap()
    }

    struct Setup {
        trust: MemoryTrustStore,
        partition: PartitionId,
        hsm: StaticKeypair,
        terminal: StaticKeypair,
    }

    fn setup() -> Setup {
        let partition = PartitionId::new("p").unwrap();
        let trust = MemoryTrustStore::default();
        trust.add_partition(partition.clone());
        Setup {
            trust,
            partition,
            hsm: StaticKeypair::generate().unwrap(),
            terminal: StaticKeypair::generate().unwrap(),
        }
    }

    fn peer_fault(rejection: Rejection) -> PeerMisbehaved {
        assert!(rejection.reply.is_none(), "a protocol fault gets no answer");
        match rejection.error {
            Error::PeerMisbehaved(fault) => fault,
            other => panic!("expected a peer fault, got {other:?}"),
        }
    }

    #[test]
    fn a_request_hidden_in_the_first_handshake_message_is_named() {
        let s = setup();
        let code = s.trust.issue_pairing_code(&s.partition).unwrap();
        let psk = code.psk(&s.partition);
        assert!(
            s.trust
                .pairing_succeeded(&s.partition, &psk, s.terminal.public())
        );
        let mode = ClientMode::Pinned {
            hsm: s.hsm.public(),
        };
        let (_, hello) = c::start(&s.terminal, s.partition, mode, ClientOptions::default());
        let (state, reply) = accept(&s.hsm, &ServerOptions::default(), &s.trust, &hello).unwrap();
        let credential = Credential::Pinned(s.hsm.public());
        let mut rogue = rogue_initiator(&s.terminal, PINNED_PATTERN, &credential, &hello, &reply);
        let mut buf = vec![0u8; MAX_NOISE_MESSAGE];
        let n = rogue.write_message(b"early request", &mut buf).unwrap();
        let Err(rejection) = state.handle(&LinkFrame::Handshake(&buf[..n]).to_vec()) else {
            panic!("a payload in the first message was accepted");
        };
        assert_eq!(
            peer_fault(rejection),
            PeerMisbehaved::PayloadInFirstHandshakeMessage
        );
    }

    #[test]
    fn a_payload_in_the_final_pairing_message_is_named_and_pins_nothing() {
        let s = setup();
        let code = s.trust.issue_pairing_code(&s.partition).unwrap();
        let psk = code.psk(&s.partition);
        let mode = ClientMode::Pairing(code);
        let (_, hello) = c::start(
            &s.terminal,
            s.partition.clone(),
            mode,
            ClientOptions::default(),
        );
        let (state, reply) = accept(&s.hsm, &ServerOptions::default(), &s.trust, &hello).unwrap();
        let credential = Credential::Psk(psk);
        let mut rogue = rogue_initiator(&s.terminal, PAIRING_PATTERN, &credential, &hello, &reply);
        let mut buf = vec![0u8; MAX_NOISE_MESSAGE];
        let n = rogue.write_message(&[], &mut buf).unwrap();
        let Ok(ServerProgress::AwaitFinal(state, second)) =
            state.handle(&LinkFrame::Handshake(&buf[..n]).to_vec())
        else {
            panic!("pairing expected");
        };
        let LinkFrame::Handshake(second) = LinkFrame::parse(&second).unwrap() else {
            panic!("handshake frame expected");
        };
        rogue.read_message(second, &mut buf).unwrap();
        let n = rogue.write_message(b"early request", &mut buf).unwrap();
        let Err(rejection) = state.handle(&LinkFrame::Handshake(&buf[..n]).to_vec(), &s.trust)
        else {
            panic!("a payload in the final message was accepted");
        };
        assert_eq!(
            peer_fault(rejection),
            PeerMisbehaved::PayloadInFinalHandshakeMessage
        );
        assert!(s.trust.pinned_terminals(&s.partition).is_empty());
    }

    /// Runs a pairing handshake under `old` up to the terminal's final message, reissues the
    /// code meanwhile when `reissue`, and hands the final message to the server: the refusal,
    /// if any.
    fn pair_across_a_reissue(s: &Setup, right_code: bool, reissue: bool) -> Option<Rejection> {
        let old = s.trust.issue_pairing_code(&s.partition).unwrap();
        let offered = if right_code {
            old
        } else {
            crate::pairing::PairingCode::generate().unwrap()
        };
        let mode = ClientMode::Pairing(offered);
        let (client, hello) = c::start(
            &s.terminal,
            s.partition.clone(),
            mode,
            ClientOptions::default(),
        );
        let (server, reply) = accept(&s.hsm, &ServerOptions::default(), &s.trust, &hello).unwrap();
        let (client, first) = client.handle(&reply).unwrap();
        let Ok(ServerProgress::AwaitFinal(server, second)) = server.handle(&first) else {
            panic!("pairing expected");
        };
        let final_frame = match client.handle(&second) {
            Ok(c::ClientProgress::Pairing(_, last)) => last,
            Ok(_) => panic!("pairing expected"),
            // A wrong code: the terminal cannot read the server's message; send garbage of
            // the same shape so the server counts a failure.
            Err(_) => LinkFrame::Handshake(&[0u8; 64]).to_vec(),
        };
        if reissue {
            s.trust.issue_pairing_code(&s.partition).unwrap();
        }
        server.handle(&final_frame, &s.trust).err()
    }

    #[test]
    fn a_code_reissued_mid_handshake_ends_the_pairing_begun_under_the_old_one() {
        let s = setup();
        // Without a reissue the same run pairs (the test can fail).
        assert!(pair_across_a_reissue(&s, true, false).is_none());
        assert_eq!(s.trust.pinned_terminals(&s.partition).len(), 1);
        let s = setup();
        let rejection = pair_across_a_reissue(&s, true, true).expect("refused");
        assert!(rejection.reply.is_some(), "the terminal is told");
        assert!(s.trust.pinned_terminals(&s.partition).is_empty());
        // The new code is still outstanding.
        assert!(matches!(
            s.trust.pairing_offer(&s.partition),
            PairingOffer::Open(_)
        ));
    }

    #[test]
    fn failures_under_a_superseded_code_do_not_burn_the_new_one() {
        let s = setup();
        for _ in 0..crate::limits::DEFAULT_MAX_PAIRING_FAILURES {
            // Each run issues a code, fails under it, and reissues before the failure lands.
            let rejection = pair_across_a_reissue(&s, false, true).expect("refused");
            match rejection.error {
                Error::Refused(Refusal::PairingFailed { attempts_left }) => {
                    assert_eq!(attempts_left, 0, "not counted against the new code")
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(!s.trust.code_burned(&s.partition));
        assert!(matches!(
            s.trust.pairing_offer(&s.partition),
            PairingOffer::Open(_)
        ));
    }

    #[test]
    fn a_weak_audit_key_in_the_pairing_confirmation_is_refused() {
        let s = setup();
        let code = s.trust.issue_pairing_code(&s.partition).unwrap();
        let mode = ClientMode::Pairing(code);
        let (client, hello) = c::start(
            &s.terminal,
            s.partition.clone(),
            mode,
            ClientOptions::default(),
        );
        let (server, reply) = accept(&s.hsm, &ServerOptions::default(), &s.trust, &hello).unwrap();
        let (client, first) = client.handle(&reply).unwrap();
        let Ok(ServerProgress::AwaitFinal(server, second)) = server.handle(&first) else {
            panic!("pairing expected");
        };
        let Ok(c::ClientProgress::Pairing(client, last)) = client.handle(&second) else {
            panic!("pairing expected");
        };
        // A hostile HSM that knew the code: its own confirmation, with the identity point
        // (small order: every signature would verify under it) as the audit key.
        let inner = server.inner;
        let mut noise = inner.noise;
        let LinkFrame::Handshake(msg) = LinkFrame::parse(&last).unwrap() else {
            panic!("handshake frame expected");
        };
        noise.read_message(msg, &mut handshake_buffer(msg)).unwrap();
        let terminal = remote_static(&noise).unwrap();
        let mut session = finish(noise, inner.version, terminal, inner.rekey_interval).unwrap();
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let weak = Packet::Paired {
            partition: s.partition.clone(),
            audit_key: Some(identity),
        };
        let Err(error) = client.handle(&session.seal(&weak).unwrap()) else {
            panic!("a weak audit key was pinned");
        };
        assert!(
            matches!(
                error,
                Error::PeerMisbehaved(PeerMisbehaved::InvalidAuditKey)
            ),
            "{error:?}"
        );
    }

    #[test]
    fn a_frame_other_than_a_handshake_message_is_named() {
        let s = setup();
        let code = s.trust.issue_pairing_code(&s.partition).unwrap();
        let mode = ClientMode::Pairing(code);
        let (_, hello) = c::start(&s.terminal, s.partition, mode, ClientOptions::default());
        let (state, _) = accept(&s.hsm, &ServerOptions::default(), &s.trust, &hello).unwrap();
        let Err(rejection) = state.handle(&hello) else {
            panic!("a second hello was taken for a handshake message");
        };
        assert_eq!(
            peer_fault(rejection),
            PeerMisbehaved::ExpectedHandshakeMessage
        );
    }
}
