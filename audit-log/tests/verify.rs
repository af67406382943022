//! Scenarios: a log of 2,500 entries with checkpoints, and each way of tampering with it,
//! detected and located; canonical round trips and rejections; property tests.

use audit_log::{
    Actor, AuditKey, AuditSigner, Chain, Checkpoint, CheckpointPolicy, Entry, EntryDraft, Fault,
    Hash, LogError, LogLine, MAX_LINE_LEN, Operation, Outcome, Report, Role, Verifier, verify_log,
};
use getrandom::SysRng;
use getrandom::rand_core::UnwrapErr;
use proptest::prelude::*;

const T0: u64 = 1_732_377_600_000;

/// A log held as lines (without newlines), and where each entry and checkpoint stands.
struct Log {
    lines: Vec<Vec<u8>>,
    /// `entry_line[seq]`: index into `lines` of entry `seq` (index 0 unused).
    entry_line: Vec<usize>,
    /// Indexes of checkpoint lines.
    checkpoint_lines: Vec<usize>,
}

impl Log {
    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for line in &self.lines {
            out.extend_from_slice(line);
            out.push(b'\n');
        }
        out
    }

    /// 1-based line number of entry `seq`.
    fn line_of(&self, seq: u64) -> u64 {
        self.entry_line[seq as usize] as u64 + 1
    }

    fn is_entry(&self, index: usize) -> bool {
        !self.checkpoint_lines.contains(&index)
    }
}

fn signer() -> AuditSigner {
    AuditSigner::from_secret_bytes(&[0x42; 32])
}

fn draft(i: u64) -> (EntryDraft, bool) {
    // Every 10th entry is administrative (a PSO changing the configuration), the rest are the
    // technical user's key operations.
    if i.is_multiple_of(10) {
        let d = EntryDraft::new(
            T0 + i,
            Actor::new(Role::Pso, ["Alice Meier", "Zoë Müller"]),
            Operation::new("config.change").unwrap(),
            if i.is_multiple_of(20) {
                Outcome::Ok
            } else {
                Outcome::refused("loosening change needs typed confirmation")
            },
        )
        .with_object("partition")
        .with_detail("param", "key-export")
        .with_detail("old", "off")
        .with_detail("new", "wrapped");
        (d, true)
    } else {
        let d = EntryDraft::new(
            T0 + i,
            Actor::new(Role::TechnicalUser, Vec::<String>::new()),
            Operation::new("key.sign").unwrap(),
            Outcome::Ok,
        )
        .with_object(format!("key/{:08x}", i * 7919));
        (d, false)
    }
}

/// `n` entries, checkpoints by the default policy, and a final checkpoint (as an export has).
fn build_log(n: u64, signer: &AuditSigner) -> Log {
    let policy = CheckpointPolicy::default();
    let mut chain = Chain::new();
    let mut log = Log {
        lines: Vec::new(),
        entry_line: vec![usize::MAX],
        checkpoint_lines: Vec::new(),
    };
    for i in 1..=n {
        let (d, administrative) = draft(i);
        let entry = chain.append(d).unwrap();
        assert_eq!(entry.seq(), i);
        log.entry_line.push(log.lines.len());
        log.lines.push(entry.to_canonical());
        if policy.due(chain.entries_since_checkpoint(), administrative) {
            log.checkpoint_lines.push(log.lines.len());
            log.lines
                .push(chain.checkpoint(signer, T0 + i).to_canonical());
        }
    }
    if chain.entries_since_checkpoint() > 0 || log.checkpoint_lines.is_empty() {
        log.checkpoint_lines.push(log.lines.len());
        log.lines
            .push(chain.checkpoint(signer, T0 + n + 1).to_canonical());
    }
    log
}

fn verify(log: &Log, key: AuditKey) -> Result<Report, LogError> {
    verify_log(key, None, &log.bytes())
}

fn at(line: u64, fault: Fault) -> LogError {
    LogError::Verification { line, fault }
}

#[test]
fn a_chain_of_2500_entries_with_checkpoints_verifies() {
    let signer = signer();
    let log = build_log(2_500, &signer);
    // Every 10th entry is administrative, so 250 checkpoints, and the last entry is one of them.
    assert_eq!(log.checkpoint_lines.len(), 250);
    let report = verify(&log, signer.public())
        .unwrap()
        .require_signed_to_end()
        .unwrap();
    assert_eq!(report.entries(), 2_500);
    assert_eq!(report.checkpoints(), 250);
    assert_eq!(report.lines(), 2_750);
    assert_eq!(report.last_seq(), 2_500);
    assert_eq!(report.last_checkpoint_seq(), Some(2_500));
    assert_eq!(report.unsigned_tail(), None);
    assert!(report.is_signed_to_end());
    let last = Entry::from_canonical(&log.lines[log.entry_line[2_500]]).unwrap();
    assert_eq!(report.last_hash(), last.hash());

    // The same, streamed line by line.
    let mut v = Verifier::new(signer.public(), None);
    for line in &log.lines {
        v.push_line(line).unwrap();
    }
    assert_eq!(v.finish(), Ok(report));
}

