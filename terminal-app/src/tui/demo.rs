//! The TUI's demo fixture: one in-process reference HSM (its store in memory) with a partition,
//! a 2-of-3 PSO set, a 1-of-2 auditor set and the HSM's SO cards (two of Finn's, one of Gia's:
//! four eyes need both people) on soft cards (holders and PINs on the first screen), an application that created keys, used them, was refused now and then, and
//! deleted some into the bin — so every screen has something to show.
//!
//! The HSM's keys are made at once (the first frame names the HSM); the slow part (Argon2 for
//! each soft card, the enrolment ceremonies, the application's history) runs on the worker
//! thread after the first frame.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hsm_link::client::{self, ConnectOptions, Connection};
use hsm_link::domain::{KeyAttributes, KeyId, KeyKind, KeyLabel, PartitionId, ServiceTier};
use hsm_link::handshake::client::ClientMode;
use hsm_link::keys::StaticKeypair;
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

/// The demo HSM, before its cards and history.
pub struct Demo {
    hsm: Arc<Hsm>,
    partition: PartitionId,
    params: Argon2Params,
    test_cards: bool,
}

impl Demo {
    /// Makes the HSM and its partition. `params` stretches the soft cards' passphrases
    /// (production strength in the binary); `test_cards` opens cards made with
    /// [`Argon2Params::insecure_for_tests`] (tests only).
    pub fn new(params: Argon2Params, test_cards: bool) -> Result<Demo, String> {
        let text = |e: &dyn std::fmt::Display| e.to_string();
        let hsm = Arc::new(Hsm::with_parts(
            HsmKeys::generate().map_err(|e| text(&e))?,
            Store::in_memory().map_err(|e| text(&e))?,
            Clock::system(),
        ));
        let partition = PartitionId::new(DEMO_PARTITION).map_err(|e| text(&e))?;
        hsm.create_partition(partition.clone(), "Demo partition", ServiceTier::Economy)
            .map_err(|e| text(&e))?;
        hsm.set_soft_cards_allowed(true).map_err(|e| text(&e))?;
        Ok(Demo {
            hsm,
            partition,
            params,
            test_cards,
        })
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

    /// Pairs, enrols the card sets, gives the application a history, and opens the pinned
    /// session the TUI uses (run on the worker thread).
    pub fn into_worker(self) -> Result<Worker, String> {
        self.build()
            .map_err(|e| format!("setting up the demo HSM failed: {e:#}"))
    }

    fn build(self) -> anyhow_free::Result<Worker> {
        let terminal = StaticKeypair::generate()?;
        let code = self.hsm.issue_pairing_code(&self.partition, genesis())?;
        let mut conn = client::connect(
            serve(&self.hsm),
            &terminal,
            self.partition.clone(),
            ClientMode::Pairing(code),
            ConnectOptions::default(),
        )?;
        let pinned = conn.session().remote_key();
        let dir = tempfile::tempdir()?;
        self.enrol(&mut conn, dir.path())?;
        conn.close()?;
        self.application_history()?;
        let conn = client::connect(
            serve(&self.hsm),
            &terminal,
            self.partition.clone(),
            ClientMode::Pinned { hsm: pinned },
            ConnectOptions::default(),
        )?;
        let reader = SoftCardReader {
            cards: DEMO_CARDS
                .iter()
                .map(|c| (card_path(dir.path(), c.serial), card_label(c)))
                .collect(),
            _dir: dir,
            test_cards: self.test_cards,
        };
        Ok(Worker::new(
            Box::new(conn),
            Box::new(reader),
            self.hsm.audit_key(),
        ))
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
    _dir: tempfile::TempDir,
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
        let path = card_path(self._dir.path(), &serial);
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
