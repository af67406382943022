//! The trailer: the chunk digest table, the chain over it and the HSM's signature (layout in the
//! [module docs](super)).

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use super::{
    BACKUP_ID_LEN, CHAIN_DOMAIN, DIGEST_LEN, SIGNATURE_DOMAIN, TRAILER_FIXED_LEN, TRAILER_MAGIC,
};
use crate::error::Rejection;

/// The trailer's fixed part, parsed. Its signature is checked by [`Trailer::verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trailer {
    /// The backup id the HSM signed.
    pub backup_id: [u8; BACKUP_ID_LEN],
    /// The header hash the HSM signed.
    pub header_hash: [u8; DIGEST_LEN],
    /// The number of chunks.
    pub chunks: u64,
    /// The chain over the chunk digests.
    pub chain: [u8; DIGEST_LEN],
    /// Ed25519 over [`SIGNATURE_DOMAIN`] ‖ backup id ‖ header hash ‖ chunk count ‖ chain.
    pub signature: [u8; 64],
}

impl Trailer {
    /// Parses the fixed part (exactly [`TRAILER_FIXED_LEN`] bytes).
    pub fn parse(bytes: &[u8]) -> Result<Trailer, Rejection> {
        if bytes.len() != TRAILER_FIXED_LEN {
            return Err(Rejection::BadTrailerMagic);
        }
        if bytes[..8] != TRAILER_MAGIC {
            return Err(Rejection::BadTrailerMagic);
        }
        let mut t = Trailer {
            backup_id: [0; BACKUP_ID_LEN],
            header_hash: [0; DIGEST_LEN],
            chunks: 0,
            chain: [0; DIGEST_LEN],
            signature: [0; 64],
        };
        t.backup_id.copy_from_slice(&bytes[8..24]);
        t.header_hash.copy_from_slice(&bytes[24..56]);
        let mut count = [0u8; 8];
        count.copy_from_slice(&bytes[56..64]);
        t.chunks = u64::from_le_bytes(count);
        t.chain.copy_from_slice(&bytes[64..96]);
        t.signature.copy_from_slice(&bytes[96..160]);
        Ok(t)
    }

    /// The fixed part's encoding.
    pub fn encode(&self) -> [u8; TRAILER_FIXED_LEN] {
        let mut out = [0u8; TRAILER_FIXED_LEN];
        out[..8].copy_from_slice(&TRAILER_MAGIC);
        out[8..24].copy_from_slice(&self.backup_id);
        out[24..56].copy_from_slice(&self.header_hash);
        out[56..64].copy_from_slice(&self.chunks.to_le_bytes());
        out[64..96].copy_from_slice(&self.chain);
        out[96..].copy_from_slice(&self.signature);
        out
    }

    /// Checks the signature with the HSM's key (`verify_strict`).
    pub fn verify(&self, hsm_key: &VerifyingKey) -> Result<(), Rejection> {
        let message = signed_message(&self.backup_id, &self.header_hash, self.chunks, &self.chain);
        hsm_key
            .verify_strict(&message, &Signature::from_bytes(&self.signature))
            .map_err(|_| Rejection::TrailerSignature)
    }
}

fn signed_message(
    backup_id: &[u8; BACKUP_ID_LEN],
    header_hash: &[u8; DIGEST_LEN],
    chunks: u64,
    chain: &[u8; DIGEST_LEN],
) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNATURE_DOMAIN.len() + 16 + 32 + 8 + 32);
    m.extend_from_slice(SIGNATURE_DOMAIN);
    m.extend_from_slice(backup_id);
    m.extend_from_slice(header_hash);
    m.extend_from_slice(&chunks.to_le_bytes());
    m.extend_from_slice(chain);
    m
}

/// The chain's rolling value: `c_0` from the backup id, then one link per chunk digest.
#[derive(Clone, Debug)]
pub(crate) struct Chain {
    value: [u8; DIGEST_LEN],
    links: u64,
}

impl Chain {
    pub(crate) fn new(backup_id: &[u8; BACKUP_ID_LEN]) -> Chain {
        let mut h = Sha256::new();
        h.update(CHAIN_DOMAIN);
        h.update(backup_id);
        Chain {
            value: h.finalize().into(),
            links: 0,
        }
    }

    pub(crate) fn push(&mut self, digest: &[u8; DIGEST_LEN]) {
        let mut h = Sha256::new();
        h.update(self.value);
        h.update(digest);
        self.value = h.finalize().into();
        self.links += 1;
    }

    pub(crate) fn value(&self) -> [u8; DIGEST_LEN] {
        self.value
    }

    pub(crate) fn links(&self) -> u64 {
        self.links
    }
}

/// A stored chunk's digest: SHA-256, through `ring`, whose SHA-extension code is about 2.4
/// times as fast as `sha2`'s here (the digest, not the cipher, bounds sealing speed).
pub(crate) fn chunk_digest(stored: &[u8]) -> [u8; DIGEST_LEN] {
    let mut out = [0u8; DIGEST_LEN];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, stored).as_ref());
    out
}

/// The writer's side of the trailer: every sealed chunk's digest, in order, then the signed
/// trailer. Holds 32 bytes per chunk (the table is written last).
#[derive(Debug)]
pub struct ChunkChain {
    backup_id: [u8; BACKUP_ID_LEN],
    chain: Chain,
    table: Vec<[u8; DIGEST_LEN]>,
}

impl ChunkChain {
    /// A chain for the backup with this id.
    pub fn new(backup_id: [u8; BACKUP_ID_LEN]) -> ChunkChain {
        ChunkChain {
            backup_id,
            chain: Chain::new(&backup_id),
            table: Vec::new(),
        }
    }

    /// Records the next chunk as stored (ciphertext and tag).
    pub fn push_chunk(&mut self, stored: &[u8]) {
        let digest = chunk_digest(stored);
        self.chain.push(&digest);
        self.table.push(digest);
    }

    /// The signed trailer (digest table, then fixed part) for the header with `header_hash`.
    pub fn finish(self, header_hash: [u8; DIGEST_LEN], signer: &SigningKey) -> (Trailer, Vec<u8>) {
        let chain = self.chain.value();
        let chunks = self.chain.links();
        let message = signed_message(&self.backup_id, &header_hash, chunks, &chain);
        let trailer = Trailer {
            backup_id: self.backup_id,
            header_hash,
            chunks,
            chain,
            signature: signer.sign(&message).to_bytes(),
        };
        let mut out = Vec::with_capacity(self.table.len() * DIGEST_LEN + TRAILER_FIXED_LEN);
        for d in &self.table {
            out.extend_from_slice(d);
        }
        out.extend_from_slice(&trailer.encode());
        (trailer, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_digests_are_plain_sha256() {
        for len in [0, 1, 63, 64, 65, 100_000] {
            let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let expected: [u8; DIGEST_LEN] = Sha256::digest(&data).into();
            assert_eq!(chunk_digest(&data), expected, "{len} bytes");
        }
    }
}
