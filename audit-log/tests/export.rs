//! Export files: round trips, consecutive and pruned exports, and every tampering the log-audit
//! issue names, each detected and located (line and kind), by the line-by-line verifier and by
//! the streaming one with its parts on threads alike.

use audit_log::testkit::{TestLog, verify_export_chunked, verify_lines};
use audit_log::{
    AuditSigner, ExportReport, ExportVerifier, Fault, FaultKind, KeyPin, Link, LogError, Start,
    verify_export,
};

const HSM: &str = "hsm-0123456789abcdef";

fn log() -> TestLog {
    TestLog::new(AuditSigner::from_secret_bytes(&[0x42; 32]), HSM, "bank-1")
}

fn pin(log: &TestLog) -> KeyPin {
    KeyPin::Key(log.signer().public())
}

fn split(bytes: &[u8]) -> Vec<Vec<u8>> {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    body.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect()
}

fn join(lines: &[Vec<u8>]) -> Vec<u8> {
    lines
        .iter()
        .flat_map(|l| l.iter().copied().chain([b'\n']))
        .collect()
}

/// Verifies `bytes` every way there is (line by line; streamed on one thread; streamed in small
/// and in default parts on threads) and requires the same answer from all.
fn verify(bytes: &[u8], make: impl Fn() -> ExportVerifier) -> Result<ExportReport, LogError> {
    let one = verify_lines(bytes, make());
    for (chunk, threads) in [(1 << 20, 1), (300, 2), (4096, 3), (1 << 20, 2)] {
        let streamed = verify_export_chunked(bytes, make(), chunk, threads);
        assert_eq!(streamed, one, "chunks of {chunk} on {threads} threads");
    }
    assert_eq!(verify_export(bytes, make()), one);
    one
}

/// The line and kind of the first bad line.
fn located(result: Result<ExportReport, LogError>) -> (u64, FaultKind, Fault) {
    let e = result.expect_err("tampering must be detected");
    let fault = e.fault().cloned().expect("a located fault");
    (e.line().expect("a line"), e.kind(), fault)
}

/// The index (0-based line) of the first entry line with sequence number `seq`.
fn line_of(lines: &[Vec<u8>], seq: u64) -> usize {
    let prefix = format!("{{\"seq\":{seq},");
    lines
        .iter()
        .position(|l| l.starts_with(prefix.as_bytes()))
        .unwrap()
}

/// The index of the first inner checkpoint line after line `after`.
fn checkpoint_after(lines: &[Vec<u8>], after: usize) -> usize {
    after
        + lines[after..]
            .iter()
            .position(|l| l.starts_with(b"{\"checkpoint\":"))
            .unwrap()
}

#[test]
fn round_trip_from_genesis() {
    let mut log = log();
    log.append(250);
    let bytes = log.export(1, 250, 1);
    let report = verify(&bytes, || ExportVerifier::new(pin(&log))).unwrap();
    assert_eq!(report.entries(), 250);
    assert_eq!(report.start(), Start::Genesis);
    assert_eq!(report.lines() as usize, split(&bytes).len());
    assert_eq!((report.header().from, report.header().to), (1, 250));
    assert!(report.log().checkpoints() > 2);
    // Pinned by the fingerprint people compare, too.
    let shown = log.signer().public().fingerprint().to_string();
    let by_fingerprint = verify(&bytes, || {
        ExportVerifier::new(KeyPin::from_fingerprint(&shown).unwrap())
    });
    assert_eq!(by_fingerprint, Ok(report));
}

#[test]
fn empty_exports_verify() {
    let mut log = log();
    let bytes = log.export(1, 0, 1);
    let report = verify(&bytes, || ExportVerifier::new(pin(&log))).unwrap();
    assert_eq!((report.entries(), report.lines()), (0, 2));
    log.append(10);
    let first = verify(&log.export(1, 10, 2), || ExportVerifier::new(pin(&log))).unwrap();
    let bytes = log.export(11, 10, 3);
    let report = verify(&bytes, || {
        ExportVerifier::new(pin(&log)).after(first.as_previous())
    })
    .unwrap();
    assert_eq!(report.start(), Start::Previous(Link::Consecutive));
}

