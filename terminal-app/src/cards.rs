//! `tessera card …`: the officer cards this terminal sees, and a card's signing key exported
//! for `tessera-hsm so add`.
//!
//! `tessera card list` prints one tab-separated row per PC/SC reader and per soft card named
//! with `--soft FILE`, under a header row:
//!
//! ```text
//! location               kind       serial         holder         keys  pin_tries  note
//! Tessera vcard 0 00 00  card       FFFF:7E550001  Alice Example  yes   3          -
//! Tessera vcard 0 00 01  empty      -              -              -     -          no card in the reader
//! /home/ada/ada.card     soft card  SOFT:0001      Ada Demo       yes   -          passphrase only: no PIN retry counter
//! ```
//!
//! (tabs, not spaces). Fields never contain tabs or line breaks: control characters from a card
//! or a reader name are replaced with U+FFFD. A soft card is opened under the terminal's card
//! policy: refused unless the configuration allows soft cards.
//!
//! `tessera card export-key --reader NAME --out FILE` writes the card's Ed25519 signing public
//! key as `ed25519:<64 hex digits>` and a line break — the format `tessera-hsm so add --key`
//! reads — to a new file (an existing one is never overwritten), and reports the holder and
//! serial to pass to `tessera-hsm so add --holder … --serial …`.

use std::fmt::Write as _;
use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use quorum::card::Card as _;
use quorum::{CardError, CardPolicy, PcscCard, SoftCard};

use crate::error::Error;

/// The header row of `tessera card list`.
pub const LIST_HEADER: [&str; 7] = [
    "location",
    "kind",
    "serial",
    "holder",
    "keys",
    "pin_tries",
    "note",
];

/// The prefix of an exported Ed25519 public key (the form `tessera-hsm so add --key` reads).
pub const KEY_FILE_PREFIX: &str = "ed25519:";

/// What `tessera card list` found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listing {
    /// One row per reader, then one per soft card, each of [`LIST_HEADER`]'s columns.
    pub rows: Vec<[String; 7]>,
    /// Things the operator should know that are not a row (for standard error).
    pub notes: Vec<String>,
}

impl Listing {
    /// The header and the rows, tab-separated, one per line.
    pub fn to_tsv(&self) -> String {
        let mut out = LIST_HEADER.join("\t");
        out.push('\n');
        for row in &self.rows {
            out.push_str(&row.join("\t"));
            out.push('\n');
        }
        out
    }
}

/// Lists every PC/SC reader with its card, then the soft cards at `soft` (opened under
/// `policy`: each is refused unless it allows soft cards, before any reader is touched).
///
/// A reader whose card cannot be read gets a row that says why. If PC/SC itself is unavailable
/// (no pcscd), that is an error, unless soft cards were named: then it is a note and the soft
/// cards are listed.
pub fn list_cards(soft: &[PathBuf], policy: CardPolicy) -> Result<Listing, Error> {
    let mut soft_rows = Vec::new();
    for path in soft {
        let card = SoftCard::open(path, policy)?;
        let info = card.info();
        soft_rows.push([
            clean(&path.display().to_string()),
            info.kind().to_owned(),
            clean(&info.serial),
            info.holder.as_deref().map_or_else(|| "-".to_owned(), clean),
            "yes".to_owned(),
            "-".to_owned(),
            "passphrase only: no PIN retry counter".to_owned(),
        ]);
    }
    let mut listing = Listing::default();
    match quorum::pcsc::list_readers() {
        Ok(readers) => {
            for reader in readers {
                listing.rows.push(reader_row(&reader));
            }
        }
        Err(e) if !soft.is_empty() => listing
            .notes
            .push(format!("no smartcard readers listed: {e}")),
        Err(e) => return Err(Error::ListReaders(e)),
    }
    listing.rows.extend(soft_rows);
    Ok(listing)
}

fn reader_row(reader: &str) -> [String; 7] {
    let dash = || "-".to_owned();
    let location = clean(reader);
    match PcscCard::open(reader) {
        Ok(card) => {
            let info = card.info();
            [
                location,
                info.kind().to_owned(),
                clean(&info.serial),
                info.holder.as_deref().map_or_else(dash, clean),
                if card.has_keys() { "yes" } else { "no" }.to_owned(),
                info.pin_retries_left.map_or_else(dash, |n| n.to_string()),
                if card.has_keys() {
                    dash()
                } else {
                    "no keys yet: enrol the card first".to_owned()
                },
            ]
        }
        Err(CardError::Removed) => [
            location,
            "empty".to_owned(),
            dash(),
            dash(),
            dash(),
            dash(),
            "no card in the reader".to_owned(),
        ],
        Err(e) => [
            location,
            "unusable".to_owned(),
            dash(),
            dash(),
            dash(),
            dash(),
            clean(&e.to_string()),
        ],
    }
}

