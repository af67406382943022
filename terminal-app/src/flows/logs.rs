//! The partition log: pages read on the worker as the user scrolls, filtered by role, outcome
//! and operation, and verified as they are read: unfiltered, the hash chain from the first
//! entry and every checkpoint's signature against the pinned audit key (never one the log
//! carries); filtered, each entry's own hash (a filtered read leaves gaps the chain cannot
//! cross).

use audit_log::{AuditKey, LogLine, Role, Verifier};
use hsm_link::message::{AdminRequest, AdminResponse, LogQuery, LogSpace, OutcomeFilter};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Row, Table};

use std::path::PathBuf;

use super::log_export::{LogExportEvent, LogExportFlow, PanelOutcome};
use super::{Outcome, step_selection};
use crate::tui::keymap::{self, Action, Context};
use crate::tui::message::{Command, Effect, Event, LogPageView, LogRow, Verification};
use crate::tui::model::Notice;
use crate::tui::theme::Theme;
use crate::tui::view::{self, utc_text};
use crate::tui::worker::{Worker, link_failure};

/// Lines asked for per page.
pub const PAGE: u32 = 200;

/// Most rows the model holds: the pages around the selection. Pages further away are dropped
/// and read again when the user scrolls back (a log of 1,000,000 entries is never held whole).
pub const MAX_HELD_ROWS: usize = 5 * PAGE as usize;

/// How near the edge of the held rows the selection comes before the next page is asked for.
const PREFETCH_MARGIN: usize = 40;

/// Most pages the dashboard's head scan reads per refresh (the rest on the next one).
pub const HEAD_PAGES_PER_REFRESH: usize = 50;

/// The roles the role filter cycles through (then back to none).
pub const ROLE_CYCLE: [Role; 5] = [
    Role::Pso,
    Role::Auditor,
    Role::DeviceSo,
    Role::TechnicalUser,
    Role::Unauthenticated,
];

/// The log's part of the model.
#[derive(Clone, Debug, Default)]
pub struct LogsFlow {
    /// The rows held: a window of the rows read for the current filter, `offset` rows in.
    pub rows: Vec<LogRow>,
    /// How many rows read come before `rows[0]` (dropped; read again when scrolled back to).
    pub offset: usize,
    /// Where each page read so far starts: its query's `from_seq` and its first row's
    /// position. Two numbers a page, so scrolling back can ask for a dropped page again.
    pub pages: Vec<(u64, usize)>,
    /// Where the next page after the held rows starts, if there is more.
    pub next_seq: Option<u64>,
    /// The query of the page being read, if one is.
    pub loading: Option<u64>,
    /// The selected row, counted from the first row read.
    pub selected: usize,
    /// Only this role.
    pub role: Option<Role>,
    /// Only this outcome.
    pub outcome: Option<OutcomeFilter>,
    /// Only operations starting with this.
    pub operation: String,
    /// Only entries in which this holder took part.
    pub holder: String,
    /// The filter being typed: which, and the text so far.
    pub editing: Option<(Field, String)>,
    /// What is verified of what was read.
    pub verification: Option<Verification>,
    /// The log's fill level, when the HSM warned.
    pub space: Option<LogSpace>,
    /// The newest entry, as the dashboard read it: how far a filtered search has to go.
    pub head: Option<u64>,
    /// The last notice.
    pub notice: Option<Notice>,
    /// The export panel, while it is open.
    pub export: Option<LogExportFlow>,
}

/// A text filter of the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// Operations starting with the text.
    Operation,
    /// Entries a holder took part in.
    Holder,
}

fn outcome_name(outcome: Option<OutcomeFilter>) -> &'static str {
    match outcome {
        None => "any",
        Some(OutcomeFilter::Ok) => "ok",
        Some(OutcomeFilter::Refused) => "refused",
        Some(OutcomeFilter::Failed) => "failed",
    }
}

