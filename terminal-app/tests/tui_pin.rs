//! The Cards screen's PIN change and unblock: through `update` alone (keys and worker events
//! in, the model and effects out, no PIN in the model), its snapshots, the worker's side on the
//! demo's soft cards, and on an OpenPGP card behind the real pcscd.
#![cfg(feature = "embedded")] // the demo HSM is the embedded simulator

#[path = "support/tui_model.rs"]
mod tui_support;

use quorum::{Argon2Params, PcscCard, Pin};
use ratatui::crossterm::event::KeyCode;
use terminal_app::flows::pin::{
    Mode, OpenPgpPinCard, PinCard, PinCommand, PinEvent, PinWork, Stage, Unblocker,
};
use terminal_app::tui::demo::{DEMO_CARDS, Demo};
use terminal_app::tui::message::{
    Command, DrillCommand, DrillEvent, Effect, Event, PinFor, SlotView,
};
use terminal_app::tui::model::{Level, Model, Screen};
use terminal_app::tui::worker::{CardReader, InsertedCard, Worker};
use tui_support::*;

fn pin_cmd(c: PinCommand) -> Effect {
    Effect::Send(Command::Pin(c))
}

/// The PIN screen, from the Cards screen.
fn choose() -> Model {
    let mut m = logged_in();
    ch(&mut m, '8');
    assert_eq!(m.screen, Screen::Cards);
    assert_eq!(ch(&mut m, 'p'), vec![Effect::PinClear]);
    assert_eq!((m.screen, m.pin.stage), (Screen::Pin, Stage::Choose));
    m
}

fn ada() -> terminal_app::tui::message::CardView {
    card("Ada Demo", "SOFT:0001", true, None)
}

/// Ada's soft card open for a change.
fn opened() -> Model {
    let mut m = choose();
    key(&mut m, KeyCode::Enter);
    event(
        &mut m,
        Event::Pin(PinEvent::Opened {
            card: ada(),
            unblocker: None,
        }),
    );
    m
}

#[test]
fn a_change_takes_three_entries_through_the_pin_buffer_and_none_reaches_the_model() {
    let mut m = choose();
    assert_eq!(
        key(&mut m, KeyCode::Enter),
        vec![
            Effect::PinClear,
            pin_cmd(PinCommand::Open {
                slot: 0,
                mode: Mode::Change
            })
        ]
    );
    assert_eq!(m.pin.stage, Stage::Opening);
    event(
        &mut m,
        Event::Pin(PinEvent::Opened {
            card: ada(),
            unblocker: None,
        }),
    );
    assert_eq!(m.pin.stage, Stage::Old);
    for (stage, text) in [
        (Stage::New, "zq-old-pin-1"),
        (Stage::Again, "zq-new-passphrase"),
        (Stage::Working, "zq-new-passphrase"),
    ] {
        assert!(
            typed(&mut m, text)
                .iter()
                .all(|e| matches!(e, Effect::PinPush(_)))
        );
        assert_eq!(
            key(&mut m, KeyCode::Enter),
            vec![Effect::SubmitPin(PinFor::Pin)]
        );
        assert_eq!(m.pin.stage, stage);
    }
    assert_eq!(m.pin.typed, [12, 17, 17]);
    let model = format!("{m:?}");
    assert!(
        !model.contains("zq-old") && !model.contains("zq-new"),
        "{model}"
    );
    // Keys do nothing while the card works.
    assert_eq!(key(&mut m, KeyCode::Esc), Vec::new());
    event(
        &mut m,
        Event::Pin(PinEvent::Done {
            card: ada(),
            text: "The PIN of soft card SOFT:0001 (Ada Demo) is changed.".into(),
        }),
    );
    assert_eq!(m.pin.stage, Stage::Choose);
    assert_eq!(m.pin.notice.as_ref().unwrap().level, Level::Ok);
    assert_eq!(m.pin.typed, [0; 3]);
}

