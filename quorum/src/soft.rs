//! Soft cards: an officer card's keys in a file sealed with a passphrase, for the embedded demo
//! and for laptops without a card reader.
//!
//! A soft card is weaker than a smartcard and is labelled as one everywhere
//! ([`CardInfo::soft`], "soft card" in its `Display`). A copied file meets no retry counter, so
//! it is sealed with a passphrase of at least [`MIN_PASSPHRASE_CHARS`] characters, stretched with
//! Argon2id (RFC 9106) at 64 MiB, 3 passes, 1 lane by default ([`Argon2Params::production`]),
//! and the file is encrypted with AES-256-GCM.
//!
//! File format, version 1 (integers big-endian):
//!
//! ```text
//! offset  length  content
//!      0       4  magic "TSSC"
//!      4       1  version, 1
//!      5       1  flags: bit 0 = test card (weak Argon2 parameters); other bits 0
//!      6       4  Argon2id memory cost, KiB
//!     10       4  Argon2id passes
//!     14       4  Argon2id lanes
//!     18      16  Argon2id salt
//!     34      12  AES-256-GCM nonce
//!     46       1  holder length H (0 = no holder name)
//!     47       H  holder, UTF-8
//!              1  serial length S (1..=64)
//!              S  serial, printable ASCII
//!             32  Ed25519 signing public key
//!             32  X25519 decryption public key
//!              …  AES-256-GCM ciphertext and 16-byte tag, to the end of the file
//! ```
//!
//! The key is Argon2id(passphrase, salt) with the file's parameters; the associated data is
//! every byte before the ciphertext, so any change to the header fails like a wrong passphrase.
//! The plaintext is the Ed25519 seed (32), the X25519 secret (32), the share object's length
//! (u16, 0 = none) and the share object (a share container or a bare envelope, see
//! [`crate::card::ShareObject`]; at most
//! [`crate::card::MAX_SHARE_OBJECT_LEN`] bytes).
//!
//! The holder, serial and public keys are in the clear (but authenticated): like a smartcard, a
//! soft card tells who it belongs to before its PIN. Files are at most [`MAX_SOFT_CARD_LEN`]
//! bytes, created with mode 0600, and written atomically (`.partial`, fsync, rename, fsync of
//! the directory).
//!
//! The passphrase is changed with [`SoftCard::change_passphrase`] (the old one required; the
//! file sealed again under the new one with the same Argon2 parameters, atomically). A soft
//! card has no resetting code and no admin PIN ([`SOFT_CARD_UNBLOCK`]): it never blocks, and a
//! forgotten passphrase is not recoverable; the card is replaced (revoked, and a re-share
//! writes a share to a new card).
//!
//! Soft cards enter the terminal only through [`SoftCard::open`] and [`SoftCard::create`], and
//! both take the terminal's [`CardPolicy`]: outside the embedded demo a soft card is refused
//! ([`QuorumError::SoftCardRefused`]) unless the terminal configuration allows soft cards
//! ([`crate::card_policy::ALLOW_SOFT_CARDS_KEY`]).
//!
//! The header's Argon2 parameters are authoritative, within bounds: [`SoftCard::open`] refuses
//! parameters below the production floor, and any file flagged as a test card;
//! [`SoftCard::open_test_card`] (tests only) accepts both. Parameters above
//! [`MAX_M_COST_KIB`] (256 MiB), [`MAX_T_COST`] (8 passes) or [`MAX_P_COST`] (4 lanes) are
//! always refused, before Argon2 runs and with an error naming the parameter: what a small
//! terminal can run in a few seconds, so a hostile or careless file can make a terminal neither
//! allocate without bound nor spend minutes on a try that then fails like a wrong passphrase.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit};
use argon2::{Algorithm, Argon2, Version};
use ed25519_dalek::{Signer, SigningKey};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::card::{
    Card, CardInfo, MAX_PIN_LEN, MAX_SHARE_OBJECT_LEN, Pin, VerifiedCard, check_holder,
    check_serial,
};
use crate::card_policy::CardPolicy;
use crate::envelope::x25519;
use crate::error::{CardError, QuorumError};

