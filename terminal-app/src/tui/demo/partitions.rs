//! The demo's first screen: the demo HSM's partitions (name, id, tier, whether a PSO set is
//! enrolled), as a real terminal's chooser lists its paired ones ([`crate::tui::chooser`]: the
//! same keys and look), with the demo cards' holders and PINs. Enter opens the selected
//! partition's welcome screen; Esc there comes back here. The Elm shape in small:
//! [`PartitionList`] is the model, [`PartitionList::on_key`] the update, [`view()`] the pure
//! view, [`choose`] the loop with the terminal.

use std::io;
use std::time::Duration;

use partition_service::service::Hsm;
use ratatui::Frame;
use ratatui::crossterm::event::{self, Event as TermEvent, KeyEvent};
use ratatui::layout::{Constraint, Layout};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::{DEMO_CARDS, Demo, PARTITIONS, SPARE_CARDS};
use crate::tui::chooser::{Choice, choose_row};
use crate::tui::model::DemoCard;
use crate::tui::theme::Theme;
use crate::tui::view;

/// How often the list is read again while nothing is pressed (the fixture being prepared, a
/// set enrolled since).
const REFRESH: Duration = Duration::from_millis(200);

/// Where a partition's PSO set stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetState {
    /// The fixture is being built (the first start); the set comes with it.
    Preparing,
    /// A PSO set of `threshold` of `cards` is enrolled.
    Enrolled {
        /// m.
        threshold: u8,
        /// n.
        cards: usize,
    },
    /// None yet: one is enrolled from the Cards screen.
    None,
    /// The partition could not be read.
    Unreadable(String),
}

/// A partition as the list shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// Its name.
    pub name: String,
    /// Its id.
    pub id: String,
    /// Its tier.
    pub tier: String,
    /// Its PSO set.
    pub pso: SetState,
}

/// Whether the fixture is ready.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Preparation {
    /// Being built (the first start) or opened.
    Running {
        /// Whether this is the first start (the slow build).
        first_start: bool,
    },
    /// Ready.
    Done,
    /// Could not be prepared: why.
    Failed(String),
}

/// The list's model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionList {
    /// The HSM's id.
    pub hsm_id: String,
    /// Its key's fingerprint (shortened).
    pub fingerprint: String,
    /// The partitions, in [`PARTITIONS`]' order.
    pub rows: Vec<Row>,
    /// The selected row.
    pub selected: usize,
    /// Whether the fixture is ready.
    pub preparation: Preparation,
    /// The cards to show with their PINs.
    pub cards: Vec<DemoCard>,
}

impl PartitionList {
    /// The list for `demo`, `selected` chosen.
    pub fn new(demo: &Demo, selected: usize) -> PartitionList {
        let mut list = PartitionList {
            hsm_id: demo.hsm.keys().hsm_id().to_string(),
            fingerprint: demo.fingerprint(),
            rows: Vec::new(),
            selected: selected.min(PARTITIONS.len() - 1),
            preparation: Preparation::Running {
                first_start: demo.first_start(),
            },
            cards: all_cards(),
        };
        list.refresh(demo);
        list
    }

    /// Reads the partitions' states again.
    pub fn refresh(&mut self, demo: &Demo) {
        self.preparation = match demo.prepared() {
            None => Preparation::Running {
                first_start: demo.first_start(),
            },
            Some(Ok(())) => Preparation::Done,
            Some(Err(e)) => Preparation::Failed(e),
        };
        let building = self.preparation == Preparation::Running { first_start: true };
        self.rows = PARTITIONS
            .iter()
            .enumerate()
            .map(|(i, p)| Row {
                name: p.name.to_owned(),
                id: p.id.to_owned(),
                tier: p.tier.as_str().to_owned(),
                // The first partition's set is enrolled by the build.
                pso: if building && i == 0 {
                    SetState::Preparing
                } else {
                    set_state(&demo.hsm, p.id)
                },
            })
            .collect();
    }

    /// Answers a key.
    pub fn on_key(&mut self, key: KeyEvent) -> Choice {
        choose_row(key, &mut self.selected, self.rows.len())
    }
}

/// Every demo card: the sets', the SO cards and the spare ones.
pub fn all_cards() -> Vec<DemoCard> {
    DEMO_CARDS.iter().chain(&SPARE_CARDS).cloned().collect()
}

