//! The card reader of a terminal paired with a real HSM: every PC/SC reader is a slot (its name,
//! and the card in it: holder, serial, PIN tries left), then, where the terminal configuration
//! allows soft cards, the soft card files of a configured directory.
//!
//! Reader events are polled ([`CardReader::poll`]): `SCardGetStatusChange` with a zero timeout
//! tells, without connecting, which readers hold a card; only a reader whose presence or ATR
//! changed is opened again (briefly, exclusive) to read the new card's holder and serial. A
//! card the worker holds (its PIN being typed) is never opened by the poll: its state does not
//! change while it is held. Comparing presence and ATR, not PC/SC's event counter, matters: the
//! reset that closing a card causes bumps the counter, and would have the poll reopen the card
//! forever.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use quorum::card::Card;
use quorum::{CardPolicy, PcscCard, SoftCard};

use super::message::{CardView, SlotView};
use super::worker::{CardReader, InsertedCard};
use crate::flows::login::card_view;

/// Most soft card files read from the configured directory.
pub const MAX_SOFT_CARDS: usize = 32;

/// The cards within reach after a change: what the login and cards screens list, and which
/// smartcards are in a reader now (their serials).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReaderReport {
    /// The slots, as the screens list them.
    pub slots: Vec<SlotView>,
    /// The serials of the smartcards in a reader.
    pub present: Vec<String>,
}

/// One PC/SC reader as last seen.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ReaderSlot {
    name: String,
    /// The card's ATR while one is present.
    atr: Option<Vec<u8>>,
    /// The card as read, or why it could not be.
    card: Result<Option<CardView>, String>,
}

/// PC/SC readers and the configured soft cards.
pub struct PcscReader {
    context: Option<pcsc::Context>,
    /// Why PC/SC cannot be used, while it cannot.
    unavailable: Option<String>,
    readers: Vec<ReaderSlot>,
    soft: Vec<(PathBuf, String)>,
    policy: CardPolicy,
}

impl PcscReader {
    /// The readers PC/SC lists now, and the soft card files (`*.card`) in `soft_dir` when
    /// `policy` allows soft cards (none otherwise). Never fails: a missing pcscd shows as a
    /// slot that says so.
    pub fn new(soft_dir: Option<&Path>, policy: CardPolicy) -> PcscReader {
        let soft = soft_slots(soft_dir, policy);
        let mut reader = PcscReader {
            context: None,
            unavailable: None,
            readers: Vec::new(),
            soft,
            policy,
        };
        reader.refresh();
        reader
    }

    /// Reads the readers' states; true when anything shown changed.
    fn refresh(&mut self) -> bool {
        let before = (self.readers.clone(), self.unavailable.clone());
        match self.states() {
            Ok(states) => {
                self.unavailable = None;
                let old = std::mem::take(&mut self.readers);
                self.readers = states
                    .into_iter()
                    .map(
                        |(name, atr)| match old.iter().find(|r| r.name == name && r.atr == atr) {
                            Some(same) => same.clone(),
                            None => {
                                let card = read_card(&name, atr.is_some());
                                ReaderSlot { name, atr, card }
                            }
                        },
                    )
                    .collect();
            }
            Err(why) => {
                self.context = None;
                self.readers.clear();
                self.unavailable = Some(why);
            }
        }
        (self.readers.clone(), self.unavailable.clone()) != before
    }

    /// Each reader's name and, when it holds a card, the card's ATR.
    #[allow(clippy::type_complexity)]
    fn states(&mut self) -> Result<Vec<(String, Option<Vec<u8>>)>, String> {
        if self.context.is_none() {
            self.context = Some(
                pcsc::Context::establish(pcsc::Scope::User)
                    .map_err(|e| format!("no PC/SC service (is pcscd running?): {e}"))?,
            );
        }
        let context = self.context.as_ref().expect("established above");
        let names = match context.list_readers_owned() {
            Ok(names) => names,
            Err(pcsc::Error::NoReadersAvailable) => Vec::new(),
            Err(e) => return Err(format!("cannot list the card readers: {e}")),
        };
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut states: Vec<pcsc::ReaderState> = names
            .iter()
            .map(|n| pcsc::ReaderState::new(n.clone(), pcsc::State::UNAWARE))
            .collect();
        context
            .get_status_change(std::time::Duration::ZERO, &mut states)
            .map_err(|e| format!("cannot read the card readers' state: {e}"))?;
        Ok(names
            .iter()
            .zip(&states)
            .map(|(name, state)| {
                let present = state.event_state().contains(pcsc::State::PRESENT);
                (
                    name.to_string_lossy().into_owned(),
                    present.then(|| state.atr().to_vec()),
                )
            })
            .collect())
    }

    /// What the screens show now.
    pub fn now(&self) -> ReaderReport {
        ReaderReport {
            slots: self.slots(),
            present: self
                .readers
                .iter()
                .filter_map(|r| r.card.as_ref().ok().and_then(Option::as_ref))
                .map(|card| card.serial.clone())
                .collect(),
        }
    }
}

