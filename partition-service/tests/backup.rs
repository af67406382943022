//! Backup and restore over the admin link on an in-process HSM: round trips (no keys, a few,
//! one in the bin, the configuration changed in between and shown in the diff), and the
//! refusals (another partition, over quota, a damaged file, a commit without a current dry
//! run), each leaving the partition exactly as it was.

mod common;

use std::io::Cursor;
use std::net::{IpAddr, Ipv4Addr};

use common::{Card, Fixture, Terminal, card_set, recovery};
use hsm_link::domain::{
    CardSetKind, KeyAttributes, KeyId, KeyKind, KeyLabel, KeyObjectSummary, PartitionConfig,
    PartitionId, ServiceTier,
};
use hsm_link::message::{
    AdminError, AdminRequest, AdminResponse, BackupProblem, CeremonyKind, KeyFilter, KeyQuery,
    LogQuery, MAX_RESTORE_CHUNK, OfficerRole, RecoveryPublic, Request, Response, RestoreDiff,
};
use partition_service::access::ApiProvider;
use partition_service::app_link::{AppConnection, AppRequest, AppResponse};
use partition_service::service::ServiceError;

const OPEN: KeyAttributes = KeyAttributes {
    extractable: true,
    sensitive: false,
    modifiable: true,
};

/// An HSM with a PSO set whose quorum backup key is a real X-Wing key, and a PSO logged in.
fn world() -> (Fixture, Terminal) {
    let f = Fixture::new(ServiceTier::Economy);
    let mut t = f.pair();
    let cards = [
        Card::new("Alice Meier", "A-1"),
        Card::new("Bruno Rossi", "B-2"),
    ];
    let set = card_set(CardSetKind::Pso, 1, 2, &[&cards[0], &cards[1]]);
    let recovery = RecoveryPublic {
        backup_public_key: usb_backup::fuzzing::quorum_public_key(),
        commitments: recovery().commitments,
    };
    t.register(CeremonyKind::Enrol, set, Some(recovery))
        .unwrap();
    t.login(OfficerRole::Pso, &[&cards[0], &cards[1]]).unwrap();
    (f, t)
}

fn app(f: &Fixture, request: AppRequest) -> AppResponse {
    let record = f.hsm.partition(&f.partition).unwrap();
    let mut connection = AppConnection {
        session_objects: Default::default(),
        credentials_epoch: record.credentials.epoch,
    };
    f.hsm
        .app_execute(
            &mut connection,
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            &f.partition,
            ApiProvider::Jce,
            request,
        )
        .unwrap()
}

fn generate(f: &Fixture, kind: KeyKind, label: &str) -> KeyId {
    match app(
        f,
        AppRequest::Generate {
            kind,
            label: KeyLabel::new(label).unwrap(),
            attributes: OPEN,
            session: false,
        },
    ) {
        AppResponse::Key(summary) => summary.id,
        other => panic!("{other:?}"),
    }
}

fn keys(t: &mut Terminal) -> Vec<KeyObjectSummary> {
    match t
        .admin(AdminRequest::ListKeys(KeyQuery::first(
            KeyFilter::All,
            1000,
        )))
        .unwrap()
    {
        AdminResponse::Keys { keys, .. } => keys,
        other => panic!("{other:?}"),
    }
}

fn config(t: &mut Terminal) -> PartitionConfig {
    match t.admin(AdminRequest::GetConfig).unwrap() {
        AdminResponse::Config(c) => *c,
        other => panic!("{other:?}"),
    }
}

/// The partition as a restore may not change it unless it commits: keys (with their sealed
/// material) and configuration.
fn snapshot(f: &Fixture) -> (Vec<u64>, PartitionConfig, Vec<Vec<u8>>) {
    let record = f.hsm.partition(&f.partition).unwrap();
    let ids = f.hsm.key_ids(&f.partition, None, 100_000).unwrap();
    let (plain, _, _) = f.hsm.backup_plaintext(&f.partition).unwrap();
    (ids, record.config, vec![plain.to_vec()])
}

fn header_of(file: &[u8]) -> usb_backup::Header {
    usb_backup::Header::read_from(&mut Cursor::new(file)).unwrap()
}

fn backup(t: &mut Terminal) -> Vec<u8> {
    let mut file = Vec::new();
    let done = t
        .conn
        .call_download(Request::Admin(AdminRequest::CreateBackup), &mut file)
        .unwrap();
    let Response::Admin(AdminResponse::BackupDone {
        file_len,
        header_hash,
        trailer,
    }) = done
    else {
        panic!("{done:?}")
    };
    assert_eq!(file_len, file.len() as u64);
    assert_eq!(trailer, file[file.len() - trailer.len()..]);
    let header = header_of(&file);
    assert_eq!(header.hash(), header_hash);
    file
}

