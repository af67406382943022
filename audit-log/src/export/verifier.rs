//! Verifying an export line by line: header, log lines, closing checkpoint, and the link to
//! the export before it.

use super::closing::{EXPORT_END_LINE_PREFIX, ExportEnd};
use super::header::{EXPORT_MAGIC, ExportHeader};
use super::pin::KeyPin;
use crate::canonical::{LogLine, MAX_LINE_LEN};
use crate::entry::genesis_hash;
use crate::error::{Fault, LogError};
use crate::hash::Hash;
use crate::keys::AuditKey;
use crate::verify::{Report, Verifier};

/// Where a verified export's chain starts, and what proves that start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// At the partition's genesis: the export holds the log from entry 1.
    Genesis,
    /// At the HSM's signed checkpoint in the header (a pruned log, or one that keeps it).
    Anchor {
        /// The entry the anchor names (`from - 1`).
        seq: u64,
    },
    /// Where the previous export ([`ExportVerifier::after`]) ends, or within it.
    Previous(Link),
    /// At whatever the first entry names: nothing in this file proves what came before it.
    /// Verify with the previous export to prove that nothing between them was dropped.
    Unanchored {
        /// The entry before the first (`from - 1`).
        seq: u64,
        /// The hash the first entry links to.
        hash: Hash,
    },
}

/// How an export lies relative to the previous one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// It starts right after the previous export's last entry.
    Consecutive,
    /// Entries `first` to `last` are in both exports (and agree).
    Overlapping {
        /// The first entry in both.
        first: u64,
        /// The last entry in both.
        last: u64,
    },
}

/// A verified export, as the export after it is checked against: its log, range and the hashes
/// it proved. Made from a report ([`ExportReport::as_previous`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Previous {
    hsm: String,
    partition: String,
    from: u64,
    to: u64,
    start_hash: Hash,
    last_hash: Hash,
    known: Vec<(u64, Hash)>,
}

impl Previous {
    /// The hash of entry `seq`, if that export proved it: its start, its last entry, or an entry
    /// it was asked to watch ([`ExportVerifier::watching`]).
    pub fn hash_at(&self, seq: u64) -> Option<Hash> {
        if seq == self.to {
            Some(self.last_hash)
        } else if seq == self.from - 1 {
            Some(self.start_hash)
        } else {
            self.known.iter().find(|(s, _)| *s == seq).map(|(_, h)| *h)
        }
    }
}

/// What verifying an export proved. Only an [`ExportVerifier`] makes one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportReport {
    header: ExportHeader,
    end: ExportEnd,
    log: Report,
    start: Start,
    start_hash: Hash,
    lines: u64,
    known: Vec<(u64, Hash)>,
}

impl ExportReport {
    /// The header (every field now vouched for by the closing checkpoint and the pinned key).
    pub fn header(&self) -> &ExportHeader {
        &self.header
    }

    /// The closing checkpoint.
    pub fn end(&self) -> &ExportEnd {
        &self.end
    }

    /// The log lines' report (entries and inner checkpoints).
    pub fn log(&self) -> &Report {
        &self.log
    }

    /// Entries verified.
    pub fn entries(&self) -> u64 {
        self.log.entries()
    }

    /// Lines of the file: header, log lines and the closing checkpoint.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Where the chain starts and what proves it.
    pub fn start(&self) -> Start {
        self.start
    }

    /// The hash of entry `seq`, if this verification proved it (its start, its end, or an
    /// entry it watched).
    pub fn hash_at(&self, seq: u64) -> Option<Hash> {
        self.as_previous().hash_at(seq)
    }

    /// This export as the previous one of the next: see [`ExportVerifier::after`].
    pub fn as_previous(&self) -> Previous {
        Previous {
            hsm: self.header.hsm.clone(),
            partition: self.header.partition.clone(),
            from: self.header.from,
            to: self.header.to,
            start_hash: self.start_hash,
            last_hash: self.end.hash,
            known: self.known.clone(),
        }
    }
}

