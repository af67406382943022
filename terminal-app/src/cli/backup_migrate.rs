//! `tessera backup restore FILE --migrate [--source-key KEY]`: a backup made by another HSM
//! (or of another partition) restored onto the HSM of this session, the migration and exit
//! path. Before any card is asked, the file is verified offline against the SOURCE HSM's key
//! (pinned for that HSM in the terminal's state, or given by hand). The officers then present
//! the recovery cards of the PSO set that made the backup: the quorum backup key is recovered
//! from them alone ([`BackupRecovery`]: the source HSM may be gone), opens the backup's data
//! key, and the data key is re-wrapped at once to the TARGET HSM's backup key, which that HSM
//! announces over this pinned session. Only the re-wrapped key is sent; the recovered key
//! and the bare data key are zeroized when this returns. The HSM then checks the header
//! against the source key, decrypts every chunk in its dry run, and the PSO sees the diff
//! before the commit ([`super::backup::commit`]).

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::Path;

use ed25519_dalek::VerifyingKey;
use hsm_link::domain::PartitionId;
use hsm_link::message::{AdminRequest, AdminResponse, MAX_RESTORE_CHUNK, RestoreDiff};
use quorum::ceremony::{BackupRecovery, Link};
use quorum::{CardPolicy, PcscCard, SoftCard, VerifiedCard as _};
use serde_json::json;
use usb_backup::container::MIGRATION_WRAPPED_KEY_LEN;
use usb_backup::{BackupError, DataKey, Header, verify_offline};

use super::Shown;
use super::list::utc;
use super::login::{AskPin, CardChoice, verify};
use crate::error::Error;
use hex::encode as hex;

/// A backup file checked offline against its source HSM's key, ready to migrate.
#[derive(Debug)]
pub struct SourceBackup {
    /// The header (verified: the trailer signed it).
    pub header: Header,
    /// The file's length.
    pub file_len: u64,
    /// The source HSM's key the trailer verified under.
    pub source_key: VerifyingKey,
}

impl SourceBackup {
    /// Verifies `file` offline against `source_key` (header, every chunk digest, the trailer's
    /// signature): a file that does not verify is refused before any card is asked.
    pub fn check(file: &Path, source_key: &VerifyingKey) -> Result<SourceBackup, Error> {
        super::backup_drives::check_file(file)?;
        let shown = file.display().to_string();
        let io = |e| {
            Error::Backup(BackupError::Io {
                op: "read",
                object: shown.clone(),
                source: e,
            })
        };
        let f = File::open(file).map_err(io)?;
        let file_len = f.metadata().map_err(io)?.len();
        let verified = verify_offline(BufReader::with_capacity(1 << 20, f), source_key)?;
        Ok(SourceBackup {
            header: verified.header().clone(),
            file_len,
            source_key: *source_key,
        })
    }

    /// What the backup is, for the officers to read before they present their cards.
    pub fn facts(&self) -> Shown {
        let f = self.header.facts();
        let text = format!(
            "backup of partition {} ({}) made by HSM {} on {} (sequence {}, {} objects), \
             verified against the source HSM key {}\n",
            f.partition_id,
            super::printable(&f.partition_name),
            hex(&f.hsm_id[..8]),
            utc(f.created),
            f.sequence,
            f.object_count,
            hex(&self.source_key.to_bytes()[..8]),
        );
        let json = json!({
            "partition": f.partition_id, "hsm_id": hex(f.hsm_id), "created_unix": f.created,
            "sequence": f.sequence, "objects": f.object_count,
            "source_key": hex(self.source_key.to_bytes()),
            "header_hash": hex(self.header.hash()),
        });
        Shown { text, json }
    }
}

/// The recovery cards of the PSO set that made the backup, and how to reach them.
pub struct RecoveryCards<'a> {
    /// Readers and soft card files, in the order they are presented.
    pub choice: &'a CardChoice,
    /// Whether soft cards are accepted.
    pub policy: CardPolicy,
    /// Asks each card's PIN or passphrase.
    pub ask: &'a mut AskPin<'a>,
    /// Ask again after a wrong PIN while the card has tries left.
    pub retry: bool,
}

