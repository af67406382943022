//! Cards: set up an OpenPGP card through PC/SC. The reader is chosen; the card shows its serial
//! and whether it is factory-fresh (a card that holds keys asks for its serial typed before
//! they are replaced); then the holder's name, the card's current admin PIN, the new admin PIN
//! twice and the holder's user PIN twice. The card generates its keys itself
//! ([`quorum::setup::prepare`]: keys, holder, user PIN, and last the admin PIN, so a failure
//! part-way leaves the card reachable with the admin PIN it came with); its public keys and
//! fingerprints are shown at the end.
//!
//! Each PIN goes through the runtime's zeroizing PIN buffer to the worker
//! ([`NewCardCommand::Entry`]); the model holds the counts of what was typed, never a PIN.

use quorum::card::{Card, Pin};
use quorum::error::{CardError, QuorumError};
use quorum::pcsc::{GeneratedKeys, MAX_CARD_HOLDER_LEN, PcscCard};
use quorum::setup::{CardSetup, NewPin, PinRole, SETUP_STEPS, SetupFailed, prepare};
use ratatui::text::Line;

use super::super::Outcome;
use super::super::login::card_view;
use super::{NewCardCommand, NewCardEvent, NewCardWork, send};
use crate::tui::keymap::{self, Action, Context};
use crate::tui::message::{CardView, Effect, Event, PinFor, SlotView};
use crate::tui::model::{Level, Notice};
use crate::tui::theme::Theme;
use crate::tui::view;
use crate::tui::worker::CardReader;

/// Where an OpenPGP set-up stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Stage {
    /// Choosing the reader.
    #[default]
    Reader,
    /// The worker opens the card.
    Opening,
    /// The card holds keys: its serial typed before they are replaced.
    Overwrite,
    /// Typing the holder's name.
    Holder,
    /// The card's current admin PIN.
    Admin,
    /// The new admin PIN.
    NewAdmin,
    /// The new admin PIN again.
    NewAdminAgain,
    /// The holder's user PIN.
    User,
    /// The user PIN again.
    UserAgain,
    /// The card generates its keys and takes the PINs.
    Working,
    /// Done or refused, until Esc.
    Over,
}

/// The PIN fields, in the order they are typed.
const FIELDS: [(Stage, &str); 5] = [
    (Stage::Admin, "Admin PIN now"),
    (Stage::NewAdmin, "New admin PIN"),
    (Stage::NewAdminAgain, "Again"),
    (Stage::User, "User PIN"),
    (Stage::UserAgain, "Again"),
];

/// The PIN a refusal asks again (with every field after it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retype {
    /// The new admin PIN, twice.
    NewAdmin,
    /// The user PIN, twice.
    User,
}

/// The card as it was opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenedCard {
    /// Who and which it is, with its user PIN tries.
    pub card: CardView,
    /// It holds keys already (setting it up replaces them).
    pub has_keys: bool,
    /// Admin PIN tries left.
    pub admin_tries: u8,
}

impl OpenedCard {
    /// The card as it is now.
    pub fn new(card: &PcscCard) -> OpenedCard {
        OpenedCard {
            card: card_view(&Card::info(card)),
            has_keys: card.has_keys(),
            admin_tries: card.admin_pin_retries_left(),
        }
    }

    /// Factory-fresh: no keys and no holder (whether its admin PIN is still the factory one,
    /// only the card knows).
    pub fn fresh(&self) -> bool {
        !self.has_keys && self.card.holder.is_none()
    }
}

/// The keys a set-up made, as shown (hex).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeysView {
    /// The signing key's OpenPGP fingerprint, in groups of four.
    pub signing_fingerprint: String,
    /// The decryption key's OpenPGP fingerprint, in groups of four.
    pub decryption_fingerprint: String,
    /// The Ed25519 signing public key.
    pub signing_public: String,
    /// The X25519 decryption public key.
    pub decryption_public: String,
}

