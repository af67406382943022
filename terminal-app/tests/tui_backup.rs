//! The Backup screen: snapshots of each step at 80×24 and 160×48 (drives with a FAT device and
//! one refused, writing with progress, the read-back verification, done, a drive's backups, the
//! restore's upload with its progress, its diff, a refused restore); `update`'s step order (no
//! restore without the HSM's dry run and the typed confirmation; answers out of order ignored;
//! PSO only); and the worker against the real demo fixture: a backup written and verified,
//! listed and checked offline, a dry run whose diff brings a purged key back, the restore, and a
//! tampered file refused; the same in device mode on a FAT image, with the upload's progress.
#![cfg(feature = "embedded")] // the demo HSM is the embedded simulator

#[path = "support/tui_model.rs"]
mod tui_support;

use std::path::PathBuf;

use hsm_link::domain::{KeyId, KeyLabel, Parameter, ParameterChange};
use hsm_link::message::{DiffKey, KeyIdList, OfficerRole, RestoreDiff};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::KeyCode;
use terminal_app::cli::backup::{Drive, Source};
use terminal_app::flows::backup::{
    BackupCommand, BackupEvent, BackupView, Check, CreatedView, DriveView, FactsView, Step,
};
use terminal_app::tui::message::{Command, Effect, Event};
use terminal_app::tui::model::{Model, Screen};
use terminal_app::tui::theme::Theme;
use terminal_app::tui::view::view;
use tui_support::*;

fn draw(model: &Model, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|f| view(f, model, &Theme::monochrome()))
        .unwrap();
    terminal.backend().to_string()
}

fn backup(model: &mut Model, e: BackupEvent) -> Vec<Effect> {
    event(model, Event::Backup(e))
}

fn home() -> Drive {
    Drive::Dir("/home/ada/.local/state/tessera/demo/drive".into())
}

fn stick() -> Drive {
    Drive::Dir("/media/ada/BACKUP-A".into())
}

fn drives() -> Vec<DriveView> {
    vec![
        DriveView {
            label: "directory".into(),
            detail: "/home/ada/.local/state/tessera/demo/drive".into(),
            drive: Some(home()),
            free: Some(41_800_000_000),
            refused: None,
        },
        DriveView {
            label: "demo FAT drive (device mode)".into(),
            detail: "/home/ada/.local/state/tessera/demo/drive.img".into(),
            drive: Some(Drive::Fat(
                "/home/ada/.local/state/tessera/demo/drive.img".into(),
            )),
            free: None,
            refused: None,
        },
        DriveView {
            label: "SanDisk Cruzer (sdb1)".into(),
            detail: "0781:5567:4C530001 · /media/ada/BACKUP-A".into(),
            drive: Some(stick()),
            free: Some(15_200_000_000),
            refused: None,
        },
        DriveView {
            label: "Generic Flash Disk (sdc)".into(),
            detail: "058f:6387:0000FF01".into(),
            drive: None,
            free: None,
            refused: Some("058f:6387:0000FF01 is not on the drive allow-list".into()),
        },
    ]
}

/// The Backup screen (menu entry 5) with the drives scanned.
fn on_drives() -> Model {
    let mut m = logged_in();
    m.drive_dirs = vec![PathBuf::from("/home/ada/.local/state/tessera/demo/drive")];
    let effects = ch(&mut m, '5');
    assert_eq!(m.screen, Screen::Backup);
    assert!(matches!(
        effects.as_slice(),
        [Effect::Send(Command::Backup(BackupCommand::Scan { dirs, .. }))] if dirs == &m.drive_dirs
    ));
    backup(
        &mut m,
        BackupEvent::Drives {
            drives: drives(),
            note: None,
        },
    );
    m
}

/// Both usable drives chosen (a mirror) and the backup started.
fn writing() -> Model {
    let mut m = on_drives();
    ch(&mut m, ' ');
    key(&mut m, KeyCode::Down);
    ch(&mut m, ' ');
    let effects = ch(&mut m, 'c');
    let [Effect::Send(Command::Backup(BackupCommand::Create { drives, .. }))] = effects.as_slice()
    else {
        panic!("{effects:?}")
    };
    assert_eq!(drives.len(), 2, "a mirror: both drives");
    backup(
        &mut m,
        BackupEvent::Progress {
            written: 1_400_000,
            total: 4_200_000,
            elapsed_ms: 500,
        },
    );
    m
}

