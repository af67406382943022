//! `update` alone: a key (or a worker event, or a tick) in, the model changed and the effects
//! out, as asserted. No terminal, no worker.
#![cfg(feature = "embedded")] // the demo HSM is the embedded simulator

#[path = "support/tui_model.rs"]
mod tui_support;

use hsm_link::domain::{KeyId, Parameter};
use hsm_link::message::{KeyCursor, KeyFilter, KeyPosition, KeyQuery, KeySort, OfficerRole};
use ratatui::crossterm::event::KeyCode;
use terminal_app::flows::config::Mode;
use terminal_app::flows::login::Stage;
use terminal_app::tui::message::{Command, Effect, Event, LoginCommand, LoginEvent};
use terminal_app::tui::model::{Overlay, Screen};
use tui_support::*;

#[test]
fn q_quits_at_once_when_nobody_is_logged_in() {
    let mut m = ready();
    assert_eq!(ch(&mut m, 'q'), vec![Effect::PinClear, Effect::Quit]);
    assert!(m.quitting);
}

#[test]
fn q_asks_first_while_logged_in_and_y_logs_out_then_quits() {
    let mut m = logged_in();
    assert!(ch(&mut m, 'q').is_empty());
    assert_eq!(m.overlay, Some(Overlay::ConfirmQuit));
    // Anything but y keeps the session.
    ch(&mut m, 'n');
    assert_eq!(m.overlay, None);
    assert!(!m.quitting);
    ch(&mut m, 'q');
    assert_eq!(
        ch(&mut m, 'y'),
        vec![
            Effect::PinClear,
            Effect::Send(Command::Logout),
            Effect::Quit
        ]
    );
}

#[test]
fn help_opens_on_question_mark_and_esc_closes_it() {
    let mut m = logged_in();
    ch(&mut m, '?');
    assert_eq!(m.overlay, Some(Overlay::Help));
    key(&mut m, KeyCode::Esc);
    assert_eq!(m.overlay, None);
    assert_eq!(m.screen, Screen::Dashboard);
}

#[test]
fn arrows_and_vim_keys_move_the_menu_and_esc_backs_out() {
    let mut m = logged_in();
    ch(&mut m, 'j');
    key(&mut m, KeyCode::Down);
    assert_eq!(m.menu, 2);
    ch(&mut m, 'k');
    assert_eq!(m.menu, 1);
    let effects = key(&mut m, KeyCode::Enter);
    assert_eq!(m.screen, Screen::Keys);
    assert_eq!(
        effects,
        vec![Effect::Send(Command::Keys(KeyQuery::first(
            KeyFilter::Active,
            terminal_app::flows::keys::PAGE
        )))]
    );
    key(&mut m, KeyCode::Esc);
    assert_eq!(m.screen, Screen::Dashboard);
}

#[test]
fn a_role_number_starts_that_login_at_the_hsm() {
    let mut m = ready();
    let effects = ch(&mut m, '2');
    assert_eq!(m.screen, Screen::Login);
    assert_eq!(
        effects,
        vec![
            Effect::PinClear,
            Effect::Send(Command::Login(LoginCommand::Start(OfficerRole::Auditor)))
        ]
    );
}

#[test]
fn no_login_starts_before_the_link_is_up() {
    let mut m = fresh();
    assert!(ch(&mut m, '1').is_empty());
    assert_eq!(m.screen, Screen::Welcome);
    assert!(m.notice.as_ref().unwrap().text.contains("not up"));
}

#[test]
fn the_pin_goes_to_the_buffer_never_into_the_model() {
    let mut m = login_started();
    assert_eq!(
        key(&mut m, KeyCode::Enter),
        vec![Effect::Send(Command::Login(LoginCommand::Insert(0)))]
    );
    event(
        &mut m,
        Event::Login(LoginEvent::Inserted(card(
            "Ada Demo",
            "SOFT:0001",
            true,
            None,
        ))),
    );
    assert_eq!(m.login.stage, Stage::Pin);
    // q and ? are typed into the PIN, not taken as commands.
    let effects = typed(&mut m, "q?x");
    assert_eq!(
        effects,
        vec![
            Effect::PinPush('q'),
            Effect::PinPush('?'),
            Effect::PinPush('x')
        ]
    );
    assert_eq!(m.login.pin_len, 3);
    assert_eq!(m.overlay, None);
    assert_eq!(key(&mut m, KeyCode::Backspace), vec![Effect::PinPop]);
    assert_eq!(
        key(&mut m, KeyCode::Enter),
        vec![Effect::SubmitPin(terminal_app::tui::message::PinFor::Login)]
    );
    assert_eq!(m.login.stage, Stage::Checking);
    assert_eq!(m.login.pin_len, 0);
    assert!(!format!("{m:?}").contains("q?"));
}

