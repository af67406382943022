//! What flows between the parts: [`Message`]s into `update`, [`Effect`]s out of it,
//! [`Command`]s to the worker and [`Event`]s back from it.
//!
//! Nothing here carries a PIN or a share, except [`LoginCommand::Verify`], which the runtime
//! builds from its zeroizing PIN buffer and hands straight to the worker.

use hsm_link::domain::{
    CardDescription, HolderName, KeyId, KeyObjectSummary, PartitionConfig, PartitionUsage,
};
use hsm_link::message::{KeyQuery, LogQuery, LogSpace, OfficerRole};
use quorum::Pin;
use ratatui::crossterm::event::KeyEvent;

/// An input to `update`.
#[derive(Debug)]
pub enum Message {
    /// A key was pressed.
    Key(KeyEvent),
    /// Time passed: milliseconds since the terminal started (monotonic).
    Tick {
        /// Now.
        now_ms: u64,
    },
    /// The worker reported.
    Worker(Event),
}

/// What `update` asks the runtime to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Effect {
    /// Send a command to the worker.
    Send(Command),
    /// Append a typed character to the PIN buffer (which the model never sees).
    PinPush(char),
    /// Erase the PIN buffer's last character.
    PinPop,
    /// Wipe the PIN buffer.
    PinClear,
    /// Hand the PIN buffer to the worker (for a login or a drill) and wipe it.
    SubmitPin(PinFor),
    /// Leave the TUI.
    Quit,
    /// Leave the TUI for the list it was opened from (the demo HSM's partitions).
    Leave,
}

/// Which step a submitted PIN is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinFor {
    /// [`LoginCommand::Verify`].
    Login,
    /// [`DrillCommand::Verify`].
    Drill,
    /// [`ReshareCommand::Verify`](crate::flows::reshare::ReshareCommand::Verify).
    Reshare,
    /// [`RevokeCommand::Verify`](crate::flows::revoke::RevokeCommand::Verify).
    Revoke,
    /// [`PinCommand::Entry`](crate::flows::pin::PinCommand::Entry).
    Pin,
    /// [`EnrolCommand::Verify`](crate::flows::enrol::EnrolCommand::Verify).
    Enrol,
    /// [`NewCardCommand::Entry`](crate::flows::newcard::NewCardCommand::Entry).
    NewCard,
}

/// A step of a share drill.
#[derive(Debug)]
pub enum DrillCommand {
    /// The card in this slot was inserted.
    Insert(usize),
    /// Its PIN (from the zeroizing buffer).
    Verify(Pin),
}

impl PartialEq for DrillCommand {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (DrillCommand::Insert(a), DrillCommand::Insert(b)) => a == b,
            (DrillCommand::Verify(_), DrillCommand::Verify(_)) => true,
            _ => false,
        }
    }
}

impl Eq for DrillCommand {}

/// A share drill's step outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DrillEvent {
    /// The card is in: its PIN next.
    Inserted(CardView),
    /// Wrong PIN; the card stays.
    WrongPin(CardView),
    /// The drill ran.
    Done {
        /// The card.
        card: CardView,
        /// Whether its share is good.
        ok: bool,
        /// What the HSM recorded, or what was wrong.
        detail: String,
    },
    /// It could not run: why.
    Failed(String),
}