#[test]
fn consecutive_exports_link_and_overlaps_and_gaps_are_named() {
    let mut log = log();
    log.append(100);
    let first_bytes = log.export(1, 100, 1);
    let first = verify(&first_bytes, || ExportVerifier::new(pin(&log))).unwrap();
    log.append(150);
    let next = log.export(101, 250, 2);
    let linked = verify(&next, || {
        ExportVerifier::new(pin(&log)).after(first.as_previous())
    })
    .unwrap();
    assert_eq!(linked.start(), Start::Previous(Link::Consecutive));
    // Alone, it verifies from its anchor (the checkpoint the first export ended with).
    let alone = verify(&next, || ExportVerifier::new(pin(&log))).unwrap();
    assert_eq!(alone.start(), Start::Anchor { seq: 100 });

    // An overlap is named, and checked to agree where both hold an entry.
    let overlapping = log.export(51, 250, 3);
    let first_watching = verify(&first_bytes, || {
        ExportVerifier::new(pin(&log)).watching([50])
    })
    .unwrap();
    let report = verify(&overlapping, || {
        ExportVerifier::new(pin(&log)).after(first_watching.as_previous())
    })
    .unwrap();
    assert_eq!(
        report.start(),
        Start::Previous(Link::Overlapping {
            first: 51,
            last: 100
        })
    );

    // A gap is a fault at the header: the entries between are in neither export.
    let gapped = log.export(121, 250, 4);
    let (line, kind, fault) = located(verify(&gapped, || {
        ExportVerifier::new(pin(&log)).after(first.as_previous())
    }));
    assert_eq!((line, kind), (1, FaultKind::Removed));
    assert_eq!(
        fault,
        Fault::GapAfterPrevious {
            first: 101,
            last: 120
        }
    );
    assert!(
        fault
            .to_string()
            .contains("entries 101 to 120 are in neither export")
    );

    // Given in the wrong order.
    let (line, kind, _) = located(verify(&first_bytes, || {
        ExportVerifier::new(pin(&log)).after(linked.as_previous())
    }));
    assert_eq!((line, kind), (1, FaultKind::Reordered));
}

#[test]
fn an_export_after_pruning_verifies_from_its_anchor_alone() {
    let mut log = log();
    log.append(300);
    let first = log.export(1, 300, 1);
    verify(&first, || ExportVerifier::new(pin(&log))).unwrap();
    let anchor = log.prune_through(300).unwrap();
    assert_eq!(anchor, 300);
    log.append(40);
    let bytes = log.export(301, 340, 2);
    let report = verify(&bytes, || ExportVerifier::new(pin(&log))).unwrap();
    assert_eq!(report.start(), Start::Anchor { seq: 300 });
    assert_eq!(report.entries(), 40);

    // A forged anchor is a bad signature at the header.
    let mut lines = split(&bytes);
    let text = String::from_utf8(lines[0].clone()).unwrap();
    let at = text.find("\"sig\":\"").unwrap() + 7;
    let mut forged = text.into_bytes();
    forged[at] = if forged[at] == b'0' { b'1' } else { b'0' };
    lines[0] = forged;
    let (line, kind, _) = located(verify(&join(&lines), || ExportVerifier::new(pin(&log))));
    assert_eq!((line, kind), (1, FaultKind::Signature));
}

/// The tampering cases of the issue, on one export of 250 entries.
fn exported() -> (TestLog, Vec<Vec<u8>>) {
    let mut log = log();
    log.append(250);
    let bytes = log.export(1, 250, 9);
    (log, split(&bytes))
}

fn tampered(log: &TestLog, lines: &[Vec<u8>]) -> (u64, FaultKind, Fault) {
    located(verify(&join(lines), || ExportVerifier::new(pin(log))))
}

#[test]
fn an_edited_field_is_found_at_its_line() {
    let (log, mut lines) = exported();
    let i = line_of(&lines, 120);
    let text = String::from_utf8(lines[i].clone()).unwrap();
    lines[i] = text
        .replace("\"object\":\"key/", "\"object\":\"kez/")
        .into_bytes();
    let (line, kind, fault) = tampered(&log, &lines);
    assert_eq!((line, kind), (i as u64 + 1, FaultKind::Edited));
    assert_eq!(fault, Fault::EditedEntry { seq: 120 });
}

