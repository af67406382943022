//! The export panel as drawn over the log: the chooser, then the three steps (write, read back
//! and verify, confirm) each with its state in words, then the result or what went wrong.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

use super::{ExportDone, ExportFailure, LogExportFlow, Part, RangeChoice, Stage};
use crate::cli::log_export::ExportStep;
use crate::tui::theme::Theme;
use crate::tui::view;

/// Cells of the progress bar.
const BAR: usize = 24;

/// Draws the panel over `area`.
pub fn view(frame: &mut Frame, area: Rect, flow: &LogExportFlow, theme: &Theme) {
    let lines = match &flow.stage {
        Stage::Choosing => chooser(flow, theme),
        Stage::Starting => steps(None, flow, theme),
        Stage::Running(step) => steps(Some(*step), flow, theme),
        Stage::Done(done) => finished(done, theme),
        Stage::Failed(failure) => failed(failure, theme),
    };
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines)
            .block(view::block("Export the log", theme))
            .wrap(Wrap { trim: false }),
        area,
    );
}

fn chooser<'a>(flow: &'a LogExportFlow, theme: &Theme) -> Vec<Line<'a>> {
    let row = |part: Part, name: &'static str, value: String| {
        let focused = flow.part == part;
        let style = if focused {
            theme.selection
        } else {
            theme.plain
        };
        Line::from(vec![
            Span::styled(
                format!("{} {name:<8}", if focused { "›" } else { " " }),
                style,
            ),
            Span::styled(value, style),
        ])
    };
    let drive = if flow.scanning && flow.drives.is_empty() {
        "looking for drives…".to_owned()
    } else {
        match flow.drives.get(flow.drive) {
            Some(d) => format!(
                "{}{}{}",
                d.label,
                d.free
                    .map_or(String::new(), |f| format!(" · {} free", bytes_text(f))),
                if flow.drives.len() > 1 {
                    format!("   ({} of {})", flow.drive + 1, flow.drives.len())
                } else {
                    String::new()
                }
            ),
            None => "none found".to_owned(),
        }
    };
    let mut lines = vec![
        row(Part::Range, "Range", flow.range.label().to_owned()),
        row(Part::Format, "Format", flow.format.label().to_owned()),
        row(Part::Drive, "Drive", drive),
    ];
    if flow.range == RangeChoice::Window {
        let cursor = if flow.editing { "▏" } else { "" };
        lines.push(Line::from(vec![
            Span::styled("  Window  ", theme.muted),
            Span::styled("> ", theme.accent),
            Span::raw(flow.window.as_str()),
            Span::styled(cursor, theme.accent),
        ]));
        let hint = match &flow.window_problem {
            Some(problem) => Line::styled(format!("  ✗ {problem}"), theme.error),
            None if flow.editing => Line::styled(
                "  FROM .. TO, each YYYY-MM-DD or YYYY-MM-DD HH:MM (UTC); Enter: done",
                theme.muted,
            ),
            None => Line::from(""),
        };
        lines.push(hint);
    }
    if let Some(note) = &flow.drive_note {
        lines.push(Line::styled(format!("  ! {note}"), theme.warn));
    }
    lines.push(Line::from(""));
    lines.push(Line::styled(
        "Space changes the marked choice, Enter exports. Entries count as exported only after \
         the file is read back from the drive and verified against the pinned audit key.",
        theme.muted,
    ));
    lines
}

/// The three steps, `now` the one the worker reported last (`None`: not started yet).
fn steps<'a>(now: Option<ExportStep>, flow: &LogExportFlow, theme: &Theme) -> Vec<Line<'a>> {
    let at = match now {
        None => 0,
        Some(ExportStep::Writing { .. }) => 1,
        Some(ExportStep::ReadingBack { .. }) => 2,
        Some(ExportStep::Confirming) => 3,
    };
    let mark = |step: usize| -> (&'static str, Style) {
        match step.cmp(&at) {
            std::cmp::Ordering::Less => ("✓ done   ", theme.ok),
            std::cmp::Ordering::Equal => ("… now    ", theme.accent),
            std::cmp::Ordering::Greater => ("· waiting", theme.muted),
        }
    };
    let line = |step: usize, name: &'static str| {
        let (word, style) = mark(step);
        Line::from(vec![
            Span::styled(format!("{word} "), style),
            Span::styled(format!("{step} {name}"), theme.plain),
        ])
    };
    let detail = |text: String| Line::from(format!("            {text}"));
    let mut lines = vec![line(1, "Write to the drive")];
    match now {
        Some(ExportStep::Writing {
            lines: written,
            bytes,
            expected,
        }) => lines.push(detail(match expected {
            Some(total) if total > 0 => format!(
                "{} · {written} of {total} entries · {}",
                bar(written, total),
                bytes_text(bytes)
            ),
            _ => format!("{written} lines · {}", bytes_text(bytes)),
        })),
        None if flow.range == RangeChoice::Window => {
            lines.push(detail("finding the window's entries…".to_owned()));
        }
        None => lines.push(detail("starting…".to_owned())),
        _ => {}
    }
    lines.push(line(2, "Read back from the drive and verify"));
    if let Some(ExportStep::ReadingBack { bytes, total }) = now {
        lines.push(detail(format!(
            "{} · {} of {}",
            bar(bytes, total),
            bytes_text(bytes),
            bytes_text(total)
        )));
    }
    lines.push(line(3, "Confirm at the HSM"));
    lines.push(Line::from(""));
    lines.push(Line::styled(
        "The export runs to its end; nothing counts as exported before step 2 passed.",
        theme.muted,
    ));
    lines
}

