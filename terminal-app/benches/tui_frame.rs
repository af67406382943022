//! Frame render time of the TUI's screens at 200×60 with 100,000 keys read and 1,000,000 log
//! entries behind a page source standing in for the link (DESIGN.md's budget: < 2 ms a frame),
//! drawn on ratatui's `TestBackend` (the view's own cost; a real terminal adds the diff written
//! to it). The Logs screen asks for pages as the user scrolls, as it does against the HSM; the
//! model holds only the pages around the selection (the count is printed). Prints the median
//! and the worst of `FRAMES` frames per screen against the budget; a benchmark, never an
//! assertion.
//!
//! `cargo bench -p terminal-app --bench tui_frame`

use std::time::{Duration, Instant};

use hsm_link::domain::{
    KeyAttributes, KeyId, KeyKind, KeyLabel, KeyObjectSummary, KeyState, PartitionConfig,
    PartitionUsage, ServiceTier,
};
use hsm_link::message::{KeyCursor, KeyQuery, LogQuery};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use terminal_app::cli::log_export::ExportStep;
use terminal_app::flows::log_export::{DriveView, LogExportEvent};
use terminal_app::tui::message::{
    Command, Effect, Event, LogPageView, LogRow, Message, StatusView, Verification,
};
use terminal_app::tui::model::{Model, Screen, Session, Target};
use terminal_app::tui::theme::Theme;
use terminal_app::tui::update::update;
use terminal_app::tui::view::view;

const FRAMES: usize = 200;
const KEYS: u64 = 100_000;
/// Entries behind the page source.
const LOG_ENTRIES: u64 = 1_000_000;
/// The frame budget.
const BUDGET: Duration = Duration::from_millis(2);

/// The log behind the link: any page of a 1,000,000-entry log, made when asked for (the
/// worker's side, not timed as part of a frame).
struct PageSource;

impl PageSource {
    fn page(&self, query: &LogQuery) -> LogPageView {
        let from = query.from_seq.max(1);
        let to = (from + u64::from(query.limit) - 1).min(LOG_ENTRIES);
        let rows = (from..=to)
            .map(|i| LogRow {
                seq: i,
                time: "2026-12-04 09:30".into(),
                role: "technical-user".into(),
                holders: String::new(),
                operation: "key.sign".into(),
                object: format!("key {}", i % 100),
                outcome: "ok".into(),
                reason: String::new(),
            })
            .collect();
        LogPageView {
            query: query.clone(),
            rows,
            next_seq: (to < LOG_ENTRIES).then_some(to + 1),
            verification: Verification::NotYet,
            space: None,
        }
    }

    /// Key `i` of the 100,000 behind the source.
    fn key(i: u64) -> KeyObjectSummary {
        KeyObjectSummary {
            id: KeyId(i),
            label: KeyLabel::new(format!("payments-{i:06}")).unwrap(),
            kind: KeyKind::Ed25519,
            attributes: KeyAttributes {
                extractable: false,
                sensitive: true,
                modifiable: false,
            },
            created_unix: 1_796_000_000 + i,
            size_bytes: 67,
            state: KeyState::Active,
        }
    }

    /// A page of the keys as the HSM's listing index gives it (ids 1..=KEYS; label order is id
    /// order here), in the list's order.
    fn keys(&self, query: &KeyQuery) -> Event {
        let limit = u64::from(query.limit);
        let (from, to) = match &query.from {
            KeyCursor::First => (1, limit.min(KEYS)),
            KeyCursor::Last => (KEYS.saturating_sub(limit) + 1, KEYS),
            KeyCursor::After(p) => (p.id.0 + 1, (p.id.0 + limit).min(KEYS)),
            KeyCursor::Before(p) => (p.id.0.saturating_sub(limit).max(1), p.id.0 - 1),
        };
        let more = if query.backwards() {
            from > 1
        } else {
            to < KEYS
        };
        Event::Keys {
            query: Box::new(query.clone()),
            keys: (from..=to).map(PageSource::key).collect(),
            more,
            matching: query.count.then_some(KEYS),
        }
    }

    /// Answers the pages `effects` ask for, as the worker would, until none is asked for.
    fn serve(&self, m: &mut Model, mut effects: Vec<Effect>) {
        while let Some(effect) = effects.pop() {
            match effect {
                Effect::Send(Command::Log(query)) => {
                    let page = self.page(&query);
                    effects.extend(update(m, Message::Worker(Event::Log(Box::new(page)))));
                }
                Effect::Send(Command::Keys(query)) => {
                    let page = self.keys(&query);
                    effects.extend(update(m, Message::Worker(page)));
                }
                _ => {}
            }
        }
    }
}

