//! Credentials: reset the application's setup password (its permanent secret stops working at
//! once). The new password is shown once, large, with its expiry and a note to hand it over;
//! leaving the screen wipes it from memory.

use hsm_link::message::{AdminRequest, AdminResponse, NewCredentials};
use quorum::ceremony::Link;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use zeroize::Zeroizing;

use super::Outcome;
use crate::tui::keymap::{self, Action, Context};
use crate::tui::message::{Command, Effect, Event};
use crate::tui::model::{Level, Notice};
use crate::tui::theme::Theme;
use crate::tui::view::{self, utc_text};
use crate::tui::worker::{link_failure, refusal_text};

/// A setup password to show once: wiped when dropped, never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct ShownOnce(Zeroizing<String>);

impl ShownOnce {
    /// Wraps `text`.
    pub fn new(text: String) -> ShownOnce {
        ShownOnce(Zeroizing::new(text))
    }

    /// The text, to draw it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ShownOnce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ShownOnce(<redacted>)")
    }
}

/// The credentials screen's part of the model.
#[derive(Clone, Debug, Default)]
pub struct CredentialsFlow {
    /// Asking whether to reset.
    pub confirm: bool,
    /// The new setup password and its expiry (seconds since the epoch), shown once.
    pub shown: Option<(ShownOnce, u64)>,
    /// A reset is under way.
    pub busy: bool,
    /// The last notice.
    pub notice: Option<Notice>,
}

impl CredentialsFlow {
    /// How keys read here.
    pub fn context(&self) -> Context {
        if self.confirm {
            Context::Question
        } else {
            Context::Tables(&[keymap::CREDENTIALS, keymap::GLOBAL])
        }
    }

    /// Answers a key.
    pub fn on_action(&mut self, action: Action) -> Outcome {
        if self.confirm {
            self.confirm = false;
            if action != Action::Yes {
                return Outcome::none();
            }
            self.busy = true;
            self.notice = Some(Notice::new(Level::Info, "Resetting at the HSM…"));
            return Outcome::one(Effect::Send(Command::ResetCredentials));
        }
        match action {
            Action::Reset if !self.busy => {
                self.confirm = true;
                Outcome::none()
            }
            Action::Back => {
                // Leaving wipes the password: it is shown once.
                *self = CredentialsFlow::default();
                Outcome::Leave(Vec::new())
            }
            _ => Outcome::none(),
        }
    }

    /// Takes the worker's answer.
    pub fn on_event(&mut self, event: Event) {
        self.busy = false;
        match event {
            Event::Credentials {
                password,
                expires_unix,
            } => {
                self.shown = Some((password, expires_unix));
                self.notice = Some(Notice::new(
                    Level::Ok,
                    "New setup password issued; the application's old secret no longer works.",
                ));
            }
            Event::CredentialsRefused(reason) => {
                self.notice = Some(Notice::new(
                    Level::Error,
                    format!("Nothing changed: {reason}"),
                ));
            }
            _ => {}
        }
    }
}

/// Draws the credentials screen.
pub fn view(frame: &mut Frame, area: Rect, flow: &CredentialsFlow, theme: &Theme) {
    let [main, foot] = Layout::vertical([Constraint::Min(3), Constraint::Length(2)]).areas(area);
    let mut lines = vec![Line::from(
        "The application (the technical user) trades a setup password for its permanent secret. \
         A reset ends that secret at once and issues a new one-time setup password.",
    )];
    lines.push(Line::from(""));
    if let Some((password, expires)) = &flow.shown {
        lines.push(Line::styled("New setup password (shown once):", theme.warn));
        lines.push(Line::from(""));
        lines.push(Line::from(vec![
            Span::raw("    "),
            Span::styled(password.expose().to_owned(), theme.accent),
        ]));
        lines.push(Line::from(""));
        lines.push(Line::from(format!(
            "Expires {} UTC unless used. Hand it to the application's operator now: it is \
             not shown again, and leaving this screen wipes it.",
            utc_text(*expires)
        )));
    } else if flow.confirm {
        lines.push(Line::styled(
            "Reset the application's credentials? Its permanent secret stops working at once. \
             y: reset · n: keep",
            theme.warn,
        ));
    } else {
        lines.push(Line::styled("R: reset the setup password", theme.muted));
    }
    frame.render_widget(
        Paragraph::new(lines)
            .block(view::block("Credentials", theme))
            .wrap(Wrap { trim: true }),
        main,
    );
    if let Some(n) = &flow.notice {
        frame.render_widget(view::notice_paragraph(n, theme), foot);
    }
}

/// Resets the credentials on the worker.
pub(crate) fn work(link: &mut (dyn Link + Send)) -> Event {
    match link.admin(AdminRequest::ResetCredentials) {
        // The password moves into the wiping wrapper; it is never copied.
        Ok(AdminResponse::Credentials(NewCredentials {
            setup_password,
            expires_unix,
        })) => Event::Credentials {
            password: ShownOnce::new(setup_password),
            expires_unix,
        },
        Ok(_) => Event::Failed("the HSM gave an unexpected answer to the reset".into()),
        Err(e @ quorum::ceremony::LinkError::Failed(_)) => link_failure(e),
        Err(e) => Event::CredentialsRefused(refusal_text(&e)),
    }
}
