//! The worker's side of the enrolment: the PSO or auditor ceremony, each card through
//! [`super::super::new_set`], the registration after the n-th, and what an abandoned one
//! changed.

use quorum::card::Pin;
use quorum::ceremony::{AuditorEnrolment, CeremonyError, Enrolment, Link, LinkError, Progress};

use super::super::login::card_view;
use super::super::new_set::{NewSetCards, OpenRefused};
use super::{EnrolCommand, EnrolEvent, SetKind};
use crate::tui::message::Event;
use crate::tui::worker::CardReader;

/// The ceremony on the worker.
#[derive(Default)]
enum Ceremony {
    #[default]
    Idle,
    Pso(Box<Enrolment>),
    Auditors(Box<AuditorEnrolment>),
}

/// The worker's side: the ceremony, the card in hand and the cards that joined.
#[derive(Default)]
pub struct EnrolWork {
    ceremony: Ceremony,
    cards: NewSetCards,
}

/// Runs one enrolment step on the worker.
pub fn work(
    link: &mut (dyn Link + Send),
    reader: &mut dyn CardReader,
    state: &mut EnrolWork,
    command: EnrolCommand,
) -> Vec<Event> {
    let events = match command {
        EnrolCommand::Begin { kind, threshold, n } => {
            *state = EnrolWork::default();
            match begin(link, state, kind, threshold, n) {
                Ok(event) => vec![event],
                Err(e) => return failure(e),
            }
        }
        EnrolCommand::Insert(slot) => match state.cards.insert(reader, slot) {
            Ok(view) => vec![EnrolEvent::Inserted(view)],
            Err(reason) => vec![EnrolEvent::Refused(reason)],
        },
        EnrolCommand::Verify(pin) => return verify(link, state, &pin),
        EnrolCommand::Abort => vec![EnrolEvent::Aborted(abort(state))],
    };
    events.into_iter().map(Event::Enrol).collect()
}

fn begin(
    link: &mut (dyn Link + Send),
    state: &mut EnrolWork,
    kind: SetKind,
    threshold: u8,
    n: u8,
) -> Result<EnrolEvent, CeremonyError> {
    let (ceremony, set_number) = match kind {
        SetKind::Pso => {
            let enrolment = Enrolment::begin(link, threshold, n)?;
            let id = enrolment.id().to_string();
            state.ceremony = Ceremony::Pso(Box::new(enrolment));
            (
                id,
                quorum::ceremony::ActiveSet::fetch(link)?.map_or(1, |s| s.set_number + 1),
            )
        }
        SetKind::Auditor => {
            let enrolment = AuditorEnrolment::begin(link, threshold, n)?;
            let id = enrolment.id().to_string();
            state.ceremony = Ceremony::Auditors(Box::new(enrolment));
            (id, auditor_set_number(link)?)
        }
    };
    Ok(EnrolEvent::Began {
        ceremony,
        set_number,
    })
}

fn auditor_set_number(link: &mut (dyn Link + Send)) -> Result<u32, CeremonyError> {
    use hsm_link::message::{AdminRequest, AdminResponse};
    match link.admin(AdminRequest::GetCardSets)? {
        AdminResponse::CardSets { auditor, .. } => Ok(auditor.map_or(1, |s| s.set_number + 1)),
        _ => Err(LinkError::Unexpected.into()),
    }
}

fn failure(e: CeremonyError) -> Vec<Event> {
    match e {
        CeremonyError::Link(e @ LinkError::Failed(_)) => {
            vec![crate::tui::worker::link_failure(e)]
        }
        e => vec![Event::Enrol(EnrolEvent::Refused(e.to_string()))],
    }
}

fn verify(link: &mut (dyn Link + Send), state: &mut EnrolWork, pin: &Pin) -> Vec<Event> {
    let mut card = match state.cards.open(pin) {
        Ok(card) => card,
        Err(OpenRefused::WrongPin(view)) => return vec![Event::Enrol(EnrolEvent::WrongPin(view))],
        Err(OpenRefused::Refused(why)) => return vec![Event::Enrol(EnrolEvent::Refused(why))],
    };
    let view = card_view(&card.info());
    let ceremony = &mut state.ceremony;
    let added: Result<Progress, CeremonyError> =
        state.cards.add(&mut *card, &view, |card| match ceremony {
            Ceremony::Idle => Err(CeremonyError::NoActiveSet),
            Ceremony::Pso(e) => e.add_card(card),
            Ceremony::Auditors(e) => e.add_card(card),
        });
    drop(card);
    let progress = match added {
        Ok(progress) => progress,
        Err(CeremonyError::Link(e @ LinkError::Failed(_))) => {
            return vec![crate::tui::worker::link_failure(e)];
        }
        Err(CeremonyError::NoActiveSet) => {
            return vec![Event::Enrol(EnrolEvent::Refused(
                "no enrolment is under way: open one first".into(),
            ))];
        }
        Err(e) => {
            return vec![Event::Enrol(EnrolEvent::Refused(format!(
                "{}: {e}",
                view.name()
            )))];
        }
    };
    let mut events = vec![Event::Enrol(EnrolEvent::Added {
        card: view,
        have: progress.have,
    })];
    if progress.complete() {
        events.push(Event::Enrol(register(link, state)));
    }
    events
}

/// Registers the set once the n-th card is in; a refusal says nothing was registered.
fn register(link: &mut (dyn Link + Send), state: &mut EnrolWork) -> EnrolEvent {
    let names = |cards: &[hsm_link::domain::CardDescription]| {
        cards
            .iter()
            .map(|c| format!("{} · {}", c.holder.as_str(), c.serial.as_str()))
            .collect::<Vec<_>>()
    };
    let result = match std::mem::take(&mut state.ceremony) {
        Ceremony::Idle => return EnrolEvent::Refused("no enrolment is under way".into()),
        Ceremony::Pso(e) => e.finish(link).map(|r| EnrolEvent::Registered {
            set_number: r.set_number,
            threshold: r.threshold,
            cards: names(&r.cards),
        }),
        Ceremony::Auditors(e) => e.finish(link).map(|r| EnrolEvent::Registered {
            set_number: r.set_number,
            threshold: r.threshold,
            cards: names(&r.cards),
        }),
    };
    let added = state.cards.finish().unwrap_or_default();
    result.unwrap_or_else(|e| {
        EnrolEvent::Aborted(format!(
            "The HSM did not register the set: {e}. Nothing was registered; the partition's \
             card sets are unchanged. Cards that joined: {added}."
        ))
    })
}

/// Ends the ceremony and says what was and was not changed.
fn abort(state: &mut EnrolWork) -> String {
    let added = state.cards.finish();
    match (std::mem::take(&mut state.ceremony), added) {
        (Ceremony::Idle, _) => "No enrolment was under way: nothing changed.".to_owned(),
        (Ceremony::Pso(e), None) => format!(
            "Enrolment {} abandoned before any card was written: nothing was registered and no \
             card changed.",
            e.id()
        ),
        (Ceremony::Pso(e), Some(added)) => format!(
            "Enrolment {} abandoned: nothing was registered, the partition's card sets are \
             unchanged, and the secret is gone. These cards hold a share of the abandoned \
             secret, which no registered set opens (the next enrolment replaces it): {added}.",
            e.id(),
        ),
        (Ceremony::Auditors(e), _) => format!(
            "Auditor enrolment {} abandoned: nothing was registered; the cards only signed \
             proofs and are unchanged.",
            e.id()
        ),
    }
}
