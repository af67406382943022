//! Enrolling a card set on the Cards screen: through `update` alone (keys and worker events in,
//! the model and effects out, the PIN never in the model), its snapshots, and the worker's side
//! against a fresh partition of a real HSM (the `tessera-tests` partition fixture) with soft
//! test cards: a PSO set registered card by card, and one abandoned.
#![cfg(feature = "embedded")] // the demo HSM is the embedded simulator

#[path = "support/tui_model.rs"]
mod tui_support;

use std::path::PathBuf;

use hsm_link::domain::ServiceTier;
use quorum::{Argon2Params, CardPolicy, Pin, SoftCard};
use ratatui::crossterm::event::KeyCode;
use terminal_app::flows::enrol::{EnrolCommand, EnrolEvent, EnrolWork, Phase, SetKind, Step, work};
use terminal_app::tui::message::{Command, Effect, Event, PinFor, SlotView};
use terminal_app::tui::model::{Level, Model, Screen};
use terminal_app::tui::worker::{CardReader, InsertedCard};
use tessera_tests::partition::Fixture;
use tui_support::*;

fn enrol(c: EnrolCommand) -> Effect {
    Effect::Send(Command::Enrol(c))
}

/// The enrol screen, from the Cards screen.
fn kind() -> Model {
    let mut m = logged_in();
    ch(&mut m, '8');
    assert_eq!(ch(&mut m, 'e'), vec![Effect::PinClear]);
    assert_eq!((m.screen, m.enrol.phase), (Screen::Enrol, Phase::Kind));
    m
}

/// A PSO set 2 of 3, the ceremony open.
fn begun() -> Model {
    let mut m = kind();
    ch(&mut m, '1');
    key(&mut m, KeyCode::Enter);
    event(
        &mut m,
        Event::Enrol(EnrolEvent::Began {
            ceremony: "c-0001".into(),
            set_number: 1,
        }),
    );
    m
}

#[test]
fn the_set_and_its_size_open_the_ceremony_then_cards_join_one_by_one() {
    let mut m = kind();
    assert_eq!(ch(&mut m, '2'), Vec::new());
    assert_eq!(
        (m.enrol.kind, m.enrol.phase),
        (SetKind::Auditor, Phase::Size)
    );
    key(&mut m, KeyCode::Esc);
    ch(&mut m, '1');
    ch(&mut m, 'h'); // n 3 -> 2
    assert_eq!(
        key(&mut m, KeyCode::Enter),
        vec![enrol(EnrolCommand::Begin {
            kind: SetKind::Pso,
            threshold: 2,
            n: 2
        })]
    );
    assert_eq!(m.enrol.phase, Phase::Beginning);
    event(
        &mut m,
        Event::Enrol(EnrolEvent::Began {
            ceremony: "c-0001".into(),
            set_number: 1,
        }),
    );
    assert_eq!((m.enrol.phase, m.enrol.step), (Phase::Cards, Step::Choose));
    for (slot, holder, serial) in [(0, "Ada Demo", "SOFT:0001"), (1, "Ben Demo", "SOFT:0002")] {
        assert_eq!(
            ch(&mut m, char::from(b'1' + slot as u8)),
            vec![enrol(EnrolCommand::Insert(slot))]
        );
        event(
            &mut m,
            Event::Enrol(EnrolEvent::Inserted(card(holder, serial, true, None))),
        );
        typed(&mut m, "zq-secret-pin");
        assert!(
            !format!("{m:?}").contains("zq-secret"),
            "no PIN in the model"
        );
        assert_eq!(
            key(&mut m, KeyCode::Enter),
            vec![Effect::SubmitPin(PinFor::Enrol)]
        );
        event(
            &mut m,
            Event::Enrol(EnrolEvent::Added {
                card: card(holder, serial, true, None),
                have: slot + 1,
            }),
        );
    }
    assert_eq!(m.enrol.step, Step::Working);
    event(
        &mut m,
        Event::Enrol(EnrolEvent::Registered {
            set_number: 1,
            threshold: 2,
            cards: vec!["Ada Demo · SOFT:0001".into(), "Ben Demo · SOFT:0002".into()],
        }),
    );
    assert_eq!(m.enrol.phase, Phase::Over);
    assert_eq!(m.enrol.notice.as_ref().unwrap().level, Level::Ok);
    assert_eq!(key(&mut m, KeyCode::Esc), vec![Effect::PinClear]);
    assert_eq!(m.screen, Screen::Cards);
}

