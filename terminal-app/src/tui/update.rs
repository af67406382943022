//! `update`: a message in, the model changed, effects out. Pure: no I/O, no clock, no PIN.

use hsm_link::message::OfficerRole;

use super::keymap::{self, Action, Context, action_for};
use super::message::{Command, Effect, Event, LoginEvent, Message};
use super::model::{LinkState, MENU, Model, Overlay, ROLES, Screen, Session};
use super::screens::{self, Back};
use crate::flows::Outcome;
use crate::flows::login::role_name;

/// How keys read now, overlays first.
pub fn context(model: &Model) -> Context {
    match model.overlay {
        Some(Overlay::ConfirmQuit) => Context::Question,
        Some(Overlay::Help | Overlay::Locked { .. }) => Context::Tables(&[keymap::GLOBAL]),
        None => screen_context(model),
    }
}

/// How keys read on the screen itself (what the help overlay lists).
pub fn screen_context(model: &Model) -> Context {
    (screens::flow(model.screen).context)(model)
}

/// The heart of the TUI: applies `message` to `model`, returns what the runtime must do.
pub fn update(model: &mut Model, message: Message) -> Vec<Effect> {
    match message {
        Message::Tick { now_ms } => tick(model, now_ms),
        Message::Key(key) => {
            model.last_activity_ms = model.now_ms;
            match action_for(context(model), key) {
                Some(action) => on_action(model, action),
                None => Vec::new(),
            }
        }
        Message::Worker(event) => on_event(model, event),
    }
}

fn tick(model: &mut Model, now_ms: u64) -> Vec<Effect> {
    model.now_ms = now_ms.max(model.now_ms);
    if model.lock_in_ms() != Some(0) {
        return crate::flows::backup::on_tick(model);
    }
    let idle_secs = model.idle_lock_ms / 1000;
    end_session(model);
    model.overlay = Some(Overlay::Locked { idle_secs });
    vec![Effect::PinClear, Effect::Send(Command::Logout)]
}

/// Forgets the login and everything read under it.
pub(crate) fn end_session(model: &mut Model) {
    model.session = None;
    model.screen = Screen::Welcome;
    model.menu = 0;
    for flow in screens::SCREENS {
        (flow.forget)(model);
    }
}

/// Opens the revocation from the Cards screen: it needs a PSO login.
fn start_revoke(model: &mut Model) -> Vec<Effect> {
    if model.session.as_ref().map(|s| s.role) != Some(OfficerRole::Pso) {
        model.notify(
            super::model::Level::Warn,
            "Revoking a card needs a PSO login: log out (o on the dashboard) and log in as PSO.",
        );
        return Vec::new();
    }
    model.notice = None;
    model.screen = Screen::Revoke;
    model.revoke.open()
}

/// Opens the re-share from the Cards screen: it needs a PSO login.
fn start_reshare(model: &mut Model) -> Vec<Effect> {
    if model.session.as_ref().map(|s| s.role) != Some(OfficerRole::Pso) {
        model.notify(
            super::model::Level::Warn,
            "A re-share needs a PSO login: log out (o on the dashboard) and log in as PSO.",
        );
        return Vec::new();
    }
    model.notice = None;
    model.reshare = Default::default();
    model.screen = Screen::Reshare;
    vec![Effect::PinClear]
}

fn on_action(model: &mut Model, action: Action) -> Vec<Effect> {
    match (&model.overlay, action) {
        (Some(Overlay::ConfirmQuit), Action::Yes) => {
            model.quitting = true;
            return vec![
                Effect::PinClear,
                Effect::Send(Command::Logout),
                Effect::Quit,
            ];
        }
        (Some(Overlay::ConfirmQuit), _) => {
            model.overlay = None;
            return Vec::new();
        }
        (Some(_), Action::Quit) => model.overlay = None,
        (Some(_), _) => {
            model.overlay = None;
            return Vec::new();
        }
        (None, _) => {}
    }
    match action {
        Action::Help => {
            model.overlay = Some(Overlay::Help);
            Vec::new()
        }
        Action::Quit if model.session.is_some() => {
            model.overlay = Some(Overlay::ConfirmQuit);
            Vec::new()
        }
        Action::Quit => {
            model.quitting = true;
            vec![Effect::PinClear, Effect::Quit]
        }
        _ => on_screen_action(model, action),
    }
}

/// An action on the screen, answered by its flow ([`screens::SCREENS`]).
fn on_screen_action(model: &mut Model, action: Action) -> Vec<Effect> {
    let flow = screens::flow(model.screen);
    match (flow.on_action)(model, action) {
        Outcome::Stay(effects) => effects,
        Outcome::Leave(effects) => {
            model.screen = match flow.back {
                Back::To(screen) => screen,
                Back::Home if model.session.is_some() => Screen::Dashboard,
                Back::Home => Screen::Welcome,
            };
            effects
        }
    }
}