fn verifying() -> Model {
    let mut m = writing();
    backup(&mut m, BackupEvent::Verifying { total: 4_200_000 });
    m
}

fn done() -> Model {
    let mut m = verifying();
    let file = "demo-partition_2026-12-04T093000Z_seq000268.tsbk";
    backup(
        &mut m,
        BackupEvent::Created {
            created: Box::new(CreatedView {
                file_name: file.into(),
                bytes: 4_200_000,
                digest: "3f9a".repeat(16),
                lines: vec![
                    format!(
                        "/home/ada/.local/state/tessera/demo/drive: stored {file} and verified \
                         it read back from the drive"
                    ),
                    format!(
                        "/media/ada/BACKUP-A: stored {file} and verified it read back from the \
                         drive"
                    ),
                    "/media/ada/BACKUP-A: removed the older \
                     demo-partition_2026-11-01T080000Z_seq000190.tsbk"
                        .into(),
                    "retention: the newest 5 backups of this partition are kept on each drive"
                        .into(),
                ],
            }),
            last: None,
        },
    );
    m
}

fn listed() -> Model {
    let mut m = on_drives();
    key(&mut m, KeyCode::Down);
    key(&mut m, KeyCode::Down);
    let effects = key(&mut m, KeyCode::Enter);
    assert!(matches!(
        effects.as_slice(),
        [Effect::Send(Command::Backup(BackupCommand::List { drive }))] if *drive == stick()
    ));
    let facts = |created, sequence, objects| FactsView {
        partition: "demo-partition".into(),
        hsm: "7f3a9c2e".into(),
        created,
        sequence,
        objects,
    };
    backup(
        &mut m,
        BackupEvent::Listed {
            drive: stick(),
            backups: vec![
                BackupView {
                    file_name: "demo-partition_2026-12-04T093000Z_seq000268.tsbk".into(),
                    len: 4_200_000,
                    facts: Ok(facts(1_796_376_600, 268, 14)),
                    check: Check::Checking,
                },
                BackupView {
                    file_name: "demo-partition_2026-11-20T101500Z_seq000231.tsbk".into(),
                    len: 4_100_000,
                    facts: Ok(facts(1_795_169_700, 231, 13)),
                    check: Check::Checking,
                },
                BackupView {
                    file_name: "demo-partition_2026-11-01T080000Z_seq000190.tsbk".into(),
                    len: 3_900_000,
                    facts: Ok(facts(1_793_520_000, 190, 12)),
                    check: Check::Checking,
                },
            ],
        },
    );
    for (file, check) in [
        (
            "demo-partition_2026-12-04T093000Z_seq000268.tsbk",
            Check::Verified,
        ),
        (
            "demo-partition_2026-11-20T101500Z_seq000231.tsbk",
            Check::Failed("swapped chunks: chunk 3's digest does not match the trailer".into()),
        ),
    ] {
        backup(
            &mut m,
            BackupEvent::Checked {
                drive: stick(),
                file_name: file.into(),
                check,
            },
        );
    }
    m
}

fn diff() -> RestoreDiff {
    let list = |keys: &[(u64, &str, bool)]| KeyIdList {
        count: keys.len() as u64,
        first: keys
            .iter()
            .map(|&(id, label, in_bin)| DiffKey {
                id: KeyId(id),
                label: KeyLabel::new(label).unwrap(),
                in_bin,
            })
            .collect(),
    };
    RestoreDiff {
        header_hash: [0x3f; 32],
        created_unix: 1_796_376_600,
        sequence: 268,
        objects_in_backup: 14,
        objects_now: 13,
        returning: list(&[(4, "payments-signing", false)]),
        removed: list(&[(15, "test-key", false)]),
        into_bin: list(&[(2, "old-wrapping", true)]),
        out_of_bin: list(&[]),
        config: vec![ParameterChange {
            parameter: Parameter::ApiRest,
            old: "on".into(),
            new: "off".into(),
            loosens: false,
        }],
    }
}

/// The dry run asked for the selected backup.
fn dry_run() -> Model {
    let mut m = listed();
    let effects = ch(&mut m, 'R');
    assert!(matches!(
        effects.as_slice(),
        [Effect::Send(Command::Backup(BackupCommand::DryRun { source: Source::File(file) }))]
            if file.ends_with("demo-partition_2026-12-04T093000Z_seq000268.tsbk")
    ));
    m
}