/// Verifies an export line by line, in flat memory, against a pinned key.
///
/// Feed it every line of the file without its newline ([`push_line`](Self::push_line)), a
/// final piece without a newline with [`push_cut`](Self::push_cut), then
/// [`finish`](Self::finish). [`verify_export`](crate::verify_export) does all that from a
/// reader, faster. The first bad line stops it; the error names that line (counted from 1, the
/// header being line 1) and a [`Fault`] whose [`kind`](Fault::kind) says what happened.
///
/// What it checks: the header (format, version, the key against the pin); the anchor's
/// signature, or the genesis of the partition for an export from entry 1, or the previous
/// export's end; every log line as [`Verifier`] does; the closing checkpoint's signature, and
/// that it names this export, its range, and the last entry's hash; that nothing follows it.
#[derive(Debug)]
pub struct ExportVerifier {
    pin: KeyPin,
    previous: Option<Previous>,
    watch: Vec<u64>,
    line: u64,
    state: State,
    failed: Option<LogError>,
}

#[derive(Debug)]
enum State {
    Header,
    Body(Box<Body>),
    Closed(Box<ExportReport>),
}

#[derive(Debug)]
struct Body {
    header: ExportHeader,
    start: Start,
    /// The hash the chain starts from (of entry `from - 1`), once known.
    start_hash: Option<Hash>,
    verifier: Option<Verifier>,
    known: Vec<(u64, Hash)>,
    watch: Vec<u64>,
}

impl ExportVerifier {
    /// A verifier trusting only the key `pin` names.
    pub fn new(pin: KeyPin) -> ExportVerifier {
        ExportVerifier {
            pin,
            previous: None,
            watch: Vec::new(),
            line: 0,
            state: State::Header,
            failed: None,
        }
    }

    /// The export must follow `previous` (verified with the same key): same HSM and partition,
    /// starting right after it or within it (an overlap, named, and checked to agree at the
    /// previous export's last entry), never after a gap, and ending no earlier than it.
    pub fn after(mut self, previous: Previous) -> ExportVerifier {
        self.previous = Some(previous);
        self
    }

    /// Also record the hashes of these entries, for [`ExportReport::hash_at`] (so that an
    /// export overlapping this one can be checked against it).
    pub fn watching(mut self, seqs: impl IntoIterator<Item = u64>) -> ExportVerifier {
        self.watch.extend(seqs);
        self
    }

    /// Lines read so far.
    pub fn lines(&self) -> u64 {
        self.line
    }

