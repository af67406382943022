//! Log entries, their bounded fields, and the chain that appends them.
//!
//! An entry's canonical line (see [`canonical`](crate::canonical) for the exact encoding) is
//!
//! ```text
//! {"seq":7,"time":1732377600000,"actor":{"role":"pso","holders":["Alice Meier","Bruno Rossi"]},"op":"config.change","object":"partition","outcome":{"result":"ok"},"details":{"param":"key-export"},"prev":"<64 hex>","hash":"<64 hex>"}
//! ```
//!
//! with every field always present, in this order. `object` is `null` when there is none,
//! `details` is `{}` when empty, and `outcome` is `{"result":"ok"}`,
//! `{"result":"refused","reason":"…"}` or `{"result":"failed","reason":"…"}`.
//!
//! **The hash rule.** `hash` is SHA-256 over the line's bytes up to and excluding the hash field,
//! followed by the single byte `}`: that is, over the canonical encoding of the entry *without*
//! its `hash` field, itself a complete JSON object. The hash field is always the last
//! [`HASH_FIELD_LEN`] (75) bytes of the line (`,"hash":"` + 64 hex digits + `"}`), so
//! `hash = SHA-256(line[..len - 75] || "}")`. `prev` is the `hash` of the entry before;
//! the first entry of a log has sequence number 1 and `prev` = [`Hash::ZERO`].

use std::collections::BTreeMap;

use crate::actor::{Actor, Role};
use crate::canonical::{self, MAX_LINE_LEN};
use crate::checkpoint::Checkpoint;
use crate::error::LogError;
use crate::hash::Hash;
use crate::keys::AuditSigner;

/// Longest operation name, in bytes.
pub const MAX_OPERATION_LEN: usize = 64;
/// Most holders an entry names.
pub const MAX_HOLDERS: usize = 16;
/// Longest holder name, in bytes of UTF-8.
pub const MAX_HOLDER_LEN: usize = 64;
/// Longest object, in bytes of UTF-8.
pub const MAX_OBJECT_LEN: usize = 256;
/// Longest refusal or failure reason, in bytes of UTF-8.
pub const MAX_REASON_LEN: usize = 256;
/// Most details an entry carries.
pub const MAX_DETAILS: usize = 8;
/// Longest detail key, in bytes (a name like an operation's).
pub const MAX_DETAIL_KEY_LEN: usize = 32;
/// Longest detail value, in bytes of UTF-8.
pub const MAX_DETAIL_VALUE_LEN: usize = 128;
/// Length of the hash field that ends every entry line: `,"hash":"` + 64 hex digits + `"}`.
pub const HASH_FIELD_LEN: usize = 75;

/// What was done: a short ASCII name such as `login`, `config.change` or `key.delete`.
///
/// 1 to [`MAX_OPERATION_LEN`] bytes of `a-z`, `0-9`, `.`, `_` and `-`, starting with a letter
/// and ending with a letter or digit, so it never needs escaping.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Operation(String);

impl Operation {
    /// Checks and wraps an operation name.
    pub fn new(name: impl Into<String>) -> Result<Operation, LogError> {
        let name = name.into();
        check_name(&name, MAX_OPERATION_LEN).map_err(|problem| LogError::InvalidField {
            field: "op",
            problem,
        })?;
        Ok(Operation(name))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The shared rule for operation names and detail keys.
fn check_name(name: &str, max: usize) -> Result<(), &'static str> {
    let b = name.as_bytes();
    let (Some(first), Some(last)) = (b.first(), b.last()) else {
        return Err("empty");
    };
    if b.len() > max {
        return Err("too long");
    }
    if !first.is_ascii_lowercase() || !(last.is_ascii_lowercase() || last.is_ascii_digit()) {
        return Err("must start with a-z and end with a-z or 0-9");
    }
    if !b
        .iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(c))
    {
        return Err("only a-z, 0-9, '.', '_' and '-' are allowed");
    }
    Ok(())
}

