//! Release keys: the m-of-n key set a device trusts, the message a release key signs, detached
//! signature files, and the threshold check.
//!
//! A release key is the Ed25519 signing key of an officer card (an OpenPGP card over PC/SC, or
//! a passphrase-sealed soft card where the card policy allows it; `quorum`'s
//! [`quorum::card::VerifiedCard`]). Cards sign at most 255 bytes, so a key signs not the
//! manifest itself but [`signed_message`]: a fixed context string and the manifest's SHA-512.
//! The signature is pure Ed25519 over that message and is checked with `verify_strict`.
//!
//! Key set file (TOML, what the device is provisioned with and `tessera-firmware verify
//! --keys` reads):
//!
//! ```toml
//! version = 1
//! threshold = 2
//! keys = ["<64 hex digits>", "<64 hex digits>", "<64 hex digits>"]
//! ```
//!
//! Detached signature file, version 1 (what `tessera-firmware sign` writes and `merge` reads):
//!
//! ```text
//! offset  length  content
//!      0       4  magic "TSFG"
//!      4       1  version, 1
//!      5      64  SHA-512 of the manifest signed
//!     69      32  the release key (Ed25519 public key)
//!    101      64  the signature over signed_message(manifest)
//! ```

use std::collections::HashSet;
use std::path::Path;

use ed25519_dalek::{Signature, VerifyingKey};
use quorum::card::VerifiedCard;
use sha2::{Digest, Sha512};

use crate::error::{FirmwareError, Refusal};
use crate::wire::{Reader, hex, parse_hex};

/// The most release keys in a set.
pub const MAX_RELEASE_KEYS: usize = 16;

/// The most signatures an image carries.
pub const MAX_SIGNATURES: usize = 16;

/// The context a release key signs before the manifest's digest.
pub const SIGNING_CONTEXT: &[u8] = b"Tessera firmware manifest v1\0";

/// A detached signature file's first four bytes.
pub const SIGNATURE_FILE_MAGIC: [u8; 4] = *b"TSFG";

/// The detached signature file version this build writes and reads.
pub const SIGNATURE_FILE_VERSION: u8 = 1;

/// A detached signature file's length.
pub const SIGNATURE_FILE_LEN: usize = 4 + 1 + 64 + 32 + 64;

/// The largest key set file read.
pub const MAX_KEY_SET_FILE_LEN: u64 = 16 * 1024;

/// An image's signature entry: a release key and its signature.
pub const SIGNATURE_ENTRY_LEN: usize = 32 + 64;

/// The release keys a device trusts and how many of them must sign: 1 ≤ threshold ≤ keys ≤ 16,
/// every key distinct and a valid, non-weak Ed25519 point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseKeySet {
    threshold: u8,
    keys: Vec<[u8; 32]>,
}

impl ReleaseKeySet {
    /// A key set of `keys` with `threshold`, checked.
    pub fn new(threshold: usize, keys: Vec<[u8; 32]>) -> Result<Self, String> {
        if keys.is_empty() || keys.len() > MAX_RELEASE_KEYS {
            return Err(format!(
                "it holds {} keys; a key set holds 1 to {MAX_RELEASE_KEYS}",
                keys.len()
            ));
        }
        if threshold == 0 || threshold > keys.len() {
            return Err(format!(
                "a threshold of {threshold} with {} keys is impossible; it must be 1 to the \
                 number of keys",
                keys.len()
            ));
        }
        let mut seen = HashSet::new();
        for key in &keys {
            if !seen.insert(*key) {
                return Err(format!(
                    "key {} is listed twice; each release key counts once",
                    short(key)
                ));
            }
            match VerifyingKey::from_bytes(key) {
                Ok(k) if !k.is_weak() => {}
                _ => {
                    return Err(format!(
                        "key {} is not a valid Ed25519 public key",
                        short(key)
                    ));
                }
            }
        }
        // Both at most 16, checked above.
        Ok(ReleaseKeySet {
            threshold: threshold as u8,
            keys,
        })
    }