/// Recovers the quorum backup key from `cards`, opens the backup's data key with it and
/// re-wraps that key to the target HSM's backup key (asked over `conn`). Stops presenting
/// cards once the key is recovered; too few cards, or cards of another set, are refused with
/// [`quorum::ceremony::CeremonyError::BackupNotRecovered`].
pub fn rewrap(
    conn: &mut (impl Link + ?Sized),
    backup: &SourceBackup,
    cards: RecoveryCards<'_>,
    progress: &mut dyn Write,
) -> Result<[u8; MIGRATION_WRAPPED_KEY_LEN], Error> {
    if cards.choice.readers.is_empty() && cards.choice.soft.is_empty() {
        return Err(Error::Usage(
            "a migration needs the recovery cards of the PSO set that made the backup: name \
             them with --recovery-card READER or --recovery-soft FILE"
                .to_owned(),
        ));
    }
    let target = match conn.admin(AdminRequest::GetBackupPublic)? {
        AdminResponse::BackupPublic { key } => key,
        _ => {
            return Err(Error::UnexpectedAnswer {
                request: "GetBackupPublic",
            });
        }
    };
    let key = recover(&backup.header, cards, progress)?;
    let data_key = quorum::secret::unwrap_with(&key, backup.header.quorum_wrapped_key())?;
    drop(key);
    let wrapped = DataKey::from_bytes(data_key).wrap_for_migration(&target, &backup.header)?;
    Ok(wrapped)
}

/// The recovery ceremony for `header`'s backup: the cards presented in turn, each after its
/// PIN, until the quorum backup key the backup names is recovered.
fn recover(
    header: &Header,
    cards: RecoveryCards<'_>,
    progress: &mut dyn Write,
) -> Result<quorum::QuorumBackupKey, Error> {
    let facts = header.facts();
    let partition = PartitionId::new(facts.partition_id.clone()).map_err(|_| {
        Error::Backup(
            usb_backup::Rejection::HeaderField {
                field: "partition id",
                problem: "not a partition id",
            }
            .into(),
        )
    })?;
    let mut recovery = BackupRecovery::new(partition, header.quorum_backup_key_id());
    let RecoveryCards {
        choice,
        policy,
        ask,
        retry,
    } = cards;
    let _ = writeln!(
        progress,
        "recovery: present the cards of the PSO set that made the backup of {}",
        facts.partition_id
    );
    let mut recovered = false;
    for reader in &choice.readers {
        if recovered {
            break;
        }
        let card = PcscCard::open(reader).map_err(|source| Error::OpenReader {
            reader: super::printable(reader),
            source,
        })?;
        let mut verified = verify(card, "PIN", ask, retry, progress)?;
        recovered = recovery.present(&mut verified)?;
        step(progress, &verified.info(), recovered);
    }
    for path in &choice.soft {
        if recovered {
            break;
        }
        let card = SoftCard::open(path, policy)?;
        let mut verified = verify(card, "passphrase", ask, retry, progress)?;
        recovered = recovery.present(&mut verified)?;
        step(progress, &verified.info(), recovered);
    }
    Ok(recovery.finish()?)
}

fn step(progress: &mut dyn Write, card: &quorum::CardInfo, recovered: bool) {
    let state = if recovered {
        "the quorum backup key is recovered"
    } else {
        "not yet: present the next card"
    };
    let _ = writeln!(progress, "recovery: {card} read — {state}");
}

