//! The TUI against a paired HSM (`tessera` and the chooser, `tessera open NAME`): the worker
//! owns the pinned link (TCP or serial, Noise KK against the key pinned at pairing) and a
//! [`PcscReader`] (PC/SC readers, and soft cards where the configuration allows them); log
//! checkpoints are verified against the audit key pinned for the partition.
//!
//! Its part of the model, [`PairedSession`], adds what a real HSM and real readers bring: a
//! lost link is opened again on a key (the session at the HSM ended with it), and removing a
//! card that signed the login and was still in its reader when the login completed ends the
//! session (the terminal configuration's `[cards] keep_session_on_card_removal` turns that
//! off).

use std::path::PathBuf;

use audit_log::AuditKey;
use quorum::CardPolicy;
use quorum::ceremony::Link;

use super::message::{Command, Effect};
use super::model::{Level, LinkState, Model, Target};
use super::pcsc_reader::{PcscReader, ReaderReport};
use super::worker::Worker;
use crate::error::Error;
use crate::pair;
use crate::state::{Address, PairedPartition, StateDir};

/// The model's part for a paired HSM (all off in the demo).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PairedSession {
    /// The link can be opened again after it was lost.
    pub reconnect: bool,
    /// Removing a card that signed the login ends the session.
    pub end_on_card_removal: bool,
    /// The serials of the smartcards in a reader, as last reported.
    pub present: Vec<String>,
    /// The serials whose removal ends the session: cards that signed the login and were in a
    /// reader when it completed.
    pub watched: Vec<String>,
}

/// How `tessera` opens a paired partition.
#[derive(Clone, Debug)]
pub struct PairedOptions {
    /// Idle time, in seconds, after which a session is locked.
    pub idle_lock_secs: u64,
    /// The terminal configuration's card policy.
    pub policy: CardPolicy,
    /// Where soft cards are listed from (when the policy allows them).
    pub soft_card_dir: Option<PathBuf>,
    /// Removing a card that signed the login ends the session.
    pub end_on_card_removal: bool,
    /// The device's firmware root (`[firmware] root`), for the Firmware screen.
    pub firmware_root: Option<PathBuf>,
    /// The drive allow-list (`[backup] allow`), for the Backup screen.
    pub drive_allow: Option<usb_backup::drive::allow::AllowList>,
}

/// The audit key log checkpoints are verified against: the one pinned for `entry`, else the
/// one given; none is an error that says what to do (before the TUI opens).
pub fn audit_key(entry: &PairedPartition, given: Option<AuditKey>) -> Result<AuditKey, Error> {
    let pinned = entry
        .audit_key
        .map(|bytes| AuditKey::from_bytes(&bytes))
        .transpose()
        .map_err(|e| Error::Usage(format!("the audit key pinned for {}: {e}", entry.name)))?;
    match (pinned, given) {
        (Some(pinned), Some(given)) if pinned.to_bytes() != given.to_bytes() => Err(Error::Usage(
            format!("--key is not the audit key pinned for {}", entry.name),
        )),
        (Some(key), _) | (None, Some(key)) => Ok(key),
        (None, None) => Err(Error::Usage(format!(
            "log verification needs the HSM's audit key, and none is pinned for {}: pair again \
             (`tessera pair` pins it), or open it with `tessera open {} --key KEY_FILE` (a \
             fingerprint alone cannot check signatures)",
            entry.name, entry.name
        ))),
    }
}

/// `--key`: the audit key's file (as `tessera log export --key` reads it). A fingerprint is
/// refused: the TUI checks the log's signatures, which needs the key itself.
pub fn parse_audit_key(given: &str) -> Result<AuditKey, Error> {
    match crate::log_verify::parse_key(given) {
        Ok(audit_log::KeyPin::Key(key)) => Ok(key),
        Ok(_) => Err(Error::Usage(
            "--key: a fingerprint cannot check the log's signatures: give the audit key's file"
                .to_owned(),
        )),
        Err(e) => Err(Error::Usage(format!("--key: {e}"))),
    }
}

