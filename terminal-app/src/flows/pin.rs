//! Cards: change a card's PIN, or unblock it. No login is needed: the PIN is the card's
//! business, checked by the card (or, for a soft card, by its sealed file), never by the HSM.
//!
//! Change: the card's slot, its PIN, the new PIN twice. Unblock: the card's slot, what unblocks
//! it (an OpenPGP card's resetting code if it has one with tries left, else its admin PIN; a
//! soft card has neither and says so), the new PIN twice.
//!
//! Each entry goes through the runtime's zeroizing PIN buffer to the worker
//! ([`PinCommand::Entry`]), which keeps the entries of this change until it runs it (and wipes
//! them then, or when another card is chosen); the model only counts the characters typed.

use quorum::card::{CardInfo, Pin};
use quorum::error::{CardError, QuorumError};
use quorum::pcsc::PcscCard;
use quorum::soft::{MIN_PASSPHRASE_CHARS, SOFT_CARD_UNBLOCK, SoftCard};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Wrap};
use subtle::ConstantTimeEq;

use super::Outcome;
use super::login::card_view;
use crate::tui::keymap::{self, Action, Context};
use crate::tui::message::{CardView, Command, Effect, Event, PinFor, SlotView};
use crate::tui::model::{Level, Notice};
use crate::tui::theme::Theme;
use crate::tui::view;
use crate::tui::worker::CardReader;

/// What is done to the card's PIN.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// A new PIN, with the old one.
    #[default]
    Change,
    /// A new PIN, with the resetting code or the admin PIN.
    Unblock,
}

/// What unblocks a card's PIN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unblocker {
    /// An OpenPGP card's resetting code, with its tries left.
    ResetCode(u8),
    /// An OpenPGP card's admin PIN, with its tries left.
    AdminPin(u8),
}

impl Unblocker {
    /// The secret's name as the field shows it.
    pub fn label(self) -> &'static str {
        match self {
            Unblocker::ResetCode(_) => "Resetting code",
            Unblocker::AdminPin(_) => "Admin PIN",
        }
    }

    fn tries(self) -> u8 {
        match self {
            Unblocker::ResetCode(n) | Unblocker::AdminPin(n) => n,
        }
    }
}

/// Where the screen stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Stage {
    /// Choosing the card (and the mode).
    #[default]
    Choose,
    /// The worker opens the card.
    Opening,
    /// The card's PIN, or the resetting code / admin PIN.
    Old,
    /// The new PIN.
    New,
    /// The new PIN again.
    Again,
    /// The card changes its PIN.
    Working,
}

/// The PIN screen's part of the model: no PIN, only the counts of what was typed.
#[derive(Clone, Debug, Default)]
pub struct PinFlow {
    /// Where it stands.
    pub stage: Stage,
    /// Change or unblock.
    pub mode: Mode,
    /// The selected slot.
    pub slot: usize,
    /// The card, once opened.
    pub card: Option<CardView>,
    /// What unblocks it (in [`Mode::Unblock`]).
    pub unblocker: Option<Unblocker>,
    /// Characters typed into each field: old (or code), new, again.
    pub typed: [usize; 3],
    /// The last result or refusal.
    pub notice: Option<Notice>,
}

impl PinFlow {
    /// How keys read here.
    pub fn context(&self) -> Context {
        match self.stage {
            Stage::Old | Stage::New | Stage::Again => Context::Text,
            Stage::Choose => Context::Tables(&[
                keymap::NAVIGATION,
                keymap::MENU,
                keymap::PIN,
                keymap::GLOBAL,
            ]),
            _ => Context::Tables(&[keymap::GLOBAL]),
        }
    }

    fn field(&self) -> Option<usize> {
        match self.stage {
            Stage::Old => Some(0),
            Stage::New => Some(1),
            Stage::Again => Some(2),
            _ => None,
        }
    }

