//! Every configuration parameter against the operations it governs, on the real application
//! listener (TCP) after a PSO changed it over the admin link, both ways, with each refusal in
//! the log. Also the bin, credentials and quotas.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use common::{Terminal, with_psos};
use hsm_link::domain::{
    ApiProviders, ByokTier, IpAllowList, IpNetwork, KeyAttributes, KeyExport, KeyKind, KeyLabel,
    Parameter, PartitionConfig, ServiceTier,
};
use hsm_link::message::{
    AdminError, AdminRequest, AdminResponse, KeyFilter, KeyQuery, LogQuery, OfficerRole, Request,
    Response,
};
use partition_service::access::ApiProvider;
use partition_service::app_link::{
    AppAuth, AppClient, AppClientError, AppError, AppServer, SecretBytes, SecretText,
};
use partition_service::application::HsmApplications;
use partition_service::application::refusals::REFUSAL_WINDOW_S;

const OPEN: KeyAttributes = KeyAttributes {
    extractable: true,
    sensitive: false,
    modifiable: true,
};

struct World {
    f: common::Fixture,
    pso: Terminal,
    server: AppServer,
    secret: SecretText,
    cards: [common::Card; 3],
}

impl World {
    fn new(tier: ServiceTier) -> Self {
        let (f, mut pso, cards) = with_psos(tier);
        pso.login(OfficerRole::Pso, &[&cards[0], &cards[1]])
            .unwrap();
        let server = AppServer::spawn(
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            Arc::new(HsmApplications(Arc::clone(&f.hsm))),
        )
        .unwrap();
        let AdminResponse::Credentials(creds) = pso.admin(AdminRequest::ResetCredentials).unwrap()
        else {
            panic!("no credentials")
        };
        let (_, secret) = AppClient::connect(
            server.local_addr(),
            &f.partition,
            ApiProvider::Jce,
            AppAuth::SetupPassword(creds.setup_password.clone()),
        )
        .unwrap();
        let secret = secret.expect("the setup password is traded for a permanent secret");
        // The setup password is single-use.
        let again = AppClient::connect(
            server.local_addr(),
            &f.partition,
            ApiProvider::Jce,
            AppAuth::SetupPassword(creds.setup_password),
        );
        assert!(matches!(
            again,
            Err(AppClientError::Refused(AppError::BadCredentials))
        ));
        World {
            f,
            pso,
            server,
            secret,
            cards,
        }
    }

    fn cards(&self) -> [&common::Card; 3] {
        [&self.cards[0], &self.cards[1], &self.cards[2]]
    }

    fn config(&mut self) -> PartitionConfig {
        match self.pso.admin(AdminRequest::GetConfig).unwrap() {
            AdminResponse::Config(c) => *c,
            other => panic!("{other:?}"),
        }
    }

    fn set(&mut self, change: impl FnOnce(&mut PartitionConfig)) {
        let mut c = self.config();
        change(&mut c);
        self.pso
            .admin(AdminRequest::ChangeConfig {
                expected_revision: c.revision,
                config: Box::new(c),
            })
            .unwrap();
    }

    fn app(&self, provider: ApiProvider) -> Result<AppClient, AppClientError> {
        AppClient::connect(
            self.server.local_addr(),
            &self.f.partition,
            provider,
            AppAuth::permanent(&self.secret),
        )
        .map(|(c, _)| c)
    }

    fn app_from(&self, local: Ipv4Addr) -> Result<AppClient, AppClientError> {
        AppClient::connect_from(
            IpAddr::V4(local),
            self.server.local_addr(),
            &self.f.partition,
            ApiProvider::Jce,
            AppAuth::permanent(&self.secret),
        )
        .map(|(c, _)| c)
    }

    fn log(&mut self) -> String {
        let mut out = Vec::new();
        self.pso
            .conn
            .call_download(
                Request::Admin(AdminRequest::ExportLog {
                    query: LogQuery::from(1, 0),
                }),
                &mut out,
            )
            .unwrap();
        String::from_utf8(out).unwrap()
    }
}

fn label(s: &str) -> KeyLabel {
    KeyLabel::new(s).unwrap()
}

fn policy(result: Result<impl std::fmt::Debug, AppClientError>) -> Parameter {
    match result {
        Err(AppClientError::Refused(AppError::Policy(p))) => p,
        other => panic!("expected a policy refusal, got {other:?}"),
    }
}

