//! The device's state file: which slot is active, which is pending its first confirmed start,
//! the boot attempts so far, the rollback floor, the release keys, the hardware id, and the
//! SHA-512 of each slot's verified manifest.
//!
//! Format, version 1 (integers big-endian), at most [`MAX_STATE_LEN`] bytes:
//!
//! ```text
//! length  content
//!      4  magic "TSFD"
//!      1  version, 1
//!      1  active slot: 0 = A, 1 = B
//!      1  pending slot: 0 = none, 1 = A, 2 = B (never the active one)
//!      1  boot attempts of the pending slot (at most MAX_BOOT_ATTEMPTS)
//!      8  rollback floor
//!      1  hardware id length H (1..=64), then H bytes
//!         release key set: threshold (1), count (1, at most 16), count × 32-byte keys
//!   2×65  per slot A, B: 0 (no verified image) or 1 followed by its manifest's SHA-512
//!     64  SHA-512 of everything above (a damaged file is recognised, not misread)
//! ```
//!
//! It is replaced atomically (`state.partial`, fsync, rename, fsync of the directory): a crash
//! leaves the old state or the new one.

use sha2::{Digest, Sha512};

use super::{MAX_BOOT_ATTEMPTS, Slot};
use crate::keys::ReleaseKeySet;
use crate::manifest::MAX_NAME_LEN;
use crate::wire::Reader;

/// The state file's first four bytes.
pub const STATE_MAGIC: [u8; 4] = *b"TSFD";

/// The state file version this build writes and reads.
pub const STATE_VERSION: u8 = 1;

/// The largest state file read.
pub const MAX_STATE_LEN: usize = 4096;

/// The device's state (see the [module documentation](self)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    /// This device's hardware id.
    pub hardware_id: String,
    /// The current release keys.
    pub keys: ReleaseKeySet,
    /// The slot that starts when no update is pending, and the one fallen back to.
    pub active: Slot,
    /// The slot holding an update waiting for its first confirmed start.
    pub pending: Option<Slot>,
    /// Starts of the pending slot so far.
    pub boot_attempts: u8,
    /// The lowest rollback index accepted.
    pub rollback_floor: u64,
    /// Each slot's verified manifest's SHA-512, `[A, B]`; `None` for a slot without one (never
    /// written, or being rewritten).
    pub manifests: [Option<[u8; 64]>; 2],
}

impl State {
    /// The bytes of the state file.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1024);
        out.extend_from_slice(&STATE_MAGIC);
        out.push(STATE_VERSION);
        out.push(self.active.index() as u8);
        out.push(self.pending.map_or(0, |s| s.index() as u8 + 1));
        out.push(self.boot_attempts);
        out.extend_from_slice(&self.rollback_floor.to_be_bytes());
        // At most MAX_NAME_LEN (64), checked on parse and provisioning.
        out.push(self.hardware_id.len() as u8);
        out.extend_from_slice(self.hardware_id.as_bytes());
        self.keys.encode_into(&mut out);
        for digest in &self.manifests {
            match digest {
                None => out.push(0),
                Some(d) => {
                    out.push(1);
                    out.extend_from_slice(d);
                }
            }
        }
        let check = Sha512::digest(&out);
        out.extend_from_slice(&check);
        out
    }

    /// Parses and checks a state file's bytes.
    pub fn parse(bytes: &[u8]) -> Result<State, String> {
        if bytes.len() > MAX_STATE_LEN {
            return Err(format!("it is larger than {MAX_STATE_LEN} bytes"));
        }
        let Some(body_len) = bytes.len().checked_sub(64) else {
            return Err("it is truncated".to_owned());
        };
        let (body, check) = bytes.split_at(body_len);
        if Sha512::digest(body).as_slice() != check {
            return Err("its checksum does not match: the file is damaged".to_owned());
        }
        let mut r = Reader::new(body);
        if r.array::<4>("magic")? != STATE_MAGIC {
            return Err("it is not a Tessera device state file (magic TSFD)".to_owned());
        }
        let version = r.u8("version")?;
        if version != STATE_VERSION {
            return Err(format!("version {version} is not one this build reads (1)"));
        }
        let active =
            Slot::from_index(r.u8("active slot")?).ok_or("the active slot is not 0 or 1")?;
        let pending = match r.u8("pending slot")? {
            0 => None,
            n => Some(Slot::from_index(n - 1).ok_or("the pending slot is not 0, 1 or 2")?),
        };
        if pending == Some(active) {
            return Err("the pending slot is the active one".to_owned());
        }
        let boot_attempts = r.u8("boot attempts")?;
        if boot_attempts > MAX_BOOT_ATTEMPTS {
            return Err(format!(
                "{boot_attempts} boot attempts, above {MAX_BOOT_ATTEMPTS}"
            ));
        }
        let rollback_floor = r.u64("rollback floor")?;
        let len = usize::from(r.u8("hardware id")?);
        if len == 0 || len > MAX_NAME_LEN {
            return Err("the hardware id's length is out of bounds".to_owned());
        }
        let hardware_id = String::from_utf8(r.take(len, "hardware id")?.to_vec())
            .map_err(|_| "the hardware id is not UTF-8")?;
        let keys = ReleaseKeySet::parse_from(&mut r)?;
        let mut manifests = [None, None];
        for m in &mut manifests {
            *m = match r.u8("slot manifest flag")? {
                0 => None,
                1 => Some(r.array("slot manifest digest")?),
                _ => return Err("a slot's manifest flag is not 0 or 1".to_owned()),
            };
        }
        if !r.is_empty() {
            return Err("bytes follow the slots".to_owned());
        }
        if manifests[active.index()].is_none() {
            return Err("the active slot has no verified image".to_owned());
        }
        if pending.is_some_and(|p| manifests[p.index()].is_none()) {
            return Err("the pending slot has no verified image".to_owned());
        }
        Ok(State {
            hardware_id,
            keys,
            active,
            pending,
            boot_attempts,
            rollback_floor,
            manifests,
        })
    }
}
