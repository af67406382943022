//! The streamed log export (pages read one at a time, ending with a signed checkpoint) and its
//! confirmation, after which confirmed entries may be pruned.

use std::collections::VecDeque;
use std::sync::Arc;

use audit_log::{Actor, ExportHeader, ExportId, Hash, KnownOperation, LogLine};
use hsm_link::domain::PartitionId;
use hsm_link::message::{Action, AdminError, AdminResponse, LogQuery, RemoteError, Response};
use hsm_link::server::{Reply, ReplyStream, SessionContext};

use super::log_query::is_unfiltered;
use super::session::{AdminSession, Ration, remote};
use crate::model::LogFullPolicy;
use crate::service::{Event, Hsm, ServiceError};

impl AdminSession {
    /// Starts an export: the reply is a stream. The range is fixed here, before anything is
    /// read: a filtered query, or one reaching below the oldest stored entry, is refused.
    pub(super) fn export_log(
        &self,
        ctx: &SessionContext,
        query: LogQuery,
    ) -> Result<Reply, ServiceError> {
        self.check(ctx, Action::ExportLog)?;
        if !is_unfiltered(&query) {
            return Err(AdminError::FilteredExport.into());
        }
        Ok(Reply::Stream(Box::new(Export::start(
            Arc::clone(&self.hsm),
            ctx.partition.clone(),
            &query,
            self.actor(),
        )?)))
    }

    pub(super) fn confirm_export(
        &self,
        ctx: &SessionContext,
        up_to_seq: u64,
    ) -> Result<AdminResponse, ServiceError> {
        self.check(ctx, Action::ConfirmExport)?;
        let actor = self.actor();
        self.change(
            ctx,
            Ration::Take,
            |hsm, tx, record| {
                let exported = record.log.exported_up_to.unwrap_or(0);
                if up_to_seq > exported {
                    return Err(AdminError::ConfirmBeyondExport {
                        requested: up_to_seq,
                        exported,
                    }
                    .into());
                }
                let confirmed = record.log.confirmed_up_to.unwrap_or(0).max(up_to_seq);
                record.log.confirmed_up_to = Some(confirmed);
                // The confirmation's own entry is appended before anything is dropped (it may
                // use the reserve); then, under the refuse policy, the confirmed entries go.
                let event = Event::new(actor.clone(), KnownOperation::LogConfirm)
                    .detail("up-to", confirmed.to_string());
                hsm.append(tx, record, event)?;
                if record.log.full_policy == LogFullPolicy::Refuse {
                    hsm.prune_confirmed(tx, record)?;
                }
                Ok(())
            },
            || Event::new(self.actor(), KnownOperation::LogConfirm),
        )?;
        Ok(AdminResponse::Done)
    }
}

/// Entries read per store snapshot during an export.
const EXPORT_PAGE: usize = 512;

/// A log export file, streamed: the header, the stored lines of entries `from..=to` read from
/// the store a page at a time (memory stays flat), the checkpoint over `to`, and the closing
/// checkpoint naming the export (see [`audit_log::export`]).
struct Export {
    hsm: Arc<Hsm>,
    partition: PartitionId,
    actor: Actor,
    header: ExportHeader,
    /// Where the next page starts; `None` once every entry of the range was read.
    next_seq: Option<u64>,
    /// Whether the end of the read (checkpoint, log entry, closing line) was done.
    read_done: bool,
    pending: VecDeque<Vec<u8>>,
    lines: u64,
    /// The hash of the last entry read (at first, of entry `from - 1` or the genesis).
    last_hash: Hash,
    /// The stored checkpoint over `to`, once a page sent it.
    checkpoint: Option<Vec<u8>>,
    /// Whether the export continues what was exported before (or starts at the oldest stored
    /// entry): only then does it move the exported mark, so a confirmation never covers a gap.
    contiguous: bool,
}

impl Export {
    /// Fixes the range, the anchor and the export id, and queues the header line.
    fn start(
        hsm: Arc<Hsm>,
        partition: PartitionId,
        query: &LogQuery,
        actor: Actor,
    ) -> Result<Self, ServiceError> {
        let record = hsm.partition(&partition)?;
        let (first, last) = (record.log.first_seq, record.log.next_seq - 1);
        let (from, to) = export_range(query, first, last, record.log.confirmed_up_to)?;
        let (anchor, first_prev) = anchor_and_prev(&hsm, &partition, from, first)?;
        let last_hash = match (from, first_prev) {
            (1, _) => audit_log::genesis_hash(partition.as_str()),
            (_, Some(prev)) => prev,
            // An empty export at the end of the log: it ends where the log does.
            (_, None) => Hash(record.log.last_hash),
        };
        let mut export = [0u8; 16];
        getrandom::fill(&mut export).map_err(crate::crypto::CryptoError::Rng)?;
        let header = ExportHeader {
            hsm: hsm.keys().hsm_id(),
            partition: partition.as_str().to_owned(),
            key: hsm.audit_key(),
            export: ExportId(export),
            from,
            to,
            anchor,
        };
        let exported = record.log.exported_up_to.unwrap_or(0);
        Ok(Export {
            pending: VecDeque::from([header.to_canonical()?]),
            contiguous: from <= first.max(exported + 1),
            next_seq: (from <= to).then_some(from),
            read_done: false,
            hsm,
            partition,
            actor,
            header,
            lines: 0,
            last_hash,
            checkpoint: None,
        })
    }

