//! The worker against the real demo fixture (the in-process reference HSM, soft test cards):
//! a PSO login card by card through `quorum`'s login ceremony, then every screen's request.
#![cfg(feature = "embedded")] // the demo HSM is the embedded simulator

use hsm_link::domain::HolderName;
use hsm_link::message::{KeyFilter, LogQuery, OfficerRole};
use quorum::{Argon2Params, Pin};
use terminal_app::tui::demo::{DEMO_CARDS, Demo};
use terminal_app::tui::message::{
    CardRefusal, Command, Event, LoginCommand, LoginEvent, Verification,
};
use terminal_app::tui::worker::Worker;

fn worker() -> Worker {
    Demo::new(Argon2Params::insecure_for_tests(), true)
        .unwrap()
        .into_worker()
        .unwrap()
}

fn login(w: &mut Worker, step: LoginCommand) -> Vec<Event> {
    w.handle(Command::Login(step))
}

fn pin(text: &str) -> LoginCommand {
    LoginCommand::Verify(Pin::from_slice(text.as_bytes()))
}

fn only(events: Vec<Event>) -> Event {
    match <[Event; 1]>::try_from(events) {
        Ok([event]) => event,
        Err(events) => panic!("expected one event, got {events:?}"),
    }
}

fn one(events: Vec<Event>) -> LoginEvent {
    match events.as_slice() {
        [Event::Login(e)] => e.clone(),
        other => panic!("expected one login event, got {other:?}"),
    }
}

/// Logs in as PSO with Ada's and Ben's cards, through every refusal on the way.
fn pso_login(w: &mut Worker) {
    let started = one(login(w, LoginCommand::Start(OfficerRole::Pso)));
    let LoginEvent::Started {
        threshold, cards, ..
    } = started
    else {
        panic!("{started:?}")
    };
    assert_eq!((threshold, cards.len()), (2, 3));

    // An auditor card is another set's card: named before any PIN.
    let e = one(login(w, LoginCommand::Insert(3)));
    assert!(
        matches!(&e, LoginEvent::Refused { why: CardRefusal::NotInSet, card } if card.serial == "SOFT:0101"),
        "{e:?}"
    );

    let e = one(login(w, LoginCommand::Insert(0)));
    assert!(matches!(&e, LoginEvent::Inserted(c) if c.holder.as_deref() == Some("Ada Demo")));
    // A wrong PIN keeps the card inserted; a soft card has no retry counter.
    let e = one(login(w, pin("not-adas-pin")));
    assert!(
        matches!(&e, LoginEvent::WrongPin(c) if c.tries_left.is_none() && c.soft),
        "{e:?}"
    );
    let e = one(login(w, pin(DEMO_CARDS[0].pin)));
    assert!(
        matches!(
            e,
            LoginEvent::Signed {
                have: 1,
                need: 2,
                ..
            }
        ),
        "{e:?}"
    );

    // The same card again is named and refused.
    let e = one(login(w, LoginCommand::Insert(0)));
    assert!(
        matches!(
            e,
            LoginEvent::Refused {
                why: CardRefusal::SameCardTwice,
                ..
            }
        ),
        "{e:?}"
    );

    login(w, LoginCommand::Insert(1));
    let events = login(w, pin(DEMO_CARDS[1].pin));
    assert!(
        matches!(
            events[0],
            Event::Login(LoginEvent::Signed {
                have: 2,
                need: 2,
                ..
            })
        ),
        "{events:?}"
    );
    let Event::Login(LoginEvent::LoggedIn { role, holders, .. }) = &events[1] else {
        panic!("{events:?}")
    };
    assert_eq!(*role, OfficerRole::Pso);
    assert_eq!(
        holders,
        &vec![
            HolderName::new("Ada Demo").unwrap(),
            HolderName::new("Ben Demo").unwrap()
        ]
    );
}

