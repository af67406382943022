//! Streaming verification of a log: the chain, every entry's hash and every checkpoint.

use crate::canonical::{CHECKPOINT_LINE_PREFIX, LogLine, parse_checkpoint, parse_entry};
use crate::error::{Fault, LogError};
use crate::hash::Hash;
use crate::keys::AuditKey;

/// Verifies a log line by line.
///
/// It takes a log one line at a time and keeps only the last sequence number and hash, so its
/// memory stays flat however long the log. It stops at the first bad line and says which line
/// and why ([`Fault`]). It does not read files: the caller splits the input into lines (bounding
/// each by [`MAX_LINE_LEN`](crate::MAX_LINE_LEN)), or hands a whole buffer to [`verify_log`].
///
/// What it checks, line by line:
///
/// * every line is a canonical entry or checkpoint ([`Fault::NonCanonical`], [`Fault::TooLong`]);
/// * every entry's hash matches its contents ([`Fault::EditedEntry`]);
/// * sequence numbers go up by one from the anchor: a jump forward is [`Fault::Gap`] (an entry
///   was removed), a later entry just before the missing one is [`Fault::OutOfOrder`] (a pair
///   was swapped), an entry already seen is [`Fault::OutOfOrder`] too;
/// * every entry's `prev` is the hash of the entry before ([`Fault::BrokenChain`]);
/// * every checkpoint verifies with the pinned key ([`Fault::BadCheckpoint`]) and names the
///   entry just before it, by sequence number and hash ([`Fault::CheckpointMismatch`]: if it
///   names a later entry, the entries before it are missing).
///
/// At the end, [`Verifier::finish`] reports what was verified, including entries after the last
/// checkpoint, which no signature covers; [`Report::require_signed_to_end`] turns such a tail
/// into an error, as an export (which always ends with a checkpoint) must.
///
/// What it cannot see: a log cut off right after a checkpoint ends like a shorter, valid log;
/// compare [`Report::last_seq`] with the number of entries the HSM says it has, or the anchor of
/// the next export. Times are recorded, not checked (they need not increase). A partition's log
/// is bound to its id through its first entry's `prev` ([`crate::genesis_hash`]): verify it with
/// [`Verifier::for_log`] (or that anchor), and another partition's log, even one signed by the
/// same audit key, fails at its first line.
pub struct Verifier {
    key: AuditKey,
    last_seq: u64,
    last_hash: Hash,
    lines: u64,
    entries: u64,
    checkpoints: u64,
    last_checkpoint_seq: Option<u64>,
    unsigned_tail: Option<UnsignedTail>,
    /// An entry that jumped forward, reported at the next line as a gap or as a swapped pair.
    pending_gap: Option<PendingGap>,
    failed: Option<LogError>,
    scratch: Vec<u8>,
}

#[derive(Clone, Copy, Debug)]
struct PendingGap {
    line: u64,
    expected: u64,
    found: u64,
}

/// Entries at the end of a log that no checkpoint covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnsignedTail {
    /// The first entry after the last checkpoint.
    pub first_seq: u64,
    /// Its line, counted from 1.
    pub first_line: u64,
    /// How many entries follow the last checkpoint.
    pub entries: u64,
}

/// What a verification found, when every line was good. Only a [`Verifier`] makes one.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "a report may show entries that no checkpoint covers"]
pub struct Report {
    lines: u64,
    entries: u64,
    checkpoints: u64,
    last_seq: u64,
    last_hash: Hash,
    last_checkpoint_seq: Option<u64>,
    unsigned_tail: Option<UnsignedTail>,
}

impl Report {
    /// Lines read (entries and checkpoints).
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Entries verified.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Checkpoints verified.
    pub fn checkpoints(&self) -> u64 {
        self.checkpoints
    }

    /// The last entry's sequence number (the anchor's, 0 at genesis, if there was no entry).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The last entry's hash (the anchor's if there was no entry).
    pub fn last_hash(&self) -> Hash {
        self.last_hash
    }

    /// The entry the last checkpoint names, if there was a checkpoint.
    pub fn last_checkpoint_seq(&self) -> Option<u64> {
        self.last_checkpoint_seq
    }

