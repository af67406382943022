//! The Firmware screen's view part: the device, the images with their checks, the next step.

use super::*;

/// Draws the Firmware screen: the device above, the images and the selected one's checks
/// below (one line each, clipped; a refusal's whole reason follows them), a gauge while
/// installing.
pub fn view(frame: &mut Frame, area: Rect, flow: &FirmwareFlow, theme: &Theme) {
    let device = device_lines(flow, theme);
    let height = view::wrapped_height(&device, area.width.saturating_sub(2)) + 2;
    let notice = flow
        .notice
        .as_ref()
        .map(|n| view::notice_paragraph(n, theme));
    let notice_rows = match &flow.notice {
        Some(n) => (n.text.chars().count() + 10)
            .div_ceil(usize::from(area.width.max(1)))
            .min(3) as u16,
        None => 0,
    };
    let [top, bottom, foot] = Layout::vertical([
        Constraint::Length(height.min(area.height / 2)),
        Constraint::Min(3),
        Constraint::Length(notice_rows),
    ])
    .areas(area);
    frame.render_widget(
        Paragraph::new(device)
            .block(view::block("Firmware: this terminal", theme))
            .wrap(Wrap { trim: false }),
        top,
    );
    let title = "Update images on the drives (*.tsfw), verified before any install";
    let inner = view::block(title, theme).inner(bottom);
    frame.render_widget(view::block(title, theme), bottom);
    let list = image_lines(flow, theme);
    let gauge_rows = u16::from(matches!(flow.stage, Stage::Installing { .. }));
    let [list_area, step_area, gauge] = Layout::vertical([
        Constraint::Length(list.len().try_into().unwrap_or(u16::MAX)),
        Constraint::Min(0),
        Constraint::Length(gauge_rows),
    ])
    .areas(inner);
    frame.render_widget(Paragraph::new(list), list_area);
    frame.render_widget(
        Paragraph::new(next_step(flow, theme)).wrap(Wrap { trim: false }),
        step_area,
    );
    if let Stage::Installing { done, total } = flow.stage {
        let ratio = if total == 0 {
            0.0
        } else {
            (done as f64 / total as f64).clamp(0.0, 1.0)
        };
        frame.render_widget(
            Gauge::default()
                .gauge_style(theme.accent)
                .ratio(ratio)
                .label(format!(
                    "writing the inactive slot: {done} of {total} bytes ({:.0} %)",
                    ratio * 100.0
                )),
            gauge,
        );
    }
    if let Some(notice) = notice {
        frame.render_widget(notice, foot);
    }
}

fn device_lines(flow: &FirmwareFlow, theme: &Theme) -> Vec<Line<'static>> {
    let d = match &flow.device {
        None => return vec![Line::styled("Reading the device…", theme.muted)],
        Some(Err(why)) => return vec![Line::styled(why.clone(), theme.warn)],
        Some(Ok(d)) => d,
    };
    let current = d.version(d.active).unwrap_or("unreadable");
    let mut lines = vec![Line::from(vec![
        Span::styled(format!("Version {current}"), theme.accent),
        Span::raw(format!(
            " (slot {}) · hardware {} · release keys {} of {}",
            d.active, d.hardware_id, d.keys.0, d.keys.1
        )),
    ])];
    for s in &d.slots {
        let what = match (&s.version, &s.unreadable) {
            (Some(v), _) => format!(
                "{v}, rollback index {}",
                s.rollback_index.unwrap_or_default()
            ),
            (None, Some(why)) => format!("unreadable: {why}"),
            (None, None) => "no image".to_owned(),
        };
        lines.push(Line::from(format!(
            "Slot {}  {:<8} {what}",
            s.letter, s.role
        )));
    }
    lines.push(state_line(d, theme));
    lines.push(Line::from(format!(
        "Rollback floor {}: images with a lower index are refused.",
        d.rollback_floor
    )));
    lines
}