/// A request to the worker, which owns the link and the cards.
#[derive(Debug)]
pub enum Command {
    /// Read what the dashboard shows.
    Refresh,
    /// A step of a login.
    Login(LoginCommand),
    /// End the officers' login at the HSM.
    Logout,
    /// Read the configuration.
    LoadConfig,
    /// Apply a staged configuration against the revision it was read at.
    ApplyConfig {
        /// The revision read.
        expected_revision: u64,
        /// The whole new configuration.
        config: Box<PartitionConfig>,
    },
    /// A page of keys.
    Keys(KeyQuery),
    /// Take a key out of the bin.
    Restore(KeyId),
    /// Delete a key in the bin for good.
    Purge(KeyId),
    /// A page of the log.
    Log(LogQuery),
    /// Reset the application's credentials.
    ResetCredentials,
    /// A step of a share drill.
    Drill(DrillCommand),
    /// A step of a re-share.
    Reshare(crate::flows::reshare::ReshareCommand),
    /// A step of a revocation.
    Revoke(crate::flows::revoke::RevokeCommand),
    /// A step of a PIN change or unblock.
    Pin(crate::flows::pin::PinCommand),
    /// A step of an enrolment.
    Enrol(crate::flows::enrol::EnrolCommand),
    /// A step of a new card's set-up.
    NewCard(crate::flows::newcard::NewCardCommand),
    /// A step of the Backup screen.
    Backup(crate::flows::backup::BackupCommand),
    /// Open the link to the paired HSM again after it was lost.
    Reconnect,
    /// The partition's paired terminals: list, revoke, a new pairing code.
    Terminals(crate::flows::terminals::TerminalsCommand),
    /// A step on the terminal's firmware.
    Firmware(crate::flows::firmware::FirmwareCommand),
    /// A step of a log export.
    LogExport(crate::flows::log_export::LogExportCommand),
}

