//! Cards: set up a new card. A soft card (`n`): a new sealed soft card file in the terminal's
//! soft card directory (the holder's name, the passphrase twice), which then appears among the
//! slots, ready to enrol. An OpenPGP card in a PC/SC reader (`o`, [`openpgp`]): its keys
//! generated on the card, its holder's name and user PIN set, its admin PIN changed from the
//! one it came with.
//!
//! The passphrase goes through the runtime's zeroizing PIN buffer to the worker, entry by entry
//! ([`NewCardCommand::Entry`]); the model holds the holder's name (not a secret) and counts.

pub mod openpgp;

use quorum::card::Pin;
use quorum::error::QuorumError;
use quorum::pcsc::PcscCard;
use quorum::soft::MIN_PASSPHRASE_CHARS;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Wrap};
use subtle::ConstantTimeEq;

use super::Outcome;
use super::login::card_view;
use crate::tui::keymap::{Action, Context};
use crate::tui::message::{CardView, Command, Effect, Event, PinFor, SlotView};
use crate::tui::model::{Level, Model, Notice};
use crate::tui::theme::Theme;
use crate::tui::view;
use crate::tui::worker::CardReader;

/// The longest holder name, in bytes (as a card stores it).
pub const MAX_HOLDER_BYTES: usize = 64;

/// Where the set-up stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Stage {
    /// Typing the holder's name.
    #[default]
    Holder,
    /// The passphrase.
    Pass,
    /// The passphrase again.
    Again,
    /// The card is made.
    Working,
    /// Done or refused, until Esc.
    Over,
}

/// The set-up's part of the model.
#[derive(Clone, Debug, Default)]
pub struct NewCardFlow {
    /// Where it stands.
    pub stage: Stage,
    /// The holder's name as typed (not a secret: every card shows it before its PIN).
    pub holder: String,
    /// Characters typed into the passphrase and its repetition.
    pub typed: [usize; 2],
    /// The card made.
    pub card: Option<CardView>,
    /// The last result or refusal.
    pub notice: Option<Notice>,
    /// An OpenPGP card's set-up instead of a soft card's.
    pub openpgp: Option<openpgp::OpenPgpFlow>,
}

/// A step of a set-up, for the worker.
#[derive(Debug)]
pub enum NewCardCommand {
    /// A new soft card for this holder: its passphrase comes next.
    Begin {
        /// The holder's name.
        holder: String,
    },
    /// The passphrase, then again (from the zeroizing buffer); the second makes the card.
    Entry(Pin),
    /// Wipe the entries (and let go of an OpenPGP card).
    Forget,
    /// Open the OpenPGP card in this slot for a set-up; its holder comes next
    /// ([`NewCardCommand::Begin`]), then five entries: its admin PIN, the new admin PIN twice,
    /// the user PIN twice.
    Open {
        /// The reader's slot.
        slot: usize,
    },
}

impl PartialEq for NewCardCommand {
    fn eq(&self, other: &Self) -> bool {
        use NewCardCommand::*;
        match (self, other) {
            (Begin { holder: a }, Begin { holder: b }) => a == b,
            (Open { slot: a }, Open { slot: b }) => a == b,
            // Two passphrases are never compared here.
            (Entry(_), Entry(_)) | (Forget, Forget) => true,
            _ => false,
        }
    }
}

impl Eq for NewCardCommand {}

/// The worker's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NewCardEvent {
    /// The card is made.
    Made {
        /// The new card.
        card: CardView,
        /// Where its file is.
        path: String,
        /// The slots now (the new card among them).
        slots: Vec<SlotView>,
    },
    /// The passphrase was refused (the entries differ, or too short): type it again, twice.
    Refused(String),
    /// It could not be made: why (nothing was written), or an OpenPGP set-up stopped: what
    /// was and was not changed.
    Failed(String),
    /// The OpenPGP card is open.
    Opened(openpgp::OpenedCard),
    /// A new PIN of an OpenPGP set-up was refused before the card was touched: type it again.
    Retype {
        /// The PIN asked again (and every field after it).
        field: openpgp::Retype,
        /// Why.
        text: String,
    },
    /// The card's admin PIN was wrong, with tries left: nothing changed.
    WrongAdmin {
        /// The card, with its tries now.
        card: openpgp::OpenedCard,
        /// What was wrong.
        text: String,
    },
    /// The OpenPGP card is set up.
    SetUp {
        /// The card now.
        card: openpgp::OpenedCard,
        /// Its keys, as the card reported them.
        keys: Box<openpgp::KeysView>,
        /// What was done.
        text: String,
    },
}

fn send(command: NewCardCommand) -> Effect {
    Effect::Send(Command::NewCard(command))
}

