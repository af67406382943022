//! The link's one error type.

use std::time::Duration;

use crate::frame::FrameError;
use crate::hello::{HelloError, Refusal};
use crate::keys::Fingerprint;
use crate::message::{CloseReason, RemoteError};
use crate::transport::TransportError;

/// Everything that can go wrong on the link, by cause. A cryptographic failure stays opaque
/// ([`Error::Authentication`]): it never says which check failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The transport failed (I/O, closed, line fault).
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// A frame that could not be decoded.
    #[error("bad frame: {0}")]
    Frame(#[from] FrameError),
    /// A hello that could not be decoded.
    #[error("bad hello: {0}")]
    Hello(#[from] HelloError),
    /// The server refused the connection, before or after the handshake.
    #[error("refused by the HSM: {0}")]
    Refused(Refusal),
    /// The handshake or a transport message failed authentication: a wrong key, a wrong
    /// pairing code, or tampering.
    #[error("authentication failed during {during}")]
    Authentication {
        /// The step that failed.
        during: &'static str,
    },
    /// The HSM's key is not the one pinned for it.
    #[error("the HSM's key {got} is not the pinned key {expected}: this may be an impostor")]
    HsmKeyMismatch {
        /// The pinned fingerprint.
        expected: Fingerprint,
        /// The fingerprint presented.
        got: Fingerprint,
    },
    /// A transport frame with a counter already seen: a replay.
    #[error("replayed frame: counter {counter}, expected {expected}; the session is ended")]
    Replay {
        /// The frame's counter.
        counter: u64,
        /// The next counter expected.
        expected: u64,
    },
    /// A transport frame from the future: frames were lost or reordered.
    #[error(
        "frames missing or reordered: counter {counter}, expected {expected}; the session is ended"
    )]
    OutOfOrder {
        /// The frame's counter.
        counter: u64,
        /// The next counter expected.
        expected: u64,
    },
    /// The peer sent a frame or packet that does not belong at this point.
    #[error("protocol violation: {0}")]
    PeerMisbehaved(PeerMisbehaved),
    /// This end's own Noise state failed at a step that cannot fail for a correct build: a
    /// fault here, not the peer's.
    #[error("{0}")]
    Noise(NoiseStep),
    /// A packet too large for one Noise message was about to be sent.
    #[error("packet of {len} bytes is larger than one Noise message ({limit} bytes)")]
    PacketTooLarge {
        /// The packet's encoded length.
        len: usize,
        /// The largest plaintext one transport frame carries.
        limit: usize,
    },
    /// A decrypted packet that does not decode.
    #[error("malformed packet: {0}")]
    Packet(#[from] postcard::Error),
    /// The HSM ended the session because no request came within its idle timeout.
    #[error("session expired: no request within {after:?}; log in again")]
    IdleExpired {
        /// The idle timeout.
        after: Duration,
    },
    /// Nothing at all (not even a keep-alive answer) came back within the dead-link timeout.
    #[error("link lost: nothing received for {silent_for:?}")]
    LinkLost {
        /// How long the link was silent.
        silent_for: Duration,
    },
    /// A request got no response in time.
    #[error("no response to request {id} within {after:?}")]
    ResponseTimeout {
        /// The request's id.
        id: u64,
        /// The timeout.
        after: Duration,
    },
    /// The peer ended the session.
    #[error("session closed: {0}")]
    Closed(CloseReason),
    /// The HSM answered a request with an error.
    #[error("the HSM refused the request: {0}")]
    Remote(#[from] RemoteError),
    /// A bulk transfer whose content did not match its digest.
    #[error("bulk transfer corrupted: digest mismatch")]
    TransferCorrupted,
    /// A local sink or source failed during a bulk transfer.
    #[error("writing the transferred data failed: {0}")]
    Sink(std::io::Error),
    /// The operating system's random number generator failed.
    #[error("random number generator failed: {0}")]
    Random(getrandom::Error),
    /// The session already failed and may not be used again.
    #[error("this session already failed; reconnect")]
    SessionFailed,
    /// The message counter would wrap (after 2^63 messages).
    #[error("message counter exhausted; reconnect")]
    CounterExhausted,
}

/// How the peer broke the protocol: every fault has its own name, so that tests and callers
/// match on the fault, never on its text (in the manner of rustls's `PeerMisbehaved`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PeerMisbehaved {
    /// The terminal's first frame after its hello was not the HSM's hello or a refusal.
    #[error("expected the HSM's hello")]
    ExpectedServerHello,
    /// The HSM accepted with a version outside the range the terminal offered.
    #[error("the HSM chose version {chosen}, which this terminal did not offer")]
    UnofferedVersion {
        /// The version the HSM chose.
        chosen: u16,
    },
    /// A handshake step received another kind of frame.
    #[error("expected a handshake message")]
    ExpectedHandshakeMessage,
    /// The Noise handshake finished without the peer's static key.
    #[error("the peer sent no static key")]
    NoStaticKey,
    /// The terminal's first handshake message carried a payload: no request may travel before
    /// the handshake completes.
    #[error("payload in the first handshake message")]
    PayloadInFirstHandshakeMessage,
    /// The terminal's final pairing message carried a payload.
    #[error("payload in the final handshake message")]
    PayloadInFinalHandshakeMessage,
    /// The HSM confirmed a pairing with another partition than the one asked for.
    #[error("paired with another partition")]
    PairedWithAnotherPartition,
    /// The HSM's first transport message after a pairing was not the confirmation.
    #[error("expected the pairing confirmation")]
    ExpectedPairingConfirmation,
    /// The audit key in the HSM's pairing confirmation is not a valid (or is a weak) Ed25519
    /// public key: nothing is pinned.
    #[error("the HSM's pairing confirmation carries an invalid audit key")]
    InvalidAuditKey,
    /// A plaintext refusal arrived inside an established session.
    #[error("refusal inside a session")]
    RefusalInsideSession,
    /// A hello or handshake frame arrived inside an established session.
    #[error("handshake frame inside a session")]
    HandshakeFrameInsideSession,
    /// The terminal sent a packet only the HSM sends (a response, data, a pairing
    /// confirmation).
    #[error("unexpected packet from the terminal")]
    UnexpectedPacketFromTerminal,
    /// A packet other than credit, a keep-alive or a close arrived while the HSM streamed.
    #[error("unexpected packet during a transfer")]
    UnexpectedPacketDuringTransfer,
    /// Something other than the answer to the request came back.
    #[error("expected the response to the request")]
    ExpectedResponse,
    /// A bulk transfer chunk skipped or repeated a sequence number.
    #[error("bulk transfer chunk out of sequence")]
    ChunkOutOfSequence,
    /// Something other than a chunk or the final response came during a bulk transfer.
    #[error("unexpected packet during a bulk transfer")]
    UnexpectedPacketDuringBulkTransfer,
    /// A link test ended with another response than its summary.
    #[error("expected the end of the link test")]
    ExpectedLinkTestEnd,
    /// Something other than a keep-alive answer came while the terminal was idle.
    #[error("unexpected packet while idle")]
    UnexpectedPacketWhileIdle,
}

/// A step of this end's own Noise state (set-up, writing a message, entering transport mode).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NoiseStep {
    /// Building the handshake state.
    #[error("Noise set-up failed")]
    SetUp,
    /// Writing the terminal's first handshake message.
    #[error("Noise first message failed")]
    FirstMessage,
    /// Writing the HSM's handshake reply.
    #[error("Noise reply failed")]
    Reply,
    /// Writing the terminal's final pairing message.
    #[error("Noise final message failed")]
    FinalMessage,
    /// Entering transport mode.
    #[error("handshake not finished")]
    Finish,
}

impl From<PeerMisbehaved> for Error {
    fn from(fault: PeerMisbehaved) -> Self {
        Error::PeerMisbehaved(fault)
    }
}

impl From<NoiseStep> for Error {
    fn from(step: NoiseStep) -> Self {
        Error::Noise(step)
    }
}

impl From<getrandom::Error> for Error {
    fn from(e: getrandom::Error) -> Self {
        Error::Random(e)
    }
}