/// Equality for tests: commands compare by what they ask, a PIN never compares equal.
impl PartialEq for Command {
    fn eq(&self, other: &Self) -> bool {
        use Command::*;
        match (self, other) {
            (Refresh, Refresh)
            | (Logout, Logout)
            | (LoadConfig, LoadConfig)
            | (ResetCredentials, ResetCredentials) => true,
            (Login(a), Login(b)) => a == b,
            (
                ApplyConfig {
                    expected_revision: a,
                    config: c,
                },
                ApplyConfig {
                    expected_revision: b,
                    config: d,
                },
            ) => a == b && c == d,
            (Keys(a), Keys(b)) => a == b,
            (Restore(a), Restore(b)) | (Purge(a), Purge(b)) => a == b,
            (Log(a), Log(b)) => a == b,
            (Drill(a), Drill(b)) => a == b,
            (Reshare(a), Reshare(b)) => a == b,
            (Revoke(a), Revoke(b)) => a == b,
            (Pin(a), Pin(b)) => a == b,
            (Enrol(a), Enrol(b)) => a == b,
            (NewCard(a), NewCard(b)) => a == b,
            (Backup(a), Backup(b)) => a == b,
            (Reconnect, Reconnect) => true,
            (Terminals(a), Terminals(b)) => a == b,
            (Firmware(a), Firmware(b)) => a == b,
            (LogExport(a), LogExport(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Command {}

/// A step of a login ceremony.
#[derive(Debug)]
pub enum LoginCommand {
    /// Ask the HSM for a challenge for this role.
    Start(OfficerRole),
    /// The card in this slot was inserted (the demo: chosen from its soft cards).
    Insert(usize),
    /// The PIN for the inserted card (from the zeroizing buffer; never stored in the model).
    Verify(Pin),
    /// Abandon the login: drop the challenge and the inserted card.
    Cancel,
}

impl PartialEq for LoginCommand {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (LoginCommand::Start(a), LoginCommand::Start(b)) => a == b,
            (LoginCommand::Insert(a), LoginCommand::Insert(b)) => a == b,
            // Two PINs are never compared.
            (LoginCommand::Verify(_), LoginCommand::Verify(_)) => true,
            (LoginCommand::Cancel, LoginCommand::Cancel) => true,
            _ => false,
        }
    }
}

impl Eq for LoginCommand {}

/// A report from the worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The link and the cards are ready; the cards within reach.
    Ready {
        /// The slots (readers, or the demo's soft cards).
        slots: Vec<SlotView>,
    },
    /// Setting up failed (the demo fixture, or the connection).
    SetupFailed(String),
    /// A login step's outcome.
    Login(LoginEvent),
    /// The login ended at the HSM.
    LoggedOut,
    /// What the dashboard shows.
    Status(Box<StatusView>),
    /// The configuration as read.
    Config(Box<PartitionConfig>),
    /// When each PSO card last passed a share drill (from the log).
    Drills(Vec<DrillView>),
    /// The staged configuration was applied: its new revision.
    ConfigApplied {
        /// The new revision.
        revision: u64,
    },
    /// The HSM refused the configuration; nothing was applied.
    ConfigRefused {
        /// The HSM's reason.
        reason: String,
        /// The current revision, when the refusal was a stale revision.
        stale: Option<u64>,
    },
    /// A page of keys.
    Keys {
        /// The query it answers.
        query: Box<KeyQuery>,
        /// The keys, in the list's order.
        keys: Vec<KeyObjectSummary>,
        /// Whether more follow in the direction read.
        more: bool,
        /// How many keys match, when the query asked.
        matching: Option<u64>,
    },
    /// A key left the bin; the usage after.
    Restored {
        /// The key.
        id: KeyId,
        /// Usage after.
        usage: PartitionUsage,
    },
    /// A key was purged; the usage after.
    Purged {
        /// The key.
        id: KeyId,
        /// Usage after.
        usage: PartitionUsage,
        /// Bytes freed.
        freed: u64,
    },
    /// A key action was refused or failed.
    KeyActionFailed(String),
    /// A page of the log, parsed, with the verification of what was read so far.
    Log(Box<LogPageView>),
    /// New application credentials, to show once.
    Credentials {
        /// The setup password (wiped when dropped).
        password: crate::flows::credentials::ShownOnce,
        /// When it expires, seconds since the epoch.
        expires_unix: u64,
    },
    /// The HSM refused the reset: why.
    CredentialsRefused(String),
    /// A share drill's step.
    Drill(DrillEvent),
    /// A re-share's step.
    Reshare(crate::flows::reshare::ReshareEvent),
    /// A revocation's step.
    Revoke(crate::flows::revoke::RevokeEvent),
    /// A PIN change's or unblock's step.
    Pin(crate::flows::pin::PinEvent),
    /// An enrolment's step.
    Enrol(crate::flows::enrol::EnrolEvent),
    /// A new card's set-up step.
    NewCard(crate::flows::newcard::NewCardEvent),
    /// The Backup screen's step.
    Backup(crate::flows::backup::BackupEvent),
    /// The terminal's firmware: read, progress, done.
    Firmware(crate::flows::firmware::FirmwareEvent),
    /// A log export's step.
    LogExport(crate::flows::log_export::LogExportEvent),
    /// A request failed without an answer from the HSM.
    Failed(String),
    /// The link is gone.
    LinkLost(String),
    /// The card readers changed: a card was inserted or removed.
    Readers(super::pcsc_reader::ReaderReport),
    /// The paired terminals' screen: a step's outcome.
    Terminals(crate::flows::terminals::TerminalsEvent),
}

/// A PSO card and its last passed share drill.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DrillView {
    /// The holder.
    pub holder: String,
    /// The serial.
    pub serial: String,
    /// When it last passed (UTC text), if ever (as far as the log read says).
    pub last_passed: Option<String>,
}

/// A card slot (a reader, or a demo soft card within reach).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotView {
    /// What the slot shows, e.g. `soft card SOFT:0001 (Ada Demo)`.
    pub label: String,
}

/// A card as shown: holder, serial, kind, tries left.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardView {
    /// The holder, if the card names one.
    pub holder: Option<String>,
    /// The serial.
    pub serial: String,
    /// A soft card.
    pub soft: bool,
    /// PIN tries left, if the card counts them.
    pub tries_left: Option<u8>,
}

impl CardView {
    /// `soft card SOFT:0001 (Ada Demo)`.
    pub fn name(&self) -> String {
        let kind = if self.soft { "soft card" } else { "card" };
        match &self.holder {
            Some(holder) => format!("{kind} {} ({holder})", self.serial),
            None => format!("{kind} {}", self.serial),
        }
    }