    /// Checks the next line (without its newline). After the first bad line every call
    /// returns that line's error again.
    pub fn push_line(&mut self, line: &[u8]) -> Result<(), LogError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        self.line += 1;
        let result = if line.len() > MAX_LINE_LEN {
            Err(self.too_long(line, line.len()))
        } else {
            self.step(line)
        };
        if let Err(e) = &result {
            self.failed = Some(e.clone());
        }
        result
    }

    /// Takes a line of `len` bytes, longer than any line may be, of which the reader kept only
    /// `prefix`: the same answer as [`push_line`](Self::push_line) with the whole line.
    pub(crate) fn push_too_long(&mut self, prefix: &[u8], len: usize) -> Result<(), LogError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        self.line += 1;
        let e = self.too_long(prefix, len);
        self.failed = Some(e.clone());
        Err(e)
    }

    /// The fault of line `self.line`, of `len` bytes, which starts with `prefix`: an earlier
    /// line's pending fault first, then what the line's first bytes say it is.
    fn too_long(&mut self, prefix: &[u8], len: usize) -> LogError {
        let n = self.line;
        let too_long = Fault::TooLong {
            len,
            max: MAX_LINE_LEN,
        };
        match &mut self.state {
            State::Header => match ExportHeader::from_canonical(&prefix[..prefix.len().min(64)]) {
                Err(e) if matches!(e.fault(), Some(Fault::NotAnExport { .. })) => relocate(e, n),
                _ => at(n, too_long),
            },
            State::Body(body) => match body.verifier.as_mut().map(Verifier::settle) {
                Some(Err(e)) => body.located(e),
                _ => at(n, too_long),
            },
            State::Closed(_) => at(n, Fault::AfterEnd),
        }
    }

    /// Takes the last piece of the file when it does not end with a newline: the file was cut
    /// within that line (or, after the closing checkpoint, something was added).
    pub fn push_cut(&mut self, piece: &[u8]) -> Result<(), LogError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        self.line += 1;
        let fault = match &self.state {
            State::Header
                if !EXPORT_MAGIC.starts_with(&piece[..piece.len().min(EXPORT_MAGIC.len())]) =>
            {
                Fault::NotAnExport {
                    problem: "its first line is not an export header".into(),
                }
            }
            State::Closed(_) => Fault::AfterEnd,
            _ => Fault::CutShort {
                problem: format!(
                    "line {} ends without a newline: the file was cut within it",
                    self.line
                ),
            },
        };
        let e = at(self.line, fault);
        self.failed = Some(e.clone());
        Err(e)
    }

    /// Ends verification: the report, or the first bad line.
    pub fn finish(self) -> Result<ExportReport, LogError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        match self.state {
            State::Header => Err(at(
                1,
                Fault::NotAnExport {
                    problem: "the file is empty".into(),
                },
            )),
            State::Body(body) => {
                let last = body
                    .verifier
                    .as_ref()
                    .map_or(body.header.from - 1, |v| v.position().0);
                Err(at(
                    self.line + 1,
                    Fault::CutShort {
                        problem: format!(
                            "the file ends after line {} (entry {last}) without the export's \
                             closing checkpoint",
                            self.line
                        ),
                    },
                ))
            }
            State::Closed(report) => Ok(*report),
        }
    }

    fn step(&mut self, line: &[u8]) -> Result<(), LogError> {
        let n = self.line;
        match &mut self.state {
            State::Header => {
                let body = open(&self.pin, self.previous.as_ref(), &self.watch, line)?;
                self.state = State::Body(Box::new(body));
                Ok(())
            }
            State::Body(body) if line.starts_with(EXPORT_END_LINE_PREFIX) => {
                let report = close(body, self.previous.as_ref(), line, n)?;
                self.state = State::Closed(Box::new(report));
                Ok(())
            }
            State::Body(body) => body.push(line, n),
            State::Closed(_) => Err(at(n, Fault::AfterEnd)),
        }
    }

    /// The key and the position of the log verifier, when lines can be verified elsewhere and
    /// [`absorb`](Self::absorb)ed: in the log lines, with the start known, nothing failed.
    pub(crate) fn body_position(&self) -> Option<(AuditKey, (u64, Hash), &[u64])> {
        match (&self.state, &self.failed) {
            (State::Body(body), None) => body
                .verifier
                .as_ref()
                .map(|v| (body.header.key, v.position(), body.watch.as_slice())),
            _ => None,
        }
    }

    /// Takes in log lines verified elsewhere from `anchor` (see [`Verifier::absorb`]), with the
    /// watched hashes found in them. `false` (nothing changed) if this verifier is not at
    /// `anchor`: the caller then feeds the lines.
    pub(crate) fn absorb(
        &mut self,
        anchor: (u64, Hash),
        part: &Report,
        found: &[(u64, Hash)],
    ) -> bool {
        if self.failed.is_some() {
            return false;
        }
        let State::Body(body) = &mut self.state else {
            return false;
        };
        let Some(verifier) = body.verifier.as_mut() else {
            return false;
        };
        if !verifier.absorb(anchor, part) {
            return false;
        }
        body.known.extend_from_slice(found);
        self.line += part.lines();
        true
    }
}

