//! The HSM's part of backup and restore, without the link (`tests/backup.rs` goes through it).

use hsm_link::domain::{KeyAttributes, KeyKind, KeyLabel, KeyState};

use std::ops::Deref;

use super::*;
use crate::crypto::HsmKeys;
use crate::model::{KeyRecord, PartitionRecord};
use crate::service::Clock;
use crate::service::Hsm;
use crate::store::Store;
use crate::store::WriteTxn;
use hsm_link::domain::{KeyId, KeyObjectSummary};
use usb_backup::Recipients;

fn hsm() -> (Hsm, PartitionId) {
    let hsm = Hsm::with_parts(
        HsmKeys::generate().unwrap(),
        Store::in_memory().unwrap(),
        Clock::system(),
    );
    let id = PartitionId::new("p").unwrap();
    hsm.create_partition(id.clone(), "P", ServiceTier::Economy)
        .unwrap();
    (hsm, id)
}

/// A new key's record (the application's path is tested elsewhere).
fn new_key(hsm: &Hsm, id: &PartitionId, n: u64, binned: bool) -> KeyRecord {
    let material = crypto::KeyMaterial::generate(KeyKind::Ed25519).unwrap();
    let attributes = KeyAttributes {
        extractable: false,
        sensitive: true,
        modifiable: false,
    };
    let binding = crypto::ObjectBinding {
        partition: id,
        key_id: KeyId(n),
        attributes,
    };
    let sealed = crypto::seal_object(hsm.keys().master(), binding, &material, false).unwrap();
    let summary = KeyObjectSummary {
        id: KeyId(n),
        label: KeyLabel::new(format!("k{n}")).unwrap(),
        kind: KeyKind::Ed25519,
        attributes,
        created_unix: 1,
        size_bytes: material.size_bytes(),
        state: if binned {
            KeyState::Invalidated {
                invalidated_unix: 2,
            }
        } else {
            KeyState::Active
        },
    };
    KeyRecord { summary, sealed }
}

/// Stores keys `ids` directly, in one transaction; every `binned_every`-th in the bin.
fn put_many(hsm: &Hsm, id: &PartitionId, ids: std::ops::RangeInclusive<u64>, binned_every: u64) {
    hsm.modify(id, |hsm, tx, record| {
        for n in ids {
            let key = new_key(hsm, id, n, n % binned_every == 0);
            record.usage.objects_used += 1;
            record.usage.bytes_used += key.summary.size_bytes;
            record.usage.invalidated_objects += u64::from(key.summary.state.is_invalidated());
            record.next_key_id = record.next_key_id.max(n + 1);
            tx.put_key(id, &key)?;
        }
        Ok(())
    })
    .unwrap();
}

/// Stores one new key directly.
fn put(hsm: &Hsm, id: &PartitionId, n: u64, binned: bool) {
    put_many(hsm, id, n..=n, if binned { 1 } else { u64::MAX });
}

/// A backup of the partition now, sealed in chunks of `chunk_size`.
fn backup_file(hsm: &Hsm, id: &PartitionId, chunk_size: u32) -> (Vec<u8>, PartitionRecord) {
    let (plain, record, objects) = hsm.backup_plaintext(id).unwrap();
    let mut facts = hsm.backup_facts(&record, plain.len() as u64, objects);
    facts.chunk_size = chunk_size;
    let recipients = Recipients::new(
        hsm.keys().backup_public(),
        &usb_backup::fuzzing::quorum_public_key(),
    )
    .unwrap();
    let signer = hsm.keys().audit_signing_key();
    let mut writer = usb_backup::BackupWriter::new(Vec::new(), facts, &recipients, signer).unwrap();
    writer.write_plaintext(&plain).unwrap();
    (writer.finish().unwrap().0, record)
}

fn problem<T>(result: Result<T, ServiceError>) -> Option<BackupProblem> {
    match result {
        Err(ServiceError::Admin(hsm_link::message::AdminError::Backup(p))) => Some(p),
        _ => None,
    }
}

