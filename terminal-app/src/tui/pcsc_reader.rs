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
use crate::flows::newcard::NewCardError;
use crate::flows::pin::{OpenPgpPinCard, PinCard};

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
    /// The configured soft card directory, where new soft cards are made.
    soft_dir: Option<PathBuf>,
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
            soft_dir: soft_dir.map(Path::to_path_buf),
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

/// What a slot number stands for.
enum Slot {
    /// The PC/SC reader of this name (holding a card or not).
    Reader(String),
    /// The soft card file at this path.
    Soft(PathBuf),
}

impl PcscReader {
    /// The reader or soft card file of `slot`, or why it cannot be used.
    fn slot(&self, slot: usize) -> Result<Slot, String> {
        let readers = self.readers.len() + usize::from(self.unavailable.is_some());
        if let Some(reader) = self.readers.get(slot) {
            if CString::new(reader.name.as_str()).is_err() {
                return Err("the reader's name cannot be used".to_owned());
            }
            return match &reader.card {
                Ok(None) => Err(format!(
                    "no card in {}: insert one",
                    crate::cli::printable(&reader.name)
                )),
                _ => Ok(Slot::Reader(reader.name.clone())),
            };
        }
        if slot < readers {
            return Err(self.unavailable.clone().unwrap_or_default());
        }
        let (path, _) = self.soft.get(slot - readers).ok_or("no such card slot")?;
        Ok(Slot::Soft(path.clone()))
    }

    /// The directory a new soft card goes to, or why none may be made.
    fn new_card_dir(&self) -> Result<PathBuf, NewCardError> {
        if !self.policy.allows_soft_cards() {
            return Err(NewCardError::Other(format!(
                "this terminal takes hardware cards only: set {} and soft_card_dir in the \
                 terminal configuration to make soft cards",
                quorum::policy::ALLOW_SOFT_CARDS_KEY
            )));
        }
        self.soft_dir.clone().ok_or_else(|| {
            NewCardError::Other(
                "this terminal has no soft card directory: set soft_card_dir in [cards] of the \
                 terminal configuration"
                    .to_owned(),
            )
        })
    }
}

