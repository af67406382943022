//! Backup and restore over the link: the backup streamed as a bulk transfer while it is
//! sealed, logged with its digest at the end; a restore uploaded in bounded pieces, each
//! chunk decrypted and staged as it completes, dry-run (the check completed and the diff
//! computed from the staging, the partition unchanged), then committed in one transaction that
//! swaps the staged keys in and appends its entry. See [`crate::backup`] for what a backup
//! holds and how staging keeps memory flat.

use std::sync::Arc;

use audit_log::{Actor, KnownOperation};
use hsm_link::domain::PartitionId;
use hsm_link::message::{Action, AdminError, AdminResponse, BackupProblem, RemoteError, Response};
use hsm_link::server::{Reply, ReplyStream, SessionContext};
use usb_backup::container::ChunkChain;
use usb_backup::{Header, Sealer};
use zeroize::Zeroizing;

use super::session::{AdminSession, Ration, remote};
use crate::backup::{Migration, PlaintextStream, StagedRestore};
use crate::model::PartitionRecord;
use crate::service::{Event, Hsm, ServiceError};
use hex::encode as hex;

/// A restore upload in progress in one session (dropping it drops its staging).
pub(super) struct RestoreUpload {
    staged: StagedRestore<Arc<Hsm>>,
    /// The log position after the dry run's entry: a commit needs the partition unchanged
    /// since.
    dry_run: Option<u64>,
    /// Set when the upload is a migration (see `migrate.rs`).
    migration: Option<Migration>,
}

impl RestoreUpload {
    /// An upload begun with this header (the first bytes of the file), checked for `record`.
    pub(super) fn new(
        hsm: Arc<Hsm>,
        record: &PartitionRecord,
        header: Header,
        header_bytes: &[u8],
        migration: Option<Migration>,
    ) -> Result<Self, ServiceError> {
        let staged = StagedRestore::begin(hsm, record, header, header_bytes, migration.as_ref())?;
        Ok(RestoreUpload {
            staged,
            dry_run: None,
            migration,
        })
    }
}

fn refusal(problem: BackupProblem) -> ServiceError {
    AdminError::Backup(problem).into()
}

impl AdminSession {
    /// Starts a backup: the reply is the container, sealed as it streams.
    pub(super) fn create_backup(&self, ctx: &SessionContext) -> Result<Reply, ServiceError> {
        self.check(ctx, Action::Backup)?;
        let fail = |e: ServiceError| match e {
            ServiceError::Admin(refusal) => self.refuse(
                ctx,
                refusal,
                Event::new(self.actor(), KnownOperation::BackupCreate),
            ),
            other => Err(other),
        };
        let stream = BackupStream::new(Arc::clone(&self.hsm), ctx.partition.clone(), self.actor())
            .or_else(fail)?;
        Ok(Reply::Stream(Box::new(stream)))
    }

    pub(super) fn restore_begin(
        &mut self,
        ctx: &SessionContext,
        file_len: u64,
        header: &[u8],
    ) -> Result<AdminResponse, ServiceError> {
        let record = self.check(ctx, Action::Restore)?;
        self.restore = None;
        let checked = Header::parse(header)
            .map_err(|_| refusal(BackupProblem::Malformed))
            .and_then(|h| {
                self.hsm.check_backup_header(&record, &h, file_len)?;
                Ok(h)
            });
        let header_parsed = match checked {
            Ok(h) => h,
            Err(ServiceError::Admin(refused)) => {
                let event = Event::new(self.actor(), KnownOperation::BackupRestore);
                return self.refuse(ctx, refused, event);
            }
            Err(other) => return Err(other),
        };
        let upload =
            RestoreUpload::new(Arc::clone(&self.hsm), &record, header_parsed, header, None)?;
        self.restore = Some(upload);
        Ok(AdminResponse::Done)
    }

    pub(super) fn restore_chunk(
        &mut self,
        ctx: &SessionContext,
        bytes: &[u8],
    ) -> Result<AdminResponse, ServiceError> {
        self.check(ctx, Action::Restore)?;
        let Some(upload) = self.restore.as_mut() else {
            return Err(refusal(BackupProblem::UploadOutOfOrder));
        };
        // Decrypted and staged as chunks complete; more than announced is out of order.
        if let Err(e) = upload.staged.push(bytes) {
            self.restore = None;
            return Err(e);
        }
        Ok(AdminResponse::Done)
    }

