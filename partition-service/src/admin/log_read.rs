//! Reading the log a page at a time, filtered or not, and the warning a nearly full log gives.

use hsm_link::keys::PublicKey;
use hsm_link::message::{
    Action, AdminResponse, FullLogPolicy, LogPage, LogQuery, LogSpace, LogStatus,
    MAX_LOG_LINES_PER_PAGE, MAX_PAGE_BYTES,
};
use hsm_link::server::SessionContext;

use super::log_query::{Matcher, is_unfiltered};
use super::session::AdminSession;
use crate::model::{LogFullPolicy, PartitionRecord};
use crate::service::ServiceError;

/// Log lines a filtered read examines per page at most, so that a rare filter answers in bounded
/// time; the page then says where to go on.
pub const MAX_SCANNED_PER_PAGE: usize = 20_000;

impl AdminSession {
    /// The log's fill level and policy: counts only, so a pinned terminal reads them before a
    /// login (as it reads the public card values); a logged-in role follows the table.
    pub(super) fn log_status(&self, ctx: &SessionContext) -> Result<AdminResponse, ServiceError> {
        let record = if self.login.is_some() {
            self.check(ctx, Action::ViewUsage)?
        } else {
            self.hsm.partition(&ctx.partition)?
        };
        Ok(AdminResponse::LogStatus(log_status(
            &record,
            self.hsm.keys().identity_public(),
        )))
    }

    pub(super) fn read_log(
        &self,
        ctx: &SessionContext,
        query: &LogQuery,
    ) -> Result<AdminResponse, ServiceError> {
        let record = self.check(ctx, Action::ReadLog)?;
        let limit = (query.limit as usize).clamp(1, MAX_LOG_LINES_PER_PAGE);
        let mut lines: Vec<String> = Vec::new();
        let mut bytes = 0;
        let mut scanned = 0;
        let mut next_seq = None;
        let unfiltered = is_unfiltered(query);
        let matcher = Matcher::new(query);
        self.hsm.store().read(|tx| {
            tx.log_lines(&ctx.partition, query.from_seq, |seq, line, checkpoint| {
                if query.to_seq.is_some_and(|to| seq > to) {
                    return false;
                }
                let room = line.len() + checkpoint.map_or(0, |c| c.len()) + 8;
                if lines.len() >= limit
                    || bytes + room > MAX_PAGE_BYTES
                    || scanned >= MAX_SCANNED_PER_PAGE
                {
                    next_seq = Some(seq);
                    return false;
                }
                scanned += 1;
                if matcher.matches(line) {
                    lines.push(String::from_utf8_lossy(line).into_owned());
                    bytes += line.len() + 4;
                }
                if let Some(cp) = checkpoint
                    && unfiltered
                {
                    lines.push(String::from_utf8_lossy(cp).into_owned());
                    bytes += cp.len() + 4;
                }
                true
            })
            .map_err(ServiceError::from)
        })?;
        Ok(AdminResponse::LogPage(LogPage {
            lines,
            next_seq,
            warning: log_warning(&record),
        }))
    }
}

/// A warning once the log is 90 % full (of what it keeps for ordinary operations: the reserve
/// is for the export that frees space).
pub(super) fn log_warning(record: &PartitionRecord) -> Option<LogSpace> {
    let log = &record.log;
    let usable = log.capacity.saturating_sub(log.reserve);
    (log.stored() * 10 >= usable * 9).then(|| LogSpace {
        entries: log.stored(),
        capacity: log.capacity,
        unexported: log.unexported(),
    })
}

/// The log's bookkeeping as the link carries it, with the HSM's identity key and the
/// partition's tier.
pub(super) fn log_status(record: &PartitionRecord, hsm_key: PublicKey) -> LogStatus {
    let log = &record.log;
    LogStatus {
        entries: log.stored(),
        unexported: log.unexported(),
        confirmed_up_to: log.confirmed_up_to,
        last_seq: log.next_seq.checked_sub(1).filter(|&s| s > 0),
        capacity: log.capacity,
        reserve: log.reserve,
        when_full: match log.full_policy {
            LogFullPolicy::Refuse => FullLogPolicy::Refuse,
            LogFullPolicy::PruneConfirmed => FullLogPolicy::PruneConfirmed,
        },
        hsm_key,
        tier: record.tier,
    }
}
