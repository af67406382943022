//! The header: its facts, its encoding and its parser (layout in the [module docs](super)).

use std::io::Read;

use sha2::{Digest, Sha256};

use super::{
    BACKUP_ID_LEN, DIGEST_LEN, FORMAT_VERSION, HSM_WRAPPED_KEY_LEN, MAGIC, MAX_CHUNK_SIZE,
    MAX_CHUNKS, MAX_HEADER_LEN, MAX_PLAINTEXT_LEN, MIN_CHUNK_SIZE, NONCE_PREFIX_LEN,
    QUORUM_WRAPPED_KEY_LEN, TAG_LEN, TRAILER_FIXED_LEN,
};
use crate::error::{BackupError, Part, Rejection};

/// Longest partition id, in bytes (as the link's `PartitionId`).
pub const MAX_PARTITION_ID_LEN: usize = 64;

/// Longest partition name, in bytes.
pub const MAX_PARTITION_NAME_LEN: usize = 128;

/// Bytes before the header's variable part: magic, version, header length.
const PREFIX_LEN: usize = 8 + 2 + 4;

/// What the HSM states about a backup it seals: everything in the header that is not a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupFacts {
    /// The partition's id (1 to 64 of `A-Z a-z 0-9 . _ -`, starting alphanumeric).
    pub partition_id: String,
    /// The partition's display name (up to 128 bytes, no control characters).
    pub partition_name: String,
    /// The HSM's id (its identity key's fingerprint).
    pub hsm_id: [u8; 32],
    /// Creation time, Unix seconds, UTC.
    pub created: u64,
    /// The partition's backup sequence number.
    pub sequence: u64,
    /// How many objects the plaintext holds.
    pub object_count: u64,
    /// Plaintext size in bytes.
    pub plaintext_len: u64,
    /// Chunk size, 64 KiB to 1 MiB.
    pub chunk_size: u32,
}

impl BackupFacts {
    /// Checks every bound the parser checks, so a writer never writes what a reader refuses.
    pub fn check(&self) -> Result<(), Rejection> {
        check_partition_id(self.partition_id.as_bytes())?;
        check_partition_name(self.partition_name.as_bytes())?;
        if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&self.chunk_size) {
            return Err(field("chunk size", "not between 64 KiB and 1 MiB"));
        }
        if self.plaintext_len > MAX_PLAINTEXT_LEN {
            return Err(field("plaintext size", "larger than 256 GiB"));
        }
        if chunk_count(self.plaintext_len, self.chunk_size) > MAX_CHUNKS {
            return Err(field(
                "plaintext size",
                "more than 262144 chunks at this chunk size",
            ));
        }
        Ok(())
    }

    /// The length of the backup file these facts make (the header's length follows from the
    /// names; everything else is fixed), for the free-space check before anything is written.
    pub fn file_len(&self) -> u64 {
        let header_len =
            PREFIX_LEN + min_fields_len() - 1 + self.partition_id.len() + self.partition_name.len();
        Layout {
            header_len: header_len as u64,
            plaintext_len: self.plaintext_len,
            chunk_size: self.chunk_size,
            chunks: chunk_count(self.plaintext_len, self.chunk_size),
        }
        .file_len()
    }
}

/// Where everything is in a file, from the header alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Header length.
    pub header_len: u64,
    /// Plaintext size.
    pub plaintext_len: u64,
    /// Chunk size.
    pub chunk_size: u32,
    /// Number of chunks (at least 1).
    pub chunks: u64,
}

impl Layout {
    /// Plaintext bytes in chunk `i`.
    pub fn chunk_plain_len(&self, i: u64) -> usize {
        if i + 1 < self.chunks {
            self.chunk_size as usize
        } else {
            // The last chunk holds the rest: at most one chunk size by construction.
            (self.plaintext_len - (self.chunks - 1) * u64::from(self.chunk_size)) as usize
        }
    }

    /// Stored bytes of chunk `i` (plaintext and tag).
    pub fn chunk_stored_len(&self, i: u64) -> usize {
        self.chunk_plain_len(i) + TAG_LEN
    }

