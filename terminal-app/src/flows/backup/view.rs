//! The Backup screen as drawn, step by step, and its line on the dashboard.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Gauge, Paragraph, Wrap};

use super::{BackupFlow, BackupView, Check, CreatedView, DriveView, KEEP_NEWEST, Step};
use crate::cli::backup::Drive;
use crate::flows::dashboard::size_text;
use crate::tui::model::Model;
use crate::tui::theme::Theme;
use crate::tui::view::{self, duration_text, utc_text};

/// `8.0 GB`, `3.4 MB`, `532 bytes`.
fn bytes_text(bytes: u64) -> String {
    if bytes >= 1_000_000_000 {
        format!("{:.1} GB", bytes as f64 / 1e9)
    } else {
        size_text(bytes)
    }
}

/// The dashboard's line: the last backup this terminal verified on a drive, and where.
pub fn dashboard_line<'a>(model: &Model, theme: &Theme) -> Line<'a> {
    let text = match &model.backup.last_verified {
        Some(last) if last.partition == model.target.partition_id => format!(
            "{} UTC, verified, on {}",
            utc_text(last.time_unix),
            last.drive
        ),
        _ => "none verified by this terminal".to_owned(),
    };
    Line::from(vec![
        Span::styled(format!("{:<12}", "Last backup"), theme.muted),
        Span::raw(text),
    ])
}

/// Draws the Backup screen.
pub fn view(frame: &mut Frame, area: Rect, model: &Model, theme: &Theme) {
    let flow = &model.backup;
    let block = view::block("Backup", theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [main, notice] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(inner);
    match &flow.step {
        Step::Writing {
            written,
            total,
            elapsed_ms,
        } => writing(frame, main, flow, (*written, *total, *elapsed_ms), theme),
        Step::DryRun {
            file_name,
            sent,
            total,
            elapsed_ms,
        } => uploading(frame, main, file_name, (*sent, *total, *elapsed_ms), theme),
        step => {
            let lines = match step {
                Step::Drives => drive_lines(model, theme),
                Step::Verifying { total } => verifying_lines(*total, theme),
                Step::Created(c) => created_lines(c, theme),
                Step::CreateFailed(why) => failed_lines(why, theme),
                Step::Backups => backup_lines(flow, theme),
                _ => restore_lines(model, theme),
            };
            frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), main);
        }
    }
    if let Some(n) = &flow.notice {
        frame.render_widget(view::notice_paragraph(n, theme), notice);
    }
}

fn drive_lines<'a>(model: &Model, theme: &Theme) -> Vec<Line<'a>> {
    let flow = &model.backup;
    let mut lines = vec![
        Line::from(
            "Choose a drive (Space), or two to mirror, then c: the HSM seals the partition, \
             each copy is read back and verified. Enter lists a drive's backups (restore).",
        ),
        Line::from(""),
    ];
    if flow.drives.is_empty() {
        lines.push(Line::styled("Looking for drives…", theme.muted));
    }
    for (i, d) in flow.drives.iter().enumerate() {
        lines.extend(drive_line(flow, i, d, theme));
    }
    if let Some(note) = &flow.scan_note {
        lines.push(Line::styled(note.clone(), theme.muted));
    }
    lines.push(Line::from(""));
    lines.push(dashboard_line(model, theme));
    lines.push(Line::styled(
        format!(
            "After a verified write the newest {KEEP_NEWEST} backups of this partition stay on \
             the drive; older ones are removed. Drives are rescanned every second."
        ),
        theme.muted,
    ));
    lines
}

fn drive_line<'a>(flow: &BackupFlow, i: usize, d: &DriveView, theme: &Theme) -> Vec<Line<'a>> {
    let selected = i == flow.cursor;
    let marker = if selected { "›" } else { " " };
    let chosen = match &d.drive {
        Some(drive) if flow.chosen.contains(drive) => "[x]",
        Some(_) => "[ ]",
        None => " ✗ ",
    };
    let style = if selected {
        theme.selection
    } else {
        theme.plain
    };
    let free = match (&d.drive, d.free) {
        (_, Some(f)) => format!("{} free", bytes_text(f)),
        (Some(Drive::Fat(_)), None) => "FAT in user space, never mounted".to_owned(),
        _ => "free space unknown".to_owned(),
    };
    let mut lines = vec![Line::from(vec![
        Span::styled(format!("{marker} {chosen} {}", d.label), style),
        Span::raw(if d.refused.is_none() {
            format!("  {free}")
        } else {
            String::new()
        }),
        Span::styled(format!("  {}", d.detail), theme.muted),
    ])];
    if let Some(why) = &d.refused {
        lines.push(Line::styled(format!("      refused: {why}"), theme.error));
    }
    lines
}

