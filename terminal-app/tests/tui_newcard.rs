//! Setting up a new card on the Cards screen: through `update` alone, its snapshots, the worker
//! making a soft card in the demo's directory (which then opens and joins the slots); an
//! OpenPGP card's set-up from the screen (reader, card, holder, admin PIN, new admin PIN twice,
//! user PIN twice), its snapshots, and the same behind the real pcscd (keys generated on the
//! card, holder and user PIN set, admin PIN changed; the reader's slot then shows the card and
//! a PIN change's new count).
#![cfg(feature = "embedded")] // the demo HSM is the embedded simulator

#[path = "support/tui_model.rs"]
mod tui_support;

use quorum::{Argon2Params, Card, PcscCard, Pin};
use ratatui::crossterm::event::KeyCode;
use terminal_app::flows::newcard::openpgp::{self, KeysView, OpenedCard, Retype};
use terminal_app::flows::newcard::{NewCardCommand, NewCardEvent, Stage};
use terminal_app::tui::demo::Demo;
use terminal_app::tui::message::{Command, DrillCommand, DrillEvent, Effect, Event, PinFor};
use terminal_app::tui::model::{Level, Model, Screen};
use terminal_app::tui::worker::Worker;
use tui_support::*;

fn newcard(c: NewCardCommand) -> Effect {
    Effect::Send(Command::NewCard(c))
}

fn holder() -> Model {
    let mut m = logged_in();
    ch(&mut m, '8');
    assert_eq!(ch(&mut m, 'n'), vec![Effect::PinClear]);
    assert_eq!(
        (m.screen, m.newcard.stage),
        (Screen::NewCard, Stage::Holder)
    );
    m
}

#[test]
fn the_holders_name_then_the_passphrase_twice_through_the_pin_buffer() {
    let mut m = holder();
    // Typing the name: q is a letter here, not quit.
    assert_eq!(typed(&mut m, "Quinn Officer"), Vec::new());
    assert_eq!(m.newcard.holder, "Quinn Officer");
    assert_eq!(
        key(&mut m, KeyCode::Enter),
        vec![
            Effect::PinClear,
            newcard(NewCardCommand::Begin {
                holder: "Quinn Officer".into()
            })
        ]
    );
    assert_eq!(m.newcard.stage, Stage::Pass);
    for stage in [Stage::Again, Stage::Working] {
        typed(&mut m, "zq-long-passphrase");
        assert_eq!(
            key(&mut m, KeyCode::Enter),
            vec![Effect::SubmitPin(PinFor::NewCard)]
        );
        assert_eq!(m.newcard.stage, stage);
    }
    assert!(
        !format!("{m:?}").contains("zq-long"),
        "no passphrase in the model"
    );
    let slots_before = m.login.slots.len();
    let mut slots = m.login.slots.clone();
    slots.push(terminal_app::tui::message::SlotView {
        label: "soft card SOFT:0908 (Quinn Officer, new)".into(),
    });
    event(
        &mut m,
        Event::NewCard(NewCardEvent::Made {
            card: card("Quinn Officer", "SOFT:0908", true, None),
            path: "/demo/SOFT-0908.card".into(),
            slots,
        }),
    );
    assert_eq!(m.newcard.stage, Stage::Over);
    assert_eq!(m.newcard.notice.as_ref().unwrap().level, Level::Ok);
    assert_eq!(m.login.slots.len(), slots_before + 1);
    assert_eq!(
        key(&mut m, KeyCode::Esc),
        vec![Effect::PinClear, newcard(NewCardCommand::Forget)]
    );
    assert_eq!(m.screen, Screen::Cards);
}

#[test]
fn a_refused_passphrase_is_asked_again_and_esc_abandons() {
    let mut m = holder();
    typed(&mut m, "Quinn");
    key(&mut m, KeyCode::Enter);
    for _ in 0..2 {
        typed(&mut m, "abc");
        key(&mut m, KeyCode::Enter);
    }
    event(
        &mut m,
        Event::NewCard(NewCardEvent::Refused("The two entries differ".into())),
    );
    assert_eq!((m.newcard.stage, m.newcard.typed), (Stage::Pass, [0, 0]));
    typed(&mut m, "ab");
    assert_eq!(
        key(&mut m, KeyCode::Esc),
        vec![Effect::PinClear, newcard(NewCardCommand::Forget)]
    );
    assert_eq!(m.newcard.stage, Stage::Holder);
    assert!(
        m.newcard
            .notice
            .as_ref()
            .unwrap()
            .text
            .contains("no card was made")
    );
}

