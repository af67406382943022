//! Verifying an image against what a device trusts, check by check.
//!
//! [`verify_file`] reads the image once and runs every check it can, in this order, so that an
//! operator sees all results at once (`tessera-firmware verify` prints them):
//!
//! 1. structure: magic, format version, every length within its bound, the signature block
//!    whole, nothing after it;
//! 2. manifest: well-formed, every path relative and normal (no `..`, no absolute path);
//! 3. signatures: at least the threshold of distinct current release keys, each signature valid
//!    (strict Ed25519), none by an unknown or retired key, no key twice;
//! 4. hardware id: the device's;
//! 5. rollback index: not below the device's floor;
//! 6. payload: its size and digest as the manifest says;
//! 7. files: each file's SHA-512 as the manifest says.
//!
//! Every payload byte is hashed once, into its file's SHA-512; the payload digest is derived
//! from those ([`crate::manifest::payload_digest`]). [`verify_file`] hashes the files on two
//! threads at once (positional reads); [`verify_reader`] streams them in order.
//!
//! Only when all pass does [`Verification::into_result`] give a [`VerifiedImage`], which only
//! this module can make: an installer that takes one cannot install an unverified image.

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use super::payload::{self, FileEvent};
use super::{ReadError, read_head, read_signatures};
use crate::error::{FirmwareError, Refusal};
use crate::keys::{ReleaseKeySet, ReleaseSignature, check_signatures, manifest_digest};
use crate::manifest::{FileEntry, Manifest};

/// What a device trusts: its release keys, its hardware id and its rollback floor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trust {
    /// The current release key set.
    pub keys: ReleaseKeySet,
    /// This device's hardware id.
    pub hardware_id: String,
    /// The lowest rollback index accepted.
    pub rollback_floor: u64,
}

/// The checks, in the order they are reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Check {
    /// Magic, version, lengths, signature block, end of file.
    Structure,
    /// The manifest parses; paths are safe.
    Manifest,
    /// m-of-n release signatures.
    Signatures,
    /// The image is for this device.
    HardwareId,
    /// Not older than the floor.
    RollbackIndex,
    /// The payload's size and digest.
    Payload,
    /// Each file's SHA-512.
    Files,
}

impl Check {
    /// Every check, in order.
    pub const ALL: [Check; 7] = [
        Check::Structure,
        Check::Manifest,
        Check::Signatures,
        Check::HardwareId,
        Check::RollbackIndex,
        Check::Payload,
        Check::Files,
    ];

    /// A short label for reports.
    pub fn label(self) -> &'static str {
        match self {
            Check::Structure => "structure",
            Check::Manifest => "manifest",
            Check::Signatures => "signatures",
            Check::HardwareId => "hardware id",
            Check::RollbackIndex => "rollback index",
            Check::Payload => "payload digest",
            Check::Files => "file digests",
        }
    }
}

/// One check's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Passed, with what was found.
    Passed(String),
    /// Failed, with the reason.
    Failed(Refusal),
    /// Could not run, because of an earlier failure.
    NotRun(&'static str),
}

/// Every check's result, in [`Check::ALL`] order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// `(check, outcome)` for each check.
    pub results: Vec<(Check, Outcome)>,
}

impl Report {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.results
            .iter()
            .all(|(_, o)| matches!(o, Outcome::Passed(_)))
    }

    /// The first failure, in check order.
    pub fn first_refusal(&self) -> Option<&Refusal> {
        self.results.iter().find_map(|(_, o)| match o {
            Outcome::Failed(r) => Some(r),
            _ => None,
        })
    }

    /// The outcome of `check`.
    pub fn outcome(&self, check: Check) -> Option<&Outcome> {
        self.results
            .iter()
            .find(|(c, _)| *c == check)
            .map(|(_, o)| o)
    }
}

/// `ok       signatures: 2 of 2 …` per line; `FAILED` and `not run` likewise.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (check, outcome) in &self.results {
            match outcome {
                Outcome::Passed(detail) => writeln!(f, "ok       {}: {detail}", check.label())?,
                Outcome::Failed(r) => {
                    writeln!(f, "FAILED   {}: [{}] {r}", check.label(), r.name())?
                }
                Outcome::NotRun(why) => writeln!(f, "not run  {}: {why}", check.label())?,
            }
        }
        Ok(())
    }
}