impl NewCardFlow {
    /// An OpenPGP card's set-up, at the choice of its reader.
    pub fn openpgp() -> NewCardFlow {
        NewCardFlow {
            openpgp: Some(openpgp::OpenPgpFlow::default()),
            ..NewCardFlow::default()
        }
    }

    /// How keys read here.
    pub fn context(&self) -> Context {
        if let Some(flow) = &self.openpgp {
            return flow.context();
        }
        match self.stage {
            Stage::Holder | Stage::Pass | Stage::Again => Context::Text,
            _ => Context::Tables(&[crate::tui::keymap::GLOBAL]),
        }
    }

    /// Answers a key; `slots` is how many card slots there are (an OpenPGP set-up chooses
    /// one).
    pub fn on_action(&mut self, action: Action, slots: usize) -> Outcome {
        if let Some(flow) = &mut self.openpgp {
            let outcome = flow.on_action(action, slots);
            if matches!(outcome, Outcome::Leave(_)) {
                *self = NewCardFlow::default();
            }
            return outcome;
        }
        match (self.stage, action) {
            (Stage::Holder, Action::Input(c))
                if self.holder.len() + c.len_utf8() <= MAX_HOLDER_BYTES && !c.is_control() =>
            {
                self.holder.push(c);
                Outcome::none()
            }
            (Stage::Holder, Action::Erase) => {
                self.holder.pop();
                Outcome::none()
            }
            (Stage::Holder, Action::Select) if !self.holder.trim().is_empty() => {
                self.stage = Stage::Pass;
                self.notice = None;
                Outcome::Stay(vec![
                    Effect::PinClear,
                    send(NewCardCommand::Begin {
                        holder: self.holder.trim().to_owned(),
                    }),
                ])
            }
            (Stage::Pass | Stage::Again, _) => self.on_entry(action),
            (Stage::Working, _) => Outcome::none(),
            (_, Action::Back) => {
                *self = NewCardFlow::default();
                Outcome::Leave(vec![Effect::PinClear, send(NewCardCommand::Forget)])
            }
            _ => Outcome::none(),
        }
    }

    fn on_entry(&mut self, action: Action) -> Outcome {
        let field = usize::from(self.stage == Stage::Again);
        if let Some(typed) = super::pin_typing(&mut self.typed[field], action) {
            return typed;
        }
        match action {
            Action::Select if self.typed[field] > 0 => {
                self.stage = if field == 0 {
                    Stage::Again
                } else {
                    Stage::Working
                };
                Outcome::one(Effect::SubmitPin(PinFor::NewCard))
            }
            Action::Back => {
                *self = NewCardFlow {
                    holder: std::mem::take(&mut self.holder),
                    notice: Some(Notice::new(Level::Warn, "Abandoned: no card was made.")),
                    ..NewCardFlow::default()
                };
                Outcome::Stay(vec![Effect::PinClear, send(NewCardCommand::Forget)])
            }
            _ => Outcome::none(),
        }
    }

    fn take(&mut self, event: NewCardEvent) -> Option<Vec<SlotView>> {
        if let Some(flow) = &mut self.openpgp {
            flow.take(event);
            return None;
        }
        self.typed = [0; 2];
        match event {
            NewCardEvent::Made { card, path, slots } => {
                self.notice = Some(Notice::new(
                    Level::Ok,
                    format!(
                        "{} is made ({path}): new keys, no share yet. Enrol it in a set, or \
                         bring it into one with a re-share. Esc goes back.",
                        card.name()
                    ),
                ));
                self.card = Some(card);
                self.stage = Stage::Over;
                Some(slots)
            }
            NewCardEvent::Refused(text) => {
                self.stage = Stage::Pass;
                self.notice = Some(Notice::new(Level::Error, text));
                None
            }
            NewCardEvent::Failed(text) => {
                self.stage = Stage::Over;
                self.notice = Some(Notice::new(Level::Error, text));
                None
            }
            // An OpenPGP set-up's answers: not this soft card's.
            _ => None,
        }
    }
}

/// Takes the worker's answer: a new card joins the slots.
pub fn on_event(model: &mut Model, event: NewCardEvent) -> Vec<Effect> {
    if let Some(slots) = model.newcard.take(event) {
        model.login.slots = slots;
    }
    vec![Effect::PinClear]
}