/// How an operation ended. Refusals (by role, policy or quorum) are logged like successes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Done.
    Ok,
    /// Not done because it was not allowed (role, policy, missing quorum, locked out).
    Refused {
        /// Why, for people; 1 to [`MAX_REASON_LEN`] bytes.
        reason: String,
    },
    /// Attempted and failed (an internal or device error).
    Failed {
        /// Why, for people; 1 to [`MAX_REASON_LEN`] bytes.
        reason: String,
    },
}

impl Outcome {
    /// A refusal with this reason.
    pub fn refused(reason: impl Into<String>) -> Outcome {
        Outcome::Refused {
            reason: reason.into(),
        }
    }

    /// A failure with this reason.
    pub fn failed(reason: impl Into<String>) -> Outcome {
        Outcome::Failed {
            reason: reason.into(),
        }
    }

    /// `ok`, `refused` or `failed`, as in the canonical line.
    pub fn result_name(&self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused { .. } => "refused",
            Outcome::Failed { .. } => "failed",
        }
    }

    /// The reason of a refusal or failure.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Outcome::Ok => None,
            Outcome::Refused { reason } | Outcome::Failed { reason } => Some(reason),
        }
    }
}

/// An entry before it joins the chain: everything but the sequence number and the hashes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryDraft {
    /// When, in milliseconds since the Unix epoch (UTC), by the HSM's clock.
    pub time_unix_ms: u64,
    /// Who.
    pub actor: Actor,
    /// What.
    pub operation: Operation,
    /// To what (a key, a parameter, a card set), if anything; 1 to [`MAX_OBJECT_LEN`] bytes.
    pub object: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// A few named values (a parameter's old and new value, say); at most [`MAX_DETAILS`],
    /// keys named like operations. Encoded in key order.
    pub details: BTreeMap<String, String>,
}

impl EntryDraft {
    /// A draft with no object and no details.
    pub fn new(time_unix_ms: u64, actor: Actor, operation: Operation, outcome: Outcome) -> Self {
        EntryDraft {
            time_unix_ms,
            actor,
            operation,
            object: None,
            outcome,
            details: BTreeMap::new(),
        }
    }

    /// The same draft with an object.
    pub fn with_object(mut self, object: impl Into<String>) -> Self {
        self.object = Some(object.into());
        self
    }

    /// The same draft with one more detail (replacing one with the same key).
    pub fn with_detail(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.details.insert(key.into(), value.into());
        self
    }

    /// Checks every bound, so that whatever is appended can be read back.
    pub(crate) fn check(&self) -> Result<(), LogError> {
        let bad = |field, problem| Err(LogError::InvalidField { field, problem });
        let holders = &self.actor.holders;
        if holders.len() > MAX_HOLDERS {
            return bad("holders", "too many holders");
        }
        if let Some(problem) = holders.iter().find_map(|h| text_problem(h, MAX_HOLDER_LEN)) {
            return bad("holders", problem);
        }
        // The operation needs no check here: `Operation::new`, its only constructor, did it.
        if let Some(problem) = self
            .object
            .as_deref()
            .and_then(|o| text_problem(o, MAX_OBJECT_LEN))
        {
            return bad("object", problem);
        }
        if let Some(problem) = self
            .outcome
            .reason()
            .and_then(|r| text_problem(r, MAX_REASON_LEN))
        {
            return bad("reason", problem);
        }
        if self.details.len() > MAX_DETAILS {
            return bad("details", "too many details");
        }
        for (key, value) in &self.details {
            if let Err(problem) = check_name(key, MAX_DETAIL_KEY_LEN) {
                return bad("details", problem);
            }
            if let Some(problem) = text_problem(value, MAX_DETAIL_VALUE_LEN) {
                return bad("details", problem);
            }
        }
        Ok(())
    }
}

fn text_problem(text: &str, max: usize) -> Option<&'static str> {
    if text.is_empty() {
        Some("empty")
    } else if text.len() > max {
        Some("too long")
    } else {
        None
    }
}

/// One entry of the log, as appended by a [`Chain`] or read back with
/// [`Entry::from_canonical`]. Its fields are within bounds and its hash matches its contents
/// (see [the format](crate#the-format) for the rule); whether it belongs where it stands in a
/// log is for the [`Verifier`](crate::Verifier) to say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub(crate) seq: u64,
    pub(crate) draft: EntryDraft,
    pub(crate) prev: Hash,
    pub(crate) hash: Hash,
}

