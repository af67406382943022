//! The export file: self-contained evidence that a range of a partition's log is complete,
//! unaltered and the HSM's, verifiable anywhere with nothing but the pinned audit key.
//!
//! An export is JSON Lines (<https://jsonlines.org>), every line ended by `\n`, every line a JSON
//! object that `jq` reads:
//!
//! 1. **The header** ([`ExportHeader`]), in one canonical form:
//!
//!    ```text
//!    {"tessera":"audit-log-export","version":1,"hsm":"hsm-0123456789abcdef","partition":"bank-1","key":"<64 hex>","fingerprint":"<64 hex>","export":"<32 hex>","from":1001,"to":2000,"anchor":{"seq":1000,"hash":"<64 hex>","time":1732377600000,"sig":"<128 hex>"}}
//!    ```
//!
//!    The first two fields are the magic and the format version ([`EXPORT_VERSION`]). `key` is
//!    the audit public key and `fingerprint` its [`AuditKeyFingerprint`] (a verifier pins one of
//!    them and never trusts the file's key unpinned). `export` is the id the HSM gave this
//!    export, `from` and `to` its range of sequence numbers (`to = from - 1` for an empty
//!    export). `anchor` is `null` for an export from entry 1 (whose first `prev` is
//!    [`genesis_hash`](crate::genesis_hash) of the partition); otherwise it may be the HSM's
//!    signed checkpoint over entry `from - 1` (the inner object of a checkpoint line), which an
//!    export of a pruned log must carry: the export then verifies from it alone.
//! 2. **The log lines**, entries and checkpoints, exactly as the HSM stores them (see the crate
//!    docs): nothing is re-encoded to write or to verify.
//! 3. **The closing checkpoint** ([`ExportEnd`]), the HSM's signature over this export's id,
//!    HSM, partition and range and the hash of its last entry:
//!
//!    ```text
//!    {"export_end":{"export":"<32 hex>","hsm":"hsm-0123456789abcdef","partition":"bank-1","from":1001,"to":2000,"hash":"<64 hex>","time":1732377600000,"sig":"<128 hex>"}}
//!    ```
//!
//!    Its signature covers [`ExportEnd::message`], under its own domain label, so no ordinary
//!    checkpoint can stand in for it: a file cut after an inner checkpoint has no closing
//!    checkpoint and is refused as cut short, not taken for a shorter log.
//!
//! [`ExportWriter`] assembles a file from these parts; [`verify_export`] checks one streamed
//! from any [`Read`](std::io::Read) in flat memory (large reads, parts verified on parallel
//! threads), and [`ExportVerifier`] is the same check fed line by line. Both name the first bad
//! line and why ([`Fault`](crate::Fault), [`FaultKind`](crate::FaultKind)).
//!
//! ```
//! use audit_log::{
//!     Actor, AuditSigner, Chain, EntryDraft, ExportHeader, ExportId, ExportVerifier,
//!     ExportWriter, FaultKind, KeyPin, Operation, Outcome, Role, verify_export,
//! };
//!
//! // The HSM's side: the header, the stored lines, a closing checkpoint naming the export.
//! let signer = AuditSigner::from_secret_bytes(&[7; 32]); // in the HSM, never in a file
//! let mut chain = Chain::for_log("bank-1");
//! let header = ExportHeader {
//!     hsm: "hsm-0123456789abcdef".into(),
//!     partition: "bank-1".into(),
//!     key: signer.public(),
//!     export: ExportId([1; 16]),
//!     from: 1,
//!     to: 2,
//!     anchor: None,
//! };
//! let mut writer = ExportWriter::new(Vec::new(), &header)?;
//! for op in ["login", "config.change"] {
//!     let actor = Actor::new(Role::Pso, ["Alice Meier", "Zoë Müller"]);
//!     let draft = EntryDraft::new(1_732_377_600_000, actor, Operation::new(op)?, Outcome::Ok);
//!     writer.write_line(&chain.append(draft)?.to_canonical())?;
//! }
//! writer.write_line(&chain.checkpoint(&signer, 1_732_377_600_001).to_canonical())?;
//! let end = signer.sign_export_end(&header, chain.last_hash(), 1_732_377_600_002)?;
//! let file = writer.finish(&end)?;
//!
//! // The auditor's side: the key pinned by its fingerprint, never the file's own.
//! let pin = KeyPin::from_fingerprint(&signer.public().fingerprint().to_string())?;
//! let report = verify_export(&file[..], ExportVerifier::new(pin.clone()))?;
//! assert_eq!(report.entries(), 2);
//!
//! // Cut after the inner checkpoint: no longer a shorter export, but a cut one.
//! let cut = &file[..file.len() - end.to_canonical().len() - 1];
//! let err = verify_export(cut, ExportVerifier::new(pin)).unwrap_err();
//! assert_eq!((err.line(), err.kind()), (Some(5), FaultKind::CutShort));
//! # Ok::<(), audit_log::LogError>(())
//! ```
//!
//! Consecutive exports chain: verified with [`ExportVerifier::after`] the previous export's
//! [`ExportReport`], an export must continue it (its first entry's `prev` is the previous last
//! entry's hash); an overlap is named ([`Link::Overlapping`]) and checked to agree, a gap is a
//! fault.

mod closing;
mod header;
mod pin;
mod read;
mod verifier;
mod writer;

pub use closing::{EXPORT_END_DOMAIN, EXPORT_END_LINE_PREFIX, ExportEnd};
pub use header::{EXPORT_MAGIC, EXPORT_VERSION, ExportHeader, ExportId, MAX_NAME_LEN};
pub use pin::{KEY_FILE_LABEL, KeyPin};
pub use read::verify_export;
pub use verifier::{ExportReport, ExportVerifier, Link, Previous, Start};
pub use writer::ExportWriter;

#[cfg(doc)]
use crate::keys::AuditKeyFingerprint;

pub(crate) use read::verify_export_with;