#[test]
fn a_pso_logs_in_card_by_card_and_every_screen_reads_the_partition() {
    let mut w = worker();
    assert_eq!(w.slots().len(), DEMO_CARDS.len());
    pso_login(&mut w);

    // Dashboard: the application's keys, six of them in the bin; the log's head verified.
    let Event::Status(status) = only(w.handle(Command::Refresh)) else {
        panic!("no status")
    };
    assert_eq!(status.usage.objects_used, 14);
    assert_eq!(status.usage.invalidated_objects, 6);
    let head = status.log_head.expect("a log head");
    assert!(head > 250, "a log with history: head {head}");
    assert!(status.last_checkpoint.is_some());

    // The bin: restore one, purge one; the counts after.
    let Event::Keys { keys, more, .. } = only(w.handle(Command::Keys(
        hsm_link::message::KeyQuery::first(KeyFilter::Invalidated, 100),
    ))) else {
        panic!("no bin page")
    };
    assert_eq!((keys.len(), more), (6, false));
    let Event::Restored { usage, .. } = only(w.handle(Command::Restore(keys[0].id))) else {
        panic!("not restored")
    };
    assert_eq!(usage.invalidated_objects, 5);
    let Event::Purged { usage, freed, .. } = only(w.handle(Command::Purge(keys[1].id))) else {
        panic!("not purged")
    };
    assert_eq!((usage.invalidated_objects, usage.objects_used), (4, 13));
    assert_eq!(freed, keys[1].size_bytes);
    // Purging it again: the HSM's reason, nothing changed.
    let events = w.handle(Command::Purge(keys[1].id));
    assert!(
        matches!(&events[..], [Event::KeyActionFailed(r)] if r.contains("no key")),
        "{events:?}"
    );

    // Configuration: applied against the revision read; the same revision again is stale.
    let [Event::Config(config), Event::Drills(drills)] =
        <[Event; 2]>::try_from(w.handle(Command::LoadConfig)).unwrap()
    else {
        panic!("no config and drills")
    };
    // The demo drilled Cleo's card only: the others were never drilled.
    let last: Vec<_> = drills
        .iter()
        .map(|d| (d.holder.as_str(), d.last_passed.is_some()))
        .collect();
    assert_eq!(
        last,
        [
            ("Ada Demo", false),
            ("Ben Demo", false),
            ("Cleo Demo", true)
        ]
    );
    let mut staged = (*config).clone();
    staged.api_providers.rest = true;
    let apply = |w: &mut Worker| {
        w.handle(Command::ApplyConfig {
            expected_revision: config.revision,
            config: Box::new(staged.clone()),
        })
    };
    let events = apply(&mut w);
    assert_eq!(
        events,
        vec![Event::ConfigApplied {
            revision: config.revision + 1
        }]
    );
    let events = apply(&mut w);
    assert!(
        matches!(&events[..], [Event::ConfigRefused { stale: Some(r), .. }] if *r == config.revision + 1),
        "{events:?}"
    );

    // The log: a first page, its chain and checkpoints verified against the audit key.
    let Event::Log(page) = only(w.handle(Command::Log(LogQuery::from(1, 200)))) else {
        panic!("no log page")
    };
    assert_eq!(page.rows[0].seq, 1);
    assert_eq!(page.rows[0].operation, "partition.create");
    assert!(
        matches!(page.verification, Verification::Chain { entries, checkpoints, .. } if entries > 250 && checkpoints > 0),
        "{:?}",
        page.verification
    );
    // Filtered: only refusals, each entry's own hash checked.
    let mut refused = LogQuery::from(1, 200);
    refused.outcome = Some(hsm_link::message::OutcomeFilter::Refused);
    let Event::Log(page) = only(w.handle(Command::Log(refused))) else {
        panic!("no log page")
    };
    assert!(!page.rows.is_empty());
    assert!(page.rows.iter().all(|r| r.outcome == "refused"));
    assert!(matches!(
        page.verification,
        Verification::EntriesOnly { .. }
    ));

    // Credentials: a new setup password, valid for 72 hours.
    let Event::Credentials {
        password,
        expires_unix,
    } = only(w.handle(Command::ResetCredentials))
    else {
        panic!("no credentials")
    };
    assert!(password.expose().len() >= 20, "a long password");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(expires_unix > now + 71 * 3600 && expires_unix <= now + 72 * 3600 + 60);

    assert_eq!(w.handle(Command::Logout), vec![Event::LoggedOut]);
}

