//! The share object and soft card header fuzz targets' bodies over their corpora, on stable, so
//! CI exercises what `cargo fuzz` runs on nightly; plus truncations, bit flips and
//! pseudo-random inputs.
//!
//! The seeds are made by the `write_seed_corpus_*` tests below (ignored; run them with
//! `--ignored` to regenerate them after a format change).

use std::path::Path;

use quorum::card::{
    MAX_SHARE_OBJECT_LEN, SET_NUMBER_NOT_RECORDED, SHARE_CONTAINER_MAGIC, ShareObject,
};
use quorum::envelope::{MAX_ENVELOPE_LEN, ShareContext, seal_share};
use quorum::fuzzing::{DUMMY_CARD_SECRET, dummy_context, share_object, soft_card_header};
use quorum::secret::{RecoverySecret, split};
use quorum::{Argon2Params, CardPolicy, Pin, SoftCard};
use x25519_dalek::{PublicKey, StaticSecret};

use tessera_tests::corpus::{corpus_dir, mutate_seeds, run_corpus, xorshift};

// --- share_object ---

#[test]
fn the_share_object_target_survives_its_corpus() {
    run_corpus("share_object", share_object, 30, 8);
}

#[test]
fn truncations_and_bit_flips_of_the_share_object_seeds_are_survived() {
    mutate_seeds("share_object", share_object, MAX_SHARE_OBJECT_LEN + 1, 1);
}

#[test]
fn pseudo_random_share_objects_are_survived() {
    // Containers with random entry heads and lengths, so that most reach the entry loop.
    let mut next = xorshift(0x2545_f491_4f6c_dd1d);
    for round in 0..4_000 {
        let len = (next() % 600) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if round % 2 == 0 && len >= 6 {
            bytes[..4].copy_from_slice(&SHARE_CONTAINER_MAGIC);
            bytes[4] = 1;
            bytes[5] = (next() % 3) as u8;
            if len >= 12 {
                // The first entry's length, within what is left.
                let entry_len = (next() % (len as u64 - 11)) as u16;
                bytes[10..12].copy_from_slice(&entry_len.to_be_bytes());
            }
        }
        share_object(&bytes);
    }
}

#[test]
fn a_lone_unrecorded_entry_that_is_not_an_envelope_stays_in_its_container() {
    // Found by the share_object target: such an entry used to be written bare, and the bare
    // bytes did not parse back (a corrupt card's object, rewritten by retain_share, became
    // unreadable). It is now written as a container and round-trips.
    let mut container = SHARE_CONTAINER_MAGIC.to_vec();
    container.extend_from_slice(&[1, 1]);
    container.extend_from_slice(&SET_NUMBER_NOT_RECORDED.to_be_bytes());
    container.extend_from_slice(&3u16.to_be_bytes());
    container.extend_from_slice(b"abc");
    let object = ShareObject::parse(&container).unwrap();
    let encoded = object.encode().unwrap();
    assert_eq!(encoded, container);
    assert_eq!(ShareObject::parse(&encoded).unwrap(), object);
    assert!(share_object(&container));
}

fn card_public() -> [u8; 32] {
    PublicKey::from(&StaticSecret::from(DUMMY_CARD_SECRET)).to_bytes()
}