    /// Answers a key; `slots` is how many card slots there are.
    pub fn on_action(&mut self, action: Action, slots: usize) -> Outcome {
        if let Some(field) = self.field() {
            return self.on_entry(field, action);
        }
        match (self.stage, action) {
            (Stage::Choose, Action::Select) => self.open(self.slot, Mode::Change, slots),
            (Stage::Choose, Action::Jump(n)) => {
                self.open(usize::from(n).wrapping_sub(1), Mode::Change, slots)
            }
            (Stage::Choose, Action::Unblock) => self.open(self.slot, Mode::Unblock, slots),
            (Stage::Working, _) => Outcome::none(),
            (_, Action::Back) => {
                *self = PinFlow::default();
                Outcome::Leave(vec![
                    Effect::PinClear,
                    Effect::Send(Command::Pin(PinCommand::Forget)),
                ])
            }
            (Stage::Choose, _) => {
                self.slot = super::step_selection(self.slot, slots, action, 5);
                Outcome::none()
            }
            _ => Outcome::none(),
        }
    }

    fn on_entry(&mut self, field: usize, action: Action) -> Outcome {
        if let Some(typed) = crate::flows::pin_typing(&mut self.typed[field], action) {
            return typed;
        }
        match action {
            Action::Select if self.typed[field] > 0 => {
                self.stage = match self.stage {
                    Stage::Old => Stage::New,
                    Stage::New => Stage::Again,
                    _ => Stage::Working,
                };
                self.notice = None;
                Outcome::one(Effect::SubmitPin(PinFor::Pin))
            }
            Action::Back => {
                let slot = self.slot;
                *self = PinFlow {
                    slot,
                    notice: Some(Notice::new(
                        Level::Warn,
                        "Abandoned: the card's PIN was not changed.",
                    )),
                    ..PinFlow::default()
                };
                Outcome::Stay(vec![
                    Effect::PinClear,
                    Effect::Send(Command::Pin(PinCommand::Forget)),
                ])
            }
            _ => Outcome::none(),
        }
    }

    fn open(&mut self, slot: usize, mode: Mode, slots: usize) -> Outcome {
        if slot >= slots {
            return Outcome::none();
        }
        *self = PinFlow {
            stage: Stage::Opening,
            mode,
            slot,
            ..PinFlow::default()
        };
        Outcome::Stay(vec![
            Effect::PinClear,
            Effect::Send(Command::Pin(PinCommand::Open { slot, mode })),
        ])
    }

    /// Takes the worker's answer.
    pub fn on_event(&mut self, event: PinEvent) -> Vec<Effect> {
        let (stage, notice) = match event {
            PinEvent::Opened { card, unblocker } => {
                self.card = Some(card);
                self.unblocker = unblocker;
                (Stage::Old, None)
            }
            PinEvent::WrongOld { card, text } => {
                self.card = Some(card);
                self.typed = [0; 3];
                (Stage::Old, Some(Notice::new(Level::Error, text)))
            }
            PinEvent::NewRefused(text) => {
                self.typed[1] = 0;
                self.typed[2] = 0;
                (Stage::New, Some(Notice::new(Level::Error, text)))
            }
            PinEvent::Done { card, text } => {
                self.card = Some(card);
                (Stage::Choose, Some(Notice::new(Level::Ok, text)))
            }
            PinEvent::Failed(text) => (Stage::Choose, Some(Notice::new(Level::Error, text))),
        };
        if stage == Stage::Choose {
            self.card = None;
            self.unblocker = None;
            self.typed = [0; 3];
        }
        self.stage = stage;
        self.notice = notice;
        vec![Effect::PinClear]
    }

    fn pin_word(&self) -> &'static str {
        match &self.card {
            Some(card) if card.soft => "passphrase",
            _ => "PIN",
        }
    }
}

/// A step of a PIN change or unblock, for the worker.
#[derive(Debug)]
pub enum PinCommand {
    /// Open the card in this slot, for a change or an unblock.
    Open {
        /// The slot.
        slot: usize,
        /// Change or unblock.
        mode: Mode,
    },
    /// The next entry (old PIN or code, new PIN, new PIN again) from the zeroizing buffer; the
    /// third runs the change.
    Entry(Pin),
    /// Wipe the entries and let go of the card.
    Forget,
}

impl PartialEq for PinCommand {
    fn eq(&self, other: &Self) -> bool {
        use PinCommand::*;
        match (self, other) {
            (Open { slot: a, mode: b }, Open { slot: c, mode: d }) => a == c && b == d,
            // Two PINs are never compared here.
            (Entry(_), Entry(_)) | (Forget, Forget) => true,
            _ => false,
        }
    }
}

impl Eq for PinCommand {}