fn draw(model: &Model, width: u16, height: u16) -> String {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|f| {
            terminal_app::tui::view::view(f, model, &terminal_app::tui::theme::Theme::monochrome())
        })
        .unwrap();
    terminal.backend().to_string()
}

#[test]
fn every_new_card_step_matches_its_snapshot() {
    let mut name = holder();
    typed(&mut name, "Quinn Offi");
    let mut pass = holder();
    typed(&mut pass, "Quinn Officer");
    key(&mut pass, KeyCode::Enter);
    typed(&mut pass, "abcdef");
    let mut made = pass.clone();
    key(&mut made, KeyCode::Enter);
    typed(&mut made, "abcdef");
    key(&mut made, KeyCode::Enter);
    let slots = made.login.slots.clone();
    event(
        &mut made,
        Event::NewCard(NewCardEvent::Made {
            card: card("Quinn Officer", "SOFT:0908", true, None),
            path: "demo/SOFT-0908.card".into(),
            slots,
        }),
    );
    for (name, model) in [
        ("newcard_holder", name),
        ("newcard_passphrase", pass),
        ("newcard_made", made),
    ] {
        insta::assert_snapshot!(format!("{name}_80x24"), draw(&model, 80, 24));
        insta::assert_snapshot!(format!("{name}_160x48"), draw(&model, 160, 48));
        for (w, h) in [(40, 12), (20, 6), (1, 1)] {
            let text = std::panic::catch_unwind(|| draw(&model, w, h));
            assert!(text.is_ok(), "{name} panicked at {w}x{h}");
        }
    }
}

fn worker() -> Worker {
    Demo::new(Argon2Params::insecure_for_tests(), true)
        .unwrap()
        .into_worker()
        .unwrap()
}

fn step(w: &mut Worker, c: NewCardCommand) -> Vec<Event> {
    w.handle(Command::NewCard(c))
}

fn entry(text: &str) -> NewCardCommand {
    NewCardCommand::Entry(Pin::from_slice(text.as_bytes()))
}

#[test]
fn the_worker_makes_a_soft_card_that_joins_the_slots_and_opens_with_its_passphrase() {
    let mut w = worker();
    let before = w.slots().len();
    let pass = "quinn-long-passphrase";
    assert!(
        step(
            &mut w,
            NewCardCommand::Begin {
                holder: "Quinn Officer".into()
            }
        )
        .is_empty()
    );
    // Different entries, then too short: refused, nothing made.
    assert!(step(&mut w, entry(pass)).is_empty());
    let e = step(&mut w, entry("quinn-long-passphrasf"));
    assert!(
        matches!(e.as_slice(), [Event::NewCard(NewCardEvent::Refused(t))] if t.contains("differ")),
        "{e:?}"
    );
    assert!(step(&mut w, entry("short")).is_empty());
    let e = step(&mut w, entry("short"));
    assert!(
        matches!(e.as_slice(), [Event::NewCard(NewCardEvent::Refused(t))] if t.contains("needs 12")),
        "{e:?}"
    );
    assert_eq!(w.slots().len(), before);
    assert!(step(&mut w, entry(pass)).is_empty());
    let e = step(&mut w, entry(pass));
    let [Event::NewCard(NewCardEvent::Made { card, slots, .. })] = e.as_slice() else {
        panic!("{e:?}")
    };
    assert_eq!(card.holder.as_deref(), Some("Quinn Officer"));
    assert!(card.soft);
    assert_eq!(slots.len(), before + 1);
    assert!(slots[before].label.contains(&card.serial));

    // The new slot opens with the passphrase: a drill names it as outside the active set.
    w.handle(Command::Drill(DrillCommand::Insert(before)));
    let e = w.handle(Command::Drill(DrillCommand::Verify(Pin::from_slice(
        pass.as_bytes(),
    ))));
    assert!(
        matches!(e.as_slice(), [Event::Drill(DrillEvent::Failed(r))] if r.contains("not in this partition's active card set")),
        "{e:?}"
    );
}

const READERS: [&str; 2] = [
    "Virtual Reader 0 · card FFFF:7E550001 (Ada Example) · 3 tries left",
    "Virtual Reader 1 · card FFFF:7E550002 has no keys: set it up first",
];

