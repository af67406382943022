//! The partition's paired terminals: pinned, seen, revoked; pairing codes offered and
//! their failures counted (the link's [`TrustStore`]).

use super::*;

impl Hsm {
    /// The outstanding pairing code's key, if a code is outstanding.
    pub(super) fn outstanding_psk(&self, record: &PartitionRecord) -> Option<Zeroizing<[u8; 32]>> {
        let (sealed_psk, _) = record.pairing.sealed_psk.as_ref()?;
        match sealed::open(self.keys.master(), &psk_aad(&record.id), sealed_psk) {
            Ok(psk) if psk.len() == 32 => {
                let mut out = Zeroizing::new([0u8; 32]);
                out.copy_from_slice(&psk);
                Some(out)
            }
            _ => None,
        }
    }

    /// Counts how many terminals were revoked since the HSM started: a session that saw
    /// another count checks whether its own terminal is still pinned.
    pub(crate) fn revocations(&self) -> u64 {
        self.revocations.load(Ordering::SeqCst)
    }

    /// The pinned terminals of `id` with when each paired and was last seen.
    pub(crate) fn terminals(
        &self,
        id: &PartitionId,
    ) -> Result<Vec<(PublicKey, TerminalSeen)>, ServiceError> {
        self.store.read(|tx| {
            let record = tx
                .partition(id)?
                .ok_or_else(|| ServiceError::NoSuchPartition(id.clone()))?;
            let mut out = Vec::with_capacity(record.pairing.terminals.len());
            for key in record.pairing.terminals {
                let seen = tx.terminal_seen(id, &key.fingerprint())?;
                out.push((key, seen));
            }
            Ok(out)
        })
    }

    /// Records that `terminal` opened a session now. A terminal not (or no longer) pinned is
    /// not recorded.
    pub(crate) fn terminal_seen_now(
        &self,
        id: &PartitionId,
        terminal: &Fingerprint,
    ) -> Result<(), ServiceError> {
        let now = self.clock.now_s();
        self.store.write(|tx| {
            let pinned = tx.partition(id)?.is_some_and(|r| {
                r.pairing
                    .terminals
                    .iter()
                    .any(|k| k.fingerprint() == *terminal)
            });
            if !pinned {
                return Ok(());
            }
            let mut seen = tx.terminal_seen(id, terminal)?;
            seen.last_seen_unix = Some(now);
            tx.put_terminal_seen(id, terminal, &seen)?;
            Ok(())
        })
    }

    /// Unpins `terminal` in the caller's transaction and forgets its record; the sessions it
    /// has open end once the transaction committed and [`Hsm::terminal_revoked`] was called.
    /// Whether it was pinned.
    pub(crate) fn unpin_terminal(
        tx: &mut WriteTxn<'_>,
        record: &mut PartitionRecord,
        terminal: &Fingerprint,
    ) -> Result<bool, ServiceError> {
        let before = record.pairing.terminals.len();
        record
            .pairing
            .terminals
            .retain(|k| k.fingerprint() != *terminal);
        if record.pairing.terminals.len() == before {
            return Ok(false);
        }
        // `first_terminal` stays as it is: the privilege of enrolling the first PSO set belongs
        // to the first terminal ever paired and to no other. Cleared, it would pass to whichever
        // terminal paired next; kept, an unpinned first terminal cannot connect to use it.
        tx.delete_terminal_seen(&record.id, terminal)?;
        Ok(true)
    }

    /// Tells open sessions that a terminal was revoked (after the revocation committed).
    pub(crate) fn terminal_revoked(&self) {
        self.revocations.fetch_add(1, Ordering::SeqCst);
    }
}

pub(super) fn psk_aad(id: &PartitionId) -> Vec<u8> {
    let mut aad = PSK_AAD.to_vec();
    aad.extend_from_slice(id.as_str().as_bytes());
    aad
}

pub(super) fn fingerprint_text(key: &PublicKey) -> String {
    key.fingerprint().to_string()
}

impl TrustStore for Hsm {
    fn partition_exists(&self, partition: &PartitionId) -> bool {
        self.partition(partition).is_ok()
    }

