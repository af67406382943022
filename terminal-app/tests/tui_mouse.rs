//! The mouse: a click on a menu entry or a list row selects it, a click on the selected row
//! chooses it, the wheel moves the selection; each as the keys that do the same, read off the
//! screen as drawn.
#![cfg(feature = "embedded")] // the shared model fixtures list the demo's cards

#[path = "support/tui_model.rs"]
mod tui_support;

use hsm_link::message::KeyFilter;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use terminal_app::tui::message::Message;
use terminal_app::tui::model::{Model, Screen};
use terminal_app::tui::mouse::keys_for;
use terminal_app::tui::theme::Theme;
use terminal_app::tui::update::update;
use terminal_app::tui::view::view;
use tui_support::*;

fn screen(model: &Model) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    terminal
        .draw(|f| view(f, model, &Theme::monochrome()))
        .unwrap();
    terminal.backend().buffer().clone()
}

/// The row on which `text` is drawn, and its column.
fn find(screen: &Buffer, text: &str) -> (u16, u16) {
    for y in 0..screen.area.height {
        let line: String = (0..screen.area.width)
            .map(|x| screen[(x, y)].symbol())
            .collect();
        if let Some(i) = line.find(text) {
            let column = line[..i].chars().count();
            return (u16::try_from(column).unwrap(), y);
        }
    }
    panic!("{text:?} is not on the screen");
}

fn mouse(model: &mut Model, kind: MouseEventKind, (column, row): (u16, u16)) -> usize {
    let keys = keys_for(
        &screen(model),
        MouseEvent {
            kind,
            column,
            row,
            modifiers: KeyModifiers::NONE,
        },
    );
    let n = keys.len();
    for key in keys {
        update(model, Message::Key(key));
    }
    n
}

fn click(model: &mut Model, text: &str) -> usize {
    let at = find(&screen(model), text);
    mouse(model, MouseEventKind::Down(MouseButton::Left), at)
}

#[test]
fn a_click_selects_a_menu_entry_and_a_second_click_chooses_it() {
    let mut model = ready();
    assert_eq!(model.menu, 0);
    click(&mut model, "Log in as device SO");
    assert_eq!((model.menu, &model.screen), (2, &Screen::Welcome));
    click(&mut model, "Log in as auditor");
    assert_eq!(model.menu, 1);
    click(&mut model, "Log in as auditor");
    assert_eq!(model.screen, Screen::Login, "the second click chose it");

    // The dashboard's menu, in a box beside the partition's facts.
    let mut model = logged_in();
    click(&mut model, "Credentials");
    assert_eq!(model.menu, 8);
    // A click on text that is no list's row does nothing.
    assert_eq!(click(&mut model, "Partition"), 0);
    assert_eq!(click(&mut model, "Tessera"), 0);
    assert_eq!(model.menu, 8);
}

#[test]
fn a_click_selects_a_list_row_and_the_wheel_moves_the_selection() {
    let mut model = logged_in();
    ch(&mut model, '3');
    event(&mut model, keys_page(KeyFilter::Invalidated, 6, false));
    assert_eq!(model.bin.selected, 0);
    click(&mut model, "payments-key-0004");
    assert_eq!(model.bin.selected, 3);
    click(&mut model, "payments-key-0002");
    assert_eq!(model.bin.selected, 1);

    let anywhere = (40, 12);
    mouse(&mut model, MouseEventKind::ScrollDown, anywhere);
    mouse(&mut model, MouseEventKind::ScrollDown, anywhere);
    assert_eq!(model.bin.selected, 3);
    mouse(&mut model, MouseEventKind::ScrollUp, anywhere);
    assert_eq!(model.bin.selected, 2);
    // Below the last row: no row there, nothing moves.
    assert_eq!(
        mouse(
            &mut model,
            MouseEventKind::Down(MouseButton::Left),
            (10, 15)
        ),
        0
    );
    assert_eq!(model.bin.selected, 2);
    // Keys stay enough: the same as the keys.
    assert_eq!(model.screen, Screen::Bin);
}