/// Reads the header and decides where the chain starts.
fn open(
    pin: &KeyPin,
    previous: Option<&Previous>,
    watch: &[u64],
    line: &[u8],
) -> Result<Body, LogError> {
    let header = ExportHeader::from_canonical(line).map_err(|e| relocate(e, 1))?;
    if !pin.accepts(&header.key) {
        return Err(at(
            1,
            Fault::UnknownKey {
                found: header.key.fingerprint(),
                pinned: pin.to_string(),
            },
        ));
    }
    let key = header.key;
    let before = header.from - 1;
    if let Some(anchor) = &header.anchor {
        anchor.verify(&key).map_err(|e| relocate(e, 1))?;
    }
    let mut watch = watch.to_vec();
    let (start, start_hash) = match previous {
        Some(p) => {
            let link = link(p, &header)?;
            let known = p.hash_at(before);
            if let (Some(known), Some(anchor)) = (known, &header.anchor)
                && known != anchor.hash
            {
                return Err(at(1, Fault::DisagreesWithPrevious { seq: before }));
            }
            if p.to > before && p.to < header.to {
                watch.push(p.to);
            }
            (
                Start::Previous(link),
                known.or(header.anchor.map(|a| a.hash)),
            )
        }
        None if header.from == 1 => (Start::Genesis, Some(genesis_hash(&header.partition))),
        None => match &header.anchor {
            Some(a) => (Start::Anchor { seq: a.seq }, Some(a.hash)),
            None => (
                Start::Unanchored {
                    seq: before,
                    hash: Hash::ZERO,
                },
                None,
            ),
        },
    };
    Ok(Body {
        verifier: start_hash.map(|h| Verifier::new(key, Some((before, h)))),
        start_hash,
        header,
        start,
        known: Vec::new(),
        watch,
    })
}

/// How `header`'s export lies after `p`, or the fault of a wrong pair.
fn link(p: &Previous, header: &ExportHeader) -> Result<Link, LogError> {
    if (p.hsm.as_str(), p.partition.as_str()) != (header.hsm.as_str(), header.partition.as_str()) {
        return Err(at(
            1,
            Fault::OtherLog {
                previous: format!("partition {} on {}", p.partition, p.hsm),
                this: format!("partition {} on {}", header.partition, header.hsm),
            },
        ));
    }
    let before = header.from - 1;
    // A later export starts no earlier and ends no earlier than the previous one, so that
    // where they overlap, both hold the previous export's last entry and are compared there.
    if before < p.from - 1 || header.to < p.to {
        return Err(at(
            1,
            Fault::NotAfterPrevious {
                previous_from: p.from,
                previous_to: p.to,
                from: header.from,
                to: header.to,
            },
        ));
    }
    if before > p.to {
        return Err(at(
            1,
            Fault::GapAfterPrevious {
                first: p.to + 1,
                last: before,
            },
        ));
    }
    Ok(if before == p.to {
        Link::Consecutive
    } else {
        Link::Overlapping {
            first: header.from,
            last: p.to.min(header.to),
        }
    })
}

impl Body {
    fn push(&mut self, line: &[u8], n: u64) -> Result<(), LogError> {
        let before = self.header.from - 1;
        let verifier = match &mut self.verifier {
            Some(v) => v,
            None => {
                // Nothing proves the start: the first line says where the chain starts.
                let hash = match LogLine::from_canonical(line) {
                    Ok(LogLine::Entry(e)) if e.seq() == self.header.from => e.prev(),
                    Ok(LogLine::Entry(e)) => {
                        let (expected, found) = (self.header.from, e.seq());
                        return Err(at(
                            n,
                            if found > expected {
                                Fault::Gap { expected, found }
                            } else {
                                Fault::OutOfOrder { expected, found }
                            },
                        ));
                    }
                    Ok(LogLine::Checkpoint(cp)) => cp.hash,
                    Err(e) => return Err(relocate(e, n)),
                };
                if let Start::Unanchored { hash: h, .. } = &mut self.start {
                    *h = hash;
                }
                self.start_hash = Some(hash);
                self.verifier
                    .insert(Verifier::new(self.header.key, Some((before, hash))))
            }
        };
        if let Err(e) = verifier.push_line(line) {
            return Err(self.located(e));
        }
        if !self.watch.is_empty()
            && let Some((seq, hash)) = seq_and_hash(line)
            && self.watch.contains(&seq)
        {
            self.known.push((seq, hash));
        }
        Ok(())
    }

