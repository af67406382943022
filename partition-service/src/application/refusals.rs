//! The ration of refused application hellos in the partition's log.
//!
//! A hello needs no credential to be refused, so without a ration anyone who reaches the
//! listener writes the log full (one fsync'd entry per refusal) and the application's own
//! work then stops with `LogFull`. Refusals are therefore counted in memory, per partition
//! and per source address, in windows of [`REFUSAL_WINDOW_S`]:
//!
//! - the first refusal of each source for each reason in a window is logged in full (so a
//!   misconfigured application sees each of its mistakes once), while the partition's
//!   window has entries left ([`refusal_entries_per_window`]: one per
//!   [`REFUSAL_LOG_SHARE`] entries of capacity, between 1 and
//!   [`MAX_REFUSAL_ENTRIES_PER_WINDOW`]);
//! - every other refusal is counted, and the next hello after its window ended (refused or
//!   not) writes one summary entry with the count, the number of sources and the busiest
//!   ones; the summary takes one of the new window's entries;
//! - no refusal entry is written while the log has less than [`AUTHENTICATED_ROOM_SHARE`] of
//!   its capacity free (besides the reserve): what would have been logged is counted for the
//!   next summary instead, so unauthenticated work never takes the room authenticated work
//!   needs.
//!
//! Kept in memory: a restart forgets the counts, as it forgets open connections.

use std::collections::HashMap;
use std::net::IpAddr;

use hsm_link::domain::PartitionId;

use crate::model::{LogFullPolicy, LogState};

/// Length of a refusal window, in seconds.
pub const REFUSAL_WINDOW_S: u64 = 300;

/// Most refusal entries (in full or summaries) a partition's log takes per window.
pub const MAX_REFUSAL_ENTRIES_PER_WINDOW: u64 = 4;

/// A window's refusal entries are at most one per this many entries of the log's capacity
/// (and at least one, so that a small log still says it was probed).
pub const REFUSAL_LOG_SHARE: u64 = 100;

/// Part of the log's capacity (1/N) kept free of refusal entries for authenticated work.
pub const AUTHENTICATED_ROOM_SHARE: u64 = 10;

/// Sources tracked per partition and window; refusals from further sources are counted
/// together, so a flood from many addresses cannot grow the table.
pub const MAX_TRACKED_SOURCES: usize = 1024;

/// Sources named in a summary entry.
const SUMMARY_SOURCES: usize = 4;

/// Refusal entries a window of a log of `capacity` entries takes.
pub fn refusal_entries_per_window(capacity: u64) -> u64 {
    (capacity / REFUSAL_LOG_SHARE).clamp(1, MAX_REFUSAL_ENTRIES_PER_WINDOW)
}

/// Whether `log` has room for one more refusal entry without taking what authenticated work
/// needs. Under prune-confirmed, entries confirmed as exported count as free.
pub fn has_room_for_refusal(log: &LogState) -> bool {
    let occupied = match log.full_policy {
        LogFullPolicy::Refuse => log.stored(),
        LogFullPolicy::PruneConfirmed => log.unexported(),
    };
    let usable = log.capacity.saturating_sub(log.reserve);
    let keep = (log.capacity / AUTHENTICATED_ROOM_SHARE).max(1);
    occupied + keep < usable
}

/// Every partition's current window.
#[derive(Debug, Default)]
pub(crate) struct HelloRefusals {
    partitions: HashMap<PartitionId, Window>,
}

/// Refusals counted but not logged in full, to be summarised in one entry.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Summary {
    /// Start of the first window it covers (seconds since the epoch).
    pub(crate) since: u64,
    /// Refusals not logged in full.
    pub(crate) unlogged: u64,
    /// Distinct sources they came from (sources beyond the tracked ones count as one).
    pub(crate) sources: u64,
    /// The busiest sources and their counts, busiest first.
    pub(crate) busiest: Vec<(IpAddr, u64)>,
}