#[test]
fn the_policy_signs_at_least_every_1000_entries() {
    let signer = signer();
    let policy = CheckpointPolicy::default();
    let mut chain = Chain::new();
    let mut lines = Vec::new();
    let mut checkpoints_after = Vec::new();
    for i in 1..=2_500u64 {
        let d = EntryDraft::new(
            T0 + i,
            Actor::new(Role::TechnicalUser, Vec::<String>::new()),
            Operation::new("key.sign").unwrap(),
            Outcome::Ok,
        );
        lines.push(chain.append(d).unwrap().to_canonical());
        if policy.due(chain.entries_since_checkpoint(), false) {
            checkpoints_after.push(i);
            lines.push(chain.checkpoint(&signer, T0 + i).to_canonical());
        }
    }
    assert_eq!(checkpoints_after, [1_000, 2_000]);
    let mut v = Verifier::new(signer.public(), None);
    for line in &lines {
        v.push_line(line).unwrap();
    }
    let report = v.finish().unwrap();
    assert_eq!(report.last_checkpoint_seq(), Some(2_000));
    let tail = report.unsigned_tail().unwrap();
    assert_eq!((tail.first_seq, tail.entries), (2_001, 500));
    // A writer that restarts resumes with what the report says.
    let chain = Chain::resume(report.last_seq(), report.last_hash(), tail.entries);
    assert!(policy.due(chain.entries_since_checkpoint() + 500, false));
}

#[test]
fn an_edited_object_byte_is_detected_and_located() {
    let signer = signer();
    let mut log = build_log(2_500, &signer);
    let i = log.entry_line[1_234];
    let line = &mut log.lines[i];
    let at_object = line
        .windows(b"\"object\":\"key/".len())
        .position(|w| w == b"\"object\":\"key/")
        .unwrap();
    let byte = at_object + b"\"object\":\"key/".len();
    line[byte] = if line[byte] == b'0' { b'1' } else { b'0' };
    let err = verify(&log, signer.public()).unwrap_err();
    assert_eq!(
        err,
        at(log.line_of(1_234), Fault::EditedEntry { seq: 1_234 })
    );
    // 1,233 entries and 123 checkpoints (after entries 10, 20, ..., 1230) come before it.
    assert_eq!(err.line(), Some(1_233 + 123 + 1));
    assert_eq!(
        err.to_string(),
        "line 1357: entry 1234 was altered: its contents do not match its hash"
    );
}

#[test]
fn a_removed_entry_is_a_gap_located_where_it_was() {
    let signer = signer();
    let mut log = build_log(2_500, &signer);
    let i = log.entry_line[1_501];
    assert!(log.is_entry(i + 1), "entry 1502 follows 1501 directly");
    log.lines.remove(i);
    let err = verify(&log, signer.public()).unwrap_err();
    assert_eq!(
        err,
        at(
            i as u64 + 1,
            Fault::Gap {
                expected: 1_501,
                found: 1_502
            }
        )
    );
}

#[test]
fn a_gap_on_the_last_line_is_reported_by_finish() {
    let signer = signer();
    let log = build_log(30, &signer);
    // The log ends with entry 26, and entry 25 is gone: only the end shows it was a gap.
    let mut lines = log.lines[..=log.entry_line[26]].to_vec();
    let i = log.entry_line[25];
    lines.remove(i);
    let mut v = Verifier::new(signer.public(), None);
    for line in &lines {
        v.push_line(line).unwrap();
    }
    assert_eq!(
        v.finish(),
        Err(at(
            i as u64 + 1,
            Fault::Gap {
                expected: 25,
                found: 26,
            },
        ))
    );
}

#[test]
fn a_removed_entry_before_a_checkpoint_is_found_at_the_checkpoint() {
    let signer = signer();
    let mut log = build_log(2_500, &signer);
    // Entry 1510 is administrative, so a checkpoint naming it follows it.
    let i = log.entry_line[1_510];
    assert!(!log.is_entry(i + 1));
    log.lines.remove(i);
    let err = verify(&log, signer.public()).unwrap_err();
    assert_eq!(
        err,
        at(
            i as u64 + 1,
            Fault::CheckpointMismatch {
                seq: 1_510,
                last_seq: 1_509
            }
        )
    );
    assert!(err.to_string().ends_with("entries are missing"), "{err}");
}

