//! The streamed log export (pages read one at a time, ending with a signed checkpoint) and its
//! confirmation, after which confirmed entries may be pruned.

use std::collections::VecDeque;
use std::sync::Arc;

use audit_log::{Actor, KnownOperation, LogLine};
use hsm_link::domain::PartitionId;
use hsm_link::message::{Action, AdminError, AdminResponse, LogQuery, RemoteError, Response};
use hsm_link::server::{Reply, ReplyStream, SessionContext};

use super::log_query::{is_unfiltered, matches_query};
use super::session::{AdminSession, Ration, remote};
use crate::model::LogFullPolicy;
use crate::service::{Event, Hsm, ServiceError};

impl AdminSession {
    /// Starts an export: the reply is a stream.
    pub(super) fn export_log(
        &self,
        ctx: &SessionContext,
        query: LogQuery,
    ) -> Result<Reply, ServiceError> {
        let record = self.check(ctx, Action::ExportLog)?;
        Ok(Reply::Stream(Box::new(Export::new(
            Arc::clone(&self.hsm),
            ctx.partition.clone(),
            query,
            self.actor(),
            record.log.first_seq,
        ))))
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

/// A log export: pages read from the store one at a time (memory stays flat), ending with a
/// checkpoint signed at the end of the read.
struct Export {
    hsm: Arc<Hsm>,
    partition: PartitionId,
    query: LogQuery,
    actor: Actor,
    next_seq: Option<u64>,
    pending: VecDeque<Vec<u8>>,
    lines: u64,
    last_seq: Option<u64>,
    /// The last entry line sent: the end-of-export checkpoint covers exactly it.
    last_line: Vec<u8>,
    /// Whether the export holds every stored entry from the oldest on, unfiltered: only such an
    /// export may later be confirmed (and its entries pruned).
    complete: bool,
    checkpoint: Option<String>,
}

impl Export {
    fn new(
        hsm: Arc<Hsm>,
        partition: PartitionId,
        query: LogQuery,
        actor: Actor,
        first_seq: u64,
    ) -> Self {
        let complete = is_unfiltered(&query) && query.from_seq <= first_seq;
        Export {
            hsm,
            partition,
            next_seq: Some(query.from_seq),
            query,
            actor,
            pending: Default::default(),
            lines: 0,
            last_seq: None,
            last_line: Vec::new(),
            complete,
            checkpoint: None,
        }
    }

    fn load_page(&mut self) -> Result<(), ServiceError> {
        let Some(from) = self.next_seq.take() else {
            return Ok(());
        };
        let unfiltered = is_unfiltered(&self.query);
        let mut count = 0;
        let mut next = None;
        let (query, pending, last_seq, last_line) = (
            &self.query,
            &mut self.pending,
            &mut self.last_seq,
            &mut self.last_line,
        );
        self.hsm.store().read(|tx| {
            tx.log_lines(&self.partition, from, |seq, line, checkpoint| {
                if query.to_seq.is_some_and(|to| seq > to) {
                    return false;
                }
                if count == EXPORT_PAGE {
                    next = Some(seq);
                    return false;
                }
                count += 1;
                if matches_query(query, line) {
                    pending.push_back(line.to_vec());
                    *last_seq = Some(seq);
                    last_line.clear();
                    last_line.extend_from_slice(line);
                }
                if let Some(cp) = checkpoint
                    && unfiltered
                {
                    pending.push_back(cp.to_vec());
                }
                true
            })
            .map_err(ServiceError::from)
        })?;
        self.next_seq = next;
        if self.next_seq.is_none() {
            self.finish_read()?;
        }
        Ok(())
    }

    /// The end of the read: sign a checkpoint over everything stored and log the export. How
    /// far the export went is recorded only by [`ReplyStream::finish`], once every chunk is out.
    fn finish_read(&mut self) -> Result<(), ServiceError> {
        let last_seq = self.last_seq;
        let last_hash = match LogLine::from_canonical(&self.last_line) {
            Ok(LogLine::Entry(entry)) => Some(entry.hash()),
            _ => None,
        };
        let complete = self.complete;
        let actor = self.actor.clone();
        let line = self.hsm.modify(&self.partition, |hsm, tx, record| {
            // A checkpoint over exactly the last entry sent, so the file verifies to its end
            // even if entries were appended while it was being read.
            let line = match (last_seq, last_hash) {
                (Some(seq), Some(hash)) => Some(hsm.checkpoint_at(tx, record, seq, hash)?),
                _ => None,
            };
            let mut event = Event::new(actor, KnownOperation::LogExport);
            if let Some(seq) = last_seq {
                event = event.detail("up-to", seq.to_string());
            }
            if !complete {
                event = event.detail("partial", "filtered or not from the oldest entry");
            }
            hsm.append(tx, record, event)?;
            Ok(line)
        })?;
        if let Some(line) = line {
            // Do not repeat a checkpoint the page already carried.
            if self.pending.back() != Some(&line) {
                self.pending.push_back(line.clone());
            }
            self.checkpoint = Some(String::from_utf8_lossy(&line).into_owned());
        }
        Ok(())
    }
}

impl ReplyStream for Export {
    fn fill(&mut self, chunk: &mut Vec<u8>, max: usize) -> Result<bool, RemoteError> {
        loop {
            if self.pending.is_empty() {
                if self.next_seq.is_none() {
                    return Ok(false);
                }
                self.load_page().map_err(remote)?;
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
        if let Some(seq) = self.last_seq
            && self.complete
        {
            self.hsm
                .modify(&self.partition, |_, _, record| {
                    let exported = record.log.exported_up_to.unwrap_or(0).max(seq);
                    record.log.exported_up_to = Some(exported);
                    Ok(())
                })
                .map_err(remote)?;
        }
        Ok(Response::Admin(AdminResponse::ExportDone {
            lines: self.lines,
            last_seq: self.last_seq,
            checkpoint: self.checkpoint.unwrap_or_default(),
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
        let first_seq = hsm.partition(id).unwrap().log.first_seq;
        Box::new(Export::new(
            Arc::clone(hsm),
            id.clone(),
            LogQuery::from(1, 0),
            genesis(),
            first_seq,
        ))
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
        assert!(dropped.last_seq.is_some());
        drop(dropped);
        assert_eq!(hsm.partition(&id).unwrap().log.exported_up_to, None);

        let mut done = export(&hsm, &id);
        drain(&mut done);
        let last = done.last_seq.unwrap();
        let Response::Admin(AdminResponse::ExportDone { last_seq, .. }) = done.finish().unwrap()
        else {
            panic!("not an export's end")
        };
        assert_eq!(last_seq, Some(last));
        assert_eq!(hsm.partition(&id).unwrap().log.exported_up_to, Some(last));
    }
}
