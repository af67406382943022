//! The HSM side of card-set ceremonies: ceremony ids (one open ceremony per session, refused
//! when another's id is named, closed on success), the rules each kind imposes on the set it
//! registers, the public recovery parts, and share drills.

mod common;

use common::{Card, Fixture, card_set, recovery, recovery_for, with_psos};
use hsm_link::domain::CeremonyId;
use hsm_link::domain::{CardSerial, CardSetKind, ServiceTier};
use hsm_link::message::{
    Action, AdminError, AdminRequest, AdminResponse, CardSetProblem, CeremonyKind, LogQuery,
    LoginRefusal, OfficerRole, RecoveryPublic,
};

fn begin(t: &mut common::Terminal, kind: CeremonyKind) -> CeremonyId {
    match t.admin(AdminRequest::BeginCeremony { kind }).unwrap() {
        AdminResponse::Ceremony { id, .. } => id,
        other => panic!("{other:?}"),
    }
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

/// The log's last card-set registration line (or refusal).
fn last_registration(text: &str) -> &str {
    text.lines()
        .rfind(|l| l.contains("cardset.register"))
        .expect("a cardset.register entry")
}

fn in_ceremony(
    t: &common::Terminal,
    ceremony: CeremonyId,
    set: hsm_link::domain::CardSetDescription,
    recovery: RecoveryPublic,
    revoked: Option<&str>,
    left: &[&str],
) -> AdminRequest {
    t.in_ceremony(ceremony, set, Some(recovery), revoked, left)
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
        second.refused(in_ceremony(&second, id, set.clone(), recovery(), None, &[])),
        AdminError::CeremonyMismatch
    );
    assert_eq!(
        first.refused(in_ceremony(
            &first,
            CeremonyId([9; 16]),
            set.clone(),
            recovery(),
            None,
            &[]
        )),
        AdminError::CeremonyMismatch
    );
    // An enrolment revokes nothing.
    assert_eq!(
        first.refused(in_ceremony(
            &first,
            id,
            set.clone(),
            recovery(),
            Some("A-1"),
            &[]
        )),
        AdminError::CardSet(CardSetProblem::NotForCeremony)
    );
    first
        .admin(in_ceremony(&first, id, set.clone(), recovery(), None, &[]))
        .unwrap();
    // Closed on success: the id does not serve twice.
    let mut next = set.clone();
    next.set_number = 2;
    first
        .login(OfficerRole::Pso, &[&cards[0], &cards[1]])
        .unwrap();
    assert_eq!(
        first.refused(in_ceremony(&first, id, next, recovery(), None, &[])),
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
        text.lines().any(|l| l.contains("ceremony.begin")
            && l.contains(&id.to_string())
            && l.contains("enrol")),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.contains("cardset.register")
            && l.contains(&id.to_string())
            && !l.contains("refused")),
        "{text}"
    );
    let refused: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("cardset.register") && l.contains("refused"))
        .collect();
    assert!(
        refused
            .iter()
            .any(|l| l.contains(&CeremonyId([9; 16]).to_string())),
        "{text}"
    );
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
        t.refused(in_ceremony(&t, id, set.clone(), other_key, None, &[])),
        AdminError::CardSet(CardSetProblem::NotForCeremony)
    );
    let mut other_secret = recovery();
    other_secret.commitments[3] = 0x77;
    assert_eq!(
        t.refused(in_ceremony(&t, id, set.clone(), other_secret, None, &[])),
        AdminError::CardSet(CardSetProblem::NotForCeremony)
    );
    assert_eq!(
        t.refused(in_ceremony(
            &t,
            id,
            set.clone(),
            recovery_for(2),
            Some("C-3"),
            &[]
        )),
        AdminError::CardSet(CardSetProblem::NotForCeremony)
    );
    // The old cards said to keep a share must be of the active set and not in the new one.
    for left in [["Z-9"], ["A-1"]] {
        assert_eq!(
            t.refused(in_ceremony(
                &t,
                id,
                set.clone(),
                recovery_for(2),
                None,
                &left
            )),
            AdminError::CardSet(CardSetProblem::NotForCeremony),
            "{left:?}"
        );
    }
    t.admin(in_ceremony(&t, id, set, recovery_for(2), None, &["C-3"]))
        .unwrap();
    let text = log(&mut t);
    let line = last_registration(&text);
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
            t.refused(in_ceremony(&t, id, set, parts, revoked, &[])),
            AdminError::CardSet(CardSetProblem::NotForCeremony),
            "{revoked:?}"
        );
    }
    t.admin(in_ceremony(&t, id, without, fresh, Some("C-3"), &[]))
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
    let line = last_registration(&text);
    assert!(line.contains("revoked") && line.contains("C-3"), "{line}");
}