    /// How many distinct keys must sign.
    pub fn threshold(&self) -> usize {
        usize::from(self.threshold)
    }

    /// The keys.
    pub fn keys(&self) -> &[[u8; 32]] {
        &self.keys
    }

    /// `threshold, count, keys` (the form inside a manifest and the device's state).
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(self.threshold);
        // At most MAX_RELEASE_KEYS (16).
        out.push(self.keys.len() as u8);
        for key in &self.keys {
            out.extend_from_slice(key);
        }
    }

    pub(crate) fn parse_from(reader: &mut Reader<'_>) -> Result<Self, String> {
        let threshold = reader.u8("key set's threshold")?;
        let count = usize::from(reader.u8("key set's count")?);
        if count > MAX_RELEASE_KEYS {
            return Err(format!(
                "the key set lists {count} keys, above the bound of {MAX_RELEASE_KEYS}"
            ));
        }
        let keys = (0..count)
            .map(|_| reader.array::<32>("key set's keys"))
            .collect::<Result<Vec<_>, _>>()?;
        ReleaseKeySet::new(usize::from(threshold), keys).map_err(|e| format!("its key set: {e}"))
    }

    /// Reads a key set file (TOML, see the [module documentation](self)).
    pub fn read_file(path: &Path) -> Result<Self, FirmwareError> {
        let bad = |reason: String| FirmwareError::KeySet {
            reason: format!("{}: {reason}", path.display()),
        };
        let text = read_bounded_text(path, MAX_KEY_SET_FILE_LEN)?;
        let file: KeySetFile = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if file.version != 1 {
            return Err(bad(format!(
                "version {} is not one this build reads (1)",
                file.version
            )));
        }
        let keys = file
            .keys
            .iter()
            .map(|k| parse_hex::<32>(k).ok_or_else(|| bad(format!("{k:?} is not 64 hex digits"))))
            .collect::<Result<Vec<_>, _>>()?;
        ReleaseKeySet::new(file.threshold, keys).map_err(bad)
    }

    /// The key set file's text.
    pub fn to_file_text(&self) -> String {
        let keys: Vec<String> = self
            .keys
            .iter()
            .map(|k| format!("\"{}\"", hex(k)))
            .collect();
        format!(
            "version = 1\nthreshold = {}\nkeys = [\n    {},\n]\n",
            self.threshold,
            keys.join(",\n    ")
        )
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KeySetFile {
    version: u32,
    threshold: usize,
    keys: Vec<String>,
}

/// Reads at most `max` bytes of UTF-8 text; a longer file is refused before it is read whole.
pub(crate) fn read_bounded_text(path: &Path, max: u64) -> Result<String, FirmwareError> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(FirmwareError::io("opening", path))?;
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(FirmwareError::io("reading", path))?;
    if bytes.len() as u64 > max {
        return Err(FirmwareError::Build {
            path: path.to_owned(),
            reason: format!("larger than the {max} bytes such a file may have"),
        });
    }
    String::from_utf8(bytes).map_err(|_| FirmwareError::Build {
        path: path.to_owned(),
        reason: "not UTF-8 text".to_owned(),
    })
}

/// The first eight bytes of a key, hex: how keys are named in messages.
pub fn short(key: &[u8; 32]) -> String {
    hex(&key[..8])
}

/// The manifest's SHA-512.
pub fn manifest_digest(manifest: &[u8]) -> [u8; 64] {
    Sha512::digest(manifest).into()
}

/// What a release key signs for a manifest with SHA-512 `digest`: [`SIGNING_CONTEXT`] and the
/// digest (93 bytes, within what any card signs).
pub fn signed_message(digest: &[u8; 64]) -> Vec<u8> {
    let mut message = Vec::with_capacity(SIGNING_CONTEXT.len() + 64);
    message.extend_from_slice(SIGNING_CONTEXT);
    message.extend_from_slice(digest);
    message
}