fn open_up(c: &mut PartitionConfig) {
    c.api_providers = ApiProviders {
        jce: true,
        cng: true,
        pkcs11: true,
        rest: true,
    };
    c.key_import = true;
    c.key_export = KeyExport::WrappedAndPlain;
    c.object_usage = true;
    c.object_destruction = true;
    c.session_objects = true;
    c.read_only = false;
    c.key_invalidation = false;
}

#[test]
fn every_parameter_is_enforced_on_the_application_listener_both_ways() {
    let mut w = World::new(ServiceTier::Economy);
    w.set(open_up);
    let mut app = w.app(ApiProvider::Jce).unwrap();
    let kek_attributes = KeyAttributes {
        extractable: false,
        ..OPEN
    };
    let aes = app
        .generate(KeyKind::Aes256, label("kek"), kek_attributes, false)
        .unwrap();
    let ed = app
        .generate(KeyKind::Ed25519, label("signer"), OPEN, false)
        .unwrap();
    let sig = app.sign(ed.id, b"payment").unwrap();
    app.verify(ed.id, b"payment", &sig).unwrap();
    let ct = app.encrypt(aes.id, b"secret").unwrap();
    assert_eq!(app.decrypt(aes.id, &ct).unwrap().expose(), b"secret");
    // Only under a wrapping key the officers marked trusted, and never an extractable one.
    assert!(matches!(
        app.wrap(aes.id, ed.id),
        Err(AppClientError::Refused(AppError::UntrustedWrappingKey(_)))
    ));
    match w.pso.admin(AdminRequest::TrustKey {
        id: ed.id,
        trusted: true,
    }) {
        Err(hsm_link::message::RemoteError::Admin(AdminError::ExtractableWrappingKey { id })) => {
            assert_eq!(id, ed.id)
        }
        other => panic!("{other:?}"),
    }
    w.pso
        .admin(AdminRequest::TrustKey {
            id: aes.id,
            trusted: true,
        })
        .unwrap();
    let wrapped = app.wrap(aes.id, ed.id).unwrap();
    let plain = app.export_plain(ed.id).unwrap();
    drop(app);

    // API providers, one at a time.
    for (provider, parameter) in [
        (ApiProvider::Jce, Parameter::ApiJce),
        (ApiProvider::Cng, Parameter::ApiCng),
        (ApiProvider::Pkcs11, Parameter::ApiPkcs11),
        (ApiProvider::Rest, Parameter::ApiRest),
    ] {
        assert!(w.app(provider).is_ok(), "{provider:?} on");
        w.set(|c| match provider {
            ApiProvider::Jce => c.api_providers.jce = false,
            ApiProvider::Cng => c.api_providers.cng = false,
            ApiProvider::Pkcs11 => c.api_providers.pkcs11 = false,
            ApiProvider::Rest => c.api_providers.rest = false,
        });
        match w.app(provider) {
            Err(AppClientError::Refused(AppError::ProviderDisabled(p))) => assert_eq!(p, parameter),
            other => panic!("{provider:?}: {:?}", other.err()),
        }
        w.set(open_up);
        // Refused hellos are rationed per window: a new window, so each is logged in full.
        w.f.clock_offset
            .fetch_add(REFUSAL_WINDOW_S, std::sync::atomic::Ordering::SeqCst);
    }

    // Read-only: no creation or deletion, use still works.
    w.set(|c| c.read_only = true);
    let mut app = w.app(ApiProvider::Jce).unwrap();
    assert_eq!(
        policy(app.generate(KeyKind::Aes256, label("x"), OPEN, false)),
        Parameter::ReadOnly
    );
    assert_eq!(policy(app.delete(ed.id)), Parameter::ReadOnly);
    assert!(app.sign(ed.id, b"still fine").is_ok());
    w.set(open_up);

    // Key import governs plain import and unwrap.
    w.set(|c| c.key_import = false);
    app = w.app(ApiProvider::Jce).unwrap();
    assert_eq!(
        policy(app.import_plain(
            KeyKind::Ed25519,
            label("imp"),
            OPEN,
            SecretBytes::from_slice(plain.expose())
        )),
        Parameter::KeyImport
    );
    assert_eq!(
        policy(app.unwrap(aes.id, KeyKind::Ed25519, label("unw"), OPEN, &wrapped)),
        Parameter::KeyImport
    );
    w.set(open_up);
    app = w.app(ApiProvider::Jce).unwrap();
    let imported = app
        .import_plain(
            KeyKind::Ed25519,
            label("imp"),
            OPEN,
            SecretBytes::from_slice(plain.expose()),
        )
        .unwrap();
    let unwrapped = app
        .unwrap(aes.id, KeyKind::Ed25519, label("unw"), OPEN, &wrapped)
        .unwrap();
    // Both are the same key as the original: their signatures verify under it.
    let by_imported = app.sign(imported.id, b"m").unwrap();
    let by_unwrapped = app.sign(unwrapped.id, b"m").unwrap();
    app.verify(ed.id, b"m", &by_imported).unwrap();
    app.verify(ed.id, b"m", &by_unwrapped).unwrap();

    // Key export: off refuses both; wrapped-only refuses plain; plain needs sensitive = false.
    w.set(|c| c.key_export = KeyExport::Off);
    app = w.app(ApiProvider::Jce).unwrap();
    assert_eq!(policy(app.wrap(aes.id, ed.id)), Parameter::KeyExport);
    assert_eq!(policy(app.export_plain(ed.id)), Parameter::KeyExport);
    w.set(|c| c.key_export = KeyExport::WrappedOnly);
    app = w.app(ApiProvider::Jce).unwrap();
    assert!(app.wrap(aes.id, ed.id).is_ok());
    assert_eq!(policy(app.export_plain(ed.id)), Parameter::KeyExport);
    w.set(open_up);
    app = w.app(ApiProvider::Jce).unwrap();
    let sensitive = app
        .generate(
            KeyKind::Ed25519,
            label("sens"),
            KeyAttributes {
                sensitive: true,
                ..OPEN
            },
            false,
        )
        .unwrap();
    let fixed = app
        .generate(
            KeyKind::Ed25519,
            label("fixed"),
            KeyAttributes {
                extractable: false,
                ..OPEN
            },
            false,
        )
        .unwrap();
    assert_eq!(policy(app.export_plain(sensitive.id)), Parameter::KeyExport);
    assert!(app.wrap(aes.id, sensitive.id).is_ok());
    assert_eq!(policy(app.wrap(aes.id, fixed.id)), Parameter::KeyExport);

    // Object usage off: no signing, verifying, encrypting or decrypting.
    w.set(|c| c.object_usage = false);
    app = w.app(ApiProvider::Jce).unwrap();
    assert_eq!(policy(app.sign(ed.id, b"m")), Parameter::ObjectUsage);
    assert_eq!(
        policy(app.verify(ed.id, b"payment", &sig)),
        Parameter::ObjectUsage
    );
    assert_eq!(policy(app.encrypt(aes.id, b"m")), Parameter::ObjectUsage);
    assert_eq!(policy(app.decrypt(aes.id, &ct)), Parameter::ObjectUsage);
    w.set(open_up);

    // Session objects.
    w.set(|c| c.session_objects = false);
    app = w.app(ApiProvider::Jce).unwrap();
    assert_eq!(
        policy(app.generate(KeyKind::Aes256, label("eph"), OPEN, true)),
        Parameter::SessionObjects
    );
    w.set(open_up);
    app = w.app(ApiProvider::Jce).unwrap();
    let eph = app
        .generate(KeyKind::Aes256, label("eph"), OPEN, true)
        .unwrap();
    let ect = app.encrypt(eph.id, b"short-lived").unwrap();
    assert_eq!(app.decrypt(eph.id, &ect).unwrap().expose(), b"short-lived");
    drop(app);
    // A session object ends with its connection and was never stored.
    let mut app = w.app(ApiProvider::Jce).unwrap();
    assert!(matches!(
        app.encrypt(eph.id, b"x"),
        Err(AppClientError::Refused(AppError::NoSuchKey(_)))
    ));
    assert!(app.list().unwrap().iter().all(|k| k.id != eph.id));

    // Object destruction off: every delete fails.
    w.set(|c| c.object_destruction = false);
    app = w.app(ApiProvider::Jce).unwrap();
    assert_eq!(
        policy(app.delete(imported.id)),
        Parameter::ObjectDestruction
    );
    w.set(open_up);
    app = w.app(ApiProvider::Jce).unwrap();
    assert!(
        !app.delete(imported.id).unwrap(),
        "invalidation off: destroyed, not binned"
    );

    // Every refusal above is in the log, named by its parameter.
    let log = w.log();
    for parameter in [
        Parameter::ApiJce,
        Parameter::ApiCng,
        Parameter::ApiPkcs11,
        Parameter::ApiRest,
        Parameter::ReadOnly,
        Parameter::KeyImport,
        Parameter::KeyExport,
        Parameter::ObjectUsage,
        Parameter::SessionObjects,
        Parameter::ObjectDestruction,
    ] {
        assert!(
            log.contains(parameter.label()),
            "no refusal naming {} in the log",
            parameter.label()
        );
    }
    assert!(log.contains("\"result\":\"refused\""));
    assert!(
        log.contains("\"op\":\"key.trust\""),
        "the officers' trust mark is logged"
    );
}