#[test]
#[ignore = "writes the seed corpus; run with --ignored after a format change"]
fn write_seed_corpus_share_object() {
    let dir = corpus_dir("share_object");
    std::fs::create_dir_all(&dir).unwrap();
    let secret = RecoverySecret::generate().unwrap();
    let (shares, _) = split(&secret, 2, 3).unwrap();
    let ctx = |set_number| ShareContext {
        set_number,
        ..dummy_context()
    };
    let envelope_1 = seal_share(&card_public(), &ctx(1), &shares[0]).unwrap();
    let envelope_2 = seal_share(&card_public(), &ctx(2), &shares[0]).unwrap();
    let envelope_3 = seal_share(&card_public(), &ctx(3), &shares[0]).unwrap();

    let object = |steps: &[(u32, &Vec<u8>)]| {
        let mut object = ShareObject::default();
        for (set, envelope) in steps {
            object.insert(*set, (*envelope).clone());
        }
        object.encode().unwrap()
    };
    let one = object(&[(1, &envelope_1)]);
    let two = object(&[(1, &envelope_1), (2, &envelope_2)]);
    let replaced = object(&[(1, &envelope_1), (2, &envelope_2), (3, &envelope_3)]);
    let bare_then_new = {
        let mut object = ShareObject::parse(&envelope_1).unwrap();
        object.insert(2, envelope_2.clone());
        object.encode().unwrap()
    };
    let with = |base: &[u8], f: &dyn Fn(&mut Vec<u8>)| {
        let mut v = base.to_vec();
        f(&mut v);
        v
    };
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        ("seed-empty", Vec::new()),
        ("seed-bare-envelope", envelope_1.clone()),
        ("seed-container-one", one.clone()),
        ("seed-container-two", two.clone()),
        ("seed-container-replaced", replaced),
        ("seed-container-bare-then-new", bare_then_new.clone()),
        ("seed-magic-only", SHARE_CONTAINER_MAGIC.to_vec()),
        ("seed-header-only", with(&one, &|v| v.truncate(6))),
        (
            "seed-truncated-entry",
            with(&two, &|v| v.truncate(v.len() - 1)),
        ),
        ("seed-trailing-byte", with(&two, &|v| v.push(0))),
        ("seed-bad-version", with(&two, &|v| v[4] = 2)),
        ("seed-count-zero", with(&one, &|v| v[5] = 0)),
        ("seed-count-three", with(&two, &|v| v[5] = 3)),
        ("seed-count-two-one-entry", with(&one, &|v| v[5] = 2)),
        ("seed-entry-length-zero", with(&one, &|v| v[10..12].fill(0))),
        (
            "seed-entry-length-too-long",
            with(&one, &|v| {
                v[10..12].copy_from_slice(&(MAX_ENVELOPE_LEN as u16 + 1).to_be_bytes())
            }),
        ),
        (
            "seed-duplicate-set",
            with(&two, &|v| {
                let second = 6 + 6 + envelope_1.len();
                v[second..second + 4].copy_from_slice(&1u32.to_be_bytes());
            }),
        ),
        (
            "seed-container-one-unrecorded",
            with(&one, &|v| v[6..10].fill(0)),
        ),
        (
            "seed-neither",
            with(&one, &|v| v[..4].copy_from_slice(b"TSSX")),
        ),
        (
            "seed-bare-oversize",
            with(&envelope_1, &|v| v.resize(MAX_SHARE_OBJECT_LEN + 1, 0xaa)),
        ),
        (
            "seed-bare-largest",
            with(&envelope_1, &|v| v.resize(MAX_SHARE_OBJECT_LEN, 0xaa)),
        ),
    ];
    for (name, bytes) in seeds {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

// --- soft_card_header ---

#[test]
fn the_soft_card_header_target_survives_its_corpus() {
    run_corpus("soft_card_header", soft_card_header, 60, 6);
}

#[test]
fn truncations_and_bit_flips_of_the_soft_card_header_seeds_are_survived() {
    mutate_seeds("soft_card_header", soft_card_header, 1024, 1);
}

#[test]
fn pseudo_random_soft_card_headers_are_survived() {
    // Half the inputs carry the magic, version and flags, so they reach the fields.
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
    for round in 0..4_000 {
        let len = (next() % 300) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if round % 2 == 0 && len >= 6 {
            bytes[..6].copy_from_slice(b"TSSC\x01\x01");
        }
        soft_card_header(&bytes);
    }
}

fn create_card(dir: &Path, name: &str, holder: Option<&str>, serial: &str) -> Vec<u8> {
    let path = dir.join(name);
    SoftCard::create(
        &path,
        holder,
        serial,
        &Pin::from_slice(b"correct horse battery"),
        Argon2Params::insecure_for_tests(),
        CardPolicy::allowed_by_configuration(),
    )
    .unwrap();
    std::fs::read(&path).unwrap()
}

#[test]
#[ignore = "writes the seed corpus; run with --ignored after a format change"]
fn write_seed_corpus_soft_card_header() {
    let dir = corpus_dir("soft_card_header");
    std::fs::create_dir_all(&dir).unwrap();
    let cards = tempfile::tempdir().unwrap();
    let ada = create_card(cards.path(), "ada.card", Some("Ada Lovelace"), "TSC-0001");
    let anonymous = create_card(cards.path(), "anon.card", None, "TSC-0002");
    let long = create_card(
        cards.path(),
        "long.card",
        Some(&"Zoë".repeat(16)),
        &"S".repeat(64),
    );
    // The holder's length byte is at 46; the serial's follows the holder.
    let holder_len = usize::from(ada[46]);
    let serial_at = 47 + holder_len;
    let with = |base: &[u8], f: &dyn Fn(&mut Vec<u8>)| {
        let mut v = base.to_vec();
        f(&mut v);
        v
    };
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        ("seed-card", ada.clone()),
        ("seed-card-no-holder", anonymous.clone()),
        ("seed-card-longest-labels", long),
        ("seed-empty", Vec::new()),
        ("seed-magic-only", b"TSSC".to_vec()),
        ("seed-fixed-part-only", ada[..46].to_vec()),
        ("seed-header-only", ada[..serial_at + 1 + 8 + 64].to_vec()),
        ("seed-truncated-key", ada[..serial_at + 1 + 8 + 63].to_vec()),
        (
            "seed-bad-magic",
            with(&ada, &|v| v[..4].copy_from_slice(b"TSSH")),
        ),
        ("seed-bad-version", with(&ada, &|v| v[4] = 2)),
        ("seed-unknown-flag", with(&ada, &|v| v[5] = 0x03)),
        ("seed-production-flags", with(&ada, &|v| v[5] = 0)),
        ("seed-holder-not-utf8", with(&ada, &|v| v[47] = 0xff)),
        ("seed-holder-control", with(&ada, &|v| v[47] = 0x07)),
        ("seed-holder-too-long", with(&ada, &|v| v[46] = 65)),
        ("seed-serial-empty", with(&anonymous, &|v| v[47] = 0)),
        (
            "seed-serial-not-ascii",
            with(&ada, &|v| v[serial_at + 1] = 0xc3),
        ),
        ("seed-serial-too-long", with(&ada, &|v| v[serial_at] = 65)),
        ("seed-huge-argon2", with(&ada, &|v| v[6..18].fill(0xff))),
    ];
    for (name, bytes) in seeds {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}
