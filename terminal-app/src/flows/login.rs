//! Login: the HSM's challenge, then card by card ("1 of 2 — insert the next card"), each card
//! verified with its own PIN and signing through `quorum`'s [`LoginCeremony`].
//!
//! The model sees the card (holder, serial, tries left) and the number of PIN characters typed,
//! never the PIN: the runtime keeps the typed bytes in a zeroizing buffer and hands it to the
//! worker. A wrong PIN keeps the card inserted and shows the tries left; a blocked card, a card
//! of another set and the same card twice are each named and set aside; a throttled login shows
//! the HSM's wait. The screen keeps nothing of one holder's card once the next is asked for.

use hsm_link::domain::CardDescription;
use hsm_link::message::{AdminError, LoginRefusal, OfficerRole};
use quorum::card::Pin;
use quorum::ceremony::{CeremonyError, Link, LinkError, LoginCeremony};
use quorum::error::CardError;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{Outcome, step_selection};
use crate::tui::keymap::{self, Action, Context};
use crate::tui::message::{
    CardRefusal, CardView, Command, Effect, Event, LoginCommand, LoginEvent, SlotView,
};
use crate::tui::model::{Level, Notice};
use crate::tui::theme::Theme;
use crate::tui::view;
use crate::tui::worker::{CardReader, InsertedCard, link_failure};

/// Longest PIN accepted at the keyboard (a soft card's passphrase included).
pub const MAX_PIN_CHARS: usize = 128;

/// Where a login stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Stage {
    /// No login under way.
    #[default]
    Idle,
    /// Waiting for the HSM's challenge.
    Challenge,
    /// Asking for the next card.
    ChooseCard,
    /// Opening the inserted card.
    Opening,
    /// The PIN of the inserted card.
    Pin,
    /// The card checks the PIN and signs (a soft card's Argon2 takes a moment).
    Checking,
    /// Refused or failed; Enter tries again.
    Failed,
}

/// The login's part of the model.
#[derive(Clone, Debug, Default)]
pub struct LoginFlow {
    /// The role logging in.
    pub role: Option<OfficerRole>,
    /// Where it stands.
    pub stage: Stage,
    /// Cards needed.
    pub threshold: usize,
    /// The set's cards, from the challenge.
    pub set_cards: Vec<CardDescription>,
    /// The cards that signed.
    pub signed: Vec<CardView>,
    /// The slots within reach.
    pub slots: Vec<SlotView>,
    /// The selected slot.
    pub slot: usize,
    /// The inserted card, while its PIN is asked.
    pub card: Option<CardView>,
    /// PIN characters typed (the PIN itself is in the runtime's zeroizing buffer).
    pub pin_len: usize,
    /// The last notice.
    pub notice: Option<Notice>,
    /// Until when the HSM throttles logins (model time, ms).
    pub throttled_until_ms: Option<u64>,
}

/// The role as the screens name it.
pub fn role_name(role: OfficerRole) -> &'static str {
    match role {
        OfficerRole::Pso => "PSO",
        OfficerRole::Auditor => "auditor",
        OfficerRole::DeviceSo => "device SO",
    }
}

impl LoginFlow {
    /// Starts a login for `role`: everything of an earlier attempt is forgotten.
    pub fn start(&mut self, role: OfficerRole) -> Vec<Effect> {
        let slots = std::mem::take(&mut self.slots);
        *self = LoginFlow {
            role: Some(role),
            stage: Stage::Challenge,
            slots,
            ..LoginFlow::default()
        };
        vec![
            Effect::PinClear,
            Effect::Send(Command::Login(LoginCommand::Start(role))),
        ]
    }

    /// How keys read here: the PIN is a text field.
    pub fn context(&self) -> Context {
        match self.stage {
            Stage::Pin => Context::Text,
            _ => Context::Tables(&[keymap::NAVIGATION, keymap::MENU, keymap::GLOBAL]),
        }
    }