#[test]
fn the_ip_allow_list_is_checked_against_the_peer_address() {
    let mut w = World::new(ServiceTier::Economy);
    let allowed = Ipv4Addr::new(127, 0, 0, 2);
    let other = Ipv4Addr::new(127, 0, 0, 3);
    assert!(
        w.app_from(other).is_ok(),
        "an empty list allows every address"
    );
    w.set(|c| {
        c.ip_allow_list = IpAllowList::new(vec![IpNetwork::host(IpAddr::V4(allowed))]).unwrap();
    });
    assert!(w.app_from(allowed).is_ok());
    assert!(matches!(
        w.app_from(other),
        Err(AppClientError::Refused(AppError::AddressNotAllowed))
    ));
    assert!(matches!(
        w.app_from(Ipv4Addr::LOCALHOST),
        Err(AppClientError::Refused(AppError::AddressNotAllowed))
    ));
    // A /24 covering both.
    w.set(|c| {
        c.ip_allow_list = IpAllowList::new(vec![
            IpNetwork::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)), 24).unwrap(),
        ])
        .unwrap();
    });
    assert!(w.app_from(other).is_ok());
    let log = w.log();
    assert!(log.contains("address not on the IP allow-list"));
    assert!(log.contains("127.0.0.3"));
}

#[test]
fn the_bin_restore_and_purge_and_the_quota() {
    let mut w = World::new(ServiceTier::Byok(ByokTier::Entry3));
    // BYOK defaults: object usage off, invalidation on. Usage on for this test.
    w.set(|c| c.object_usage = true);
    let mut app = w.app(ApiProvider::Jce).unwrap();
    let keys: Vec<_> = (0..3)
        .map(|i| {
            app.generate(KeyKind::Ed25519, label(&format!("k{i}")), OPEN, false)
                .unwrap()
        })
        .collect();
    // Three objects is the tier's limit.
    assert!(matches!(
        app.generate(KeyKind::Ed25519, label("k3"), OPEN, false),
        Err(AppClientError::Refused(AppError::QuotaExceeded))
    ));
    // Delete goes to the bin: gone for the application, still counted, keeps its id.
    assert!(app.delete(keys[0].id).unwrap());
    assert!(app.list().unwrap().iter().all(|k| k.id != keys[0].id));
    assert!(matches!(
        app.sign(keys[0].id, b"m"),
        Err(AppClientError::Refused(AppError::NoSuchKey(_)))
    ));
    assert!(matches!(
        app.generate(KeyKind::Ed25519, label("k3"), OPEN, false),
        Err(AppClientError::Refused(AppError::QuotaExceeded))
    ));
    let AdminResponse::Usage(usage) = w.pso.admin(AdminRequest::GetUsage).unwrap() else {
        panic!()
    };
    assert_eq!((usage.objects_used, usage.invalidated_objects), (3, 1));
    let AdminResponse::Keys {
        keys: bin,
        more: false,
        matching: Some(1),
    } = w
        .pso
        .admin(AdminRequest::ListKeys(KeyQuery::first(
            KeyFilter::Invalidated,
            100,
        )))
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(bin.len(), 1);
    assert_eq!(bin[0].id, keys[0].id);
    assert_eq!(bin[0].label.as_str(), "k0");

    // Restore: usable again.
    w.pso
        .admin(AdminRequest::RestoreKey { id: keys[0].id })
        .unwrap();
    let sig = app.sign(keys[0].id, b"back").unwrap();
    app.verify(keys[0].id, b"back", &sig).unwrap();

    // Delete again and purge: gone for good, quota freed.
    assert!(app.delete(keys[0].id).unwrap());
    w.pso
        .admin(AdminRequest::PurgeKey { id: keys[0].id })
        .unwrap();
    assert!(matches!(
        w.pso.refused(AdminRequest::RestoreKey { id: keys[0].id }),
        hsm_link::message::AdminError::NoSuchKey { in_bin: true, .. }
    ));
    let AdminResponse::Usage(usage) = w.pso.admin(AdminRequest::GetUsage).unwrap() else {
        panic!()
    };
    assert_eq!((usage.objects_used, usage.invalidated_objects), (2, 0));
    let fresh = app
        .generate(KeyKind::Ed25519, label("k3"), OPEN, false)
        .unwrap();
    assert_ne!(fresh.id, keys[0].id, "ids are not reused");
    // Restoring an active key is refused: only the bin is restored from.
    assert!(matches!(
        w.pso.refused(AdminRequest::RestoreKey { id: keys[1].id }),
        hsm_link::message::AdminError::NoSuchKey { in_bin: true, .. }
    ));
    let _ = Response::Pong;
}

