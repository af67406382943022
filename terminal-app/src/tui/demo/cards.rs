//! The demo's soft cards: the fixture's (their holders and PINs are public, shown on the first
//! screen and in the README), the spare ones for enrolling the second partition's PSO set, and
//! the demo's "reader", which offers every card file in the demo's card directory as a slot
//! (those made with `n` too, so they are there again after a restart).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use quorum::{Argon2Params, Card, Pin, SoftCard};

use super::{DEMO_CARD_POLICY, Demo};
use crate::tui::message::SlotView;
use crate::tui::model::DemoCard;
use crate::tui::worker::{CardReader, InsertedCard};

/// The demo's cards. Their PINs are public: they are demo cards.
pub const DEMO_CARDS: [DemoCard; 8] = [
    card("PSO", "Ada Demo", "SOFT:0001", "ada-demo-pin"),
    card("PSO", "Ben Demo", "SOFT:0002", "ben-demo-pin"),
    card("PSO", "Cleo Demo", "SOFT:0003", "cleo-demo-pin"),
    card("auditor", "Dana Audit", "SOFT:0101", "dana-demo-pin"),
    card("auditor", "Eli Audit", "SOFT:0102", "eli-demo-pin"),
    card("SO", "Finn Operator", "SOFT:0201", "finn-demo-pin"),
    card("SO", "Finn Operator", "SOFT:0202", "finn-spare-pin"),
    card("SO", "Gia Operator", "SOFT:0203", "gia-demo-pin"),
];

/// Blank cards (no share, in no set) for the PSO set the user enrols on the second partition.
pub const SPARE_CARDS: [DemoCard; 3] = [
    card("spare", "Hana Spare", "SOFT:0301", "hana-demo-pin"),
    card("spare", "Ivo Spare", "SOFT:0302", "ivo-demo-pin"),
    card("spare", "Jun Spare", "SOFT:0303", "jun-demo-pin"),
];

/// The first serial number of a card made with `n` (`SOFT:0900` on).
const FIRST_NEW_SERIAL: u32 = 900;

const fn card(
    set: &'static str,
    holder: &'static str,
    serial: &'static str,
    pin: &'static str,
) -> DemoCard {
    DemoCard {
        set,
        holder,
        serial,
        pin,
    }
}

/// A card's file in `dir`.
pub(super) fn card_path(dir: &Path, serial: &str) -> PathBuf {
    dir.join(format!("{}.card", serial.replace(':', "-")))
}

fn card_label(c: &DemoCard) -> String {
    format!("soft card {} ({}, {} set)", c.serial, c.holder, c.set)
}

fn new_card_label(serial: &str, holder: &str) -> String {
    format!("soft card {serial} ({holder}, new)")
}

/// Makes `c`'s file in `dir` (an Argon2 run).
pub(super) fn create(
    dir: &Path,
    c: &DemoCard,
    params: Argon2Params,
) -> Result<SoftCard, quorum::QuorumError> {
    let pin = Pin::from_slice(c.pin.as_bytes());
    SoftCard::create(
        &card_path(dir, c.serial),
        Some(c.holder),
        c.serial,
        &pin,
        params,
        DEMO_CARD_POLICY,
    )
}

/// The demo's "reader": its soft cards, each a slot; inserting one opens its file.
pub(super) struct SoftCardReader {
    cards: Vec<(PathBuf, String)>,
    dir: PathBuf,
    /// Keeps the demo (its temporary card directory, or its state's lock) while the TUI runs.
    _demo: Arc<Demo>,
    test_cards: bool,
}

impl SoftCardReader {
    /// The cards in `dir`: the partition's `own` fixture cards, then every card file that is
    /// not one of the `fixture` cards (made with `n`, in an earlier run or this one) by its
    /// name. Another partition's fixture cards are left out: each is in a set of its own
    /// partition or blank for it, and a list longer than the screen hides what follows it at
    /// 80×24.
    pub(super) fn new(
        dir: PathBuf,
        own: &[&DemoCard],
        fixture: &[&DemoCard],
        demo: Arc<Demo>,
        test_cards: bool,
    ) -> SoftCardReader {
        let slot = |c: &&DemoCard| (card_path(&dir, c.serial), card_label(c));
        let mut cards: Vec<(PathBuf, String)> = own.iter().map(slot).collect();
        let fixture: Vec<(PathBuf, String)> = fixture.iter().map(slot).collect();
        cards.extend(made_here(&dir, &fixture, test_cards));
        SoftCardReader {
            cards,
            dir,
            _demo: demo,
            test_cards,
        }
    }

    fn open(&self, slot: usize) -> Result<SoftCard, String> {
        let (path, _) = self.cards.get(slot).ok_or("no such card slot")?;
        let card = if self.test_cards {
            SoftCard::open_test_card(path)
        } else {
            SoftCard::open(path, DEMO_CARD_POLICY)
        };
        card.map_err(|e| e.to_string())
    }

    /// The first `SOFT:09NN` serial no card file has.
    fn free_serial(&self) -> String {
        (FIRST_NEW_SERIAL..)
            .map(|n| format!("SOFT:{n:04}"))
            .find(|s| !card_path(&self.dir, s).exists())
            .unwrap_or_default()
    }
}

/// The card files in `dir` that are not among `known`, by name, each labelled with its holder
/// and serial (read from the file: no passphrase needed). A file that does not open as a soft
/// card is left out, and said so in the diagnostics log.
fn made_here(dir: &Path, known: &[(PathBuf, String)], test_cards: bool) -> Vec<(PathBuf, String)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "card"))
        .filter(|p| !known.iter().any(|(k, _)| k == p))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .filter_map(|path| {
            let card = if test_cards {
                SoftCard::open_test_card(&path)
            } else {
                SoftCard::open(&path, DEMO_CARD_POLICY)
            };
            match card {
                Ok(card) => {
                    let info = Card::info(&card);
                    let holder = info.holder.unwrap_or_else(|| "no holder".to_owned());
                    let label = new_card_label(&info.serial, &holder);
                    Some((path, crate::cli::printable(&label)))
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "not a demo soft card");
                    None
                }
            }
        })
        .collect()
}

impl CardReader for SoftCardReader {
    fn slots(&self) -> Vec<SlotView> {
        self.cards
            .iter()
            .map(|(_, label)| SlotView {
                label: label.clone(),
            })
            .collect()
    }

    fn insert(&mut self, slot: usize) -> Result<Box<dyn InsertedCard>, String> {
        self.open(slot)
            .map(|c| Box::new(c) as Box<dyn InsertedCard>)
    }

    fn create_soft_card(
        &mut self,
        holder: &str,
        passphrase: &Pin,
    ) -> Result<(quorum::CardInfo, PathBuf), crate::flows::newcard::NewCardError> {
        let serial = self.free_serial();
        // Beside the demo's own cards, so that the next start lists it again.
        let path = card_path(&self.dir, &serial);
        let params = if self.test_cards {
            Argon2Params::insecure_for_tests()
        } else {
            Argon2Params::production()
        };
        let card = SoftCard::create(
            &path,
            Some(holder),
            &serial,
            passphrase,
            params,
            DEMO_CARD_POLICY,
        )?;
        let info = Card::info(&card);
        self.cards
            .push((path.clone(), new_card_label(&serial, holder)));
        Ok((info, path))
    }

    fn pin_card(&mut self, slot: usize) -> Result<Box<dyn crate::flows::pin::PinCard>, String> {
        self.open(slot)
            .map(|c| Box::new(c) as Box<dyn crate::flows::pin::PinCard>)
    }
}
