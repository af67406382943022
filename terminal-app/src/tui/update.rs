//! `update`: a message in, the model changed, effects out. Pure: no I/O, no clock, no PIN.

use hsm_link::message::OfficerRole;

use super::keymap::{self, Action, Context, action_for};
use super::message::{Command, Effect, Event, LoginEvent, Message};
use super::model::{LinkState, MENU, Model, Overlay, ROLES, Screen, Session};
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
    match model.screen {
        Screen::Welcome => Context::Tables(&[
            keymap::MENU,
            keymap::WELCOME,
            keymap::NAVIGATION,
            keymap::GLOBAL,
        ]),
        Screen::Dashboard => Context::Tables(&[
            keymap::MENU,
            keymap::DASHBOARD,
            keymap::NAVIGATION,
            keymap::GLOBAL,
        ]),
        Screen::Login => model.login.context(),
        Screen::Configuration => model.config.context(),
        Screen::Keys => model.keys.context(),
        Screen::Bin => model.bin.context(),
        Screen::Logs | Screen::LogExport => model.logs.context(),
        Screen::Credentials => model.credentials.context(),
        Screen::Cards => model.drill.context(),
        Screen::Reshare => model.reshare.context(),
        Screen::Revoke => model.revoke.context(),
        Screen::Pin => model.pin.context(),
        Screen::Enrol => model.enrol.context(),
        Screen::NewCard => model.newcard.context(),
        Screen::Backup => model.backup.context(),
        Screen::Terminals => model.terminals.context(),
        Screen::Firmware => model.firmware.context(),
    }
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
    model.dashboard = Default::default();
    model.config = Default::default();
    model.keys = crate::flows::keys::KeysFlow::new(model.keys.filter);
    model.bin = crate::flows::keys::KeysFlow::new(model.bin.filter);
    model.logs = Default::default();
    model.credentials = Default::default();
    model.drill = Default::default();
    model.reshare = Default::default();
    model.revoke = Default::default();
    model.pin = Default::default();
    model.enrol = Default::default();
    model.newcard = Default::default();
    model.backup.forget();
    model.terminals = Default::default();
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

fn on_screen_action(model: &mut Model, action: Action) -> Vec<Effect> {
    let outcome = match model.screen {
        Screen::Welcome => return welcome_action(model, action),
        Screen::Dashboard => return dashboard_action(model, action),
        Screen::Login => model.login.on_action(action, model.now_ms),
        Screen::Configuration => model.config.on_action(action, &model.target.partition_id),
        Screen::Keys => model.keys.on_action(action),
        Screen::Bin => model.bin.on_action(action),
        Screen::Logs | Screen::LogExport => model.logs.on_action(action, &model.drive_dirs),
        Screen::Credentials if action == Action::Terminals => {
            model.screen = Screen::Terminals;
            return model.terminals.open();
        }
        Screen::Credentials => model.credentials.on_action(action),
        Screen::Cards if action == Action::Reshare => return start_reshare(model),
        Screen::Cards if action == Action::Revoke => return start_revoke(model),
        Screen::Cards if action == Action::Pin => {
            model.notice = None;
            model.pin = Default::default();
            model.screen = Screen::Pin;
            return vec![Effect::PinClear];
        }
        Screen::Cards if action == Action::Enrol => {
            model.notice = None;
            model.enrol = Default::default();
            model.screen = Screen::Enrol;
            return vec![Effect::PinClear];
        }
        Screen::Cards if action == Action::NewCard => {
            model.notice = None;
            model.newcard = Default::default();
            model.screen = Screen::NewCard;
            return vec![Effect::PinClear];
        }
        Screen::NewCard => match model.newcard.on_action(action) {
            Outcome::Leave(effects) => {
                model.screen = Screen::Cards;
                return effects;
            }
            stay => stay,
        },
        Screen::Enrol => match model.enrol.on_action(action, model.login.slots.len()) {
            Outcome::Leave(effects) => {
                model.screen = Screen::Cards;
                return effects;
            }
            stay => stay,
        },
        Screen::Pin => match model.pin.on_action(action, model.login.slots.len()) {
            Outcome::Leave(effects) => {
                model.screen = Screen::Cards;
                return effects;
            }
            stay => stay,
        },
        Screen::Revoke => match model.revoke.on_action(action, model.login.slots.len()) {
            Outcome::Leave(effects) => {
                model.screen = Screen::Cards;
                return effects;
            }
            stay => stay,
        },
        Screen::Terminals => {
            let role = model.session.as_ref().map(|s| s.role);
            match model.terminals.on_action(action, role) {
                Outcome::Leave(effects) => {
                    model.screen = Screen::Credentials;
                    return effects;
                }
                stay => stay,
            }
        }
        Screen::Cards => model.drill.on_action(action, model.login.slots.len()),
        Screen::Reshare => match model.reshare.on_action(action, model.login.slots.len()) {
            // A re-share backs out to the Cards screen.
            Outcome::Leave(effects) => {
                model.screen = Screen::Cards;
                return effects;
            }
            stay => stay,
        },
        Screen::Backup => crate::flows::backup::on_action(model, action),
        Screen::Firmware => model.firmware.on_action(action, &model.drive_dirs),
    };
    match outcome {
        Outcome::Stay(effects) => effects,
        Outcome::Leave(effects) => {
            model.screen = if model.session.is_some() {
                Screen::Dashboard
            } else {
                Screen::Welcome
            };
            effects
        }
    }
}

