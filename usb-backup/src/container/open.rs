//! Reading with the data key: a streaming decryptor over any `Read` (a file, or the chunks of
//! a restore arriving over the link), holding one chunk at a time.
//!
//! Plaintext is released chunk by chunk, each authenticated by GCM at its STREAM position; the
//! whole (end, chain, signature, header) is proven only when [`DecryptingReader::next_chunk`]
//! returns `None` or [`DecryptingReader::finish`] succeeds. A restore must stage what it reads
//! and commit nothing before that.

use std::io::Read;

use aead_stream::{DecryptorBE32, StreamBE32};
use aes_gcm::Aes256Gcm;
use ed25519_dalek::VerifyingKey;
use zeroize::Zeroizing;

use super::header::{Header, Layout, read_full};
use super::keys::DataKey;
use super::seal::cipher;
use super::trailer::{Chain, Trailer, chunk_digest};
use super::verify::Verified;
use super::{DIGEST_LEN, TAG_LEN, TRAILER_FIXED_LEN};
use crate::error::{BackupError, Part, Rejection};

/// A backup whose header has been read and whose signing key is the pinned HSM's. Show its
/// facts, unwrap its data key ([`Header::unwrap_for_hsm`], [`Header::unwrap_for_quorum`]), then
/// [`BackupReader::decrypt`].
#[derive(Debug)]
pub struct BackupReader<R: Read> {
    input: R,
    header: Header,
    hsm_key: VerifyingKey,
}