#[test]
fn a_swapped_pair_is_out_of_order_located_at_the_first_of_the_pair() {
    let signer = signer();
    let mut log = build_log(2_500, &signer);
    let i = log.entry_line[777];
    assert_eq!(log.entry_line[778], i + 1);
    log.lines.swap(i, i + 1);
    let err = verify(&log, signer.public()).unwrap_err();
    assert_eq!(
        err,
        at(
            i as u64 + 1,
            Fault::OutOfOrder {
                expected: 777,
                found: 778
            }
        )
    );
}

#[test]
fn a_repeated_entry_is_out_of_order() {
    let signer = signer();
    let mut log = build_log(100, &signer);
    let i = log.entry_line[42];
    let copy = log.lines[i].clone();
    log.lines.insert(i + 1, copy);
    let err = verify(&log, signer.public()).unwrap_err();
    assert_eq!(
        err,
        at(
            i as u64 + 2,
            Fault::OutOfOrder {
                expected: 43,
                found: 42
            }
        )
    );
}

#[test]
fn a_rehashed_forgery_breaks_the_chain_at_the_next_entry() {
    let signer = signer();
    let mut log = build_log(100, &signer);
    // Rewrite entry 42 with a correct own hash and correct prev: only the link from entry 43
    // (and the checkpoints) can tell.
    let original = Entry::from_canonical(&log.lines[log.entry_line[42]]).unwrap();
    let mut forger = Chain::resume(41, original.prev(), 0);
    let forged = forger
        .append(original.draft().clone().with_object("key/innocent"))
        .unwrap();
    let i = log.entry_line[42];
    log.lines[i] = forged.to_canonical();
    let err = verify(&log, signer.public()).unwrap_err();
    assert_eq!(err, at(log.line_of(43), Fault::BrokenChain { seq: 43 }));
}

#[test]
fn a_rehashed_forgery_just_before_its_checkpoint_is_found_at_the_checkpoint() {
    let signer = signer();
    let mut log = build_log(100, &signer);
    // Entry 40 is administrative: the checkpoint right after it signed the original.
    let i = log.entry_line[40];
    assert!(!log.is_entry(i + 1));
    let original = Entry::from_canonical(&log.lines[i]).unwrap();
    let forged = Chain::resume(39, original.prev(), 0)
        .append(original.draft().clone().with_object("nothing to see"))
        .unwrap();
    log.lines[i] = forged.to_canonical();
    let err = verify(&log, signer.public()).unwrap_err();
    assert_eq!(
        err,
        at(
            i as u64 + 2,
            Fault::CheckpointMismatch {
                seq: 40,
                last_seq: 40
            }
        )
    );
    assert!(
        err.to_string().ends_with("that entry was replaced"),
        "{err}"
    );
}

#[test]
fn an_entry_read_on_its_own_checks_its_hash() {
    let entry = awkward_entry();
    let mut line = entry.to_canonical();
    let time = format!("\"time\":{T0}");
    let at = line
        .windows(time.len())
        .position(|w| w == time.as_bytes())
        .unwrap();
    line[at + time.len() - 1] = b'1';
    assert_eq!(
        Entry::from_canonical(&line),
        Err(LogError::Rejected(Fault::EditedEntry { seq: 1 }))
    );
    assert_eq!(
        LogLine::from_canonical(&line).unwrap_err().fault(),
        Some(&Fault::EditedEntry { seq: 1 })
    );
}

#[test]
fn a_forged_checkpoint_signature_is_detected_and_located() {
    let signer = signer();
    let mut log = build_log(2_500, &signer);
    let i = log.checkpoint_lines[100];
    let cp = Checkpoint::from_canonical(&log.lines[i]).unwrap();
    let mut forged = cp;
    forged.signature[10] ^= 0x01;
    log.lines[i] = forged.to_canonical();
    let err = verify(&log, signer.public()).unwrap_err();
    assert_eq!(err, at(i as u64 + 1, Fault::BadCheckpoint { seq: cp.seq }));
}

#[test]
fn a_checkpoint_by_another_key_is_rejected() {
    let signer = signer();
    let mallory = AuditSigner::generate(&mut UnwrapErr(SysRng));
    let mut log = build_log(300, &signer);
    let i = log.checkpoint_lines[5];
    let cp = Checkpoint::from_canonical(&log.lines[i]).unwrap();
    log.lines[i] = mallory
        .sign_checkpoint(cp.seq, cp.hash, cp.time_unix_ms)
        .to_canonical();
    let err = verify(&log, signer.public()).unwrap_err();
    assert_eq!(err, at(i as u64 + 1, Fault::BadCheckpoint { seq: cp.seq }));
    // And a whole log signed by another key fails at its first checkpoint.
    let err = verify(&build_log(300, &mallory), signer.public()).unwrap_err();
    assert_eq!(err.fault(), Some(&Fault::BadCheckpoint { seq: 10 }));
}