/// Confirmed, pending or on trial, and what the next start does.
fn state_line(d: &DeviceView, theme: &Theme) -> Line<'static> {
    let Some(p) = d.pending else {
        return Line::styled(
            format!("✓ confirmed: slot {} starts; nothing pending.", d.active),
            theme.ok,
        );
    };
    let version = d.version(p).unwrap_or("?");
    let text = if d.boot_attempts == 0 {
        format!(
            "! pending: slot {p} ({version}) starts on trial at the next start and must confirm \
             within {MAX_BOOT_ATTEMPTS} starts; otherwise slot {} starts again. The floor rises \
             only on confirmation.",
            d.active
        )
    } else {
        format!(
            "! on trial: slot {p} ({version}), start {} of {MAX_BOOT_ATTEMPTS}; c confirms it \
             once healthy, else slot {} starts again after {MAX_BOOT_ATTEMPTS} starts.",
            d.boot_attempts, d.active
        )
    };
    Line::styled(text, theme.warn)
}

fn image_lines(flow: &FirmwareFlow, theme: &Theme) -> Vec<Line<'static>> {
    if flow.stage == Stage::Reading && flow.images.is_empty() {
        return vec![Line::styled(
            "Reading the drives and verifying the images…",
            theme.muted,
        )];
    }
    if flow.images.is_empty() {
        return vec![Line::styled(
            "No update image (*.tsfw) on the drives. Put one on a drive; r reads again.",
            theme.muted,
        )];
    }
    let mut lines: Vec<Line> = flow
        .images
        .iter()
        .enumerate()
        .map(|(i, image)| {
            let (mark, style) = if image.passed {
                ("✓ verified", theme.ok)
            } else {
                ("✗ refused", theme.error)
            };
            let selected = i == flow.selected;
            Line::from(vec![
                Span::styled(
                    format!("{} {}", if selected { "›" } else { " " }, image.name),
                    if selected {
                        theme.selection
                    } else {
                        theme.plain
                    },
                ),
                Span::raw("  "),
                Span::styled(mark, style),
            ])
        })
        .collect();
    let Some(image) = flow.images.get(flow.selected) else {
        return lines;
    };
    for c in &image.checks {
        let (mark, style, detail) = match c.mark {
            Mark::Ok => ("✓", theme.ok, c.detail.clone()),
            Mark::Failed(name) => ("✗", theme.error, format!("FAILED {name}: {}", c.detail)),
            Mark::NotRun => ("·", theme.muted, format!("not run: {}", c.detail)),
        };
        lines.push(Line::from(vec![
            Span::styled(format!("  {mark} "), style),
            Span::raw(format!("{:<15}", c.label)),
            Span::styled(
                detail,
                if c.mark == Mark::Ok {
                    theme.plain
                } else {
                    style
                },
            ),
        ]));
    }
    lines
}

/// Under the checks: why the image is refused (whole), or the question, or its files and the
/// install hint.
fn next_step(flow: &FirmwareFlow, theme: &Theme) -> Vec<Line<'static>> {
    if flow.stage == Stage::AskConfirm {
        return vec![Line::styled(
            "Confirm the update on trial as healthy? Its slot becomes active and the rollback \
             floor rises to its index: older images are refused from then on. y: confirm · n: \
             not now",
            theme.warn,
        )];
    }
    let Some(image) = flow.images.get(flow.selected) else {
        return Vec::new();
    };
    if let Some(why) = &image.error {
        return vec![Line::styled(format!("Unreadable: {why}"), theme.error)];
    }
    if !image.passed {
        let reason = image
            .checks
            .iter()
            .find_map(|c| match c.mark {
                Mark::Failed(name) => Some(format!("{} ({name}): {}", c.label, c.detail)),
                _ => None,
            })
            .unwrap_or_default();
        return vec![Line::styled(
            format!("Refused, {reason}. Nothing from this image can be installed."),
            theme.error,
        )];
    }
    let target = flow
        .device()
        .map_or('?', |d| if d.active == 'A' { 'B' } else { 'A' });
    let version = image.version.clone().unwrap_or_default();
    if flow.stage == Stage::AskInstall {
        return vec![Line::styled(
            format!(
                "Install {version} to slot {target}? The device verifies it again first. y: \
                 install · n: not now"
            ),
            theme.warn,
        )];
    }
    let files: Vec<String> = image
        .files
        .iter()
        .map(|f| {
            let x = if f.executable { ", executable" } else { "" };
            format!("{} ({} B{x})", f.path, f.size)
        })
        .collect();
    vec![
        Line::from(format!("  Files: {}", files.join(", "))),
        Line::styled(
            format!("i installs {version} to slot {target}."),
            theme.accent,
        ),
    ]
}
