//! The terminal's side of the hello and handshake.

use audit_log::AuditKey;
use snow::{Builder, HandshakeState};
use zeroize::Zeroizing;

use super::{PAIRING_PATTERN, PINNED_PATTERN, binding, params};
use crate::domain::PartitionId;
use crate::error::{Error, NoiseStep, PeerMisbehaved};
use crate::frame::LinkFrame;
use crate::hello::{ClientHello, Refusal, ServerHello, SessionMode, VersionRange, prologue};
use crate::keys::{Fingerprint, PublicKey, StaticKeypair};
use crate::limits::{DEFAULT_REKEY_INTERVAL, MAX_NOISE_MESSAGE, PROTOCOL_VERSIONS};
use crate::message::Packet;
use crate::pairing::PairingCode;
use crate::session::Session;

/// How the terminal meets the HSM.
pub enum ClientMode {
    /// First contact, with the partition's one-time pairing code.
    Pairing(PairingCode),
    /// Later sessions, with the HSM's key pinned at pairing.
    Pinned {
        /// The HSM's pinned static key.
        hsm: PublicKey,
    },
}

/// Tunables of the client handshake.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Protocol versions offered.
    pub versions: VersionRange,
    /// Messages per direction between rekeys.
    pub rekey_interval: u64,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            versions: PROTOCOL_VERSIONS,
            rekey_interval: DEFAULT_REKEY_INTERVAL,
        }
    }
}

enum Credential {
    Psk(Zeroizing<[u8; 32]>),
    Pinned(PublicKey),
}

/// Starts a connection: returns the first state and the hello frame to send.
pub fn start(
    identity: &StaticKeypair,
    partition: PartitionId,
    mode: ClientMode,
    options: ClientOptions,
) -> (AwaitServerHello, Vec<u8>) {
    let (session_mode, credential) = match mode {
        ClientMode::Pairing(code) => (SessionMode::Pairing, Credential::Psk(code.psk(&partition))),
        ClientMode::Pinned { hsm } => (SessionMode::Pinned, Credential::Pinned(hsm)),
    };
    let hello = ClientHello {
        versions: options.versions,
        partition: partition.clone(),
        mode: session_mode,
        terminal: identity.public().fingerprint(),
    }
    .encode();
    let frame = LinkFrame::ClientHello(&hello).to_vec();
    let state = AwaitServerHello {
        secret: Zeroizing::new(*identity.secret_bytes()),
        partition,
        credential,
        options,
        hello,
    };
    (state, frame)
}

fn refusal(body: &[u8]) -> Error {
    match Refusal::decode(body) {
        Ok(r) => Error::Refused(r),
        Err(e) => Error::Hello(e),
    }
}

/// Waiting for the server's hello.
pub struct AwaitServerHello {
    secret: Zeroizing<[u8; 32]>,
    partition: PartitionId,
    credential: Credential,
    options: ClientOptions,
    hello: Vec<u8>,
}

impl AwaitServerHello {
    /// Takes the server's hello: on acceptance, returns the next state and the first handshake
    /// message.
    pub fn handle(self, frame: &[u8]) -> Result<(AwaitHandshake, Vec<u8>), Error> {
        let body = match LinkFrame::parse(frame)? {
            LinkFrame::ServerHello(body) => body,
            LinkFrame::Refusal(body) => return Err(refusal(body)),
            _ => return Err(PeerMisbehaved::ExpectedServerHello.into()),
        };
        let (version, hsm) = match ServerHello::decode(body)? {
            ServerHello::Refuse(r) => return Err(Error::Refused(r)),
            ServerHello::Accept { version, hsm } => (version, hsm),
        };
        if version < self.options.versions.min || version > self.options.versions.max {
            return Err(PeerMisbehaved::UnofferedVersion { chosen: version }.into());
        }
        let prologue = prologue(&self.hello, body);
        let noise = match &self.credential {
            Credential::Psk(psk) => Builder::new(params(PAIRING_PATTERN))
                .local_private_key(&self.secret[..])
                .and_then(|b| b.psk(3, psk))
                .and_then(|b| b.prologue(&prologue))
                .and_then(|b| b.build_initiator()),
            Credential::Pinned(pinned) => {
                if pinned.fingerprint() != hsm {
                    return Err(Error::HsmKeyMismatch {
                        expected: pinned.fingerprint(),
                        got: hsm,
                    });
                }
                Builder::new(params(PINNED_PATTERN))
                    .local_private_key(&self.secret[..])
                    .and_then(|b| b.remote_public_key(&pinned.0))
                    .and_then(|b| b.prologue(&prologue))
                    .and_then(|b| b.build_initiator())
            }
        };
        let mut noise = noise.map_err(|_| NoiseStep::SetUp)?;
        let mut buf = vec![0u8; MAX_NOISE_MESSAGE];
        let n = noise
            .write_message(&[], &mut buf)
            .map_err(|_| NoiseStep::FirstMessage)?;
        let frame = LinkFrame::Handshake(&buf[..n]).to_vec();
        Ok((
            AwaitHandshake {
                noise,
                pairing: matches!(self.credential, Credential::Psk(_)),
                hsm,
                version,
                partition: self.partition,
                rekey_interval: self.options.rekey_interval,
            },
            frame,
        ))
    }
}

