//! The Logs screen's export: its steps as drawn (snapshots at 80×24 and 160×48: choosing,
//! exporting with progress, verified and confirmed, a failed read-back), the key flow through
//! `update` (the menu entry, since-last as the default, nothing confirmed before the read-back),
//! the log held as a window of pages, and the worker exporting from the demo HSM to a directory
//! for real: the file verifies against the audit key, the HSM counts it, and an export refused
//! before a login counts nothing.
#![cfg(feature = "embedded")] // the demo HSM is the embedded simulator

#[path = "support/tui_model.rs"]
mod tui_support;

use std::path::PathBuf;

use audit_log::{ExportVerifier, KeyPin, verify_export};
use hsm_link::message::{LogQuery, OfficerRole};
use quorum::{Argon2Params, Pin};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::KeyCode;
use terminal_app::cli::log_export::ExportStep;
use terminal_app::flows::log_export::{
    DriveView, ExportDone, ExportFailure, Format, LogExportCommand, LogExportEvent, RangeSpec,
    Stage,
};
use terminal_app::flows::logs::{MAX_HELD_ROWS, PAGE};
use terminal_app::tui::demo::{DEMO_CARDS, Demo};
use terminal_app::tui::message::{
    Command, Effect, Event, LogPageView, LoginCommand, LoginEvent, Verification,
};
use terminal_app::tui::model::{Model, Screen};
use terminal_app::tui::theme::Theme;
use terminal_app::tui::view::view;
use terminal_app::tui::worker::Worker;
use tui_support::*;

fn draw(model: &Model, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|f| view(f, model, &Theme::monochrome()))
        .unwrap();
    terminal.backend().to_string()
}

fn screens(name: &str, model: &Model) {
    insta::assert_snapshot!(format!("{name}_80x24"), draw(model, 80, 24));
    insta::assert_snapshot!(format!("{name}_160x48"), draw(model, 160, 48));
}

const DRIVE: &str = "/home/ada/.local/state/tessera/demo/drive";

/// Logged in, the menu's "Log export" chosen, the log's first page and the drives in.
fn choosing() -> (Model, Vec<Effect>) {
    let mut m = logged_in();
    m.drive_dirs = vec![PathBuf::from(DRIVE)];
    let effects = ch(&mut m, '6');
    assert_eq!(m.screen, Screen::Logs);
    let page = log_page(
        &m,
        200,
        Verification::Chain {
            entries: 200,
            checkpoints: 3,
            last_checkpoint: Some(196),
            unsigned_tail: 4,
        },
    );
    event(&mut m, page);
    event(
        &mut m,
        Event::LogExport(LogExportEvent::Drives {
            drives: vec![
                DriveView {
                    label: DRIVE.into(),
                    path: PathBuf::from(DRIVE),
                    free: Some(41_200_000_000),
                },
                DriveView {
                    label: "SanDisk Ultra at /media/ada/AUDIT".into(),
                    path: PathBuf::from("/media/ada/AUDIT"),
                    free: Some(15_900_000_000),
                },
            ],
            note: None,
        }),
    );
    (m, effects)
}

fn done(confirmed: bool) -> ExportDone {
    ExportDone {
        file: format!("{DRIVE}/tessera-log-demo-partition-20261204T093000Z-1-268.jsonl"),
        from: 1,
        to: 268,
        entries: 268,
        bytes: 91_412,
        key: "3f2a 9c1e 77b0 41d2 e8a5 0c3f 9b16 d4e7".into(),
        confirmed,
        siem: None,
    }
}