    /// Entries after the last checkpoint (all entries, if there was none): no signature
    /// covers them.
    pub fn unsigned_tail(&self) -> Option<UnsignedTail> {
        self.unsigned_tail
    }

    /// Whether a checkpoint covers the last entry (or the anchor, if there were no entries).
    pub fn is_signed_to_end(&self) -> bool {
        self.last_checkpoint_seq.is_some() && self.unsigned_tail.is_none()
    }

    /// The report if a checkpoint covers the end of the log, as it must for an export; otherwise
    /// [`Fault::UnsignedTail`] at the first uncovered entry's line, or [`Fault::NoCheckpoint`]
    /// one past the last line.
    pub fn require_signed_to_end(self) -> Result<Report, LogError> {
        if let Some(tail) = self.unsigned_tail {
            return Err(LogError::Verification {
                line: tail.first_line,
                fault: Fault::UnsignedTail {
                    first_seq: tail.first_seq,
                    entries: tail.entries,
                },
            });
        }
        if self.last_checkpoint_seq.is_none() {
            return Err(LogError::Verification {
                line: self.lines + 1,
                fault: Fault::NoCheckpoint,
            });
        }
        Ok(self)
    }
}

impl Verifier {
    /// A verifier that checks checkpoints with `key` (pinned by the caller, never taken from the
    /// log) and expects the log to continue `anchor`: `Some((seq, hash))` of an entry already
    /// verified (the end of an earlier export, say), or `None` for a log from its first entry
    /// (sequence number 1, `prev` = [`Hash::ZERO`]).
    pub fn new(key: AuditKey, anchor: Option<(u64, Hash)>) -> Verifier {
        let (last_seq, last_hash) = anchor.unwrap_or((0, Hash::ZERO));
        Verifier {
            key,
            last_seq,
            last_hash,
            lines: 0,
            entries: 0,
            checkpoints: 0,
            last_checkpoint_seq: None,
            unsigned_tail: None,
            pending_gap: None,
            failed: None,
            scratch: Vec::with_capacity(1024),
        }
    }

    /// A verifier for the whole log named `log_id`, from its first entry (see
    /// [`Chain::for_log`](crate::Chain::for_log)).
    pub fn for_log(key: AuditKey, log_id: &str) -> Verifier {
        Verifier::new(key, Some((0, crate::entry::genesis_hash(log_id))))
    }

