//! The export's closing checkpoint: the HSM's signature over this export, by id and range.
//!
//! The signed message (Ed25519, RFC 8032, checked with `verify_strict`):
//!
//! ```text
//! "tessera audit export end v1\0"   28 bytes, EXPORT_END_DOMAIN
//! export id                         16 bytes
//! from                               8 bytes, big-endian: the first entry exported
//! to                                 8 bytes, big-endian: the last entry exported
//! hash                              32 bytes: entry `to`'s hash
//! time                               8 bytes, big-endian: milliseconds since the Unix epoch
//! hsm id length, hsm id              1 byte, then that many bytes
//! partition id length, partition id  1 byte, then that many bytes
//! ```
//!
//! Its own domain label keeps it apart from ordinary checkpoints (whose message opens with
//! [`CHECKPOINT_DOMAIN`](crate::CHECKPOINT_DOMAIN)): neither can be passed off as the other.

use ed25519_dalek::Signature;

use super::header::{ExportHeader, ExportId, check_name};
use crate::canonical::reader::Reader;
use crate::canonical::{MAX_LINE_LEN, require_same, write_hash, write_u64};
use crate::checkpoint::SIGNATURE_LEN;
use crate::error::{Fault, LogError};
use crate::hash::{Hash, encode_hex};
use crate::keys::{AuditKey, AuditSigner};

/// Domain label that opens every signed closing-checkpoint message.
pub const EXPORT_END_DOMAIN: &[u8; 28] = b"tessera audit export end v1\0";
/// How every closing checkpoint line starts; no entry, checkpoint or header line does.
pub const EXPORT_END_LINE_PREFIX: &[u8] = b"{\"export_end\":";

/// The closing checkpoint of an export: "export `export` of partition `partition` on HSM `hsm`
/// holds entries `from` to `to`, the last with hash `hash`", signed at `time_unix_ms`.
///
/// A value of this type is not necessarily valid: [`ExportEnd::verify`] says.
#[derive(Clone, PartialEq, Eq)]
pub struct ExportEnd {
    /// The export's id.
    pub export: ExportId,
    /// The HSM's id.
    pub hsm: String,
    /// The partition's id.
    pub partition: String,
    /// The first entry exported.
    pub from: u64,
    /// The last entry exported (`from - 1` for an empty export).
    pub to: u64,
    /// Entry `to`'s hash (for an empty export, the hash the export starts from).
    pub hash: Hash,
    /// When it was signed, by the HSM's clock.
    pub time_unix_ms: u64,
    /// Ed25519 signature over [`ExportEnd::message`].
    pub signature: [u8; SIGNATURE_LEN],
}

impl ExportEnd {
    /// The bytes the signature covers: [`EXPORT_END_DOMAIN`], the export id (16 bytes), `from`,
    /// `to` (8 bytes each, big-endian), `hash` (32 bytes), `time` (8 bytes, big-endian), then
    /// the HSM id and the partition id, each after one byte giving its length.
    pub fn message(&self) -> Vec<u8> {
        let mut m = Vec::with_capacity(EXPORT_END_DOMAIN.len() + 72 + 2 + 128);
        m.extend_from_slice(EXPORT_END_DOMAIN);
        m.extend_from_slice(&self.export.0);
        m.extend_from_slice(&self.from.to_be_bytes());
        m.extend_from_slice(&self.to.to_be_bytes());
        m.extend_from_slice(&self.hash.0);
        m.extend_from_slice(&self.time_unix_ms.to_be_bytes());
        for name in [&self.hsm, &self.partition] {
            // Names are checked to be at most MAX_NAME_LEN (64) bytes before anything is
            // signed or verified, so the length fits in a byte.
            m.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
            m.extend_from_slice(name.as_bytes());
        }
        m
    }

    /// Checks the signature with `key`, the audit key the caller pinned.
    pub fn verify(&self, key: &AuditKey) -> Result<(), LogError> {
        let signature = Signature::from_bytes(&self.signature);
        key.0
            .verify_strict(&self.message(), &signature)
            .map_err(|_| LogError::Rejected(Fault::BadClosingSignature))
    }

    /// What in this closing checkpoint differs from `header`, if anything.
    pub fn mismatch(&self, header: &ExportHeader) -> Option<String> {
        if self.export != header.export {
            return Some(format!(
                "closes export {}, but the header names export {}",
                self.export, header.export
            ));
        }
        if (self.hsm.as_str(), self.partition.as_str())
            != (header.hsm.as_str(), header.partition.as_str())
        {
            return Some(format!(
                "names partition {} on {}, but the header names partition {} on {}",
                self.partition, self.hsm, header.partition, header.hsm
            ));
        }
        if (self.from, self.to) != (header.from, header.to) {
            return Some(format!(
                "covers entries {} to {}, but the header says {} to {}",
                self.from, self.to, header.from, header.to
            ));
        }
        None
    }