#[test]
fn two_device_sos_change_parameters_and_the_application_sees_it() {
    let mut w = World::new(ServiceTier::Economy);
    w.set(open_up);
    w.pso.conn.call(Request::Ping).unwrap();
    let so = [
        common::Card::new("Sam Ops", "S-1"),
        common::Card::new("Tina Ops", "S-2"),
    ];
    for c in &so {
        w.f.hsm.add_so_card(c.description()).unwrap();
    }
    let mut s = w.f.pair();
    s.login(OfficerRole::DeviceSo, &[&so[0], &so[1]]).unwrap();
    let mut app = w.app(ApiProvider::Jce).unwrap();
    let key = app
        .generate(KeyKind::Ed25519, label("so-test"), OPEN, false)
        .unwrap();
    app.sign(key.id, b"before").unwrap();
    let AdminResponse::Config(c) = s.admin(AdminRequest::GetConfig).unwrap() else {
        panic!()
    };
    let mut c = *c;
    c.object_usage = false;
    c.object_destruction = false;
    s.admin(AdminRequest::ChangeConfig {
        expected_revision: c.revision,
        config: Box::new(c),
    })
    .unwrap();
    let mut app = w.app(ApiProvider::Jce).unwrap();
    assert_eq!(policy(app.sign(key.id, b"after")), Parameter::ObjectUsage);
    assert_eq!(policy(app.delete(key.id)), Parameter::ObjectDestruction);
    s.close();
    // The SO login superseded the PSO's session: the PSOs log in again to read the log.
    let mut p = w.f.pair();
    let cards = w.cards();
    p.login(OfficerRole::Pso, &[cards[0], cards[1]]).unwrap();
    w.pso = p;
    let log = w.log();
    assert!(log.contains("\"role\":\"device-so\",\"holders\":[\"Sam Ops\",\"Tina Ops\"]"));
}

