//! Offline verification: completeness and origin of a backup file with only the HSM's public
//! key, without any secret. Flat memory: one chunk and one block of the digest table at a time.

use std::io::{Read, Seek, SeekFrom};

use ed25519_dalek::VerifyingKey;

use super::header::{Header, Layout, read_full};
use super::trailer::{Chain, Trailer, chunk_digest};
use super::{DIGEST_LEN, TRAILER_FIXED_LEN, WrittenBackup};
use crate::error::{BackupError, Rejection};

/// Digest table entries read at a time.
const TABLE_BLOCK: u64 = 1024;

/// Proof that a backup verified: only verification makes one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    header: Header,
    trailer: Trailer,
}

impl Verified {
    pub(crate) fn new(header: Header, trailer: Trailer) -> Verified {
        Verified { header, trailer }
    }

    /// The verified header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The verified trailer.
    pub fn trailer(&self) -> &Trailer {
        &self.trailer
    }

    /// Whether this is the backup that was written: same header, same signed trailer. Ed25519
    /// signatures are deterministic, so equal signatures over equal header hashes mean equal
    /// chains, hence equal chunks.
    pub fn matches(&self, written: &WrittenBackup) -> Result<(), Rejection> {
        if self.header.hash() != written.header.hash() {
            return Err(Rejection::ReadBackMismatch {
                what: "the header differs",
            });
        }
        if self.trailer != written.trailer {
            return Err(Rejection::ReadBackMismatch {
                what: "the trailer differs",
            });
        }
        Ok(())
    }
}

/// Proves a backup file complete and authentic with the pinned HSM signing key: length,
/// signature, digest table against the signed chain, every chunk against the table, and the
/// header against the signed header hash. Each failure names the attack it reveals.
pub fn verify_offline<R: Read + Seek>(
    mut file: R,
    hsm_key: &VerifyingKey,
) -> Result<Verified, BackupError> {
    let seek = |f: &mut R, to: u64| {
        f.seek(SeekFrom::Start(to))
            .map_err(|e| BackupError::io("seek", "backup", e))
    };
    let len = file
        .seek(SeekFrom::End(0))
        .map_err(|e| BackupError::io("seek", "backup", e))?;
    seek(&mut file, 0)?;
    let header = Header::read_from(&mut file)?;
    if header.hsm_signing_key() != hsm_key.to_bytes() {
        return Err(Rejection::WrongHsm {
            detail: "the backup was made by another HSM than the one pinned",
        }
        .into());
    }
    let layout = header.layout();
    check_len(&layout, len)?;
    seek(&mut file, layout.trailer_fixed_offset())?;
    let mut fixed = [0u8; TRAILER_FIXED_LEN];
    file.read_exact(&mut fixed)
        .map_err(|e| BackupError::io("read", "backup trailer", e))?;
    let trailer = Trailer::parse(&fixed)?;
    trailer.verify(hsm_key)?;
    let body = check_body(&mut file, &layout, &trailer)?;
    judge(header, trailer, body)
}

fn check_len(layout: &Layout, len: u64) -> Result<(), Rejection> {
    let expected = layout.file_len();
    if len < expected {
        return Err(Rejection::Truncated {
            expected,
            found: len,
            part: layout.part_at(len),
        });
    }
    if len > expected {
        return Err(Rejection::TrailingData {
            extra: len - expected,
        });
    }
    Ok(())
}

/// What the body showed against the trailer's table.
struct BodyCheck {
    /// The first chunk whose digest is not its table entry, and the entry it matches, if any.
    first_mismatch: Option<(u64, Option<u64>)>,
    /// Whether the table hashes to the signed chain.
    table_chain_ok: bool,
}

fn check_body<R: Read + Seek>(
    file: &mut R,
    layout: &Layout,
    trailer: &Trailer,
) -> Result<BodyCheck, BackupError> {
    let mut table = TableReader::new(layout, trailer.chunks.min(layout.chunks));
    let mut chain = Chain::new(&trailer.backup_id);
    let mut first_mismatch = None;
    let mut buf = vec![0u8; layout.chunk_stored_len(0)];
    let mut offset = layout.body_offset();
    for i in 0..layout.chunks {
        let stored = layout.chunk_stored_len(i);
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| BackupError::io("seek", "backup", e))?;
        let got = read_full(file, &mut buf[..stored])?;
        if got < stored {
            return Err(BackupError::io(
                "read",
                "backup chunk",
                std::io::ErrorKind::UnexpectedEof.into(),
            ));
        }
        offset += stored as u64;
        let digest = chunk_digest(&buf[..stored]);
        let entry = table.entry(file, i)?;
        if let Some(entry) = entry {
            chain.push(&entry);
        }
        if first_mismatch.is_none() && entry != Some(digest) {
            first_mismatch = Some((i, table.find_near(file, i, &digest)?));
        }
    }
    Ok(BodyCheck {
        first_mismatch,
        table_chain_ok: chain.value() == trailer.chain && trailer.chunks == layout.chunks,
    })
}

