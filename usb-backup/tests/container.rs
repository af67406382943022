//! The container: round trips at the boundaries, both wrappings, and every adversarial fixture
//! named after its attack, each rejected with its reason.

use std::io::{Cursor, Read};

use usb_backup::container::{MIN_CHUNK_SIZE, TAG_LEN, TRAILER_FIXED_LEN};
use usb_backup::fuzzing::TestHsm;
use usb_backup::{
    BackupError, BackupReader, BackupWriter, Part, Rejection, WrittenBackup, seal_pipelined,
    verify_offline,
};

const C: usize = MIN_CHUNK_SIZE as usize;

fn plaintext(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn decrypt_with_hsm(file: &[u8], hsm: &TestHsm) -> Result<Vec<u8>, BackupError> {
    let reader = BackupReader::open(file, &hsm.verifying_key())?;
    let key = reader.header().unwrap_for_hsm(&hsm.backup_secret)?;
    let mut out = Vec::new();
    let mut decrypting = reader.decrypt(key)?;
    decrypting.read_to_end(&mut out).map_err(|e| {
        match e.into_inner().map(|e| e.downcast::<BackupError>()) {
            Some(Ok(e)) => *e,
            _ => panic!("a reading error that is not a BackupError"),
        }
    })?;
    decrypting.finish()?;
    Ok(out)
}

fn rejection(result: Result<impl std::fmt::Debug, BackupError>) -> Rejection {
    match result {
        Err(BackupError::Rejected(r)) => r,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn offline(file: &[u8], hsm: &TestHsm) -> Result<usb_backup::Verified, BackupError> {
    verify_offline(Cursor::new(file), &hsm.verifying_key())
}

#[test]
fn round_trips_at_the_boundaries() {
    let hsm = TestHsm::new(1);
    for len in [0, 1, C - 1, C, 3 * C, 3 * C + 1] {
        let data = plaintext(len, 3);
        let (file, written) = hsm.seal(&data, MIN_CHUNK_SIZE);
        assert_eq!(file.len() as u64, written.file_len(), "{len} bytes");
        let facts = hsm.facts(len as u64, MIN_CHUNK_SIZE);
        assert_eq!(facts.file_len(), written.file_len(), "{len} bytes");
        let chunks = len.div_ceil(C).max(1);
        assert_eq!(written.trailer.chunks, chunks as u64, "{len} bytes");
        let verified = offline(&file, &hsm).unwrap();
        verified.matches(&written).unwrap();
        assert_eq!(decrypt_with_hsm(&file, &hsm).unwrap(), data, "{len} bytes");
    }
}

#[test]
fn the_quorum_opens_what_the_hsm_sealed() {
    let hsm = TestHsm::new(1);
    let data = plaintext(C + 5, 9);
    let (file, _) = hsm.seal(&data, MIN_CHUNK_SIZE);
    let reader = BackupReader::open(file.as_slice(), &hsm.verifying_key()).unwrap();
    reader
        .header()
        .check_quorum_key(&hsm.quorum_public())
        .unwrap();
    let key = reader.header().unwrap_for_quorum(&hsm.quorum_seed).unwrap();
    let mut out = Vec::new();
    reader.decrypt(key).unwrap().read_to_end(&mut out).unwrap();
    assert_eq!(out, data);
}

#[test]
fn the_pipeline_writes_what_the_simple_writer_writes() {
    let hsm = TestHsm::new(1);
    for len in [0, C, 7 * C + 1] {
        let data = plaintext(len, 1);
        let facts = hsm.facts(len as u64, MIN_CHUNK_SIZE);
        let (file, written) = seal_pipelined(
            data.as_slice(),
            Vec::new(),
            facts,
            &hsm.recipients(),
            &hsm.signing,
        )
        .unwrap();
        offline(&file, &hsm).unwrap().matches(&written).unwrap();
        assert_eq!(decrypt_with_hsm(&file, &hsm).unwrap(), data);
        let (simple, _) = hsm.seal(&data, MIN_CHUNK_SIZE);
        assert_eq!(simple.len(), file.len());
    }
}

#[test]
fn a_source_of_the_wrong_length_writes_no_trailer() {
    let hsm = TestHsm::new(1);
    let data = plaintext(2 * C, 1);
    let short = seal_pipelined(
        &data[..C],
        Vec::new(),
        hsm.facts(data.len() as u64, MIN_CHUNK_SIZE),
        &hsm.recipients(),
        &hsm.signing,
    );
    assert!(
        matches!(short, Err(BackupError::PlaintextLength { .. })),
        "{short:?}"
    );
    let long = seal_pipelined(
        data.as_slice(),
        Vec::new(),
        hsm.facts(C as u64, MIN_CHUNK_SIZE),
        &hsm.recipients(),
        &hsm.signing,
    );
    assert!(
        matches!(long, Err(BackupError::PlaintextLength { .. })),
        "{long:?}"
    );
    let mut writer = BackupWriter::new(
        Vec::new(),
        hsm.facts(10, MIN_CHUNK_SIZE),
        &hsm.recipients(),
        &hsm.signing,
    )
    .unwrap();
    assert!(writer.write_plaintext(&[0; 11]).is_err());
    writer.write_plaintext(&[0; 9]).unwrap();
    assert!(matches!(
        writer.finish(),
        Err(BackupError::PlaintextLength {
            expected: 10,
            given: 9
        })
    ));
}

/// Offsets of the parts of a backup of `len` bytes with the smallest chunks.
struct Map {
    header: usize,
    chunks: usize,
    table: usize,
    fixed: usize,
}

fn map(written: &WrittenBackup) -> Map {
    let layout = written.header.layout();
    Map {
        header: layout.header_len as usize,
        chunks: layout.chunks as usize,
        table: layout.table_offset() as usize,
        fixed: layout.trailer_fixed_offset() as usize,
    }
}

fn chunk_range(m: &Map, i: usize) -> std::ops::Range<usize> {
    let start = m.header + i * (C + TAG_LEN);
    start..start + C + TAG_LEN
}

fn flip(mut file: Vec<u8>, byte: usize) -> Vec<u8> {
    file[byte] ^= 0x10;
    file
}

/// Three full chunks and one of 100 bytes.
fn sample(hsm: &TestHsm, seed: u8) -> (Vec<u8>, WrittenBackup) {
    hsm.seal(&plaintext(3 * C + 100, seed), MIN_CHUNK_SIZE)
}

#[test]
fn truncated_last_chunk() {
    let hsm = TestHsm::new(1);
    let (file, written) = sample(&hsm, 1);
    let m = map(&written);
    let cut = &file[..m.table - 50];
    assert_eq!(
        rejection(offline(cut, &hsm)),
        Rejection::Truncated {
            expected: file.len() as u64,
            found: cut.len() as u64,
            part: Part::Chunk(m.chunks as u64 - 1)
        }
    );
    assert!(matches!(
        rejection(decrypt_with_hsm(cut, &hsm)),
        Rejection::Truncated {
            part: Part::Chunk(3),
            ..
        }
    ));
}

#[test]
fn truncated_trailer_and_writer_dropped_without_finish() {
    let hsm = TestHsm::new(1);
    let (file, _) = sample(&hsm, 1);
    let cut = &file[..file.len() - 1];
    assert!(matches!(
        rejection(offline(cut, &hsm)),
        Rejection::Truncated {
            part: Part::Trailer,
            ..
        }
    ));
    assert!(matches!(
        rejection(decrypt_with_hsm(cut, &hsm)),
        Rejection::Truncated {
            part: Part::Trailer,
            ..
        }
    ));

    let mut sink = Vec::new();
    {
        let mut writer = BackupWriter::new(
            &mut sink,
            hsm.facts(3 * C as u64, MIN_CHUNK_SIZE),
            &hsm.recipients(),
            &hsm.signing,
        )
        .unwrap();
        writer.write_plaintext(&plaintext(3 * C, 1)).unwrap();
        // dropped here, without finish
    }
    assert!(matches!(
        rejection(offline(&sink, &hsm)),
        Rejection::Truncated { .. }
    ));
    assert!(matches!(
        rejection(decrypt_with_hsm(&sink, &hsm)),
        Rejection::Truncated { .. }
    ));
}

#[test]
fn swapped_chunks() {
    let hsm = TestHsm::new(1);
    let (file, written) = sample(&hsm, 1);
    let m = map(&written);
    let mut swapped = file.clone();
    let (a, b) = (chunk_range(&m, 0), chunk_range(&m, 1));
    swapped[a.clone()].copy_from_slice(&file[b.clone()]);
    swapped[b].copy_from_slice(&file[a]);
    assert_eq!(
        rejection(offline(&swapped, &hsm)),
        Rejection::ChunksReordered {
            position: 0,
            found: 1
        }
    );
    assert_eq!(
        rejection(decrypt_with_hsm(&swapped, &hsm)),
        Rejection::ChunkAuthentication { index: 0 }
    );
}

#[test]
fn header_from_other_backup() {
    let hsm = TestHsm::new(1);
    let (a, written) = sample(&hsm, 1);
    let (b, _) = sample(&hsm, 2);
    let m = map(&written);
    let mut mixed = a.clone();
    mixed[..m.header].copy_from_slice(&b[..m.header]);
    assert_eq!(
        rejection(offline(&mixed, &hsm)),
        Rejection::HeaderFromOtherBackup
    );
    assert_eq!(
        rejection(decrypt_with_hsm(&mixed, &hsm)),
        Rejection::ChunkAuthentication { index: 0 }
    );
}

#[test]
fn trailer_from_other_backup() {
    let hsm = TestHsm::new(1);
    let (a, written) = sample(&hsm, 1);
    let (b, _) = sample(&hsm, 2);
    let m = map(&written);
    let mut mixed = a.clone();
    mixed[m.table..].copy_from_slice(&b[m.table..]);
    assert_eq!(
        rejection(offline(&mixed, &hsm)),
        Rejection::TrailerFromOtherBackup
    );
    assert_eq!(
        rejection(decrypt_with_hsm(&mixed, &hsm)),
        Rejection::TrailerFromOtherBackup
    );
}

#[test]
fn wrong_hsm() {
    let ours = TestHsm::new(1);
    let theirs = TestHsm::new(2);
    let (file, _) = sample(&theirs, 1);
    assert!(matches!(
        rejection(offline(&file, &ours)),
        Rejection::WrongHsm { .. }
    ));
    assert!(matches!(
        rejection(decrypt_with_hsm(&file, &ours)),
        Rejection::WrongHsm { .. }
    ));
    // Even with the signer pinned, our backup key does not open their backup.
    let reader = BackupReader::open(file.as_slice(), &theirs.verifying_key()).unwrap();
    assert!(matches!(
        rejection(reader.header().unwrap_for_hsm(&ours.backup_secret)),
        Rejection::WrongHsm { .. }
    ));
    // A trailer re-signed by another HSM over our backup fails the signature.
    let (mine, written) = sample(&ours, 1);
    let m = map(&written);
    let (other, _) = sample(&theirs, 1);
    let mut resigned = mine.clone();
    resigned[m.fixed + 96..].copy_from_slice(&other[m.fixed + 96..]);
    assert_eq!(
        rejection(offline(&resigned, &ours)),
        Rejection::TrailerSignature
    );
}

#[test]
fn wrong_quorum() {
    let hsm = TestHsm::new(1);
    let (file, _) = sample(&hsm, 1);
    let reader = BackupReader::open(file.as_slice(), &hsm.verifying_key()).unwrap();
    let other = TestHsm::new(2);
    assert_eq!(
        reader.header().check_quorum_key(&other.quorum_public()),
        Err(Rejection::WrongQuorum)
    );
    assert_eq!(
        rejection(reader.header().unwrap_for_quorum(&other.quorum_seed)),
        Rejection::WrongQuorum
    );
}

#[test]
fn flipped_bit_anywhere_is_named() {
    let hsm = TestHsm::new(1);
    let (file, written) = sample(&hsm, 1);
    let m = map(&written);
    let name_at = 14 + 16 + 1 + "test-partition".len() + 1; // first byte of the partition name
    let cases: Vec<(&str, usize, Rejection)> = vec![
        ("flipped-bit-magic", 0, Rejection::BadMagic),
        (
            "flipped-bit-version",
            8,
            Rejection::UnsupportedVersion { found: 17 },
        ),
        ("flipped-bit-header-name", name_at, Rejection::HeaderAltered),
        (
            "flipped-bit-header-sequence",
            m.header - 1169 - 32 - 80 - 32 - 7 - 4 - 8 * 3,
            Rejection::HeaderAltered,
        ),
        (
            "flipped-bit-hsm-wrapped-key",
            m.header - 1169 - 32 - 40,
            Rejection::HeaderAltered,
        ),
        (
            "flipped-bit-chunk",
            chunk_range(&m, 1).start + 1000,
            Rejection::ChunkAltered { index: 1 },
        ),
        (
            "flipped-bit-tag",
            chunk_range(&m, 2).end - 1,
            Rejection::ChunkAltered { index: 2 },
        ),
        (
            "flipped-bit-last-chunk",
            m.table - 1,
            Rejection::ChunkAltered { index: 3 },
        ),
        (
            "flipped-bit-digest-table",
            m.table + 40,
            Rejection::TrailerAltered,
        ),
        (
            "flipped-bit-trailer-magic",
            m.fixed,
            Rejection::BadTrailerMagic,
        ),
        (
            "flipped-bit-trailer-header-hash",
            m.fixed + 30,
            Rejection::TrailerSignature,
        ),
        (
            "flipped-bit-trailer-chain",
            m.fixed + 70,
            Rejection::TrailerSignature,
        ),
        (
            "flipped-bit-signature",
            file.len() - 1,
            Rejection::TrailerSignature,
        ),
    ];
    for (name, byte, expected) in cases {
        let bad = flip(file.clone(), byte);
        assert_eq!(rejection(offline(&bad, &hsm)), expected, "{name}");
        assert!(decrypt_with_hsm(&bad, &hsm).is_err(), "{name} decrypts");
    }
    // With the key, a flipped body bit is caught by GCM at its chunk.
    let bad = flip(file.clone(), chunk_range(&m, 1).start + 1000);
    assert_eq!(
        rejection(decrypt_with_hsm(&bad, &hsm)),
        Rejection::ChunkAuthentication { index: 1 }
    );
    // A flipped wrapped key does not open.
    let bad = flip(file.clone(), m.header - 1169 - 32 - 40);
    let reader = BackupReader::open(bad.as_slice(), &hsm.verifying_key()).unwrap();
    assert_eq!(
        rejection(reader.header().unwrap_for_hsm(&hsm.backup_secret)),
        Rejection::Unwrap {
            recipient: "HSM backup key"
        }
    );
    let extra = [file.as_slice(), &[0]].concat();
    assert_eq!(
        rejection(offline(&extra, &hsm)),
        Rejection::TrailingData { extra: 1 }
    );
    assert_eq!(
        rejection(decrypt_with_hsm(&extra, &hsm)),
        Rejection::TrailingData { extra: 1 }
    );
    assert_eq!(TRAILER_FIXED_LEN, file.len() - m.fixed);
}

#[test]
fn every_single_bit_flip_of_a_small_backup_is_rejected() {
    let hsm = TestHsm::new(1);
    let (file, _) = hsm.seal(b"a small partition", MIN_CHUNK_SIZE);
    for bit in 0..file.len() * 8 {
        let mut bad = file.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        assert!(offline(&bad, &hsm).is_err(), "bit {bit} flipped verifies");
    }
}

/// A drive that fills up after `room` bytes.
#[derive(Debug)]
struct FullDrive {
    room: usize,
}

impl std::io::Write for FullDrive {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() > self.room {
            return Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "drive full",
            ));
        }
        self.room -= buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn the_pipeline_reports_the_failing_stage_not_its_neighbours() {
    let hsm = TestHsm::new(1);
    let data = plaintext(20 * C, 4);
    let result = seal_pipelined(
        data.as_slice(),
        FullDrive { room: 5 * C },
        hsm.facts(data.len() as u64, MIN_CHUNK_SIZE),
        &hsm.recipients(),
        &hsm.signing,
    );
    match result {
        Err(BackupError::Io {
            op: "write",
            source,
            ..
        }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::StorageFull);
        }
        other => panic!("expected the drive's write error, got {other:?}"),
    }
}
