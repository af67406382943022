//! The partition log never loses an unexported entry: when it is full, the partition's policy
//! refuses logged operations (export and its confirmation still work) or prunes only entries
//! confirmed as exported. Also: setup passwords expire.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use common::with_psos;
use hsm_link::domain::{KeyAttributes, KeyKind, KeyLabel, ServiceTier};
use hsm_link::message::{
    AdminError, AdminRequest, AdminResponse, LogQuery, OfficerRole, Request, Response,
};
use partition_service::access::ApiProvider;
use partition_service::app_link::{AppAuth, AppClient, AppClientError, AppError, AppServer};
use partition_service::application::HsmApplications;
use partition_service::model::LogFullPolicy;

const ATTRS: KeyAttributes = KeyAttributes {
    extractable: false,
    sensitive: true,
    modifiable: false,
};

fn export(t: &mut common::Terminal) -> (String, u64) {
    let mut out = Vec::new();
    let done = t
        .conn
        .call_download(
            Request::Admin(AdminRequest::ExportLog {
                query: LogQuery::from(1, 0),
            }),
            &mut out,
        )
        .unwrap();
    let Response::Admin(AdminResponse::ExportDone { last_seq, .. }) = done else {
        panic!("{done:?}")
    };
    (String::from_utf8(out).unwrap(), last_seq.unwrap())
}

#[test]
fn a_full_log_refuses_until_officers_export_and_confirm_and_prunes_only_what_was_confirmed() {
    let (f, mut pso, cards) = with_psos(ServiceTier::Platinum);
    pso.login(OfficerRole::Pso, &[&cards[0], &cards[1]])
        .unwrap();
    f.hsm
        .set_log_policy(&f.partition, 60, LogFullPolicy::Refuse)
        .unwrap();
    let server = AppServer::spawn(
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
        Arc::new(HsmApplications(Arc::clone(&f.hsm))),
    )
    .unwrap();
    let AdminResponse::Credentials(c) = pso.admin(AdminRequest::ResetCredentials).unwrap() else {
        panic!()
    };
    let (mut app, _) = AppClient::connect(
        server.local_addr(),
        &f.partition,
        ApiProvider::Jce,
        AppAuth::SetupPassword(c.setup_password),
    )
    .unwrap();

    // Fill the log with application events until the partition refuses.
    let mut made = 0;
    let refusal = loop {
        match app.generate(
            KeyKind::Aes256,
            KeyLabel::new(format!("k{made}")).unwrap(),
            ATTRS,
            false,
        ) {
            Ok(_) => made += 1,
            Err(e) => break e,
        }
        assert!(made < 100, "the log never filled");
    };
    assert!(
        matches!(refusal, AppClientError::Refused(AppError::LogFull)),
        "{refusal:?}"
    );
    // Administrative changes are refused too, and say why; reading still works.
    let mut config = match pso.admin(AdminRequest::GetConfig).unwrap() {
        AdminResponse::Config(c) => *c,
        other => panic!("{other:?}"),
    };
    config.read_only = true;
    assert_eq!(
        pso.refused(AdminRequest::ChangeConfig {
            expected_revision: config.revision,
            config: Box::new(config.clone())
        }),
        AdminError::LogFull
    );
    let AdminResponse::LogPage(page) = pso
        .admin(AdminRequest::ReadLog {
            query: LogQuery::from(1, 10),
        })
        .unwrap()
    else {
        panic!()
    };
    let warning = page.warning.expect("a full log warns every reader");
    assert_eq!(warning.capacity, 60);

    // A fresh officer session can still log in (a quorum login uses the reserve) and export.
    pso.close();
    let mut pso = f.pair_existing_or_new();
    match pso
        .login(OfficerRole::Pso, &[&cards[1], &cards[2]])
        .unwrap()
    {
        AdminResponse::LoggedIn { log_warning, .. } => {
            assert!(log_warning.is_some(), "the login warns")
        }
        other => panic!("{other:?}"),
    }
    // The export that frees space always works, and so does its confirmation, which under
    // the default policy frees the confirmed entries at once: below the confirmation only,
    // anchored by a signed checkpoint, and the store still verifies.
    let (text, last) = export(&mut pso);
    assert!(text.lines().count() >= 44);
    pso.admin(AdminRequest::ConfirmExport { up_to_seq: last })
        .unwrap();
    let freed = f.hsm.partition(&f.partition).unwrap().log;
    assert!(
        freed.first_seq > 1 && freed.first_seq <= last + 1,
        "pruned to {}",
        freed.first_seq
    );
    app.generate(
        KeyKind::Aes256,
        KeyLabel::new("after-confirm").unwrap(),
        ATTRS,
        false,
    )
    .unwrap();
    made += 1;
    assert_eq!(f.hsm.check().unwrap()[0].keys, made);

    // Under prune-confirmed, confirmed entries stay until room is needed: fill the log again,
    // export and confirm; nothing goes until the next entry needs the room.
    f.hsm
        .set_log_policy(&f.partition, 60, LogFullPolicy::PruneConfirmed)
        .unwrap();
    loop {
        match app.generate(
            KeyKind::Aes256,
            KeyLabel::new(format!("k{made}")).unwrap(),
            ATTRS,
            false,
        ) {
            Ok(_) => made += 1,
            Err(AppClientError::Refused(AppError::LogFull)) => break,
            Err(e) => panic!("{e:?}"),
        }
        assert!(made < 200, "the log never filled again");
    }
    let (_, last) = export(&mut pso);
    pso.admin(AdminRequest::ConfirmExport { up_to_seq: last })
        .unwrap();
    let before = f.hsm.partition(&f.partition).unwrap().log;
    assert_eq!(before.first_seq, freed.first_seq, "kept until needed");
    app.generate(
        KeyKind::Aes256,
        KeyLabel::new("after-prune").unwrap(),
        ATTRS,
        false,
    )
    .unwrap();
    let after = f.hsm.partition(&f.partition).unwrap().log;
    assert!(
        after.first_seq > before.first_seq && after.first_seq <= last + 1,
        "pruned to {}",
        after.first_seq
    );
    let checks = f.hsm.check().unwrap();
    assert_eq!(checks[0].keys, made + 1);
    drop(config);
    pso.close();
}

