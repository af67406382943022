//! The application side of the HSM called directly (no socket): the ration of refused hellos,
//! session objects and their entries, and the wrap policy.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hsm_link::domain::{
    IpAllowList, IpNetwork, KeyAttributes, KeyExport, KeyId, KeyKind, KeyLabel, Parameter,
    PartitionId, ServiceTier,
};

use super::*;
use crate::model::LogFullPolicy;
use crate::service::Clock;

const APP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));

pub(super) struct Fixture {
    _dir: tempfile::TempDir,
    pub(super) hsm: Hsm,
    pub(super) partition: PartitionId,
    /// Seconds added to the system clock.
    offset: Arc<AtomicU64>,
    secret: SecretText,
}

impl Fixture {
    pub(super) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Hsm::init(dir.path()).unwrap();
        let offset = Arc::new(AtomicU64::new(0));
        let clock = {
            let offset = Arc::clone(&offset);
            let system = Clock::system();
            Clock::from_fn(move || system.now_ms() + offset.load(Ordering::SeqCst) * 1000)
        };
        let hsm = Hsm::open(dir.path(), clock).unwrap();
        let partition = PartitionId::new("bank-1").unwrap();
        hsm.create_partition(partition.clone(), "Bank", ServiceTier::Platinum)
            .unwrap();
        let officer = Actor::new(Role::Pso, ["alice"]);
        let (password, _) = hsm.reset_credentials(&partition, officer).unwrap();
        let setup = AppAuth::SetupPassword(password.to_string());
        let mut connection = AppConnection::default();
        let secret = hsm
            .app_authenticate(&mut connection, APP, &partition, ApiProvider::Jce, &setup)
            .unwrap()
            .unwrap();
        Fixture {
            _dir: dir,
            hsm,
            partition,
            offset,
            secret,
        }
    }

    pub(super) fn pass(&self, seconds: u64) {
        self.offset.fetch_add(seconds, Ordering::SeqCst);
    }

    pub(super) fn connect(&self) -> AppConnection {
        let mut connection = AppConnection::default();
        let auth = AppAuth::permanent(&self.secret);
        let hello = self.hsm.app_authenticate(
            &mut connection,
            APP,
            &self.partition,
            ApiProvider::Jce,
            &auth,
        );
        assert!(matches!(hello, Ok(None)), "{hello:?}");
        connection
    }

    pub(super) fn run(
        &self,
        connection: &mut AppConnection,
        request: AppRequest,
    ) -> Result<AppResponse, AppError> {
        self.hsm
            .app_execute(connection, APP, &self.partition, ApiProvider::Jce, request)
    }

    pub(super) fn configure(&self, f: impl FnOnce(&mut PartitionConfig)) {
        self.hsm
            .modify(&self.partition, |_, _, record| {
                f(&mut record.config);
                Ok(())
            })
            .unwrap();
    }

    /// The log's entries, as their canonical JSON lines.
    pub(super) fn log(&self) -> Vec<String> {
        self.hsm
            .store()
            .read(|tx| {
                let mut lines = Vec::new();
                tx.log_lines(&self.partition, 0, |_, line, _| {
                    lines.push(String::from_utf8(line.to_vec()).unwrap());
                    true
                })?;
                Ok::<_, ServiceError>(lines)
            })
            .unwrap()
    }

    /// A hello's refusal (`None` when it was accepted).
    fn hello_from(&self, peer: IpAddr, auth: &AppAuth) -> Option<AppError> {
        self.hsm
            .app_authenticate(
                &mut AppConnection::default(),
                peer,
                &self.partition,
                ApiProvider::Jce,
                auth,
            )
            .err()
    }
}

pub(super) fn attributes(extractable: bool, sensitive: bool) -> KeyAttributes {
    KeyAttributes {
        extractable,
        sensitive,
        modifiable: false,
    }
}

pub(super) fn generate(kind: KeyKind, label: &str, attributes: KeyAttributes) -> AppRequest {
    AppRequest::Generate {
        kind,
        label: KeyLabel::new(label).unwrap(),
        attributes,
        session: false,
    }
}

fn refused_connects(log: &[String]) -> Vec<&String> {
    log.iter()
        .filter(|l| l.contains("app.connect") && l.contains("refused"))
        .collect()
}