/// Names the failure from what was found, most specific first.
fn judge(header: Header, trailer: Trailer, body: BodyCheck) -> Result<Verified, BackupError> {
    if !body.table_chain_ok {
        // A valid signature over a chain the table does not give: the table was altered, or the
        // trailer belongs to a backup of another size.
        if trailer.backup_id != header.backup_id() {
            return Err(Rejection::TrailerFromOtherBackup.into());
        }
        return Err(Rejection::TrailerAltered.into());
    }
    if trailer.header_hash != header.hash() {
        let rejection = match (
            body.first_mismatch.is_none(),
            trailer.backup_id == header.backup_id(),
        ) {
            (true, true) => Rejection::HeaderAltered,
            (true, false) => Rejection::HeaderFromOtherBackup,
            (false, _) => Rejection::TrailerFromOtherBackup,
        };
        return Err(rejection.into());
    }
    match body.first_mismatch {
        None => Ok(Verified::new(header, trailer)),
        Some((position, Some(found))) => Err(Rejection::ChunksReordered { position, found }.into()),
        Some((index, None)) => Err(Rejection::ChunkAltered { index }.into()),
    }
}

/// Reads the digest table a block at a time from its place in the file.
struct TableReader {
    offset: u64,
    entries: u64,
    block_start: u64,
    block: Vec<[u8; DIGEST_LEN]>,
}

impl TableReader {
    fn new(layout: &Layout, entries: u64) -> TableReader {
        TableReader {
            offset: layout.table_offset(),
            entries,
            block_start: 0,
            block: Vec::new(),
        }
    }

    /// Entry `i`, or `None` past the table's end.
    fn entry<R: Read + Seek>(
        &mut self,
        file: &mut R,
        i: u64,
    ) -> Result<Option<[u8; DIGEST_LEN]>, BackupError> {
        if i >= self.entries {
            return Ok(None);
        }
        if i < self.block_start || i >= self.block_start + self.block.len() as u64 {
            self.load(file, i - i % TABLE_BLOCK)?;
        }
        Ok(Some(self.block[(i - self.block_start) as usize]))
    }

    fn load<R: Read + Seek>(&mut self, file: &mut R, start: u64) -> Result<(), BackupError> {
        let count = (self.entries - start).min(TABLE_BLOCK) as usize;
        let mut bytes = vec![0u8; count * DIGEST_LEN];
        let here = file
            .stream_position()
            .map_err(|e| BackupError::io("seek", "backup", e))?;
        file.seek(SeekFrom::Start(self.offset + start * DIGEST_LEN as u64))
            .and_then(|_| file.read_exact(&mut bytes))
            .and_then(|_| file.seek(SeekFrom::Start(here)))
            .map_err(|e| BackupError::io("read", "backup digest table", e))?;
        self.block = bytes
            .chunks_exact(DIGEST_LEN)
            .map(|c| {
                let mut d = [0u8; DIGEST_LEN];
                d.copy_from_slice(c);
                d
            })
            .collect();
        self.block_start = start;
        Ok(())
    }

    /// The position of `digest` in the table near `i` (a swap moves a chunk a few places), so
    /// that a reordering is told from an alteration.
    fn find_near<R: Read + Seek>(
        &mut self,
        file: &mut R,
        i: u64,
        digest: &[u8; DIGEST_LEN],
    ) -> Result<Option<u64>, BackupError> {
        let from = i.saturating_sub(8);
        let to = (i + 8).min(self.entries);
        for j in from..to {
            if j != i && self.entry(file, j)?.as_ref() == Some(digest) {
                // Come back to the block of `i` for the caller's next entry.
                self.entry(file, i)?;
                return Ok(Some(j));
            }
        }
        self.entry(file, i)?;
        Ok(None)
    }
}