impl Entry {
    /// The sequence number, counted from 1.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// When, in milliseconds since the Unix epoch.
    pub fn time_unix_ms(&self) -> u64 {
        self.draft.time_unix_ms
    }

    /// Who.
    pub fn actor(&self) -> &Actor {
        &self.draft.actor
    }

    /// What.
    pub fn operation(&self) -> &Operation {
        &self.draft.operation
    }

    /// To what.
    pub fn object(&self) -> Option<&str> {
        self.draft.object.as_deref()
    }

    /// How it ended.
    pub fn outcome(&self) -> &Outcome {
        &self.draft.outcome
    }

    /// The named details.
    pub fn details(&self) -> &BTreeMap<String, String> {
        &self.draft.details
    }

    /// The hash of the entry before ([`Hash::ZERO`] for entry 1).
    pub fn prev(&self) -> Hash {
        self.prev
    }

    /// This entry's hash.
    pub fn hash(&self) -> Hash {
        self.hash
    }

    /// Everything but the sequence number and hashes.
    pub fn draft(&self) -> &EntryDraft {
        &self.draft
    }

    /// The canonical line: the bytes that are stored, hashed (all but the hash field) and
    /// exported. No trailing newline.
    pub fn to_canonical(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        self.encode_into(&mut out);
        out
    }

    /// Appends the canonical line to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        canonical::encode_entry_body(out, self.seq, &self.draft, &self.prev);
        canonical::encode_hash_field(out, &self.hash);
    }

    /// The role of the actor (a shortcut for `actor().role`).
    pub fn role(&self) -> Role {
        self.draft.actor.role
    }
}

/// The hash of an entry whose canonical line without the hash field is `body` (see the
/// [module docs](self)).
pub(crate) fn entry_hash(body: &[u8]) -> Hash {
    Hash::sha256(&[body, b"}"])
}

/// The writer's end of the log: appends entries in order and signs checkpoints.
///
/// It holds only the last sequence number and hash; storing the lines is the caller's job.
#[derive(Debug)]
pub struct Chain {
    last_seq: u64,
    last_hash: Hash,
    since_checkpoint: u64,
    scratch: Vec<u8>,
}

impl Default for Chain {
    fn default() -> Self {
        Chain::new()
    }
}

impl Chain {
    /// A new, empty log: the first entry will be 1, with `prev` = [`Hash::ZERO`].
    pub fn new() -> Chain {
        Chain::resume(0, Hash::ZERO, 0)
    }

    /// A new log bound to `log_id` (a partition id): the first entry's `prev` is
    /// [`genesis_hash`]`(log_id)`, so a log of one partition does not verify as another's, even
    /// under the same audit key.
    pub fn for_log(log_id: &str) -> Chain {
        Chain::resume(0, genesis_hash(log_id), 0)
    }

    /// Continues a log whose last entry is `last_seq` with hash `last_hash`, with
    /// `entries_since_checkpoint` entries not yet covered by a checkpoint (a
    /// [`Report`](crate::Report) of the stored log says all three).
    pub fn resume(last_seq: u64, last_hash: Hash, entries_since_checkpoint: u64) -> Chain {
        Chain {
            last_seq,
            last_hash,
            since_checkpoint: entries_since_checkpoint,
            scratch: Vec::with_capacity(512),
        }
    }

    /// The sequence number of the last entry (0 for an empty log).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The hash of the last entry ([`Hash::ZERO`] for an empty log).
    pub fn last_hash(&self) -> Hash {
        self.last_hash
    }

    /// Entries appended since the last checkpoint (for a
    /// [`CheckpointPolicy`](crate::CheckpointPolicy)).
    pub fn entries_since_checkpoint(&self) -> u64 {
        self.since_checkpoint
    }

