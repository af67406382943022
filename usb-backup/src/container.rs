//! The backup container, format version 1: what a backup file holds, byte for byte, and the
//! I/O-free code that writes and reads it over `Read`/`Write`.
//!
//! # Layout
//!
//! A file is a header, a body of encrypted chunks, and a trailer. Integers are little-endian.
//!
//! **Header** (`H` bytes, at most [`MAX_HEADER_LEN`]):
//!
//! | bytes | field |
//! |---|---|
//! | 8 | magic [`MAGIC`] `TSBACKUP` |
//! | 2 | format version, [`FORMAT_VERSION`] = 1 |
//! | 4 | header length `H`, counting from the magic |
//! | 16 | backup id: random, names this one backup |
//! | 1 + n | partition id: n = 1..=64 bytes of `A-Z a-z 0-9 . _ -`, starting alphanumeric |
//! | 1 + n | partition name: n = 0..=128 bytes of UTF-8 without control characters |
//! | 32 | HSM id (opaque: the HSM identity key's fingerprint) |
//! | 32 | HSM signing key (Ed25519 public key that signs the trailer) |
//! | 8 | creation time, Unix seconds, UTC |
//! | 8 | sequence number (per partition, from the HSM) |
//! | 8 | object count |
//! | 8 | plaintext size `P`, at most [`MAX_PLAINTEXT_LEN`] |
//! | 4 | chunk size `C`, [`MIN_CHUNK_SIZE`] (64 KiB) ..= [`MAX_CHUNK_SIZE`] (1 MiB) |
//! | 7 | STREAM nonce prefix (random) |
//! | 32 | HSM backup key id: SHA-256 of the HSM's X25519 backup public key |
//! | 80 | data key wrapped to the HSM backup key: HPKE base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM, info [`HSM_WRAP_INFO`]; encapsulated key (32) then ciphertext and tag (48) |
//! | 32 | quorum backup key id: SHA-256 of the 1216-byte X-Wing public key |
//! | 1169 | data key wrapped to the quorum backup key: HPKE base mode, X-Wing, HKDF-SHA256, AES-256-GCM, info [`QUORUM_WRAP_INFO`]; format byte 1, encapsulated key (1120), ciphertext and tag (48). Byte for byte what `quorum::wrap_to` makes, so a recovery ceremony opens it with `quorum::unwrap_with` |
//!
//! The header hash is SHA-256 of the `H` header bytes.
//!
//! **Body**: `n = max(1, ⌈P / C⌉)` chunks, AES-256-GCM in the STREAM construction (`aead-stream`
//! `StreamBE32`: nonce = 7-byte prefix, 32-bit big-endian counter, last-chunk flag byte), the
//! header hash as associated data of every chunk. Chunk `i < n - 1` holds `C` plaintext bytes,
//! the last holds the rest (`0..=C`, so an empty backup has one empty chunk); each is followed by
//! its 16-byte tag. The layout is fixed by the header: a reader knows every chunk's place
//! before reading it, and the file's exact length ([`Layout::file_len`]).
//!
//! **Trailer**: the digest table, then [`TRAILER_FIXED_LEN`] = 160 bytes:
//!
//! | bytes | field |
//! |---|---|
//! | 32 × n | chunk digests `d_i` = SHA-256(chunk `i` as stored, tag included) |
//! | 8 | trailer magic [`TRAILER_MAGIC`] `TSBKEND1` |
//! | 16 | backup id (as in the header) |
//! | 32 | header hash |
//! | 8 | chunk count n |
//! | 32 | chain: `c_0` = SHA-256([`CHAIN_DOMAIN`] ‖ backup id), `c_{i+1}` = SHA-256(`c_i` ‖ `d_i`); the value is `c_n` |
//! | 64 | Ed25519 signature by the HSM signing key over [`SIGNATURE_DOMAIN`] ‖ backup id ‖ header hash ‖ n ‖ chain |
//!
//! # What each check catches
//!
//! - Anyone with the HSM's public key proves a file complete and authentic without any secret
//!   ([`verify_offline`]): length from the header; signature; table against the chain; every
//!   chunk's digest against the table; header hash against the signed one.
//! - Truncation anywhere: the length differs from the header's layout, and the signature is the
//!   last thing in the file. A cut at a chunk boundary also loses STREAM's last-chunk flag.
//! - Reordering: chunk `i`'s digest is table entry `j ≠ i` (and STREAM's counter is in the nonce).
//! - A flipped bit: in the header, its hash is not the signed one; in a chunk, its digest is not
//!   the table's (and GCM fails); in the table, the chain fails; elsewhere in the trailer, the
//!   signature fails.
//! - A header, or a trailer, from another backup: the signed backup id and header hash tell
//!   which part is foreign (the body agrees with the trailer's table, or it does not).
//! - A wrong HSM or quorum: the key ids in the header are compared before any unwrapping.
//!
//! # Streaming and memory
//!
//! Writers and readers hold one chunk (at most 1 MiB + 16) and the chain. The writer also keeps
//! the digest table (32 bytes per chunk, at most [`MAX_CHUNKS`]), which it must write last.

