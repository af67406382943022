//! Every screen drawn on a `TestBackend` at 80×24 and 160×48, normal and error states, compared
//! with the committed snapshots (`tests/snapshots/`); and every state drawn at 40×12 without a
//! panic. Snapshots are monochrome text: what a user reads with `NO_COLOR`.
//!
//! A changed screen fails (CI runs with `INSTA_UPDATE=no`); to accept a change, run with
//! `INSTA_UPDATE=always` and review the diff of the `.snap` files.
#![cfg(feature = "embedded")] // the demo HSM is the embedded simulator

#[path = "support/tui_model.rs"]
mod tui_support;

use hsm_link::message::{KeyFilter, OfficerRole};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::KeyCode;
use terminal_app::flows::firmware::{self, FirmwareCommand, FirmwareEvent, Mark, Stage};
use terminal_app::tui::message::{CardRefusal, Command, Effect, Event, LoginEvent, Verification};
use terminal_app::tui::model::{Model, Screen};
use terminal_app::tui::theme::Theme;
use terminal_app::tui::view::view;
use tui_support::*;

fn draw(model: &Model, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|f| view(f, model, &Theme::monochrome()))
        .unwrap();
    terminal.backend().to_string()
}

/// Snapshots `model` at both sizes under `name`.
fn screens(name: &str, model: &Model) {
    insta::assert_snapshot!(format!("{name}_80x24"), draw(model, 80, 24));
    insta::assert_snapshot!(format!("{name}_160x48"), draw(model, 160, 48));
}

/// Every state the snapshots cover, by name.
fn states() -> Vec<(&'static str, Model)> {
    let mut all = vec![("welcome_connecting", fresh()), ("welcome", ready())];

    let mut lost = ready();
    event(
        &mut lost,
        Event::LinkLost("the HSM closed the connection".into()),
    );
    all.push(("welcome_link_lost", lost));

    all.push(("login_choose_card", login_started()));

    let mut pin = login_started();
    event(
        &mut pin,
        Event::Login(LoginEvent::Inserted(card(
            "Ada Demo",
            "SOFT:0001",
            true,
            None,
        ))),
    );
    typed(&mut pin, "secret");
    all.push(("login_pin", pin));

    let mut wrong = login_started();
    event(
        &mut wrong,
        Event::Login(LoginEvent::Inserted(card(
            "Ben Holder",
            "000F:1A2B3C4D",
            false,
            Some(3),
        ))),
    );
    event(
        &mut wrong,
        Event::Login(LoginEvent::WrongPin(card(
            "Ben Holder",
            "000F:1A2B3C4D",
            false,
            Some(2),
        ))),
    );
    all.push(("login_wrong_pin", wrong));

    for (name, why, who) in [
        (
            "login_blocked",
            CardRefusal::Blocked,
            card("Cleo Holder", "000F:0000C1E0", false, Some(0)),
        ),
        (
            "login_other_set",
            CardRefusal::NotInSet,
            card("Dana Audit", "SOFT:0101", true, None),
        ),
        (
            "login_same_card_twice",
            CardRefusal::SameCardTwice,
            card("Ada Demo", "SOFT:0001", true, None),
        ),
    ] {
        let mut m = login_started();
        if why == CardRefusal::SameCardTwice {
            event(
                &mut m,
                Event::Login(LoginEvent::Signed {
                    card: who.clone(),
                    have: 1,
                    need: 2,
                }),
            );
        }
        event(&mut m, Event::Login(LoginEvent::Refused { card: who, why }));
        all.push((name, m));
    }

    let mut throttled = login_started();
    event(
        &mut throttled,
        Event::Login(LoginEvent::Failed {
            reason: "too many failed logins".into(),
            retry_after_secs: Some(300),
        }),
    );
    all.push(("login_throttled", throttled));

    all.push(("dashboard", logged_in()));
    // The log at 85 % of its limit: the dashboard warns to export.
    let mut near_full = logged_in();
    if let Some(status) = near_full.dashboard.status.as_mut() {
        status.log_status = Some(log_status(850, 790));
    }
    all.push(("dashboard_log_near_full", near_full));

    let mut help = logged_in();
    ch(&mut help, '?');
    all.push(("help_dashboard", help));

    let mut quit = logged_in();
    ch(&mut quit, 'q');
    all.push(("quit_confirm", quit));

    let mut locked = logged_in();
    tick(&mut locked, 10 * 60 * 1000);
    all.push(("locked", locked));

    all.extend(config_states());
    all.extend(key_states());
    all.extend(log_states());
    all.extend(firmware_states());

    let mut creds = logged_in();
    ch(&mut creds, '9');
    ch(&mut creds, 'R');
    all.push(("credentials_confirm", creds.clone()));
    ch(&mut creds, 'y');
    event(
        &mut creds,
        Event::Credentials {
            password: terminal_app::flows::credentials::ShownOnce::new(
                "K7QF-2M9X-PA4T-8WZC-3HJD-V6NB".into(),
            ),
            expires_unix: 1_796_635_800,
        },
    );
    all.push(("credentials_shown", creds));

    let mut drill = logged_in();
    ch(&mut drill, '8');
    event(
        &mut drill,
        Event::Drill(terminal_app::tui::message::DrillEvent::Done {
            card: card("Cleo Demo", "SOFT:0003", true, None),
            ok: true,
            detail: "The HSM logged the drill.".into(),
        }),
    );
    all.push(("cards_drill_done", drill));

    all
}

