//! Cards: a re-share. The same recovery secret moved from m cards of the active set to a new
//! set of the PSO's choosing (new m and n), through `quorum`'s [`Reshare`] ceremony: the old
//! cards one at a time (their shares read and checked), the split, the new set's cards one at a
//! time (each share written and read back), the registration, and the old shares wiped on the
//! cards present. Needs a PSO login. The ceremony lives on the worker; the model holds only
//! its id, the steps done and the card names, never a PIN or a share.

use quorum::card::Pin;
#[cfg(doc)]
use quorum::ceremony::Reshare;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Wrap};

use super::Outcome;
use super::new_set;
use crate::tui::keymap::{self, Action, Context};
use crate::tui::message::{CardView, Command, Effect, PinFor, SlotView};
use crate::tui::model::{Level, Notice};
use crate::tui::theme::Theme;
use crate::tui::view;

mod work;

pub use super::new_set::{MAX_CARDS, Step};
pub use work::ReshareWork;
pub(crate) use work::work;

/// Where the re-share stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Phase {
    /// Choosing the new m and n.
    #[default]
    Size,
    /// Opening the ceremony.
    Beginning,
    /// Reading m cards of the active set.
    Old,
    /// Writing the new set's cards.
    New,
    /// Registered: wiping the old shares on the cards present.
    Wipe,
    /// Over (done or abandoned): what was and was not changed, until Esc.
    Over,
}

/// A step of a re-share, for the worker.
#[derive(Debug)]
pub enum ReshareCommand {
    /// Open the ceremony for a new set of `threshold` of `n`.
    Begin {
        /// The new m.
        threshold: u8,
        /// The new n.
        n: u8,
    },
    /// The card in this slot was inserted.
    Insert(usize),
    /// Its PIN (from the zeroizing buffer); the card then does the phase's step.
    Verify(Pin),
    /// Abandon the ceremony.
    Abort,
}

impl PartialEq for ReshareCommand {
    fn eq(&self, other: &Self) -> bool {
        use ReshareCommand::*;
        match (self, other) {
            (Begin { threshold: a, n: b }, Begin { threshold: c, n: d }) => a == c && b == d,
            (Insert(a), Insert(b)) => a == b,
            // Two PINs are never compared.
            (Verify(_), Verify(_)) | (Abort, Abort) => true,
            _ => false,
        }
    }
}

impl Eq for ReshareCommand {}

/// A re-share step's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReshareEvent {
    /// The ceremony is open: its id and the active set's m.
    Began {
        /// The ceremony id as shown.
        ceremony: String,
        /// The active set's m: how many old cards to read.
        need: usize,
    },
    /// A card is in: its PIN next.
    Inserted(CardView),
    /// Wrong PIN; the card stays.
    WrongPin(CardView),
    /// An old card's share was read and checked.
    OldRead {
        /// The card.
        card: CardView,
        /// Read so far.
        have: usize,
    },
    /// The secret was split for the new set (old shares and the secret wiped in memory).
    Split,
    /// A new card's share was written and read back.
    NewWritten {
        /// The card.
        card: CardView,
        /// Written so far.
        have: usize,
    },
    /// The HSM registered the new set.
    Registered {
        /// Its number.
        set_number: u32,
        /// Old cards present, not in the new set: their old share is to wipe.
        to_wipe: Vec<String>,
        /// Old cards not present and not in the new set: they keep an old share (logged).
        old_left: Vec<String>,
    },
    /// A card's old share was dealt with after the registration.
    Wiped {
        /// The card.
        card: CardView,
        /// What was done.
        what: String,
        /// Old cards still to wipe.
        left: usize,
    },
    /// A card was refused; the ceremony goes on: why.
    Refused(String),
    /// The ceremony ended early: what was and was not changed.
    Aborted(String),
}