fn welcome_action(model: &mut Model, action: Action) -> Vec<Effect> {
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

fn dashboard_action(model: &mut Model, action: Action) -> Vec<Effect> {
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
    match screen {
        Screen::Configuration => model.config.open(),
        Screen::Keys => model.keys.open(),
        Screen::Bin => model.bin.open(),
        Screen::Logs | Screen::LogExport => {
            model.logs.head = model.dashboard.status.as_ref().and_then(|s| s.log_head);
            model.screen = Screen::Logs;
            if screen == Screen::LogExport {
                model.logs.open_export(&model.drive_dirs)
            } else {
                model.logs.open()
            }
        }
        Screen::Backup => crate::flows::backup::open(model),
        Screen::Firmware => model.firmware.open(&model.drive_dirs),
        _ => Vec::new(),
    }
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
        Event::Login(step) => model.login.on_event(step, model.now_ms),
        Event::LoggedOut => Vec::new(),
        Event::Failed(reason) => {
            model.notify(super::model::Level::Error, reason);
            model.config.busy = false;
            Vec::new()
        }
        Event::Status(status) => {
            crate::flows::dashboard::on_status(model, *status);
            Vec::new()
        }
        event @ (Event::Config(_)
        | Event::Drills(_)
        | Event::ConfigApplied { .. }
        | Event::ConfigRefused { .. }) => model.config.on_event(event),
        Event::Keys {
            filter,
            after,
            keys,
            more,
        } => {
            let flow = if filter == model.bin.filter {
                &mut model.bin
            } else {
                &mut model.keys
            };
            flow.on_page(after, keys, more)
        }
        event @ (Event::Restored { .. } | Event::Purged { .. } | Event::KeyActionFailed(_)) => {
            let effects = model.bin.on_event(event);
            model.keys = crate::flows::keys::KeysFlow::new(model.keys.filter);
            effects
        }
        Event::Log(page) => model.logs.on_page(*page),
        Event::Drill(step) => model.drill.on_event(step),
        Event::Reshare(step) => model.reshare.on_event(step),
        Event::Revoke(step) => model.revoke.on_event(step),
        Event::Pin(step) => model.pin.on_event(step),
        Event::Enrol(step) => model.enrol.on_event(step),
        Event::NewCard(step) => crate::flows::newcard::on_event(model, step),
        Event::Backup(step) => crate::flows::backup::on_event(model, step),
        Event::Readers(report) => super::paired::on_readers(model, report),
        Event::Terminals(step) => model.terminals.on_event(step),
        Event::Firmware(step) => model.firmware.on_event(step),
        Event::LogExport(step) => model.logs.on_export_event(step),
        event @ (Event::Credentials { .. } | Event::CredentialsRefused(_)) => {
            model.credentials.on_event(event);
            Vec::new()
        }
    }
}
