//! The paired terminals of this partition (from the Credentials screen): fingerprint, paired
//! when, last seen, this one marked; revoke one with its fingerprint's first group typed
//! (refused for this terminal, saying why); a new one-time pairing code for another terminal
//! (PSO login), shown once, large, wiped when the screen is left.
//!
//! The HSM side is `ListTerminals`, `RevokeTerminal` and `IssuePairingCode` (each logged there);
//! `tessera terminals …` and `tessera pairing-code` are the same requests from the command line.

use hsm_link::keys::Fingerprint;
use hsm_link::message::{AdminRequest, AdminResponse, OfficerRole, TerminalInfo};
use quorum::ceremony::Link;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::Outcome;
use super::credentials::ShownOnce;
use crate::tui::keymap::{self, Action, Context};
use crate::tui::message::{Command, Effect, Event};
use crate::tui::model::{Level, Notice};
use crate::tui::theme::Theme;
use crate::tui::view::{self, utc_text};
use crate::tui::worker::{link_failure, refusal_text};

/// Longest confirmation typed.
const MAX_TYPED: usize = 64;

/// A request of the terminals screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TerminalsCommand {
    /// The partition's pinned terminals.
    List,
    /// Unpin this terminal (never the one of this session: the HSM refuses it too).
    Revoke(Fingerprint),
    /// A new one-time management pairing code (an outstanding one is replaced).
    PairingCode,
}

/// What the worker answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TerminalsEvent {
    /// The pinned terminals.
    Listed(Vec<TerminalInfo>),
    /// The terminal was revoked.
    Revoked(Fingerprint),
    /// A new pairing code, to show once.
    Code(ShownOnce),
    /// The HSM refused: why.
    Refused(String),
}

/// Where the screen is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Stage {
    /// The list.
    #[default]
    List,
    /// Revoking the selected terminal: the first group of its fingerprint typed so far.
    Confirm {
        /// What was typed.
        typed: String,
    },
    /// Waiting for the HSM.
    Busy,
}

/// The terminals screen's part of the model.
#[derive(Clone, Debug, Default)]
pub struct TerminalsFlow {
    /// The terminals, as last read.
    pub terminals: Vec<TerminalInfo>,
    /// The selected row.
    pub selected: usize,
    /// Where the screen is.
    pub stage: Stage,
    /// A new pairing code, shown once.
    pub code: Option<ShownOnce>,
    /// The last notice.
    pub notice: Option<Notice>,
}