/// The re-share's part of the model.
#[derive(Clone, Debug)]
pub struct ReshareFlow {
    /// Where it stands.
    pub phase: Phase,
    /// Where the current card stands.
    pub step: Step,
    /// The new m.
    pub threshold: u8,
    /// The new n.
    pub n: u8,
    /// Which of m (0) and n (1) the arrows change.
    pub field: usize,
    /// The selected slot.
    pub slot: usize,
    /// The inserted card.
    pub card: Option<CardView>,
    /// PIN characters typed.
    pub pin_len: usize,
    /// The ceremony's id, once open.
    pub ceremony: Option<String>,
    /// Old cards needed.
    pub old_need: usize,
    /// Old cards read.
    pub old_read: Vec<String>,
    /// New cards written and read back.
    pub new_written: Vec<String>,
    /// The new set's number, once registered.
    pub registered: Option<u32>,
    /// Old cards to wipe.
    pub to_wipe: Vec<String>,
    /// Old cards that keep an old share (not present).
    pub old_left: Vec<String>,
    /// Cards dealt with after the registration.
    pub wiped: Vec<String>,
    /// The last result or refusal.
    pub notice: Option<Notice>,
}

impl Default for ReshareFlow {
    fn default() -> Self {
        ReshareFlow {
            phase: Phase::Size,
            step: Step::Choose,
            threshold: 2,
            n: 3,
            field: 0,
            slot: 0,
            card: None,
            pin_len: 0,
            ceremony: None,
            old_need: 0,
            old_read: Vec::new(),
            new_written: Vec::new(),
            registered: None,
            to_wipe: Vec::new(),
            old_left: Vec::new(),
            wiped: Vec::new(),
            notice: None,
        }
    }
}

fn send(command: ReshareCommand) -> Effect {
    Effect::Send(Command::Reshare(command))
}

impl ReshareFlow {
    /// How keys read here.
    pub fn context(&self) -> Context {
        match (self.phase, self.step) {
            (Phase::Size, _) => Context::Tables(&[keymap::RESHARE_SIZE, keymap::GLOBAL]),
            (Phase::Over, _) => Context::Tables(&[keymap::GLOBAL]),
            (_, Step::Pin) => Context::Text,
            _ => Context::Tables(&[keymap::NAVIGATION, keymap::MENU, keymap::GLOBAL]),
        }
    }

    /// Answers a key; `slots` is how many card slots there are.
    pub fn on_action(&mut self, action: Action, slots: usize) -> Outcome {
        if !matches!(self.phase, Phase::Size | Phase::Over)
            && self.step == Step::Pin
            && let Some(outcome) = new_set::pin_key(&mut self.pin_len, action, PinFor::Reshare)
        {
            if action == Action::Select {
                self.step = Step::Working;
            }
            return outcome;
        }
        match (self.phase, self.step, action) {
            (Phase::Size, _, _) => self.on_size(action),
            (Phase::Over, _, Action::Back) => {
                *self = ReshareFlow::default();
                Outcome::Leave(vec![Effect::PinClear])
            }
            (Phase::Over, _, _) => Outcome::none(),
            (_, Step::Pin, Action::Back) => {
                // The card goes back; the ceremony stays where it is.
                self.pin_len = 0;
                self.card = None;
                self.step = Step::Choose;
                Outcome::one(Effect::PinClear)
            }
            (_, Step::Choose, Action::Select) => self.insert(self.slot, slots),
            (_, Step::Choose, Action::Jump(n)) => {
                self.insert(usize::from(n).wrapping_sub(1), slots)
            }
            (_, Step::Choose, Action::Back) => {
                Outcome::Stay(vec![Effect::PinClear, send(ReshareCommand::Abort)])
            }
            (_, Step::Choose, _) => {
                self.slot = super::step_selection(self.slot, slots, action, 5);
                Outcome::none()
            }
            _ => Outcome::none(),
        }
    }