#[test]
fn a_removed_line_is_found() {
    let (log, mut lines) = exported();
    let i = line_of(&lines, 120);
    lines.remove(i);
    let (line, kind, fault) = tampered(&log, &lines);
    // The entry after the hole is the first bad line.
    assert_eq!((line, kind), (i as u64 + 1, FaultKind::Removed));
    assert_eq!(
        fault,
        Fault::Gap {
            expected: 120,
            found: 121
        }
    );
}

#[test]
fn two_swapped_lines_are_found() {
    let (log, mut lines) = exported();
    let i = line_of(&lines, 120);
    assert!(lines[i + 1].starts_with(b"{\"seq\":121,"));
    lines.swap(i, i + 1);
    let (line, kind, _) = tampered(&log, &lines);
    assert_eq!((line, kind), (i as u64 + 1, FaultKind::Reordered));
}

#[test]
fn an_inserted_line_is_found() {
    let (log, mut lines) = exported();
    let copy = lines[line_of(&lines, 30)].clone();
    let i = line_of(&lines, 120);
    lines.insert(i, copy);
    let (line, kind, fault) = tampered(&log, &lines);
    assert_eq!((line, kind), (i as u64 + 1, FaultKind::Inserted));
    assert_eq!(
        fault,
        Fault::OutOfOrder {
            expected: 120,
            found: 30
        }
    );
}

#[test]
fn a_line_appended_after_the_closing_checkpoint_is_found() {
    let (log, mut lines) = exported();
    let n = lines.len();
    lines.push(lines[line_of(&lines, 250)].clone());
    let (line, kind, fault) = tampered(&log, &lines);
    assert_eq!(
        (line, kind, fault),
        (n as u64 + 1, FaultKind::Inserted, Fault::AfterEnd)
    );
}

#[test]
fn a_file_cut_right_after_an_inner_checkpoint_is_cut_short() {
    let (log, mut lines) = exported();
    let cp = checkpoint_after(&lines, line_of(&lines, 150));
    lines.truncate(cp + 1);
    // What remains is a well-formed log, signed to its end: only the missing closing
    // checkpoint shows the cut.
    let (line, kind, fault) = tampered(&log, &lines);
    assert_eq!((line, kind), (cp as u64 + 2, FaultKind::CutShort));
    assert!(matches!(fault, Fault::CutShort { .. }), "{fault}");
    // And an inner checkpoint cannot stand in for the closing one.
    let mut passed_off = lines.clone();
    let inner = String::from_utf8(lines[cp].clone()).unwrap();
    passed_off.push(
        inner
            .replace("{\"checkpoint\":", "{\"export_end\":")
            .into_bytes(),
    );
    let (line, kind, _) = tampered(&log, &passed_off);
    assert_eq!((line, kind), (cp as u64 + 2, FaultKind::Edited));
}

#[test]
fn a_checkpoint_from_another_hsm_is_found() {
    let (log, mut lines) = exported();
    let other = AuditSigner::from_secret_bytes(&[0x43; 32]);
    let cp = checkpoint_after(&lines, line_of(&lines, 150));
    let real = audit_log::Checkpoint::from_canonical(&lines[cp]).unwrap();
    lines[cp] = other
        .sign_checkpoint(real.seq, real.hash, real.time_unix_ms)
        .to_canonical();
    let (line, kind, fault) = tampered(&log, &lines);
    assert_eq!((line, kind), (cp as u64 + 1, FaultKind::Signature));
    assert_eq!(fault, Fault::BadCheckpoint { seq: real.seq });

    // The closing checkpoint too.
    let (log, mut lines) = exported();
    let last = lines.len() - 1;
    let mut end = audit_log::ExportEnd::from_canonical(&lines[last]).unwrap();
    let header = audit_log::ExportHeader::from_canonical(&lines[0]).unwrap();
    end = other
        .sign_export_end(&header, end.hash, end.time_unix_ms)
        .unwrap();
    lines[last] = end.to_canonical();
    let (line, kind, fault) = tampered(&log, &lines);
    assert_eq!(
        (line, kind, fault),
        (
            last as u64 + 1,
            FaultKind::Signature,
            Fault::BadClosingSignature
        )
    );

    // A whole export of another HSM names a key that is not the pinned one.
    let mut theirs = TestLog::new(other, HSM, "bank-1");
    theirs.append(5);
    let (line, kind, _) = located(verify(&theirs.export(1, 5, 1), || {
        ExportVerifier::new(pin(&log))
    }));
    assert_eq!((line, kind), (1, FaultKind::UnknownKey));
}

