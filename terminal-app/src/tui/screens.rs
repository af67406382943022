//! Which flow answers each screen: one entry per screen in [`SCREENS`], naming how keys read on
//! it, what opening it asks for, how it answers an action, where backing out of it leads, what a
//! logout forgets, and which worker events are its own. `update` looks the screen up here
//! instead of matching on it, so a new screen is a new entry, not an arm in every match.
//! Everything here is as pure as `update`: the model in, effects out.

use super::keymap::{self, Action, Context};
use super::message::{Effect, Event};
use super::model::{Model, Screen};
use super::update;
use crate::flows::{self, Outcome};

/// A screen's flow, as `update` calls it.
pub(crate) struct ScreenFlow {
    /// The screen this entry answers.
    pub(crate) screen: Screen,
    /// How keys read on it (what the help overlay lists).
    pub(crate) context: fn(&Model) -> Context,
    /// Opened from a menu: what it asks the worker for (the model's screen is already set).
    pub(crate) open: fn(&mut Model) -> Vec<Effect>,
    /// An action on it; `Outcome::Leave` backs out to [`ScreenFlow::back`].
    pub(crate) on_action: fn(&mut Model, Action) -> Outcome,
    /// Where backing out leads.
    pub(crate) back: Back,
    /// What a logout forgets of it.
    pub(crate) forget: fn(&mut Model),
    /// Its worker events: the effects of one of its own, or the event back when it is not.
    pub(crate) on_event: fn(&mut Model, Event) -> Result<Vec<Effect>, Event>,
}

/// Where a screen backs out to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Back {
    /// The dashboard while logged in, else the welcome screen.
    Home,
    /// The screen it was opened from.
    To(Screen),
}

/// The entry for `screen`.
pub(crate) fn flow(screen: Screen) -> &'static ScreenFlow {
    SCREENS
        .iter()
        .find(|flow| flow.screen == screen)
        .expect("every screen has an entry in SCREENS")
}

/// A worker event to the flow whose it is; `None` when no screen claims it.
pub(crate) fn on_event(model: &mut Model, mut event: Event) -> Option<Vec<Effect>> {
    for flow in SCREENS {
        match (flow.on_event)(model, event) {
            Ok(effects) => return Some(effects),
            Err(other) => event = other,
        }
    }
    None
}

fn nothing(_: &mut Model) -> Vec<Effect> {
    Vec::new()
}

fn keep(_: &mut Model) {}

fn no_events(_: &mut Model, event: Event) -> Result<Vec<Effect>, Event> {
    Err(event)
}

