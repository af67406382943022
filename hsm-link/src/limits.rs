//! Named limits and constants of the link protocol.

/// Protocol versions this build speaks. Versions are settled in the hello: the highest version
/// both ends support is used, and disjoint ranges are refused before any handshake. Version 1
/// is not released yet: its messages still change without a new number (card-set
/// registrations gained their proofs of possession so). From the first release on, any change
/// of a message raises the version.
pub const PROTOCOL_VERSIONS: crate::hello::VersionRange =
    crate::hello::VersionRange { min: 1, max: 1 };

/// Largest Noise message (the Noise specification's limit).
pub const MAX_NOISE_MESSAGE: usize = 65_535;

/// Authentication tag of AES-256-GCM inside Noise.
pub const NOISE_TAG_LEN: usize = 16;

/// Largest plaintext a single transport frame can carry.
pub const MAX_PLAINTEXT: usize = MAX_NOISE_MESSAGE - NOISE_TAG_LEN;

/// Link frame header: one kind byte, then for transport frames an eight-byte counter.
pub const FRAME_HEADER_LEN: usize = 1 + 8;

/// Largest link frame (kind, counter, Noise message). Every decoder checks a length against
/// this bound before it allocates.
pub const MAX_FRAME: usize = FRAME_HEADER_LEN + MAX_NOISE_MESSAGE;

/// Largest hello (client or server); hellos are small and plaintext.
pub const MAX_HELLO: usize = 1024;

/// Payload bytes per chunk of a bulk transfer: leaves room in one Noise message for the packet
/// header (stream id, sequence number, flags, length prefix).
pub const CHUNK_SIZE: usize = MAX_PLAINTEXT - 64;

/// Chunks a sender may have in flight before the receiver grants more credit. With
/// [`CHUNK_SIZE`] this bounds a transfer's buffered data to about half a megabyte per side.
pub const STREAM_WINDOW: u32 = 8;

/// Largest bulk transfer one request may ask for (a partition backup or log export is streamed
/// in chunks; this only bounds what a link test may request).
pub const MAX_LINK_TEST_BYTES: u64 = 1 << 30;

/// Failed pairing attempts after which a pairing code is burned.
pub const DEFAULT_MAX_PAIRING_FAILURES: u32 = 3;

/// Transport messages per direction after which both ends rekey (Noise §11.3).
pub const DEFAULT_REKEY_INTERVAL: u64 = 1 << 16;