/// An image that passed every check against a device's [`Trust`]. Only [`verify_file`] and
/// [`verify_reader`] make one.
#[derive(Clone, Debug)]
pub struct VerifiedImage {
    manifest: Manifest,
    manifest_bytes: Vec<u8>,
    manifest_digest: [u8; 64],
    signatures: Vec<ReleaseSignature>,
}

impl VerifiedImage {
    /// The verified manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The manifest's bytes, as signed.
    pub fn manifest_bytes(&self) -> &[u8] {
        &self.manifest_bytes
    }

    /// The manifest's SHA-512.
    pub fn manifest_digest(&self) -> &[u8; 64] {
        &self.manifest_digest
    }

    /// The signatures that were checked.
    pub fn signatures(&self) -> &[ReleaseSignature] {
        &self.signatures
    }
}

/// A report, and the verified image if every check passed.
#[derive(Debug)]
pub struct Verification {
    /// Every check's result.
    pub report: Report,
    verified: Option<VerifiedImage>,
}

impl Verification {
    /// The verified image, or the first refusal.
    pub fn into_result(self) -> Result<VerifiedImage, FirmwareError> {
        match self.verified {
            Some(v) => Ok(v),
            None => Err(FirmwareError::Refused(
                self.report
                    .first_refusal()
                    .cloned()
                    .expect("an unverified image has a failed check"),
            )),
        }
    }
}

