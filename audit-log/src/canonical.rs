//! The canonical line encoding of entries and checkpoints, and its strict parser.
//!
//! A log is JSON Lines (<https://jsonlines.org>): one line per entry or checkpoint, each a JSON
//! object (RFC 8259) in the one canonical form below, so that the stored bytes, the hashed bytes
//! and an exported line are the same bytes and an export verifies without re-encoding.
//!
//! * Fields in a fixed order, every field always present, no whitespace anywhere.
//! * Integers (sequence numbers, times) in decimal, without sign, leading zeros, fraction or
//!   exponent; they are unsigned 64-bit.
//! * Hashes and signatures as lowercase hex strings.
//! * Strings: `"` is written `\"` and `\` is written `\\`; every byte below 0x20 and the byte
//!   0x7f are written `\u00XX` with two lowercase hex digits (so a newline is `\u000a`, never
//!   `\n`); U+2028 and U+2029 are written `\u2028` and `\u2029`. Every other character is written
//!   as itself in UTF-8 (including `/` and all non-ASCII).
//! * A line ends before its newline: the newline separates lines and belongs to neither.
//!
//! The entry line is described in [`entry`](crate::entry), with the exact rule for its hash;
//! the checkpoint line in [`checkpoint`](crate::checkpoint).
//!
//! The parser bounds a line to [`MAX_LINE_LEN`] before it reads it, reads it with a reader that
//! knows only the canonical grammar (`reader`), re-encodes what it read and requires the result
//! to be byte for byte the input. Anything else that JSON would accept (other spacing, field
//! order or escapes, `1.0` for `1`) is rejected. It is written by hand rather than with
//! `serde_json` for speed (verifying a million entries within a second) and so that nothing
//! outside the canonical form is ever decoded; the tests check it against `serde_json`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::actor::{Actor, Role};
use crate::checkpoint::{Checkpoint, SIGNATURE_LEN};
use crate::entry::{Entry, EntryDraft, MAX_DETAILS, MAX_HOLDERS, Operation, Outcome, entry_hash};
use crate::error::{Fault, LogError};
use crate::hash::{Hash, encode_hex};

pub(crate) mod reader;

use reader::{Reader, fail_at};

/// Longest line, entry or checkpoint, in bytes (without its newline). Longer lines are rejected
/// before they are parsed; every entry within the field bounds fits.
pub const MAX_LINE_LEN: usize = 16 * 1024;

/// How every checkpoint line starts; no entry line does.
pub const CHECKPOINT_LINE_PREFIX: &[u8] = b"{\"checkpoint\":";

/// A line of a log: an entry or a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogLine {
    /// An entry.
    Entry(Entry),
    /// A checkpoint (not yet verified: see [`Checkpoint::verify`]).
    Checkpoint(Checkpoint),
}

impl LogLine {
    /// Parses one canonical line (without its newline), an entry or a checkpoint.
    pub fn from_canonical(line: &[u8]) -> Result<LogLine, LogError> {
        if line.starts_with(CHECKPOINT_LINE_PREFIX) {
            Checkpoint::from_canonical(line).map(LogLine::Checkpoint)
        } else {
            Entry::from_canonical(line).map(LogLine::Entry)
        }
    }
}

impl Entry {
    /// Parses a canonical entry line (without its newline) and checks the entry's own hash.
    ///
    /// Rejects a line longer than [`MAX_LINE_LEN`] unread ([`Fault::TooLong`]), a line that is
    /// not the canonical encoding of an entry within bounds ([`Fault::NonCanonical`]) and an
    /// entry whose hash does not match ([`Fault::EditedEntry`]).
    pub fn from_canonical(line: &[u8]) -> Result<Entry, LogError> {
        parse_entry(line, &mut Vec::with_capacity(line.len()))
    }
}

impl Checkpoint {
    /// Parses a canonical checkpoint line (without its newline). The signature is not checked
    /// here: see [`Checkpoint::verify`].
    pub fn from_canonical(line: &[u8]) -> Result<Checkpoint, LogError> {
        parse_checkpoint(line, &mut Vec::with_capacity(line.len()))
    }

    /// The canonical line, without a trailing newline.
    pub fn to_canonical(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        self.encode_into(&mut out);
        out
    }