/// One release key's signature over a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseSignature {
    /// The release key.
    pub key: [u8; 32],
    /// The Ed25519 signature over [`signed_message`].
    pub signature: [u8; 64],
}

impl ReleaseSignature {
    /// Whether the signature verifies (strict Ed25519) over the manifest with `digest`.
    pub fn verifies(&self, digest: &[u8; 64]) -> bool {
        let Ok(key) = VerifyingKey::from_bytes(&self.key) else {
            return false;
        };
        key.verify_strict(
            &signed_message(digest),
            &Signature::from_bytes(&self.signature),
        )
        .is_ok()
    }
}

/// Signs the manifest with SHA-512 `digest` with a verified release card, and checks the
/// card's signature before returning it (a card that signs wrongly is caught here, not at the
/// device).
pub fn sign_with_card<C: VerifiedCard + ?Sized>(
    card: &mut C,
    digest: &[u8; 64],
) -> Result<ReleaseSignature, FirmwareError> {
    let key = card.info().signing_public;
    let signature = card.sign(&signed_message(digest))?;
    let signature = ReleaseSignature { key, signature };
    if !signature.verifies(digest) {
        return Err(FirmwareError::Refused(Refusal::BadSignature {
            key: short(&key),
        }));
    }
    Ok(signature)
}

/// Checks an image's signatures against the device's key set: every signature by a current
/// key, no key twice, every signature valid, and at least the threshold of them. The number of
/// valid distinct signatures on success.
pub fn check_signatures(
    keys: &ReleaseKeySet,
    digest: &[u8; 64],
    signatures: &[ReleaseSignature],
) -> Result<usize, Refusal> {
    let mut seen = HashSet::new();
    for s in signatures {
        if !keys.keys.contains(&s.key) {
            return Err(Refusal::UnknownKey { key: short(&s.key) });
        }
        if !seen.insert(s.key) {
            return Err(Refusal::SameKeyTwice { key: short(&s.key) });
        }
        if !s.verifies(digest) {
            return Err(Refusal::BadSignature { key: short(&s.key) });
        }
    }
    if seen.len() < keys.threshold() {
        return Err(Refusal::TooFewSignatures {
            valid: seen.len(),
            threshold: keys.threshold(),
        });
    }
    Ok(seen.len())
}

/// A detached signature: a release key's signature over the manifest with `manifest_digest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetachedSignature {
    /// The SHA-512 of the manifest signed.
    pub manifest_digest: [u8; 64],
    /// The signature.
    pub signature: ReleaseSignature,
}

impl DetachedSignature {
    /// The file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SIGNATURE_FILE_LEN);
        out.extend_from_slice(&SIGNATURE_FILE_MAGIC);
        out.push(SIGNATURE_FILE_VERSION);
        out.extend_from_slice(&self.manifest_digest);
        out.extend_from_slice(&self.signature.key);
        out.extend_from_slice(&self.signature.signature);
        out
    }

    /// Parses a signature file's bytes (exactly [`SIGNATURE_FILE_LEN`]).
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() != SIGNATURE_FILE_LEN {
            return Err(format!(
                "it is {} bytes; a signature file is {SIGNATURE_FILE_LEN}",
                bytes.len()
            ));
        }
        let mut r = Reader::new(bytes);
        if r.array::<4>("magic")? != SIGNATURE_FILE_MAGIC {
            return Err("it is not a Tessera firmware signature (magic TSFG)".to_owned());
        }
        let version = r.u8("version")?;
        if version != SIGNATURE_FILE_VERSION {
            return Err(format!("version {version} is not one this build reads (1)"));
        }
        Ok(DetachedSignature {
            manifest_digest: r.array("manifest digest")?,
            signature: ReleaseSignature {
                key: r.array("key")?,
                signature: r.array("signature")?,
            },
        })
    }
}