/// Every screen's entry (one each).
pub(crate) static SCREENS: &[ScreenFlow] = &[
    ScreenFlow {
        screen: Screen::Welcome,
        context: |_| {
            Context::Tables(&[
                keymap::MENU,
                keymap::WELCOME,
                keymap::NAVIGATION,
                keymap::GLOBAL,
            ])
        },
        open: nothing,
        on_action: |m, a| Outcome::Stay(update::welcome_action(m, a)),
        back: Back::Home,
        forget: keep,
        on_event: no_events,
    },
    ScreenFlow {
        screen: Screen::Dashboard,
        context: |_| {
            Context::Tables(&[
                keymap::MENU,
                keymap::DASHBOARD,
                keymap::NAVIGATION,
                keymap::GLOBAL,
            ])
        },
        open: nothing,
        on_action: |m, a| Outcome::Stay(update::dashboard_action(m, a)),
        back: Back::Home,
        forget: |m| m.dashboard = Default::default(),
        on_event: |m, event| match event {
            Event::Status(status) => {
                flows::dashboard::on_status(m, *status);
                Ok(Vec::new())
            }
            other => Err(other),
        },
    },
    ScreenFlow {
        screen: Screen::Login,
        context: |m| m.login.context(),
        open: nothing,
        on_action: |m, a| m.login.on_action(a, m.now_ms),
        back: Back::Home,
        forget: keep,
        on_event: |m, event| match event {
            Event::Login(step) => Ok(m.login.on_event(step, m.now_ms)),
            other => Err(other),
        },
    },
    ScreenFlow {
        screen: Screen::Configuration,
        context: |m| m.config.context(),
        open: |m| m.config.open(),
        on_action: |m, a| m.config.on_action(a, &m.target.partition_id),
        back: Back::Home,
        forget: |m| m.config = Default::default(),
        on_event: |m, event| match event {
            event @ (Event::Config(_)
            | Event::Drills(_)
            | Event::ConfigApplied { .. }
            | Event::ConfigRefused { .. }) => Ok(m.config.on_event(event)),
            other => Err(other),
        },
    },
    ScreenFlow {
        screen: Screen::Keys,
        context: |m| m.keys.context(),
        open: |m| m.keys.open(),
        on_action: |m, a| m.keys.on_action(a),
        back: Back::Home,
        forget: |m| m.keys = flows::keys::KeysFlow::new(m.keys.filter),
        // The key list's and the bin's pages, and the bin's restores and purges.
        on_event: |m, event| match event {
            Event::Keys {
                query,
                keys,
                more,
                matching,
            } => {
                let flow = if query.filter == m.bin.filter {
                    &mut m.bin
                } else {
                    &mut m.keys
                };
                Ok(flow.on_page(&query, keys, more, matching))
            }
            event @ (Event::Restored { .. } | Event::Purged { .. } | Event::KeyActionFailed(_)) => {
                let effects = m.bin.on_event(event);
                m.keys = flows::keys::KeysFlow::new(m.keys.filter);
                Ok(effects)
            }
            other => Err(other),
        },
    },
    ScreenFlow {
        screen: Screen::Bin,
        context: |m| m.bin.context(),
        open: |m| m.bin.open(),
        on_action: |m, a| m.bin.on_action(a),
        back: Back::Home,
        forget: |m| m.bin = flows::keys::KeysFlow::new(m.bin.filter),
        // Its events are the key list's (above).
        on_event: no_events,
    },
    ScreenFlow {
        screen: Screen::Logs,
        context: |m| m.logs.context(),
        open: |m| {
            open_logs(m);
            m.logs.open()
        },
        on_action: |m, a| m.logs.on_action(a, &m.drive_dirs),
        back: Back::Home,
        forget: |m| m.logs = Default::default(),
        on_event: |m, event| match event {
            Event::Log(page) => Ok(m.logs.on_page(*page)),
            Event::LogExport(step) => Ok(m.logs.on_export_event(step)),
            other => Err(other),
        },
    },
    ScreenFlow {
        screen: Screen::LogExport,
        context: |m| m.logs.context(),
        open: |m| {
            open_logs(m);
            m.logs.open_export(&m.drive_dirs)
        },
        on_action: |m, a| m.logs.on_action(a, &m.drive_dirs),
        back: Back::Home,
        // The Logs screen's (above).
        forget: keep,
        on_event: no_events,
    },
    ScreenFlow {
        screen: Screen::Credentials,
        context: |m| m.credentials.context(),
        open: nothing,
        on_action: |m, a| {
            if a == Action::Terminals {
                m.screen = Screen::Terminals;
                return Outcome::Stay(m.terminals.open());
            }
            m.credentials.on_action(a)
        },
        back: Back::Home,
        forget: |m| m.credentials = Default::default(),
        on_event: |m, event| match event {
            event @ (Event::Credentials { .. } | Event::CredentialsRefused(_)) => {
                m.credentials.on_event(event);
                Ok(Vec::new())
            }
            other => Err(other),
        },
    },
    ScreenFlow {
        screen: Screen::Cards,
        context: |m| m.drill.context(),
        open: nothing,
        on_action: |m, a| match update::cards_action(m, a) {
            Some(effects) => Outcome::Stay(effects),
            None => m.drill.on_action(a, m.login.slots.len()),
        },
        back: Back::Home,
        forget: |m| m.drill = Default::default(),
        on_event: |m, event| match event {
            Event::Drill(step) => Ok(m.drill.on_event(step)),
            other => Err(other),
        },
    },
    ScreenFlow {
        screen: Screen::Reshare,
        context: |m| m.reshare.context(),
        open: nothing,
        on_action: |m, a| m.reshare.on_action(a, m.login.slots.len()),
        back: Back::To(Screen::Cards),
        forget: |m| m.reshare = Default::default(),
        on_event: |m, event| match event {
            Event::Reshare(step) => Ok(m.reshare.on_event(step)),
            other => Err(other),
        },
    },
    ScreenFlow {
        screen: Screen::Revoke,
        context: |m| m.revoke.context(),
        open: nothing,
        on_action: |m, a| m.revoke.on_action(a, m.login.slots.len()),
        back: Back::To(Screen::Cards),
        forget: |m| m.revoke = Default::default(),
        on_event: |m, event| match event {
            Event::Revoke(step) => Ok(m.revoke.on_event(step)),
            other => Err(other),
        },
    },
    ScreenFlow {
        screen: Screen::Pin,
        context: |m| m.pin.context(),
        open: nothing,
        on_action: |m, a| m.pin.on_action(a, m.login.slots.len()),
        back: Back::To(Screen::Cards),
        forget: |m| m.pin = Default::default(),
        on_event: |m, event| match event {
            Event::Pin(step) => Ok(m.pin.on_event(step)),
            other => Err(other),
        },
    },
    ScreenFlow {
        screen: Screen::Enrol,
        context: |m| m.enrol.context(),
        open: nothing,
        on_action: |m, a| m.enrol.on_action(a, m.login.slots.len()),
        back: Back::To(Screen::Cards),
        forget: |m| m.enrol = Default::default(),
        on_event: |m, event| match event {
            Event::Enrol(step) => Ok(m.enrol.on_event(step)),
            other => Err(other),
        },
    },
    ScreenFlow {
        screen: Screen::NewCard,
        context: |m| m.newcard.context(),
        open: nothing,
        on_action: |m, a| m.newcard.on_action(a, m.login.slots.len()),
        back: Back::To(Screen::Cards),
        forget: |m| m.newcard = Default::default(),
        on_event: |m, event| match event {
            Event::NewCard(step) => Ok(flows::newcard::on_event(m, step)),
            other => Err(other),
        },
    },
    ScreenFlow {
        screen: Screen::Backup,
        context: |m| m.backup.context(),
        open: flows::backup::open,
        on_action: flows::backup::on_action,
        back: Back::Home,
        forget: |m| m.backup.forget(),
        on_event: |m, event| match event {
            Event::Backup(step) => Ok(flows::backup::on_event(m, step)),
            other => Err(other),
        },
    },
    ScreenFlow {
        screen: Screen::Terminals,
        context: |m| m.terminals.context(),
        // Opened from the Credentials screen (above).
        open: nothing,
        on_action: |m, a| {
            let role = m.session.as_ref().map(|s| s.role);
            m.terminals.on_action(a, role)
        },
        back: Back::To(Screen::Credentials),
        forget: |m| m.terminals = Default::default(),
        on_event: |m, event| match event {
            Event::Terminals(step) => Ok(m.terminals.on_event(step)),
            other => Err(other),
        },
    },
    ScreenFlow {
        screen: Screen::Firmware,
        context: |m| m.firmware.context(),
        open: |m| m.firmware.open(&m.drive_dirs),
        on_action: |m, a| m.firmware.on_action(a, &m.drive_dirs),
        back: Back::Home,
        // The terminal's own firmware is no partition's: a logout keeps it.
        forget: keep,
        on_event: |m, event| match event {
            Event::Firmware(step) => Ok(m.firmware.on_event(step)),
            other => Err(other),
        },
    },
];