/// What to write for one refused hello.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Admission {
    /// The summary of earlier windows, due now.
    pub(crate) summary: Option<Summary>,
    /// Whether this refusal is logged in full.
    pub(crate) log_in_full: bool,
}

/// Reasons remembered per source and window; a source's further reasons are only counted.
const REASONS_PER_SOURCE: usize = 8;

/// One source's refusals in a window.
#[derive(Debug, Default)]
struct Source {
    unlogged: u64,
    logged: Vec<String>,
}

impl Source {
    /// Whether `reason` is new for this source (and now remembered).
    fn first_time(&mut self, reason: &str) -> bool {
        if self.logged.len() >= REASONS_PER_SOURCE || self.logged.iter().any(|r| r == reason) {
            return false;
        }
        self.logged.push(reason.to_string());
        true
    }
}

#[derive(Debug)]
struct Window {
    start: u64,
    /// Entries this window took.
    entries: u64,
    /// Per source: refusals not logged in full, and the reasons logged in full.
    sources: HashMap<IpAddr, Source>,
    /// Refusals from sources beyond [`MAX_TRACKED_SOURCES`].
    untracked: u64,
    /// Counted refusals of earlier windows whose summary found no room.
    carried: Option<Summary>,
}

impl Window {
    fn new(start: u64, carried: Option<Summary>) -> Self {
        Window {
            start,
            entries: 0,
            sources: HashMap::new(),
            untracked: 0,
            carried,
        }
    }

    /// The window's counted refusals, merged with what earlier windows carried.
    fn summary(self) -> Option<Summary> {
        let mut counts: Vec<(IpAddr, u64)> = self
            .sources
            .into_iter()
            .filter(|(_, source)| source.unlogged > 0)
            .map(|(ip, source)| (ip, source.unlogged))
            .collect();
        let unlogged = counts.iter().map(|&(_, n)| n).sum::<u64>() + self.untracked;
        let mut sources = counts.len() as u64 + u64::from(self.untracked > 0);
        let mut since = self.start;
        let mut total = unlogged;
        if let Some(carried) = self.carried {
            since = carried.since;
            total += carried.unlogged;
            sources = sources.max(carried.sources);
            counts.extend(carried.busiest);
        }
        if total == 0 {
            return None;
        }
        counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        counts.truncate(SUMMARY_SOURCES);
        Some(Summary {
            since,
            unlogged: total,
            sources,
            busiest: counts,
        })
    }
}

impl HelloRefusals {
    /// The window of `partition` at `now`, after closing an ended one: its summary, if due.
    fn current(&mut self, partition: &PartitionId, now: u64) -> (&mut Window, Option<Summary>) {
        let window = self
            .partitions
            .entry(partition.clone())
            .or_insert_with(|| Window::new(now, None));
        let mut due = None;
        if window.start + REFUSAL_WINDOW_S <= now {
            let ended = std::mem::replace(window, Window::new(now, None));
            due = ended.summary();
        }
        (window, due)
    }

    /// Counts one refused hello from `peer` for `reason` and says what to log, for a log
    /// whose window takes `per_window` entries.
    pub(crate) fn refuse(
        &mut self,
        partition: &PartitionId,
        peer: IpAddr,
        reason: &str,
        now: u64,
        per_window: u64,
    ) -> Admission {
        let (window, summary) = self.current(partition, now);
        if summary.is_some() {
            window.entries += 1;
        }
        let room = window.entries < per_window;
        let tracked = window.sources.len() < MAX_TRACKED_SOURCES;
        let log_in_full = match window.sources.get_mut(&peer) {
            Some(source) => {
                let first = room && source.first_time(reason);
                source.unlogged += u64::from(!first);
                first
            }
            None if !tracked => {
                window.untracked += 1;
                false
            }
            None => {
                let mut source = Source::default();
                let first = room && source.first_time(reason);
                source.unlogged += u64::from(!first);
                window.sources.insert(peer, source);
                first
            }
        };
        window.entries += u64::from(log_in_full);
        Admission {
            summary,
            log_in_full,
        }
    }

