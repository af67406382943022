//! Tessera's audit log: who did what to a partition, in one canonical form, hash-chained and
//! signed by the HSM, verifiable offline with nothing but the HSM's public audit key.
//!
//! ```
//! use audit_log::{
//!     Actor, AuditSigner, Chain, CheckpointPolicy, EntryDraft, Operation, Outcome, Role,
//!     verify_log,
//! };
//!
//! // The HSM's side: append entries, sign a checkpoint when one is due.
//! let signer = AuditSigner::from_secret_bytes(&[7; 32]); // in the HSM, never in a file
//! let policy = CheckpointPolicy::default();
//! let mut chain = Chain::new();
//! let mut log = Vec::new();
//! let events = [
//!     ("login", Outcome::Ok, true),
//!     ("key.delete", Outcome::refused("object destruction is off"), true),
//!     ("key.sign", Outcome::Ok, false),
//! ];
//! for (i, (op, outcome, administrative)) in events.into_iter().enumerate() {
//!     let actor = Actor::new(Role::Pso, ["Alice Meier", "Zoë Müller"]);
//!     let time = 1_732_377_600_000 + i as u64;
//!     let draft =
//!         EntryDraft::new(time, actor, Operation::new(op)?, outcome).with_object("key/42");
//!     log.extend(chain.append(draft)?.to_canonical());
//!     log.push(b'\n');
//!     if policy.due(chain.entries_since_checkpoint(), administrative) {
//!         log.extend(chain.checkpoint(&signer, 1_732_377_601_000).to_canonical());
//!         log.push(b'\n');
//!     }
//! }
//! // Every export ends with a checkpoint.
//! log.extend(chain.checkpoint(&signer, 1_732_377_602_000).to_canonical());
//! log.push(b'\n');
//!
//! // Anyone's side: verify with the pinned public key.
//! let pinned = signer.public();
//! let report = verify_log(pinned, None, &log)?.require_signed_to_end()?;
//! assert_eq!((report.entries(), report.last_seq(), report.checkpoints()), (3, 3, 3));
//!
//! // One changed byte is found, and located.
//! let mut edited = log.clone();
//! let at = edited.windows(6).position(|w| w == b"key/42").unwrap();
//! edited[at + 5] = b'3';
//! let err = verify_log(pinned, None, &edited).unwrap_err();
//! assert_eq!(err.to_string(), "line 1: entry 1 was altered: its contents do not match its hash");
//! # Ok::<(), audit_log::LogError>(())
//! ```
//!
//! # What it does
//!
//! * [`Entry`]: sequence number, time, [`Actor`] (role and the named holders who took part),
//!   [`Operation`], object, [`Outcome`] (refusals included), a few details, and the hashes.
//!   Every field is bounded, so every entry fits in a line of [`MAX_LINE_LEN`] bytes.
//! * [`Chain`]: appends entries and signs [`Checkpoint`]s with an [`AuditSigner`];
//!   [`CheckpointPolicy`] says when one is due (after every administrative event, at least
//!   every 1,000 entries; a read for export always ends with one).
//! * [`Verifier`]: checks a log line by line in flat memory, and locates the first bad line
//!   with a typed [`Fault`] (an edited, removed or reordered entry, a forged checkpoint, a tail
//!   no checkpoint covers). [`verify_log`] does the same for a log in memory, on parallel
//!   threads when it is large.
//!
//! * The export file ([`ExportHeader`], the log lines as stored, the closing [`ExportEnd`] that
//!   names the export), written by [`ExportWriter`] and checked by [`verify_export`] from any
//!   reader against a [`KeyPin`] (streamed in large reads, parts on parallel threads) or by
//!   [`ExportVerifier`] line by line; [`FaultKind`] sorts what it finds (edited, removed,
//!   reordered, inserted, signature, unknown key, cut short, another partition's log).
//!   Consecutive exports chain ([`ExportVerifier::after`]). [`export`] gives the exact lines.
//! * [`to_syslog`] (RFC 5424) and [`to_cef`] records of entries, and [`convert_export`], for
//!   SIEMs; they carry no proof ([`siem`] maps the fields).
//!
//! It opens no files and no sockets: storing entries is the partition service's job, opening
//! files and drives the terminal's; the verifier reads from the reader it is handed.
//!
//! # The format
//!
//! A log is JSON Lines: each line (without its `\n`) an entry or a checkpoint, in one canonical
//! form, so that the stored bytes, the hashed bytes and the exported bytes are the same, and an
//! exported file verifies as it stands.
//!
//! An entry:
//!
//! ```text
//! {"seq":7,"time":1732377600000,"actor":{"role":"pso","holders":["Alice Meier","Zoë Müller"]},"op":"config.change","object":"partition","outcome":{"result":"ok"},"details":{"param":"key-export"},"prev":"<64 hex>","hash":"<64 hex>"}
//! ```
//!
//! * Fields in exactly this order, all always present, no whitespace. `time` is milliseconds
//!   since the Unix epoch. `object` is `null` when there is none; `details` is `{}` when empty,
//!   otherwise in byte order of its keys; `outcome` is `{"result":"ok"}`,
//!   `{"result":"refused","reason":"…"}` or `{"result":"failed","reason":"…"}`; `role` is one of
//!   [`Role::as_str`].
//! * Integers in decimal without sign, leading zeros, fraction or exponent (unsigned 64-bit).
//!   Hashes and signatures in lowercase hex.
//! * Strings: `"` as `\"`, `\` as `\\`, every byte below 0x20 and 0x7f as `\u00XX` (two
//!   lowercase hex digits: a newline is `\u000a`), U+2028 and U+2029 as `\u2028` and `\u2029`;
//!   every other character as itself in UTF-8.
//! * **Hash rule**: `hash` = SHA-256 over the line up to and excluding the hash field, followed
//!   by the byte `}`; that is, over the canonical entry *without* its `hash` field, itself a JSON
//!   object. The hash field is always the last [`HASH_FIELD_LEN`] (75) bytes of the line, so
//!   `hash = SHA-256(line[..len - 75] || "}")`.
//! * `prev` is the hash of the entry before. The first entry is `seq` 1; its `prev` is 64 zeros
//!   for an unnamed log ([`Chain::new`]) or, for a partition log, [`genesis_hash`] of the
//!   partition id: SHA-256 over `tessera audit log genesis v1\0` and the id ([`Chain::for_log`]),
//!   so one partition's log never verifies as another's under the same audit key.
//!
//! A checkpoint, standing right after the entry it names:
//!
//! ```text
//! {"checkpoint":{"seq":7,"hash":"<64 hex>","time":1732377600000,"sig":"<128 hex>"}}
//! ```
//!
//! `sig` is the audit key's Ed25519 signature over the 76 bytes
//! `"tessera audit checkpoint v1\0" || seq (u64 big-endian) || hash (32 bytes) || time (u64
//! big-endian)` ([`Checkpoint::message`]), verified with `verify_strict` against a key the
//! verifier has pinned, never one found in the log.
//!
//! A parser bounds a line to [`MAX_LINE_LEN`] before reading it, re-encodes what it read and
//! requires byte equality, so any other spelling of the same JSON is rejected.