impl LogsFlow {
    /// The query for a page from `from_seq` under the current filters.
    pub fn query(&self, from_seq: u64) -> LogQuery {
        LogQuery {
            role: self.role,
            outcome: self.outcome,
            operation_prefix: (!self.operation.is_empty()).then(|| self.operation.clone()),
            holder: (!self.holder.is_empty()).then(|| self.holder.clone()),
            ..LogQuery::from(from_seq, PAGE)
        }
    }

    /// Whether a filter is set (a filtered page may scan far for few rows).
    pub fn filtered(&self) -> bool {
        self.role.is_some()
            || self.outcome.is_some()
            || !self.operation.is_empty()
            || !self.holder.is_empty()
    }

    /// Rows read so far for the current filter (held or dropped).
    pub fn read_len(&self) -> usize {
        self.offset + self.rows.len()
    }

    /// The selected row, if it is held.
    pub fn selected_row(&self) -> Option<&LogRow> {
        self.rows.get(self.selected.checked_sub(self.offset)?)
    }

    /// Opens the screen (or applies new filters): reads the first page.
    pub fn open(&mut self) -> Vec<Effect> {
        self.rows.clear();
        self.offset = 0;
        self.pages.clear();
        self.selected = 0;
        self.next_seq = None;
        self.fetch(1)
    }

    /// Opens the screen at its export panel (the menu's "Log export"), offering `dirs`.
    pub fn open_export(&mut self, dirs: &[PathBuf]) -> Vec<Effect> {
        let mut effects = self.open();
        let (panel, scan) = LogExportFlow::open(dirs);
        self.export = Some(panel);
        effects.extend(scan);
        effects
    }

    fn fetch(&mut self, from_seq: u64) -> Vec<Effect> {
        self.loading = Some(from_seq);
        vec![Effect::Send(Command::Log(self.query(from_seq)))]
    }

    /// How keys read here.
    pub fn context(&self) -> Context {
        if let Some(panel) = &self.export {
            panel.context()
        } else if self.editing.is_some() {
            Context::Text
        } else {
            Context::Tables(&[keymap::LOGS, keymap::NAVIGATION, keymap::GLOBAL])
        }
    }

    /// Answers a key; `dirs` are the directories offered as drives to export to.
    pub fn on_action(&mut self, action: Action, dirs: &[PathBuf]) -> Outcome {
        if let Some(panel) = &mut self.export {
            return match panel.on_action(action, dirs) {
                PanelOutcome::Stay(effects) => Outcome::Stay(effects),
                PanelOutcome::Close { reload } => {
                    self.export = None;
                    Outcome::Stay(if reload { self.open() } else { Vec::new() })
                }
            };
        }
        if let Some((field, mut text)) = self.editing.take() {
            match action {
                Action::Input(c) if text.len() < hsm_link::message::MAX_FILTER_TEXT => text.push(c),
                Action::Erase => {
                    text.pop();
                }
                Action::Select => {
                    match field {
                        Field::Operation => self.operation = text,
                        Field::Holder => self.holder = text,
                    }
                    return Outcome::Stay(self.open());
                }
                Action::Back => return Outcome::none(),
                _ => {}
            }
            self.editing = Some((field, text));
            return Outcome::none();
        }
        match action {
            Action::Back => Outcome::Leave(Vec::new()),
            Action::Reload => Outcome::Stay(self.open()),
            Action::Export => {
                let (panel, scan) = LogExportFlow::open(dirs);
                self.export = Some(panel);
                Outcome::Stay(scan)
            }
            Action::Filter => {
                self.editing = Some((Field::Operation, self.operation.clone()));
                Outcome::none()
            }
            Action::FilterHolder => {
                self.editing = Some((Field::Holder, self.holder.clone()));
                Outcome::none()
            }
            Action::CycleRole => {
                self.role = match self.role {
                    None => Some(ROLE_CYCLE[0]),
                    Some(r) => ROLE_CYCLE
                        .iter()
                        .position(|c| *c == r)
                        .and_then(|i| ROLE_CYCLE.get(i + 1).copied()),
                };
                Outcome::Stay(self.open())
            }
            Action::CycleOutcome => {
                self.outcome = match self.outcome {
                    None => Some(OutcomeFilter::Ok),
                    Some(OutcomeFilter::Ok) => Some(OutcomeFilter::Refused),
                    Some(OutcomeFilter::Refused) => Some(OutcomeFilter::Failed),
                    Some(OutcomeFilter::Failed) => None,
                };
                Outcome::Stay(self.open())
            }
            // Back to the top of a log whose first pages were dropped: read it again.
            Action::Home if self.offset > 0 => Outcome::Stay(self.open()),
            _ => {
                let moved = step_selection(self.selected, self.read_len(), action, 10);
                // Within the held rows only: beyond them, the page is read first.
                self.selected = moved.clamp(self.offset, self.read_len().saturating_sub(1));
                Outcome::Stay(self.prefetch())
            }
        }
    }

