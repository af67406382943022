//! The image container: a header, the manifest, the payload, and the release signatures.
//!
//! Format, version 1 (integers big-endian):
//!
//! ```text
//! length  content
//!      4  magic "TSFW"
//!      1  format version, 1
//!      4  manifest length M (1..=MAX_MANIFEST_LEN)
//!      M  the manifest (see crate::manifest)
//!      8  payload length P (at most MAX_PAYLOAD_LEN; must equal the manifest's payload size)
//!      P  the payload: the files' bytes in the manifest's order
//!      1  signature count S (at most MAX_SIGNATURES)
//!   S×96  each: release key (32), Ed25519 signature over keys::signed_message (64)
//! ```
//!
//! Nothing follows the last signature. The signatures are detached from the manifest (they sign
//! its SHA-512, not the container), so adding one never changes what the others signed.
//! [`verify`](verify::verify_file) checks everything; [`build`](build::build_image) writes an
//! unsigned image; [`write_signed`] adds signatures.

pub mod build;
pub(crate) mod payload;
pub mod verify;

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use crate::error::{FirmwareError, Refusal};
use crate::fsutil::write_atomically;
use crate::keys::{MAX_SIGNATURES, ReleaseSignature, SIGNATURE_ENTRY_LEN};
use crate::manifest::{MAX_MANIFEST_LEN, MAX_PAYLOAD_LEN};

/// The image's first four bytes.
pub const IMAGE_MAGIC: [u8; 4] = *b"TSFW";

/// The image format version this build writes and reads.
pub const IMAGE_VERSION: u8 = 1;

/// Bytes copied or hashed at a time.
pub(crate) const CHUNK_LEN: usize = 4 << 20;

/// The parts of an image before its payload.
pub(crate) struct Head {
    pub(crate) manifest: Vec<u8>,
    pub(crate) payload_len: u64,
}

