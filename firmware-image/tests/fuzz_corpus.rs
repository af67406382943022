//! The firmware fuzz targets' bodies over their corpora, on stable, so CI exercises what
//! `cargo fuzz` runs on nightly; plus truncations, bit flips and pseudo-random inputs.
//!
//! The seeds are made by `write_seed_corpus` below (ignored; run it with `--ignored` to
//! regenerate them after a format change).

#[path = "support/fixtures.rs"]
mod fixtures;

use std::fs;

use ed25519_dalek::{Signer, SigningKey};
use firmware_image::device::Slot;
use firmware_image::device::state::State;
use firmware_image::fuzzing::{
    FUZZ_HARDWARE_ID, firmware_image, firmware_manifest, firmware_state,
};
use firmware_image::keys::{ReleaseSignature, manifest_digest, signed_message};
use firmware_image::manifest::{FileEntry, MANIFEST_MAGIC, Manifest, SemVer};
use tessera_tests::corpus::{corpus_dir, mutate_seeds, run_corpus, xorshift};

#[test]
fn the_manifest_target_survives_its_corpus() {
    run_corpus("firmware_manifest", firmware_manifest, 4, 3);
}

#[test]
fn truncations_and_bit_flips_of_the_manifest_seeds_are_survived() {
    mutate_seeds("firmware_manifest", firmware_manifest, 400, 3);
}

#[test]
fn the_image_target_survives_its_corpus() {
    run_corpus("firmware_image", firmware_image, 2, 1);
}

#[test]
fn truncations_and_bit_flips_of_the_image_seeds_are_survived() {
    mutate_seeds("firmware_image", firmware_image, 600, 1);
}

#[test]
fn the_state_target_survives_its_corpus() {
    run_corpus("firmware_state", firmware_state, 2, 2);
}

#[test]
fn truncations_and_bit_flips_of_the_state_seeds_are_survived() {
    mutate_seeds("firmware_state", firmware_state, 300, 2);
}

#[test]
fn pseudo_random_manifests_are_survived() {
    // A valid head with random file entries, so that most inputs reach the file list.
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
    let head = {
        let mut m = sample_manifest(vec![]);
        m.files.clear();
        let mut bytes = m.encode();
        bytes.truncate(bytes.len() - 4);
        bytes
    };
    for _ in 0..4_000 {
        let mut bytes = head.clone();
        let count = next() % 4;
        bytes.extend_from_slice(&(count as u32).to_be_bytes());
        let len = (next() % 200) as usize;
        bytes.extend((0..len).map(|_| {
            let b = next() as u8;
            if b < 0x80 { b } else { b'/' }
        }));
        firmware_manifest(&bytes);
        firmware_manifest(&bytes[..bytes.len().min(4)]);
    }
    assert!(!firmware_manifest(&MANIFEST_MAGIC));
}

fn file(path: &str, content: &[u8]) -> (FileEntry, Vec<u8>) {
    use sha2::{Digest, Sha512};
    (
        FileEntry {
            path: path.to_owned(),
            executable: path.starts_with("bin/"),
            size: content.len() as u64,
            sha512: Sha512::digest(content).into(),
        },
        content.to_vec(),
    )
}

fn sample_manifest(files: Vec<(FileEntry, Vec<u8>)>) -> Manifest {
    let payload: Vec<u8> = files.iter().flat_map(|(_, c)| c.clone()).collect();
    let entries: Vec<FileEntry> = files.into_iter().map(|(f, _)| f).collect();
    Manifest {
        product: "tessera-terminal".to_owned(),
        hardware_id: FUZZ_HARDWARE_ID.to_owned(),
        version: SemVer {
            major: 1,
            minor: 2,
            patch: 3,
        },
        rollback_index: 2,
        build_time: 1_767_225_600,
        payload_size: payload.len() as u64,
        payload_sha512: firmware_image::manifest::payload_digest(&entries),
        new_key_set: None,
        files: entries,
    }
}

fn signed_image(manifest: &Manifest, payload: &[u8]) -> Vec<u8> {
    let bytes = manifest.encode();
    let key = SigningKey::from_bytes(&[7; 32]);
    let signature = ReleaseSignature {
        key: key.verifying_key().to_bytes(),
        signature: key
            .sign(&signed_message(&manifest_digest(&bytes)))
            .to_bytes(),
    };
    fixtures::assemble(&bytes, payload, &[signature])
}

#[test]
#[ignore = "writes the seed corpus; run with --ignored after a format change"]
fn write_seed_corpus() {
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = corpus_dir(target);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
    };
    let files = vec![
        file("assets/empty", b""),
        file("assets/help/en.txt", b"help\n"),
        file("bin/tessera", b"#!/bin/sh\necho tessera\n"),
        file("etc/tessera.toml", b"version = 1\n"),
    ];
    let payload: Vec<u8> = files.iter().flat_map(|(_, c)| c.clone()).collect();
    let manifest = sample_manifest(files);
    write("firmware_manifest", "four-files", &manifest.encode());
    write(
        "firmware_manifest",
        "no-files",
        &sample_manifest(vec![]).encode(),
    );
    let mut rotating = manifest.clone();
    rotating.new_key_set = Some(fixtures::key_set(2, &[1, 2, 3]));
    write("firmware_manifest", "key-rotation", &rotating.encode());
    let mut escaping = manifest.clone();
    escaping.files[0].path = "../escape".to_owned();
    write("firmware_manifest", "path-escape", &escaping.encode());

    write(
        "firmware_image",
        "signed",
        &signed_image(&manifest, &payload),
    );
    write(
        "firmware_image",
        "unsigned",
        &fixtures::assemble(&manifest.encode(), &payload, &[]),
    );

    let state = |pending| State {
        hardware_id: FUZZ_HARDWARE_ID.to_owned(),
        keys: fixtures::key_set(2, &[1, 2, 3]),
        active: Slot::A,
        pending,
        boot_attempts: u8::from(pending.is_some()),
        rollback_floor: 2,
        manifests: [Some([1; 64]), pending.map(|_| [2; 64])],
    };
    write("firmware_state", "confirmed", &state(None).encode());
    write("firmware_state", "pending", &state(Some(Slot::B)).encode());
}

#[test]
fn the_image_seed_verifies() {
    let seed = fs::read(corpus_dir("firmware_image").join("seed-signed")).unwrap();
    assert!(firmware_image(&seed));
}
