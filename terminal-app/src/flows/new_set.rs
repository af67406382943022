//! The stage the enrolment ([`super::enrol`]), the re-share ([`super::reshare`]) and the
//! revocation ([`super::revoke`]) share: the new set's cards, one at a time (the card chosen,
//! its PIN, the ceremony's step for that card, which writes its share and reads it back), and
//! what an abandoned ceremony left on them (the cards that hold an unused share).
//!
//! The model part is the card in hand (its PIN keys and its lines); the worker part
//! (`NewSetCards`) holds the inserted card and the names of the cards written, so each
//! ceremony only says what its step for a card is and how its abandonment reads.

use quorum::card::{Pin, VerifiedCard};
use quorum::ceremony::{CeremonyError, Progress};
use quorum::error::CardError;
use ratatui::text::Line;

use super::Outcome;
use super::login::card_view;
use crate::tui::message::{CardView, Effect, PinFor, SlotView};
use crate::tui::theme::Theme;
use crate::tui::view;
use crate::tui::worker::{CardReader, InsertedCard};

/// The largest n offered (the HSM's own bound may be lower; it then says so).
pub const MAX_CARDS: u8 = 9;

/// Where the current card stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Step {
    /// Choosing the card.
    #[default]
    Choose,
    /// Reading the card.
    Opening,
    /// Its PIN.
    Pin,
    /// The card's step runs (and, after the last card, the registration).
    Working,
}

/// The new set's m and n, as the re-share and the revocation choose them: ↑↓ pick m or n
/// (`field` 0 or 1), ←→ change it; m stays within 1..=n, n within 1..=[`MAX_CARDS`]. False for
/// any other key.
pub(crate) fn size_key(
    (threshold, n, field): (&mut u8, &mut u8, &mut usize),
    action: crate::tui::keymap::Action,
) -> bool {
    use crate::tui::keymap::Action;
    match action {
        Action::Up | Action::Down => *field = 1 - (*field).min(1),
        Action::More if *field == 0 => *threshold = (*threshold + 1).min(*n),
        Action::More => *n = (*n + 1).min(MAX_CARDS),
        Action::Less if *field == 0 => *threshold = threshold.saturating_sub(1).max(1),
        Action::Less => {
            *n = n.saturating_sub(1).max(1);
            *threshold = (*threshold).min(*n);
        }
        _ => return false,
    }
    true
}

/// The new set's m and n, the one the arrows change marked.
pub(crate) fn size_lines(threshold: u8, n: u8, field: usize) -> [Line<'static>; 2] {
    let mark = |i: usize| if field == i { "›" } else { " " };
    [
        Line::from(format!("{} m  {threshold:>2}  cards needed", mark(0))),
        Line::from(format!("{} n  {n:>2}  cards in the new set", mark(1))),
    ]
}

/// The PIN keys of the card in hand: a character, an erasure, Enter (the PIN goes to the
/// worker as `pin_for`). `None` for any other key, which the flow answers itself.
pub(crate) fn pin_key(
    pin_len: &mut usize,
    action: crate::tui::keymap::Action,
    pin_for: PinFor,
) -> Option<Outcome> {
    use crate::tui::keymap::Action;
    if let Some(typed) = super::pin_typing(pin_len, action) {
        return Some(typed);
    }
    match action {
        Action::Select if *pin_len > 0 => {
            *pin_len = 0;
            Some(Outcome::one(Effect::SubmitPin(pin_for)))
        }
        _ => None,
    }
}

/// The card in hand and its PIN as bullets.
pub(crate) fn pin_lines(card: &CardView, pin_len: usize) -> Vec<Line<'static>> {
    vec![
        Line::from(format!("Card    {}", card.name())),
        Line::from(format!("Tries   {}", card.tries_text())),
        Line::from(format!("PIN     {}▏", "•".repeat(pin_len.min(40)))),
    ]
}

/// What to insert, then the slots with the selected one marked.
pub(crate) fn slot_lines(
    ask: String,
    slots: &[SlotView],
    selected: usize,
    theme: &Theme,
) -> Vec<Line<'static>> {
    let mut lines = vec![Line::styled(ask, theme.muted)];
    for (i, slot) in slots.iter().enumerate() {
        lines.push(view::menu_line(i + 1, &slot.label, i == selected, theme));
    }
    lines
}

/// `Wrong PIN for card X (Ada): 2 tries left.`
pub(crate) fn wrong_pin_text(card: &CardView) -> String {
    format!("Wrong PIN for {}: {}.", card.name(), card.tries_text())
}