/// Opens the card in `reader` just long enough to read who it belongs to.
fn read_card(reader: &str, present: bool) -> Result<Option<CardView>, String> {
    if !present {
        return Ok(None);
    }
    match PcscCard::open(reader) {
        Ok(card) => slot_card(&Card::info(&card)),
        Err(quorum::CardError::Removed) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// A card in a reader as its slot shows it: a card without both keys (they read as zeros) is
/// named with what to do first, and is not offered to ceremonies.
fn slot_card(info: &quorum::CardInfo) -> Result<Option<CardView>, String> {
    if info.signing_public == [0; 32] || info.decryption_public == [0; 32] {
        return Err(format!("card {} has no keys: set it up first", info.serial));
    }
    Ok(Some(card_view(info)))
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

    /// An OpenPGP card is opened whatever its keys (a PIN change needs none); a soft card as
    /// the login opens it, under the configured policy.
    fn pin_card(&mut self, slot: usize) -> Result<Box<dyn PinCard>, String> {
        match self.slot(slot)? {
            Slot::Reader(name) => PcscCard::open(&name)
                .map(|card| Box::new(OpenPgpPinCard::new(card)) as Box<dyn PinCard>)
                .map_err(|e| match e {
                    quorum::CardError::Removed => {
                        format!("no card in {}: insert one", crate::cli::printable(&name))
                    }
                    e => e.to_string(),
                }),
            Slot::Soft(path) => SoftCard::open(&path, self.policy)
                .map(|c| Box::new(c) as Box<dyn PinCard>)
                .map_err(|e| e.to_string()),
        }
    }

    /// Whatever its keys (a set-up makes them); a soft card file is no OpenPGP card.
    fn openpgp_card(&mut self, slot: usize) -> Result<PcscCard, String> {
        match self.slot(slot)? {
            Slot::Reader(name) => PcscCard::open(&name).map_err(|e| match e {
                quorum::CardError::Removed => {
                    format!("no card in {}: insert one", crate::cli::printable(&name))
                }
                e => e.to_string(),
            }),
            Slot::Soft(_) => Err("that is a soft card file: choose a card reader".to_owned()),
        }
    }

    /// Sealed with production Argon2 under a random serial, in the configured directory; only
    /// where the card policy accepts soft cards.
    fn create_soft_card(
        &mut self,
        holder: &str,
        passphrase: &quorum::Pin,
    ) -> Result<(quorum::CardInfo, PathBuf), NewCardError> {
        let dir = self.new_card_dir()?;
        // A card past the listed ones would not show among the slots (nor push another out).
        if soft_cards(&dir, self.policy).len() >= MAX_SOFT_CARDS {
            return Err(NewCardError::Other(format!(
                "{} holds {MAX_SOFT_CARDS} soft cards, the most the terminal lists: move some \
                 away first",
                dir.display()
            )));
        }
        let mut random = [0u8; 4];
        getrandom::fill(&mut random)
            .map_err(|e| NewCardError::Other(format!("no randomness for a serial: {e}")))?;
        let serial = format!("SOFT:{}", hex::encode_upper(random));
        let path = dir.join(format!("{}.card", serial.replace(':', "-")));
        if path.exists() {
            return Err(NewCardError::Other(format!(
                "{} exists already: try again",
                path.display()
            )));
        }
        let card = SoftCard::create(
            &path,
            Some(holder),
            &serial,
            passphrase,
            quorum::Argon2Params::production(),
            self.policy,
        )?;
        let info = Card::info(&card);
        self.soft = soft_slots(Some(&dir), self.policy);
        Ok((info, path))
    }

    /// The card's own report replaces what the slot showed: the poll reopens a card only when
    /// its ATR changes, and a PIN change or a set-up leaves the ATR as it was.
    fn card_changed(&mut self, slot: usize, info: &quorum::CardInfo) -> Option<ReaderReport> {
        let reader = self.readers.get_mut(slot)?;
        let card = slot_card(info);
        if reader.card == card {
            return None;
        }
        reader.card = card;
        Some(self.now())
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

    fn info(serial: &str, keys: bool, tries: u8) -> quorum::CardInfo {
        quorum::CardInfo {
            holder: Some("Ada Example".into()),
            serial: serial.into(),
            signing_public: [u8::from(keys); 32],
            decryption_public: [u8::from(keys); 32],
            soft: false,
            pin_retries_left: Some(tries),
        }
    }

    #[test]
    fn a_slot_shows_the_tries_left_the_card_reported_after_a_pin_change_or_set_up() {
        let mut reader = offline(None, CardPolicy::hardware_only());
        reader.readers.push(ReaderSlot {
            name: "Reader 0".into(),
            atr: Some(vec![0x3b]),
            card: slot_card(&info("FFFF:7E550001", true, 3)),
        });
        assert!(reader.slots()[0].label.ends_with("3 tries left"));
        // A wrong PIN: the card's count, read again by the card, reaches the slot.
        let report = reader
            .card_changed(0, &info("FFFF:7E550001", true, 2))
            .expect("the slot changed");
        assert_eq!(
            report.slots[0].label,
            "Reader 0 · card FFFF:7E550001 (Ada Example) · 2 tries left"
        );
        assert_eq!(report.present, vec!["FFFF:7E550001".to_owned()]);
        // The same report again changes nothing; a slot past the readers is not a reader.
        assert!(
            reader
                .card_changed(0, &info("FFFF:7E550001", true, 2))
                .is_none()
        );
        assert!(
            reader
                .card_changed(3, &info("FFFF:7E550001", true, 1))
                .is_none()
        );
        // A card set up (its keys now on it) is offered; one without keys says what to do.
        let report = reader
            .card_changed(0, &info("FFFF:7E550001", false, 3))
            .unwrap();
        assert!(
            report.slots[0]
                .label
                .ends_with("has no keys: set it up first")
        );
        assert!(report.present.is_empty());
    }

    /// A reader that never asked PC/SC (the card stack is only touched under its lock).
    fn offline(soft_dir: Option<&Path>, policy: CardPolicy) -> PcscReader {
        PcscReader {
            context: None,
            unavailable: Some("no PC/SC here".to_owned()),
            readers: Vec::new(),
            soft: soft_slots(soft_dir, policy),
            soft_dir: soft_dir.map(Path::to_path_buf),
            policy,
        }
    }

    fn refusal(reader: &mut PcscReader) -> String {
        let pass = quorum::Pin::from_slice(b"a long enough passphrase");
        match reader.create_soft_card("Ada", &pass) {
            Err(NewCardError::Other(why)) => why,
            Err(NewCardError::Passphrase(why)) => panic!("refused the passphrase: {why}"),
            Ok((info, path)) => panic!("made {} at {}", info.serial, path.display()),
        }
    }

    #[test]
    fn a_new_soft_card_needs_a_soft_card_directory_and_a_policy_that_allows_soft_cards() {
        let mut reader = offline(None, CardPolicy::allowed_by_configuration());
        let why = refusal(&mut reader);
        assert!(why.contains("no soft card directory"), "{why}");
        assert!(why.contains("soft_card_dir"), "{why}");

        let dir = tempfile::tempdir().unwrap();
        let mut reader = offline(Some(dir.path()), CardPolicy::hardware_only());
        let why = refusal(&mut reader);
        assert!(why.contains("hardware cards only"), "{why}");
        assert!(why.contains("cards.allow_soft_cards"), "{why}");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "nothing was written"
        );
        // Nor is a PIN change reached through a slot that does not exist.
        assert!(reader.pin_card(0).is_err());
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
