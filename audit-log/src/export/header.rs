//! The export's first line: what the file is, whose log, under which key, which range.

use crate::canonical::reader::Reader;
use crate::canonical::{MAX_LINE_LEN, require_same, write_hash, write_u64};
use crate::checkpoint::{Checkpoint, SIGNATURE_LEN};
use crate::error::{Fault, LogError};
use crate::hash::{Hash, encode_hex};
use crate::keys::AuditKey;

/// How every export header starts: the magic. The format version follows.
pub const EXPORT_MAGIC: &[u8] = b"{\"tessera\":\"audit-log-export\",\"version\":";
/// The export format version this crate writes and reads.
pub const EXPORT_VERSION: u64 = 1;
/// Longest HSM id or partition id in an export, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// The id the HSM gives an export (16 random bytes), written as 32 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExportId(pub [u8; 16]);

impl std::fmt::Display for ExportId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut hex = [0u8; 32];
        encode_hex(&self.0, &mut hex);
        f.write_str(std::str::from_utf8(&hex).map_err(|_| std::fmt::Error)?)
    }
}

impl std::fmt::Debug for ExportId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ExportId({self})")
    }
}

/// The header line of an export (see [the format](crate::export)).
///
/// A parsed header is well formed, not trusted: its range and names are vouched for only by the
/// closing checkpoint at the end of the file, and its key only if the verifier pinned it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportHeader {
    /// The HSM's id (1 to [`MAX_NAME_LEN`] bytes of `A-Z a-z 0-9 . _ -`).
    pub hsm: String,
    /// The partition's id (the same rule).
    pub partition: String,
    /// The audit key the HSM signs with.
    pub key: AuditKey,
    /// The export's id.
    pub export: ExportId,
    /// The first entry exported (at least 1).
    pub from: u64,
    /// The last entry exported (`from - 1` for an empty export).
    pub to: u64,
    /// For an export that does not start at entry 1: the HSM's checkpoint over entry
    /// `from - 1`, if it has one (it must, for a pruned log).
    pub anchor: Option<Checkpoint>,
}

impl ExportHeader {
    /// Checks the header's own rules: names, range, and an anchor only where one can stand.
    pub fn check(&self) -> Result<(), LogError> {
        check_name("hsm", &self.hsm).map_err(bad_header)?;
        check_name("partition", &self.partition).map_err(bad_header)?;
        if self.from == 0 {
            return Err(bad_header(
                "the range starts at 0; the first entry is 1".into(),
            ));
        }
        if self.to < self.from - 1 {
            return Err(bad_header(format!(
                "the range {} to {} ends before it starts",
                self.from, self.to
            )));
        }
        match &self.anchor {
            Some(_) if self.from == 1 => Err(bad_header(
                "an export from entry 1 starts at the partition's genesis and has no anchor".into(),
            )),
            Some(a) if a.seq != self.from - 1 => Err(bad_header(format!(
                "the anchor names entry {}, but the export starts at entry {}",
                a.seq, self.from
            ))),
            _ => Ok(()),
        }
    }

    /// The canonical header line, without its newline. Fails if [`check`](Self::check) does.
    pub fn to_canonical(&self) -> Result<Vec<u8>, LogError> {
        self.check()?;
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(EXPORT_MAGIC);
        write_u64(&mut out, EXPORT_VERSION);
        out.extend_from_slice(b",\"hsm\":\"");
        out.extend_from_slice(self.hsm.as_bytes());
        out.extend_from_slice(b"\",\"partition\":\"");
        out.extend_from_slice(self.partition.as_bytes());
        out.extend_from_slice(b"\",\"key\":");
        write_hash(&mut out, &Hash(self.key.to_bytes()));
        out.extend_from_slice(b",\"fingerprint\":");
        write_hash(&mut out, &Hash(self.key.fingerprint().0));
        out.extend_from_slice(b",\"export\":\"");
        out.extend_from_slice(self.export.to_string().as_bytes());
        out.extend_from_slice(b"\",\"from\":");
        write_u64(&mut out, self.from);
        out.extend_from_slice(b",\"to\":");
        write_u64(&mut out, self.to);
        out.extend_from_slice(b",\"anchor\":");
        match &self.anchor {
            None => out.extend_from_slice(b"null"),
            Some(a) => write_checkpoint_object(&mut out, a),
        }
        out.push(b'}');
        Ok(out)
    }

