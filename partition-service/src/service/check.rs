//! `tessera-hsm check`: each partition's log chain and checkpoints verified, and its keys
//! against what the log says was created and removed.

use super::*;

/// What [`Hsm::check`] found in one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionCheck {
    /// The partition.
    pub partition: PartitionId,
    /// Log entries verified (chain, hashes, checkpoint signatures).
    pub entries: u64,
    /// Entries after the last checkpoint (not yet signed; signed at the next export).
    pub unsigned_tail: u64,
    /// Key objects stored.
    pub keys: u64,
}

impl Hsm {
    /// Checks the whole store: every partition's log verifies against this HSM's audit key and
    /// ends where the partition record says; every stored key was created by a logged event and
    /// every key the log says exists is stored. After a crash, this is what proves that no
    /// transaction was half-applied.
    pub fn check(&self) -> Result<Vec<PartitionCheck>, CheckError> {
        let partitions = self.partitions().map_err(CheckError::Service)?;
        let mut out = Vec::new();
        for record in partitions {
            out.push(self.check_partition(&record)?);
        }
        Ok(out)
    }

    pub(super) fn check_partition(
        &self,
        record: &PartitionRecord,
    ) -> Result<PartitionCheck, CheckError> {
        let id = &record.id;
        let anchor = self.log_anchor(record)?;
        let mut verifier = audit_log::Verifier::new(self.audit_key(), Some(anchor));
        let (alive, last_seq) = self.verify_log_lines(record, &mut verifier)?;
        let report = verifier
            .finish()
            .map_err(|e| inconsistent(id, format!("log: {e}")))?;
        if record.log.next_seq != last_seq + 1 {
            return Err(inconsistent(
                id,
                format!(
                    "the record says the next log entry is {}, the log ends at {last_seq}",
                    record.log.next_seq
                ),
            ));
        }
        let keys = self.check_keys(record, alive.as_ref())?;
        Ok(PartitionCheck {
            partition: id.clone(),
            entries: report.entries(),
            unsigned_tail: report.unsigned_tail().map_or(0, |t| t.entries),
            keys,
        })
    }

    /// Where the stored log starts: the genesis hash, or the signed checkpoint that anchors a
    /// pruned log.
    pub(super) fn log_anchor(
        &self,
        record: &PartitionRecord,
    ) -> Result<(u64, audit_log::Hash), CheckError> {
        let id = &record.id;
        if record.log.first_seq <= 1 {
            return Ok((0, audit_log::genesis_hash(id.as_str())));
        }
        let seq = record.log.first_seq - 1;
        let line = self
            .store
            .read(|tx| Ok::<_, ServiceError>(tx.checkpoint_at(id, seq)?))
            .map_err(CheckError::Service)?
            .ok_or_else(|| {
                inconsistent(
                    id,
                    format!("the pruned log has no anchoring checkpoint at {seq}"),
                )
            })?;
        let checkpoint = audit_log::Checkpoint::from_canonical(&line)
            .map_err(|e| inconsistent(id, format!("the anchoring checkpoint: {e}")))?;
        checkpoint
            .verify(&self.audit_key())
            .map_err(|e| inconsistent(id, format!("the anchoring checkpoint: {e}")))?;
        Ok((checkpoint.seq, checkpoint.hash))
    }

    /// Pushes every stored line through `verifier`: the keys the log says exist, and the last
    /// sequence number stored.
    pub(super) fn verify_log_lines(
        &self,
        record: &PartitionRecord,
        verifier: &mut audit_log::Verifier,
    ) -> Result<(Option<BTreeSet<u64>>, u64), CheckError> {
        let id = &record.id;
        // `None` after a restore: the key set then is the backup's, which no entry lists.
        let mut alive = Some(BTreeSet::new());
        let mut problem = None;
        let mut last_seq = record.log.first_seq - 1;
        self.store
            .read(|tx| {
                tx.log_lines(id, record.log.first_seq, |seq, line, checkpoint| {
                    last_seq = seq;
                    if let Err(e) = verifier.push_line(line) {
                        problem = Some(format!("log entry {seq}: {e}"));
                        return false;
                    }
                    if let Some(cp) = checkpoint
                        && let Err(e) = verifier.push_line(cp)
                    {
                        problem = Some(format!("checkpoint after {seq}: {e}"));
                        return false;
                    }
                    if restored_keys(line) {
                        alive = None;
                    } else if let Some(alive) = alive.as_mut() {
                        track_key(alive, line);
                    }
                    true
                })?;
                Ok::<_, ServiceError>(())
            })
            .map_err(CheckError::Service)?;
        match problem {
            Some(problem) => Err(inconsistent(id, problem)),
            None => Ok((alive, last_seq)),
        }
    }

