//! Revoking a lost card on the Cards screen through `update` alone (keys and worker events in,
//! the model and effects out, the PIN never in the model), and its snapshots.
#![cfg(feature = "embedded")] // the demo HSM is the embedded simulator

#[path = "support/tui_model.rs"]
mod tui_support;

use ratatui::crossterm::event::KeyCode;
use terminal_app::flows::reshare::ReshareEvent;
use terminal_app::flows::revoke::{Phase, RevokeCommand, RevokeEvent};
use terminal_app::tui::message::{Command, Effect, Event, PinFor};
use terminal_app::tui::model::{Level, Model, Screen};
use tui_support::*;

fn revoke(c: RevokeCommand) -> Effect {
    Effect::Send(Command::Revoke(c))
}

fn set() -> Vec<(String, String)> {
    [
        ("Ada Demo", "SOFT:0001"),
        ("Ben Demo", "SOFT:0002"),
        ("Cleo Demo", "SOFT:0003"),
    ]
    .iter()
    .map(|(h, s)| ((*h).to_owned(), (*s).to_owned()))
    .collect()
}

/// The revoke screen with the active set read.
fn listed() -> Model {
    let mut m = logged_in();
    ch(&mut m, '8');
    ch(&mut m, 'v');
    event(&mut m, Event::Revoke(RevokeEvent::Set(set())));
    m
}

/// Cleo's card chosen as lost, 2 of 2, the ceremony open.
fn begun() -> Model {
    let mut m = listed();
    ch(&mut m, '3');
    key(&mut m, KeyCode::Enter);
    event(
        &mut m,
        Event::Revoke(RevokeEvent::Began {
            ceremony: "c-0009".into(),
        }),
    );
    m
}

#[test]
fn v_reads_the_set_then_the_lost_card_and_the_size_begin_the_ceremony() {
    let mut m = logged_in();
    ch(&mut m, '8');
    assert_eq!(
        ch(&mut m, 'v'),
        vec![Effect::PinClear, revoke(RevokeCommand::List)]
    );
    assert_eq!((m.screen, m.revoke.phase), (Screen::Revoke, Phase::Loading));
    event(&mut m, Event::Revoke(RevokeEvent::Set(set())));
    assert_eq!(m.revoke.phase, Phase::Lost);
    // Choosing by number: Cleo's card; the new set defaults to the cards left.
    ch(&mut m, '3');
    assert_eq!(m.revoke.phase, Phase::Size);
    assert_eq!(m.revoke.lost_name(), "Cleo Demo · SOFT:0003");
    assert_eq!((m.revoke.threshold, m.revoke.n), (2, 2));
    ch(&mut m, 'h');
    assert_eq!(
        key(&mut m, KeyCode::Enter),
        vec![revoke(RevokeCommand::Begin {
            serial: "SOFT:0003".into(),
            threshold: 1,
            n: 2
        })]
    );
    assert_eq!(m.revoke.phase, Phase::Beginning);
}

#[test]
fn new_cards_through_the_pin_buffer_then_the_backup_notice() {
    let mut m = begun();
    assert_eq!(m.revoke.phase, Phase::New);
    assert_eq!(ch(&mut m, '1'), vec![revoke(RevokeCommand::Insert(0))]);
    let ada = card("Ada Demo", "SOFT:0001", true, None);
    event(
        &mut m,
        Event::Revoke(RevokeEvent::Card(ReshareEvent::Inserted(ada.clone()))),
    );
    assert_eq!(
        typed(&mut m, "zq"),
        vec![Effect::PinPush('z'), Effect::PinPush('q')]
    );
    assert!(
        !format!("{m:?}").contains("zq"),
        "the PIN is never in the model"
    );
    assert_eq!(
        key(&mut m, KeyCode::Enter),
        vec![Effect::SubmitPin(PinFor::Revoke)]
    );
    event(
        &mut m,
        Event::Revoke(RevokeEvent::Written { card: ada, have: 1 }),
    );
    assert_eq!(m.revoke.written.len(), 1);
    event(
        &mut m,
        Event::Revoke(RevokeEvent::Done {
            set_number: 2,
            backups: "Backups made before this revocation stay restorable on this HSM.".into(),
        }),
    );
    assert_eq!(m.revoke.phase, Phase::Over);
    let notice = m.revoke.notice.as_ref().unwrap();
    assert_eq!(notice.level, Level::Ok);
    assert!(
        notice.text.contains("Cleo Demo · SOFT:0003 is revoked"),
        "{}",
        notice.text
    );
    assert!(notice.text.contains("stay restorable on this HSM"));
    assert_eq!(key(&mut m, KeyCode::Esc), vec![Effect::PinClear]);
    assert_eq!(m.screen, Screen::Cards);
}

#[test]
fn esc_mid_ceremony_asks_the_worker_to_abandon_and_says_the_card_is_not_revoked() {
    let mut m = begun();
    assert_eq!(
        key(&mut m, KeyCode::Esc),
        vec![revoke(RevokeCommand::Abort)]
    );
    event(
        &mut m,
        Event::Revoke(RevokeEvent::Aborted(
            "Revocation c-0009 abandoned: nothing was registered or written. The card is NOT \
             revoked; the active set is unchanged."
                .into(),
        )),
    );
    assert_eq!(m.revoke.phase, Phase::Over);
    assert_eq!(m.revoke.notice.as_ref().unwrap().level, Level::Warn);
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
    let mut all = vec![("revoke_lost", listed())];
    let mut size = listed();
    ch(&mut size, '3');
    all.push(("revoke_size", size));
    all.push(("revoke_new_cards", begun()));

    let mut refused = begun();
    ch(&mut refused, '3');
    event(
        &mut refused,
        Event::Revoke(RevokeEvent::Card(ReshareEvent::Refused(
            "soft card SOFT:0003 (Cleo Demo) is the revoked card: set it aside".into(),
        ))),
    );
    all.push(("revoke_revoked_card_refused", refused));

    let mut done = begun();
    event(
        &mut done,
        Event::Revoke(RevokeEvent::Done {
            set_number: 2,
            backups: "Backups made before this revocation stay restorable on this HSM. Onto \
                      another HSM they open only with shares of the old set 1, still held by \
                      soft card SOFT:0003 (Cleo Demo). Make a fresh backup now: it is wrapped \
                      to set 2's new quorum backup key."
                .into(),
        }),
    );
    all.push(("revoke_done", done));
    all
}

#[test]
fn every_revoke_step_matches_its_snapshot() {
    for (name, model) in states() {
        insta::assert_snapshot!(format!("{name}_80x24"), draw(&model, 80, 24));
        insta::assert_snapshot!(format!("{name}_160x48"), draw(&model, 160, 48));
        for (w, h) in [(40, 12), (20, 6), (1, 1)] {
            let text = std::panic::catch_unwind(|| draw(&model, w, h));
            assert!(text.is_ok(), "{name} panicked at {w}x{h}");
        }
    }
}
