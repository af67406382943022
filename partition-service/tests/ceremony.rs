//! The HSM side of card-set ceremonies: ceremony ids (one open ceremony per session, refused
//! when another's id is named, closed on success), the rules each kind imposes on the set it
//! registers, the public recovery parts, and share drills.

mod common;

use common::{Card, Fixture, card_set, recovery, recovery_for, with_psos};
use hsm_link::domain::{CardSerial, CardSetKind, ServiceTier};
use hsm_link::message::{
    Action, AdminError, AdminRequest, AdminResponse, CardSetProblem, CeremonyKind, LogQuery,
    LoginRefusal, OfficerRole, RecoveryPublic,
};

fn begin(t: &mut common::Terminal, kind: CeremonyKind) -> [u8; 16] {
    match t.admin(AdminRequest::BeginCeremony { kind }).unwrap() {
        AdminResponse::Ceremony { id } => id,
        other => panic!("{other:?}"),
    }
}

fn hex(id: &[u8; 16]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

fn log(t: &mut common::Terminal) -> String {
    match t
        .admin(AdminRequest::ReadLog {
            query: LogQuery::from(1, 1000),
        })
        .unwrap()
    {
        AdminResponse::LogPage(page) => page.lines.join("\n"),
        other => panic!("{other:?}"),
    }
}

fn in_ceremony(
    ceremony: [u8; 16],
    set: hsm_link::domain::CardSetDescription,
    recovery: RecoveryPublic,
    revoked: Option<&str>,
    left: &[&str],
) -> AdminRequest {
    AdminRequest::RegisterCardSetInCeremony {
        ceremony,
        set: Box::new(set),
        recovery: Some(Box::new(recovery)),
        replaces_revoked: revoked.map(|s| CardSerial::new(s).unwrap()),
        old_shares_left: left.iter().map(|s| CardSerial::new(*s).unwrap()).collect(),
    }
}

#[test]
fn the_first_enrolment_is_a_ceremony_of_the_first_terminal() {
    let f = Fixture::new(ServiceTier::Economy);
    let mut first = f.pair();
    let mut second = f.pair();
    let cards = [
        Card::new("Alice Meier", "A-1"),
        Card::new("Bruno Rossi", "B-2"),
    ];
    let set = card_set(CardSetKind::Pso, 1, 2, &[&cards[0], &cards[1]]);

    assert_eq!(
        second.refused(AdminRequest::BeginCeremony {
            kind: CeremonyKind::Enrol
        }),
        AdminError::NotLoggedIn {
            action: Action::RegisterCardSet
        }
    );
    assert!(matches!(
        first.refused(AdminRequest::BeginCeremony {
            kind: CeremonyKind::Reshare
        }),
        AdminError::NotLoggedIn { .. }
    ));
    // Nothing registered yet: no recovery parts to read.
    assert_eq!(
        first.refused(AdminRequest::GetRecoveryPublic),
        AdminError::Login(LoginRefusal::NoCardSet)
    );

    let id = begin(&mut first, CeremonyKind::Enrol);
    // Another session cannot finish it, nor can a made-up id.
    assert_eq!(
        second.refused(in_ceremony(id, set.clone(), recovery(), None, &[])),
        AdminError::CeremonyMismatch
    );
    assert_eq!(
        first.refused(in_ceremony([9; 16], set.clone(), recovery(), None, &[])),
        AdminError::CeremonyMismatch
    );
    // An enrolment revokes nothing.
    assert_eq!(
        first.refused(in_ceremony(id, set.clone(), recovery(), Some("A-1"), &[])),
        AdminError::CardSet(CardSetProblem::NotForCeremony)
    );
    first
        .admin(in_ceremony(id, set.clone(), recovery(), None, &[]))
        .unwrap();
    // Closed on success: the id does not serve twice.
    let mut next = set.clone();
    next.set_number = 2;
    first
        .login(OfficerRole::Pso, &[&cards[0], &cards[1]])
        .unwrap();
    assert_eq!(
        first.refused(in_ceremony(id, next, recovery(), None, &[])),
        AdminError::CeremonyMismatch
    );

    // Public parts, without a login.
    let mut holder = f.pair();
    match holder.admin(AdminRequest::GetRecoveryPublic).unwrap() {
        AdminResponse::RecoveryPublic {
            set_number,
            threshold,
            cards: listed,
            recovery: parts,
        } => {
            assert_eq!((set_number, threshold), (1, 2));
            assert_eq!(listed, set.cards);
            assert_eq!(*parts, recovery());
        }
        other => panic!("{other:?}"),
    }

    let text = log(&mut first);
    assert!(
        text.lines()
            .any(|l| l.contains("ceremony.begin") && l.contains(&hex(&id)) && l.contains("enrol")),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.contains("cardset.register")
            && l.contains(&hex(&id))
            && !l.contains("refused")),
        "{text}"
    );
    let refused: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("cardset.register") && l.contains("refused"))
        .collect();
    assert!(refused.iter().any(|l| l.contains(&hex(&[9; 16]))), "{text}");
}