    /// Offset of the body.
    pub fn body_offset(&self) -> u64 {
        self.header_len
    }

    /// Stored bytes of the body.
    pub fn body_len(&self) -> u64 {
        self.plaintext_len + self.chunks * TAG_LEN as u64
    }

    /// Offset of the digest table.
    pub fn table_offset(&self) -> u64 {
        self.header_len + self.body_len()
    }

    /// Offset of the trailer's fixed part.
    pub fn trailer_fixed_offset(&self) -> u64 {
        self.table_offset() + self.chunks * DIGEST_LEN as u64
    }

    /// The whole file's length.
    pub fn file_len(&self) -> u64 {
        self.trailer_fixed_offset() + TRAILER_FIXED_LEN as u64
    }

    /// The part a file cut at `len` bytes ends in.
    pub fn part_at(&self, len: u64) -> Part {
        if len < self.header_len {
            Part::Header
        } else if len < self.table_offset() {
            let stride = u64::from(self.chunk_size) + TAG_LEN as u64;
            Part::Chunk((len - self.header_len) / stride)
        } else {
            Part::Trailer
        }
    }
}

/// The number of chunks for `plaintext_len` bytes: at least one.
pub(crate) fn chunk_count(plaintext_len: u64, chunk_size: u32) -> u64 {
    plaintext_len.div_ceil(u64::from(chunk_size)).max(1)
}

/// A parsed header. Only [`Header::parse`] and the sealer make one, so its fields are in bounds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub(crate) facts: BackupFacts,
    pub(crate) backup_id: [u8; BACKUP_ID_LEN],
    pub(crate) hsm_signing_key: [u8; 32],
    pub(crate) nonce_prefix: [u8; NONCE_PREFIX_LEN],
    pub(crate) hsm_backup_key_id: [u8; 32],
    pub(crate) hsm_wrapped_key: [u8; HSM_WRAPPED_KEY_LEN],
    pub(crate) quorum_backup_key_id: [u8; 32],
    pub(crate) quorum_wrapped_key: Vec<u8>,
    pub(crate) encoded_len: usize,
    pub(crate) hash: [u8; DIGEST_LEN],
}

impl Header {
    /// The facts the HSM stated.
    pub fn facts(&self) -> &BackupFacts {
        &self.facts
    }

    /// This backup's random id.
    pub fn backup_id(&self) -> [u8; BACKUP_ID_LEN] {
        self.backup_id
    }

    /// The Ed25519 key that signed (or is to sign) the trailer.
    pub fn hsm_signing_key(&self) -> [u8; 32] {
        self.hsm_signing_key
    }

    /// SHA-256 of the HSM's X25519 backup public key the data key is wrapped to.
    pub fn hsm_backup_key_id(&self) -> [u8; 32] {
        self.hsm_backup_key_id
    }

    /// SHA-256 of the quorum backup public key the data key is wrapped to.
    pub fn quorum_backup_key_id(&self) -> [u8; 32] {
        self.quorum_backup_key_id
    }

    /// The data key wrapped to the quorum backup key, in the `quorum` crate's format: a
    /// recovery ceremony opens it with `quorum::unwrap_with`, then [`super::DataKey::from_bytes`].
    pub fn quorum_wrapped_key(&self) -> &[u8] {
        &self.quorum_wrapped_key
    }

    /// SHA-256 of the encoded header: bound into every chunk and signed in the trailer.
    pub fn hash(&self) -> [u8; DIGEST_LEN] {
        self.hash
    }

    /// Where everything is in the file.
    pub fn layout(&self) -> Layout {
        Layout {
            header_len: self.encoded_len as u64,
            plaintext_len: self.facts.plaintext_len,
            chunk_size: self.facts.chunk_size,
            chunks: chunk_count(self.facts.plaintext_len, self.facts.chunk_size),
        }
    }

