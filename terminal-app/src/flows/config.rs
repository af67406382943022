//! Configuration: every parameter of seed 002 §4.3 and §5.3 with its value and a one-line
//! explanation; edits staged, reviewed old → new, and applied in one request against the
//! revision read, so that the HSM applies all of them or none. Loosening changes need the
//! partition's id typed; the IP allow-list is checked as it is typed.

use hsm_link::domain::{IpAllowList, KeyExport, Parameter, ParameterChange, PartitionConfig};
use hsm_link::message::{AdminError, AdminRequest, AdminResponse};
use quorum::ceremony::Link;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Row, Table, Wrap};

use super::{Outcome, step_selection};
use crate::tui::keymap::{self, Action, Context};
use crate::tui::message::{Command, DrillView, Effect, Event};
use crate::tui::model::{Level, Model, Notice};
use crate::tui::theme::Theme;
use crate::tui::view;
use crate::tui::worker::{link_failure, refusal_text};

/// Where the configuration screen stands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Moving through the parameters, staging changes.
    #[default]
    Browse,
    /// Typing the IP allow-list; the error, if the text is not a valid list.
    AllowList {
        /// The text typed.
        text: String,
        /// Why it is not a valid list, if it is not.
        error: Option<String>,
    },
    /// The staged changes, old → new: apply?
    Review,
    /// Loosening changes: the partition's id must be typed.
    Confirm {
        /// What was typed.
        typed: String,
    },
}

/// The configuration's part of the model.
#[derive(Clone, Debug, Default)]
pub struct ConfigFlow {
    /// The configuration as read (with its revision).
    pub read: Option<PartitionConfig>,
    /// The configuration with the staged changes.
    pub staged: Option<PartitionConfig>,
    /// The selected parameter (index into [`Parameter::ALL`]).
    pub selected: usize,
    /// Where the screen stands.
    pub mode: Mode,
    /// The last notice.
    pub notice: Option<Notice>,
    /// A request is under way.
    pub busy: bool,
    /// When each PSO card last passed a drill (shown before device-SO access goes off).
    pub drills: Vec<DrillView>,
}

/// One line on what a parameter does (seed 002 §4.3).
pub fn explanation(parameter: Parameter) -> &'static str {
    match parameter {
        Parameter::ApiJce => "Applications reach the partition through JCE/JCA (Java).",
        Parameter::ApiCng => "Applications reach the partition through Microsoft CNG.",
        Parameter::ApiPkcs11 => "Applications reach the partition through PKCS#11.",
        Parameter::ApiRest => "Applications reach it through REST; all APIs off = offline.",
        Parameter::SmartKeyAttributes => "HSM-enforced multi-signature rules on keys (licensed).",
        Parameter::CryptoCurrency => "Crypto-currency functions (licensed option).",
        Parameter::KeyImport => "Keys may be imported, plain or wrapped, not only generated.",
        Parameter::KeyExport => {
            "Extractable keys may leave wrapped; plain also needs sensitive off."
        }
        Parameter::KeyInvalidation => "An application delete moves a key to the bin, not away.",
        Parameter::ReadOnly => "Applications use keys but cannot create, change or delete them.",
        Parameter::SessionObjects => "Ephemeral keys, kept encrypted outside the HSM per session.",
        Parameter::ObjectDestruction => "Keys may be deleted; off makes every delete fail.",
        Parameter::ObjectUsage => "Secret and private keys may sign, verify, encrypt, decrypt.",
        Parameter::IpAllowList => "Addresses applications may connect from; empty = any address.",
        Parameter::DeviceSoAccess => "The HSM operator's SOs may administer; off: PSOs alone.",
        Parameter::QuotaSize => "The partition's size, set by its service tier.",
        Parameter::ObjectLimit => "The most key objects, set by the service tier.",
    }
}

fn is_licensed_option(parameter: Parameter) -> bool {
    matches!(
        parameter,
        Parameter::SmartKeyAttributes | Parameter::CryptoCurrency
    )
}

impl ConfigFlow {
    /// Opens the screen: reads the configuration unless changes are staged.
    pub fn open(&mut self) -> Vec<Effect> {
        if self.changes().is_empty() {
            self.busy = true;
            vec![Effect::Send(Command::LoadConfig)]
        } else {
            Vec::new()
        }
    }

