//! The dashboard: the partition at a glance (HSM, tier, quota and objects, the bin, the link,
//! who is logged in, the log's head and checkpoint, time left before the lock) beside the
//! menu.

use hsm_link::domain::MB;
use hsm_link::message::{AdminRequest, AdminResponse, FullLogPolicy, LogSpace, LogStatus};
use quorum::ceremony::LinkError;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Gauge, Paragraph, Wrap};

use crate::tui::message::{Event, StatusView};
use crate::tui::model::{LinkState, MENU, Model};
use crate::tui::theme::Theme;
use crate::tui::view::{self, duration_text};
use crate::tui::worker::{Worker, link_failure};

/// The dashboard's part of the model.
#[derive(Clone, Debug, Default)]
pub struct DashboardFlow {
    /// What was read last.
    pub status: Option<StatusView>,
    /// The log's fill level from the login answer, when the HSM warned.
    pub log_warning: Option<LogSpace>,
}

/// `1.2 MB` (decimal megabytes, as the seed counts) or `532 bytes`.
pub fn size_text(bytes: u64) -> String {
    if bytes >= MB / 10 {
        format!("{:.1} MB", bytes as f64 / MB as f64)
    } else {
        format!("{bytes} bytes")
    }
}

/// Draws the dashboard.
pub fn view(frame: &mut Frame, area: Rect, model: &Model, theme: &Theme) {
    let [menu_area, info_area] = if area.width >= 60 {
        Layout::horizontal([Constraint::Length(26), Constraint::Min(20)]).areas(area)
    } else {
        Layout::vertical([
            Constraint::Length(MENU.len() as u16 + 2),
            Constraint::Min(1),
        ])
        .areas(area)
    };
    let lines: Vec<Line> = MENU
        .iter()
        .enumerate()
        .map(|(i, entry)| view::menu_line(i + 1, entry.title, i == model.menu, theme))
        .collect();
    frame.render_widget(
        Paragraph::new(lines).block(view::block("Menu", theme)),
        menu_area,
    );
    let block = view::block("Partition", theme);
    let inner = block.inner(info_area);
    frame.render_widget(block, info_area);
    let Some(status) = &model.dashboard.status else {
        frame.render_widget(Paragraph::new("Reading the partition…"), inner);
        return;
    };
    let [top, gauge, rest] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(1),
        Constraint::Min(1),
    ])
    .areas(inner);
    let t = &model.target;
    frame.render_widget(
        Paragraph::new(vec![
            Line::from(format!("{} ({})", t.partition_name, t.partition_id)),
            Line::styled(format!("HSM {} · tier {}", t.hsm_id, t.tier), theme.muted),
        ]),
        top,
    );
    let quota = status.config.quota.size_bytes.max(1);
    let used = status.usage.bytes_used;
    let ratio = (used as f64 / quota as f64).clamp(0.0, 1.0);
    frame.render_widget(
        Gauge::default()
            .gauge_style(theme.accent)
            .ratio(ratio)
            .label(format!(
                "size {} of {} ({:.0} %)",
                size_text(used),
                size_text(quota),
                ratio * 100.0
            )),
        gauge,
    );
    frame.render_widget(
        Paragraph::new(detail_lines(model, status, theme)).wrap(Wrap { trim: true }),
        rest,
    );
}