    /// Appends the canonical line to `out`:
    /// `{"checkpoint":{"seq":N,"hash":"<64 hex>","time":T,"sig":"<128 hex>"}}`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(CHECKPOINT_LINE_PREFIX);
        out.extend_from_slice(b"{\"seq\":");
        write_u64(out, self.seq);
        out.extend_from_slice(b",\"hash\":");
        write_hash(out, &self.hash);
        out.extend_from_slice(b",\"time\":");
        write_u64(out, self.time_unix_ms);
        out.extend_from_slice(b",\"sig\":\"");
        let mut hex = [0u8; SIGNATURE_LEN * 2];
        encode_hex(&self.signature, &mut hex);
        out.extend_from_slice(&hex);
        out.extend_from_slice(b"\"}}");
    }
}

/// Writes an entry's line up to and excluding its hash field (see [`entry`](crate::entry)).
pub(crate) fn encode_entry_body(out: &mut Vec<u8>, seq: u64, draft: &EntryDraft, prev: &Hash) {
    out.extend_from_slice(b"{\"seq\":");
    write_u64(out, seq);
    out.extend_from_slice(b",\"time\":");
    write_u64(out, draft.time_unix_ms);
    out.extend_from_slice(b",\"actor\":{\"role\":\"");
    // Role names are fixed lowercase ASCII words: nothing to escape.
    out.extend_from_slice(draft.actor.role.as_str().as_bytes());
    out.extend_from_slice(b"\",\"holders\":[");
    for (i, holder) in draft.actor.holders.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, holder);
    }
    out.extend_from_slice(b"]},\"op\":\"");
    // Operation names are checked to need no escaping.
    out.extend_from_slice(draft.operation.as_str().as_bytes());
    out.extend_from_slice(b"\",\"object\":");
    match &draft.object {
        Some(object) => write_str(out, object),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"outcome\":{\"result\":\"");
    out.extend_from_slice(draft.outcome.result_name().as_bytes());
    out.push(b'"');
    if let Some(reason) = draft.outcome.reason() {
        out.extend_from_slice(b",\"reason\":");
        write_str(out, reason);
    }
    out.extend_from_slice(b"},\"details\":{");
    // A BTreeMap<String, _> iterates in byte order of the keys, which is the canonical order.
    for (i, (key, value)) in draft.details.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, key);
        out.push(b':');
        write_str(out, value);
    }
    out.extend_from_slice(b"},\"prev\":");
    write_hash(out, prev);
}

/// Writes the hash field that closes an entry line: `,"hash":"<64 hex>"}`.
pub(crate) fn encode_hash_field(out: &mut Vec<u8>, hash: &Hash) {
    out.extend_from_slice(b",\"hash\":");
    write_hash(out, hash);
    out.push(b'}');
}

/// Bytes a string scan stops at: those escaped (`"`, `\`, below 0x20, 0x7f) and 0xe2, the
/// first byte of U+2028 and U+2029 (E2 80 A8, E2 80 A9) and of other characters.
pub(crate) const STOP: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table[0x7f] = true;
    table[0xe2] = true;
    table
};

/// Writes `s` as a JSON string under the escaping rule of the [module docs](self).
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.push(b'"');
    let mut done = 0; // bytes[..done] are written
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !STOP[usize::from(b)] {
            i += 1;
            continue;
        }
        let line_separator = b == 0xe2
            && bytes.get(i + 1) == Some(&0x80)
            && matches!(bytes.get(i + 2), Some(0xa8 | 0xa9));
        if b == 0xe2 && !line_separator {
            i += 1;
            continue;
        }
        out.extend_from_slice(&bytes[done..i]);
        if line_separator {
            out.extend_from_slice(if bytes[i + 2] == 0xa8 {
                b"\\u2028"
            } else {
                b"\\u2029"
            });
            i += 3;
        } else {
            match b {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                _ => {
                    let mut hex = [0u8; 2];
                    encode_hex(&[b], &mut hex);
                    out.extend_from_slice(b"\\u00");
                    out.extend_from_slice(&hex);
                }
            }
            i += 1;
        }
        done = i;
    }
    out.extend_from_slice(&bytes[done..]);
    out.push(b'"');
}

/// Writes `n` in decimal, without leading zeros.
pub(crate) fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        // n % 10 < 10, so the cast cannot truncate.
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

pub(crate) fn write_hash(out: &mut Vec<u8>, hash: &Hash) {
    let mut hex = [0u8; 64];
    encode_hex(&hash.0, &mut hex);
    out.push(b'"');
    out.extend_from_slice(&hex);
    out.push(b'"');
}

pub(crate) fn check_len(line: &[u8]) -> Result<(), LogError> {
    if line.len() > MAX_LINE_LEN {
        return Err(LogError::Rejected(Fault::TooLong {
            len: line.len(),
            max: MAX_LINE_LEN,
        }));
    }
    Ok(())
}

fn field_problem(e: LogError) -> LogError {
    LogError::non_canonical(e.to_string())
}