    /// Asks for the page after the held rows, or the dropped one before them, when the
    /// selection comes near either edge.
    fn prefetch(&mut self) -> Vec<Effect> {
        if self.loading.is_some() {
            return Vec::new();
        }
        if let Some(next) = self.next_seq
            && self.selected + PREFETCH_MARGIN >= self.read_len()
        {
            return self.fetch(next);
        }
        if self.offset > 0 && self.selected < self.offset + PREFETCH_MARGIN {
            let before = self.pages.iter().rev().find(|(_, at)| *at < self.offset);
            if let Some(&(from_seq, _)) = before {
                return self.fetch(from_seq);
            }
        }
        Vec::new()
    }

    /// Takes a page; an answer to an older filter or position is dropped.
    pub fn on_page(&mut self, page: LogPageView) -> Vec<Effect> {
        let from = page.query.from_seq;
        // A first page always starts over; any other must be the one asked for, or it could
        // land in the wrong place of the window.
        if page.query != self.query(from) || (from != 1 && self.loading != Some(from)) {
            return Vec::new();
        }
        self.loading = None;
        self.verification = Some(page.verification);
        self.space = page.space.or(self.space);
        let known = self.pages.iter().position(|(seq, _)| *seq == from);
        match known {
            // A dropped page read again: it goes before the held rows.
            Some(i) if self.pages[i].1 < self.offset => {
                let at = self.pages[i].1;
                self.rows
                    .splice(0..0, page.rows.into_iter().take(self.offset - at));
                self.offset = at;
                self.trim_back();
            }
            _ => {
                if from == 1 {
                    self.rows.clear();
                    self.offset = 0;
                    self.pages.clear();
                }
                self.pages.push((from, self.read_len()));
                self.rows.extend(page.rows);
                self.next_seq = page.next_seq;
                self.trim_front();
            }
        }
        self.prefetch()
    }

    /// Drops whole pages before the selection while more than [`MAX_HELD_ROWS`] are held.
    fn trim_front(&mut self) {
        while self.rows.len() > MAX_HELD_ROWS {
            let Some(&(_, end)) = self.pages.iter().find(|(_, at)| *at > self.offset) else {
                return;
            };
            if end + PREFETCH_MARGIN > self.selected {
                return;
            }
            self.rows.drain(..end - self.offset);
            self.offset = end;
        }
    }

    /// Drops whole pages after the selection while more than [`MAX_HELD_ROWS`] are held; the
    /// first dropped page is where reading on starts again.
    fn trim_back(&mut self) {
        while self.rows.len() > MAX_HELD_ROWS {
            let end = self.read_len();
            let Some(i) = self
                .pages
                .iter()
                .rposition(|(_, at)| *at < end && *at > self.offset)
            else {
                return;
            };
            let (seq, at) = self.pages[i];
            if at < self.selected + PREFETCH_MARGIN {
                return;
            }
            self.rows.truncate(at - self.offset);
            self.pages.truncate(i);
            self.next_seq = Some(seq);
        }
    }