    /// Every partition's log is signed with the HSM's one audit key.
    fn audit_key(&self, partition: &PartitionId) -> Option<AuditKey> {
        self.partition_exists(partition)
            .then(|| Hsm::audit_key(self))
    }

    fn pinned_terminal(
        &self,
        partition: &PartitionId,
        terminal: &Fingerprint,
    ) -> Option<PublicKey> {
        let record = self.partition(partition).ok()?;
        record
            .pairing
            .terminals
            .iter()
            .find(|k| k.fingerprint() == *terminal)
            .copied()
    }

    fn pairing_offer(&self, partition: &PartitionId) -> PairingOffer {
        let Ok(record) = self.partition(partition) else {
            return PairingOffer::None;
        };
        match self.outstanding_psk(&record) {
            Some(psk) => PairingOffer::Open(psk),
            None => PairingOffer::None,
        }
    }

    fn pairing_failed(&self, partition: &PartitionId, psk: &[u8; 32]) -> u32 {
        let result = self.modify(partition, |hsm, tx, record| {
            // A handshake begun under a code reissued since then: its failure says nothing
            // about the new code, and is not counted against it.
            if !hsm
                .outstanding_psk(record)
                .is_some_and(|c| same_code(&c, psk))
            {
                return Ok(0);
            }
            let Some((_, failures)) = record.pairing.sealed_psk.as_mut() else {
                return Ok(0);
            };
            *failures += 1;
            let left = PAIRING_FAILURES.saturating_sub(*failures);
            let mut event = Event::new(
                Actor::new(Role::Unauthenticated, Vec::<String>::new()),
                KnownOperation::PairingAttempt,
            )
            .object(partition.as_str())
            .refused("the pairing code did not match")
            .detail("attempts-left", left.to_string());
            if left == 0 {
                record.pairing.sealed_psk = None;
                event = event.detail("code", "burned");
            }
            // The count is kept even when the log is full and cannot take the entry: a code
            // is burned after three failures, always.
            match hsm.append(tx, record, event) {
                Err(ServiceError::Admin(AdminError::LogFull)) => Ok(left),
                other => other.map(|()| left),
            }
        });
        result.unwrap_or(0)
    }

    fn pairing_succeeded(
        &self,
        partition: &PartitionId,
        psk: &[u8; 32],
        terminal: PublicKey,
    ) -> bool {
        let result = self.modify(partition, |hsm, tx, record| {
            // Only the outstanding code pairs: one reissued since the handshake began ended it.
            if !hsm
                .outstanding_psk(record)
                .is_some_and(|c| same_code(&c, psk))
            {
                return Ok(false);
            }
            record.pairing.sealed_psk = None;
            let now = hsm.clock.now_s();
            let seen = TerminalSeen {
                paired_unix: Some(now),
                last_seen_unix: Some(now),
            };
            tx.put_terminal_seen(partition, &terminal.fingerprint(), &seen)?;
            if !record.pairing.terminals.contains(&terminal) {
                record.pairing.terminals.push(terminal);
            }
            record.pairing.first_terminal.get_or_insert(terminal);
            let event = Event::new(
                Actor::new(Role::Unauthenticated, Vec::<String>::new()),
                KnownOperation::PairingComplete,
            )
            .object(partition.as_str())
            .detail("terminal", fingerprint_text(&terminal));
            hsm.append(tx, record, event)?;
            Ok(true)
        });
        result.unwrap_or(false)
    }
}

impl Hsm {
    /// Issues a fresh one-time management pairing code for `id` (replacing an outstanding
    /// one). The code is returned once, to be shown once; the store keeps only its sealed key.
    pub fn issue_pairing_code(
        &self,
        id: &PartitionId,
        actor: Actor,
    ) -> Result<PairingCode, ServiceError> {
        let code = PairingCode::generate().map_err(CryptoError::Rng)?;
        let psk = code.psk(id);
        let sealed = sealed::seal(self.keys.master(), &psk_aad(id), &psk[..])?;
        self.modify(id, |hsm, tx, record| {
            record.pairing.sealed_psk = Some((sealed, 0));
            hsm.append(
                tx,
                record,
                Event::new(actor, KnownOperation::PairingIssue).object(id.as_str()),
            )?;
            Ok(())
        })?;
        Ok(code)
    }
}