/// Requires `line` to be exactly the re-encoding `canonical`.
pub(crate) fn require_same(line: &[u8], canonical: &[u8]) -> Result<(), LogError> {
    if line == canonical {
        return Ok(());
    }
    let at = line
        .iter()
        .zip(canonical)
        .position(|(a, b)| a != b)
        .unwrap_or(line.len().min(canonical.len()));
    Err(LogError::non_canonical(format!(
        "differs from its canonical encoding at byte {at}"
    )))
}

/// Reads an entry line's fields, in their order, without checking its hash.
fn read_entry(line: &[u8]) -> Result<(u64, EntryDraft, Hash, Hash), LogError> {
    let mut r = Reader::new(line)?;
    r.expect("{\"seq\":")?;
    let seq = r.uint()?;
    r.expect(",\"time\":")?;
    let time_unix_ms = r.uint()?;
    r.expect(",\"actor\":{\"role\":")?;
    let at = r.pos();
    let role = Role::from_name(&r.string()?).ok_or_else(|| fail_at("unknown role", at))?;
    r.expect(",\"holders\":[")?;
    let holders = read_holders(&mut r)?;
    r.expect("},\"op\":")?;
    let at = r.pos();
    let operation = Operation::new(r.string()?).map_err(|e| fail_at(&e.to_string(), at))?;
    r.expect(",\"object\":")?;
    let object = r.nullable_string()?.map(Cow::into_owned);
    r.expect(",\"outcome\":{\"result\":")?;
    let outcome = read_outcome(&mut r)?;
    r.expect("},\"details\":{")?;
    let details = read_details(&mut r)?;
    r.expect(",\"prev\":")?;
    let prev = r.hash()?;
    r.expect(",\"hash\":")?;
    let hash = r.hash()?;
    r.expect("}")?;
    r.end()?;
    let draft = EntryDraft {
        time_unix_ms,
        actor: Actor { role, holders },
        operation,
        object,
        outcome,
        details,
    };
    draft.check().map_err(field_problem)?;
    Ok((seq, draft, prev, hash))
}

/// The actor's holders, after the `[` that opens them, through the closing `]`.
fn read_holders(r: &mut Reader<'_>) -> Result<Vec<String>, LogError> {
    let mut holders = Vec::new();
    if !r.eat(b"]") {
        loop {
            if holders.len() == MAX_HOLDERS {
                return Err(r.fail("too many holders"));
            }
            holders.push(r.string()?.into_owned());
            if r.eat(b"]") {
                break;
            }
            r.expect(",")?;
        }
    }
    Ok(holders)
}

/// The outcome's result and reason, after `{"result":`.
fn read_outcome(r: &mut Reader<'_>) -> Result<Outcome, LogError> {
    let at = r.pos();
    let result = r.string()?;
    let reason = if r.eat(b",\"reason\":") {
        Some(r.string()?.into_owned())
    } else {
        None
    };
    let outcome = match (&*result, reason) {
        ("ok", None) => Outcome::Ok,
        ("refused", Some(reason)) => Outcome::Refused { reason },
        ("failed", Some(reason)) => Outcome::Failed { reason },
        _ => {
            return Err(fail_at(
                "outcome is not ok, or refused or failed with a reason,",
                at,
            ));
        }
    };
    Ok(outcome)
}

/// The details, after the `{` that opens them, through the closing `}`.
fn read_details(r: &mut Reader<'_>) -> Result<BTreeMap<String, String>, LogError> {
    let mut details = BTreeMap::new();
    if !r.eat(b"}") {
        loop {
            if details.len() == MAX_DETAILS {
                return Err(r.fail("too many details"));
            }
            let at = r.pos();
            let key = r.string()?.into_owned();
            r.expect(":")?;
            let value = r.string()?.into_owned();
            if details.insert(key, value).is_some() {
                return Err(fail_at("repeated detail key", at));
            }
            if r.eat(b"}") {
                break;
            }
            r.expect(",")?;
        }
    }
    Ok(details)
}

/// [`Entry::from_canonical`], re-encoding into `scratch`.
pub(crate) fn parse_entry(line: &[u8], scratch: &mut Vec<u8>) -> Result<Entry, LogError> {
    check_len(line)?;
    let (seq, draft, prev, hash) = read_entry(line)?;
    scratch.clear();
    encode_entry_body(scratch, seq, &draft, &prev);
    let body_len = scratch.len();
    encode_hash_field(scratch, &hash);
    require_same(line, scratch)?;
    if entry_hash(&scratch[..body_len]) != hash {
        return Err(LogError::Rejected(Fault::EditedEntry { seq }));
    }
    Ok(Entry {
        seq,
        draft,
        prev,
        hash,
    })
}