fn config_states() -> Vec<(&'static str, Model)> {
    let mut all = Vec::new();
    let mut m = logged_in();
    ch(&mut m, '1');
    event(&mut m, Event::Config(Box::new(config())));
    all.push(("config", m.clone()));

    // Stage: REST API on (loosens), key export widened (loosens), read-only on.
    let mut staged = m.clone();
    key(&mut staged, KeyCode::Down);
    key(&mut staged, KeyCode::Down);
    key(&mut staged, KeyCode::Down);
    ch(&mut staged, ' ');
    for _ in 0..4 {
        key(&mut staged, KeyCode::Down);
    }
    ch(&mut staged, ' ');
    key(&mut staged, KeyCode::Down);
    key(&mut staged, KeyCode::Down);
    ch(&mut staged, ' ');
    all.push(("config_staged", staged.clone()));

    let mut review = staged.clone();
    ch(&mut review, 'a');
    all.push(("config_review", review.clone()));

    let mut confirm = review.clone();
    ch(&mut confirm, 'y');
    typed(&mut confirm, "demo-part");
    all.push(("config_confirm_typed", confirm));

    let mut so_off = m.clone();
    event(
        &mut so_off,
        Event::Drills(
            ["Ada Demo", "Ben Demo", "Cleo Demo"]
                .iter()
                .enumerate()
                .map(|(i, holder)| terminal_app::tui::message::DrillView {
                    holder: holder.to_string(),
                    serial: format!("SOFT:000{}", i + 1),
                    last_passed: (i == 2).then(|| "2026-12-04 09:12".to_string()),
                })
                .collect(),
        ),
    );
    for _ in 0..14 {
        key(&mut so_off, KeyCode::Down);
    }
    ch(&mut so_off, ' ');
    ch(&mut so_off, 'a');
    all.push(("config_device_so_off_review", so_off));

    let mut stale = staged.clone();
    event(
        &mut stale,
        Event::ConfigRefused {
            reason: "the configuration changed since it was read (now revision 4)".into(),
            stale: Some(4),
        },
    );
    all.push(("config_stale_revision", stale));

    let mut ip = m.clone();
    for _ in 0..13 {
        key(&mut ip, KeyCode::Down);
    }
    ch(&mut ip, ' ');
    typed(&mut ip, "192.0.2.0/24, 10.0.0.1/8");
    all.push(("config_ip_invalid", ip));
    all
}

