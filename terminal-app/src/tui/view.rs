//! The pure view: the model in, a frame out. Header (where and who), the screen, a notice line
//! and the footer's key hints (read from the key maps), and the overlays on top.

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::keymap::{self, Context};
use super::model::{Level, LinkState, Model, Notice, Overlay, ROLES, Screen};
use super::theme::Theme;
use super::update::context;
use crate::flows::{self, login::role_name};

/// Draws the whole screen.
pub fn view(frame: &mut Frame, model: &Model, theme: &Theme) {
    let [header, body, notice, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    frame.render_widget(header_line(model, theme), header);
    match model.screen {
        Screen::Welcome => welcome(frame, body, model, theme),
        Screen::Login => flows::login::view(frame, body, &model.login, model.now_ms, theme),
        Screen::Dashboard => flows::dashboard::view(frame, body, model, theme),
        Screen::Configuration => flows::config::view(frame, body, model, theme),
        Screen::Keys => flows::keys::view(frame, body, &model.keys, theme),
        Screen::Bin => flows::keys::view(frame, body, &model.bin, theme),
        Screen::Logs | Screen::LogExport => flows::logs::view(frame, body, &model.logs, theme),
        Screen::Credentials => flows::credentials::view(frame, body, &model.credentials, theme),
        Screen::Cards => flows::drill::view(frame, body, &model.drill, &model.login.slots, theme),
        Screen::Revoke => {
            flows::revoke::view(frame, body, &model.revoke, &model.login.slots, theme)
        }
        Screen::Pin => flows::pin::view(frame, body, &model.pin, &model.login.slots, theme),
        Screen::Enrol => flows::enrol::view(frame, body, &model.enrol, &model.login.slots, theme),
        Screen::NewCard => {
            flows::newcard::view(frame, body, &model.newcard, &model.login.slots, theme)
        }
        Screen::Reshare => {
            flows::reshare::view(frame, body, &model.reshare, &model.login.slots, theme)
        }
        Screen::Backup => flows::backup::view(frame, body, model, theme),
        Screen::Terminals => flows::terminals::view(frame, body, &model.terminals, theme),
        Screen::Firmware => flows::firmware::view(frame, body, &model.firmware, theme),
    }
    if let Some(n) = &model.notice {
        frame.render_widget(notice_paragraph(n, theme), notice);
    }
    frame.render_widget(footer_line(context(model), footer.width, theme), footer);
    match &model.overlay {
        None => {}
        Some(Overlay::Help) => help(frame, model, theme),
        Some(Overlay::ConfirmQuit) => dialog(
            frame,
            "Quit?",
            &[
                "You are logged in. Quitting ends the login at the HSM.",
                "",
                "y: log out and quit · n or Esc: stay",
            ],
            theme,
        ),
        Some(Overlay::Locked { idle_secs }) => dialog(
            frame,
            "Session locked",
            &[
                &format!(
                    "The session was idle for {} and is locked: the login at the HSM has ended.",
                    duration_text(*idle_secs)
                ),
                "",
                "Log in again with the quorum's cards. Esc: close",
            ],
            theme,
        ),
    }
}

fn header_line<'a>(model: &'a Model, theme: &Theme) -> Line<'a> {
    let who = match &model.session {
        Some(s) => format!(
            "{}: {}",
            role_name(s.role),
            s.holders
                .iter()
                .map(|h| h.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => "not logged in".to_owned(),
    };
    let link = match &model.link {
        LinkState::Connecting => "link: connecting",
        LinkState::Up => "link: up",
        LinkState::Lost(_) => "link: LOST",
    };
    let mut spans = vec![
        Span::styled(" Tessera ", theme.accent),
        Span::raw(format!("· {} · {who} · {link}", model.target.partition_id)),
    ];
    if let Some(ms) = model.lock_in_ms() {
        spans.push(Span::raw(format!(
            " · lock in {}",
            duration_text(ms / 1000)
        )));
    }
    Line::from(spans)
}

/// `4:05` for 245 seconds.
pub fn duration_text(secs: u64) -> String {
    format!("{}:{:02}", secs / 60, secs % 60)
}

/// The footer's hints; when they do not fit, the screen's own hints give way from the right,
/// so that help, back and quit always show.
fn footer_line(context: Context, width: u16, theme: &Theme) -> Line<'static> {
    let mut hints = keymap::footer_hints(context);
    let global: Vec<_> = keymap::footer_hints(Context::Tables(&[keymap::GLOBAL]));
    let len = |hints: &[(&str, &str)]| -> usize {
        hints
            .iter()
            .map(|(k, h)| k.chars().count() + h.chars().count() + 3)
            .sum()
    };
    while len(&hints) > usize::from(width) {
        match hints.iter().rposition(|h| !global.contains(h)) {
            Some(i) => {
                hints.remove(i);
            }
            None => break,
        }
    }
    let mut spans = Vec::new();
    for (keys, hint) in hints {
        spans.push(Span::styled(format!(" {keys}"), theme.accent));
        spans.push(Span::styled(format!(" {hint} "), theme.muted));
    }
    Line::from(spans)
}

