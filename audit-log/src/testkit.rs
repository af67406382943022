//! A partition log kept the way the HSM keeps it, and exports made the way the HSM must make
//! them: for tests, fuzz seeds and benchmarks in this crate and others (the real HSM is
//! `partition-service`). Not part of the stable API.

use std::collections::BTreeMap;

use crate::actor::{Actor, Role};
use crate::checkpoint::{Checkpoint, CheckpointPolicy};
use crate::entry::{Chain, EntryDraft, Operation, Outcome};
use crate::export::{ExportHeader, ExportId, ExportWriter};
use crate::keys::AuditSigner;

/// A partition's log in memory: canonical entry lines, checkpoints stored by the entry they
/// follow, pruning that keeps the anchoring checkpoint, and exports.
#[derive(Debug)]
pub struct TestLog {
    /// The HSM's id.
    pub hsm: String,
    /// The partition's id.
    pub partition: String,
    signer: AuditSigner,
    chain: Chain,
    policy: CheckpointPolicy,
    /// Entry lines by sequence number (from the first one kept).
    entries: BTreeMap<u64, Vec<u8>>,
    checkpoints: BTreeMap<u64, Checkpoint>,
    time: u64,
}

impl TestLog {
    /// An empty log of `partition` on `hsm`, signed by `signer`.
    pub fn new(signer: AuditSigner, hsm: &str, partition: &str) -> TestLog {
        TestLog {
            hsm: hsm.into(),
            partition: partition.into(),
            signer,
            chain: Chain::for_log(partition),
            policy: CheckpointPolicy::every(100),
            entries: BTreeMap::new(),
            checkpoints: BTreeMap::new(),
            time: 1_732_377_600_000,
        }
    }

    /// The signer (to sign forged lines with another HSM's key, say).
    pub fn signer(&self) -> &AuditSigner {
        &self.signer
    }

    /// The last entry's sequence number.
    pub fn last_seq(&self) -> u64 {
        self.chain.last_seq()
    }

    /// Appends `n` entries of several kinds (every seventh administrative, with a checkpoint
    /// after it; at least every 100 entries a checkpoint).
    pub fn append(&mut self, n: u64) {
        for _ in 0..n {
            let seq = self.chain.last_seq() + 1;
            self.time += 1_250;
            let administrative = seq.is_multiple_of(7);
            let draft = sample_draft(seq, self.time, administrative);
            let line = self
                .chain
                .append(draft)
                .expect("sample entries fit")
                .to_canonical();
            self.entries.insert(seq, line);
            if self
                .policy
                .due(self.chain.entries_since_checkpoint(), administrative)
            {
                self.checkpoint_now();
            }
        }
    }

    /// Appends one entry of the caller's (a checkpoint after it, as the policy says).
    pub fn append_draft(&mut self, draft: EntryDraft) {
        let line = self
            .chain
            .append(draft)
            .expect("a valid draft")
            .to_canonical();
        self.entries.insert(self.chain.last_seq(), line);
        if self.policy.due(self.chain.entries_since_checkpoint(), true) {
            self.checkpoint_now();
        }
    }

    /// Signs and stores a checkpoint over the last entry.
    pub fn checkpoint_now(&mut self) {
        let cp = self.chain.checkpoint(&self.signer, self.time);
        self.checkpoints.insert(cp.seq, cp);
    }

    /// Drops the entries up to the last checkpoint at or below `seq`, keeping that checkpoint
    /// (the anchor of what remains), as the HSM prunes a confirmed export. Returns the anchor.
    pub fn prune_through(&mut self, seq: u64) -> Option<u64> {
        let anchor = *self.checkpoints.range(..=seq).next_back()?.0;
        self.entries.retain(|&s, _| s > anchor);
        self.checkpoints.retain(|&s, _| s >= anchor);
        Some(anchor)
    }

