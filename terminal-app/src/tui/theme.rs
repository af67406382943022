//! Colours from `assets/theme.toml`, and none at all under `NO_COLOR`.
//!
//! Colour only ever repeats what the text already says (a word, ✓, ✗, !, the › marker and
//! reversed video for the selection), so every state reads the same in monochrome.

use std::str::FromStr;

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

/// The theme file built into the binary.
pub const DEFAULT_THEME: &str = include_str!("../../../assets/theme.toml");

/// The environment variable that turns colour off when set to anything non-empty
/// (<https://no-color.org>).
pub const NO_COLOR_ENV: &str = "NO_COLOR";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    version: u32,
    colors: Colors,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Colors {
    accent: String,
    ok: String,
    warn: String,
    error: String,
    muted: String,
    selection_fg: String,
    selection_bg: String,
    soft_card: String,
}

/// Why a theme file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ThemeError {
    /// Not TOML of the theme's shape.
    #[error("the theme is not valid: {0}")]
    Syntax(#[from] toml::de::Error),
    /// A version this build does not read.
    #[error("theme version {0} is not supported: this build reads version 1")]
    Version(u32),
    /// A colour name that is not one.
    #[error("{name:?} is not a colour: use a name such as \"cyan\" or \"#rrggbb\"")]
    Color {
        /// The text.
        name: String,
    },
}

/// The styles the views use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Theme {
    /// Titles, the header, the active tab.
    pub accent: Style,
    /// Done, verified, on.
    pub ok: Style,
    /// Needs attention, loosening changes.
    pub warn: Style,
    /// Refused, failed, broken.
    pub error: Style,
    /// Explanations and hints.
    pub muted: Style,
    /// The selected row.
    pub selection: Style,
    /// Soft cards (always also labelled "soft card").
    pub soft_card: Style,
    /// Plain text.
    pub plain: Style,
}

impl Theme {
    /// The theme for this process: the built-in file, or monochrome when `no_color`.
    pub fn for_terminal(no_color: bool) -> Theme {
        if no_color {
            Theme::monochrome()
        } else {
            Theme::parse(DEFAULT_THEME).unwrap_or_else(|_| Theme::monochrome())
        }
    }

    /// Whether `NO_COLOR` asks for no colour.
    pub fn no_color_from_env() -> bool {
        std::env::var_os(NO_COLOR_ENV).is_some_and(|v| !v.is_empty())
    }

    /// Reads a theme file.
    pub fn parse(text: &str) -> Result<Theme, ThemeError> {
        let file: ThemeFile = toml::from_str(text)?;
        if file.version != 1 {
            return Err(ThemeError::Version(file.version));
        }
        let c = &file.colors;
        let fg = |name: &str| color(name).map(|c| Style::new().fg(c));
        Ok(Theme {
            accent: fg(&c.accent)?.add_modifier(Modifier::BOLD),
            ok: fg(&c.ok)?,
            warn: fg(&c.warn)?.add_modifier(Modifier::BOLD),
            error: fg(&c.error)?.add_modifier(Modifier::BOLD),
            muted: fg(&c.muted)?,
            selection: Style::new()
                .fg(color(&c.selection_fg)?)
                .bg(color(&c.selection_bg)?)
                .add_modifier(Modifier::BOLD),
            soft_card: fg(&c.soft_card)?,
            plain: Style::new(),
        })
    }

    /// No colour: bold, reversed and underlined only.
    pub fn monochrome() -> Theme {
        Theme {
            accent: Style::new().add_modifier(Modifier::BOLD),
            ok: Style::new(),
            warn: Style::new().add_modifier(Modifier::BOLD),
            error: Style::new().add_modifier(Modifier::BOLD),
            muted: Style::new(),
            selection: Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD),
            soft_card: Style::new().add_modifier(Modifier::UNDERLINED),
            plain: Style::new(),
        }
    }
}

fn color(name: &str) -> Result<Color, ThemeError> {
    Color::from_str(name).map_err(|_| ThemeError::Color {
        name: name.chars().take(32).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_theme_reads() {
        let theme = Theme::parse(DEFAULT_THEME).unwrap();
        assert_eq!(theme.ok.fg, Some(Color::Green));
        assert!(theme.selection.bg.is_some());
    }

    #[test]
    fn monochrome_uses_no_colour_at_all() {
        let t = Theme::for_terminal(true);
        for style in [
            t.accent,
            t.ok,
            t.warn,
            t.error,
            t.muted,
            t.selection,
            t.soft_card,
            t.plain,
        ] {
            assert_eq!((style.fg, style.bg), (None, None), "{style:?}");
        }
    }

    #[test]
    fn a_bad_colour_or_version_is_named() {
        let bad = DEFAULT_THEME.replace("\"cyan\"", "\"sky-ish\"");
        let e = Theme::parse(&bad).unwrap_err().to_string();
        assert!(e.contains("sky-ish"), "{e}");
        let v2 = DEFAULT_THEME.replace("version = 1", "version = 2");
        assert!(matches!(Theme::parse(&v2), Err(ThemeError::Version(2))));
    }
}