    /// Checks the next line (without its newline). After the first bad line every call returns
    /// that line's error again and reads nothing.
    ///
    /// The fault of an entry whose sequence number jumps forward is reported one line later (or
    /// by [`finish`](Self::finish)), once the next line shows whether an entry was removed
    /// ([`Fault::Gap`]) or a pair swapped ([`Fault::OutOfOrder`]); it still names the jumping
    /// entry's line.
    pub fn push_line(&mut self, line: &[u8]) -> Result<(), LogError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        self.lines += 1;
        let result = self.check(line);
        if let Err(e) = &result {
            self.failed = Some(e.clone());
        }
        result
    }

    /// Lines read so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// The last entry verified so far, by sequence number and hash (the anchor's before any).
    pub fn position(&self) -> (u64, Hash) {
        (self.last_seq, self.last_hash)
    }

    /// Takes in `part`, the report of the lines that follow, verified by another verifier that
    /// started at `anchor`: the state is then that of this verifier fed those lines. Refuses
    /// (returning `false`, changing nothing) unless this verifier stands exactly at `anchor`,
    /// with nothing pending and nothing failed; the caller then feeds the lines itself.
    pub(crate) fn absorb(&mut self, anchor: (u64, Hash), part: &Report) -> bool {
        if self.failed.is_some() || self.pending_gap.is_some() || self.position() != anchor {
            return false;
        }
        let whole = self.snapshot().followed_by(part.clone());
        self.lines = whole.lines;
        self.entries = whole.entries;
        self.checkpoints = whole.checkpoints;
        self.last_seq = whole.last_seq;
        self.last_hash = whole.last_hash;
        self.last_checkpoint_seq = whole.last_checkpoint_seq;
        self.unsigned_tail = whole.unsigned_tail;
        true
    }

    /// The report so far, as [`finish`](Self::finish) would give it, leaving the verifier
    /// failed if it fails (an entry that jumped forward with no line after it is a gap).
    pub(crate) fn settle(&mut self) -> Result<Report, LogError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if let Some(g) = self.pending_gap.take() {
            let e = g.gap();
            self.failed = Some(e.clone());
            return Err(e);
        }
        Ok(self.snapshot())
    }

    fn snapshot(&self) -> Report {
        Report {
            lines: self.lines,
            entries: self.entries,
            checkpoints: self.checkpoints,
            last_seq: self.last_seq,
            last_hash: self.last_hash,
            last_checkpoint_seq: self.last_checkpoint_seq,
            unsigned_tail: self.unsigned_tail,
        }
    }

    /// Ends verification: the report, or the first bad line.
    pub fn finish(self) -> Result<Report, LogError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if let Some(g) = self.pending_gap {
            return Err(g.gap());
        }
        Ok(self.snapshot())
    }

    fn check(&mut self, line: &[u8]) -> Result<(), LogError> {
        let n = self.lines;
        let at = |fault| LogError::Verification { line: n, fault };
        if line.starts_with(CHECKPOINT_LINE_PREFIX) {
            if let Some(g) = self.pending_gap.take() {
                return Err(g.gap());
            }
            let cp = parse_checkpoint(line, &mut self.scratch).map_err(|e| at(fault_of(e)))?;
            cp.verify(&self.key).map_err(|e| at(fault_of(e)))?;
            if cp.seq != self.last_seq || cp.hash != self.last_hash {
                return Err(at(Fault::CheckpointMismatch {
                    seq: cp.seq,
                    last_seq: self.last_seq,
                }));
            }
            self.checkpoints += 1;
            self.last_checkpoint_seq = Some(cp.seq);
            self.unsigned_tail = None;
            return Ok(());
        }

        let entry = parse_entry(line, &mut self.scratch);
        if let Some(g) = self.pending_gap.take() {
            // The earlier line is the first bad one; this line only tells what happened there.
            return Err(match entry {
                Ok(e) if e.seq == g.expected => g.swapped(),
                _ => g.gap(),
            });
        }
        let entry = entry.map_err(|e| at(fault_of(e)))?;
        let Some(expected) = self.last_seq.checked_add(1) else {
            // Nothing can follow entry u64::MAX.
            return Err(at(Fault::OutOfOrder {
                expected: self.last_seq,
                found: entry.seq,
            }));
        };
        if entry.seq > expected {
            self.pending_gap = Some(PendingGap {
                line: n,
                expected,
                found: entry.seq,
            });
            return Ok(());
        }
        if entry.seq < expected {
            return Err(at(Fault::OutOfOrder {
                expected,
                found: entry.seq,
            }));
        }
        if entry.prev != self.last_hash {
            return Err(at(Fault::BrokenChain { seq: entry.seq }));
        }
        self.last_seq = entry.seq;
        self.last_hash = entry.hash;
        self.entries += 1;
        match &mut self.unsigned_tail {
            Some(tail) => tail.entries += 1,
            None => {
                self.unsigned_tail = Some(UnsignedTail {
                    first_seq: entry.seq,
                    first_line: n,
                    entries: 1,
                })
            }
        }
        Ok(())
    }
}

impl PendingGap {
    fn gap(self) -> LogError {
        LogError::Verification {
            line: self.line,
            fault: Fault::Gap {
                expected: self.expected,
                found: self.found,
            },
        }
    }

    fn swapped(self) -> LogError {
        LogError::Verification {
            line: self.line,
            fault: Fault::OutOfOrder {
                expected: self.expected,
                found: self.found,
            },
        }
    }
}

