//! The test vectors in `tests/data/` (see its README): a known-good log that this crate must
//! rebuild byte for byte, and one file per attack with the fault and line it must give.

use audit_log::{
    Actor, AuditKey, AuditSigner, Chain, EntryDraft, Fault, LogError, Operation, Outcome, Role,
    verify_log,
};

const KNOWN_GOOD: &[u8] = include_bytes!("data/known-good.jsonl");

fn pinned_key() -> AuditKey {
    let hex = include_str!("data/audit-key.hex").trim();
    let mut bytes = [0u8; 32];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    AuditKey::from_bytes(&bytes).unwrap()
}

/// The log of `known-good.jsonl`, built again.
fn known_good_log() -> Vec<u8> {
    let signer = AuditSigner::from_secret_bytes(&[0x42; 32]);
    let officers = || Actor::new(Role::Pso, ["Alice Meier", "Zoë Müller"]);
    let app = || Actor::new(Role::TechnicalUser, Vec::<String>::new());
    let op = |name| Operation::new(name).unwrap();
    let drafts = [
        (
            EntryDraft::new(1_732_377_600_000, officers(), op("login"), Outcome::Ok),
            true,
        ),
        (
            EntryDraft::new(
                1_732_377_605_250,
                officers(),
                op("config.change"),
                Outcome::refused("loosening change needs typed confirmation"),
            )
            .with_object("partition")
            .with_detail("param", "key-export")
            .with_detail("old", "off")
            .with_detail("new", "wrapped and plain"),
            true,
        ),
        (
            EntryDraft::new(
                1_732_377_609_001,
                app(),
                op("key.delete"),
                Outcome::failed("object \"k1\\2\" busy\nretry"),
            )
            .with_object("key/\u{2028}k1"),
            false,
        ),
        (
            EntryDraft::new(1_732_377_609_002, app(), op("key.create"), Outcome::Ok)
                .with_object("key/k2"),
            false,
        ),
    ];
    let mut chain = Chain::new();
    let mut out = Vec::new();
    for (draft, administrative) in drafts {
        chain.append(draft).unwrap().encode_into(&mut out);
        out.push(b'\n');
        if administrative {
            chain
                .checkpoint(&signer, 1_732_377_610_000)
                .encode_into(&mut out);
            out.push(b'\n');
        }
    }
    chain
        .checkpoint(&signer, 1_732_377_620_000)
        .encode_into(&mut out);
    out.push(b'\n');
    out
}

#[test]
fn the_known_good_log_is_rebuilt_byte_for_byte() {
    // Fails if the encoding, the hash rule or the signed message changes: old logs would no
    // longer verify.
    assert_eq!(
        String::from_utf8(known_good_log()).unwrap(),
        String::from_utf8(KNOWN_GOOD.to_vec()).unwrap()
    );
    assert_eq!(
        AuditSigner::from_secret_bytes(&[0x42; 32]).public(),
        pinned_key()
    );
}

#[test]
fn the_known_good_log_verifies() {
    let report = verify_log(pinned_key(), None, KNOWN_GOOD)
        .unwrap()
        .require_signed_to_end()
        .unwrap();
    assert_eq!(
        (report.entries(), report.checkpoints(), report.last_seq()),
        (4, 3, 4)
    );
    assert_eq!(
        report.last_hash().to_string(),
        "fcfe2ddb421ffee0e0acf3c79d8c9ab0c37c62b76111523bdc3d237a28693cc7"
    );
}

fn bad(line: u64, fault: Fault) -> Result<(), LogError> {
    Err(LogError::Verification { line, fault })
}

fn check(log: &[u8]) -> Result<(), LogError> {
    verify_log(pinned_key(), None, log)
        .and_then(|report| report.require_signed_to_end())
        .map(|_| ())
}

#[test]
fn each_attack_is_found_where_it_was_made() {
    let cases: [(&str, &[u8], Result<(), LogError>); 5] = [
        (
            "edited-object",
            include_bytes!("data/edited-object.jsonl"),
            bad(3, Fault::EditedEntry { seq: 2 }),
        ),
        (
            "removed-entry",
            include_bytes!("data/removed-entry.jsonl"),
            bad(
                5,
                Fault::Gap {
                    expected: 3,
                    found: 4,
                },
            ),
        ),
        (
            "swapped-pair",
            include_bytes!("data/swapped-pair.jsonl"),
            bad(
                5,
                Fault::OutOfOrder {
                    expected: 3,
                    found: 4,
                },
            ),
        ),
        (
            "forged-checkpoint-signature",
            include_bytes!("data/forged-checkpoint-signature.jsonl"),
            bad(4, Fault::BadCheckpoint { seq: 2 }),
        ),
        (
            "truncated-tail",
            include_bytes!("data/truncated-tail.jsonl"),
            bad(
                5,
                Fault::UnsignedTail {
                    first_seq: 3,
                    entries: 2,
                },
            ),
        ),
    ];
    for (name, log, expected) in cases {
        assert_eq!(check(log), expected, "{name}");
    }
    let spaced = check(include_bytes!("data/non-canonical-spacing.jsonl"));
    assert!(
        matches!(
            spaced,
            Err(LogError::Verification {
                line: 6,
                fault: Fault::NonCanonical { .. }
            })
        ),
        "{spaced:?}"
    );
}

#[test]
fn a_log_checked_against_another_key_fails_at_its_first_checkpoint() {
    let other = AuditSigner::from_secret_bytes(&[0x43; 32]).public();
    assert_eq!(
        verify_log(other, None, KNOWN_GOOD).map(|_| ()),
        bad(2, Fault::BadCheckpoint { seq: 1 })
    );
}