/// The worker's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PinEvent {
    /// The card is open: its PIN (or what unblocks it) next.
    Opened {
        /// The card.
        card: CardView,
        /// What unblocks it, in an unblock.
        unblocker: Option<Unblocker>,
    },
    /// The old PIN, resetting code or admin PIN was wrong: nothing changed.
    WrongOld {
        /// The card, with its tries left.
        card: CardView,
        /// What was wrong, and the tries left.
        text: String,
    },
    /// The new PIN was refused (the two entries differ, or the card does not accept it):
    /// nothing changed.
    NewRefused(String),
    /// The PIN is changed.
    Done {
        /// The card, with its tries left.
        card: CardView,
        /// What was done.
        text: String,
    },
    /// It could not run: why, and that nothing changed.
    Failed(String),
}

/// Draws the PIN screen.
pub fn view(frame: &mut Frame, area: Rect, flow: &PinFlow, slots: &[SlotView], theme: &Theme) {
    let word = flow.pin_word();
    let mut lines = vec![
        Line::from(
            "A card's PIN is the card's business: no login is needed. A smartcard counts wrong \
             PINs and blocks; a soft card's passphrase seals its file and has no counter.",
        ),
        Line::from(""),
    ];
    match flow.stage {
        Stage::Choose => {
            lines.push(Line::styled(
                "Choose the card: Enter changes its PIN, u unblocks it.",
                theme.muted,
            ));
            for (i, slot) in slots.iter().enumerate() {
                lines.push(view::menu_line(i + 1, &slot.label, i == flow.slot, theme));
            }
        }
        Stage::Opening => lines.push(Line::styled("Reading the card…", theme.muted)),
        _ => {
            if let Some(card) = &flow.card {
                lines.push(Line::from(format!("Card      {}", card.name())));
                let tries = match card.tries_left {
                    Some(0) => "blocked (no try left)".to_owned(),
                    _ => card.tries_text(),
                };
                lines.push(Line::from(format!("Tries     {tries}")));
            }
            let old = match (flow.mode, flow.unblocker) {
                (Mode::Unblock, Some(u)) => {
                    lines.push(Line::from(format!(
                        "Unblock   with the {} ({} tries left)",
                        u.label().to_lowercase(),
                        u.tries()
                    )));
                    u.label().to_owned()
                }
                _ => format!("Old {word}"),
            };
            let fields = [old, format!("New {word}"), "Again".to_owned()];
            lines.push(Line::from(""));
            for (i, label) in fields.iter().enumerate() {
                let cursor = if flow.field() == Some(i) { "▏" } else { "" };
                lines.push(Line::from(format!(
                    "{label:<15} {}{cursor}",
                    "•".repeat(flow.typed[i].min(40))
                )));
            }
            if flow.stage == Stage::Working {
                lines.push(Line::from(""));
                lines.push(Line::styled("The card changes its PIN…", theme.muted));
            } else if flow.card.as_ref().is_some_and(|c| c.soft) {
                lines.push(Line::from(""));
                lines.push(Line::styled(
                    format!("A passphrase has at least {MIN_PASSPHRASE_CHARS} characters."),
                    theme.muted,
                ));
            }
        }
    }
    if let Some(n) = &flow.notice {
        lines.push(Line::from(""));
        lines.push(Line::styled(
            format!("{}: {}", n.level.tag(), n.text),
            view::level_style(n.level, theme),
        ));
    }
    let title = match flow.mode {
        Mode::Change => "Cards · change a PIN",
        Mode::Unblock => "Cards · unblock a PIN",
    };
    frame.render_widget(
        Paragraph::new(lines)
            .block(view::block(title, theme))
            .wrap(Wrap { trim: false }),
        area,
    );
}

/// A card whose PIN can be changed: the kind-specific face the worker needs beside
/// [`crate::tui::worker::InsertedCard`].
pub trait PinCard: Send {
    /// Who the card belongs to, with its tries left.
    fn info(&self) -> CardInfo;
    /// Changes the PIN from `old` to `new`.
    fn change_pin(&mut self, old: &Pin, new: &Pin) -> Result<(), QuorumError>;
    /// What unblocks this card's PIN, or why nothing does.
    fn unblocker(&mut self) -> Result<Unblocker, String>;
    /// Sets the PIN to `new` with `code` (what [`PinCard::unblocker`] named) and unblocks it.
    fn unblock(&mut self, code: &Pin, new: &Pin) -> Result<(), QuorumError>;
}