#[test]
fn a_flood_of_refused_hellos_is_summarised_and_leaves_room_for_the_application() {
    let f = Fixture::new();
    f.hsm
        .set_log_policy(&f.partition, 200, LogFullPolicy::Refuse)
        .unwrap();
    let mut app = f.connect();
    let wrong = AppAuth::PermanentSecret("not-the-secret".to_string());
    let prober = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9));
    for _ in 0..250 {
        assert_eq!(
            f.hello_from(prober, &wrong),
            Some(AppError::BadCredentials),
            "each refusal is still answered"
        );
    }
    // An address outside the allow-list, and a provider that is off, are rationed the same.
    f.configure(|c| {
        let only = IpNetwork::new(APP, 32).unwrap();
        c.ip_allow_list = IpAllowList::new(vec![only]).unwrap();
    });
    let outsider = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10));
    for _ in 0..250 {
        assert_eq!(
            f.hello_from(outsider, &AppAuth::permanent(&f.secret)),
            Some(AppError::AddressNotAllowed)
        );
    }
    let log = f.log();
    assert_eq!(
        refused_connects(&log).len(),
        2,
        "one per source, two per window"
    );
    // The application's own work still runs.
    f.run(
        &mut app,
        generate(KeyKind::Aes256, "after", attributes(false, true)),
    )
    .unwrap();

    // The next window opens with one entry that counts what was not logged one by one.
    f.pass(refusals::REFUSAL_WINDOW_S);
    drop(f.connect());
    let log = f.log();
    let refused = refused_connects(&log);
    assert_eq!(refused.len(), 3, "{refused:#?}");
    let summary = refused[2];
    assert!(summary.contains("\"refused\":\"498\""), "{summary}");
    assert!(summary.contains("\"sources\":\"2\""), "{summary}");
    assert!(summary.contains("127.0.0.9 249"), "{summary}");
}

#[test]
fn refusal_entries_stop_short_of_the_room_kept_for_authenticated_work() {
    let f = Fixture::new();
    f.hsm
        .set_log_policy(&f.partition, 40, LogFullPolicy::Refuse)
        .unwrap();
    let mut app = f.connect();
    let wrong = AppAuth::PermanentSecret("not-the-secret".to_string());
    // A new source every time, and a new window every ten: as many entries as the ration
    // would ever allow.
    for i in 0..400u32 {
        if i % 10 == 0 {
            f.pass(refusals::REFUSAL_WINDOW_S);
        }
        let peer = IpAddr::V4(Ipv4Addr::from(0x7f00_0100 + i));
        assert_eq!(f.hello_from(peer, &wrong), Some(AppError::BadCredentials));
    }
    let stored = f.hsm.partition(&f.partition).unwrap().log.stored();
    assert_eq!(
        stored,
        40 - 16 - 4,
        "refusals stop where the kept room begins"
    );
    f.run(
        &mut app,
        generate(KeyKind::Aes256, "mine", attributes(false, true)),
    )
    .unwrap();
}

#[test]
fn a_session_object_and_its_entry_exist_together_or_not_at_all() {
    let f = Fixture::new();
    f.hsm
        .set_log_policy(&f.partition, 40, LogFullPolicy::Refuse)
        .unwrap();
    let mut app = f.connect();
    let session_key = |label: &str| AppRequest::Generate {
        kind: KeyKind::Aes256,
        label: KeyLabel::new(label).unwrap(),
        attributes: attributes(false, true),
        session: true,
    };
    let Ok(AppResponse::Key(kept)) = f.run(&mut app, session_key("kept")) else {
        panic!()
    };
    // Fill the log.
    for i in 0.. {
        match f.run(
            &mut app,
            generate(KeyKind::Aes256, &format!("k{i}"), attributes(false, true)),
        ) {
            Ok(_) => {}
            Err(AppError::LogFull) => break,
            Err(e) => panic!("{e:?}"),
        }
    }
    let sessions = |app: &mut AppConnection| match f.run(app, AppRequest::List) {
        Ok(AppResponse::Keys(keys)) => keys
            .into_iter()
            .filter(|k| k.id.0 & SESSION_OBJECT_BIT != 0)
            .map(|k| k.id)
            .collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        f.run(&mut app, session_key("unlogged")).unwrap_err(),
        AppError::LogFull
    );
    assert_eq!(sessions(&mut app), [kept.id], "no object without its entry");
    assert_eq!(
        f.run(&mut app, AppRequest::Delete { id: kept.id })
            .unwrap_err(),
        AppError::LogFull
    );
    assert_eq!(
        sessions(&mut app),
        [kept.id],
        "no deletion without its entry"
    );
    let log = f.log();
    let generated = log
        .iter()
        .filter(|l| l.contains("key.generate") && l.contains("session-object"))
        .count();
    assert_eq!(generated, 1);
}

fn key_id(response: Result<AppResponse, AppError>) -> KeyId {
    match response {
        Ok(AppResponse::Key(k)) => k.id,
        other => panic!("{other:?}"),
    }
}