    /// The staged changes, old → new.
    pub fn changes(&self) -> Vec<ParameterChange> {
        match (&self.read, &self.staged) {
            (Some(read), Some(staged)) => read.diff(staged),
            _ => Vec::new(),
        }
    }

    /// How keys read here.
    pub fn context(&self) -> Context {
        match self.mode {
            Mode::Browse => {
                Context::Tables(&[keymap::CONFIGURATION, keymap::NAVIGATION, keymap::GLOBAL])
            }
            Mode::AllowList { .. } | Mode::Confirm { .. } => Context::Text,
            Mode::Review => Context::Question,
        }
    }

    /// Answers a key; `partition_id` is what a loosening change's confirmation must type.
    pub fn on_action(&mut self, action: Action, partition_id: &str) -> Outcome {
        match std::mem::take(&mut self.mode) {
            Mode::Browse => self.browse(action),
            Mode::AllowList { text, error } => self.allow_list(action, text, error),
            Mode::Review => match action {
                Action::Yes if self.changes().iter().any(|c| c.loosens) => {
                    self.mode = Mode::Confirm {
                        typed: String::new(),
                    };
                    Outcome::none()
                }
                Action::Yes => self.apply(),
                _ => Outcome::none(),
            },
            Mode::Confirm { mut typed } => match action {
                Action::Input(c) if typed.chars().count() < 64 => {
                    typed.push(c);
                    self.mode = Mode::Confirm { typed };
                    Outcome::none()
                }
                Action::Erase => {
                    typed.pop();
                    self.mode = Mode::Confirm { typed };
                    Outcome::none()
                }
                Action::Select if typed == partition_id => self.apply(),
                Action::Select => {
                    self.notice = Some(Notice::new(
                        Level::Error,
                        format!("Type the partition's id exactly ({partition_id}) to apply."),
                    ));
                    self.mode = Mode::Confirm { typed };
                    Outcome::none()
                }
                Action::Back => Outcome::none(),
                _ => {
                    self.mode = Mode::Confirm { typed };
                    Outcome::none()
                }
            },
        }
    }

    fn browse(&mut self, action: Action) -> Outcome {
        match action {
            Action::Back => {
                if !self.changes().is_empty() {
                    self.notice = Some(Notice::new(
                        Level::Info,
                        "Staged changes are kept until you apply (a) or undo (u) them.",
                    ));
                }
                Outcome::Leave(Vec::new())
            }
            Action::Toggle | Action::Select => {
                self.toggle(Parameter::ALL[self.selected]);
                Outcome::none()
            }
            Action::Apply if self.busy => Outcome::none(),
            Action::Apply if self.changes().is_empty() => {
                self.notice = Some(Notice::new(Level::Info, "Nothing is staged."));
                Outcome::none()
            }
            Action::Apply => {
                self.mode = Mode::Review;
                Outcome::none()
            }
            Action::Undo => {
                self.staged = self.read.clone();
                self.notice = Some(Notice::new(Level::Info, "Staged changes dropped."));
                Outcome::none()
            }
            Action::Reload => {
                self.busy = true;
                self.notice = None;
                Outcome::one(Effect::Send(Command::LoadConfig))
            }
            _ => {
                self.selected = step_selection(self.selected, Parameter::ALL.len(), action, 5);
                Outcome::none()
            }
        }
    }

