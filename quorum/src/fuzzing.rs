//! Bodies of the fuzz targets, shared by `cargo fuzz` (in `fuzz/`) and the ordinary corpus
//! tests `quorum/tests/fuzz_corpus.rs` and `quorum/tests/fuzz_corpus_objects.rs`, so that CI
//! exercises them on the stable toolchain.

use hsm_link::domain::PartitionId;

use crate::card::{
    MAX_SHARE_ENTRIES, MAX_SHARE_OBJECT_LEN, SET_NUMBER_NOT_RECORDED, SHARE_CONTAINER_MAGIC,
    ShareObject,
};
use crate::envelope::{
    ENVELOPE_MAGIC, EnvelopeHeader, MAX_ENVELOPE_LEN, ShareContext, open_share_with_x25519,
};

/// The X25519 secret of the dummy card the fuzz target opens envelopes with. Seeds sealed to its
/// public key (see [`dummy_context`]) open, so the corpus reaches past the parser.
pub const DUMMY_CARD_SECRET: [u8; 32] = [0x42; 32];

/// The context the fuzz target opens envelopes under.
pub fn dummy_context() -> ShareContext {
    ShareContext {
        partition: PartitionId::new("fuzz").unwrap_or_else(|_| unreachable!("a valid id")),
        set_number: 1,
        share_index: 1,
        card_serial: "FUZZ-0001".to_owned(),
    }
}

/// Parses arbitrary bytes as a share envelope and, if they parse, opens them with the dummy
/// card under the dummy context. Must never panic. Returns whether a share came out.
pub fn envelope_parser(data: &[u8]) -> bool {
    let Ok(header) = EnvelopeHeader::parse(data) else {
        return false;
    };
    assert_eq!(header.version(), crate::envelope::ENVELOPE_VERSION_V1);
    match open_share_with_x25519(&header, &DUMMY_CARD_SECRET, &dummy_context()) {
        Ok(share) => {
            assert_eq!(share.index(), 1);
            true
        }
        Err(_) => false,
    }
}

/// Parses arbitrary bytes as a card's share object (see [`ShareObject`]) and checks the
/// invariants of what comes out: at most [`MAX_SHARE_ENTRIES`] entries, nothing over
/// [`MAX_SHARE_OBJECT_LEN`] parses, an encoding parses back to an equal object, and adding a
/// new set's envelope keeps the bounds. Must never panic. Returns whether the bytes parsed.
pub fn share_object(data: &[u8]) -> bool {
    let Ok(object) = ShareObject::parse(data) else {
        return false;
    };
    assert!(
        data.len() <= MAX_SHARE_OBJECT_LEN,
        "{} bytes parsed as a share object",
        data.len()
    );
    let entries = object.entries();
    assert!(
        entries.len() <= MAX_SHARE_ENTRIES,
        "{} entries",
        entries.len()
    );
    assert_eq!(object.is_empty(), data.is_empty());
    for (i, entry) in entries.iter().enumerate() {
        assert!(!entry.envelope.is_empty() && entry.envelope.len() <= MAX_ENVELOPE_LEN);
        assert!(
            entries[..i]
                .iter()
                .all(|e| e.set_number != entry.set_number),
            "two envelopes for set {}",
            entry.set_number
        );
    }
    // Whatever parsed has an envelope to open for every set, unless it is empty.
    for set in [SET_NUMBER_NOT_RECORDED, 1, u32::MAX] {
        assert_eq!(object.envelope_for(set).is_some(), !object.is_empty());
    }
    check_encoding(data, &object);
    check_next_set(&object);
    true
}

/// Whatever parsed encodes (a parsed object is within every bound encoding checks), and the
/// encoding round-trips.
fn check_encoding(data: &[u8], object: &ShareObject) {
    let entries = object.entries();
    let encoded = object
        .encode()
        .unwrap_or_else(|e| panic!("a parsed share object does not encode: {e}"));
    assert!(encoded.len() <= MAX_SHARE_OBJECT_LEN);
    let reparsed = ShareObject::parse(&encoded)
        .unwrap_or_else(|e| panic!("an encoded share object does not parse: {e}"));
    assert_eq!(&reparsed, object, "the encoding does not round-trip");
    // The encoding is a fixed point: encoding again gives the same bytes.
    assert_eq!(reparsed.encode().ok().as_deref(), Some(encoded.as_slice()));
    // Every input is exactly its encoding, except a container of one envelope whose set is
    // not recorded: that one is written as the bare envelope.
    let rewritten_bare = data.starts_with(&SHARE_CONTAINER_MAGIC)
        && matches!(entries, [only] if only.set_number == SET_NUMBER_NOT_RECORDED
            && only.envelope.starts_with(&ENVELOPE_MAGIC));
    if !rewritten_bare {
        assert_eq!(
            encoded, data,
            "a canonical share object re-encodes differently"
        );
    }
}

/// Adding the next set's envelope, as `store_share` does, keeps the bounds, and the new envelope
/// is the one read for that set.
fn check_next_set(object: &ShareObject) {
    let next = object
        .entries()
        .iter()
        .map(|e| e.set_number)
        .max()
        .unwrap_or(0);
    if let Some(next) = next.checked_add(1) {
        let mut updated = object.clone();
        let mut envelope = ENVELOPE_MAGIC.to_vec();
        envelope.resize(98, 0x5a);
        updated.insert(next, envelope.clone());
        assert!(updated.entries().len() <= MAX_SHARE_ENTRIES);
        // The new envelope is the one read for that set.
        assert_eq!(updated.envelope_for(next), Some(envelope.as_slice()));
        // Two entries are always written as a container; it fits unless the kept envelope is
        // longer than any envelope this build seals.
        let container_len: usize = 6 + updated
            .entries()
            .iter()
            .map(|e| 6 + e.envelope.len())
            .sum::<usize>();
        match updated.encode() {
            Ok(encoded) => {
                assert_eq!(encoded.len(), container_len);
                assert_eq!(ShareObject::parse(&encoded).ok(), Some(updated.clone()));
            }
            Err(e) => assert!(container_len > MAX_SHARE_OBJECT_LEN, "{e}"),
        }
        // Retaining the new set leaves that one envelope.
        updated.retain(next);
        assert_eq!(updated.entries().len(), 1);
    }
}

/// Parses arbitrary bytes as a soft card file's header (the part before the ciphertext, see
/// [`crate::soft`]) and checks it: the length returned is within the input, the header's
/// encoding is exactly the bytes parsed (the format is canonical), and a refusal says why.
/// Must never panic. Returns whether a header parsed.
pub fn soft_card_header(data: &[u8]) -> bool {
    crate::soft::fuzz_header(data)
}
