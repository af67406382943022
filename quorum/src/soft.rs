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

/// Argon2id parameters for a soft card's passphrase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Argon2Params {
    m_cost_kib: u32,
    t_cost: u32,
    p_cost: u32,
    test_card: bool,
}

impl Argon2Params {
    /// 64 MiB, 3 passes, 1 lane: the default and the floor outside tests.
    pub const fn production() -> Self {
        Argon2Params {
            m_cost_kib: MIN_M_COST_KIB,
            t_cost: MIN_T_COST,
            p_cost: 1,
            test_card: false,
        }
    }

    /// Stronger parameters than the floor: memory in KiB, passes and lanes. Refuses anything
    /// below [`Argon2Params::production`] or above the file bounds.
    pub fn new(m_cost_kib: u32, t_cost: u32, p_cost: u32) -> Result<Self, QuorumError> {
        let params = Argon2Params {
            m_cost_kib,
            t_cost,
            p_cost,
            test_card: false,
        };
        params.check(false)?;
        Ok(params)
    }

    /// 64 KiB and one pass: for tests only, so that they run in milliseconds. A card created
    /// with these is flagged as a test card in its file, and [`SoftCard::open`] refuses it.
    /// Production code never calls this.
    pub const fn insecure_for_tests() -> Self {
        Argon2Params {
            m_cost_kib: 64,
            t_cost: 1,
            p_cost: 1,
            test_card: true,
        }
    }

    /// Memory cost in KiB.
    pub fn m_cost_kib(&self) -> u32 {
        self.m_cost_kib
    }

    /// Passes.
    pub fn t_cost(&self) -> u32 {
        self.t_cost
    }

    /// Lanes.
    pub fn p_cost(&self) -> u32 {
        self.p_cost
    }

    /// Whether these are test parameters (below the production floor allowed).
    pub fn is_test_card(&self) -> bool {
        self.test_card
    }

    fn check(&self, allow_test: bool) -> Result<(), QuorumError> {
        let refuse = |reason: String| Err(QuorumError::Argon2Params { reason });
        let above = [
            ("memory cost", self.m_cost_kib, MAX_M_COST_KIB, " KiB"),
            ("passes", self.t_cost, MAX_T_COST, ""),
            ("lanes", self.p_cost, MAX_P_COST, ""),
        ];
        if let Some((name, value, max, unit)) = above.into_iter().find(|(_, v, max, _)| v > max) {
            return refuse(format!(
                "Argon2id {name} {value}{unit} is above the {max}{unit} a terminal accepts \
                 (bounds: {MAX_M_COST_KIB} KiB, {MAX_T_COST} passes, {MAX_P_COST} lanes); \
                 create the soft card again with smaller parameters"
            ));
        }
        if self.p_cost == 0 || self.t_cost == 0 || self.m_cost_kib < 8 * self.p_cost {
            return refuse("Argon2 needs at least 1 pass, 1 lane and 8 KiB per lane".to_owned());
        }
        let weak = self.m_cost_kib < MIN_M_COST_KIB || self.t_cost < MIN_T_COST;
        if weak && !(allow_test && self.test_card) {
            return refuse(format!(
                "{} KiB and {} passes is below the floor of {MIN_M_COST_KIB} KiB and \
                 {MIN_T_COST} passes",
                self.m_cost_kib, self.t_cost
            ));
        }
        Ok(())
    }

    fn derive_key(&self, passphrase: &[u8], salt: &[u8]) -> Option<Zeroizing<[u8; 32]>> {
        let params =
            argon2::Params::new(self.m_cost_kib, self.t_cost, self.p_cost, Some(32)).ok()?;
        let mut key = Zeroizing::new([0u8; 32]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(passphrase, salt, key.as_mut())
            .ok()?;
        Some(key)
    }
}

impl Default for Argon2Params {
    fn default() -> Self {
        Argon2Params::production()
    }
}

/// The public part of a soft card file: everything before the ciphertext.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Header {
    params: Argon2Params,
    salt: [u8; SALT_LEN],
    nonce: [u8; NONCE_LEN],
    holder: Option<String>,
    serial: String,
    signing_public: [u8; 32],
    decryption_public: [u8; 32],
}

