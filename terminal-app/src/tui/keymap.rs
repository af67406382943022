//! Key maps as data: each context (a screen, a text field, an overlay) is a table of bindings,
//! and the footer's hints and the help overlay are read from the same tables, so that what the
//! screen says and what the keys do cannot drift apart.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// What a key asks for, before any screen interprets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Move the selection up.
    Up,
    /// Move the selection down.
    Down,
    /// A page up.
    PageUp,
    /// A page down.
    PageDown,
    /// To the first row.
    Home,
    /// To the last row.
    End,
    /// Choose the selected row, or submit a field.
    Select,
    /// Back out of the current step or screen.
    Back,
    /// Quit (asking first while logged in).
    Quit,
    /// The help overlay.
    Help,
    /// Jump to a menu entry by its number (1 = the first).
    Jump(u8),
    /// Change the selected configuration parameter.
    Toggle,
    /// Review and apply the staged changes.
    Apply,
    /// Read again from the HSM.
    Reload,
    /// Drop the staged changes.
    Undo,
    /// Restore the selected key from the bin.
    Restore,
    /// Purge the selected key from the bin.
    Purge,
    /// Edit a filter.
    Filter,
    /// Edit the holder filter (logs).
    FilterHolder,
    /// The next sort order (keys).
    Sort,
    /// Reset (the application's credentials).
    Reset,
    /// Cycle the role filter (logs).
    CycleRole,
    /// Cycle the outcome filter (logs).
    CycleOutcome,
    /// Cycle the key list's kind filter.
    CycleKind,
    /// End the officers' login.
    Logout,
    /// Answer yes.
    Yes,
    /// Answer no.
    No,
    /// More (a number up).
    More,
    /// Fewer (a number down).
    Less,
    /// Start a re-share (the Cards screen).
    Reshare,
    /// Revoke a lost card (the Cards screen).
    Revoke,
    /// The paired terminals (from the Credentials screen).
    Terminals,
    /// A new one-time pairing code (the terminals screen).
    PairingCode,
    /// Open the Firmware screen (the welcome screen).
    Firmware,
    /// Install the selected firmware image.
    Install,
    /// Confirm the firmware update on trial.
    ConfirmUpdate,
    /// A typed character (text fields and PIN entry only).
    Input(char),
    /// Erase the last typed character.
    Erase,
    /// Create (a backup).
    Create,
    /// Export (the log).
    Export,
    /// Change or unblock a card's PIN (the Cards screen).
    Pin,
    /// Unblock a card's PIN (the PIN screen).
    Unblock,
    /// Enrol a card set (the Cards screen).
    Enrol,
    /// Set up a new card (the Cards screen).
    NewCard,
    /// Set up an OpenPGP card in a reader (the Cards screen).
    SetUpCard,
    /// Open the Cards screen without a login (the welcome screen): a drill, or a fresh
    /// partition's first PSO set.
    Cards,
}

/// One row of a key map: the keys, how the footer and help name them, and what they do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Binding {
    /// The keys (without modifiers) that trigger it.
    pub keys: &'static [KeyCode],
    /// The keys as shown, e.g. `↑ k`.
    pub label: &'static str,
    /// What it does.
    pub action: Action,
    /// A short description for the footer and the help overlay.
    pub hint: &'static str,
    /// Whether the footer shows it (the help overlay shows every binding).
    pub footer: bool,
}

const fn bind(
    keys: &'static [KeyCode],
    label: &'static str,
    action: Action,
    hint: &'static str,
    footer: bool,
) -> Binding {
    Binding {
        keys,
        label,
        action,
        hint,
        footer,
    }
}

/// Everywhere except in text fields.
pub const GLOBAL: &[Binding] = &[
    bind(&[KeyCode::Char('?')], "?", Action::Help, "help", true),
    bind(&[KeyCode::Esc], "Esc", Action::Back, "back", true),
    bind(&[KeyCode::Char('q')], "q", Action::Quit, "quit", true),
];

/// While a step runs that is not stopped halfway (a log export): help and quit, no Esc.
pub const BUSY: &[Binding] = &[
    bind(&[KeyCode::Char('?')], "?", Action::Help, "help", true),
    bind(&[KeyCode::Char('q')], "q", Action::Quit, "quit", true),
];