fn detail_lines<'a>(model: &'a Model, status: &'a StatusView, theme: &Theme) -> Vec<Line<'a>> {
    let usage = &status.usage;
    let limit = match status.config.quota.object_limit {
        Some(limit) => format!("of {limit}"),
        None => "(no object limit)".to_owned(),
    };
    let label = |text: &'static str| Span::styled(format!("{text:<12}"), theme.muted);
    let link = match &model.link {
        LinkState::Up => Span::styled("✓ up", theme.ok),
        LinkState::Connecting => Span::raw("connecting"),
        LinkState::Lost(why) => Span::styled(format!("✗ lost: {why}"), theme.error),
    };
    let who = match &model.session {
        Some(s) => format!(
            "{}: {}",
            crate::flows::login::role_name(s.role),
            s.holders
                .iter()
                .map(|h| h.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => "nobody".to_owned(),
    };
    let head = match (status.log_head, status.last_checkpoint) {
        (Some(head), Some(cp)) => format!("entry #{head}, last checkpoint #{cp}"),
        (Some(head), None) => format!("entry #{head}, no checkpoint read yet"),
        _ => "empty".to_owned(),
    };
    let (unexported, log_limit) = match &status.log_status {
        Some(log) => log_lines(log, theme),
        None => {
            let space = status.log_space.or(model.dashboard.log_warning);
            let text = match space {
                Some(s) => format!("{} of {} entries stored", s.unexported, s.entries),
                None => "this HSM does not report its log status".to_owned(),
            };
            (Span::raw(text), Span::styled("—", theme.muted))
        }
    };
    let lock = model
        .lock_in_ms()
        .map_or("—".to_owned(), |ms| duration_text(ms / 1000));
    vec![
        Line::from(vec![
            label("Objects"),
            Span::raw(format!(
                "{} used {limit}, {} active",
                usage.objects_used,
                usage.active_objects()
            )),
        ]),
        Line::from(vec![
            label("Bin"),
            Span::raw(format!("{} keys", usage.invalidated_objects)),
        ]),
        Line::from(vec![
            label("Link"),
            link,
            Span::styled(format!(" · {}", model.target.transport), theme.muted),
        ]),
        Line::from(vec![label("Logged in"), Span::raw(who)]),
        Line::from(vec![label("Log head"), Span::raw(head)]),
        Line::from(vec![label("Unexported"), unexported]),
        Line::from(vec![label("Log limit"), log_limit]),
        Line::from(vec![label("Locks in"), Span::raw(lock)]),
        crate::flows::backup::dashboard_line(model, theme),
    ]
}

/// The log's fill level (in percent of what ordinary operations may fill) from which the
/// dashboard warns: time to export before the full-log policy applies.
pub const LOG_WARN_PERCENT: u64 = 80;

/// "entries not yet exported: N", and the limit with the policy, warning from
/// [`LOG_WARN_PERCENT`].
fn log_lines<'a>(log: &LogStatus, theme: &Theme) -> (Span<'a>, Span<'a>) {
    let percent = log.percent_full();
    let unexported = Span::raw(format!("entries not yet exported: {}", log.unexported));
    let when_full = match log.when_full {
        FullLogPolicy::Refuse => "refuse",
        FullLogPolicy::PruneConfirmed => "prune exported",
    };
    let limit = format!(
        "{} of {} entries ({percent} %) · when full: {when_full}",
        log.entries,
        log.usable()
    );
    let limit = if percent >= LOG_WARN_PERCENT {
        Span::styled(format!("⚠ {limit} · export now"), theme.warn)
    } else {
        Span::raw(limit)
    };
    (unexported, limit)
}

/// Keeps the status read and takes the HSM's id and the partition's tier from it when the HSM
/// reported them (a paired HSM's target does not know them until then).
pub(crate) fn on_status(model: &mut Model, status: StatusView) {
    if let Some(log) = &status.log_status {
        model.target.hsm_id = log.hsm_id();
        model.target.tier = log.tier.as_str().to_owned();
    }
    model.dashboard.status = Some(status);
}

/// Reads usage, configuration, the log's status and its head on the worker.
pub(crate) fn work(worker: &mut Worker) -> Event {
    let usage = match worker.admin(AdminRequest::GetUsage) {
        Ok(AdminResponse::Usage(usage)) => usage,
        Ok(_) => return Event::Failed("the HSM gave an unexpected answer to usage".into()),
        Err(e) => return link_failure(e),
    };
    let config = match worker.admin(AdminRequest::GetConfig) {
        Ok(AdminResponse::Config(config)) => *config,
        Ok(_) => return Event::Failed("the HSM gave an unexpected answer to config".into()),
        Err(e) => return link_failure(e),
    };
    // An HSM that does not know the request (or a role the table refuses) leaves the field
    // empty; a lost link ends the read.
    let log_status = match worker.admin(AdminRequest::GetLogStatus) {
        Ok(AdminResponse::LogStatus(log)) => Some(log),
        Ok(_) | Err(LinkError::Refused(_)) => None,
        Err(e) => return link_failure(e),
    };
    let head = crate::flows::logs::read_head(worker);
    Event::Status(Box::new(StatusView {
        usage,
        config,
        log_head: head.head,
        last_checkpoint: head.last_checkpoint,
        log_space: head.space,
        log_status,
    }))
}