/// The fault in a single-line error (every error the line parsers return is one).
fn fault_of(e: LogError) -> Fault {
    match e {
        LogError::Rejected(fault) | LogError::Verification { fault, .. } => fault,
        other => Fault::NonCanonical {
            problem: other.to_string(),
        },
    }
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("key", &self.key)
            .field("lines", &self.lines)
            .field("last_seq", &self.last_seq)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

/// Logs shorter than this are verified on one thread.
const PARALLEL_MIN_BYTES: usize = 256 * 1024;
/// Most threads [`verify_log`] uses.
const MAX_THREADS: usize = 8;

/// Verifies a whole log held in memory: lines separated by `\n`, the last one with or without
/// its newline. An empty line anywhere else is a bad line. Like [`Verifier::finish`], it
/// reports an unsigned tail rather than failing on it.
///
/// The result is exactly that of one [`Verifier`] fed the same lines. A large log is cut into
/// parts verified on parallel threads, each from the entry its first line names; if every part
/// verifies and each starts where the one before ended, that is the answer. Otherwise the log is
/// verified again from the start on one thread, which finds the first bad line.
pub fn verify_log(
    key: AuditKey,
    anchor: Option<(u64, Hash)>,
    log: &[u8],
) -> Result<Report, LogError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_THREADS);
    if threads > 1
        && log.len() >= PARALLEL_MIN_BYTES
        && let Some(report) = verify_in_parts(key, anchor, log, threads)
    {
        return Ok(report);
    }
    let mut verifier = Verifier::new(key, anchor);
    for line in lines(log) {
        verifier.push_line(line)?;
    }
    verifier.finish()
}

/// The lines of a log: split at `\n`, one final `\n` ignored.
fn lines(log: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = (!log.is_empty()).then(|| log.strip_suffix(b"\n").unwrap_or(log));
    body.into_iter().flat_map(|b| b.split(|&c| c == b'\n'))
}

