//! The TUI's demo fixture: one in-process reference HSM (its store in memory) with a partition,
//! a 2-of-3 PSO set, a 1-of-2 auditor set and the HSM's SO cards (two of Finn's, one of Gia's:
//! four eyes need both people) on soft cards (holders and PINs on the first screen), an application that created keys, used them, was refused now and then, and
//! deleted some into the bin — so every screen has something to show.
//!
//! The HSM's keys are made at once (the first frame names the HSM); the slow part (Argon2 for
//! each soft card, the enrolment ceremonies, the application's history) runs on the worker
//! thread after the first frame.

use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use audit_log::AuditKey;
use rustix::fs::FlockOperation;

use hsm_link::client::{self, ConnectOptions, Connection};
use hsm_link::domain::{KeyAttributes, KeyId, KeyKind, KeyLabel, PartitionId, ServiceTier};
use hsm_link::handshake::client::ClientMode;
use hsm_link::keys::{PublicKey, StaticKeypair};
use hsm_link::message::{AdminRequest, OfficerRole};
use hsm_link::server::{self, ServeOptions};
use hsm_link::transport::memory::{self, MemoryTransport};
use partition_service::access::ApiProvider;
use partition_service::admin::AdminLink;
use partition_service::app_link::{AppAuth, AppConnection, AppRequest, AppResponse};
use partition_service::crypto::HsmKeys;
use partition_service::service::{Clock, Hsm, genesis};
use partition_service::store::Store;
use quorum::ceremony::{AuditorEnrolment, Drill, Enrolment, LoginCeremony};
use quorum::{Argon2Params, Card, CardPolicy, Pin, SoftCard};

use super::message::SlotView;
use super::model::{DemoCard, Target};
use super::worker::{CardReader, InsertedCard, Worker};
use crate::state::{PairedPartition, StateDir};

/// The demo partition's id.
pub const DEMO_PARTITION: &str = "demo-partition";

/// The demo's card policy: its cards are soft cards, labelled so.
pub const DEMO_CARD_POLICY: CardPolicy = CardPolicy::embedded_demo();

/// The demo's cards. Their PINs are public: they are demo cards.
pub const DEMO_CARDS: [DemoCard; 8] = [
    DemoCard {
        set: "PSO",
        holder: "Ada Demo",
        serial: "SOFT:0001",
        pin: "ada-demo-pin",
    },
    DemoCard {
        set: "PSO",
        holder: "Ben Demo",
        serial: "SOFT:0002",
        pin: "ben-demo-pin",
    },
    DemoCard {
        set: "PSO",
        holder: "Cleo Demo",
        serial: "SOFT:0003",
        pin: "cleo-demo-pin",
    },
    DemoCard {
        set: "auditor",
        holder: "Dana Audit",
        serial: "SOFT:0101",
        pin: "dana-demo-pin",
    },
    DemoCard {
        set: "auditor",
        holder: "Eli Audit",
        serial: "SOFT:0102",
        pin: "eli-demo-pin",
    },
    DemoCard {
        set: "SO",
        holder: "Finn Operator",
        serial: "SOFT:0201",
        pin: "finn-demo-pin",
    },
    DemoCard {
        set: "SO",
        holder: "Finn Operator",
        serial: "SOFT:0202",
        pin: "finn-spare-pin",
    },
    DemoCard {
        set: "SO",
        holder: "Gia Operator",
        serial: "SOFT:0203",
        pin: "gia-demo-pin",
    },
];

/// Labels of the application's keys; those marked `true` end in the bin.
const APP_KEYS: [(&str, KeyKind, bool); 14] = [
    ("payments-signing-2026", KeyKind::Ed25519, false),
    ("payments-signing-2025", KeyKind::Ed25519, true),
    ("tls-frontend", KeyKind::EcP256, false),
    ("tls-frontend-old", KeyKind::EcP256, true),
    ("db-column-encryption", KeyKind::Aes256, false),
    ("db-column-encryption-v1", KeyKind::Aes256, true),
    ("backup-wrapping", KeyKind::Aes256, false),
    ("code-signing", KeyKind::Ed25519, false),
    ("test-key-delete-me", KeyKind::Aes256, true),
    ("invoice-signing", KeyKind::EcP256, false),
    ("api-tokens-hmac", KeyKind::Aes256, false),
    ("archive-2024", KeyKind::Aes256, true),
    ("sso-assertions", KeyKind::EcP256, false),
    ("release-signing-rc", KeyKind::Ed25519, true),
];

