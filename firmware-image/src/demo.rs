//! The demo's firmware (feature `demo`, which the terminal's embedded demo turns on): a device
//! root provisioned with version 1.0.0 under three DEMO release keys (2 of 3), and a drive
//! holding an update to 1.1.0 signed by two of them and a 1.2.0 signed by only one (refused:
//! one signature of two), so that a user can try a verification, a refusal and an install.
//!
//! The demo release keys come from fixed, published seeds: anybody can sign with them. They
//! are marked as demo keys wherever they show, a hardened build (without the feature) does not
//! contain them, and a real device is provisioned with its own release keys
//! (`tessera-firmware provision --keys`), never these.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signer, SigningKey};

use crate::device::Device;
use crate::error::FirmwareError;
use crate::image::build::build_image;
use crate::image::{read_unverified, write_signed};
use crate::keys::{ReleaseKeySet, ReleaseSignature, manifest_digest, signed_message};

/// The demo device's hardware id.
pub const DEMO_HARDWARE_ID: &str = "tessera-demo";

/// The update on the demo drive that verifies.
pub const DEMO_UPDATE: &str = "tessera-terminal-1.1.0.tsfw";

/// The image on the demo drive that is refused: signed by one demo key where two are needed.
pub const DEMO_REFUSED: &str = "tessera-terminal-1.2.0-one-signature.tsfw";

/// Demo release key `i` (1 to 3), from a published seed: a DEMO key, never a real one.
fn demo_key(i: u8) -> SigningKey {
    let mut seed = *b"tessera DEMO release key, public";
    seed[31] = b'0' + i;
    SigningKey::from_bytes(&seed)
}

/// The demo's release key set: 2 of the 3 demo keys.
pub fn demo_key_set() -> ReleaseKeySet {
    ReleaseKeySet::new(
        2,
        (1..=3)
            .map(|i| demo_key(i).verifying_key().to_bytes())
            .collect(),
    )
    .expect("three distinct demo keys, threshold 2")
}

/// What [`prepare`] made or found.
#[derive(Debug)]
pub struct DemoFirmware {
    /// The device.
    pub device: Device,
    /// Whether the device was provisioned now (else it was kept from an earlier demo run).
    pub provisioned: bool,
    /// The images written to the drive.
    pub images: Vec<PathBuf>,
    /// What the launcher's start found (the demo stands in for the launcher).
    pub boot: crate::device::Boot,
}

/// Makes the demo's firmware: provisions `device_root` with demo version 1.0.0 unless it is
/// already provisioned (an earlier run's install stays, pending or confirmed), and writes the
/// demo images to `drive`, then does what the launcher does before each start
/// ([`Device::start`]: an update installed by an earlier run starts on trial). `scratch` is a directory the images are built in (emptied first,
/// removed after).
pub fn prepare(
    device_root: &Path,
    drive: &Path,
    scratch: &Path,
) -> Result<DemoFirmware, FirmwareError> {
    let _ = fs::remove_dir_all(scratch);
    fs::create_dir_all(scratch).map_err(FirmwareError::io("creating", scratch))?;
    fs::create_dir_all(drive).map_err(FirmwareError::io("creating", drive))?;
    let result = (|| {
        let (device, provisioned) = match Device::open(device_root) {
            Ok(device) => (device, false),
            Err(_) if !device_root.join(crate::device::STATE_FILE).exists() => {
                let first = demo_image(scratch, "1.0.0", 1, &[1, 2])?;
                let device =
                    Device::provision(device_root, DEMO_HARDWARE_ID, demo_key_set(), &first)?;
                (device, true)
            }
            Err(e) => return Err(e),
        };
        let mut images = Vec::new();
        for (name, version, index, signers) in [
            (DEMO_UPDATE, "1.1.0", 2, &[1u8, 3][..]),
            (DEMO_REFUSED, "1.2.0", 3, &[2u8][..]),
        ] {
            let built = demo_image(scratch, version, index, signers)?;
            let out = drive.join(name);
            fs::copy(&built, &out).map_err(FirmwareError::io("writing", &out))?;
            images.push(out);
        }
        let boot = device.start()?;
        Ok(DemoFirmware {
            boot,
            device,
            provisioned,
            images,
        })
    })();
    let _ = fs::remove_dir_all(scratch);
    result
}

