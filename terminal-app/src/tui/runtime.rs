//! The runtime: the only place with terminal I/O. It draws the model, turns key presses, the
//! clock and the worker's events into messages, and carries out `update`'s effects (the PIN
//! buffer lives here, outside the model).

use std::io;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

use ratatui::DefaultTerminal;
use ratatui::crossterm::event::{
    self, DisableMouseCapture, EnableMouseCapture, Event as TermEvent,
};

use super::message::{
    Command, DrillCommand, Effect, Event, LoginCommand, LoginEvent, Message, PinFor,
};
use super::model::Model;
use super::pin::PinBuffer;
use super::theme::Theme;
use super::update::update;
use super::view::view;
use super::worker::{self, Worker};

/// How often the clock ticks while nothing happens (the lock countdown, the worker's events).
const TICK: Duration = Duration::from_millis(100);

/// How a run of the TUI ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The user quit.
    Quit,
    /// The user went back to the list the TUI was opened from ([`Effect::Leave`]).
    Leave,
}

/// Runs the TUI until the user quits: `setup` builds the worker on its own thread after the
/// first frame. `ratatui::try_init` sets a panic hook that restores the terminal.
pub fn run(
    model: Model,
    setup: impl FnOnce() -> Result<Worker, String> + Send + 'static,
    theme: Theme,
) -> io::Result<()> {
    run_until(model, setup, theme).map(|_| ())
}

/// [`run`], saying how the run ended.
pub fn run_until(
    model: Model,
    setup: impl FnOnce() -> Result<Worker, String> + Send + 'static,
    theme: Theme,
) -> io::Result<Ending> {
    let (commands, command_rx) = mpsc::channel();
    let (event_tx, events) = mpsc::channel();
    tracing::info!("TUI starting");
    let mut terminal = ratatui::try_init()?;
    // A panic of the FAT library is contained by usb-backup and reported as an error: the
    // screen stays, so ratatui's hook (which restores the terminal) must not run for it.
    let restoring = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !usb_backup::drive::panic_is_contained() {
            restoring(info)
        }
    }));
    capture_mouse()?;
    let handle = worker::spawn(setup, command_rx, event_tx);
    let result = match handle {
        Ok(_) => event_loop(&mut terminal, model, &commands, &events, &theme),
        Err(e) => Err(e),
    };
    let _ = ratatui::crossterm::execute!(io::stdout(), DisableMouseCapture);
    ratatui::try_restore()?;
    // The worker ends once the command channel closes (after a final logout, if any); it is
    // not joined, so that quitting never waits on a card or an Argon2 run.
    drop(commands);
    result
}

/// Turns the mouse on, and off again on a panic before the terminal is restored (ratatui's
/// hook restores the rest).
fn capture_mouse() -> io::Result<()> {
    ratatui::crossterm::execute!(io::stdout(), EnableMouseCapture)?;
    let restore = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = ratatui::crossterm::execute!(io::stdout(), DisableMouseCapture);
        restore(info);
    }));
    Ok(())
}

/// A TEST HOOK, compiled into debug builds only (release builds have no such switch): with
/// this variable set to `after-first-frame`, the TUI panics once its first frame is drawn, so
/// that a test of the real binary sees the terminal restored and the log named after a panic
/// (terminal-app/tests/tui_panic_tmux.rs).
#[cfg(debug_assertions)]
pub(crate) const TEST_HOOK_PANIC_ENV: &str = "TESSERA_TEST_HOOK_PANIC";

#[cfg(debug_assertions)]
fn test_hook_panic() {
    if std::env::var_os(TEST_HOOK_PANIC_ENV).is_some_and(|v| v == "after-first-frame") {
        panic!("test hook {TEST_HOOK_PANIC_ENV}: a panic on purpose after the first frame");
    }
}

fn event_loop(
    terminal: &mut DefaultTerminal,
    mut model: Model,
    commands: &Sender<Command>,
    events: &Receiver<Event>,
    theme: &Theme,
) -> io::Result<Ending> {
    let start = Instant::now();
    let mut pin = PinBuffer::new();
    let mut first_frame = true;
    loop {
        // What the mouse clicks on is what was drawn last: the frame is kept (borrowed from the
        // terminal) until the input is read, not copied (a copy of every frame's buffer, 200×60
        // cells, cost more than some screens' whole view).
        let drawn = terminal.draw(|frame| view(frame, &model, theme))?;
        if first_frame {
            tracing::info!(ms = start.elapsed().as_millis(), "first frame drawn");
            first_frame = false;
            #[cfg(debug_assertions)]
            test_hook_panic();
        }
        let mut messages = Vec::new();
        if event::poll(TICK)? {
            match event::read()? {
                TermEvent::Key(key) => messages.push(Message::Key(key)),
                TermEvent::Mouse(mouse) => messages.extend(
                    super::mouse::keys_for(drawn.buffer, mouse)
                        .into_iter()
                        .map(Message::Key),
                ),
                _ => {}
            }
        }
        messages.extend(
            events
                .try_iter()
                .inspect(|e| note(e, start))
                .map(Message::Worker),
        );
        let now_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        messages.push(Message::Tick { now_ms });
        for message in messages {
            let effects = update(&mut model, message);
            if let Some(ending) = apply(effects, &mut pin, commands) {
                return Ok(ending);
            }
        }
    }
}

/// Logs what a worker event says about the session (chosen fields only: an event is never
/// logged whole, so nothing it may carry, such as a setup password, reaches the log).
fn note(event: &Event, start: Instant) {
    match event {
        Event::Ready { slots } => tracing::info!(
            ms = start.elapsed().as_millis(),
            card_slots = slots.len(),
            "worker ready"
        ),
        Event::SetupFailed(reason) => tracing::error!(%reason, "setup failed"),
        Event::LinkLost(reason) => tracing::warn!(%reason, "link lost"),
        Event::Failed(reason) => tracing::warn!(%reason, "request failed"),
        Event::Login(LoginEvent::LoggedIn { role, holders, .. }) => {
            let holders: Vec<&str> = holders.iter().map(|h| h.as_str()).collect();
            tracing::info!(?role, ?holders, "logged in");
        }
        Event::LoggedOut => tracing::info!("logged out"),
        _ => {}
    }
}

/// Carries out effects; how the TUI ends, when it should.
fn apply(effects: Vec<Effect>, pin: &mut PinBuffer, commands: &Sender<Command>) -> Option<Ending> {
    let mut ending = None;
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
            Effect::Quit => {
                tracing::info!("quit");
                ending = Some(Ending::Quit);
            }
            Effect::Leave => {
                tracing::info!("back to the partition list");
                ending = Some(Ending::Leave);
            }
        }
    }
    ending
}