mod header;
mod keys;
mod migrate;
mod open;
mod seal;
mod trailer;
mod verify;

pub(crate) use header::read_full;
pub use header::{BackupFacts, Header, Layout, MAX_PARTITION_ID_LEN, MAX_PARTITION_NAME_LEN};
pub use keys::{DataKey, Recipients};
pub use migrate::{MIGRATION_WRAP_INFO, MIGRATION_WRAPPED_KEY_LEN};
pub use open::{BackupReader, DecryptingReader};
pub use seal::{BackupWriter, Sealer, WrittenBackup};
pub use trailer::{ChunkChain, Trailer};
pub use verify::{Verified, verify_offline};

/// The first 8 bytes of every backup file.
pub const MAGIC: [u8; 8] = *b"TSBACKUP";

/// The format version this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;

/// The longest header accepted (the fixed fields, the wrapped keys and the longest names fit).
pub const MAX_HEADER_LEN: usize = 2048;

/// The smallest chunk size.
pub const MIN_CHUNK_SIZE: u32 = 64 * 1024;

/// The largest chunk size.
pub const MAX_CHUNK_SIZE: u32 = 1024 * 1024;

/// The chunk size writers use unless told otherwise: the largest, for the fewest system calls.
pub const DEFAULT_CHUNK_SIZE: u32 = MAX_CHUNK_SIZE;

/// The most chunks a backup may have (so the writer's digest table stays under 8 MiB).
pub const MAX_CHUNKS: u64 = 1 << 18;

/// The largest plaintext: [`MAX_CHUNKS`] chunks of the largest size (256 GiB).
pub const MAX_PLAINTEXT_LEN: u64 = MAX_CHUNKS * MAX_CHUNK_SIZE as u64;

/// The GCM tag after each chunk.
pub const TAG_LEN: usize = 16;

/// Length of a chunk digest and of the chain (SHA-256).
pub const DIGEST_LEN: usize = 32;

/// The trailer's magic.
pub const TRAILER_MAGIC: [u8; 8] = *b"TSBKEND1";

/// The trailer's fixed part after the digest table.
pub const TRAILER_FIXED_LEN: usize = 8 + 16 + 32 + 8 + 32 + 64;

/// Length of a backup id.
pub const BACKUP_ID_LEN: usize = 16;

/// Length of the STREAM nonce prefix (a 12-byte GCM nonce less STREAM's 5 bytes).
pub const NONCE_PREFIX_LEN: usize = 7;

/// HPKE `info` of the data key wrapped to the HSM backup key.
pub const HSM_WRAP_INFO: &[u8] = b"tessera backup data key to hsm v1";

/// HPKE `info` of the data key wrapped to the quorum backup key (the one `quorum` uses).
pub const QUORUM_WRAP_INFO: &[u8] = b"tessera backup data key v1";

/// Domain separation of the chain's first link.
pub const CHAIN_DOMAIN: &[u8] = b"tessera backup chunk chain v1";

/// Domain separation of the trailer signature.
pub const SIGNATURE_DOMAIN: &[u8] = b"tessera backup trailer v1";

/// Length of the data key wrapped to the HSM: encapsulated X25519 key (32), key and tag (48).
pub const HSM_WRAPPED_KEY_LEN: usize = 32 + 32 + TAG_LEN;

/// Length of the data key wrapped to the quorum (the `quorum` crate's wrapped key format).
pub const QUORUM_WRAPPED_KEY_LEN: usize = 1 + 1120 + 32 + TAG_LEN;

/// Length of the quorum backup public key (X-Wing).
pub const QUORUM_PUBLIC_KEY_LEN: usize = 1216;