/// The restore's upload under way: bytes, rate and time left.
fn uploading() -> Model {
    let mut m = dry_run();
    backup(
        &mut m,
        BackupEvent::Uploading {
            sent: 1_050_000,
            total: 4_200_000,
            elapsed_ms: 250,
        },
    );
    m
}

/// Uploaded: the HSM's checks are the step now.
fn uploaded() -> Model {
    let mut m = uploading();
    backup(
        &mut m,
        BackupEvent::Uploading {
            sent: 4_200_000,
            total: 4_200_000,
            elapsed_ms: 1000,
        },
    );
    m
}

fn restore_diff() -> Model {
    let mut m = dry_run();
    backup(&mut m, BackupEvent::Diff(Box::new(diff())));
    m
}

fn states() -> Vec<(&'static str, Model)> {
    let mut refused = dry_run();
    backup(
        &mut refused,
        BackupEvent::RestoreRefused(
            "the HSM refused: the backup is larger than the partition's quota".into(),
        ),
    );
    vec![
        ("backup_drives", on_drives()),
        ("backup_writing", writing()),
        ("backup_verifying", verifying()),
        ("backup_done", done()),
        ("backup_list", listed()),
        ("backup_restore_uploading", uploading()),
        ("backup_restore_uploaded", uploaded()),
        ("backup_restore_diff", restore_diff()),
        ("backup_restore_confirm", {
            let mut m = restore_diff();
            ch(&mut m, 'y');
            typed(&mut m, "demo-part");
            m
        }),
        ("backup_restore_refused", refused),
    ]
}

#[test]
fn every_backup_step_matches_its_snapshot() {
    for (name, model) in states() {
        insta::assert_snapshot!(format!("{name}_80x24"), draw(&model, 80, 24));
        insta::assert_snapshot!(format!("{name}_160x48"), draw(&model, 160, 48));
    }
}

#[test]
fn the_steps_read_without_colour_and_nothing_panics_when_small() {
    let screen = draw(&on_drives(), 80, 24);
    assert!(screen.contains("refused: 058f:6387:0000FF01 is not on the drive allow-list"));
    assert!(screen.contains("41.8 GB free"), "{screen}");
    let screen = draw(&writing(), 80, 24);
    assert!(screen.contains("1.4 MB of 4.2 MB (33 %)"), "{screen}");
    assert!(
        screen.contains("rate 2.8 MB/s · about 0:01 left"),
        "{screen}"
    );
    let screen = draw(&done(), 80, 24);
    assert!(screen.contains("read back and verified"), "{screen}");
    assert!(screen.contains(&"3f9a".repeat(16)), "{screen}");
    let screen = draw(&on_drives(), 80, 24);
    assert!(screen.contains("demo FAT drive (device mode)"), "{screen}");
    assert!(screen.contains("never mounted"), "{screen}");
    let screen = draw(&uploading(), 80, 24);
    assert!(screen.contains("1.1 MB of 4.2 MB (25 %)"), "{screen}");
    assert!(
        screen.contains("rate 4.2 MB/s · about 0:01 left"),
        "{screen}"
    );
    assert!(screen.contains("Step 1 of 2: uploading"), "{screen}");
    let screen = draw(&uploaded(), 80, 24);
    assert!(screen.contains("✓ Step 1 of 2: uploaded"), "{screen}");
    assert!(
        screen.contains("Step 2 of 2: the HSM's dry run"),
        "{screen}"
    );
    for (name, model) in states() {
        for (w, h) in [(40, 12), (20, 6), (1, 1)] {
            let text = std::panic::catch_unwind(|| draw(&model, w, h));
            assert!(text.is_ok(), "{name} panicked at {w}x{h}");
        }
    }
}

