//! The partition's pinned terminals over the administration link, against a real HSM: listing
//! them, revoking one (its sessions end, it cannot connect again, logged), a new pairing code
//! issued after a PSO login, a pairing under a superseded code, and the soft-card policy the
//! HSM announces when a ceremony begins.

mod common;

use std::time::Duration;

use common::{Fixture, Terminal, with_psos};
use hsm_link::client::{self, ConnectOptions};
use hsm_link::domain::ServiceTier;
use hsm_link::handshake::client::ClientMode;
use hsm_link::keys::StaticKeypair;
use hsm_link::message::{
    AdminError, AdminRequest, AdminResponse, CeremonyKind, CloseReason, LogQuery, OfficerRole,
    Request, TerminalInfo,
};
use hsm_link::pairing::PairingCode;
use hsm_link::server::SessionEnd;
use hsm_link::trust::{PairingOffer, TrustStore};

fn terminals(t: &mut Terminal) -> Vec<TerminalInfo> {
    match t.admin(AdminRequest::ListTerminals).unwrap() {
        AdminResponse::Terminals { terminals } => terminals,
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

fn revoke(of: &StaticKeypair, this_terminal: bool) -> AdminRequest {
    AdminRequest::RevokeTerminal {
        terminal: of.public().fingerprint(),
        this_terminal,
    }
}

fn copy(key: &StaticKeypair) -> StaticKeypair {
    StaticKeypair::from_secret(zeroize::Zeroizing::new(*key.secret_bytes()))
}

fn connect_pinned(f: &Fixture, key: &StaticKeypair) -> Result<(), hsm_link::Error> {
    let (t, server) = f.serve();
    let result = client::connect(
        t,
        key,
        f.partition.clone(),
        ClientMode::Pinned {
            hsm: f.hsm.keys().identity_public(),
        },
        ConnectOptions::default(),
    )
    .map(drop);
    let _ = server.join();
    result
}

#[test]
fn the_listing_shows_every_pinned_terminal_and_marks_this_one() {
    let (f, mut t, cards) = with_psos(ServiceTier::Economy);
    let other = f.pair();
    let other_fp = other.key.public().fingerprint();
    other.close();
    t.login(OfficerRole::Pso, &[&cards[0], &cards[1]]).unwrap();
    let list = terminals(&mut t);
    assert_eq!(list.len(), 2, "{list:?}");
    let own = t.key.public().fingerprint();
    let mine: Vec<_> = list.iter().filter(|i| i.this_session).collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].fingerprint, own);
    let theirs = list.iter().find(|i| i.fingerprint == other_fp).unwrap();
    assert!(!theirs.this_session);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for info in &list {
        let paired = info
            .paired_unix
            .expect("a terminal paired now has its time");
        assert!(paired.abs_diff(now) < 60, "{info:?}");
        assert!(info.last_seen_unix.unwrap() >= paired);
    }
    // Without a login the listing is refused.
    t.admin(AdminRequest::Logout).unwrap();
    assert!(matches!(
        t.refused(AdminRequest::ListTerminals),
        AdminError::NotLoggedIn { .. }
    ));
    t.close();
}

#[test]
fn last_seen_moves_when_a_terminal_opens_a_session() {
    let (f, t, cards) = with_psos(ServiceTier::Economy);
    let key = copy(&t.key);
    t.close();
    f.clock_offset
        .store(3600, std::sync::atomic::Ordering::SeqCst);
    let mut t = f.reconnect(key);
    t.login(OfficerRole::Pso, &[&cards[0], &cards[1]]).unwrap();
    let info = terminals(&mut t)[0];
    let (paired, seen) = (info.paired_unix.unwrap(), info.last_seen_unix.unwrap());
    assert!(seen >= paired + 3600, "paired {paired}, seen {seen}");
    t.close();
}

