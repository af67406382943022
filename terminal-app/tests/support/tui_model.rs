//! Shared fixtures of the TUI tests: a model in a known state, and helpers that press keys and
//! feed worker events.

#![allow(dead_code, unreachable_pub)]

use hsm_link::domain::{
    CardDescription, CardSerial, HolderName, KeyAttributes, KeyId, KeyKind, KeyLabel,
    KeyObjectSummary, KeyState, PartitionConfig, PartitionUsage, ServiceTier,
};
use hsm_link::message::{KeyCursor, KeyFilter, KeyQuery, OfficerRole};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use terminal_app::tui::message::{
    CardView, Effect, Event, LogPageView, LogRow, LoginEvent, Message, SlotView, StatusView,
    Verification,
};
use terminal_app::tui::model::{DemoCard, Model, Target};
use terminal_app::tui::update::update;

pub fn target() -> Target {
    Target {
        partition_id: "demo-partition".into(),
        partition_name: "Demo partition".into(),
        hsm_id: "hsm-7f3a9c2e".into(),
        hsm_fingerprint: "a1b2 c3d4 e5f6 0718".into(),
        tier: "economy".into(),
        transport: "in-memory link to the embedded demo HSM (a simulator)".into(),
    }
}

pub fn demo_cards() -> Vec<DemoCard> {
    terminal_app::tui::demo::DEMO_CARDS.to_vec()
}

pub fn fresh() -> Model {
    Model::new(target(), demo_cards())
}

pub fn slots() -> Vec<SlotView> {
    terminal_app::tui::demo::DEMO_CARDS
        .iter()
        .map(|c| SlotView {
            label: format!("soft card {} ({}, {} set)", c.serial, c.holder, c.set),
        })
        .collect()
}

/// A model whose link is up.
pub fn ready() -> Model {
    let mut m = fresh();
    send(&mut m, Message::Worker(Event::Ready { slots: slots() }));
    m
}

pub fn send(model: &mut Model, message: Message) -> Vec<Effect> {
    update(model, message)
}