impl PinCard for SoftCard {
    fn info(&self) -> CardInfo {
        quorum::card::Card::info(self)
    }

    fn change_pin(&mut self, old: &Pin, new: &Pin) -> Result<(), QuorumError> {
        self.change_passphrase(old, new)
    }

    fn unblocker(&mut self) -> Result<Unblocker, String> {
        Err(SOFT_CARD_UNBLOCK.to_owned())
    }

    fn unblock(&mut self, _: &Pin, _: &Pin) -> Result<(), QuorumError> {
        Err(QuorumError::Card(CardError::Backend(
            SOFT_CARD_UNBLOCK.to_owned(),
        )))
    }
}

/// An OpenPGP card over PC/SC, for a PIN change or an unblock (the admin PIN's path takes the
/// card and gives it back).
pub struct OpenPgpPinCard(Option<PcscCard>);

impl OpenPgpPinCard {
    /// Wraps an opened card.
    pub fn new(card: PcscCard) -> OpenPgpPinCard {
        OpenPgpPinCard(Some(card))
    }

    fn card(&mut self) -> Result<&mut PcscCard, QuorumError> {
        self.0.as_mut().ok_or_else(|| {
            QuorumError::Card(CardError::Backend(
                "the card was let go after a failure: choose it again".to_owned(),
            ))
        })
    }
}

impl PinCard for OpenPgpPinCard {
    fn info(&self) -> CardInfo {
        match &self.0 {
            Some(card) => quorum::card::Card::info(card),
            None => CardInfo {
                holder: None,
                serial: "?".to_owned(),
                signing_public: [0; 32],
                decryption_public: [0; 32],
                soft: false,
                pin_retries_left: None,
            },
        }
    }

    fn change_pin(&mut self, old: &Pin, new: &Pin) -> Result<(), QuorumError> {
        Ok(self.card()?.change_user_pin(old, new)?)
    }

    fn unblocker(&mut self) -> Result<Unblocker, String> {
        let card = self.card().map_err(|e| e.to_string())?;
        match card.reset_code_retries_left() {
            Ok(n) if n > 0 => Ok(Unblocker::ResetCode(n)),
            Ok(_) => match card.admin_pin_retries_left() {
                0 => Err(
                    "the card has no resetting code and its admin PIN is blocked: only a \
                          factory reset (which erases its keys and share) helps; revoke the \
                          card"
                        .to_owned(),
                ),
                n => Ok(Unblocker::AdminPin(n)),
            },
            Err(e) => Err(e.to_string()),
        }
    }

    fn unblock(&mut self, code: &Pin, new: &Pin) -> Result<(), QuorumError> {
        match self
            .unblocker()
            .map_err(|e| QuorumError::Card(CardError::Backend(e)))?
        {
            Unblocker::ResetCode(_) => Ok(self.card()?.unblock_user_pin(code, new)?),
            Unblocker::AdminPin(_) => {
                let card = self.0.take().ok_or(CardError::Removed)?;
                let mut admin = match card.admin(code) {
                    Ok(admin) => admin,
                    Err((card, e)) => {
                        self.0 = Some(card);
                        return Err(e.into());
                    }
                };
                let set = admin.set_user_pin(new);
                self.0 = Some(admin.finish()?);
                set
            }
        }
    }
}

/// The worker's side: the open card and the entries typed so far (wiped when dropped).
#[derive(Default)]
pub struct PinWork {
    card: Option<Box<dyn PinCard>>,
    /// The card's slot, whose count is shown anew after each try.
    slot: usize,
    mode: Mode,
    unblocker: Option<Unblocker>,
    entries: Vec<Pin>,
}

/// Runs one step on the worker. An entry before the third answers nothing; the third also
/// reports the card readers when the slot's count changed (the card reads it again after each
/// try, and the poll would not: a PIN leaves the card's ATR as it was).
pub fn work(reader: &mut dyn CardReader, state: &mut PinWork, command: PinCommand) -> Vec<Event> {
    let event = match command {
        PinCommand::Forget => {
            *state = PinWork::default();
            return Vec::new();
        }
        PinCommand::Open { slot, mode } => {
            *state = PinWork::default();
            open(reader, state, slot, mode)
        }
        PinCommand::Entry(pin) => {
            if state.card.is_none() {
                return vec![Event::Pin(PinEvent::Failed(
                    "no card is open: choose one first".to_owned(),
                ))];
            }
            state.entries.push(pin);
            if state.entries.len() < 3 {
                return Vec::new();
            }
            let slot = state.slot;
            let (event, after) = run(state);
            let readers = after.and_then(|info| reader.card_changed(slot, &info));
            let mut events = vec![Event::Pin(event)];
            events.extend(readers.map(Event::Readers));
            return events;
        }
    };
    vec![Event::Pin(event)]
}

