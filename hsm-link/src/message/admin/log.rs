//! Reading the partition log: the query, its pages, its fill level and its full-log policy.

use super::*;

/// Outcomes a log query can select.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutcomeFilter {
    /// Only successes.
    Ok,
    /// Only refusals (policy, role, login).
    Refused,
    /// Only failures.
    Failed,
}

/// A range and filter over the partition log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogQuery {
    /// First sequence number wanted. An export reads 1 as "the oldest entry stored" and 0 as
    /// "the entry after the last confirmed export".
    pub from_seq: u64,
    /// Last sequence number wanted, if any.
    pub to_seq: Option<u64>,
    /// Most lines in a page (at most [`MAX_LOG_LINES_PER_PAGE`]); ignored by an export.
    pub limit: u32,
    /// Only entries of this role.
    pub role: Option<Role>,
    /// Only operations starting with this text (e.g. `config.`).
    #[serde(deserialize_with = "de_filter_text")]
    pub operation_prefix: Option<String>,
    /// Only entries in which this holder took part.
    #[serde(deserialize_with = "de_filter_text")]
    pub holder: Option<String>,
    /// Only entries with this outcome.
    pub outcome: Option<OutcomeFilter>,
}

impl LogQuery {
    /// Everything from `from_seq` on, a page of `limit` lines.
    pub fn from(from_seq: u64, limit: u32) -> Self {
        LogQuery {
            from_seq,
            to_seq: None,
            limit,
            role: None,
            operation_prefix: None,
            holder: None,
            outcome: None,
        }
    }
}

/// A page of the log: canonical lines (entries and checkpoints), as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogPage {
    /// The lines, in sequence order.
    #[serde(deserialize_with = "de_log_lines")]
    pub lines: Vec<String>,
    /// Where the next page starts, if there is more.
    pub next_seq: Option<u64>,
    /// Set when the log nears or reaches its configured size.
    pub warning: Option<LogSpace>,
}

/// How full the partition log is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogSpace {
    /// Entries stored.
    pub entries: u64,
    /// The configured maximum.
    pub capacity: u64,
    /// Entries not yet confirmed as exported.
    pub unexported: u64,
}

/// The partition's status a pinned terminal reads before a login: the log's state (how full,
/// how much is not exported yet, the policy), and which HSM and service tier it is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogStatus {
    /// Entries stored now.
    pub entries: u64,
    /// Entries stored and not yet confirmed as exported (read back from a drive).
    pub unexported: u64,
    /// The last entry confirmed as exported, if any.
    pub confirmed_up_to: Option<u64>,
    /// The last entry written, if any.
    pub last_seq: Option<u64>,
    /// The configured log limit: most entries kept.
    pub capacity: u64,
    /// Of the limit, entries kept back for the export that frees space, its confirmation and a
    /// quorum login: ordinary operations stop at `capacity - reserve`.
    pub reserve: u64,
    /// What the partition does when the log is full.
    pub when_full: FullLogPolicy,
    // Appended after the log's fields: postcard encodes a struct by field order.
    /// The HSM's identity key, from which its id is derived ([`LogStatus::hsm_id`]).
    pub hsm_key: PublicKey,
    /// The partition's service tier.
    pub tier: ServiceTier,
}

impl LogStatus {
    /// The HSM's id (`hsm-` and 16 hex digits), as its log exports name it.
    pub fn hsm_id(&self) -> String {
        self.hsm_key.hsm_id()
    }

    /// Entries ordinary operations may fill: the limit less the reserve.
    pub fn usable(&self) -> u64 {
        self.capacity.saturating_sub(self.reserve)
    }

    /// How full the log is, in percent of [`LogStatus::usable`] (100 when nothing is usable).
    pub fn percent_full(&self) -> u64 {
        match self.usable() {
            0 => 100,
            usable => self.entries.saturating_mul(100) / usable,
        }
    }
}

/// What a partition does when its log is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FullLogPolicy {
    /// Refuse every logged operation (except an export, its confirmation and a quorum login)
    /// until an officer exports and confirms.
    Refuse,
    /// Prune entries confirmed as exported when room is needed; refuse if none are.
    PruneConfirmed,
}

impl std::fmt::Display for FullLogPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FullLogPolicy::Refuse => "refuse logged operations until an export is confirmed",
            FullLogPolicy::PruneConfirmed => "prune entries confirmed as exported",
        })
    }
}