    /// Parses a header line (without its newline). A line that does not open with
    /// [`EXPORT_MAGIC`] is [`Fault::NotAnExport`], another version
    /// [`Fault::UnsupportedVersion`], anything else wrong [`Fault::BadHeader`].
    pub fn from_canonical(line: &[u8]) -> Result<ExportHeader, LogError> {
        if !line.starts_with(EXPORT_MAGIC) {
            let shown = String::from_utf8_lossy(&line[..line.len().min(40)]).into_owned();
            return Err(LogError::Rejected(Fault::NotAnExport {
                problem: format!("its first line starts {shown:?}"),
            }));
        }
        if line.len() > MAX_LINE_LEN {
            return Err(LogError::Rejected(Fault::TooLong {
                len: line.len(),
                max: MAX_LINE_LEN,
            }));
        }
        let mut r = Reader::new(line).map_err(problem)?;
        r.eat(EXPORT_MAGIC);
        let version = r.uint().map_err(problem)?;
        if version != EXPORT_VERSION {
            return Err(LogError::Rejected(Fault::UnsupportedVersion {
                version,
                supported: EXPORT_VERSION,
            }));
        }
        let header = read_fields(&mut r).map_err(problem)?;
        header.check()?;
        require_same(line, &header.to_canonical()?).map_err(problem)?;
        Ok(header)
    }
}

fn read_fields(r: &mut Reader<'_>) -> Result<ExportHeader, LogError> {
    r.expect(",\"hsm\":")?;
    let hsm = r.string()?.into_owned();
    r.expect(",\"partition\":")?;
    let partition = r.string()?.into_owned();
    r.expect(",\"key\":")?;
    let key_at = r.pos();
    let key = AuditKey::from_bytes(&r.hash()?.0)
        .map_err(|_| crate::canonical::reader::fail_at("not an Ed25519 public key", key_at))?;
    r.expect(",\"fingerprint\":")?;
    let fp_at = r.pos();
    if r.hash()?.0 != key.fingerprint().0 {
        return Err(crate::canonical::reader::fail_at(
            "the fingerprint is not the key's",
            fp_at,
        ));
    }
    r.expect(",\"export\":")?;
    let mut id = [0u8; 16];
    r.hex(&mut id)?;
    r.expect(",\"from\":")?;
    let from = r.uint()?;
    r.expect(",\"to\":")?;
    let to = r.uint()?;
    r.expect(",\"anchor\":")?;
    let anchor = if r.eat(b"null") {
        None
    } else {
        Some(read_checkpoint_object(r)?)
    };
    r.expect("}")?;
    r.end()?;
    Ok(ExportHeader {
        hsm,
        partition,
        key,
        export: ExportId(id),
        from,
        to,
        anchor,
    })
}

/// `{"seq":N,"hash":"…","time":T,"sig":"…"}`: the inner object of a checkpoint line.
pub(crate) fn write_checkpoint_object(out: &mut Vec<u8>, cp: &Checkpoint) {
    out.extend_from_slice(b"{\"seq\":");
    write_u64(out, cp.seq);
    out.extend_from_slice(b",\"hash\":");
    write_hash(out, &cp.hash);
    out.extend_from_slice(b",\"time\":");
    write_u64(out, cp.time_unix_ms);
    out.extend_from_slice(b",\"sig\":\"");
    let mut hex = [0u8; SIGNATURE_LEN * 2];
    encode_hex(&cp.signature, &mut hex);
    out.extend_from_slice(&hex);
    out.extend_from_slice(b"\"}");
}

