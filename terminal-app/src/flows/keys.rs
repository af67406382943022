//! Keys and the bin: the partition's keys (label, type, size, flags, created) in a truly
//! virtualised list. The HSM filters (label text, kind; active or bin) and sorts (id, label,
//! size, created) through its listing index and pages from a cursor; the model holds a
//! window of at most [`MAX_HELD_ROWS`] rows around the selection, reading the page after it
//! or before it as the user scrolls (and the first or last page on Home and End), and knows
//! where the window stands in the whole list. In the bin, restore (asked once) and purge (the
//! key's label typed), with the counts and the space freed afterwards.

use hsm_link::domain::{KeyId, KeyKind, KeyObjectSummary, KeyState, PartitionUsage};
use hsm_link::message::{
    AdminRequest, AdminResponse, KeyCursor, KeyFilter, KeyPosition, KeyQuery, KeySort,
};
use quorum::ceremony::Link;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Row, Table, Wrap};

use super::{Outcome, step_selection};
use crate::tui::keymap::{self, Action, Context};
use crate::tui::message::{Command, Effect, Event};
use crate::tui::model::{Level, Notice};
use crate::tui::theme::Theme;
use crate::tui::view::{self, utc_text};
use crate::tui::worker::{link_failure, refusal_text};

/// Keys asked for per page.
pub const PAGE: u32 = 100;

/// Most rows the model holds: the pages around the selection. Rows further away are dropped
/// and read again (from the HSM's index) when the user scrolls back.
pub const MAX_HELD_ROWS: usize = 5 * PAGE as usize;

/// Rows before either edge of the held rows at which the page beyond it is asked for.
pub const PREFETCH: usize = 20;

/// The kinds the kind filter cycles through (then back to any).
pub const KIND_CYCLE: [KeyKind; 3] = [KeyKind::Aes256, KeyKind::Ed25519, KeyKind::EcP256];

/// The order shown (the HSM sorts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sort {
    /// By id: the order they were created in.
    #[default]
    Id,
    /// By label.
    Label,
    /// Largest first.
    Size,
    /// Newest first.
    Created,
}

impl Sort {
    fn next(self) -> Sort {
        match self {
            Sort::Id => Sort::Label,
            Sort::Label => Sort::Size,
            Sort::Size => Sort::Created,
            Sort::Created => Sort::Id,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Sort::Id => "id",
            Sort::Label => "label",
            Sort::Size => "size, largest first",
            Sort::Created => "newest first",
        }
    }

    /// The HSM's order and direction.
    fn wire(self) -> (KeySort, bool) {
        match self {
            Sort::Id => (KeySort::Id, false),
            Sort::Label => (KeySort::Label, false),
            Sort::Size => (KeySort::Size, true),
            Sort::Created => (KeySort::Created, true),
        }
    }
}

/// A question about the selected key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Confirm {
    /// Restore it?
    Restore {
        /// The key.
        id: KeyId,
        /// Its label.
        label: String,
    },
    /// Purge it: the label must be typed.
    Purge {
        /// The key.
        id: KeyId,
        /// Its label.
        label: String,
        /// What was typed.
        typed: String,
    },
}

/// A key list's part of the model (the key list and the bin each have one).
#[derive(Clone, Debug)]
pub struct KeysFlow {
    /// Which keys.
    pub filter: KeyFilter,
    /// The rows held: a window of the list, `offset` rows in.
    pub rows: Vec<KeyObjectSummary>,
    /// Where `rows[0]` stands in the whole list.
    pub offset: usize,
    /// How many keys the list has (the HSM's count when the list was first read).
    pub total: Option<u64>,
    /// Whether the list goes on before the held rows.
    pub more_before: bool,
    /// Whether the list goes on after the held rows.
    pub more_after: bool,
    /// The order shown.
    pub sort: Sort,
    /// Where the page being read starts, if one is being read.
    pub loading: Option<KeyCursor>,
    /// The selected row, counted from the start of the whole list.
    pub selected: usize,
    /// The label filter being typed, if any.
    pub editing: Option<String>,
    /// The label filter applied (case-insensitive substring, at the HSM).
    pub search: String,
    /// Only keys of this kind.
    pub kind: Option<KeyKind>,
    /// A question, if any.
    pub confirm: Option<Confirm>,
    /// The last notice.
    pub notice: Option<Notice>,
}