/// Moving through lists and menus: arrows and vim keys.
pub const NAVIGATION: &[Binding] = &[
    bind(
        &[KeyCode::Up, KeyCode::Char('k')],
        "↑ k",
        Action::Up,
        "up",
        false,
    ),
    bind(
        &[KeyCode::Down, KeyCode::Char('j')],
        "↓ j",
        Action::Down,
        "down",
        false,
    ),
    bind(&[KeyCode::PageUp], "PgUp", Action::PageUp, "page up", false),
    bind(
        &[KeyCode::PageDown],
        "PgDn",
        Action::PageDown,
        "page down",
        false,
    ),
    bind(
        &[KeyCode::Home, KeyCode::Char('g')],
        "Home g",
        Action::Home,
        "first",
        false,
    ),
    bind(
        &[KeyCode::End, KeyCode::Char('G')],
        "End G",
        Action::End,
        "last",
        false,
    ),
    bind(&[KeyCode::Enter], "Enter", Action::Select, "choose", true),
];

/// The menu's numbers (the welcome screen and the dashboard).
pub const MENU: &[Binding] = &[bind(
    &[
        KeyCode::Char('1'),
        KeyCode::Char('2'),
        KeyCode::Char('3'),
        KeyCode::Char('4'),
        KeyCode::Char('5'),
        KeyCode::Char('6'),
        KeyCode::Char('7'),
        KeyCode::Char('8'),
        KeyCode::Char('9'),
    ],
    "1-9",
    Action::Jump(0),
    "menu entry",
    true,
)];

/// The dashboard, beside its menu.
pub const DASHBOARD: &[Binding] = &[
    bind(&[KeyCode::Char('o')], "o", Action::Logout, "log out", true),
    bind(&[KeyCode::Char('r')], "r", Action::Reload, "refresh", false),
];

/// The Cards screen, beside its card list.
pub const CARDS: &[Binding] = &[
    bind(
        &[KeyCode::Char('r')],
        "r",
        Action::Reshare,
        "re-share",
        true,
    ),
    bind(&[KeyCode::Char('v')], "v", Action::Revoke, "revoke", true),
    bind(&[KeyCode::Char('p')], "p", Action::Pin, "PIN", true),
    bind(
        &[KeyCode::Char('e')],
        "e",
        Action::Enrol,
        "enrol a set",
        true,
    ),
    bind(
        &[KeyCode::Char('n')],
        "n",
        Action::NewCard,
        "new card",
        true,
    ),
    bind(
        &[KeyCode::Char('o')],
        "o",
        Action::SetUpCard,
        "OpenPGP card",
        true,
    ),
];

/// The welcome screen, beside its roles: the terminal's own firmware needs no login.
pub const WELCOME: &[Binding] = &[
    bind(
        &[KeyCode::Char('f')],
        "f",
        Action::Firmware,
        "firmware",
        true,
    ),
    bind(&[KeyCode::Char('c')], "c", Action::Cards, "cards", true),
];

/// The Firmware screen.
pub const FIRMWARE: &[Binding] = &[
    bind(&[KeyCode::Char('i')], "i", Action::Install, "install", true),
    bind(
        &[KeyCode::Char('c')],
        "c",
        Action::ConfirmUpdate,
        "confirm update",
        true,
    ),
    bind(
        &[KeyCode::Char('r')],
        "r",
        Action::Reload,
        "read again",
        false,
    ),
];

/// The PIN screen, beside its card list (Enter changes the PIN).
pub const PIN: &[Binding] = &[bind(
    &[KeyCode::Char('u')],
    "u",
    Action::Unblock,
    "unblock",
    true,
)];

/// A re-share's size: the new m and n.
pub const RESHARE_SIZE: &[Binding] = &[
    bind(
        &[KeyCode::Right, KeyCode::Char('l'), KeyCode::Char('+')],
        "→ l +",
        Action::More,
        "more",
        true,
    ),
    bind(
        &[KeyCode::Left, KeyCode::Char('h'), KeyCode::Char('-')],
        "← h -",
        Action::Less,
        "fewer",
        true,
    ),
    bind(
        &[KeyCode::Up, KeyCode::Char('k')],
        "↑ k",
        Action::Up,
        "m",
        false,
    ),
    bind(
        &[KeyCode::Down, KeyCode::Char('j')],
        "↓ j",
        Action::Down,
        "n",
        false,
    ),
    bind(&[KeyCode::Enter], "Enter", Action::Select, "begin", true),
];