#[test]
fn a_restore_goes_dry_run_then_diff_then_the_typed_id_and_never_skips_one() {
    // A diff that arrives without a dry run asked for is ignored.
    let mut m = listed();
    backup(&mut m, BackupEvent::Diff(Box::new(diff())));
    assert_eq!(m.backup.step, Step::Backups);
    // Nor does `y` on the list restore anything.
    assert!(ch(&mut m, 'y').is_empty());

    let mut m = restore_diff();
    assert!(matches!(m.backup.step, Step::Diff(_)));
    // Keys while the diff shows: n backs out to the list (and lists again).
    let mut back = m.clone();
    let effects = ch(&mut back, 'n');
    assert_eq!(back.backup.step, Step::Backups);
    assert!(matches!(
        effects.as_slice(),
        [Effect::Send(Command::Backup(BackupCommand::List { .. }))]
    ));

    // y asks for the partition id; anything else typed commits nothing.
    assert!(ch(&mut m, 'y').is_empty());
    assert!(matches!(m.backup.step, Step::Confirm(_)));
    typed(&mut m, "demo-partitio");
    assert!(key(&mut m, KeyCode::Enter).is_empty());
    assert!(matches!(m.backup.step, Step::Confirm(_)));
    let notice = m.backup.notice.clone().unwrap();
    assert!(notice.text.contains("type demo-partition"), "{notice:?}");
    // A restored answer before the commit was sent is ignored.
    backup(&mut m, BackupEvent::Restored("restored".into()));
    assert!(matches!(m.backup.step, Step::Confirm(_)));
    // Esc goes back to the diff, not past it.
    key(&mut m, KeyCode::Esc);
    assert!(matches!(m.backup.step, Step::Diff(_)));
    ch(&mut m, 'y');
    typed(&mut m, "demo-partition");
    let effects = key(&mut m, KeyCode::Enter);
    match effects.as_slice() {
        [Effect::Send(Command::Backup(BackupCommand::Commit(d)))] => assert_eq!(**d, diff()),
        other => panic!("{other:?}"),
    }
    assert_eq!(m.backup.step, Step::Restoring);
    // Keys wait while the HSM swaps; Esc says to wait.
    assert!(key(&mut m, KeyCode::Esc).is_empty());
    assert_eq!(m.backup.step, Step::Restoring);
    let effects = backup(
        &mut m,
        BackupEvent::Restored("restored: the partition now holds 14 key objects".into()),
    );
    assert!(matches!(m.backup.step, Step::Restored(_)));
    // The dashboard reads the partition again.
    assert_eq!(effects, vec![Effect::Send(Command::Refresh)]);
}

#[test]
fn a_check_of_the_same_file_on_another_drive_is_not_taken_for_this_one() {
    let mut m = listed();
    let file = "demo-partition_2026-11-01T080000Z_seq000190.tsbk";
    // A mirror holds the same name on both drives: only this drive's check counts.
    backup(
        &mut m,
        BackupEvent::Checked {
            drive: home(),
            file_name: file.into(),
            check: Check::Verified,
        },
    );
    let shown = m
        .backup
        .backups
        .iter()
        .find(|b| b.file_name == file)
        .unwrap();
    assert_eq!(shown.check, Check::Checking);
}

#[test]
fn a_backup_and_a_restore_need_a_pso_login_and_say_so() {
    let mut m = on_drives();
    m.session.as_mut().unwrap().role = OfficerRole::Auditor;
    ch(&mut m, ' ');
    assert!(ch(&mut m, 'c').is_empty());
    assert_eq!(m.backup.step, Step::Drives);
    assert!(m.backup.notice.clone().unwrap().text.contains("PSO login"));
    // Listing and checking need no PSO; a restore does.
    let effects = key(&mut m, KeyCode::Enter);
    assert_eq!(effects.len(), 1);
    backup(
        &mut m,
        BackupEvent::Listed {
            drive: home(),
            backups: vec![BackupView {
                file_name: "demo-partition_2026-12-04T093000Z_seq000268.tsbk".into(),
                len: 1,
                facts: Err("not a backup".into()),
                check: Check::Failed("not a backup".into()),
            }],
        },
    );
    assert!(ch(&mut m, 'R').is_empty());
    assert_eq!(m.backup.step, Step::Backups);
    assert!(m.backup.notice.clone().unwrap().text.contains("PSO login"));
}

