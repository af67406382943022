//! Cards: revoke a lost card. The PSO chooses the lost card of the active set (by holder or
//! serial), the new m and n, and enrols the new set's cards one at a time through `quorum`'s
//! [`Revocation`]: a fresh recovery secret, so the revoked card's share is useless at once
//! (the HSM refuses its signatures from the registration on). The end says that older backups
//! stay restorable on this HSM and offers a fresh one. Needs a PSO login; the model holds the
//! ceremony id and card names, never a PIN or a share.

use quorum::card::Pin;
use quorum::ceremony::{ActiveSet, CeremonyError, Link, Revocation};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Wrap};

use super::Outcome;
use super::login::card_view;
use super::new_set::{self, NewSetCards};
use super::reshare::ReshareEvent;
use crate::tui::keymap::{self, Action, Context};
use crate::tui::message::{CardView, Command, Effect, Event, PinFor, SlotView};
use crate::tui::model::{Level, Notice};
use crate::tui::theme::Theme;
use crate::tui::view;
use crate::tui::worker::{CardReader, link_failure};

/// Where the revocation stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Phase {
    /// Reading the active set.
    #[default]
    Loading,
    /// Choosing the lost card.
    Lost,
    /// Choosing the new m and n.
    Size,
    /// Opening the ceremony (a fresh secret is made).
    Beginning,
    /// Writing the new set's cards.
    New,
    /// Over: registered, or abandoned; what changed, until Esc.
    Over,
}

/// A step of a revocation, for the worker.
#[derive(Debug)]
pub enum RevokeCommand {
    /// Read the active set's cards.
    List,
    /// Open the ceremony revoking `serial`, for a new set of `threshold` of `n`.
    Begin {
        /// The lost card's serial.
        serial: String,
        /// The new m.
        threshold: u8,
        /// The new n.
        n: u8,
    },
    /// The card in this slot was inserted.
    Insert(usize),
    /// Its PIN (from the zeroizing buffer): its new share is written and read back.
    Verify(Pin),
    /// Abandon the ceremony.
    Abort,
}

impl PartialEq for RevokeCommand {
    fn eq(&self, other: &Self) -> bool {
        use RevokeCommand::*;
        match (self, other) {
            (
                Begin {
                    serial: a,
                    threshold: b,
                    n: c,
                },
                Begin {
                    serial: d,
                    threshold: e,
                    n: f,
                },
            ) => a == d && b == e && c == f,
            (Insert(a), Insert(b)) => a == b,
            // Two PINs are never compared.
            (List, List) | (Verify(_), Verify(_)) | (Abort, Abort) => true,
            _ => false,
        }
    }
}

impl Eq for RevokeCommand {}

/// A revocation step's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RevokeEvent {
    /// The active set's cards: `(holder, serial)`.
    Set(Vec<(String, String)>),
    /// The ceremony is open.
    Began {
        /// The ceremony id as shown.
        ceremony: String,
    },
    /// A card step, as in the re-share (inserted, wrong PIN, refused).
    Card(ReshareEvent),
    /// A new card's share was written and read back.
    Written {
        /// The card.
        card: CardView,
        /// Written so far.
        have: usize,
    },
    /// The HSM registered the new set: the card is revoked.
    Done {
        /// The new set's number.
        set_number: u32,
        /// What becomes of the older backups, and the offer of a fresh one.
        backups: String,
    },
    /// Abandoned: what was and was not changed.
    Aborted(String),
}

/// The revocation's part of the model.
#[derive(Clone, Debug)]
pub struct RevokeFlow {
    /// Where it stands.
    pub phase: Phase,
    /// The active set's cards: `(holder, serial)`.
    pub cards: Vec<(String, String)>,
    /// The selected (lost) card.
    pub lost: usize,
    /// The new m.
    pub threshold: u8,
    /// The new n.
    pub n: u8,
    /// Which of m (0) and n (1) the arrows change.
    pub field: usize,
    /// The selected slot.
    pub slot: usize,
    /// The inserted card, its PIN asked.
    pub card: Option<CardView>,
    /// A card step runs.
    pub busy: bool,
    /// PIN characters typed.
    pub pin_len: usize,
    /// The ceremony's id.
    pub ceremony: Option<String>,
    /// New cards written and read back.
    pub written: Vec<String>,
    /// The last result or refusal.
    pub notice: Option<Notice>,
}