#[test]
fn a_checkpoint_moved_elsewhere_does_not_match() {
    let signer = signer();
    let mut log = build_log(300, &signer);
    // Replay the checkpoint for entry 10 after entry 20's checkpoint.
    let early = log.lines[log.checkpoint_lines[0]].clone();
    let i = log.checkpoint_lines[1];
    log.lines.insert(i + 1, early);
    let err = verify(&log, signer.public()).unwrap_err();
    assert_eq!(
        err,
        at(
            i as u64 + 2,
            Fault::CheckpointMismatch {
                seq: 10,
                last_seq: 20
            }
        )
    );
    assert!(err.to_string().ends_with("it was moved"), "{err}");
}

#[test]
fn a_tail_cut_after_the_last_checkpoint_is_reported_and_located() {
    let signer = signer();
    let policy = CheckpointPolicy::default();
    let mut chain = Chain::new();
    let mut lines = Vec::new();
    for i in 1..=1_200u64 {
        let d = EntryDraft::new(
            T0 + i,
            Actor::new(Role::TechnicalUser, Vec::<String>::new()),
            Operation::new("key.sign").unwrap(),
            Outcome::Ok,
        );
        lines.push(chain.append(d).unwrap().to_canonical());
        if policy.due(chain.entries_since_checkpoint(), false) {
            lines.push(chain.checkpoint(&signer, T0 + i).to_canonical());
        }
    }
    lines.push(chain.checkpoint(&signer, T0 + 2_000).to_canonical());
    let mut full = Vec::new();
    for l in &lines {
        full.extend_from_slice(l);
        full.push(b'\n');
    }
    assert!(
        verify_log(signer.public(), None, &full)
            .unwrap()
            .is_signed_to_end()
    );

    // Cut off the export's final checkpoint: 200 entries are left unsigned.
    let cut: Vec<u8> = lines[..lines.len() - 1]
        .iter()
        .flat_map(|l| l.iter().copied().chain([b'\n']))
        .collect();
    let report = verify_log(signer.public(), None, &cut).unwrap();
    assert!(!report.is_signed_to_end());
    assert_eq!(report.last_checkpoint_seq(), Some(1_000));
    let tail = report.unsigned_tail().unwrap();
    assert_eq!(
        (tail.first_seq, tail.entries, tail.first_line),
        (1_001, 200, 1_002)
    );
    assert_eq!(
        report.require_signed_to_end(),
        Err(at(
            1_002,
            Fault::UnsignedTail {
                first_seq: 1_001,
                entries: 200
            }
        ))
    );

    // Cut in the middle of the last line: that line is bad.
    let torn = &full[..full.len() - 30];
    assert!(matches!(
        verify_log(signer.public(), None, torn),
        Err(LogError::Verification {
            line: 1_202,
            fault: Fault::NonCanonical { .. }
        })
    ));
    // Cut in the middle of an entry line, further up.
    let torn = &cut[..cut.len() - 30];
    assert!(matches!(
        verify_log(signer.public(), None, torn),
        Err(LogError::Verification {
            line: 1_201,
            fault: Fault::NonCanonical { .. }
        })
    ));
}

#[test]
fn an_export_continues_from_an_anchor() {
    let signer = signer();
    let log = build_log(200, &signer);
    // Split after the checkpoint for entry 100.
    let split = log.entry_line[100] + 2;
    assert!(!log.is_entry(split - 1));
    let first: Vec<u8> = log.lines[..split]
        .iter()
        .flat_map(|l| l.iter().copied().chain([b'\n']))
        .collect();
    let second: Vec<u8> = log.lines[split..]
        .iter()
        .flat_map(|l| l.iter().copied().chain([b'\n']))
        .collect();
    let a = verify_log(signer.public(), None, &first)
        .unwrap()
        .require_signed_to_end()
        .unwrap();
    assert_eq!(a.last_seq(), 100);
    let b = verify_log(
        signer.public(),
        Some((a.last_seq(), a.last_hash())),
        &second,
    )
    .unwrap()
    .require_signed_to_end()
    .unwrap();
    assert_eq!((b.entries(), b.last_seq()), (100, 200));
    // Without the anchor the second part starts with a gap.
    assert_eq!(
        verify_log(signer.public(), None, &second),
        Err(at(
            1,
            Fault::Gap {
                expected: 1,
                found: 101
            }
        ))
    );
    // With the wrong anchor hash the chain is broken at its first entry.
    assert_eq!(
        verify_log(signer.public(), Some((100, Hash([1; 32]))), &second),
        Err(at(1, Fault::BrokenChain { seq: 101 }))
    );
}

