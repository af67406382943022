//! Removable drives and the encrypted partition backup container.
//!
//! ```
//! use usb_backup::{BackupFacts, BackupWriter, Recipients, verify_offline};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let hsm_signing = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
//! # let hsm_backup_public = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from([9; 32])).to_bytes();
//! # let quorum_public = usb_backup::fuzzing::quorum_public_key();
//! let facts = BackupFacts {
//!     partition_id: "payments".into(),
//!     partition_name: "Payments".into(),
//!     hsm_id: [1; 32],
//!     created: 1_796_000_000,
//!     sequence: 42,
//!     object_count: 3,
//!     plaintext_len: 5,
//!     chunk_size: usb_backup::DEFAULT_CHUNK_SIZE,
//! };
//! let recipients = Recipients::new(hsm_backup_public, &quorum_public)?;
//! let mut writer = BackupWriter::new(Vec::new(), facts, &recipients, &hsm_signing)?;
//! writer.write_plaintext(b"hello")?;
//! let (file, _written) = writer.finish()?;
//! // Anyone with the HSM's public key proves it complete and authentic, without a secret.
//! let verified = verify_offline(std::io::Cursor::new(file), &hsm_signing.verifying_key())?;
//! assert_eq!(verified.header().facts().sequence, 42);
//! # Ok(()) }
//! ```
//!
//! - [`container`]: the backup file format, version 1 (documented byte for byte there), over
//!   `Read`/`Write` and without I/O of its own: [`Sealer`] and [`BackupWriter`] seal,
//!   [`verify_offline`] proves a file with the HSM's public key only, [`BackupReader`] decrypts
//!   with the data key unwrapped by the HSM ([`Header::unwrap_for_hsm`]) or by a recovery
//!   ceremony ([`Header::unwrap_for_quorum`], or `quorum::unwrap_with` on
//!   [`Header::quorum_wrapped_key`]).
//! - [`seal_pipelined`]: the same bytes, with reading, sealing and writing overlapped.
//!
//! # For the HSM and the terminal
//!
//! - **Sealing (partition-service).** Serialise the partition (objects with attributes, the
//!   bin's marked, the configuration) to a byte stream of known length; build [`BackupFacts`]
//!   and [`Recipients`] (its X25519 backup public key, the registered quorum key); seal with
//!   [`BackupWriter`] (or [`seal_pipelined`]) signing with its Ed25519 key; stream the bytes
//!   over the link's chunked transfers. [`WrittenBackup`] carries the header and trailer for the
//!   log entry (its digest: [`Header::hash`] and the signed chain).
//! - **Restore (partition-service).** [`BackupReader::open`] (checks the signer is this HSM),
//!   [`Header::unwrap_for_hsm`], [`BackupReader::decrypt`], stage every chunk, and commit only
//!   when [`DecryptingReader::finish`] returns the [`Verified`] proof.
//! - **The terminal.** Drives come from [`drive`]; the stream from the link goes to a drive with
//!   [`drive::DirTarget`] (laptop mode) or [`drive::FatTarget`] (device mode), each of which
//!   reads the file back and checks it against the [`WrittenBackup`] before reporting success;
//!   [`verify_offline`] backs `tessera backup verify`; [`drive::BackupTarget::list`] reads header facts
//!   for the Backup screen.
//!
//! It does not decide what goes into a backup (the HSM does), holds no key of its own, and never
//! asks the kernel to mount a drive.

pub mod container;
pub mod drive;
mod error;
pub mod fuzzing;
mod pipeline;

pub use container::{
    BackupFacts, BackupReader, BackupWriter, DEFAULT_CHUNK_SIZE, DataKey, DecryptingReader, Header,
    Layout, Recipients, Sealer, Trailer, Verified, WrittenBackup, verify_offline,
};
pub use error::{BackupError, Part, Rejection};
pub use pipeline::{PIPELINE_DEPTH, seal_pipelined};