mod file;
mod format;
mod params;

use file::*;
pub(crate) use format::fuzz_header;
use format::*;
pub use params::Argon2Params;

/// Why a soft card cannot be unblocked, as shown to whoever asks to.
pub const SOFT_CARD_UNBLOCK: &str = "a soft card has no resetting code and no admin PIN: it \
     never blocks (it has no retry counter), and a forgotten passphrase cannot be recovered; \
     revoke the card and re-share the quorum to a new one";

/// The file's first four bytes.
pub const SOFT_CARD_MAGIC: [u8; 4] = *b"TSSC";

/// The file version this build writes and reads.
pub const SOFT_CARD_VERSION_V1: u8 = 1;

/// Flag bit: a test card, whose Argon2 parameters may be below the production floor.
pub const FLAG_TEST_CARD: u8 = 0x01;

/// Length of the Argon2id salt.
pub const SALT_LEN: usize = 16;

/// Length of the AES-256-GCM nonce.
pub const NONCE_LEN: usize = 12;

/// The fewest characters a soft card passphrase may have.
pub const MIN_PASSPHRASE_CHARS: usize = 12;

/// The largest soft card file read.
pub const MAX_SOFT_CARD_LEN: usize = 4096;

/// Production floor and default: Argon2id memory, KiB (64 MiB).
pub const MIN_M_COST_KIB: u32 = 64 * 1024;
/// Production floor and default: Argon2id passes.
pub const MIN_T_COST: u32 = 3;
/// Largest memory cost a terminal accepts, KiB (256 MiB): four times the default, and what a
/// small terminal (1 GiB of memory, four slow cores) can spare for one try. Beyond the
/// bounds, a file could make a try last minutes and run the terminal out of memory, which
/// Argon2 would only report as a failure indistinguishable from a wrong passphrase.
pub const MAX_M_COST_KIB: u32 = 256 * 1024;
/// Most passes a terminal accepts (with [`MAX_M_COST_KIB`], a few seconds a try on a small
/// terminal).
pub const MAX_T_COST: u32 = 8;
/// Most lanes a terminal accepts (a small terminal's cores).
pub const MAX_P_COST: u32 = 4;

const TAG_LEN: usize = 16;
const FIXED_HEADER_LEN: usize = 46;
const SECRETS_LEN: usize = 32 + 32;

/// A soft card as opened, before its passphrase: it identifies itself and can be verified.
pub struct SoftCard {
    path: PathBuf,
    header: Header,
    ciphertext: Vec<u8>,
}