mod actor;
mod canonical;
mod checkpoint;
mod entry;
mod error;
mod fingerprint;
mod hash;
mod keys;
mod operation;
mod verify;

pub use actor::{Actor, Role};
pub use canonical::{CHECKPOINT_LINE_PREFIX, LogLine, MAX_LINE_LEN};
pub use checkpoint::{
    CHECKPOINT_DOMAIN, CHECKPOINT_MESSAGE_LEN, Checkpoint, CheckpointPolicy,
    DEFAULT_MAX_UNSIGNED_ENTRIES, SIGNATURE_LEN,
};
pub use entry::{
    Chain, Entry, EntryDraft, HASH_FIELD_LEN, MAX_DETAIL_KEY_LEN, MAX_DETAIL_VALUE_LEN,
    MAX_DETAILS, MAX_HOLDER_LEN, MAX_HOLDERS, MAX_OBJECT_LEN, MAX_OPERATION_LEN, MAX_REASON_LEN,
    Operation, Outcome, genesis_hash,
};
pub use error::{Fault, FaultKind, LogError};
pub use fingerprint::{FINGERPRINT_SHOWN_LEN, Fingerprint};
pub use hash::{HASH_HEX_LEN, Hash};
pub use keys::{AuditKey, AuditKeyFingerprint, AuditSigner, FINGERPRINT_DOMAIN};
pub use operation::KnownOperation;
pub use verify::{Report, UnsignedTail, Verifier, verify_log};

// The export file, its verification, and the SIEM formats (the log-audit issue).
pub mod export;
#[doc(hidden)]
pub mod fuzzing;
pub mod siem;
#[doc(hidden)]
pub mod testkit;

pub use export::{
    EXPORT_END_DOMAIN, EXPORT_END_LINE_PREFIX, EXPORT_MAGIC, EXPORT_VERSION, ExportEnd,
    ExportHeader, ExportId, ExportReport, ExportVerifier, ExportWriter, KEY_FILE_LABEL, KeyPin,
    Link, MAX_NAME_LEN, Previous, Start, verify_export,
};
pub use siem::{SYSLOG_DETAILS_SD_ID, SYSLOG_SD_ID, SiemFormat, convert_export, to_cef, to_syslog};