/// How many signatures the application makes, for a log with history.
const APP_SIGNATURES: usize = 240;

/// The demo state directory's parts (under `<state>/demo`).
pub mod layout {
    /// The finished fixture: published by renaming [`PARTIAL`] once every file is on disk.
    pub const FIXTURE: &str = "fixture";
    /// A fixture being built; one left by an interrupted first start is removed and rebuilt.
    pub const PARTIAL: &str = "fixture.partial";
    /// In a fixture: the HSM's data directory, as `tessera-hsm init` makes it (`device.key`,
    /// `hsm-keys.sealed`, the redb store).
    pub const HSM: &str = "hsm";
    /// In a fixture: the soft card files.
    pub const CARDS: &str = "cards";
    /// In a fixture: the demo terminal's state directory (its identity key and the HSM's
    /// pinned keys, in the formats of the terminal's own state directory).
    pub const TERMINAL: &str = "terminal";
    /// The lock a running `tessera demo` holds, so that a second one (or a reset) does not
    /// pull the state from under it.
    pub const LOCK: &str = ".lock";
    /// The demo terminal's name for the demo partition in its `paired.toml`.
    pub const PAIRED_NAME: &str = "demo";
    /// The address recorded with the pin: the demo's link runs in process and is never
    /// dialled, so the address is one that cannot be (`.invalid` is reserved, RFC 2606).
    pub const PAIRED_ADDRESS: &str = "tcp:demo-in-process.invalid:0";
}

/// Where the demo keeps its HSM, cards and terminal key.
enum Home {
    /// Nothing on disk but the cards in a temporary directory (tests).
    Memory(tempfile::TempDir),
    /// Under `<state>/demo`, locked while the demo runs.
    Disk {
        /// `<state>/demo`.
        root: PathBuf,
        /// Whether the fixture was there already (else it is being built in `PARTIAL`).
        built: bool,
        /// The held lock.
        _lock: std::fs::File,
    },
}

/// The demo HSM, before its cards and history.
pub struct Demo {
    hsm: Arc<Hsm>,
    partition: PartitionId,
    params: Argon2Params,
    test_cards: bool,
    home: Home,
}

impl Demo {
    /// Makes the HSM and its partition in memory, gone with the process. `params` stretches the
    /// soft cards' passphrases; `test_cards` opens cards made with
    /// [`Argon2Params::insecure_for_tests`] (tests only).
    pub fn new(params: Argon2Params, test_cards: bool) -> Result<Demo, String> {
        let hsm = Hsm::with_parts(
            HsmKeys::generate().map_err(|e| text(&e))?,
            Store::in_memory().map_err(|e| text(&e))?,
            Clock::system(),
        );
        let home = Home::Memory(tempfile::tempdir().map_err(|e| text(&e))?);
        Demo::with_hsm(hsm, params, test_cards, home, true)
    }

    /// Opens the demo state in `root` (`<state>/demo`): the fixture a former start built, or,
    /// on the first start, a new HSM in a partial fixture that [`Demo::into_worker`] fills and
    /// publishes. Either is quick (no Argon2, no ceremony): the first frame waits on nothing
    /// slow. Refused while another `tessera demo` holds the same state.
    pub fn open(root: &Path, params: Argon2Params, test_cards: bool) -> Result<Demo, String> {
        let lock = lock(root)?;
        let fixture = root.join(layout::FIXTURE);
        let built = fixture.join(layout::HSM).is_dir();
        let hsm_dir = if built {
            fixture.join(layout::HSM)
        } else {
            let partial = root.join(layout::PARTIAL);
            remove_tree(&partial)?;
            private_dir(&partial).map_err(|e| e.0)?;
            let hsm_dir = partial.join(layout::HSM);
            Hsm::init(&hsm_dir).map_err(|e| format!("{}: {e}", hsm_dir.display()))?;
            hsm_dir
        };
        let hsm = Hsm::open(&hsm_dir, Clock::system()).map_err(|e| {
            format!(
                "opening the demo HSM in {}: {e}; `tessera demo --reset` starts afresh",
                hsm_dir.display()
            )
        })?;
        tracing::info!(
            state = %root.display(),
            first_start = !built,
            "demo state opened"
        );
        let home = Home::Disk {
            root: root.to_path_buf(),
            built,
            _lock: lock,
        };
        Demo::with_hsm(hsm, params, test_cards, home, !built)
    }