fn set_state(hsm: &Hsm, id: &str) -> SetState {
    let record = hsm_link::domain::PartitionId::new(id)
        .map_err(|e| e.to_string())
        .and_then(|id| hsm.partition(&id).map_err(|e| e.to_string()));
    match record {
        Ok(record) => match record.pso {
            Some(set) => SetState::Enrolled {
                threshold: set.set.threshold,
                cards: set.set.cards.len(),
            },
            None => SetState::None,
        },
        Err(e) => SetState::Unreadable(e),
    }
}

fn state_line<'a>(state: &SetState, theme: &Theme) -> Line<'a> {
    let (text, style) = match state {
        SetState::Preparing => (
            "… PSO set being enrolled (first start only)".to_owned(),
            theme.muted,
        ),
        SetState::Enrolled { threshold, cards } => (
            format!("✓ PSO set enrolled ({threshold} of {cards}): log in from its screen"),
            theme.ok,
        ),
        SetState::None => (
            "○ no PSO set yet: enrol one from Cards (open it, then c, then e)".to_owned(),
            theme.warn,
        ),
        SetState::Unreadable(e) => (format!("✗ unreadable: {e}"), theme.error),
    };
    Line::styled(format!("      {text}"), style)
}

/// Draws the list.
pub fn view(frame: &mut Frame, list: &PartitionList, theme: &Theme) {
    let parts_height = u16::try_from(list.rows.len() * 2 + 3).unwrap_or(u16::MAX);
    let [header, parts, cards, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(parts_height),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    frame.render_widget(
        Line::from(vec![
            Span::styled(" Tessera ", theme.accent),
            Span::raw(format!("· demo HSM {} · choose a partition", list.hsm_id)),
        ]),
        header,
    );
    let mut lines = Vec::new();
    for (i, row) in list.rows.iter().enumerate() {
        let label = format!("{} ({}) · tier {}", row.name, row.id, row.tier);
        lines.push(view::menu_line(i + 1, &label, i == list.selected, theme));
        lines.push(state_line(&row.pso, theme));
    }
    lines.push(match &list.preparation {
        Preparation::Running { first_start: true } => Line::styled(
            "… preparing the demo HSM and its soft cards (first start only)",
            theme.muted,
        ),
        Preparation::Running { first_start: false } => {
            Line::styled("… opening the demo HSM", theme.muted)
        }
        Preparation::Done => Line::styled(format!("HSM key {}", list.fingerprint), theme.muted),
        Preparation::Failed(e) => Line::styled(format!("✗ {e}"), theme.error),
    });
    frame.render_widget(
        Paragraph::new(lines)
            .block(view::block(
                "Demo HSM partitions (a simulator, not a certified HSM)",
                theme,
            ))
            .wrap(Wrap { trim: false }),
        parts,
    );
    let card_lines: Vec<Line> = list
        .cards
        .iter()
        .map(|c| {
            Line::from(vec![
                Span::raw(format!("{:<8} {:<14}", c.set, c.holder)),
                Span::styled(format!("soft card {:<10}", c.serial), theme.soft_card),
                Span::raw(format!(" PIN {}", c.pin)),
            ])
        })
        .collect();
    frame.render_widget(
        Paragraph::new(card_lines)
            .block(view::block(
                "Demo soft cards (this demo only; their PINs are public)",
                theme,
            ))
            .wrap(Wrap { trim: true }),
        cards,
    );
    let hints: &[(&str, &str)] = &[
        ("↑↓ j k", "move"),
        ("1-9", "open entry"),
        ("Enter", "open"),
        ("q Esc", "quit"),
    ];
    let mut spans = Vec::new();
    for (keys, hint) in hints {
        spans.push(Span::styled(format!(" {keys}"), theme.accent));
        spans.push(Span::styled(format!(" {hint} "), theme.muted));
    }
    frame.render_widget(Line::from(spans), footer);
}

/// Shows the list until a partition is chosen (its index in [`PARTITIONS`]) or the user
/// leaves; `selected` is the row selected at first.
pub fn choose(demo: &Demo, selected: usize, theme: &Theme) -> io::Result<Option<usize>> {
    let mut list = PartitionList::new(demo, selected);
    let mut terminal = ratatui::try_init()?;
    let result = (|| loop {
        terminal.draw(|frame| view(frame, &list, theme))?;
        if event::poll(REFRESH)? {
            if let TermEvent::Key(key) = event::read()? {
                match list.on_key(key) {
                    Choice::Stay => {}
                    Choice::Open(i) => return Ok(Some(i)),
                    Choice::Quit => return Ok(None),
                }
            }
        } else {
            list.refresh(demo);
        }
    })();
    ratatui::try_restore()?;
    result
}
