//! The re-share on the Cards screen through `update` alone: a key (or a worker event) in, the
//! model changed and the effects out, as asserted; the PIN goes to the runtime's buffer and
//! never into the model.
#![cfg(feature = "embedded")] // the demo HSM is the embedded simulator

#[path = "support/tui_model.rs"]
mod tui_support;

use ratatui::crossterm::event::KeyCode;
use terminal_app::flows::reshare::{Phase, ReshareCommand, ReshareEvent, Step};
use terminal_app::tui::message::{Command, Effect, Event, PinFor};
use terminal_app::tui::model::{Level, Screen};
use tui_support::*;

fn reshare(c: ReshareCommand) -> Effect {
    Effect::Send(Command::Reshare(c))
}

/// On the re-share screen, sized 2 of 3, the ceremony open.
fn begun() -> terminal_app::tui::model::Model {
    let mut m = logged_in();
    ch(&mut m, '8');
    ch(&mut m, 'r');
    key(&mut m, KeyCode::Enter);
    event(
        &mut m,
        Event::Reshare(ReshareEvent::Began {
            ceremony: "c-0007".into(),
            need: 2,
        }),
    );
    m
}

#[test]
fn r_on_the_cards_screen_opens_the_re_share_and_arrows_choose_m_and_n() {
    let mut m = logged_in();
    ch(&mut m, '8');
    assert_eq!(ch(&mut m, 'r'), vec![Effect::PinClear]);
    assert_eq!(m.screen, Screen::Reshare);
    assert_eq!((m.reshare.threshold, m.reshare.n), (2, 3));
    // → raises m up to n, never past it.
    ch(&mut m, 'l');
    key(&mut m, KeyCode::Right);
    assert_eq!(m.reshare.threshold, 3);
    // ↓ moves to n; ← lowers n and pulls m down with it.
    key(&mut m, KeyCode::Down);
    ch(&mut m, '-');
    assert_eq!((m.reshare.threshold, m.reshare.n), (2, 2));
    ch(&mut m, '+');
    ch(&mut m, '+');
    assert_eq!(
        key(&mut m, KeyCode::Enter),
        vec![reshare(ReshareCommand::Begin { threshold: 2, n: 4 })]
    );
    assert_eq!(m.reshare.phase, Phase::Beginning);
    // Esc before the ceremony: nothing to abandon at the HSM.
    let mut m = logged_in();
    ch(&mut m, '8');
    ch(&mut m, 'r');
    assert_eq!(key(&mut m, KeyCode::Esc), vec![Effect::PinClear]);
    assert_eq!(m.screen, Screen::Cards);
}

#[test]
fn a_re_share_needs_a_pso_login() {
    let mut m = logged_in();
    m.session.as_mut().unwrap().role = hsm_link::message::OfficerRole::Auditor;
    ch(&mut m, '8');
    assert!(ch(&mut m, 'r').is_empty());
    assert_eq!(m.screen, Screen::Cards);
    assert!(m.notice.as_ref().unwrap().text.contains("PSO login"));
}