/// `card X (Ada): share written and read back (1 of 3).`
pub(crate) fn written_text(card: &CardView, have: usize, n: impl std::fmt::Display) -> String {
    format!(
        "{}: share written and read back ({have} of {n}).",
        card.name()
    )
}

/// Why a card could not be opened with its PIN.
#[derive(Debug)]
pub(crate) enum OpenRefused {
    /// Wrong PIN, tries left: the card stays in.
    WrongPin(CardView),
    /// Anything else: why.
    Refused(String),
}

/// The worker's side of the new set's cards: the card inserted, and the cards whose new share
/// is written (wiped of nothing: names only).
#[derive(Default)]
pub(crate) struct NewSetCards {
    inserted: Option<Box<dyn InsertedCard>>,
    written: Vec<String>,
}

impl NewSetCards {
    /// The card in `slot` is inserted: as shown, or why not.
    pub(crate) fn insert(
        &mut self,
        reader: &mut dyn CardReader,
        slot: usize,
    ) -> Result<CardView, String> {
        let card = reader.insert(slot)?;
        let view = card_view(&card.info());
        self.inserted = Some(card);
        Ok(view)
    }

    /// Opens the inserted card with `pin`; a wrong PIN with tries left keeps it in.
    pub(crate) fn open(&mut self, pin: &Pin) -> Result<Box<dyn VerifiedCard + Send>, OpenRefused> {
        open_card(&mut self.inserted, pin)
    }

    /// The card's step of the new set (`add`: its share written and read back); on success the
    /// card is counted among those that hold a new share.
    pub(crate) fn add(
        &mut self,
        card: &mut (dyn VerifiedCard + Send),
        view: &CardView,
        add: impl FnOnce(&mut (dyn VerifiedCard + Send)) -> Result<Progress, CeremonyError>,
    ) -> Result<Progress, CeremonyError> {
        let progress = add(card)?;
        self.written.push(view.name());
        Ok(progress)
    }

    /// A new ceremony: no card in, none written.
    pub(crate) fn clear(&mut self) {
        *self = NewSetCards::default();
    }

    /// The ceremony is over: the card goes back, and the cards that hold a new share (which no
    /// registered set opens if it was abandoned), joined for the report; `None` when none do.
    pub(crate) fn finish(&mut self) -> Option<String> {
        let written = std::mem::take(&mut self.written);
        self.inserted = None;
        (!written.is_empty()).then(|| written.join(", "))
    }
}

/// Opens the inserted card with `pin`; a wrong PIN with tries left keeps it in.
pub(crate) fn open_card(
    inserted: &mut Option<Box<dyn InsertedCard>>,
    pin: &Pin,
) -> Result<Box<dyn VerifiedCard + Send>, OpenRefused> {
    let Some(card) = inserted.take() else {
        return Err(OpenRefused::Refused(
            "no card is inserted: choose one first".into(),
        ));
    };
    match card.verify(pin) {
        Ok(verified) => Ok(verified),
        Err((card, CardError::WrongPin { retries_left })) if retries_left != Some(0) => {
            let mut view = card_view(&card.info());
            view.tries_left = retries_left;
            *inserted = Some(card);
            Err(OpenRefused::WrongPin(view))
        }
        Err((card, e)) => Err(OpenRefused::Refused(format!(
            "{}: {e}",
            card_view(&card.info()).name()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::keymap::Action;

    #[test]
    fn the_new_sets_size_keeps_m_within_1_to_n_and_n_within_the_most_offered() {
        let (mut m, mut n, mut field) = (2, 3, 0);
        let mut press = |action| size_key((&mut m, &mut n, &mut field), action);
        for _ in 0..5 {
            assert!(press(Action::More));
        }
        assert!(press(Action::Down));
        for _ in 0..20 {
            press(Action::More);
        }
        assert!(!press(Action::Select), "not a size key");
        assert_eq!((m, n, field), (3, MAX_CARDS, 1));
        let mut press = |action| size_key((&mut m, &mut n, &mut field), action);
        for _ in 0..20 {
            press(Action::Less);
        }
        assert_eq!((m, n), (1, 1), "n down to 1 takes m with it");
        let [m_line, n_line] = size_lines(1, 1, 1);
        assert_eq!(m_line.to_string(), "  m   1  cards needed");
        assert_eq!(n_line.to_string(), "› n   1  cards in the new set");
    }
}