#[test]
fn drills_are_logged_without_a_login_for_cards_of_the_set_only_signed_by_the_card() {
    let (f, mut t, cards) = with_psos(ServiceTier::Economy);
    let mut holder = f.pair();
    let request = holder.drill(&cards[1], "B-2", 1, true);
    holder.admin(request).unwrap();
    let request = holder.drill(&cards[2], "C-3", 1, false);
    holder.admin(request).unwrap();
    let stranger = Card::new("Zed Stranger", "Z-9");
    let request = holder.drill(&stranger, "Z-9", 1, true);
    assert_eq!(holder.refused(request), AdminError::CardNotInSet);
    // Signed by another card of the set, for another set, for another result, in another
    // session, or not at all: refused, nothing logged but the refusal.
    let forged = [
        holder.drill(&cards[0], "B-2", 1, true),
        holder.drill(&cards[1], "B-2", 2, true),
        f.pair().drill(&cards[1], "B-2", 1, true),
        AdminRequest::ReportDrill {
            card_serial: CardSerial::new("B-2").unwrap(),
            ok: true,
            signature: [0; 64],
        },
    ];
    for request in forged {
        assert_eq!(holder.refused(request), AdminError::DrillNotSigned);
    }
    let mut other_result = holder.drill(&cards[1], "B-2", 1, false);
    if let AdminRequest::ReportDrill { ok, .. } = &mut other_result {
        *ok = true;
    }
    assert_eq!(holder.refused(other_result), AdminError::DrillNotSigned);

    t.login(OfficerRole::Pso, &[&cards[0], &cards[1]]).unwrap();
    let text = log(&mut t);
    let drills: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("quorum.drill"))
        .collect();
    assert_eq!(drills.len(), 8, "{text}");
    assert!(drills[0].contains("B-2") && drills[0].contains("unauthenticated"));
    assert!(drills[0].contains("Bruno Rossi"));
    assert!(drills[1].contains("C-3") && drills[1].contains("failed"));
    assert!(drills[2].contains("Z-9") && drills[2].contains("refused"));
    assert!(
        drills[3..]
            .iter()
            .all(|l| l.contains("refused") && l.contains("not signed by the card")),
        "{text}"
    );
}