#[test]
fn old_cards_then_new_cards_then_the_wipe_each_through_the_pin_buffer() {
    let mut m = begun();
    assert_eq!(m.reshare.ceremony.as_deref(), Some("c-0007"));
    assert_eq!(m.reshare.phase, Phase::Old);
    assert_eq!(ch(&mut m, '1'), vec![reshare(ReshareCommand::Insert(0))]);
    let ada = card("Ada Demo", "SOFT:0001", true, None);
    event(&mut m, Event::Reshare(ReshareEvent::Inserted(ada.clone())));
    assert_eq!(m.reshare.step, Step::Pin);
    // The PIN is typed into the buffer: `q` types, it does not quit.
    assert_eq!(
        typed(&mut m, "zq7xq"),
        "zq7xq".chars().map(Effect::PinPush).collect::<Vec<_>>()
    );
    assert_eq!(key(&mut m, KeyCode::Backspace), vec![Effect::PinPop]);
    assert_eq!(m.reshare.pin_len, 4);
    assert!(
        !format!("{m:?}").contains("zq7x"),
        "the PIN is never in the model"
    );
    assert_eq!(
        key(&mut m, KeyCode::Enter),
        vec![Effect::SubmitPin(PinFor::Reshare)]
    );
    assert_eq!(m.reshare.step, Step::Working);
    event(
        &mut m,
        Event::Reshare(ReshareEvent::OldRead {
            card: ada.clone(),
            have: 1,
        }),
    );
    assert_eq!(m.reshare.old_read, ["soft card SOFT:0001 (Ada Demo)"]);
    assert_eq!(m.reshare.step, Step::Choose);
    event(&mut m, Event::Reshare(ReshareEvent::Split));
    assert_eq!(m.reshare.phase, Phase::New);
    event(
        &mut m,
        Event::Reshare(ReshareEvent::NewWritten {
            card: ada.clone(),
            have: 1,
        }),
    );
    assert!(
        m.reshare
            .notice
            .as_ref()
            .unwrap()
            .text
            .contains("written and read back (1 of 3)")
    );
    event(
        &mut m,
        Event::Reshare(ReshareEvent::Registered {
            set_number: 2,
            to_wipe: vec!["soft card SOFT:0003 (Cleo Demo)".into()],
            old_left: Vec::new(),
        }),
    );
    assert_eq!(
        (m.reshare.phase, m.reshare.registered),
        (Phase::Wipe, Some(2))
    );
    event(
        &mut m,
        Event::Reshare(ReshareEvent::Wiped {
            card: card("Cleo Demo", "SOFT:0003", true, None),
            what: "old share wiped.".into(),
            left: 0,
        }),
    );
    assert!(m.reshare.to_wipe.is_empty());
    // Esc ends the ceremony at the worker, which says what changed.
    assert_eq!(
        key(&mut m, KeyCode::Esc),
        vec![Effect::PinClear, reshare(ReshareCommand::Abort)]
    );
    event(
        &mut m,
        Event::Reshare(ReshareEvent::Aborted(
            "Re-share done: set 2 is active.".into(),
        )),
    );
    assert_eq!(m.reshare.phase, Phase::Over);
    assert_eq!(m.reshare.notice.as_ref().unwrap().level, Level::Ok);
    assert_eq!(key(&mut m, KeyCode::Esc), vec![Effect::PinClear]);
    assert_eq!(m.screen, Screen::Cards);
    assert_eq!(m.reshare.phase, Phase::Size, "the flow starts afresh");
}

#[test]
fn a_wrong_pin_keeps_the_card_and_esc_at_the_pin_puts_it_back() {
    let mut m = begun();
    ch(&mut m, '2');
    let ben = card("Ben Demo", "SOFT:0002", false, Some(2));
    event(&mut m, Event::Reshare(ReshareEvent::Inserted(ben.clone())));
    typed(&mut m, "nope");
    key(&mut m, KeyCode::Enter);
    event(&mut m, Event::Reshare(ReshareEvent::WrongPin(ben)));
    assert_eq!(m.reshare.step, Step::Pin);
    assert_eq!(m.reshare.pin_len, 0);
    let notice = m.reshare.notice.as_ref().unwrap();
    assert_eq!(notice.level, Level::Error);
    assert!(notice.text.contains("2 tries left"), "{}", notice.text);
    // Esc at the PIN gives the card back; the ceremony stays.
    assert_eq!(key(&mut m, KeyCode::Esc), vec![Effect::PinClear]);
    assert_eq!(
        (m.reshare.phase, m.reshare.step),
        (Phase::Old, Step::Choose)
    );
    assert_eq!(m.screen, Screen::Reshare);
}

#[test]
fn an_abort_before_the_registration_warns_and_a_refused_begin_returns_to_the_size() {
    let mut m = begun();
    key(&mut m, KeyCode::Esc);
    event(
        &mut m,
        Event::Reshare(ReshareEvent::Aborted(
            "Re-share c-0007 abandoned before the split: nothing was written".into(),
        )),
    );
    let notice = m.reshare.notice.as_ref().unwrap();
    assert_eq!(notice.level, Level::Warn);
    assert!(notice.text.contains("nothing was written"));

    let mut m = logged_in();
    ch(&mut m, '8');
    ch(&mut m, 'r');
    key(&mut m, KeyCode::Enter);
    event(
        &mut m,
        Event::Reshare(ReshareEvent::Refused("no PSO login".into())),
    );
    assert_eq!(m.reshare.phase, Phase::Size);
    assert_eq!(m.reshare.notice.as_ref().unwrap().level, Level::Error);
}

