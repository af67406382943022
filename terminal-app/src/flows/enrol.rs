//! Cards: enrol a card set. A PSO set (the first enrolment of a fresh partition: a new recovery
//! secret split m-of-n, one share per card, each read back and checked, through `quorum`'s
//! [`Enrolment`]) or an auditor set (each card signs its proof of possession, through
//! [`AuditorEnrolment`]). The cards come one at a time and carry their holders' names; when the
//! n-th is in, the set is registered. The ceremony's id and steps are shown; abandoning it says
//! what was and was not changed. The ceremony lives on the worker; the model holds only its id,
//! the steps done and the card names, never a PIN or a share.

use quorum::card::Pin;
#[cfg(doc)]
use quorum::ceremony::{AuditorEnrolment, Enrolment};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Wrap};

use super::Outcome;
use super::new_set::{self, MAX_CARDS};
use crate::tui::keymap::{self, Action, Context};
use crate::tui::message::{CardView, Command, Effect, PinFor, SlotView};
use crate::tui::model::{Level, Notice};
use crate::tui::theme::Theme;
use crate::tui::view;

mod work;

pub use super::new_set::Step;
pub use work::{EnrolWork, work};

/// Which set is enrolled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SetKind {
    /// The PSO set: shares of a fresh recovery secret.
    #[default]
    Pso,
    /// The auditor set: proofs of possession only.
    Auditor,
}

impl SetKind {
    fn name(self) -> &'static str {
        match self {
            SetKind::Pso => "PSO set",
            SetKind::Auditor => "auditor set",
        }
    }
}

/// Where the enrolment stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Phase {
    /// Choosing the set.
    #[default]
    Kind,
    /// Choosing m and n.
    Size,
    /// Opening the ceremony.
    Beginning,
    /// The cards, one at a time.
    Cards,
    /// Over (registered or abandoned): what was and was not changed, until Esc.
    Over,
}

/// A step of an enrolment, for the worker.
#[derive(Debug)]
pub enum EnrolCommand {
    /// Open the ceremony for a set of `threshold` of `n`.
    Begin {
        /// PSO or auditor set.
        kind: SetKind,
        /// m.
        threshold: u8,
        /// n.
        n: u8,
    },
    /// The card in this slot was inserted.
    Insert(usize),
    /// Its PIN (from the zeroizing buffer); the card then joins the set.
    Verify(Pin),
    /// Abandon the ceremony.
    Abort,
}

impl PartialEq for EnrolCommand {
    fn eq(&self, other: &Self) -> bool {
        use EnrolCommand::*;
        match (self, other) {
            (
                Begin {
                    kind: a,
                    threshold: b,
                    n: c,
                },
                Begin {
                    kind: d,
                    threshold: e,
                    n: f,
                },
            ) => (a, b, c) == (d, e, f),
            (Insert(a), Insert(b)) => a == b,
            // Two PINs are never compared.
            (Verify(_), Verify(_)) | (Abort, Abort) => true,
            _ => false,
        }
    }
}

impl Eq for EnrolCommand {}

/// An enrolment step's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnrolEvent {
    /// The ceremony is open.
    Began {
        /// The ceremony id as shown.
        ceremony: String,
        /// The set's number once registered.
        set_number: u32,
    },
    /// A card is in: its PIN next.
    Inserted(CardView),
    /// Wrong PIN; the card stays.
    WrongPin(CardView),
    /// A card joined: its share written, read back and checked (PSO set), and its proof of
    /// possession signed.
    Added {
        /// The card.
        card: CardView,
        /// Cards in so far.
        have: usize,
    },
    /// The HSM registered the set.
    Registered {
        /// Its number.
        set_number: u32,
        /// m.
        threshold: u8,
        /// The cards, in order.
        cards: Vec<String>,
    },
    /// A card was refused; the ceremony goes on: why.
    Refused(String),
    /// The ceremony ended early: what was and was not changed.
    Aborted(String),
}

/// The enrolment's part of the model.
#[derive(Clone, Debug)]
pub struct EnrolFlow {
    /// Where it stands.
    pub phase: Phase,
    /// Where the current card stands.
    pub step: Step,
    /// Which set.
    pub kind: SetKind,
    /// m.
    pub threshold: u8,
    /// n.
    pub n: u8,
    /// The selected slot.
    pub slot: usize,
    /// The inserted card.
    pub card: Option<CardView>,
    /// PIN characters typed.
    pub pin_len: usize,
    /// The ceremony's id, once open.
    pub ceremony: Option<String>,
    /// The set's number.
    pub set_number: Option<u32>,
    /// Cards that joined.
    pub added: Vec<String>,
    /// Whether the HSM registered the set.
    pub registered: bool,
    /// The last result or refusal.
    pub notice: Option<Notice>,
}

impl Default for EnrolFlow {
    fn default() -> Self {
        EnrolFlow {
            phase: Phase::Kind,
            step: Step::Choose,
            kind: SetKind::Pso,
            threshold: 2,
            n: 3,
            slot: 0,
            card: None,
            pin_len: 0,
            ceremony: None,
            set_number: None,
            added: Vec::new(),
            registered: false,
            notice: None,
        }
    }
}