pub fn key(model: &mut Model, code: KeyCode) -> Vec<Effect> {
    update(model, Message::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

pub fn ch(model: &mut Model, c: char) -> Vec<Effect> {
    key(model, KeyCode::Char(c))
}

pub fn typed(model: &mut Model, text: &str) -> Vec<Effect> {
    text.chars().flat_map(|c| ch(model, c)).collect()
}

pub fn event(model: &mut Model, e: Event) -> Vec<Effect> {
    update(model, Message::Worker(e))
}

pub fn tick(model: &mut Model, now_ms: u64) -> Vec<Effect> {
    update(model, Message::Tick { now_ms })
}

pub fn card(holder: &str, serial: &str, soft: bool, tries: Option<u8>) -> CardView {
    CardView {
        holder: Some(holder.into()),
        serial: serial.into(),
        soft,
        tries_left: tries,
    }
}

pub fn set_cards() -> Vec<CardDescription> {
    terminal_app::tui::demo::DEMO_CARDS[..3]
        .iter()
        .enumerate()
        .map(|(i, c)| CardDescription {
            holder: HolderName::new(c.holder).unwrap(),
            serial: CardSerial::new(c.serial).unwrap(),
            signing_key: [i as u8 + 1; 32],
            soft_card: true,
        })
        .collect()
}

/// The login screen after the PSO challenge arrived.
pub fn login_started() -> Model {
    let mut m = ready();
    ch(&mut m, '1');
    event(
        &mut m,
        Event::Login(LoginEvent::Started {
            role: OfficerRole::Pso,
            threshold: 2,
            cards: set_cards(),
        }),
    );
    m
}

/// Logged in as PSO (Ada, Ben), on the dashboard, with a status read.
pub fn logged_in() -> Model {
    let mut m = login_started();
    event(
        &mut m,
        Event::Login(LoginEvent::LoggedIn {
            role: OfficerRole::Pso,
            holders: vec![
                HolderName::new("Ada Demo").unwrap(),
                HolderName::new("Ben Demo").unwrap(),
            ],
            log_warning: None,
        }),
    );
    event(&mut m, Event::Status(Box::new(status())));
    m.notice = None;
    m
}

pub fn config() -> PartitionConfig {
    let mut c = PartitionConfig::for_tier(ServiceTier::Economy);
    c.revision = 3;
    c
}

pub fn status() -> StatusView {
    StatusView {
        usage: PartitionUsage {
            bytes_used: 2_450_000,
            objects_used: 14,
            invalidated_objects: 6,
        },
        config: config(),
        log_head: Some(268),
        last_checkpoint: Some(262),
        log_space: None,
        log_status: Some(log_status(268, 251)),
    }
}

/// A log of `entries` entries, `unexported` of them not yet exported, with a limit of 1,000
/// usable entries.
pub fn log_status(entries: u64, unexported: u64) -> hsm_link::message::LogStatus {
    hsm_link::message::LogStatus {
        entries,
        unexported,
        confirmed_up_to: Some(entries - unexported),
        last_seq: Some(entries),
        capacity: 1_016,
        reserve: 16,
        when_full: hsm_link::message::FullLogPolicy::Refuse,
        hsm_key: hsm_link::keys::PublicKey([0x7f; 32]),
        tier: hsm_link::domain::ServiceTier::Economy,
    }
}

pub fn keys(n: u64, bin: bool) -> Vec<KeyObjectSummary> {
    (1..=n)
        .map(|i| KeyObjectSummary {
            id: KeyId(i),
            label: KeyLabel::new(format!("payments-key-{i:04}")).unwrap(),
            kind: if i % 2 == 0 {
                KeyKind::Aes256
            } else {
                KeyKind::Ed25519
            },
            attributes: KeyAttributes {
                extractable: i % 3 == 0,
                sensitive: true,
                modifiable: false,
            },
            created_unix: 1_796_000_000 + i * 3600,
            size_bytes: 96,
            state: if bin {
                KeyState::Invalidated {
                    invalidated_unix: 1_796_300_000 + i * 60,
                }
            } else {
                KeyState::Active
            },
        })
        .collect()
}

/// The first page of a list of `filter`'s keys: `n` keys, and (if `more`) ten times as many
/// on the HSM.
pub fn keys_page(filter: KeyFilter, n: u64, more: bool) -> Event {
    Event::Keys {
        query: Box::new(KeyQuery::first(filter, terminal_app::flows::keys::PAGE)),
        keys: keys(n, filter == KeyFilter::Invalidated),
        more,
        matching: Some(if more { n * 10 } else { n }),
    }
}

/// The HSM's answer to `query` over `all` (in id order, unfiltered), as its listing index
/// gives it: the page from the cursor, in the list's order.
pub fn keys_answer(query: &KeyQuery, all: &[KeyObjectSummary]) -> Event {
    let limit = query.limit as usize;
    let (keys, more) = match &query.from {
        KeyCursor::First => (&all[..limit.min(all.len())], all.len() > limit),
        KeyCursor::Last => (&all[all.len().saturating_sub(limit)..], all.len() > limit),
        KeyCursor::After(p) => {
            let start = all.partition_point(|k| k.id <= p.id);
            let end = (start + limit).min(all.len());
            (&all[start..end], end < all.len())
        }
        KeyCursor::Before(p) => {
            let end = all.partition_point(|k| k.id < p.id);
            let start = end.saturating_sub(limit);
            (&all[start..end], start > 0)
        }
    };
    Event::Keys {
        query: Box::new(query.clone()),
        keys: keys.to_vec(),
        more,
        matching: query.count.then_some(all.len() as u64),
    }
}

/// Answers the key pages `effects` ask for from `all`, as the worker would, until none is
/// asked for; the other effects are returned.
pub fn serve_keys(m: &mut Model, all: &[KeyObjectSummary], effects: Vec<Effect>) -> Vec<Effect> {
    let mut pending = effects;
    let mut other = Vec::new();
    while let Some(effect) = pending.pop() {
        match effect {
            Effect::Send(terminal_app::tui::message::Command::Keys(query)) => {
                pending.extend(event(m, keys_answer(&query, all)));
            }
            e => other.push(e),
        }
    }
    other
}

pub fn log_rows(n: u64) -> Vec<LogRow> {
    (1..=n)
        .map(|i| {
            let refused = i % 7 == 0;
            LogRow {
                seq: i,
                time: format!("2026-12-04 09:{:02}", i % 60),
                role: if i % 3 == 0 { "pso" } else { "technical-user" }.into(),
                holders: if i % 3 == 0 {
                    "Ada Demo, Ben Demo".into()
                } else {
                    String::new()
                },
                operation: if refused { "app.connect" } else { "key.sign" }.into(),
                object: format!("key {}", i % 5),
                outcome: if refused { "refused" } else { "ok" }.into(),
                reason: if refused {
                    "MS CNG API is off".into()
                } else {
                    String::new()
                },
            }
        })
        .collect()
}

pub fn log_page(model: &Model, n: u64, verification: Verification) -> Event {
    Event::Log(Box::new(LogPageView {
        query: model.logs.query(1),
        rows: log_rows(n),
        next_seq: Some(n + 1),
        verification,
        space: None,
    }))
}

/// The screen `model` draws at `width`×`height`, as text (rows joined by newlines).
pub fn screen_text(model: &Model, width: u16, height: u16) -> String {
    let mut terminal =
        ratatui::Terminal::new(ratatui::backend::TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|f| {
            terminal_app::tui::view::view(f, model, &terminal_app::tui::theme::Theme::monochrome())
        })
        .unwrap();
    terminal.backend().to_string()
}