    /// Appends an entry: the next sequence number, `prev` = the last hash, and its own hash.
    ///
    /// Fails, leaving the chain as it was, if a field is out of bounds or the line would be
    /// longer than [`MAX_LINE_LEN`].
    pub fn append(&mut self, draft: EntryDraft) -> Result<Entry, LogError> {
        draft.check()?;
        let seq = self
            .last_seq
            .checked_add(1)
            .ok_or(LogError::SequenceExhausted {
                last_seq: self.last_seq,
            })?;
        self.scratch.clear();
        canonical::encode_entry_body(&mut self.scratch, seq, &draft, &self.last_hash);
        let len = self.scratch.len() + HASH_FIELD_LEN;
        if len > MAX_LINE_LEN {
            return Err(LogError::EntryTooLong {
                len,
                max: MAX_LINE_LEN,
            });
        }
        let hash = entry_hash(&self.scratch);
        let entry = Entry {
            seq,
            draft,
            prev: self.last_hash,
            hash,
        };
        self.last_seq = seq;
        self.last_hash = hash;
        self.since_checkpoint += 1;
        Ok(entry)
    }

    /// Signs a checkpoint over the last entry (or over the empty log: seq 0, [`Hash::ZERO`]).
    pub fn checkpoint(&mut self, signer: &AuditSigner, time_unix_ms: u64) -> Checkpoint {
        self.since_checkpoint = 0;
        signer.sign_checkpoint(self.last_seq, self.last_hash, time_unix_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> EntryDraft {
        EntryDraft::new(
            1_732_377_600_000,
            Actor::new(Role::Pso, ["Alice Meier", "Bruno Rossi"]),
            Operation::new("config.change").unwrap(),
            Outcome::Ok,
        )
        .with_object("partition")
        .with_detail("param", "key-export")
    }

    #[test]
    fn operation_names() {
        for ok in [
            "login",
            "config.change",
            "key.delete",
            "bin.purge-all",
            "a",
            "x9",
            "a_b",
        ] {
            assert!(Operation::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Login",
            "9lives",
            ".x",
            "x.",
            "x-",
            "key delete",
            "clé",
            "a\"b",
            "a\\b",
            &"a".repeat(MAX_OPERATION_LEN + 1),
        ] {
            assert!(
                matches!(
                    Operation::new(bad),
                    Err(LogError::InvalidField { field: "op", .. })
                ),
                "{bad:?}"
            );
        }
        assert!(Operation::new("a".repeat(MAX_OPERATION_LEN)).is_ok());
    }

    #[test]
    fn append_links_and_counts() {
        let mut chain = Chain::new();
        let a = chain.append(draft()).unwrap();
        let b = chain.append(draft()).unwrap();
        assert_eq!((a.seq(), b.seq()), (1, 2));
        assert_eq!(a.prev(), Hash::ZERO);
        assert_eq!(b.prev(), a.hash());
        assert_ne!(a.hash(), b.hash());
        assert_eq!(chain.last_seq(), 2);
        assert_eq!(chain.last_hash(), b.hash());
        assert_eq!(chain.entries_since_checkpoint(), 2);
    }

    #[test]
    fn hash_covers_the_line_without_its_hash_field() {
        let entry = Chain::new().append(draft()).unwrap();
        let line = entry.to_canonical();
        let body = &line[..line.len() - HASH_FIELD_LEN];
        let field = format!(",\"hash\":\"{}\"}}", entry.hash());
        assert_eq!(&line[line.len() - HASH_FIELD_LEN..], field.as_bytes());
        let mut without_hash = body.to_vec();
        without_hash.push(b'}');
        assert_eq!(entry.hash(), Hash::sha256(&[&without_hash]));
        // The hashed bytes are themselves a JSON object.
        let v: serde_json::Value = serde_json::from_slice(&without_hash).unwrap();
        assert!(v.get("hash").is_none());
        assert_eq!(v["prev"], Hash::ZERO.to_string());
    }

    #[test]
    fn bounds_are_enforced_and_leave_the_chain_untouched() {
        let mut chain = Chain::new();
        let cases: Vec<(EntryDraft, &str)> = vec![
            (draft().with_object(""), "object"),
            (
                draft().with_object("o".repeat(MAX_OBJECT_LEN + 1)),
                "object",
            ),
            (
                EntryDraft {
                    outcome: Outcome::refused(""),
                    ..draft()
                },
                "reason",
            ),
            (
                EntryDraft {
                    outcome: Outcome::failed("r".repeat(MAX_REASON_LEN + 1)),
                    ..draft()
                },
                "reason",
            ),
            (
                EntryDraft {
                    actor: Actor::new(Role::Pso, vec!["x"; MAX_HOLDERS + 1]),
                    ..draft()
                },
                "holders",
            ),
            (
                EntryDraft {
                    actor: Actor::new(Role::Pso, [""]),
                    ..draft()
                },
                "holders",
            ),
            (
                EntryDraft {
                    actor: Actor::new(Role::Pso, ["h".repeat(MAX_HOLDER_LEN + 1)]),
                    ..draft()
                },
                "holders",
            ),
            (draft().with_detail("Bad Key", "v"), "details"),
            (draft().with_detail("k", ""), "details"),
            (
                draft().with_detail("k", "v".repeat(MAX_DETAIL_VALUE_LEN + 1)),
                "details",
            ),
            (
                (0..=MAX_DETAILS).fold(draft(), |d, i| d.with_detail(format!("k{i}"), "v")),
                "details",
            ),
        ];
        for (d, field) in cases {
            match chain.append(d) {
                Err(LogError::InvalidField { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
        assert_eq!(chain.last_seq(), 0);
        assert_eq!(chain.entries_since_checkpoint(), 0);
    }

    /// The bounds are chosen so that every draft within them fits in a line, even when every
    /// character needs the longest escape (`\u00XX`, six bytes for one).
    #[test]
    fn the_largest_entry_fits_in_a_line() {
        let worst = |n: usize| "\u{1}".repeat(n);
        let mut d = EntryDraft::new(
            u64::MAX,
            Actor::new(
                Role::Unauthenticated,
                vec![worst(MAX_HOLDER_LEN); MAX_HOLDERS],
            ),
            Operation::new("z".repeat(MAX_OPERATION_LEN)).unwrap(),
            Outcome::refused(worst(MAX_REASON_LEN)),
        )
        .with_object(worst(MAX_OBJECT_LEN));
        for i in 0..MAX_DETAILS {
            let key = format!("{i}").repeat(MAX_DETAIL_KEY_LEN);
            let key = format!("k{}", &key[1..]);
            d = d.with_detail(key, worst(MAX_DETAIL_VALUE_LEN));
        }
        let mut chain = Chain::resume(u64::MAX - 1, Hash::ZERO, 0);
        let entry = chain.append(d).unwrap();
        let len = entry.to_canonical().len();
        assert!(len <= MAX_LINE_LEN, "{len}");
        assert!(
            matches!(
                chain.append(draft()),
                Err(LogError::SequenceExhausted { last_seq: u64::MAX })
            ),
            "no entry after u64::MAX"
        );
    }
}

/// The `prev` of the first entry of the log named `log_id`: SHA-256 over a label and the id.
pub fn genesis_hash(log_id: &str) -> Hash {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"tessera audit log genesis v1\0");
    h.update(log_id.as_bytes());
    Hash(h.finalize().into())
}

#[cfg(test)]
mod genesis_tests {
    use super::*;

    #[test]
    fn logs_are_bound_to_their_id() {
        assert_ne!(genesis_hash("bank-1"), genesis_hash("bank-2"));
        assert_ne!(genesis_hash("bank-1"), Hash::ZERO);
        let mut chain = Chain::for_log("bank-1");
        let draft = EntryDraft::new(
            1,
            Actor::new(Role::Genesis, Vec::<String>::new()),
            Operation::new("partition.create").unwrap(),
            Outcome::Ok,
        );
        let entry = chain.append(draft).unwrap();
        assert_eq!(entry.prev(), genesis_hash("bank-1"));
        let signer = AuditSigner::from_secret_bytes(&[9; 32]);
        let checkpoint = chain.checkpoint(&signer, 2);
        let lines = [entry.to_canonical(), checkpoint.to_canonical()];
        let mut same = crate::Verifier::for_log(signer.public(), "bank-1");
        let mut other = crate::Verifier::for_log(signer.public(), "bank-2");
        for line in &lines {
            same.push_line(line).unwrap();
        }
        assert!(
            other.push_line(&lines[0]).is_err(),
            "another partition's log is refused"
        );
        assert!(same.finish().unwrap().is_signed_to_end());
    }
}