#[test]
fn entries_without_a_login_are_rationed_and_the_excess_is_counted_not_logged() {
    use partition_service::admin::{THROTTLE_WINDOW_S, UNAUTHENTICATED_ENTRIES_PER_WINDOW};
    use std::sync::atomic::Ordering;

    let (f, mut t, cards) = with_psos(ServiceTier::Economy);
    let mut holder = f.pair();
    let drill = |t: &common::Terminal| t.drill(&cards[1], "B-2", 1, true);
    // Drills, refusals and the first set's ceremony opening without a login share one ration:
    // the enrolment `with_psos` made took one entry of it.
    for i in 0..UNAUTHENTICATED_ENTRIES_PER_WINDOW - 1 {
        if i % 2 == 0 {
            holder.admin(drill(&holder)).unwrap();
        } else {
            assert!(matches!(
                holder.refused(AdminRequest::GetConfig),
                AdminError::NotLoggedIn { .. }
            ));
        }
    }
    // Beyond it: a drill is refused and says when to come back; a refusal is still answered.
    match holder.refused(drill(&holder)) {
        AdminError::DrillsThrottled { retry_after_secs } => {
            assert!(retry_after_secs > 0 && retry_after_secs <= THROTTLE_WINDOW_S)
        }
        other => panic!("{other:?}"),
    }
    for _ in 0..5 {
        assert!(matches!(
            holder.refused(AdminRequest::GetConfig),
            AdminError::NotLoggedIn { .. }
        ));
    }
    assert!(matches!(
        holder.refused(AdminRequest::RegisterCardSet {
            set: Box::new(card_set(CardSetKind::Auditor, 1, 1, &[&cards[0]])),
            recovery: None,
        }),
        AdminError::CardSet(CardSetProblem::NeedsCeremony)
    ));
    // Logged-in officers are not rationed.
    t.login(OfficerRole::Pso, &[&cards[0], &cards[1]]).unwrap();
    t.admin(drill(&t)).unwrap();
    let text = log(&mut t);
    let unauthenticated = text
        .lines()
        .filter(|l| l.contains("\"role\":\"unauthenticated\""))
        .filter(|l| {
            l.contains("quorum.drill")
                || l.contains("ceremony.begin")
                || l.contains("\"result\":\"refused\"")
        })
        .count();
    assert_eq!(
        unauthenticated, UNAUTHENTICATED_ENTRIES_PER_WINDOW,
        "{text}"
    );
    assert!(!text.contains("NeedsCeremony") && !text.contains("card sets are registered in"));
    // After the window, the next entry counts the 7 that were not logged.
    f.clock_offset
        .fetch_add(THROTTLE_WINDOW_S, Ordering::SeqCst);
    holder.admin(drill(&holder)).unwrap();
    let text = log(&mut t);
    let last = text.lines().rfind(|l| l.contains("quorum.drill")).unwrap();
    assert!(
        last.contains("unlogged-before") && last.contains("7"),
        "{last}"
    );
}

#[test]
fn every_card_of_a_set_proves_its_key_for_this_session_and_this_ceremony() {
    let (f, mut t, cards) = with_psos(ServiceTier::Economy);
    t.login(OfficerRole::Pso, &[&cards[0], &cards[1]]).unwrap();
    let auditors = [
        Card::new("Dora Keller", "D-4"),
        Card::new("Emil Frei", "E-5"),
    ];
    let set = card_set(CardSetKind::Auditor, 1, 1, &[&auditors[0], &auditors[1]]);
    let id = begin(&mut t, CeremonyKind::EnrolAuditors);
    let register =
        |proofs: Vec<hsm_link::message::CardSignature>| AdminRequest::RegisterCardSetInCeremony {
            ceremony: id,
            set: Box::new(set.clone()),
            recovery: None,
            replaces_revoked: None,
            old_shares_left: Vec::new(),
            leftover_shares: Vec::new(),
            proofs,
        };
    let good = t.proofs(&id, &set);

    // No proofs; one missing; the second card's proof made by a key the set does not name.
    assert_eq!(
        t.refused(register(Vec::new())),
        AdminError::CardSet(CardSetProblem::NoProof { index: 0 })
    );
    assert_eq!(
        t.refused(register(good[..1].to_vec())),
        AdminError::CardSet(CardSetProblem::NoProof { index: 1 })
    );
    let mut swapped = good.clone();
    swapped.swap(0, 1);
    assert_eq!(
        t.refused(register(swapped)),
        AdminError::CardSet(CardSetProblem::NoProof { index: 0 })
    );
    // A proof for another ceremony, or made over another session, does not serve.
    let other_ceremony = t.proofs(&CeremonyId([1; 16]), &set);
    assert_eq!(
        t.refused(register(other_ceremony)),
        AdminError::CardSet(CardSetProblem::NoProof { index: 0 })
    );
    let other_session = f.pair().proofs(&id, &set);
    assert_eq!(
        t.refused(register(other_session)),
        AdminError::CardSet(CardSetProblem::NoProof { index: 0 })
    );
    // A card described under another holder than it signed for.
    let mut renamed = set.clone();
    renamed.cards[1].holder = hsm_link::domain::HolderName::new("Mallory").unwrap();
    let mut request = register(good.clone());
    if let AdminRequest::RegisterCardSetInCeremony { set, .. } = &mut request {
        **set = renamed;
    }
    assert_eq!(
        t.refused(request),
        AdminError::CardSet(CardSetProblem::NoProof { index: 1 })
    );
    // Each refusal kept the ceremony open; the proven set registers and is logged with the id.
    t.admin(register(good)).unwrap();
    let text = log(&mut t);
    let line = last_registration(&text);
    assert!(
        line.contains(&id.to_string())
            && line.contains("enrol-auditors")
            && line.contains("Emil Frei"),
        "{line}"
    );
    assert!(line.contains("soft-cards"), "{line}");
    let refusals = text
        .lines()
        .filter(|l| l.contains("cardset.register") && l.contains("did not prove"))
        .count();
    assert_eq!(refusals, 6, "{text}");

    // The auditors log in with their threshold (1 of 2).
    let mut a = f.pair();
    a.login(OfficerRole::Auditor, &[&auditors[1]]).unwrap();
}