#[test]
fn a_revoked_terminal_loses_its_open_session_and_cannot_connect_again() {
    let (f, mut pso, cards) = with_psos(ServiceTier::Economy);
    let mut victim = f.pair();
    let victim_key = copy(&victim.key);
    // The victim's session is open while it is revoked.
    assert!(victim.admin(AdminRequest::GetRecoveryPublic).is_ok());
    pso.login(OfficerRole::Pso, &[&cards[0], &cards[1]])
        .unwrap();
    let request = revoke(&victim_key, false);
    assert_eq!(pso.admin(request).unwrap(), AdminResponse::Done);
    // Its session ends at the next poll (at most half a second), and the HSM says why.
    std::thread::sleep(Duration::from_millis(1200));
    let after = victim
        .conn
        .call(Request::Admin(AdminRequest::GetRecoveryPublic));
    assert!(
        after.is_err_and(|e| e.to_string().contains("revoked this terminal")),
        "the terminal is told why its session ended"
    );
    let server = victim.server.take().unwrap().join().unwrap().unwrap();
    assert_eq!(
        server.end,
        SessionEnd::EndedByHsm(CloseReason::TerminalRevoked)
    );
    // It can no longer connect.
    assert!(connect_pinned(&f, &victim_key).is_err());
    // The listing no longer has it; the revocation is logged with its fingerprint.
    let list = terminals(&mut pso);
    assert!(
        list.iter()
            .all(|i| i.fingerprint != victim_key.public().fingerprint())
    );
    let log = log_text(&mut pso);
    let line = log
        .lines()
        .find(|l| l.contains("terminal.revoke"))
        .expect("the revocation is logged");
    assert!(
        line.contains(&victim_key.public().fingerprint().to_string()),
        "{line}"
    );
    assert!(line.contains("Alice Meier"), "{line}");
    // Revoking it again: no such terminal.
    let again = revoke(&victim_key, false);
    assert!(matches!(
        pso.refused(again),
        AdminError::NoSuchTerminal { .. }
    ));
    pso.close();
}

#[test]
fn a_terminal_revokes_itself_only_when_it_says_so() {
    let (f, mut t, cards) = with_psos(ServiceTier::Economy);
    let key = copy(&t.key);
    t.login(OfficerRole::Pso, &[&cards[0], &cards[1]]).unwrap();
    let unsaid = revoke(&key, false);
    assert!(matches!(
        t.refused(unsaid),
        AdminError::RevokingThisTerminal { .. }
    ));
    assert_eq!(terminals(&mut t).len(), 1, "nothing was revoked");
    let said = revoke(&key, true);
    assert_eq!(t.admin(said).unwrap(), AdminResponse::Done);
    std::thread::sleep(Duration::from_millis(1200));
    let server = t.server.take().unwrap().join().unwrap().unwrap();
    assert_eq!(
        server.end,
        SessionEnd::EndedByHsm(CloseReason::TerminalRevoked)
    );
    assert!(connect_pinned(&f, &key).is_err());
    assert!(
        f.hsm
            .partition(&f.partition)
            .unwrap()
            .pairing
            .terminals
            .is_empty()
    );
}

#[test]
fn an_auditor_may_list_but_not_revoke_nor_issue_codes() {
    let (f, mut t, cards) = with_psos(ServiceTier::Economy);
    let auditor = common::Card::new("Dora Keller", "D-4");
    t.login(OfficerRole::Pso, &[&cards[0], &cards[1]]).unwrap();
    t.register(
        CeremonyKind::EnrolAuditors,
        common::card_set(hsm_link::domain::CardSetKind::Auditor, 1, 1, &[&auditor]),
        None,
    )
    .unwrap();
    t.close();
    let mut a = f.pair();
    a.login(OfficerRole::Auditor, &[&auditor]).unwrap();
    assert_eq!(terminals(&mut a).len(), 2);
    let own = copy(&a.key);
    let request = revoke(&own, true);
    assert!(matches!(a.refused(request), AdminError::Forbidden { .. }));
    assert!(matches!(
        a.refused(AdminRequest::IssuePairingCode),
        AdminError::Forbidden { .. }
    ));
    a.close();
}

