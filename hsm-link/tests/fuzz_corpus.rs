//! The fuzz target's body over its corpus, on stable, so CI exercises what `cargo fuzz` runs
//! on nightly; plus frames captured from a real session, truncated and bit-flipped.

use hsm_link::frame::{Cobs, Framing, LengthPrefixed, LinkFrame};
use hsm_link::fuzzing::frame_decoders;

use tessera_tests::corpus::{corpus, mutate_seeds, run_corpus, xorshift};

const TARGET: &str = "frame_decoder";

/// The body as the corpus helpers take it (the decoders accept or refuse; neither counts).
fn body(data: &[u8]) -> bool {
    frame_decoders(data);
    true
}

#[test]
fn the_frame_decoder_target_survives_its_corpus() {
    run_corpus(TARGET, body, 10, 0);
}

#[test]
fn truncations_and_bit_flips_of_the_seeds_are_survived() {
    mutate_seeds(TARGET, body, usize::MAX, 1);
}

#[test]
fn pseudo_random_inputs_are_survived() {
    // A fixed xorshift stream: reproducible, and broader than the hand-made seeds.
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
    for _ in 0..2_000 {
        let len = (next() % 600) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        frame_decoders(&bytes);
    }
}

#[test]
fn corpus_frames_that_decode_are_well_formed() {
    // The seeds were written to decode: check the decoders agree, so the corpus keeps
    // exercising the paths past framing instead of failing at the first byte.
    let mut decoded = 0;
    for (_, bytes) in corpus(TARGET) {
        let body = bytes.get(1..).unwrap_or_default();
        let mut lp = LengthPrefixed::new();
        let mut cobs = Cobs::new();
        lp.push(body);
        cobs.push(body);
        while let Ok(Some(frame)) = lp.next_frame() {
            decoded += usize::from(LinkFrame::parse(&frame).is_ok());
        }
        loop {
            match cobs.next_frame() {
                Ok(Some(frame)) => decoded += usize::from(LinkFrame::parse(&frame).is_ok()),
                Ok(None) => break,
                Err(_) => {}
            }
        }
    }
    assert!(decoded >= 6, "only {decoded} corpus frames decode");
}
