//! The runtime: the only place with terminal I/O. It draws the model, turns key presses, the
//! clock and the worker's events into messages, and carries out `update`'s effects (the PIN
//! buffer lives here, outside the model).

use std::io;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

use ratatui::DefaultTerminal;
use ratatui::crossterm::event::{self, Event as TermEvent};

use super::message::{Command, DrillCommand, Effect, Event, LoginCommand, Message, PinFor};
use super::model::Model;
use super::pin::PinBuffer;
use super::theme::Theme;
use super::update::update;
use super::view::view;
use super::worker::{self, Worker};

/// How often the clock ticks while nothing happens (the lock countdown, the worker's events).
const TICK: Duration = Duration::from_millis(100);

/// Runs the TUI until the user quits: `setup` builds the worker on its own thread after the
/// first frame. `ratatui::try_init` sets a panic hook that restores the terminal.
pub fn run(
    model: Model,
    setup: impl FnOnce() -> Result<Worker, String> + Send + 'static,
    theme: Theme,
) -> io::Result<()> {
    let (commands, command_rx) = mpsc::channel();
    let (event_tx, events) = mpsc::channel();
    let mut terminal = ratatui::try_init()?;
    let handle = worker::spawn(setup, command_rx, event_tx);
    let result = match handle {
        Ok(_) => event_loop(&mut terminal, model, &commands, &events, &theme),
        Err(e) => Err(e),
    };
    ratatui::try_restore()?;
    // The worker ends once the command channel closes (after a final logout, if any); it is
    // not joined, so that quitting never waits on a card or an Argon2 run.
    drop(commands);
    result
}

fn event_loop(
    terminal: &mut DefaultTerminal,
    mut model: Model,
    commands: &Sender<Command>,
    events: &Receiver<Event>,
    theme: &Theme,
) -> io::Result<()> {
    let start = Instant::now();
    let mut pin = PinBuffer::new();
    loop {
        terminal.draw(|frame| view(frame, &model, theme))?;
        let mut messages = Vec::new();
        if event::poll(TICK)?
            && let TermEvent::Key(key) = event::read()?
        {
            messages.push(Message::Key(key));
        }
        messages.extend(events.try_iter().map(Message::Worker));
        let now_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        messages.push(Message::Tick { now_ms });
        for message in messages {
            let effects = update(&mut model, message);
            if apply(effects, &mut pin, commands) {
                return Ok(());
            }
        }
    }
}

/// Carries out effects; true when the TUI should end.
fn apply(effects: Vec<Effect>, pin: &mut PinBuffer, commands: &Sender<Command>) -> bool {
    let mut quit = false;
    for effect in effects {
        match effect {
            Effect::Send(command) => {
                let _ = commands.send(command);
            }
            Effect::PinPush(c) => pin.push(c),
            Effect::PinPop => pin.pop(),
            Effect::PinClear => pin.clear(),
            Effect::SubmitPin(PinFor::Login) => {
                let _ = commands.send(Command::Login(LoginCommand::Verify(pin.take())));
            }
            Effect::SubmitPin(PinFor::Drill) => {
                let _ = commands.send(Command::Drill(DrillCommand::Verify(pin.take())));
            }
            Effect::SubmitPin(PinFor::Reshare) => {
                let _ = commands.send(Command::Reshare(
                    crate::flows::reshare::ReshareCommand::Verify(pin.take()),
                ));
            }
            Effect::SubmitPin(PinFor::Revoke) => {
                let _ = commands.send(Command::Revoke(
                    crate::flows::revoke::RevokeCommand::Verify(pin.take()),
                ));
            }
            Effect::SubmitPin(PinFor::Pin) => {
                let _ = commands.send(Command::Pin(crate::flows::pin::PinCommand::Entry(
                    pin.take(),
                )));
            }
            Effect::SubmitPin(PinFor::Enrol) => {
                let _ = commands.send(Command::Enrol(crate::flows::enrol::EnrolCommand::Verify(
                    pin.take(),
                )));
            }
            Effect::SubmitPin(PinFor::NewCard) => {
                let _ = commands.send(Command::NewCard(
                    crate::flows::newcard::NewCardCommand::Entry(pin.take()),
                ));
            }
            Effect::Quit => quit = true,
        }
    }
    quit
}