#[test]
fn a_reshare_keeps_the_backup_key_and_logs_the_old_shares_left() {
    let (_f, mut t, cards) = with_psos(ServiceTier::Economy);
    t.login(OfficerRole::Pso, &[&cards[0], &cards[1]]).unwrap();
    let id = begin(&mut t, CeremonyKind::Reshare);
    let new_card = Card::new("Dario Neri", "D-4");
    let set = card_set(CardSetKind::Pso, 2, 2, &[&cards[0], &cards[1], &new_card]);

    let other_key = RecoveryPublic {
        backup_public_key: vec![8; 1216],
        ..recovery()
    };
    assert_eq!(
        t.refused(in_ceremony(id, set.clone(), other_key, None, &[])),
        AdminError::CardSet(CardSetProblem::NotForCeremony)
    );
    let mut other_secret = recovery();
    other_secret.commitments[3] = 0x77;
    assert_eq!(
        t.refused(in_ceremony(id, set.clone(), other_secret, None, &[])),
        AdminError::CardSet(CardSetProblem::NotForCeremony)
    );
    assert_eq!(
        t.refused(in_ceremony(
            id,
            set.clone(),
            recovery_for(2),
            Some("C-3"),
            &[]
        )),
        AdminError::CardSet(CardSetProblem::NotForCeremony)
    );
    t.admin(in_ceremony(id, set, recovery_for(2), None, &["C-3"]))
        .unwrap();
    let text = log(&mut t);
    let line = text
        .lines()
        .rfind(|l| l.contains("cardset.register"))
        .unwrap();
    assert!(
        line.contains("old-shares-left") && line.contains("C-3") && line.contains("reshare"),
        "{line}"
    );
}

#[test]
fn a_revocation_leaves_the_card_out_and_its_signature_is_refused() {
    let (f, mut t, cards) = with_psos(ServiceTier::Economy);
    t.login(OfficerRole::Pso, &[&cards[0], &cards[2]]).unwrap();
    let id = begin(&mut t, CeremonyKind::Revoke);
    let mut fresh = RecoveryPublic {
        backup_public_key: vec![9; 1216],
        ..recovery()
    };
    // A fresh secret: another key, but the same secret point, is refused.
    let same_point = fresh.clone();
    fresh.commitments[3] = 0x77;
    let without = card_set(CardSetKind::Pso, 2, 2, &[&cards[0], &cards[1]]);
    let with_it = card_set(CardSetKind::Pso, 2, 2, &[&cards[0], &cards[1], &cards[2]]);
    for (set, parts, revoked) in [
        (without.clone(), fresh.clone(), None),
        (with_it, fresh.clone(), Some("C-3")),
        (without.clone(), recovery(), Some("C-3")),
        (without.clone(), fresh.clone(), Some("Z-9")),
        (without.clone(), same_point, Some("C-3")),
    ] {
        assert_eq!(
            t.refused(in_ceremony(id, set, parts, revoked, &[])),
            AdminError::CardSet(CardSetProblem::NotForCeremony),
            "{revoked:?}"
        );
    }
    t.admin(in_ceremony(id, without, fresh, Some("C-3"), &[]))
        .unwrap();

    let mut s = f.pair();
    match s.login(OfficerRole::Pso, &[&cards[0], &cards[2]]) {
        Err(hsm_link::message::RemoteError::Admin(AdminError::Login(
            LoginRefusal::UnknownCard { index: 1 },
        ))) => {}
        other => panic!("{other:?}"),
    }
    s.login(OfficerRole::Pso, &[&cards[0], &cards[1]]).unwrap();
    let text = log(&mut s);
    let line = text
        .lines()
        .rfind(|l| l.contains("cardset.register"))
        .unwrap();
    assert!(line.contains("revoked") && line.contains("C-3"), "{line}");
}

#[test]
fn drills_are_logged_without_a_login_for_cards_of_the_set_only() {
    let (f, mut t, cards) = with_psos(ServiceTier::Economy);
    let mut holder = f.pair();
    let drill = |serial: &str, ok: bool| AdminRequest::ReportDrill {
        card_serial: CardSerial::new(serial).unwrap(),
        ok,
    };
    holder.admin(drill("B-2", true)).unwrap();
    holder.admin(drill("C-3", false)).unwrap();
    assert_eq!(holder.refused(drill("Z-9", true)), AdminError::CardNotInSet);

    t.login(OfficerRole::Pso, &[&cards[0], &cards[1]]).unwrap();
    let text = log(&mut t);
    let drills: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("quorum.drill"))
        .collect();
    assert_eq!(drills.len(), 3, "{text}");
    assert!(drills[0].contains("B-2") && drills[0].contains("unauthenticated"));
    assert!(drills[0].contains("Bruno Rossi"));
    assert!(drills[1].contains("C-3") && drills[1].contains("failed"));
    assert!(drills[2].contains("Z-9") && drills[2].contains("refused"));
}
