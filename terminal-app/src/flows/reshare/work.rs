//! The worker's side of the re-share: the ceremony by its typed step (old cards read, the
//! new set written card by card through [`super::super::new_set`], the registration, the old
//! shares wiped), and what an abandoned one changed.

use quorum::card::{Pin, VerifiedCard};
use quorum::ceremony::{CeremonyError, Link, LinkError, Reshare, ReshareNewSet, ReshareWipe};

use super::super::login::card_view;
use super::super::new_set::{NewSetCards, OpenRefused};
use super::{ReshareCommand, ReshareEvent};
use crate::tui::message::{CardView, Event};
use crate::tui::worker::CardReader;

/// The ceremony on the worker, by its typed step.
#[derive(Default)]
enum Ceremony {
    #[default]
    Idle,
    Old(Box<Reshare>),
    New(ReshareNewSet),
    Wipe(ReshareWipe),
}

/// The worker's side: the ceremony, the chosen size, and the card in hand with the new set's
/// cards written.
#[derive(Default)]
pub struct ReshareWork {
    ceremony: Ceremony,
    size: (u8, u8),
    cards: NewSetCards,
}

/// Runs one re-share step on the worker.
pub(crate) fn work(
    link: &mut (dyn Link + Send),
    reader: &mut dyn CardReader,
    state: &mut ReshareWork,
    command: ReshareCommand,
) -> Vec<Event> {
    let events = match command {
        ReshareCommand::Begin { threshold, n } => {
            state.cards.clear();
            state.size = (threshold, n);
            match Reshare::begin(link) {
                Ok(reshare) => {
                    let event = ReshareEvent::Began {
                        ceremony: reshare.id().to_string(),
                        need: reshare.old_progress().need,
                    };
                    state.ceremony = Ceremony::Old(Box::new(reshare));
                    vec![event]
                }
                Err(e) => return failure(e, ReshareEvent::Refused),
            }
        }
        ReshareCommand::Insert(slot) => match state.cards.insert(reader, slot) {
            Ok(view) => vec![ReshareEvent::Inserted(view)],
            Err(reason) => vec![ReshareEvent::Refused(reason)],
        },
        ReshareCommand::Verify(pin) => return verify(link, state, &pin),
        ReshareCommand::Abort => vec![ReshareEvent::Aborted(abort(state))],
    };
    events.into_iter().map(Event::Reshare).collect()
}

fn failure(e: CeremonyError, wrap: fn(String) -> ReshareEvent) -> Vec<Event> {
    match e {
        CeremonyError::Link(e @ LinkError::Failed(_)) => {
            vec![crate::tui::worker::link_failure(e)]
        }
        e => vec![Event::Reshare(wrap(e.to_string()))],
    }
}