impl Header {
    fn encode(&self) -> Vec<u8> {
        let holder = self.holder.as_deref().unwrap_or("").as_bytes();
        let serial = self.serial.as_bytes();
        let mut out = Vec::with_capacity(FIXED_HEADER_LEN + 2 + holder.len() + serial.len() + 64);
        out.extend_from_slice(&SOFT_CARD_MAGIC);
        out.push(SOFT_CARD_VERSION_V1);
        out.push(if self.params.test_card {
            FLAG_TEST_CARD
        } else {
            0
        });
        out.extend_from_slice(&self.params.m_cost_kib.to_be_bytes());
        out.extend_from_slice(&self.params.t_cost.to_be_bytes());
        out.extend_from_slice(&self.params.p_cost.to_be_bytes());
        out.extend_from_slice(&self.salt);
        out.extend_from_slice(&self.nonce);
        // Both are at most 64 bytes (checked at creation and when parsing).
        out.push(holder.len() as u8);
        out.extend_from_slice(holder);
        out.push(serial.len() as u8);
        out.extend_from_slice(serial);
        out.extend_from_slice(&self.signing_public);
        out.extend_from_slice(&self.decryption_public);
        out
    }

    /// Parses the header; returns it with its length (the associated data's extent).
    fn parse(bytes: &[u8]) -> Result<(Header, usize), String> {
        let mut r = Reader { bytes, pos: 0 };
        let magic = r.take(4).ok_or("shorter than a soft card header")?;
        if magic != SOFT_CARD_MAGIC {
            return Err("not a Tessera soft card (the magic bytes are not \"TSSC\")".to_owned());
        }
        let version = r.u8().ok_or("shorter than a soft card header")?;
        if version != SOFT_CARD_VERSION_V1 {
            return Err(format!(
                "soft card version {version} is not supported (this build reads version 1)"
            ));
        }
        let flags = r.u8().ok_or("shorter than a soft card header")?;
        if flags & !FLAG_TEST_CARD != 0 {
            return Err(format!("unknown flags {flags:#04x}"));
        }
        let short = || "shorter than a soft card header".to_owned();
        let params = Argon2Params {
            m_cost_kib: r.u32().ok_or_else(short)?,
            t_cost: r.u32().ok_or_else(short)?,
            p_cost: r.u32().ok_or_else(short)?,
            test_card: flags & FLAG_TEST_CARD != 0,
        };
        let salt = r.array::<SALT_LEN>().ok_or_else(short)?;
        let nonce = r.array::<NONCE_LEN>().ok_or_else(short)?;
        let holder_len = usize::from(r.u8().ok_or_else(short)?);
        let holder = r.take(holder_len).ok_or_else(short)?;
        let holder = if holder.is_empty() {
            None
        } else {
            let holder = std::str::from_utf8(holder).map_err(|_| "the holder is not UTF-8")?;
            check_holder(holder).map_err(|e| e.to_string())?;
            Some(holder.to_owned())
        };
        let serial_len = usize::from(r.u8().ok_or_else(short)?);
        let serial = r.take(serial_len).ok_or_else(short)?;
        let serial = std::str::from_utf8(serial).map_err(|_| "the serial is not ASCII")?;
        check_serial(serial).map_err(|e| e.to_string())?;
        let signing_public = r.array::<32>().ok_or_else(short)?;
        let decryption_public = r.array::<32>().ok_or_else(short)?;
        let header = Header {
            params,
            salt,
            nonce,
            holder,
            serial: serial.to_owned(),
            signing_public,
            decryption_public,
        };
        Ok((header, r.pos))
    }

    fn info(&self) -> CardInfo {
        CardInfo {
            holder: self.holder.clone(),
            serial: self.serial.clone(),
            signing_public: self.signing_public,
            decryption_public: self.decryption_public,
            soft: true,
            pin_retries_left: None,
        }
    }
}

/// The soft card header fuzz target's body (see [`crate::fuzzing::soft_card_header`]): parses
/// arbitrary bytes as a soft card file's header and checks what comes out. Must never panic on
/// its own; panics only when an invariant breaks. Returns whether the bytes hold a header.
pub(crate) fn fuzz_header(data: &[u8]) -> bool {
    match Header::parse(data) {
        Ok((header, len)) => {
            assert!(len <= data.len(), "header length {len} beyond the input");
            // The encoding is canonical: every header has exactly one encoding, and the bytes
            // parsed are it (they are the AES-GCM associated data, re-made with `encode`).
            let encoded = header.encode();
            assert_eq!(
                encoded,
                data[..len],
                "the header's encoding is not canonical"
            );
            // What follows the header (the ciphertext) does not change the header.
            let (again, again_len) = Header::parse(&encoded).expect("an encoded header parses");
            assert_eq!((&again, again_len), (&header, len));
            assert!(Header::parse(&data[..len - 1]).is_err());
            // The labels the header carries are the ones creation accepts.
            assert!(check_serial(&header.serial).is_ok());
            if let Some(holder) = &header.holder {
                assert!(check_holder(holder).is_ok());
            }
            assert!(header.info().soft);
            true
        }
        Err(reason) => {
            assert!(!reason.is_empty(), "a refusal without a reason");
            false
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.array::<4>().map(u32::from_be_bytes)
    }
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }
}

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