    /// The summary due at an accepted hello (when the window of earlier refusals ended).
    pub(crate) fn due(&mut self, partition: &PartitionId, now: u64) -> Option<Summary> {
        let (window, summary) = self.current(partition, now);
        if summary.is_some() {
            window.entries += 1;
        }
        summary
    }

    /// Counts again a refusal whose entry found no room.
    pub(crate) fn unwritten(&mut self, partition: &PartitionId, peer: IpAddr, now: u64) {
        let (window, due) = self.current(partition, now);
        if let Some(due) = due {
            window.carried = Some(due);
        }
        let tracked = window.sources.len() < MAX_TRACKED_SOURCES;
        match window.sources.get_mut(&peer) {
            Some(source) => source.unlogged += 1,
            None if tracked => {
                let source = Source {
                    unlogged: 1,
                    ..Source::default()
                };
                window.sources.insert(peer, source);
            }
            None => window.untracked += 1,
        }
    }

    /// Keeps a summary that found no room, for the next one.
    pub(crate) fn unwritten_summary(&mut self, partition: &PartitionId, summary: Summary) {
        if let Some(window) = self.partitions.get_mut(partition) {
            window.entries = window.entries.saturating_sub(1);
            window.carried = Some(match window.carried.take() {
                None => summary,
                Some(older) => Summary {
                    since: older.since.min(summary.since),
                    unlogged: older.unlogged + summary.unlogged,
                    sources: older.sources.max(summary.sources),
                    busiest: summary.busiest,
                },
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
    }

    #[test]
    fn each_source_is_logged_once_per_window_and_the_rest_summarised() {
        let p = PartitionId::new("p").unwrap();
        let mut r = HelloRefusals::default();
        let first = r.refuse(&p, ip(2), "wrong", 1000, 2);
        assert!(first.log_in_full && first.summary.is_none());
        for _ in 0..249 {
            assert!(!r.refuse(&p, ip(2), "wrong", 1001, 2).log_in_full);
        }
        assert!(r.refuse(&p, ip(3), "wrong", 1002, 2).log_in_full);
        // The window's entries are spent: a third source is only counted.
        assert!(!r.refuse(&p, ip(4), "wrong", 1003, 2).log_in_full);
        assert_eq!(r.due(&p, 1000 + REFUSAL_WINDOW_S - 1), None);
        let summary = r.due(&p, 1000 + REFUSAL_WINDOW_S).unwrap();
        assert_eq!(summary.unlogged, 250);
        assert_eq!(summary.sources, 2);
        assert_eq!(summary.busiest[0], (ip(2), 249));
        assert_eq!(summary.since, 1000);
        // The new window took the summary: one entry left of two.
        let next = r.refuse(&p, ip(2), "wrong", 1000 + REFUSAL_WINDOW_S, 2);
        assert!(next.log_in_full && next.summary.is_none());
    }

    #[test]
    fn many_sources_do_not_grow_the_table() {
        let p = PartitionId::new("p").unwrap();
        let mut r = HelloRefusals::default();
        for i in 0..(MAX_TRACKED_SOURCES as u32 + 500) {
            let peer = IpAddr::V4(Ipv4Addr::from(0x7f00_0000 + i));
            r.refuse(&p, peer, "wrong", 0, 4);
        }
        assert_eq!(r.partitions[&p].sources.len(), MAX_TRACKED_SOURCES);
        let summary = r.due(&p, REFUSAL_WINDOW_S).unwrap();
        assert_eq!(summary.unlogged, MAX_TRACKED_SOURCES as u64 + 500 - 4);
    }

    #[test]
    fn room_is_kept_for_authenticated_work() {
        let mut log = LogState::new(200, [0; 32]);
        assert_eq!(refusal_entries_per_window(200), 2);
        assert_eq!(refusal_entries_per_window(1_000_000), 4);
        log.next_seq = 1 + 200 - 16 - 20 - 1;
        assert!(has_room_for_refusal(&log));
        log.next_seq += 1;
        assert!(!has_room_for_refusal(&log));
    }
}