/// The Logs screen, opened from the menu at its list or at its export panel, with the log's
/// head the dashboard read.
fn open_logs(model: &mut Model) {
    model.logs.head = model.dashboard.status.as_ref().and_then(|s| s.log_head);
    model.screen = Screen::Logs;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every screen, listed by a match the compiler checks: a new screen fails to build here
    /// until it is listed, and then the test below asks for its entry.
    fn every_screen() -> Vec<Screen> {
        let all = [
            Screen::Welcome,
            Screen::Login,
            Screen::Dashboard,
            Screen::Configuration,
            Screen::Keys,
            Screen::Bin,
            Screen::Logs,
            Screen::Credentials,
            Screen::Cards,
            Screen::Reshare,
            Screen::Revoke,
            Screen::Pin,
            Screen::Enrol,
            Screen::NewCard,
            Screen::Backup,
            Screen::Terminals,
            Screen::Firmware,
            Screen::LogExport,
        ];
        for screen in all {
            match screen {
                Screen::Welcome
                | Screen::Login
                | Screen::Dashboard
                | Screen::Configuration
                | Screen::Keys
                | Screen::Bin
                | Screen::Logs
                | Screen::Credentials
                | Screen::Cards
                | Screen::Reshare
                | Screen::Revoke
                | Screen::Pin
                | Screen::Enrol
                | Screen::NewCard
                | Screen::Backup
                | Screen::Terminals
                | Screen::Firmware
                | Screen::LogExport => {}
            }
        }
        all.to_vec()
    }

    #[test]
    fn every_screen_has_exactly_one_entry() {
        let all = every_screen();
        for screen in &all {
            let entries = SCREENS.iter().filter(|f| f.screen == *screen).count();
            assert_eq!(entries, 1, "{screen:?}");
        }
        assert_eq!(SCREENS.len(), all.len());
    }

    #[test]
    fn the_cards_flows_back_out_to_cards_and_terminals_to_credentials() {
        for screen in [
            Screen::Reshare,
            Screen::Revoke,
            Screen::Pin,
            Screen::Enrol,
            Screen::NewCard,
        ] {
            assert_eq!(flow(screen).back, Back::To(Screen::Cards), "{screen:?}");
        }
        assert_eq!(flow(Screen::Terminals).back, Back::To(Screen::Credentials));
        assert_eq!(flow(Screen::Keys).back, Back::Home);
    }
}