impl KeysFlow {
    /// An empty list of `filter`'s keys.
    pub fn new(filter: KeyFilter) -> KeysFlow {
        KeysFlow {
            filter,
            rows: Vec::new(),
            offset: 0,
            total: None,
            more_before: false,
            more_after: false,
            sort: Sort::Id,
            loading: None,
            selected: 0,
            editing: None,
            search: String::new(),
            kind: None,
            confirm: None,
            notice: None,
        }
    }

    fn is_bin(&self) -> bool {
        self.filter == KeyFilter::Invalidated
    }

    /// The query for a page from `from` under the current filters and order.
    pub fn query(&self, from: KeyCursor) -> KeyQuery {
        let (sort, descending) = self.sort.wire();
        KeyQuery {
            filter: self.filter,
            label_contains: (!self.search.is_empty()).then(|| self.search.clone()),
            kind: self.kind,
            sort,
            descending,
            // A count reads the whole index when a filter is set: once per list, not per page.
            count: self.total.is_none() && matches!(from, KeyCursor::First | KeyCursor::Last),
            from,
            limit: PAGE,
        }
    }

    /// The selected key, if it is held.
    pub fn selected_key(&self) -> Option<&KeyObjectSummary> {
        self.rows.get(self.selected.checked_sub(self.offset)?)
    }

    /// The rows held, each with its place in the whole list.
    pub fn held(&self) -> impl Iterator<Item = (usize, &KeyObjectSummary)> {
        self.rows
            .iter()
            .enumerate()
            .map(|(i, k)| (self.offset + i, k))
    }

    /// Rows known so far: the count, or what was read.
    fn known_len(&self) -> usize {
        self.total
            .map_or(self.offset + self.rows.len(), |t| t as usize)
    }

    /// Opens the screen: reads the first page (and the count).
    pub fn open(&mut self) -> Vec<Effect> {
        *self = KeysFlow {
            search: std::mem::take(&mut self.search),
            kind: self.kind,
            sort: self.sort,
            ..KeysFlow::new(self.filter)
        };
        self.fetch(KeyCursor::First)
    }

    fn fetch(&mut self, from: KeyCursor) -> Vec<Effect> {
        let query = self.query(from.clone());
        self.loading = Some(from);
        vec![Effect::Send(Command::Keys(query))]
    }

    /// How keys read here.
    pub fn context(&self) -> Context {
        match (&self.editing, &self.confirm) {
            (Some(_), _) | (_, Some(Confirm::Purge { .. })) => Context::Text,
            (_, Some(Confirm::Restore { .. })) => Context::Question,
            _ if self.is_bin() => {
                Context::Tables(&[keymap::BIN, keymap::NAVIGATION, keymap::GLOBAL])
            }
            _ => Context::Tables(&[keymap::KEYS, keymap::NAVIGATION, keymap::GLOBAL]),
        }
    }