fn writing(frame: &mut Frame, area: Rect, flow: &BackupFlow, at: (u64, u64, u64), theme: &Theme) {
    let (written, total, elapsed_ms) = at;
    let [top, gauge, rest] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Length(1),
        Constraint::Min(1),
    ])
    .areas(area);
    let to: Vec<String> = flow.chosen.iter().map(Drive::shown).collect();
    frame.render_widget(
        Paragraph::new(vec![
            Line::from(format!("Step 1 of 2: writing to {}", to.join(" and "))),
            Line::styled(
                "The HSM seals the partition; every byte goes to each drive.",
                theme.muted,
            ),
        ])
        .wrap(Wrap { trim: false }),
        top,
    );
    progress_gauge(frame, gauge, (written, total), theme);
    frame.render_widget(
        Paragraph::new(vec![
            Line::from(pace_text(written, total, elapsed_ms)),
            Line::styled(
                "Step 2 of 2, next: each copy read back from its drive and verified.",
                theme.muted,
            ),
        ]),
        rest,
    );
}

/// The bytes done of the total, as a gauge (the backup's write and the restore's upload).
fn progress_gauge(frame: &mut Frame, area: Rect, (done, total): (u64, u64), theme: &Theme) {
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
                "{} of {} ({:.0} %)",
                bytes_text(done),
                bytes_text(total),
                ratio * 100.0
            )),
        area,
    );
}

/// `rate 12.0 MB/s · about 3 s left`, from the bytes done so far and the time they took.
fn pace_text(done: u64, total: u64, elapsed_ms: u64) -> String {
    if elapsed_ms == 0 || done == 0 {
        return "rate: measuring…".to_owned();
    }
    let per_sec = done as f64 * 1000.0 / elapsed_ms as f64;
    let left = total.saturating_sub(done) as f64 / per_sec;
    format!(
        "rate {}/s · about {} left",
        bytes_text(per_sec as u64),
        duration_text(left.ceil() as u64)
    )
}

/// The restore's dry run: the upload with its progress, then the HSM's checks.
fn uploading(frame: &mut Frame, area: Rect, file: &str, at: (u64, u64, u64), theme: &Theme) {
    let (sent, total, elapsed_ms) = at;
    let [top, gauge, rest] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Length(1),
        Constraint::Min(1),
    ])
    .areas(area);
    let uploaded = total > 0 && sent >= total;
    let step = if uploaded {
        Line::styled(
            format!("✓ Step 1 of 2: uploaded {file} to the HSM"),
            theme.ok,
        )
    } else {
        Line::from(format!("Step 1 of 2: uploading {file} to the HSM"))
    };
    frame.render_widget(
        Paragraph::new(vec![
            step,
            Line::styled(
                "A restore's dry run: nothing in the partition changes yet.",
                theme.muted,
            ),
        ])
        .wrap(Wrap { trim: false }),
        top,
    );
    progress_gauge(frame, gauge, (sent, total), theme);
    let next = if uploaded {
        Line::from(
            "… Step 2 of 2: the HSM's dry run: every chunk and object decrypted and checked, \
             then the diff of what a restore would change.",
        )
    } else {
        Line::styled(
            "Step 2 of 2, next: the HSM decrypts and checks every chunk and object.",
            theme.muted,
        )
    };
    frame.render_widget(
        Paragraph::new(vec![Line::from(pace_text(sent, total, elapsed_ms)), next])
            .wrap(Wrap { trim: false }),
        rest,
    );
}

fn verifying_lines<'a>(total: u64, theme: &Theme) -> Vec<Line<'a>> {
    vec![
        Line::styled(
            format!("✓ Step 1 of 2: written ({})", bytes_text(total)),
            theme.ok,
        ),
        Line::from(""),
        Line::from(
            "… Step 2 of 2: read-back verification: each copy is made durable, read back from \
             its drive, and every chunk digest and the HSM's signature checked against what the \
             HSM sent.",
        ),
    ]
}

fn created_lines<'a>(c: &CreatedView, theme: &Theme) -> Vec<Line<'a>> {
    let label = |t: &str| Span::styled(format!("{t:<8}"), theme.muted);
    let mut lines = vec![
        Line::styled(
            "✓ Step 1 of 2: written · ✓ Step 2 of 2: read back and verified",
            theme.ok,
        ),
        Line::from(""),
        Line::from(vec![label("File"), Span::raw(c.file_name.clone())]),
        Line::from(vec![
            label("Size"),
            Span::raw(format!("{} ({} bytes)", bytes_text(c.bytes), c.bytes)),
        ]),
        Line::from(vec![label("Digest"), Span::raw(c.digest.clone())]),
        Line::from(""),
    ];
    lines.extend(c.lines.iter().map(|l| Line::from(l.clone())));
    lines.push(Line::from(""));
    lines.push(Line::styled("Esc: back to the drives", theme.muted));
    lines
}