    fn load_page(&mut self) -> Result<(), ServiceError> {
        let Some(from) = self.next_seq.take() else {
            return Ok(());
        };
        let to = self.header.to;
        let mut count = 0;
        let mut next = None;
        let mut last_line = Vec::new();
        let (pending, checkpoint) = (&mut self.pending, &mut self.checkpoint);
        self.hsm.store().read(|tx| {
            tx.log_lines(&self.partition, from, |seq, line, cp| {
                if seq > to {
                    return false;
                }
                if count == EXPORT_PAGE {
                    next = Some(seq);
                    return false;
                }
                count += 1;
                pending.push_back(line.to_vec());
                last_line.clear();
                last_line.extend_from_slice(line);
                if let Some(cp) = cp {
                    pending.push_back(cp.to_vec());
                    if seq == to {
                        *checkpoint = Some(cp.to_vec());
                    }
                }
                true
            })
            .map_err(ServiceError::from)
        })?;
        if let Ok(LogLine::Entry(entry)) = LogLine::from_canonical(&last_line) {
            self.last_hash = entry.hash();
        }
        self.next_seq = next;
        Ok(())
    }

    /// The end of the read: the checkpoint over `to` (signed and stored unless a page already
    /// sent one), the export's own log entry, and the closing checkpoint naming the export.
    /// How far the export went is recorded only by [`ReplyStream::finish`], once every chunk
    /// is out.
    fn finish_read(&mut self) -> Result<(), ServiceError> {
        let (from, to, hash) = (self.header.from, self.header.to, self.last_hash);
        let sign = to >= from && self.checkpoint.is_none();
        let event = Event::new(self.actor.clone(), KnownOperation::LogExport)
            .detail("export", self.header.export.to_string())
            .detail("from", from.to_string())
            .detail("to", to.to_string());
        let line = self.hsm.modify(&self.partition, |hsm, tx, record| {
            let line = match sign {
                true => Some(hsm.checkpoint_at(tx, record, to, hash)?),
                false => None,
            };
            hsm.append(tx, record, event)?;
            Ok(line)
        })?;
        if let Some(line) = line {
            self.pending.push_back(line.clone());
            self.checkpoint = Some(line);
        }
        let end = self.hsm.sign_export_end(&self.header, hash)?;
        self.pending.push_back(end.to_canonical());
        self.read_done = true;
        Ok(())
    }
}

/// The export's range `(from, to)`: 1 asks for everything stored (the oldest stored entry on,
/// after pruning), 0 for everything since the last confirmed export; any other start below the
/// oldest stored entry is refused, not silently moved.
fn export_range(
    query: &LogQuery,
    first: u64,
    last: u64,
    confirmed_up_to: Option<u64>,
) -> Result<(u64, u64), ServiceError> {
    let from = match query.from_seq {
        0 => first.max(confirmed_up_to.unwrap_or(0) + 1),
        1 => first,
        from => from,
    };
    let to = query.to_seq.map_or(last, |to| to.min(last));
    if from < first || from > to.saturating_add(1) {
        return Err(AdminError::ExportRange {
            from,
            to,
            first,
            last,
        }
        .into());
    }
    Ok((from, to))
}

/// The checkpoint over the entry before `from` (none from the genesis), and the `prev` hash
/// of entry `from` (none past the log's end).
fn anchor_and_prev(
    hsm: &Hsm,
    partition: &PartitionId,
    from: u64,
    first: u64,
) -> Result<(Option<audit_log::Checkpoint>, Option<Hash>), ServiceError> {
    let (anchor, first_prev) = hsm.store().read(|tx| {
        let anchor = match from {
            1 => None,
            _ => tx.checkpoint_at(partition, from - 1)?,
        };
        let mut prev = None;
        tx.log_lines(partition, from, |seq, line, _| {
            if seq == from
                && let Ok(LogLine::Entry(entry)) = LogLine::from_canonical(line)
            {
                prev = Some(entry.prev());
            }
            false
        })?;
        Ok::<_, ServiceError>((anchor, prev))
    })?;
    let anchor = match anchor.as_deref().map(LogLine::from_canonical) {
        Some(Ok(LogLine::Checkpoint(cp))) => Some(cp),
        _ => None,
    };
    // A pruned log keeps the checkpoint over the entry before its oldest: the anchor an
    // export from there must carry to verify alone.
    if from == first && from > 1 && anchor.is_none() {
        return Err(ServiceError::from(audit_log::LogError::Rejected(
            audit_log::Fault::BadHeader {
                problem: format!("no stored checkpoint over entry {}", from - 1),
            },
        )));
    }
    Ok((anchor, first_prev))
}