/// The Cards screen of a terminal with two readers, `o` pressed.
fn openpgp_reader() -> Model {
    let mut m = logged_in();
    ch(&mut m, '8');
    m.login.slots = READERS
        .iter()
        .map(|l| terminal_app::tui::message::SlotView { label: (*l).into() })
        .collect();
    assert_eq!(ch(&mut m, 'o'), vec![Effect::PinClear]);
    assert_eq!(m.screen, Screen::NewCard);
    m
}

fn flow(m: &Model) -> &openpgp::OpenPgpFlow {
    m.newcard.openpgp.as_ref().expect("an OpenPGP set-up")
}

fn fresh_card() -> OpenedCard {
    OpenedCard {
        card: terminal_app::tui::message::CardView {
            holder: None,
            serial: "FFFF:7E550002".into(),
            soft: false,
            tries_left: Some(3),
        },
        has_keys: false,
        admin_tries: 3,
    }
}

fn used_card() -> OpenedCard {
    OpenedCard {
        card: card("Ada Example", "FFFF:7E550001", false, Some(3)),
        has_keys: true,
        admin_tries: 3,
    }
}

fn keys() -> KeysView {
    KeysView::new(&quorum::GeneratedKeys {
        signing_public: [0x5a; 32],
        decryption_public: [0xc3; 32],
        signing_fingerprint: [0x1e; 20],
        decryption_fingerprint: [0x7b; 20],
        created: 1_700_000_000,
    })
}

/// The fresh card of reader 2 opened, its holder typed.
fn holder_typed() -> Model {
    let mut m = openpgp_reader();
    ch(&mut m, 'j');
    assert_eq!(
        key(&mut m, KeyCode::Enter),
        vec![Effect::PinClear, newcard(NewCardCommand::Open { slot: 1 })]
    );
    assert_eq!(flow(&m).stage, openpgp::Stage::Opening);
    event(&mut m, Event::NewCard(NewCardEvent::Opened(fresh_card())));
    assert_eq!(flow(&m).stage, openpgp::Stage::Holder);
    typed(&mut m, "Quinn Officer");
    m
}

#[test]
fn an_openpgp_set_up_walks_reader_card_holder_and_five_pins_through_the_pin_buffer() {
    let mut m = holder_typed();
    // Not ASCII: the card could not store it, so it is not taken.
    typed(&mut m, "é");
    assert_eq!(flow(&m).holder, "Quinn Officer");
    assert!(flow(&m).notice.as_ref().unwrap().text.contains("ASCII"));
    assert_eq!(
        key(&mut m, KeyCode::Enter),
        vec![
            Effect::PinClear,
            newcard(NewCardCommand::Begin {
                holder: "Quinn Officer".into()
            })
        ]
    );
    use openpgp::Stage::*;
    for next in [NewAdmin, NewAdminAgain, User, UserAgain, Working] {
        assert_eq!(
            typed(&mut m, "zq-secret-1").len(),
            11,
            "bullets: one push a key"
        );
        assert_eq!(
            key(&mut m, KeyCode::Enter),
            vec![Effect::SubmitPin(PinFor::NewCard)]
        );
        assert_eq!(flow(&m).stage, next);
    }
    assert!(
        !format!("{m:?}").contains("zq-secret"),
        "no PIN in the model"
    );
    // Keys do nothing while the card works.
    assert!(key(&mut m, KeyCode::Esc).is_empty());
    event(
        &mut m,
        Event::NewCard(NewCardEvent::SetUp {
            card: OpenedCard {
                card: card("Quinn Officer", "FFFF:7E550002", false, Some(3)),
                has_keys: true,
                admin_tries: 3,
            },
            keys: Box::new(keys()),
            text: "set up".into(),
        }),
    );
    assert_eq!(flow(&m).stage, Over);
    assert_eq!(flow(&m).keys.as_deref(), Some(&keys()));
    assert_eq!(
        key(&mut m, KeyCode::Esc),
        vec![Effect::PinClear, newcard(NewCardCommand::Forget)]
    );
    assert_eq!(m.screen, Screen::Cards);
    assert!(m.newcard.openpgp.is_none());
}