fn send(command: EnrolCommand) -> Effect {
    Effect::Send(Command::Enrol(command))
}

impl EnrolFlow {
    /// How keys read here.
    pub fn context(&self) -> Context {
        match (self.phase, self.step) {
            (Phase::Cards, Step::Pin) => Context::Text,
            (Phase::Size, _) => Context::Tables(&[keymap::RESHARE_SIZE, keymap::GLOBAL]),
            (Phase::Kind, _) | (Phase::Cards, Step::Choose) => {
                Context::Tables(&[keymap::NAVIGATION, keymap::MENU, keymap::GLOBAL])
            }
            _ => Context::Tables(&[keymap::GLOBAL]),
        }
    }

    /// Answers a key; `slots` is how many card slots there are.
    pub fn on_action(&mut self, action: Action, slots: usize) -> Outcome {
        match self.phase {
            Phase::Kind => self.on_kind(action),
            Phase::Size => self.on_size(action),
            Phase::Cards => self.on_card(action, slots),
            Phase::Beginning => Outcome::none(),
            Phase::Over if action == Action::Back => {
                *self = EnrolFlow::default();
                Outcome::Leave(vec![Effect::PinClear])
            }
            Phase::Over => Outcome::none(),
        }
    }

    fn on_kind(&mut self, action: Action) -> Outcome {
        match action {
            Action::Back => Outcome::Leave(vec![Effect::PinClear]),
            Action::Up | Action::Jump(1) => {
                self.kind = SetKind::Pso;
                self.phase_after_jump(action)
            }
            Action::Down | Action::Jump(2) => {
                self.kind = SetKind::Auditor;
                self.phase_after_jump(action)
            }
            Action::Select => {
                self.phase = Phase::Size;
                Outcome::none()
            }
            _ => Outcome::none(),
        }
    }

    fn phase_after_jump(&mut self, action: Action) -> Outcome {
        if matches!(action, Action::Jump(_)) {
            self.phase = Phase::Size;
        }
        Outcome::none()
    }

    fn on_size(&mut self, action: Action) -> Outcome {
        match action {
            Action::Back => self.phase = Phase::Kind,
            Action::Up => self.threshold = (self.threshold + 1).min(self.n),
            Action::Down => self.threshold = self.threshold.saturating_sub(1).max(1),
            Action::More => self.n = (self.n + 1).min(MAX_CARDS),
            Action::Less => {
                self.n = self.n.saturating_sub(1).max(1);
                self.threshold = self.threshold.min(self.n);
            }
            Action::Select => {
                self.phase = Phase::Beginning;
                self.notice = None;
                return Outcome::one(send(EnrolCommand::Begin {
                    kind: self.kind,
                    threshold: self.threshold,
                    n: self.n,
                }));
            }
            _ => {}
        }
        Outcome::none()
    }

    fn on_card(&mut self, action: Action, slots: usize) -> Outcome {
        if self.step == Step::Pin
            && let Some(outcome) = new_set::pin_key(&mut self.pin_len, action, PinFor::Enrol)
        {
            if action == Action::Select {
                self.step = Step::Working;
            }
            return outcome;
        }
        match (self.step, action) {
            (Step::Pin, Action::Back) => {
                self.step = Step::Choose;
                self.pin_len = 0;
                self.card = None;
                Outcome::one(Effect::PinClear)
            }
            (Step::Choose, Action::Back) => {
                Outcome::Stay(vec![Effect::PinClear, send(EnrolCommand::Abort)])
            }
            (Step::Choose, Action::Select) => self.insert(self.slot, slots),
            (Step::Choose, Action::Jump(n)) => self.insert(usize::from(n).wrapping_sub(1), slots),
            (Step::Choose, _) => {
                self.slot = super::step_selection(self.slot, slots, action, 5);
                Outcome::none()
            }
            _ => Outcome::none(),
        }
    }

    fn insert(&mut self, slot: usize, slots: usize) -> Outcome {
        if slot >= slots {
            return Outcome::none();
        }
        self.slot = slot;
        self.step = Step::Opening;
        self.notice = None;
        Outcome::one(send(EnrolCommand::Insert(slot)))
    }