impl<R: Read> BackupReader<R> {
    /// Reads the header from `input`, and checks that the pinned HSM made the backup.
    pub fn open(mut input: R, hsm_key: &VerifyingKey) -> Result<Self, BackupError> {
        let header = Header::read_from(&mut input)?;
        if header.hsm_signing_key() != hsm_key.to_bytes() {
            return Err(Rejection::WrongHsm {
                detail: "the backup was made by another HSM than the one pinned",
            }
            .into());
        }
        Ok(BackupReader {
            input,
            header,
            hsm_key: *hsm_key,
        })
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Starts decrypting with the data key.
    pub fn decrypt(self, key: DataKey) -> Result<DecryptingReader<R>, BackupError> {
        let nonce =
            aead_stream::Nonce::<Aes256Gcm, StreamBE32<Aes256Gcm>>::from(self.header.nonce_prefix);
        let stream = DecryptorBE32::from_aead(cipher(&key)?, &nonce);
        let layout = self.header.layout();
        Ok(DecryptingReader {
            chain: Chain::new(&self.header.backup_id()),
            // Plaintext: wiped when the reader goes; sized once, so never reallocated.
            buf: Zeroizing::new(Vec::with_capacity(layout.chunk_size as usize + TAG_LEN)),
            stream: Some(stream),
            input: self.input,
            header: self.header,
            hsm_key: self.hsm_key,
            layout,
            next: 0,
            verified: None,
            consumed: 0,
            failed: false,
        })
    }
}

/// Decrypts chunk by chunk. Each chunk is authenticated at its place as it is released; the
/// whole backup is proven only when `next_chunk` returns `None` or `finish` succeeds, so a
/// restore stages what it reads and commits nothing before.
pub struct DecryptingReader<R: Read> {
    input: R,
    header: Header,
    hsm_key: VerifyingKey,
    layout: Layout,
    stream: Option<DecryptorBE32<Aes256Gcm>>,
    chain: Chain,
    buf: Zeroizing<Vec<u8>>,
    next: u64,
    verified: Option<Verified>,
    /// Plaintext of the current chunk already handed out through `Read`.
    consumed: usize,
    /// Set by the first failure: nothing more is read or released after it.
    failed: bool,
}

impl<R: Read> std::fmt::Debug for DecryptingReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecryptingReader")
            .field("layout", &self.layout)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl<R: Read> DecryptingReader<R> {
    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The next chunk's plaintext, or `None` after the last one, once the trailer has been read
    /// and the whole backup verified.
    pub fn next_chunk(&mut self) -> Result<Option<&[u8]>, BackupError> {
        if self.failed {
            return Err(BackupError::Crypto {
                op: "reading on after a rejected chunk",
            });
        }
        match self.advance() {
            Ok(true) => Ok(Some(&self.buf)),
            Ok(false) => Ok(None),
            Err(e) => {
                self.failed = true;
                self.buf.clear();
                self.consumed = 0;
                Err(e)
            }
        }
    }

    /// Reads and decrypts the next chunk into `buf` (true), or verifies the trailer (false).
    fn advance(&mut self) -> Result<bool, BackupError> {
        if self.next == self.layout.chunks {
            if self.verified.is_none() {
                self.verified = Some(self.read_trailer()?);
            }
            return Ok(false);
        }
        let i = self.next;
        let stored = self.layout.chunk_stored_len(i);
        self.buf.resize(stored, 0);
        let got = read_full(&mut self.input, &mut self.buf)?;
        if got < stored {
            let found = self.layout.body_offset() + self.body_before(i) + got as u64;
            return Err(truncated(&self.layout, found).into());
        }
        self.chain.push(&chunk_digest(&self.buf));
        let aad = self.header.hash();
        let failed = || Rejection::ChunkAuthentication { index: i };
        let result = if i + 1 == self.layout.chunks {
            let stream = self.stream.take().ok_or_else(failed)?;
            stream.decrypt_last_in_place(&aad, &mut *self.buf)
        } else {
            let stream = self.stream.as_mut().ok_or_else(failed)?;
            stream.decrypt_next_in_place(&aad, &mut *self.buf)
        };
        result.map_err(|_| failed())?;
        self.next += 1;
        self.consumed = 0;
        Ok(true)
    }

    fn body_before(&self, chunk: u64) -> u64 {
        chunk * (u64::from(self.layout.chunk_size) + TAG_LEN as u64)
    }

    /// Reads the trailer and checks it against what the body showed.
    fn read_trailer(&mut self) -> Result<Verified, BackupError> {
        let mut table_chain = Chain::new(&self.header.backup_id());
        let mut entry = [0u8; DIGEST_LEN];
        for _ in 0..self.layout.chunks {
            if read_full(&mut self.input, &mut entry)? < DIGEST_LEN {
                return Err(truncated(&self.layout, self.layout.table_offset()).into());
            }
            table_chain.push(&entry);
        }
        let mut fixed = [0u8; TRAILER_FIXED_LEN];
        let got = read_full(&mut self.input, &mut fixed)?;
        if got < TRAILER_FIXED_LEN {
            let found = self.layout.trailer_fixed_offset() + got as u64;
            return Err(truncated(&self.layout, found).into());
        }
        let mut extra = [0u8; 1];
        if read_full(&mut self.input, &mut extra)? > 0 {
            return Err(Rejection::TrailingData { extra: 1 }.into());
        }
        let trailer = Trailer::parse(&fixed)?;
        trailer.verify(&self.hsm_key)?;
        if trailer.backup_id != self.header.backup_id() || trailer.header_hash != self.header.hash()
        {
            // The body decrypted under this header, so the trailer is the foreign part.
            return Err(Rejection::TrailerFromOtherBackup.into());
        }
        if table_chain.value() != trailer.chain || trailer.chunks != self.layout.chunks {
            return Err(Rejection::TrailerAltered.into());
        }
        if self.chain.value() != trailer.chain {
            return Err(Rejection::ChainMismatch.into());
        }
        Ok(Verified::new(self.header.clone(), trailer))
    }

    /// Reads any chunks left and the trailer; the proof that the whole backup is authentic.
    pub fn finish(mut self) -> Result<Verified, BackupError> {
        while self.next_chunk()?.is_some() {}
        self.verified.take().ok_or(BackupError::Crypto {
            op: "verifying the trailer",
        })
    }
}

fn truncated(layout: &Layout, found: u64) -> Rejection {
    Rejection::Truncated {
        expected: layout.file_len(),
        found,
        part: if found >= layout.table_offset() {
            Part::Trailer
        } else {
            layout.part_at(found)
        },
    }
}

/// `Read` over the plaintext: end of input only after the trailer verified, so `read_to_end`
/// either returns a proven backup or an error.
impl<R: Read> Read for DecryptingReader<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let have = self.buf.len();
            if self.next > 0 && self.consumed < have {
                let n = (have - self.consumed).min(out.len());
                out[..n].copy_from_slice(&self.buf[self.consumed..self.consumed + n]);
                self.consumed += n;
                return Ok(n);
            }
            if self.next_chunk().map_err(std::io::Error::other)?.is_none() {
                return Ok(0);
            }
        }
    }
}
