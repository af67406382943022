//! Setting up a new card on the Cards screen: through `update` alone, its snapshots, the worker
//! making a soft card in the demo's directory (which then opens and joins the slots), and an
//! OpenPGP card set up behind the real pcscd (keys generated on the card, holder set, admin PIN
//! changed).
#![cfg(feature = "embedded")] // the demo HSM is the embedded simulator

#[path = "support/tui_model.rs"]
mod tui_support;

use quorum::{Argon2Params, Card, PcscCard, Pin};
use ratatui::crossterm::event::KeyCode;
use terminal_app::flows::newcard::{NewCardCommand, NewCardEvent, Stage, set_up_openpgp_card};
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

/// Behind the real pcscd (`TESSERA_PCSC_DIR`, the stack's lock).
#[test]
fn an_openpgp_card_is_set_up_with_keys_on_the_card_a_holder_and_a_new_admin_pin() {
    use quorum::pcsc::FACTORY_ADMIN_PIN;
    let stack = tessera_tests::pcsc_stack::Stack::lock().unwrap_or_else(|e| panic!("{e}"));
    let (reader, _) = stack.expect_card(2);
    tessera_tests::pcsc_stack::factory_reset(&reader);
    let new_admin = Pin::from_slice(b"quinn-admin-pin");

    // A wrong admin PIN gives the card back untouched.
    let card = PcscCard::open(&reader).unwrap();
    assert!(!card.has_keys());
    let (card, e) = set_up_openpgp_card(
        card,
        &Pin::from_slice(b"87654321"),
        &new_admin,
        "Quinn Officer",
    )
    .unwrap_err();
    assert!(e.to_string().contains("wrong PIN"), "{e}");
    let card = card.unwrap();
    assert!(!card.has_keys());

    let set_up = set_up_openpgp_card(
        card,
        &Pin::from_slice(FACTORY_ADMIN_PIN),
        &new_admin,
        "Quinn Officer",
    )
    .unwrap();
    assert!(set_up.card.has_keys());
    let info = set_up.card.info();
    assert_eq!(info.holder.as_deref(), Some("Quinn Officer"));
    assert_eq!(info.signing_public, set_up.keys.signing_public);
    // The factory admin PIN no longer opens administration; the new one does.
    let (card, e) = set_up
        .card
        .admin(&Pin::from_slice(FACTORY_ADMIN_PIN))
        .unwrap_err();
    assert!(matches!(e, quorum::CardError::WrongPin { .. }), "{e:?}");
    let admin = card.admin(&new_admin).unwrap();
    drop(admin);
    // As from the factory again, for the tests that follow.
    tessera_tests::pcsc_stack::factory_reset(&reader);
}