#[test]
fn a_pso_issues_a_pairing_code_that_pairs_once_and_is_logged_without_the_code() {
    let (f, mut t, cards) = with_psos(ServiceTier::Economy);
    assert!(matches!(
        t.refused(AdminRequest::IssuePairingCode),
        AdminError::NotLoggedIn { .. }
    ));
    t.login(OfficerRole::Pso, &[&cards[0], &cards[1]]).unwrap();
    let shown = match t.admin(AdminRequest::IssuePairingCode).unwrap() {
        AdminResponse::PairingCode(c) => c.code,
        other => panic!("{other:?}"),
    };
    let pair = |typed: &str| {
        let (transport, server) = f.serve();
        let key = StaticKeypair::generate().unwrap();
        let result = client::connect(
            transport,
            &key,
            f.partition.clone(),
            ClientMode::Pairing(PairingCode::parse(typed).unwrap()),
            ConnectOptions::default(),
        )
        .map(drop);
        let _ = server.join();
        result
    };
    pair(&shown).expect("the code pairs");
    assert!(pair(&shown).is_err(), "the code is spent");
    assert_eq!(terminals(&mut t).len(), 2);
    let log = log_text(&mut t);
    let issue = log
        .lines()
        .rfind(|l| l.contains("pairing.issue"))
        .unwrap()
        .to_string();
    assert!(issue.contains("Alice Meier"), "{issue}");
    let bare: String = shown
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    assert!(
        !log.contains(&shown) && !log.contains(&bare[..8]),
        "{issue}"
    );
    t.close();
}

#[test]
fn a_pairing_under_a_superseded_code_neither_pairs_nor_burns_the_new_code() {
    let f = Fixture::new(ServiceTier::Economy);
    let genesis = partition_service::service::genesis();
    f.hsm
        .issue_pairing_code(&f.partition, genesis.clone())
        .unwrap();
    let PairingOffer::Open(old) = f.hsm.pairing_offer(&f.partition) else {
        panic!("a code is outstanding");
    };
    // The handshake under `old` is under way when a new code is issued.
    f.hsm.issue_pairing_code(&f.partition, genesis).unwrap();
    let PairingOffer::Open(new) = f.hsm.pairing_offer(&f.partition) else {
        panic!("a code is outstanding");
    };
    assert_ne!(*old, *new);
    for _ in 0..3 {
        assert_eq!(f.hsm.pairing_failed(&f.partition, &old), 0);
    }
    let key = StaticKeypair::generate().unwrap().public();
    assert!(!f.hsm.pairing_succeeded(&f.partition, &old, key));
    assert!(
        f.hsm
            .pinned_terminal(&f.partition, &key.fingerprint())
            .is_none()
    );
    // The new code kept its three attempts, and pairs.
    assert_eq!(f.hsm.pairing_failed(&f.partition, &new), 2);
    assert!(f.hsm.pairing_succeeded(&f.partition, &new, key));
    assert!(
        f.hsm
            .pinned_terminal(&f.partition, &key.fingerprint())
            .is_some()
    );
}

#[test]
fn begin_ceremony_announces_the_hsms_soft_card_policy() {
    let (f, mut t, cards) = with_psos(ServiceTier::Economy);
    t.login(OfficerRole::Pso, &[&cards[0], &cards[1]]).unwrap();
    let announced = |t: &mut Terminal| match t
        .admin(AdminRequest::BeginCeremony {
            kind: CeremonyKind::Reshare,
        })
        .unwrap()
    {
        AdminResponse::Ceremony {
            soft_cards_allowed, ..
        } => soft_cards_allowed,
        other => panic!("{other:?}"),
    };
    assert!(announced(&mut t));
    f.hsm.set_soft_cards_allowed(false).unwrap();
    assert!(!announced(&mut t));
    t.close();
}

#[test]
fn revoking_the_first_terminal_passes_its_first_enrolment_right_to_no_other() {
    let f = Fixture::new(ServiceTier::Economy);
    let first = f.pair();
    let first_key = copy(&first.key);
    first.close();
    // Before any PSO set exists, the operator's SOs (four eyes) revoke the first terminal.
    let so = [
        common::Card::new("Sam Ops", "S-1"),
        common::Card::new("Tina Ops", "S-2"),
    ];
    for c in &so {
        f.hsm.add_so_card(c.description()).unwrap();
    }
    let mut sos = f.pair();
    sos.login(OfficerRole::DeviceSo, &[&so[0], &so[1]]).unwrap();
    sos.admin(revoke(&first_key, false)).unwrap();
    sos.close();

    // A terminal paired after that does not inherit the right to enrol the first PSO set.
    let mut later = f.pair();
    assert!(
        matches!(
            later.refused(AdminRequest::BeginCeremony {
                kind: CeremonyKind::Enrol
            }),
            AdminError::NotLoggedIn { .. }
        ),
        "a terminal paired after the first one was revoked may not enrol the first PSO set"
    );
    later.close();
    // And the revoked first terminal cannot connect to use it.
    assert!(connect_pinned(&f, &first_key).is_err());
}