    fn with_hsm(
        hsm: Hsm,
        params: Argon2Params,
        test_cards: bool,
        home: Home,
        fresh: bool,
    ) -> Result<Demo, String> {
        let hsm = Arc::new(hsm);
        let partition = PartitionId::new(DEMO_PARTITION).map_err(|e| text(&e))?;
        if fresh {
            hsm.create_partition(partition.clone(), "Demo partition", ServiceTier::Economy)
                .map_err(|e| text(&e))?;
            hsm.set_soft_cards_allowed(true).map_err(|e| text(&e))?;
        }
        Ok(Demo {
            hsm,
            partition,
            params,
            test_cards,
            home,
        })
    }

    /// Whether [`Demo::into_worker`] builds the fixture (the slow first start) rather than
    /// opening one.
    pub fn first_start(&self) -> bool {
        !matches!(self.home, Home::Disk { built: true, .. })
    }

    /// What the first screen names.
    pub fn target(&self) -> Target {
        Target {
            partition_id: DEMO_PARTITION.to_owned(),
            partition_name: "Demo partition".to_owned(),
            hsm_id: self.hsm.keys().hsm_id().to_string(),
            hsm_fingerprint: short(&self.hsm.keys().identity_public().fingerprint().to_string()),
            tier: ServiceTier::Economy.as_str().to_owned(),
            transport: "in-memory link · demo HSM (a simulator, not a certified HSM)".to_owned(),
        }
    }

    /// The demo's cards for the first screen.
    pub fn cards() -> Vec<DemoCard> {
        DEMO_CARDS.to_vec()
    }

    /// On the first start: pairs, enrols the card sets, gives the application a history and
    /// publishes the fixture; on later starts: reads the terminal's key and pin. Then opens the
    /// pinned session the TUI uses (run on the worker thread).
    pub fn into_worker(self) -> Result<Worker, String> {
        let built = !self.first_start();
        let begun = std::time::Instant::now();
        let result = if built { self.reopen() } else { self.build() };
        match &result {
            Ok(_) => tracing::info!(
                built_now = !built,
                ms = begun.elapsed().as_millis(),
                "demo fixture ready"
            ),
            Err(e) => tracing::error!(error = %e, "demo fixture failed"),
        }
        result.map_err(|e| format!("setting up the demo HSM failed: {e:#}"))
    }

    fn build(self) -> anyhow_free::Result<Worker> {
        let (cards_dir, terminal_state) = match &self.home {
            Home::Memory(dir) => (dir.path().to_path_buf(), None),
            Home::Disk { root, .. } => {
                let partial = root.join(layout::PARTIAL);
                private_dir(&partial.join(layout::CARDS))?;
                let state = StateDir::open(partial.join(layout::TERMINAL))?;
                (partial.join(layout::CARDS), Some(state))
            }
        };
        let terminal = match &terminal_state {
            Some(state) => state.identity()?,
            None => StaticKeypair::generate()?,
        };
        let code = self.hsm.issue_pairing_code(&self.partition, genesis())?;
        let mut conn = client::connect(
            serve(&self.hsm),
            &terminal,
            self.partition.clone(),
            ClientMode::Pairing(code),
            ConnectOptions::default(),
        )?;
        let pinned = conn.session().remote_key();
        self.enrol(&mut conn, &cards_dir)?;
        conn.close()?;
        self.application_history()?;
        let cards_dir = match &terminal_state {
            Some(state) => {
                self.pin(state, pinned)?;
                self.publish()?
            }
            None => cards_dir,
        };
        let audit_key = self.hsm.audit_key();
        self.connect(&terminal, pinned, audit_key, cards_dir)
    }

    /// The demo terminal's pin of the HSM's keys, in its `paired.toml`.
    fn pin(&self, state: &StateDir, hsm_key: PublicKey) -> anyhow_free::Result<()> {
        let entry = PairedPartition {
            name: layout::PAIRED_NAME.to_owned(),
            address: layout::PAIRED_ADDRESS.parse().map_err(anyhow_free::Error)?,
            partition: self.partition.clone(),
            hsm_key,
            audit_key: Some(self.hsm.keys().audit_public().to_bytes()),
            paired_unix: crate::pair::now_unix(),
            last_seen_unix: None,
        };
        state
            .update_paired(|list| list.upsert(entry).map(|()| ((), true)))?
            .map_err(anyhow_free::Error)
    }

