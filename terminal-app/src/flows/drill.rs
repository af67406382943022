//! Cards: a share drill. One holder's card, after its PIN, yields its share, which is checked
//! against the commitments the HSM holds (`quorum`'s [`Drill`]); the card signs its own report
//! and the HSM logs it. Nothing is combined, and no login is needed.

use quorum::card::Pin;
use quorum::ceremony::{CeremonyError, Drill, Link};
use quorum::error::CardError;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Wrap};

use super::Outcome;
use super::login::card_view;
use crate::tui::keymap::{self, Action, Context};
use crate::tui::message::{CardView, Command, DrillCommand, DrillEvent, Effect, Event, PinFor};
use crate::tui::model::{Level, Notice};
use crate::tui::theme::Theme;
use crate::tui::view;
use crate::tui::worker::{CardReader, InsertedCard, link_failure};

/// Where a drill stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Stage {
    /// Choosing the card.
    #[default]
    Choose,
    /// Reading the card.
    Opening,
    /// Its PIN.
    Pin,
    /// The card opens its share; the check and the report.
    Checking,
}

/// The drill's part of the model.
#[derive(Clone, Debug, Default)]
pub struct DrillFlow {
    /// Where it stands.
    pub stage: Stage,
    /// The selected slot.
    pub slot: usize,
    /// The inserted card.
    pub card: Option<CardView>,
    /// PIN characters typed.
    pub pin_len: usize,
    /// The last result or refusal.
    pub notice: Option<Notice>,
}

impl DrillFlow {
    /// How keys read here.
    pub fn context(&self) -> Context {
        match self.stage {
            Stage::Pin => Context::Text,
            Stage::Choose => Context::Tables(&[
                keymap::NAVIGATION,
                keymap::MENU,
                keymap::CARDS,
                keymap::GLOBAL,
            ]),
            _ => Context::Tables(&[keymap::NAVIGATION, keymap::MENU, keymap::GLOBAL]),
        }
    }