#[test]
fn an_auditor_logs_in_with_one_card_and_may_not_purge() {
    let mut w = worker();
    let e = one(login(&mut w, LoginCommand::Start(OfficerRole::Auditor)));
    assert!(
        matches!(e, LoginEvent::Started { threshold: 1, .. }),
        "{e:?}"
    );
    // A PSO card is not an auditor card.
    let e = one(login(&mut w, LoginCommand::Insert(0)));
    assert!(matches!(
        e,
        LoginEvent::Refused {
            why: CardRefusal::NotInSet,
            ..
        }
    ));
    login(&mut w, LoginCommand::Insert(4));
    let events = login(&mut w, pin(DEMO_CARDS[4].pin));
    assert!(
        matches!(
            events.last(),
            Some(Event::Login(LoginEvent::LoggedIn {
                role: OfficerRole::Auditor,
                ..
            }))
        ),
        "{events:?}"
    );
    let events = w.handle(Command::Purge(hsm_link::domain::KeyId(2)));
    assert!(
        matches!(&events[..], [Event::KeyActionFailed(r)] if r.contains("may not")),
        "{events:?}"
    );
    let events = w.handle(Command::ResetCredentials);
    assert!(
        matches!(&events[..], [Event::CredentialsRefused(r)] if r.contains("may not")),
        "{events:?}"
    );
}

#[test]
fn a_device_so_login_needs_cards_of_two_people() {
    let mut w = worker();
    let so = |w: &mut Worker, slots: [usize; 2]| -> Vec<Event> {
        let e = one(login(w, LoginCommand::Start(OfficerRole::DeviceSo)));
        assert!(
            matches!(e, LoginEvent::Started { threshold: 2, .. }),
            "{e:?}"
        );
        let mut events = Vec::new();
        for slot in slots {
            login(w, LoginCommand::Insert(slot));
            events = login(w, pin(DEMO_CARDS[slot].pin));
        }
        events
    };
    // Both of Finn's cards: one person, refused by the HSM.
    let events = so(&mut w, [5, 6]);
    assert!(
        matches!(events.last(), Some(Event::Login(LoginEvent::Failed { reason, .. })) if reason.contains("two different people")),
        "{events:?}"
    );
    // Finn and Gia: four eyes.
    let events = so(&mut w, [5, 7]);
    let Some(Event::Login(LoginEvent::LoggedIn { role, holders, .. })) = events.last() else {
        panic!("{events:?}")
    };
    assert_eq!(*role, OfficerRole::DeviceSo);
    assert_eq!(holders.len(), 2);
}

#[test]
fn a_share_drill_needs_no_login_and_names_a_card_of_another_set() {
    use terminal_app::tui::message::{DrillCommand, DrillEvent};
    let mut w = worker();
    let drill = |w: &mut Worker, step: DrillCommand| match only(w.handle(Command::Drill(step))) {
        Event::Drill(e) => e,
        other => panic!("{other:?}"),
    };
    assert!(matches!(
        drill(&mut w, DrillCommand::Insert(0)),
        DrillEvent::Inserted(_)
    ));
    let e = drill(
        &mut w,
        DrillCommand::Verify(Pin::from_slice(b"not-adas-pin")),
    );
    assert!(matches!(e, DrillEvent::WrongPin(_)), "{e:?}");
    let e = drill(
        &mut w,
        DrillCommand::Verify(Pin::from_slice(DEMO_CARDS[0].pin.as_bytes())),
    );
    assert!(
        matches!(&e, DrillEvent::Done { ok: true, detail, .. } if detail.contains("logged")),
        "{e:?}"
    );
    drill(&mut w, DrillCommand::Insert(3));
    let e = drill(
        &mut w,
        DrillCommand::Verify(Pin::from_slice(DEMO_CARDS[3].pin.as_bytes())),
    );
    assert!(
        matches!(&e, DrillEvent::Failed(r) if r.contains("not in this partition's active card set")),
        "{e:?}"
    );
}

/// A re-share step's events, each a [`ReshareEvent`].
fn reshare(
    w: &mut Worker,
    step: terminal_app::flows::reshare::ReshareCommand,
) -> Vec<terminal_app::flows::reshare::ReshareEvent> {
    w.handle(Command::Reshare(step))
        .into_iter()
        .map(|e| match e {
            Event::Reshare(e) => e,
            other => panic!("{other:?}"),
        })
        .collect()
}

/// Inserts the demo card of `slot` and gives its PIN: the re-share's events.
fn reshare_card(w: &mut Worker, slot: usize) -> Vec<terminal_app::flows::reshare::ReshareEvent> {
    use terminal_app::flows::reshare::{ReshareCommand, ReshareEvent};
    let inserted = reshare(w, ReshareCommand::Insert(slot));
    assert!(
        matches!(inserted.as_slice(), [ReshareEvent::Inserted(_)]),
        "{inserted:?}"
    );
    let pin = Pin::from_slice(DEMO_CARDS[slot].pin.as_bytes());
    reshare(w, ReshareCommand::Verify(pin))
}