#[test]
fn a_card_with_keys_asks_for_its_serial_before_they_are_replaced() {
    let mut m = openpgp_reader();
    key(&mut m, KeyCode::Enter);
    event(&mut m, Event::NewCard(NewCardEvent::Opened(used_card())));
    assert_eq!(flow(&m).stage, openpgp::Stage::Overwrite);
    typed(&mut m, "FFFF:7E550002");
    key(&mut m, KeyCode::Enter);
    assert_eq!(flow(&m).stage, openpgp::Stage::Overwrite, "another serial");
    assert!(
        flow(&m)
            .notice
            .as_ref()
            .unwrap()
            .text
            .contains("type FFFF:7E550001")
    );
    for _ in 0..13 {
        key(&mut m, KeyCode::Backspace);
    }
    typed(&mut m, "ffff:7e550001");
    assert!(key(&mut m, KeyCode::Enter).is_empty());
    assert_eq!(flow(&m).stage, openpgp::Stage::Holder);
    // Esc at any entry lets the card go: nothing changed.
    assert_eq!(
        key(&mut m, KeyCode::Esc),
        vec![Effect::PinClear, newcard(NewCardCommand::Forget)]
    );
    assert_eq!(flow(&m).stage, openpgp::Stage::Reader);
    assert!(
        flow(&m)
            .notice
            .as_ref()
            .unwrap()
            .text
            .contains("nothing was changed")
    );
}

#[test]
fn refusals_ask_again_from_the_pin_they_concern() {
    let mut m = holder_typed();
    key(&mut m, KeyCode::Enter);
    for _ in 0..5 {
        typed(&mut m, "pin-pin-pin");
        key(&mut m, KeyCode::Enter);
    }
    event(
        &mut m,
        Event::NewCard(NewCardEvent::Retype {
            field: Retype::User,
            text: "the new user PIN needs at least 6 characters".into(),
        }),
    );
    assert_eq!(
        (flow(&m).stage, flow(&m).typed),
        (openpgp::Stage::User, [11, 11, 11, 0, 0])
    );
    for _ in 0..2 {
        typed(&mut m, "pin-pin-pin");
        key(&mut m, KeyCode::Enter);
    }
    event(
        &mut m,
        Event::NewCard(NewCardEvent::WrongAdmin {
            card: OpenedCard {
                admin_tries: 2,
                ..fresh_card()
            },
            text: "Wrong admin PIN (2 tries left): nothing was changed on the card.".into(),
        }),
    );
    assert_eq!(
        (flow(&m).stage, flow(&m).typed),
        (openpgp::Stage::Admin, [0; 5])
    );
    assert_eq!(flow(&m).card.as_ref().unwrap().admin_tries, 2);
}

/// Every state of the OpenPGP set-up worth a snapshot.
fn openpgp_states() -> Vec<(&'static str, Model)> {
    let mut all = vec![("openpgp_reader", openpgp_reader())];
    let mut overwrite = openpgp_reader();
    key(&mut overwrite, KeyCode::Enter);
    event(
        &mut overwrite,
        Event::NewCard(NewCardEvent::Opened(used_card())),
    );
    typed(&mut overwrite, "FFFF:7E55");
    all.push(("openpgp_overwrite", overwrite));
    let mut pins = holder_typed();
    key(&mut pins, KeyCode::Enter);
    for text in ["12345678", "quinn-admin"] {
        typed(&mut pins, text);
        key(&mut pins, KeyCode::Enter);
    }
    typed(&mut pins, "quinn-ad");
    all.push(("openpgp_pins", pins.clone()));
    let mut wrong = pins.clone();
    typed(&mut wrong, "min");
    key(&mut wrong, KeyCode::Enter);
    for _ in 0..2 {
        typed(&mut wrong, "246810");
        key(&mut wrong, KeyCode::Enter);
    }
    let mut failed = wrong.clone();
    event(
        &mut wrong,
        Event::NewCard(NewCardEvent::WrongAdmin {
            card: OpenedCard {
                admin_tries: 2,
                ..fresh_card()
            },
            text: "Wrong admin PIN for card FFFF:7E550002 (2 tries left): nothing was changed \
                   on the card. Type the admin PIN and the new PINs again."
                .into(),
        }),
    );
    all.push(("openpgp_wrong_admin", wrong));
    let error = quorum::QuorumError::Card(quorum::CardError::Removed);
    event(
        &mut failed,
        Event::NewCard(NewCardEvent::Failed(openpgp::failure_text(
            "card FFFF:7E550002",
            &error,
            &[quorum::setup::SetupStep::Keys],
            true,
        ))),
    );
    all.push(("openpgp_failed_part_way", failed));
    let mut done = pins;
    typed(&mut done, "min");
    key(&mut done, KeyCode::Enter);
    for _ in 0..2 {
        typed(&mut done, "246810");
        key(&mut done, KeyCode::Enter);
    }
    event(
        &mut done,
        Event::NewCard(NewCardEvent::SetUp {
            card: OpenedCard {
                card: card("Quinn Officer", "FFFF:7E550002", false, Some(3)),
                has_keys: true,
                admin_tries: 3,
            },
            keys: Box::new(keys()),
            text: "card FFFF:7E550002 (Quinn Officer) is set up: keys generated on the card, \
                   holder written, user PIN set, admin PIN changed. It holds no share yet: \
                   enrol it in a set, or bring it into one with a re-share. Esc goes back."
                .into(),
        }),
    );
    all.push(("openpgp_done", done));
    all
}