/// The configuration screen.
pub const CONFIGURATION: &[Binding] = &[
    bind(
        &[KeyCode::Char(' ')],
        "Space",
        Action::Toggle,
        "change",
        true,
    ),
    bind(&[KeyCode::Char('a')], "a", Action::Apply, "apply", true),
    bind(&[KeyCode::Char('u')], "u", Action::Undo, "undo all", true),
    bind(&[KeyCode::Char('r')], "r", Action::Reload, "reload", false),
];

/// The key list.
pub const KEYS: &[Binding] = &[
    bind(&[KeyCode::Char('/')], "/", Action::Filter, "filter", true),
    bind(&[KeyCode::Char('s')], "s", Action::Sort, "sort", true),
    bind(&[KeyCode::Char('t')], "t", Action::CycleKind, "type", true),
    bind(&[KeyCode::Char('r')], "r", Action::Reload, "reload", false),
];

/// The bin.
pub const BIN: &[Binding] = &[
    bind(&[KeyCode::Char('R')], "R", Action::Restore, "restore", true),
    bind(&[KeyCode::Char('P')], "P", Action::Purge, "purge", true),
    bind(&[KeyCode::Char('/')], "/", Action::Filter, "filter", false),
    bind(&[KeyCode::Char('s')], "s", Action::Sort, "sort", false),
    bind(&[KeyCode::Char('t')], "t", Action::CycleKind, "type", false),
    bind(&[KeyCode::Char('r')], "r", Action::Reload, "reload", false),
];

/// The credentials screen.
pub const CREDENTIALS: &[Binding] = &[
    bind(
        &[KeyCode::Char('R')],
        "R",
        Action::Reset,
        "reset setup password",
        true,
    ),
    bind(
        &[KeyCode::Char('t')],
        "t",
        Action::Terminals,
        "paired terminals",
        true,
    ),
];

/// The paired terminals.
pub const TERMINALS: &[Binding] = &[
    bind(&[KeyCode::Char('v')], "v", Action::Revoke, "revoke", true),
    bind(
        &[KeyCode::Char('N')],
        "N",
        Action::PairingCode,
        "new pairing code",
        true,
    ),
    bind(&[KeyCode::Char('r')], "r", Action::Reload, "refresh", false),
];

/// The log.
pub const LOGS: &[Binding] = &[
    bind(
        &[KeyCode::Char('/')],
        "/",
        Action::Filter,
        "operation",
        true,
    ),
    bind(
        &[KeyCode::Char('h')],
        "h",
        Action::FilterHolder,
        "holder",
        true,
    ),
    bind(&[KeyCode::Char('o')], "o", Action::CycleRole, "role", true),
    bind(
        &[KeyCode::Char('x')],
        "x",
        Action::CycleOutcome,
        "outcome",
        true,
    ),
    bind(&[KeyCode::Char('r')], "r", Action::Reload, "reload", false),
    bind(&[KeyCode::Char('e')], "e", Action::Export, "export", true),
];

/// Moving through lists, without Enter (a screen that gives Enter its own meaning).
pub const MOVE: &[Binding] = NAVIGATION.split_at(6).0;

/// The Backup screen's drives.
pub const BACKUP_DRIVES: &[Binding] = &[
    bind(
        &[KeyCode::Char(' ')],
        "Space",
        Action::Toggle,
        "choose",
        true,
    ),
    bind(
        &[KeyCode::Char('c')],
        "c",
        Action::Create,
        "create backup",
        true,
    ),
    bind(&[KeyCode::Enter], "Enter", Action::Select, "backups", true),
    bind(&[KeyCode::Char('r')], "r", Action::Reload, "rescan", false),
];

/// The backups on a drive.
pub const BACKUP_LIST: &[Binding] = &[
    bind(
        &[KeyCode::Char('R')],
        "R",
        Action::Restore,
        "restore (dry run)",
        true,
    ),
    bind(&[KeyCode::Char('r')], "r", Action::Reload, "reload", false),
];

