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
#[non_exhaustive]
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
    Protocol(&'static str),
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

impl From<getrandom::Error> for Error {
    fn from(e: getrandom::Error) -> Self {
        Error::Random(e)
    }
}