    fn toggle(&mut self, parameter: Parameter) {
        let Some(c) = self.staged.as_mut() else {
            return;
        };
        let refuse = |text: &str| Some(Notice::new(Level::Warn, text));
        self.notice = None;
        match parameter {
            Parameter::ApiJce => c.api_providers.jce ^= true,
            Parameter::ApiCng => c.api_providers.cng ^= true,
            Parameter::ApiPkcs11 => c.api_providers.pkcs11 ^= true,
            Parameter::ApiRest => c.api_providers.rest ^= true,
            Parameter::SmartKeyAttributes | Parameter::CryptoCurrency => {
                let option = if parameter == Parameter::SmartKeyAttributes {
                    &mut c.ska
                } else {
                    &mut c.crypto_currency
                };
                if option.licensed || option.enabled {
                    option.enabled ^= true;
                } else {
                    self.notice = refuse(
                        "Not licensed: the HSM owner records a licence before a PSO can turn \
                         this on.",
                    );
                }
            }
            Parameter::KeyImport => c.key_import ^= true,
            Parameter::KeyExport => {
                c.key_export = match c.key_export {
                    KeyExport::Off => KeyExport::WrappedOnly,
                    KeyExport::WrappedOnly => KeyExport::WrappedAndPlain,
                    KeyExport::WrappedAndPlain => KeyExport::Off,
                }
            }
            Parameter::KeyInvalidation => c.key_invalidation ^= true,
            Parameter::ReadOnly => c.read_only ^= true,
            Parameter::SessionObjects => c.session_objects ^= true,
            Parameter::ObjectDestruction => c.object_destruction ^= true,
            Parameter::ObjectUsage => c.object_usage ^= true,
            Parameter::IpAllowList => {
                let text = if c.ip_allow_list.is_empty() {
                    String::new()
                } else {
                    c.ip_allow_list.to_string()
                };
                self.mode = Mode::AllowList { text, error: None };
            }
            Parameter::DeviceSoAccess => c.device_so_access ^= true,
            Parameter::QuotaSize | Parameter::ObjectLimit => {
                self.notice =
                    refuse("Set by the partition's service tier (the HSM owner), not by a PSO.");
            }
        }
    }

    fn allow_list(&mut self, action: Action, mut text: String, error: Option<String>) -> Outcome {
        match action {
            Action::Input(c) if text.len() < 4096 => text.push(c),
            Action::Erase => {
                text.pop();
            }
            Action::Back => return Outcome::none(),
            Action::Select => match text.parse::<IpAllowList>() {
                Ok(list) => {
                    if let Some(staged) = self.staged.as_mut() {
                        staged.ip_allow_list = list;
                    }
                    return Outcome::none();
                }
                Err(e) => {
                    self.mode = Mode::AllowList {
                        text,
                        error: Some(e.to_string()),
                    };
                    return Outcome::none();
                }
            },
            _ => {
                self.mode = Mode::AllowList { text, error };
                return Outcome::none();
            }
        }
        let error = text.parse::<IpAllowList>().err().map(|e| e.to_string());
        self.mode = Mode::AllowList { text, error };
        Outcome::none()
    }

    fn apply(&mut self) -> Outcome {
        let (Some(read), Some(staged)) = (&self.read, &self.staged) else {
            return Outcome::none();
        };
        self.busy = true;
        self.notice = Some(Notice::new(Level::Info, "Applying at the HSM…"));
        Outcome::one(Effect::Send(Command::ApplyConfig {
            expected_revision: read.revision,
            config: Box::new(staged.clone()),
        }))
    }

    /// Takes the worker's answer.
    pub fn on_event(&mut self, event: Event) -> Vec<Effect> {
        if let Event::Drills(drills) = event {
            self.drills = drills;
            return Vec::new();
        }
        self.busy = false;
        match event {
            Event::Config(config) => {
                self.read = Some((*config).clone());
                self.staged = Some(*config);
            }
            Event::ConfigApplied { revision } => {
                self.notice = Some(Notice::new(
                    Level::Ok,
                    format!("Applied as revision {revision}; the HSM logged the change."),
                ));
                self.busy = true;
                return vec![Effect::Send(Command::LoadConfig)];
            }
            Event::ConfigRefused { reason, stale } => {
                let what = match stale {
                    Some(current) => format!(
                        "Nothing was applied: the configuration changed since it was read (now \
                         revision {current}). Press r to read it again, then stage anew."
                    ),
                    None => format!("Nothing was applied: the HSM refused: {reason}"),
                };
                self.notice = Some(Notice::new(Level::Error, what));
            }
            _ => {}
        }
        Vec::new()
    }
}