    /// The encoding (see the [module docs](super)).
    pub fn encode(&self) -> Vec<u8> {
        let f = &self.facts;
        let mut out = Vec::with_capacity(1500);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&[0; 4]); // the length, filled in below
        out.extend_from_slice(&self.backup_id);
        for text in [&f.partition_id, &f.partition_name] {
            // Both are at most 128 bytes: `BackupFacts::check` ran before any header exists.
            out.push(text.len() as u8);
            out.extend_from_slice(text.as_bytes());
        }
        out.extend_from_slice(&f.hsm_id);
        out.extend_from_slice(&self.hsm_signing_key);
        for n in [f.created, f.sequence, f.object_count, f.plaintext_len] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        out.extend_from_slice(&f.chunk_size.to_le_bytes());
        out.extend_from_slice(&self.nonce_prefix);
        out.extend_from_slice(&self.hsm_backup_key_id);
        out.extend_from_slice(&self.hsm_wrapped_key);
        out.extend_from_slice(&self.quorum_backup_key_id);
        out.extend_from_slice(&self.quorum_wrapped_key);
        let len = out.len() as u32;
        out[10..14].copy_from_slice(&len.to_le_bytes());
        out
    }

    /// Parses a whole header (exactly its bytes), checking every bound.
    pub fn parse(bytes: &[u8]) -> Result<Header, Rejection> {
        let declared = check_prefix(bytes)?;
        if bytes.len() != declared {
            return Err(Rejection::Truncated {
                expected: declared as u64,
                found: bytes.len() as u64,
                part: Part::Header,
            });
        }
        let mut r = Fields {
            rest: &bytes[PREFIX_LEN..],
        };
        let backup_id = r.array("backup id")?;
        let partition_id = r.text("partition id", check_partition_id)?;
        let partition_name = r.text("partition name", check_partition_name)?;
        let hsm_id = r.array("HSM id")?;
        let hsm_signing_key = r.array("HSM signing key")?;
        let created = r.u64("creation time")?;
        let sequence = r.u64("sequence number")?;
        let object_count = r.u64("object count")?;
        let plaintext_len = r.u64("plaintext size")?;
        let chunk_size = u32::from_le_bytes(r.array("chunk size")?);
        let facts = BackupFacts {
            partition_id,
            partition_name,
            hsm_id,
            created,
            sequence,
            object_count,
            plaintext_len,
            chunk_size,
        };
        facts.check()?;
        let header = Header {
            facts,
            backup_id,
            hsm_signing_key,
            nonce_prefix: r.array("nonce prefix")?,
            hsm_backup_key_id: r.array("HSM backup key id")?,
            hsm_wrapped_key: r.array("data key wrapped to the HSM")?,
            quorum_backup_key_id: r.array("quorum backup key id")?,
            quorum_wrapped_key: r
                .take("data key wrapped to the quorum", QUORUM_WRAPPED_KEY_LEN)?
                .to_vec(),
            encoded_len: bytes.len(),
            hash: Sha256::digest(bytes).into(),
        };
        if !r.rest.is_empty() {
            return Err(field("header length", "bytes left after the last field"));
        }
        Ok(header)
    }

    /// Reads and parses the header at the start of `reader`, reading exactly its bytes.
    pub fn read_from(reader: &mut impl Read) -> Result<Header, BackupError> {
        let mut bytes = vec![0u8; PREFIX_LEN];
        let got = read_full(reader, &mut bytes)?;
        if got < PREFIX_LEN {
            bytes.truncate(got);
            check_prefix_partial(&bytes)?;
            return Err(truncated_header(PREFIX_LEN as u64, got as u64).into());
        }
        let declared = check_prefix(&bytes)?;
        bytes.resize(declared, 0);
        let got = read_full(reader, &mut bytes[PREFIX_LEN..])?;
        if got < declared - PREFIX_LEN {
            return Err(truncated_header(declared as u64, (PREFIX_LEN + got) as u64).into());
        }
        Ok(Header::parse(&bytes)?)
    }
}

fn truncated_header(expected: u64, found: u64) -> Rejection {
    Rejection::Truncated {
        expected,
        found,
        part: Part::Header,
    }
}