/// Draws the set-up.
pub fn view(frame: &mut Frame, area: Rect, flow: &NewCardFlow, slots: &[SlotView], theme: &Theme) {
    if let Some(flow) = &flow.openpgp {
        let mut lines = openpgp::lines(flow, slots, theme);
        notice_lines(&mut lines, flow.notice.as_ref(), theme);
        frame.render_widget(
            Paragraph::new(lines)
                .block(view::block("Cards · set up an OpenPGP card", theme))
                .wrap(Wrap { trim: false }),
            area,
        );
        return;
    }
    let mut lines = vec![
        Line::from(
            "Set up a new soft card: new keys sealed under a passphrase, in the terminal's soft \
             card directory. A soft card has no retry counter: choose a long passphrase.",
        ),
        Line::from(""),
    ];
    let cursor = |on: bool| if on { "▏" } else { "" };
    lines.push(Line::from(format!(
        "Holder          {}{}",
        flow.holder,
        cursor(flow.stage == Stage::Holder)
    )));
    for (i, label) in ["Passphrase", "Again"].iter().enumerate() {
        let on = (i == 0 && flow.stage == Stage::Pass) || (i == 1 && flow.stage == Stage::Again);
        lines.push(Line::from(format!(
            "{label:<15} {}{}",
            "•".repeat(flow.typed[i].min(40)),
            cursor(on)
        )));
    }
    lines.push(Line::from(""));
    lines.push(Line::styled(
        match flow.stage {
            Stage::Holder => "Type the holder's name, then Enter.".to_owned(),
            Stage::Working => "Making the card (new keys, the passphrase stretched)…".to_owned(),
            Stage::Over => String::new(),
            _ => format!("A passphrase has at least {MIN_PASSPHRASE_CHARS} characters."),
        },
        theme.muted,
    ));
    notice_lines(&mut lines, flow.notice.as_ref(), theme);
    frame.render_widget(
        Paragraph::new(lines)
            .block(view::block("Cards · set up a new card", theme))
            .wrap(Wrap { trim: false }),
        area,
    );
}

fn notice_lines(lines: &mut Vec<Line<'_>>, notice: Option<&Notice>, theme: &Theme) {
    if let Some(n) = notice {
        lines.push(Line::from(""));
        lines.push(Line::styled(
            format!("{}: {}", n.level.tag(), n.text),
            view::level_style(n.level, theme),
        ));
    }
}

/// The worker's side: the holder, the entries so far (wiped when dropped), and the OpenPGP
/// card being set up with its slot.
#[derive(Default)]
pub struct NewCardWork {
    holder: Option<String>,
    entries: Vec<Pin>,
    card: Option<PcscCard>,
    slot: usize,
}

/// Runs one step on the worker. The first entry answers nothing.
pub fn work(
    reader: &mut dyn CardReader,
    state: &mut NewCardWork,
    command: NewCardCommand,
) -> Vec<Event> {
    let event = match command {
        NewCardCommand::Begin { holder } => {
            // An OpenPGP card opened for this set-up stays open.
            *state = NewCardWork {
                holder: Some(holder),
                entries: Vec::new(),
                card: state.card.take(),
                slot: state.slot,
            };
            return Vec::new();
        }
        NewCardCommand::Open { slot } => return vec![openpgp::open(reader, state, slot)],
        NewCardCommand::Entry(pin) if state.card.is_some() => {
            return openpgp::entry(reader, state, pin);
        }
        NewCardCommand::Forget => {
            *state = NewCardWork::default();
            return Vec::new();
        }
        NewCardCommand::Entry(pin) => {
            state.entries.push(pin);
            if state.entries.len() < 2 {
                return Vec::new();
            }
            make(reader, state)
        }
    };
    vec![Event::NewCard(event)]
}

fn make(reader: &mut dyn CardReader, state: &mut NewCardWork) -> NewCardEvent {
    let entries = std::mem::take(&mut state.entries);
    let (Ok([pass, again]), Some(holder)) = (<[Pin; 2]>::try_from(entries), state.holder.clone())
    else {
        *state = NewCardWork::default();
        return NewCardEvent::Failed("type the holder's name first".to_owned());
    };
    if !bool::from(pass.expose().ct_eq(again.expose())) {
        return NewCardEvent::Refused(
            "The two entries differ: type the passphrase again, twice. No card was made."
                .to_owned(),
        );
    }
    match reader.create_soft_card(&holder, &pass) {
        Ok((info, path)) => {
            *state = NewCardWork::default();
            NewCardEvent::Made {
                card: card_view(&info),
                path: path.display().to_string(),
                slots: reader.slots(),
            }
        }
        Err(NewCardError::Passphrase(text)) => {
            NewCardEvent::Refused(format!("{text}. No card was made."))
        }
        Err(NewCardError::Other(text)) => {
            *state = NewCardWork::default();
            NewCardEvent::Failed(format!("{text}. No card was made."))
        }
    }
}

/// Why a reader made no card.
#[derive(Debug)]
pub enum NewCardError {
    /// The passphrase is not acceptable: type another.
    Passphrase(String),
    /// Anything else.
    Other(String),
}

impl From<QuorumError> for NewCardError {
    fn from(e: QuorumError) -> Self {
        match e {
            e @ QuorumError::WeakPassphrase { .. } => NewCardError::Passphrase(e.to_string()),
            e => NewCardError::Other(e.to_string()),
        }
    }
}
