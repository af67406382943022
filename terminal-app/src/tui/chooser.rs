//! `tessera` without arguments, in a terminal: the paired HSM partitions to choose from (name,
//! address, partition, HSM key fingerprint, last seen), arrows or numbers and Enter; with none,
//! how to pair or to try the demo. The Elm shape in small: [`Chooser`] is the model,
//! [`Chooser::on_key`] the update, [`view()`] the pure view, [`choose`] the loop with the
//! terminal.

use std::io;

use ratatui::Frame;
use ratatui::crossterm::event::{self, Event as TermEvent, KeyEvent};
use ratatui::layout::{Constraint, Layout};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::keymap::{self, Action, Context, action_for};
use super::theme::Theme;
use super::view;
use crate::cli::list::NOTHING_PAIRED;
use crate::cli::printable;
use crate::state::PairedList;

/// A paired partition as the chooser lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// The terminal's name for it.
    pub name: String,
    /// Where its HSM is reached.
    pub address: String,
    /// The partition's id.
    pub partition: String,
    /// The HSM key's fingerprint as pinned.
    pub fingerprint: String,
    /// When a session last reached it (UTC), or `never`.
    pub last_seen: String,
}

/// The chooser's model.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Chooser {
    /// The paired partitions, in the order they were paired.
    pub rows: Vec<Row>,
    /// The selected row.
    pub selected: usize,
}

/// What a key means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// Stay on the list.
    Stay,
    /// Open the partition of this row.
    Open(usize),
    /// Leave without opening any.
    Quit,
}

/// How keys read on the chooser.
pub const CONTEXT: Context = Context::Tables(&[keymap::MENU, keymap::NAVIGATION, keymap::GLOBAL]);

impl Chooser {
    /// The rows for `list`.
    pub fn new(list: &PairedList) -> Chooser {
        Chooser {
            rows: list
                .partitions()
                .iter()
                .map(|p| Row {
                    name: printable(&p.name),
                    address: printable(&p.address.to_string()),
                    partition: p.partition.as_str().to_owned(),
                    fingerprint: p.fingerprint().to_string(),
                    last_seen: p
                        .last_seen_unix
                        .map_or_else(|| "never".to_owned(), view::utc_text),
                })
                .collect(),
            selected: 0,
        }
    }

    /// Answers a key.
    pub fn on_key(&mut self, key: KeyEvent) -> Choice {
        choose_row(key, &mut self.selected, self.rows.len())
    }
}

/// Draws the chooser.
pub fn view(frame: &mut Frame, chooser: &Chooser, theme: &Theme) {
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    frame.render_widget(
        Line::from(vec![
            Span::styled(" Tessera ", theme.accent),
            Span::raw("· choose an HSM partition"),
        ]),
        header,
    );
    let mut lines = Vec::new();
    if chooser.rows.is_empty() {
        lines.extend(NOTHING_PAIRED.lines().map(|l| Line::from(l.to_owned())));
    }
    for (i, row) in chooser.rows.iter().enumerate() {
        let label = format!(
            "{} · {} · partition {}",
            row.name, row.address, row.partition
        );
        lines.push(view::menu_line(i + 1, &label, i == chooser.selected, theme));
        lines.push(Line::styled(
            format!("      key {} · seen {}", row.fingerprint, row.last_seen),
            theme.muted,
        ));
    }
    if !chooser.rows.is_empty() {
        lines.push(Line::from(""));
        lines.push(Line::styled(
            "Pair another: tessera pair --tcp HOST:PORT --partition ID · the demo: tessera demo",
            theme.muted,
        ));
    }
    frame.render_widget(
        Paragraph::new(lines)
            .block(view::block("Paired HSM partitions", theme))
            .wrap(Wrap { trim: false }),
        body,
    );
    let hints: &[(&str, &str)] = if chooser.rows.is_empty() {
        &[("q Esc", "quit")]
    } else {
        &[
            ("↑↓ j k", "move"),
            ("1-9", "open entry"),
            ("Enter", "open"),
            ("q Esc", "quit"),
        ]
    };
    let mut spans = Vec::new();
    for (keys, hint) in hints {
        spans.push(Span::styled(format!(" {keys}"), theme.accent));
        spans.push(Span::styled(format!(" {hint} "), theme.muted));
    }
    frame.render_widget(Line::from(spans), footer);
}

/// Shows the chooser until a partition is chosen (its index in `list`) or the user leaves.
pub fn choose(list: &PairedList, theme: &Theme) -> io::Result<Option<usize>> {
    let mut chooser = Chooser::new(list);
    let mut terminal = ratatui::try_init()?;
    let result = (|| loop {
        terminal.draw(|frame| view(frame, &chooser, theme))?;
        if let TermEvent::Key(key) = event::read()? {
            match chooser.on_key(key) {
                Choice::Stay => {}
                Choice::Open(i) => return Ok(Some(i)),
                Choice::Quit => return Ok(None),
            }
        }
    })();
    ratatui::try_restore()?;
    result
}
/// A key on a list of `rows` to open one from (this chooser's, the demo's partitions): Enter or
/// a row's number opens it, the arrows and vim keys move `selected`, Esc or q leaves.
pub(crate) fn choose_row(key: KeyEvent, selected: &mut usize, rows: usize) -> Choice {
    let Some(action) = action_for(CONTEXT, key) else {
        return Choice::Stay;
    };
    match action {
        Action::Quit | Action::Back => Choice::Quit,
        Action::Select if rows > 0 => Choice::Open(*selected),
        Action::Jump(n) if usize::from(n) <= rows => {
            *selected = usize::from(n) - 1;
            Choice::Open(*selected)
        }
        action => {
            *selected = crate::flows::step_selection(*selected, rows, action, 4);
            Choice::Stay
        }
    }
}