fn upload(t: &mut Terminal, file: &[u8]) -> Result<(), AdminError> {
    upload_part(t, file, file.len())
}

/// Announces the whole file and sends its first `sent` bytes.
fn upload_part(t: &mut Terminal, file: &[u8], sent: usize) -> Result<(), AdminError> {
    let header = header_of(file);
    let header_len = header.layout().header_len as usize;
    let result = t.admin(AdminRequest::RestoreBegin {
        file_len: file.len() as u64,
        header: file[..header_len].to_vec(),
    });
    if let Err(hsm_link::message::RemoteError::Admin(e)) = result {
        return Err(e);
    }
    for piece in file[header_len..sent].chunks(MAX_RESTORE_CHUNK) {
        t.admin(AdminRequest::RestoreChunk {
            bytes: piece.to_vec(),
        })
        .unwrap();
    }
    Ok(())
}

fn dry_run(t: &mut Terminal, file: &[u8]) -> Result<RestoreDiff, AdminError> {
    upload(t, file)?;
    match t.admin(AdminRequest::RestoreDryRun) {
        Ok(AdminResponse::RestoreDiff(d)) => Ok(*d),
        Err(hsm_link::message::RemoteError::Admin(e)) => Err(e),
        other => panic!("{other:?}"),
    }
}

fn commit(t: &mut Terminal, diff: &RestoreDiff) -> u64 {
    match t
        .admin(AdminRequest::RestoreCommit {
            header_hash: diff.header_hash,
        })
        .unwrap()
    {
        AdminResponse::Restored { objects, .. } => objects,
        other => panic!("{other:?}"),
    }
}

