//! Sealing: the I/O-free [`Sealer`] (one STREAM, chunk by chunk) and the streaming
//! [`BackupWriter`] over any `Write`.

use std::io::Write;

use aead_stream::{EncryptorBE32, StreamBE32};
use aes_gcm::{Aes256Gcm, KeyInit};
use ed25519_dalek::{SigningKey, VerifyingKey};
use zeroize::Zeroizing;

use super::header::{BackupFacts, Header, Layout};
use super::keys::{DataKey, Recipients};
use super::trailer::{ChunkChain, Trailer};
use super::{BACKUP_ID_LEN, NONCE_PREFIX_LEN, TAG_LEN};
use crate::error::BackupError;

type Stream = StreamBE32<Aes256Gcm>;

/// One backup's STREAM encryptor. It seals chunks in order, each exactly as long as the layout
/// says; the last chunk consumes the encryptor, so nothing can be sealed after it. A sealer is
/// not `Clone` and not shared: one STREAM's nonces are never split across threads.
pub struct Sealer {
    stream: Option<EncryptorBE32<Aes256Gcm>>,
    header_hash: [u8; 32],
    layout: Layout,
    next: u64,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("layout", &self.layout)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl Sealer {
    /// Starts a backup: draws the data key, backup id and nonce prefix, wraps the key to both
    /// recipients and builds the header. `hsm_signing_key` is the key whose signature will close
    /// the trailer. The data key lives on only inside the cipher.
    pub fn new(
        facts: BackupFacts,
        recipients: &Recipients,
        hsm_signing_key: &VerifyingKey,
    ) -> Result<(Sealer, Header), BackupError> {
        facts.check()?;
        let key = DataKey::generate()?;
        let mut backup_id = [0u8; BACKUP_ID_LEN];
        let mut nonce_prefix = [0u8; NONCE_PREFIX_LEN];
        getrandom::fill(&mut backup_id).map_err(|_| BackupError::Crypto {
            op: "drawing a backup id",
        })?;
        getrandom::fill(&mut nonce_prefix).map_err(|_| BackupError::Crypto {
            op: "drawing a nonce prefix",
        })?;
        let mut header = Header {
            facts,
            backup_id,
            hsm_signing_key: hsm_signing_key.to_bytes(),
            nonce_prefix,
            hsm_backup_key_id: recipients.hsm_key_id(),
            hsm_wrapped_key: recipients.wrap_for_hsm(&key)?,
            quorum_backup_key_id: recipients.quorum_key_id(),
            quorum_wrapped_key: recipients.wrap_for_quorum(&key)?,
            encoded_len: 0,
            hash: [0; 32],
        };
        let encoded = header.encode();
        header.encoded_len = encoded.len();
        header.hash = <sha2::Sha256 as sha2::Digest>::digest(&encoded).into();
        let sealer = Sealer {
            stream: Some(stream(&key, &header)?),
            header_hash: header.hash,
            layout: header.layout(),
            next: 0,
        };
        Ok((sealer, header))
    }

    /// The file's layout.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Plaintext bytes the next chunk must hold, or `None` once the last chunk is sealed.
    pub fn next_chunk_len(&self) -> Option<usize> {
        self.stream
            .as_ref()
            .map(|_| self.layout.chunk_plain_len(self.next))
    }

    /// Seals the next chunk in place: `buf` holds exactly [`Sealer::next_chunk_len`] plaintext
    /// bytes and gets the tag appended (give it 16 bytes of spare capacity to avoid a copy).
    pub fn seal_next(&mut self, buf: &mut Vec<u8>) -> Result<(), BackupError> {
        let expected = self.next_chunk_len().ok_or(BackupError::PlaintextLength {
            expected: self.layout.plaintext_len,
            given: self.layout.plaintext_len + buf.len() as u64,
        })?;
        if buf.len() != expected {
            return Err(BackupError::PlaintextLength {
                expected: self.layout.plaintext_len,
                given: self.plain_before(self.next) + buf.len() as u64,
            });
        }
        let failed = || BackupError::Crypto {
            op: "sealing a chunk",
        };
        if self.next + 1 == self.layout.chunks {
            let stream = self.stream.take().ok_or_else(failed)?;
            stream
                .encrypt_last_in_place(&self.header_hash, buf)
                .map_err(|_| failed())?;
        } else if let Some(stream) = self.stream.as_mut() {
            stream
                .encrypt_next_in_place(&self.header_hash, buf)
                .map_err(|_| failed())?;
        }
        self.next += 1;
        Ok(())
    }

    fn plain_before(&self, chunk: u64) -> u64 {
        chunk * u64::from(self.layout.chunk_size)
    }
}

/// The STREAM for `key` and `header`'s nonce prefix.
pub(crate) fn stream(
    key: &DataKey,
    header: &Header,
) -> Result<EncryptorBE32<Aes256Gcm>, BackupError> {
    let cipher = cipher(key)?;
    let nonce = aead_stream::Nonce::<Aes256Gcm, Stream>::from(header.nonce_prefix);
    Ok(EncryptorBE32::from_aead(cipher, &nonce))
}

pub(crate) fn cipher(key: &DataKey) -> Result<Aes256Gcm, BackupError> {
    Aes256Gcm::new_from_slice(key.bytes()).map_err(|_| BackupError::Crypto {
        op: "loading the data key",
    })
}

/// What was written: the header and the signed trailer. A read-back check compares the file on
/// the drive against it ([`crate::Verified::matches`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrittenBackup {
    /// The header written.
    pub header: Header,
    /// The trailer written.
    pub trailer: Trailer,
}