/// Opens the card in `reader` just long enough to read who it belongs to.
fn read_card(reader: &str, present: bool) -> Result<Option<CardView>, String> {
    if !present {
        return Ok(None);
    }
    match PcscCard::open(reader) {
        Ok(card) if !card.has_keys() => Err(format!(
            "card {} has no keys: set it up first",
            Card::info(&card).serial
        )),
        Ok(card) => Ok(Some(card_view(&Card::info(&card)))),
        Err(quorum::CardError::Removed) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// The soft cards listed: those of `soft_dir` where `policy` allows soft cards, else none.
fn soft_slots(soft_dir: Option<&Path>, policy: CardPolicy) -> Vec<(PathBuf, String)> {
    match soft_dir {
        Some(dir) if policy.allows_soft_cards() => soft_cards(dir, policy),
        _ => Vec::new(),
    }
}

/// The soft card files (`*.card`) of `dir`, in name order, with their labels.
fn soft_cards(dir: &Path, policy: CardPolicy) -> Vec<(PathBuf, String)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "card"))
        .collect();
    paths.sort();
    paths.truncate(MAX_SOFT_CARDS);
    paths
        .into_iter()
        .map(|path| {
            let file = path
                .file_name()
                .map_or_else(String::new, |f| f.to_string_lossy().into_owned());
            let label = match SoftCard::open(&path, policy) {
                Ok(card) => format!("{} · file {file}", card_view(&Card::info(&card)).name()),
                Err(e) => format!("soft card file {file}: {e}"),
            };
            (path, label)
        })
        .collect()
}

/// `Reader 0 00 00 · card FFFF:7E550001 (Ada) · 3 tries left`.
fn reader_label(slot: &ReaderSlot) -> String {
    let name = crate::cli::printable(&slot.name);
    match &slot.card {
        Ok(Some(card)) => format!("{name} · {} · {}", card.name(), card.tries_text()),
        Ok(None) => format!("{name} · no card"),
        Err(why) => format!("{name} · {why}"),
    }
}

impl CardReader for PcscReader {
    fn slots(&self) -> Vec<SlotView> {
        let mut slots: Vec<SlotView> = self
            .readers
            .iter()
            .map(|r| SlotView {
                label: reader_label(r),
            })
            .collect();
        if let Some(why) = &self.unavailable {
            slots.push(SlotView { label: why.clone() });
        }
        slots.extend(self.soft.iter().map(|(_, label)| SlotView {
            label: label.clone(),
        }));
        slots
    }

    fn insert(&mut self, slot: usize) -> Result<Box<dyn InsertedCard>, String> {
        let readers = self.readers.len() + usize::from(self.unavailable.is_some());
        if let Some(reader) = self.readers.get(slot) {
            if let Err(why) = &reader.card {
                return Err(why.clone());
            }
            let name = reader.name.clone();
            if CString::new(name.as_str()).is_err() {
                return Err("the reader's name cannot be used".to_owned());
            }
            return match PcscCard::open(&name) {
                Ok(card) => Ok(Box::new(card)),
                Err(quorum::CardError::Removed) => Err(format!(
                    "no card in {}: insert one",
                    crate::cli::printable(&name)
                )),
                Err(e) => Err(e.to_string()),
            };
        }
        if slot < readers {
            return Err(self.unavailable.clone().unwrap_or_default());
        }
        let (path, _) = self.soft.get(slot - readers).ok_or("no such card slot")?;
        SoftCard::open(path, self.policy)
            .map(|c| Box::new(c) as Box<dyn InsertedCard>)
            .map_err(|e| e.to_string())
    }

    fn poll(&mut self) -> Option<ReaderReport> {
        self.refresh().then(|| self.now())
    }

    fn report(&self) -> Option<ReaderReport> {
        Some(self.now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_the_reader_and_the_card_or_why_not() {
        let card = CardView {
            holder: Some("Ada Example".into()),
            serial: "FFFF:7E550001".into(),
            soft: false,
            tries_left: Some(3),
        };
        let slot = |card| ReaderSlot {
            name: "Reader\u{1b} 0".into(),
            atr: None,
            card,
        };
        assert_eq!(
            reader_label(&slot(Ok(Some(card)))),
            "Reader\u{fffd} 0 · card FFFF:7E550001 (Ada Example) · 3 tries left"
        );
        assert_eq!(reader_label(&slot(Ok(None))), "Reader\u{fffd} 0 · no card");
        assert_eq!(
            reader_label(&slot(Err("card X has no keys: set it up first".into()))),
            "Reader\u{fffd} 0 · card X has no keys: set it up first"
        );
    }

    #[test]
    fn soft_cards_are_listed_only_where_the_configuration_allows_them() {
        let dir = tempfile::tempdir().unwrap();
        let pin = quorum::Pin::from_slice(b"a long enough passphrase");
        SoftCard::create(
            &dir.path().join("ada.card"),
            Some("Ada Soft"),
            "SOFT:0042",
            &pin,
            quorum::Argon2Params::insecure_for_tests(),
            CardPolicy::allowed_by_configuration(),
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a card").unwrap();
        let listed = soft_slots(Some(dir.path()), CardPolicy::allowed_by_configuration());
        assert_eq!(listed.len(), 1, "{listed:?}");
        // A test card (weak Argon2) is listed with why it cannot be used.
        assert!(
            listed[0].1.starts_with("soft card file ada.card: "),
            "{listed:?}"
        );
        // (No PC/SC here: the card stack is only touched under its lock.)
        assert!(
            soft_slots(Some(dir.path()), CardPolicy::hardware_only()).is_empty(),
            "a terminal that refuses soft cards lists none"
        );
    }
}