/// Uploads the backup to the target HSM as a migration (the header, the source key and the
/// re-wrapped data key first, then the file in bounded pieces) and asks for its dry run: the
/// diff, or the HSM's typed refusal. Changes nothing.
pub fn dry_run(
    conn: &mut (impl Link + ?Sized),
    file: &Path,
    backup: &SourceBackup,
    wrapped_key: [u8; MIGRATION_WRAPPED_KEY_LEN],
) -> Result<RestoreDiff, Error> {
    let shown = file.display().to_string();
    let io = |e| {
        Error::Backup(BackupError::Io {
            op: "read",
            object: shown.clone(),
            source: e,
        })
    };
    let mut f = File::open(file).map_err(io)?;
    let header = Header::read_from(&mut f)?;
    if header.hash() != backup.header.hash() {
        return Err(Error::Backup(usb_backup::Rejection::HeaderAltered.into()));
    }
    conn.admin(AdminRequest::MigrateBegin {
        file_len: backup.file_len,
        header: header.encode(),
        source_key: backup.source_key.to_bytes(),
        wrapped_key,
    })?;
    let mut buf = vec![0u8; MAX_RESTORE_CHUNK];
    let mut sent = header.layout().header_len;
    while sent < backup.file_len {
        let n = f.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        conn.admin(AdminRequest::RestoreChunk {
            bytes: buf[..n].to_vec(),
        })?;
        sent += n as u64;
    }
    match conn.admin(AdminRequest::RestoreDryRun)? {
        AdminResponse::RestoreDiff(diff) => Ok(*diff),
        _ => Err(Error::UnexpectedAnswer {
            request: "RestoreDryRun",
        }),
    }
}