/// The report for `log` if it verifies in `parts` parts that join up; `None` if anything is
/// wrong, for the caller to find sequentially.
fn verify_in_parts(
    key: AuditKey,
    anchor: Option<(u64, Hash)>,
    log: &[u8],
    parts: usize,
) -> Option<Report> {
    if log.is_empty() {
        return Verifier::new(key, anchor).finish().ok();
    }
    let body = log.strip_suffix(b"\n").unwrap_or(log);
    // Cut at line starts near equal fractions of the bytes.
    let mut starts = vec![0];
    for k in 1..parts {
        let from = (body.len() / parts * k).max(*starts.last()?);
        let Some(newline) = body[from..].iter().position(|&b| b == b'\n') else {
            break;
        };
        starts.push(from + newline + 1);
    }
    let chunks: Vec<&[u8]> = starts
        .iter()
        .zip(starts.iter().skip(1).map(|&s| s - 1).chain([body.len()]))
        .map(|(&s, e)| body.get(s..e))
        .collect::<Option<_>>()?;
    // Each later part starts from what its first line says came before it; the joins are
    // checked below.
    let mut anchors = vec![anchor];
    for chunk in &chunks[1..] {
        let first = chunk.split(|&b| b == b'\n').next()?;
        anchors.push(Some(match LogLine::from_canonical(first).ok()? {
            LogLine::Entry(e) => (e.seq().checked_sub(1)?, e.prev()),
            LogLine::Checkpoint(cp) => (cp.seq, cp.hash),
        }));
    }
    let reports: Vec<Option<Report>> = std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .iter()
            .zip(&anchors)
            .map(|(&chunk, &anchor)| {
                scope.spawn(move || {
                    let mut verifier = Verifier::new(key, anchor);
                    for line in chunk.split(|&b| b == b'\n') {
                        verifier.push_line(line).ok()?;
                    }
                    verifier.finish().ok()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut reports = reports.into_iter();
    let mut whole = reports.next()??;
    for (report, anchor) in reports.zip(&anchors[1..]) {
        let report = report?;
        if *anchor != Some((whole.last_seq, whole.last_hash)) {
            return None;
        }
        whole = whole.followed_by(report);
    }
    Some(whole)
}

impl Report {
    /// The report for this part of a log followed by `next`, which was verified from this
    /// part's last entry.
    fn followed_by(self, next: Report) -> Report {
        let shifted = next.unsigned_tail.map(|t| UnsignedTail {
            first_line: t.first_line + self.lines,
            ..t
        });
        let unsigned_tail = if next.last_checkpoint_seq.is_some() {
            shifted
        } else {
            match (self.unsigned_tail, shifted) {
                (Some(t), Some(u)) => Some(UnsignedTail {
                    entries: t.entries + u.entries,
                    ..t
                }),
                (t, u) => t.or(u),
            }
        };
        Report {
            lines: self.lines + next.lines,
            entries: self.entries + next.entries,
            checkpoints: self.checkpoints + next.checkpoints,
            last_seq: next.last_seq,
            last_hash: next.last_hash,
            last_checkpoint_seq: next.last_checkpoint_seq.or(self.last_checkpoint_seq),
            unsigned_tail,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::actor::{Actor, Role};
    use crate::entry::{Chain, EntryDraft, Operation, Outcome};
    use crate::keys::AuditSigner;

    fn sequential(
        key: AuditKey,
        anchor: Option<(u64, Hash)>,
        log: &[u8],
    ) -> Result<Report, LogError> {
        let mut verifier = Verifier::new(key, anchor);
        for line in lines(log) {
            verifier.push_line(line)?;
        }
        verifier.finish()
    }

    /// `entries` entries, a checkpoint after those in `signed` and, if `end`, at the end.
    fn log(entries: u64, signed: &[u64], end: bool, signer: &AuditSigner) -> Vec<Vec<u8>> {
        let mut chain = Chain::new();
        let mut lines = Vec::new();
        for i in 1..=entries {
            let draft = EntryDraft::new(
                i,
                Actor::new(Role::Pso, ["Ann"]),
                Operation::new("login").unwrap(),
                Outcome::Ok,
            );
            lines.push(chain.append(draft).unwrap().to_canonical());
            if signed.contains(&i) {
                lines.push(chain.checkpoint(signer, i).to_canonical());
            }
        }
        if end {
            lines.push(chain.checkpoint(signer, 0).to_canonical());
        }
        lines
    }

    fn join(lines: &[Vec<u8>]) -> Vec<u8> {
        lines
            .iter()
            .flat_map(|l| l.iter().copied().chain([b'\n']))
            .collect()
    }

    proptest! {
        /// Verifying in parts gives the sequential report when the log is good, and gives up
        /// (for the sequential pass to locate the fault) when it is not.
        #[test]
        fn parts_agree_with_one_pass(
            entries in 0u64..40,
            signed in prop::collection::vec(1u64..40, 0..6),
            end in any::<bool>(),
            tamper in 0u8..4,
            pick in any::<prop::sample::Index>(),
            parts in 2usize..7,
            anchored in any::<bool>(),
        ) {
            let signer = AuditSigner::from_secret_bytes(&[5; 32]);
            let mut lines = log(entries, &signed, end, &signer);
            let anchor = if anchored && lines.len() > 2 {
                // Start after the first entry.
                let first = crate::Entry::from_canonical(&lines[0]).unwrap();
                lines.remove(0);
                Some((first.seq(), first.hash()))
            } else {
                None
            };
            if !lines.is_empty() {
                let i = pick.index(lines.len());
                match tamper {
                    1 => { lines.remove(i); }
                    2 if i + 1 < lines.len() => lines.swap(i, i + 1),
                    3 => { let b = lines[i].len() / 2; lines[i][b] ^= 0x20; }
                    _ => {}
                }
            }
            let bytes = join(&lines);
            let one = sequential(signer.public(), anchor, &bytes);
            let split = verify_in_parts(signer.public(), anchor, &bytes, parts);
            match &one {
                Ok(report) => prop_assert_eq!(split.as_ref(), Some(report)),
                Err(_) => prop_assert_eq!(split, None),
            }
            prop_assert_eq!(verify_log(signer.public(), anchor, &bytes), one);
        }
    }

    #[test]
    fn unsigned_tails_join_across_parts() {
        let signer = AuditSigner::from_secret_bytes(&[5; 32]);
        let lines = log(30, &[3], false, &signer);
        let bytes = join(&lines);
        let one = sequential(signer.public(), None, &bytes).unwrap();
        assert_eq!(
            one.unsigned_tail(),
            Some(UnsignedTail {
                first_seq: 4,
                first_line: 5,
                entries: 27
            })
        );
        for parts in 2..8 {
            assert_eq!(
                verify_in_parts(signer.public(), None, &bytes, parts),
                Some(one.clone())
            );
        }
    }
}
