//! Adversarial images, each named by its attack, each refused with that reason named — by the
//! verifier, and by the installer without touching the device.
//!
//! The images are committed in `tests/data/attacks/<attack>.tsfw` (with `good.tsfw`, which
//! passes); they are made by `attacks` below from fixed keys and a fixed build time, so
//! `the_committed_fixtures_are_what_the_generator_makes` checks them byte for byte, and
//! `write_fixtures` (ignored) writes them again after a format change. Trust: release keys from
//! the seeds in `support/fixtures.rs` (2 of keys 1, 2, 3), hardware id `tessera-t1`, floor 2.

#[path = "support/fixtures.rs"]
mod fixtures;

use std::fs;
use std::path::{Path, PathBuf};

use firmware_image::image::verify::{Check, Outcome, verify_file, verify_reader};
use firmware_image::{Device, Refusal};
use fixtures::*;

/// Writes `bytes` as `<attack>.tsfw`.
fn fixture(work: &Path, attack: &str, bytes: &[u8]) -> PathBuf {
    let path = work.join(format!("{attack}.tsfw"));
    fs::write(&path, bytes).unwrap();
    path
}

/// A manifest changed by `change`, its payload digest recomputed from `payload`, signed by
/// keys 1 and 2: a validly signed image whose content is the attack.
fn resigned(
    work: &Path,
    attack: &str,
    good: &Path,
    change: impl FnOnce(&mut firmware_image::Manifest, &mut Vec<u8>),
) -> PathBuf {
    let (mut manifest, mut payload) = parts(good);
    change(&mut manifest, &mut payload);
    let bytes = manifest.encode();
    let sigs = [signature(&bytes, 1), signature(&bytes, 2)];
    fixture(work, attack, &assemble(&bytes, &payload, &sigs))
}

/// Every attack: (name, image, the refusal's name).
fn attacks(work: &Path) -> Vec<(&'static str, PathBuf, &'static str)> {
    let good = release(work, "v2", "1.1.0", 2, "");
    let bytes = fs::read(&good).unwrap();
    let (manifest, payload) = parts(&good);
    let manifest_bytes = manifest.encode();
    let mut list = Vec::new();

    let older = release(work, "old", "1.0.0", 1, "");
    list.push(("rollback-index-lower", older, "rollback-index-lower"));

    let other = resigned(work, "wrong-hardware-id", &good, |m, _| {
        m.hardware_id = "tessera-t2".to_owned();
    });
    list.push(("wrong-hardware-id", other, "wrong-hardware-id"));

    let one = assemble(&manifest_bytes, &payload, &[signature(&manifest_bytes, 1)]);
    list.push((
        "one-signature-of-two",
        fixture(work, "one-signature-of-two", &one),
        "too-few-signatures",
    ));

    let twice = assemble(
        &manifest_bytes,
        &payload,
        &[signature(&manifest_bytes, 1), signature(&manifest_bytes, 1)],
    );
    list.push((
        "same-key-twice",
        fixture(work, "same-key-twice", &twice),
        "same-key-twice",
    ));

    let unknown = assemble(
        &manifest_bytes,
        &payload,
        &[signature(&manifest_bytes, 1), signature(&manifest_bytes, 9)],
    );
    list.push((
        "unknown-key",
        fixture(work, "unknown-key", &unknown),
        "unknown-key",
    ));

    let mut forged = signature(&manifest_bytes, 2);
    forged.signature[10] ^= 1;
    let bad = assemble(
        &manifest_bytes,
        &payload,
        &[signature(&manifest_bytes, 1), forged],
    );
    list.push((
        "bad-signature",
        fixture(work, "bad-signature", &bad),
        "bad-signature",
    ));

    let mut flipped = bytes.clone();
    let payload_start = 9 + manifest_bytes.len() + 8;
    flipped[payload_start + 100] ^= 0x20;
    list.push((
        "payload-byte-flipped",
        fixture(work, "payload-byte-flipped", &flipped),
        "payload-digest-mismatch",
    ));

    // The payload's digest is right and signed, but a file's digest in the manifest is not
    // that file's: caught by the file check.
    let mismatch = resigned(work, "manifest-digest-mismatch", &good, |m, _| {
        m.files[0].sha512[0] ^= 1;
    });
    list.push((
        "manifest-digest-mismatch",
        mismatch,
        "manifest-digest-mismatch",
    ));

    let escape = resigned(work, "path-escape", &good, |m, _| {
        m.files[0].path = "../../etc/shadow".to_owned();
    });
    list.push(("path-escape", escape, "path-escape"));

    let mut oversize = bytes.clone();
    oversize[5..9].copy_from_slice(&u32::MAX.to_be_bytes());
    list.push((
        "oversize-length",
        fixture(work, "oversize-length", &oversize),
        "oversize-length",
    ));

    let mut oversize_payload = bytes.clone();
    let at = 9 + manifest_bytes.len();
    oversize_payload[at..at + 8].copy_from_slice(&u64::MAX.to_be_bytes());
    list.push((
        "oversize-payload-length",
        fixture(work, "oversize-payload-length", &oversize_payload),
        "oversize-length",
    ));

    let truncated = &bytes[..payload_start + payload.len() / 2];
    list.push((
        "truncated",
        fixture(work, "truncated", truncated),
        "truncated",
    ));

    let mut trailing = bytes.clone();
    trailing.push(0);
    list.push((
        "trailing-bytes",
        fixture(work, "trailing-bytes", &trailing),
        "trailing-bytes",
    ));

    let resized = resigned(work, "payload-size", &good, |_, p| p.push(b'!'));
    list.push(("payload-size", resized, "payload-size"));

    list.push(("good", good, ""));
    list
}

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/attacks")
}

