//! The fixture's slow part, built once on the first start (on a thread, after the first
//! frame): the first partition's card sets enrolled through the real ceremonies, the HSM's SO
//! cards registered, the application's history, and the spare cards for the second partition.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use hsm_link::client::Connection;
use hsm_link::domain::{KeyAttributes, KeyId, KeyKind, KeyLabel, PartitionId};
use hsm_link::message::{AdminRequest, OfficerRole};
use hsm_link::transport::memory::MemoryTransport;
use partition_service::access::ApiProvider;
use partition_service::app_link::{AppAuth, AppConnection, AppRequest, AppResponse};
use partition_service::service::genesis;
use quorum::ceremony::{AuditorEnrolment, Drill, Enrolment, LoginCeremony};
use quorum::{Card, Pin};

use super::cards::{self, DEMO_CARDS, SPARE_CARDS, card_path};
use super::{Demo, anyhow_free};

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

impl Demo {
    /// The first partition's sets: a 2-of-3 PSO set, a drill, a 1-of-2 auditor set (under a
    /// PSO login), and the HSM's SO cards.
    pub(super) fn enrol(
        &self,
        conn: &mut Connection<MemoryTransport>,
        dir: &Path,
    ) -> anyhow_free::Result<()> {
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
            let card = cards::create(dir, c, self.params)?;
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

    /// The spare cards missing from `dir` (all of them on a first start; on a demo state from
    /// before the second partition, made on its first start since).
    pub(super) fn spare_cards(&self, dir: &Path) -> anyhow_free::Result<()> {
        for c in &SPARE_CARDS {
            if !card_path(dir, c.serial).exists() {
                cards::create(dir, c, self.params)?;
            }
        }
        Ok(())
    }

    fn create_card(
        &self,
        dir: &Path,
        c: &crate::tui::model::DemoCard,
    ) -> anyhow_free::Result<quorum::VerifiedSoftCard> {
        let card = cards::create(dir, c, self.params)?;
        let pin = Pin::from_slice(c.pin.as_bytes());
        Ok(card.verify(&pin).map_err(|(_, e)| e)?)
    }

    /// The application of `partition`: takes its setup password, creates keys, signs a few
    /// hundred times, is refused through an API that is off, and deletes some keys into the
    /// bin.
    pub(super) fn application_history(&self, partition: &PartitionId) -> anyhow_free::Result<()> {
        let hsm = &self.hsm;
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