    /// Takes the export worker's report.
    pub fn on_export_event(&mut self, event: LogExportEvent) -> Vec<Effect> {
        if let Some(panel) = &mut self.export {
            panel.on_event(event);
        }
        Vec::new()
    }
}

/// Draws the log.
pub fn view<'a>(frame: &mut Frame, area: Rect, flow: &'a LogsFlow, theme: &Theme) {
    let [table_area, status] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(2)]).areas(area);
    let visible = table_area.height.saturating_sub(3) as usize;
    let selected = flow.selected.saturating_sub(flow.offset);
    let first = selected.saturating_sub(visible.saturating_sub(1));
    let wide = area.width >= 120;
    let rows = flow
        .rows
        .iter()
        .enumerate()
        .skip(first)
        .take(visible.max(1))
        .map(|(i, r)| log_row(r, i == selected, wide, theme));
    let mut widths = vec![
        Constraint::Length(7),
        Constraint::Length(16),
        Constraint::Length(14),
        Constraint::Min(16),
        Constraint::Length(10),
    ];
    let mut header = vec![" Seq", "Time (UTC)", "Role", "Operation", "Outcome"];
    if wide {
        widths.push(Constraint::Length(24));
        widths.push(Constraint::Min(20));
        header.extend(["Holders", "Object / reason"]);
    }
    let more = if flow.loading.is_some() {
        " · reading…"
    } else if flow.next_seq.is_some() {
        " · more"
    } else {
        ""
    };
    let any = |text: &'a str| if text.is_empty() { "any" } else { text };
    let title = format!(
        "Log · {} lines{more} · role {} · outcome {} · op {} · holder {}",
        flow.read_len(),
        flow.role.map_or("any", |r| r.as_str()),
        outcome_name(flow.outcome),
        any(&flow.operation),
        any(&flow.holder),
    );
    frame.render_widget(
        Table::new(rows, widths)
            .header(Row::new(header).style(theme.muted))
            .block(view::block(&title, theme)),
        table_area,
    );
    frame.render_widget(status_paragraph(flow, theme), status);
    editor(frame, table_area, flow, theme);
    if let Some(panel) = &flow.export {
        super::log_export::view(frame, table_area, panel, theme);
    }
}

fn log_row<'a>(r: &LogRow, selected: bool, wide: bool, theme: &Theme) -> Row<'a> {
    let outcome = match r.outcome.as_str() {
        "ok" => "✓ ok".to_owned(),
        "" => String::new(),
        other => format!("✗ {other}"),
    };
    let mut cells = vec![
        format!("{}{}", if selected { "›" } else { " " }, r.seq),
        r.time.clone(),
        r.role.clone(),
        r.operation.clone(),
        outcome,
    ];
    if wide {
        cells.push(r.holders.clone());
        cells.push(format!("{} {}", r.object, r.reason).trim().to_owned());
    }
    let row = Row::new(cells);
    if selected {
        row.style(theme.selection)
    } else if r.outcome != "ok" && !r.outcome.is_empty() {
        row.style(theme.warn)
    } else {
        row
    }
}

fn editor(frame: &mut Frame, area: Rect, flow: &LogsFlow, theme: &Theme) {
    if let Some((field, text)) = &flow.editing {
        let title = match field {
            Field::Operation => "Operation starts with (e.g. config., login)",
            Field::Holder => "Holder took part (e.g. Ada Demo)",
        };
        let [_, line] = Layout::vertical([Constraint::Min(0), Constraint::Length(3)]).areas(area);
        frame.render_widget(Clear, line);
        frame.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled("> ", theme.accent),
                Span::raw(text.as_str()),
                Span::styled("▏", theme.accent),
            ]))
            .block(view::block(title, theme)),
            line,
        );
    }
}