impl KeysView {
    /// The keys as the card reported them.
    pub fn new(keys: &GeneratedKeys) -> KeysView {
        let grouped = |bytes: &[u8]| {
            hex::encode_upper(bytes)
                .as_bytes()
                .chunks(4)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        };
        KeysView {
            signing_fingerprint: grouped(&keys.signing_fingerprint),
            decryption_fingerprint: grouped(&keys.decryption_fingerprint),
            signing_public: hex::encode(keys.signing_public),
            decryption_public: hex::encode(keys.decryption_public),
        }
    }
}

/// The OpenPGP set-up's part of the model: no PIN, only the counts of what was typed.
#[derive(Clone, Debug, Default)]
pub struct OpenPgpFlow {
    /// Where it stands.
    pub stage: Stage,
    /// The selected slot.
    pub slot: usize,
    /// The card, once opened.
    pub card: Option<OpenedCard>,
    /// The serial typed to confirm replacing the card's keys.
    pub confirm: String,
    /// The holder's name as typed (printable ASCII, as the card stores it).
    pub holder: String,
    /// Characters typed into each PIN field: the admin PIN now, the new admin PIN twice, the
    /// user PIN twice.
    pub typed: [usize; 5],
    /// The keys made, at the end.
    pub keys: Option<Box<KeysView>>,
    /// The last result or refusal.
    pub notice: Option<Notice>,
}

impl OpenPgpFlow {
    /// How keys read here.
    pub fn context(&self) -> Context {
        match self.stage {
            Stage::Reader => Context::Tables(&[keymap::NAVIGATION, keymap::MENU, keymap::GLOBAL]),
            Stage::Opening | Stage::Working | Stage::Over => Context::Tables(&[keymap::GLOBAL]),
            _ => Context::Text,
        }
    }

    fn field(&self) -> Option<usize> {
        FIELDS.iter().position(|(stage, _)| *stage == self.stage)
    }

    /// Answers a key; `slots` is how many card slots there are.
    pub fn on_action(&mut self, action: Action, slots: usize) -> Outcome {
        if let Some(field) = self.field() {
            return self.on_entry(field, action);
        }
        match (self.stage, action) {
            (Stage::Reader, Action::Select) => self.open(self.slot, slots),
            (Stage::Reader, Action::Jump(n)) => self.open(usize::from(n).wrapping_sub(1), slots),
            (Stage::Opening | Stage::Working, _) => Outcome::none(),
            (Stage::Reader | Stage::Over, Action::Back) => {
                *self = OpenPgpFlow::default();
                Outcome::Leave(vec![Effect::PinClear, send(NewCardCommand::Forget)])
            }
            (Stage::Reader, _) => {
                self.slot = super::super::step_selection(self.slot, slots, action, 5);
                Outcome::none()
            }
            (Stage::Overwrite, _) => self.on_overwrite(action),
            (Stage::Holder, _) => self.on_holder(action),
            _ => Outcome::none(),
        }
    }

    fn open(&mut self, slot: usize, slots: usize) -> Outcome {
        if slot >= slots {
            return Outcome::none();
        }
        *self = OpenPgpFlow {
            stage: Stage::Opening,
            slot,
            ..OpenPgpFlow::default()
        };
        Outcome::Stay(vec![Effect::PinClear, send(NewCardCommand::Open { slot })])
    }

    /// Back to the readers, the card let go: nothing was changed on it.
    fn abandon(&mut self) -> Outcome {
        *self = OpenPgpFlow {
            slot: self.slot,
            notice: Some(Notice::new(
                Level::Warn,
                "Abandoned: nothing was changed on the card.",
            )),
            ..OpenPgpFlow::default()
        };
        Outcome::Stay(vec![Effect::PinClear, send(NewCardCommand::Forget)])
    }

