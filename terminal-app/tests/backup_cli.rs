//! `tessera backup list`, `verify` and `clean`, the real binary, offline: the header facts of
//! the backups in a directory or on a FAT image (`--fat-device`), leftovers of broken-off
//! writes listed apart and removed only by `clean`, and the exit codes of a verification (0
//! verified, 1 rejected, 2 unreadable or no key).

use std::path::Path;
use std::process::{Command, Output};

use usb_backup::drive::BackupName;
use usb_backup::{BackupFacts, BackupWriter, Recipients};

fn tessera(args: &[&str], state: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["--state-dir"])
        .arg(state)
        .args(args)
        .env_remove("TESSERA_CONFIG")
        .output()
        .unwrap()
}

use hex::encode as hex;

#[test]
fn list_shows_header_facts_and_verify_exits_by_what_it_found() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let drive = dir.path().join("drive");
    std::fs::create_dir(&drive).unwrap();
    let signer = ed25519_dalek::SigningKey::from_bytes(&[0x42; 32]);
    let facts = BackupFacts {
        partition_id: "bank-1".into(),
        partition_name: "Bank payments".into(),
        hsm_id: [1; 32],
        created: 1_796_000_000,
        sequence: 42,
        object_count: 3,
        plaintext_len: 200_000,
        chunk_size: usb_backup::container::MIN_CHUNK_SIZE,
    };
    let hsm_backup = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from([9; 32]));
    let recipients = Recipients::new(
        hsm_backup.to_bytes(),
        &usb_backup::fuzzing::quorum_public_key(),
    )
    .unwrap();
    let mut writer = BackupWriter::new(Vec::new(), facts.clone(), &recipients, &signer).unwrap();
    writer.write_plaintext(&vec![7; 200_000]).unwrap();
    let (bytes, _) = writer.finish().unwrap();
    let file = drive.join(BackupName::of(&facts).file_name());
    std::fs::write(&file, &bytes).unwrap();
    let key = hex(signer.verifying_key().as_bytes());

    let out = tessera(&["backup", "list", drive.to_str().unwrap()], &state);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("partition bank-1 (Bank payments)"), "{text}");
    assert!(text.contains("sequence 42"), "{text}");
    assert!(text.contains("3 objects"), "{text}");

    let verify = |path: &Path, key: &str| {
        tessera(
            &["backup", "verify", path.to_str().unwrap(), "--key", key],
            &state,
        )
    };
    let ok = verify(&file, &key);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("verified"));

    let mut flipped = bytes.clone();
    flipped[bytes.len() / 2] ^= 1;
    let bad = dir.path().join("flipped");
    std::fs::write(&bad, &flipped).unwrap();
    let out = verify(&bad, &key);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("chunk"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cut = dir.path().join("cut");
    std::fs::write(&cut, &bytes[..bytes.len() - 1]).unwrap();
    assert_eq!(verify(&cut, &key).status.code(), Some(1));
    let other = hex(ed25519_dalek::SigningKey::from_bytes(&[1; 32])
        .verifying_key()
        .as_bytes());
    assert_eq!(verify(&file, &other).status.code(), Some(1));
    assert_eq!(
        verify(&dir.path().join("missing"), &key).status.code(),
        Some(2)
    );

    // A write that broke off: listed as incomplete, never as a backup, and gone only when
    // `clean` is asked.
    let mut later = facts.clone();
    later.sequence = 43;
    let partial = drive.join(BackupName::of(&later).partial_name());
    std::fs::write(&partial, &bytes[..bytes.len() / 3]).unwrap();
    let out = tessera(&["backup", "list", drive.to_str().unwrap()], &state);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("1 backups on"), "{text}");
    assert!(text.contains("INCOMPLETE"), "{text}");
    assert_eq!(verify(&partial, &key).status.code(), Some(1));
    // A write killed after its last byte, before the rename, leaves a whole `.partial`: still no
    // backup, refused by its name.
    let mut whole = facts.clone();
    whole.sequence = 44;
    let whole = drive.join(BackupName::of(&whole).partial_name());
    std::fs::write(&whole, &bytes).unwrap();
    let out = verify(&whole, &key);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("leftover of a write that never finished"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = tessera(&["backup", "clean", drive.to_str().unwrap()], &state);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!partial.exists() && !whole.exists() && file.exists());

    // The same file on a FAT image made by mkfs.vfat, read in user space.
    let image = dir.path().join("drive.img");
    let made = Command::new("mkfs.vfat")
        .args(["-F", "32", "-C"])
        .arg(&image)
        .arg("34000")
        .output()
        .expect("mkfs.vfat (Debian dosfstools)");
    assert!(made.status.success());
    let name = BackupName::of(&facts).file_name();
    let copied = Command::new("mcopy")
        .arg("-i")
        .arg(&image)
        .arg(&file)
        .arg(format!("::{name}"))
        .output()
        .expect("mcopy (Debian mtools)");
    assert!(copied.status.success());
    let img = image.to_str().unwrap();
    let out = tessera(&["backup", "list", "--fat-device", img], &state);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("partition bank-1 (Bank payments)"), "{text}");
    let out = tessera(
        &[
            "backup",
            "verify",
            "--fat-device",
            img,
            &name,
            "--key",
            &key,
        ],
        &state,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A damaged image: a clear error, exit code 2, never a crash.
    let mut damaged = std::fs::read(&image).unwrap();
    damaged[11..13].copy_from_slice(&[0, 0]); // bytes per sector: 0
    std::fs::write(&image, &damaged).unwrap();
    let out = tessera(&["backup", "list", "--fat-device", img], &state);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("FAT"), "{err}");
    assert!(out.status.code().is_some_and(|c| c < 100), "{err}");
}