    fn on_size(&mut self, action: Action) -> Outcome {
        let size = (&mut self.threshold, &mut self.n, &mut self.field);
        if new_set::size_key(size, action) {
            return Outcome::none();
        }
        match action {
            Action::Select => {
                self.phase = Phase::Beginning;
                self.notice = None;
                return Outcome::one(send(ReshareCommand::Begin {
                    threshold: self.threshold,
                    n: self.n,
                }));
            }
            Action::Back => {
                *self = ReshareFlow::default();
                return Outcome::Leave(vec![Effect::PinClear]);
            }
            _ => {}
        }
        Outcome::none()
    }

    fn insert(&mut self, slot: usize, slots: usize) -> Outcome {
        if slot >= slots {
            return Outcome::none();
        }
        self.slot = slot;
        self.step = Step::Opening;
        self.notice = None;
        Outcome::one(send(ReshareCommand::Insert(slot)))
    }

    /// Takes the worker's answer ([`ReshareEvent::Aborted`] is the screen's: it leaves).
    pub fn on_event(&mut self, event: ReshareEvent) -> Vec<Effect> {
        self.pin_len = 0;
        let mut step = Step::Choose;
        match event {
            ReshareEvent::Began { ceremony, need } => {
                self.ceremony = Some(ceremony);
                self.old_need = need;
                self.phase = Phase::Old;
            }
            ReshareEvent::Inserted(card) => {
                self.card = Some(card);
                step = Step::Pin;
            }
            ReshareEvent::WrongPin(card) => {
                let text = new_set::wrong_pin_text(&card);
                self.card = Some(card);
                self.notice = Some(Notice::new(Level::Error, text));
                step = Step::Pin;
            }
            ReshareEvent::Split => self.phase = Phase::New,
            event @ (ReshareEvent::OldRead { .. }
            | ReshareEvent::NewWritten { .. }
            | ReshareEvent::Wiped { .. }) => self.on_card_done(event),
            ReshareEvent::Registered {
                set_number,
                to_wipe,
                old_left,
            } => {
                self.registered = Some(set_number);
                self.to_wipe = to_wipe;
                self.old_left = old_left;
                self.phase = Phase::Wipe;
                self.notice = Some(Notice::new(
                    Level::Ok,
                    format!("The HSM registered set {set_number}: it is the active set now."),
                ));
            }
            ReshareEvent::Refused(reason) => {
                self.card = None;
                if self.phase == Phase::Beginning {
                    self.phase = Phase::Size;
                }
                self.notice = Some(Notice::new(Level::Error, reason));
            }
            ReshareEvent::Aborted(what) => {
                let level = if self.registered.is_some() {
                    Level::Ok
                } else {
                    Level::Warn
                };
                self.card = None;
                self.phase = Phase::Over;
                self.notice = Some(Notice::new(level, what));
            }
        }
        self.step = step;
        vec![Effect::PinClear]
    }

    /// A card's step is done: the card goes back, its result is shown.
    fn on_card_done(&mut self, event: ReshareEvent) {
        self.card = None;
        let text = match event {
            ReshareEvent::OldRead { card, have } => {
                self.old_read.push(card.name());
                let need = self.old_need;
                format!(
                    "{}: share read and checked ({have} of {need}).",
                    card.name()
                )
            }
            ReshareEvent::NewWritten { card, have } => {
                self.new_written.push(card.name());
                new_set::written_text(&card, have, self.n)
            }
            ReshareEvent::Wiped { card, what, .. } => {
                let name = card.name();
                self.to_wipe.retain(|c| *c != name);
                self.wiped.push(name);
                format!("{}: {what}", card.name())
            }
            _ => return,
        };
        self.notice = Some(Notice::new(Level::Ok, text));
    }
}