/// The first group of a fingerprint as shown, which the revocation asks to be typed.
pub fn first_group(fingerprint: &Fingerprint) -> String {
    fingerprint
        .to_string()
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

impl TerminalsFlow {
    /// Opens the screen: the list is read afresh; a code shown before is gone.
    pub fn open(&mut self) -> Vec<Effect> {
        *self = TerminalsFlow {
            stage: Stage::Busy,
            ..TerminalsFlow::default()
        };
        vec![Effect::Send(Command::Terminals(TerminalsCommand::List))]
    }

    /// How keys read here.
    pub fn context(&self) -> Context {
        match self.stage {
            Stage::Confirm { .. } => Context::Text,
            _ => Context::Tables(&[keymap::TERMINALS, keymap::NAVIGATION, keymap::GLOBAL]),
        }
    }

    /// Answers a key; `role` is the login's (a pairing code needs a PSO).
    pub fn on_action(&mut self, action: Action, role: Option<OfficerRole>) -> Outcome {
        if let Stage::Confirm { typed } = &mut self.stage {
            return match action {
                Action::Input(c) if typed.chars().count() < MAX_TYPED => {
                    typed.push(c);
                    Outcome::none()
                }
                Action::Erase => {
                    typed.pop();
                    Outcome::none()
                }
                Action::Back => {
                    self.stage = Stage::List;
                    self.notice = Some(Notice::new(Level::Info, "Nothing revoked."));
                    Outcome::none()
                }
                Action::Select => self.confirm_revoke(),
                _ => Outcome::none(),
            };
        }
        if self.stage == Stage::Busy && action != Action::Back {
            return Outcome::none();
        }
        match action {
            Action::Revoke => self.ask_revoke(),
            Action::PairingCode if role != Some(OfficerRole::Pso) => {
                self.notice = Some(Notice::new(
                    Level::Warn,
                    "A pairing code needs a PSO login: log out (o on the dashboard) and log in \
                     as PSO.",
                ));
                Outcome::none()
            }
            Action::PairingCode => {
                self.code = None;
                self.stage = Stage::Busy;
                self.notice = Some(Notice::new(Level::Info, "Asking the HSM for a code…"));
                Outcome::one(Effect::Send(Command::Terminals(
                    TerminalsCommand::PairingCode,
                )))
            }
            Action::Reload => Outcome::Stay(self.open()),
            Action::Back => {
                // Leaving wipes a code shown: it is shown once.
                *self = TerminalsFlow::default();
                Outcome::Leave(Vec::new())
            }
            _ => {
                self.selected =
                    super::step_selection(self.selected, self.terminals.len(), action, 5);
                Outcome::none()
            }
        }
    }

    fn ask_revoke(&mut self) -> Outcome {
        let Some(terminal) = self.terminals.get(self.selected) else {
            return Outcome::none();
        };
        if terminal.this_session {
            self.notice = Some(Notice::new(
                Level::Warn,
                "That is this terminal: revoking it here would lock you out mid-session. Revoke \
                 it from another paired terminal (or `tessera terminals revoke … \
                 --this-terminal`).",
            ));
            return Outcome::none();
        }
        self.notice = None;
        self.stage = Stage::Confirm {
            typed: String::new(),
        };
        Outcome::none()
    }

    fn confirm_revoke(&mut self) -> Outcome {
        let (Stage::Confirm { typed }, Some(terminal)) =
            (&self.stage, self.terminals.get(self.selected))
        else {
            return Outcome::none();
        };
        let expected = first_group(&terminal.fingerprint);
        if !typed.trim().eq_ignore_ascii_case(&expected) {
            self.notice = Some(Notice::new(
                Level::Error,
                format!("That is not {expected}: type the fingerprint's first group, or Esc."),
            ));
            self.stage = Stage::Confirm {
                typed: String::new(),
            };
            return Outcome::none();
        }
        let fingerprint = terminal.fingerprint;
        self.stage = Stage::Busy;
        self.notice = Some(Notice::new(Level::Info, "Revoking at the HSM…"));
        Outcome::one(Effect::Send(Command::Terminals(TerminalsCommand::Revoke(
            fingerprint,
        ))))
    }

    /// Takes the worker's answer.
    pub fn on_event(&mut self, event: TerminalsEvent) -> Vec<Effect> {
        self.stage = Stage::List;
        match event {
            TerminalsEvent::Listed(terminals) => {
                self.selected = self.selected.min(terminals.len().saturating_sub(1));
                self.terminals = terminals;
                Vec::new()
            }
            TerminalsEvent::Revoked(fingerprint) => {
                self.notice = Some(Notice::new(
                    Level::Ok,
                    format!(
                        "Revoked terminal {fingerprint}: its sessions ended, it can no longer \
                         connect."
                    ),
                ));
                self.stage = Stage::Busy;
                vec![Effect::Send(Command::Terminals(TerminalsCommand::List))]
            }
            TerminalsEvent::Code(code) => {
                self.code = Some(code);
                self.notice = Some(Notice::new(
                    Level::Ok,
                    "New pairing code issued; any code issued before no longer works.",
                ));
                Vec::new()
            }
            TerminalsEvent::Refused(reason) => {
                self.notice = Some(Notice::new(
                    Level::Error,
                    format!("Nothing changed: {reason}"),
                ));
                Vec::new()
            }
        }
    }
}

/// Draws the terminals screen.
pub fn view(frame: &mut Frame, area: Rect, flow: &TerminalsFlow, theme: &Theme) {
    let code_height = if flow.code.is_some() { 9 } else { 0 };
    let [list, code, foot] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(code_height),
        Constraint::Length(2),
    ])
    .areas(area);
    let mut lines = terminal_lines(flow, theme);
    lines.push(Line::from(""));
    lines.extend(prompt_lines(flow, theme));
    frame.render_widget(
        Paragraph::new(lines)
            .block(view::block("Paired terminals", theme))
            .wrap(Wrap { trim: false }),
        list,
    );
    if let Some(shown) = &flow.code {
        frame.render_widget(code_paragraph(shown, theme), code);
    }
    if let Some(n) = &flow.notice {
        frame.render_widget(view::notice_paragraph(n, theme), foot);
    }
}

