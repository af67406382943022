//! The terminal's configuration file: TOML, versioned, every key known.
//!
//! ```toml
//! version = 1
//!
//! [cards]
//! # Soft cards (passphrase-sealed key files) for laptops without a card reader. Off by
//! # default: a copied soft card file meets no PIN retry counter.
//! allow_soft_cards = false
//! # Where the TUI lists soft cards from (`*.card`), when they are allowed. No default.
//! soft_card_dir = "/home/ada/cards"
//! # Removing a card that signed the login ends the session (PC/SC cards); `true` keeps it.
//! keep_session_on_card_removal = false
//!
//! [firmware]
//! # The device's firmware root (slots A and B and their state, see the firmware-image crate),
//! # which `tessera firmware` and the Firmware screen read. Unset on a machine that is not a
//! # terminal device. The release keys the device trusts are not set here: they are in the
//! # device's state, set at provisioning and changed only by a confirmed image signed under
//! # the current keys, so that editing this file cannot widen whom the device trusts.
//! root = "/var/lib/tessera-firmware"
//!
//! [backup]
//! # The drive allow-list: only these USB drives may take or give a backup (vendor:product:serial,
//! # the USB ids in hexadecimal as `lsusb` shows them, the serial as the drive reports it). Any
//! # other drive is shown as refused, with why. Unset: every drive. An empty list: none.
//! allow = ["0781:5581:4C530001", "0951:1666:E0D55EA5"]
//! ```
//!
//! Where it is: `--config FILE`, else the file `$TESSERA_CONFIG` names, else there is none and
//! the defaults apply (the strictest settings). A file that is named but does not exist is an
//! error ([`ConfigError::NotFound`]): a mistyped path must not quietly mean the defaults.
//!
//! Rules: `version` is required and must be [`CONFIG_VERSION`] (1); an unknown key or section is
//! refused (a misspelt key must not silently mean the default); a file is at most
//! [`MAX_CONFIG_LEN`] bytes, checked before it is read in full. Every error names the file, the
//! line and the key, and says what to do ([`ConfigError`]). Later sections (link, drives, log
//! export) come as `[link]`, `[drives]` … within version 1 when they only add keys with
//! defaults; a change of meaning raises the version.

use std::ffi::OsString;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::ops::Range;
use std::path::{Path, PathBuf};

use quorum::CardPolicy;
use serde::Deserialize;
use usb_backup::drive::allow::AllowList;

/// The configuration version this build reads.
pub const CONFIG_VERSION: i64 = 1;

/// The largest configuration file read (64 KiB).
pub const MAX_CONFIG_LEN: u64 = 64 * 1024;

/// The environment variable that names the configuration file when `--config` does not.
pub const CONFIG_ENV: &str = "TESSERA_CONFIG";

/// The terminal's configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TerminalConfig {
    /// The `[cards]` section.
    pub cards: CardsConfig,
    /// The `[firmware]` section.
    pub firmware: FirmwareConfig,
    /// The `[backup]` section.
    pub backup: BackupConfig,
}

/// The `[backup]` section: which drives backups may be written to and read from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackupConfig {
    /// `allow`: the drive allow-list, each entry checked when the file is loaded. Default: none
    /// (every drive admitted); an empty list admits no removable drive.
    pub allow: Option<AllowList>,
}

/// The `[backup]` section as written: entries with where they are, for errors that name the line.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackupV1 {
    #[serde(default)]
    allow: Option<Vec<toml::Spanned<String>>>,
}

/// The `[firmware]` section: where the device's firmware root is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct FirmwareConfig {
    /// `root`: the device's firmware root directory (an absolute path). Default: none.
    #[serde(default)]
    pub root: Option<PathBuf>,
}

/// The `[cards]` section: which officer cards the terminal accepts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CardsConfig {
    /// `allow_soft_cards`: accept soft cards (passphrase-sealed key files) outside the embedded
    /// demo. Default `false`.
    #[serde(default)]
    pub allow_soft_cards: bool,
    /// `soft_card_dir`: the directory whose soft card files (`*.card`) the TUI lists beside
    /// the card readers, when soft cards are allowed. Default: none.
    #[serde(default)]
    pub soft_card_dir: Option<PathBuf>,
    /// `keep_session_on_card_removal`: removing a smartcard that signed the login leaves the
    /// session open. Default `false`: the session ends at the HSM.
    #[serde(default)]
    pub keep_session_on_card_removal: bool,
}

