//! The plaintext hello that opens every connection.
//!
//! Before any handshake the client says which protocol versions it speaks, which partition it
//! wants, whether it pairs or resumes a pinned session, and its key's fingerprint; the server
//! accepts (naming the version and its own key's fingerprint) or refuses with a reason. A
//! version mismatch, an unknown partition or an unpinned terminal is therefore refused clearly
//! before any cryptography runs. Both hellos are bound into the Noise prologue, so an attacker
//! who edits either one breaks the handshake.
//!
//! The hello format is frozen: `TSRL`, a format byte (1), then the postcard-encoded struct. New
//! protocol versions change what follows the handshake, never the hello.

use serde::{Deserialize, Serialize};

use crate::domain::PartitionId;
use crate::keys::Fingerprint;
use crate::limits::MAX_HELLO;

/// Magic bytes at the start of every hello.
pub const HELLO_MAGIC: [u8; 4] = *b"TSRL";
/// The hello format this build writes and reads.
pub const HELLO_FORMAT: u8 = 1;

/// An inclusive range of protocol versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRange {
    /// Lowest version spoken.
    pub min: u16,
    /// Highest version spoken.
    pub max: u16,
}

impl VersionRange {
    /// The highest version in both ranges, if they overlap.
    pub fn highest_common(&self, other: &VersionRange) -> Option<u16> {
        let high = self.max.min(other.max);
        let low = self.min.max(other.min);
        (low <= high && self.min <= self.max && other.min <= other.max).then_some(high)
    }
}

impl std::fmt::Display for VersionRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.min == self.max {
            write!(f, "{}", self.min)
        } else {
            write!(f, "{} to {}", self.min, self.max)
        }
    }
}

/// Whether a connection pairs with a one-time code or resumes with pinned keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionMode {
    /// First contact: Noise XXpsk3 with the pre-shared key from the pairing code.
    Pairing,
    /// Both keys pinned: Noise KK.
    Pinned,
}

/// The client's hello.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientHello {
    /// Protocol versions the terminal speaks.
    pub versions: VersionRange,
    /// The partition the terminal wants to administer.
    pub partition: PartitionId,
    /// Pairing or pinned.
    pub mode: SessionMode,
    /// The fingerprint of the terminal's static key (the server looks up the pinned key by it).
    pub terminal: Fingerprint,
}

/// The server's answer to a hello.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerHello {
    /// Go ahead with the handshake.
    Accept {
        /// The protocol version both ends will speak.
        version: u16,
        /// The fingerprint of the HSM's static key.
        hsm: Fingerprint,
    },
    /// No handshake: the reason.
    Refuse(Refusal),
}

/// Why the server refused a connection. Sent in plaintext, so it is advice to the operator,
/// never a basis for trust.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Refusal {
    /// No protocol version in common.
    #[error(
        "protocol version mismatch: the HSM speaks {supported}, this terminal {offered}; update the older side"
    )]
    VersionMismatch {
        /// What the server speaks.
        supported: VersionRange,
        /// What the client offered.
        offered: VersionRange,
    },
    /// The partition does not exist on this HSM.
    #[error("the HSM has no partition {partition}: check the partition id")]
    UnknownPartition {
        /// The partition asked for.
        partition: PartitionId,
    },
    /// A pinned session from a terminal whose key the partition has not pinned.
    #[error(
        "this terminal (key {terminal}) is not paired with partition {partition}: pair it with a new management pairing code"
    )]
    UnknownTerminal {
        /// The terminal's key fingerprint.
        terminal: Fingerprint,
        /// The partition asked for.
        partition: PartitionId,
    },
    /// Pairing asked for, but no pairing code is outstanding for the partition.
    #[error(
        "no pairing code is outstanding for partition {partition} (never issued, or already used): ask for a new one"
    )]
    NoPairingCode {
        /// The partition asked for.
        partition: PartitionId,
    },
    /// The pairing handshake failed: wrong code, or the connection was tampered with.
    #[error(
        "pairing failed: the pairing code did not match (or the connection was tampered with); {attempts_left} attempt(s) left before the code is burned"
    )]
    PairingFailed {
        /// Attempts left for this code; 0 means it is burned.
        attempts_left: u32,
    },
    /// The pinned handshake failed: the terminal does not hold the key it named.
    #[error("handshake failed: the terminal's key did not authenticate")]
    HandshakeFailed,
    /// The hello could not be read.
    #[error("the HSM could not read this terminal's hello")]
    MalformedHello,
}