#[test]
fn every_openpgp_set_up_step_matches_its_snapshot() {
    for (name, model) in openpgp_states() {
        insta::assert_snapshot!(format!("{name}_80x24"), draw(&model, 80, 24));
        insta::assert_snapshot!(format!("{name}_160x48"), draw(&model, 160, 48));
        for (w, h) in [(40, 12), (20, 6), (1, 1)] {
            let text = std::panic::catch_unwind(|| draw(&model, w, h));
            assert!(text.is_ok(), "{name} panicked at {w}x{h}");
        }
    }
}

/// The demo has no card reader: `o` says so and nothing is touched.
#[test]
fn a_terminal_without_card_readers_refuses_an_openpgp_set_up() {
    let mut w = worker();
    let e = step(&mut w, NewCardCommand::Open { slot: 0 });
    assert!(
        matches!(e.as_slice(), [Event::NewCard(NewCardEvent::Failed(t))] if t.contains("no OpenPGP card") && t.contains("Nothing was changed")),
        "{e:?}"
    );
}

mod pcscd {
    use super::*;
    use quorum::pcsc::{FACTORY_ADMIN_PIN, FACTORY_USER_PIN};
    use terminal_app::flows::newcard::{NewCardWork, work};
    use terminal_app::flows::pin::{Mode, PinCommand, PinEvent, PinWork};
    use terminal_app::tui::pcsc_reader::PcscReader;
    use terminal_app::tui::worker::CardReader;

    fn entries(reader: &mut PcscReader, state: &mut NewCardWork, pins: [&[u8]; 5]) -> Vec<Event> {
        let mut last = Vec::new();
        for pin in pins {
            last = work(reader, state, NewCardCommand::Entry(Pin::from_slice(pin)));
        }
        last
    }

    fn slot_of(reader: &PcscReader, name: &str) -> usize {
        let slots = reader.slots();
        slots
            .iter()
            .position(|s| s.label.starts_with(&format!("{name} · ")))
            .unwrap_or_else(|| panic!("no slot for {name}: {slots:?}"))
    }

