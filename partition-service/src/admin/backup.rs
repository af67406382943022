//! Backup and restore over the link: the backup streamed as a bulk transfer while it is
//! sealed, logged with its digest at the end; a restore uploaded in bounded pieces, dry-run
//! (decrypted and checked whole, nothing changed), then committed in one transaction that
//! appends its entry. See [`crate::backup`] for what a backup holds.

use std::sync::Arc;

use audit_log::{Actor, KnownOperation};
use hsm_link::domain::PartitionId;
use hsm_link::message::{Action, AdminError, AdminResponse, BackupProblem, RemoteError, Response};
use hsm_link::server::{Reply, ReplyStream, SessionContext};
use usb_backup::container::ChunkChain;
use usb_backup::{Header, Sealer};
use zeroize::Zeroizing;

use super::session::{AdminSession, Ration, remote};
use crate::backup::{Migration, OpenedBackup, PlaintextStream};
use crate::service::{Event, Hsm, ServiceError};
use hex::encode as hex;

/// A restore upload in progress in one session.
pub(super) struct RestoreUpload {
    header: Header,
    file: Vec<u8>,
    /// The dry run's result, and the log position after its entry: a commit needs the
    /// partition unchanged since.
    dry_run: Option<(OpenedBackup, u64)>,
    /// Set when the upload is a migration (see `migrate.rs`).
    migration: Option<Migration>,
}

impl RestoreUpload {
    /// An upload begun with this header (the first bytes of the file).
    pub(super) fn new(header: Header, header_bytes: &[u8], migration: Option<Migration>) -> Self {
        RestoreUpload {
            header,
            file: header_bytes.to_vec(),
            dry_run: None,
            migration,
        }
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
        self.restore = Some(RestoreUpload::new(header_parsed, header, None));
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
        let file_len = upload.header.layout().file_len();
        if upload.file.len() as u64 + bytes.len() as u64 > file_len || upload.dry_run.is_some() {
            self.restore = None;
            return Err(refusal(BackupProblem::UploadOutOfOrder));
        }
        // Bounded by the announced length, which the header check bounded by the quota.
        upload.file.extend_from_slice(bytes);
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
        if upload.file.len() as u64 != upload.header.layout().file_len() {
            return Err(refusal(BackupProblem::Incomplete));
        }
        let source = super::migrate::source_of(&upload.header, upload.migration.as_ref());
        let opened = match self
            .hsm
            .open_upload(&record, &upload.file, upload.migration.as_ref())
        {
            Ok(o) => o,
            Err(ServiceError::Admin(refused)) => {
                self.restore = None;
                let event = Event::new(self.actor(), KnownOperation::BackupDryRun);
                return self.refuse(ctx, refused, event);
            }
            Err(other) => return Err(other),
        };
        let diff = self.hsm.restore_diff(&record, &opened)?;
        let actor = self.actor();
        let header_hash = hex(opened.header_hash);
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
            // The ciphertext is no longer needed: the opened backup is what a commit stores.
            upload.file = Vec::new();
            upload.dry_run = Some((opened, after));
        }
        Ok(AdminResponse::RestoreDiff(Box::new(diff)))
    }

    pub(super) fn restore_commit(
        &mut self,
        ctx: &SessionContext,
        header_hash: [u8; 32],
    ) -> Result<AdminResponse, ServiceError> {
        self.check(ctx, Action::Restore)?;
        let upload = self.restore.take();
        let source = upload
            .as_ref()
            .and_then(|u| super::migrate::source_of(&u.header, u.migration.as_ref()));
        let Some((opened, after)) = upload
            .and_then(|u| u.dry_run)
            .filter(|(o, _)| o.header_hash == header_hash)
        else {
            return Err(refusal(BackupProblem::NoDryRun));
        };
        let actor = self.actor();
        let objects = opened.keys.len() as u64;
        self.change(
            ctx,
            Ration::Take,
            |hsm, tx, record| {
                if record.log.next_seq != after {
                    return Err(refusal(BackupProblem::NoDryRun));
                }
                hsm.apply_restore(tx, record, &opened)?;
                #[cfg(feature = "test-support")]
                pause_in_swap();
                let event = Event::new(actor.clone(), KnownOperation::BackupRestore);
                let event = super::migrate::with_source(event, source.as_ref())
                    .detail("header-hash", hex(opened.header_hash))
                    .detail("sequence", opened.sequence.to_string())
                    .detail("created", opened.created_unix.to_string())
                    .detail("objects", objects.to_string());
                hsm.append(tx, record, event)
            },
            || Event::new(self.actor(), KnownOperation::BackupRestore),
        )?;
        Ok(AdminResponse::Restored {
            header_hash,
            objects,
        })
    }
}

/// Crash tests only (the `test-support` feature, never in a release build): inside a
/// restore's swap, with the old keys deleted and the backup's stored but nothing committed,
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