/// Version 1 of the file, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileV1 {
    #[expect(dead_code, reason = "checked before, by VersionProbe")]
    version: i64,
    #[serde(default)]
    cards: CardsConfig,
    #[serde(default)]
    firmware: FirmwareConfig,
    #[serde(default)]
    backup: BackupV1,
}

/// Only the version, read before anything else so that a file of another version is refused
/// for its version and not for keys this build does not know.
#[derive(Deserialize)]
struct VersionProbe {
    version: Option<toml::Spanned<toml::Value>>,
}

impl TerminalConfig {
    /// The card policy this configuration asks for: soft cards allowed by configuration, or
    /// hardware cards only (the default).
    pub fn card_policy(&self) -> CardPolicy {
        if self.cards.allow_soft_cards {
            CardPolicy::allowed_by_configuration()
        } else {
            CardPolicy::hardware_only()
        }
    }

    /// Parses a configuration file's text; `path` and `origin` only name it in errors.
    pub fn parse(text: &str, path: &Path, origin: Origin) -> Result<TerminalConfig, ConfigError> {
        let invalid = |e: toml::de::Error| ConfigError::invalid(text, path, origin, &e);
        let probe: VersionProbe = toml::from_str(text).map_err(invalid)?;
        let Some(version) = probe.version else {
            return Err(ConfigError::NoVersion {
                path: path.to_owned(),
                origin,
            });
        };
        if version.get_ref().as_integer() != Some(CONFIG_VERSION) {
            return Err(ConfigError::Version {
                path: path.to_owned(),
                origin,
                line: line_of(text, version.span().start),
                found: version.get_ref().to_string(),
            });
        }
        let file: FileV1 = toml::from_str(text).map_err(invalid)?;
        let allow = file
            .backup
            .allow
            .map(|entries| allow_list(text, path, origin, &entries))
            .transpose()?;
        Ok(TerminalConfig {
            cards: file.cards,
            firmware: file.firmware,
            backup: BackupConfig { allow },
        })
    }

    /// Loads the configuration `source` names: the defaults if it names no file.
    pub fn load(source: Option<(PathBuf, Origin)>) -> Result<Loaded, ConfigError> {
        let Some((path, origin)) = source else {
            return Ok(Loaded {
                config: TerminalConfig::default(),
                source: ConfigSource::Defaults,
            });
        };
        let read_err = |source| ConfigError::Read {
            path: path.clone(),
            origin,
            source,
        };
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(ConfigError::NotFound { path, origin });
            }
            Err(e) => return Err(read_err(e)),
        };
        let mut bytes = Vec::new();
        file.take(MAX_CONFIG_LEN + 1)
            .read_to_end(&mut bytes)
            .map_err(read_err)?;
        if bytes.len() as u64 > MAX_CONFIG_LEN {
            return Err(ConfigError::TooLarge {
                path,
                origin,
                max: MAX_CONFIG_LEN,
            });
        }
        let text = String::from_utf8(bytes).map_err(|e| ConfigError::NotUtf8 {
            path: path.clone(),
            origin,
            line: line_of_bytes(e.as_bytes(), e.utf8_error().valid_up_to()),
        })?;
        let config = TerminalConfig::parse(&text, &path, origin)?;
        Ok(Loaded {
            config,
            source: ConfigSource::File(path, origin),
        })
    }
}

/// `[backup] allow`, each entry checked on its own so that an error names the entry and its line.
fn allow_list(
    text: &str,
    path: &Path,
    origin: Origin,
    entries: &[toml::Spanned<String>],
) -> Result<AllowList, ConfigError> {
    for entry in entries {
        let item = entry.get_ref().as_str();
        // The list parser also reads files, where blanks and `#` comments are skipped; in the
        // configuration every entry is a drive, so those are errors here.
        let checked = if item.trim().is_empty() {
            Err("the entry is empty".to_owned())
        } else if item.contains('#') {
            Err("a serial number has no `#`".to_owned())
        } else {
            AllowList::parse([item]).map(drop).map_err(|e| match e {
                usb_backup::BackupError::AllowList { problem, .. } => problem.to_owned(),
                other => other.to_string(),
            })
        };
        if let Err(problem) = checked {
            return Err(ConfigError::DriveAllow {
                path: path.to_owned(),
                origin,
                line: line_of(text, entry.span().start),
                entry: entry.get_ref().clone(),
                problem,
            });
        }
    }
    let list = AllowList::parse(entries.iter().map(|e| e.get_ref().as_str()));
    // Every entry parsed above on its own; a list of them cannot fail.
    list.map_err(|e| ConfigError::DriveAllow {
        path: path.to_owned(),
        origin,
        line: 1,
        entry: String::new(),
        problem: e.to_string(),
    })
}