#[test]
fn two_terminals_staging_against_the_same_revision_one_wins_the_other_reloads() {
    let mut w = World::new(ServiceTier::Economy);
    let base = w.config();
    // A second terminal, paired separately, with its own PSO login (taking over the session).
    let mut other = w.f.pair();
    let cards = w.cards();
    let mut staged_by_first = base.clone();
    staged_by_first.key_export = KeyExport::Off;
    let mut staged_by_second = base.clone();
    staged_by_second.read_only = true;
    other
        .login(OfficerRole::Pso, &[cards[1], cards[2]])
        .unwrap();
    assert!(matches!(
        other
            .admin(AdminRequest::ChangeConfig {
                expected_revision: base.revision,
                config: Box::new(staged_by_second)
            })
            .unwrap(),
        AdminResponse::ConfigChanged { .. }
    ));
    other.close();
    // The first terminal logs in again and applies what it staged against the old revision.
    let mut first = w.f.pair();
    first
        .login(OfficerRole::Pso, &[cards[0], cards[1]])
        .unwrap();
    assert_eq!(
        first.refused(AdminRequest::ChangeConfig {
            expected_revision: base.revision,
            config: Box::new(staged_by_first)
        }),
        hsm_link::message::AdminError::StaleRevision {
            current: base.revision + 1
        }
    );
    let AdminResponse::Config(now) = first.admin(AdminRequest::GetConfig).unwrap() else {
        panic!()
    };
    assert!(now.read_only, "the winner's change stands");
    assert_ne!(
        now.key_export,
        KeyExport::Off,
        "nothing of the loser's change was applied"
    );
    first.close();
}