fn key_states() -> Vec<(&'static str, Model)> {
    let mut all = Vec::new();
    let mut k = logged_in();
    ch(&mut k, '2');
    event(&mut k, keys_page(KeyFilter::Active, 100, true));
    for _ in 0..5 {
        key(&mut k, KeyCode::Down);
    }
    all.push(("keys", k));

    // Deep in a list of 1,000 keys: the title says which rows of how many are shown.
    let thousand = keys(1_000, false);
    let mut deep = logged_in();
    let effects = ch(&mut deep, '2');
    serve_keys(&mut deep, &thousand, effects);
    for _ in 0..20 {
        let effects = key(&mut deep, KeyCode::PageDown);
        serve_keys(&mut deep, &thousand, effects);
    }
    all.push(("keys_deep", deep));

    let mut bin = logged_in();
    ch(&mut bin, '3');
    event(&mut bin, keys_page(KeyFilter::Invalidated, 6, false));
    all.push(("bin", bin.clone()));

    let mut purge = bin.clone();
    ch(&mut purge, 'P');
    typed(&mut purge, "payments-key");
    all.push(("bin_purge_confirm", purge));

    let mut purged = bin.clone();
    event(
        &mut purged,
        Event::Purged {
            id: hsm_link::domain::KeyId(1),
            usage: hsm_link::domain::PartitionUsage {
                bytes_used: 2_449_904,
                objects_used: 13,
                invalidated_objects: 5,
            },
            freed: 96,
        },
    );
    all.push(("bin_purged", purged));

    let mut refused = bin;
    event(
        &mut refused,
        Event::KeyActionFailed("Nothing changed: auditor may not purge a key from the bin".into()),
    );
    all.push(("bin_refused", refused));
    all
}

fn log_states() -> Vec<(&'static str, Model)> {
    let mut all = Vec::new();
    let mut logs = logged_in();
    ch(&mut logs, '4');
    let page = log_page(
        &logs,
        200,
        Verification::Chain {
            entries: 200,
            checkpoints: 3,
            last_checkpoint: Some(196),
            unsigned_tail: 4,
        },
    );
    event(&mut logs, page);
    all.push(("logs", logs.clone()));

    let mut broken = logs.clone();
    let page = log_page(
        &broken,
        40,
        Verification::Broken("line 17: the entry's hash does not match (edited entry)".into()),
    );
    event(&mut broken, page);
    all.push(("logs_broken", broken));
    all
}

/// The demo's firmware device and drive in a temporary directory, and a model (link up, not
/// logged in) that uses them.
fn firmware_fixture() -> (tempfile::TempDir, Model) {
    let dir = tempfile::tempdir().unwrap();
    let (root, drive) = (dir.path().join("device"), dir.path().join("drive"));
    firmware_image::demo::prepare(&root, &drive, &dir.path().join("scratch")).unwrap();
    let mut m = ready();
    m.firmware.root = Some(root);
    m.drive_dirs = vec![drive];
    (dir, m)
}

/// Runs the firmware steps among `effects` on the worker's code and feeds back its events.
fn run_firmware(model: &mut Model, effects: Vec<Effect>) {
    for effect in effects {
        if let Effect::Send(Command::Firmware(step)) = effect {
            for e in firmware::work(step, None) {
                let more = event(model, e);
                run_firmware(model, more);
            }
        }
    }
}

fn firmware_states() -> Vec<(&'static str, Model)> {
    let (dir, m) = firmware_fixture();
    let mut all = Vec::new();

    let mut none = m.clone();
    let empty = dir.path().join("empty-drive");
    std::fs::create_dir(&empty).unwrap();
    none.drive_dirs = vec![empty];
    let effects = ch(&mut none, 'f');
    run_firmware(&mut none, effects);
    all.push(("firmware_no_update", none));

    let mut verified = m;
    let effects = ch(&mut verified, 'f');
    run_firmware(&mut verified, effects);
    all.push(("firmware_update_verified", verified.clone()));

    // The demo's adversarial image: one release signature where two are needed.
    let mut refused = verified.clone();
    key(&mut refused, KeyCode::Down);
    all.push(("firmware_update_refused", refused));

    let mut ask = verified.clone();
    ch(&mut ask, 'i');
    all.push(("firmware_install_question", ask.clone()));

    let mut installing = ask.clone();
    ch(&mut installing, 'y');
    event(
        &mut installing,
        Event::Firmware(FirmwareEvent::Progress {
            done: 96,
            total: 224,
        }),
    );
    all.push(("firmware_installing", installing));

    let mut pending = ask;
    let effects = ch(&mut pending, 'y');
    run_firmware(&mut pending, effects);
    all.push(("firmware_pending", pending));
    all
}

