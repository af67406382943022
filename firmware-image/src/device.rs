//! The device side: slots A and B under a root directory, the state file, install, the
//! launcher's start, confirm, fall back, and the status the terminal shows.
//!
//! ```text
//! <root>/state            the state file (see state)
//! <root>/slot-a/manifest  slot A's verified manifest
//! <root>/slot-a/files/…   slot A's files (the terminal's root)
//! <root>/slot-b/…         the same for slot B
//! ```
//!
//! - [`Device::install`] verifies the image fully against the state's trust (release keys,
//!   hardware id, rollback floor), refuses while another update is pending, then: forgets the
//!   inactive slot in the state (so a half-written slot is never started), writes the slot
//!   (each file hashed again as written, everything fsync'd), and marks it pending with zero
//!   boot attempts. Killed at any point, the active slot and the state that starts it are
//!   untouched.
//! - [`Device::start`] (the launcher, before each start of the terminal) counts an attempt of a
//!   pending slot *before* starting it, so a program that crashes also spends its attempts;
//!   after [`MAX_BOOT_ATTEMPTS`] unconfirmed starts, or if the pending slot fails its check, the
//!   active slot starts again (fall back). Every start checks the slot's files against its
//!   verified manifest and refuses a slot that changed.
//! - [`Device::confirm`] (the new program, once healthy) makes the pending slot active and
//!   only then raises the rollback floor to its index and adopts a release key rotation it
//!   carries: falling back never meets a floor above the old slot.

mod faults;
pub mod slot;
pub mod state;

use std::fmt;
use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};

pub use faults::Faults;
use state::{MAX_STATE_LEN, State};

use crate::error::FirmwareError;
use crate::fsutil::partial_path;
use crate::image::verify::{Trust, Verification, VerifiedImage, verify_file};
use crate::keys::ReleaseKeySet;
use crate::manifest::{MAX_NAME_LEN, Manifest, SemVer};

/// Unconfirmed starts of a pending slot before the device falls back.
pub const MAX_BOOT_ATTEMPTS: u8 = 3;

/// The state file's name under the root.
pub const STATE_FILE: &str = "state";

/// One of the two slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Slot {
    /// Slot A.
    A,
    /// Slot B.
    B,
}

impl Slot {
    /// The other slot.
    pub fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }

    /// 0 for A, 1 for B.
    pub fn index(self) -> usize {
        match self {
            Slot::A => 0,
            Slot::B => 1,
        }
    }

    fn from_index(i: u8) -> Option<Slot> {
        match i {
            0 => Some(Slot::A),
            1 => Some(Slot::B),
            _ => None,
        }
    }

    /// `'A'` or `'B'`.
    pub fn letter(self) -> char {
        match self {
            Slot::A => 'A',
            Slot::B => 'B',
        }
    }

    fn dir_name(self) -> &'static str {
        match self {
            Slot::A => "slot-a",
            Slot::B => "slot-b",
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.letter())
    }
}

/// What the launcher starts.
#[derive(Clone, Debug)]
pub struct Boot {
    /// The slot started.
    pub slot: Slot,
    /// Its files (the terminal's root).
    pub files: PathBuf,
    /// Its verified manifest.
    pub manifest: Manifest,
    /// A pending slot on trial: the program must call [`Device::confirm`] once healthy.
    pub trial: bool,
    /// The attempt this is, for a slot on trial (1 to [`MAX_BOOT_ATTEMPTS`]).
    pub attempt: u8,
    /// If this start fell back from a pending slot: which, and why.
    pub fell_back: Option<(Slot, String)>,
}

/// The outcome of [`Device::install`].
#[derive(Clone, Debug)]
pub struct Installed {
    /// The slot written, now pending.
    pub slot: Slot,
    /// The image's manifest.
    pub manifest: Manifest,
}

/// The outcome of [`Device::confirm`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confirmed {
    /// The slot now active.
    pub slot: Slot,
    /// Its version.
    pub version: SemVer,
    /// The rollback floor now.
    pub rollback_floor: u64,
    /// Whether the release keys were rotated.
    pub keys_rotated: bool,
}

/// A device's firmware under a root directory.
#[derive(Clone, Debug)]
pub struct Device {
    root: PathBuf,
}

