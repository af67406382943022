//! Frame render time of the TUI's screens at 200×60 with 100,000 keys and 1,000,000 log
//! entries behind a page source standing in for the link (DESIGN.md's budget: < 2 ms a frame),
//! drawn on ratatui's `TestBackend` (the view's own cost; a real terminal adds the diff written
//! to it). The Keys and Logs screens ask for pages as the user scrolls, as they do against the
//! HSM; the model holds only the pages around the selection (the counts are printed).
//!
//! Each frame is timed twice: wall time, and the CPU time this thread spent on it
//! (`CLOCK_THREAD_CPUTIME_ID`). A frame whose wall time is far above its CPU time waited for a
//! core (a loaded machine), it did not work longer; so the tails of both are printed, and the
//! mean of a tight loop of frames. Prints median, p95 and worst per screen; a benchmark, never
//! an assertion.
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

/// The CPU time this thread has used.
fn cpu_now() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

/// One frame's wall time and CPU time.
#[derive(Clone, Copy)]
struct Sample {
    wall: Duration,
    cpu: Duration,
}

/// Times `f` (a frame, with or without a key before it).
fn timed(f: impl FnOnce()) -> Sample {
    let (wall, cpu) = (Instant::now(), cpu_now());
    f();
    Sample {
        wall: wall.elapsed(),
        cpu: cpu_now().saturating_sub(cpu),
    }
}

/// One frame drawn, timed.
fn draw(terminal: &mut Terminal<TestBackend>, m: &Model, theme: &Theme) -> Sample {
    timed(|| {
        terminal.draw(|f| view(f, m, theme)).unwrap();
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Median, 95th percentile and worst of wall and CPU time, against the budget.
fn report(name: &str, samples: Vec<Sample>) {
    let stats = |mut times: Vec<Duration>| {
        times.sort();
        let n = times.len();
        (times[n / 2], times[n * 95 / 100], times[n - 1])
    };
    let (median, p95, worst) = stats(samples.iter().map(|s| s.wall).collect());
    let (cpu_median, cpu_p95, cpu_worst) = stats(samples.iter().map(|s| s.cpu).collect());
    println!(
        "  {name:<34} wall median {:>6.3}  p95 {:>6.3}  worst {:>7.3} ms │ CPU median {:>6.3}  \
         p95 {:>6.3}  worst {:>6.3} ms  {}",
        ms(median),
        ms(p95),
        ms(worst),
        ms(cpu_median),
        ms(cpu_p95),
        ms(cpu_worst),
        if worst < BUDGET {
            "within budget"
        } else if cpu_worst < BUDGET {
            "CPU within budget (wall tail: waiting for a core)"
        } else if median < BUDGET {
            "median within budget, CPU tail over"
        } else {
            "OVER BUDGET"
        }
    );
}

/// A tight loop of `FRAMES` frames of the screen: mean wall and CPU time a frame.
fn tight_loop(terminal: &mut Terminal<TestBackend>, m: &Model, theme: &Theme) -> (f64, f64) {
    let s = timed(|| {
        for _ in 0..FRAMES {
            terminal.draw(|f| view(f, m, theme)).unwrap();
        }
    });
    (ms(s.wall) / FRAMES as f64, ms(s.cpu) / FRAMES as f64)
}

fn main() {
    let mut m = model();
    let source = PageSource;
    let theme = Theme::for_terminal(false);
    let mut terminal = Terminal::new(TestBackend::new(200, 60)).unwrap();
    scroll_keys_to_middle(&mut m, &source);
    scroll_logs_to_middle(&mut m, &source);
    println!(
        "TUI frame render at 200x60, {KEYS} keys and {LOG_ENTRIES} log entries behind the page \
         source, {FRAMES} frames each (budget < {} ms):",
        BUDGET.as_millis()
    );
    println!(
        "  the Keys screen at key {} holds {} rows, not {KEYS}",
        m.keys.selected + 1,
        m.keys.rows.len()
    );
    println!(
        "  the Logs screen at entry {} holds {} rows ({} pages indexed), not {LOG_ENTRIES}",
        m.logs.selected + 1,
        m.logs.rows.len(),
        m.logs.pages.len()
    );
    let mut loops = Vec::new();
    for (name, screen) in [
        ("dashboard", Screen::Dashboard),
        ("configuration", Screen::Configuration),
        ("keys (key 50,000 selected)", Screen::Keys),
        ("logs (entry 500,000 selected)", Screen::Logs),
    ] {
        m.screen = screen;
        report(
            name,
            (0..FRAMES)
                .map(|_| draw(&mut terminal, &m, &theme))
                .collect(),
        );
        loops.push((name, tight_loop(&mut terminal, &m, &theme)));
    }

    // Keys scrolled: each frame takes a key (update) and is drawn; pages come from the source
    // between frames, as from the worker.
    m.screen = Screen::Keys;
    let mut pending = Vec::new();
    for (name, code) in [
        ("keys, scrolling (key + frame)", KeyCode::PageDown),
        ("keys, scrolling back (key + frame)", KeyCode::PageUp),
    ] {
        let samples = (0..FRAMES)
            .map(|_| {
                source.serve(&mut m, std::mem::take(&mut pending));
                timed(|| {
                    pending = press(&mut m, code);
                    terminal.draw(|f| view(f, &m, &theme)).unwrap();
                })
            })
            .collect();
        report(name, samples);
    }

    // Scrolling: each frame takes a key (update) and is drawn; the pages it asks for come from
    // the source between frames, as from the worker.
    m.screen = Screen::Logs;
    let mut pending = Vec::new();
    pending.clear();
    for (name, code) in [
        ("logs, scrolling (key + frame)", KeyCode::PageDown),
        ("logs, scrolling back (key + frame)", KeyCode::PageUp),
    ] {
        let samples = (0..FRAMES)
            .map(|_| {
                source.serve(&mut m, std::mem::take(&mut pending));
                timed(|| {
                    pending = press(&mut m, code);
                    terminal.draw(|f| view(f, &m, &theme)).unwrap();
                })
            })
            .collect();
        report(name, samples);
    }
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

    println!("  a tight loop of {FRAMES} frames, mean a frame (wall / CPU):");
    for (name, (wall, cpu)) in loops {
        println!("    {name:<32} {wall:>6.3} ms / {cpu:>6.3} ms");
    }
    // What the runtime did every frame until now, for the mouse: a copy of the drawn buffer.
    let drawn = terminal
        .draw(|f| view(f, &m, &theme))
        .unwrap()
        .buffer
        .clone();
    let mut copy = ratatui::buffer::Buffer::default();
    let samples: Vec<Sample> = (0..FRAMES)
        .map(|_| timed(|| copy.clone_from(&drawn)))
        .collect();
    report("copy of a drawn 200x60 buffer", samples);
}
