//! Signed firmware images for the terminal device itself: build, m-of-n sign, verify, and an
//! A/B install with a confirmed first start and a rising rollback floor.
//!
//! ```no_run
//! use std::path::Path;
//! use firmware_image::device::Device;
//!
//! // The terminal, on finding an update on a drive:
//! let device = Device::open(Path::new("/var/lib/tessera-firmware"))?;
//! let verification = device.verify(Path::new("/media/usb/tessera-1.4.0.tsfw"))?;
//! print!("{}", verification.report); // every check and its result, before any install
//! device.install(Path::new("/media/usb/tessera-1.4.0.tsfw"))?; // verifies again, writes slot B
//!
//! // After the restart, the launcher:
//! let boot = device.start()?; // counts an attempt; checks the slot's files
//! // … the new program runs, finds itself healthy, and says so:
//! if boot.trial {
//!     device.confirm()?; // the floor rises only now
//! }
//! # Ok::<(), firmware_image::FirmwareError>(())
//! ```
//!
//! - [`manifest`]: what an image is (product, hardware id, version, rollback index, build time,
//!   payload size and SHA-512, file list), its canonical encoding and path rules.
//! - [`image`]: the container (magic, version, manifest, payload, signatures), the builder, and
//!   [`verify`](image::verify): every check with its result, and the [`VerifiedImage`] only a
//!   full pass produces.
//! - [`keys`]: release key sets (m of n, distinct keys), what a release key signs, detached
//!   signature files, and signing with an officer card from `quorum` (an OpenPGP card over
//!   PC/SC, or a soft card where the card policy allows it).
//! - `demo` (feature `demo`): the terminal demo's device, DEMO release keys and images.
//! - [`device`]: slots A and B under a root directory, the state file, install, start (the
//!   launcher's check and boot attempts), confirm, fall back, and [`device::Status`] for the
//!   terminal's Firmware screen and `tessera-firmware status`.
//!
//! This crate does not provide secure boot, dm-verity or a hardware monotonic counter: whoever
//! can write the device's root directory can change the state file and the slots, and the
//! launcher's check runs before a start, not while the program runs (see SECURITY.md). It
//! never prints or prompts; the binary `tessera-firmware` does.

#[cfg(feature = "demo")]
pub mod demo;
pub mod device;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod image;
pub mod keys;
pub mod manifest;

mod fsutil;
mod wire;

pub use device::{Boot, Device, Slot, Status};
pub use error::{FirmwareError, Refusal};
pub use image::verify::{Check, Outcome, Report, Trust, Verification, VerifiedImage};
pub use keys::{DetachedSignature, ReleaseKeySet, ReleaseSignature};
pub use manifest::{FileEntry, Manifest, SemVer};