    fn on_overwrite(&mut self, action: Action) -> Outcome {
        let serial = self.card.as_ref().map_or("", |c| c.card.serial.as_str());
        match action {
            Action::Input(c) if self.confirm.len() < 40 && !c.is_control() => {
                self.confirm.push(c);
                Outcome::none()
            }
            Action::Erase => {
                self.confirm.pop();
                Outcome::none()
            }
            Action::Select if self.confirm.trim().eq_ignore_ascii_case(serial) => {
                self.stage = Stage::Holder;
                self.notice = None;
                Outcome::none()
            }
            Action::Select => {
                self.notice = Some(Notice::new(
                    Level::Error,
                    format!("That is not this card's serial: type {serial} to replace its keys."),
                ));
                Outcome::none()
            }
            Action::Back => self.abandon(),
            _ => Outcome::none(),
        }
    }

    fn on_holder(&mut self, action: Action) -> Outcome {
        match action {
            // As the card stores it: printable ASCII.
            Action::Input(c)
                if self.holder.len() < MAX_CARD_HOLDER_LEN && (' '..='~').contains(&c) =>
            {
                self.holder.push(c);
                Outcome::none()
            }
            Action::Input(c) if !(' '..='~').contains(&c) => {
                self.notice = Some(Notice::new(
                    Level::Error,
                    "An OpenPGP card stores the holder's name in plain ASCII letters only.",
                ));
                Outcome::none()
            }
            Action::Erase => {
                self.holder.pop();
                Outcome::none()
            }
            Action::Select if !self.holder.trim().is_empty() => {
                self.stage = Stage::Admin;
                self.notice = None;
                Outcome::Stay(vec![
                    Effect::PinClear,
                    send(NewCardCommand::Begin {
                        holder: self.holder.trim().to_owned(),
                    }),
                ])
            }
            Action::Back => self.abandon(),
            _ => Outcome::none(),
        }
    }

    fn on_entry(&mut self, field: usize, action: Action) -> Outcome {
        if let Some(typed) = crate::flows::pin_typing(&mut self.typed[field], action) {
            return typed;
        }
        match action {
            Action::Select if self.typed[field] > 0 => {
                self.stage = FIELDS.get(field + 1).map_or(Stage::Working, |(s, _)| *s);
                self.notice = None;
                Outcome::one(Effect::SubmitPin(PinFor::NewCard))
            }
            Action::Back => self.abandon(),
            _ => Outcome::none(),
        }
    }

    /// Takes the worker's answer.
    pub fn take(&mut self, event: NewCardEvent) {
        match event {
            NewCardEvent::Opened(card) => {
                self.stage = if card.has_keys {
                    Stage::Overwrite
                } else {
                    Stage::Holder
                };
                self.card = Some(card);
                self.notice = None;
            }
            NewCardEvent::Retype { field, text } => {
                let from = match field {
                    Retype::NewAdmin => 1,
                    Retype::User => 3,
                };
                self.typed[from..].iter_mut().for_each(|n| *n = 0);
                self.stage = FIELDS[from].0;
                self.notice = Some(Notice::new(Level::Error, text));
            }
            NewCardEvent::WrongAdmin { card, text } => {
                self.typed = [0; 5];
                self.stage = Stage::Admin;
                self.card = Some(card);
                self.notice = Some(Notice::new(Level::Error, text));
            }
            NewCardEvent::SetUp { card, keys, text } => {
                self.stage = Stage::Over;
                self.card = Some(card);
                self.keys = Some(keys);
                self.notice = Some(Notice::new(Level::Ok, text));
            }
            NewCardEvent::Failed(text) | NewCardEvent::Refused(text) => {
                self.stage = Stage::Over;
                self.notice = Some(Notice::new(Level::Error, text));
            }
            NewCardEvent::Made { .. } => {}
        }
    }
}

/// The set-up's lines.
pub fn lines(flow: &OpenPgpFlow, slots: &[SlotView], theme: &Theme) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    // Said before the card is chosen; after, the 80×24 body needs its rows for the card.
    if matches!(flow.stage, Stage::Reader | Stage::Opening) {
        lines.push(Line::from(
            "Set up an OpenPGP card: its keys generated on the card (they never leave it), the \
             holder's name, a user PIN, and its admin PIN changed from the one it came with.",
        ));
        lines.push(Line::from(""));
    }
    match flow.stage {
        Stage::Reader => {
            lines.push(Line::styled(
                "Choose the reader with the card, then Enter.",
                theme.muted,
            ));
            for (i, slot) in slots.iter().enumerate() {
                lines.push(view::menu_line(i + 1, &slot.label, i == flow.slot, theme));
            }
        }
        Stage::Opening => lines.push(Line::styled("Reading the card…", theme.muted)),
        _ => card_lines(flow, &mut lines, theme),
    }
    lines
}