#[test]
fn another_partitions_export_as_the_previous_one_is_named() {
    let signer = || AuditSigner::from_secret_bytes(&[0x42; 32]);
    let mut ours = TestLog::new(signer(), HSM, "bank-1");
    let mut theirs = TestLog::new(signer(), HSM, "bank-2");
    ours.append(50);
    theirs.append(50);
    let their_export = theirs.export(1, 50, 1);
    let previous = verify(&their_export, || ExportVerifier::new(pin(&theirs))).unwrap();
    ours.append(10);
    let _ = ours.export(1, 50, 2);
    let bytes = ours.export(51, 60, 3);
    let (line, kind, fault) = located(verify(&bytes, || {
        ExportVerifier::new(pin(&ours)).after(previous.as_previous())
    }));
    assert_eq!((line, kind), (1, FaultKind::OtherLog));
    assert!(fault.to_string().contains("bank-2"), "{fault}");

    // Another partition's log under this one's name: entry 1 does not open it.
    let mut renamed = split(&their_export);
    let text = String::from_utf8(renamed[0].clone()).unwrap();
    renamed[0] = text.replace("bank-2", "bank-1").into_bytes();
    let (line, kind, _) = located(verify(&join(&renamed), || ExportVerifier::new(pin(&ours))));
    assert_eq!((line, kind), (2, FaultKind::OtherLog));
}

#[test]
fn a_truncated_last_line_is_cut_short() {
    let (log, lines) = exported();
    let mut bytes = join(&lines);
    bytes.truncate(bytes.len() - 40);
    let (line, kind, _) = located(verify(&bytes, || ExportVerifier::new(pin(&log))));
    assert_eq!((line, kind), (lines.len() as u64, FaultKind::CutShort));
    // Only the final newline missing: cut short too (the writer ends every line).
    let mut bytes = join(&lines);
    bytes.pop();
    let (line, kind, _) = located(verify(&bytes, || ExportVerifier::new(pin(&log))));
    assert_eq!((line, kind), (lines.len() as u64, FaultKind::CutShort));
}

#[test]
fn an_edited_header_is_found_at_line_one() {
    let (log, mut lines) = exported();
    let text = String::from_utf8(lines[0].clone()).unwrap();
    lines[0] = text
        .replace("\"export\":\"0909", "\"export\":\"0a09")
        .into_bytes();
    let (line, kind, fault) = tampered(&log, &lines);
    assert_eq!((line, kind), (1, FaultKind::Edited));
    assert!(matches!(fault, Fault::BadHeader { .. }), "{fault}");
    let (line, kind, _) = located(verify(b"{\"seq\":1}\n", || ExportVerifier::new(pin(&log))));
    assert_eq!((line, kind), (1, FaultKind::Unreadable));
    let (line, kind, _) = located(verify(b"", || ExportVerifier::new(pin(&log))));
    assert_eq!((line, kind), (1, FaultKind::Unreadable));
}

/// Every single-line tampering of a small export gives the same answer however the file is
/// read (the parts, their joins and the fallback all agree with the line-by-line verifier).
#[test]
fn every_removal_and_swap_is_read_alike_every_way() {
    let mut log = log();
    log.append(30);
    let lines = split(&log.export(1, 30, 9));
    for i in 1..lines.len() {
        let mut removed = lines.clone();
        removed.remove(i);
        let result = verify(&join(&removed), || ExportVerifier::new(pin(&log)));
        // An inner checkpoint vouches for nothing the closing one does not: dropping one is
        // harmless. Every other line is missed.
        let inner_checkpoint = lines[i].starts_with(b"{\"checkpoint\":");
        assert_eq!(result.is_ok(), inner_checkpoint, "line {}", i + 1);
        if i + 1 < lines.len() {
            let mut swapped = lines.clone();
            swapped.swap(i, i + 1);
            let _ = verify(&join(&swapped), || ExportVerifier::new(pin(&log)));
        }
    }
}