impl Device {
    /// Opens the device at `root`, which must have been provisioned.
    pub fn open(root: &Path) -> Result<Device, FirmwareError> {
        let device = Device {
            root: root.to_owned(),
        };
        device.load()?;
        Ok(device)
    }

    /// Factory provisioning: verifies `image` against `keys` and `hardware_id` (floor 0),
    /// writes it to slot A as the active, confirmed slot, and sets the floor to its rollback
    /// index. Refuses a root that already holds a state file.
    pub fn provision(
        root: &Path,
        hardware_id: &str,
        keys: ReleaseKeySet,
        image: &Path,
    ) -> Result<Device, FirmwareError> {
        let refuse = |reason: String| FirmwareError::Device {
            op: "provision",
            reason,
        };
        if hardware_id.is_empty()
            || hardware_id.len() > MAX_NAME_LEN
            || !hardware_id.bytes().all(|b| (0x21..0x7f).contains(&b))
        {
            return Err(refuse(format!(
                "the hardware id must be 1 to {MAX_NAME_LEN} printable ASCII characters"
            )));
        }
        let device = Device {
            root: root.to_owned(),
        };
        fs::create_dir_all(root).map_err(FirmwareError::io("creating", root))?;
        if device.state_path().exists() {
            return Err(refuse(format!(
                "{} is already provisioned; use install for updates",
                root.display()
            )));
        }
        let trust = Trust {
            keys: keys.clone(),
            hardware_id: hardware_id.to_owned(),
            rollback_floor: 0,
        };
        let verified = verify_file(image, &trust)?.into_result()?;
        let mut faults = Faults::none();
        slot::write_slot(
            &device.slot_dir(Slot::A),
            image,
            &verified,
            &mut faults,
            &mut |_, _| {},
        )?;
        let manifest = verified.manifest();
        let state = State {
            hardware_id: hardware_id.to_owned(),
            keys: manifest.new_key_set.clone().unwrap_or(keys),
            active: Slot::A,
            pending: None,
            boot_attempts: 0,
            rollback_floor: manifest.rollback_index,
            manifests: [Some(*verified.manifest_digest()), None],
        };
        device.store(&state, &mut faults)?;
        Ok(device)
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A slot's directory.
    pub fn slot_dir(&self, slot: Slot) -> PathBuf {
        self.root.join(slot.dir_name())
    }

    fn state_path(&self) -> PathBuf {
        self.root.join(STATE_FILE)
    }

    /// Reads the state file.
    pub fn load(&self) -> Result<State, FirmwareError> {
        let path = self.state_path();
        let mut bytes = Vec::new();
        fs::File::open(&path)
            .and_then(|f| f.take(MAX_STATE_LEN as u64 + 1).read_to_end(&mut bytes))
            .map_err(|e| FirmwareError::State {
                path: path.clone(),
                reason: format!("{e}; is the device provisioned (tessera-firmware provision)?"),
            })?;
        State::parse(&bytes).map_err(|reason| FirmwareError::State { path, reason })
    }

    /// Replaces the state file atomically, each disk change a step of `faults`.
    fn store(&self, state: &State, faults: &mut Faults) -> Result<(), FirmwareError> {
        let path = self.state_path();
        let partial = partial_path(&path);
        (|| {
            faults.step()?;
            let mut file = fs::File::create(&partial)?;
            faults.write(&mut file, &state.encode())?;
            faults.step()?;
            file.sync_all()?;
            faults.step()?;
            fs::rename(&partial, &path)?;
            faults.step()?;
            fs::File::open(&self.root)?.sync_all()
        })()
        .map_err(FirmwareError::io("writing", &path))
    }

    /// What this device trusts now.
    pub fn trust(&self) -> Result<Trust, FirmwareError> {
        let state = self.load()?;
        Ok(Trust {
            keys: state.keys,
            hardware_id: state.hardware_id,
            rollback_floor: state.rollback_floor,
        })
    }

    /// Verifies `image` against this device, every check reported; installs nothing.
    pub fn verify(&self, image: &Path) -> Result<Verification, FirmwareError> {
        verify_file(image, &self.trust()?)
    }

    /// Verifies `image` and installs it to the inactive slot, pending its first confirmed start.
    pub fn install(&self, image: &Path) -> Result<Installed, FirmwareError> {
        self.install_with(image, &mut Faults::none(), &mut |_, _| {})
    }

    /// [`Device::install`] with fault injection (tests) and progress (bytes written, total).
    pub fn install_with(
        &self,
        image: &Path,
        faults: &mut Faults,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Installed, FirmwareError> {
        let mut state = self.load()?;
        if let Some(pending) = state.pending {
            return Err(FirmwareError::Device {
                op: "install",
                reason: format!(
                    "slot {pending} holds an update waiting for its first confirmed start: start \
                     it and confirm it, or let it fall back, before installing another"
                ),
            });
        }
        let trust = Trust {
            keys: state.keys.clone(),
            hardware_id: state.hardware_id.clone(),
            rollback_floor: state.rollback_floor,
        };
        let verified: VerifiedImage = verify_file(image, &trust)?.into_result()?;
        let target = state.active.other();
        if state.manifests[target.index()].is_some() {
            state.manifests[target.index()] = None;
            self.store(&state, faults)?;
        }
        slot::write_slot(&self.slot_dir(target), image, &verified, faults, progress)?;
        state.manifests[target.index()] = Some(*verified.manifest_digest());
        state.pending = Some(target);
        state.boot_attempts = 0;
        self.store(&state, faults)?;
        Ok(Installed {
            slot: target,
            manifest: verified.manifest().clone(),
        })
    }

    /// The launcher, before each start: decides the slot, counts a pending slot's attempt,
    /// falls back when a pending slot is spent or fails its check, and checks the slot's files
    /// against its verified manifest. Refuses to start an active slot that changed.
    pub fn start(&self) -> Result<Boot, FirmwareError> {
        let mut state = self.load()?;
        let mut fell_back = None;
        if let Some(pending) = state.pending {
            if state.boot_attempts >= MAX_BOOT_ATTEMPTS {
                fell_back = Some((
                    pending,
                    format!("it did not confirm within {MAX_BOOT_ATTEMPTS} starts"),
                ));
            } else {
                state.boot_attempts += 1;
                self.store(&state, &mut Faults::none())?;
                match self.check(&state, pending) {
                    Ok(manifest) => {
                        return Ok(Boot {
                            slot: pending,
                            files: self.slot_dir(pending).join(slot::SLOT_FILES),
                            manifest,
                            trial: true,
                            attempt: state.boot_attempts,
                            fell_back: None,
                        });
                    }
                    Err(e) => fell_back = Some((pending, e.to_string())),
                }
            }
            state.pending = None;
            state.boot_attempts = 0;
            self.store(&state, &mut Faults::none())?;
        }
        let manifest = self.check(&state, state.active)?;
        Ok(Boot {
            slot: state.active,
            files: self.slot_dir(state.active).join(slot::SLOT_FILES),
            manifest,
            trial: false,
            attempt: 0,
            fell_back,
        })
    }

    fn check(&self, state: &State, s: Slot) -> Result<Manifest, FirmwareError> {
        slot::check_slot(
            &self.slot_dir(s),
            s.letter(),
            state.manifests[s.index()].as_ref(),
        )
    }

    /// Confirms the pending slot after a healthy start: it becomes active, the rollback floor
    /// rises to its index (never falls), and a release key rotation it carries takes effect.
    pub fn confirm(&self) -> Result<Confirmed, FirmwareError> {
        let mut state = self.load()?;
        let refuse = |reason: String| FirmwareError::Device {
            op: "confirm",
            reason,
        };
        let Some(pending) = state.pending else {
            return Err(refuse("no update is waiting for confirmation".to_owned()));
        };
        if state.boot_attempts == 0 {
            return Err(refuse(format!(
                "the update in slot {pending} has not been started yet; start it first"
            )));
        }
        let digest = state.manifests[pending.index()].expect("a pending slot has a manifest");
        let manifest = slot::read_manifest(&self.slot_dir(pending), pending.letter(), &digest)?;
        state.active = pending;
        state.pending = None;
        state.boot_attempts = 0;
        state.rollback_floor = state.rollback_floor.max(manifest.rollback_index);
        let keys_rotated = match manifest.new_key_set {
            Some(keys) => {
                state.keys = keys;
                true
            }
            None => false,
        };
        self.store(&state, &mut Faults::none())?;
        Ok(Confirmed {
            slot: pending,
            version: manifest.version,
            rollback_floor: state.rollback_floor,
            keys_rotated,
        })
    }

    /// The device's firmware status, for the Firmware screen and `tessera-firmware status`.
    /// Reads the slots' manifests (checked against the state), not their files.
    pub fn status(&self) -> Result<Status, FirmwareError> {
        let state = self.load()?;
        let slots = [Slot::A, Slot::B].map(|s| {
            let role = if s == state.active {
                SlotRole::Active
            } else if state.pending == Some(s) {
                SlotRole::Pending
            } else if state.manifests[s.index()].is_some() {
                SlotRole::Spare
            } else {
                SlotRole::Empty
            };
            let image = state.manifests[s.index()].map(|d| {
                slot::read_manifest(&self.slot_dir(s), s.letter(), &d).map_err(|e| e.to_string())
            });
            SlotStatus {
                slot: s,
                role,
                image,
            }
        });
        Ok(Status {
            hardware_id: state.hardware_id,
            active: state.active,
            pending: state.pending,
            boot_attempts: state.boot_attempts,
            rollback_floor: state.rollback_floor,
            key_threshold: state.keys.threshold(),
            key_count: state.keys.keys().len(),
            slots,
        })
    }
}

/// What a slot is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotRole {
    /// Starts when nothing is pending; the one fallen back to.
    Active,
    /// Holds an update on trial.
    Pending,
    /// Holds an older (or fallen-back) image; overwritten by the next install.
    Spare,
    /// Holds no verified image.
    Empty,
}

impl fmt::Display for SlotRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SlotRole::Active => "active",
            SlotRole::Pending => "pending",
            SlotRole::Spare => "spare",
            SlotRole::Empty => "empty",
        })
    }
}