#[test]
fn a_re_share_moves_the_pso_set_to_two_of_two_and_the_card_that_left_is_wiped() {
    use terminal_app::flows::reshare::{ReshareCommand, ReshareEvent};
    let mut w = worker();
    pso_login(&mut w);
    let began = reshare(&mut w, ReshareCommand::Begin { threshold: 2, n: 2 });
    assert!(
        matches!(&began[..], [ReshareEvent::Began { ceremony, need: 2 }] if !ceremony.is_empty()),
        "{began:?}"
    );
    // An auditor's card is no old PSO card: refused and named; the ceremony goes on.
    let e = reshare_card(&mut w, 3);
    assert!(
        matches!(&e[..], [ReshareEvent::Refused(r)] if r.contains("SOFT:0101")),
        "{e:?}"
    );
    let e = reshare_card(&mut w, 0);
    assert!(
        matches!(&e[..], [ReshareEvent::OldRead { have: 1, .. }]),
        "{e:?}"
    );
    // A wrong PIN keeps Ben's card in; the right one completes the old quorum: the split.
    reshare(&mut w, ReshareCommand::Insert(1));
    let e = reshare(&mut w, ReshareCommand::Verify(Pin::from_slice(b"not-bens")));
    assert!(matches!(&e[..], [ReshareEvent::WrongPin(_)]), "{e:?}");
    let pin = Pin::from_slice(DEMO_CARDS[1].pin.as_bytes());
    let e = reshare(&mut w, ReshareCommand::Verify(pin));
    assert!(
        matches!(
            &e[..],
            [ReshareEvent::OldRead { have: 2, .. }, ReshareEvent::Split]
        ),
        "{e:?}"
    );
    // The new set: Ben and Cleo, each share written and read back; then the registration.
    let e = reshare_card(&mut w, 1);
    assert!(
        matches!(&e[..], [ReshareEvent::NewWritten { have: 1, .. }]),
        "{e:?}"
    );
    let e = reshare_card(&mut w, 2);
    let [
        ReshareEvent::NewWritten { have: 2, .. },
        ReshareEvent::Registered {
            set_number,
            to_wipe,
            old_left,
        },
    ] = &e[..]
    else {
        panic!("{e:?}")
    };
    assert_eq!(*set_number, 2);
    assert_eq!(to_wipe, &["soft card SOFT:0001 (Ada Demo)"]);
    assert!(old_left.is_empty(), "{old_left:?}");
    // Ada's old share is wiped; Ben's old envelope goes, his new share stays.
    let e = reshare_card(&mut w, 0);
    assert!(
        matches!(&e[..], [ReshareEvent::Wiped { left: 0, what, .. }] if what.contains("wiped")),
        "{e:?}"
    );
    let e = reshare_card(&mut w, 1);
    assert!(
        matches!(&e[..], [ReshareEvent::Wiped { what, .. }] if what.contains("old share removed")),
        "{e:?}"
    );
    let e = reshare(&mut w, ReshareCommand::Abort);
    assert!(
        matches!(&e[..], [ReshareEvent::Aborted(t)] if t.contains("set 2 is active")),
        "{e:?}"
    );

    // Ada's card is useless at once: a drill of it fails; Ben's passes against the new set.
    use terminal_app::tui::message::{DrillCommand, DrillEvent};
    let mut drill = |slot: usize| {
        w.handle(Command::Drill(DrillCommand::Insert(slot)));
        let pin = Pin::from_slice(DEMO_CARDS[slot].pin.as_bytes());
        only(w.handle(Command::Drill(DrillCommand::Verify(pin))))
    };
    let ada = drill(0);
    assert!(
        !matches!(ada, Event::Drill(DrillEvent::Done { ok: true, .. })),
        "{ada:?}"
    );
    let ben = drill(1);
    assert!(
        matches!(ben, Event::Drill(DrillEvent::Done { ok: true, .. })),
        "{ben:?}"
    );
}