/// The log export panel's chooser.
pub const LOG_EXPORT: &[Binding] = &[
    bind(&[KeyCode::Enter], "Enter", Action::Select, "export", true),
    bind(
        &[KeyCode::Char(' ')],
        "Space",
        Action::Toggle,
        "change",
        true,
    ),
    bind(
        &[KeyCode::Char('r')],
        "r",
        Action::Reload,
        "rescan drives",
        false,
    ),
];

/// The log export panel once the export ended.
pub const LOG_EXPORT_END: &[Binding] = &[bind(
    &[KeyCode::Enter],
    "Enter",
    Action::Select,
    "continue",
    true,
)];

/// A yes/no question.
pub const QUESTION: &[Binding] = &[
    bind(&[KeyCode::Char('y')], "y", Action::Yes, "yes", true),
    bind(
        &[KeyCode::Char('n'), KeyCode::Esc],
        "n Esc",
        Action::No,
        "no",
        true,
    ),
];

/// A text field or the PIN: every printable key types.
pub const TEXT: &[Binding] = &[
    bind(&[KeyCode::Enter], "Enter", Action::Select, "submit", true),
    bind(&[KeyCode::Backspace], "Bksp", Action::Erase, "erase", true),
    bind(&[KeyCode::Esc], "Esc", Action::Back, "cancel", true),
];

/// How keys are read in a context: through tables, or typed into a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    /// Bindings from these tables, first match wins.
    Tables(&'static [&'static [Binding]]),
    /// A text field: printable keys type.
    Text,
    /// A yes/no question.
    Question,
}

impl Context {
    /// The tables whose hints this context shows.
    pub fn tables(self) -> &'static [&'static [Binding]] {
        match self {
            Context::Tables(tables) => tables,
            Context::Text => &[TEXT],
            Context::Question => &[QUESTION],
        }
    }
}

/// The action a key event asks for in `context`, if any. Key releases are ignored; Ctrl-C
/// always asks to quit.
pub fn action_for(context: Context, key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return match key.code {
            KeyCode::Char('c') => Some(Action::Quit),
            _ => None,
        };
    }
    if context == Context::Text
        && let KeyCode::Char(c) = key.code
    {
        return Some(Action::Input(c));
    }
    context
        .tables()
        .iter()
        .find_map(|table| lookup(table, key.code))
}

fn lookup(table: &[Binding], code: KeyCode) -> Option<Action> {
    table.iter().find_map(|binding| {
        let position = binding.keys.iter().position(|k| *k == code)?;
        Some(match binding.action {
            // The menu's numbers: the position in the row is the entry.
            Action::Jump(_) => Action::Jump(u8::try_from(position).unwrap_or(0) + 1),
            action => action,
        })
    })
}

/// The footer's hints for `context`: `(keys, hint)` pairs, in table order.
pub fn footer_hints(context: Context) -> Vec<(&'static str, &'static str)> {
    context
        .tables()
        .iter()
        .flat_map(|table| table.iter())
        .filter(|b| b.footer)
        .map(|b| (b.label, b.hint))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn vim_keys_and_arrows_move_alike() {
        let ctx = Context::Tables(&[NAVIGATION, GLOBAL]);
        assert_eq!(action_for(ctx, key(KeyCode::Char('j'))), Some(Action::Down));
        assert_eq!(action_for(ctx, key(KeyCode::Down)), Some(Action::Down));
        assert_eq!(action_for(ctx, key(KeyCode::Char('k'))), Some(Action::Up));
        assert_eq!(action_for(ctx, key(KeyCode::Char('q'))), Some(Action::Quit));
    }

    #[test]
    fn a_text_field_types_what_would_otherwise_quit() {
        assert_eq!(
            action_for(Context::Text, key(KeyCode::Char('q'))),
            Some(Action::Input('q'))
        );
        assert_eq!(
            action_for(Context::Text, key(KeyCode::Esc)),
            Some(Action::Back)
        );
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(action_for(Context::Text, ctrl_c), Some(Action::Quit));
    }

    #[test]
    fn menu_numbers_name_their_entry() {
        let ctx = Context::Tables(&[MENU]);
        assert_eq!(
            action_for(ctx, key(KeyCode::Char('3'))),
            Some(Action::Jump(3))
        );
        assert_eq!(
            action_for(ctx, key(KeyCode::Char('1'))),
            Some(Action::Jump(1))
        );
    }
}