#[test]
fn an_auditor_enrolment_registers_an_auditor_set_only() {
    let (_f, mut t, cards) = with_psos(ServiceTier::Economy);
    t.login(OfficerRole::Pso, &[&cards[0], &cards[1]]).unwrap();
    let auditor = Card::new("Dora Keller", "D-4");
    let auditors = card_set(CardSetKind::Auditor, 1, 1, &[&auditor]);
    // A PSO set in an auditor ceremony, an auditor set in a PSO enrolment, recovery parts
    // with an auditor set: each refused.
    let id = begin(&mut t, CeremonyKind::EnrolAuditors);
    let pso = card_set(CardSetKind::Pso, 2, 1, &[&cards[0]]);
    let request = t.in_ceremony(id, pso, Some(recovery_for(1)), None, &[]);
    assert_eq!(
        t.refused(request),
        AdminError::CardSet(CardSetProblem::NotForCeremony)
    );
    let request = t.in_ceremony(id, auditors.clone(), Some(recovery()), None, &[]);
    assert_eq!(
        t.refused(request),
        AdminError::CardSet(CardSetProblem::UnexpectedRecovery)
    );
    let id = begin(&mut t, CeremonyKind::Enrol);
    let request = t.in_ceremony(id, auditors.clone(), None, None, &[]);
    assert_eq!(
        t.refused(request),
        AdminError::CardSet(CardSetProblem::NotForCeremony)
    );
    // Without a PSO login, no auditor ceremony opens.
    t.admin(AdminRequest::Logout).unwrap();
    assert!(matches!(
        t.refused(AdminRequest::BeginCeremony {
            kind: CeremonyKind::EnrolAuditors
        }),
        AdminError::NotLoggedIn { .. }
    ));
}

#[test]
fn an_hsm_that_refuses_soft_cards_registers_sets_of_smartcards_only() {
    let (f, mut t, cards) = with_psos(ServiceTier::Economy);
    t.login(OfficerRole::Pso, &[&cards[0], &cards[1]]).unwrap();
    f.hsm.set_soft_cards_allowed(false).unwrap();
    let auditors = [
        Card::new("Dora Keller", "D-4"),
        Card::new("Emil Frei", "E-5"),
    ];
    let mut set = card_set(CardSetKind::Auditor, 1, 1, &[&auditors[0], &auditors[1]]);
    set.cards[0].soft_card = false;
    // The second card is soft: refused and named by position, with what to do.
    match t.register_refused(CeremonyKind::EnrolAuditors, set.clone(), None) {
        AdminError::CardSet(problem @ CardSetProblem::SoftCardsRefused { index: 1 }) => {
            assert!(problem.to_string().contains("tessera-hsm soft-cards allow"))
        }
        other => panic!("{other:?}"),
    }
    set.cards[1].soft_card = false;
    t.register(CeremonyKind::EnrolAuditors, set, None).unwrap();
    // The PSO set registered while soft cards were allowed still logs in.
    t.login(OfficerRole::Pso, &[&cards[0], &cards[2]]).unwrap();
    // The owner's change is in the partition's log, once (setting it again changes nothing).
    f.hsm.set_soft_cards_allowed(false).unwrap();
    let text = log(&mut t);
    let changes: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("hsm.soft-cards"))
        .collect();
    assert_eq!(changes.len(), 1, "{text}");
    assert!(
        changes[0].contains("genesis") && changes[0].contains("refused"),
        "{}",
        changes[0]
    );
}