/// Ends the ceremony and says what was and was not changed.
fn abort(state: &mut ReshareWork) -> String {
    let written = state.cards.finish();
    match std::mem::take(&mut state.ceremony) {
        Ceremony::Idle => "No re-share was under way: nothing changed.".to_owned(),
        Ceremony::Old(r) => format!(
            "Re-share {} abandoned before the split: nothing was written, the active set and \
             its cards are unchanged.",
            r.id()
        ),
        Ceremony::New(r) => match written {
            None => format!(
                "Re-share {} abandoned before any new card was written: the active set and \
                 its cards are unchanged.",
                r.id()
            ),
            Some(written) => format!(
                "Re-share {} abandoned before the registration: the active set is unchanged \
                 and still opens with its cards. Unused new shares stay beside the old ones \
                 on: {written}.",
                r.id(),
            ),
        },
        Ceremony::Wipe(w) if w.pending().is_empty() => format!(
            "Re-share done: set {} is active; every old card present was wiped.",
            w.registered.set_number
        ),
        Ceremony::Wipe(w) => format!(
            "Set {} is registered and active. Old shares NOT wiped (wipe them with a share \
             drill): {}.",
            w.registered.set_number,
            w.pending()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

impl From<OpenRefused> for ReshareEvent {
    fn from(refused: OpenRefused) -> Self {
        match refused {
            OpenRefused::WrongPin(view) => ReshareEvent::WrongPin(view),
            OpenRefused::Refused(why) => ReshareEvent::Refused(why),
        }
    }
}

fn verify(link: &mut (dyn Link + Send), state: &mut ReshareWork, pin: &Pin) -> Vec<Event> {
    let mut card = match state.cards.open(pin) {
        Ok(card) => card,
        Err(refused) => return vec![Event::Reshare(refused.into())],
    };
    let view = card_view(&card.info());
    let result = match std::mem::take(&mut state.ceremony) {
        Ceremony::Idle => Err(CeremonyError::NoActiveSet),
        Ceremony::Old(r) => old_card(state, *r, &mut *card, view),
        Ceremony::New(r) => new_card(link, state, r, &mut *card, view),
        Ceremony::Wipe(w) => wipe_card(state, w, &mut *card, view),
    };
    match result {
        Ok(events) => events.into_iter().map(Event::Reshare).collect(),
        Err(e) => failure(e, ReshareEvent::Refused),
    }
}

fn old_card(
    state: &mut ReshareWork,
    mut reshare: Reshare,
    card: &mut (dyn VerifiedCard + Send),
    view: CardView,
) -> Result<Vec<ReshareEvent>, CeremonyError> {
    let progress = match reshare.present_old(card) {
        Ok(progress) => progress,
        Err(e) => {
            state.ceremony = Ceremony::Old(Box::new(reshare));
            return Err(e);
        }
    };
    let mut events = vec![ReshareEvent::OldRead {
        card: view,
        have: progress.have,
    }];
    if !progress.complete() {
        state.ceremony = Ceremony::Old(Box::new(reshare));
        return Ok(events);
    }
    let (threshold, n) = state.size;
    match reshare.split(threshold, n) {
        Ok(new) => {
            state.ceremony = Ceremony::New(new);
            events.push(ReshareEvent::Split);
        }
        Err((back, e)) => {
            state.ceremony = Ceremony::Old(back);
            events.push(ReshareEvent::Refused(e.to_string()));
        }
    }
    Ok(events)
}

fn new_card(
    link: &mut (dyn Link + Send),
    state: &mut ReshareWork,
    mut reshare: ReshareNewSet,
    card: &mut (dyn VerifiedCard + Send),
    view: CardView,
) -> Result<Vec<ReshareEvent>, CeremonyError> {
    let progress = match state.cards.add(card, &view, |c| reshare.add_card(c)) {
        Ok(progress) => progress,
        Err(e) => {
            state.ceremony = Ceremony::New(reshare);
            return Err(e);
        }
    };
    let mut events = vec![ReshareEvent::NewWritten {
        card: view,
        have: progress.have,
    }];
    if !progress.complete() {
        state.ceremony = Ceremony::New(reshare);
        return Ok(events);
    }
    let id = reshare.id();
    match reshare.finish(link) {
        Ok(wipe) => {
            let names = |cards: Vec<quorum::ceremony::CardRef>| {
                cards.iter().map(ToString::to_string).collect::<Vec<_>>()
            };
            events.push(ReshareEvent::Registered {
                set_number: wipe.registered.set_number,
                to_wipe: names(wipe.pending()),
                old_left: names(wipe.old_shares_left.clone()),
            });
            state.ceremony = Ceremony::Wipe(wipe);
        }
        Err(e) => events.push(ReshareEvent::Aborted(format!(
            "Re-share {id}: the HSM did not register the new set ({e}). The active set is \
             unchanged; unused new shares stay beside the old ones on: {}.",
            state.cards.finish().unwrap_or_default()
        ))),
    }
    Ok(events)
}

fn wipe_card(
    state: &mut ReshareWork,
    mut wipe: ReshareWipe,
    card: &mut (dyn VerifiedCard + Send),
    view: CardView,
) -> Result<Vec<ReshareEvent>, CeremonyError> {
    let info = card.info();
    let pending = wipe
        .pending()
        .iter()
        .any(|c| c.serial == info.serial && c.holder == info.holder);
    let result = if pending {
        wipe.wipe(card)
            .map(|left| (left, "old share wiped.".to_owned()))
    } else {
        wipe.registered.drop_old_share(card).map(|dropped| {
            let what = if dropped {
                "in the new set: its old share removed, the new one kept."
            } else {
                "in the new set: it holds only the new share."
            };
            (wipe.pending().len(), what.to_owned())
        })
    };
    state.ceremony = Ceremony::Wipe(wipe);
    let (left, what) = result?;
    Ok(vec![ReshareEvent::Wiped {
        card: view,
        what,
        left,
    }])
}