#[test]
fn esc_mid_ceremony_asks_the_worker_to_abandon_and_shows_what_changed() {
    let mut m = begun();
    assert_eq!(
        key(&mut m, KeyCode::Esc),
        vec![Effect::PinClear, enrol(EnrolCommand::Abort)]
    );
    event(
        &mut m,
        Event::Enrol(EnrolEvent::Aborted(
            "Enrolment c-0001 abandoned before any card was written: nothing was registered \
             and no card changed."
                .into(),
        )),
    );
    assert_eq!(m.enrol.phase, Phase::Over);
    assert_eq!(m.enrol.notice.as_ref().unwrap().level, Level::Warn);
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
    let mut all = vec![("enrol_kind", kind())];
    let mut size = kind();
    ch(&mut size, '1');
    all.push(("enrol_size", size));
    let mut one = begun();
    event(
        &mut one,
        Event::Enrol(EnrolEvent::Added {
            card: card("Ada Demo", "SOFT:0001", true, None),
            have: 1,
        }),
    );
    all.push(("enrol_cards", one));
    let mut pin = begun();
    ch(&mut pin, '2');
    event(
        &mut pin,
        Event::Enrol(EnrolEvent::Inserted(card(
            "Ben Demo",
            "SOFT:0002",
            true,
            None,
        ))),
    );
    typed(&mut pin, "abc");
    all.push(("enrol_pin", pin));
    let mut aborted = begun();
    event(
        &mut aborted,
        Event::Enrol(EnrolEvent::Added {
            card: card("Ada Demo", "SOFT:0001", true, None),
            have: 1,
        }),
    );
    event(
        &mut aborted,
        Event::Enrol(EnrolEvent::Aborted(
            "Enrolment c-0001 abandoned: nothing was registered, the partition's card sets are \
             unchanged, and the secret is gone. These cards hold a share of the abandoned \
             secret, which no registered set opens (the next enrolment replaces it): soft card \
             SOFT:0001 (Ada Demo)."
                .into(),
        )),
    );
    all.push(("enrol_aborted", aborted));
    all
}

#[test]
fn every_enrol_step_matches_its_snapshot() {
    for (name, model) in states() {
        insta::assert_snapshot!(format!("{name}_80x24"), draw(&model, 80, 24));
        insta::assert_snapshot!(format!("{name}_160x48"), draw(&model, 160, 48));
        for (w, h) in [(40, 12), (20, 6), (1, 1)] {
            let text = std::panic::catch_unwind(|| draw(&model, w, h));
            assert!(text.is_ok(), "{name} panicked at {w}x{h}");
        }
    }
}

// The worker's side, on a fresh partition.

const PASSPHRASE: &str = "a soft card passphrase";

/// Soft test cards in a directory, each a slot.
struct TestCards {
    _dir: tempfile::TempDir,
    paths: Vec<PathBuf>,
}

impl TestCards {
    fn new(holders: &[&str]) -> TestCards {
        let dir = tempfile::tempdir().unwrap();
        let paths = holders
            .iter()
            .enumerate()
            .map(|(i, holder)| {
                let path = dir.path().join(format!("{i}.card"));
                SoftCard::create(
                    &path,
                    Some(holder),
                    &format!("TEST:{i:04}"),
                    &Pin::from_slice(PASSPHRASE.as_bytes()),
                    Argon2Params::insecure_for_tests(),
                    CardPolicy::allowed_by_configuration(),
                )
                .unwrap();
                path
            })
            .collect();
        TestCards { _dir: dir, paths }
    }
}

impl CardReader for TestCards {
    fn slots(&self) -> Vec<SlotView> {
        self.paths
            .iter()
            .map(|p| SlotView {
                label: p.display().to_string(),
            })
            .collect()
    }

    fn insert(&mut self, slot: usize) -> Result<Box<dyn InsertedCard>, String> {
        SoftCard::open_test_card(&self.paths[slot])
            .map(|c| Box::new(c) as Box<dyn InsertedCard>)
            .map_err(|e| e.to_string())
    }
}

fn events(events: Vec<Event>) -> Vec<EnrolEvent> {
    events
        .into_iter()
        .map(|e| match e {
            Event::Enrol(e) => e,
            other => panic!("{other:?}"),
        })
        .collect()
}

fn add(
    link: &mut (dyn quorum::ceremony::Link + Send),
    cards: &mut TestCards,
    state: &mut EnrolWork,
    slot: usize,
) -> Vec<EnrolEvent> {
    let inserted = events(work(link, cards, state, EnrolCommand::Insert(slot)));
    assert!(
        matches!(inserted.as_slice(), [EnrolEvent::Inserted(_)]),
        "{inserted:?}"
    );
    let pin = Pin::from_slice(PASSPHRASE.as_bytes());
    events(work(link, cards, state, EnrolCommand::Verify(pin)))
}