/// The committed fixtures: (attack, path, the refusal's name).
fn committed() -> Vec<(&'static str, PathBuf, &'static str)> {
    let work = tempfile::tempdir().unwrap();
    attacks(work.path())
        .into_iter()
        .map(|(attack, _, reason)| (attack, data_dir().join(format!("{attack}.tsfw")), reason))
        .collect()
}

#[test]
#[ignore = "writes tests/data/attacks; run with --ignored after a format change"]
fn write_fixtures() {
    let work = tempfile::tempdir().unwrap();
    fs::create_dir_all(data_dir()).unwrap();
    for (attack, image, _) in attacks(work.path()) {
        fs::copy(&image, data_dir().join(format!("{attack}.tsfw"))).unwrap();
    }
}

#[test]
fn the_committed_fixtures_are_what_the_generator_makes() {
    let work = tempfile::tempdir().unwrap();
    let made = attacks(work.path());
    assert!(made.len() >= 14);
    for (attack, image, _) in made {
        let committed = fs::read(data_dir().join(format!("{attack}.tsfw")))
            .unwrap_or_else(|e| panic!("{attack}: {e}; run write_fixtures"));
        assert!(
            committed == fs::read(&image).unwrap(),
            "{attack} differs: run write_fixtures"
        );
    }
}

#[test]
fn each_attack_is_refused_with_its_reason_named() {
    for (attack, image, reason) in committed() {
        let verification = verify_file(&image, &trust(2)).unwrap();
        if reason.is_empty() {
            assert!(
                verification.report.passed(),
                "{attack}:\n{}",
                verification.report
            );
            continue;
        }
        assert!(!verification.report.passed(), "{attack} passed");
        let refusal = verification.report.first_refusal().unwrap().clone();
        assert_eq!(refusal.name(), reason, "{attack}: {refusal}");
        let text = verification.report.to_string();
        assert!(text.contains(&format!("[{reason}]")), "{attack}:\n{text}");
        let err = verification.into_result().unwrap_err();
        assert_eq!(err.refusal(), Some(&refusal));
    }
}

#[test]
fn the_parallel_and_the_streaming_verifier_report_the_same() {
    for (attack, image, _) in committed() {
        let parallel = verify_file(&image, &trust(2)).unwrap().report;
        let streamed = verify_reader(fs::File::open(&image).unwrap(), &trust(2))
            .unwrap()
            .report;
        assert_eq!(parallel, streamed, "{attack}");
    }
}

#[test]
fn the_report_names_each_failure_and_still_runs_the_other_checks() {
    let work = tempfile::tempdir().unwrap();
    let all = committed();
    let image = &all.iter().find(|a| a.0 == "wrong-hardware-id").unwrap().1;
    let report = verify_file(image, &trust(2)).unwrap().report;
    assert!(matches!(
        report.outcome(Check::Signatures),
        Some(Outcome::Passed(_))
    ));
    assert!(matches!(
        report.outcome(Check::Payload),
        Some(Outcome::Passed(_))
    ));
    assert!(matches!(
        report.outcome(Check::HardwareId),
        Some(Outcome::Failed(Refusal::WrongHardwareId { .. }))
    ));
    let text = report.to_string();
    assert!(text.contains("\"tessera-t2\""), "{text}");
    assert!(text.contains("\"tessera-t1\""), "{text}");

    // One flipped payload byte: the payload and its file fail; signatures still pass.
    let image = &all
        .iter()
        .find(|a| a.0 == "payload-byte-flipped")
        .unwrap()
        .1;
    let report = verify_file(image, &trust(2)).unwrap().report;
    assert!(matches!(
        report.outcome(Check::Signatures),
        Some(Outcome::Passed(_))
    ));
    assert_eq!(
        report.outcome(Check::Payload),
        Some(&Outcome::Failed(Refusal::PayloadDigest))
    );
    assert!(matches!(
        report.outcome(Check::Files),
        Some(Outcome::Failed(Refusal::FileDigest { .. }))
    ));

    // A header that is not an image stops everything else.
    let junk = fixture(work.path(), "junk", b"GIF89a and so on");
    let report = verify_file(&junk, &trust(0)).unwrap().report;
    assert_eq!(report.first_refusal().unwrap().name(), "format");
    assert!(
        report.results[1..]
            .iter()
            .all(|(_, o)| matches!(o, Outcome::NotRun(_)))
    );
}

#[test]
fn the_installer_refuses_every_attack_and_leaves_the_device_as_it_was() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("device");
    let first = release(work.path(), "v1", "1.0.0", 1, "");
    let device = Device::provision(&root, HARDWARE_ID, key_set(2, &[1, 2, 3]), &first).unwrap();
    // Floor 2: confirm a 1.1.0 first so that rollback-index-lower is below it.
    let second = release(work.path(), "v2b", "1.1.0", 2, "");
    device.install(&second).unwrap();
    device.start().unwrap();
    device.confirm().unwrap();
    let before = fs::read(root.join("state")).unwrap();
    for (attack, image, reason) in committed() {
        if reason.is_empty() {
            continue;
        }
        let e = device.install(&image).unwrap_err();
        assert_eq!(
            e.refusal().map(Refusal::name),
            Some(reason),
            "{attack}: {e}"
        );
        assert_eq!(
            fs::read(root.join("state")).unwrap(),
            before,
            "{attack} changed the state"
        );
        let boot = device.start().unwrap();
        assert_eq!(boot.manifest.version.to_string(), "1.1.0", "{attack}");
        assert!(!boot.trial);
    }
}