impl Default for RevokeFlow {
    fn default() -> Self {
        RevokeFlow {
            phase: Phase::Loading,
            cards: Vec::new(),
            lost: 0,
            threshold: 2,
            n: 2,
            field: 0,
            slot: 0,
            card: None,
            busy: false,
            pin_len: 0,
            ceremony: None,
            written: Vec::new(),
            notice: None,
        }
    }
}

fn send(command: RevokeCommand) -> Effect {
    Effect::Send(Command::Revoke(command))
}

impl RevokeFlow {
    /// Opens the screen: the active set is read.
    pub fn open(&mut self) -> Vec<Effect> {
        *self = RevokeFlow::default();
        vec![Effect::PinClear, send(RevokeCommand::List)]
    }

    /// How keys read here.
    pub fn context(&self) -> Context {
        match self.phase {
            Phase::Size => Context::Tables(&[keymap::RESHARE_SIZE, keymap::GLOBAL]),
            Phase::New if self.card.is_some() => Context::Text,
            Phase::Over | Phase::Loading | Phase::Beginning => Context::Tables(&[keymap::GLOBAL]),
            _ => Context::Tables(&[keymap::NAVIGATION, keymap::MENU, keymap::GLOBAL]),
        }
    }

    /// Answers a key; `slots` is how many card slots there are.
    pub fn on_action(&mut self, action: Action, slots: usize) -> Outcome {
        match (self.phase, action) {
            (Phase::Lost, Action::Select) if !self.cards.is_empty() => {
                self.phase = Phase::Size;
                self.n = u8::try_from(self.cards.len().saturating_sub(1).max(1)).unwrap_or(2);
                self.threshold = self.threshold.min(self.n);
                Outcome::none()
            }
            (Phase::Lost, Action::Jump(k)) if usize::from(k) <= self.cards.len() => {
                self.lost = usize::from(k) - 1;
                self.on_action(Action::Select, slots)
            }
            (Phase::Size, _) => self.on_size(action),
            (Phase::New, _) if self.card.is_some() => self.on_pin(action),
            (Phase::New, Action::Select) => self.insert(self.slot, slots),
            (Phase::New, Action::Jump(k)) => self.insert(usize::from(k).wrapping_sub(1), slots),
            (Phase::New, Action::Back) => Outcome::Stay(vec![send(RevokeCommand::Abort)]),
            (Phase::New, _) if !self.busy => {
                self.slot = super::step_selection(self.slot, slots, action, 5);
                Outcome::none()
            }
            (_, Action::Back) => {
                *self = RevokeFlow::default();
                Outcome::Leave(vec![Effect::PinClear])
            }
            (Phase::Lost, _) => {
                self.lost = super::step_selection(self.lost, self.cards.len(), action, 5);
                Outcome::none()
            }
            _ => Outcome::none(),
        }
    }

    fn on_pin(&mut self, action: Action) -> Outcome {
        if let Some(outcome) = new_set::pin_key(&mut self.pin_len, action, PinFor::Revoke) {
            if action == Action::Select {
                self.card = None;
                self.busy = true;
            }
            return outcome;
        }
        match action {
            Action::Back => {
                self.pin_len = 0;
                self.card = None;
                Outcome::one(Effect::PinClear)
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
                let Some((_, serial)) = self.cards.get(self.lost) else {
                    return Outcome::none();
                };
                self.phase = Phase::Beginning;
                self.notice = None;
                return Outcome::one(send(RevokeCommand::Begin {
                    serial: serial.clone(),
                    threshold: self.threshold,
                    n: self.n,
                }));
            }
            Action::Back => self.phase = Phase::Lost,
            _ => {}
        }
        Outcome::none()
    }

    fn insert(&mut self, slot: usize, slots: usize) -> Outcome {
        if slot >= slots || self.busy {
            return Outcome::none();
        }
        self.slot = slot;
        self.busy = true;
        self.notice = None;
        Outcome::one(send(RevokeCommand::Insert(slot)))
    }

    /// The lost card as shown: `Cleo Demo · SOFT:0003`.
    pub fn lost_name(&self) -> String {
        match self.cards.get(self.lost) {
            Some((holder, serial)) => format!("{holder} · {serial}"),
            None => "—".to_owned(),
        }
    }