fn status_paragraph<'a>(flow: &'a LogsFlow, theme: &Theme) -> Paragraph<'a> {
    if let Some(n) = &flow.notice {
        return view::notice_paragraph(n, theme);
    }
    let verified = match &flow.verification {
        _ if flow.filtered() && flow.loading.is_some() => searching(flow, theme),
        None | Some(Verification::NotYet) => Line::styled("Not verified yet.", theme.muted),
        Some(Verification::Chain {
            entries,
            checkpoints,
            last_checkpoint,
            unsigned_tail,
        }) => Line::styled(
            format!(
                "✓ chain verified: {entries} entries from #1; {checkpoints} checkpoints signed by \
                 the pinned audit key, last #{}; {unsigned_tail} unsigned after it",
                last_checkpoint.map_or("none".to_owned(), |s| s.to_string())
            ),
            theme.ok,
        ),
        Some(Verification::EntriesOnly { entries }) => Line::styled(
            format!(
                "✓ {entries} entries' own hashes checked (filtered: clear filters to verify \
                 the chain)"
            ),
            theme.ok,
        ),
        Some(Verification::Broken(why)) => {
            Line::styled(format!("✗ verification FAILED: {why}"), theme.error)
        }
    };
    let fill = match flow.space {
        Some(s) => Line::styled(
            format!(
                "! log {} of {} entries; {} not exported",
                s.entries, s.capacity, s.unexported
            ),
            theme.warn,
        ),
        None => Line::styled("Log fill below the HSM's warning level.", theme.muted),
    };
    Paragraph::new(vec![verified, fill]).wrap(ratatui::widgets::Wrap { trim: true })
}

/// What a filtered read waits for: each page scans a bounded stretch of the log at the HSM,
/// so a rare filter takes several pages; how far they got.
fn searching<'a>(flow: &LogsFlow, theme: &Theme) -> Line<'a> {
    let scanned = flow.loading.unwrap_or(1).saturating_sub(1);
    let of = flow
        .head
        .map_or(String::new(), |head| format!(" of {head}"));
    Line::styled(
        format!(
            "searching… scanned {scanned}{of} entries, {} found so far (the HSM scans a \
             bounded stretch of the log per page)",
            flow.read_len(),
        ),
        theme.accent,
    )
}

/// The worker's side: a verifier over the whole log, fed in order as it is read.
pub struct LogWork {
    log_id: String,
    verifier: Option<Verifier>,
    next_from: u64,
    entries: u64,
    checkpoints: u64,
    head: Option<u64>,
    last_checkpoint: Option<u64>,
    broken: Option<String>,
    space: Option<LogSpace>,
}

/// The log's head as the worker read it.
pub(crate) struct Head {
    pub(crate) head: Option<u64>,
    pub(crate) last_checkpoint: Option<u64>,
    pub(crate) space: Option<LogSpace>,
}

impl LogWork {
    /// Nothing read yet of the log `log_id` (the partition's id).
    pub fn new(log_id: &str) -> LogWork {
        LogWork {
            log_id: log_id.to_owned(),
            verifier: None,
            next_from: 1,
            entries: 0,
            checkpoints: 0,
            head: None,
            last_checkpoint: None,
            broken: None,
            space: None,
        }
    }

    fn push(&mut self, key: AuditKey, line: &str) {
        if self.broken.is_some() {
            return;
        }
        let log_id = self.log_id.clone();
        let verifier = self
            .verifier
            .get_or_insert_with(|| Verifier::for_log(key, &log_id));
        if let Err(e) = verifier.push_line(line.as_bytes()) {
            self.broken = Some(e.to_string());
            return;
        }
        match LogLine::from_canonical(line.as_bytes()) {
            Ok(LogLine::Entry(entry)) => {
                self.entries += 1;
                self.head = Some(entry.seq());
                self.next_from = entry.seq() + 1;
            }
            Ok(LogLine::Checkpoint(cp)) => {
                self.checkpoints += 1;
                self.last_checkpoint = Some(cp.seq);
            }
            Err(e) => self.broken = Some(e.to_string()),
        }
    }