    /// Answers a key.
    pub fn on_action(&mut self, action: Action) -> Outcome {
        if let Some(text) = self.editing.take() {
            return self.edit_search(action, text);
        }
        if let Some(confirm) = self.confirm.take() {
            return self.answer(action, confirm);
        }
        let selected = self.selected_key().map(|k| (k.id, k.label.to_string()));
        match action {
            Action::Back => Outcome::Leave(Vec::new()),
            Action::Reload => Outcome::Stay(self.open()),
            Action::Filter => {
                self.editing = Some(self.search.clone());
                Outcome::none()
            }
            Action::Sort => {
                self.sort = self.sort.next();
                Outcome::Stay(self.restart())
            }
            Action::CycleKind => {
                self.kind = match self.kind {
                    None => Some(KIND_CYCLE[0]),
                    Some(k) => KIND_CYCLE
                        .iter()
                        .position(|c| *c == k)
                        .and_then(|i| KIND_CYCLE.get(i + 1).copied()),
                };
                self.total = None;
                Outcome::Stay(self.restart())
            }
            Action::Restore if self.is_bin() => {
                if let Some((id, label)) = selected {
                    self.confirm = Some(Confirm::Restore { id, label });
                }
                Outcome::none()
            }
            Action::Purge if self.is_bin() => {
                if let Some((id, label)) = selected {
                    self.confirm = Some(Confirm::Purge {
                        id,
                        label,
                        typed: String::new(),
                    });
                }
                Outcome::none()
            }
            Action::Home if self.offset > 0 || self.more_before => {
                self.selected = 0;
                Outcome::Stay(self.fetch(KeyCursor::First))
            }
            Action::End if self.more_after => Outcome::Stay(self.fetch(KeyCursor::Last)),
            _ => {
                let moved = step_selection(self.selected, self.known_len(), action, 10);
                // Within the held rows only: beyond them, the page is read first.
                let last_held = (self.offset + self.rows.len()).saturating_sub(1);
                self.selected = moved.clamp(self.offset, last_held.max(self.offset));
                Outcome::Stay(self.prefetch())
            }
        }
    }

    /// Reads the list again from its first page under a new order or filter.
    fn restart(&mut self) -> Vec<Effect> {
        self.selected = 0;
        self.offset = 0;
        self.rows.clear();
        self.more_before = false;
        self.more_after = false;
        self.fetch(KeyCursor::First)
    }

    /// Asks for the page after the held rows, or the one before them, when the selection
    /// comes near either edge.
    fn prefetch(&mut self) -> Vec<Effect> {
        if self.loading.is_some() {
            return Vec::new();
        }
        let end = self.offset + self.rows.len();
        if self.more_after
            && self.selected + PREFETCH >= end
            && let Some(last) = self.rows.last()
        {
            return self.fetch(KeyCursor::After(KeyPosition::of(last)));
        }
        if self.more_before
            && self.selected < self.offset + PREFETCH
            && let Some(first) = self.rows.first()
        {
            return self.fetch(KeyCursor::Before(KeyPosition::of(first)));
        }
        Vec::new()
    }

    fn edit_search(&mut self, action: Action, mut text: String) -> Outcome {
        match action {
            Action::Input(c) if text.len() < hsm_link::message::MAX_FILTER_TEXT => text.push(c),
            Action::Erase => {
                text.pop();
            }
            Action::Select => {
                self.search = text;
                self.total = None;
                return Outcome::Stay(self.restart());
            }
            Action::Back if !self.search.is_empty() => {
                self.search.clear();
                self.total = None;
                return Outcome::Stay(self.restart());
            }
            Action::Back => return Outcome::none(),
            _ => {}
        }
        self.editing = Some(text);
        Outcome::none()
    }
    fn answer(&mut self, action: Action, confirm: Confirm) -> Outcome {
        match (confirm, action) {
            (Confirm::Restore { id, label }, Action::Yes) => {
                self.notice = Some(Notice::new(Level::Info, format!("Restoring {label}…")));
                Outcome::one(Effect::Send(Command::Restore(id)))
            }
            (Confirm::Purge { id, label, typed }, Action::Select) if typed == label => {
                self.notice = Some(Notice::new(Level::Info, format!("Purging {label}…")));
                Outcome::one(Effect::Send(Command::Purge(id)))
            }
            (Confirm::Purge { id, label, typed }, Action::Select) => {
                self.notice = Some(Notice::new(
                    Level::Error,
                    "The label typed is not the key's label: nothing was purged.",
                ));
                self.confirm = Some(Confirm::Purge { id, label, typed });
                Outcome::none()
            }
            (
                Confirm::Purge {
                    id,
                    label,
                    mut typed,
                },
                Action::Input(c),
            ) => {
                if typed.len() < 256 {
                    typed.push(c);
                }
                self.confirm = Some(Confirm::Purge { id, label, typed });
                Outcome::none()
            }
            (
                Confirm::Purge {
                    id,
                    label,
                    mut typed,
                },
                Action::Erase,
            ) => {
                typed.pop();
                self.confirm = Some(Confirm::Purge { id, label, typed });
                Outcome::none()
            }
            _ => Outcome::none(),
        }
    }