#[test]
fn a_swap_that_fails_midway_leaves_the_partition_as_it_was() {
    let (hsm, id) = hsm();
    put(&hsm, &id, 1, false);
    put(&hsm, &id, 2, true);
    let (file, record) = backup_file(&hsm, &id, usb_backup::container::MIN_CHUNK_SIZE);
    let backup = hsm.open_backup(&record, &file).unwrap();
    assert_eq!(backup.totals().objects, 2);
    put(&hsm, &id, 3, false);
    let before = (
        hsm.backup_plaintext(&id).unwrap().0,
        hsm.partition(&id).unwrap(),
    );

    // Every key deleted and the backup's stored, then a failure before the commit.
    let failed: Result<(), ServiceError> = hsm.store().write(|tx| {
        let mut record = tx.partition(&id)?.unwrap();
        backup.apply(tx, &mut record)?;
        tx.put_partition(&record)?;
        assert_eq!(hsm_keys_in(tx, &id), vec![1, 2], "the swap was made");
        Err(ServiceError::BadName)
    });
    assert!(failed.is_err());
    let after = (
        hsm.backup_plaintext(&id).unwrap().0,
        hsm.partition(&id).unwrap(),
    );
    assert_eq!(*before.0, *after.0);
    assert_eq!(before.1, after.1);

    // The same swap committed: the backup's keys, usage recomputed, ids never reused.
    hsm.modify(&id, |_, tx, record| backup.apply(tx, record))
        .unwrap();
    let record = hsm.partition(&id).unwrap();
    assert_eq!(hsm.key_ids(&id, None, 10).unwrap(), vec![1, 2]);
    assert_eq!(record.usage, hsm.usage(&id).unwrap());
    assert_eq!(record.usage.invalidated_objects, 1);
    assert_eq!(record.next_key_id, 4);
}

#[test]
fn ten_thousand_keys_in_many_chunks_round_trip() {
    let (hsm, id) = hsm();
    put_many(&hsm, &id, 1..=10_000, 97);
    let (plain, record, objects) = hsm.backup_plaintext(&id).unwrap();
    assert_eq!(objects, 10_000);
    // Streamed from the snapshot, the plaintext never sits whole in the HSM's memory: the
    // stream holds one page of records, a small part of the whole.
    let mut stream = PlaintextStream::new(&hsm, &id).unwrap();
    assert_eq!(stream.len(), plain.len() as u64);
    let mut streamed = Vec::new();
    std::io::Read::read_to_end(&mut stream, &mut streamed).unwrap();
    assert_eq!(streamed, *plain);
    assert!(
        stream.peak_buffered() < 64 * 1024 && plain.len() > 16 * stream.peak_buffered(),
        "peak {} of {} bytes",
        stream.peak_buffered(),
        plain.len()
    );
    // The smallest chunks, so that the keys span many (the HSM itself seals 1 MiB ones).
    let mut facts = hsm.backup_facts(&record, plain.len() as u64, objects);
    facts.chunk_size = usb_backup::container::MIN_CHUNK_SIZE;
    let chunks = (plain.len() as u64).div_ceil(u64::from(facts.chunk_size));
    assert!(chunks > 5, "{chunks} chunks");
    let recipients = Recipients::new(
        hsm.keys().backup_public(),
        &usb_backup::fuzzing::quorum_public_key(),
    )
    .unwrap();
    let signer = hsm.keys().audit_signing_key();
    let mut writer = usb_backup::BackupWriter::new(Vec::new(), facts, &recipients, signer).unwrap();
    writer.write_plaintext(&plain).unwrap();
    let (file, _) = writer.finish().unwrap();

    let backup = hsm.open_backup(&record, &file).unwrap();
    assert_eq!(backup.totals().objects, 10_000);
    let before: Vec<KeyRecord> = hsm
        .store()
        .read(|tx| Ok::<_, ServiceError>(tx.keys(&id, None, 20_000, |_| true)?.0))
        .unwrap();
    hsm.modify(&id, |_, tx, record| backup.apply(tx, record))
        .unwrap();
    let after: Vec<KeyRecord> = hsm
        .store()
        .read(|tx| Ok::<_, ServiceError>(tx.keys(&id, None, 20_000, |_| true)?.0))
        .unwrap();
    // Same summaries; the material re-sealed (fresh nonces) opens to the same key.
    assert_eq!(before.len(), after.len());
    for (b, a) in before.iter().zip(&after).step_by(499) {
        assert_eq!(b.summary, a.summary);
        let open = |k: &KeyRecord| {
            let binding = crypto::ObjectBinding {
                partition: &id,
                key_id: k.summary.id,
                attributes: k.summary.attributes,
            };
            crypto::export_plain(
                &crypto::open_object(hsm.keys().master(), binding, &k.sealed)
                    .unwrap()
                    .material,
            )
        };
        assert_eq!(*open(b), *open(a));
    }
    // One flipped bit in the middle chunk: nothing is opened.
    let mut damaged = file.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x40;
    assert_eq!(
        problem(hsm.open_backup(&record, &damaged)),
        Some(BackupProblem::NotAuthentic)
    );
}

