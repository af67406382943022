//! The TUI's demo fixture: one in-process reference HSM (its store in `<state>/demo`, or in
//! memory for tests) with two partitions ([`PARTITIONS`]):
//! - "Demo partition": a 2-of-3 PSO set, a 1-of-2 auditor set, an application that created
//!   keys, used them, was refused now and then, and deleted some into the bin — so every
//!   screen has something to show;
//! - "Passports": a fresh partition with no PSO set yet, so that enrolling one card by card
//!   (Cards, `e`) can be tried, with the three blank [`SPARE_CARDS`];
//!
//! and the HSM's SO cards (two of Finn's, one of Gia's: four eyes need both people), all soft
//! cards whose holders and PINs are on the first screen.
//!
//! - [`home`]: the state directory, its lock, its reset, the partial fixture and its publishing;
//! - [`fixture`]: the slow part built once (Argon2 for each soft card, the ceremonies, the
//!   application's history);
//! - [`cards`]: the cards and the demo's soft-card "reader";
//! - [`partitions`]: the first screen, the list of the demo HSM's partitions;
//! - [`run()`]: `tessera demo` itself, the list and the TUI in turn.
//!
//! The HSM's keys are made at once (the first frame names the HSM); the slow part runs on a
//! thread after the first frame ([`Demo::prepare_in_background`]), while the user reads the
//! partition list.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use audit_log::AuditKey;
use hsm_link::client::{self, ConnectOptions, Connection};
use hsm_link::domain::{PartitionId, ServiceTier};
use hsm_link::handshake::client::ClientMode;
use hsm_link::keys::{PublicKey, StaticKeypair};
use hsm_link::server::{self, ServeOptions};
use hsm_link::transport::memory::{self, MemoryTransport};
use partition_service::admin::AdminLink;
use partition_service::crypto::HsmKeys;
use partition_service::service::{Clock, Hsm, ServiceError, genesis};
use partition_service::store::Store;
use quorum::{Argon2Params, CardPolicy};

mod cards;
mod fixture;
mod home;
pub mod partitions;
mod run;

pub use cards::{DEMO_CARDS, SPARE_CARDS};
use home::Home;
pub use home::{layout, reset};
pub use run::run;

use super::model::{DemoCard, Target};
use super::worker::Worker;
use crate::state::{PairedPartition, StateDir};

/// The first demo partition's id.
pub const DEMO_PARTITION: &str = "demo-partition";

/// The demo's card policy: its cards are soft cards, labelled so.
pub const DEMO_CARD_POLICY: CardPolicy = CardPolicy::embedded_demo();

/// A partition of the demo HSM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DemoPartition {
    /// Its id.
    pub id: &'static str,
    /// Its name.
    pub name: &'static str,
    /// Its tier.
    pub tier: ServiceTier,
    /// The demo terminal's name for it in its `paired.toml`.
    pub paired_name: &'static str,
}

/// The demo HSM's partitions: the first with its card sets and history, the second fresh.
pub const PARTITIONS: [DemoPartition; 2] = [
    DemoPartition {
        id: DEMO_PARTITION,
        name: "Demo partition",
        tier: ServiceTier::Economy,
        paired_name: layout::PAIRED_NAME,
    },
    DemoPartition {
        id: "passports",
        name: "Passports",
        tier: ServiceTier::Economy,
        paired_name: "passports",
    },
];

/// What connecting to a partition needs once the fixture is there.
struct Ready {
    /// The demo terminal's identity.
    terminal: StaticKeypair,
    /// The demo terminal's state directory (its pins), for a demo on disk.
    state: Option<StateDir>,
    /// The soft cards' directory.
    cards_dir: PathBuf,
    /// The pins of a demo in memory (tests), by partition.
    pins: Mutex<[Option<PublicKey>; PARTITIONS.len()]>,
}

/// The demo HSM: made quickly; its fixture prepared once ([`Demo::prepare`]), then any of its
/// partitions opened as often as the user chooses them ([`Demo::worker`]).
pub struct Demo {
    hsm: Arc<Hsm>,
    params: Argon2Params,
    test_cards: bool,
    home: Home,
    /// Held while the fixture is built or opened, so that it is done once.
    preparing: Mutex<()>,
    /// The fixture once prepared, or why it could not be.
    ready: Mutex<Option<Result<Arc<Ready>, String>>>,
}

