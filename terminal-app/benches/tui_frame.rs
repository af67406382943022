//! Frame render time of the TUI's screens at 200×60 with 100,000 keys and 100,000 log lines
//! read (DESIGN.md's budget: < 2 ms a frame), drawn on ratatui's `TestBackend` (the view's own
//! cost; a real terminal adds the diff written to it). Prints the median and the worst of
//! `FRAMES` frames per screen; a benchmark, never an assertion.
//!
//! `cargo bench -p terminal-app --bench tui_frame`

use std::time::{Duration, Instant};

use hsm_link::domain::{
    KeyAttributes, KeyId, KeyKind, KeyLabel, KeyObjectSummary, KeyState, PartitionConfig,
    PartitionUsage, ServiceTier,
};
use hsm_link::message::{KeyFilter, LogQuery};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use terminal_app::tui::message::{Event, LogPageView, LogRow, StatusView, Verification};
use terminal_app::tui::model::{Model, Screen, Session, Target};
use terminal_app::tui::theme::Theme;
use terminal_app::tui::update::update;
use terminal_app::tui::view::view;

const FRAMES: usize = 200;
const KEYS: u64 = 100_000;
const LOG_LINES: u64 = 100_000;

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
        log_head: Some(LOG_LINES),
        last_checkpoint: Some(LOG_LINES - 3),
        log_space: None,
        log_status: None,
    });
    m.config.read = Some(config.clone());
    m.config.staged = Some(config);
    let keys = (1..=KEYS)
        .map(|i| KeyObjectSummary {
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
        })
        .collect();
    update(
        &mut m,
        terminal_app::tui::message::Message::Worker(Event::Keys {
            filter: KeyFilter::Active,
            after: None,
            keys,
            more: true,
        }),
    );
    m.keys.selected = (KEYS / 2) as usize;
    let rows = (1..=LOG_LINES)
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
    m.logs.on_page(LogPageView {
        query: LogQuery::from(1, terminal_app::flows::logs::PAGE),
        rows,
        next_seq: Some(LOG_LINES + 1),
        verification: Verification::NotYet,
        space: None,
    });
    m.logs.selected = (LOG_LINES / 2) as usize;
    m
}

fn main() {
    let mut m = model();
    let theme = Theme::for_terminal(false);
    let mut terminal = Terminal::new(TestBackend::new(200, 60)).unwrap();
    println!(
        "TUI frame render at 200x60, {KEYS} keys and {LOG_LINES} log lines read, {FRAMES} frames each (budget < 2 ms):"
    );
    for (name, screen) in [
        ("dashboard", Screen::Dashboard),
        ("configuration", Screen::Configuration),
        ("keys", Screen::Keys),
        ("logs", Screen::Logs),
    ] {
        m.screen = screen;
        let mut times: Vec<Duration> = (0..FRAMES)
            .map(|_| {
                let started = Instant::now();
                terminal.draw(|f| view(f, &m, &theme)).unwrap();
                started.elapsed()
            })
            .collect();
        times.sort();
        println!(
            "  {name:<14} median {:>7.3} ms   worst {:>7.3} ms",
            times[FRAMES / 2].as_secs_f64() * 1e3,
            times[FRAMES - 1].as_secs_f64() * 1e3
        );
    }
}