    /// Makes the partial fixture the fixture: everything in it synced, one rename, the parent
    /// synced. Returns the published cards directory.
    fn publish(&self) -> anyhow_free::Result<PathBuf> {
        let Home::Disk { root, .. } = &self.home else {
            unreachable!("only a fixture on disk is published")
        };
        let partial = root.join(layout::PARTIAL);
        for dir in [layout::HSM, layout::CARDS, layout::TERMINAL] {
            sync_dir(&partial.join(dir))?;
        }
        sync_dir(&partial)?;
        let fixture = root.join(layout::FIXTURE);
        std::fs::rename(&partial, &fixture).map_err(|e| {
            anyhow_free::Error(format!(
                "publishing the demo fixture as {}: {e}",
                fixture.display()
            ))
        })?;
        sync_dir(root)?;
        Ok(fixture.join(layout::CARDS))
    }

    /// A later start: the terminal's key and its pin of the HSM from the fixture.
    fn reopen(self) -> anyhow_free::Result<Worker> {
        let Home::Disk { root, .. } = &self.home else {
            unreachable!("only a fixture on disk is reopened")
        };
        let fixture = root.join(layout::FIXTURE);
        let incomplete = |what: &str| {
            anyhow_free::Error(format!(
                "the demo state in {} has no {what}: `tessera demo --reset` starts afresh",
                fixture.display()
            ))
        };
        let state = StateDir::open(fixture.join(layout::TERMINAL))?;
        let terminal = state
            .load_identity()?
            .ok_or_else(|| incomplete("terminal key"))?;
        let list = state.paired()?;
        let entry = list
            .get(layout::PAIRED_NAME)
            .ok_or_else(|| incomplete("pinned HSM key"))?;
        let audit_key = entry
            .audit_key
            .ok_or_else(|| incomplete("pinned audit key"))?;
        let audit_key = AuditKey::from_bytes(&audit_key)?;
        self.connect(
            &terminal,
            entry.hsm_key,
            audit_key,
            fixture.join(layout::CARDS),
        )
    }

    /// The pinned session and the card reader the worker owns.
    fn connect(
        self,
        terminal: &StaticKeypair,
        pinned: PublicKey,
        audit_key: AuditKey,
        cards_dir: PathBuf,
    ) -> anyhow_free::Result<Worker> {
        let conn = client::connect(
            serve(&self.hsm),
            terminal,
            self.partition.clone(),
            ClientMode::Pinned { hsm: pinned },
            ConnectOptions::default(),
        )?;
        let reader = SoftCardReader {
            cards: DEMO_CARDS
                .iter()
                .map(|c| (card_path(&cards_dir, c.serial), card_label(c)))
                .collect(),
            _home: self.home,
            test_cards: self.test_cards,
        };
        Ok(Worker::new(Box::new(conn), Box::new(reader), audit_key))
    }

    fn enrol(&self, conn: &mut Connection<MemoryTransport>, dir: &Path) -> anyhow_free::Result<()> {
        let mut pso = Enrolment::begin(conn, 2, 3)?;
        let mut cards = Vec::new();
        for c in &DEMO_CARDS[..3] {
            let mut card = self.create_card(dir, c)?;
            pso.add_card(&mut card)?;
            cards.push(card);
        }
        pso.finish(conn)?;
        // Registering the auditor set needs a PSO login: Ada and Ben.
        let mut login = LoginCeremony::start(conn, OfficerRole::Pso)?;
        for card in &mut cards[..2] {
            login.present(card)?;
        }
        login.submit(conn)?;
        // Cleo's card was drilled: its share checked against the commitments, and logged.
        Drill::begin(conn)?.run(conn, &mut cards[2])?;
        let mut auditors = AuditorEnrolment::begin(conn, 1, 2)?;
        for c in &DEMO_CARDS[3..5] {
            let mut card = self.create_card(dir, c)?;
            auditors.add_card(&mut card)?;
        }
        auditors.finish(conn)?;
        // The HSM owner registers the SO cards on the HSM itself (`tessera-hsm so add`).
        for c in &DEMO_CARDS[5..] {
            // Only the public key is registered: no need to verify (one Argon2 run less).
            let pin = Pin::from_slice(c.pin.as_bytes());
            let card = SoftCard::create(
                &card_path(dir, c.serial),
                Some(c.holder),
                c.serial,
                &pin,
                self.params,
                DEMO_CARD_POLICY,
            )?;
            let info = Card::info(&card);
            self.hsm.add_so_card(hsm_link::domain::CardDescription {
                holder: hsm_link::domain::HolderName::new(c.holder)?,
                serial: hsm_link::domain::CardSerial::new(c.serial)?,
                signing_key: info.signing_public,
                soft_card: true,
            })?;
        }
        conn.call(hsm_link::message::Request::Admin(AdminRequest::Logout))?;
        Ok(())
    }