/// Whether standard input and output are a terminal (the TUI needs one).
pub fn is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

/// What the first screen names for `entry`.
pub fn target(entry: &PairedPartition) -> Target {
    let transport = match &entry.address {
        Address::Tcp(host_port) => format!("TCP {host_port} · Noise KK, HSM key pinned"),
        Address::Serial(device) => {
            format!("serial {} · Noise KK, HSM key pinned", device.display())
        }
    };
    Target {
        partition_id: entry.partition.as_str().to_owned(),
        partition_name: entry.name.clone(),
        // Until the first status arrives (flows::dashboard::on_status) only the address is known.
        hsm_id: format!("at {}", entry.address),
        hsm_fingerprint: entry.fingerprint().to_string(),
        tier: "not read yet".to_owned(),
        transport,
    }
}

/// Runs the TUI against the paired partition `entry`, log checkpoints verified against `key`
/// ([`audit_key`]); the terminal's identity is read from `state_path`. The connection is made
/// on the worker thread, after the first frame.
pub fn run_paired(
    state_path: PathBuf,
    entry: PairedPartition,
    key: AuditKey,
    options: PairedOptions,
) -> std::io::Result<()> {
    let mut model = Model::new(target(&entry), Vec::new());
    model.idle_lock_ms = options.idle_lock_secs.saturating_mul(1000);
    model.firmware.root = options.firmware_root.clone();
    model.paired = PairedSession {
        reconnect: true,
        end_on_card_removal: options.end_on_card_removal,
        ..PairedSession::default()
    };
    let theme = super::theme::Theme::for_terminal(super::theme::Theme::no_color_from_env());
    let setup = move || -> Result<Worker, String> {
        let connect = connector(state_path, entry);
        let link = connect()?;
        let reader = PcscReader::new(options.soft_card_dir.as_deref(), options.policy);
        let mut worker = Worker::new(link, Box::new(reader), key).with_reconnect(Box::new(connect));
        worker.backup = crate::flows::backup::BackupWork::new(
            usb_backup::drive::discover::SysRoot::default(),
            options.drive_allow,
        );
        Ok(worker)
    };
    super::run(model, setup, theme)
}

/// Opens a pinned session with `entry` (TCP or serial, as its address says; the identity from
/// the state directory at `state_path`), as often as called: the worker's first link and its
/// reconnections.
pub fn connector(
    state_path: PathBuf,
    entry: PairedPartition,
) -> impl Fn() -> Result<Box<dyn Link + Send>, String> + Send + 'static {
    move || {
        let state = StateDir::open(&state_path).map_err(|e| e.to_string())?;
        pair::connect_pinned(&state, &entry, pair::now_unix())
            .map(|conn| Box::new(Polite(Some(conn))) as Box<dyn Link + Send>)
            .map_err(|e| e.to_string())
    }
}

/// A pinned session that says goodbye when it is let go (on quitting, and before a reconnect):
/// the HSM ends it at once instead of waiting for its idle timeout, and a serial line, which
/// carries one session at a time, is free for the next.
struct Polite(Option<pair::AnyConnection>);

impl Polite {
    fn conn(&self) -> &pair::AnyConnection {
        self.0
            .as_ref()
            .expect("the connection is there until dropped")
    }

    fn conn_mut(&mut self) -> &mut pair::AnyConnection {
        self.0
            .as_mut()
            .expect("the connection is there until dropped")
    }
}

impl Link for Polite {
    fn admin(
        &mut self,
        request: hsm_link::message::AdminRequest,
    ) -> Result<hsm_link::message::AdminResponse, quorum::ceremony::LinkError> {
        self.conn_mut().admin(request)
    }

    fn channel_binding(&self) -> [u8; 32] {
        self.conn().channel_binding()
    }

    fn partition(&self) -> &hsm_link::domain::PartitionId {
        Link::partition(self.conn())
    }
}

impl Drop for Polite {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            // A lost link fails to say goodbye; nothing more to do then.
            let _ = conn.close();
        }
    }
}