/// The attack: a key the application knows in plain (imported, or exported in plain) as the
/// wrapping key, so that the "wrapped" key opens offline (RFC 5649).
fn known_wrapping_key(f: &Fixture, app: &mut AppConnection, plain_export: bool) -> KeyId {
    if plain_export {
        let kek = key_id(f.run(
            app,
            AppRequest::Generate {
                kind: KeyKind::Aes256,
                label: KeyLabel::new("session-kek").unwrap(),
                attributes: attributes(true, false),
                session: true,
            },
        ));
        assert!(matches!(
            f.run(app, AppRequest::ExportPlain { id: kek }),
            Ok(AppResponse::Material(_))
        ));
        kek
    } else {
        key_id(f.run(
            app,
            AppRequest::ImportPlain {
                kind: KeyKind::Aes256,
                label: KeyLabel::new("known").unwrap(),
                attributes: attributes(true, false),
                material: SecretBytes::new(vec![7; 32]),
            },
        ))
    }
}

#[test]
fn the_wrap_attack_is_refused_under_both_export_settings() {
    for export in [KeyExport::WrappedOnly, KeyExport::WrappedAndPlain] {
        let f = Fixture::new();
        f.configure(|c| {
            c.key_export = export;
            c.key_import = true;
            c.session_objects = true;
            c.object_usage = true;
        });
        let mut app = f.connect();
        let plain = export == KeyExport::WrappedAndPlain;
        let kek = known_wrapping_key(&f, &mut app, plain);
        for (label, extractable_sensitive) in [("sensitive", true), ("plain", false)] {
            let target = key_id(f.run(
                &mut app,
                generate(
                    KeyKind::Ed25519,
                    label,
                    attributes(true, extractable_sensitive),
                ),
            ));
            assert_eq!(
                f.run(
                    &mut app,
                    AppRequest::Wrap {
                        wrapping: kek,
                        target
                    }
                )
                .unwrap_err(),
                AppError::UntrustedWrappingKey(kek),
                "{export:?} {label}"
            );
        }
        let log = f.log();
        assert!(
            log.iter()
                .any(|l| l.contains("key.wrap") && l.contains("is not trusted")),
            "the refusal is logged"
        );
    }
}

#[test]
fn wrap_and_unwrap_obey_object_usage_for_the_wrapping_key() {
    let f = Fixture::new();
    f.configure(|c| {
        c.key_export = KeyExport::WrappedOnly;
        c.key_import = true;
    });
    let mut app = f.connect();
    let kek = key_id(f.run(
        &mut app,
        generate(KeyKind::Aes256, "kek", attributes(false, true)),
    ));
    let target = key_id(f.run(
        &mut app,
        generate(KeyKind::Aes256, "t", attributes(true, true)),
    ));
    f.configure(|c| c.object_usage = false);
    assert_eq!(
        f.run(
            &mut app,
            AppRequest::Wrap {
                wrapping: kek,
                target
            }
        )
        .unwrap_err(),
        AppError::Policy(Parameter::ObjectUsage)
    );
    let unwrap = AppRequest::Unwrap {
        wrapping: kek,
        kind: KeyKind::Aes256,
        label: KeyLabel::new("in").unwrap(),
        attributes: attributes(false, true),
        blob: vec![0; 40],
    };
    assert_eq!(
        f.run(&mut app, unwrap).unwrap_err(),
        AppError::Policy(Parameter::ObjectUsage)
    );
}

#[test]
fn a_flipped_attribute_in_the_store_does_not_open() {
    let f = Fixture::new();
    f.configure(|c| c.key_export = KeyExport::WrappedAndPlain);
    let mut app = f.connect();
    let id = key_id(f.run(
        &mut app,
        generate(KeyKind::Aes256, "s", attributes(true, true)),
    ));
    assert_eq!(
        f.run(&mut app, AppRequest::ExportPlain { id }).unwrap_err(),
        AppError::Policy(Parameter::KeyExport)
    );
    // Whoever writes hsm.redb (but cannot read device.key) flips `sensitive` off.
    f.hsm
        .store()
        .write(|tx| {
            let mut key = tx.key(&f.partition, id)?.unwrap();
            key.summary.attributes.sensitive = false;
            tx.put_key(&f.partition, &key)?;
            Ok::<_, ServiceError>(())
        })
        .unwrap();
    let export = f.run(&mut app, AppRequest::ExportPlain { id });
    assert_eq!(
        export.unwrap_err(),
        AppError::Internal,
        "the key no longer opens"
    );
}