#[test]
fn a_firmware_image_is_installed_only_verified_and_after_a_question() {
    let (_dir, mut m) = firmware_fixture();
    let effects = ch(&mut m, 'f');
    assert_eq!(m.screen, Screen::Firmware, "f opens it without a login");
    run_firmware(&mut m, effects);
    let images = &m.firmware.images;
    assert_eq!(images.len(), 2);
    assert!(images[0].passed);
    assert_eq!(images[0].checks.len(), 7);
    assert!(!images[1].passed);
    assert_eq!(images[1].checks[2].mark, Mark::Failed("too-few-signatures"));

    // The refused image: no question, nothing sent.
    key(&mut m, KeyCode::Down);
    assert!(ch(&mut m, 'i').is_empty());
    assert_eq!(m.firmware.stage, Stage::Browse);
    assert!(draw(&m, 80, 24).contains("Nothing to install"));

    // The verified one: asked first; `n` sends nothing, `y` installs.
    key(&mut m, KeyCode::Up);
    assert!(ch(&mut m, 'i').is_empty());
    assert!(ch(&mut m, 'n').is_empty());
    assert_eq!(m.firmware.stage, Stage::Browse);
    ch(&mut m, 'i');
    let effects = ch(&mut m, 'y');
    assert!(matches!(
        effects.as_slice(),
        [Effect::Send(Command::Firmware(
            FirmwareCommand::Install { .. }
        ))]
    ));
    run_firmware(&mut m, effects);
    let device = m.firmware.device.clone().unwrap().unwrap();
    assert_eq!(device.pending, Some('B'));
    assert_eq!(device.version('B'), Some("1.1.0"));
    // A second install while one is pending is refused on the screen.
    assert!(ch(&mut m, 'i').is_empty());
    assert!(draw(&m, 160, 48).contains("has not confirmed yet"));
    // Nothing to confirm before the update's first start.
    assert!(ch(&mut m, 'c').is_empty());
    assert_eq!(m.firmware.stage, Stage::Browse);

    // The launcher starts it on trial; read again, confirm (asked first): slot B is active and
    // the floor has risen to its index.
    let root = m.firmware.root.clone().unwrap();
    assert!(
        firmware_image::Device::open(&root)
            .unwrap()
            .start()
            .unwrap()
            .trial
    );
    let effects = ch(&mut m, 'r');
    run_firmware(&mut m, effects);
    assert!(draw(&m, 160, 48).contains("on trial: slot B (1.1.0), start 1 of 3"));
    assert!(ch(&mut m, 'c').is_empty());
    assert_eq!(m.firmware.stage, Stage::AskConfirm);
    let effects = ch(&mut m, 'y');
    run_firmware(&mut m, effects);
    let device = m.firmware.device.clone().unwrap().unwrap();
    assert_eq!((device.active, device.pending), ('B', None));
    assert_eq!(device.rollback_floor, 2);
    key(&mut m, KeyCode::Esc);
    assert_eq!(
        m.screen,
        Screen::Welcome,
        "back where it was opened, not logged in"
    );
}

#[test]
fn every_screen_matches_its_snapshot() {
    for (name, model) in states() {
        screens(name, &model);
    }
}

#[test]
fn nothing_panics_at_40x12_or_smaller() {
    for (name, model) in states() {
        for (w, h) in [(40, 12), (20, 6), (1, 1)] {
            let text = std::panic::catch_unwind(|| draw(&model, w, h));
            assert!(text.is_ok(), "{name} panicked at {w}x{h}");
        }
    }
}

#[test]
fn no_pin_reaches_the_screen_or_the_model() {
    let (_, pin) = states()
        .into_iter()
        .find(|(n, _)| *n == "login_pin")
        .unwrap();
    let screen = draw(&pin, 80, 24);
    assert!(!screen.contains("secret"), "{screen}");
    assert!(screen.contains("••••••"), "{screen}");
    assert!(!format!("{pin:?}").contains("secret"));
}