/// A bordered block with a title.
pub fn block<'a>(title: &'a str, theme: &Theme) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(format!(" {title} "), theme.accent))
}

/// A notice with its level in words (`error: …`), so it reads without colour.
pub fn notice_paragraph<'a>(notice: &'a Notice, theme: &Theme) -> Paragraph<'a> {
    let style = level_style(notice.level, theme);
    let mark = match notice.level {
        Level::Info => "·",
        Level::Ok => "✓",
        Level::Warn => "!",
        Level::Error => "✗",
    };
    Paragraph::new(Line::from(vec![
        Span::styled(format!("{mark} {}: ", notice.level.tag()), style),
        Span::raw(notice.text.as_str()),
    ]))
    .wrap(Wrap { trim: true })
}

/// The style of a level.
pub fn level_style(level: Level, theme: &Theme) -> Style {
    match level {
        Level::Info => theme.plain,
        Level::Ok => theme.ok,
        Level::Warn => theme.warn,
        Level::Error => theme.error,
    }
}

/// A numbered menu line; the selected one is marked `›` and in the selection style.
pub fn menu_line<'a>(number: usize, label: &str, selected: bool, theme: &Theme) -> Line<'a> {
    let marker = if selected { "›" } else { " " };
    let style = if selected {
        theme.selection
    } else {
        theme.plain
    };
    Line::styled(format!("{marker} {number} {label}"), style)
}

