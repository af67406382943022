//! Cards: set up a new card. A soft card: a new sealed soft card file in the terminal's soft
//! card directory (the holder's name, the passphrase twice), which then appears among the
//! slots, ready to enrol. An OpenPGP card ([`set_up_openpgp_card`]): its holder name set, its
//! keys generated on the card, its admin PIN changed from the one it came with.
//!
//! The passphrase goes through the runtime's zeroizing PIN buffer to the worker, entry by entry
//! ([`NewCardCommand::Entry`]); the model holds the holder's name (not a secret) and counts.

use quorum::card::Pin;
use quorum::error::QuorumError;
use quorum::pcsc::{GeneratedKeys, PcscCard};
use quorum::soft::MIN_PASSPHRASE_CHARS;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Wrap};
use subtle::ConstantTimeEq;

use super::Outcome;
use super::login::{MAX_PIN_CHARS, card_view};
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
    /// Wipe the entries.
    Forget,
}

impl PartialEq for NewCardCommand {
    fn eq(&self, other: &Self) -> bool {
        use NewCardCommand::*;
        match (self, other) {
            (Begin { holder: a }, Begin { holder: b }) => a == b,
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
    /// It could not be made: why (nothing was written).
    Failed(String),
}

fn send(command: NewCardCommand) -> Effect {
    Effect::Send(Command::NewCard(command))
}

impl NewCardFlow {
    /// How keys read here.
    pub fn context(&self) -> Context {
        match self.stage {
            Stage::Holder | Stage::Pass | Stage::Again => Context::Text,
            _ => Context::Tables(&[crate::tui::keymap::GLOBAL]),
        }
    }

    /// Answers a key.
    pub fn on_action(&mut self, action: Action) -> Outcome {
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
        match action {
            Action::Input(c) if self.typed[field] < MAX_PIN_CHARS => {
                self.typed[field] += 1;
                Outcome::one(Effect::PinPush(c))
            }
            Action::Erase if self.typed[field] > 0 => {
                self.typed[field] -= 1;
                Outcome::one(Effect::PinPop)
            }
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
pub fn view(frame: &mut Frame, area: Rect, flow: &NewCardFlow, theme: &Theme) {
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
    if let Some(n) = &flow.notice {
        lines.push(Line::from(""));
        lines.push(Line::styled(
            format!("{}: {}", n.level.tag(), n.text),
            view::level_style(n.level, theme),
        ));
    }
    frame.render_widget(
        Paragraph::new(lines)
            .block(view::block("Cards · set up a new card", theme))
            .wrap(Wrap { trim: false }),
        area,
    );
}

/// The worker's side: the holder and the entries so far (wiped when dropped).
#[derive(Default)]
pub struct NewCardWork {
    holder: Option<String>,
    entries: Vec<Pin>,
}

/// Runs one step on the worker. The first entry answers nothing.
pub fn work(
    reader: &mut dyn CardReader,
    state: &mut NewCardWork,
    command: NewCardCommand,
) -> Vec<Event> {
    let event = match command {
        NewCardCommand::Begin { holder } => {
            *state = NewCardWork {
                holder: Some(holder),
                entries: Vec::new(),
            };
            return Vec::new();
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

/// What [`set_up_openpgp_card`] made.
#[derive(Debug)]
pub struct OpenPgpSetUp {
    /// The card, opened again after administration (unverified).
    pub card: PcscCard,
    /// Its keys, generated on the card.
    pub keys: GeneratedKeys,
}

/// Sets up an OpenPGP card for enrolment: with its current admin PIN (the factory default on a
/// new card), sets the holder's name, generates the Ed25519 and X25519 keys **on the card**,
/// then changes the admin PIN to `new_admin_pin` (the factory default refused), and hands the
/// card back reset (the admin PIN forgotten). A wrong admin PIN gives the card back untouched
/// with its tries left. The user PIN is the holder's business ([`super::pin`]).
#[expect(
    clippy::result_large_err,
    reason = "the shape of PcscCard::admin: a refusal gives the card back, once per set-up"
)]
pub fn set_up_openpgp_card(
    card: PcscCard,
    admin_pin: &Pin,
    new_admin_pin: &Pin,
    holder: &str,
) -> Result<OpenPgpSetUp, (Option<PcscCard>, QuorumError)> {
    let mut admin = card
        .admin(admin_pin)
        .map_err(|(c, e)| (Some(c), e.into()))?;
    let steps = admin
        .set_holder(holder)
        .and_then(|()| admin.generate_keys())
        .and_then(|keys| admin.change_admin_pin(new_admin_pin).map(|()| keys));
    let reopened = admin.finish();
    match (steps, reopened) {
        (Ok(keys), Ok(card)) => Ok(OpenPgpSetUp { card, keys }),
        (Err(e), card) => Err((card.ok(), e)),
        (Ok(_), Err(e)) => Err((None, e.into())),
    }
}