#[test]
fn a_re_share_abandoned_after_a_new_card_says_the_active_set_is_unchanged() {
    use terminal_app::flows::reshare::{ReshareCommand, ReshareEvent};
    let mut w = worker();
    pso_login(&mut w);
    reshare(&mut w, ReshareCommand::Begin { threshold: 3, n: 3 });
    reshare_card(&mut w, 0);
    reshare_card(&mut w, 1);
    let e = reshare_card(&mut w, 2);
    assert!(
        matches!(&e[..], [ReshareEvent::NewWritten { have: 1, .. }]),
        "{e:?}"
    );
    let e = reshare(&mut w, ReshareCommand::Abort);
    assert!(
        matches!(&e[..], [ReshareEvent::Aborted(t)]
            if t.contains("active set is unchanged") && t.contains("SOFT:0003")),
        "{e:?}"
    );
    // The old set still opens: a drill of Ada's card passes.
    use terminal_app::tui::message::{DrillCommand, DrillEvent};
    w.handle(Command::Drill(DrillCommand::Insert(0)));
    let pin = Pin::from_slice(DEMO_CARDS[0].pin.as_bytes());
    let e = only(w.handle(Command::Drill(DrillCommand::Verify(pin))));
    assert!(
        matches!(e, Event::Drill(DrillEvent::Done { ok: true, .. })),
        "{e:?}"
    );
}

#[test]
fn revoking_cleos_card_makes_a_fresh_secret_and_her_share_useless_at_once() {
    use terminal_app::flows::reshare::ReshareEvent;
    use terminal_app::flows::revoke::{RevokeCommand, RevokeEvent};
    use terminal_app::tui::message::{DrillCommand, DrillEvent};
    let mut w = worker();
    pso_login(&mut w);
    let revoke = |w: &mut Worker, step: RevokeCommand| -> Vec<RevokeEvent> {
        w.handle(Command::Revoke(step))
            .into_iter()
            .map(|e| match e {
                Event::Revoke(e) => e,
                other => panic!("{other:?}"),
            })
            .collect()
    };
    let card = |w: &mut Worker, slot: usize| {
        let e = revoke(w, RevokeCommand::Insert(slot));
        assert!(
            matches!(&e[..], [RevokeEvent::Card(ReshareEvent::Inserted(_))]),
            "{e:?}"
        );
        let pin = Pin::from_slice(DEMO_CARDS[slot].pin.as_bytes());
        revoke(w, RevokeCommand::Verify(pin))
    };
    let e = revoke(&mut w, RevokeCommand::List);
    let [RevokeEvent::Set(set)] = &e[..] else {
        panic!("{e:?}")
    };
    let serials: Vec<&str> = set.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(serials, ["SOFT:0001", "SOFT:0002", "SOFT:0003"]);
    let e = revoke(
        &mut w,
        RevokeCommand::Begin {
            serial: "SOFT:0003".into(),
            threshold: 2,
            n: 2,
        },
    );
    assert!(matches!(&e[..], [RevokeEvent::Began { .. }]), "{e:?}");
    // The lost card itself is refused and named.
    let e = card(&mut w, 2);
    assert!(
        matches!(&e[..], [RevokeEvent::Card(ReshareEvent::Refused(r))] if r.contains("SOFT:0003")),
        "{e:?}"
    );
    let e = card(&mut w, 0);
    assert!(
        matches!(&e[..], [RevokeEvent::Written { have: 1, .. }]),
        "{e:?}"
    );
    let e = card(&mut w, 1);
    let [
        RevokeEvent::Written { have: 2, .. },
        RevokeEvent::Done {
            set_number,
            backups,
        },
    ] = &e[..]
    else {
        panic!("{e:?}")
    };
    assert_eq!(*set_number, 2);
    assert!(
        backups.contains("stay restorable on this HSM") && backups.contains("SOFT:0003"),
        "{backups}"
    );
    // Cleo's card is useless at once: its drill fails; Ada's passes against the new set.
    let mut drill = |slot: usize| {
        w.handle(Command::Drill(DrillCommand::Insert(slot)));
        let pin = Pin::from_slice(DEMO_CARDS[slot].pin.as_bytes());
        only(w.handle(Command::Drill(DrillCommand::Verify(pin))))
    };
    let cleo = drill(2);
    assert!(
        !matches!(cleo, Event::Drill(DrillEvent::Done { ok: true, .. })),
        "{cleo:?}"
    );
    let ada = drill(0);
    assert!(
        matches!(ada, Event::Drill(DrillEvent::Done { ok: true, .. })),
        "{ada:?}"
    );
}