/// The header and one line per paired terminal, the selected one marked.
fn terminal_lines<'a>(flow: &TerminalsFlow, theme: &Theme) -> Vec<Line<'a>> {
    let mut lines = vec![Line::styled(
        format!(
            "   {:<39} {:<16} {:<16}",
            "fingerprint", "paired", "last seen"
        ),
        theme.muted,
    )];
    for (i, t) in flow.terminals.iter().enumerate() {
        let marker = if i == flow.selected { "›" } else { " " };
        let style = if i == flow.selected {
            theme.selection
        } else {
            theme.plain
        };
        lines.push(Line::styled(
            format!(
                "{marker}{} {:<39} {:<16} {:<16}",
                if t.this_session { "◆" } else { " " },
                t.fingerprint.to_string(),
                t.paired_unix
                    .map_or_else(|| "before records".to_owned(), utc_text),
                t.last_seen_unix
                    .map_or_else(|| "never".to_owned(), utc_text),
            ),
            style,
        ));
    }
    if flow.terminals.is_empty() && flow.stage == Stage::Busy {
        lines.push(Line::styled("Reading the paired terminals…", theme.muted));
    }
    lines
}

/// Under the list: the revocation's typed confirmation, or the count and the legend.
fn prompt_lines<'a>(flow: &TerminalsFlow, theme: &Theme) -> Vec<Line<'a>> {
    match (&flow.stage, flow.terminals.get(flow.selected)) {
        (Stage::Confirm { typed }, Some(t)) => vec![
            Line::styled(
                format!(
                    "Revoke {}? Its sessions end at once and it can no longer connect.",
                    t.fingerprint
                ),
                theme.warn,
            ),
            Line::from(vec![
                Span::raw(format!(
                    "Type the first group ({}) and Enter, or Esc: ",
                    first_group(&t.fingerprint)
                )),
                Span::styled(format!("{typed}▏"), theme.accent),
            ]),
        ],
        _ => vec![Line::styled(
            format!(
                "{} paired terminals · ◆ this terminal (revoke it from another one)",
                flow.terminals.len()
            ),
            theme.muted,
        )],
    }
}

/// The new pairing code, shown once.
fn code_paragraph<'a>(shown: &ShownOnce, theme: &Theme) -> Paragraph<'a> {
    let text = vec![
        Line::styled("New one-time pairing code (shown once):", theme.warn),
        Line::from(""),
        Line::from(vec![
            Span::raw("      "),
            Span::styled(crate::cli::printable(shown.expose()), theme.accent),
        ]),
        Line::from(""),
        Line::from(
            "Valid for one pairing; three wrong tries burn it, a newer code replaces it. On \
             the other terminal: tessera pair --tcp HOST:PORT --partition ID. Leaving this \
             screen wipes it.",
        ),
    ];
    Paragraph::new(text)
        .block(view::block("Pairing code", theme))
        .wrap(Wrap { trim: false })
}