impl ReplyStream for Export {
    fn fill(&mut self, chunk: &mut Vec<u8>, max: usize) -> Result<bool, RemoteError> {
        loop {
            if self.pending.is_empty() {
                if self.read_done {
                    return Ok(false);
                }
                match self.next_seq {
                    Some(_) => self.load_page(),
                    None => self.finish_read(),
                }
                .map_err(remote)?;
                continue;
            }
            let line_len = self.pending.front().map_or(0, |l| l.len() + 1);
            if chunk.len() + line_len > max {
                return Ok(true);
            }
            let line = self.pending.pop_front().expect("checked non-empty");
            chunk.extend_from_slice(&line);
            chunk.push(b'\n');
            self.lines += 1;
        }
    }

    /// Called only after the last chunk went out: only now do the entries count as exported
    /// (and so may be confirmed). A stream dropped before its end leaves the mark where it was.
    fn finish(self: Box<Self>) -> Result<Response, RemoteError> {
        let (from, to) = (self.header.from, self.header.to);
        if to >= from && self.contiguous && self.read_done {
            self.hsm
                .modify(&self.partition, |_, _, record| {
                    let exported = record.log.exported_up_to.unwrap_or(0).max(to);
                    record.log.exported_up_to = Some(exported);
                    Ok(())
                })
                .map_err(remote)?;
        }
        Ok(Response::Admin(AdminResponse::ExportDone {
            lines: self.lines,
            last_seq: (to >= from).then_some(to),
            checkpoint: self
                .checkpoint
                .map(|l| String::from_utf8_lossy(&l).into_owned())
                .unwrap_or_default(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::{Clock, genesis};
    use hsm_link::domain::ServiceTier;

    fn hsm() -> (tempfile::TempDir, Arc<Hsm>, PartitionId) {
        let dir = tempfile::tempdir().unwrap();
        Hsm::init(dir.path()).unwrap();
        let hsm = Arc::new(Hsm::open(dir.path(), Clock::system()).unwrap());
        let id = PartitionId::new("p1").unwrap();
        hsm.create_partition(id.clone(), "Payments", ServiceTier::Economy)
            .unwrap();
        // A few entries to export.
        for _ in 0..3 {
            hsm.issue_pairing_code(&id, genesis()).unwrap();
        }
        (dir, hsm, id)
    }

    fn export(hsm: &Arc<Hsm>, id: &PartitionId) -> Box<Export> {
        Box::new(
            Export::start(
                Arc::clone(hsm),
                id.clone(),
                &LogQuery::from(1, 0),
                genesis(),
            )
            .unwrap(),
        )
    }

    /// Reads the stream to its end in chunks of one line at most (a chunk always has room
    /// for a whole line): everything is read from the store and handed out, as the link does
    /// before `finish`.
    fn drain(export: &mut Export) -> usize {
        let mut total = 0;
        loop {
            let mut chunk = Vec::new();
            let more = export
                .fill(&mut chunk, audit_log::MAX_LINE_LEN + 1)
                .unwrap();
            total += chunk.len();
            if !more {
                return total;
            }
        }
    }

    #[test]
    fn entries_count_as_exported_only_when_the_stream_finishes() {
        let (_dir, hsm, id) = hsm();
        // Every page read and every chunk produced, then the stream is dropped (the link
        // failed before the last chunks reached the terminal): nothing counts as exported.
        let mut dropped = export(&hsm, &id);
        assert!(drain(&mut dropped) > 0);
        assert!(dropped.read_done);
        drop(dropped);
        assert_eq!(hsm.partition(&id).unwrap().log.exported_up_to, None);

        let mut done = export(&hsm, &id);
        drain(&mut done);
        let last = done.header.to;
        let Response::Admin(AdminResponse::ExportDone { last_seq, .. }) = done.finish().unwrap()
        else {
            panic!("not an export's end")
        };
        assert_eq!(last_seq, Some(last));
        assert_eq!(hsm.partition(&id).unwrap().log.exported_up_to, Some(last));
    }

    #[test]
    fn an_empty_export_verifies_and_moves_nothing() {
        let (_dir, hsm, id) = hsm();
        let mut query = LogQuery::from(3, 0);
        query.to_seq = Some(2);
        let mut empty =
            Box::new(Export::start(Arc::clone(&hsm), id.clone(), &query, genesis()).unwrap());
        let mut file = Vec::new();
        while {
            let mut chunk = Vec::new();
            let more = empty.fill(&mut chunk, audit_log::MAX_LINE_LEN + 1).unwrap();
            file.extend_from_slice(&chunk);
            more
        } {}
        let Response::Admin(AdminResponse::ExportDone { last_seq, .. }) = empty.finish().unwrap()
        else {
            panic!("not an export's end")
        };
        assert_eq!(last_seq, None);
        let pin = audit_log::KeyPin::from_fingerprint(&hsm.audit_key().fingerprint().to_string())
            .unwrap();
        let report =
            audit_log::verify_export(&file[..], audit_log::ExportVerifier::new(pin)).unwrap();
        assert_eq!((report.header().from, report.header().to), (3, 2));
        assert_eq!(report.entries(), 0);
        assert_eq!(hsm.partition(&id).unwrap().log.exported_up_to, None);
    }
}