impl SoftCard {
    /// Creates a new soft card file at `path` with fresh keys and no share, and returns it
    /// unverified. Refuses soft cards unless `policy` allows them
    /// ([`QuorumError::SoftCardRefused`], before anything is written), an existing file, a
    /// passphrase shorter than [`MIN_PASSPHRASE_CHARS`] characters (or longer than 1024 bytes),
    /// and an invalid holder or serial.
    pub fn create(
        path: &Path,
        holder: Option<&str>,
        serial: &str,
        passphrase: &Pin,
        params: Argon2Params,
        policy: CardPolicy,
    ) -> Result<SoftCard, QuorumError> {
        policy.check_soft_card(path)?;
        if let Some(holder) = holder {
            check_holder(holder)?;
        }
        check_serial(serial)?;
        if passphrase.char_count() < MIN_PASSPHRASE_CHARS || passphrase.expose().len() > MAX_PIN_LEN
        {
            return Err(QuorumError::WeakPassphrase {
                min: MIN_PASSPHRASE_CHARS,
                max: MAX_PIN_LEN,
            });
        }
        params.check(true)?;
        let io_err = |source| QuorumError::SoftCardIo {
            path: path.to_owned(),
            source,
        };
        if path.try_exists().map_err(io_err)? {
            return Err(QuorumError::SoftCardExists {
                path: path.to_owned(),
            });
        }

        let mut signing_seed = Zeroizing::new([0u8; 32]);
        let mut decryption_secret = Zeroizing::new([0u8; 32]);
        let mut salt = [0u8; SALT_LEN];
        getrandom::fill(signing_seed.as_mut())?;
        getrandom::fill(decryption_secret.as_mut())?;
        getrandom::fill(&mut salt)?;
        let signing_public = SigningKey::from_bytes(&signing_seed)
            .verifying_key()
            .to_bytes();
        let decryption_public = PublicKey::from(&StaticSecret::from(*decryption_secret)).to_bytes();
        let key = params
            .derive_key(passphrase.expose(), &salt)
            .ok_or_else(|| QuorumError::Argon2Params {
                reason: "Argon2 could not run with them (out of memory?)".to_owned(),
            })?;
        let mut header = Header {
            params,
            salt,
            nonce: [0; NONCE_LEN],
            holder: holder.map(str::to_owned),
            serial: serial.to_owned(),
            signing_public,
            decryption_public,
        };
        let secrets = Secrets {
            signing_seed,
            decryption_secret,
            share_object: None,
        };
        let (file, ciphertext) = seal_file(&mut header, &key, &secrets)?;
        write_atomically(path, &file, false).map_err(|source| {
            if source.kind() == io::ErrorKind::AlreadyExists {
                QuorumError::SoftCardExists {
                    path: path.to_owned(),
                }
            } else {
                io_err(source)
            }
        })?;
        Ok(SoftCard {
            path: path.to_owned(),
            header,
            ciphertext,
        })
    }

    /// Opens a soft card file, unverified. Refuses soft cards unless `policy` allows them
    /// ([`QuorumError::SoftCardRefused`], before the file is read), a file that is not a
    /// version 1 soft card, Argon2 parameters below the production floor, and test cards.
    pub fn open(path: &Path, policy: CardPolicy) -> Result<SoftCard, QuorumError> {
        policy.check_soft_card(path)?;
        SoftCard::open_with(path, false)
    }

    /// Like [`SoftCard::open`], but also accepts test cards (made with
    /// [`Argon2Params::insecure_for_tests`]), whatever the card policy: a test card's weak
    /// passphrase hashing is refused everywhere else. For tests only.
    pub fn open_test_card(path: &Path) -> Result<SoftCard, QuorumError> {
        SoftCard::open_with(path, true)
    }

    fn open_with(path: &Path, allow_test: bool) -> Result<SoftCard, QuorumError> {
        let format_err = |reason: String| QuorumError::SoftCardFormat {
            path: path.to_owned(),
            reason,
        };
        let bytes = read_bounded(path).map_err(|source| QuorumError::SoftCardIo {
            path: path.to_owned(),
            source,
        })?;
        let Some(bytes) = bytes else {
            return Err(format_err(format!(
                "larger than the {MAX_SOFT_CARD_LEN} bytes a soft card file has"
            )));
        };
        let (header, header_len) = Header::parse(&bytes).map_err(format_err)?;
        if header.params.test_card && !allow_test {
            return Err(format_err(
                "it is a test card with weak passphrase hashing; only tests open it".to_owned(),
            ));
        }
        header.params.check(allow_test)?;
        let ciphertext = bytes[header_len..].to_vec();
        if ciphertext.len() < SECRETS_LEN + 2 + TAG_LEN {
            return Err(format_err("the encrypted part is truncated".to_owned()));
        }
        Ok(SoftCard {
            path: path.to_owned(),
            header,
            ciphertext,
        })
    }

    /// The file this card lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this is a test card (weak passphrase hashing).
    pub fn is_test_card(&self) -> bool {
        self.header.params.test_card
    }