/// The card in hand: its name, what it holds, the tries of both PINs.
fn opened_card_lines(flow: &OpenPgpFlow, lines: &mut Vec<Line<'static>>) {
    let Some(opened) = &flow.card else {
        return;
    };
    lines.push(Line::from(format!("Card          {}", opened.card.name())));
    let state = if flow.keys.is_some() {
        "set up: its new keys below".to_owned()
    } else if opened.fresh() {
        "factory-fresh: no keys, no holder".to_owned()
    } else if opened.has_keys {
        "holds keys: a set-up replaces them and any share sealed to them".to_owned()
    } else {
        "no keys yet".to_owned()
    };
    lines.push(Line::from(format!("State         {state}")));
    lines.push(Line::from(format!(
        "Tries         user PIN {} · admin PIN {}",
        opened.card.tries_text(),
        match opened.admin_tries {
            1 => "1 try left".to_owned(),
            n => format!("{n} tries left"),
        }
    )));
}

fn card_lines(flow: &OpenPgpFlow, lines: &mut Vec<Line<'static>>, theme: &Theme) {
    let cursor = |on: bool| if on { "▏" } else { "" };
    opened_card_lines(flow, lines);
    lines.push(Line::from(""));
    if flow.stage == Stage::Overwrite {
        lines.push(Line::styled(
            "This card holds keys. Type its serial to replace them, or Esc to keep them.",
            theme.warn,
        ));
        lines.push(Line::from(format!(
            "Serial        {}{}",
            flow.confirm,
            cursor(true)
        )));
    } else {
        lines.push(Line::from(format!(
            "Holder        {}{}",
            flow.holder,
            cursor(flow.stage == Stage::Holder)
        )));
        // Once over, the keys take the PIN fields' rows.
        let fields = if flow.stage == Stage::Over {
            0
        } else {
            FIELDS.len()
        };
        for (i, (stage, label)) in FIELDS.iter().enumerate().take(fields) {
            lines.push(Line::from(format!(
                "{label:<13} {}{}",
                "•".repeat(flow.typed[i].min(40)),
                cursor(flow.stage == *stage)
            )));
        }
    }
    keys_and_hint_lines(flow, lines, theme);
}

/// The card's new keys once made, and a hint for the step in hand.
fn keys_and_hint_lines(flow: &OpenPgpFlow, lines: &mut Vec<Line<'static>>, theme: &Theme) {
    if let Some(keys) = &flow.keys {
        lines.push(Line::from(""));
        lines.push(Line::from(format!(
            "Signing       {} (Ed25519)",
            keys.signing_fingerprint
        )));
        lines.push(Line::from(format!("  public      {}", keys.signing_public)));
        lines.push(Line::from(format!(
            "Decryption    {} (X25519)",
            keys.decryption_fingerprint
        )));
        lines.push(Line::from(format!(
            "  public      {}",
            keys.decryption_public
        )));
    }
    let hint = match flow.stage {
        Stage::Holder => "The holder's name as the card shows it, then Enter.",
        Stage::Admin => "The admin PIN the card has now (a new card's: 12345678).",
        Stage::NewAdmin | Stage::NewAdminAgain => {
            "The new admin PIN: at least 8 characters, not the factory one; its keeper unblocks \
             the user PIN."
        }
        Stage::User | Stage::UserAgain => {
            "The holder's user PIN: at least 6 characters, not the admin PIN."
        }
        Stage::Working => "The card generates its keys and takes the PINs…",
        _ => "",
    };
    if !hint.is_empty() {
        lines.push(Line::from(""));
        lines.push(Line::styled(hint, theme.muted));
    }
}