fn failed_lines<'a>(why: &str, theme: &Theme) -> Vec<Line<'a>> {
    vec![
        Line::styled("✗ The backup was not stored.", theme.error),
        Line::from(""),
        Line::from(why.to_owned()),
        Line::from(""),
        Line::from(
            "No file that passes as a backup was left, and earlier backups are untouched. Check \
             the drive (free space, write access), then try again.",
        ),
        Line::styled("Esc: back to the drives", theme.muted),
    ]
}

fn backup_lines<'a>(flow: &BackupFlow, theme: &Theme) -> Vec<Line<'a>> {
    let drive = flow.listing.as_ref().map_or(String::new(), Drive::shown);
    let mut lines = vec![
        Line::from(format!("Backups on {drive}, newest first")),
        Line::styled(
            "Each is checked offline against the HSM key pinned at pairing; R restores \
             (the HSM's dry run and its diff first).",
            theme.muted,
        ),
        Line::from(""),
    ];
    if flow.backups.is_empty() {
        lines.push(Line::styled("No backups here.", theme.muted));
    }
    for (i, b) in flow.backups.iter().enumerate() {
        lines.extend(backup_line(b, i == flow.backup_cursor, theme));
    }
    lines
}

fn backup_line<'a>(b: &BackupView, selected: bool, theme: &Theme) -> Vec<Line<'a>> {
    let (check, style) = match &b.check {
        Check::Checking => ("… checking".to_owned(), theme.muted),
        Check::Verified => ("✓ verified".to_owned(), theme.ok),
        Check::Failed(why) => (format!("✗ NOT verified: {why}"), theme.error),
    };
    let marker = if selected { "›" } else { " " };
    let name_style = if selected {
        theme.selection
    } else {
        theme.plain
    };
    let (hsm, facts) = match &b.facts {
        Ok(f) => (
            format!("HSM {}  ", f.hsm),
            format!(
                "    {} · made {} UTC · seq {} · {} objects · {}",
                f.partition,
                utc_text(f.created),
                f.sequence,
                f.objects,
                bytes_text(b.len)
            ),
        ),
        Err(why) => (String::new(), format!("    header unreadable: {why}")),
    };
    vec![
        Line::from(vec![
            Span::styled(format!("{marker} {}  ", b.file_name), name_style),
            Span::styled(hsm, theme.muted),
            Span::styled(check, style),
        ]),
        Line::styled(facts, theme.muted),
    ]
}

fn restore_lines<'a>(model: &Model, theme: &Theme) -> Vec<Line<'a>> {
    let flow = &model.backup;
    let id = &model.target.partition_id;
    match &flow.step {
        Step::Diff(diff) => {
            let mut lines = diff_lines(diff);
            lines.push(Line::from(""));
            lines.push(Line::styled(
                "Restore it? The partition becomes what the backup holds, in one atomic swap; \
                 the log is kept and records the restore. y: confirm · n or Esc: back",
                theme.warn,
            ));
            lines
        }
        Step::Confirm(diff) => {
            let mut lines = diff_lines(diff);
            lines.extend([
                Line::from(""),
                Line::styled(
                    format!("Type the partition's id ({id}) to restore:"),
                    theme.warn,
                ),
                Line::from(format!("  {}▏", flow.typed)),
                Line::from(""),
                Line::styled("Enter: restore · Esc: back to the diff", theme.muted),
            ]);
            lines
        }
        Step::Restoring => vec![Line::from(
            "… Restoring at the HSM: one atomic swap, all of it or nothing.",
        )],
        Step::Restored(text) => vec![
            Line::styled(format!("✓ {text}"), theme.ok),
            Line::from(""),
            Line::from("The restore is in the log. Esc: back to the backups"),
        ],
        Step::RestoreRefused(why) => vec![
            Line::styled(
                "✗ Not restored: nothing in the partition changed.",
                theme.error,
            ),
            Line::from(""),
            Line::from(why.clone()),
            Line::from(""),
            Line::styled("Esc: back to the backups", theme.muted),
        ],
        _ => Vec::new(),
    }
}

/// The dry run's diff as `tessera backup restore` prints it.
fn diff_lines<'a>(diff: &hsm_link::message::RestoreDiff) -> Vec<Line<'a>> {
    crate::cli::backup::show_diff(diff)
        .text
        .lines()
        .map(|l| Line::from(l.to_owned()))
        .collect()
}