#[test]
fn a_wrong_pin_keeps_the_card_and_shows_the_tries_left() {
    let mut m = login_started();
    key(&mut m, KeyCode::Enter);
    event(
        &mut m,
        Event::Login(LoginEvent::Inserted(card("Ben", "000F:1", false, Some(3)))),
    );
    typed(&mut m, "0000");
    key(&mut m, KeyCode::Enter);
    let effects = event(
        &mut m,
        Event::Login(LoginEvent::WrongPin(card("Ben", "000F:1", false, Some(2)))),
    );
    assert_eq!(effects, vec![Effect::PinClear]);
    assert_eq!(m.login.stage, Stage::Pin);
    assert!(
        m.login
            .notice
            .as_ref()
            .unwrap()
            .text
            .contains("2 tries left")
    );
}

#[test]
fn cards_that_cannot_count_are_named_and_the_next_card_is_asked_for() {
    for (why, words) in [
        (
            terminal_app::tui::message::CardRefusal::Blocked,
            "is blocked",
        ),
        (
            terminal_app::tui::message::CardRefusal::NotInSet,
            "another card set",
        ),
        (
            terminal_app::tui::message::CardRefusal::SameCardTwice,
            "already signed",
        ),
    ] {
        let mut m = login_started();
        event(
            &mut m,
            Event::Login(LoginEvent::Refused {
                card: card("Dana Audit", "SOFT:0101", true, None),
                why,
            }),
        );
        assert_eq!(m.login.stage, Stage::ChooseCard);
        let text = &m.login.notice.as_ref().unwrap().text;
        assert!(text.contains(words) && text.contains("SOFT:0101"), "{text}");
    }
}

#[test]
fn a_throttled_login_waits_for_the_hsm() {
    let mut m = login_started();
    event(
        &mut m,
        Event::Login(LoginEvent::Failed {
            reason: "too many failed logins".into(),
            retry_after_secs: Some(300),
        }),
    );
    assert_eq!(m.login.stage, Stage::Failed);
    // Enter before the wait is over does not ask the HSM again.
    assert!(key(&mut m, KeyCode::Enter).is_empty());
    assert!(m.login.notice.as_ref().unwrap().text.contains("300 s"));
    tick(&mut m, 301_000);
    let effects = key(&mut m, KeyCode::Enter);
    assert!(
        effects.contains(&Effect::Send(Command::Login(LoginCommand::Start(
            OfficerRole::Pso
        ))))
    );
}

#[test]
fn the_session_locks_after_the_idle_time_and_ends_at_the_hsm() {
    let mut m = logged_in();
    m.idle_lock_ms = 60_000;
    tick(&mut m, 30_000);
    assert_eq!(m.lock_in_ms(), Some(30_000));
    // A key resets the countdown.
    ch(&mut m, 'j');
    tick(&mut m, 80_000);
    assert!(m.session.is_some());
    let effects = tick(&mut m, 90_000);
    assert_eq!(
        effects,
        vec![Effect::PinClear, Effect::Send(Command::Logout)]
    );
    assert!(m.session.is_none());
    assert_eq!(m.screen, Screen::Welcome);
    assert_eq!(m.overlay, Some(Overlay::Locked { idle_secs: 60 }));
    assert!(
        m.dashboard.status.is_none(),
        "nothing read under the login stays"
    );
}

#[test]
fn loosening_changes_need_the_partition_id_typed() {
    let mut m = logged_in();
    ch(&mut m, '1');
    event(&mut m, Event::Config(Box::new(config())));
    // REST API on: a loosening change.
    for _ in 0..3 {
        ch(&mut m, 'j');
    }
    ch(&mut m, ' ');
    let changes = m.config.changes();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].parameter, Parameter::ApiRest);
    assert!(changes[0].loosens);
    ch(&mut m, 'a');
    assert_eq!(m.config.mode, Mode::Review);
    ch(&mut m, 'y');
    assert!(matches!(m.config.mode, Mode::Confirm { .. }));
    typed(&mut m, "demo");
    assert!(
        key(&mut m, KeyCode::Enter).is_empty(),
        "a wrong id applies nothing"
    );
    typed(&mut m, "-partition");
    let effects = key(&mut m, KeyCode::Enter);
    let mut expected = config();
    expected.api_providers.rest = true;
    assert_eq!(
        effects,
        vec![Effect::Send(Command::ApplyConfig {
            expected_revision: 3,
            config: Box::new(expected)
        })]
    );
}

