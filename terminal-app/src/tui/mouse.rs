//! The mouse, as keys: a click on a menu entry or a list row selects it (a click on the row
//! already selected chooses it, as `Enter` does) and the wheel moves the selection, each turned
//! into the key presses that do the same. So `update` sees keys only, every mouse action is
//! one the keys can do (keys are always enough), and the help overlay stays true.
//!
//! Which row is selected is read from the screen as last drawn: every menu and list marks its
//! selected row with [`MARKER`] in its first column, and a click in the rows of text below or
//! above it moves the selection that many rows (`↓`/`↑`), as far as the list goes.

use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{
    KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::Position;

/// The mark of the selected row of every menu and list.
pub const MARKER: &str = "›";

/// The key presses that do what `mouse` asks on `screen` (the frame last drawn); none when it
/// asks nothing a key does.
pub fn keys_for(screen: &Buffer, mouse: MouseEvent) -> Vec<KeyEvent> {
    match mouse.kind {
        MouseEventKind::ScrollDown => vec![press(KeyCode::Down)],
        MouseEventKind::ScrollUp => vec![press(KeyCode::Up)],
        MouseEventKind::Down(MouseButton::Left) => click(screen, mouse.column, mouse.row),
        _ => Vec::new(),
    }
}

fn press(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

/// A click at (`x`, `y`): the selection of the list under it moved there, or chosen.
fn click(screen: &Buffer, x: u16, y: u16) -> Vec<KeyEvent> {
    let area = screen.area;
    if !area.contains(Position { x, y }) {
        return Vec::new();
    }
    // The innermost list: the marker nearest to the left of the click whose rows reach it.
    let marker = (area.left()..=x)
        .rev()
        .find_map(|column| {
            (area.top()..area.bottom())
                .find(|&row| symbol(screen, column, row) == MARKER)
                .filter(|&row| same_list(screen, column, row, y))
                .map(|row| (column, row))
        })
        .map(|(_, row)| row);
    let Some(selected) = marker else {
        return Vec::new();
    };
    let code = match y.cmp(&selected) {
        std::cmp::Ordering::Equal => return vec![press(KeyCode::Enter)],
        std::cmp::Ordering::Greater => KeyCode::Down,
        std::cmp::Ordering::Less => KeyCode::Up,
    };
    vec![press(code); usize::from(y.abs_diff(selected))]
}

fn symbol(screen: &Buffer, x: u16, y: u16) -> &str {
    screen.cell(Position { x, y }).map_or("", |c| c.symbol())
}

/// Whether the rows from the marker's to the clicked one are rows of one list: each has the
/// marker or a blank in the marker's column, text after it, and left of it what the marker's
/// row has (the box's side, not its corner: a box's title is no row of its list).
fn same_list(screen: &Buffer, column: u16, from: u16, to: u16) -> bool {
    let side = |row| column.checked_sub(1).map(|x| symbol(screen, x, row));
    let marker_side = side(from);
    (from.min(to)..=from.max(to)).all(|row| {
        let mark = symbol(screen, column, row);
        (mark == " " || mark == MARKER)
            && side(row) == marker_side
            && has_text(screen, column + 1, row)
    })
}

/// Whether the row has text from `x` up to the next border (or the screen's edge).
fn has_text(screen: &Buffer, x: u16, y: u16) -> bool {
    (x..screen.area.right())
        .map(|column| symbol(screen, column, y))
        .take_while(|s| *s != "│")
        .any(|s| !s.trim().is_empty())
}
