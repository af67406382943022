//! Keys and the bin: the partition's keys (label, type, size, flags, created) in a list that
//! draws only the rows on screen and fetches the next page as the selection nears the end of
//! what was read; in the bin, restore (asked once) and purge (the key's label typed), with the
//! counts and the space freed afterwards.

use hsm_link::domain::{KeyId, KeyObjectSummary, KeyState, PartitionUsage};
use hsm_link::message::{AdminRequest, AdminResponse, KeyFilter};
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

/// Rows before the end of what was read at which the next page is asked for.
pub const PREFETCH: usize = 20;

/// The order of the keys read so far (the HSM pages them in id order).
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
            Sort::Size => "size",
            Sort::Created => "newest",
        }
    }

    fn apply(self, rows: &mut [KeyObjectSummary]) {
        match self {
            Sort::Id => rows.sort_by_key(|k| k.id.0),
            Sort::Label => rows.sort_by(|a, b| a.label.as_str().cmp(b.label.as_str())),
            Sort::Size => rows.sort_by_key(|k| (std::cmp::Reverse(k.size_bytes), k.id.0)),
            Sort::Created => rows.sort_by_key(|k| (std::cmp::Reverse(k.created_unix), k.id.0)),
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
    /// The keys read so far, in the order of `sort`.
    pub rows: Vec<KeyObjectSummary>,
    /// The order shown.
    pub sort: Sort,
    /// The highest id read: the next page starts after it.
    pub last_id: Option<KeyId>,
    /// Whether the HSM has more.
    pub more: bool,
    /// A page is being read.
    pub loading: bool,
    /// The selected row among the shown ones.
    pub selected: usize,
    /// The label filter being typed, if any.
    pub editing: Option<String>,
    /// The label filter applied (case-insensitive substring).
    pub search: String,
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
            sort: Sort::Id,
            last_id: None,
            more: false,
            loading: false,
            selected: 0,
            editing: None,
            search: String::new(),
            confirm: None,
            notice: None,
        }
    }

    fn is_bin(&self) -> bool {
        self.filter == KeyFilter::Invalidated
    }

    /// The rows shown: those matching the label filter (case-insensitive), lazily, so that a
    /// frame touches only the rows it draws.
    pub fn shown_iter(&self) -> impl Iterator<Item = &KeyObjectSummary> {
        let needle = self.search.to_lowercase();
        self.rows
            .iter()
            .filter(move |k| needle.is_empty() || k.label.as_str().to_lowercase().contains(&needle))
    }

    /// The rows shown, collected.
    pub fn shown(&self) -> Vec<&KeyObjectSummary> {
        self.shown_iter().collect()
    }

    fn shown_len(&self) -> usize {
        if self.search.is_empty() {
            self.rows.len()
        } else {
            self.shown_iter().count()
        }
    }

    /// Opens the screen: reads the first page.
    pub fn open(&mut self) -> Vec<Effect> {
        *self = KeysFlow {
            search: std::mem::take(&mut self.search),
            sort: self.sort,
            ..KeysFlow::new(self.filter)
        };
        self.loading = true;
        vec![Effect::Send(Command::Keys {
            filter: self.filter,
            after: None,
            limit: PAGE,
        })]
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
        let selected = self
            .shown()
            .get(self.selected)
            .map(|k| (k.id, k.label.to_string()));
        match action {
            Action::Back => return Outcome::Leave(Vec::new()),
            Action::Reload => return Outcome::Stay(self.open()),
            Action::Filter => self.editing = Some(self.search.clone()),
            Action::Sort => {
                self.sort = self.sort.next();
                self.sort.apply(&mut self.rows);
                self.selected = 0;
            }
            Action::Restore if self.is_bin() => {
                if let Some((id, label)) = selected {
                    self.confirm = Some(Confirm::Restore { id, label });
                }
            }
            Action::Purge if self.is_bin() => {
                if let Some((id, label)) = selected {
                    self.confirm = Some(Confirm::Purge {
                        id,
                        label,
                        typed: String::new(),
                    });
                }
            }
            _ => self.selected = step_selection(self.selected, self.shown_len(), action, 10),
        }
        Outcome::Stay(self.prefetch())
    }

    /// Asks for the next page when the selection nears the end of what was read.
    fn prefetch(&mut self) -> Vec<Effect> {
        let shown = self.shown_len();
        if !self.more || self.loading || self.selected + PREFETCH < shown {
            return Vec::new();
        }
        self.loading = true;
        vec![Effect::Send(Command::Keys {
            filter: self.filter,
            after: self.last_id,
            limit: PAGE,
        })]
    }

    fn edit_search(&mut self, action: Action, mut text: String) -> Outcome {
        match action {
            Action::Input(c) if text.len() < 128 => text.push(c),
            Action::Erase => {
                text.pop();
            }
            Action::Select => return Outcome::none(),
            Action::Back => {
                self.search.clear();
                return Outcome::none();
            }
            _ => {}
        }
        self.search = text.clone();
        self.selected = 0;
        self.editing = Some(text);
        Outcome::Stay(self.prefetch())
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

    /// Takes a page.
    pub fn on_page(
        &mut self,
        after: Option<KeyId>,
        keys: Vec<KeyObjectSummary>,
        more: bool,
    ) -> Vec<Effect> {
        if let Some(last) = keys.last() {
            self.last_id = Some(last.id);
        }
        if after.is_none() {
            self.rows = keys;
        } else {
            self.rows.extend(keys);
        }
        if self.sort != Sort::Id {
            self.sort.apply(&mut self.rows);
        }
        self.more = more;
        self.loading = false;
        self.prefetch()
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
        self.rows.retain(|k| k.id != id);
        self.selected = self.selected.min(self.shown_len().saturating_sub(1));
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

/// Draws the key list or the bin: only the rows that fit are built.
pub fn view(frame: &mut Frame, area: Rect, flow: &KeysFlow, theme: &Theme) {
    let [table_area, foot] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(2)]).areas(area);
    let visible = table_area.height.saturating_sub(3) as usize;
    let offset = flow.selected.saturating_sub(visible.saturating_sub(1));
    let bin = flow.is_bin();
    // On a narrow screen the bin shows when a key was binned rather than when it was made.
    let created = !bin || area.width >= 100;
    let rows = flow
        .shown_iter()
        .enumerate()
        .skip(offset)
        .take(visible.max(1))
        .map(|(i, k)| key_row(k, i == flow.selected, created, theme));
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
    let what = if bin { "Bin" } else { "Keys" };
    let more = if flow.loading {
        " · reading…"
    } else if flow.more {
        " · more on the HSM"
    } else {
        ""
    };
    let search = if flow.search.is_empty() {
        String::new()
    } else {
        format!(" · label contains \"{}\"", flow.search)
    };
    let sort = match flow.sort {
        Sort::Id => String::new(),
        other => format!(" · by {} (of those read)", other.name()),
    };
    let title = format!("{what} · {} read{more}{search}{sort}", flow.rows.len());
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(theme.muted))
        .block(view::block(&title, theme));
    frame.render_widget(table, table_area);
    let foot_text = match &flow.notice {
        Some(n) => view::notice_paragraph(n, theme),
        None if flow.shown_iter().next().is_none() && !flow.loading => {
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
        Command::Keys {
            filter,
            after,
            limit,
        } => match link.admin(AdminRequest::ListKeys {
            filter,
            after,
            limit,
        }) {
            Ok(AdminResponse::Keys { keys, more }) => Event::Keys {
                filter,
                after,
                keys,
                more,
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