#[test]
fn empty_logs_and_empty_lines() {
    let signer = signer();
    let key = signer.public();
    let report = verify_log(key, None, b"").unwrap();
    assert_eq!(
        (report.lines(), report.entries(), report.last_seq()),
        (0, 0, 0)
    );
    assert_eq!(
        report.require_signed_to_end(),
        Err(at(1, Fault::NoCheckpoint))
    );
    // An empty export still ends with a checkpoint, over the empty log.
    let mut chain = Chain::new();
    let mut empty_export = chain.checkpoint(&signer, T0).to_canonical();
    empty_export.push(b'\n');
    let report = verify_log(key, None, &empty_export)
        .unwrap()
        .require_signed_to_end()
        .unwrap();
    assert_eq!(
        (report.entries(), report.last_checkpoint_seq()),
        (0, Some(0))
    );

    assert!(matches!(
        verify_log(key, None, b"\n"),
        Err(LogError::Verification {
            line: 1,
            fault: Fault::NonCanonical { .. }
        })
    ));
    let log = build_log(20, &signer);
    let mut bytes = log.bytes();
    let second_line_end = bytes.iter().position(|&b| b == b'\n').unwrap();
    bytes.insert(second_line_end, b'\n');
    assert!(matches!(
        verify_log(key, None, &bytes),
        Err(LogError::Verification {
            line: 2,
            fault: Fault::NonCanonical { .. }
        })
    ));
    // Without the final newline the log is the same.
    let bytes = log.bytes();
    assert_eq!(
        verify_log(key, None, &bytes[..bytes.len() - 1]),
        verify_log(key, None, &bytes)
    );
}

#[test]
fn after_the_first_bad_line_the_verifier_reads_nothing() {
    let signer = signer();
    let mut log = build_log(30, &signer);
    log.lines[3] = b"{}".to_vec();
    let mut v = Verifier::new(signer.public(), None);
    let results: Vec<_> = log.lines.iter().map(|l| v.push_line(l)).collect();
    assert!(results[..3].iter().all(Result::is_ok));
    let first = results[3].clone().unwrap_err();
    assert_eq!(first.line(), Some(4));
    assert!(results[4..].iter().all(|r| r.as_ref() == Err(&first)));
    assert_eq!(v.lines(), 4);
    assert_eq!(v.finish(), Err(first));
}

#[test]
fn a_line_over_the_limit_is_rejected_unread() {
    let signer = signer();
    let line = vec![b'{'; MAX_LINE_LEN + 1];
    let mut v = Verifier::new(signer.public(), None);
    assert_eq!(
        v.push_line(&line),
        Err(at(
            1,
            Fault::TooLong {
                len: MAX_LINE_LEN + 1,
                max: MAX_LINE_LEN
            }
        ))
    );
}

fn awkward_entry() -> Entry {
    let draft = EntryDraft::new(
        T0,
        Actor::new(
            Role::DeviceSo,
            [
                "Zoë Müller",
                "O'Brien \"the\" SO",
                "back\\slash",
                "tab\there\nnewline\r\u{0}nul",
                "sep\u{2028}arator\u{2029}",
                "del\u{7f}",
                "山田 太郎 🔑",
            ],
        ),
        Operation::new("card-set.revoke").unwrap(),
        Outcome::failed("card said \"6982\"\n\u{1b}[31mred\u{1b}[0m / \\ done"),
    )
    .with_object("card/\u{0}\u{1f}\u{2028}é")
    .with_detail("note", "\u{feff}BOM and \u{202e}RTL override")
    .with_detail("path", "C:\\tessera\\log.jsonl");
    Chain::new().append(draft).unwrap()
}