#[test]
fn every_export_step_matches_its_snapshot() {
    let (chooser, _) = choosing();
    screens("log_export_choosing", &chooser);

    let mut window = chooser.clone();
    key(&mut window, KeyCode::Char(' '));
    key(&mut window, KeyCode::Char(' '));
    typed(&mut window, "2026-12-04 .. 2026-12-01");
    key(&mut window, KeyCode::Enter);
    screens("log_export_window_invalid", &window);

    let mut writing = chooser.clone();
    key(&mut writing, KeyCode::Enter);
    event(
        &mut writing,
        Event::LogExport(LogExportEvent::Progress(ExportStep::Writing {
            lines: 171,
            bytes: 58_300,
            expected: Some(268),
        })),
    );
    screens("log_export_writing", &writing);

    let mut reading = writing.clone();
    event(
        &mut reading,
        Event::LogExport(LogExportEvent::Progress(ExportStep::ReadingBack {
            bytes: 30_000,
            total: 91_412,
        })),
    );
    screens("log_export_reading_back", &reading);

    let mut confirmed = reading.clone();
    event(
        &mut confirmed,
        Event::LogExport(LogExportEvent::Done(Box::new(ExportDone {
            siem: Some(Ok((
                format!("{DRIVE}/tessera-log-demo-partition-20261204T093000Z-1-268.syslog"),
                265,
            ))),
            ..done(true)
        }))),
    );
    screens("log_export_confirmed", &confirmed);

    let mut failed = reading;
    event(
        &mut failed,
        Event::LogExport(LogExportEvent::Failed(Box::new(ExportFailure {
            step: "read-back",
            why: "the file read back from the drive does not verify: line 118: the entry's \
                  hash does not match (edited entry)"
                .into(),
            todo: "it was renamed .failed and kept as evidence; export again, to another drive \
                   if this one fails again"
                .into(),
        }))),
    );
    screens("log_export_read_back_failed", &failed);
}

#[test]
fn nothing_panics_at_40x12() {
    let (m, _) = choosing();
    let mut states = vec![m.clone()];
    let mut running = m;
    key(&mut running, KeyCode::Enter);
    states.push(running.clone());
    event(
        &mut running,
        Event::LogExport(LogExportEvent::Done(Box::new(done(false)))),
    );
    states.push(running);
    for s in &states {
        draw(s, 40, 12);
        draw(s, 12, 4);
    }
}

#[test]
fn the_menu_opens_the_panel_and_enter_exports_since_the_last_export() {
    let (mut m, effects) = choosing();
    assert!(
        effects.contains(&Effect::Send(Command::LogExport(LogExportCommand::Drives(
            vec![PathBuf::from(DRIVE)]
        )))),
        "{effects:?}"
    );
    // The second drive, then Enter: the default range and format.
    key(&mut m, KeyCode::Down);
    key(&mut m, KeyCode::Down);
    key(&mut m, KeyCode::Char(' '));
    let effects = key(&mut m, KeyCode::Enter);
    assert_eq!(
        effects,
        [Effect::Send(Command::LogExport(LogExportCommand::Start {
            range: RangeSpec::SinceLast,
            format: Format::Evidence,
            dir: PathBuf::from("/media/ada/AUDIT"),
        }))]
    );
    // Esc does not leave a running export.
    key(&mut m, KeyCode::Esc);
    assert_eq!(m.screen, Screen::Logs);
    let panel = m.logs.export.as_ref().unwrap();
    assert!(panel.running());
    event(
        &mut m,
        Event::LogExport(LogExportEvent::Done(Box::new(done(true)))),
    );
    // Enter closes the panel and reads the log again (the export is logged).
    let effects = key(&mut m, KeyCode::Enter);
    assert!(m.logs.export.is_none());
    assert!(matches!(&effects[..], [Effect::Send(Command::Log(q))] if q.from_seq == 1));
    // `e` on the Logs screen opens it again.
    let effects = ch(&mut m, 'e');
    assert!(matches!(
        m.logs.export.as_ref().map(|p| &p.stage),
        Some(Stage::Choosing)
    ));
    assert!(matches!(
        &effects[..],
        [Effect::Send(Command::LogExport(LogExportCommand::Drives(
            _
        )))]
    ));
}

/// A page of `n` rows from `from` (sequence numbers = rows, for simplicity).
fn page_from(m: &Model, from: u64, n: u64, more: bool) -> Event {
    let mut rows = log_rows(from + n - 1);
    rows.drain(..(from - 1) as usize);
    Event::Log(Box::new(LogPageView {
        query: m.logs.query(from),
        rows,
        next_seq: more.then_some(from + n),
        verification: Verification::NotYet,
        space: None,
    }))
}