/// A hello that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HelloError {
    /// Not a Tessera hello at all.
    #[error("not a Tessera link hello (bad magic): is this the right port or line?")]
    Magic,
    /// A hello format this build does not know.
    #[error("unknown hello format {0}: the peer runs an incompatible Tessera")]
    Format(u8),
    /// Longer than a hello may be.
    #[error("hello of {0} bytes exceeds the limit")]
    Oversize(usize),
    /// The body does not decode.
    #[error("malformed hello body")]
    Body,
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(&HELLO_MAGIC);
    out.push(HELLO_FORMAT);
    out.extend_from_slice(&postcard::to_stdvec(value).expect("hello types always serialise"));
    out
}

fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, HelloError> {
    if bytes.len() > MAX_HELLO {
        return Err(HelloError::Oversize(bytes.len()));
    }
    if bytes.len() < 5 || bytes[..4] != HELLO_MAGIC {
        return Err(HelloError::Magic);
    }
    if bytes[4] != HELLO_FORMAT {
        return Err(HelloError::Format(bytes[4]));
    }
    match postcard::take_from_bytes(&bytes[5..]) {
        Ok((value, [])) => Ok(value),
        _ => Err(HelloError::Body),
    }
}

impl ClientHello {
    /// The hello's wire bytes (the body of a client-hello frame).
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }
    /// Reads a hello.
    pub fn decode(bytes: &[u8]) -> Result<Self, HelloError> {
        decode(bytes)
    }
}

impl ServerHello {
    /// The hello's wire bytes (the body of a server-hello frame).
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }
    /// Reads a hello.
    pub fn decode(bytes: &[u8]) -> Result<Self, HelloError> {
        decode(bytes)
    }
}

impl Refusal {
    /// The refusal's wire bytes (the body of a refusal frame).
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }
    /// Reads a refusal.
    pub fn decode(bytes: &[u8]) -> Result<Self, HelloError> {
        decode(bytes)
    }
}

/// The Noise prologue: a label and both hellos, each with its length.
pub(crate) fn prologue(client_hello: &[u8], server_hello: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(32 + client_hello.len() + server_hello.len());
    p.extend_from_slice(b"tessera link prologue v1\0");
    for part in [client_hello, server_hello] {
        p.extend_from_slice(&(part.len() as u32).to_be_bytes());
        p.extend_from_slice(part);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello() -> ClientHello {
        ClientHello {
            versions: VersionRange { min: 1, max: 3 },
            partition: PartitionId::new("p1").unwrap(),
            mode: SessionMode::Pinned,
            terminal: Fingerprint([5; 32]),
        }
    }

    #[test]
    fn hellos_round_trip() {
        let bytes = hello().encode();
        assert_eq!(ClientHello::decode(&bytes).unwrap(), hello());
        let reply = ServerHello::Refuse(Refusal::VersionMismatch {
            supported: VersionRange { min: 4, max: 5 },
            offered: VersionRange { min: 1, max: 3 },
        });
        assert_eq!(ServerHello::decode(&reply.encode()).unwrap(), reply);
    }

    #[test]
    fn bad_hellos_are_typed() {
        let mut bytes = hello().encode();
        bytes[0] = b'X';
        assert_eq!(ClientHello::decode(&bytes), Err(HelloError::Magic));
        let mut bytes = hello().encode();
        bytes[4] = 9;
        assert_eq!(ClientHello::decode(&bytes), Err(HelloError::Format(9)));
        let mut bytes = hello().encode();
        bytes.push(0);
        assert_eq!(ClientHello::decode(&bytes), Err(HelloError::Body));
        let bytes = hello().encode();
        for cut in 0..bytes.len() {
            assert!(ClientHello::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn versions_settle_on_the_highest_common() {
        let a = VersionRange { min: 1, max: 3 };
        assert_eq!(a.highest_common(&VersionRange { min: 2, max: 5 }), Some(3));
        assert_eq!(a.highest_common(&VersionRange { min: 4, max: 5 }), None);
        assert_eq!(a.highest_common(&VersionRange { min: 3, max: 1 }), None);
        let refusal = Refusal::VersionMismatch {
            supported: VersionRange { min: 4, max: 5 },
            offered: a,
        };
        assert!(
            refusal
                .to_string()
                .contains("HSM speaks 4 to 5, this terminal 1 to 3")
        );
    }

    #[test]
    fn the_prologue_binds_both_hellos() {
        let p1 = prologue(b"ab", b"c");
        let p2 = prologue(b"a", b"bc");
        assert_ne!(p1, p2, "lengths keep the split unambiguous");
    }
}