#[test]
fn drives_are_chosen_one_or_two_and_a_refused_one_never() {
    let mut m = on_drives();
    // The refused drive (third) cannot be chosen.
    key(&mut m, KeyCode::End);
    ch(&mut m, ' ');
    assert!(m.backup.chosen.is_empty());
    assert!(m.backup.notice.is_some());
    // c without a choice takes the selected drive; with a refused one selected, nothing.
    assert!(ch(&mut m, 'c').is_empty());
    key(&mut m, KeyCode::Home);
    ch(&mut m, ' ');
    key(&mut m, KeyCode::Down);
    ch(&mut m, ' ');
    assert_eq!(m.backup.chosen.len(), 2);
    // A chosen drive that goes away is no longer chosen.
    let mut fewer = drives();
    fewer.remove(1);
    backup(
        &mut m,
        BackupEvent::Drives {
            drives: fewer,
            note: None,
        },
    );
    assert_eq!(m.backup.chosen, vec![home()]);
}

#[test]
fn drives_are_rescanned_about_every_second_while_the_list_shows() {
    let mut m = on_drives();
    let scans = |effects: Vec<Effect>| {
        effects
            .iter()
            .filter(|e| matches!(e, Effect::Send(Command::Backup(BackupCommand::Scan { .. }))))
            .count()
    };
    assert_eq!(scans(tick(&mut m, 500)), 0);
    assert_eq!(scans(tick(&mut m, 1000)), 1);
    // Not again while that scan is unanswered.
    assert_eq!(scans(tick(&mut m, 2500)), 0);
    backup(
        &mut m,
        BackupEvent::Drives {
            drives: drives(),
            note: None,
        },
    );
    assert_eq!(scans(tick(&mut m, 2600)), 1);
    // Not while writing, nor on another screen.
    let mut w = writing();
    assert_eq!(scans(tick(&mut w, 60_000)), 0);
    let mut away = on_drives();
    key(&mut away, KeyCode::Esc);
    assert_eq!(away.screen, Screen::Dashboard);
    assert_eq!(scans(tick(&mut away, 60_000)), 0);
}

#[test]
fn the_dashboard_names_the_last_verified_backup_of_this_partition_only() {
    use terminal_app::flows::backup::{BackupFlow, LastVerified, RECORD_FORMAT, RECORD_VERSION};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("last-verified-backup.json");
    let mut record = LastVerified {
        format: RECORD_FORMAT.into(),
        version: RECORD_VERSION,
        partition: "demo-partition".into(),
        hsm: "7f3a9c2e".into(),
        time_unix: 1_796_376_600,
        drive: "/media/ada/BACKUP-A".into(),
        file: "demo-partition_2026-12-04T093000Z_seq000268.tsbk".into(),
        digest: "3f9a".repeat(16),
    };
    record.write(&path).unwrap();
    let mut m = logged_in();
    m.backup = BackupFlow::with_record(path.clone());
    let screen = draw(&m, 80, 24);
    assert!(
        screen.contains("Last backup 2026-12-04 09:30 UTC, verified, on"),
        "{screen}"
    );
    // Another partition's record is not this partition's backup.
    record.partition = "payments".into();
    record.write(&path).unwrap();
    m.backup = BackupFlow::with_record(path);
    let screen = draw(&m, 80, 24);
    assert!(
        screen.contains("none verified by this terminal"),
        "{screen}"
    );
}

mod worker {
    use super::*;
    use hsm_link::message::KeyFilter;
    use quorum::{Argon2Params, Pin};
    use terminal_app::flows::backup::LastVerified;
    use terminal_app::tui::demo::Demo;
    use terminal_app::tui::message::{LoginCommand, LoginEvent};
    use terminal_app::tui::worker::Worker;

    fn pso(w: &mut Worker) {
        w.handle(Command::Login(LoginCommand::Start(OfficerRole::Pso)));
        for (slot, pin) in [(0, "ada-demo-pin"), (1, "ben-demo-pin")] {
            w.handle(Command::Login(LoginCommand::Insert(slot)));
            let events = w.handle(Command::Login(LoginCommand::Verify(Pin::from_slice(
                pin.as_bytes(),
            ))));
            if slot == 1 {
                assert!(
                    matches!(
                        events.last(),
                        Some(Event::Login(LoginEvent::LoggedIn { .. }))
                    ),
                    "{events:?}"
                );
            }
        }
    }