    pub(super) fn restore_dry_run(
        &mut self,
        ctx: &SessionContext,
    ) -> Result<AdminResponse, ServiceError> {
        let record = self.check(ctx, Action::Restore)?;
        let Some(upload) = self.restore.as_mut() else {
            return Err(refusal(BackupProblem::UploadOutOfOrder));
        };
        let source = super::migrate::source_of(upload.staged.header(), upload.migration.as_ref());
        match upload.staged.finish(&record) {
            Ok(()) => {}
            Err(ServiceError::Admin(AdminError::Backup(BackupProblem::Incomplete))) => {
                return Err(refusal(BackupProblem::Incomplete));
            }
            Err(ServiceError::Admin(refused)) => {
                self.restore = None;
                let event = Event::new(self.actor(), KnownOperation::BackupDryRun);
                return self.refuse(ctx, refused, event);
            }
            Err(other) => return Err(other),
        }
        let diff = upload.staged.diff(&record)?;
        let actor = self.actor();
        let header_hash = hex(diff.header_hash);
        let after = self.change(
            ctx,
            Ration::Take,
            |hsm, tx, record| {
                let event = Event::new(actor.clone(), KnownOperation::BackupDryRun);
                let event = super::migrate::with_source(event, source.as_ref())
                    .detail("header-hash", header_hash.clone())
                    .detail("returning", diff.returning.count.to_string())
                    .detail("removed", diff.removed.count.to_string())
                    .detail("config-changes", diff.config.len().to_string());
                hsm.append(tx, record, event)?;
                Ok(record.log.next_seq)
            },
            || Event::new(self.actor(), KnownOperation::BackupDryRun),
        )?;
        if let Some(upload) = self.restore.as_mut() {
            upload.dry_run = Some(after);
        }
        Ok(AdminResponse::RestoreDiff(Box::new(diff)))
    }

    pub(super) fn restore_commit(
        &mut self,
        ctx: &SessionContext,
        header_hash: [u8; 32],
    ) -> Result<AdminResponse, ServiceError> {
        self.check(ctx, Action::Restore)?;
        // Taken whatever happens: a commit is tried once, and the staging goes with it.
        let Some(upload) = self.restore.take() else {
            return Err(refusal(BackupProblem::NoDryRun));
        };
        let source = super::migrate::source_of(upload.staged.header(), upload.migration.as_ref());
        let Some(after) = upload
            .dry_run
            .filter(|_| upload.staged.header().hash() == header_hash)
        else {
            return Err(refusal(BackupProblem::NoDryRun));
        };
        let actor = self.actor();
        let staged = &upload.staged;
        let objects = staged.totals().objects;
        let facts = staged.header().facts();
        let (sequence, created) = (facts.sequence, facts.created);
        let result = self.change(
            ctx,
            Ration::Take,
            |hsm, tx, record| {
                if record.log.next_seq != after {
                    return Err(refusal(BackupProblem::NoDryRun));
                }
                staged.apply(tx, record)?;
                #[cfg(feature = "test-support")]
                pause_in_swap();
                let event = Event::new(actor.clone(), KnownOperation::BackupRestore);
                let event = super::migrate::with_source(event, source.as_ref())
                    .detail("header-hash", hex(header_hash))
                    .detail("sequence", sequence.to_string())
                    .detail("created", created.to_string())
                    .detail("objects", objects.to_string());
                hsm.append(tx, record, event)
            },
            || Event::new(self.actor(), KnownOperation::BackupRestore),
        );
        // Dropped outside the transaction: a failed commit's staging is cleared now.
        drop(upload);
        result?;
        Ok(AdminResponse::Restored {
            header_hash,
            objects,
        })
    }
}