/// `NewCardCommand::Open`: the card in `slot`, opened and held for the set-up.
pub(super) fn open(reader: &mut dyn CardReader, state: &mut NewCardWork, slot: usize) -> Event {
    *state = NewCardWork::default();
    match reader.openpgp_card(slot) {
        Ok(card) => {
            let opened = OpenedCard::new(&card);
            state.card = Some(card);
            state.slot = slot;
            Event::NewCard(NewCardEvent::Opened(opened))
        }
        Err(why) => Event::NewCard(NewCardEvent::Failed(format!(
            "{why}. Nothing was changed on any card."
        ))),
    }
}

/// An entry for the open card: the fifth runs the set-up.
pub(super) fn entry(reader: &mut dyn CardReader, state: &mut NewCardWork, pin: Pin) -> Vec<Event> {
    state.entries.push(pin);
    if state.entries.len() < FIELDS.len() {
        return Vec::new();
    }
    let entries = std::mem::take(&mut state.entries);
    let Ok([admin, new_admin, new_again, user, user_again]) = <[Pin; 5]>::try_from(entries) else {
        return vec![failed(
            state,
            "the entries were out of step: start again".to_owned(),
        )];
    };
    // Kept aside in case the user PIN is refused: only the user PIN is typed again then.
    let kept = Pin::from_slice(new_admin.expose());
    let admin_pin = match NewPin::confirm(PinRole::Admin, new_admin, new_again) {
        Ok(pin) => pin,
        Err(e) => {
            state.entries.push(admin);
            return vec![retype(Retype::NewAdmin, &e)];
        }
    };
    let user_pin = match NewPin::confirm(PinRole::User, user, user_again) {
        Ok(pin) => pin,
        Err(e) => {
            // Kept: the admin PIN, and the new one twice (confirmed: both the same).
            let again = Pin::from_slice(kept.expose());
            state.entries.extend([admin, kept, again]);
            return vec![retype(Retype::User, &e)];
        }
    };
    let (Some(card), Some(holder)) = (state.card.take(), state.holder.clone()) else {
        return vec![failed(
            state,
            "no card is open: choose the reader again".to_owned(),
        )];
    };
    let setup = CardSetup {
        admin_pin_keeper: holder.clone(),
        holder,
        user_pin,
        admin_pin,
    };
    let slot = state.slot;
    match prepare(card, &admin, setup) {
        Ok(prepared) => {
            let info = Card::info(&prepared.card);
            let card = OpenedCard::new(&prepared.card);
            *state = NewCardWork::default();
            let mut events = vec![Event::NewCard(NewCardEvent::SetUp {
                text: format!(
                    "{} is set up: keys generated on the card, holder written, user PIN set, \
                     admin PIN changed. It holds no share yet: enrol it in a set, or bring it \
                     into one with a re-share. Esc goes back.",
                    card.card.name()
                ),
                card,
                keys: Box::new(KeysView::new(&prepared.keys)),
            })];
            events.extend(reader.card_changed(slot, &info).map(Event::Readers));
            events
        }
        Err(failure) => refused(reader, state, *failure, admin),
    }
}

/// Re-entry of a new PIN, every field from it on; nothing was sent to the card.
fn retype(field: Retype, e: &quorum::setup::PinChoiceError) -> Event {
    let text = format!("{e}. Nothing was changed on the card.");
    Event::NewCard(NewCardEvent::Retype { field, text })
}

fn failed(state: &mut NewCardWork, text: String) -> Event {
    *state = NewCardWork::default();
    Event::NewCard(NewCardEvent::Failed(text))
}