/// Checks magic, version and declared length; returns the declared length.
fn check_prefix(bytes: &[u8]) -> Result<usize, Rejection> {
    check_prefix_partial(bytes)?;
    if bytes.len() < PREFIX_LEN {
        return Err(truncated_header(PREFIX_LEN as u64, bytes.len() as u64));
    }
    let declared = u32::from_le_bytes([bytes[10], bytes[11], bytes[12], bytes[13]]) as usize;
    if declared > MAX_HEADER_LEN {
        return Err(field("header length", "longer than 2048 bytes"));
    }
    if declared < PREFIX_LEN + min_fields_len() {
        return Err(field("header length", "shorter than the fixed fields"));
    }
    Ok(declared)
}

/// Checks as much of magic and version as `bytes` holds, so a short file of another kind is
/// called that rather than truncated.
fn check_prefix_partial(bytes: &[u8]) -> Result<(), Rejection> {
    let n = bytes.len().min(MAGIC.len());
    if bytes[..n] != MAGIC[..n] {
        return Err(Rejection::BadMagic);
    }
    if bytes.len() >= 10 {
        let found = u16::from_le_bytes([bytes[8], bytes[9]]);
        if found != FORMAT_VERSION {
            return Err(Rejection::UnsupportedVersion { found });
        }
    }
    Ok(())
}

const fn min_fields_len() -> usize {
    BACKUP_ID_LEN
        + 1
        + 1
        + 1
        + 32
        + 32
        + 4 * 8
        + 4
        + NONCE_PREFIX_LEN
        + 32
        + HSM_WRAPPED_KEY_LEN
        + 32
        + QUORUM_WRAPPED_KEY_LEN
}

fn field(field: &'static str, problem: &'static str) -> Rejection {
    Rejection::HeaderField { field, problem }
}

fn check_partition_id(id: &[u8]) -> Result<(), Rejection> {
    let name = "partition id";
    if id.is_empty() || id.len() > MAX_PARTITION_ID_LEN {
        return Err(field(name, "not 1 to 64 bytes"));
    }
    let ok = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
    if !id[0].is_ascii_alphanumeric() || !id.iter().all(ok) {
        return Err(field(
            name,
            "not A-Z a-z 0-9 . _ - starting with a letter or digit",
        ));
    }
    Ok(())
}

fn check_partition_name(name: &[u8]) -> Result<(), Rejection> {
    let which = "partition name";
    if name.len() > MAX_PARTITION_NAME_LEN {
        return Err(field(which, "longer than 128 bytes"));
    }
    let text = std::str::from_utf8(name).map_err(|_| field(which, "not UTF-8"))?;
    if text.chars().any(char::is_control) {
        return Err(field(which, "holds control characters"));
    }
    Ok(())
}

/// Reads into `buf` until it is full or the input ends; returns the bytes read.
pub(crate) fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> Result<usize, BackupError> {
    let mut done = 0;
    while done < buf.len() {
        match reader.read(&mut buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(BackupError::io("read", "backup", e)),
        }
    }
    Ok(done)
}

/// A cursor over the header's fields; every read names its field when the bytes run out.
struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    fn take(&mut self, name: &'static str, n: usize) -> Result<&'a [u8], Rejection> {
        if self.rest.len() < n {
            return Err(field(name, "runs past the header length"));
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, name: &'static str) -> Result<[u8; N], Rejection> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(name, N)?);
        Ok(out)
    }

    fn u64(&mut self, name: &'static str) -> Result<u64, Rejection> {
        Ok(u64::from_le_bytes(self.array(name)?))
    }

    fn text(
        &mut self,
        name: &'static str,
        check: fn(&[u8]) -> Result<(), Rejection>,
    ) -> Result<String, Rejection> {
        let len = self.take(name, 1)?[0] as usize;
        let bytes = self.take(name, len)?;
        check(bytes)?;
        // `check` accepted it, and both checks refuse bytes that are not UTF-8.
        String::from_utf8(bytes.to_vec()).map_err(|_| field(name, "not UTF-8"))
    }
}