/// The readers changed: the slots shown follow, and a removed card that signed the login ends
/// the session.
pub fn on_readers(model: &mut Model, report: ReaderReport) -> Vec<Effect> {
    model.login.slots = report.slots;
    model.paired.present = report.present;
    if model.session.is_none() {
        model.paired.watched.clear();
        return Vec::new();
    }
    let gone: Vec<String> = model
        .paired
        .watched
        .iter()
        .filter(|serial| !model.paired.present.contains(serial))
        .cloned()
        .collect();
    if gone.is_empty() || !model.paired.end_on_card_removal {
        return Vec::new();
    }
    model.paired.watched.clear();
    super::update::end_session(model);
    model.notify(
        Level::Warn,
        format!(
            "Card {} was removed: the session ended at the HSM. Log in again with the cards.",
            gone.join(", ")
        ),
    );
    vec![Effect::PinClear, Effect::Send(Command::Logout)]
}

/// The login completed: the smartcards that signed it and are still in a reader are watched.
/// Called before the login flow forgets its cards.
pub fn on_logged_in(model: &mut Model) {
    model.paired.watched = model
        .login
        .signed
        .iter()
        .filter(|card| !card.soft && model.paired.present.contains(&card.serial))
        .map(|card| card.serial.clone())
        .collect();
}

/// The link was lost: the session at the HSM ended with it.
pub fn on_link_lost(model: &mut Model) {
    if model.paired.reconnect && model.session.is_some() {
        super::update::end_session(model);
        model.paired.watched.clear();
    }
}

/// A login was asked for while the link is lost: open it again, when it can be.
pub fn reconnect(model: &mut Model) -> Option<Vec<Effect>> {
    if !model.paired.reconnect || !matches!(model.link, LinkState::Lost(_)) {
        return None;
    }
    model.link = LinkState::Connecting;
    model.notify(Level::Info, "Connecting to the HSM again…");
    Some(vec![Effect::Send(Command::Reconnect)])
}

#[cfg(test)]
mod tests {
    use hsm_link::domain::PartitionId;
    use hsm_link::keys::PublicKey;

    use super::*;

    fn entry(audit_key: Option<[u8; 32]>) -> PairedPartition {
        PairedPartition {
            name: "pay".to_owned(),
            address: "tcp:127.0.0.1:7700".parse().unwrap(),
            partition: PartitionId::new("p1").unwrap(),
            hsm_key: PublicKey([7; 32]),
            audit_key,
            paired_unix: 1,
            last_seen_unix: None,
        }
    }

    fn key(seed: u8) -> AuditKey {
        audit_log::AuditSigner::from_secret_bytes(&[seed; 32]).public()
    }

    #[test]
    fn the_audit_key_is_the_pinned_one_or_a_key_file_never_a_fingerprint() {
        let pinned = key(1);
        let from_pin = audit_key(&entry(Some(pinned.to_bytes())), None).unwrap();
        assert_eq!(from_pin.to_bytes(), pinned.to_bytes());
        // Given and pinned must agree.
        let e = audit_key(&entry(Some(pinned.to_bytes())), Some(key(2))).unwrap_err();
        assert!(e.to_string().contains("not the audit key pinned"), "{e}");
        // Neither: says how to get one.
        let e = audit_key(&entry(None), None).unwrap_err().to_string();
        assert!(e.contains("none is pinned for pay"), "{e}");
        assert!(e.contains("tessera open pay --key KEY_FILE"), "{e}");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("audit.key");
        std::fs::write(&file, audit_log::KeyPin::key_file(&key(3))).unwrap();
        let given = parse_audit_key(file.to_str().unwrap()).unwrap();
        assert_eq!(given.to_bytes(), key(3).to_bytes());
        let fingerprint = key(3).fingerprint().to_string();
        let e = parse_audit_key(&fingerprint).unwrap_err().to_string();
        assert!(e.contains("a fingerprint cannot check"), "{e}");
    }
}