    /// Changes the passphrase from `old` to `new`: the file is sealed again under a key
    /// derived from `new` with a fresh salt and nonce but the same Argon2 parameters, and
    /// replaced atomically (`.partial`, fsync, rename), so that a failure at any point leaves
    /// the file sealed under `old`. The keys and the share object stay as they are.
    ///
    /// A wrong `old` gives [`CardError::WrongPin`] with `retries_left: None` (a soft card has
    /// no retry counter) and changes nothing; a `new` shorter than [`MIN_PASSPHRASE_CHARS`]
    /// characters (or longer than 1024 bytes) gives [`QuorumError::WeakPassphrase`], checked
    /// before the old passphrase is tried.
    pub fn change_passphrase(&mut self, old: &Pin, new: &Pin) -> Result<(), QuorumError> {
        if new.char_count() < MIN_PASSPHRASE_CHARS || new.expose().len() > MAX_PIN_LEN {
            return Err(QuorumError::WeakPassphrase {
                min: MIN_PASSPHRASE_CHARS,
                max: MAX_PIN_LEN,
            });
        }
        let (_, secrets) = self.unseal(old)?;
        let mut header = self.header.clone();
        getrandom::fill(&mut header.salt)?;
        let key = header
            .params
            .derive_key(new.expose(), &header.salt)
            .ok_or_else(|| QuorumError::Argon2Params {
                reason: "Argon2 could not run with them (out of memory?)".to_owned(),
            })?;
        let (file, ciphertext) = seal_file(&mut header, &key, &secrets)?;
        write_atomically(&self.path, &file, true).map_err(|source| QuorumError::SoftCardIo {
            path: self.path.clone(),
            source,
        })?;
        self.header = header;
        self.ciphertext = ciphertext;
        Ok(())
    }

    fn unseal(&self, pin: &Pin) -> Result<(Zeroizing<[u8; 32]>, Secrets), CardError> {
        if pin.expose().len() > MAX_PIN_LEN {
            return Err(CardError::PinFormat {
                reason: "longer than 1024 bytes",
            });
        }
        let key = self
            .header
            .params
            .derive_key(pin.expose(), &self.header.salt)
            .ok_or(CardError::Corrupt {
                reason: "Argon2 could not run with the file's parameters",
            })?;
        let aad = self.header.encode();
        let mut plaintext = Zeroizing::new(self.ciphertext.clone());
        Aes256Gcm::new(&(*key).into())
            .decrypt_in_place(&self.header.nonce.into(), &aad, &mut *plaintext)
            .map_err(|_| CardError::WrongPin { retries_left: None })?;
        let secrets = Secrets::decode(&plaintext)?;
        let signing_public = SigningKey::from_bytes(&secrets.signing_seed)
            .verifying_key()
            .to_bytes();
        let decryption_public =
            PublicKey::from(&StaticSecret::from(*secrets.decryption_secret)).to_bytes();
        if signing_public != self.header.signing_public
            || decryption_public != self.header.decryption_public
        {
            return Err(CardError::Corrupt {
                reason: "its secret keys do not match its public keys",
            });
        }
        Ok((key, secrets))
    }
}

impl Card for SoftCard {
    type Verified = VerifiedSoftCard;

    fn info(&self) -> CardInfo {
        self.header.info()
    }

    /// Derives the key from the passphrase and decrypts the file. A wrong passphrase and an
    /// altered file both give [`CardError::WrongPin`] with `retries_left: None`: a soft card has
    /// no retry counter.
    fn verify(self, pin: &Pin) -> Result<VerifiedSoftCard, (SoftCard, CardError)> {
        match self.unseal(pin) {
            Ok((key, secrets)) => Ok(VerifiedSoftCard {
                path: self.path,
                header: self.header,
                key,
                secrets,
            }),
            Err(e) => Err((self, e)),
        }
    }
}