#[test]
fn awkward_strings_round_trip() {
    let entry = awkward_entry();
    let line = entry.to_canonical();
    // A line never holds a raw newline, carriage return, other control byte or U+2028/9.
    assert!(line.iter().all(|&b| b >= 0x20 && b != 0x7f));
    let text = std::str::from_utf8(&line).unwrap();
    assert!(!text.contains('\u{2028}') && !text.contains('\u{2029}'));
    assert!(text.contains("Zoë Müller"));
    assert!(text.contains(r#"tab\u0009here\u000anewline\u000d\u0000nul"#));
    assert!(text.contains(r#"sep\u2028arator\u2029"#));
    assert!(text.contains(r#"O'Brien \"the\" SO"#));
    assert!(text.contains(r#""back\\slash""#));
    assert!(text.contains("\u{feff}BOM and \u{202e}RTL"));

    let back = Entry::from_canonical(&line).unwrap();
    assert_eq!(back, entry);
    assert_eq!(back.to_canonical(), line);
    assert_eq!(
        LogLine::from_canonical(&line),
        Ok(LogLine::Entry(entry.clone()))
    );
    // Any JSON reader sees the same strings.
    let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
    assert_eq!(v["actor"]["holders"][3], "tab\there\nnewline\r\u{0}nul");
    assert_eq!(v["actor"]["role"], "device-so");
    assert_eq!(v["object"], "card/\u{0}\u{1f}\u{2028}é");
    assert_eq!(v["outcome"]["result"], "failed");
    assert_eq!(v["hash"], entry.hash().to_string());
}

/// Variants of a valid line that JSON reads as the same object, and that are still rejected.
#[test]
fn non_canonical_spellings_are_rejected() {
    let entry = awkward_entry();
    let line = String::from_utf8(entry.to_canonical()).unwrap();
    let same_json: Vec<(&str, String)> = vec![
        (
            "space after a colon",
            line.replacen("\"seq\":", "\"seq\": ", 1),
        ),
        (
            "space after a comma",
            line.replacen(",\"time\"", ", \"time\"", 1),
        ),
        ("leading space", format!(" {line}")),
        ("trailing space", format!("{line} ")),
        ("trailing newline", format!("{line}\n")),
        ("trailing carriage return", format!("{line}\r")),
        (
            "short escape for a newline",
            line.replacen(r"\u000a", r"\n", 1),
        ),
        ("short escape for a tab", line.replacen(r"\u0009", r"\t", 1)),
        (
            "upper-case escape hex",
            line.replacen(r"\u001f", r"\u001F", 1),
        ),
        ("escaped non-ASCII", line.replacen("ë", r"\u00eb", 1)),
        ("escaped slash", line.replacen("card/", r"card\/", 1)),
        (
            "raw line separator",
            line.replacen(r"\u2028", "\u{2028}", 1),
        ),
        (
            "escaped plain letter",
            line.replacen("\"op\":\"card", r#""op":"\u0063ard"#, 1),
        ),
        (
            "fields reordered",
            line.replacen(
                &format!("\"seq\":1,\"time\":{T0},"),
                &format!("\"time\":{T0},\"seq\":1,"),
                1,
            ),
        ),
        (
            "details reordered",
            line.replacen(
                r#""note":"#,
                r#""path":"C:\\tessera\\log.jsonl","note":"#,
                1,
            )
            .replacen(r#","path":"C:\\tessera\\log.jsonl"}"#, "}", 1),
        ),
        ("null reason on ok", {
            let ok = Chain::new()
                .append(EntryDraft::new(
                    T0,
                    Actor::new(Role::Pso, ["A"]),
                    Operation::new("login").unwrap(),
                    Outcome::Ok,
                ))
                .unwrap();
            let l = String::from_utf8(ok.to_canonical()).unwrap();
            l.replacen(r#"{"result":"ok"}"#, r#"{"result":"ok","reason":null}"#, 1)
        }),
    ];
    for (what, variant) in &same_json {
        assert_ne!(variant, &line, "{what}: the variant must differ");
        let a: serde_json::Value = serde_json::from_str(&line).unwrap();
        let b: Result<serde_json::Value, _> = serde_json::from_str(variant);
        if *what != "null reason on ok" {
            assert_eq!(
                b.ok().as_ref(),
                Some(&a),
                "{what}: the variant must be the same JSON"
            );
        }
        match Entry::from_canonical(variant.as_bytes()) {
            Err(LogError::Rejected(Fault::NonCanonical { .. })) => {}
            other => panic!("{what}: {other:?}"),
        }
    }

    let other: Vec<(&str, String)> = vec![
        (
            "leading zero",
            line.replacen("\"seq\":1,", "\"seq\":01,", 1),
        ),
        ("fraction", line.replacen("\"seq\":1,", "\"seq\":1.0,", 1)),
        ("exponent", line.replacen("\"seq\":1,", "\"seq\":1e0,", 1)),
        ("negative", line.replacen("\"seq\":1,", "\"seq\":-1,", 1)),
        ("upper-case hash", {
            let h = entry.hash().to_string();
            line.replacen(&h, &h.to_uppercase(), 1)
        }),
        (
            "extra field",
            line.replacen("{\"seq\"", "{\"x\":1,\"seq\"", 1),
        ),
        (
            "missing details",
            line.replacen(",\"details\":{", ",\"detailz\":{", 1),
        ),
        ("unknown role", line.replacen("device-so", "root", 1)),
        ("bad op", line.replacen("card-set.revoke", "Card", 1)),
        (
            "duplicate field",
            line.replacen("{\"seq\":1,", "{\"seq\":1,\"seq\":1,", 1),
        ),
        ("byte order mark", format!("\u{feff}{line}")),
        ("not an object", "[]".to_string()),
        ("empty", String::new()),
    ];
    for (what, variant) in &other {
        match Entry::from_canonical(variant.as_bytes()) {
            Err(LogError::Rejected(Fault::NonCanonical { .. })) => {}
            other => panic!("{what}: {other:?}"),
        }
    }

    // The same holds for checkpoints, and in a log the bad line is located.
    let signer = signer();
    let mut log = build_log(30, &signer);
    let i = log.checkpoint_lines[1];
    let cp = String::from_utf8(log.lines[i].clone()).unwrap();
    for variant in [
        cp.replacen("{\"checkpoint\":{", "{\"checkpoint\": {", 1),
        cp.replacen("\"seq\":20,", "\"seq\":20.0,", 1),
        {
            // The signature's first hex digit, written as an escape.
            let at = cp.find("\"sig\":\"").unwrap() + "\"sig\":\"".len();
            format!(
                "{}\\u00{:02x}{}",
                &cp[..at],
                cp.as_bytes()[at],
                &cp[at + 1..]
            )
        },
        format!("{cp} "),
    ] {
        assert_ne!(variant, cp);
        assert!(
            matches!(
                Checkpoint::from_canonical(variant.as_bytes()),
                Err(LogError::Rejected(Fault::NonCanonical { .. }))
            ),
            "{variant}"
        );
        log.lines[i] = variant.into_bytes();
        assert!(matches!(
            verify(&log, signer.public()),
            Err(LogError::Verification { line, fault: Fault::NonCanonical { .. } })
                if line == i as u64 + 1
        ));
    }
}

fn text(max_chars: usize) -> impl Strategy<Value = String> {
    let ch = prop_oneof![
        4 => any::<char>(),
        1 => prop::sample::select(vec![
            '"', '\\', '\n', '\u{0}', '\u{7f}', '\u{2028}', '\u{2029}', 'ë', '/'
        ]),
    ];
    prop::collection::vec(ch, 1..=max_chars).prop_map(|v| v.into_iter().collect())
}

fn arb_draft() -> impl Strategy<Value = (EntryDraft, bool)> {
    let role = prop::sample::select(Role::ALL.to_vec());
    let op = prop::sample::select(vec![
        "login",
        "config.change",
        "key.delete",
        "bin.restore",
        "backup.create",
    ]);
    let outcome = prop_oneof![
        Just(Outcome::Ok),
        text(40).prop_map(Outcome::refused),
        text(40).prop_map(Outcome::failed),
    ];
    let details = prop::collection::btree_map(
        prop::sample::select(vec!["param", "old", "new", "tier"]).prop_map(String::from),
        text(20),
        0..3,
    );
    (
        any::<u64>(),
        role,
        prop::collection::vec(text(12), 0..4),
        op,
        prop::option::of(text(40)),
        outcome,
        details,
        any::<bool>(),
    )
        .prop_map(
            |(time, role, holders, op, object, outcome, details, administrative)| {
                let d = EntryDraft {
                    time_unix_ms: time,
                    actor: Actor::new(role, holders),
                    operation: Operation::new(op).unwrap(),
                    object,
                    outcome,
                    details,
                };
                (d, administrative)
            },
        )
}

/// Appends the drafts with checkpoints by a small policy and a final one.
fn append_all(drafts: Vec<(EntryDraft, bool)>, signer: &AuditSigner) -> Vec<Vec<u8>> {
    let policy = CheckpointPolicy::every(4);
    let mut chain = Chain::new();
    let mut lines = Vec::new();
    for (d, administrative) in drafts {
        let entry = chain
            .append(d.clone())
            .expect("drafts within bounds append");
        assert_eq!(entry.draft(), &d);
        lines.push(entry.to_canonical());
        if policy.due(chain.entries_since_checkpoint(), administrative) {
            lines.push(chain.checkpoint(signer, 0).to_canonical());
        }
    }
    lines.push(chain.checkpoint(signer, 0).to_canonical());
    lines
}

/// What the streaming verifier says about `log`, split into lines as `verify_log` splits it.
fn stream(key: AuditKey, log: &[u8]) -> Result<Report, LogError> {
    let mut v = Verifier::new(key, None);
    if !log.is_empty() {
        let body = log.strip_suffix(b"\n").unwrap_or(log);
        body.split(|&b| b == b'\n')
            .try_for_each(|line| v.push_line(line))?;
    }
    v.finish()
}

fn join(lines: &[Vec<u8>]) -> Vec<u8> {
    lines
        .iter()
        .flat_map(|l| l.iter().copied().chain([b'\n']))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        // Regressions cannot be stored next to an integration test; a failure prints its input.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_drafts_append_and_verify(drafts in prop::collection::vec(arb_draft(), 0..20)) {
        let signer = signer();
        let n = drafts.len() as u64;
        let lines = append_all(drafts, &signer);
        for line in &lines {
            let parsed = LogLine::from_canonical(line).unwrap();
            let again = match &parsed {
                LogLine::Entry(e) => e.to_canonical(),
                LogLine::Checkpoint(c) => c.to_canonical(),
            };
            prop_assert_eq!(&again, line);
        }
        let report = verify_log(signer.public(), None, &join(&lines))
            .unwrap()
            .require_signed_to_end()
            .unwrap();
        prop_assert_eq!(report.entries(), n);
        prop_assert_eq!(report.last_seq(), n);
    }

    /// Any JSON reader sees in a line exactly the fields the entry has.
    #[test]
    fn serde_json_reads_what_was_written(d in arb_draft()) {
        let (draft, _) = d;
        let entry = Chain::new().append(draft.clone()).unwrap();
        let line = entry.to_canonical();
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        let holders: Vec<&str> = v["actor"]["holders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap())
            .collect();
        let expected: Vec<&str> = draft.actor.holders.iter().map(String::as_str).collect();
        prop_assert_eq!(holders, expected);
        prop_assert_eq!(v["actor"]["role"].as_str(), Some(draft.actor.role.as_str()));
        prop_assert_eq!(v["op"].as_str(), Some(draft.operation.as_str()));
        prop_assert_eq!(v["object"].as_str(), draft.object.as_deref());
        prop_assert_eq!(v["outcome"]["result"].as_str(), Some(draft.outcome.result_name()));
        prop_assert_eq!(v["outcome"]["reason"].as_str(), draft.outcome.reason());
        prop_assert_eq!(v["time"].as_u64(), Some(draft.time_unix_ms));
        let details: std::collections::BTreeMap<String, String> =
            serde_json::from_value(v["details"].clone()).unwrap();
        prop_assert_eq!(details, draft.details);
        prop_assert_eq!(v.as_object().unwrap().len(), 9);
    }

    /// Nothing panics on arbitrary input, and what is accepted re-encodes to itself.
    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..400),
        d in arb_draft(),
        cut in any::<prop::sample::Index>(),
        splice in prop::collection::vec(any::<u8>(), 0..8),
    ) {
        let entry = Chain::new().append(d.0).unwrap().to_canonical();
        let at = cut.index(entry.len());
        let mut spliced = entry[..at].to_vec();
        spliced.extend_from_slice(&splice);
        spliced.extend_from_slice(&entry[at..]);
        for input in [&bytes, &spliced, &entry[..at].to_vec()] {
            match LogLine::from_canonical(input) {
                Ok(LogLine::Entry(e)) => prop_assert_eq!(&e.to_canonical(), input),
                Ok(LogLine::Checkpoint(c)) => prop_assert_eq!(&c.to_canonical(), input),
                Err(_) => {}
            }
        }
    }

    /// `verify_log` (signatures on a second thread) says exactly what the streaming verifier
    /// says, whatever was done to the log.
    #[test]
    fn verify_log_agrees_with_the_streaming_verifier(
        drafts in prop::collection::vec(arb_draft(), 1..12),
        tamper in 0u8..6,
        pick in any::<prop::sample::Index>(),
        byte in any::<prop::sample::Index>(),
    ) {
        let signer = signer();
        let mut lines = append_all(drafts, &signer);
        let i = pick.index(lines.len());
        match tamper {
            0 => {}
            1 => {
                let b = byte.index(lines[i].len());
                lines[i][b] ^= 0x01;
            }
            2 => {
                lines.remove(i);
            }
            3 if i + 1 < lines.len() => lines.swap(i, i + 1),
            4 => {
                let copy = lines[i].clone();
                lines.insert(i, copy);
            }
            _ => {
                // Re-sign a checkpoint with another key, or truncate the log there.
                match Checkpoint::from_canonical(&lines[i]) {
                    Ok(cp) => {
                        let other = AuditSigner::from_secret_bytes(&[9; 32]);
                        let resigned = other.sign_checkpoint(cp.seq, cp.hash, cp.time_unix_ms);
                        lines[i] = resigned.to_canonical();
                    }
                    Err(_) => lines.truncate(i),
                }
            }
        }
        let log = join(&lines);
        let together = verify_log(signer.public(), None, &log);
        let streamed = stream(signer.public(), &log);
        prop_assert_eq!(together, streamed);
    }

    #[test]
    fn any_single_byte_change_is_detected_at_its_line(
        drafts in prop::collection::vec(arb_draft(), 1..12),
        line_pick in any::<prop::sample::Index>(),
        byte_pick in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let signer = signer();
        let mut lines = append_all(drafts, &signer);
        let l = line_pick.index(lines.len());
        let b = byte_pick.index(lines[l].len());
        lines[l][b] ^= flip;
        let err = verify_log(signer.public(), None, &join(&lines)).unwrap_err();
        prop_assert_eq!(err.line(), Some(l as u64 + 1), "{}", err);
        // The streaming verifier stops at the same line, for the same reason.
        prop_assert_eq!(stream(signer.public(), &join(&lines)), Err(err));
    }
}