    /// Takes the worker's answer.
    pub fn on_event(&mut self, event: RevokeEvent) -> Vec<Effect> {
        self.pin_len = 0;
        self.busy = false;
        match event {
            RevokeEvent::Set(cards) => {
                self.cards = cards;
                self.phase = Phase::Lost;
            }
            RevokeEvent::Began { ceremony } => {
                self.ceremony = Some(ceremony);
                self.phase = Phase::New;
            }
            RevokeEvent::Card(ReshareEvent::Inserted(card)) => self.card = Some(card),
            RevokeEvent::Card(ReshareEvent::WrongPin(card)) => {
                let text = new_set::wrong_pin_text(&card);
                self.card = Some(card);
                self.notice = Some(Notice::new(Level::Error, text));
            }
            RevokeEvent::Card(other) => {
                self.card = None;
                if let ReshareEvent::Refused(reason) = other {
                    if matches!(self.phase, Phase::Beginning | Phase::Loading) {
                        self.phase = if self.cards.is_empty() {
                            Phase::Over
                        } else {
                            Phase::Size
                        };
                    }
                    self.notice = Some(Notice::new(Level::Error, reason));
                }
            }
            RevokeEvent::Written { card, have } => {
                self.written.push(card.name());
                self.notice = Some(Notice::new(
                    Level::Ok,
                    new_set::written_text(&card, have, self.n),
                ));
            }
            RevokeEvent::Done {
                set_number,
                backups,
            } => {
                self.phase = Phase::Over;
                self.notice = Some(Notice::new(
                    Level::Ok,
                    format!(
                        "{} is revoked: set {set_number} is active, with a fresh secret; the \
                         revoked card's share is useless from now on. {backups}",
                        self.lost_name()
                    ),
                ));
            }
            RevokeEvent::Aborted(what) => {
                self.card = None;
                self.phase = Phase::Over;
                self.notice = Some(Notice::new(Level::Warn, what));
            }
        }
        vec![Effect::PinClear]
    }
}

fn body_lines(flow: &RevokeFlow, slots: &[SlotView], theme: &Theme) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    match flow.phase {
        Phase::Loading => lines.push(Line::styled("Reading the active set…", theme.muted)),
        Phase::Lost => {
            lines.push(Line::styled(
                "Which card is lost? (holder · serial)",
                theme.muted,
            ));
            for (i, (holder, serial)) in flow.cards.iter().enumerate() {
                let label = format!("{holder} · {serial}");
                lines.push(view::menu_line(i + 1, &label, i == flow.lost, theme));
            }
        }
        Phase::Size => {
            lines.push(Line::from(format!("Lost card   {}", flow.lost_name())));
            lines.push(Line::styled(
                "The new set, without it (↑↓ m or n, ←→ change, Enter begins):",
                theme.muted,
            ));
            lines.extend(new_set::size_lines(flow.threshold, flow.n, flow.field));
        }
        Phase::Beginning => lines.push(Line::styled(
            "Opening the ceremony; a fresh secret is made…",
            theme.muted,
        )),
        Phase::New => new_lines(flow, slots, theme, &mut lines),
        Phase::Over => lines.push(Line::styled(
            "The ceremony is over. Esc: back to Cards.",
            theme.muted,
        )),
    }
    lines
}

fn new_lines(flow: &RevokeFlow, slots: &[SlotView], theme: &Theme, lines: &mut Vec<Line<'static>>) {
    lines.push(Line::from(format!(
        "Revoking {} · new set {} of {}: {} written and read back",
        flow.lost_name(),
        flow.threshold,
        flow.n,
        flow.written.len()
    )));
    match &flow.card {
        Some(card) => lines.extend(new_set::pin_lines(card, flow.pin_len)),
        None if flow.busy => lines.push(Line::styled("The card is working…", theme.muted)),
        None => lines.extend(new_set::slot_lines(
            "Insert the next card of the new set (not the lost one):".to_owned(),
            slots,
            flow.slot,
            theme,
        )),
    }
}