fn read_checkpoint_object(r: &mut Reader<'_>) -> Result<Checkpoint, LogError> {
    r.expect("{\"seq\":")?;
    let seq = r.uint()?;
    r.expect(",\"hash\":")?;
    let hash = r.hash()?;
    r.expect(",\"time\":")?;
    let time_unix_ms = r.uint()?;
    r.expect(",\"sig\":")?;
    let mut signature = [0u8; SIGNATURE_LEN];
    r.hex(&mut signature)?;
    r.expect("}")?;
    Ok(Checkpoint {
        seq,
        hash,
        time_unix_ms,
        signature,
    })
}

/// HSM and partition ids: 1 to [`MAX_NAME_LEN`] bytes of `A-Z a-z 0-9 . _ -`, starting with a
/// letter or digit; they never need escaping in JSON, syslog or CEF.
pub(crate) fn check_name(field: &str, name: &str) -> Result<(), String> {
    let b = name.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= MAX_NAME_LEN
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "the {field} id {name:?} is not 1 to {MAX_NAME_LEN} characters of A-Z a-z 0-9 . _ - \
             starting with a letter or digit"
        ))
    }
}

fn bad_header(problem: String) -> LogError {
    LogError::Rejected(Fault::BadHeader { problem })
}

fn problem(e: LogError) -> LogError {
    match e {
        LogError::Rejected(Fault::NonCanonical { problem }) => bad_header(problem),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::AuditSigner;

    fn header() -> ExportHeader {
        let signer = AuditSigner::from_secret_bytes(&[7; 32]);
        ExportHeader {
            hsm: "hsm-0123456789abcdef".into(),
            partition: "bank-1".into(),
            key: signer.public(),
            export: ExportId([0xab; 16]),
            from: 11,
            to: 20,
            anchor: Some(signer.sign_checkpoint(10, Hash([3; 32]), 5)),
        }
    }

    #[test]
    fn round_trip_and_json() {
        let h = header();
        let line = h.to_canonical().unwrap();
        assert_eq!(ExportHeader::from_canonical(&line), Ok(h.clone()));
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["version"], 1);
        assert_eq!(v["tessera"], "audit-log-export");
        assert_eq!(v["anchor"]["seq"], 10);
        assert_eq!(v["export"], "ab".repeat(16));
        let none = ExportHeader {
            from: 1,
            to: 0,
            anchor: None,
            ..h
        };
        let line = none.to_canonical().unwrap();
        assert!(line.ends_with(b"\"from\":1,\"to\":0,\"anchor\":null}"));
        assert_eq!(ExportHeader::from_canonical(&line), Ok(none));
    }

    #[test]
    fn refusals() {
        let line = header().to_canonical().unwrap();
        let text = String::from_utf8(line).unwrap();
        let fault = |t: &str| {
            ExportHeader::from_canonical(t.as_bytes())
                .unwrap_err()
                .fault()
                .cloned()
                .unwrap()
        };
        assert!(matches!(fault("{\"seq\":1}"), Fault::NotAnExport { .. }));
        assert!(matches!(
            fault(&text.replace("\"version\":1", "\"version\":2")),
            Fault::UnsupportedVersion { version: 2, .. }
        ));
        for bad in [
            text.replace("\"from\":11", "\"from\":12"),
            text.replace("\"from\":11", "\"from\":0"),
            text.replace("\"to\":20", "\"to\":9"),
            text.replace("bank-1", "bank 1"),
            text.replace("\"from\":11", "\"from\": 11"),
            text.replace("\"fingerprint\":\"", "\"fingerprint\":\"0"),
        ] {
            assert!(matches!(fault(&bad), Fault::BadHeader { .. }), "{bad}");
        }
        let mut h = header();
        h.from = 1;
        h.to = 5;
        assert!(h.to_canonical().is_err(), "entry 1 has no anchor");
    }
}