impl Demo {
    /// Makes the HSM and its partitions in memory, gone with the process. `params` stretches
    /// the soft cards' passphrases; `test_cards` opens cards made with
    /// [`Argon2Params::insecure_for_tests`] (tests only).
    pub fn new(params: Argon2Params, test_cards: bool) -> Result<Demo, String> {
        let hsm = Hsm::with_parts(
            HsmKeys::generate().map_err(|e| text(&e))?,
            Store::in_memory().map_err(|e| text(&e))?,
            Clock::system(),
        );
        let home = Home::Memory(tempfile::tempdir().map_err(|e| text(&e))?);
        Demo::with_hsm(hsm, params, test_cards, home)
    }

    /// Opens the demo state in `root` (`<state>/demo`): the fixture a former start built, or,
    /// on the first start, a new HSM in a partial fixture that [`Demo::prepare`] fills and
    /// publishes. Either is quick (no Argon2, no ceremony): the first frame waits on nothing
    /// slow. Refused while another `tessera demo` holds the same state.
    pub fn open(root: &Path, params: Argon2Params, test_cards: bool) -> Result<Demo, String> {
        let lock = home::lock(root)?;
        let fixture = root.join(layout::FIXTURE);
        let built = fixture.join(layout::HSM).is_dir();
        let hsm_dir = if built {
            fixture.join(layout::HSM)
        } else {
            let partial = root.join(layout::PARTIAL);
            home::remove_tree(&partial)?;
            home::private_dir(&partial).map_err(|e| e.0)?;
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
        Demo::with_hsm(hsm, params, test_cards, home)
    }

    /// The demo on `hsm`, with every partition of [`PARTITIONS`] it lacks: all of them on a
    /// first start; the second on a demo state made before it existed (added rather than
    /// asking for a reset, so that what the user changed in the first partition stays).
    fn with_hsm(
        hsm: Hsm,
        params: Argon2Params,
        test_cards: bool,
        home: Home,
    ) -> Result<Demo, String> {
        let mut fresh = false;
        for p in &PARTITIONS {
            let id = PartitionId::new(p.id).map_err(|e| text(&e))?;
            match hsm.partition(&id) {
                Ok(_) => {}
                Err(ServiceError::NoSuchPartition(_)) => {
                    hsm.create_partition(id, p.name, p.tier)
                        .map_err(|e| text(&e))?;
                    fresh = true;
                }
                Err(e) => return Err(format!("reading the demo partition {}: {e}", p.id)),
            }
        }
        if fresh {
            hsm.set_soft_cards_allowed(true).map_err(|e| text(&e))?;
        }
        Ok(Demo {
            hsm: Arc::new(hsm),
            params,
            test_cards,
            home,
            preparing: Mutex::new(()),
            ready: Mutex::new(None),
        })
    }

    /// Whether [`Demo::prepare`] builds the fixture (the slow first start) rather than
    /// opening one.
    pub fn first_start(&self) -> bool {
        !matches!(self.home, Home::Disk { built: true, .. })
    }

    /// Whether the fixture is prepared: `None` while it is being prepared (or before), else
    /// whether it could be.
    pub fn prepared(&self) -> Option<Result<(), String>> {
        let ready = self.ready.lock().unwrap_or_else(PoisonError::into_inner);
        ready
            .as_ref()
            .map(|r| r.as_ref().map(|_| ()).map_err(Clone::clone))
    }

    /// What the welcome screen of the first partition names.
    pub fn target(&self) -> Target {
        self.target_of(0)
    }

    /// What the welcome screen of partition `index` (of [`PARTITIONS`]) names.
    pub fn target_of(&self, index: usize) -> Target {
        let p = &PARTITIONS[index.min(PARTITIONS.len() - 1)];
        Target {
            partition_id: p.id.to_owned(),
            partition_name: p.name.to_owned(),
            hsm_id: self.hsm.keys().hsm_id().to_string(),
            hsm_fingerprint: self.fingerprint(),
            tier: p.tier.as_str().to_owned(),
            transport: "in-memory link · demo HSM (a simulator, not a certified HSM)".to_owned(),
        }
    }

    /// The HSM key's fingerprint, shortened as the screens show it.
    pub fn fingerprint(&self) -> String {
        let fingerprint = self.hsm.keys().identity_public().fingerprint().to_string();
        fingerprint.chars().take(23).collect()
    }

    /// The first partition's cards for its welcome screen.
    pub fn cards() -> Vec<DemoCard> {
        DEMO_CARDS.to_vec()
    }

    /// The cards the welcome screen of partition `index` lists: the first partition's sets and
    /// the SO cards; for the second, the spare cards and the SO cards.
    pub fn cards_of(index: usize) -> Vec<DemoCard> {
        match index {
            0 => DEMO_CARDS.to_vec(),
            _ => SPARE_CARDS
                .iter()
                .chain(&DEMO_CARDS[5..])
                .cloned()
                .collect(),
        }
    }

    /// The first partition's worker (see [`Demo::worker`]).
    pub fn into_worker(self) -> Result<Worker, String> {
        Arc::new(self).worker(0)
    }

    /// Prepares the fixture on a thread of its own (see [`Demo::prepare`]), so that it is
    /// being built while the user reads the first screen.
    pub fn prepare_in_background(self: &Arc<Self>) {
        let demo = Arc::clone(self);
        std::thread::spawn(move || {
            let _ = demo.prepare();
        });
    }

    /// The pinned session to partition `index` and the card reader (run on the worker
    /// thread): the fixture prepared first if it is not yet, the demo terminal paired with the
    /// partition if it is not yet.
    pub fn worker(self: &Arc<Self>, index: usize) -> Result<Worker, String> {
        let ready = self.prepare()?;
        self.connect(&ready, index)
            .map_err(|e| format!("opening the demo partition failed: {e}"))
    }

    /// On the first start: pairs, enrols the card sets, gives the application a history and
    /// publishes the fixture; on later starts: reads the terminal's key. Done once; a second
    /// call waits for the first and answers the same.
    fn prepare(&self) -> Result<Arc<Ready>, String> {
        let _once = self
            .preparing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(done) = &*self.ready.lock().unwrap_or_else(PoisonError::into_inner) {
            return done.clone();
        }
        let begun = std::time::Instant::now();
        let built = !self.first_start();
        let result = if built { self.reopen() } else { self.build() };
        let result = match result {
            Ok(ready) => {
                tracing::info!(
                    built_now = !built,
                    ms = begun.elapsed().as_millis(),
                    "demo fixture ready"
                );
                Ok(Arc::new(ready))
            }
            Err(e) => {
                tracing::error!(error = %e, "demo fixture failed");
                Err(format!("setting up the demo HSM failed: {e:#}"))
            }
        };
        *self.ready.lock().unwrap_or_else(PoisonError::into_inner) = Some(result.clone());
        result
    }

    fn build(&self) -> anyhow_free::Result<Ready> {
        let fixture = self.home.fixture();
        let (cards_dir, state) = match &self.home {
            Home::Memory(_) => (fixture, None),
            Home::Disk { .. } => {
                home::private_dir(&fixture.join(layout::CARDS))?;
                let state = StateDir::open(fixture.join(layout::TERMINAL))?;
                (fixture.join(layout::CARDS), Some(state))
            }
        };
        let terminal = match &state {
            Some(state) => state.identity()?,
            None => StaticKeypair::generate()?,
        };
        let mut ready = Ready {
            terminal,
            state,
            cards_dir,
            pins: Mutex::new([None; PARTITIONS.len()]),
        };
        let (pinned, _) = self.pinned(&ready, 0)?;
        let mut conn = self.dial(&ready.terminal, 0, pinned)?;
        self.enrol(&mut conn, &ready.cards_dir)?;
        conn.close()?;
        self.application_history(&partition_id(0)?)?;
        self.spare_cards(&ready.cards_dir)?;
        if let Home::Disk { .. } = &self.home {
            let fixture = self.home.publish()?;
            ready.state = Some(StateDir::open(fixture.join(layout::TERMINAL))?);
            ready.cards_dir = fixture.join(layout::CARDS);
        }
        Ok(ready)
    }

    /// A later start: the terminal's key from the fixture (and the spare cards, for a demo
    /// state from before they existed).
    fn reopen(&self) -> anyhow_free::Result<Ready> {
        let fixture = self.home.fixture();
        let state = StateDir::open(fixture.join(layout::TERMINAL))?;
        let terminal = state.load_identity()?.ok_or_else(|| {
            anyhow_free::Error(format!(
                "the demo state in {} has no terminal key: `tessera demo --reset` starts afresh",
                fixture.display()
            ))
        })?;
        let cards_dir = fixture.join(layout::CARDS);
        self.spare_cards(&cards_dir)?;
        Ok(Ready {
            terminal,
            state: Some(state),
            cards_dir,
            pins: Mutex::new([None; PARTITIONS.len()]),
        })
    }

    /// The HSM's keys as the demo terminal pinned them for partition `index`: paired now if it
    /// is not yet (the second partition, the first time it is opened).
    fn pinned(&self, ready: &Ready, index: usize) -> anyhow_free::Result<(PublicKey, AuditKey)> {
        let p = &PARTITIONS[index];
        if let Some(state) = &ready.state {
            if let Some(entry) = state.paired()?.get(p.paired_name) {
                let audit_key = entry.audit_key.ok_or_else(|| {
                    anyhow_free::Error(format!(
                        "the demo terminal's pin of {} has no audit key: `tessera demo --reset` \
                         starts afresh",
                        p.id
                    ))
                })?;
                return Ok((entry.hsm_key, AuditKey::from_bytes(&audit_key)?));
            }
        } else if let Some(key) = ready.pins.lock().unwrap_or_else(PoisonError::into_inner)[index] {
            return Ok((key, self.hsm.audit_key()));
        }
        let key = self.pair(ready, index)?;
        Ok((key, self.hsm.audit_key()))
    }

    /// Pairs the demo terminal with partition `index` (a one-time code from the HSM, as
    /// `tessera pair` uses) and records the pin.
    fn pair(&self, ready: &Ready, index: usize) -> anyhow_free::Result<PublicKey> {
        let partition = partition_id(index)?;
        let code = self.hsm.issue_pairing_code(&partition, genesis())?;
        let conn = client::connect(
            serve(&self.hsm),
            &ready.terminal,
            partition.clone(),
            ClientMode::Pairing(code),
            ConnectOptions::default(),
        )?;
        let key = conn.session().remote_key();
        conn.close()?;
        match &ready.state {
            Some(state) => {
                let entry = PairedPartition {
                    name: PARTITIONS[index].paired_name.to_owned(),
                    address: layout::PAIRED_ADDRESS.parse().map_err(anyhow_free::Error)?,
                    partition,
                    hsm_key: key,
                    audit_key: Some(self.hsm.keys().audit_public().to_bytes()),
                    paired_unix: crate::pair::now_unix(),
                    last_seen_unix: None,
                };
                state
                    .update_paired(|list| list.upsert(entry).map(|()| ((), true)))?
                    .map_err(anyhow_free::Error)?;
            }
            None => ready.pins.lock().unwrap_or_else(PoisonError::into_inner)[index] = Some(key),
        }
        tracing::info!(partition = PARTITIONS[index].id, "demo terminal paired");
        Ok(key)
    }

    fn dial(
        &self,
        terminal: &StaticKeypair,
        index: usize,
        pinned: PublicKey,
    ) -> anyhow_free::Result<Connection<MemoryTransport>> {
        Ok(client::connect(
            serve(&self.hsm),
            terminal,
            partition_id(index)?,
            ClientMode::Pinned { hsm: pinned },
            ConnectOptions::default(),
        )?)
    }

    /// The pinned session to partition `index` and the card reader the worker owns (the
    /// partition's own cards and the SO cards, then those made with `n`).
    fn connect(self: &Arc<Self>, ready: &Ready, index: usize) -> anyhow_free::Result<Worker> {
        let (pinned, audit_key) = self.pinned(ready, index)?;
        let conn = self.dial(&ready.terminal, index, pinned)?;
        let own = Demo::cards_of(index);
        let own: Vec<&DemoCard> = own.iter().collect();
        let fixture: Vec<&DemoCard> = DEMO_CARDS.iter().chain(&SPARE_CARDS).collect();
        let reader = cards::SoftCardReader::new(
            ready.cards_dir.clone(),
            &own,
            &fixture,
            Arc::clone(self),
            self.test_cards,
        );
        Ok(Worker::new(Box::new(conn), Box::new(reader), audit_key))
    }
}

fn partition_id(index: usize) -> anyhow_free::Result<PartitionId> {
    Ok(PartitionId::new(PARTITIONS[index].id)?)
}

fn text(e: &dyn std::fmt::Display) -> String {
    e.to_string()
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