impl fmt::Debug for SoftCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoftCard")
            .field("path", &self.path)
            .field("serial", &self.header.serial)
            .field("holder", &self.header.holder)
            .field("test_card", &self.header.params.test_card)
            .finish_non_exhaustive()
    }
}

/// A soft card after its passphrase: it holds the keys in memory (zeroized when dropped) and
/// the file key, so that writing the share needs no second Argon2 run.
pub struct VerifiedSoftCard {
    path: PathBuf,
    header: Header,
    key: Zeroizing<[u8; 32]>,
    secrets: Secrets,
}

impl VerifiedCard for VerifiedSoftCard {
    fn info(&self) -> CardInfo {
        self.header.info()
    }

    fn sign(&mut self, message: &[u8]) -> Result<[u8; 64], CardError> {
        Ok(SigningKey::from_bytes(&self.secrets.signing_seed)
            .sign(message)
            .to_bytes())
    }

    fn decipher(&mut self, ephemeral_public: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>, CardError> {
        let secret = StaticSecret::from(*self.secrets.decryption_secret);
        Ok(x25519(&secret, ephemeral_public))
    }

    /// The share object; an empty one (a wiped share) is no share, as on a smartcard.
    fn read_share_object(&mut self) -> Result<Option<Vec<u8>>, CardError> {
        Ok(self
            .secrets
            .share_object
            .clone()
            .filter(|object| !object.is_empty()))
    }

    /// Re-encrypts the file with a fresh nonce and replaces it atomically.
    fn write_share_object(&mut self, object: &[u8]) -> Result<(), CardError> {
        if object.len() > MAX_SHARE_OBJECT_LEN {
            return Err(CardError::ShareObjectTooLarge {
                len: object.len(),
                max: MAX_SHARE_OBJECT_LEN,
            });
        }
        let updated = Secrets {
            signing_seed: Zeroizing::new(*self.secrets.signing_seed),
            decryption_secret: Zeroizing::new(*self.secrets.decryption_secret),
            share_object: Some(object.to_vec()),
        };
        let mut header = self.header.clone();
        let (file, _) = seal_file(&mut header, &self.key, &updated).map_err(|e| match e {
            QuorumError::Random(e) => CardError::Io(io::Error::other(e)),
            other => CardError::Io(io::Error::other(other.to_string())),
        })?;
        write_atomically(&self.path, &file, true).map_err(CardError::Io)?;
        self.header = header;
        self.secrets = updated;
        Ok(())
    }
}

impl VerifiedSoftCard {
    /// The file this card lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl fmt::Debug for VerifiedSoftCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedSoftCard")
            .field("path", &self.path)
            .field("serial", &self.header.serial)
            .field("holder", &self.header.holder)
            .field("keys", &format_args!("<redacted>"))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSPHRASE: &[u8] = b"correct horse battery";

    #[test]
    fn the_card_policy_refuses_soft_cards_by_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ada.card");
        let pass = Pin::from_slice(PASSPHRASE);
        let refused = |e: QuorumError, path: &Path| {
            assert!(
                matches!(&e, QuorumError::SoftCardRefused { path: p } if p == path),
                "{e:?}"
            );
            let text = e.to_string();
            assert!(text.contains(&path.display().to_string()), "{text}");
            assert!(text.contains("allow_soft_cards = true"), "{text}");
            assert!(text.contains("no PIN retry counter"), "{text}");
        };
        // Refused before anything is written.
        refused(
            SoftCard::create(
                &path,
                Some("Ada"),
                "TSC-1",
                &pass,
                Argon2Params::insecure_for_tests(),
                CardPolicy::hardware_only(),
            )
            .unwrap_err(),
            &path,
        );
        assert!(!path.exists());
        // Refused before the file is read: an existing card, and a missing file, alike.
        SoftCard::create(
            &path,
            Some("Ada"),
            "TSC-1",
            &pass,
            Argon2Params::insecure_for_tests(),
            CardPolicy::allowed_by_configuration(),
        )
        .unwrap();
        refused(
            SoftCard::open(&path, CardPolicy::default()).unwrap_err(),
            &path,
        );
        let missing = dir.path().join("missing.card");
        refused(
            SoftCard::open(&missing, CardPolicy::default()).unwrap_err(),
            &missing,
        );
    }

