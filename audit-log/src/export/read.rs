//! Verifying an export streamed from a reader: large reads, parts of the log verified on
//! parallel threads, and the exact first bad line found sequentially when anything is wrong.
//!
//! A reader thread reads the bytes into a few reused buffers of [`CHUNK_LEN`] bytes (large
//! reads, no per-line allocation, nothing re-serialised), each cut after its last newline (the
//! rest moves to the next buffer), and hands them over while the verifier works on the earlier
//! ones, so reading from disk overlaps with verifying. Each buffer's log lines are verified on a
//! worker thread from the entry its first line names, as [`verify_log`](crate::verify_log) does
//! with parts of a log in memory; the results are taken in file order, and a part that verified
//! and starts exactly where the verified file so far ends is taken in whole
//! ([`ExportVerifier::absorb`]). The header, the closing checkpoint and anything after it, and
//! every line from the first part that failed or did not join, go through the
//! [`ExportVerifier`] line by line, so the answer (report or first bad line) is exactly the
//! line-by-line one. Memory is bounded by the buffers in flight, whatever the file's size.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use super::closing::EXPORT_END_LINE_PREFIX;
use super::verifier::{ExportReport, ExportVerifier, seq_and_hash};
use crate::canonical::{LogLine, MAX_LINE_LEN};
use crate::error::LogError;
use crate::hash::Hash;
use crate::keys::AuditKey;
use crate::verify::{Report, Verifier};

/// Bytes read into one buffer: large reads, and parts big enough to amortise a thread hand-off.
const CHUNK_LEN: usize = 8 << 20;
/// Buffers read ahead of the verifier, waiting for it.
const READ_AHEAD: usize = 2;
/// Idle buffers kept for reuse (a fresh buffer costs its page faults).
const MAX_SPARE: usize = 4;
/// Most worker threads.
const MAX_THREADS: usize = 8;

/// Verifies an export read from `reader` with `verifier` (which holds the pinned key and, if
/// any, the previous export): the report, or the first bad line and why.
///
/// Reads in large blocks on a reader thread and verifies on up to eight threads (as many as the
/// machine has), in memory bounded by a few blocks of 8 MiB per thread; the result is exactly that of feeding every line to
/// `verifier` one by one. An I/O error is [`LogError::Read`].
pub fn verify_export(
    reader: impl Read + Send,
    verifier: ExportVerifier,
) -> Result<ExportReport, LogError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_THREADS);
    verify_export_with(reader, verifier, CHUNK_LEN, threads)
}

/// [`verify_export`] with a chosen buffer size (at least [`MAX_LINE_LEN`] + 1 is best; smaller
/// ones grow to hold a whole line) and thread count (1: no worker threads).
pub(crate) fn verify_export_with(
    reader: impl Read + Send,
    mut verifier: ExportVerifier,
    chunk_len: usize,
    threads: usize,
) -> Result<ExportReport, LogError> {
    let mut chunks = Chunks::new(reader, chunk_len.max(1));
    if threads <= 1 {
        while let Some(piece) = chunks.next_piece()? {
            feed(&mut verifier, piece, 0)?;
        }
        return verifier.finish();
    }
    std::thread::scope(|scope| {
        let (piece_tx, pieces) = sync_channel::<Result<Piece, LogError>>(READ_AHEAD);
        let (spare_tx, spare_rx) = std::sync::mpsc::channel::<Vec<u8>>();
        scope.spawn(move || read_ahead(chunks, &piece_tx, &spare_rx));
        let (jobs, job_rx) = sync_channel::<Job>(threads);
        let job_rx = Arc::new(Mutex::new(job_rx));
        let (result_tx, results) = std::sync::mpsc::channel::<Done>();
        for _ in 0..threads {
            let job_rx = Arc::clone(&job_rx);
            let result_tx = result_tx.clone();
            scope.spawn(move || worker(&job_rx, &result_tx));
        }
        drop(result_tx);
        let mut run = Run {
            verifier,
            jobs: Some(jobs),
            results,
            waiting: BTreeMap::new(),
            sent: 0,
            taken: 0,
            sequential: false,
            spare: Vec::new(),
        };
        let outcome = run.drive(&pieces, &spare_tx, threads);
        // Close the job queue so the workers end, and the piece queue so the reader ends,
        // whatever happened.
        run.jobs = None;
        drop(pieces);
        outcome.and_then(|()| run.verifier.finish())
    })
}

/// The reader thread: reads pieces ahead of the verifier until the end, an error, or the
/// verifier stops taking them; takes idle buffers back for reuse.
fn read_ahead<R: Read>(
    mut chunks: Chunks<R>,
    out: &SyncSender<Result<Piece, LogError>>,
    spare: &Receiver<Vec<u8>>,
) {
    loop {
        for buf in spare.try_iter() {
            chunks.give_back(buf);
        }
        let Some(next) = chunks.next_piece().transpose() else {
            return;
        };
        let failed = next.is_err();
        if out.send(next).is_err() || failed {
            return;
        }
    }
}