/// Answers every log page asked for from a log of `total` rows.
fn serve(m: &mut Model, mut effects: Vec<Effect>, total: u64) {
    while let Some(Effect::Send(Command::Log(q))) = effects.pop() {
        let n = u64::from(PAGE).min(total + 1 - q.from_seq);
        let page = page_from(m, q.from_seq, n, q.from_seq + n <= total);
        effects = event(m, page);
    }
}

#[test]
fn the_log_is_held_as_a_window_of_pages_and_read_again_when_scrolled_back() {
    let total = 200 * u64::from(PAGE);
    let mut m = logged_in();
    let effects = ch(&mut m, '4');
    serve(&mut m, effects, total);
    // Far down: the model holds only the pages around the selection.
    for _ in 0..3_000 {
        let effects = key(&mut m, KeyCode::PageDown);
        serve(&mut m, effects, total);
    }
    assert_eq!(m.logs.selected, 30_000);
    assert!(m.logs.rows.len() <= MAX_HELD_ROWS, "{}", m.logs.rows.len());
    assert!(m.logs.offset > 20_000);
    assert_eq!(m.logs.selected_row().unwrap().seq, 30_001);
    // Back up past the held rows: the dropped pages are read again, in place.
    for _ in 0..2_000 {
        let effects = key(&mut m, KeyCode::PageUp);
        serve(&mut m, effects, total);
    }
    assert_eq!(m.logs.selected, 10_000);
    assert_eq!(m.logs.selected_row().unwrap().seq, 10_001);
    assert!(m.logs.rows.len() <= MAX_HELD_ROWS);
    // Home reads the first page again.
    let effects = key(&mut m, KeyCode::Home);
    serve(&mut m, effects, total);
    assert_eq!(m.logs.selected_row().unwrap().seq, 1);
}

#[test]
fn a_filtered_page_says_how_far_the_search_got() {
    let mut m = logged_in();
    ch(&mut m, '4');
    ch(&mut m, 'x');
    ch(&mut m, 'x');
    // The HSM scanned up to entry 100 and found two: the next page is asked for at once.
    let mut rows = log_rows(14);
    rows.retain(|r| r.outcome == "refused");
    let query = m.logs.query(1);
    let effects = event(
        &mut m,
        Event::Log(Box::new(LogPageView {
            query,
            rows,
            next_seq: Some(101),
            verification: Verification::EntriesOnly { entries: 2 },
            space: None,
        })),
    );
    assert!(matches!(&effects[..], [Effect::Send(Command::Log(q))] if q.from_seq == 101));
    let screen = draw(&m, 160, 48);
    assert!(
        screen.contains("searching… scanned 100 of 268 entries, 2 found so far"),
        "{screen}"
    );
}

fn worker() -> Worker {
    Demo::new(Argon2Params::insecure_for_tests(), true)
        .unwrap()
        .into_worker()
        .unwrap()
}

fn auditor_login(w: &mut Worker) {
    w.handle(Command::Login(LoginCommand::Start(OfficerRole::Auditor)));
    w.handle(Command::Login(LoginCommand::Insert(3)));
    let events = w.handle(Command::Login(LoginCommand::Verify(Pin::from_slice(
        DEMO_CARDS[3].pin.as_bytes(),
    ))));
    assert!(
        matches!(
            events.last(),
            Some(Event::Login(LoginEvent::LoggedIn { .. }))
        ),
        "{events:?}"
    );
}

fn export(w: &mut Worker, dir: &std::path::Path, range: RangeSpec, format: Format) -> Event {
    let mut events = w.handle(Command::LogExport(LogExportCommand::Start {
        range,
        format,
        dir: dir.to_path_buf(),
    }));
    assert_eq!(events.len(), 1, "{events:?}");
    events.pop().unwrap()
}