/// [`Checkpoint::from_canonical`], re-encoding into `scratch`.
pub(crate) fn parse_checkpoint(line: &[u8], scratch: &mut Vec<u8>) -> Result<Checkpoint, LogError> {
    check_len(line)?;
    let mut r = Reader::new(line)?;
    r.expect("{\"checkpoint\":{\"seq\":")?;
    let seq = r.uint()?;
    r.expect(",\"hash\":")?;
    let hash = r.hash()?;
    r.expect(",\"time\":")?;
    let time_unix_ms = r.uint()?;
    r.expect(",\"sig\":")?;
    let mut signature = [0u8; SIGNATURE_LEN];
    r.hex(&mut signature)?;
    r.expect("}}")?;
    r.end()?;
    let checkpoint = Checkpoint {
        seq,
        hash,
        time_unix_ms,
        signature,
    };
    scratch.clear();
    checkpoint.encode_into(scratch);
    require_same(line, scratch)?;
    Ok(checkpoint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::Chain;

    fn encoded(s: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn string_escaping_is_exactly_the_documented_rule() {
        assert_eq!(encoded(""), r#""""#);
        assert_eq!(encoded("plain / text"), r#""plain / text""#);
        assert_eq!(encoded("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(
            encoded("\n\r\t\u{0}\u{1f}\u{7f}"),
            r#""\u000a\u000d\u0009\u0000\u001f\u007f""#
        );
        assert_eq!(encoded("x\u{2028}y\u{2029}z"), r#""x\u2028y\u2029z""#);
        // Neighbours of U+2028/9 with the same lead bytes are written as themselves.
        assert_eq!(
            encoded("\u{2027}\u{202a}\u{2000}"),
            "\"\u{2027}\u{202a}\u{2000}\""
        );
        assert_eq!(encoded("Zoë Müller 山田 🔑"), "\"Zoë Müller 山田 🔑\"");
        assert_eq!(encoded("\u{80}\u{9f}"), "\"\u{80}\u{9f}\"");
        // Whatever we write, JSON reads back as the same string.
        for s in [
            "\u{0}a\u{1f}\"\\\u{7f}\u{2028}\u{2029}é",
            "\\u0041",
            "\u{10ffff}",
        ] {
            let back: String = serde_json::from_str(&encoded(s)).unwrap();
            assert_eq!(back, s);
        }
    }

    #[test]
    fn integers_are_plain_decimal() {
        for (n, s) in [(0, "0"), (7, "7"), (10, "10"), (1_000_000, "1000000")] {
            let mut out = Vec::new();
            write_u64(&mut out, n);
            assert_eq!(out, s.as_bytes());
        }
        let mut out = Vec::new();
        write_u64(&mut out, u64::MAX);
        assert_eq!(out, u64::MAX.to_string().as_bytes());
    }

    #[test]
    fn exact_line_for_a_known_entry() {
        let draft = EntryDraft::new(
            1_732_377_600_000,
            Actor::new(Role::Pso, ["Alice", "Zoë \"Z\" Müller"]),
            Operation::new("key.delete").unwrap(),
            Outcome::refused("object destruction is off\n"),
        )
        .with_object("key/42")
        .with_detail("tier", "byok-10")
        .with_detail("mode", "bin");
        let entry = Chain::new().append(draft).unwrap();
        let line = String::from_utf8(entry.to_canonical()).unwrap();
        let expected = format!(
            concat!(
                r#"{{"seq":1,"time":1732377600000,"actor":{{"role":"pso","holders":["Alice","Zoë \"Z\" Müller"]}},"#,
                r#""op":"key.delete","object":"key/42","outcome":{{"result":"refused","reason":"object destruction is off\u000a"}},"#,
                r#""details":{{"mode":"bin","tier":"byok-10"}},"prev":"{zero}","hash":"{hash}"}}"#
            ),
            zero = "0".repeat(64),
            hash = entry.hash()
        );
        assert_eq!(line, expected);
        assert_eq!(Entry::from_canonical(line.as_bytes()), Ok(entry));
    }

    #[test]
    fn too_long_is_rejected_before_parsing() {
        let line = vec![b' '; MAX_LINE_LEN + 1];
        assert_eq!(
            Entry::from_canonical(&line),
            Err(LogError::Rejected(Fault::TooLong {
                len: MAX_LINE_LEN + 1,
                max: MAX_LINE_LEN
            }))
        );
        assert!(matches!(
            Checkpoint::from_canonical(&line),
            Err(LogError::Rejected(Fault::TooLong { .. }))
        ));
    }
}