fn finished<'a>(done: &ExportDone, theme: &Theme) -> Vec<Line<'a>> {
    let range = if done.to < done.from {
        "no new entries since the last confirmed export".to_owned()
    } else {
        format!(
            "entries {} to {} ({} entries)",
            done.from, done.to, done.entries
        )
    };
    let indent = |text: String| Line::from(format!("  {text}"));
    let mut lines = vec![
        Line::styled("✓ written to the drive", theme.ok),
        indent(format!("{} ({})", done.file, bytes_text(done.bytes))),
        Line::styled(
            format!("✓ read back from the drive and verified: {range}"),
            theme.ok,
        ),
        indent("chain and checkpoints signed by the pinned audit key".to_owned()),
        indent(format!("audit key {}", done.key)),
        if done.confirmed {
            Line::styled(
                format!("✓ confirmed at the HSM up to entry {}", done.to),
                theme.ok,
            )
        } else {
            Line::styled(
                "! not confirmed at the HSM: nothing new, or the range does not continue the last \
                 export (the file is kept and verifies)",
                theme.warn,
            )
        },
    ];
    match &done.siem {
        None => {}
        Some(Ok((file, records))) => {
            lines.push(Line::styled(
                format!("✓ {records} SIEM records beside it (the .jsonl file is the evidence)"),
                theme.ok,
            ));
            lines.push(indent(file.clone()));
        }
        Some(Err(why)) => lines.push(Line::styled(
            format!("✗ SIEM records not written: {why} (the export itself is verified)"),
            theme.error,
        )),
    }
    lines.push(Line::from(""));
    lines.push(Line::styled(
        "Check it anywhere: tessera log verify FILE. Enter: back to the log",
        theme.muted,
    ));
    lines
}

fn failed<'a>(failure: &ExportFailure, theme: &Theme) -> Vec<Line<'a>> {
    vec![
        Line::styled(
            format!("✗ export failed at {}: {}", failure.step, failure.why),
            theme.error,
        ),
        Line::from(""),
        Line::from(format!("What to do: {}", failure.todo)),
        Line::styled(
            "Nothing was counted as exported: the HSM still holds every entry.",
            theme.warn,
        ),
        Line::from(""),
        Line::styled("Enter: try again · Esc: back to the log", theme.muted),
    ]
}

/// `[██████░░░░]  42%`, readable without colour.
pub(crate) fn bar(done: u64, total: u64) -> String {
    let ratio = if total == 0 {
        1.0
    } else {
        (done as f64 / total as f64).min(1.0)
    };
    let filled = (ratio * BAR as f64).round() as usize;
    format!(
        "[{}{}] {:>3}%",
        "█".repeat(filled),
        "░".repeat(BAR - filled),
        (ratio * 100.0).floor() as u64
    )
}

/// `312 KB`, `1.2 GB`: decimal units, as drives are sold.
pub(crate) fn bytes_text(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if value < 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_and_sizes_read_without_colour() {
        assert_eq!(bar(0, 10), format!("[{}]   0%", "░".repeat(BAR)));
        assert_eq!(bar(10, 10), format!("[{}] 100%", "█".repeat(BAR)));
        assert_eq!(bar(12, 10), format!("[{}] 100%", "█".repeat(BAR)));
        assert!(bar(1, 2).ends_with(" 50%"));
        assert_eq!(bytes_text(999), "999 B");
        assert_eq!(bytes_text(312_400), "312 KB");
        assert_eq!(bytes_text(1_240_000_000), "1.2 GB");
    }
}