    /// Answers a key.
    pub fn on_action(&mut self, action: Action, now_ms: u64) -> Outcome {
        let cancel = || {
            vec![
                Effect::PinClear,
                Effect::Send(Command::Login(LoginCommand::Cancel)),
            ]
        };
        match (self.stage, action) {
            (Stage::Pin, action) => self.on_pin_key(action),
            (Stage::ChooseCard, Action::Select) => self.insert(self.slot),
            (Stage::ChooseCard, Action::Jump(n)) if usize::from(n) <= self.slots.len() => {
                self.insert(usize::from(n) - 1)
            }
            (Stage::ChooseCard, _) if action != Action::Back => {
                self.slot = step_selection(self.slot, self.slots.len(), action, 5);
                Outcome::none()
            }
            (Stage::Failed, Action::Select) => match (self.role, self.throttled_until_ms) {
                (_, Some(until)) if until > now_ms => {
                    self.notice = Some(throttle_notice((until - now_ms).div_ceil(1000)));
                    Outcome::none()
                }
                (Some(role), _) => Outcome::Stay(self.start(role)),
                (None, _) => Outcome::Leave(cancel()),
            },
            (_, Action::Back) => {
                self.stage = Stage::Idle;
                Outcome::Leave(cancel())
            }
            _ => Outcome::none(),
        }
    }

    fn insert(&mut self, slot: usize) -> Outcome {
        if slot >= self.slots.len() {
            return Outcome::none();
        }
        self.slot = slot;
        self.stage = Stage::Opening;
        self.notice = None;
        Outcome::one(Effect::Send(Command::Login(LoginCommand::Insert(slot))))
    }

    fn on_pin_key(&mut self, action: Action) -> Outcome {
        if let Some(typed) = super::pin_typing(&mut self.pin_len, action) {
            return typed;
        }
        match action {
            Action::Select if self.pin_len == 0 => {
                self.notice = Some(Notice::new(Level::Warn, "Type the card's PIN first."));
                Outcome::none()
            }
            Action::Select => {
                self.pin_len = 0;
                self.stage = Stage::Checking;
                Outcome::one(Effect::SubmitPin(crate::tui::message::PinFor::Login))
            }
            Action::Back => {
                // The card is set aside: ask for a card again.
                self.pin_len = 0;
                self.card = None;
                self.stage = Stage::ChooseCard;
                self.notice = Some(Notice::new(Level::Info, "Card set aside."));
                Outcome::one(Effect::PinClear)
            }
            _ => Outcome::none(),
        }
    }

    /// Takes a login event (the model handles `LoggedIn` itself).
    pub fn on_event(&mut self, event: LoginEvent, now_ms: u64) -> Vec<Effect> {
        match event {
            LoginEvent::Started {
                role,
                threshold,
                cards,
            } => {
                self.role = Some(role);
                self.threshold = threshold;
                self.set_cards = cards;
                self.stage = Stage::ChooseCard;
                self.notice = None;
            }
            LoginEvent::Inserted(card) => {
                self.card = Some(card);
                self.pin_len = 0;
                self.stage = Stage::Pin;
                return vec![Effect::PinClear];
            }
            LoginEvent::WrongPin(card) => {
                self.notice = Some(Notice::new(
                    Level::Error,
                    format!("Wrong PIN for {}: {}.", card.name(), card.tries_text()),
                ));
                self.card = Some(card);
                self.pin_len = 0;
                self.stage = Stage::Pin;
                return vec![Effect::PinClear];
            }
            LoginEvent::Refused { card, why } => {
                self.notice = Some(Notice::new(Level::Error, refusal_text(&card, why)));
                self.card = None;
                self.stage = Stage::ChooseCard;
                return vec![Effect::PinClear];
            }
            LoginEvent::Signed { card, have, need } => {
                self.signed.push(card);
                // Nothing of this holder's card stays on screen for the next holder.
                self.card = None;
                self.pin_len = 0;
                self.stage = if have >= need {
                    Stage::Checking
                } else {
                    Stage::ChooseCard
                };
                self.notice = Some(Notice::new(Level::Ok, progress_text(have, need)));
                return vec![Effect::PinClear];
            }
            LoginEvent::Failed {
                reason,
                retry_after_secs,
            } => {
                self.stage = Stage::Failed;
                self.card = None;
                self.throttled_until_ms = retry_after_secs.map(|s| now_ms + s * 1000);
                self.notice = Some(match retry_after_secs {
                    Some(secs) => throttle_notice(secs),
                    None => Notice::new(Level::Error, format!("Login refused: {reason}")),
                });
                return vec![Effect::PinClear];
            }
            LoginEvent::LoggedIn { .. } => {
                *self = LoginFlow {
                    slots: std::mem::take(&mut self.slots),
                    ..LoginFlow::default()
                };
            }
        }
        Vec::new()
    }
}