fn press(m: &mut Model, code: KeyCode) -> Vec<Effect> {
    update(m, Message::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

fn model() -> Model {
    let target = Target {
        partition_id: "bench-partition".into(),
        partition_name: "Bench partition".into(),
        hsm_id: "hsm-bench".into(),
        hsm_fingerprint: "0000 1111 2222 3333".into(),
        tier: "platinum".into(),
        transport: "none (benchmark)".into(),
    };
    let mut m = Model::new(target, Vec::new());
    m.session = Some(Session {
        role: hsm_link::message::OfficerRole::Pso,
        holders: Vec::new(),
    });
    let config = PartitionConfig::for_tier(ServiceTier::Platinum);
    m.dashboard.status = Some(StatusView {
        usage: PartitionUsage {
            bytes_used: 6_700_000,
            objects_used: KEYS,
            invalidated_objects: 10,
        },
        config: config.clone(),
        log_head: Some(LOG_ENTRIES),
        last_checkpoint: Some(LOG_ENTRIES - 3),
        log_space: None,
        log_status: None,
    });
    m.config.read = Some(config.clone());
    m.config.staged = Some(config);
    m
}

/// Opens the Keys screen and scrolls to its middle, pages read as asked for.
fn scroll_keys_to_middle(m: &mut Model, source: &PageSource) {
    m.screen = Screen::Keys;
    let effects = m.keys.open();
    source.serve(m, effects);
    while (m.keys.selected as u64) < KEYS / 2 {
        let effects = press(m, KeyCode::PageDown);
        source.serve(m, effects);
    }
}

/// Opens the Logs screen and scrolls to the middle of the log, pages read as asked for.
fn scroll_logs_to_middle(m: &mut Model, source: &PageSource) {
    m.screen = Screen::Logs;
    let effects = m.logs.open();
    source.serve(m, effects);
    while (m.logs.selected as u64) < LOG_ENTRIES / 2 {
        let effects = press(m, KeyCode::End);
        source.serve(m, effects);
    }
}

/// One frame drawn, timed.
fn draw(terminal: &mut Terminal<TestBackend>, m: &Model, theme: &Theme) -> Duration {
    let started = Instant::now();
    terminal.draw(|f| view(f, m, theme)).unwrap();
    started.elapsed()
}

/// Median, 95th percentile and worst of `frames`, against the budget (on a busy machine the
/// worst is the scheduler's; the percentile says how often).
fn report(name: &str, mut times: Vec<Duration>) {
    times.sort();
    let median = times[times.len() / 2];
    let p95 = times[times.len() * 95 / 100];
    let worst = times[times.len() - 1];
    println!(
        "  {name:<34} median {:>7.3} ms   p95 {:>7.3} ms   worst {:>7.3} ms   {}",
        median.as_secs_f64() * 1e3,
        p95.as_secs_f64() * 1e3,
        worst.as_secs_f64() * 1e3,
        if worst < BUDGET {
            "within budget"
        } else if median < BUDGET {
            "median within budget, worst over"
        } else {
            "OVER BUDGET"
        }
    );
}

fn main() {
    let mut m = model();
    let source = PageSource;
    let theme = Theme::for_terminal(false);
    let mut terminal = Terminal::new(TestBackend::new(200, 60)).unwrap();
    scroll_keys_to_middle(&mut m, &source);
    scroll_logs_to_middle(&mut m, &source);
    println!(
        "TUI frame render at 200x60, {KEYS} keys read, {LOG_ENTRIES} log entries behind the page \
         source, {FRAMES} frames each (budget < {} ms):",
        BUDGET.as_millis()
    );
    println!(
        "  the Logs screen at entry {} holds {} rows ({} pages indexed), not {LOG_ENTRIES}",
        m.logs.selected + 1,
        m.logs.rows.len(),
        m.logs.pages.len()
    );
    for (name, screen) in [
        ("dashboard", Screen::Dashboard),
        ("configuration", Screen::Configuration),
        ("keys", Screen::Keys),
        ("logs (entry 500,000 selected)", Screen::Logs),
    ] {
        m.screen = screen;
        report(
            name,
            (0..FRAMES)
                .map(|_| draw(&mut terminal, &m, &theme))
                .collect(),
        );
    }

    // Scrolling: each frame takes a key (update) and is drawn; the pages it asks for come from
    // the source between frames, as from the worker.
    m.screen = Screen::Logs;
    let mut pending = Vec::new();
    let times = (0..FRAMES)
        .map(|_| {
            source.serve(&mut m, std::mem::take(&mut pending));
            let started = Instant::now();
            pending = press(&mut m, KeyCode::PageDown);
            terminal.draw(|f| view(f, &m, &theme)).unwrap();
            started.elapsed()
        })
        .collect();
    report("logs, scrolling (key + frame)", times);
    let times = (0..FRAMES)
        .map(|_| {
            source.serve(&mut m, std::mem::take(&mut pending));
            let started = Instant::now();
            pending = press(&mut m, KeyCode::PageUp);
            terminal.draw(|f| view(f, &m, &theme)).unwrap();
            started.elapsed()
        })
        .collect();
    report("logs, scrolling back (key + frame)", times);
    println!(
        "  after scrolling the model holds {} rows ({} pages indexed)",
        m.logs.rows.len(),
        m.logs.pages.len()
    );

    // The export panel over the log, its progress bar moving.
    press(&mut m, KeyCode::Char('e'));
    update(
        &mut m,
        Message::Worker(Event::LogExport(LogExportEvent::Drives {
            drives: vec![DriveView {
                label: "/media/auditor/USB".into(),
                path: "/media/auditor/USB".into(),
                free: Some(15_900_000_000),
            }],
            note: None,
        })),
    );
    press(&mut m, KeyCode::Enter);
    let times = (0..FRAMES as u64)
        .map(|i| {
            update(
                &mut m,
                Message::Worker(Event::LogExport(LogExportEvent::Progress(
                    ExportStep::Writing {
                        lines: i * 5_000,
                        bytes: i * 1_500_000,
                        expected: Some(LOG_ENTRIES),
                    },
                ))),
            );
            draw(&mut terminal, &m, &theme)
        })
        .collect();
    report("logs, export panel", times);
}