fn draw(model: &terminal_app::tui::model::Model, width: u16, height: u16) -> String {
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

/// Each step of a re-share (and its error states), by name.
fn states() -> Vec<(&'static str, terminal_app::tui::model::Model)> {
    let mut all = Vec::new();
    let mut size = logged_in();
    ch(&mut size, '8');
    ch(&mut size, 'r');
    all.push(("reshare_size", size));

    all.push(("reshare_old_choose", begun()));

    let mut pin = begun();
    ch(&mut pin, '2');
    let ben = card("Ben Demo", "SOFT:0002", true, None);
    event(
        &mut pin,
        Event::Reshare(ReshareEvent::Inserted(ben.clone())),
    );
    typed(&mut pin, "zq7xzq7");
    all.push(("reshare_old_pin", pin));

    let mut wrong = begun();
    ch(&mut wrong, '2');
    event(
        &mut wrong,
        Event::Reshare(ReshareEvent::Inserted(ben.clone())),
    );
    typed(&mut wrong, "nope");
    key(&mut wrong, KeyCode::Enter);
    event(
        &mut wrong,
        Event::Reshare(ReshareEvent::WrongPin(ben.clone())),
    );
    all.push(("reshare_wrong_pin", wrong));

    let mut refused = begun();
    ch(&mut refused, '4');
    event(
        &mut refused,
        Event::Reshare(ReshareEvent::Refused(
            "soft card SOFT:0101 (Dana Audit) is not in this partition's active card set: \
             set it aside"
                .into(),
        )),
    );
    all.push(("reshare_card_refused", refused));

    let mut new = begun();
    let ada = card("Ada Demo", "SOFT:0001", true, None);
    for (c, have) in [(ada.clone(), 1), (ben.clone(), 2)] {
        event(
            &mut new,
            Event::Reshare(ReshareEvent::OldRead { card: c, have }),
        );
    }
    event(&mut new, Event::Reshare(ReshareEvent::Split));
    event(
        &mut new,
        Event::Reshare(ReshareEvent::NewWritten { card: ada, have: 1 }),
    );
    all.push(("reshare_new_cards", new.clone()));

    let mut wipe = new;
    event(
        &mut wipe,
        Event::Reshare(ReshareEvent::Registered {
            set_number: 2,
            to_wipe: vec!["soft card SOFT:0002 (Ben Demo)".into()],
            old_left: vec!["soft card SOFT:0003 (Cleo Demo)".into()],
        }),
    );
    all.push(("reshare_wipe", wipe));

    let mut aborted = begun();
    key(&mut aborted, KeyCode::Esc);
    event(
        &mut aborted,
        Event::Reshare(ReshareEvent::Aborted(
            "Re-share c-0007 abandoned before the registration: the active set is unchanged \
             and still opens with its cards. Unused new shares stay beside the old ones on: \
             soft card SOFT:0001 (Ada Demo)."
                .into(),
        )),
    );
    all.push(("reshare_aborted", aborted));
    all
}

#[test]
fn every_re_share_step_matches_its_snapshot() {
    for (name, model) in states() {
        insta::assert_snapshot!(format!("{name}_80x24"), draw(&model, 80, 24));
        insta::assert_snapshot!(format!("{name}_160x48"), draw(&model, 160, 48));
        for (w, h) in [(40, 12), (20, 6), (1, 1)] {
            let text = std::panic::catch_unwind(|| draw(&model, w, h));
            assert!(text.is_ok(), "{name} panicked at {w}x{h}");
        }
    }
}

#[test]
fn the_pin_shows_as_bullets_only() {
    let (_, pin) = states()
        .into_iter()
        .find(|(n, _)| *n == "reshare_old_pin")
        .unwrap();
    let screen = draw(&pin, 80, 24);
    assert!(screen.contains("•••••••"), "{screen}");
    assert!(!screen.contains("zq7x"), "{screen}");
    assert!(screen.contains("c-0007"), "the ceremony id: {screen}");
}
