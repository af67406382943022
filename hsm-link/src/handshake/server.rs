//! The HSM's side of the hello and handshake.

use snow::{Builder, HandshakeState};
use zeroize::Zeroizing;

use super::client::remote_static;
use super::{PAIRING_PATTERN, PINNED_PATTERN, binding, params};
use crate::domain::PartitionId;
use crate::error::Error;
use crate::frame::LinkFrame;
use crate::hello::{ClientHello, Refusal, ServerHello, SessionMode, VersionRange, prologue};
use crate::keys::{Fingerprint, PublicKey, StaticKeypair};
use crate::limits::{DEFAULT_REKEY_INTERVAL, MAX_NOISE_MESSAGE, PROTOCOL_VERSIONS};
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
        Ok(_) => return Err(Rejection::refuse(Refusal::MalformedHello, true)),
        Err(e) => return Err(Rejection::silent(e.into())),
    };
    let hello = match ClientHello::decode(body) {
        Ok(hello) => hello,
        Err(_) => return Err(Rejection::refuse(Refusal::MalformedHello, true)),
    };
    let Some(version) = options.versions.highest_common(&hello.versions) else {
        return Err(Rejection::refuse(
            Refusal::VersionMismatch {
                supported: options.versions,
                offered: hello.versions,
            },
            true,
        ));
    };
    if !trust.partition_exists(&hello.partition) {
        return Err(Rejection::refuse(
            Refusal::UnknownPartition {
                partition: hello.partition,
            },
            true,
        ));
    }
    let credential = match hello.mode {
        SessionMode::Pairing => match trust.pairing_offer(&hello.partition) {
            PairingOffer::Open(psk) => Ok(psk),
            PairingOffer::None => {
                return Err(Rejection::refuse(
                    Refusal::NoPairingCode {
                        partition: hello.partition,
                    },
                    true,
                ));
            }
        },
        SessionMode::Pinned => match trust.pinned_terminal(&hello.partition, &hello.terminal) {
            Some(key) => Err(key),
            None => {
                return Err(Rejection::refuse(
                    Refusal::UnknownTerminal {
                        terminal: hello.terminal,
                        partition: hello.partition,
                    },
                    true,
                ));
            }
        },
    };
    let reply = ServerHello::Accept {
        version,
        hsm: identity.public().fingerprint(),
    }
    .encode();
    let prologue = prologue(body, &reply);
    let noise = match &credential {
        Ok(psk) => Builder::new(params(PAIRING_PATTERN))
            .local_private_key(identity.secret_bytes())
            .and_then(|b| b.psk(3, psk))
            .and_then(|b| b.prologue(&prologue))
            .and_then(|b| b.build_responder()),
        Err(terminal) => Builder::new(params(PINNED_PATTERN))
            .local_private_key(identity.secret_bytes())
            .and_then(|b| b.remote_public_key(&terminal.0))
            .and_then(|b| b.prologue(&prologue))
            .and_then(|b| b.build_responder()),
    }
    .map_err(|_| Rejection::silent(Error::Protocol("Noise set-up failed")))?;
    let state = AwaitFirstMessage {
        noise,
        hsm: identity.public(),
        pairing: credential.is_ok(),
        terminal: hello.terminal,
        partition: hello.partition,
        version,
        rekey_interval: options.rekey_interval,
        _psk: credential.ok(),
    };
    Ok((state, LinkFrame::ServerHello(&reply).to_vec()))
}

fn handshake_message(frame: &[u8]) -> Result<&[u8], Rejection> {
    match LinkFrame::parse(frame) {
        Ok(LinkFrame::Handshake(msg)) => Ok(msg),
        Ok(_) => Err(Rejection::silent(Error::Protocol(
            "expected a handshake message",
        ))),
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
    _psk: Option<Zeroizing<[u8; 32]>>,
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
        let mut buf = vec![0u8; MAX_NOISE_MESSAGE];
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
            return Err(Rejection::silent(Error::Protocol(
                "payload in the first handshake message",
            )));
        }
        let n = self
            .noise
            .write_message(&[], &mut buf)
            .map_err(|_| Rejection::silent(Error::Protocol("Noise reply failed")))?;
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
        .map_err(|_| Rejection::silent(Error::Protocol("handshake not finished")))?;
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
            ..
        } = self.inner;
        let msg = handshake_message(frame)?;
        let mut buf = vec![0u8; MAX_NOISE_MESSAGE];
        let payload = match noise.read_message(msg, &mut buf) {
            Ok(n) => n,
            Err(_) => {
                let attempts_left = trust.pairing_failed(&partition);
                let mut r = Rejection::refuse(Refusal::PairingFailed { attempts_left }, false);
                r.error = Error::Refused(Refusal::PairingFailed { attempts_left });
                return Err(r);
            }
        };
        if payload != 0 {
            return Err(Rejection::silent(Error::Protocol(
                "payload in the final handshake message",
            )));
        }
        let key = remote_static(&noise).map_err(Rejection::silent)?;
        if key.fingerprint() != terminal {
            return Err(Rejection::refuse(Refusal::HandshakeFailed, false));
        }
        if !trust.pairing_succeeded(&partition, key) {
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