    fn reports(events: Vec<Event>) -> Vec<BackupEvent> {
        events
            .into_iter()
            .map(|e| match e {
                Event::Backup(b) => b,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    /// On the worker thread, a backup reports its progress, then its read-back verification,
    /// then its result, in that order.
    #[test]
    fn the_worker_thread_sends_progress_then_verifying_then_the_result() {
        let dir = tempfile::tempdir().unwrap();
        let (commands, rx) = std::sync::mpsc::channel();
        let (tx, events) = std::sync::mpsc::channel();
        let demo = Demo::new(Argon2Params::insecure_for_tests(), true).unwrap();
        terminal_app::tui::worker::spawn(move || demo.into_worker(), rx, tx).unwrap();
        let next = || {
            events
                .recv_timeout(std::time::Duration::from_secs(60))
                .expect("an event")
        };
        assert!(matches!(next(), Event::Ready { .. }));
        commands
            .send(Command::Login(LoginCommand::Start(OfficerRole::Pso)))
            .unwrap();
        for (slot, pin) in [(0, "ada-demo-pin"), (1, "ben-demo-pin")] {
            commands
                .send(Command::Login(LoginCommand::Insert(slot)))
                .unwrap();
            commands
                .send(Command::Login(LoginCommand::Verify(Pin::from_slice(
                    pin.as_bytes(),
                ))))
                .unwrap();
        }
        while !matches!(next(), Event::Login(LoginEvent::LoggedIn { .. })) {}
        commands
            .send(Command::Backup(BackupCommand::Create {
                drives: vec![Drive::Dir(dir.path().to_path_buf())],
                record: None,
            }))
            .unwrap();
        let mut seen = Vec::new();
        loop {
            match next() {
                Event::Backup(e @ BackupEvent::Created { .. }) => {
                    seen.push(e);
                    break;
                }
                Event::Backup(e) => seen.push(e),
                other => panic!("{other:?}"),
            }
        }
        // Progress first (one report or more, growing to the whole file), then the read-back
        // verification as its own step, then the result.
        let Some((
            BackupEvent::Created { created, last },
            [before @ .., BackupEvent::Verifying { total }],
        )) = seen.split_last()
        else {
            panic!("{seen:?}")
        };
        let written: Vec<(u64, u64)> = before
            .iter()
            .map(|e| match e {
                BackupEvent::Progress { written, total, .. } => (*written, *total),
                other => panic!("not progress: {other:?}"),
            })
            .collect();
        assert!(!written.is_empty(), "{seen:?}");
        assert!(written.windows(2).all(|w| w[0].0 <= w[1].0), "{written:?}");
        assert_eq!(written.last(), Some(&(*total, *total)));
        assert_eq!(*total, created.bytes);
        assert!(last.is_none(), "no record asked for");
    }

    #[test]
    fn a_backup_is_written_verified_listed_and_restored_after_a_dry_run() {
        let dir = tempfile::tempdir().unwrap();
        let drive = dir.path().join("drive");
        std::fs::create_dir(&drive).unwrap();
        let record = dir.path().join("last-verified-backup.json");
        let mut w = Demo::new(Argon2Params::insecure_for_tests(), true)
            .unwrap()
            .into_worker()
            .unwrap();

        // The directory is offered with its free space.
        let scanned = reports(w.handle(Command::Backup(BackupCommand::Scan {
            dirs: vec![drive.clone(), dir.path().join("gone")],
            devices: Vec::new(),
        })));
        let [BackupEvent::Drives { drives, .. }] = scanned.as_slice() else {
            panic!("{scanned:?}")
        };
        assert_eq!(drives[0].drive, Some(Drive::Dir(drive.clone())));
        assert!(drives[0].free.is_some());
        assert!(drives[1].refused.is_some());

        // Without a login the HSM refuses, and nothing is left on the drive.
        let create = || {
            Command::Backup(BackupCommand::Create {
                drives: vec![Drive::Dir(drive.clone())],
                record: Some(record.clone()),
            })
        };
        let refused = reports(w.handle(create()));
        assert!(
            matches!(refused.as_slice(), [BackupEvent::CreateFailed(_)]),
            "{refused:?}"
        );
        assert_eq!(std::fs::read_dir(&drive).unwrap().count(), 0);
        assert_eq!(LastVerified::read(&record), None);

        pso(&mut w);
        let made = reports(w.handle(create()));
        let [BackupEvent::Created { created, last }] = made.as_slice() else {
            panic!("{made:?}")
        };
        let file = drive.join(&created.file_name);
        assert_eq!(std::fs::metadata(&file).unwrap().len(), created.bytes);
        assert_eq!(created.digest.len(), 64);
        assert!(
            created
                .lines
                .iter()
                .any(|l| l.contains("verified it read back")),
            "{:?}",
            created.lines
        );
        // The dashboard's record: written, and what the event carries.
        let recorded = LastVerified::read(&record).expect("a record");
        assert_eq!(Some(&recorded), last.as_deref());
        assert_eq!(recorded.file, created.file_name);
        assert_eq!(recorded.partition, "demo-partition");
        assert_eq!(recorded.digest, created.digest);

        // Listed with its facts, then verified offline against the pinned key.
        let listed = reports(w.handle(Command::Backup(BackupCommand::List {
            drive: Drive::Dir(drive.clone()),
        })));
        let [
            BackupEvent::Listed { backups, .. },
            BackupEvent::Checked {
                file_name, check, ..
            },
        ] = listed.as_slice()
        else {
            panic!("{listed:?}")
        };
        assert_eq!(backups.len(), 1);
        let facts = backups[0].facts.as_ref().unwrap();
        assert_eq!(
            (facts.partition.as_str(), facts.objects),
            ("demo-partition", 14)
        );
        assert_eq!((file_name, check), (&created.file_name, &Check::Verified));

        // A key purged after the backup: the dry run's diff brings it back.
        let bin = w.handle(Command::Keys(hsm_link::message::KeyQuery::first(
            KeyFilter::Invalidated,
            10,
        )));
        let Some(Event::Keys { keys, .. }) = bin.first() else {
            panic!("{bin:?}")
        };
        let purged = keys[0].id;
        assert!(matches!(
            w.handle(Command::Purge(purged)).as_slice(),
            [Event::Purged { .. }]
        ));
        let ran = reports(w.handle(Command::Backup(BackupCommand::DryRun {
            source: Source::File(file.clone()),
        })));
        let [BackupEvent::Diff(diff)] = ran.as_slice() else {
            panic!("{ran:?}")
        };
        // Named as the PSO knows it: label, id and where it was.
        let returning: Vec<_> = diff
            .returning
            .first
            .iter()
            .map(|k| (k.id, &k.label))
            .collect();
        assert_eq!(returning, vec![(purged, &keys[0].label)]);
        assert!(diff.returning.first[0].in_bin);
        assert_eq!((diff.objects_in_backup, diff.objects_now), (14, 13));
        let done = reports(w.handle(Command::Backup(BackupCommand::Commit(diff.clone()))));
        assert!(
            matches!(done.as_slice(), [BackupEvent::Restored(t)] if t.contains("14 key objects")),
            "{done:?}"
        );

        // One flipped bit: the offline check names the failure, and the HSM refuses its dry run.
        let mut bytes = std::fs::read(&file).unwrap();
        let last_byte = bytes.len() - 1;
        bytes[last_byte] ^= 1;
        let tampered = drive.join("demo-partition_2000-01-01T000000Z_seq000001.tsbk");
        std::fs::write(&tampered, &bytes).unwrap();
        let listed = reports(w.handle(Command::Backup(BackupCommand::List {
            drive: Drive::Dir(drive.clone()),
        })));
        assert!(
            listed.iter().any(|e| matches!(e,
                BackupEvent::Checked { file_name, check: Check::Failed(_), .. }
                    if file_name.starts_with("demo-partition_2000"))),
            "{listed:?}"
        );
        let ran = reports(w.handle(Command::Backup(BackupCommand::DryRun {
            source: Source::File(tampered),
        })));
        assert!(
            matches!(ran.as_slice(), [BackupEvent::RestoreRefused(_)]),
            "{ran:?}"
        );
    }

    /// A worker on its own thread (progress goes out on its events channel), a PSO logged in.
    fn logged_in_thread() -> (
        std::sync::mpsc::Sender<Command>,
        std::sync::mpsc::Receiver<Event>,
    ) {
        let (commands, rx) = std::sync::mpsc::channel();
        let (tx, events) = std::sync::mpsc::channel();
        let demo = Demo::new(Argon2Params::insecure_for_tests(), true).unwrap();
        terminal_app::tui::worker::spawn(move || demo.into_worker(), rx, tx).unwrap();
        assert!(matches!(next(&events), Event::Ready { .. }));
        commands
            .send(Command::Login(LoginCommand::Start(OfficerRole::Pso)))
            .unwrap();
        for (slot, pin) in [(0, "ada-demo-pin"), (1, "ben-demo-pin")] {
            commands
                .send(Command::Login(LoginCommand::Insert(slot)))
                .unwrap();
            commands
                .send(Command::Login(LoginCommand::Verify(Pin::from_slice(
                    pin.as_bytes(),
                ))))
                .unwrap();
        }
        while !matches!(next(&events), Event::Login(LoginEvent::LoggedIn { .. })) {}
        (commands, events)
    }

    fn next(events: &std::sync::mpsc::Receiver<Event>) -> Event {
        events
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("an event")
    }

    /// The backup events up to and including the first that `last` accepts.
    fn until(
        events: &std::sync::mpsc::Receiver<Event>,
        last: impl Fn(&BackupEvent) -> bool,
    ) -> Vec<BackupEvent> {
        let mut seen = Vec::new();
        loop {
            match next(events) {
                Event::Backup(e) => {
                    let done = last(&e);
                    seen.push(e);
                    if done {
                        return seen;
                    }
                }
                other => panic!("{other:?}"),
            }
        }
    }

    /// Device mode: a FAT image offered by a scan, a backup written into its file system in
    /// user space and verified, listed from it and checked, and its restore's upload reported
    /// as it goes (growing to the whole file) before the HSM's diff.
    #[test]
    fn a_backup_goes_to_a_fat_image_and_its_restore_upload_reports_progress() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("drive.img");
        usb_backup::drive::ensure_fat_image(&image, usb_backup::drive::DEMO_IMAGE_LEN).unwrap();
        let fat = Drive::Fat(image.clone());
        let (commands, events) = logged_in_thread();
        let send = |c: BackupCommand| commands.send(Command::Backup(c)).unwrap();

        send(BackupCommand::Scan {
            dirs: Vec::new(),
            devices: vec![image.clone(), dir.path().join("gone.img")],
        });
        let scanned = until(&events, |e| matches!(e, BackupEvent::Drives { .. }));
        let [BackupEvent::Drives { drives, .. }] = scanned.as_slice() else {
            panic!("{scanned:?}")
        };
        assert_eq!(drives[0].drive, Some(fat.clone()));
        assert!(drives[0].label.contains("device mode"));
        assert!(drives[1].refused.is_some());

        send(BackupCommand::Create {
            drives: vec![fat.clone()],
            record: None,
        });
        let made = until(&events, |e| {
            matches!(
                e,
                BackupEvent::Created { .. } | BackupEvent::CreateFailed(_)
            )
        });
        let Some(BackupEvent::Created { created, .. }) = made.last() else {
            panic!("{made:?}")
        };
        assert!(
            created
                .lines
                .iter()
                .any(|l| l.contains("(FAT): stored") && l.contains("verified it read back")),
            "{:?}",
            created.lines
        );

        send(BackupCommand::List { drive: fat.clone() });
        let listed = until(&events, |e| matches!(e, BackupEvent::Checked { .. }));
        let [
            BackupEvent::Listed { backups, .. },
            BackupEvent::Checked { check, .. },
        ] = listed.as_slice()
        else {
            panic!("{listed:?}")
        };
        assert_eq!(backups.len(), 1);
        assert_eq!(backups[0].file_name, created.file_name);
        assert_eq!(*check, Check::Verified);

        send(BackupCommand::DryRun {
            source: Source::Fat {
                device: image.clone(),
                name: created.file_name.clone(),
            },
        });
        let ran = until(&events, |e| {
            matches!(e, BackupEvent::Diff(_) | BackupEvent::RestoreRefused(_))
        });
        let Some((BackupEvent::Diff(diff), uploads)) = ran.split_last() else {
            panic!("{ran:?}")
        };
        assert_eq!(diff.objects_in_backup, 14);
        let sent: Vec<(u64, u64)> = uploads
            .iter()
            .map(|e| match e {
                BackupEvent::Uploading { sent, total, .. } => (*sent, *total),
                other => panic!("not upload progress: {other:?}"),
            })
            .collect();
        assert!(!sent.is_empty(), "{ran:?}");
        assert!(sent.windows(2).all(|w| w[0].0 <= w[1].0), "{sent:?}");
        assert_eq!(sent.last(), Some(&(created.bytes, created.bytes)));
    }
}