    /// Exports entries `from` to `to` as the HSM must: a checkpoint over entry `to` stored (if
    /// none is) and sent after it, the header carrying the checkpoint over `from - 1` if one is
    /// stored, and the closing checkpoint naming export `id`.
    pub fn export(&mut self, from: u64, to: u64, id: u8) -> Vec<u8> {
        if !self.checkpoints.contains_key(&to) && to > 0 {
            let hash = crate::entry::Entry::from_canonical(&self.entries[&to])
                .expect("stored lines are canonical")
                .hash();
            let cp = self.signer.sign_checkpoint(to, hash, self.time);
            self.checkpoints.insert(to, cp);
        }
        let header = ExportHeader {
            hsm: self.hsm.clone(),
            partition: self.partition.clone(),
            key: self.signer.public(),
            export: ExportId([id; 16]),
            from,
            to,
            anchor: if from > 1 {
                self.checkpoints.get(&(from - 1)).copied()
            } else {
                None
            },
        };
        let mut writer = ExportWriter::new(Vec::new(), &header).expect("a good header");
        let mut last_hash = match header.anchor {
            Some(a) => a.hash,
            None if from == 1 => crate::entry::genesis_hash(&self.partition),
            None => crate::entry::Entry::from_canonical(&self.entries[&from])
                .expect("canonical")
                .prev(),
        };
        for seq in from..=to {
            let line = &self.entries[&seq];
            writer.write_line(line).expect("a log line");
            last_hash = crate::entry::Entry::from_canonical(line)
                .expect("canonical")
                .hash();
            if let Some(cp) = self.checkpoints.get(&seq) {
                writer.write_line(&cp.to_canonical()).expect("a log line");
            }
        }
        let end = self
            .signer
            .sign_export_end(&header, last_hash, self.time)
            .expect("a good header");
        writer.finish(&end).expect("the header's export")
    }
}

/// Entry `seq` of a sample log: an officers' configuration change when `administrative`, else
/// the application's key operations, with a refusal or a failure now and then, and text that
/// needs escaping in every format.
pub fn sample_draft(seq: u64, time: u64, administrative: bool) -> EntryDraft {
    let op = |name: &str| Operation::new(name).expect("a valid name");
    if administrative {
        let outcome = if seq.is_multiple_of(3) {
            Outcome::refused("loosening change needs \"typed\" confirmation | = \\ ]")
        } else {
            Outcome::Ok
        };
        EntryDraft::new(
            time,
            Actor::new(Role::Pso, ["Alice Meier", "Zoë Müller"]),
            op("config.change"),
            outcome,
        )
        .with_object("partition")
        .with_detail("param", "key-export")
        .with_detail("old", "off")
        .with_detail("new", "wrapped=plain")
    } else {
        let outcome = if seq.is_multiple_of(11) {
            Outcome::failed("device busy\nretry")
        } else {
            Outcome::Ok
        };
        EntryDraft::new(
            time,
            Actor::new(Role::TechnicalUser, Vec::<String>::new()),
            op("key.sign"),
            outcome,
        )
        .with_object(format!(
            "key/{:016x}",
            seq.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ))
    }
}

/// [`verify_export`](crate::verify_export) with a chosen buffer size and thread count, so tests
/// can check that the parts and their joins give the line-by-line answer.
pub fn verify_export_chunked(
    reader: impl std::io::Read + Send,
    verifier: crate::export::ExportVerifier,
    chunk_len: usize,
    threads: usize,
) -> Result<crate::export::ExportReport, crate::error::LogError> {
    crate::export::verify_export_with(reader, verifier, chunk_len, threads)
}

/// Feeds `bytes` to `verifier` line by line, the simplest reading of the format.
pub fn verify_lines(
    bytes: &[u8],
    mut verifier: crate::export::ExportVerifier,
) -> Result<crate::export::ExportReport, crate::error::LogError> {
    let mut rest = bytes;
    while let Some(i) = rest.iter().position(|&b| b == b'\n') {
        verifier.push_line(&rest[..i])?;
        rest = &rest[i + 1..];
    }
    if !rest.is_empty() {
        verifier.push_cut(rest)?;
    }
    verifier.finish()
}