    /// Takes a page; an answer to an older order, filter or position is dropped.
    pub fn on_page(
        &mut self,
        query: &KeyQuery,
        keys: Vec<KeyObjectSummary>,
        more: bool,
        matching: Option<u64>,
    ) -> Vec<Effect> {
        let from = query.from.clone();
        if self.loading.as_ref() != Some(&from) || *query != self.query(from.clone()) {
            return Vec::new();
        }
        self.loading = None;
        if let Some(n) = matching {
            self.total = Some(n);
        }
        let n = keys.len();
        match from {
            KeyCursor::First => {
                self.rows = keys;
                self.offset = 0;
                self.more_before = false;
                self.more_after = more;
                self.selected = self.selected.min(n.saturating_sub(1));
            }
            KeyCursor::Last => {
                self.rows = keys;
                let total = self.total.map_or(n, |t| t as usize);
                self.offset = total.saturating_sub(n);
                self.more_before = more;
                self.more_after = false;
                self.selected = (self.offset + n).saturating_sub(1);
            }
            KeyCursor::After(_) => {
                self.rows.extend(keys);
                self.more_after = more;
                self.trim_front();
            }
            KeyCursor::Before(_) => {
                self.rows.splice(0..0, keys);
                // The list moved under us (keys deleted before the window): start it at 0.
                self.offset = self.offset.saturating_sub(n);
                self.more_before = more;
                self.trim_back();
            }
        }
        self.prefetch()
    }

    /// Drops rows before the selection while more than [`MAX_HELD_ROWS`] are held.
    fn trim_front(&mut self) {
        let excess = self.rows.len().saturating_sub(MAX_HELD_ROWS);
        if excess > 0 && self.offset + excess + PREFETCH <= self.selected {
            self.rows.drain(..excess);
            self.offset += excess;
            self.more_before = true;
        }
    }

    /// Drops rows after the selection while more than [`MAX_HELD_ROWS`] are held.
    fn trim_back(&mut self) {
        let excess = self.rows.len().saturating_sub(MAX_HELD_ROWS);
        let keep = self.rows.len() - excess;
        if excess > 0 && self.selected + PREFETCH < self.offset + keep {
            self.rows.truncate(keep);
            self.more_after = true;
        }
    }

    /// Takes the outcome of a restore or purge.
    pub fn on_event(&mut self, event: Event) -> Vec<Effect> {
        let label_of = |rows: &[KeyObjectSummary], id: KeyId| {
            rows.iter()
                .find(|k| k.id == id)
                .map_or(format!("key {}", id.0), |k| k.label.to_string())
        };
        let (text, id) = match event {
            Event::Restored { id, usage } => (
                format!(
                    "Restored {} to the keys. The bin holds {} keys now.",
                    label_of(&self.rows, id),
                    usage.invalidated_objects
                ),
                id,
            ),
            Event::Purged { id, usage, freed } => (
                format!(
                    "Purged {} for good: {} freed; the bin holds {} keys, the partition {} \
                     objects.",
                    label_of(&self.rows, id),
                    crate::flows::dashboard::size_text(freed),
                    usage.invalidated_objects,
                    usage.objects_used
                ),
                id,
            ),
            Event::KeyActionFailed(reason) => {
                self.notice = Some(Notice::new(Level::Error, reason));
                return Vec::new();
            }
            _ => return Vec::new(),
        };
        let before = self.rows.len();
        self.rows.retain(|k| k.id != id);
        if self.rows.len() < before {
            self.total = self.total.map(|t| t.saturating_sub(1));
        }
        let last_held = (self.offset + self.rows.len()).saturating_sub(1);
        self.selected = self.selected.min(last_held);
        self.notice = Some(Notice::new(Level::Ok, text));
        Vec::new()
    }
}