fn throttle_notice(secs: u64) -> Notice {
    Notice::new(
        Level::Warn,
        format!("Too many failed logins: the HSM accepts the next try in {secs} s."),
    )
}

/// `1 of 2 — insert the next card`, as `quorum` words it.
pub fn progress_text(have: usize, need: usize) -> String {
    quorum::ceremony::Progress { have, need }.to_string()
}

fn refusal_text(card: &CardView, why: CardRefusal) -> String {
    match why {
        CardRefusal::Blocked => format!(
            "{} is blocked (no PIN tries left): set it aside and insert another card; its \
             holder unblocks it with the admin PIN.",
            card.name()
        ),
        CardRefusal::NotInSet => format!(
            "{} belongs to another card set, not this partition's active set for this role: \
             set it aside and insert another card.",
            card.name()
        ),
        CardRefusal::SameCardTwice => format!(
            "{} already signed this login: each card counts once; insert another holder's \
             card.",
            card.name()
        ),
    }
}

/// Draws the login screen.
pub fn view(frame: &mut Frame, area: Rect, flow: &LoginFlow, now_ms: u64, theme: &Theme) {
    let role = flow.role.map_or("officer", role_name);
    let title = if flow.threshold > 0 {
        format!(
            "{} login · {}",
            capitalise(role),
            progress_text(flow.signed.len(), flow.threshold)
        )
    } else {
        format!("{} login", capitalise(role))
    };
    let [head, body, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(2),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(Span::styled(title, theme.accent)), head);
    let wide = body.width >= 70;
    let [set_area, step_area] = if wide {
        Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)]).areas(body)
    } else {
        Layout::vertical([
            Constraint::Length(flow.set_cards.len() as u16 + 2),
            Constraint::Min(1),
        ])
        .areas(body)
    };
    frame.render_widget(set_list(flow, theme), set_area);
    frame.render_widget(step(flow, now_ms, theme), step_area);
    if let Some(notice) = flow.notice.as_ref().filter(|_| flow.stage != Stage::Failed) {
        frame.render_widget(view::notice_paragraph(notice, theme), foot);
    }
}

fn set_list<'a>(flow: &'a LoginFlow, theme: &Theme) -> Paragraph<'a> {
    let mut lines = Vec::new();
    for card in &flow.set_cards {
        let signed = flow.signed.iter().any(|s| s.serial == card.serial.as_str());
        let mark = if signed { "✓ " } else { "  " };
        let style = if signed { theme.ok } else { theme.plain };
        let kind = if card.soft_card { " (soft)" } else { "" };
        lines.push(Line::from(vec![
            Span::styled(mark, style),
            Span::styled(card.holder.as_str().to_owned(), style),
            Span::styled(format!("  {}{kind}", card.serial.as_str()), theme.muted),
        ]));
    }
    if lines.is_empty() {
        lines.push(Line::styled("(asking the HSM…)", theme.muted));
    }
    Paragraph::new(lines).block(view::block("The set's cards (✓ signed)", theme))
}

fn step<'a>(flow: &'a LoginFlow, now_ms: u64, theme: &Theme) -> Paragraph<'a> {
    let busy = |text: &'a str| Paragraph::new(Line::styled(text, theme.muted));
    let para = match flow.stage {
        Stage::Idle => busy("Choose a role on the welcome screen."),
        Stage::Challenge => busy("Asking the HSM for a login challenge…"),
        Stage::Opening => busy("Reading the card…"),
        Stage::Checking => busy("The card checks its PIN and signs the HSM's challenge…"),
        Stage::ChooseCard => slot_list(flow, theme),
        Stage::Pin => pin_prompt(flow, theme),
        Stage::Failed => {
            let mut lines = vec![Line::styled("✗ Not logged in.", theme.error)];
            match (
                flow.throttled_until_ms.filter(|u| *u > now_ms),
                &flow.notice,
            ) {
                (Some(until), _) => lines.push(Line::from(format!(
                    "Too many failed logins: the HSM accepts the next try in {} s.",
                    (until - now_ms).div_ceil(1000)
                ))),
                (None, Some(notice)) => lines.push(Line::from(notice.text.as_str())),
                (None, None) => {}
            }
            lines.push(Line::styled("Enter: try again · Esc: back", theme.muted));
            Paragraph::new(lines)
        }
    };
    para.block(view::block("This step", theme))
        .wrap(ratatui::widgets::Wrap { trim: false })
}