    fn create_card(
        &self,
        dir: &Path,
        c: &DemoCard,
    ) -> anyhow_free::Result<quorum::VerifiedSoftCard> {
        let pin = Pin::from_slice(c.pin.as_bytes());
        let card = SoftCard::create(
            &card_path(dir, c.serial),
            Some(c.holder),
            c.serial,
            &pin,
            self.params,
            DEMO_CARD_POLICY,
        )?;
        Ok(card.verify(&pin).map_err(|(_, e)| e)?)
    }

    /// The application: takes its setup password, creates keys, signs a few hundred times, is
    /// refused through an API that is off, and deletes some keys into the bin.
    fn application_history(&self) -> anyhow_free::Result<()> {
        let hsm = &self.hsm;
        let partition = &self.partition;
        let peer = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let (password, _) = hsm.reset_credentials(partition, genesis())?;
        let mut app = AppConnection::default();
        let auth = AppAuth::SetupPassword(password.to_string());
        hsm.app_authenticate(&mut app, peer, partition, ApiProvider::Jce, &auth)
            .map_err(|e| anyhow_free::Error(format!("application login: {e}")))?;
        let mut run = |request: AppRequest| {
            hsm.app_execute(&mut app, peer, partition, ApiProvider::Jce, request)
                .map_err(|e| anyhow_free::Error(format!("application request: {e}")))
        };
        let mut ids = Vec::new();
        for (label, kind, _) in APP_KEYS {
            let attributes = KeyAttributes {
                extractable: kind == KeyKind::Aes256,
                sensitive: true,
                modifiable: false,
            };
            if let AppResponse::Key(key) = run(AppRequest::Generate {
                kind,
                label: KeyLabel::new(label)?,
                attributes,
                session: false,
            })? {
                ids.push((key.id, kind));
            }
        }
        let signer = ids
            .iter()
            .find(|(_, kind)| *kind == KeyKind::Ed25519)
            .map(|(id, _)| *id)
            .unwrap_or(KeyId(1));
        for i in 0..APP_SIGNATURES {
            run(AppRequest::Sign {
                id: signer,
                message: format!("payment order {i}").into_bytes(),
            })?;
        }
        for ((_, _, to_bin), (id, _)) in APP_KEYS.iter().zip(&ids) {
            if *to_bin {
                run(AppRequest::Delete { id: *id })?;
            }
        }
        // An application that tries an API that is off: refused and logged.
        for _ in 0..3 {
            let _ = hsm.app_authenticate(
                &mut AppConnection::default(),
                peer,
                partition,
                ApiProvider::Cng,
                &auth,
            );
        }
        Ok(())
    }
}

/// Removes the demo state in `root` (`<state>/demo`: the HSM, the cards, the demo terminal's
/// key and pin, the drive directory, all of it), refused while a `tessera demo` runs on it.
/// Nothing there is missing afterwards, so the next start builds the fixture afresh.
pub fn reset(root: &Path) -> Result<(), String> {
    if !root.exists() {
        return Ok(());
    }
    let _lock = lock(root)?;
    remove_tree(root)
}

/// Takes `root`'s lock (creating `root`, 0700, if missing); refused while another
/// `tessera demo` holds it.
fn lock(root: &Path) -> Result<std::fs::File, String> {
    private_dir(root).map_err(|e| e.0)?;
    let path = root.join(layout::LOCK);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| format!("opening the demo's lock {}: {e}", path.display()))?;
    match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Err(format!(
            "another `tessera demo` is running on the demo state in {}: quit it first",
            root.display()
        )),
        Err(e) => Err(format!("locking {}: {e}", path.display())),
    }
}

/// A private (0700) directory, made if missing; refused if it is not private.
fn private_dir(path: &Path) -> anyhow_free::Result<()> {
    StateDir::open(path)?;
    Ok(())
}