/// Where the configuration file's name came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The `--config` option.
    Flag,
    /// The `TESSERA_CONFIG` environment variable.
    Env,
}

/// `--config` or `$TESSERA_CONFIG`.
impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag => f.write_str("--config"),
            Origin::Env => write!(f, "${CONFIG_ENV}"),
        }
    }
}

/// The configuration file to read: `--config` if given, else `$TESSERA_CONFIG` if set and not
/// empty, else none.
pub fn config_path(flag: Option<PathBuf>, env: Option<OsString>) -> Option<(PathBuf, Origin)> {
    match (flag, env) {
        (Some(path), _) => Some((path, Origin::Flag)),
        (None, Some(env)) if !env.is_empty() => Some((PathBuf::from(env), Origin::Env)),
        (None, _) => None,
    }
}

/// A configuration and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loaded {
    /// The configuration.
    pub config: TerminalConfig,
    /// Where it came from.
    pub source: ConfigSource,
}

/// Where a configuration came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigSource {
    /// No file was named: the defaults.
    Defaults,
    /// The file.
    File(PathBuf, Origin),
}

/// Why the configuration could not be used. Each names the file and says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file named does not exist.
    #[error(
        "terminal configuration {} (from {origin}) does not exist; create it (see the README's \
         \"The terminal configuration\"), correct {origin}, or leave {origin} unset to use the \
         defaults (hardware cards only)", path.display()
    )]
    NotFound {
        /// The file.
        path: PathBuf,
        /// Where its name came from.
        origin: Origin,
    },
    /// The file exists but cannot be read.
    #[error(
        "terminal configuration {} (from {origin}) cannot be read: {source}; check the path and \
         the file's permissions", path.display()
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// Where its name came from.
        origin: Origin,
        /// The I/O error.
        source: io::Error,
    },
    /// The file is larger than [`MAX_CONFIG_LEN`].
    #[error(
        "terminal configuration {} (from {origin}) is larger than {max} bytes, which no terminal \
         configuration is; check that {origin} names the right file", path.display()
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Where its name came from.
        origin: Origin,
        /// The largest size read.
        max: u64,
    },
    /// The file is not UTF-8 text.
    #[error(
        "terminal configuration {}, line {line} (from {origin}): not UTF-8 text; a terminal \
         configuration is a TOML file in UTF-8", path.display()
    )]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// Where its name came from.
        origin: Origin,
        /// The line of the first byte that is not UTF-8 (from 1).
        line: usize,
    },
    /// TOML that does not parse, an unknown key, or a value of the wrong type.
    #[error(
        "terminal configuration {}, line {line}, column {column}{} (from {origin}): {message}; \
         fix that line (the keys of version 1: `version`; `allow_soft_cards`, \
         `soft_card_dir` and `keep_session_on_card_removal` in `[cards]`; `root` in \
         `[firmware]`; `allow` in `[backup]`), or remove the file to use the defaults",
        path.display(),
        key.as_ref().map(|k| format!(", key `{k}`")).unwrap_or_default()
    )]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Where its name came from.
        origin: Origin,
        /// The line (from 1).
        line: usize,
        /// The column (from 1, in characters).
        column: usize,
        /// The key concerned, dotted (`cards.allow_soft_cards`), when the parser names one.
        key: Option<String>,
        /// What the TOML parser says.
        message: String,
    },
    /// An entry of `[backup] allow` that is not `vendor:product:serial`.
    #[error(
        "terminal configuration {}, line {line}, key `backup.allow` (from {origin}): the drive \
         allow-list entry {entry:?}: {problem}; write each entry as vendor:product:serial (the \
         USB vendor and product ids as 4 hexadecimal digits each, as `lsusb` shows them, then \
         the serial number as the drive reports it), e.g. \"0781:5581:4C530001\"",
        path.display()
    )]
    DriveAllow {
        /// The file.
        path: PathBuf,
        /// Where its name came from.
        origin: Origin,
        /// The entry's line (from 1).
        line: usize,
        /// The entry as written.
        entry: String,
        /// What is wrong with it.
        problem: String,
    },
    /// No `version` key.
    #[error(
        "terminal configuration {} (from {origin}) has no `version` key; add `version = 1` as its \
         first line (this build reads configuration version {CONFIG_VERSION})", path.display()
    )]
    NoVersion {
        /// The file.
        path: PathBuf,
        /// Where its name came from.
        origin: Origin,
    },
    /// A `version` other than [`CONFIG_VERSION`].
    #[error(
        "terminal configuration {}, line {line}, key `version` (from {origin}): version {found} \
         is not supported; this build reads configuration version {CONFIG_VERSION} only: use a \
         terminal that reads version {found}, or rewrite the file for version {CONFIG_VERSION}",
        path.display()
    )]
    Version {
        /// The file.
        path: PathBuf,
        /// Where its name came from.
        origin: Origin,
        /// The line of the `version` value (from 1).
        line: usize,
        /// The value found, as TOML.
        found: String,
    },
}