#[test]
fn a_tightening_change_is_applied_after_one_yes() {
    let mut m = logged_in();
    ch(&mut m, '1');
    event(&mut m, Event::Config(Box::new(config())));
    // Object usage off (index 12) tightens.
    for _ in 0..12 {
        ch(&mut m, 'j');
    }
    ch(&mut m, ' ');
    ch(&mut m, 'a');
    let effects = ch(&mut m, 'y');
    assert!(matches!(
        effects.as_slice(),
        [Effect::Send(Command::ApplyConfig {
            expected_revision: 3,
            ..
        })]
    ));
    // The HSM answers stale: nothing applied, the reason shown, the staged change kept.
    event(
        &mut m,
        Event::ConfigRefused {
            reason: "stale".into(),
            stale: Some(4),
        },
    );
    assert!(
        m.config
            .notice
            .as_ref()
            .unwrap()
            .text
            .contains("revision 4")
    );
    assert_eq!(m.config.changes().len(), 1);
}

#[test]
fn an_allow_list_entry_is_checked_as_it_is_typed() {
    let mut m = logged_in();
    ch(&mut m, '1');
    event(&mut m, Event::Config(Box::new(config())));
    for _ in 0..13 {
        ch(&mut m, 'j');
    }
    ch(&mut m, ' ');
    typed(&mut m, "10.0.0.1/8");
    let Mode::AllowList { error, .. } = &m.config.mode else {
        panic!("not editing: {:?}", m.config.mode)
    };
    assert!(error.as_ref().unwrap().contains("10.0.0.0/8"), "{error:?}");
    // Enter on an invalid list keeps the field open.
    key(&mut m, KeyCode::Enter);
    assert!(matches!(m.config.mode, Mode::AllowList { .. }));
    for _ in 0..2 {
        key(&mut m, KeyCode::Backspace);
    }
    typed(&mut m, "/32");
    key(&mut m, KeyCode::Enter);
    assert_eq!(m.config.mode, Mode::Browse);
    assert_eq!(
        m.config.staged.as_ref().unwrap().ip_allow_list.to_string(),
        "10.0.0.1"
    );
}

#[test]
fn purge_needs_the_label_typed_and_restore_one_yes() {
    let mut m = logged_in();
    ch(&mut m, '3');
    event(&mut m, keys_page(KeyFilter::Invalidated, 6, false));
    ch(&mut m, 'P');
    typed(&mut m, "payments-key-0002");
    assert!(
        key(&mut m, KeyCode::Enter).is_empty(),
        "the wrong label purges nothing"
    );
    for _ in 0..1 {
        key(&mut m, KeyCode::Backspace);
    }
    typed(&mut m, "1");
    assert_eq!(
        key(&mut m, KeyCode::Enter),
        vec![Effect::Send(Command::Purge(KeyId(1)))]
    );
    ch(&mut m, 'j');
    ch(&mut m, 'R');
    assert_eq!(
        ch(&mut m, 'y'),
        vec![Effect::Send(Command::Restore(KeyId(2)))]
    );
}

#[test]
fn the_next_page_of_keys_is_fetched_as_the_user_scrolls() {
    let mut m = logged_in();
    ch(&mut m, '2');
    event(&mut m, keys_page(KeyFilter::Active, 100, true));
    let mut fetched = Vec::new();
    for _ in 0..79 {
        fetched.extend(ch(&mut m, 'j'));
    }
    assert!(fetched.is_empty(), "no fetch far from the end: {fetched:?}");
    let effects = ch(&mut m, 'j');
    assert_eq!(
        effects,
        vec![Effect::Send(Command::Keys(KeyQuery {
            from: KeyCursor::After(KeyPosition::of(&m.keys.rows[99])),
            count: false,
            ..KeyQuery::first(KeyFilter::Active, terminal_app::flows::keys::PAGE)
        }))]
    );
    // While the page is on its way, no second request.
    assert!(ch(&mut m, 'j').is_empty());
}