impl WrittenBackup {
    /// The file's length.
    pub fn file_len(&self) -> u64 {
        self.header.layout().file_len()
    }
}

/// A streaming backup writer over any `Write`: the header goes out on creation, each chunk as
/// soon as it is full, the signed trailer on [`BackupWriter::finish`]. A writer dropped without
/// `finish` leaves a file without its trailer, which every reader rejects as truncated.
///
/// This is the simple single-thread writer; [`crate::seal_pipelined`] overlaps reading, sealing
/// and writing for speed and writes the same bytes.
pub struct BackupWriter<'k, W: Write> {
    out: W,
    sealer: Sealer,
    chain: ChunkChain,
    header: Header,
    signer: &'k SigningKey,
    /// Plaintext until sealed: wiped if the writer is dropped.
    buf: Zeroizing<Vec<u8>>,
    given: u64,
}

impl<W: Write> std::fmt::Debug for BackupWriter<'_, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupWriter")
            .field("sealer", &self.sealer)
            .field("given", &self.given)
            .finish_non_exhaustive()
    }
}

impl<'k, W: Write> BackupWriter<'k, W> {
    /// Starts a backup of `facts.plaintext_len` bytes and writes its header to `out`.
    pub fn new(
        mut out: W,
        facts: BackupFacts,
        recipients: &Recipients,
        signer: &'k SigningKey,
    ) -> Result<Self, BackupError> {
        let (sealer, header) = Sealer::new(facts, recipients, &signer.verifying_key())?;
        out.write_all(&header.encode())
            .map_err(|e| BackupError::io("write", "backup header", e))?;
        let capacity = sealer.layout().chunk_size as usize + TAG_LEN;
        Ok(BackupWriter {
            out,
            chain: ChunkChain::new(header.backup_id()),
            sealer,
            header,
            signer,
            buf: Zeroizing::new(Vec::with_capacity(capacity)),
            given: 0,
        })
    }

    /// The header written.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Adds plaintext. More bytes than the header announced is an error.
    pub fn write_plaintext(&mut self, mut data: &[u8]) -> Result<(), BackupError> {
        let expected = self.header.facts.plaintext_len;
        if self.given + data.len() as u64 > expected {
            return Err(BackupError::PlaintextLength {
                expected,
                given: self.given + data.len() as u64,
            });
        }
        while !data.is_empty() {
            let want = self.sealer.next_chunk_len().unwrap_or(0);
            let take = (want - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            self.given += take as u64;
            data = &data[take..];
            // The last chunk waits for `finish`: only it may close the STREAM.
            if self.buf.len() == want && self.given < expected {
                self.seal_buffered()?;
            }
        }
        Ok(())
    }

    fn seal_buffered(&mut self) -> Result<(), BackupError> {
        self.sealer.seal_next(&mut self.buf)?;
        self.chain.push_chunk(&self.buf);
        self.out
            .write_all(&self.buf)
            .map_err(|e| BackupError::io("write", "backup chunk", e))?;
        self.buf.clear();
        Ok(())
    }

    /// Seals the last chunk, writes the signed trailer and flushes. Fewer plaintext bytes than
    /// announced is an error, and then no trailer is written.
    pub fn finish(mut self) -> Result<(W, WrittenBackup), BackupError> {
        let expected = self.header.facts.plaintext_len;
        if self.given != expected {
            return Err(BackupError::PlaintextLength {
                expected,
                given: self.given,
            });
        }
        self.seal_buffered()?;
        let (trailer, bytes) = self.chain.finish(self.header.hash(), self.signer);
        self.out
            .write_all(&bytes)
            .map_err(|e| BackupError::io("write", "backup trailer", e))?;
        self.out
            .flush()
            .map_err(|e| BackupError::io("flush", "backup", e))?;
        Ok((
            self.out,
            WrittenBackup {
                header: self.header,
                trailer,
            },
        ))
    }
}

impl<W: Write> Write for BackupWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_plaintext(buf).map_err(std::io::Error::other)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}
