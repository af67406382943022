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

/// Whether the canonical line `line` is one `query` selects.
pub(super) fn matches_query(query: &LogQuery, line: &[u8]) -> bool {
    if is_unfiltered(query) {
        return true;
    }
    if !prefilter(query, line) {
        return false;
    }
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

/// A cheap test on the canonical bytes that rejects most non-matching lines without parsing
/// them (the canonical encoding fixes field order and spelling); a line that passes is parsed
/// and checked exactly.
fn prefilter(query: &LogQuery, line: &[u8]) -> bool {
    let contains = |needle: &[u8]| line.windows(needle.len()).any(|w| w == needle);
    if let Some(role) = query.role
        && !contains(format!("\"role\":\"{}\"", role.as_str()).as_bytes())
    {
        return false;
    }
    if let Some(prefix) = &query.operation_prefix
        && !prefix.contains(['"', '\\'])
        && !contains(format!("\"op\":\"{prefix}").as_bytes())
    {
        return false;
    }
    if let Some(outcome) = query.outcome {
        let name = match outcome {
            OutcomeFilter::Ok => "ok",
            OutcomeFilter::Refused => "refused",
            OutcomeFilter::Failed => "failed",
        };
        if !contains(format!("\"result\":\"{name}\"").as_bytes()) {
            return false;
        }
    }
    true
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
                assert!(prefilter(query, line));
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
        assert!(!prefilter(&query, &lines[0]));
        assert!(prefilter(&query, &lines[1]));
        // A line the prefilter passes is still parsed: garbage naming the role is not selected.
        let garbage = br#"{"role":"auditor"}"#;
        assert!(prefilter(&query, garbage));
        assert!(!matches_query(&query, garbage));
        // A prefix the canonical form would escape skips the prefilter, not the exact check.
        query.role = None;
        query.operation_prefix = Some("key\"".into());
        assert!(prefilter(&query, &lines[2]));
        assert!(!matches_query(&query, &lines[2]));
    }
}