fn log_text(t: &mut Terminal) -> String {
    let mut out = Vec::new();
    t.conn
        .call_download(
            Request::Admin(AdminRequest::ExportLog {
                query: LogQuery::from(1, 0),
            }),
            &mut out,
        )
        .unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn an_empty_partition_round_trips_and_both_ends_are_logged() {
    let (f, mut t) = world();
    let file = backup(&mut t);
    let verified =
        usb_backup::verify_offline(Cursor::new(&file), &f.hsm.keys().audit_public()).unwrap();
    assert_eq!(verified.header().facts().object_count, 0);
    assert_eq!(verified.header().facts().partition_id, "bank-1");
    let before = snapshot(&f);
    let diff = dry_run(&mut t, &file).unwrap();
    assert_eq!(diff.objects_in_backup, 0);
    assert_eq!(diff.returning.count + diff.removed.count, 0);
    assert!(diff.config.is_empty(), "{:?}", diff.config);
    assert_eq!(commit(&mut t, &diff), 0);
    assert_eq!(snapshot(&f).0, before.0);
    let log = log_text(&mut t);
    let header_hash: String = diff
        .header_hash
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(log.contains("\"backup.create\""), "{log}");
    assert!(log.contains(&header_hash), "the log carries the digest");
    assert!(log.contains("\"backup.dry-run\""));
    assert!(log.contains("\"backup.restore\""));
    // The log was not restored: it still starts at the partition's creation (the export
    // file's first line is its header, the log's first entry follows it).
    assert!(
        log.lines().nth(1).unwrap().contains("partition.create"),
        "{log}"
    );
    assert!(f.hsm.check().is_ok());
}

#[test]
fn keys_the_bin_and_the_configuration_come_back_and_the_diff_says_so() {
    let (f, mut t) = world();
    let a = generate(&f, KeyKind::Aes256, "kek");
    let b = generate(&f, KeyKind::Ed25519, "signer");
    let c = generate(&f, KeyKind::EcP256, "tls");
    app(&f, AppRequest::Delete { id: c });
    let keys_then = keys(&mut t);
    assert!(
        keys_then
            .iter()
            .any(|k| k.id == c && k.state.is_invalidated())
    );
    let signature_then = match app(
        &f,
        AppRequest::Sign {
            id: b,
            message: b"pay 10".to_vec(),
        },
    ) {
        AppResponse::Signature(signature) => signature,
        other => panic!("{other:?}"),
    };
    let file = backup(&mut t);
    let config_then = config(&mut t);

    // Afterwards: a new key, the binned one purged, another one deleted to the bin, and key
    // import switched on.
    let d = generate(&f, KeyKind::Aes256, "new");
    t.admin(AdminRequest::PurgeKey { id: c }).unwrap();
    app(&f, AppRequest::Delete { id: b });
    let mut changed = config_then.clone();
    changed.key_import = true;
    t.admin(AdminRequest::ChangeConfig {
        expected_revision: config_then.revision,
        config: Box::new(changed),
    })
    .unwrap();

    let diff = dry_run(&mut t, &file).unwrap();
    assert_eq!(diff.objects_in_backup, 3);
    assert_eq!(diff.objects_now, 3);
    // Each key named by id and label, and where it stands: in the bin as the backup holds it
    // (for the key removed, as the partition holds it).
    let named = |list: &hsm_link::message::KeyIdList| -> Vec<(KeyId, String, bool)> {
        let first = list.first.iter();
        first
            .map(|k| (k.id, k.label.as_str().to_owned(), k.in_bin))
            .collect()
    };
    let label = |id: KeyId| {
        let key = keys_then.iter().find(|k| k.id == id);
        key.map_or("new".to_owned(), |k| k.label.as_str().to_owned())
    };
    assert_eq!(
        named(&diff.returning),
        vec![(c, label(c), true)],
        "the purged key comes back"
    );
    assert_eq!(
        named(&diff.removed),
        vec![(d, label(d), false)],
        "the key made since goes"
    );
    assert_eq!(named(&diff.out_of_bin), vec![(b, label(b), false)]);
    assert!(diff.into_bin.first.is_empty());
    assert_eq!(diff.config.len(), 1, "{:?}", diff.config);
    assert_eq!(
        diff.config[0].parameter,
        hsm_link::domain::Parameter::KeyImport
    );
    let seq_before = f.hsm.partition(&f.partition).unwrap().log.next_seq;
    assert_eq!(commit(&mut t, &diff), 3);

    let keys_now = keys(&mut t);
    assert_eq!(keys_now, keys_then);
    assert!(!keys_now.iter().any(|k| k.id == d));
    let config_now = config(&mut t);
    assert!(!config_now.key_import);
    assert_eq!(config_now.revision, config_then.revision + 2);
    // The restored material is the same key: it signs as before (Ed25519 is deterministic).
    match app(
        &f,
        AppRequest::Sign {
            id: b,
            message: b"pay 10".to_vec(),
        },
    ) {
        AppResponse::Signature(signature) => assert_eq!(signature, signature_then),
        other => panic!("{other:?}"),
    }
    let _ = a;
    // A new key never reuses an id the partition has handed out.
    assert!(generate(&f, KeyKind::Aes256, "after") > d);
    let record = f.hsm.partition(&f.partition).unwrap();
    assert!(
        record.log.next_seq > seq_before,
        "the restore appended to the log"
    );
    if let Err(e) = f.hsm.check() {
        panic!("{e}");
    }
}

#[test]
fn a_damaged_backup_or_a_stale_dry_run_changes_nothing() {
    let (f, mut t) = world();
    generate(&f, KeyKind::Aes256, "one");
    let file = backup(&mut t);
    generate(&f, KeyKind::Aes256, "two");
    let before = snapshot(&f);

    // A flipped bit in the body: the dry run refuses, nothing changes.
    let header_len = header_of(&file).layout().header_len as usize;
    let mut damaged = file.clone();
    damaged[header_len + 3] ^= 1;
    assert_eq!(
        dry_run(&mut t, &damaged),
        Err(AdminError::Backup(BackupProblem::NotAuthentic))
    );
    assert_eq!(snapshot(&f), before);
    // A cut file: the dry run waits for the rest.
    upload_part(&mut t, &file, file.len() - 10).unwrap();
    assert_eq!(
        t.refused(AdminRequest::RestoreDryRun),
        AdminError::Backup(BackupProblem::Incomplete)
    );
    // More than announced: refused, the upload dropped.
    assert_eq!(
        t.refused(AdminRequest::RestoreChunk { bytes: vec![0; 20] }),
        AdminError::Backup(BackupProblem::UploadOutOfOrder)
    );
    // A commit without a dry run.
    assert_eq!(
        t.refused(AdminRequest::RestoreCommit {
            header_hash: [0; 32]
        }),
        AdminError::Backup(BackupProblem::NoDryRun)
    );
    // A dry run, then the partition changes: the commit is refused.
    let diff = dry_run(&mut t, &file).unwrap();
    assert_eq!(diff.removed.count, 1);
    generate(&f, KeyKind::Aes256, "three");
    let before = snapshot(&f);
    assert_eq!(
        t.refused(AdminRequest::RestoreCommit {
            header_hash: diff.header_hash
        }),
        AdminError::Backup(BackupProblem::NoDryRun)
    );
    assert_eq!(snapshot(&f), before);
    let log = log_text(&mut t);
    assert!(log.contains("\"backup.dry-run\""));
    assert!(log.contains("refused"));
}

#[test]
fn another_partitions_backup_and_one_over_quota_are_refused_before_anything_changes() {
    let (f, mut t) = world();
    for i in 0..3 {
        generate(&f, KeyKind::Ed25519, &format!("k{i}"));
    }
    let file = backup(&mut t);
    let header = header_of(&file);
    let before = snapshot(&f);

    // Another partition of the same HSM.
    let other = PartitionId::new("bank-2").unwrap();
    let mut record = f
        .hsm
        .create_partition(other, "Other", ServiceTier::Economy)
        .unwrap();
    let refused = |e: Result<_, ServiceError>| match e {
        Err(ServiceError::Admin(AdminError::Backup(p))) => p,
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("accepted"),
    };
    assert_eq!(
        refused(
            f.hsm
                .check_backup_header(&record, &header, file.len() as u64)
        ),
        BackupProblem::OtherPartition
    );
    assert_eq!(
        refused(f.hsm.open_backup(&record, &file).map(|_| ())),
        BackupProblem::OtherPartition
    );

    // This partition with a lower object limit, or a smaller quota.
    let mut small = f.hsm.partition(&f.partition).unwrap();
    small.config.quota.object_limit = Some(2);
    assert_eq!(
        refused(
            f.hsm
                .check_backup_header(&small, &header, file.len() as u64)
        ),
        BackupProblem::OverQuota
    );
    let mut tiny = f.hsm.partition(&f.partition).unwrap();
    tiny.config.quota.size_bytes = 64;
    assert_eq!(
        refused(f.hsm.open_backup(&tiny, &file).map(|_| ())),
        BackupProblem::OverQuota
    );
    // A header announcing another length.
    record = f.hsm.partition(&f.partition).unwrap();
    assert_eq!(
        refused(
            f.hsm
                .check_backup_header(&record, &header, file.len() as u64 + 1)
        ),
        BackupProblem::Malformed
    );
    assert_eq!(snapshot(&f), before);
}

#[test]
fn a_partition_without_a_quorum_backup_key_is_not_backed_up() {
    // 1,216 bytes that X-Wing refuses (ML-KEM coefficients out of range).
    let f = Fixture::new(ServiceTier::Economy);
    let mut t = f.pair();
    let cards = [
        Card::new("Alice Meier", "A-1"),
        Card::new("Bruno Rossi", "B-2"),
    ];
    let set = card_set(CardSetKind::Pso, 1, 2, &[&cards[0], &cards[1]]);
    let recovery = RecoveryPublic {
        backup_public_key: vec![0xff; 1216],
        commitments: recovery().commitments,
    };
    t.register(CeremonyKind::Enrol, set, Some(recovery))
        .unwrap();
    t.login(OfficerRole::Pso, &[&cards[0], &cards[1]]).unwrap();
    let mut sink = Vec::new();
    let e = t
        .conn
        .call_download(Request::Admin(AdminRequest::CreateBackup), &mut sink)
        .unwrap_err();
    assert!(
        matches!(
            e,
            hsm_link::Error::Remote(hsm_link::message::RemoteError::Admin(AdminError::Backup(
                BackupProblem::NoQuorumKey
            )))
        ),
        "{e}"
    );
    assert!(sink.is_empty());
}

#[test]
fn only_a_pso_backs_up_or_restores() {
    let (_f, mut t) = world();
    t.admin(AdminRequest::Logout).unwrap();
    assert!(matches!(
        t.refused(AdminRequest::RestoreDryRun),
        AdminError::NotLoggedIn { .. }
    ));
    let mut sink = Vec::new();
    let e = t
        .conn
        .call_download(Request::Admin(AdminRequest::CreateBackup), &mut sink)
        .unwrap_err();
    assert!(e.to_string().contains("needs an officer login"), "{e}");
    assert!(sink.is_empty());
}

/// Uploads `file` as a migration (the source key and the re-wrapped data key with the header)
/// and asks for the dry run.
fn migrate_dry_run(
    t: &mut Terminal,
    file: &[u8],
    source_key: [u8; 32],
    wrapped_key: [u8; 80],
) -> Result<RestoreDiff, AdminError> {
    let header_len = header_of(file).layout().header_len as usize;
    let begun = t.admin(AdminRequest::MigrateBegin {
        file_len: file.len() as u64,
        header: file[..header_len].to_vec(),
        source_key,
        wrapped_key,
    });
    if let Err(hsm_link::message::RemoteError::Admin(e)) = begun {
        return Err(e);
    }
    for piece in file[header_len..].chunks(MAX_RESTORE_CHUNK) {
        t.admin(AdminRequest::RestoreChunk {
            bytes: piece.to_vec(),
        })
        .unwrap();
    }
    match t.admin(AdminRequest::RestoreDryRun) {
        Ok(AdminResponse::RestoreDiff(d)) => Ok(*d),
        Err(hsm_link::message::RemoteError::Admin(e)) => Err(e),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_migration_needs_the_source_key_and_a_data_key_rewrapped_to_this_hsm() {
    // Two HSMs with the same quorum backup key (the test quorum's, whose private seed the test
    // holds in place of a recovery ceremony).
    let (a, mut ta) = world();
    let (b, mut tb) = world();
    let signer = generate(&a, KeyKind::Ed25519, "signer");
    generate(&a, KeyKind::Aes256, "kek");
    let file = backup(&mut ta);
    let header = header_of(&file);
    let source_key = a.hsm.keys().audit_public().to_bytes();
    let before = snapshot(&b);

    // Without the migration: another HSM's backup is refused.
    assert_eq!(
        dry_run(&mut tb, &file),
        Err(AdminError::Backup(BackupProblem::OtherHsm))
    );
    // B announces its backup key; the data key, opened with the quorum key, is re-wrapped to it.
    let target = match tb.admin(AdminRequest::GetBackupPublic).unwrap() {
        AdminResponse::BackupPublic { key } => key,
        other => panic!("{other:?}"),
    };
    assert_eq!(target, b.hsm.keys().backup_public());
    let quorum_seed = usb_backup::fuzzing::TestHsm::new(1).quorum_seed;
    let data_key = header.unwrap_for_quorum(&quorum_seed).unwrap();
    let wrapped = data_key.wrap_for_migration(&target, &header).unwrap();
    let for_a = data_key
        .wrap_for_migration(&a.hsm.keys().backup_public(), &header)
        .unwrap();

    // Another source key than the signer's; a data key wrapped to another HSM; a flipped bit:
    // each refused, nothing changed.
    let wrong_key = b.hsm.keys().audit_public().to_bytes();
    assert_eq!(
        migrate_dry_run(&mut tb, &file, wrong_key, wrapped),
        Err(AdminError::Backup(BackupProblem::SourceKeyMismatch))
    );
    assert_eq!(
        migrate_dry_run(&mut tb, &file, source_key, for_a),
        Err(AdminError::Backup(BackupProblem::MigrationKey))
    );
    let mut damaged = file.clone();
    let middle = header.layout().header_len as usize + 5;
    damaged[middle] ^= 1;
    assert_eq!(
        migrate_dry_run(&mut tb, &damaged, source_key, wrapped),
        Err(AdminError::Backup(BackupProblem::NotAuthentic))
    );
    assert_eq!(snapshot(&b), before);

    // The migration: A's keys at B, the same material, logged with the source.
    let diff = migrate_dry_run(&mut tb, &file, source_key, wrapped).unwrap();
    assert_eq!(diff.returning.count, 2);
    assert_eq!(commit(&mut tb, &diff), 2);
    assert_eq!(keys(&mut tb), keys(&mut ta));
    let sign = |f: &Fixture| match app(
        f,
        AppRequest::Sign {
            id: signer,
            message: b"pay 10".to_vec(),
        },
    ) {
        AppResponse::Signature(s) => s,
        other => panic!("{other:?}"),
    };
    assert_eq!(sign(&b), sign(&a));
    let log = log_text(&mut tb);
    let line = log
        .lines()
        .find(|l| l.contains("backup.restore") && l.contains("migrated-from-hsm"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains(&hex::encode(header.facts().hsm_id)), "{line}");
    assert!(line.contains("migrated-from-partition"), "{line}");

    // Without a login, B neither announces its key nor takes a migration.
    tb.admin(AdminRequest::Logout).unwrap();
    assert!(matches!(
        tb.refused(AdminRequest::GetBackupPublic),
        AdminError::NotLoggedIn { .. }
    ));
    assert!(matches!(
        migrate_dry_run(&mut tb, &file, source_key, wrapped),
        Err(AdminError::NotLoggedIn { .. })
    ));
}
