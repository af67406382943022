//! Which log lines a query selects: shared by paged reading and the export. Pure functions over
//! canonical lines, so they are tested here without a store.

use audit_log::{LogLine, Outcome};
use hsm_link::message::{LogQuery, OutcomeFilter};

/// Whether `query` selects every line (and so keeps checkpoints in place).
pub(super) fn is_unfiltered(query: &LogQuery) -> bool {
    query.role.is_none()
        && query.operation_prefix.is_none()
        && query.holder.is_none()
        && query.outcome.is_none()
}

/// Whether the canonical line `line` is one `query` selects (one line; a scan builds a
/// [`Matcher`] once instead).
#[cfg(test)]
pub(super) fn matches_query(query: &LogQuery, line: &[u8]) -> bool {
    Matcher::new(query).matches(line)
}

/// A query made ready for a scan: the byte patterns of its prefilter are built once, not per
/// line, and searched with SIMD substring search. A rare filter examines thousands of lines
/// per page, so the per-line cost is what the user waits for.
pub(super) struct Matcher<'q> {
    query: &'q LogQuery,
    unfiltered: bool,
    /// Each must occur in a selected line's canonical bytes.
    needles: Vec<memchr::memmem::Finder<'static>>,
}

impl<'q> Matcher<'q> {
    /// The matcher for `query`.
    pub(super) fn new(query: &'q LogQuery) -> Matcher<'q> {
        let mut needles = Vec::new();
        let mut need = |text: String| {
            needles.push(memchr::memmem::Finder::new(text.as_bytes()).into_owned());
        };
        if let Some(role) = query.role {
            need(format!("\"role\":\"{}\"", role.as_str()));
        }
        if let Some(prefix) = &query.operation_prefix
            && !prefix.contains(['"', '\\'])
        {
            need(format!("\"op\":\"{prefix}"));
        }
        if let Some(outcome) = query.outcome {
            let name = match outcome {
                OutcomeFilter::Ok => "ok",
                OutcomeFilter::Refused => "refused",
                OutcomeFilter::Failed => "failed",
            };
            need(format!("\"result\":\"{name}\""));
        }
        Matcher {
            query,
            unfiltered: is_unfiltered(query),
            needles,
        }
    }

    /// Whether the canonical line `line` is one the query selects.
    pub(super) fn matches(&self, line: &[u8]) -> bool {
        if self.unfiltered {
            return true;
        }
        if !self.prefilter(line) {
            return false;
        }
        let query = self.query;
        let Ok(LogLine::Entry(entry)) = LogLine::from_canonical(line) else {
            return false;
        };
        if query.role.is_some_and(|r| entry.actor().role != r) {
            return false;
        }
        if let Some(prefix) = &query.operation_prefix
            && !entry.operation().as_str().starts_with(prefix.as_str())
        {
            return false;
        }
        if let Some(holder) = &query.holder
            && !entry.actor().holders.iter().any(|h| h == holder)
        {
            return false;
        }
        matches!(
            (query.outcome, entry.outcome()),
            (None, _)
                | (Some(OutcomeFilter::Ok), Outcome::Ok)
                | (Some(OutcomeFilter::Refused), Outcome::Refused { .. })
                | (Some(OutcomeFilter::Failed), Outcome::Failed { .. })
        )
    }

    /// A cheap test on the canonical bytes that rejects most non-matching lines without
    /// parsing them (the canonical encoding fixes field order and spelling); a line that
    /// passes is parsed and checked exactly.
    fn prefilter(&self, line: &[u8]) -> bool {
        self.needles.iter().all(|n| n.find(line).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use audit_log::{Actor, Chain, EntryDraft, KnownOperation, Role};

    /// Canonical lines: a PSO config change by two holders, an auditor's refused export, a
    /// technical user's failed signature.
    fn lines() -> Vec<Vec<u8>> {
        let mut chain = Chain::new();
        let drafts = [
            (
                Actor::new(Role::Pso, ["Alice Meier", "Bruno Rossi"]),
                KnownOperation::ConfigChange,
                Outcome::Ok,
            ),
            (
                Actor::new(Role::Auditor, ["Dora Keller"]),
                KnownOperation::LogExport,
                Outcome::refused("not now"),
            ),
            (
                Actor::new(Role::TechnicalUser, Vec::<String>::new()),
                KnownOperation::KeySign,
                Outcome::failed("device error"),
            ),
        ];
        drafts
            .into_iter()
            .enumerate()
            .map(|(i, (actor, op, outcome))| {
                let draft =
                    EntryDraft::new(1_732_377_600_000 + i as u64, actor, op.into(), outcome);
                chain.append(draft).unwrap().to_canonical()
            })
            .collect()
    }

    /// Which of [`lines`] `query` selects, by position; the prefilter must never drop a line
    /// the exact check selects.
    fn selected(query: &LogQuery) -> Vec<usize> {
        let lines = lines();
        for line in &lines {
            if matches_query(query, line) {
                assert!(Matcher::new(query).prefilter(line));
            }
        }
        (0..lines.len())
            .filter(|&i| matches_query(query, &lines[i]))
            .collect()
    }

    #[test]
    fn an_unfiltered_query_selects_everything_even_a_line_that_does_not_parse() {
        let query = LogQuery::from(1, 10);
        assert!(is_unfiltered(&query));
        assert_eq!(selected(&query), [0, 1, 2]);
        assert!(matches_query(&query, b"not a log line"));
    }

    #[test]
    fn each_filter_selects_exactly_its_lines() {
        let mut query = LogQuery::from(1, 10);
        query.role = Some(Role::Auditor);
        assert!(!is_unfiltered(&query));
        assert_eq!(selected(&query), [1]);

        let mut query = LogQuery::from(1, 10);
        query.operation_prefix = Some("key.".into());
        assert_eq!(selected(&query), [2]);
        query.operation_prefix = Some("log".into());
        assert_eq!(selected(&query), [1]);
        query.operation_prefix = Some("login".into());
        assert_eq!(selected(&query), Vec::<usize>::new());

        let mut query = LogQuery::from(1, 10);
        query.holder = Some("Bruno Rossi".into());
        assert_eq!(selected(&query), [0]);
        // A holder is matched whole, not by prefix.
        query.holder = Some("Bruno".into());
        assert_eq!(selected(&query), Vec::<usize>::new());

        for (outcome, expected) in [
            (OutcomeFilter::Ok, 0),
            (OutcomeFilter::Refused, 1),
            (OutcomeFilter::Failed, 2),
        ] {
            let mut query = LogQuery::from(1, 10);
            query.outcome = Some(outcome);
            assert_eq!(selected(&query), [expected], "{outcome:?}");
        }
    }

    #[test]
    fn filters_combine() {
        let mut query = LogQuery::from(1, 10);
        query.role = Some(Role::Pso);
        query.outcome = Some(OutcomeFilter::Ok);
        assert_eq!(selected(&query), [0]);
        query.outcome = Some(OutcomeFilter::Refused);
        assert_eq!(selected(&query), Vec::<usize>::new());
    }

    #[test]
    fn the_prefilter_rejects_without_parsing_and_a_filtered_query_rejects_garbage() {
        let lines = lines();
        let mut query = LogQuery::from(1, 10);
        query.role = Some(Role::Auditor);
        assert!(!Matcher::new(&query).prefilter(&lines[0]));
        assert!(Matcher::new(&query).prefilter(&lines[1]));
        // A line the prefilter passes is still parsed: garbage naming the role is not selected.
        let garbage = br#"{"role":"auditor"}"#;
        assert!(Matcher::new(&query).prefilter(garbage));
        assert!(!matches_query(&query, garbage));
        // A prefix the canonical form would escape skips the prefilter, not the exact check.
        query.role = None;
        query.operation_prefix = Some("key\"".into());
        assert!(Matcher::new(&query).prefilter(&lines[2]));
        assert!(!matches_query(&query, &lines[2]));
    }
}