#[test]
fn a_setup_password_expires_after_72_hours_and_works_once() {
    let (f, mut pso, cards) = with_psos(ServiceTier::Economy);
    pso.login(OfficerRole::Pso, &[&cards[0], &cards[1]])
        .unwrap();
    let server = AppServer::spawn(
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
        Arc::new(HsmApplications(Arc::clone(&f.hsm))),
    )
    .unwrap();
    let AdminResponse::Credentials(c) = pso.admin(AdminRequest::ResetCredentials).unwrap() else {
        panic!()
    };
    assert_eq!(c.setup_password.len(), 29);
    f.clock_offset.store(72 * 3600 + 60, Ordering::SeqCst);
    let expired = AppClient::connect(
        server.local_addr(),
        &f.partition,
        ApiProvider::Jce,
        AppAuth::SetupPassword(c.setup_password.clone()),
    );
    assert!(
        matches!(
            expired,
            Err(AppClientError::Refused(AppError::SetupPasswordExpired))
        ),
        "{:?}",
        expired.err()
    );
    // A PSO resets: the new password works, and the old permanent secret (if any) is gone.
    let AdminResponse::Credentials(fresh) = pso.admin(AdminRequest::ResetCredentials).unwrap()
    else {
        panic!()
    };
    let (_, secret) = AppClient::connect(
        server.local_addr(),
        &f.partition,
        ApiProvider::Jce,
        AppAuth::SetupPassword(fresh.setup_password),
    )
    .unwrap();
    let secret = secret.unwrap();
    assert!(
        AppClient::connect(
            server.local_addr(),
            &f.partition,
            ApiProvider::Jce,
            AppAuth::permanent(&secret)
        )
        .is_ok()
    );
    pso.admin(AdminRequest::ResetCredentials).unwrap();
    assert!(matches!(
        AppClient::connect(
            server.local_addr(),
            &f.partition,
            ApiProvider::Jce,
            AppAuth::permanent(&secret)
        ),
        Err(AppClientError::Refused(AppError::BadCredentials))
    ));
    pso.close();
}

#[test]
fn a_credentials_reset_ends_connections_opened_with_the_old_ones() {
    let (f, mut pso, cards) = with_psos(ServiceTier::Economy);
    pso.login(OfficerRole::Pso, &[&cards[0], &cards[1]])
        .unwrap();
    let server = AppServer::spawn(
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
        Arc::new(HsmApplications(Arc::clone(&f.hsm))),
    )
    .unwrap();
    let AdminResponse::Credentials(c) = pso.admin(AdminRequest::ResetCredentials).unwrap() else {
        panic!()
    };
    let (mut app, _) = AppClient::connect(
        server.local_addr(),
        &f.partition,
        ApiProvider::Jce,
        AppAuth::SetupPassword(c.setup_password),
    )
    .unwrap();
    if let Err(e) = app.list() {
        panic!("{e:?}")
    }
    pso.admin(AdminRequest::ResetCredentials).unwrap();
    assert!(matches!(
        app.list(),
        Err(AppClientError::Refused(AppError::CredentialsReset))
    ));
    pso.close();
}

#[test]
fn a_pairing_code_is_burned_after_three_failures_even_when_the_log_is_full() {
    use hsm_link::trust::{PairingOffer, TrustStore};
    let f = common::Fixture::new(ServiceTier::Economy);
    f.hsm
        .set_log_policy(&f.partition, 40, LogFullPolicy::Refuse)
        .unwrap();
    // Fill the log with reissued codes until it refuses; the last code issued stays open.
    let mut issued = 0;
    while f
        .hsm
        .issue_pairing_code(&f.partition, partition_service::service::genesis())
        .is_ok()
    {
        issued += 1;
        assert!(issued < 100, "the log never filled");
    }
    let PairingOffer::Open(psk) = f.hsm.pairing_offer(&f.partition) else {
        panic!("the last code issued stays open");
    };
    // Three wrong attempts: the log cannot take their entries, but the count holds.
    assert_eq!(f.hsm.pairing_failed(&f.partition, &psk), 2);
    assert_eq!(f.hsm.pairing_failed(&f.partition, &psk), 1);
    assert_eq!(f.hsm.pairing_failed(&f.partition, &psk), 0);
    assert!(
        matches!(f.hsm.pairing_offer(&f.partition), PairingOffer::None),
        "the code must be burned"
    );
}