/// 10,000 keys behind the HSM's answers: the list is walked down by keys and pages, to the end
/// and back to the top; the model never holds more than its window, the row selected is
/// always the one at that place in the whole list, and the title says which rows are shown.
#[test]
fn the_key_list_holds_a_window_and_reads_pages_forward_and_backward() {
    use terminal_app::flows::keys::MAX_HELD_ROWS;
    let all = keys(10_000, false);
    let mut m = logged_in();
    let effects = ch(&mut m, '2');
    assert!(serve_keys(&mut m, &all, effects).is_empty());
    assert_eq!(m.keys.total, Some(10_000));
    let check = |m: &terminal_app::tui::model::Model| {
        assert!(m.keys.rows.len() <= MAX_HELD_ROWS, "{}", m.keys.rows.len());
        let k = m.keys.selected_key().expect("the selection is held");
        assert_eq!(k.id.0 as usize, m.keys.selected + 1);
    };
    for _ in 0..300 {
        let effects = key(&mut m, KeyCode::PageDown);
        serve_keys(&mut m, &all, effects);
        check(&m);
    }
    assert_eq!(m.keys.selected, 3_000);
    assert!(m.keys.offset > 0, "rows before the window were dropped");
    // End reads the last page (no walk through the rest).
    let effects = key(&mut m, KeyCode::End);
    assert!(matches!(
        effects.as_slice(),
        [Effect::Send(Command::Keys(KeyQuery {
            from: KeyCursor::Last,
            ..
        }))]
    ));
    serve_keys(&mut m, &all, effects);
    check(&m);
    assert_eq!(m.keys.selected, 9_999);
    assert_eq!(m.keys.offset, 10_000 - m.keys.rows.len());
    let screen = screen_text(&m, 80, 24);
    assert!(screen.contains("–10,000 of 10,000"), "{screen}");
    // Back up: pages before the window are read (Before cursors), the window stays bounded.
    let mut before = 0;
    for _ in 0..100 {
        let effects = key(&mut m, KeyCode::PageUp);
        before += effects
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    Effect::Send(Command::Keys(KeyQuery {
                        from: KeyCursor::Before(_),
                        ..
                    }))
                )
            })
            .count();
        serve_keys(&mut m, &all, effects);
        check(&m);
    }
    assert_eq!(m.keys.selected, 8_999);
    assert!(before >= 9, "pages before the window read: {before}");
    // Home reads the first page again.
    let effects = key(&mut m, KeyCode::Home);
    serve_keys(&mut m, &all, effects);
    check(&m);
    assert_eq!((m.keys.selected, m.keys.offset), (0, 0));
}

/// A page that answers an older order or filter, or a cursor no longer asked for, is
/// dropped: it would land in the wrong place of the window.
#[test]
fn a_key_page_for_an_older_query_is_dropped() {
    let all = keys(1_000, false);
    let mut m = logged_in();
    let first = ch(&mut m, '2');
    ch(&mut m, 's');
    let Effect::Send(Command::Keys(old)) = &first[0] else {
        panic!("{first:?}")
    };
    event(&mut m, keys_answer(old, &all));
    assert!(m.keys.rows.is_empty(), "the id-ordered page is not taken");
    assert_eq!(m.keys.loading, Some(KeyCursor::First));
}

/// Filter and sort are the HSM's: a label filter typed (applied on Enter), a kind cycled and
/// the order changed each read the list again from its first page with that query.
#[test]
fn key_filters_and_order_are_sent_to_the_hsm() {
    let mut m = logged_in();
    ch(&mut m, '2');
    event(&mut m, keys_page(KeyFilter::Active, 100, true));
    ch(&mut m, '/');
    typed(&mut m, "pay");
    let effects = key(&mut m, KeyCode::Enter);
    let [Effect::Send(Command::Keys(q))] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert_eq!(q.label_contains.as_deref(), Some("pay"));
    assert_eq!(q.from, KeyCursor::First);
    assert!(q.count, "a new filter is counted");
    let effects = ch(&mut m, 't');
    let [Effect::Send(Command::Keys(q))] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert_eq!(q.kind, Some(hsm_link::domain::KeyKind::Aes256));
    assert_eq!(q.label_contains.as_deref(), Some("pay"));
    let effects = ch(&mut m, 's');
    let [Effect::Send(Command::Keys(q))] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert_eq!((q.sort, q.descending), (KeySort::Label, false));
}