/// Verifies the image file at `path` against `trust`, hashing its files on two threads.
pub fn verify_file(path: &Path, trust: &Trust) -> Result<Verification, FirmwareError> {
    let file = File::open(path).map_err(FirmwareError::io("opening", path))?;
    let image = &file;
    let hash = |r: &mut BufReader<&File>, len: u64, files: Option<&[FileEntry]>| {
        let start = r.stream_position()?;
        match files {
            // A file shorter than its payload is streamed, which reports where it ends.
            Some(files) if image.metadata()?.len() >= start.saturating_add(len) => {
                let streamed = payload::hash_at(image, start, files)?;
                r.seek(SeekFrom::Start(start + len))?;
                Ok(streamed)
            }
            _ => payload::stream(r, len, files, |_: FileEvent<'_>| Ok::<(), io::Error>(())),
        }
    };
    verify_with(BufReader::with_capacity(1 << 16, image), trust, hash)
        .map_err(FirmwareError::io("reading", path))
}

/// Verifies an image read from `r` against `trust`. Only an error of `r` itself is an `Err`;
/// every refusal is in the report.
pub fn verify_reader<R: Read>(r: R, trust: &Trust) -> io::Result<Verification> {
    verify_with(r, trust, |r: &mut R, len, files| {
        payload::stream(r, len, files, |_: FileEvent<'_>| Ok::<(), io::Error>(()))
    })
}

/// Verifies an image read from `r`, with `hash` reading and hashing its payload (`len` bytes,
/// cut along the file list if the manifest parsed and agrees on the size) and leaving `r` just
/// after it.
fn verify_with<R: Read>(
    mut r: R,
    trust: &Trust,
    hash: impl FnOnce(&mut R, u64, Option<&[FileEntry]>) -> io::Result<payload::Streamed>,
) -> io::Result<Verification> {
    let mut results = Vec::with_capacity(Check::ALL.len());
    let head = match read_head(&mut r) {
        Ok(head) => head,
        Err(ReadError::Io(e)) => return Err(e),
        Err(ReadError::Refused(refusal)) => {
            results.push((Check::Structure, Outcome::Failed(refusal)));
            for check in &Check::ALL[1..] {
                results.push((*check, Outcome::NotRun("the image's structure is broken")));
            }
            return Ok(Verification {
                report: Report { results },
                verified: None,
            });
        }
    };
    let manifest = Manifest::parse(&head.manifest);
    let digest = manifest_digest(&head.manifest);
    let files = match &manifest {
        Ok(m) if m.payload_size == head.payload_len => Some(m.files.as_slice()),
        _ => None,
    };
    let streamed = hash(&mut r, head.payload_len, files)?;
    let signatures = if streamed.truncated {
        Err(Refusal::Truncated { what: "payload" })
    } else {
        match read_signatures(&mut r) {
            Ok(s) => Ok(s),
            Err(ReadError::Io(e)) => return Err(e),
            Err(ReadError::Refused(refusal)) => Err(refusal),
        }
    };

    results.extend(format_outcomes(&head, &manifest, &signatures));
    results.push((
        Check::Signatures,
        signature_outcome(trust, &digest, &signatures),
    ));
    let manifest = manifest.ok();
    results.extend(manifest_outcomes(
        trust,
        manifest.as_ref(),
        head.payload_len,
        &streamed,
    ));

    let report = Report { results };
    let verified = match (report.passed(), manifest, signatures) {
        (true, Some(manifest), Ok(signatures)) => Some(VerifiedImage {
            manifest,
            manifest_bytes: head.manifest,
            manifest_digest: digest,
            signatures,
        }),
        _ => None,
    };
    Ok(Verification { report, verified })
}

fn format_outcomes(
    head: &super::Head,
    manifest: &Result<Manifest, Refusal>,
    signatures: &Result<Vec<ReleaseSignature>, Refusal>,
) -> [(Check, Outcome); 2] {
    let structure = match signatures {
        Ok(s) => Outcome::Passed(format!(
            "format {}, manifest {} bytes, payload {} bytes, {} signature(s)",
            super::IMAGE_VERSION,
            head.manifest.len(),
            head.payload_len,
            s.len()
        )),
        Err(refusal) => Outcome::Failed(refusal.clone()),
    };
    let manifest = match manifest {
        Ok(m) => Outcome::Passed(format!(
            "{} {} for {}, {} file(s)",
            m.product,
            m.version,
            m.hardware_id,
            m.files.len()
        )),
        Err(refusal) => Outcome::Failed(refusal.clone()),
    };
    [(Check::Structure, structure), (Check::Manifest, manifest)]
}

fn signature_outcome(
    trust: &Trust,
    digest: &[u8; 64],
    signatures: &Result<Vec<ReleaseSignature>, Refusal>,
) -> Outcome {
    let Ok(signatures) = signatures else {
        return Outcome::NotRun("the signature block is missing or malformed");
    };
    match check_signatures(&trust.keys, digest, signatures) {
        Ok(valid) => Outcome::Passed(format!(
            "{valid} distinct release key(s) signed, {} needed (of {})",
            trust.keys.threshold(),
            trust.keys.keys().len()
        )),
        Err(refusal) => Outcome::Failed(refusal),
    }
}

fn manifest_outcomes(
    trust: &Trust,
    manifest: Option<&Manifest>,
    payload_len: u64,
    streamed: &payload::Streamed,
) -> Vec<(Check, Outcome)> {
    let Some(m) = manifest else {
        return [
            Check::HardwareId,
            Check::RollbackIndex,
            Check::Payload,
            Check::Files,
        ]
        .map(|c| (c, Outcome::NotRun("the manifest did not parse")))
        .to_vec();
    };
    let hardware = if m.hardware_id == trust.hardware_id {
        Outcome::Passed(m.hardware_id.clone())
    } else {
        Outcome::Failed(Refusal::WrongHardwareId {
            image: m.hardware_id.clone(),
            device: trust.hardware_id.clone(),
        })
    };
    let rollback = if m.rollback_index >= trust.rollback_floor {
        Outcome::Passed(format!(
            "{} (floor {})",
            m.rollback_index, trust.rollback_floor
        ))
    } else {
        Outcome::Failed(Refusal::RollbackIndexLower {
            index: m.rollback_index,
            floor: trust.rollback_floor,
        })
    };
    let payload = if m.payload_size != payload_len {
        Outcome::Failed(Refusal::PayloadSize {
            manifest: m.payload_size,
            actual: payload_len,
        })
    } else {
        match streamed.payload_sha512 {
            None => Outcome::NotRun("the payload is truncated"),
            Some(d) if d == m.payload_sha512 => Outcome::Passed(format!(
                "{payload_len} bytes, digest of the files' SHA-512s as signed"
            )),
            Some(_) => Outcome::Failed(Refusal::PayloadDigest),
        }
    };
    let files = if m.payload_size != payload_len {
        Outcome::NotRun("the payload's size is wrong")
    } else if let Some(path) = &streamed.first_mismatch {
        Outcome::Failed(Refusal::FileDigest { path: path.clone() })
    } else if streamed.truncated {
        Outcome::NotRun("the payload is truncated")
    } else {
        Outcome::Passed(format!("{} file(s), each SHA-512 as signed", m.files.len()))
    };
    vec![
        (Check::HardwareId, hardware),
        (Check::RollbackIndex, rollback),
        (Check::Payload, payload),
        (Check::Files, files),
    ]
}