fn remove_tree(path: &Path) -> Result<(), String> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("removing {}: {e}", path.display())),
    }
}

fn sync_dir(path: &Path) -> anyhow_free::Result<()> {
    std::fs::File::open(path)
        .and_then(|d| d.sync_all())
        .map_err(|e| anyhow_free::Error(format!("syncing {}: {e}", path.display())))
}

fn text(e: &dyn std::fmt::Display) -> String {
    e.to_string()
}

fn short(fingerprint: &str) -> String {
    fingerprint.chars().take(23).collect()
}

fn card_path(dir: &Path, serial: &str) -> PathBuf {
    dir.join(format!("{}.card", serial.replace(':', "-")))
}

fn card_label(c: &DemoCard) -> String {
    format!("soft card {} ({}, {} set)", c.serial, c.holder, c.set)
}

fn serve(hsm: &Arc<Hsm>) -> MemoryTransport {
    let (near, mut far) = memory::pair();
    let hsm = Arc::clone(hsm);
    std::thread::spawn(move || {
        let admin = AdminLink::new(Arc::clone(&hsm));
        let _ = server::serve_connection(
            &mut far,
            hsm.keys().identity(),
            &ServeOptions::default(),
            &*hsm,
            &admin,
        );
    });
    near
}

/// The demo's "reader": its soft cards, each a slot; inserting one opens its file.
struct SoftCardReader {
    cards: Vec<(PathBuf, String)>,
    /// Keeps the cards' temporary directory, or the demo state's lock, while the TUI runs.
    _home: Home,
    test_cards: bool,
}

impl CardReader for SoftCardReader {
    fn slots(&self) -> Vec<SlotView> {
        self.cards
            .iter()
            .map(|(_, label)| SlotView {
                label: label.clone(),
            })
            .collect()
    }

    fn insert(&mut self, slot: usize) -> Result<Box<dyn InsertedCard>, String> {
        let (path, _) = self.cards.get(slot).ok_or("no such card slot")?;
        let card = if self.test_cards {
            SoftCard::open_test_card(path)
        } else {
            SoftCard::open(path, DEMO_CARD_POLICY)
        };
        card.map(|c| Box::new(c) as Box<dyn InsertedCard>)
            .map_err(|e| e.to_string())
    }

    fn create_soft_card(
        &mut self,
        holder: &str,
        passphrase: &Pin,
    ) -> Result<(quorum::CardInfo, PathBuf), crate::flows::newcard::NewCardError> {
        let serial = format!("SOFT:{:04}", 900 + self.cards.len());
        // Beside the demo's own cards (their directory in the demo state, or the tests').
        let dir = self
            .cards
            .first()
            .and_then(|(p, _)| p.parent())
            .map(Path::to_path_buf)
            .ok_or_else(|| {
                crate::flows::newcard::NewCardError::Other(
                    "the demo has no card directory".to_owned(),
                )
            })?;
        let path = card_path(&dir, &serial);
        let params = if self.test_cards {
            Argon2Params::insecure_for_tests()
        } else {
            Argon2Params::production()
        };
        let card = SoftCard::create(
            &path,
            Some(holder),
            &serial,
            passphrase,
            params,
            DEMO_CARD_POLICY,
        )?;
        let info = Card::info(&card);
        self.cards
            .push((path.clone(), format!("soft card {serial} ({holder}, new)")));
        Ok((info, path))
    }

    fn pin_card(&mut self, slot: usize) -> Result<Box<dyn crate::flows::pin::PinCard>, String> {
        let (path, _) = self.cards.get(slot).ok_or("no such card slot")?;
        let card = if self.test_cards {
            SoftCard::open_test_card(path)
        } else {
            SoftCard::open(path, DEMO_CARD_POLICY)
        };
        card.map(|c| Box::new(c) as Box<dyn crate::flows::pin::PinCard>)
            .map_err(|e| e.to_string())
    }
}

/// A small error type for the fixture (a library takes no `anyhow`): the message of whatever
/// failed.
mod anyhow_free {
    /// The fixture's error: what failed, as text.
    #[derive(Debug)]
    pub(super) struct Error(pub(super) String);

    impl std::fmt::Display for Error {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }

    impl<E: std::error::Error> From<E> for Error {
        fn from(e: E) -> Self {
            Error(e.to_string())
        }
    }

    /// The fixture's result.
    pub(super) type Result<T> = std::result::Result<T, Error>;
}
