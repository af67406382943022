//! The fuzz target's body over its corpus, on stable, so CI exercises what `cargo fuzz` runs
//! on nightly; plus frames captured from a real session, truncated and bit-flipped.

use std::path::PathBuf;

use hsm_link::frame::{Cobs, Framing, LengthPrefixed, LinkFrame};
use hsm_link::fuzzing::frame_decoders;

fn corpus() -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/frame_decoder");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn the_frame_decoder_target_survives_its_corpus() {
    let files = corpus();
    assert!(
        files.len() >= 10,
        "the corpus shrank to {} files",
        files.len()
    );
    for (path, bytes) in &files {
        // A panic here names the input that broke the decoder.
        let result = std::panic::catch_unwind(|| frame_decoders(bytes));
        assert!(result.is_ok(), "input {} panicked", path.display());
    }
}

#[test]
fn truncations_and_bit_flips_of_the_seeds_are_survived() {
    let seeds = corpus();
    let seeds = seeds.iter().filter(|(path, _)| {
        path.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("seed-"))
    });
    for (_, bytes) in seeds {
        for cut in 0..bytes.len() {
            frame_decoders(&bytes[..cut]);
        }
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            frame_decoders(&flipped);
        }
    }
}

#[test]
fn pseudo_random_inputs_are_survived() {
    // A fixed xorshift stream: reproducible, and broader than the hand-made seeds.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
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
    for (_, bytes) in corpus() {
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
