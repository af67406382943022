//! Restoring: the header checked before any upload, the diff of a verified staged backup
//! against the partition, and the swap.

use std::ops::Deref;

use hsm_link::domain::{KeyObjectSummary, PartitionConfig, PartitionUsage};
use hsm_link::message::{
    BackupProblem, DiffKey, KeyIdList, MAX_DIFF_KEYS, MAX_RESTORE_CHUNK, RestoreDiff,
};

use super::{Migration, StagedRestore, StagedTotals, internal, plaintext_bound, refused, rejected};
use crate::model::PartitionRecord;
use crate::service::{Hsm, ServiceError};
use crate::store::WriteTxn;

impl Hsm {
    /// Checks a backup header before any upload: made by this HSM for `record`'s partition,
    /// within its quota and object limit, and as long as announced.
    pub fn check_backup_header(
        &self,
        record: &PartitionRecord,
        header: &usb_backup::Header,
        file_len: u64,
    ) -> Result<(), ServiceError> {
        self.check_upload_header(record, header, file_len, None)
    }

    /// [`Hsm::check_backup_header`], or for a migration: then the header may name another HSM
    /// and another partition, but it must be signed by the source key the PSO supplied.
    pub fn check_upload_header(
        &self,
        record: &PartitionRecord,
        header: &usb_backup::Header,
        file_len: u64,
        migration: Option<&Migration>,
    ) -> Result<(), ServiceError> {
        let facts = header.facts();
        match migration {
            None if facts.partition_id != record.id.as_str() => {
                return Err(refused(BackupProblem::OtherPartition));
            }
            None if header.hsm_signing_key() != self.keys().audit_public().to_bytes() => {
                return Err(refused(BackupProblem::OtherHsm));
            }
            Some(m) if header.hsm_signing_key() != m.source_key => {
                return Err(refused(BackupProblem::SourceKeyMismatch));
            }
            _ => {}
        }
        let over_objects = record
            .config
            .quota
            .object_limit
            .is_some_and(|limit| facts.object_count > u64::from(limit));
        if over_objects || facts.plaintext_len > plaintext_bound(&record.config) {
            return Err(refused(BackupProblem::OverQuota));
        }
        if header.layout().file_len() != file_len {
            return Err(refused(BackupProblem::Malformed));
        }
        Ok(())
    }

    /// Stages and verifies a whole backup held in memory for `record`'s partition, as the link
    /// does piece by piece: the header (as [`Hsm::check_backup_header`]), the data key
    /// unwrapped with this HSM's backup key, every chunk, record and the trailer, and the
    /// quota. The partition is not changed; dropping the result drops the staging.
    pub fn open_backup(
        &self,
        record: &PartitionRecord,
        file: &[u8],
    ) -> Result<StagedRestore<&Hsm>, ServiceError> {
        self.open_upload(record, file, None)
    }

    /// [`Hsm::open_backup`], or for a migration: the trailer verified under the source key,
    /// the data key opened from its re-wrapping to this HSM, the records sealed for `record`'s
    /// partition whichever partition the backup was of.
    pub fn open_upload(
        &self,
        record: &PartitionRecord,
        file: &[u8],
        migration: Option<&Migration>,
    ) -> Result<StagedRestore<&Hsm>, ServiceError> {
        let header = usb_backup::Header::read_from(&mut &file[..]).map_err(rejected)?;
        self.check_upload_header(record, &header, file.len() as u64, migration)?;
        let header_len = header.layout().header_len as usize;
        let mut staged =
            StagedRestore::begin(self, record, header, &file[..header_len], migration)?;
        for piece in file[header_len..].chunks(MAX_RESTORE_CHUNK) {
            staged.push(piece)?;
        }
        staged.finish(record)?;
        Ok(staged)
    }
}