#[test]
fn log_filters_reload_from_the_start() {
    let mut m = logged_in();
    ch(&mut m, '4');
    let effects = ch(&mut m, 'x');
    let Effect::Send(Command::Log(query)) = &effects[0] else {
        panic!("{effects:?}")
    };
    assert_eq!(query.from_seq, 1);
    assert_eq!(query.outcome, Some(hsm_link::message::OutcomeFilter::Ok));
    ch(&mut m, '/');
    typed(&mut m, "config.");
    let effects = key(&mut m, KeyCode::Enter);
    let Effect::Send(Command::Log(query)) = &effects[0] else {
        panic!("{effects:?}")
    };
    assert_eq!(query.operation_prefix.as_deref(), Some("config."));
    ch(&mut m, 'h');
    typed(&mut m, "Ada Demo");
    let effects = key(&mut m, KeyCode::Enter);
    let Effect::Send(Command::Log(query)) = &effects[0] else {
        panic!("{effects:?}")
    };
    assert_eq!(query.holder.as_deref(), Some("Ada Demo"));
    assert_eq!(query.operation_prefix.as_deref(), Some("config."));
}

#[test]
fn newest_first_is_the_hsm_order_read_from_its_first_page() {
    let mut m = logged_in();
    ch(&mut m, '2');
    event(&mut m, keys_page(KeyFilter::Active, 100, true));
    for _ in 0..2 {
        ch(&mut m, 's');
    }
    let effects = ch(&mut m, 's');
    assert_eq!(
        effects,
        vec![Effect::Send(Command::Keys(KeyQuery {
            sort: KeySort::Created,
            descending: true,
            // The count of the list stands: the order does not change it.
            count: false,
            ..KeyQuery::first(KeyFilter::Active, terminal_app::flows::keys::PAGE)
        }))]
    );
    assert!(m.keys.rows.is_empty());
    assert_eq!(m.keys.total, Some(1_000));
}

#[test]
fn credentials_reset_after_a_yes_are_shown_once_and_wiped_on_leaving() {
    let mut m = logged_in();
    ch(&mut m, '9');
    assert_eq!(m.screen, Screen::Credentials);
    assert!(ch(&mut m, 'R').is_empty());
    assert!(m.credentials.confirm);
    assert_eq!(
        ch(&mut m, 'y'),
        vec![Effect::Send(Command::ResetCredentials)]
    );
    event(
        &mut m,
        Event::Credentials {
            password: terminal_app::flows::credentials::ShownOnce::new("ABCD-EFGH".into()),
            expires_unix: 1_796_400_000,
        },
    );
    assert_eq!(
        m.credentials.shown.as_ref().unwrap().0.expose(),
        "ABCD-EFGH"
    );
    assert!(
        !format!("{m:?}").contains("ABCD-EFGH"),
        "Debug never shows it"
    );
    key(&mut m, KeyCode::Esc);
    assert_eq!(m.screen, Screen::Dashboard);
    assert!(m.credentials.shown.is_none(), "leaving wipes it");
}

#[test]
fn a_share_drill_takes_a_card_and_its_pin_through_the_buffer() {
    use terminal_app::tui::message::{DrillCommand, DrillEvent, PinFor};
    let mut m = logged_in();
    ch(&mut m, '8');
    assert_eq!(m.screen, Screen::Cards);
    ch(&mut m, 'j');
    assert_eq!(
        key(&mut m, KeyCode::Enter),
        vec![Effect::Send(Command::Drill(DrillCommand::Insert(1)))]
    );
    event(
        &mut m,
        Event::Drill(DrillEvent::Inserted(card(
            "Ben Demo",
            "SOFT:0002",
            true,
            None,
        ))),
    );
    assert_eq!(
        typed(&mut m, "pq"),
        vec![Effect::PinPush('p'), Effect::PinPush('q')]
    );
    assert_eq!(
        key(&mut m, KeyCode::Enter),
        vec![Effect::SubmitPin(PinFor::Drill)]
    );
    event(
        &mut m,
        Event::Drill(DrillEvent::Done {
            card: card("Ben Demo", "SOFT:0002", true, None),
            ok: true,
            detail: "The HSM logged the drill.".into(),
        }),
    );
    assert!(
        m.drill
            .notice
            .as_ref()
            .unwrap()
            .text
            .contains("share is valid")
    );
}