/// A field without tabs, line breaks or other control characters.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

/// The contents of a key file: `ed25519:<64 lowercase hex digits>` and a line break.
pub fn key_file_text(signing_public: &[u8; 32]) -> String {
    let mut out = String::with_capacity(KEY_FILE_PREFIX.len() + 65);
    out.push_str(KEY_FILE_PREFIX);
    for b in signing_public {
        let _ = write!(out, "{b:02x}");
    }
    out.push('\n');
    out
}

/// A card's signing key, written by [`export_key`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportedKey {
    /// The reader the card was in.
    pub reader: String,
    /// The cardholder name, if the card carries one.
    pub holder: Option<String>,
    /// The card's serial.
    pub serial: String,
    /// The Ed25519 signing public key written.
    pub signing_public: [u8; 32],
    /// The file written.
    pub path: PathBuf,
}

impl ExportedKey {
    /// What `tessera card export-key` prints: the file, the holder and serial, and the
    /// `tessera-hsm so add` command that registers the card.
    pub fn report(&self) -> String {
        let holder = self.holder.as_deref().map(clean);
        let serial = clean(&self.serial);
        let path = self.path.display().to_string();
        let mut out = format!(
            "wrote {}: the Ed25519 signing key of card {serial} in \"{}\"\n",
            clean(&path),
            clean(&self.reader)
        );
        let _ = writeln!(
            out,
            "holder: {}",
            holder
                .as_deref()
                .unwrap_or("(none on the card: pass the holder's name to --holder yourself)")
        );
        let _ = writeln!(out, "serial: {serial}");
        let _ = writeln!(
            out,
            "register it: tessera-hsm so add --holder {} --serial {} --key {}",
            shell_quote(holder.as_deref().unwrap_or("HOLDER")),
            shell_quote(&serial),
            shell_quote(&path)
        );
        out
    }
}

/// Quotes for a POSIX shell when needed.
fn shell_quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:/+,=@%".contains(c));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// Opens the card in `reader` and writes its Ed25519 signing public key to `out`, a new file:
/// an existing file is refused, before the card is opened and again when the file is created.
/// A card without keys is refused.
pub fn export_key(reader: &str, out: &Path) -> Result<ExportedKey, Error> {
    let exists = || Error::FileExists {
        path: out.to_owned(),
    };
    if out
        .try_exists()
        .map_err(|e| Error::io("checking", out, e))?
    {
        return Err(exists());
    }
    let card = PcscCard::open(reader).map_err(|source| Error::OpenReader {
        reader: clean(reader),
        source,
    })?;
    let info = card.info();
    if !card.has_keys() {
        return Err(Error::CardWithoutKeys {
            card: info.to_string(),
            reader: clean(reader),
        });
    }
    write_new(out, key_file_text(&info.signing_public).as_bytes()).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            exists()
        } else {
            Error::io("writing the key file", out, e)
        }
    })?;
    Ok(ExportedKey {
        reader: reader.to_owned(),
        holder: info.holder,
        serial: info.serial,
        signing_public: info.signing_public,
        path: out.to_owned(),
    })
}

/// Creates `path` (refusing an existing one), writes `bytes` and syncs; removes the file if the
/// write fails.
fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    if written.is_err() {
        drop(file);
        let _ = fs::remove_file(path);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_file_is_what_tessera_hsm_reads() {
        let text = key_file_text(&[0xab; 32]);
        assert_eq!(text, format!("ed25519:{}\n", "ab".repeat(32)));
    }

    #[test]
    fn fields_and_commands_cannot_break_the_output() {
        assert_eq!(clean("a\tb\nc"), "a\u{fffd}b\u{fffd}c");
        assert_eq!(shell_quote("FFFF:7E550001"), "FFFF:7E550001");
        assert_eq!(shell_quote("Alice Example"), "'Alice Example'");
        assert_eq!(shell_quote("O'Neil"), r"'O'\''Neil'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn an_existing_file_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.txt");
        std::fs::write(&path, b"keep me").unwrap();
        let error = export_key("no such reader", &path).unwrap_err().to_string();
        assert!(error.contains("already exists"), "{error}");
        assert_eq!(std::fs::read(&path).unwrap(), b"keep me");
        assert!(write_new(&path, b"x").is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"keep me");
    }

    #[test]
    fn soft_cards_are_refused_before_any_reader_is_listed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ada.card");
        let error = list_cards(std::slice::from_ref(&path), CardPolicy::hardware_only())
            .unwrap_err()
            .to_string();
        assert!(error.contains(&path.display().to_string()), "{error}");
        assert!(error.contains("allow_soft_cards = true"), "{error}");
    }
}