/// Builds demo `version` (rollback index `index`) in `scratch`, signed by demo keys `signers`.
fn demo_image(
    scratch: &Path,
    version: &str,
    index: u64,
    signers: &[u8],
) -> Result<PathBuf, FirmwareError> {
    let root = scratch.join(format!("root-{version}"));
    let files: [(&str, String); 3] = [
        (
            "bin/tessera",
            format!(
                "#!/bin/sh\necho 'tessera demo firmware {version} (stands in for the binary)'\n"
            ),
        ),
        ("etc/tessera.toml", "version = 1\n".to_owned()),
        (
            "share/README",
            format!(
                "Tessera terminal {version}, a DEMO image signed with the demo release keys.\n"
            ),
        ),
    ];
    for (path, text) in &files {
        let file = root.join(path);
        let dir = file.parent().expect("a file in a directory");
        fs::create_dir_all(dir).map_err(FirmwareError::io("creating", dir))?;
        fs::write(&file, text).map_err(FirmwareError::io("writing", &file))?;
    }
    // The program is executable, as the launcher requires of what it starts.
    let program = root.join("bin/tessera");
    fs::set_permissions(&program, fs::Permissions::from_mode(0o755))
        .map_err(FirmwareError::io("setting the mode of", &program))?;
    let template = scratch.join(format!("{version}.toml"));
    let text = format!(
        "product = \"tessera-terminal\"\nhardware_id = \"{DEMO_HARDWARE_ID}\"\nversion = \
         \"{version}\"\nrollback_index = {index}\nbuild_time = 1796376600\n"
    );
    fs::write(&template, text).map_err(FirmwareError::io("writing", &template))?;
    let unsigned = scratch.join(format!("{version}.unsigned.tsfw"));
    build_image(&root, &template, 0, &unsigned)?;
    let digest = manifest_digest(&read_unverified(&unsigned)?.manifest);
    let signatures: Vec<ReleaseSignature> = signers
        .iter()
        .map(|&i| {
            let key = demo_key(i);
            ReleaseSignature {
                key: key.verifying_key().to_bytes(),
                signature: key.sign(&signed_message(&digest)).to_bytes(),
            }
        })
        .collect();
    let signed = scratch.join(format!("{version}.tsfw"));
    write_signed(&unsigned, &signatures, &signed)?;
    Ok(signed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Refusal;

    #[test]
    fn the_demo_update_verifies_and_installs_and_the_other_is_refused_for_its_signatures() {
        let dir = tempfile::tempdir().unwrap();
        let (root, drive) = (dir.path().join("device"), dir.path().join("drive"));
        let demo = prepare(&root, &drive, &dir.path().join("scratch")).unwrap();
        assert!(demo.provisioned);
        assert!(!dir.path().join("scratch").exists());
        let update = demo.device.verify(&drive.join(DEMO_UPDATE)).unwrap();
        assert!(update.report.passed(), "{}", update.report);
        let refused = demo.device.verify(&drive.join(DEMO_REFUSED)).unwrap();
        assert!(matches!(
            refused.report.first_refusal(),
            Some(Refusal::TooFewSignatures { .. })
        ));
        demo.device.install(&drive.join(DEMO_UPDATE)).unwrap();

        // A second run keeps the device as it is, and starts the update on trial.
        let again = prepare(&root, &drive, &dir.path().join("scratch")).unwrap();
        assert!(!again.provisioned);
        assert!(again.boot.trial);
        assert_eq!(again.boot.slot, crate::Slot::B);
        assert_eq!(again.device.status().unwrap().pending, Some(crate::Slot::B));
    }
}