#[test]
fn a_mismatch_asks_the_new_pin_again_and_a_wrong_old_pin_starts_over() {
    let mut m = opened();
    for _ in 0..3 {
        typed(&mut m, "abc");
        key(&mut m, KeyCode::Enter);
    }
    event(
        &mut m,
        Event::Pin(PinEvent::NewRefused("The two new entries differ".into())),
    );
    assert_eq!((m.pin.stage, m.pin.typed), (Stage::New, [3, 0, 0]));
    for _ in 0..2 {
        typed(&mut m, "abc");
        key(&mut m, KeyCode::Enter);
    }
    event(
        &mut m,
        Event::Pin(PinEvent::WrongOld {
            card: card("Ada Demo", "0005:0000000A", false, Some(2)),
            text: "Wrong PIN (2 tries left)".into(),
        }),
    );
    assert_eq!((m.pin.stage, m.pin.typed), (Stage::Old, [0; 3]));
    assert_eq!(m.pin.card.as_ref().unwrap().tries_left, Some(2));
}

#[test]
fn esc_in_an_entry_abandons_and_says_nothing_changed_then_esc_goes_back_to_cards() {
    let mut m = opened();
    typed(&mut m, "ab");
    assert_eq!(
        key(&mut m, KeyCode::Esc),
        vec![Effect::PinClear, pin_cmd(PinCommand::Forget)]
    );
    assert_eq!(m.pin.stage, Stage::Choose);
    assert!(m.pin.notice.as_ref().unwrap().text.contains("not changed"));
    assert_eq!(
        key(&mut m, KeyCode::Esc),
        vec![Effect::PinClear, pin_cmd(PinCommand::Forget)]
    );
    assert_eq!(m.screen, Screen::Cards);
}

#[test]
fn u_asks_to_unblock_the_selected_card() {
    let mut m = choose();
    ch(&mut m, 'j');
    assert_eq!(
        ch(&mut m, 'u'),
        vec![
            Effect::PinClear,
            pin_cmd(PinCommand::Open {
                slot: 1,
                mode: Mode::Unblock
            })
        ]
    );
    assert_eq!(m.pin.mode, Mode::Unblock);
}