fn flags(k: &KeyObjectSummary) -> String {
    let a = k.attributes;
    let mark = |on: bool, c: char| if on { c } else { '-' };
    [
        mark(a.extractable, 'E'),
        mark(a.sensitive, 'S'),
        mark(a.modifiable, 'M'),
    ]
    .iter()
    .collect()
}

fn key_row<'a>(k: &KeyObjectSummary, selected: bool, created: bool, theme: &Theme) -> Row<'a> {
    let marker = if selected { "›" } else { " " };
    let mut cells = vec![
        format!("{marker} {}", k.label),
        k.kind.as_str().to_owned(),
        format!("{} B", k.size_bytes),
        flags(k),
    ];
    if created {
        cells.push(utc_text(k.created_unix));
    }
    if let KeyState::Invalidated { invalidated_unix } = k.state {
        cells.push(utc_text(invalidated_unix));
    }
    let row = Row::new(cells);
    if selected {
        row.style(theme.selection)
    } else {
        row
    }
}

/// `n` with thousands separated: 100,000.
fn grouped(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The title: which rows of how many are on screen, and how the list is filtered and sorted.
fn title(flow: &KeysFlow, first: usize, drawn: usize) -> String {
    let what = if flow.is_bin() { "Bin" } else { "Keys" };
    let rows = match (drawn, flow.total) {
        (0, Some(0)) => "none".to_owned(),
        (0, _) => "reading…".to_owned(),
        (_, total) => {
            let of = total.map_or_else(
                || {
                    if flow.more_after {
                        " of more".to_owned()
                    } else {
                        String::new()
                    }
                },
                |t| format!(" of {}", grouped(t as usize)),
            );
            format!("rows {}–{}{of}", grouped(first + 1), grouped(first + drawn))
        }
    };
    let mut title = format!("{what} · {rows} · by {}", flow.sort.name());
    if !flow.search.is_empty() {
        title.push_str(&format!(" · label contains \"{}\"", flow.search));
    }
    if let Some(kind) = flow.kind {
        title.push_str(&format!(" · {kind} only"));
    }
    if flow.loading.is_some() && drawn > 0 {
        title.push_str(" · reading…");
    }
    title
}

/// Draws the key list or the bin: only the rows that fit are built.
pub fn view(frame: &mut Frame, area: Rect, flow: &KeysFlow, theme: &Theme) {
    let [table_area, foot] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(2)]).areas(area);
    let visible = (table_area.height.saturating_sub(3) as usize).max(1);
    // The first row drawn: the selection on the last line at most, within the held rows.
    let first = flow.selected.saturating_sub(visible - 1).max(flow.offset);
    let start = (first - flow.offset).min(flow.rows.len());
    let drawn = flow.rows.len().saturating_sub(start).min(visible);
    let bin = flow.is_bin();
    // On a narrow screen the bin shows when a key was binned rather than when it was made.
    let created = !bin || area.width >= 100;
    let rows = flow.rows[start..start + drawn]
        .iter()
        .enumerate()
        .map(|(i, k)| key_row(k, first + i == flow.selected, created, theme));
    let mut header = vec!["  Label", "Type", "Size", "Flags"];
    let mut widths = vec![
        Constraint::Min(18),
        Constraint::Length(9),
        Constraint::Length(7),
        Constraint::Length(5),
    ];
    if created {
        header.push("Created (UTC)");
        widths.push(Constraint::Length(16));
    }
    if bin {
        header.push("Binned (UTC)");
        widths.push(Constraint::Length(16));
    }
    let title = title(flow, first, drawn);
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(theme.muted))
        .block(view::block(&title, theme));
    frame.render_widget(table, table_area);
    let what = if bin { "Bin" } else { "Keys" };
    let foot_text = match &flow.notice {
        Some(n) => view::notice_paragraph(n, theme),
        None if flow.rows.is_empty() && flow.loading.is_none() => {
            Paragraph::new(Line::styled(format!("{what}: no keys."), theme.muted))
        }
        None => Paragraph::new(Line::styled(
            "Flags: E extractable, S sensitive, M modifiable (- = not set)",
            theme.muted,
        )),
    };
    frame.render_widget(foot_text, foot);
    dialog(frame, area, flow, theme);
}

