//! Bodies of the fuzz targets, shared by `cargo fuzz` (in `fuzz/`) and the ordinary corpus
//! test `quorum/tests/fuzz_corpus.rs`, so that CI exercises them on the stable toolchain.

use hsm_link::domain::PartitionId;

use crate::envelope::{EnvelopeHeader, ShareContext, open_share_with_x25519};

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