/// The steps of the ceremony as shown, with a mark for each: `✓` done, `›` now, `·` to come.
fn steps(flow: &ReshareFlow) -> Vec<String> {
    let done = |p: Phase| match p {
        Phase::Size => true,
        Phase::Old => flow.old_need > 0 && flow.old_read.len() >= flow.old_need,
        Phase::New => flow.new_written.len() >= usize::from(flow.n),
        _ => flow.registered.is_some(),
    };
    let at = |p: Phase| match (flow.phase, p) {
        (Phase::Over, p) if done(p) => "✓",
        // An abandoned ceremony: the steps it did not reach are marked as not done.
        (Phase::Over, _) => "✗",
        (a, b) if a == b => "›",
        (Phase::Size | Phase::Beginning, _) => "·",
        (Phase::Old, Phase::Size) => "✓",
        (Phase::New, Phase::Size | Phase::Old) => "✓",
        (Phase::Wipe, _) => "✓",
        _ => "·",
    };
    let old = if flow.old_need == 0 {
        "its m cards".to_owned()
    } else {
        format!("{} of {} cards", flow.old_read.len(), flow.old_need)
    };
    vec![
        format!(
            "{} 1 new set: {} of {}",
            at(Phase::Size),
            flow.threshold,
            flow.n
        ),
        format!("{} 2 active set: {old} read and checked", at(Phase::Old)),
        format!(
            "{} 3 new cards: {} of {} written and read back",
            at(Phase::New),
            flow.new_written.len(),
            flow.n
        ),
        match flow.registered {
            Some(set) => format!(
                "{} 4 set {set} registered; old shares to wipe: {}",
                at(Phase::Wipe),
                flow.to_wipe.len()
            ),
            None => format!("{} 4 register, then wipe the old shares", at(Phase::Wipe)),
        },
    ]
}

fn phase_lines(flow: &ReshareFlow, slots: &[SlotView], theme: &Theme) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    if flow.phase == Phase::Size {
        lines.push(Line::styled(
            "Choose the new set (↑↓ m or n, ←→ change, Enter begins):",
            theme.muted,
        ));
        lines.extend(new_set::size_lines(flow.threshold, flow.n, flow.field));
        return lines;
    }
    if flow.phase == Phase::Over {
        lines.push(Line::styled(
            "The ceremony is over. Esc: back to Cards.",
            theme.muted,
        ));
        return lines;
    }
    if flow.phase == Phase::Beginning {
        lines.push(Line::styled("Opening the ceremony…", theme.muted));
        return lines;
    }
    let ask = match flow.phase {
        Phase::Old => "Insert a card of the active set (its share is read and checked):",
        Phase::New => "Insert the next card of the new set (its share is written, read back):",
        _ => "Insert an old card to wipe its old share (or Esc when done):",
    };
    match (flow.step, &flow.card) {
        (Step::Pin, Some(card)) => lines.extend(new_set::pin_lines(card, flow.pin_len)),
        (Step::Opening, _) => lines.push(Line::styled("Reading the card…", theme.muted)),
        (Step::Working, _) => lines.push(Line::styled("The card is working…", theme.muted)),
        _ => lines.extend(new_set::slot_lines(ask.to_owned(), slots, flow.slot, theme)),
    }
    lines
}

/// Draws the re-share.
pub fn view(frame: &mut Frame, area: Rect, flow: &ReshareFlow, slots: &[SlotView], theme: &Theme) {
    let title = match &flow.ceremony {
        Some(id) => format!("Cards · re-share · ceremony {id}"),
        None => "Cards · re-share".to_owned(),
    };
    let mut lines = vec![Line::from(
        "A re-share moves the recovery secret from the active set to a new set; the old \
         shares are wiped on the cards present. Esc abandons it and says what changed.",
    )];
    lines.extend(steps(flow).into_iter().map(Line::from));
    if !flow.old_left.is_empty() {
        lines.push(Line::styled(
            format!(
                "Not present, keep an old share: {}",
                flow.old_left.join(", ")
            ),
            theme.warn,
        ));
    }
    lines.push(Line::from(""));
    lines.extend(phase_lines(flow, slots, theme));
    if let Some(n) = &flow.notice {
        lines.push(Line::from(""));
        lines.push(Line::styled(
            format!("{}: {}", n.level.tag(), n.text),
            view::level_style(n.level, theme),
        ));
    }
    frame.render_widget(
        Paragraph::new(lines)
            .block(view::block(&title, theme))
            .wrap(Wrap { trim: false }),
        area,
    );
}
