//! Test images: a small terminal root, release keys from fixed seeds, images built with the
//! crate's builder and signed, and hand-assembled images for the attacks the builder would
//! never write. Included with `#[path]` by the tests that need it.

#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signer, SigningKey};
use firmware_image::image::build::build_image;
use firmware_image::image::write_signed;
use firmware_image::keys::{ReleaseSignature, manifest_digest, signed_message};
use firmware_image::{Manifest, ReleaseKeySet, Trust};

pub(crate) const HARDWARE_ID: &str = "tessera-t1";

/// Release key `i` (fixed seed).
pub(crate) fn key(i: u8) -> SigningKey {
    SigningKey::from_bytes(&[i.wrapping_mul(37).wrapping_add(11); 32])
}

pub(crate) fn public(i: u8) -> [u8; 32] {
    key(i).verifying_key().to_bytes()
}

/// A key set of keys `ids` with `threshold`.
pub(crate) fn key_set(threshold: usize, ids: &[u8]) -> ReleaseKeySet {
    ReleaseKeySet::new(threshold, ids.iter().map(|i| public(*i)).collect()).unwrap()
}

/// 2 of keys 1, 2, 3, this hardware, floor `floor`.
pub(crate) fn trust(floor: u64) -> Trust {
    Trust {
        keys: key_set(2, &[1, 2, 3]),
        hardware_id: HARDWARE_ID.to_owned(),
        rollback_floor: floor,
    }
}

/// A terminal root whose files mention `tag`: an executable, assets, a configuration, an
/// empty file.
pub(crate) fn make_root(dir: &Path, tag: &str) {
    fs::create_dir_all(dir.join("bin")).unwrap();
    fs::create_dir_all(dir.join("assets/help")).unwrap();
    fs::create_dir_all(dir.join("etc")).unwrap();
    let bin = dir.join("bin/tessera");
    fs::write(&bin, format!("#!/bin/sh\necho tessera {tag}\n").repeat(8)).unwrap();
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(dir.join("assets/help/en.txt"), format!("help for {tag}\n")).unwrap();
    fs::write(dir.join("etc/tessera.toml"), "version = 1\n").unwrap();
    fs::write(dir.join("assets/empty"), "").unwrap();
}

/// Builds an unsigned image in `work` of a root tagged `tag`, with `extra` template lines.
pub(crate) fn build(work: &Path, name: &str, version: &str, index: u64, extra: &str) -> PathBuf {
    let root = work.join(format!("{name}-root"));
    make_root(&root, name);
    let template = work.join(format!("{name}.toml"));
    fs::write(
        &template,
        format!(
            "product = \"tessera-terminal\"\nhardware_id = \"{HARDWARE_ID}\"\nversion = \
             \"{version}\"\nrollback_index = {index}\nbuild_time = 1767225600\n{extra}"
        ),
    )
    .unwrap();
    let out = work.join(format!("{name}.unsigned.tsfw"));
    build_image(&root, &template, 0, &out).unwrap();
    out
}

/// A release key's signature over `manifest`.
pub(crate) fn signature(manifest: &[u8], i: u8) -> ReleaseSignature {
    let digest = manifest_digest(manifest);
    ReleaseSignature {
        key: public(i),
        signature: key(i).sign(&signed_message(&digest)).to_bytes(),
    }
}

/// `unsigned` signed by keys `ids`, written next to it.
pub(crate) fn sign(unsigned: &Path, ids: &[u8]) -> PathBuf {
    let manifest = firmware_image::image::read_unverified(unsigned)
        .unwrap()
        .manifest;
    let signatures: Vec<_> = ids.iter().map(|i| signature(&manifest, *i)).collect();
    let name = format!(
        "{}.signed-{}.tsfw",
        unsigned.file_stem().unwrap().to_str().unwrap(),
        ids.iter().map(u8::to_string).collect::<Vec<_>>().join("-")
    );
    let out = unsigned.with_file_name(name);
    write_signed(unsigned, &signatures, &out).unwrap();
    out
}

/// A built and signed (keys 1 and 2) image.
pub(crate) fn release(work: &Path, name: &str, version: &str, index: u64, extra: &str) -> PathBuf {
    let unsigned = build(work, name, version, index, extra);
    sign(&unsigned, &[1, 2])
}

/// The container's bytes, assembled by hand (for manifests the builder would refuse).
pub(crate) fn assemble(
    manifest: &[u8],
    payload: &[u8],
    signatures: &[ReleaseSignature],
) -> Vec<u8> {
    let mut out = b"TSFW\x01".to_vec();
    out.extend_from_slice(&(manifest.len() as u32).to_be_bytes());
    out.extend_from_slice(manifest);
    out.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    out.extend_from_slice(payload);
    out.push(signatures.len() as u8);
    for s in signatures {
        out.extend_from_slice(&s.key);
        out.extend_from_slice(&s.signature);
    }
    out
}

/// An image's manifest (parsed) and payload bytes.
pub(crate) fn parts(image: &Path) -> (Manifest, Vec<u8>) {
    let bytes = fs::read(image).unwrap();
    let len = u32::from_be_bytes(bytes[5..9].try_into().unwrap()) as usize;
    let manifest = Manifest::parse(&bytes[9..9 + len]).unwrap();
    let start = 9 + len + 8;
    let payload = bytes[start..start + manifest.payload_size as usize].to_vec();
    (manifest, payload)
}

/// Copies a directory tree (files keep their mode).
pub(crate) fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