/// Feeds a piece to the verifier line by line, from byte `from` of a full buffer.
fn feed(verifier: &mut ExportVerifier, piece: Piece, from: usize) -> Result<(), LogError> {
    match piece {
        Piece::Lines(buf, len) => {
            for line in buf[from..len - 1].split(|&b| b == b'\n') {
                verifier.push_line(line)?;
            }
            Ok(())
        }
        Piece::Cut(bytes) => verifier.push_cut(&bytes),
        Piece::TooLong(prefix, len) => verifier.push_too_long(&prefix, len),
    }
}

/// What the reader yields: whole lines (`buf[..len]`, ending with a newline), a last piece
/// without one, or the start of a line longer than any may be, with its length.
enum Piece {
    Lines(Vec<u8>, usize),
    Cut(Vec<u8>),
    TooLong(Vec<u8>, usize),
}

/// Reads whole lines into buffers.
struct Chunks<R> {
    reader: R,
    chunk_len: usize,
    /// Bytes read after the last newline of the previous buffer.
    carry: Vec<u8>,
    done: bool,
    spare: Vec<Vec<u8>>,
}

impl<R: Read> Chunks<R> {
    fn new(reader: R, chunk_len: usize) -> Self {
        Chunks {
            reader,
            chunk_len,
            carry: Vec::new(),
            done: false,
            spare: Vec::new(),
        }
    }

    /// The next buffer of whole lines, or the cut-off last piece, or the end.
    fn next_piece(&mut self) -> Result<Option<Piece>, LogError> {
        if self.done {
            return Ok(None);
        }
        let want = self.chunk_len.max(self.carry.len() + 1);
        // A fresh buffer comes zeroed from the allocator (no pass over it here); a reused one
        // grows only for a line longer than it.
        let mut buf = self.spare.pop().unwrap_or_else(|| vec![0; want]);
        if buf.len() < want {
            buf.resize(want, 0);
        }
        buf[..self.carry.len()].copy_from_slice(&self.carry);
        let mut len = self.carry.len();
        self.carry.clear();
        loop {
            while len < buf.len() {
                match self.reader.read(&mut buf[len..]) {
                    Ok(0) => break,
                    Ok(n) => len += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        return Err(LogError::Read {
                            problem: e.to_string(),
                        });
                    }
                }
            }
            let eof = len < buf.len();
            match buf[..len].iter().rposition(|&b| b == b'\n') {
                Some(last) => {
                    self.carry.extend_from_slice(&buf[last + 1..len]);
                    return Ok(Some(Piece::Lines(buf, last + 1)));
                }
                None if eof => {
                    self.done = true;
                    buf.truncate(len);
                    return Ok((len > 0).then_some(Piece::Cut(buf)));
                }
                // One line longer than the buffer: grow it, up to one byte past the longest
                // line any part of an export may have. Past that, only count its bytes (memory
                // stays bounded) to the newline or the end: the verifier refuses it by length.
                None if len > MAX_LINE_LEN => {
                    self.done = true;
                    buf.truncate(len);
                    return Ok(Some(match self.skip_line()? {
                        Some(rest) => Piece::TooLong(buf, len + rest),
                        None => Piece::Cut(buf),
                    }));
                }
                None => {
                    let grown = (buf.len() * 2).min(MAX_LINE_LEN + 1).max(len + 1);
                    buf.resize(grown, 0);
                }
            }
        }
    }

    /// Reads to the end of the current line: its remaining length, or `None` at the end of
    /// the input (the line was cut).
    fn skip_line(&mut self) -> Result<Option<usize>, LogError> {
        let mut block = vec![0u8; 64 * 1024];
        let mut skipped = 0;
        loop {
            let n = match self.reader.read(&mut block) {
                Ok(0) => return Ok(None),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(LogError::Read {
                        problem: e.to_string(),
                    });
                }
            };
            if let Some(i) = block[..n].iter().position(|&b| b == b'\n') {
                return Ok(Some(skipped + i));
            }
            skipped += n;
        }
    }

    fn give_back(&mut self, buf: Vec<u8>) {
        if self.spare.len() < MAX_SPARE {
            self.spare.push(buf);
        }
    }
}

/// A buffer of log lines for a worker: `buf[start..len]` are whole lines.
struct Job {
    index: u64,
    buf: Vec<u8>,
    start: usize,
    len: usize,
    key: AuditKey,
    watch: Arc<Vec<u64>>,
}

/// A worker's answer: the part's report if it verified, from which anchor, the watched hashes
/// found, and where the closing checkpoint starts if the part holds it.
struct Done {
    index: u64,
    buf: Vec<u8>,
    start: usize,
    len: usize,
    verified: Option<(u64, Hash, Report)>,
    found: Vec<(u64, Hash)>,
    /// Offset of the first line not verified here (the closing checkpoint), if any.
    stop: Option<usize>,
}

fn worker(jobs: &Mutex<Receiver<Job>>, results: &std::sync::mpsc::Sender<Done>) {
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let done = verify_part(job);
        if results.send(done).is_err() {
            return;
        }
    }
}