/// Staged keys of an upload, in id order.
fn staged_ids<H: Deref<Target = Hsm>>(staged: &StagedRestore<H>) -> Vec<u64> {
    let mut ids = Vec::new();
    staged
        .hsm
        .store()
        .read(|tx| {
            tx.for_each_staged_key(&staged.partition, staged.upload, |k| {
                ids.push(k.summary.id.0)
            })
        })
        .unwrap();
    ids
}

#[test]
fn a_restore_much_larger_than_its_buffers_is_staged_in_flat_memory_and_swapped_whole() {
    let (hsm, id) = hsm();
    put_many(&hsm, &id, 1..=40_000, 101);
    let (file, _) = backup_file(&hsm, &id, usb_backup::container::MIN_CHUNK_SIZE);
    // Since the backup: keys 1..=100 purged, 40,001..=40,050 made, 200 binned, 101 out of the
    // bin.
    hsm.modify(&id, |_, tx, record| {
        for n in 1..=100 {
            tx.delete_key(&id, KeyId(n))?;
        }
        let mut k200 = tx.key(&id, KeyId(200))?.unwrap();
        k200.summary.state = KeyState::Invalidated {
            invalidated_unix: 3,
        };
        tx.put_key(&id, &k200)?;
        let mut k101 = tx.key(&id, KeyId(101))?.unwrap();
        k101.summary.state = KeyState::Active;
        tx.put_key(&id, &k101)?;
        record.next_key_id = 40_001;
        Ok(())
    })
    .unwrap();
    put_many(&hsm, &id, 40_001..=40_050, u64::MAX);
    let now = hsm.partition(&id).unwrap();
    let listed = hsm.key_ids(&id, None, 100_000).unwrap();

    // Uploaded in link-sized pieces, staged as each chunk completes.
    let header = usb_backup::Header::read_from(&mut &file[..]).unwrap();
    let header_len = header.layout().header_len as usize;
    let mut staged = StagedRestore::begin(&hsm, &now, header, &file[..header_len], None).unwrap();
    let mut staged_midway = 0;
    for (i, piece) in file[header_len..].chunks(16 * 1024).enumerate() {
        staged.push(piece).unwrap();
        if i == 40 {
            staged_midway = staged_ids(&staged).len();
        }
    }
    assert!(
        staged_midway > 5_000 && staged_midway < 40_000,
        "{staged_midway} staged midway"
    );
    staged.finish(&now).unwrap();
    assert_eq!(staged_ids(&staged).len(), 40_000);
    // The upload never held more than a couple of chunks, however large the backup.
    let plaintext = staged.header().facts().plaintext_len as usize;
    let chunk = usb_backup::container::MIN_CHUNK_SIZE as usize;
    assert!(
        staged.peak_buffered() < 2 * chunk + 32 * 1024 + MAX_RECORD_LEN
            && plaintext > 12 * staged.peak_buffered(),
        "peak {} of {plaintext} bytes",
        staged.peak_buffered()
    );
    // Nothing staged is visible: the partition and its listing are as they were.
    assert_eq!(hsm.key_ids(&id, None, 100_000).unwrap(), listed);
    assert_eq!(hsm.partition(&id).unwrap(), now);

    let diff = staged.diff(&now).unwrap();
    assert_eq!(diff.objects_in_backup, 40_000);
    assert_eq!(diff.objects_now, 40_000 - 100 + 50);
    // Named by label and id, each where it stands (the bin as the backup has it, for keys
    // removed as the partition has it).
    let named = |list: &hsm_link::message::KeyIdList| {
        let first = list.first.iter();
        first
            .map(|k| (k.id.0, k.label.as_str().to_owned(), k.in_bin))
            .collect::<Vec<_>>()
    };
    assert_eq!(diff.returning.count, 100);
    assert_eq!(
        named(&diff.returning)[..2],
        [(1, "k1".into(), false), (2, "k2".into(), false)]
    );
    assert_eq!(diff.returning.first.len(), 100);
    assert_eq!(diff.removed.count, 50);
    assert_eq!(named(&diff.removed)[0], (40_001, "k40001".into(), false));
    assert_eq!(named(&diff.into_bin), [(101, "k101".into(), true)]);
    assert_eq!(named(&diff.out_of_bin), [(200, "k200".into(), false)]);

    // The swap: the backup's keys exactly, the staging gone with the same transaction.
    hsm.modify(&id, |_, tx, record| staged.apply(tx, record))
        .unwrap();
    assert!(staged_ids(&staged).is_empty());
    assert_eq!(
        hsm.key_ids(&id, None, 100_000).unwrap(),
        (1..=40_000).collect::<Vec<_>>()
    );
    let after = hsm.partition(&id).unwrap();
    assert_eq!(after.usage, hsm.usage(&id).unwrap());
    assert_eq!(after.next_key_id, 40_051);
}