#[test]
fn a_ceremony_ends_with_the_login_that_opened_it() {
    let (f, mut t, cards) = with_psos(ServiceTier::Economy);
    t.login(OfficerRole::Pso, &[&cards[0], &cards[1]]).unwrap();
    let auditor = Card::new("Dora Keller", "D-4");
    let set = card_set(CardSetKind::Auditor, 1, 1, &[&auditor]);
    // Logged out: the ceremony is gone, whatever the next login.
    let id = begin(&mut t, CeremonyKind::EnrolAuditors);
    t.admin(AdminRequest::Logout).unwrap();
    t.login(OfficerRole::Pso, &[&cards[1], &cards[2]]).unwrap();
    let request = t.in_ceremony(id, set.clone(), None, None, &[]);
    assert_eq!(t.refused(request), AdminError::CeremonyMismatch);
    // A new login in the same session ends the ceremony the last one opened.
    let id = begin(&mut t, CeremonyKind::EnrolAuditors);
    t.login(OfficerRole::Pso, &[&cards[0], &cards[2]]).unwrap();
    let request = t.in_ceremony(id, set.clone(), None, None, &[]);
    assert_eq!(t.refused(request), AdminError::CeremonyMismatch);
    // Superseded by another terminal's login: the session serves no ceremony step either.
    let id = begin(&mut t, CeremonyKind::EnrolAuditors);
    let mut other = f.pair();
    other
        .login(OfficerRole::Pso, &[&cards[0], &cards[1]])
        .unwrap();
    let request = t.in_ceremony(id, set.clone(), None, None, &[]);
    assert!(t.admin(request).is_err());
    // An enrolment leaves no old shares.
    let id = begin(&mut other, CeremonyKind::Enrol);
    let pso = card_set(CardSetKind::Pso, 2, 2, &[&cards[0], &cards[1]]);
    let request = other.in_ceremony(id, pso, Some(recovery_for(2)), None, &["C-3"]);
    assert_eq!(
        other.refused(request),
        AdminError::CardSet(CardSetProblem::NotForCeremony)
    );
}

#[test]
fn the_first_terminals_ceremony_openings_without_a_login_are_rationed() {
    use partition_service::admin::{THROTTLE_WINDOW_S, UNAUTHENTICATED_ENTRIES_PER_WINDOW};

    let f = Fixture::new(ServiceTier::Economy);
    let mut first = f.pair();
    let next_seq = |f: &Fixture| f.hsm.partition(&f.partition).unwrap().log.next_seq;
    let entries_before = next_seq(&f);
    // Each opening abandons the one before and is logged, within the ration.
    for _ in 0..UNAUTHENTICATED_ENTRIES_PER_WINDOW {
        begin(&mut first, CeremonyKind::Enrol);
    }
    assert_eq!(
        next_seq(&f),
        entries_before + UNAUTHENTICATED_ENTRIES_PER_WINDOW as u64
    );
    // Beyond it the opening is refused, says when to come back, and logs nothing.
    match first.refused(AdminRequest::BeginCeremony {
        kind: CeremonyKind::Enrol,
    }) {
        AdminError::UnauthenticatedThrottled { retry_after_secs } => {
            assert!(retry_after_secs > 0 && retry_after_secs <= THROTTLE_WINDOW_S)
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        next_seq(&f),
        entries_before + UNAUTHENTICATED_ENTRIES_PER_WINDOW as u64
    );
}