/// Draws the configuration screen.
pub fn view(frame: &mut Frame, area: Rect, model: &Model, theme: &Theme) {
    let flow = &model.config;
    let [table_area, info_area] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(3)]).areas(area);
    let (Some(read), Some(staged)) = (&flow.read, &flow.staged) else {
        frame.render_widget(
            Paragraph::new("Reading the configuration…").block(view::block("Configuration", theme)),
            area,
        );
        return;
    };
    let wide = area.width >= 120;
    let rows = Parameter::ALL.iter().enumerate().map(|(i, &p)| {
        let old = read.value_text(p);
        let new = staged.value_text(p);
        let value = if old == new {
            old
        } else {
            format!("{old} → {new} *")
        };
        let mut label = p.label().to_owned();
        if is_licensed_option(p) {
            label.push_str(" (lic.)");
        }
        let mut cells = vec![
            format!("{} {label}", if i == flow.selected { "›" } else { " " }),
            value,
        ];
        if wide {
            cells.push(explanation(p).to_owned());
        }
        let row = Row::new(cells);
        if i == flow.selected {
            row.style(theme.selection)
        } else {
            row
        }
    });
    let widths: &[Constraint] = if wide {
        &[
            Constraint::Length(30),
            Constraint::Length(40),
            Constraint::Min(20),
        ]
    } else {
        &[Constraint::Length(30), Constraint::Min(10)]
    };
    let title = format!(
        "Configuration · revision {} · {} staged",
        read.revision,
        flow.changes().len()
    );
    let offset = flow
        .selected
        .saturating_sub(table_area.height.saturating_sub(3) as usize);
    let table = Table::new(rows.skip(offset), widths.iter().copied())
        .header(Row::new(["  Parameter", "Value (old → new *)", "What it does"]).style(theme.muted))
        .block(view::block(&title, theme));
    frame.render_widget(table, table_area);
    let parameter = Parameter::ALL[flow.selected];
    let info = match &flow.notice {
        Some(n) => view::notice_paragraph(n, theme),
        None => Paragraph::new(vec![Line::from(vec![
            Span::styled(format!("{}: ", parameter.label()), theme.accent),
            Span::raw(explanation(parameter)),
            Span::styled(licence_note(read, parameter), theme.muted),
        ])])
        .wrap(Wrap { trim: true }),
    };
    frame.render_widget(info, info_area);
    overlay(frame, area, flow, &model.target.partition_id, theme);
}

fn licence_note(config: &PartitionConfig, parameter: Parameter) -> &'static str {
    let option = match parameter {
        Parameter::SmartKeyAttributes => config.ska,
        Parameter::CryptoCurrency => config.crypto_currency,
        _ => return "",
    };
    if option.licensed {
        " Licensed."
    } else {
        " Not licensed: the HSM owner records licences."
    }
}

fn overlay(frame: &mut Frame, area: Rect, flow: &ConfigFlow, partition_id: &str, theme: &Theme) {
    let mut lines = Vec::new();
    let title = match &flow.mode {
        Mode::Browse => return,
        Mode::AllowList { text, error } => {
            lines.push(Line::from(
                "Addresses or networks, separated by commas; empty = any address.",
            ));
            lines.push(Line::from(vec![
                Span::styled("> ", theme.accent),
                Span::raw(text.as_str()),
                Span::styled("▏", theme.accent),
            ]));
            lines.push(match error {
                Some(e) => Line::styled(format!("✗ {e}"), theme.error),
                None => Line::styled("✓ a valid list", theme.ok),
            });
            "IP allow-list"
        }
        Mode::Review | Mode::Confirm { .. } => {
            review_lines(flow, &mut lines, theme);
            if let Mode::Confirm { typed } = &flow.mode {
                lines.push(Line::styled(
                    format!("These changes loosen the partition. Type its id ({partition_id}) and Enter:"),
                    theme.warn,
                ));
                lines.push(Line::from(vec![
                    Span::styled("> ", theme.accent),
                    Span::raw(typed.as_str()),
                    Span::styled("▏", theme.accent),
                ]));
            } else {
                lines.push(Line::styled(
                    "Apply all of these at once? y: yes · n: keep editing",
                    theme.muted,
                ));
            }
            "Review the change"
        }
    };
    let height = (view::wrapped_height(&lines, area.width.saturating_sub(2)) + 2).min(area.height);
    let [_, middle, _] = Layout::vertical([
        Constraint::Min(0),
        Constraint::Length(height),
        Constraint::Min(0),
    ])
    .areas(area);
    frame.render_widget(Clear, middle);
    frame.render_widget(
        Paragraph::new(lines)
            .block(view::block(title, theme))
            .wrap(Wrap { trim: true }),
        middle,
    );
}