impl<H: Deref<Target = Hsm>> StagedRestore<H> {
    /// What restoring this verified backup would change in `record`'s partition: the staged
    /// keys and the partition's walked side by side in id order, so memory holds the diff's
    /// bounded lists, not the keys.
    pub fn diff(&self, record: &PartitionRecord) -> Result<RestoreDiff, ServiceError> {
        let item = self.partition_item().filter(|_| self.is_verified());
        let item = item.ok_or(refused(BackupProblem::NoDryRun))?;
        let header = self.header();
        let mut diff = RestoreDiff {
            header_hash: header.hash(),
            created_unix: header.facts().created,
            sequence: header.facts().sequence,
            objects_in_backup: self.totals().objects,
            objects_now: 0,
            returning: KeyIdList::default(),
            removed: KeyIdList::default(),
            into_bin: KeyIdList::default(),
            out_of_bin: KeyIdList::default(),
            config: restored_config(&record.config, &item.config)
                .map(|c| record.config.diff(&c))
                .unwrap_or_default(),
        };
        self.hsm.store().read(|tx| {
            tx.compare_staged(&self.partition, self.upload, |now, staged| {
                diff.objects_now += u64::from(now.is_some());
                let binned = |k: &crate::model::KeyRecord| k.summary.state.is_invalidated();
                match (now, staged) {
                    (None, Some(s)) => push(&mut diff.returning, &s.summary),
                    (Some(n), None) => push(&mut diff.removed, &n.summary),
                    (Some(n), Some(s)) if !binned(n) && binned(s) => {
                        push(&mut diff.into_bin, &s.summary);
                    }
                    (Some(n), Some(s)) if binned(n) && !binned(s) => {
                        push(&mut diff.out_of_bin, &s.summary);
                    }
                    _ => {}
                }
            })
            .map_err(ServiceError::from)
        })?;
        Ok(diff)
    }

    /// Replaces the partition's key objects with the staged ones and its configuration with the
    /// backup's, in the caller's transaction (which also appends the restore's entry). The
    /// quota and licences stay as the HSM owner set them; the key id counter never goes back.
    pub fn apply(
        &self,
        tx: &mut WriteTxn<'_>,
        record: &mut PartitionRecord,
    ) -> Result<(), ServiceError> {
        let item = self.partition_item().filter(|_| self.is_verified());
        let item = item.ok_or(refused(BackupProblem::NoDryRun))?;
        check_quota(&record.config, &self.totals())?;
        let config = restored_config(&record.config, &item.config)?;
        let mut usage = PartitionUsage::default();
        let mut highest = 0;
        tx.swap_in_staged(&self.partition, self.upload, |key| {
            usage.bytes_used += key.summary.size_bytes;
            usage.objects_used += 1;
            usage.invalidated_objects += u64::from(key.summary.state.is_invalidated());
            highest = highest.max(key.summary.id.0);
        })?;
        // What moved is what was verified (a staging table changed under the upload is a
        // fault, and the caller's transaction is then abandoned).
        if usage.objects_used != self.totals().objects || highest != self.totals().highest {
            return Err(internal());
        }
        record.usage = usage;
        record.config = config;
        record.next_key_id = record.next_key_id.max(item.next_key_id).max(highest + 1);
        Ok(())
    }
}

/// The configuration a restore applies: the backup's parameters, with the quota and licences
/// the HSM owner set now, at the next revision; refused if that is not a valid configuration.
fn restored_config(
    current: &PartitionConfig,
    backup: &PartitionConfig,
) -> Result<PartitionConfig, ServiceError> {
    let mut config = backup.clone();
    config.quota = current.quota;
    config.ska.licensed = current.ska.licensed;
    config.crypto_currency.licensed = current.crypto_currency.licensed;
    config.ska.enabled &= config.ska.licensed;
    config.crypto_currency.enabled &= config.crypto_currency.licensed;
    config.revision = current.revision + 1;
    config
        .validate()
        .map_err(|_| refused(BackupProblem::Malformed))?;
    Ok(config)
}

/// Refuses a backup whose keys exceed the partition's quota or object limit.
pub(super) fn check_quota(
    config: &PartitionConfig,
    totals: &StagedTotals,
) -> Result<(), ServiceError> {
    let over_objects = config
        .quota
        .object_limit
        .is_some_and(|limit| totals.objects > u64::from(limit));
    if over_objects || totals.bytes > config.quota.size_bytes {
        return Err(refused(BackupProblem::OverQuota));
    }
    Ok(())
}

/// Counts `key` in `list`, and names it there while the list has room.
fn push(list: &mut KeyIdList, key: &KeyObjectSummary) {
    list.count += 1;
    if list.first.len() < MAX_DIFF_KEYS {
        list.first.push(DiffKey {
            id: key.id,
            label: key.label.clone(),
            in_bin: key.state.is_invalidated(),
        });
    }
}