/// The Cards screen's ways into the other card flows: `None` when `action` is the drill's.
pub(crate) fn cards_action(model: &mut Model, action: Action) -> Option<Vec<Effect>> {
    let screen = match action {
        Action::Reshare => return Some(start_reshare(model)),
        Action::Revoke => return Some(start_revoke(model)),
        Action::Pin => {
            model.pin = Default::default();
            Screen::Pin
        }
        Action::Enrol => {
            model.enrol = Default::default();
            Screen::Enrol
        }
        Action::NewCard => {
            model.newcard = Default::default();
            Screen::NewCard
        }
        Action::SetUpCard => {
            model.newcard = crate::flows::newcard::NewCardFlow::openpgp();
            Screen::NewCard
        }
        _ => return None,
    };
    model.notice = None;
    model.screen = screen;
    Some(vec![Effect::PinClear])
}

pub(crate) fn welcome_action(model: &mut Model, action: Action) -> Vec<Effect> {
    let chosen = match action {
        Action::Firmware => return open_screen(model, Screen::Firmware),
        Action::Cards => return open_screen(model, Screen::Cards),
        Action::Back if model.partition_list => return vec![Effect::PinClear, Effect::Leave],
        Action::Jump(n) if usize::from(n) <= ROLES.len() => usize::from(n) - 1,
        Action::Select => model.menu,
        _ => {
            model.menu = crate::flows::step_selection(model.menu, ROLES.len(), action, 3);
            return Vec::new();
        }
    };
    model.menu = chosen;
    start_login(model, ROLES[chosen].0)
}

fn start_login(model: &mut Model, role: OfficerRole) -> Vec<Effect> {
    if let Some(effects) = super::paired::reconnect(model) {
        return effects;
    }
    if model.link != LinkState::Up {
        model.notify(
            super::model::Level::Warn,
            "The link is not up yet: wait for the demo HSM to be ready.",
        );
        return Vec::new();
    }
    model.notice = None;
    model.screen = Screen::Login;
    model.login.start(role)
}

pub(crate) fn dashboard_action(model: &mut Model, action: Action) -> Vec<Effect> {
    let chosen = match action {
        Action::Jump(n) if usize::from(n) <= MENU.len() => usize::from(n) - 1,
        Action::Select => model.menu,
        Action::Logout => {
            end_session(model);
            model.notify(super::model::Level::Ok, "Logged out.");
            return vec![Effect::Send(Command::Logout)];
        }
        Action::Reload => return vec![Effect::Send(Command::Refresh)],
        _ => {
            model.menu = crate::flows::step_selection(model.menu, MENU.len(), action, 4);
            return Vec::new();
        }
    };
    model.menu = chosen;
    model.notice = None;
    open_screen(model, MENU[chosen].screen)
}

/// Opens a screen and asks for what it shows.
fn open_screen(model: &mut Model, screen: Screen) -> Vec<Effect> {
    model.screen = screen;
    (screens::flow(screen).open)(model)
}

fn on_event(model: &mut Model, event: Event) -> Vec<Effect> {
    match event {
        Event::Ready { slots } => {
            model.link = LinkState::Up;
            model.login.slots = slots;
            Vec::new()
        }
        Event::SetupFailed(reason) | Event::LinkLost(reason) => {
            super::paired::on_link_lost(model);
            model.notify(
                super::model::Level::Error,
                format!("The link is lost: {reason}"),
            );
            model.link = LinkState::Lost(reason);
            Vec::new()
        }
        Event::Login(LoginEvent::LoggedIn {
            role,
            holders,
            log_warning,
        }) => {
            super::paired::on_logged_in(model);
            let names: Vec<&str> = holders.iter().map(|h| h.as_str()).collect();
            model.notify(
                super::model::Level::Ok,
                format!("Logged in as {}: {}.", role_name(role), names.join(", ")),
            );
            model.session = Some(Session { role, holders });
            model.dashboard.log_warning = log_warning;
            model.login.on_event(
                LoginEvent::LoggedIn {
                    role,
                    holders: Vec::new(),
                    log_warning,
                },
                model.now_ms,
            );
            model.screen = Screen::Dashboard;
            model.menu = 0;
            vec![Effect::Send(Command::Refresh)]
        }
        Event::LoggedOut => Vec::new(),
        Event::Failed(reason) => {
            model.notify(super::model::Level::Error, reason);
            model.config.busy = false;
            Vec::new()
        }
        Event::Readers(report) => super::paired::on_readers(model, report),
        // The rest is a screen's own (its entry in `screens::SCREENS`).
        event => screens::on_event(model, event).unwrap_or_default(),
    }
}