fn review_lines<'a>(flow: &ConfigFlow, lines: &mut Vec<Line<'a>>, theme: &Theme) {
    let changes = flow.changes();
    for change in &changes {
        let mut spans = vec![Span::raw(change.to_string())];
        if change.loosens {
            spans.push(Span::styled("  ! loosens", theme.warn));
        }
        lines.push(Line::from(spans));
    }
    if changes
        .iter()
        .any(|c| c.parameter == hsm_link::domain::Parameter::DeviceSoAccess && c.loosens)
    {
        lines.push(Line::styled(
            "Device-SO access off: the HSM operator can no longer reset credentials or help; \
             if the PSO cards are lost, access is lost for good. Each PSO card's last passed \
             share drill:",
            theme.warn,
        ));
        for d in &flow.drills {
            let when = d.last_passed.as_deref().unwrap_or("never (drill it first)");
            lines.push(Line::from(format!("  {} {}: {when}", d.serial, d.holder)));
        }
    }
}

/// Most log pages read for the drills.
const DRILL_PAGES: usize = 20;

/// When each card of the active PSO set last passed a share drill, from the log's
/// `quorum.drill` entries (on the worker).
pub(crate) fn drills(link: &mut (dyn Link + Send)) -> Event {
    let cards = match link.admin(AdminRequest::GetCardSets) {
        Ok(AdminResponse::CardSets { pso: Some(set), .. }) => set.cards,
        Ok(_) => Vec::new(),
        Err(e) => return link_failure(e),
    };
    let mut last: std::collections::BTreeMap<String, String> = Default::default();
    let mut from = 1;
    for _ in 0..DRILL_PAGES {
        let query = hsm_link::message::LogQuery {
            operation_prefix: Some("quorum.drill".into()),
            outcome: Some(hsm_link::message::OutcomeFilter::Ok),
            ..hsm_link::message::LogQuery::from(from, 1000)
        };
        let Ok(AdminResponse::LogPage(page)) = link.admin(AdminRequest::ReadLog { query }) else {
            break;
        };
        for line in &page.lines {
            if let Ok(audit_log::LogLine::Entry(e)) =
                audit_log::LogLine::from_canonical(line.as_bytes())
                && let Some(serial) = e.object().and_then(|o| o.strip_prefix("card "))
            {
                last.insert(serial.to_owned(), view::utc_text(e.time_unix_ms() / 1000));
            }
        }
        match page.next_seq {
            Some(next) if next > from => from = next,
            _ => break,
        }
    }
    Event::Drills(
        cards
            .iter()
            .map(|c| DrillView {
                holder: c.holder.as_str().to_owned(),
                serial: c.serial.as_str().to_owned(),
                last_passed: last.get(c.serial.as_str()).cloned(),
            })
            .collect(),
    )
}

/// Reads or applies the configuration on the worker.
pub(crate) fn work(link: &mut (dyn Link + Send), command: Command) -> Event {
    match command {
        Command::LoadConfig => match link.admin(AdminRequest::GetConfig) {
            Ok(AdminResponse::Config(config)) => Event::Config(config),
            Ok(_) => Event::Failed("the HSM gave an unexpected answer to config".into()),
            Err(e) => link_failure(e),
        },
        Command::ApplyConfig {
            expected_revision,
            config,
        } => match link.admin(AdminRequest::ChangeConfig {
            expected_revision,
            config,
        }) {
            Ok(AdminResponse::ConfigChanged { revision }) => Event::ConfigApplied { revision },
            Ok(_) => Event::Failed("the HSM gave an unexpected answer to the change".into()),
            Err(e) => match e.admin_error() {
                Some(AdminError::StaleRevision { current }) => Event::ConfigRefused {
                    reason: refusal_text(&e),
                    stale: Some(*current),
                },
                Some(_) => Event::ConfigRefused {
                    reason: refusal_text(&e),
                    stale: None,
                },
                None => link_failure(e),
            },
        },
        _ => Event::Failed("not a configuration command".into()),
    }
}