/// The source HSM's key for `file`, pinned by `given` (the audit key's fingerprint as
/// `tessera-hsm init` shows it, or an audit key file: what `tessera log export --key` takes)
/// or else by the audit key pinned in `paired` for the HSM the backup's header names. The key
/// itself is the one in the header, used only once the pin accepts it; the file is then
/// verified against it by [`SourceBackup::check`].
pub fn source_key(
    file: &Path,
    given: Option<&str>,
    paired: &crate::state::PairedList,
) -> Result<VerifyingKey, Error> {
    let shown = file.display().to_string();
    let mut f = File::open(file).map_err(|e| {
        Error::Backup(BackupError::Io {
            op: "read",
            object: shown.clone(),
            source: e,
        })
    })?;
    let header = Header::read_from(&mut f)?;
    let hsm_id = header.facts().hsm_id;
    let pin = match given {
        Some(given) => crate::log_verify::parse_key(given)
            .map_err(|e| Error::Usage(format!("--source-key: {e}")))?,
        None => {
            let pinned = paired
                .partitions()
                .iter()
                .find(|p| p.fingerprint().0 == hsm_id)
                .and_then(|p| p.audit_key)
                .ok_or_else(|| {
                    Error::Usage(format!(
                        "{shown} was made by HSM {}, for which this terminal has no audit key \
                         pinned: give the source HSM's audit key with --source-key (its \
                         fingerprint as `tessera-hsm init` showed it, or a key file)",
                        hex(&hsm_id[..8])
                    ))
                })?;
            let key = audit_log::AuditKey::from_bytes(&pinned)
                .map_err(|e| Error::Usage(format!("the pinned audit key: {e}")))?;
            audit_log::KeyPin::Key(key)
        }
    };
    let signer = header.hsm_signing_key();
    let wrong = || {
        Error::Backup(
            usb_backup::Rejection::WrongHsm {
                detail: "the backup is signed by another key than the source HSM key given",
            }
            .into(),
        )
    };
    let key = audit_log::AuditKey::from_bytes(&signer).map_err(|_| wrong())?;
    if !pin.accepts(&key) {
        return Err(wrong());
    }
    VerifyingKey::from_bytes(&signer).map_err(|_| wrong())
}

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::sync::Arc;

    use hsm_link::domain::{KeyAttributes, KeyId, KeyKind, KeyLabel};
    use hsm_link::message::{
        AdminError, BackupProblem, KeyFilter, LogQuery, OfficerRole, Packet, RemoteError, Request,
    };
    use partition_service::access::ApiProvider;
    use partition_service::app_link::{AppConnection, AppRequest, AppResponse};
    use partition_service::service::Hsm;
    use quorum::ceremony::CeremonyError;
    use zeroize::Zeroizing;

    use super::*;
    use crate::cli::backup;
    use crate::cli::login::login;
    use crate::cli::testing::{POLICY, enrolled_on, passphrase};
    use crate::pair::AnyConnection;

    /// Records every administration request's bytes on their way to the HSM.
    struct Recording<'a> {
        inner: &'a mut AnyConnection,
        sent: Vec<Vec<u8>>,
    }

    impl Link for Recording<'_> {
        fn admin(
            &mut self,
            request: AdminRequest,
        ) -> Result<AdminResponse, quorum::ceremony::LinkError> {
            let packet = Packet::Request {
                id: 0,
                body: Request::Admin(request.clone()),
            };
            self.sent.push(packet.encode());
            self.inner.admin(request)
        }

        fn channel_binding(&self) -> [u8; 32] {
            self.inner.channel_binding()
        }

        fn partition(&self) -> &PartitionId {
            Link::partition(self.inner)
        }
    }

    fn cards(dir: &Path, names: &[&str]) -> CardChoice {
        CardChoice {
            readers: Vec::new(),
            soft: names.iter().map(|n| dir.join(n)).collect(),
        }
    }

    fn pso_login(conn: &mut AnyConnection, dir: &Path, names: &[&str]) {
        let mut ask = |q: &str| {
            let name = names
                .iter()
                .find(|n| q.contains(&format!("SOFT:{n}")))
                .unwrap();
            Ok(Zeroizing::new(passphrase(name).into_bytes()))
        };
        let choice = cards(dir, names);
        login(
            conn,
            OfficerRole::Pso,
            &choice,
            POLICY,
            &mut ask,
            false,
            &mut Vec::new(),
        )
        .unwrap();
    }

    /// Re-wraps with the soft cards `names` in `dir`.
    fn rewrap_with(
        conn: &mut (impl Link + ?Sized),
        backup: &SourceBackup,
        dir: &Path,
        names: &[&str],
    ) -> Result<[u8; MIGRATION_WRAPPED_KEY_LEN], Error> {
        let choice = cards(dir, names);
        let mut ask = |q: &str| {
            let name = names
                .iter()
                .find(|n| q.contains(&format!("SOFT:{n}")))
                .unwrap();
            Ok(Zeroizing::new(passphrase(name).into_bytes()))
        };
        let cards = RecoveryCards {
            choice: &choice,
            policy: POLICY,
            ask: &mut ask,
            retry: false,
        };
        rewrap(conn, backup, cards, &mut Vec::new())
    }

    fn app(hsm: &Hsm, partition: &str, request: AppRequest) -> AppResponse {
        let partition = PartitionId::new(partition).unwrap();
        let record = hsm.partition(&partition).unwrap();
        let mut connection = AppConnection {
            session_objects: Default::default(),
            credentials_epoch: record.credentials.epoch,
        };
        let peer = IpAddr::V4(Ipv4Addr::LOCALHOST);
        hsm.app_execute(&mut connection, peer, &partition, ApiProvider::Jce, request)
            .unwrap()
    }

    fn generate(hsm: &Hsm, kind: KeyKind, label: &str) -> KeyId {
        let attributes = KeyAttributes {
            extractable: false,
            sensitive: true,
            modifiable: true,
        };
        let request = AppRequest::Generate {
            kind,
            label: KeyLabel::new(label).unwrap(),
            attributes,
            session: false,
        };
        match app(hsm, "p", request) {
            AppResponse::Key(summary) => summary.id,
            other => panic!("{other:?}"),
        }
    }

    fn sign(hsm: &Hsm, partition: &str, id: KeyId) -> Vec<u8> {
        let request = AppRequest::Sign {
            id,
            message: b"pay 10".to_vec(),
        };
        match app(hsm, partition, request) {
            AppResponse::Signature(s) => s,
            other => panic!("{other:?}"),
        }
    }

    fn keys(conn: &mut AnyConnection) -> Vec<hsm_link::domain::KeyObjectSummary> {
        let request =
            AdminRequest::ListKeys(hsm_link::message::KeyQuery::first(KeyFilter::All, 100));
        match conn.admin(request).unwrap() {
            AdminResponse::Keys { keys, .. } => keys,
            other => panic!("{other:?}"),
        }
    }

    fn config(conn: &mut AnyConnection) -> hsm_link::domain::PartitionConfig {
        match conn.admin(AdminRequest::GetConfig).unwrap() {
            AdminResponse::Config(c) => *c,
            other => panic!("{other:?}"),
        }
    }

    fn refused(result: Result<RestoreDiff, Error>) -> BackupProblem {
        match result {
            Err(Error::Refused(RemoteError::Admin(AdminError::Backup(p)))) => p,
            other => panic!("expected a backup refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_backup_moves_to_another_hsm_with_the_source_quorum_and_only_so() {
        let dir = tempfile::tempdir().unwrap();
        let (a_cards, b_cards, c_cards, out) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("c"),
            dir.path().join("drive"),
        );
        for d in [&a_cards, &b_cards, &c_cards, &out] {
            std::fs::create_dir(d).unwrap();
        }
        // HSM A: partition p, a 2-of-3 PSO set. HSM B: partition q, its own 1-of-1 set. HSM
        // C: a partition p too, with a set of its own (another quorum, the same names).
        let (mut a, hsm_a) = enrolled_on(&a_cards, "p", 2, &["ann", "abe", "amy"], &[]);
        let (mut b, hsm_b) = enrolled_on(&b_cards, "q", 1, &["bob"], &[]);
        let (_c, _hsm_c) = enrolled_on(&c_cards, "p", 1, &["cat"], &[]);

        // On A: keys (one in the bin), key import switched on, a backup to the drive.
        let signer = generate(&hsm_a, KeyKind::Ed25519, "signer");
        generate(&hsm_a, KeyKind::Aes256, "kek");
        let binned = generate(&hsm_a, KeyKind::EcP256, "old");
        app(&hsm_a, "p", AppRequest::Delete { id: binned });
        pso_login(&mut a, &a_cards, &["ann", "abe"]);
        let mut changed = config(&mut a);
        changed.key_import = true;
        let revision = changed.revision;
        a.admin(AdminRequest::ChangeConfig {
            expected_revision: revision,
            config: Box::new(changed),
        })
        .unwrap();
        let a_key = hsm_a.keys().audit_public();
        let (_, stored) = backup::create(
            &mut a,
            &[backup::Drive::Dir(out.clone())],
            Some(&a_key),
            None,
        )
        .unwrap();
        let file = out.join(&stored[0].file_name);

        // On B, a PSO of B logged in.
        pso_login(&mut b, &b_cards, &["bob"]);
        let b_before = (keys(&mut b), config(&mut b));
        // Without --migrate: a backup of another partition, refused.
        assert_eq!(
            refused(backup::dry_run(&mut b, &file)),
            BackupProblem::OtherPartition
        );

        // The source key: given, or pinned for the HSM the backup names; a wrong one refused
        // offline before any card is asked.
        let none = crate::state::PairedList::default();
        assert!(matches!(
            source_key(&file, None, &none),
            Err(Error::Usage(_))
        ));
        let fingerprint = audit_log::AuditKey::from_bytes(&a_key.to_bytes())
            .unwrap()
            .fingerprint()
            .to_string();
        let given = source_key(&file, Some(&fingerprint), &none).unwrap();
        assert_eq!(given, a_key);
        let key_file = dir.path().join("hsm-a.key");
        let a_audit = audit_log::AuditKey::from_bytes(&a_key.to_bytes()).unwrap();
        std::fs::write(&key_file, audit_log::KeyPin::key_file(&a_audit)).unwrap();
        assert_eq!(source_key(&file, key_file.to_str(), &none).unwrap(), a_key);
        let wrong = hsm_b.keys().audit_public();
        let b_fingerprint = audit_log::AuditKey::from_bytes(&wrong.to_bytes())
            .unwrap()
            .fingerprint()
            .to_string();
        assert!(matches!(
            source_key(&file, Some(&b_fingerprint), &none),
            Err(Error::Backup(e)) if e.rejection().is_some()
        ));
        // Verified against another key: refused offline.
        assert!(matches!(
            SourceBackup::check(&file, &wrong),
            Err(Error::Backup(e)) if e.rejection().is_some()
        ));
        let source = SourceBackup::check(&file, &a_key).unwrap();
        assert!(
            source.facts().text.contains("partition p"),
            "{}",
            source.facts().text
        );

        // Too few cards; cards of another partition's set; cards of another quorum of a
        // partition of the same name: each refused, nothing sent to B but the key request.
        match rewrap_with(&mut b, &source, &a_cards, &["abe"]) {
            Err(Error::Ceremony(CeremonyError::BackupNotRecovered { cards: 1 })) => {}
            other => panic!("{other:?}"),
        }
        match rewrap_with(&mut b, &source, &b_cards, &["bob"]) {
            Err(Error::Ceremony(CeremonyError::NoShareForBackup { partition, .. })) => {
                assert_eq!(partition, "p");
            }
            other => panic!("{other:?}"),
        }
        match rewrap_with(&mut b, &source, &c_cards, &["cat"]) {
            Err(Error::Ceremony(CeremonyError::BackupNotRecovered { cards: 1 })) => {}
            other => panic!("{other:?}"),
        }

        // The quorum: two of A's cards. Every request to B is recorded.
        let mut recording = Recording {
            inner: &mut b,
            sent: Vec::new(),
        };
        let wrapped = rewrap_with(&mut recording, &source, &a_cards, &["amy", "ann"]).unwrap();
        // A wrong source key at the HSM: refused there too, nothing changed.
        let forged = SourceBackup {
            header: source.header.clone(),
            file_len: source.file_len,
            source_key: wrong,
        };
        assert_eq!(
            refused(dry_run(&mut recording, &file, &forged, wrapped)),
            BackupProblem::SourceKeyMismatch
        );
        // A re-wrapped key that is not B's: refused at the dry run.
        let mut garbled = wrapped;
        garbled[50] ^= 1;
        assert_eq!(
            refused(dry_run(&mut recording, &file, &source, garbled)),
            BackupProblem::MigrationKey
        );
        assert_eq!((keys(recording.inner), config(recording.inner)), b_before);

        let diff = dry_run(&mut recording, &file, &source, wrapped).unwrap();
        assert_eq!(diff.objects_in_backup, 3);
        assert_eq!(diff.returning.count, 3);
        let shown = backup::show_diff(&diff).text;
        assert!(shown.contains("Key import: off -> on"), "{shown}");
        let done = backup::commit(&mut recording, &diff).unwrap();
        assert!(done.text.contains("3 key objects"), "{}", done.text);

        // The data key itself (recovered again here, for the check) is in no request to B;
        // the re-wrapped one is.
        let mut again = BackupRecovery::new(
            PartitionId::new("p").unwrap(),
            source.header.quorum_backup_key_id(),
        );
        for name in ["abe", "amy"] {
            let card = SoftCard::open(&a_cards.join(name), POLICY).unwrap();
            let pin = quorum::Pin::from_slice(passphrase(name).as_bytes());
            let mut card = quorum::Card::verify(card, &pin)
                .map_err(|(_, e)| e)
                .unwrap();
            again.present(&mut card).unwrap();
        }
        let quorum_key = again.finish().unwrap();
        let data_key =
            quorum::secret::unwrap_with(&quorum_key, source.header.quorum_wrapped_key()).unwrap();
        let sent = std::mem::take(&mut recording.sent);
        assert!(sent.len() > 5, "{} requests", sent.len());
        let contains = |needle: &[u8]| {
            sent.iter()
                .any(|m| m.windows(needle.len()).any(|w| w == needle))
        };
        assert!(!contains(data_key.as_ref()), "the bare data key went to B");
        assert!(contains(&wrapped));

        // B now holds A's keys (the same material: the same Ed25519 signature) and
        // configuration; its log names the source HSM and partition.
        assert_eq!(keys(&mut b), keys(&mut a));
        assert!(config(&mut a).diff(&config(&mut b)).is_empty());
        assert_eq!(sign(&hsm_b, "q", signer), sign(&hsm_a, "p", signer));
        let log = match b.admin(AdminRequest::ReadLog {
            query: LogQuery::from(1, 1000),
        }) {
            Ok(AdminResponse::LogPage(page)) => page.lines.join("\n"),
            other => panic!("{other:?}"),
        };
        let a_id = hex(source.header.facts().hsm_id);
        assert!(log.contains("migrated-from-partition"), "{log}");
        assert!(log.contains(&a_id), "{log}");
        let _ = Arc::clone(&hsm_b);
    }
}