    /// The readers' report among `events`: the label of `slot`.
    fn reported(events: &[Event], slot: usize) -> String {
        events
            .iter()
            .find_map(|e| match e {
                Event::Readers(r) => Some(r.slots[slot].label.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no readers' report in {events:?}"))
    }

    /// Behind the real pcscd (`TESSERA_PCSC_DIR`, the stack's lock), through the terminal's
    /// own PC/SC reader as a paired terminal uses it: a factory-fresh card refused a wrong
    /// admin PIN (nothing changed) and new PINs that differ, then set up; its slot shows the
    /// holder at once; a wrong PIN afterwards shows the new count in the slot; a card with
    /// keys is named as such when opened again.
    #[test]
    fn an_openpgp_card_is_set_up_from_the_screens_worker_behind_pcscd() {
        let stack = tessera_tests::pcsc_stack::Stack::lock().unwrap_or_else(|e| panic!("{e}"));
        let (name, serial) = stack.expect_card(2);
        tessera_tests::pcsc_stack::factory_reset(&name);
        let mut reader = PcscReader::new(None, quorum::CardPolicy::hardware_only());
        let slot = slot_of(&reader, &name);
        assert!(reader.slots()[slot].label.contains("has no keys"));
        let mut state = NewCardWork::default();

        let e = work(&mut reader, &mut state, NewCardCommand::Open { slot });
        let [Event::NewCard(NewCardEvent::Opened(opened))] = e.as_slice() else {
            panic!("{e:?}")
        };
        assert!(opened.fresh() && opened.card.serial == serial, "{opened:?}");
        assert_eq!(opened.admin_tries, 3);
        let begin = NewCardCommand::Begin {
            holder: "Quinn Officer".into(),
        };
        assert!(work(&mut reader, &mut state, begin).is_empty());

        // A wrong admin PIN: the card counts it, nothing else changes; the card stays open.
        let e = entries(
            &mut reader,
            &mut state,
            [
                b"87654321",
                b"quinn-admin",
                b"quinn-admin",
                b"246810",
                b"246810",
            ],
        );
        assert!(
            matches!(e.first(), Some(Event::NewCard(NewCardEvent::WrongAdmin { card, text }))
                if card.admin_tries == 2 && !card.has_keys && text.contains("2 tries left")),
            "{e:?}"
        );
        // New admin PINs that differ: refused before the card is touched.
        let e = entries(
            &mut reader,
            &mut state,
            [
                FACTORY_ADMIN_PIN,
                b"quinn-admin",
                b"quinn-admim",
                b"246810",
                b"246810",
            ],
        );
        assert!(
            matches!(e.as_slice(), [Event::NewCard(NewCardEvent::Retype { field: Retype::NewAdmin, text })] if text.contains("differ")),
            "{e:?}"
        );
        // Typed again from the new admin PIN (the current one was kept).
        let mut e = Vec::new();
        for pin in [
            b"quinn-admin".as_slice(),
            b"quinn-admin",
            b"246810",
            b"246810",
        ] {
            e = work(
                &mut reader,
                &mut state,
                NewCardCommand::Entry(Pin::from_slice(pin)),
            );
        }
        let Some(Event::NewCard(NewCardEvent::SetUp { card, keys, .. })) = e.first() else {
            panic!("{e:?}")
        };
        assert!(card.has_keys && card.admin_tries == 3);
        assert_eq!(card.card.holder.as_deref(), Some("Quinn Officer"));
        assert_eq!(keys.signing_fingerprint.len(), 49);
        // The slot shows the card set up at once (its ATR did not change: no poll would).
        assert_eq!(
            reported(&e, slot),
            format!("{name} · card {serial} (Quinn Officer) · 3 tries left")
        );
        assert!(reader.poll().is_none(), "nothing else changed");

        // The card itself: the new user PIN verifies and shows the keys made; the factory
        // admin PIN no longer opens administration, the new one does.
        let on_card = PcscCard::open(&name).unwrap();
        assert_eq!(
            hex::encode(Card::info(&on_card).signing_public),
            keys.signing_public
        );
        let (on_card, _) = on_card
            .admin(&Pin::from_slice(FACTORY_ADMIN_PIN))
            .expect_err("the factory admin PIN still works");
        drop(on_card.admin(&Pin::from_slice(b"quinn-admin")).unwrap());
        // (The holder's PIN last: a right PIN fills the counter the wrong one spent.)
        assert!(
            Card::verify(
                PcscCard::open(&name).unwrap(),
                &Pin::from_slice(FACTORY_USER_PIN)
            )
            .is_err()
        );
        assert!(Card::verify(PcscCard::open(&name).unwrap(), &Pin::from_slice(b"246810")).is_ok());

        // A wrong PIN in a PIN change: the slot's count is read again (2 tries left).
        let mut pin = PinWork::default();
        let open = terminal_app::flows::pin::work(
            &mut reader,
            &mut pin,
            PinCommand::Open {
                slot,
                mode: Mode::Change,
            },
        );
        assert!(
            matches!(open.as_slice(), [Event::Pin(PinEvent::Opened { .. })]),
            "{open:?}"
        );
        let mut e = Vec::new();
        for text in ["000000", "135791", "135791"] {
            e = terminal_app::flows::pin::work(
                &mut reader,
                &mut pin,
                PinCommand::Entry(Pin::from_slice(text.as_bytes())),
            );
        }
        assert!(
            matches!(e.first(), Some(Event::Pin(PinEvent::WrongOld { .. }))),
            "{e:?}"
        );
        assert!(
            reported(&e, slot).ends_with("(Quinn Officer) · 2 tries left"),
            "{e:?}"
        );
        drop(pin);

        // Opened again for a set-up: a card with keys, which the screen asks to confirm.
        let e = work(&mut reader, &mut state, NewCardCommand::Open { slot });
        assert!(
            matches!(e.as_slice(), [Event::NewCard(NewCardEvent::Opened(o))] if o.has_keys && !o.fresh()),
            "{e:?}"
        );
        drop(state);
        tessera_tests::pcsc_stack::factory_reset(&name);
    }
}