    /// A log verifier's error at the file's line (the header is line 1), and entry 1 that does
    /// not open the partition's log named as another partition's log.
    fn located(&self, e: LogError) -> LogError {
        match e {
            LogError::Verification {
                line,
                fault: Fault::BrokenChain { seq: 1 },
            } if self.start == Start::Genesis => at(
                line + 1,
                Fault::NotPartitionLog {
                    partition: self.header.partition.clone(),
                },
            ),
            LogError::Verification { line, fault } => at(line + 1, fault),
            other => other,
        }
    }
}

/// Checks the closing checkpoint at line `n` against everything read.
fn close(
    body: &mut Body,
    previous: Option<&Previous>,
    line: &[u8],
    n: u64,
) -> Result<ExportReport, LogError> {
    let key = body.header.key;
    let end = ExportEnd::from_canonical(line).map_err(|e| relocate(e, n))?;
    end.verify(&key).map_err(|e| relocate(e, n))?;
    if let Some(problem) = end.mismatch(&body.header) {
        // The closing checkpoint is the HSM's word: the header is what was changed.
        return Err(at(
            1,
            Fault::BadHeader {
                problem: format!("the closing checkpoint (line {n}) {problem}"),
            },
        ));
    }
    let before = body.header.from - 1;
    if body.verifier.is_none() {
        // An empty export that nothing anchors: it starts where its closing checkpoint says.
        body.start_hash = Some(end.hash);
        if let Start::Unanchored { hash, .. } = &mut body.start {
            *hash = end.hash;
        }
    }
    let verifier = body
        .verifier
        .get_or_insert_with(|| Verifier::new(key, Some((before, end.hash))));
    let log = match verifier.settle() {
        Ok(log) => log,
        Err(e) => return Err(body.located(e)),
    };
    if (log.last_seq(), log.last_hash()) != (end.to, end.hash) {
        return Err(at(
            n,
            Fault::CheckpointMismatch {
                seq: end.to,
                last_seq: log.last_seq(),
            },
        ));
    }
    let report = ExportReport {
        header: body.header.clone(),
        end,
        log,
        start: body.start,
        start_hash: body.start_hash.unwrap_or(Hash::ZERO),
        lines: n,
        known: std::mem::take(&mut body.known),
    };
    if let Some(p) = previous {
        agree(p, &report, n)?;
    }
    Ok(report)
}

/// Where both exports hold an entry's hash, they must agree (the previous export's last entry,
/// or this one's).
fn agree(p: &Previous, report: &ExportReport, n: u64) -> Result<(), LogError> {
    let checks = [
        (p.to, report.hash_at(p.to), Some(p.last_hash)),
        (
            report.header.to,
            Some(report.end.hash),
            p.hash_at(report.header.to),
        ),
    ];
    for (seq, ours, theirs) in checks {
        if let (Some(a), Some(b)) = (ours, theirs)
            && a != b
        {
            return Err(at(n, Fault::DisagreesWithPrevious { seq }));
        }
    }
    Ok(())
}

/// The sequence number and hash of a canonical entry line (already verified).
pub(crate) fn seq_and_hash(line: &[u8]) -> Option<(u64, Hash)> {
    let rest = line.strip_prefix(b"{\"seq\":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let seq = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
    let hex = line.get(line.len().checked_sub(66)?..line.len() - 2)?;
    Some((seq, Hash::from_hex(std::str::from_utf8(hex).ok()?)?))
}

fn at(line: u64, fault: Fault) -> LogError {
    LogError::Verification { line, fault }
}

/// A single-line error as the fault of line `n`.
fn relocate(e: LogError, n: u64) -> LogError {
    match e {
        LogError::Rejected(fault) | LogError::Verification { fault, .. } => at(n, fault),
        other => at(
            n,
            Fault::NonCanonical {
                problem: other.to_string(),
            },
        ),
    }
}