/// One slot's status.
#[derive(Clone, Debug)]
pub struct SlotStatus {
    /// The slot.
    pub slot: Slot,
    /// Its role.
    pub role: SlotRole,
    /// Its manifest, or why it cannot be read; `None` for an empty slot.
    pub image: Option<Result<Manifest, String>>,
}

/// The device's firmware status.
#[derive(Clone, Debug)]
pub struct Status {
    /// This device's hardware id.
    pub hardware_id: String,
    /// The active slot.
    pub active: Slot,
    /// The slot on trial, if any.
    pub pending: Option<Slot>,
    /// Starts of the pending slot so far (of [`MAX_BOOT_ATTEMPTS`]).
    pub boot_attempts: u8,
    /// The lowest rollback index accepted.
    pub rollback_floor: u64,
    /// Release signatures needed.
    pub key_threshold: usize,
    /// Release keys.
    pub key_count: usize,
    /// Slots A and B.
    pub slots: [SlotStatus; 2],
}

/// Tab-separated `key value…` lines, stable for scripts.
impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "hardware_id\t{}", self.hardware_id)?;
        writeln!(f, "active\t{}", self.active)?;
        match self.pending {
            Some(p) => writeln!(f, "pending\t{p}")?,
            None => writeln!(f, "pending\t-")?,
        }
        writeln!(
            f,
            "boot_attempts\t{}\t{MAX_BOOT_ATTEMPTS}",
            self.boot_attempts
        )?;
        writeln!(f, "rollback_floor\t{}", self.rollback_floor)?;
        writeln!(
            f,
            "release_keys\t{}\t{}",
            self.key_threshold, self.key_count
        )?;
        for s in &self.slots {
            match &s.image {
                None => writeln!(f, "slot\t{}\t{}", s.slot, s.role)?,
                Some(Ok(m)) => writeln!(
                    f,
                    "slot\t{}\t{}\t{}\t{}\t{}\t{}",
                    s.slot, s.role, m.product, m.version, m.rollback_index, m.build_time
                )?,
                Some(Err(e)) => writeln!(f, "slot\t{}\t{}\tunreadable: {e}", s.slot, s.role)?,
            }
        }
        Ok(())
    }
}