/// Verifies a buffer's log lines from the anchor its first line names.
fn verify_part(job: Job) -> Done {
    let mut found = Vec::new();
    let mut stop = None;
    let verified = (|| {
        let body = job.buf.get(job.start..job.len.checked_sub(1)?)?;
        let first = body.split(|&b| b == b'\n').next()?;
        if first.starts_with(EXPORT_END_LINE_PREFIX) {
            stop = Some(job.start);
            return Some((0, Hash::ZERO, None));
        }
        let anchor = match LogLine::from_canonical(first).ok()? {
            LogLine::Entry(e) => (e.seq().checked_sub(1)?, e.prev()),
            LogLine::Checkpoint(cp) => (cp.seq, cp.hash),
        };
        let mut verifier = Verifier::new(job.key, Some(anchor));
        let mut offset = job.start;
        for line in body.split(|&b| b == b'\n') {
            if line.starts_with(EXPORT_END_LINE_PREFIX) {
                stop = Some(offset);
                break;
            }
            verifier.push_line(line).ok()?;
            if !job.watch.is_empty()
                && let Some((seq, hash)) = seq_and_hash(line)
                && job.watch.contains(&seq)
            {
                found.push((seq, hash));
            }
            offset += line.len() + 1;
        }
        Some((anchor.0, anchor.1, Some(verifier.finish().ok()?)))
    })();
    let verified = match verified {
        Some((seq, hash, Some(report))) => Some((seq, hash, report)),
        _ => None,
    };
    Done {
        index: job.index,
        buf: job.buf,
        start: job.start,
        len: job.len,
        verified,
        found,
        stop,
    }
}

/// The reading side: hands buffers out, takes results back in file order.
struct Run {
    verifier: ExportVerifier,
    jobs: Option<SyncSender<Job>>,
    results: Receiver<Done>,
    waiting: BTreeMap<u64, Done>,
    sent: u64,
    taken: u64,
    /// Set once a part failed or did not join: every later line goes through the verifier.
    sequential: bool,
    spare: Vec<Vec<u8>>,
}

impl Run {
    fn drive(
        &mut self,
        pieces: &Receiver<Result<Piece, LogError>>,
        spare: &std::sync::mpsc::Sender<Vec<u8>>,
        threads: usize,
    ) -> Result<(), LogError> {
        // One part queued per worker beyond the one it works on keeps every worker busy.
        let max_in_flight = 2 * threads as u64;
        for piece in pieces {
            let piece = piece?;
            for buf in self.spare.drain(..) {
                // The reader is gone only at the end of the input: nothing more to fill.
                let _ = spare.send(buf);
            }
            let (buf, len) = match piece {
                Piece::Lines(buf, len) => (buf, len),
                last @ (Piece::Cut(_) | Piece::TooLong(..)) => {
                    self.take_all()?;
                    return feed(&mut self.verifier, last, 0);
                }
            };
            // Lines the verifier must see itself, in order after every part in flight: the
            // header, the first line of an export whose start nothing proves, and everything
            // once a part failed or the closing checkpoint was read.
            let mut start = 0;
            while start < len && (self.sequential || self.verifier.body_position().is_none()) {
                self.take_all()?;
                let end = buf[start..len]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(len, |i| start + i);
                self.verifier.push_line(&buf[start..end])?;
                start = end + 1;
            }
            if start >= len {
                self.spare.push(buf);
                continue;
            }
            while self.sent - self.taken >= max_in_flight {
                self.take_one()?;
            }
            let position = self.verifier.body_position().filter(|_| !self.sequential);
            let Some((key, _, watch)) = position else {
                self.take_all()?;
                feed(&mut self.verifier, Piece::Lines(buf, len), start)?;
                continue;
            };
            let job = Job {
                index: self.sent,
                buf,
                start,
                len,
                key,
                watch: Arc::new(watch.to_vec()),
            };
            let jobs = self.jobs.as_ref().ok_or_else(internal)?;
            jobs.send(job).map_err(|_| internal())?;
            self.sent += 1;
        }
        self.take_all()
    }

    fn take_all(&mut self) -> Result<(), LogError> {
        while self.taken < self.sent {
            self.take_one()?;
        }
        Ok(())
    }

    /// Waits for the next part in file order and takes it in.
    fn take_one(&mut self) -> Result<(), LogError> {
        let done = loop {
            if let Some(done) = self.waiting.remove(&self.taken) {
                break done;
            }
            let done = self.results.recv().map_err(|_| internal())?;
            self.waiting.insert(done.index, done);
        };
        self.taken += 1;
        let joined = !self.sequential
            && match &done.verified {
                Some((seq, hash, report)) => {
                    self.verifier.absorb((*seq, *hash), report, &done.found)
                }
                None => false,
            };
        let rest = if joined {
            done.stop
        } else {
            self.sequential = true;
            Some(done.start)
        };
        let result = match rest {
            Some(from) => feed(&mut self.verifier, Piece::Lines(done.buf, done.len), from),
            None => {
                self.spare.push(done.buf);
                Ok(())
            }
        };
        if result.is_err() {
            self.sequential = true;
        }
        result
    }
}

fn internal() -> LogError {
    LogError::Read {
        problem: "a verification thread stopped".into(),
    }
}