    /// Compares the stored keys with those the log created (when the log is whole and no
    /// restore replaced them since) and the recorded usage with what is stored: how many keys
    /// are stored.
    pub(super) fn check_keys(
        &self,
        record: &PartitionRecord,
        alive: Option<&BTreeSet<u64>>,
    ) -> Result<u64, CheckError> {
        let id = &record.id;
        let mut stored = BTreeSet::new();
        self.store
            .read(|tx| {
                tx.for_each_key(id, |k| {
                    stored.insert(k.summary.id.0);
                })
                .map_err(ServiceError::from)
            })
            .map_err(CheckError::Service)?;
        if let Some(alive) = alive
            && record.log.first_seq == 1
            && &stored != alive
        {
            return Err(inconsistent(
                id,
                format!(
                    "stored keys {:?} differ from the keys the log created {:?}",
                    stored
                        .symmetric_difference(alive)
                        .take(5)
                        .collect::<Vec<_>>(),
                    alive.len()
                ),
            ));
        }
        let computed = self.usage(id).map_err(CheckError::Service)?;
        if computed != record.usage {
            return Err(inconsistent(
                id,
                format!(
                    "the recorded usage {:?} differs from what is stored {computed:?}",
                    record.usage
                ),
            ));
        }
        if stored.iter().any(|&k| k >= record.next_key_id) {
            return Err(inconsistent(
                id,
                "a stored key id is not below the next key id".into(),
            ));
        }
        Ok(stored.len() as u64)
    }
}

pub(super) fn inconsistent(partition: &PartitionId, what: String) -> CheckError {
    CheckError::Inconsistent {
        partition: partition.clone(),
        what,
    }
}

/// Follows one log line's effect on which keys exist: created by a generate, an import or an
/// unwrap; gone after a purge or a destroying delete.
/// Whether `line` is a restore that replaced the partition's keys.
pub(super) fn restored_keys(line: &[u8]) -> bool {
    matches!(
        audit_log::LogLine::from_canonical(line),
        Ok(audit_log::LogLine::Entry(entry))
            if entry.outcome() == &Outcome::Ok
                && entry.operation().as_str() == KnownOperation::BackupRestore.as_str()
    )
}

pub(super) fn track_key(alive: &mut BTreeSet<u64>, line: &[u8]) {
    let Ok(audit_log::LogLine::Entry(entry)) = audit_log::LogLine::from_canonical(line) else {
        return;
    };
    let key = entry
        .object()
        .and_then(|o| o.strip_prefix("key "))
        .and_then(|k| k.parse::<u64>().ok());
    let Some(key) = key.filter(|_| entry.outcome() == &Outcome::Ok) else {
        return;
    };
    match KnownOperation::from_name(entry.operation().as_str()) {
        Some(
            KnownOperation::KeyGenerate | KnownOperation::KeyImport | KnownOperation::KeyUnwrap,
        ) => {
            alive.insert(key);
        }
        Some(KnownOperation::KeyPurge) => {
            alive.remove(&key);
        }
        Some(KnownOperation::KeyDelete)
            if entry.details().get("to").map(String::as_str) == Some("destroyed") =>
        {
            alive.remove(&key);
        }
        _ => {}
    }
}

/// What [`Hsm::check`] can find.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The store could not be read.
    #[error(transparent)]
    Service(ServiceError),
    /// Two things the store holds disagree.
    #[error("partition {partition}: {what}")]
    Inconsistent {
        /// The partition.
        partition: PartitionId,
        /// What disagrees.
        what: String,
    },
}