#[test]
fn a_fresh_partitions_pso_set_is_enrolled_card_by_card_through_the_worker() {
    let fixture = Fixture::new(ServiceTier::Economy);
    let mut terminal = fixture.pair();
    let link = &mut terminal.conn;
    let mut cards = TestCards::new(&["Ann Officer", "Bo Officer", "Cy Officer"]);
    let mut state = EnrolWork::default();

    let began = events(work(
        link,
        &mut cards,
        &mut state,
        EnrolCommand::Begin {
            kind: SetKind::Pso,
            threshold: 2,
            n: 3,
        },
    ));
    let [EnrolEvent::Began { set_number: 1, .. }] = began.as_slice() else {
        panic!("{began:?}")
    };
    assert!(matches!(
        add(link, &mut cards, &mut state, 0).as_slice(),
        [EnrolEvent::Added { have: 1, .. }]
    ));
    // The same card twice is refused and named; the ceremony goes on.
    let twice = add(link, &mut cards, &mut state, 0);
    assert!(
        matches!(twice.as_slice(), [EnrolEvent::Refused(why)] if why.contains("TEST:0000")),
        "{twice:?}"
    );
    assert!(matches!(
        add(link, &mut cards, &mut state, 1).as_slice(),
        [EnrolEvent::Added { have: 2, .. }]
    ));
    let last = add(link, &mut cards, &mut state, 2);
    match last.as_slice() {
        [
            EnrolEvent::Added { have: 3, .. },
            EnrolEvent::Registered {
                set_number: 1,
                threshold: 2,
                cards,
            },
        ] => assert_eq!(cards[0], "Ann Officer · TEST:0000"),
        other => panic!("{other:?}"),
    }
    let active = quorum::ceremony::ActiveSet::fetch(link).unwrap().unwrap();
    assert_eq!(active.set_number, 1);
}

#[test]
fn an_abandoned_enrolment_registers_nothing_and_names_the_cards_written() {
    let fixture = Fixture::new(ServiceTier::Economy);
    let mut terminal = fixture.pair();
    let link = &mut terminal.conn;
    let mut cards = TestCards::new(&["Ann Officer", "Bo Officer"]);
    let mut state = EnrolWork::default();
    events(work(
        link,
        &mut cards,
        &mut state,
        EnrolCommand::Begin {
            kind: SetKind::Pso,
            threshold: 1,
            n: 2,
        },
    ));
    add(link, &mut cards, &mut state, 0);
    let aborted = events(work(link, &mut cards, &mut state, EnrolCommand::Abort));
    match aborted.as_slice() {
        [EnrolEvent::Aborted(text)] => {
            assert!(text.contains("nothing was registered"), "{text}");
            assert!(text.contains("TEST:0000 (Ann Officer)"), "{text}");
        }
        other => panic!("{other:?}"),
    }
    assert!(quorum::ceremony::ActiveSet::fetch(link).unwrap().is_none());
}

#[test]
fn the_help_overlay_on_the_cards_screen_lists_enrol() {
    let mut m = logged_in();
    ch(&mut m, '8');
    ch(&mut m, '?');
    let help = draw(&m, 160, 48);
    assert!(help.contains("enrol a set"), "{help}");
}

#[test]
fn on_the_demo_a_pso_set_is_refused_and_the_auditor_set_is_enrolled_again_after_a_pso_login() {
    use terminal_app::tui::demo::{DEMO_CARDS, Demo};
    use terminal_app::tui::message::LoginCommand;
    let mut w = Demo::new(Argon2Params::insecure_for_tests(), true)
        .unwrap()
        .into_worker()
        .unwrap();
    let enrol_events = |w: &mut terminal_app::tui::worker::Worker, c: EnrolCommand| {
        events(w.handle(Command::Enrol(c)))
    };
    // The demo partition has its PSO set: a first enrolment is refused, with the HSM's reason.
    let refused = enrol_events(
        &mut w,
        EnrolCommand::Begin {
            kind: SetKind::Pso,
            threshold: 2,
            n: 3,
        },
    );
    assert!(
        matches!(refused.as_slice(), [EnrolEvent::Refused(why)] if why.contains("needs an officer login")),
        "{refused:?}"
    );

    // A PSO login (Ada, Ben), then the auditor set again: Dana and Eli, 1 of 2.
    w.handle(Command::Login(LoginCommand::Start(
        hsm_link::message::OfficerRole::Pso,
    )));
    for slot in [0, 1] {
        w.handle(Command::Login(LoginCommand::Insert(slot)));
        w.handle(Command::Login(LoginCommand::Verify(Pin::from_slice(
            DEMO_CARDS[slot].pin.as_bytes(),
        ))));
    }
    let began = enrol_events(
        &mut w,
        EnrolCommand::Begin {
            kind: SetKind::Auditor,
            threshold: 1,
            n: 2,
        },
    );
    assert!(
        matches!(began.as_slice(), [EnrolEvent::Began { set_number: 2, .. }]),
        "{began:?}"
    );
    let mut last = Vec::new();
    for slot in [3, 4] {
        enrol_events(&mut w, EnrolCommand::Insert(slot));
        last = enrol_events(
            &mut w,
            EnrolCommand::Verify(Pin::from_slice(DEMO_CARDS[slot].pin.as_bytes())),
        );
    }
    match last.as_slice() {
        [
            EnrolEvent::Added { have: 2, .. },
            EnrolEvent::Registered {
                set_number: 2,
                threshold: 1,
                cards,
            },
        ] => assert_eq!(cards, &["Dana Audit · SOFT:0101", "Eli Audit · SOFT:0102"]),
        other => panic!("{other:?}"),
    }
}