#[test]
fn the_demo_cards_and_their_pins_are_on_the_first_screen() {
    let screen = draw(&ready(), 80, 24);
    for c in terminal_app::tui::demo::DEMO_CARDS {
        assert!(screen.contains(c.holder), "{}: {screen}", c.holder);
        assert!(screen.contains(c.pin), "{}: {screen}", c.pin);
    }
    let _ = OfficerRole::Pso;
}

/// The demo's first screen, the demo HSM's partitions.
fn partition_list(
    preparation: terminal_app::tui::demo::partitions::Preparation,
    first: terminal_app::tui::demo::partitions::SetState,
) -> terminal_app::tui::demo::partitions::PartitionList {
    use terminal_app::tui::demo::partitions::{PartitionList, Row, SetState, all_cards};
    PartitionList {
        hsm_id: "hsm-7f3a9c2e".into(),
        fingerprint: "a1b2 c3d4 e5f6 0718".into(),
        rows: vec![
            Row {
                name: "Demo partition".into(),
                id: "demo-partition".into(),
                tier: "economy".into(),
                pso: first,
            },
            Row {
                name: "Passports".into(),
                id: "passports".into(),
                tier: "economy".into(),
                pso: SetState::None,
            },
        ],
        selected: 0,
        preparation,
        cards: all_cards(),
    }
}

fn draw_list(list: &terminal_app::tui::demo::partitions::PartitionList, w: u16, h: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal
        .draw(|f| terminal_app::tui::demo::partitions::view(f, list, &Theme::monochrome()))
        .unwrap();
    terminal.backend().to_string()
}

#[test]
fn the_demo_lists_its_two_partitions_with_every_card_and_pin() {
    use terminal_app::tui::demo::partitions::{Preparation, SetState};
    let preparing = partition_list(
        Preparation::Running { first_start: true },
        SetState::Preparing,
    );
    let ready = partition_list(
        Preparation::Done,
        SetState::Enrolled {
            threshold: 2,
            cards: 3,
        },
    );
    for (name, list) in [
        ("demo_partitions_preparing", &preparing),
        ("demo_partitions", &ready),
    ] {
        insta::assert_snapshot!(format!("{name}_80x24"), draw_list(list, 80, 24));
        insta::assert_snapshot!(format!("{name}_160x48"), draw_list(list, 160, 48));
        // Smaller than usable: no panic.
        draw_list(list, 40, 12);
    }
    let screen = draw_list(&ready, 80, 24);
    assert!(screen.contains("no PSO set yet"), "{screen}");
    assert!(screen.contains("PSO set enrolled (2 of 3)"), "{screen}");
    for c in terminal_app::tui::demo::partitions::all_cards() {
        assert!(screen.contains(c.pin), "{}: {screen}", c.pin);
    }
}

#[test]
fn the_demos_second_partition_welcomes_with_its_spare_cards_and_the_way_back() {
    let mut target = target();
    target.partition_id = "passports".into();
    target.partition_name = "Passports".into();
    let mut m = Model::new(target, terminal_app::tui::demo::Demo::cards_of(1));
    m.partition_list = true;
    event(&mut m, Event::Ready { slots: slots() });
    screens("welcome_passports", &m);
    let screen = draw(&m, 80, 24);
    assert!(screen.contains("hana-demo-pin"), "{screen}");
    assert!(screen.contains("Esc: back"), "{screen}");
    // Esc goes back to the list; `c` opens Cards without a login.
    assert_eq!(
        key(&mut m, KeyCode::Esc),
        vec![Effect::PinClear, Effect::Leave]
    );
    ch(&mut m, 'c');
    assert_eq!(m.screen, Screen::Cards);
    key(&mut m, KeyCode::Esc);
    assert_eq!(m.screen, Screen::Welcome);
    // Outside the demo's list, Esc on the welcome screen leaves nothing.
    let mut plain = ready();
    assert_eq!(key(&mut plain, KeyCode::Esc), Vec::new());
}