fn open(reader: &mut dyn CardReader, state: &mut PinWork, slot: usize, mode: Mode) -> PinEvent {
    let mut card = match reader.pin_card(slot) {
        Ok(card) => card,
        Err(reason) => return PinEvent::Failed(reason),
    };
    let view = card_view(&card.info());
    let unblocker = match mode {
        Mode::Change => None,
        Mode::Unblock => match card.unblocker() {
            Ok(u) => Some(u),
            Err(why) => {
                return PinEvent::Failed(format!("{} cannot be unblocked: {why}", view.name()));
            }
        },
    };
    state.card = Some(card);
    state.slot = slot;
    state.mode = mode;
    state.unblocker = unblocker;
    PinEvent::Opened {
        card: view,
        unblocker,
    }
}

/// Runs the change with the three entries, and wipes them. Also the card as it reported itself
/// after trying (none when the card was not tried).
fn run(state: &mut PinWork) -> (PinEvent, Option<CardInfo>) {
    let entries = std::mem::take(&mut state.entries);
    let (Ok([old, new, again]), Some(card)) = (<[Pin; 3]>::try_from(entries), state.card.as_mut())
    else {
        *state = PinWork::default();
        return (
            PinEvent::Failed("no card is open: choose one first".to_owned()),
            None,
        );
    };
    if !bool::from(new.expose().ct_eq(again.expose())) {
        // Keep the old entry: only the new PIN is asked again.
        state.entries.push(old);
        return (
            PinEvent::NewRefused(
                "The two new entries differ: type the new PIN again, twice. Nothing was changed."
                    .to_owned(),
            ),
            None,
        );
    }
    let result = match state.mode {
        Mode::Change => card.change_pin(&old, &new),
        Mode::Unblock => card.unblock(&old, &new),
    };
    let info = card.info();
    let view = card_view(&info);
    (outcome(state, result, view, old), Some(info))
}

/// What a tried change or unblock comes to.
fn outcome(
    state: &mut PinWork,
    result: Result<(), QuorumError>,
    view: CardView,
    old: Pin,
) -> PinEvent {
    let what = match (state.mode, state.unblocker) {
        (Mode::Unblock, Some(u)) => u.label().to_lowercase(),
        _ if view.soft => "passphrase".to_owned(),
        _ => "PIN".to_owned(),
    };
    match result {
        Ok(()) => {
            let verb = match state.mode {
                Mode::Change => "changed",
                Mode::Unblock => "unblocked and set anew",
            };
            *state = PinWork::default();
            PinEvent::Done {
                text: format!(
                    "The PIN of {} is {verb} ({}). Its share and keys are unchanged.",
                    view.name(),
                    view.tries_text()
                ),
                card: view,
            }
        }
        Err(QuorumError::Card(CardError::WrongPin { retries_left })) if retries_left != Some(0) => {
            let tries = match retries_left {
                Some(1) => "1 try left".to_owned(),
                Some(n) => format!("{n} tries left"),
                None if view.soft => "a soft card has no retry counter".to_owned(),
                None => "tries left not reported".to_owned(),
            };
            PinEvent::WrongOld {
                text: format!(
                    "Wrong {what} for {} ({tries}): nothing was changed.",
                    view.name()
                ),
                card: view,
            }
        }
        Err(e @ QuorumError::WeakPassphrase { .. }) => {
            state.entries.push(old);
            PinEvent::NewRefused(format!("{e}. Nothing was changed."))
        }
        // The card's length rules: the old entry or the new one; both are asked again.
        Err(QuorumError::Card(e @ CardError::PinFormat { .. })) => PinEvent::WrongOld {
            text: format!("{e}: type them again. Nothing was changed."),
            card: view,
        },
        Err(e) => {
            *state = PinWork::default();
            PinEvent::Failed(format!("{}: {e}. Nothing was changed.", view.name()))
        }
    }
}