/// Reads exactly `buf.len()` bytes; `Ok(false)` if the input ends first.
pub(crate) fn fill<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<bool> {
    let mut at = 0;
    while at < buf.len() {
        match r.read(&mut buf[at..]) {
            Ok(0) => return Ok(false),
            Ok(n) => at += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Either a refusal of the bytes or an I/O error of the source.
pub(crate) enum ReadError {
    Refused(Refusal),
    Io(io::Error),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

impl From<Refusal> for ReadError {
    fn from(r: Refusal) -> Self {
        ReadError::Refused(r)
    }
}

fn exact<R: Read, const N: usize>(r: &mut R, what: &'static str) -> Result<[u8; N], ReadError> {
    let mut buf = [0u8; N];
    if !fill(r, &mut buf)? {
        return Err(Refusal::Truncated { what }.into());
    }
    Ok(buf)
}

/// Reads the header, the manifest's bytes (bounded before allocation) and the payload length.
pub(crate) fn read_head<R: Read>(r: &mut R) -> Result<Head, ReadError> {
    let magic: [u8; 4] = exact(r, "header")?;
    if magic != IMAGE_MAGIC {
        return Err(Refusal::Format {
            what: "header",
            reason: "this is not a Tessera firmware image (magic TSFW)".to_owned(),
        }
        .into());
    }
    let [version] = exact::<_, 1>(r, "header")?;
    if version != IMAGE_VERSION {
        return Err(Refusal::Format {
            what: "header",
            reason: format!(
                "image format version {version} is not one this build reads ({IMAGE_VERSION}); \
                 use a newer tool"
            ),
        }
        .into());
    }
    let manifest_len = u32::from_be_bytes(exact(r, "header")?);
    if manifest_len == 0 || manifest_len as usize > MAX_MANIFEST_LEN {
        return Err(Refusal::Oversize {
            what: "manifest length",
            len: u64::from(manifest_len),
            max: MAX_MANIFEST_LEN as u64,
        }
        .into());
    }
    let mut manifest = vec![0u8; manifest_len as usize];
    if !fill(r, &mut manifest)? {
        return Err(Refusal::Truncated { what: "manifest" }.into());
    }
    let payload_len = u64::from_be_bytes(exact(r, "payload length")?);
    if payload_len > MAX_PAYLOAD_LEN {
        return Err(Refusal::Oversize {
            what: "payload length",
            len: payload_len,
            max: MAX_PAYLOAD_LEN,
        }
        .into());
    }
    Ok(Head {
        manifest,
        payload_len,
    })
}

/// Reads the signature block (bounded) and checks that nothing follows it.
pub(crate) fn read_signatures<R: Read>(r: &mut R) -> Result<Vec<ReleaseSignature>, ReadError> {
    let [count] = exact::<_, 1>(r, "signature count")?;
    let count = usize::from(count);
    if count > MAX_SIGNATURES {
        return Err(Refusal::Oversize {
            what: "signature count",
            len: count as u64,
            max: MAX_SIGNATURES as u64,
        }
        .into());
    }
    let mut signatures = Vec::with_capacity(count);
    for _ in 0..count {
        let entry: [u8; SIGNATURE_ENTRY_LEN] = exact(r, "signatures")?;
        let (key, signature) = entry.split_at(32);
        signatures.push(ReleaseSignature {
            key: key.try_into().expect("32 bytes"),
            signature: signature.try_into().expect("64 bytes"),
        });
    }
    let mut one = [0u8; 1];
    if fill(r, &mut one)? {
        return Err(Refusal::TrailingBytes.into());
    }
    Ok(signatures)
}

pub(crate) fn write_head<W: Write>(w: &mut W, manifest: &[u8], payload_len: u64) -> io::Result<()> {
    w.write_all(&IMAGE_MAGIC)?;
    w.write_all(&[IMAGE_VERSION])?;
    // The manifest's own bound (1 MiB) keeps this within u32.
    w.write_all(&(manifest.len() as u32).to_be_bytes())?;
    w.write_all(manifest)?;
    w.write_all(&payload_len.to_be_bytes())
}

pub(crate) fn write_signature_block<W: Write>(
    w: &mut W,
    signatures: &[ReleaseSignature],
) -> io::Result<()> {
    // At most MAX_SIGNATURES (16), checked by the callers.
    w.write_all(&[signatures.len() as u8])?;
    for s in signatures {
        w.write_all(&s.key)?;
        w.write_all(&s.signature)?;
    }
    Ok(())
}

/// An image's manifest bytes and signatures, read without checking anything else: what
/// `inspect` shows and what signing starts from. The payload is skipped, not read into memory.
pub struct Unverified {
    /// The manifest's bytes.
    pub manifest: Vec<u8>,
    /// The payload's length.
    pub payload_len: u64,
    /// The signatures as they stand.
    pub signatures: Vec<ReleaseSignature>,
}

/// Reads an image's manifest and signatures without verifying them (see [`Unverified`]).
pub fn read_unverified(path: &Path) -> Result<Unverified, FirmwareError> {
    let file = File::open(path).map_err(FirmwareError::io("opening", path))?;
    let mut r = io::BufReader::new(file);
    let map = |e: ReadError| match e {
        ReadError::Refused(r) => FirmwareError::Refused(r),
        ReadError::Io(e) => FirmwareError::io("reading", path)(e),
    };
    let head = read_head(&mut r).map_err(map)?;
    let skipped = io::copy(&mut (&mut r).take(head.payload_len), &mut io::sink())
        .map_err(FirmwareError::io("reading", path))?;
    if skipped != head.payload_len {
        return Err(Refusal::Truncated { what: "payload" }.into());
    }
    let signatures = read_signatures(&mut r).map_err(map)?;
    Ok(Unverified {
        manifest: head.manifest,
        payload_len: head.payload_len,
        signatures,
    })
}

/// Writes the image at `source` to `out` (atomically: a `.partial` file, fsync, rename) with
/// `signatures` in place of its own. The manifest and payload are copied unchanged.
pub fn write_signed(
    source: &Path,
    signatures: &[ReleaseSignature],
    out: &Path,
) -> Result<(), FirmwareError> {
    if signatures.len() > MAX_SIGNATURES {
        return Err(Refusal::Oversize {
            what: "signature count",
            len: signatures.len() as u64,
            max: MAX_SIGNATURES as u64,
        }
        .into());
    }
    let file = File::open(source).map_err(FirmwareError::io("opening", source))?;
    let mut r = io::BufReader::new(file);
    let head = read_head(&mut r).map_err(|e| match e {
        ReadError::Refused(r) => FirmwareError::Refused(r),
        ReadError::Io(e) => FirmwareError::io("reading", source)(e),
    })?;
    write_atomically(out, |w| {
        let mut w = BufWriter::new(w);
        write_head(&mut w, &head.manifest, head.payload_len)?;
        let copied = io::copy(&mut (&mut r).take(head.payload_len), &mut w)?;
        if copied != head.payload_len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the source image's payload is truncated",
            ));
        }
        write_signature_block(&mut w, signatures)?;
        w.flush()
    })
}