impl ConfigError {
    fn invalid(text: &str, path: &Path, origin: Origin, e: &toml::de::Error) -> ConfigError {
        let (line, column) = e.span().map_or((1, 1), |span| position(text, span.clone()));
        ConfigError::Invalid {
            path: path.to_owned(),
            origin,
            line,
            column,
            key: error_key(e),
            message: e.message().trim().to_owned(),
        }
    }
}

/// The dotted key a TOML error concerns, if the parser recorded one. `toml` shows it only in
/// its `Display` without the input (`in `cards.allow_soft_cards``).
fn error_key(e: &toml::de::Error) -> Option<String> {
    let mut bare = e.clone();
    bare.set_input(None);
    bare.to_string().lines().find_map(|line| {
        line.strip_prefix("in `")
            .and_then(|rest| rest.strip_suffix('`'))
            .map(str::to_owned)
    })
}

/// Line and column (both from 1; the column in characters) of a byte span's start.
fn position(text: &str, span: Range<usize>) -> (usize, usize) {
    let start = span.start.min(text.len());
    let before = text.get(..start).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (
        line_of(text, start),
        before[line_start..].chars().count() + 1,
    )
}

fn line_of(text: &str, offset: usize) -> usize {
    line_of_bytes(text.as_bytes(), offset)
}