    fn verification(&self) -> Verification {
        if let Some(why) = &self.broken {
            return Verification::Broken(why.clone());
        }
        Verification::Chain {
            entries: self.entries,
            checkpoints: self.checkpoints,
            last_checkpoint: self.last_checkpoint,
            unsigned_tail: self
                .head
                .unwrap_or(0)
                .saturating_sub(self.last_checkpoint.unwrap_or(0)),
        }
    }
}

/// Reads the log forward from where the last read stopped, verifying every line: the head.
pub(crate) fn read_head(worker: &mut Worker) -> Head {
    for _ in 0..HEAD_PAGES_PER_REFRESH {
        let from = worker.logs.next_from;
        let page = match worker.admin(AdminRequest::ReadLog {
            query: LogQuery::from(from, hsm_link::message::MAX_LOG_LINES_PER_PAGE as u32),
        }) {
            Ok(AdminResponse::LogPage(page)) => page,
            _ => break,
        };
        let key = worker.audit_key;
        for line in &page.lines {
            worker.logs.push(key, line);
        }
        worker.logs.space = page.warning.or(worker.logs.space);
        match page.next_seq {
            Some(next) if next > from => worker.logs.next_from = next,
            _ => break,
        }
    }
    Head {
        head: worker.logs.head,
        last_checkpoint: worker.logs.last_checkpoint,
        space: worker.logs.space,
    }
}

fn row(line: &str) -> Result<LogRow, String> {
    match LogLine::from_canonical(line.as_bytes()).map_err(|e| e.to_string())? {
        LogLine::Entry(e) => Ok(LogRow {
            seq: e.seq(),
            time: utc_text(e.time_unix_ms() / 1000),
            role: e.actor().role.as_str().to_owned(),
            holders: e.actor().holders.join(", "),
            operation: e.operation().as_str().to_owned(),
            object: e.object().unwrap_or("").to_owned(),
            outcome: e.outcome().result_name().to_owned(),
            reason: e.outcome().reason().unwrap_or("").to_owned(),
        }),
        LogLine::Checkpoint(cp) => Ok(LogRow {
            seq: cp.seq,
            time: utc_text(cp.time_unix_ms / 1000),
            role: "hsm".to_owned(),
            holders: String::new(),
            operation: "checkpoint (signed)".to_owned(),
            object: String::new(),
            outcome: String::new(),
            reason: String::new(),
        }),
    }
}

/// Reads one page for the screen on the worker; unfiltered reads also advance the chain check.
pub(crate) fn work(worker: &mut Worker, query: LogQuery) -> Event {
    let page = match worker.admin(AdminRequest::ReadLog {
        query: query.clone(),
    }) {
        Ok(AdminResponse::LogPage(page)) => page,
        Ok(_) => return Event::Failed("the HSM gave an unexpected answer to the log".into()),
        Err(e) => return link_failure(e),
    };
    let filtered = query.role.is_some()
        || query.outcome.is_some()
        || query.operation_prefix.is_some()
        || query.holder.is_some();
    let mut rows = Vec::with_capacity(page.lines.len());
    let mut broken = None;
    for line in &page.lines {
        match row(line) {
            Ok(r) => rows.push(r),
            Err(e) => broken = broken.or(Some(e)),
        }
    }
    let verification = if let Some(why) = broken {
        Verification::Broken(why)
    } else if filtered {
        Verification::EntriesOnly {
            entries: rows.iter().filter(|r| !r.outcome.is_empty()).count() as u64,
        }
    } else {
        // The chain is checked over the whole log in order, up to what this page shows.
        let last = rows.last().map_or(0, |r| r.seq);
        if worker.logs.next_from <= last {
            read_head(worker);
        }
        worker.logs.verification()
    };
    Event::Log(Box::new(LogPageView {
        query,
        rows,
        next_seq: page.next_seq,
        verification,
        space: page.warning,
    }))
}