/// A set-up that stopped: a wrong admin PIN with tries left asks it again (the card kept);
/// anything else says what was and was not changed, and lets the card go.
fn refused(
    reader: &mut dyn CardReader,
    state: &mut NewCardWork,
    failure: SetupFailed,
    admin: Pin,
) -> Vec<Event> {
    let SetupFailed {
        card,
        error,
        done,
        started,
    } = failure;
    let name = card.as_ref().map_or_else(
        || "the card".to_owned(),
        |c| card_view(&Card::info(c)).name(),
    );
    let mut events = Vec::new();
    if let Some(card) = &card {
        events.extend(
            reader
                .card_changed(state.slot, &Card::info(card))
                .map(Event::Readers),
        );
    }
    let event = match (&error, card) {
        (QuorumError::Card(CardError::WrongPin { retries_left }), Some(card))
            if !started && retries_left.is_none_or(|n| n > 0) =>
        {
            let tries = match retries_left {
                Some(1) => "1 try left".to_owned(),
                Some(n) => format!("{n} tries left"),
                None => "tries left not reported".to_owned(),
            };
            let opened = OpenedCard::new(&card);
            state.card = Some(card);
            NewCardEvent::WrongAdmin {
                text: format!(
                    "Wrong admin PIN for {name} ({tries}): nothing was changed on the card. Type \
                     the admin PIN and the new PINs again."
                ),
                card: opened,
            }
        }
        // The new PINs against each other or the card's lengths, before the card was touched:
        // the card kept, the new admin PIN and the user PIN typed again.
        (QuorumError::Card(e @ CardError::PinFormat { .. }), Some(card)) if !started => {
            state.card = Some(card);
            state.entries.push(admin);
            NewCardEvent::Retype {
                field: Retype::NewAdmin,
                text: format!("{e}. Nothing was changed on the card."),
            }
        }
        _ => {
            *state = NewCardWork::default();
            NewCardEvent::Failed(failure_text(&name, &error, &done, started))
        }
    };
    events.insert(0, Event::NewCard(event));
    events
}

/// What was and was not changed, for a set-up that stopped.
pub fn failure_text(
    name: &str,
    error: &QuorumError,
    done: &[quorum::setup::SetupStep],
    started: bool,
) -> String {
    if !started {
        return format!("{name} was not set up: {error}. Nothing was changed on the card.");
    }
    let list = |steps: &[quorum::setup::SetupStep]| {
        steps
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let failed = SETUP_STEPS.get(done.len());
    let left = SETUP_STEPS.get(done.len() + 1..).unwrap_or(&[]);
    let mut text = format!("{name} was not set up: {error}.");
    text.push_str(&if done.is_empty() {
        " Nothing was completed".to_owned()
    } else {
        format!(" Changed: {}", list(done))
    });
    if let Some(step) = failed {
        text.push_str(&format!("; failed at: {step} (it may be part-done)"));
    }
    if !left.is_empty() {
        text.push_str(&format!("; not changed: {}", list(left)));
    }
    text.push_str(
        ". The admin PIN changes last: until it did, the card opens with the admin PIN it came \
         with; set it up again.",
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use quorum::setup::SetupStep;

    #[test]
    fn a_stopped_set_up_says_what_was_and_was_not_changed() {
        let error = QuorumError::Card(CardError::Backend("the card stopped answering".into()));
        let text = failure_text("card X", &error, &[SetupStep::Keys], true);
        assert!(
            text.contains("Changed: keys generated on the card; failed at: holder's name written"),
            "{text}"
        );
        assert!(
            text.contains("not changed: user PIN set, admin PIN changed"),
            "{text}"
        );
        let text = failure_text("card X", &error, &[], false);
        assert!(text.ends_with("Nothing was changed on the card."), "{text}");
        let text = failure_text("card X", &error, &[], true);
        assert!(
            text.contains("Nothing was completed; failed at: keys"),
            "{text}"
        );
    }

    #[test]
    fn fingerprints_are_shown_in_groups_of_four() {
        let keys = GeneratedKeys {
            signing_public: [0xab; 32],
            decryption_public: [1; 32],
            signing_fingerprint: [0x1f; 20],
            decryption_fingerprint: [0; 20],
            created: 0,
        };
        let view = KeysView::new(&keys);
        assert_eq!(view.signing_fingerprint.len(), 49);
        assert!(view.signing_fingerprint.starts_with("1F1F 1F1F "));
        assert_eq!(view.signing_public, "ab".repeat(32));
    }
}