    /// Takes the worker's answer.
    pub fn on_event(&mut self, event: EnrolEvent) -> Vec<Effect> {
        self.pin_len = 0;
        let mut step = Step::Choose;
        match event {
            EnrolEvent::Began {
                ceremony,
                set_number,
            } => {
                self.ceremony = Some(ceremony);
                self.set_number = Some(set_number);
                self.phase = Phase::Cards;
            }
            EnrolEvent::Inserted(card) => {
                self.card = Some(card);
                step = Step::Pin;
            }
            EnrolEvent::WrongPin(card) => {
                let text = new_set::wrong_pin_text(&card);
                self.card = Some(card);
                self.notice = Some(Notice::new(Level::Error, text));
                step = Step::Pin;
            }
            EnrolEvent::Added { card, have } => {
                self.added.push(card.name());
                if have >= usize::from(self.n) {
                    step = Step::Working;
                }
                self.card = None;
            }
            EnrolEvent::Registered {
                set_number,
                threshold,
                cards,
            } => {
                self.registered = true;
                self.phase = Phase::Over;
                self.notice = Some(Notice::new(
                    Level::Ok,
                    format!(
                        "The {} is registered as set {set_number}: {threshold} of {} — {}. \
                         Esc goes back.",
                        self.kind.name(),
                        cards.len(),
                        cards.join(", ")
                    ),
                ));
            }
            EnrolEvent::Refused(reason) => {
                if self.phase == Phase::Beginning {
                    self.phase = Phase::Over;
                }
                self.card = None;
                self.notice = Some(Notice::new(Level::Error, reason));
            }
            EnrolEvent::Aborted(text) => {
                self.phase = Phase::Over;
                self.card = None;
                self.notice = Some(Notice::new(Level::Warn, text));
            }
        }
        self.step = step;
        vec![Effect::PinClear]
    }
}

/// The ceremony's steps as shown.
fn steps(flow: &EnrolFlow) -> Vec<String> {
    let mark = |done: bool| if done { "✓" } else { "·" };
    let mut lines = vec![format!(
        "{} 1 Ceremony {} opened for the {}, {} of {}{}",
        mark(flow.ceremony.is_some()),
        flow.ceremony.as_deref().unwrap_or("(not yet)"),
        flow.kind.name(),
        flow.threshold,
        flow.n,
        flow.set_number
            .map(|n| format!(" (set {n})"))
            .unwrap_or_default()
    )];
    let what = match flow.kind {
        SetKind::Pso => "share written, read back and checked; proof signed",
        SetKind::Auditor => "proof of possession signed",
    };
    lines.push(format!(
        "{} 2 Cards {}/{} ({what})",
        mark(flow.added.len() >= usize::from(flow.n)),
        flow.added.len(),
        flow.n
    ));
    for name in &flow.added {
        lines.push(format!("     ✓ {name}"));
    }
    lines.push(format!("{} 3 Registered at the HSM", mark(flow.registered)));
    lines
}

/// Draws the enrolment.
pub fn view(frame: &mut Frame, area: Rect, flow: &EnrolFlow, slots: &[SlotView], theme: &Theme) {
    let mut lines = vec![
        Line::from(
            "Enrol a card set: a PSO set (a fresh recovery secret, one share per card) on a \
             partition without one, or an auditor set. Each card carries its holder's name.",
        ),
        Line::from(""),
    ];
    match flow.phase {
        Phase::Kind => {
            lines.push(Line::styled("Which set?", theme.muted));
            for (i, kind) in [SetKind::Pso, SetKind::Auditor].iter().enumerate() {
                lines.push(view::menu_line(
                    i + 1,
                    kind.name(),
                    *kind == flow.kind,
                    theme,
                ));
            }
        }
        Phase::Size => {
            lines.push(Line::from(format!("Set        {}", flow.kind.name())));
            lines.push(Line::from(format!(
                "Threshold  m = {}  (↑ ↓)",
                flow.threshold
            )));
            lines.push(Line::from(format!("Cards      n = {}  (← →)", flow.n)));
            lines.push(Line::styled("Enter opens the ceremony.", theme.muted));
        }
        _ => {
            lines.extend(steps(flow).into_iter().map(Line::from));
            lines.push(Line::from(""));
            lines.extend(card_lines(flow, slots, theme));
        }
    }
    if let Some(n) = &flow.notice {
        lines.push(Line::from(""));
        lines.push(Line::styled(
            format!("{}: {}", n.level.tag(), n.text),
            view::level_style(n.level, theme),
        ));
    }
    frame.render_widget(
        Paragraph::new(lines)
            .block(view::block("Cards · enrol a set", theme))
            .wrap(Wrap { trim: false }),
        area,
    );
}

fn card_lines(flow: &EnrolFlow, slots: &[SlotView], theme: &Theme) -> Vec<Line<'static>> {
    match (flow.phase, flow.step, &flow.card) {
        (Phase::Beginning, _, _) => vec![Line::styled("Opening the ceremony…", theme.muted)],
        (Phase::Cards, Step::Pin, Some(card)) => new_set::pin_lines(card, flow.pin_len),
        (Phase::Cards, Step::Opening, _) => vec![Line::styled("Reading the card…", theme.muted)],
        (Phase::Cards, Step::Working, _) => {
            vec![Line::styled("The card joins the set…", theme.muted)]
        }
        (Phase::Cards, _, _) => new_set::slot_lines(
            format!(
                "Insert card {} of {} (Esc abandons the ceremony):",
                flow.added.len() + 1,
                flow.n
            ),
            slots,
            flow.slot,
            theme,
        ),
        _ => Vec::new(),
    }
}