/// `jq` reads every line of an export (the Debian package `jq`, which `scripts/setup`
/// installs).
#[test]
fn jq_parses_every_line() {
    let mut log = log();
    log.append(60);
    let _ = log.export(1, 30, 1);
    log.prune_through(30);
    let bytes = log.export(31, 60, 2);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export.jsonl");
    std::fs::write(&path, &bytes).unwrap();
    let run = |filter: &str| {
        let out = std::process::Command::new("jq")
            .args(["-c", filter])
            .arg(&path)
            .output()
            .expect("jq is installed (scripts/setup)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let types = run("keys_unsorted[0]");
    let kinds: Vec<&str> = types.lines().collect();
    assert_eq!(kinds.len(), split(&bytes).len());
    assert_eq!(kinds[0], "\"tessera\"");
    assert_eq!(*kinds.last().unwrap(), "\"export_end\"");
    assert!(kinds.contains(&"\"checkpoint\""));
    assert_eq!(kinds.iter().filter(|k| **k == "\"seq\"").count(), 30);
    // Field values come through as written (the escaped reason, the anchor).
    let header = run("select(.tessera) | [.from, .to, .anchor.seq, .partition]");
    assert_eq!(header.trim(), "[31,60,30,\"bank-1\"]");
    let reasons = run("select(.outcome.reason) | .outcome.reason");
    assert!(reasons.contains("device busy\\nretry"), "{reasons}");
}

#[test]
fn an_export_ending_before_the_previous_one_is_not_after_it() {
    let mut log = log();
    log.append(60);
    let whole = log.export(1, 60, 1);
    let previous = verify(&whole, || ExportVerifier::new(pin(&log))).unwrap();
    let inner = log.export(11, 40, 2);
    let (line, kind, fault) = located(verify(&inner, || {
        ExportVerifier::new(pin(&log)).after(previous.as_previous())
    }));
    assert_eq!((line, kind), (1, FaultKind::Reordered));
    assert!(matches!(fault, Fault::NotAfterPrevious { .. }), "{fault}");
    // The same range again is an overlap of the whole, and agrees.
    let again = log.export(1, 60, 3);
    let report = verify(&again, || {
        ExportVerifier::new(pin(&log)).after(previous.as_previous())
    })
    .unwrap();
    assert_eq!(
        report.start(),
        Start::Previous(Link::Overlapping { first: 1, last: 60 })
    );
}

#[test]
fn two_exports_that_disagree_on_an_entry_are_named() {
    // The same HSM key signing two histories that part after entry 30 (an HSM that forked its
    // log): each export verifies alone, but not one after the other.
    let (mut a, mut b) = (log(), log());
    a.append(30);
    b.append(30);
    a.append(10);
    let other = audit_log::testkit::sample_draft(31, 1, true).with_detail("forked", "yes");
    b.append_draft(other);
    b.append(9);
    let first = verify(&a.export(1, 40, 1), || ExportVerifier::new(pin(&a))).unwrap();
    let _ = b.export(1, 30, 2);
    let bytes = b.export(31, 40, 3);
    verify(&bytes, || ExportVerifier::new(pin(&b))).unwrap();
    let (line, kind, fault) = located(verify(&bytes, || {
        ExportVerifier::new(pin(&b)).after(first.as_previous())
    }));
    assert_eq!(kind, FaultKind::Edited);
    assert_eq!(fault, Fault::DisagreesWithPrevious { seq: 40 });
    assert_eq!(line as usize, split(&bytes).len());
}

/// A line longer than any may be is refused by its length, the same whether the reader holds
/// it whole or only its start (found by `cargo fuzz`: the streamed reader once called it cut).
#[test]
fn an_overlong_line_is_refused_alike_every_way() {
    let (log, lines) = exported();
    for at in [0, 5] {
        let mut long = lines.clone();
        let mut line = long[at].clone();
        line.extend(std::iter::repeat_n(b'x', 20_000));
        long[at] = line;
        let (line, kind, fault) = tampered(&log, &long);
        assert_eq!((line, kind), (at as u64 + 1, FaultKind::Edited));
        assert!(matches!(fault, Fault::TooLong { .. }), "{fault}");
    }
}