    /// The canonical line, without its newline.
    pub fn to_canonical(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(400);
        out.extend_from_slice(EXPORT_END_LINE_PREFIX);
        out.extend_from_slice(b"{\"export\":\"");
        out.extend_from_slice(self.export.to_string().as_bytes());
        out.extend_from_slice(b"\",\"hsm\":\"");
        out.extend_from_slice(self.hsm.as_bytes());
        out.extend_from_slice(b"\",\"partition\":\"");
        out.extend_from_slice(self.partition.as_bytes());
        out.extend_from_slice(b"\",\"from\":");
        write_u64(&mut out, self.from);
        out.extend_from_slice(b",\"to\":");
        write_u64(&mut out, self.to);
        out.extend_from_slice(b",\"hash\":");
        write_hash(&mut out, &self.hash);
        out.extend_from_slice(b",\"time\":");
        write_u64(&mut out, self.time_unix_ms);
        out.extend_from_slice(b",\"sig\":\"");
        let mut hex = [0u8; SIGNATURE_LEN * 2];
        encode_hex(&self.signature, &mut hex);
        out.extend_from_slice(&hex);
        out.extend_from_slice(b"\"}}");
        out
    }

    /// Parses a closing checkpoint line (without its newline). The signature is not checked
    /// here: see [`ExportEnd::verify`].
    pub fn from_canonical(line: &[u8]) -> Result<ExportEnd, LogError> {
        if line.len() > MAX_LINE_LEN {
            return Err(LogError::Rejected(Fault::TooLong {
                len: line.len(),
                max: MAX_LINE_LEN,
            }));
        }
        let mut r = Reader::new(line)?;
        r.expect("{\"export_end\":{\"export\":")?;
        let mut id = [0u8; 16];
        r.hex(&mut id)?;
        r.expect(",\"hsm\":")?;
        let hsm = r.string()?.into_owned();
        r.expect(",\"partition\":")?;
        let partition = r.string()?.into_owned();
        r.expect(",\"from\":")?;
        let from = r.uint()?;
        r.expect(",\"to\":")?;
        let to = r.uint()?;
        r.expect(",\"hash\":")?;
        let hash = r.hash()?;
        r.expect(",\"time\":")?;
        let time_unix_ms = r.uint()?;
        r.expect(",\"sig\":")?;
        let mut signature = [0u8; SIGNATURE_LEN];
        r.hex(&mut signature)?;
        r.expect("}}")?;
        r.end()?;
        for (field, name) in [("hsm", &hsm), ("partition", &partition)] {
            check_name(field, name).map_err(LogError::non_canonical)?;
        }
        let end = ExportEnd {
            export: ExportId(id),
            hsm,
            partition,
            from,
            to,
            hash,
            time_unix_ms,
            signature,
        };
        require_same(line, &end.to_canonical())?;
        Ok(end)
    }
}

impl std::fmt::Debug for ExportEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportEnd")
            .field("export", &self.export)
            .field("hsm", &self.hsm)
            .field("partition", &self.partition)
            .field("from", &self.from)
            .field("to", &self.to)
            .field("hash", &self.hash)
            .field("time_unix_ms", &self.time_unix_ms)
            .finish_non_exhaustive()
    }
}

impl AuditSigner {
    /// Signs the closing checkpoint of the export `header` describes, whose last entry (entry
    /// `header.to`) has hash `last_hash` (for an empty export: the hash it starts from). The
    /// HSM's side of an export.
    pub fn sign_export_end(
        &self,
        header: &ExportHeader,
        last_hash: Hash,
        time_unix_ms: u64,
    ) -> Result<ExportEnd, LogError> {
        header.check()?;
        let mut end = ExportEnd {
            export: header.export,
            hsm: header.hsm.clone(),
            partition: header.partition.clone(),
            from: header.from,
            to: header.to,
            hash: last_hash,
            time_unix_ms,
            signature: [0; SIGNATURE_LEN],
        };
        end.signature = self.sign_message(&end.message());
        Ok(end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(signer: &AuditSigner) -> ExportHeader {
        ExportHeader {
            hsm: "hsm-00".into(),
            partition: "p".into(),
            key: signer.public(),
            export: ExportId([1; 16]),
            from: 1,
            to: 3,
            anchor: None,
        }
    }

    #[test]
    fn signed_round_trip_and_every_field_counts() {
        let signer = AuditSigner::from_secret_bytes(&[8; 32]);
        let end = signer
            .sign_export_end(&header(&signer), Hash([9; 32]), 77)
            .unwrap();
        assert_eq!(end.verify(&signer.public()), Ok(()));
        let line = end.to_canonical();
        assert_eq!(ExportEnd::from_canonical(&line), Ok(end.clone()));
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["export_end"]["to"], 3);
        assert_eq!(end.mismatch(&header(&signer)), None);
        let mut tampered = vec![end.clone(); 7];
        tampered[0].export = ExportId([2; 16]);
        tampered[1].hsm = "hsm-01".into();
        tampered[2].partition = "q".into();
        tampered[3].from = 2;
        tampered[4].to = 2;
        tampered[5].hash = Hash([8; 32]);
        tampered[6].time_unix_ms = 78;
        for t in tampered {
            assert_eq!(
                t.verify(&signer.public()),
                Err(LogError::Rejected(Fault::BadClosingSignature)),
                "{t:?}"
            );
        }
        let other = AuditSigner::from_secret_bytes(&[9; 32]).public();
        assert!(end.verify(&other).is_err());
    }

    #[test]
    fn a_checkpoint_signature_is_not_a_closing_one() {
        let signer = AuditSigner::from_secret_bytes(&[8; 32]);
        let cp = signer.sign_checkpoint(3, Hash([9; 32]), 77);
        let mut end = signer
            .sign_export_end(&header(&signer), Hash([9; 32]), 77)
            .unwrap();
        end.signature = cp.signature;
        assert!(end.verify(&signer.public()).is_err());
    }
}