fn line_of_bytes(bytes: &[u8], offset: usize) -> usize {
    let end = offset.min(bytes.len());
    bytes[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn load(path: &Path) -> Result<Loaded, ConfigError> {
        TerminalConfig::load(Some((path.to_owned(), Origin::Flag)))
    }

    fn message(path: &Path) -> String {
        load(path).unwrap_err().to_string()
    }

    #[test]
    fn no_file_named_means_the_defaults_which_refuse_soft_cards() {
        let loaded = TerminalConfig::load(None).unwrap();
        assert_eq!(loaded.source, ConfigSource::Defaults);
        assert_eq!(loaded.config, TerminalConfig::default());
        assert!(!loaded.config.cards.allow_soft_cards);
        assert_eq!(loaded.config.card_policy(), CardPolicy::hardware_only());
    }

    #[test]
    fn a_named_file_that_does_not_exist_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tessera.toml");
        let e = TerminalConfig::load(Some((path.clone(), Origin::Env))).unwrap_err();
        assert!(matches!(e, ConfigError::NotFound { .. }), "{e:?}");
        let message = e.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("$TESSERA_CONFIG"), "{message}");
        assert!(message.contains("does not exist"), "{message}");
    }

    #[test]
    fn the_drive_allow_list_is_read_and_a_bad_entry_is_named_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "tessera.toml",
            b"version = 1\n[backup]\nallow = [\n  \"0781:5581:4C530001\",\n  \"0951:1666:E0D5\",\n]\n",
        );
        let allow = load(&path).unwrap().config.backup.allow.unwrap();
        let ids: Vec<_> = allow
            .entries()
            .iter()
            .map(|e| (e.vendor, e.product, e.serial.as_str()))
            .collect();
        assert_eq!(
            ids,
            [(0x0781, 0x5581, "4C530001"), (0x0951, 0x1666, "E0D5")]
        );
        // Unset: no list (every drive); empty: a list that admits none.
        let path = write(dir.path(), "none.toml", b"version = 1\n[backup]\n");
        assert_eq!(load(&path).unwrap().config.backup.allow, None);
        let path = write(
            dir.path(),
            "empty.toml",
            b"version = 1\n[backup]\nallow = []\n",
        );
        let empty = load(&path).unwrap().config.backup.allow.unwrap();
        assert!(empty.entries().is_empty());

        for (entry, problem) in [
            ("0781:5581", "fewer than three parts"),
            ("781:5581:X", "vendor id"),
            ("0781:55g1:X", "product id"),
            ("0781:5581:", "serial number is empty"),
            ("0781:5581:AB # old", "`#`"),
            (" ", "empty"),
        ] {
            let text = format!(
                "version = 1\n[backup]\nallow = [\n  \"0781:5581:GOOD\",\n  \"{entry}\",\n]\n"
            );
            let path = write(dir.path(), "bad.toml", text.as_bytes());
            let error = load(&path).unwrap_err();
            assert!(
                matches!(&error, ConfigError::DriveAllow { line: 5, entry: e, .. } if e == entry),
                "{entry}: {error:?}"
            );
            let shown = error.to_string();
            assert!(shown.contains("line 5, key `backup.allow`"), "{shown}");
            assert!(shown.contains(&format!("{entry:?}")), "{shown}");
            assert!(shown.contains(problem), "{shown}");
            assert!(shown.contains("vendor:product:serial"), "{shown}");
        }
        // Not a list of strings, or an unknown key: the parser's error, naming the key.
        let path = write(
            dir.path(),
            "type.toml",
            b"version = 1\n[backup]\nallow = \"0781\"\n",
        );
        assert!(matches!(
            load(&path),
            Err(ConfigError::Invalid { line: 3, .. })
        ));
        let path = write(
            dir.path(),
            "key.toml",
            b"version = 1\n[backup]\nallowed = []\n",
        );
        assert!(
            load(&path)
                .unwrap_err()
                .to_string()
                .contains("`allow` in `[backup]`")
        );
    }

    #[test]
    fn a_valid_file_allows_soft_cards() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "tessera.toml",
            b"# the terminal\nversion = 1\n\n[cards]\nallow_soft_cards = true\n",
        );
        let loaded = load(&path).unwrap();
        assert_eq!(loaded.source, ConfigSource::File(path, Origin::Flag));
        assert!(loaded.config.cards.allow_soft_cards);
        assert_eq!(
            loaded.config.card_policy(),
            CardPolicy::allowed_by_configuration()
        );
        // The section and the key are optional.
        let path = write(dir.path(), "minimal.toml", b"version = 1\n");
        assert_eq!(load(&path).unwrap().config, TerminalConfig::default());
        let path = write(dir.path(), "empty-section.toml", b"version = 1\n[cards]\n");
        assert_eq!(load(&path).unwrap().config, TerminalConfig::default());
    }

    #[test]
    fn the_firmware_root_is_read_and_a_misspelt_key_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "device.toml",
            b"version = 1\n[firmware]\nroot = \"/var/lib/tessera-firmware\"\n",
        );
        assert_eq!(
            load(&path).unwrap().config.firmware.root,
            Some(PathBuf::from("/var/lib/tessera-firmware"))
        );
        let path = write(
            dir.path(),
            "typo.toml",
            b"version = 1\n[firmware]\nrot = \"/x\"\n",
        );
        let message = message(&path);
        assert!(message.contains("line 3"), "{message}");
        assert!(message.contains("`root` in `[firmware]`"), "{message}");
    }

    #[test]
    fn the_key_the_refusal_names_is_the_key_this_file_reads() {
        assert_eq!(
            quorum::policy::ALLOW_SOFT_CARDS_KEY,
            "cards.allow_soft_cards"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "t.toml",
            b"version = 1\ncards.allow_soft_cards = true\n",
        );
        assert!(load(&path).unwrap().config.cards.allow_soft_cards);
    }

    #[test]
    fn an_unknown_key_is_refused_with_its_line_and_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "typo.toml",
            b"version = 1\n[cards]\nallow_soft_card = true\n",
        );
        let error = load(&path).unwrap_err();
        assert!(
            matches!(error, ConfigError::Invalid { line: 3, .. }),
            "{error:?}"
        );
        let text = error.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains("line 3"), "{text}");
        assert!(text.contains("allow_soft_card"), "{text}");
        assert!(text.contains("unknown field"), "{text}");

        let path = write(
            dir.path(),
            "section.toml",
            b"version = 1\n[link]\nport = 1\n",
        );
        let text = message(&path);
        assert!(text.contains("line 2"), "{text}");
        assert!(text.contains("`link`"), "{text}");
    }

    #[test]
    fn a_value_of_the_wrong_type_is_refused_naming_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "type.toml",
            b"version = 1\n[cards]\nallow_soft_cards = \"yes\"\n",
        );
        let error = load(&path).unwrap_err();
        let text = error.to_string();
        assert!(
            matches!(&error, ConfigError::Invalid { line: 3, key: Some(k), .. } if k == "cards.allow_soft_cards"),
            "{error:?}"
        );
        assert!(text.contains("key `cards.allow_soft_cards`"), "{text}");
        assert!(text.contains(&path.display().to_string()), "{text}");
    }

    #[test]
    fn broken_toml_is_refused_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "broken.toml",
            b"version = 1\n[cards\nallow_soft_cards = true\n",
        );
        let text = message(&path);
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains("line 2"), "{text}");
        assert!(
            text.contains("remove the file to use the defaults"),
            "{text}"
        );
    }

    #[test]
    fn a_missing_or_other_version_is_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "none.toml",
            b"[cards]\nallow_soft_cards = true\n",
        );
        let error = load(&path).unwrap_err();
        assert!(matches!(error, ConfigError::NoVersion { .. }), "{error:?}");
        let text = error.to_string();
        assert!(text.contains("add `version = 1`"), "{text}");
        assert!(text.contains(&path.display().to_string()), "{text}");

        // A version 2 file is refused for its version, not for keys this build does not know.
        let path = write(
            dir.path(),
            "two.toml",
            b"# later\nversion = 2\n[cards]\nallow_soft_cards = true\n[drives]\nallow = []\n",
        );
        let error = load(&path).unwrap_err();
        assert!(
            matches!(&error, ConfigError::Version { line: 2, found, .. } if found == "2"),
            "{error:?}"
        );
        let text = error.to_string();
        assert!(text.contains("version 2 is not supported"), "{text}");
        assert!(text.contains("reads configuration version 1"), "{text}");
        assert!(text.contains("key `version`"), "{text}");

        for bad in [
            &b"version = \"1\"\n"[..],
            b"version = 1.0\n",
            b"version = 0\n",
        ] {
            let path = write(dir.path(), "odd.toml", bad);
            assert!(
                matches!(load(&path), Err(ConfigError::Version { line: 1, .. })),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn a_large_file_is_refused_before_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = b"version = 1\n".to_vec();
        text.resize(MAX_CONFIG_LEN as usize + 1, b'#');
        let path = write(dir.path(), "huge.toml", &text);
        let error = load(&path).unwrap_err();
        assert!(matches!(error, ConfigError::TooLarge { .. }), "{error:?}");
        assert!(error.to_string().contains(&path.display().to_string()));
        // Exactly the bound is read.
        let mut text = b"version = 1\n#".to_vec();
        text.resize(MAX_CONFIG_LEN as usize, b'#');
        let path = write(dir.path(), "bound.toml", &text);
        load(&path).unwrap();
    }

    #[test]
    fn unreadable_and_non_utf8_files_are_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        // A directory cannot be read as a file.
        let error = load(dir.path()).unwrap_err();
        assert!(matches!(error, ConfigError::Read { .. }), "{error:?}");
        let text = error.to_string();
        assert!(text.contains(&dir.path().display().to_string()), "{text}");
        assert!(text.contains("--config"), "{text}");

        let path = write(dir.path(), "latin1.toml", b"version = 1\n# caf\xe9\n");
        let error = load(&path).unwrap_err();
        assert!(
            matches!(error, ConfigError::NotUtf8 { line: 2, .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("not UTF-8"));
    }

    #[test]
    fn the_path_comes_from_the_flag_then_the_environment() {
        let flag = Some(PathBuf::from("a.toml"));
        let env = Some(OsString::from("b.toml"));
        assert_eq!(
            config_path(flag.clone(), env.clone()),
            Some((PathBuf::from("a.toml"), Origin::Flag))
        );
        assert_eq!(
            config_path(None, env),
            Some((PathBuf::from("b.toml"), Origin::Env))
        );
        assert_eq!(config_path(None, Some(OsString::new())), None);
        assert_eq!(config_path(None, None), None);
    }
}