/// Runs a terminals request on the worker.
pub(crate) fn work(link: &mut (dyn Link + Send), command: TerminalsCommand) -> Event {
    let request = match command {
        TerminalsCommand::List => AdminRequest::ListTerminals,
        TerminalsCommand::Revoke(terminal) => AdminRequest::RevokeTerminal {
            terminal,
            this_terminal: false,
        },
        TerminalsCommand::PairingCode => AdminRequest::IssuePairingCode,
    };
    let event = match (command, link.admin(request)) {
        (TerminalsCommand::List, Ok(AdminResponse::Terminals { terminals })) => {
            TerminalsEvent::Listed(terminals)
        }
        (TerminalsCommand::Revoke(terminal), Ok(AdminResponse::Done)) => {
            TerminalsEvent::Revoked(terminal)
        }
        (TerminalsCommand::PairingCode, Ok(AdminResponse::PairingCode(mut code))) => {
            // The code moves into the wiping wrapper; the message's copy is wiped.
            let shown = ShownOnce::new(std::mem::take(&mut code.code));
            TerminalsEvent::Code(shown)
        }
        // Answered on the screen, which stops waiting.
        (_, Ok(_)) => TerminalsEvent::Refused("the HSM gave an unexpected answer".into()),
        (_, Err(e @ quorum::ceremony::LinkError::Failed(_))) => return link_failure(e),
        (_, Err(e)) => TerminalsEvent::Refused(refusal_text(&e)),
    };
    Event::Terminals(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terminal(first: u8, this_session: bool) -> TerminalInfo {
        let mut fp = [0u8; 32];
        fp[0] = first;
        TerminalInfo {
            fingerprint: Fingerprint(fp),
            paired_unix: Some(1_796_376_600),
            last_seen_unix: None,
            this_session,
        }
    }

    fn listed() -> TerminalsFlow {
        let mut flow = TerminalsFlow::default();
        flow.open();
        flow.on_event(TerminalsEvent::Listed(vec![
            terminal(0xab, true),
            terminal(0xcd, false),
        ]));
        flow
    }

    fn typed(flow: &mut TerminalsFlow, text: &str) {
        for c in text.chars() {
            flow.on_action(Action::Input(c), Some(OfficerRole::Pso));
        }
    }

    #[test]
    fn this_terminal_is_not_revoked_and_says_why() {
        let mut flow = listed();
        assert_eq!(
            flow.on_action(Action::Revoke, Some(OfficerRole::Pso)),
            Outcome::none()
        );
        assert_eq!(flow.stage, Stage::List);
        assert!(
            flow.notice.as_ref().unwrap().text.contains("this terminal"),
            "{:?}",
            flow.notice
        );
    }

    #[test]
    fn another_terminal_is_revoked_only_with_its_first_group_typed() {
        let mut flow = listed();
        flow.on_action(Action::Down, Some(OfficerRole::Pso));
        flow.on_action(Action::Revoke, Some(OfficerRole::Pso));
        assert_eq!(flow.context(), Context::Text);
        let target = flow.terminals[1].fingerprint;
        let group = first_group(&target);
        typed(&mut flow, "0000");
        assert_eq!(
            flow.on_action(Action::Select, Some(OfficerRole::Pso)),
            Outcome::none(),
            "a wrong group revokes nothing"
        );
        assert_eq!(flow.notice.as_ref().unwrap().level, Level::Error);
        typed(&mut flow, &group);
        assert_eq!(
            flow.on_action(Action::Select, Some(OfficerRole::Pso)),
            Outcome::one(Effect::Send(Command::Terminals(TerminalsCommand::Revoke(
                target
            ))))
        );
        let effects = flow.on_event(TerminalsEvent::Revoked(target));
        assert_eq!(
            effects,
            vec![Effect::Send(Command::Terminals(TerminalsCommand::List))]
        );
    }

    #[test]
    fn a_pairing_code_needs_a_pso_and_is_wiped_on_leaving() {
        let mut flow = listed();
        assert_eq!(
            flow.on_action(Action::PairingCode, Some(OfficerRole::Auditor)),
            Outcome::none()
        );
        assert!(flow.notice.as_ref().unwrap().text.contains("PSO login"));
        assert_eq!(
            flow.on_action(Action::PairingCode, Some(OfficerRole::Pso)),
            Outcome::one(Effect::Send(Command::Terminals(
                TerminalsCommand::PairingCode
            )))
        );
        flow.on_event(TerminalsEvent::Code(ShownOnce::new("ABCD-EFGH".into())));
        assert_eq!(flow.code.as_ref().unwrap().expose(), "ABCD-EFGH");
        assert_eq!(
            flow.on_action(Action::Back, Some(OfficerRole::Pso)),
            Outcome::Leave(Vec::new())
        );
        assert!(flow.code.is_none());
    }
}