/// The encrypted part of a soft card file.
struct Secrets {
    signing_seed: Zeroizing<[u8; 32]>,
    decryption_secret: Zeroizing<[u8; 32]>,
    share_object: Option<Vec<u8>>,
}

impl Secrets {
    fn encode(&self) -> Zeroizing<Vec<u8>> {
        let object = self.share_object.as_deref().unwrap_or(&[]);
        let mut out = Zeroizing::new(Vec::with_capacity(SECRETS_LEN + 2 + object.len() + TAG_LEN));
        out.extend_from_slice(self.signing_seed.as_ref());
        out.extend_from_slice(self.decryption_secret.as_ref());
        // At most MAX_SHARE_OBJECT_LEN (512) bytes: checked before every write.
        out.extend_from_slice(&(object.len() as u16).to_be_bytes());
        out.extend_from_slice(object);
        out
    }

    fn decode(plaintext: &[u8]) -> Result<Secrets, CardError> {
        let corrupt = |reason| CardError::Corrupt { reason };
        if plaintext.len() < SECRETS_LEN + 2 {
            return Err(corrupt("the decrypted part is too short"));
        }
        let mut signing_seed = Zeroizing::new([0u8; 32]);
        let mut decryption_secret = Zeroizing::new([0u8; 32]);
        signing_seed.copy_from_slice(&plaintext[..32]);
        decryption_secret.copy_from_slice(&plaintext[32..64]);
        let len = usize::from(u16::from_be_bytes([plaintext[64], plaintext[65]]));
        let object = &plaintext[66..];
        if len > MAX_SHARE_OBJECT_LEN || object.len() != len {
            return Err(corrupt("the share object's length is wrong"));
        }
        Ok(Secrets {
            signing_seed,
            decryption_secret,
            share_object: (len > 0).then(|| object.to_vec()),
        })
    }
}

/// Draws a fresh nonce into `header`, encrypts `secrets` under `key`, and returns the whole file
/// and the ciphertext.
fn seal_file(
    header: &mut Header,
    key: &[u8; 32],
    secrets: &Secrets,
) -> Result<(Vec<u8>, Vec<u8>), QuorumError> {
    getrandom::fill(&mut header.nonce)?;
    let aad = header.encode();
    let mut body = secrets.encode();
    Aes256Gcm::new(&(*key).into())
        .encrypt_in_place(&header.nonce.into(), &aad, &mut *body)
        .map_err(|_| QuorumError::SoftCardFormat {
            path: PathBuf::new(),
            reason: "AES-GCM refused to seal".to_owned(),
        })?;
    let ciphertext = body.to_vec();
    let mut file = aad;
    file.extend_from_slice(&ciphertext);
    Ok((file, ciphertext))
}

/// Reads at most [`MAX_SOFT_CARD_LEN`] bytes; `None` if the file is longer.
fn read_bounded(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let file = File::open(path)?;
    let mut bytes = Vec::with_capacity(1024);
    file.take(MAX_SOFT_CARD_LEN as u64 + 1)
        .read_to_end(&mut bytes)?;
    Ok((bytes.len() <= MAX_SOFT_CARD_LEN).then_some(bytes))
}

fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// Writes `bytes` to `path` through `path.partial`: create (mode 0600), write, fsync, then
/// rename (or, when `overwrite` is false, hard-link, which refuses an existing target), then
/// fsync the directory. A stale `.partial` from an interrupted write is replaced.
fn write_atomically(path: &Path, bytes: &[u8], overwrite: bool) -> io::Result<()> {
    let partial = partial_path(path);
    match fs::remove_file(&partial) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&partial)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    drop(file);
    if let Err(e) = written {
        let _ = fs::remove_file(&partial);
        return Err(e);
    }
    let placed = if overwrite {
        fs::rename(&partial, path)
    } else {
        match fs::hard_link(&partial, path) {
            Ok(()) => fs::remove_file(&partial),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
            // A filesystem without hard links: check, then rename.
            Err(_) => {
                if path.try_exists()? {
                    Err(io::Error::from(io::ErrorKind::AlreadyExists))
                } else {
                    fs::rename(&partial, path)
                }
            }
        }
    };
    if let Err(e) = placed {
        let _ = fs::remove_file(&partial);
        return Err(e);
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
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
