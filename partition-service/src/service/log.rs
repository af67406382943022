//! The partition log at the service: entries appended with their checkpoints, room made
//! under the full-log policy, confirmed entries pruned, refusals and unauthenticated
//! attempts logged.

use super::*;

impl Hsm {
    /// Logs a refusal in its own transaction (the refused change itself is not made).
    pub(crate) fn log_refusal(&self, id: &PartitionId, event: Event) -> Result<(), ServiceError> {
        match self.modify(id, |hsm, tx, record| hsm.append(tx, record, event)) {
            // A full log refuses the refusal's entry too; the refusal still stands.
            Err(ServiceError::Admin(AdminError::LogFull)) => Ok(()),
            other => other,
        }
    }

    /// Appends a log entry (and a signed checkpoint when due) in the caller's transaction.
    pub(crate) fn append(
        &self,
        tx: &mut WriteTxn<'_>,
        record: &mut PartitionRecord,
        event: Event,
    ) -> Result<(), ServiceError> {
        let exempt = matches!(
            event.operation,
            KnownOperation::LogExport | KnownOperation::LogConfirm | KnownOperation::LogPolicy
        )
            // An officer who logs in may be the one who exports: a successful login uses the
            // reserve too (it needs a quorum, so it cannot be used to exhaust it).
            || (event.operation == KnownOperation::Login && event.outcome == Outcome::Ok);
        self.make_room(tx, record, exempt)?;
        let now = self.clock.now_ms();
        let mut draft = EntryDraft::new(now, event.actor, event.operation.into(), event.outcome);
        if let Some(object) = event.object {
            draft = draft.with_object(object);
        }
        for (k, v) in event.details {
            draft = draft.with_detail(k, v);
        }
        let log = &mut record.log;
        let mut chain = Chain::resume(log.next_seq - 1, Hash(log.last_hash), log.since_checkpoint);
        let entry = chain.append(draft)?;
        tx.put_log_line(&record.id, entry.seq(), &entry.to_canonical())?;
        log.next_seq = entry.seq() + 1;
        log.last_hash = entry.hash().0;
        log.since_checkpoint += 1;
        if self
            .checkpoints
            .due(log.since_checkpoint, event.administrative)
        {
            let checkpoint = chain.checkpoint(&self.audit, now);
            tx.put_checkpoint(&record.id, entry.seq(), &checkpoint.to_canonical())?;
            log.since_checkpoint = 0;
        }
        Ok(())
    }

    /// Signs a checkpoint over entry `seq` whose hash is `hash` (the end of an export), stores
    /// it, and returns its line.
    pub(crate) fn checkpoint_at(
        &self,
        tx: &mut WriteTxn<'_>,
        record: &mut PartitionRecord,
        seq: u64,
        hash: Hash,
    ) -> Result<Vec<u8>, ServiceError> {
        let line = self
            .audit
            .sign_checkpoint(seq, hash, self.clock.now_ms())
            .to_canonical();
        tx.put_checkpoint(&record.id, seq, &line)?;
        if seq + 1 == record.log.next_seq {
            record.log.since_checkpoint = 0;
        }
        Ok(line)
    }

    /// Signs the closing checkpoint of an export whose last entry's hash is `last_hash`.
    pub(crate) fn sign_export_end(
        &self,
        header: &audit_log::ExportHeader,
        last_hash: Hash,
    ) -> Result<audit_log::ExportEnd, ServiceError> {
        Ok(self
            .audit
            .sign_export_end(header, last_hash, self.clock.now_ms())?)
    }

    /// Makes room for one entry, or refuses: the partition's full-log policy, with a reserve
    /// kept for the export that frees space and its confirmation.
    pub(super) fn make_room(
        &self,
        tx: &mut WriteTxn<'_>,
        record: &mut PartitionRecord,
        exempt: bool,
    ) -> Result<(), ServiceError> {
        let log = &mut record.log;
        let limit = if exempt {
            log.capacity
        } else {
            log.capacity.saturating_sub(log.reserve)
        };
        if log.stored() < limit {
            return Ok(());
        }
        if log.full_policy == LogFullPolicy::PruneConfirmed
            && self.prune_confirmed(tx, record)?
            && record.log.stored() < limit
        {
            return Ok(());
        }
        Err(AdminError::LogFull.into())
    }

    /// Drops the entries confirmed as exported, up to the last signed checkpoint at or below
    /// the confirmation (kept: it anchors what is left, so the stored log still verifies).
    /// Whether anything was dropped. Under [`LogFullPolicy::Refuse`] a confirmation does this
    /// at once (the officers' export and confirm is what frees a full log); under
    /// [`LogFullPolicy::PruneConfirmed`] it waits until room is needed.
    pub(crate) fn prune_confirmed(
        &self,
        tx: &mut WriteTxn<'_>,
        record: &mut PartitionRecord,
    ) -> Result<bool, ServiceError> {
        let log = &mut record.log;
        if let Some(confirmed) = log.confirmed_up_to
            && confirmed >= log.first_seq
            && let Some(first) = tx.prune_log(&record.id, confirmed)?
        {
            log.first_seq = first;
            return Ok(true);
        }
        Ok(false)
    }

    /// Admits one log entry written for a session without an officer login (a share drill,
    /// a refusal), if the partition took fewer than `limit` such entries in the last
    /// `window_s` seconds: `Ok(n)`, where n entries were refused since the last one admitted
    /// (for the entry to say so). Otherwise the entry is counted as unlogged and the answer is
    /// the seconds until one is admitted again. Failed logins are not rationed here: they have
    /// their own throttle, and each is logged. Kept in memory: a restart forgets the count, as
    /// it forgets open sessions.
    pub(crate) fn admit_unauthenticated_entry(
        &self,
        id: &PartitionId,
        limit: usize,
        window_s: u64,
    ) -> Result<u64, u64> {
        let now = self.clock.now_s();
        let mut table = self.unauthenticated.lock().expect("ration table lock");
        let ration = table.entry(id.clone()).or_default();
        ration.times.retain(|&t| t + window_s > now);
        if ration.times.len() >= limit {
            ration.unlogged += 1;
            let oldest = ration.times.iter().min().copied().unwrap_or(now);
            return Err((oldest + window_s).saturating_sub(now).max(1));
        }
        ration.times.push(now);
        Ok(std::mem::take(&mut ration.unlogged))
    }
}
