//! The administration link against a real HSM (store, keys, log): first PSO set, logins,
//! roles and four eyes, configuration with revisions, supersession, throttling, log export.

mod common;

use audit_log::{ExportReport, ExportVerifier, KeyPin, verify_export};
use common::{Card, Fixture, Terminal, card_set, recovery, with_psos};
use hsm_link::domain::Role;
use hsm_link::domain::{CardSetKind, KeyExport, Parameter, ServiceTier};
use hsm_link::message::RemoteError;
use hsm_link::message::{
    Action, AdminError, AdminRequest, AdminResponse, CardSetProblem, CeremonyKind, CloseReason,
    ConfigProblem, LogQuery, LoginRefusal, OfficerRole, Request,
};
use partition_service::model::LogFullPolicy;

fn config(t: &mut common::Terminal) -> hsm_link::domain::PartitionConfig {
    match t.admin(AdminRequest::GetConfig).unwrap() {
        AdminResponse::Config(c) => *c,
        other => panic!("{other:?}"),
    }
}

#[test]
fn only_the_first_terminal_registers_the_first_pso_set_and_psos_log_in_with_two_cards() {
    let f = Fixture::new(ServiceTier::Economy);
    let mut first = f.pair();
    let mut second = f.pair();
    let cards = [
        Card::new("Alice Meier", "A-1"),
        Card::new("Bruno Rossi", "B-2"),
        Card::new("Chiara Bianchi", "C-3"),
    ];
    let set = card_set(CardSetKind::Pso, 1, 2, &[&cards[0], &cards[1], &cards[2]]);

    // The second terminal is not allowed to bootstrap the partition.
    let err = second.register_refused(CeremonyKind::Enrol, set.clone(), Some(recovery()));
    assert_eq!(
        err,
        AdminError::NotLoggedIn {
            action: Action::RegisterCardSet
        }
    );
    // A PSO set needs its recovery parts.
    let err = first.register_refused(CeremonyKind::Enrol, set.clone(), None);
    assert_eq!(err, AdminError::CardSet(CardSetProblem::MissingRecovery));
    // A set registered outside a ceremony is refused, whoever sends it.
    let err = first.refused(AdminRequest::RegisterCardSet {
        set: Box::new(set.clone()),
        recovery: Some(Box::new(recovery())),
    });
    assert_eq!(err, AdminError::CardSet(CardSetProblem::NeedsCeremony));
    first
        .register(CeremonyKind::Enrol, set.clone(), Some(recovery()))
        .unwrap();
    // Once a set exists, even the first terminal needs the PSO quorum to change it.
    let err = first.register_refused(
        CeremonyKind::Enrol,
        card_set(CardSetKind::Pso, 2, 1, &[&cards[0]]),
        Some(recovery()),
    );
    assert_eq!(
        err,
        AdminError::NotLoggedIn {
            action: Action::RegisterCardSet
        }
    );

    // One card is not enough; two are; the same card twice is refused and named.
    match first.login(OfficerRole::Pso, &[&cards[0]]) {
        Err(hsm_link::message::RemoteError::Admin(AdminError::Login(
            LoginRefusal::TooFewCards { have: 1, need: 2 },
        ))) => {}
        other => panic!("{other:?}"),
    }
    match first.login(OfficerRole::Pso, &[&cards[0], &cards[0]]) {
        Err(hsm_link::message::RemoteError::Admin(AdminError::Login(
            LoginRefusal::DuplicateCard { index: 1 },
        ))) => {}
        other => panic!("{other:?}"),
    }
    let stranger = Card::new("Mallory", "M-9");
    match first.login(OfficerRole::Pso, &[&cards[0], &stranger]) {
        Err(hsm_link::message::RemoteError::Admin(AdminError::Login(
            LoginRefusal::UnknownCard { index: 1 },
        ))) => {}
        other => panic!("{other:?}"),
    }
    match first
        .login(OfficerRole::Pso, &[&cards[2], &cards[1]])
        .unwrap()
    {
        AdminResponse::LoggedIn { role, holders, .. } => {
            assert_eq!(role, OfficerRole::Pso);
            let names: Vec<_> = holders.iter().map(|h| h.as_str()).collect();
            assert_eq!(names, ["Chiara Bianchi", "Bruno Rossi"]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(config(&mut first).revision, 0);
    first.close();
    second.close();
}

#[test]
fn a_signature_from_another_session_does_not_log_in() {
    let (f, t, cards) = with_psos(ServiceTier::Economy);
    // The other session's own challenge, signed over this session's channel binding: only the
    // binding is wrong, so this fails only because the login message binds the channel.
    let key =
        hsm_link::keys::StaticKeypair::from_secret(zeroize::Zeroizing::new(*t.key.secret_bytes()));
    let mut other = f.reconnect(key);
    let AdminResponse::Challenge { nonce, .. } = other
        .admin(AdminRequest::LoginChallenge {
            role: OfficerRole::Pso,
        })
        .unwrap()
    else {
        panic!()
    };
    assert_ne!(
        t.conn.session().channel_binding(),
        other.conn.session().channel_binding()
    );
    use ed25519_dalek::Signer;
    let sign = |binding: &[u8; 32]| -> Vec<_> {
        let message =
            hsm_link::message::login_message(binding, &nonce, &t.partition, OfficerRole::Pso);
        cards[..2]
            .iter()
            .map(|c| hsm_link::message::CardSignature {
                signing_key: c.key.verifying_key().to_bytes(),
                signature: c.key.sign(&message).to_bytes(),
            })
            .collect()
    };
    let err = other.refused(AdminRequest::Login {
        role: OfficerRole::Pso,
        signatures: sign(t.conn.session().channel_binding()),
    });
    assert_eq!(
        err,
        AdminError::Login(LoginRefusal::BadSignature { index: 0 })
    );
    // Signed over this session's own binding, the same cards log in (with a fresh challenge:
    // the refused login spent the first one).
    let AdminResponse::Challenge { nonce: fresh, .. } = other
        .admin(AdminRequest::LoginChallenge {
            role: OfficerRole::Pso,
        })
        .unwrap()
    else {
        panic!()
    };
    let message = hsm_link::message::login_message(
        other.conn.session().channel_binding(),
        &fresh,
        &t.partition,
        OfficerRole::Pso,
    );
    let signatures = cards[..2]
        .iter()
        .map(|c| hsm_link::message::CardSignature {
            signing_key: c.key.verifying_key().to_bytes(),
            signature: c.key.sign(&message).to_bytes(),
        })
        .collect();
    other
        .admin(AdminRequest::Login {
            role: OfficerRole::Pso,
            signatures,
        })
        .unwrap();
    other.close();
    t.close();
}

#[test]
fn roles_and_four_eyes() {
    let (f, mut t, cards) = with_psos(ServiceTier::Economy);
    t.login(OfficerRole::Pso, &[&cards[0], &cards[1]]).unwrap();
    // An auditor set, registered by the PSOs.
    let auditor = Card::new("Dora Keller", "D-4");
    t.register(
        CeremonyKind::EnrolAuditors,
        card_set(CardSetKind::Auditor, 1, 1, &[&auditor]),
        None,
    )
    .unwrap();
    let revision = config(&mut t).revision;
    t.close();

    // Two SOs of the operator, registered on the HSM by its owner.
    let so = [
        Card::new("Sam Ops", "S-1"),
        Card::new("Tina Ops", "S-2"),
        Card::new("sam  ops", "S-3"),
    ];
    for c in &so {
        f.hsm.add_so_card(c.description()).unwrap();
    }

    // The auditor reads but does not write.
    let key = hsm_link::keys::StaticKeypair::generate().unwrap();
    drop(key);
    let mut a = f.pair();
    a.login(OfficerRole::Auditor, &[&auditor]).unwrap();
    assert_eq!(config(&mut a).revision, revision);
    let mut changed = config(&mut a);
    changed.read_only = true;
    let err = a.refused(AdminRequest::ChangeConfig {
        expected_revision: revision,
        config: Box::new(changed.clone()),
    });
    assert_eq!(
        err,
        AdminError::Forbidden {
            role: Role::Auditor,
            action: Action::ChangeConfig
        }
    );
    assert_eq!(
        a.refused(AdminRequest::ResetCredentials),
        AdminError::Forbidden {
            role: Role::Auditor,
            action: Action::ResetCredentials
        }
    );
    a.close();

    // Four eyes: one SO, or one person's two cards, are refused; two people are accepted.
    let mut s = f.pair();
    match s.login(OfficerRole::DeviceSo, &[&so[0]]) {
        Err(hsm_link::message::RemoteError::Admin(AdminError::Login(
            LoginRefusal::TooFewCards { have: 1, need: 2 },
        ))) => {}
        other => panic!("{other:?}"),
    }
    match s.login(OfficerRole::DeviceSo, &[&so[0], &so[2]]) {
        Err(hsm_link::message::RemoteError::Admin(AdminError::Login(LoginRefusal::SamePerson))) => {
        }
        other => panic!("{other:?}"),
    }
    s.login(OfficerRole::DeviceSo, &[&so[0], &so[1]]).unwrap();
    s.admin(AdminRequest::ChangeConfig {
        expected_revision: revision,
        config: Box::new(changed),
    })
    .unwrap();
    // SOs may not enrol card sets.
    assert_eq!(
        s.register_refused(
            CeremonyKind::EnrolAuditors,
            card_set(CardSetKind::Auditor, 2, 1, &[&auditor]),
            None
        ),
        AdminError::Forbidden {
            role: Role::DeviceSo,
            action: Action::RegisterCardSet
        }
    );
    s.close();

    // The PSOs switch device-SO access off: SOs can do nothing, not even log in.
    let mut p = f.pair();
    p.login(OfficerRole::Pso, &[&cards[1], &cards[2]]).unwrap();
    let mut c = config(&mut p);
    c.device_so_access = false;
    p.admin(AdminRequest::ChangeConfig {
        expected_revision: c.revision,
        config: Box::new(c),
    })
    .unwrap();
    p.close();
    let mut s = f.pair();
    assert_eq!(
        s.refused(AdminRequest::LoginChallenge {
            role: OfficerRole::DeviceSo
        }),
        AdminError::DeviceSoAccessOff
    );
    assert_eq!(
        s.refused(AdminRequest::GetConfig),
        AdminError::NotLoggedIn {
            action: Action::ViewConfig
        }
    );
    s.close();
}

#[test]
fn an_so_quorum_cannot_log_in_or_supersede_after_access_was_switched_off() {
    let (f, mut pso, cards) = with_psos(ServiceTier::Economy);
    let so = [Card::new("Sam Ops", "S-1"), Card::new("Tina Ops", "S-2")];
    for c in &so {
        f.hsm.add_so_card(c.description()).unwrap();
    }
    // The SOs take a challenge while their access is on...
    let mut s = f.pair();
    let AdminResponse::Challenge { nonce, .. } = s
        .admin(AdminRequest::LoginChallenge {
            role: OfficerRole::DeviceSo,
        })
        .unwrap()
    else {
        panic!()
    };
    // ...the PSOs switch it off...
    pso.login(OfficerRole::Pso, &[&cards[0], &cards[1]])
        .unwrap();
    let mut c = config(&mut pso);
    c.device_so_access = false;
    pso.admin(AdminRequest::ChangeConfig {
        expected_revision: c.revision,
        config: Box::new(c),
    })
    .unwrap();
    // ...and the SOs' valid answer is refused: no login, and the PSOs' session goes on.
    use ed25519_dalek::Signer;
    let message = hsm_link::message::login_message(
        s.conn.session().channel_binding(),
        &nonce,
        &s.partition,
        OfficerRole::DeviceSo,
    );
    let signatures = so
        .iter()
        .map(|c| hsm_link::message::CardSignature {
            signing_key: c.key.verifying_key().to_bytes(),
            signature: c.key.sign(&message).to_bytes(),
        })
        .collect();
    assert_eq!(
        s.refused(AdminRequest::Login {
            role: OfficerRole::DeviceSo,
            signatures,
        }),
        AdminError::DeviceSoAccessOff
    );
    assert_eq!(
        s.refused(AdminRequest::GetConfig),
        AdminError::NotLoggedIn {
            action: Action::ViewConfig
        }
    );
    assert!(
        !config(&mut pso).device_so_access,
        "the PSOs still hold the session"
    );
    s.close();
    pso.close();
}

#[test]
fn a_configuration_change_applies_only_to_the_revision_it_was_staged_against() {
    let (f, mut one, cards) = with_psos(ServiceTier::Economy);
    one.login(OfficerRole::Pso, &[&cards[0], &cards[1]])
        .unwrap();
    let base = config(&mut one);
    let mut first = base.clone();
    first.key_export = KeyExport::Off;
    let mut second = base.clone();
    second.read_only = true;
    assert_eq!(
        one.admin(AdminRequest::ChangeConfig {
            expected_revision: base.revision,
            config: Box::new(first)
        })
        .unwrap(),
        AdminResponse::ConfigChanged {
            revision: base.revision + 1
        }
    );
    // The other terminal staged against the same revision: told to reload, nothing applied.
    assert_eq!(
        one.refused(AdminRequest::ChangeConfig {
            expected_revision: base.revision,
            config: Box::new(second)
        }),
        AdminError::StaleRevision {
            current: base.revision + 1
        }
    );
    let now = config(&mut one);
    assert_eq!(now.key_export, KeyExport::Off);
    assert!(!now.read_only);
    // Licences and the tier's quota are not the PSO's to change.
    let mut sneaky = now.clone();
    sneaky.ska.licensed = true;
    assert_eq!(
        one.refused(AdminRequest::ChangeConfig {
            expected_revision: now.revision,
            config: Box::new(sneaky)
        }),
        AdminError::InvalidConfig {
            problem: ConfigProblem::LicenceChanged(Parameter::SmartKeyAttributes)
        }
    );
    let mut bigger = now.clone();
    bigger.quota.size_bytes *= 2;
    assert_eq!(
        one.refused(AdminRequest::ChangeConfig {
            expected_revision: now.revision,
            config: Box::new(bigger)
        }),
        AdminError::InvalidConfig {
            problem: ConfigProblem::TierParameter(Parameter::QuotaSize)
        }
    );
    drop(f);
    one.close();
}

#[test]
fn a_new_login_ends_the_other_management_session_after_saying_so() {
    let (f, mut one, cards) = with_psos(ServiceTier::Economy);
    one.login(OfficerRole::Pso, &[&cards[0], &cards[1]])
        .unwrap();
    let mut two = f.pair();
    two.login(OfficerRole::Pso, &[&cards[1], &cards[2]])
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(600));
    match one.conn.call(Request::Ping) {
        Err(hsm_link::Error::Closed(CloseReason::Superseded)) => {}
        other => panic!("{other:?}"),
    }
    let server = one.server.take().unwrap();
    assert!(matches!(
        server.join().unwrap().unwrap().end,
        hsm_link::server::SessionEnd::EndedByHsm(CloseReason::Superseded)
    ));
    assert!(two.admin(AdminRequest::GetConfig).is_ok());
    two.close();
}

#[test]
fn failed_logins_are_throttled_and_logged() {
    use partition_service::admin::{THROTTLE_FAILURES, THROTTLE_FAILURES_PER_TERMINAL};
    let (f, mut t, cards) = with_psos(ServiceTier::Economy);
    let stranger = Card::new("Mallory", "M-9");
    let throttled = |t: &mut common::Terminal| match t.admin(AdminRequest::LoginChallenge {
        role: OfficerRole::Pso,
    }) {
        Err(hsm_link::message::RemoteError::Admin(AdminError::Login(
            LoginRefusal::Throttled { retry_after_secs },
        ))) => retry_after_secs,
        other => panic!("{other:?}"),
    };
    // One terminal's failures lock out that terminal; the others go on.
    for _ in 0..THROTTLE_FAILURES_PER_TERMINAL {
        assert!(t.login(OfficerRole::Pso, &[&stranger]).is_err());
    }
    let retry = throttled(&mut t);
    assert!(retry > 290 && retry <= 300, "{retry}");
    // Enough terminals failing lock out the partition's logins for every terminal, even with
    // the right cards.
    let mut failed = THROTTLE_FAILURES_PER_TERMINAL;
    while failed < THROTTLE_FAILURES {
        let mut other = f.pair();
        for _ in 0..THROTTLE_FAILURES_PER_TERMINAL.min(THROTTLE_FAILURES - failed) {
            assert!(other.login(OfficerRole::Pso, &[&stranger]).is_err());
            failed += 1;
        }
        other.close();
    }
    let mut fresh = f.pair();
    let retry = throttled(&mut fresh);
    assert!(retry > 290 && retry <= 300, "{retry}");
    match fresh.login(OfficerRole::Pso, &[&cards[0], &cards[1]]) {
        Err(hsm_link::message::RemoteError::Admin(AdminError::Login(
            LoginRefusal::Throttled { .. },
        ))) => {}
        other => panic!("{other:?}"),
    }
    fresh.close();
    t.close();
}

#[test]
fn one_terminal_cannot_lock_out_the_others() {
    let (f, mut mallory, cards) = with_psos(ServiceTier::Economy);
    let stranger = Card::new("Mallory", "M-9");
    // A pinned terminal fails as often as the partition's whole limit allows...
    let mut refused = 0;
    for _ in 0..partition_service::admin::THROTTLE_FAILURES {
        match mallory.login(OfficerRole::Pso, &[&stranger]) {
            Err(hsm_link::message::RemoteError::Admin(AdminError::Login(
                LoginRefusal::Throttled { .. },
            ))) => refused += 1,
            Err(_) => {}
            Ok(other) => panic!("{other:?}"),
        }
    }
    assert!(refused > 0, "the terminal was never throttled");
    // ...and the officers at another terminal still log in.
    let mut officer = f.pair();
    officer
        .login(OfficerRole::Pso, &[&cards[0], &cards[1]])
        .unwrap();
    officer.close();
    mallory.close();
}

#[test]
fn the_exported_log_verifies_against_the_hsm_audit_key_and_records_every_refusal() {
    let (f, mut t, cards) = with_psos(ServiceTier::Economy);
    let stranger = Card::new("Mallory", "M-9");
    let _ = t.login(OfficerRole::Pso, &[&stranger]);
    t.login(OfficerRole::Pso, &[&cards[0], &cards[1]]).unwrap();
    let mut c = config(&mut t);
    c.read_only = true;
    t.admin(AdminRequest::ChangeConfig {
        expected_revision: c.revision,
        config: Box::new(c),
    })
    .unwrap();
    let _ = t.admin(AdminRequest::PurgeKey {
        id: hsm_link::domain::KeyId(42),
    });

    let mut export = Vec::new();
    let done = t
        .conn
        .call_download(
            Request::Admin(AdminRequest::ExportLog {
                query: LogQuery::from(1, 0),
            }),
            &mut export,
        )
        .unwrap();
    let hsm_link::message::Response::Admin(AdminResponse::ExportDone {
        lines,
        last_seq,
        checkpoint,
    }) = done
    else {
        panic!("{done:?}")
    };
    let text = String::from_utf8(export).unwrap();
    assert_eq!(text.lines().count() as u64, lines);
    // The checkpoint over the last entry comes just before the closing checkpoint.
    let mut tail = text.lines().rev();
    assert!(tail.next().unwrap().starts_with("{\"export_end\":"));
    assert_eq!(tail.next().unwrap(), checkpoint);
    let mallory = &hex(&stranger.key.verifying_key().to_bytes()[..16]);
    for needle in [
        "\"partition.create\"",
        "\"pairing.complete\"",
        "\"cardset.register\"",
        mallory.as_str(),
        "not in the active set",
        "\"config.change\"",
        "\"key.purge\"",
    ] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
    // Verify with the audit key pinned from the HSM, never one from the file.
    let report = verify_export(text.as_bytes(), ExportVerifier::new(pin(&f))).unwrap();
    assert_eq!(Some(report.header().to), last_seq);
    assert_eq!(report.header().from, 1);
    assert_eq!(report.header().partition, f.partition.as_str());

    // A confirmation beyond what was exported is refused; up to it is accepted.
    let last = last_seq.unwrap();
    assert!(matches!(
        t.refused(AdminRequest::ConfirmExport {
            up_to_seq: last + 100
        }),
        AdminError::ConfirmBeyondExport { .. }
    ));
    t.admin(AdminRequest::ConfirmExport { up_to_seq: last })
        .unwrap();
    t.close();
}

use hex::encode as hex;

/// One request per action, harmless to repeat.
fn request_for(
    action: Action,
    revision: u64,
    config: &hsm_link::domain::PartitionConfig,
) -> AdminRequest {
    match action {
        Action::ViewConfig => AdminRequest::GetConfig,
        Action::ChangeConfig => AdminRequest::ChangeConfig {
            expected_revision: revision,
            config: Box::new(config.clone()),
        },
        Action::ViewUsage => AdminRequest::GetUsage,
        Action::ListKeys => AdminRequest::ListKeys(hsm_link::message::KeyQuery::first(
            hsm_link::message::KeyFilter::All,
            10,
        )),
        Action::RestoreKey => AdminRequest::RestoreKey {
            id: hsm_link::domain::KeyId(999),
        },
        Action::PurgeKey => AdminRequest::PurgeKey {
            id: hsm_link::domain::KeyId(999),
        },
        Action::ResetCredentials => AdminRequest::ResetCredentials,
        Action::ViewCardSets => AdminRequest::GetCardSets,
        // Registering a set starts with opening its ceremony, which checks the role.
        Action::RegisterCardSet => AdminRequest::BeginCeremony {
            kind: CeremonyKind::EnrolAuditors,
        },
        Action::ReadLog => AdminRequest::ReadLog {
            query: LogQuery::from(1, 5),
        },
        Action::ExportLog => AdminRequest::ExportLog {
            query: LogQuery::from(1, 0),
        },
        Action::ConfirmExport => AdminRequest::ConfirmExport { up_to_seq: 0 },
        Action::TrustKey => AdminRequest::TrustKey {
            id: hsm_link::domain::KeyId(999),
            trusted: true,
        },
        Action::Backup => AdminRequest::CreateBackup,
        // Without an upload: refused for that, after the role check.
        Action::Restore => AdminRequest::RestoreDryRun,
        Action::ListTerminals => AdminRequest::ListTerminals,
        // A fingerprint no terminal has: a permitted role is refused for that, not for its role.
        Action::RevokeTerminal => AdminRequest::RevokeTerminal {
            terminal: hsm_link::keys::Fingerprint([9; 32]),
            this_terminal: false,
        },
        Action::IssuePairingCode => AdminRequest::IssuePairingCode,
    }
}

#[test]
fn every_action_for_every_role_over_the_link() {
    use Action::*;
    // Every action, from the one exhaustive list: a new action cannot skip this check.
    let actions = Action::ALL;
    let (f, mut setup, cards) = with_psos(ServiceTier::Economy);
    setup
        .login(OfficerRole::Pso, &[&cards[0], &cards[1]])
        .unwrap();
    let auditor = Card::new("Dora Keller", "D-4");
    setup
        .register(
            CeremonyKind::EnrolAuditors,
            card_set(CardSetKind::Auditor, 1, 1, &[&auditor]),
            None,
        )
        .unwrap();
    setup.close();
    let so = [Card::new("Sam Ops", "S-1"), Card::new("Tina Ops", "S-2")];
    for c in &so {
        f.hsm.add_so_card(c.description()).unwrap();
    }
    let roles: [(Option<OfficerRole>, Vec<&Card>); 4] = [
        (None, vec![]),
        (Some(OfficerRole::Pso), vec![&cards[0], &cards[2]]),
        (Some(OfficerRole::Auditor), vec![&auditor]),
        (Some(OfficerRole::DeviceSo), vec![&so[0], &so[1]]),
    ];
    for (role, role_cards) in roles {
        let mut t = f.pair();
        if let Some(role) = role {
            t.login(role, &role_cards).unwrap();
        }
        for action in actions {
            let config = f.hsm.partition(&f.partition).unwrap().config;
            let request = request_for(action, config.revision, &config);
            let outcome = if matches!(action, ExportLog | Backup) {
                let mut sink = Vec::new();
                match t.conn.call_download(Request::Admin(request), &mut sink) {
                    Ok(_) => Ok(()),
                    Err(hsm_link::Error::Remote(hsm_link::message::RemoteError::Admin(e))) => {
                        Err(e)
                    }
                    Err(e) => panic!("{e}"),
                }
            } else {
                match t.admin(request) {
                    Ok(_) => Ok(()),
                    Err(hsm_link::message::RemoteError::Admin(e)) => Err(e),
                    Err(e) => panic!("{e}"),
                }
            };
            let permitted =
                role.is_some_and(|r| partition_service::access::permits(r.role(), action));
            match (permitted, outcome) {
                // Permitted: either done, or refused for a reason other than role.
                (true, Ok(())) => {}
                (true, Err(e)) => assert!(
                    !matches!(
                        e,
                        AdminError::Forbidden { .. }
                            | AdminError::NotLoggedIn { .. }
                            | AdminError::DeviceSoAccessOff
                    ),
                    "{role:?} {action:?} was refused by role: {e}"
                ),
                (false, Ok(())) => panic!("{role:?} may not {action:?}, yet it was done"),
                (false, Err(e)) => assert!(
                    matches!(
                        e,
                        AdminError::Forbidden { .. } | AdminError::NotLoggedIn { .. }
                    ),
                    "{role:?} {action:?}: {e}"
                ),
            }
        }
        t.close();
    }
    // Every refusal by role was logged.
    let text: String = f
        .hsm
        .partition(&f.partition)
        .map(|_| {
            let mut t = f.pair();
            t.login(OfficerRole::Pso, &[&cards[0], &cards[1]]).unwrap();
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
        })
        .unwrap();
    assert!(text.contains("auditor may not change the configuration"));
    assert!(text.contains("needs an officer login"));
}

#[test]
fn bad_requests_get_typed_errors_and_the_hsm_keeps_serving() {
    let (f, mut t, cards) = with_psos(ServiceTier::Economy);
    // A login answer with no challenge outstanding.
    assert_eq!(
        t.refused(AdminRequest::Login {
            role: OfficerRole::Pso,
            signatures: vec![]
        }),
        AdminError::Login(LoginRefusal::NoChallenge)
    );
    // A challenge is for one role only.
    t.admin(AdminRequest::LoginChallenge {
        role: OfficerRole::Pso,
    })
    .unwrap();
    assert_eq!(
        t.refused(AdminRequest::Login {
            role: OfficerRole::Auditor,
            signatures: vec![]
        }),
        AdminError::Login(LoginRefusal::NoChallenge)
    );
    // No auditor set yet.
    assert_eq!(
        t.refused(AdminRequest::LoginChallenge {
            role: OfficerRole::Auditor
        }),
        AdminError::Login(LoginRefusal::NoCardSet)
    );
    // Garbage on another session's link does not disturb this one.
    let (mut raw, server) = f.serve();
    use hsm_link::transport::FrameTransport;
    raw.send(&[0x04, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9]).unwrap();
    assert!(server.join().unwrap().is_err());
    t.login(OfficerRole::Pso, &[&cards[0], &cards[1]]).unwrap();
    assert!(matches!(
        t.admin(AdminRequest::GetConfig).unwrap(),
        AdminResponse::Config(_)
    ));
    t.close();
}

#[test]
fn a_pso_switches_on_only_licensed_options() {
    let (f, mut t, cards) = with_psos(ServiceTier::Economy);
    t.login(OfficerRole::Pso, &[&cards[0], &cards[1]]).unwrap();
    let mut c = config(&mut t);
    c.ska.enabled = true;
    assert_eq!(
        t.refused(AdminRequest::ChangeConfig {
            expected_revision: c.revision,
            config: Box::new(c.clone())
        }),
        AdminError::InvalidConfig {
            problem: ConfigProblem::Unlicensed(Parameter::SmartKeyAttributes)
        }
    );
    f.hsm.set_licences(&f.partition, true, false).unwrap();
    let mut c = config(&mut t);
    assert!(c.ska.licensed && !c.ska.enabled);
    c.ska.enabled = true;
    t.admin(AdminRequest::ChangeConfig {
        expected_revision: c.revision,
        config: Box::new(c.clone()),
    })
    .unwrap();
    c.crypto_currency.enabled = true;
    c.revision += 1;
    assert_eq!(
        t.refused(AdminRequest::ChangeConfig {
            expected_revision: c.revision,
            config: Box::new(c)
        }),
        AdminError::InvalidConfig {
            problem: ConfigProblem::Unlicensed(Parameter::CryptoCurrency)
        }
    );
    // Withdrawing the licence switches the option off.
    f.hsm.set_licences(&f.partition, false, false).unwrap();
    let c = config(&mut t);
    assert!(!c.ska.licensed && !c.ska.enabled);
    t.close();
}

#[test]
fn pages_stop_at_their_byte_budget_and_say_where_to_go_on() {
    let (_f, mut t, cards) = with_psos(ServiceTier::Economy);
    t.login(OfficerRole::Pso, &[&cards[0], &cards[1]]).unwrap();
    // Enough log lines that 1,000 of them would not fit in one packet.
    for _ in 0..400 {
        let _ = t.admin(AdminRequest::PurgeKey {
            id: hsm_link::domain::KeyId(7),
        });
    }
    let AdminResponse::LogPage(page) = t
        .admin(AdminRequest::ReadLog {
            query: LogQuery::from(1, 1000),
        })
        .unwrap()
    else {
        panic!()
    };
    let bytes: usize = page.lines.iter().map(String::len).sum();
    assert!(bytes <= hsm_link::message::MAX_PAGE_BYTES, "{bytes}");
    let next = page
        .next_seq
        .expect("a partial page says where the next one starts");
    let AdminResponse::LogPage(rest) = t
        .admin(AdminRequest::ReadLog {
            query: LogQuery::from(next, 1000),
        })
        .unwrap()
    else {
        panic!()
    };
    assert!(
        rest.lines[0].starts_with(&format!("{{\"seq\":{next},")),
        "{}",
        rest.lines[0]
    );
    t.close();
}

#[test]
fn malformed_recovery_parts_are_refused() {
    let f = Fixture::new(ServiceTier::Economy);
    let mut t = f.pair();
    let cards = [
        Card::new("Alice Meier", "A-1"),
        Card::new("Bruno Rossi", "B-2"),
    ];
    let set = card_set(CardSetKind::Pso, 1, 2, &[&cards[0], &cards[1]]);
    let mut bad = recovery();
    bad.commitments.pop();
    assert_eq!(
        t.register_refused(CeremonyKind::Enrol, set.clone(), Some(bad)),
        AdminError::CardSet(CardSetProblem::BadRecovery)
    );
    let mut short_key = recovery();
    short_key.backup_public_key.truncate(32);
    assert_eq!(
        t.register_refused(CeremonyKind::Enrol, set.clone(), Some(short_key)),
        AdminError::CardSet(CardSetProblem::BadRecovery)
    );
    // Commitments for another threshold do not fit this set.
    assert_eq!(
        t.register_refused(
            CeremonyKind::Enrol,
            set.clone(),
            Some(common::recovery_for(1))
        ),
        AdminError::CardSet(CardSetProblem::BadRecovery)
    );
    t.register(CeremonyKind::Enrol, set, Some(recovery()))
        .unwrap();
    t.close();
}

fn pin(f: &Fixture) -> KeyPin {
    KeyPin::from_fingerprint(&f.hsm.audit_key().fingerprint().to_string()).unwrap()
}

/// Exports `from..=to` (0 and `None`: everything stored) and verifies the file against the
/// pinned key, after `previous` if given.
fn export_range(
    f: &Fixture,
    t: &mut Terminal,
    from: u64,
    to: Option<u64>,
    previous: Option<&ExportReport>,
) -> ExportReport {
    let mut query = LogQuery::from(from, 0);
    query.to_seq = to;
    let mut file = Vec::new();
    t.conn
        .call_download(Request::Admin(AdminRequest::ExportLog { query }), &mut file)
        .unwrap();
    let mut verifier = ExportVerifier::new(pin(f));
    if let Some(previous) = previous {
        verifier = verifier.after(previous.as_previous());
    }
    verify_export(&file[..], verifier).unwrap()
}

#[test]
fn a_filtered_export_is_refused_and_a_range_export_verifies_to_its_end() {
    let (f, mut t, cards) = with_psos(ServiceTier::Economy);
    t.login(OfficerRole::Pso, &[&cards[0], &cards[1]]).unwrap();
    let mut filtered = LogQuery::from(1, 0);
    filtered.operation_prefix = Some("login".into());
    let mut sink = Vec::new();
    let refused = t.conn.call_download(
        Request::Admin(AdminRequest::ExportLog { query: filtered }),
        &mut sink,
    );
    assert!(
        matches!(
            refused,
            Err(hsm_link::Error::Remote(RemoteError::Admin(
                AdminError::FilteredExport
            )))
        ),
        "{refused:?}"
    );
    assert_eq!(
        f.hsm.partition(&f.partition).unwrap().log.exported_up_to,
        None
    );
    // An export that stops early holds exactly its range and verifies to its own end.
    let early = export_range(&f, &mut t, 1, Some(3), None);
    assert_eq!((early.header().from, early.header().to), (1, 3));
    assert_eq!(early.entries(), 3);
    t.admin(AdminRequest::ConfirmExport { up_to_seq: 3 })
        .unwrap();
    // The log's status counts what the confirmation left unexported.
    let hsm_link::message::AdminResponse::LogStatus(status) =
        t.admin(AdminRequest::GetLogStatus).unwrap()
    else {
        panic!("a log status was asked for");
    };
    let log = f.hsm.partition(&f.partition).unwrap().log;
    assert_eq!(status.confirmed_up_to, Some(3));
    assert_eq!(status.entries, log.stored());
    assert_eq!(status.unexported, log.next_seq - 4);
    assert_eq!(status.last_seq, Some(log.next_seq - 1));
    assert_eq!(
        (status.capacity, status.reserve),
        (log.capacity, log.reserve)
    );
    assert_eq!(status.when_full, hsm_link::message::FullLogPolicy::Refuse);
    // It names the HSM (by the key the terminal pinned) and the partition's tier.
    assert_eq!(status.tier, ServiceTier::Economy);
    assert_eq!(status.hsm_key, f.hsm.keys().identity_public());
    assert_eq!(status.hsm_id(), f.hsm.keys().hsm_id());
    // A start beyond the log's end is refused with the stored range.
    let mut beyond = LogQuery::from(10_000, 0);
    beyond.to_seq = Some(10_001);
    let refused = t.conn.call_download(
        Request::Admin(AdminRequest::ExportLog { query: beyond }),
        &mut sink,
    );
    assert!(
        matches!(
            refused,
            Err(hsm_link::Error::Remote(RemoteError::Admin(
                AdminError::ExportRange { from: 10_000, .. }
            )))
        ),
        "{refused:?}"
    );
    t.close();
}

#[test]
fn consecutive_exports_link_and_an_export_after_pruning_verifies_from_its_anchor() {
    let (f, mut t, cards) = with_psos(ServiceTier::Economy);
    t.login(OfficerRole::Pso, &[&cards[0], &cards[1]]).unwrap();
    f.hsm
        .set_log_policy(&f.partition, 1000, LogFullPolicy::Refuse)
        .unwrap();
    let first = export_range(&f, &mut t, 1, None, None);
    let to = first.header().to;
    assert_eq!(first.entries(), to);
    // The next export starts right after: linked to the first, with the export's own entry.
    let second = export_range(&f, &mut t, to + 1, None, Some(&first));
    assert_eq!(second.header().from, to + 1);
    assert!(second.entries() >= 1);
    assert_ne!(first.header().export, second.header().export);
    // Confirming prunes up to the checkpoint over the first export's end; what is left
    // exports from its anchor alone.
    t.admin(AdminRequest::ConfirmExport {
        up_to_seq: second.header().to,
    })
    .unwrap();
    let stored = f.hsm.partition(&f.partition).unwrap().log.first_seq;
    assert!(stored > 1, "nothing was pruned");
    let after = export_range(&f, &mut t, 1, None, None);
    assert_eq!(after.header().from, stored);
    assert_eq!(after.header().anchor.map(|a| a.seq), Some(stored - 1));
    // An explicit start below the oldest stored entry is refused, not moved.
    let mut early = LogQuery::from(2, 0);
    early.to_seq = Some(stored);
    let refused = t.conn.call_download(
        Request::Admin(AdminRequest::ExportLog { query: early }),
        &mut Vec::new(),
    );
    assert!(
        matches!(
            refused,
            Err(hsm_link::Error::Remote(RemoteError::Admin(
                AdminError::ExportRange { from: 2, .. }
            )))
        ),
        "{refused:?}"
    );
    t.close();
}