#[test]
fn a_dropped_or_failed_upload_leaves_no_staging() {
    let (hsm, id) = hsm();
    put_many(&hsm, &id, 1..=3_000, 7);
    let (file, record) = backup_file(&hsm, &id, usb_backup::container::MIN_CHUNK_SIZE);
    let header = usb_backup::Header::read_from(&mut &file[..]).unwrap();
    let header_len = header.layout().header_len as usize;
    let count_all = || {
        let mut n = 0;
        hsm.store()
            .read(|tx| {
                for upload in 0..10 {
                    tx.for_each_staged_key(&id, upload, |_| n += 1)?;
                }
                Ok::<_, ServiceError>(())
            })
            .unwrap();
        n
    };
    // Half uploaded, then the session goes.
    {
        let mut staged =
            StagedRestore::begin(&hsm, &record, header.clone(), &file[..header_len], None).unwrap();
        staged.push(&file[header_len..file.len() / 2]).unwrap();
        assert!(count_all() > 0);
        assert_eq!(
            problem(staged.finish(&record)),
            Some(BackupProblem::Incomplete)
        );
    }
    assert_eq!(count_all(), 0);
    // A flipped bit in the last chunk: what the earlier chunks staged is dropped at once, and
    // the dry run names the problem.
    let mut damaged = file.clone();
    let last_chunk = header.layout().table_offset() as usize - 20;
    damaged[last_chunk] ^= 1;
    let mut staged =
        StagedRestore::begin(&hsm, &record, header, &damaged[..header_len], None).unwrap();
    staged.push(&damaged[header_len..]).unwrap();
    assert_eq!(count_all(), 0);
    assert_eq!(
        problem(staged.finish(&record)),
        Some(BackupProblem::NotAuthentic)
    );
    assert!(problem(staged.diff(&record)).is_some());
}

#[test]
fn a_plaintext_stream_reads_one_snapshot_while_writers_go_on() {
    let (hsm, id) = hsm();
    put(&hsm, &id, 1, false);
    let mut stream = PlaintextStream::new(&hsm, &id).unwrap();
    // Written after the snapshot: not in this backup, and the measured length holds.
    for n in 2..=400 {
        put(&hsm, &id, n, false);
    }
    let mut plain = Vec::new();
    std::io::Read::read_to_end(&mut stream, &mut plain).unwrap();
    assert_eq!(plain.len() as u64, stream.len());
    let record = hsm.partition(&id).unwrap();
    let (_, totals) = staging::decode_plaintext(&hsm, &record, &plain, 7).unwrap();
    assert_eq!(totals.objects, 1);
    assert_eq!(stream.key_count(), 1);
}

fn hsm_keys_in(tx: &WriteTxn<'_>, id: &PartitionId) -> Vec<u64> {
    let mut ids = Vec::new();
    tx.for_each_key(id, |k| ids.push(k.summary.id.0)).unwrap();
    ids
}

#[test]
fn the_plaintext_parser_refuses_what_it_did_not_write() {
    let (hsm, id) = hsm();
    put(&hsm, &id, 1, false);
    let (plain, record, _) = hsm.backup_plaintext(&id).unwrap();
    // In one piece, and a byte at a time (every record carried across pieces).
    assert!(staging::decode_plaintext(&hsm, &record, &plain, plain.len()).is_ok());
    assert!(staging::decode_plaintext(&hsm, &record, &plain, 1).is_ok());
    let malformed = |bytes: &[u8]| {
        problem(staging::decode_plaintext(&hsm, &record, bytes, 5))
            == Some(BackupProblem::Malformed)
    };
    // Every cut, a trailing byte, another magic or version, and a count that lies.
    for cut in 0..plain.len() {
        assert!(malformed(&plain[..cut]), "cut at {cut}");
    }
    let mut longer = plain.to_vec();
    longer.push(0);
    assert!(malformed(&longer));
    for at in [0, 8] {
        let mut other = plain.to_vec();
        other[at] ^= 1;
        assert!(malformed(&other), "byte {at}");
    }
    // Another partition's plaintext.
    let other = PartitionId::new("q").unwrap();
    hsm.create_partition(other.clone(), "Q", ServiceTier::Economy)
        .unwrap();
    let theirs = hsm.partition(&other).unwrap();
    assert_eq!(
        problem(staging::decode_plaintext(&hsm, &theirs, &plain, 64)),
        Some(BackupProblem::OtherPartition)
    );
}