    /// `3 tries left`, or why there is no count.
    pub fn tries_text(&self) -> String {
        match self.tries_left {
            Some(1) => "1 try left".to_owned(),
            Some(n) => format!("{n} tries left"),
            None if self.soft => "no retry counter (soft card)".to_owned(),
            None => "tries left not reported".to_owned(),
        }
    }
}

/// Why a card was set aside before or after its PIN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CardRefusal {
    /// Its PIN is blocked.
    Blocked,
    /// It belongs to another card set.
    NotInSet,
    /// It already signed in this login.
    SameCardTwice,
}

/// A login step's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoginEvent {
    /// The HSM's challenge: how many cards, and which.
    Started {
        /// The role.
        role: OfficerRole,
        /// m.
        threshold: usize,
        /// The set's cards.
        cards: Vec<CardDescription>,
    },
    /// A card was inserted: its PIN is next.
    Inserted(CardView),
    /// The PIN was wrong; the card stays inserted.
    WrongPin(CardView),
    /// The card was set aside.
    Refused {
        /// The card.
        card: CardView,
        /// Why.
        why: CardRefusal,
    },
    /// The card signed: `have` of `need`.
    Signed {
        /// The card.
        card: CardView,
        /// Cards signed.
        have: usize,
        /// Cards needed.
        need: usize,
    },
    /// The HSM logged the officers in.
    LoggedIn {
        /// The role.
        role: OfficerRole,
        /// The holders it logged.
        holders: Vec<HolderName>,
        /// The log's fill level, when the HSM warns.
        log_warning: Option<LogSpace>,
    },
    /// The login failed or was refused.
    Failed {
        /// The reason, as the HSM or the card gave it.
        reason: String,
        /// The HSM's wait before the next try, when throttled.
        retry_after_secs: Option<u64>,
    },
}

/// What the dashboard shows, read over the link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusView {
    /// Space and objects used.
    pub usage: PartitionUsage,
    /// The configuration (quota, object limit, a few switches).
    pub config: PartitionConfig,
    /// The newest log entry read.
    pub log_head: Option<u64>,
    /// The newest signed checkpoint read.
    pub last_checkpoint: Option<u64>,
    /// The log's fill level, when the HSM reported it.
    pub log_space: Option<LogSpace>,
    /// The log's status (entries, not yet exported, limit, policy), when the HSM answers it.
    pub log_status: Option<hsm_link::message::LogStatus>,
}

/// One log line as shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRow {
    /// Sequence number.
    pub seq: u64,
    /// Time, `YYYY-MM-DD HH:MM:SS` UTC.
    pub time: String,
    /// Role.
    pub role: String,
    /// Holders, comma-separated.
    pub holders: String,
    /// Operation, or `checkpoint`.
    pub operation: String,
    /// Object, if any.
    pub object: String,
    /// `ok`, `refused` or `failed`.
    pub outcome: String,
    /// The refusal's or failure's reason.
    pub reason: String,
}

/// How far the log read so far is verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verification {
    /// Nothing read yet.
    NotYet,
    /// Read from the first entry, unfiltered: the chain and every checkpoint verified.
    Chain {
        /// Entries verified.
        entries: u64,
        /// Checkpoints verified against the pinned audit key.
        checkpoints: u64,
        /// The newest signed checkpoint's sequence number.
        last_checkpoint: Option<u64>,
        /// Entries after it (not yet covered by a signature).
        unsigned_tail: u64,
    },
    /// A filtered read: each entry's own hash checked, the chain cannot be.
    EntriesOnly {
        /// Entries checked.
        entries: u64,
    },
    /// A line failed verification.
    Broken(String),
}

/// A page of the log, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogPageView {
    /// The query it answers.
    pub query: LogQuery,
    /// The rows.
    pub rows: Vec<LogRow>,
    /// Where the next page starts.
    pub next_seq: Option<u64>,
    /// What is verified so far.
    pub verification: Verification,
    /// The log's fill level, when the HSM warned.
    pub space: Option<LogSpace>,
}