/// Draws the revocation.
pub fn view(frame: &mut Frame, area: Rect, flow: &RevokeFlow, slots: &[SlotView], theme: &Theme) {
    let title = match &flow.ceremony {
        Some(id) => format!("Cards · revoke a lost card · ceremony {id}"),
        None => "Cards · revoke a lost card".to_owned(),
    };
    let mut lines = vec![
        Line::from(
            "A revocation makes a fresh recovery secret for a new set without the lost card: \
             its share is useless once the HSM registers the new set. Esc abandons it.",
        ),
        Line::from(""),
    ];
    lines.extend(body_lines(flow, slots, theme));
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

/// The worker's side: the ceremony, and the card in hand with the new set's cards written.
#[derive(Default)]
pub struct RevokeWork {
    ceremony: Option<Revocation>,
    cards: NewSetCards,
}

/// Runs one revocation step on the worker.
pub(crate) fn work(
    link: &mut (dyn Link + Send),
    reader: &mut dyn CardReader,
    state: &mut RevokeWork,
    command: RevokeCommand,
) -> Vec<Event> {
    let event = match command {
        RevokeCommand::List => match ActiveSet::fetch(link) {
            Ok(Some(set)) => RevokeEvent::Set(
                set.cards
                    .iter()
                    .map(|c| (c.holder.as_str().to_owned(), c.serial.to_string()))
                    .collect(),
            ),
            Ok(None) => refused("no card set is active: enrol one first".into()),
            Err(e) => return failure(e),
        },
        RevokeCommand::Begin {
            serial,
            threshold,
            n,
        } => {
            state.cards.clear();
            match Revocation::begin(link, &serial, threshold, n) {
                Ok(revocation) => {
                    let ceremony = revocation.id().to_string();
                    state.ceremony = Some(revocation);
                    RevokeEvent::Began { ceremony }
                }
                Err(e) => return failure(e),
            }
        }
        RevokeCommand::Insert(slot) => match state.cards.insert(reader, slot) {
            Ok(view) => RevokeEvent::Card(ReshareEvent::Inserted(view)),
            Err(reason) => refused(reason),
        },
        RevokeCommand::Verify(pin) => return verify(link, state, &pin),
        RevokeCommand::Abort => RevokeEvent::Aborted(abort(state)),
    };
    vec![Event::Revoke(event)]
}

fn refused(reason: String) -> RevokeEvent {
    RevokeEvent::Card(ReshareEvent::Refused(reason))
}

fn failure(e: CeremonyError) -> Vec<Event> {
    match e {
        CeremonyError::Link(e @ quorum::ceremony::LinkError::Failed(_)) => vec![link_failure(e)],
        e => vec![Event::Revoke(refused(e.to_string()))],
    }
}

fn abort(state: &mut RevokeWork) -> String {
    let written = state.cards.finish();
    match (state.ceremony.take(), written) {
        (None, _) => "No revocation was under way: nothing changed.".to_owned(),
        (Some(r), None) => format!(
            "Revocation {} abandoned: nothing was registered or written. The card is NOT \
             revoked; the active set is unchanged.",
            r.id()
        ),
        (Some(r), Some(written)) => format!(
            "Revocation {} abandoned: nothing was registered. The card is NOT revoked; the \
             active set is unchanged. Unused new shares stay on: {written}.",
            r.id(),
        ),
    }
}

fn verify(link: &mut (dyn Link + Send), state: &mut RevokeWork, pin: &Pin) -> Vec<Event> {
    let mut card = match state.cards.open(pin) {
        Ok(card) => card,
        Err(refused) => return vec![Event::Revoke(RevokeEvent::Card(refused.into()))],
    };
    let view = card_view(&card.info());
    let Some(mut revocation) = state.ceremony.take() else {
        return vec![Event::Revoke(refused(
            "no revocation is under way: begin one first".into(),
        ))];
    };
    let progress = match state
        .cards
        .add(&mut *card, &view, |c| revocation.add_card(c))
    {
        Ok(progress) => progress,
        Err(e) => {
            state.ceremony = Some(revocation);
            return failure(e);
        }
    };
    let mut events = vec![Event::Revoke(RevokeEvent::Written {
        card: view,
        have: progress.have,
    })];
    if !progress.complete() {
        state.ceremony = Some(revocation);
        return events;
    }
    let id = revocation.id();
    let written = state.cards.finish().unwrap_or_default();
    events.push(Event::Revoke(match revocation.finish(link) {
        Ok(done) => RevokeEvent::Done {
            set_number: done.registered.set_number,
            backups: done.backup_notice(),
        },
        Err(e) => RevokeEvent::Aborted(format!(
            "Revocation {id}: the HSM did not register the new set ({e}). The card is NOT \
             revoked; unused new shares stay on: {written}."
        )),
    }));
    events
}