fn dialog(frame: &mut Frame, area: Rect, flow: &KeysFlow, theme: &Theme) {
    let (title, lines) = match (&flow.editing, &flow.confirm) {
        (Some(text), _) => (
            "Filter by label",
            vec![Line::from(vec![
                Span::styled("> ", theme.accent),
                Span::raw(text.as_str()),
                Span::styled("▏", theme.accent),
            ])],
        ),
        (_, Some(Confirm::Restore { label, .. })) => (
            "Restore from the bin",
            vec![
                Line::from(format!(
                    "Restore {label}? The application can use it again."
                )),
                Line::styled("y: restore · n: keep it in the bin", theme.muted),
            ],
        ),
        (_, Some(Confirm::Purge { label, typed, .. })) => (
            "Purge for good",
            vec![
                Line::styled(
                    format!("Purging {label} destroys it; no backup taken later holds it."),
                    theme.warn,
                ),
                Line::from("Type the key's label and Enter to purge (Esc: keep it):"),
                Line::from(vec![
                    Span::styled("> ", theme.accent),
                    Span::raw(typed.as_str()),
                    Span::styled("▏", theme.accent),
                ]),
            ],
        ),
        _ => return,
    };
    let height = (view::wrapped_height(&lines, area.width.saturating_sub(2)) + 2).min(area.height);
    let [_, middle] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(height)]).areas(area);
    frame.render_widget(Clear, middle);
    frame.render_widget(
        Paragraph::new(lines)
            .block(view::block(title, theme))
            .wrap(Wrap { trim: true }),
        middle,
    );
}

fn usage(link: &mut (dyn Link + Send)) -> Result<PartitionUsage, Event> {
    match link.admin(AdminRequest::GetUsage) {
        Ok(AdminResponse::Usage(usage)) => Ok(usage),
        Ok(_) => Err(Event::Failed(
            "the HSM gave an unexpected answer to usage".into(),
        )),
        Err(e) => Err(link_failure(e)),
    }
}

/// Reads a page, restores or purges on the worker.
pub(crate) fn work(link: &mut (dyn Link + Send), command: Command) -> Event {
    let refused = |e: quorum::ceremony::LinkError| match e {
        quorum::ceremony::LinkError::Failed(_) => link_failure(e),
        other => Event::KeyActionFailed(format!("Nothing changed: {}", refusal_text(&other))),
    };
    match command {
        Command::Keys(query) => match link.admin(AdminRequest::ListKeys(query.clone())) {
            Ok(AdminResponse::Keys {
                keys,
                more,
                matching,
            }) => Event::Keys {
                query: Box::new(query),
                keys,
                more,
                matching,
            },
            Ok(_) => Event::Failed("the HSM gave an unexpected answer to the key list".into()),
            Err(e) => link_failure(e),
        },
        Command::Restore(id) => match link.admin(AdminRequest::RestoreKey { id }) {
            Ok(_) => match usage(link) {
                Ok(usage) => Event::Restored { id, usage },
                Err(event) => event,
            },
            Err(e) => refused(e),
        },
        Command::Purge(id) => {
            let before = match usage(link) {
                Ok(usage) => usage,
                Err(event) => return event,
            };
            match link.admin(AdminRequest::PurgeKey { id }) {
                Ok(_) => match usage(link) {
                    Ok(usage) => Event::Purged {
                        id,
                        freed: before.bytes_used.saturating_sub(usage.bytes_used),
                        usage,
                    },
                    Err(event) => event,
                },
                Err(e) => refused(e),
            }
        }
        _ => Event::Failed("not a key command".into()),
    }
}