#[test]
fn the_help_overlay_lists_the_new_keys() {
    let mut m = logged_in();
    ch(&mut m, '8');
    // At 80 columns the footer has no room for them: the screen names them itself.
    let small = draw(&m, 80, 24);
    for key in [
        "p PIN",
        "e enrol",
        "n new card",
        "o OpenPGP",
        "r re-share",
        "v revoke",
    ] {
        assert!(small.contains(key), "{key} missing at 80x24: {small}");
    }
    ch(&mut m, '?');
    let cards = draw(&m, 160, 48);
    assert!(
        cards.contains("p        PIN") || cards.contains("p PIN"),
        "{cards}"
    );
    key(&mut m, KeyCode::Esc);
    ch(&mut m, 'p');
    ch(&mut m, '?');
    let pin = draw(&m, 160, 48);
    assert!(pin.contains("unblock"), "{pin}");
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

fn states() -> Vec<(&'static str, Model)> {
    let mut all = vec![("pin_choose", choose())];
    let mut again = opened();
    for text in ["ada-demo-pin", "a-new-passphrase"] {
        typed(&mut again, text);
        key(&mut again, KeyCode::Enter);
    }
    typed(&mut again, "a-new");
    all.push(("pin_soft_again", again));

    let mut wrong = choose();
    key(&mut wrong, KeyCode::Enter);
    event(
        &mut wrong,
        Event::Pin(PinEvent::WrongOld {
            card: card("Ada Demo", "0005:0000000A", false, Some(2)),
            text: "Wrong PIN for card 0005:0000000A (Ada Demo) (2 tries left): nothing was \
                   changed."
                .into(),
        }),
    );
    all.push(("pin_wrong_old", wrong));

    let mut unblock = choose();
    ch(&mut unblock, 'u');
    event(
        &mut unblock,
        Event::Pin(PinEvent::Opened {
            card: card("Ada Demo", "0005:0000000A", false, Some(0)),
            unblocker: Some(Unblocker::ResetCode(3)),
        }),
    );
    typed(&mut unblock, "reset-code");
    all.push(("pin_unblock_reset_code", unblock));

    let mut soft = choose();
    ch(&mut soft, 'u');
    event(
        &mut soft,
        Event::Pin(PinEvent::Failed(format!(
            "soft card SOFT:0001 (Ada Demo) cannot be unblocked: {}",
            quorum::soft::SOFT_CARD_UNBLOCK
        ))),
    );
    all.push(("pin_soft_unblock_refused", soft));

    let mut done = opened();
    event(
        &mut done,
        Event::Pin(PinEvent::Done {
            card: ada(),
            text: "The PIN of soft card SOFT:0001 (Ada Demo) is changed (no retry counter (soft \
                   card)). Its share and keys are unchanged."
                .into(),
        }),
    );
    all.push(("pin_done", done));
    all
}

#[test]
fn every_pin_step_matches_its_snapshot() {
    for (name, model) in states() {
        insta::assert_snapshot!(format!("{name}_80x24"), draw(&model, 80, 24));
        insta::assert_snapshot!(format!("{name}_160x48"), draw(&model, 160, 48));
        for (w, h) in [(40, 12), (20, 6), (1, 1)] {
            let text = std::panic::catch_unwind(|| draw(&model, w, h));
            assert!(text.is_ok(), "{name} panicked at {w}x{h}");
        }
    }
}

// The worker's side.

fn worker() -> Worker {
    Demo::new(Argon2Params::insecure_for_tests(), true)
        .unwrap()
        .into_worker()
        .unwrap()
}

fn entry(text: &str) -> Command {
    Command::Pin(PinCommand::Entry(Pin::from_slice(text.as_bytes())))
}

fn pin_events(w: &mut Worker, command: Command) -> Vec<PinEvent> {
    w.handle(command)
        .into_iter()
        .map(|e| match e {
            Event::Pin(e) => e,
            other => panic!("{other:?}"),
        })
        .collect()
}

fn change(w: &mut Worker, slot: usize, entries: [&str; 3]) -> PinEvent {
    let opened = pin_events(
        w,
        Command::Pin(PinCommand::Open {
            slot,
            mode: Mode::Change,
        }),
    );
    assert!(
        matches!(opened.as_slice(), [PinEvent::Opened { .. }]),
        "{opened:?}"
    );
    assert!(pin_events(w, entry(entries[0])).is_empty());
    assert!(pin_events(w, entry(entries[1])).is_empty());
    let mut last = pin_events(w, entry(entries[2]));
    assert_eq!(last.len(), 1, "{last:?}");
    last.remove(0)
}

fn drill(w: &mut Worker, slot: usize, pin: &str) -> DrillEvent {
    w.handle(Command::Drill(DrillCommand::Insert(slot)));
    match w
        .handle(Command::Drill(DrillCommand::Verify(Pin::from_slice(
            pin.as_bytes(),
        ))))
        .remove(0)
    {
        Event::Drill(e) => e,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_soft_cards_passphrase_changes_and_the_card_then_opens_with_the_new_one_only() {
    let mut w = worker();
    let old = DEMO_CARDS[0].pin;
    let new = "ada-new-passphrase";

    // A wrong old passphrase: nothing changes, and a soft card counts nothing.
    let e = change(&mut w, 0, ["not-adas-passphrase", new, new]);
    assert!(
        matches!(&e, PinEvent::WrongOld { text, .. } if text.contains("no retry counter")),
        "{e:?}"
    );
    // Two different new entries: refused before the card is touched; the old entry is kept,
    // so the new one twice finishes the change.
    let e = change(&mut w, 0, [old, new, "ada-new-passphrasf"]);
    assert!(
        matches!(&e, PinEvent::NewRefused(t) if t.contains("differ")),
        "{e:?}"
    );
    // Too short for a soft card: the new one again.
    assert!(pin_events(&mut w, entry("short")).is_empty());
    let e = pin_events(&mut w, entry("short")).remove(0);
    assert!(
        matches!(&e, PinEvent::NewRefused(t) if t.contains("needs 12 to")),
        "{e:?}"
    );
    assert!(pin_events(&mut w, entry(new)).is_empty());
    let e = pin_events(&mut w, entry(new)).remove(0);
    assert!(
        matches!(&e, PinEvent::Done { card, text } if card.serial == "SOFT:0001" && text.contains("changed")),
        "{e:?}"
    );

    // The card itself: the old passphrase no longer opens it, the new one does, share intact.
    assert!(matches!(drill(&mut w, 0, old), DrillEvent::WrongPin(_)));
    let e = drill(&mut w, 0, new);
    assert!(matches!(e, DrillEvent::Done { ok: true, .. }), "{e:?}");

    // An unblock: a soft card has nothing that unblocks it, and says so.
    let e = pin_events(
        &mut w,
        Command::Pin(PinCommand::Open {
            slot: 1,
            mode: Mode::Unblock,
        }),
    );
    assert!(
        matches!(e.as_slice(), [PinEvent::Failed(t)] if t.contains("no resetting code and no admin PIN")),
        "{e:?}"
    );
    // Entries without an open card are refused, not kept.
    let e = pin_events(&mut w, entry("stray"));
    assert!(matches!(e.as_slice(), [PinEvent::Failed(_)]), "{e:?}");
}

/// The OpenPGP card of one reader, for the PIN flow only.
struct OneReader(String);

impl CardReader for OneReader {
    fn slots(&self) -> Vec<SlotView> {
        vec![SlotView {
            label: self.0.clone(),
        }]
    }

    fn insert(&mut self, _: usize) -> Result<Box<dyn InsertedCard>, String> {
        Err("not used here".into())
    }

    fn pin_card(&mut self, _: usize) -> Result<Box<dyn PinCard>, String> {
        PcscCard::open(&self.0)
            .map(|card| Box::new(OpenPgpPinCard::new(card)) as Box<dyn PinCard>)
            .map_err(|e| e.to_string())
    }
}

fn run(reader: &mut OneReader, state: &mut PinWork, mode: Mode, entries: [&str; 3]) -> PinEvent {
    run_at(reader, 0, state, mode, entries)
}

fn run_at(
    reader: &mut dyn CardReader,
    slot: usize,
    state: &mut PinWork,
    mode: Mode,
    entries: [&str; 3],
) -> PinEvent {
    let open = terminal_app::flows::pin::work(reader, state, PinCommand::Open { slot, mode });
    let opened = match open.as_slice() {
        [Event::Pin(e @ PinEvent::Opened { .. })] => e.clone(),
        [Event::Pin(e)] => return e.clone(),
        other => panic!("{other:?}"),
    };
    let _ = opened;
    let mut last = Vec::new();
    for text in entries {
        last = terminal_app::flows::pin::work(
            reader,
            state,
            PinCommand::Entry(Pin::from_slice(text.as_bytes())),
        );
    }
    match last.as_slice() {
        [Event::Pin(e)] => e.clone(),
        other => panic!("{other:?}"),
    }
}

/// Behind the real pcscd (`TESSERA_PCSC_DIR`, the stack's lock): change, block, unblock with
/// the admin PIN (a card from the factory has no resetting code), then the factory PINs again.
#[test]
fn an_openpgp_cards_pin_changes_blocks_and_is_unblocked_with_the_admin_pin() {
    use quorum::pcsc::{FACTORY_ADMIN_PIN, FACTORY_USER_PIN};
    let stack = tessera_tests::pcsc_stack::Stack::lock().unwrap_or_else(|e| panic!("{e}"));
    let (name, _) = stack.expect_card(2);
    tessera_tests::pcsc_stack::factory_reset(&name);
    let factory = std::str::from_utf8(FACTORY_USER_PIN).unwrap();
    let admin = std::str::from_utf8(FACTORY_ADMIN_PIN).unwrap();
    let mut reader = OneReader(name.clone());
    let mut state = PinWork::default();

    let e = run(
        &mut reader,
        &mut state,
        Mode::Change,
        [factory, "246810", "246810"],
    );
    assert!(
        matches!(&e, PinEvent::Done { card, .. } if card.tries_left == Some(3)),
        "{e:?}"
    );
    // A wrong old PIN counts down, then blocks.
    for left in ["2 tries left", "1 try left"] {
        let e = run(
            &mut reader,
            &mut state,
            Mode::Change,
            ["000000", "135791", "135791"],
        );
        assert!(
            matches!(&e, PinEvent::WrongOld { text, .. } if text.contains(left)),
            "{e:?}"
        );
    }
    let e = run(
        &mut reader,
        &mut state,
        Mode::Change,
        ["000000", "135791", "135791"],
    );
    assert!(
        matches!(&e, PinEvent::Failed(t) if t.contains("blocked")),
        "{e:?}"
    );

    // Unblocked with the admin PIN (a wrong one first), to the factory PIN again.
    let e = run(
        &mut reader,
        &mut state,
        Mode::Unblock,
        ["87654321", factory, factory],
    );
    assert!(
        matches!(&e, PinEvent::WrongOld { text, .. } if text.contains("2 tries left")),
        "{e:?}"
    );
    let e = run(
        &mut reader,
        &mut state,
        Mode::Unblock,
        [admin, factory, factory],
    );
    assert!(
        matches!(&e, PinEvent::Done { card, .. } if card.tries_left == Some(3)),
        "{e:?}"
    );
    drop(state);
    let card = PcscCard::open(&name).unwrap();
    assert!(quorum::Card::verify(card, &Pin::from_slice(FACTORY_USER_PIN)).is_ok());
    // The admin PIN's counter back to full too, as other tests expect the card.
    tessera_tests::pcsc_stack::factory_reset(&name);
}

/// The terminal's own PC/SC reader (what a paired terminal and `tessera demo --pcsc` use) opens
/// an OpenPGP card for a PIN change, even one without keys yet (a PIN change needs none).
#[test]
fn the_pcsc_reader_opens_an_openpgp_card_for_a_pin_change() {
    use quorum::pcsc::FACTORY_USER_PIN;
    use terminal_app::tui::pcsc_reader::PcscReader;
    let stack = tessera_tests::pcsc_stack::Stack::lock().unwrap_or_else(|e| panic!("{e}"));
    let (name, serial) = stack.expect_card(4);
    tessera_tests::pcsc_stack::factory_reset(&name);
    let factory = std::str::from_utf8(FACTORY_USER_PIN).unwrap();
    let mut reader = PcscReader::new(None, quorum::CardPolicy::hardware_only());
    let slots = reader.slots();
    let slot = slots
        .iter()
        .position(|s| s.label.starts_with(&format!("{name} · ")))
        .unwrap_or_else(|| panic!("no slot for {name}: {slots:?}"));
    let mut state = PinWork::default();

    let e = run_at(
        &mut reader,
        slot,
        &mut state,
        Mode::Change,
        [factory, "975310", "975310"],
    );
    assert!(
        matches!(&e, PinEvent::Done { card, .. } if card.serial == serial && card.tries_left == Some(3)),
        "{e:?}"
    );
    // The card itself: the factory PIN no longer opens it, the new one does.
    let card = PcscCard::open(&name).unwrap();
    let (card, _) = quorum::Card::verify(card, &Pin::from_slice(FACTORY_USER_PIN))
        .map(|_| ())
        .expect_err("the old PIN still verifies");
    assert!(quorum::Card::verify(card, &Pin::from_slice(b"975310")).is_ok());

    // And back, through the reader again: the card is left at the factory PIN.
    let e = run_at(
        &mut reader,
        slot,
        &mut state,
        Mode::Change,
        ["975310", factory, factory],
    );
    assert!(matches!(&e, PinEvent::Done { .. }), "{e:?}");
    drop(state);
    let card = PcscCard::open(&name).unwrap();
    assert!(quorum::Card::verify(card, &Pin::from_slice(FACTORY_USER_PIN)).is_ok());
    // An empty slot number past the readers is refused, not guessed.
    assert!(reader.pin_card(slots.len() + 5).is_err());
    tessera_tests::pcsc_stack::factory_reset(&name);
}

#[test]
fn esc_after_a_refused_unblock_goes_back_to_cards() {
    let mut m = choose();
    ch(&mut m, 'u');
    event(
        &mut m,
        Event::Pin(PinEvent::Failed("no resetting code".into())),
    );
    assert_eq!(m.pin.stage, Stage::Choose);
    key(&mut m, KeyCode::Esc);
    assert_eq!(m.screen, Screen::Cards);
}