    /// Answers a key; `slots` is how many card slots there are.
    pub fn on_action(&mut self, action: Action, slots: usize) -> Outcome {
        if self.stage == Stage::Pin
            && let Some(typed) = super::pin_typing(&mut self.pin_len, action)
        {
            return typed;
        }
        match (self.stage, action) {
            (Stage::Pin, Action::Select) if self.pin_len > 0 => {
                self.pin_len = 0;
                self.stage = Stage::Checking;
                Outcome::one(Effect::SubmitPin(PinFor::Drill))
            }
            (Stage::Pin, Action::Back) => {
                *self = DrillFlow::default();
                Outcome::one(Effect::PinClear)
            }
            (Stage::Choose, Action::Select) => self.insert(self.slot, slots),
            (Stage::Choose, Action::Jump(n)) => self.insert(usize::from(n).wrapping_sub(1), slots),
            (_, Action::Back) => {
                *self = DrillFlow::default();
                Outcome::Leave(vec![Effect::PinClear])
            }
            (Stage::Choose, _) => {
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
        self.stage = Stage::Opening;
        self.notice = None;
        Outcome::one(Effect::Send(Command::Drill(DrillCommand::Insert(slot))))
    }

    /// Takes the worker's answer.
    pub fn on_event(&mut self, event: DrillEvent) -> Vec<Effect> {
        let (stage, notice) = match event {
            DrillEvent::Inserted(card) => {
                self.card = Some(card);
                (Stage::Pin, None)
            }
            DrillEvent::WrongPin(card) => {
                let text = format!("Wrong PIN for {}: {}.", card.name(), card.tries_text());
                self.card = Some(card);
                (Stage::Pin, Some(Notice::new(Level::Error, text)))
            }
            DrillEvent::Done { card, ok, detail } => {
                self.card = None;
                let level = if ok { Level::Ok } else { Level::Error };
                let verdict = if ok {
                    "its share is valid"
                } else {
                    "its share is NOT usable"
                };
                let text = format!("Drill of {}: {verdict}. {detail}", card.name());
                (Stage::Choose, Some(Notice::new(level, text)))
            }
            DrillEvent::Failed(reason) => {
                self.card = None;
                (Stage::Choose, Some(Notice::new(Level::Error, reason)))
            }
        };
        self.stage = stage;
        self.notice = notice;
        self.pin_len = 0;
        vec![Effect::PinClear]
    }
}

/// Draws the drill.
pub fn view(
    frame: &mut Frame,
    area: Rect,
    flow: &DrillFlow,
    slots: &[crate::tui::message::SlotView],
    theme: &Theme,
) {
    let mut lines = vec![
        Line::from(
            "A share drill: the card opens its share of the recovery secret, which is checked \
             against the HSM's commitments; the card signs the result and the HSM logs it.",
        ),
        Line::from(""),
    ];
    match (flow.stage, &flow.card) {
        (Stage::Pin, Some(card)) => {
            lines.push(Line::from(format!("Card    {}", card.name())));
            lines.push(Line::from(format!("Tries   {}", card.tries_text())));
            lines.push(Line::from(format!(
                "PIN     {}▏",
                "•".repeat(flow.pin_len.min(40))
            )));
        }
        (Stage::Opening, _) => lines.push(Line::styled("Reading the card…", theme.muted)),
        (Stage::Checking, _) => lines.push(Line::styled(
            "The card opens its share; checking it against the commitments…",
            theme.muted,
        )),
        _ => {
            // The footer has no room for the screen's own keys at 80 columns: named here too.
            let keys: Vec<String> = keymap::CARDS
                .iter()
                .map(|b| format!("{} {}", b.label, b.hint))
                .collect();
            lines.push(Line::from(format!("Keys: {}", keys.join(" · "))));
            lines.push(Line::from(""));
            lines.push(Line::styled("Choose the card to drill:", theme.muted));
            for (i, slot) in slots.iter().enumerate() {
                lines.push(view::menu_line(i + 1, &slot.label, i == flow.slot, theme));
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
    frame.render_widget(
        Paragraph::new(lines)
            .block(view::block("Cards · share drill", theme))
            .wrap(Wrap { trim: false }),
        area,
    );
}

/// The worker's side: the inserted card.
#[derive(Default)]
pub struct DrillWork {
    inserted: Option<Box<dyn InsertedCard>>,
}

/// Runs one drill step on the worker.
pub(crate) fn work(
    link: &mut (dyn Link + Send),
    reader: &mut dyn CardReader,
    state: &mut DrillWork,
    command: DrillCommand,
) -> Event {
    Event::Drill(match command {
        DrillCommand::Insert(slot) => match reader.insert(slot) {
            Ok(card) => {
                let view = card_view(&card.info());
                state.inserted = Some(card);
                DrillEvent::Inserted(view)
            }
            Err(reason) => DrillEvent::Failed(reason),
        },
        DrillCommand::Verify(pin) => match state.inserted.take() {
            Some(card) => return verify(link, state, card, &pin),
            None => DrillEvent::Failed("no card is inserted: choose one first".into()),
        },
    })
}

fn verify(
    link: &mut (dyn Link + Send),
    state: &mut DrillWork,
    card: Box<dyn InsertedCard>,
    pin: &Pin,
) -> Event {
    let mut verified = match card.verify(pin) {
        Ok(verified) => verified,
        Err((card, CardError::WrongPin { retries_left })) if retries_left != Some(0) => {
            let mut view = card_view(&card.info());
            view.tries_left = retries_left;
            state.inserted = Some(card);
            return Event::Drill(DrillEvent::WrongPin(view));
        }
        Err((card, e)) => {
            return Event::Drill(DrillEvent::Failed(format!(
                "{}: {e}",
                card_view(&card.info()).name()
            )));
        }
    };
    let view = card_view(&verified.info());
    let outcome = Drill::begin(link).and_then(|drill| drill.run(link, &mut *verified));
    Event::Drill(match outcome {
        Ok(outcome) => DrillEvent::Done {
            card: view,
            ok: outcome.ok(),
            detail: match (&outcome.problem, outcome.reported) {
                (Some(problem), _) => format!("{problem}. The HSM logged the failed drill."),
                (None, true) => "The HSM logged the drill.".to_owned(),
                (None, false) => "The HSM rationed drill reports: not logged; drill again later \
                                  or while logged in."
                    .to_owned(),
            },
        },
        Err(CeremonyError::Link(e @ quorum::ceremony::LinkError::Failed(_))) => {
            return link_failure(e);
        }
        Err(e) => DrillEvent::Failed(e.to_string()),
    })
}