#[test]
fn the_worker_exports_verifies_and_confirms_and_counts_nothing_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = worker();
    let audit = w.audit_key();

    // Before a login the HSM refuses: nothing written, nothing counted.
    let Event::LogExport(LogExportEvent::Failed(failure)) =
        export(&mut w, dir.path(), RangeSpec::SinceLast, Format::Evidence)
    else {
        panic!("an export before a login must fail")
    };
    assert!(failure.why.contains("refused"), "{failure:?}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

    auditor_login(&mut w);
    let Event::LogExport(LogExportEvent::Done(first)) =
        export(&mut w, dir.path(), RangeSpec::SinceLast, Format::Syslog)
    else {
        panic!("the export must succeed")
    };
    assert!(first.confirmed, "{first:?}");
    assert_eq!(first.from, 1);
    assert!(first.entries > 100, "{first:?}");
    assert_eq!(first.key, audit.fingerprint().to_string());
    // The file verifies on its own against the audit key.
    let file = std::fs::File::open(&first.file).unwrap();
    let report = verify_export(
        std::io::BufReader::new(file),
        ExportVerifier::new(KeyPin::Key(audit)),
    )
    .unwrap();
    assert_eq!((report.header().from, report.header().to), (1, first.to));
    let Some(Ok((syslog, records))) = &first.siem else {
        panic!("{first:?}")
    };
    assert!(*records > 100);
    assert!(
        std::fs::read_to_string(syslog).unwrap().starts_with("<"),
        "RFC 5424 records start with a priority"
    );

    // The next export since the last starts after what was confirmed.
    let Event::LogExport(LogExportEvent::Done(second)) =
        export(&mut w, dir.path(), RangeSpec::SinceLast, Format::Evidence)
    else {
        panic!("the second export must succeed")
    };
    assert_eq!(second.from, first.to + 1, "{second:?}");

    // A time window with nothing in it says so.
    let Event::LogExport(LogExportEvent::Failed(failure)) = export(
        &mut w,
        dir.path(),
        RangeSpec::Window {
            from_ms: 0,
            to_ms: 1_000,
        },
        Format::Evidence,
    ) else {
        panic!("an empty window is not exported")
    };
    assert!(
        failure.why.contains("no entry in that window"),
        "{failure:?}"
    );
    assert!(!std::fs::read_dir(dir.path()).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".partial")
    }));

    // The log reads on after the exports: the unfiltered page shows them.
    let events = w.handle(Command::Log(LogQuery::from(1, 200)));
    assert!(matches!(&events[..], [Event::Log(_)]), "{events:?}");
}

#[test]
fn the_worker_thread_reports_each_step_before_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let (commands, worker_commands) = std::sync::mpsc::channel();
    let (worker_events, events) = std::sync::mpsc::channel();
    let thread =
        terminal_app::tui::worker::spawn(|| Ok(worker()), worker_commands, worker_events).unwrap();
    let next = || {
        events
            .recv_timeout(std::time::Duration::from_secs(120))
            .expect("the worker answers")
    };
    assert!(matches!(next(), Event::Ready { .. }));
    for step in [
        LoginCommand::Start(OfficerRole::Auditor),
        LoginCommand::Insert(3),
        LoginCommand::Verify(Pin::from_slice(DEMO_CARDS[3].pin.as_bytes())),
    ] {
        commands.send(Command::Login(step)).unwrap();
    }
    while !matches!(next(), Event::Login(LoginEvent::LoggedIn { .. })) {}
    commands
        .send(Command::LogExport(LogExportCommand::Start {
            range: RangeSpec::All,
            format: Format::Evidence,
            dir: dir.path().to_path_buf(),
        }))
        .unwrap();
    let mut steps = Vec::new();
    let done = loop {
        match next() {
            Event::LogExport(LogExportEvent::Progress(step)) => steps.push(step),
            Event::LogExport(LogExportEvent::Done(done)) => break done,
            other => panic!("unexpected {other:?}"),
        }
    };
    drop(commands);
    thread.join().unwrap();
    // Writing, then the read-back, then the confirmation: in that order, each at least once.
    let order: Vec<u8> = steps
        .iter()
        .map(|s| match s {
            ExportStep::Writing { .. } => 1,
            ExportStep::ReadingBack { .. } => 2,
            ExportStep::Confirming => 3,
        })
        .collect();
    assert!(order.windows(2).all(|w| w[0] <= w[1]), "{steps:?}");
    assert_eq!(
        (order.first(), order.last(), order.contains(&2)),
        (Some(&1), Some(&3), true),
        "{steps:?}"
    );
    assert!(
        steps.iter().any(
            |s| matches!(s, ExportStep::Writing { expected: Some(n), .. } if *n == done.entries)
        ),
        "the bar counts towards the header's entries: {steps:?}"
    );
    assert!(done.confirmed);
}