fn welcome(frame: &mut Frame, area: Rect, model: &Model, theme: &Theme) {
    let t = &model.target;
    let [about, roles, cards] = Layout::vertical([
        Constraint::Length(5),
        Constraint::Length(5),
        Constraint::Min(3),
    ])
    .areas(area);
    let link = match &model.link {
        LinkState::Connecting if model.paired.reconnect => {
            Span::styled("… connecting to the HSM", theme.muted)
        }
        LinkState::Connecting => Span::styled(
            model
                .setup_note
                .as_deref()
                .unwrap_or("… setting up the demo HSM and its soft cards (a few seconds)"),
            theme.muted,
        ),
        LinkState::Up => Span::styled("✓ connected", theme.ok),
        LinkState::Lost(why) if model.paired.reconnect => Span::styled(
            format!("✗ link lost: {why} — Enter connects again"),
            theme.error,
        ),
        LinkState::Lost(why) => Span::styled(format!("✗ link lost: {why}"), theme.error),
    };
    let about_lines = vec![
        Line::from(format!(
            "Partition {} ({}) · tier {}",
            t.partition_name, t.partition_id, t.tier
        )),
        Line::from(format!("HSM {} · key {}", t.hsm_id, t.hsm_fingerprint)),
        Line::from(vec![
            link,
            Span::styled(format!(" · {}", t.transport), theme.muted),
        ]),
    ];
    frame.render_widget(
        Paragraph::new(about_lines)
            .block(block("Tessera terminal", theme))
            .wrap(Wrap { trim: true }),
        about,
    );
    let role_lines: Vec<Line> = ROLES
        .iter()
        .enumerate()
        .map(|(i, (_, label))| menu_line(i + 1, label, i == model.menu, theme))
        .collect();
    frame.render_widget(
        Paragraph::new(role_lines).block(block("Log in", theme)),
        roles,
    );
    let mut card_lines = Vec::new();
    for c in &model.demo_cards {
        card_lines.push(Line::from(vec![
            Span::raw(format!("{:<8} {:<14}", c.set, c.holder)),
            Span::styled(format!("soft card {:<10}", c.serial), theme.soft_card),
            Span::raw(format!(" PIN {}", c.pin)),
        ]));
    }
    if model.partition_list {
        card_lines.push(Line::styled(
            "Esc: back to the demo HSM's partitions · c: Cards (no login needed)",
            theme.muted,
        ));
    }
    if !card_lines.is_empty() {
        frame.render_widget(
            Paragraph::new(card_lines)
                .block(block(
                    "Demo soft cards (this demo only; their PINs are public)",
                    theme,
                ))
                .wrap(Wrap { trim: true }),
            cards,
        );
    }
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let [row] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [cell] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(Flex::Center)
        .areas(row);
    cell
}

fn dialog(frame: &mut Frame, title: &str, lines: &[&str], theme: &Theme) {
    let text: Vec<Line> = lines.iter().map(|l| Line::from(l.to_string())).collect();
    let width = frame.area().width.min(60);
    let area = centered(
        frame.area(),
        width,
        wrapped_height(&text, width.saturating_sub(2)) + 2,
    );
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(text)
            .block(block(title, theme))
            .wrap(Wrap { trim: true }),
        area,
    );
}

fn help(frame: &mut Frame, model: &Model, theme: &Theme) {
    let screen_context = super::update::screen_context(model);
    let bindings: Vec<_> = screen_context
        .tables()
        .iter()
        .flat_map(|table| table.iter())
        .collect();
    // Two bindings a line, so that every key of a screen fits at 80×24.
    let mut lines: Vec<Line> = bindings
        .chunks(2)
        .map(|pair| {
            let mut spans = Vec::new();
            for b in pair {
                spans.push(Span::styled(format!("{:>7} ", b.label), theme.accent));
                spans.push(Span::raw(format!("{:<18}", b.hint)));
            }
            Line::from(spans)
        })
        .collect();
    lines.push(Line::styled(
        "Esc backs out; q quits (asking while logged in).",
        theme.muted,
    ));
    let area = centered(frame.area(), 56, lines.len() as u16 + 2);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines).block(block("Keys here (? or Esc closes)", theme)),
        area,
    );
}

/// Rows `lines` take when wrapped at `width` columns (at least one per line).
pub fn wrapped_height(lines: &[Line], width: u16) -> u16 {
    let width = usize::from(width.max(1));
    let rows: usize = lines.iter().map(|l| l.width().div_ceil(width).max(1)).sum();
    u16::try_from(rows).unwrap_or(u16::MAX)
}

/// `2026-12-04 09:30` (UTC) for seconds since the Unix epoch.
pub fn utc_text(unix_secs: u64) -> String {
    let days = unix_secs / 86_400;
    let rem = unix_secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_text_matches_known_dates() {
        assert_eq!(utc_text(0), "1970-01-01 00:00");
        // 2000-02-29 12:34:56 UTC
        assert_eq!(utc_text(951_827_696), "2000-02-29 12:34");
        // 2026-12-04 09:30:00 UTC
        assert_eq!(utc_text(1_796_376_600), "2026-12-04 09:30");
    }
}