    #[test]
    fn the_card_policy_allows_soft_cards_by_configuration_and_in_the_demo() {
        let dir = tempfile::tempdir().unwrap();
        let pass = Pin::from_slice(PASSPHRASE);
        let path = dir.path().join("ben.card");
        SoftCard::create(
            &path,
            Some("Ben"),
            "TSC-2",
            &pass,
            Argon2Params::production(),
            CardPolicy::embedded_demo(),
        )
        .unwrap();
        for policy in [
            CardPolicy::allowed_by_configuration(),
            CardPolicy::embedded_demo(),
        ] {
            let card = SoftCard::open(&path, policy).unwrap();
            let info = card.info();
            assert!(info.soft);
            assert_eq!(info.to_string(), "soft card TSC-2 (Ben)");
        }
        // The policy does not lift the refusal of test cards outside tests.
        let test_path = dir.path().join("test.card");
        SoftCard::create(
            &test_path,
            None,
            "TSC-3",
            &pass,
            Argon2Params::insecure_for_tests(),
            CardPolicy::embedded_demo(),
        )
        .unwrap();
        assert!(matches!(
            SoftCard::open(&test_path, CardPolicy::embedded_demo()),
            Err(QuorumError::SoftCardFormat { .. })
        ));
    }

    #[test]
    fn argon2_parameters_are_bounded() {
        assert!(Argon2Params::new(MIN_M_COST_KIB, MIN_T_COST, 1).is_ok());
        assert!(Argon2Params::new(MIN_M_COST_KIB - 1, MIN_T_COST, 1).is_err());
        assert!(Argon2Params::new(MIN_M_COST_KIB, 2, 1).is_err());
        assert!(Argon2Params::new(MAX_M_COST_KIB + 1, MIN_T_COST, 1).is_err());
        assert!(Argon2Params::new(MIN_M_COST_KIB, MAX_T_COST + 1, 1).is_err());
        assert!(Argon2Params::new(MIN_M_COST_KIB, MIN_T_COST, 0).is_err());
        assert!(Argon2Params::insecure_for_tests().check(true).is_ok());
        assert!(Argon2Params::insecure_for_tests().check(false).is_err());
        assert_eq!(Argon2Params::default(), Argon2Params::production());
    }

    #[test]
    fn header_round_trips() {
        let header = Header {
            params: Argon2Params::insecure_for_tests(),
            salt: [1; SALT_LEN],
            nonce: [2; NONCE_LEN],
            holder: Some("Zoë".to_owned()),
            serial: "TSC-1".to_owned(),
            signing_public: [3; 32],
            decryption_public: [4; 32],
        };
        let bytes = header.encode();
        assert_eq!(&bytes[..6], b"TSSC\x01\x01");
        let (parsed, len) = Header::parse(&bytes).unwrap();
        assert_eq!(parsed, header);
        assert_eq!(len, bytes.len());
        for cut in 0..bytes.len() {
            assert!(Header::parse(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn secrets_decode_checks_lengths() {
        let secrets = Secrets {
            signing_seed: Zeroizing::new([1; 32]),
            decryption_secret: Zeroizing::new([2; 32]),
            share_object: Some(vec![9; 98]),
        };
        let bytes = secrets.encode();
        let back = Secrets::decode(&bytes).unwrap();
        assert_eq!(back.share_object.as_deref(), Some(&[9u8; 98][..]));
        assert!(Secrets::decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(Secrets::decode(&bytes[..10]).is_err());
    }
}