/// Crash tests only (the `test-support` feature, never in a release build): inside a
/// restore's swap, with the old keys deleted and the staged ones moved in but nothing committed,
/// marks the moment with the file `TESSERA_TEST_SWAP_MARK` names and waits
/// `TESSERA_TEST_SWAP_PAUSE_MS`, so that a test can kill the process exactly there.
#[cfg(feature = "test-support")]
fn pause_in_swap() {
    let Some(mark) = std::env::var_os("TESSERA_TEST_SWAP_MARK") else {
        return;
    };
    let _ = std::fs::write(mark, b"in the swap\n");
    let ms = std::env::var("TESSERA_TEST_SWAP_PAUSE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    std::thread::sleep(std::time::Duration::from_millis(ms));
}

/// What the backup stream sends next.
enum Stage {
    Header,
    Body,
    Trailer,
    Done,
}

/// A backup sealed chunk by chunk as the terminal takes it, its plaintext read from one store
/// snapshot a page of keys at a time: memory holds a page of records and one chunk, whatever
/// the partition's size.
struct BackupStream {
    hsm: Arc<Hsm>,
    partition: PartitionId,
    actor: Actor,
    source: PlaintextStream<Arc<Hsm>>,
    sealer: Sealer,
    chain: Option<ChunkChain>,
    header: Header,
    objects: u64,
    stage: Stage,
    /// Bytes ready to send, and how many of them were sent.
    out: Vec<u8>,
    sent: usize,
    total: u64,
    trailer: Vec<u8>,
}

impl BackupStream {
    fn new(hsm: Arc<Hsm>, partition: PartitionId, actor: Actor) -> Result<Self, ServiceError> {
        let source = PlaintextStream::new(Arc::clone(&hsm), &partition)?;
        let (record, objects) = (source.record(), source.key_count());
        let recipients = hsm.backup_recipients(record)?;
        let facts = hsm.backup_facts(record, source.len(), objects);
        let (sealer, header) = Sealer::new(facts, &recipients, &hsm.keys().audit_public())
            .map_err(|_| refusal(BackupProblem::Malformed))?;
        Ok(BackupStream {
            chain: Some(ChunkChain::new(header.backup_id())),
            hsm,
            partition,
            actor,
            source,
            sealer,
            header,
            objects,
            stage: Stage::Header,
            out: Vec::new(),
            sent: 0,
            total: 0,
            trailer: Vec::new(),
        })
    }

    /// Makes the next piece of the file; false once the whole file was made.
    fn produce(&mut self) -> Result<bool, ServiceError> {
        self.out.clear();
        self.sent = 0;
        match self.stage {
            Stage::Header => {
                self.out = self.header.encode();
                self.stage = Stage::Body;
            }
            Stage::Body => match self.sealer.next_chunk_len() {
                Some(len) => {
                    // The chunk is read, sealed in place and sent from one buffer: no copies.
                    let mut buf = Zeroizing::new(std::mem::take(&mut self.out));
                    buf.reserve_exact(len + usb_backup::container::TAG_LEN);
                    buf.resize(len, 0);
                    self.source.read_exact_into(&mut buf)?;
                    self.sealer
                        .seal_next(&mut buf)
                        .map_err(|_| refusal(BackupProblem::Malformed))?;
                    if let Some(chain) = self.chain.as_mut() {
                        chain.push_chunk(&buf);
                    }
                    // Sealed: ciphertext needs no wiping.
                    self.out = std::mem::take(&mut *buf);
                }
                None => {
                    self.stage = Stage::Trailer;
                    return self.produce();
                }
            },
            Stage::Trailer => {
                let chain = self.chain.take().ok_or(refusal(BackupProblem::Malformed))?;
                let (trailer, bytes) =
                    chain.finish(self.header.hash(), self.hsm.keys().audit_signing_key());
                self.trailer = trailer.encode().to_vec();
                self.out = bytes;
                self.stage = Stage::Done;
                self.log(&trailer)?;
            }
            Stage::Done => return Ok(false),
        }
        self.total += self.out.len() as u64;
        Ok(true)
    }

    /// Logs the backup with its digest (header hash and signed chain).
    fn log(&self, trailer: &usb_backup::Trailer) -> Result<(), ServiceError> {
        let facts = self.header.facts();
        let file_len = self.header.layout().file_len();
        let event = Event::new(self.actor.clone(), KnownOperation::BackupCreate)
            .detail("backup-id", hex(self.header.backup_id()))
            .detail("header-hash", hex(self.header.hash()))
            .detail("chain", hex(trailer.chain))
            .detail("sequence", facts.sequence.to_string())
            .detail("objects", self.objects.to_string())
            .detail("bytes", file_len.to_string());
        self.hsm.modify(&self.partition, |hsm, tx, record| {
            hsm.append(tx, record, event)
        })
    }
}

impl ReplyStream for BackupStream {
    fn fill(&mut self, chunk: &mut Vec<u8>, max: usize) -> Result<bool, RemoteError> {
        while chunk.len() < max {
            if self.sent == self.out.len() && !self.produce().map_err(remote)? {
                return Ok(false);
            }
            let take = (max - chunk.len()).min(self.out.len() - self.sent);
            chunk.extend_from_slice(&self.out[self.sent..self.sent + take]);
            self.sent += take;
        }
        Ok(true)
    }

    fn finish(self: Box<Self>) -> Result<Response, RemoteError> {
        Ok(Response::Admin(AdminResponse::BackupDone {
            file_len: self.total,
            header_hash: self.header.hash(),
            trailer: self.trailer,
        }))
    }
}