/// Waiting for the server's handshake message.
pub struct AwaitHandshake {
    noise: HandshakeState,
    pairing: bool,
    hsm: Fingerprint,
    version: u16,
    partition: PartitionId,
    rekey_interval: u64,
}

/// Where the client handshake goes after the server's handshake message.
pub enum ClientProgress {
    /// Pairing: send the final message, then wait for the HSM's proof that it knew the code.
    Pairing(AwaitPairingConfirmation, Vec<u8>),
    /// Pinned: the session is up.
    Established(Session),
}

impl AwaitHandshake {
    /// Takes the server's handshake message.
    pub fn handle(mut self, frame: &[u8]) -> Result<ClientProgress, Error> {
        let msg = match LinkFrame::parse(frame)? {
            LinkFrame::Handshake(msg) => msg,
            LinkFrame::Refusal(body) => return Err(refusal(body)),
            _ => return Err(PeerMisbehaved::ExpectedHandshakeMessage.into()),
        };
        let mut buf = vec![0u8; MAX_NOISE_MESSAGE];
        self.noise
            .read_message(msg, &mut buf)
            .map_err(|_| Error::Authentication {
                during: "the handshake",
            })?;
        let remote = remote_static(&self.noise)?;
        if remote.fingerprint() != self.hsm {
            return Err(Error::HsmKeyMismatch {
                expected: self.hsm,
                got: remote.fingerprint(),
            });
        }
        let final_frame = if self.pairing {
            let n = self
                .noise
                .write_message(&[], &mut buf)
                .map_err(|_| NoiseStep::FinalMessage)?;
            Some(LinkFrame::Handshake(&buf[..n]).to_vec())
        } else {
            None
        };
        let hash = binding(self.noise.get_handshake_hash());
        let noise = self
            .noise
            .into_stateless_transport_mode()
            .map_err(|_| NoiseStep::Finish)?;
        let session = Session::new(noise, hash, self.version, remote, self.rekey_interval);
        Ok(match final_frame {
            Some(frame) => ClientProgress::Pairing(
                AwaitPairingConfirmation {
                    session,
                    partition: self.partition,
                },
                frame,
            ),
            None => ClientProgress::Established(session),
        })
    }
}

pub(crate) fn remote_static(noise: &HandshakeState) -> Result<PublicKey, Error> {
    let key: [u8; 32] = noise
        .get_remote_static()
        .and_then(|k| k.try_into().ok())
        .ok_or(PeerMisbehaved::NoStaticKey)?;
    Ok(PublicKey(key))
}

/// Pairing: waiting for the HSM's first transport message, which proves that it knew the code.
pub struct AwaitPairingConfirmation {
    session: Session,
    partition: PartitionId,
}

impl AwaitPairingConfirmation {
    /// Takes the HSM's confirmation; only now may the terminal pin the HSM's key, and the audit
    /// key it sent with the confirmation (if it keeps a log).
    pub fn handle(mut self, frame: &[u8]) -> Result<(Session, Option<AuditKey>), Error> {
        if let Ok(LinkFrame::Refusal(body)) = LinkFrame::parse(frame) {
            return Err(refusal(body));
        }
        match self.session.open(frame)? {
            Packet::Paired {
                partition,
                audit_key,
            } if partition == self.partition => {
                let audit_key = audit_key
                    .map(|bytes| AuditKey::from_bytes(&bytes))
                    .transpose()
                    .map_err(|_| PeerMisbehaved::InvalidAuditKey)?;
                Ok((self.session, audit_key))
            }
            Packet::Paired { .. } => Err(PeerMisbehaved::PairedWithAnotherPartition.into()),
            Packet::Close(reason) => Err(Error::Closed(reason)),
            _ => Err(PeerMisbehaved::ExpectedPairingConfirmation.into()),
        }
    }
}