fn slot_list<'a>(flow: &'a LoginFlow, theme: &Theme) -> Paragraph<'a> {
    let mut lines = vec![
        Line::from(format!(
            "{}.",
            progress_text(flow.signed.len(), flow.threshold)
        )),
        Line::styled("Choose the card to insert:", theme.muted),
    ];
    for (i, slot) in flow.slots.iter().enumerate() {
        lines.push(view::menu_line(i + 1, &slot.label, i == flow.slot, theme));
    }
    if flow.slots.is_empty() {
        lines.push(Line::styled("No card within reach.", theme.warn));
    }
    Paragraph::new(lines)
}

fn pin_prompt<'a>(flow: &'a LoginFlow, theme: &Theme) -> Paragraph<'a> {
    let Some(card) = &flow.card else {
        return Paragraph::new("");
    };
    let card_style = if card.soft {
        theme.soft_card
    } else {
        theme.plain
    };
    let lines = vec![
        Line::from(vec![
            Span::styled("Holder  ", theme.muted),
            Span::raw(card.holder.clone().unwrap_or_else(|| "(not named)".into())),
        ]),
        Line::from(vec![
            Span::styled("Card    ", theme.muted),
            Span::styled(card.name(), card_style),
        ]),
        Line::from(vec![
            Span::styled("Serial  ", theme.muted),
            Span::raw(card.serial.clone()),
        ]),
        Line::from(vec![
            Span::styled("Tries   ", theme.muted),
            Span::raw(card.tries_text()),
        ]),
        Line::from(""),
        Line::from(vec![
            Span::styled("PIN     ", theme.accent),
            Span::raw("•".repeat(flow.pin_len.min(40))),
            Span::styled("▏", theme.accent),
        ]),
    ];
    Paragraph::new(lines)
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The worker's side of a login: the ceremony and the inserted card.
#[derive(Default)]
pub struct LoginWork {
    ceremony: Option<LoginCeremony>,
    inserted: Option<Box<dyn InsertedCard>>,
}

/// The card as shown.
pub(crate) fn card_view(info: &quorum::card::CardInfo) -> CardView {
    CardView {
        holder: info.holder.clone(),
        serial: info.serial.clone(),
        soft: info.soft,
        tries_left: info.pin_retries_left,
    }
}

/// Runs one login step on the worker.
pub(crate) fn work(
    link: &mut (dyn Link + Send),
    reader: &mut dyn CardReader,
    state: &mut LoginWork,
    command: LoginCommand,
) -> Vec<Event> {
    let event = match command {
        LoginCommand::Start(role) => {
            state.inserted = None;
            match LoginCeremony::start(link, role) {
                Ok(ceremony) => {
                    let started = LoginEvent::Started {
                        role,
                        threshold: ceremony.progress().need,
                        cards: ceremony.cards().to_vec(),
                    };
                    state.ceremony = Some(ceremony);
                    started
                }
                Err(e) => return vec![ceremony_failure(e)],
            }
        }
        LoginCommand::Insert(slot) => insert(reader, state, slot),
        LoginCommand::Verify(pin) => return verify(link, state, &pin),
        LoginCommand::Cancel => {
            *state = LoginWork::default();
            return Vec::new();
        }
    };
    vec![Event::Login(event)]
}

fn insert(reader: &mut dyn CardReader, state: &mut LoginWork, slot: usize) -> LoginEvent {
    state.inserted = None;
    let card = match reader.insert(slot) {
        Ok(card) => card,
        Err(reason) => {
            return LoginEvent::Failed {
                reason,
                retry_after_secs: None,
            };
        }
    };
    let info = card.info();
    let view = card_view(&info);
    let Some(ceremony) = &state.ceremony else {
        return failed("no login is under way: choose the role again");
    };
    // Named before the PIN: the holder need not type it for a card that cannot count.
    let why = if info.pin_retries_left == Some(0) {
        Some(CardRefusal::Blocked)
    } else if !ceremony
        .cards()
        .iter()
        .any(|c| c.signing_key == info.signing_public)
    {
        Some(CardRefusal::NotInSet)
    } else if ceremony.signed().iter().any(|c| c.serial == info.serial) {
        Some(CardRefusal::SameCardTwice)
    } else {
        None
    };
    match why {
        Some(why) => LoginEvent::Refused { card: view, why },
        None => {
            state.inserted = Some(card);
            LoginEvent::Inserted(view)
        }
    }
}

fn failed(reason: &str) -> LoginEvent {
    LoginEvent::Failed {
        reason: reason.to_owned(),
        retry_after_secs: None,
    }
}

fn verify(link: &mut (dyn Link + Send), state: &mut LoginWork, pin: &Pin) -> Vec<Event> {
    let Some(card) = state.inserted.take() else {
        return vec![Event::Login(failed(
            "no card is inserted: insert one first",
        ))];
    };
    let mut verified = match card.verify(pin) {
        Ok(verified) => verified,
        Err((card, CardError::WrongPin { retries_left })) => {
            let mut view = card_view(&card.info());
            view.tries_left = retries_left;
            if retries_left == Some(0) {
                return vec![Event::Login(LoginEvent::Refused {
                    card: view,
                    why: CardRefusal::Blocked,
                })];
            }
            state.inserted = Some(card);
            return vec![Event::Login(LoginEvent::WrongPin(view))];
        }
        Err((card, CardError::Blocked)) => {
            return vec![Event::Login(LoginEvent::Refused {
                card: card_view(&card.info()),
                why: CardRefusal::Blocked,
            })];
        }
        Err((card, e)) => {
            return vec![Event::Login(failed(&format!(
                "{}: {e}",
                card_view(&card.info()).name()
            )))];
        }
    };
    let view = card_view(&verified.info());
    let Some(ceremony) = state.ceremony.as_mut() else {
        return vec![Event::Login(failed("no login is under way"))];
    };
    let progress = match ceremony.present(&mut *verified) {
        Ok(progress) => progress,
        Err(CeremonyError::NotInSet { .. }) => {
            return vec![Event::Login(LoginEvent::Refused {
                card: view,
                why: CardRefusal::NotInSet,
            })];
        }
        Err(CeremonyError::SameCardTwice { .. }) => {
            return vec![Event::Login(LoginEvent::Refused {
                card: view,
                why: CardRefusal::SameCardTwice,
            })];
        }
        Err(e) => return vec![ceremony_failure(e)],
    };
    let mut events = vec![Event::Login(LoginEvent::Signed {
        card: view,
        have: progress.have,
        need: progress.need,
    })];
    if progress.complete() {
        events.push(submit(link, state));
    }
    events
}

fn submit(link: &mut (dyn Link + Send), state: &mut LoginWork) -> Event {
    let Some(ceremony) = state.ceremony.take() else {
        return Event::Login(failed("no login is under way"));
    };
    let request = ceremony.finish();
    let role = match &request {
        hsm_link::message::AdminRequest::Login { role, .. } => *role,
        _ => OfficerRole::Pso,
    };
    match link.admin(request) {
        Ok(hsm_link::message::AdminResponse::LoggedIn {
            role,
            holders,
            log_warning,
        }) => Event::Login(LoginEvent::LoggedIn {
            role,
            holders,
            log_warning,
        }),
        Ok(_) => Event::Login(failed(&format!(
            "the HSM gave an unexpected answer to the {} login",
            role_name(role)
        ))),
        Err(e) => link_refusal(e),
    }
}

fn ceremony_failure(e: CeremonyError) -> Event {
    match e {
        CeremonyError::Link(e) => link_refusal(e),
        other => Event::Login(failed(&other.to_string())),
    }
}

fn link_refusal(e: LinkError) -> Event {
    match e.admin_error() {
        Some(AdminError::Login(LoginRefusal::Throttled { retry_after_secs })) => {
            Event::Login(LoginEvent::Failed {
                reason: "too many failed logins".to_owned(),
                retry_after_secs: Some(*retry_after_secs),
            })
        }
        Some(AdminError::Login(refusal)) => Event::Login(failed(&refusal.to_string())),
        Some(other) => Event::Login(failed(&other.to_string())),
        None => link_failure(e),
    }
}
