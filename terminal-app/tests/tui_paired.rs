//! The TUI against a paired HSM, without one: the chooser `tessera` opens with (its keys and
//! its screens, empty and with partitions), the first screen of a paired partition (connecting,
//! link lost and connecting again on a key), a session ended by removing a card that signed the
//! login, and the paired terminals screen (list, revoke with a typed confirmation, a pairing
//! code shown once). Screens are snapshots at 80×24 and 160×48, as in `tui_screens.rs`.

use hsm_link::domain::{
    CardDescription, CardSerial, HolderName, PartitionConfig, PartitionId, PartitionUsage,
    ServiceTier,
};
use hsm_link::keys::{Fingerprint, PublicKey};
use hsm_link::message::{FullLogPolicy, LogStatus, OfficerRole, TerminalInfo};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use terminal_app::flows::credentials::ShownOnce;
use terminal_app::flows::terminals::{TerminalsCommand, TerminalsEvent};
use terminal_app::state::{PairedList, PairedPartition};
use terminal_app::tui::chooser::{Choice, Chooser};
use terminal_app::tui::message::{
    CardView, Command, Effect, Event, LoginEvent, Message, SlotView, StatusView,
};
use terminal_app::tui::model::{LinkState, Model, Screen};
use terminal_app::tui::paired::{self, PairedSession};
use terminal_app::tui::pcsc_reader::ReaderReport;
use terminal_app::tui::theme::Theme;
use terminal_app::tui::update::update;
use terminal_app::tui::view::view;

fn entry(name: &str, port: u16, key: u8, last_seen: Option<u64>) -> PairedPartition {
    PairedPartition {
        name: name.to_owned(),
        address: format!("tcp:127.0.0.1:{port}").parse().unwrap(),
        partition: PartitionId::new("p1").unwrap(),
        hsm_key: PublicKey([key; 32]),
        audit_key: None,
        paired_unix: 1_796_376_600,
        last_seen_unix: last_seen,
    }
}

fn list() -> PairedList {
    let mut list = PairedList::default();
    list.upsert(entry("payments", 7700, 7, Some(1_796_380_200)))
        .unwrap();
    list.upsert(entry("archive", 7701, 9, None)).unwrap();
    list
}

fn press(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn draw(width: u16, height: u16, f: impl FnOnce(&mut ratatui::Frame)) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(f).unwrap();
    terminal.backend().to_string()
}

fn screens(name: &str, model: &Model) {
    let theme = Theme::monochrome();
    insta::assert_snapshot!(
        format!("{name}_80x24"),
        draw(80, 24, |f| view(f, model, &theme))
    );
    insta::assert_snapshot!(
        format!("{name}_160x48"),
        draw(160, 48, |f| view(f, model, &theme))
    );
    // Smaller than usable: no panic.
    draw(40, 12, |f| view(f, model, &theme));
}

fn chooser_screens(name: &str, chooser: &Chooser) {
    let theme = Theme::monochrome();
    let draw_at = |w, h| {
        draw(w, h, |f| {
            terminal_app::tui::chooser::view(f, chooser, &theme)
        })
    };
    insta::assert_snapshot!(format!("{name}_80x24"), draw_at(80, 24));
    insta::assert_snapshot!(format!("{name}_160x48"), draw_at(160, 48));
    draw_at(40, 12);
}

#[test]
fn the_chooser_lists_the_paired_partitions_and_opens_the_one_chosen() {
    let mut chooser = Chooser::new(&list());
    chooser_screens("chooser", &chooser);
    let screen = draw(80, 24, |f| {
        terminal_app::tui::chooser::view(f, &chooser, &Theme::monochrome())
    });
    assert!(screen.contains("payments"), "{screen}");
    assert!(
        screen.contains(&PublicKey([7; 32]).fingerprint().to_string()),
        "{screen}"
    );
    assert!(screen.contains("seen never"), "{screen}");

    assert_eq!(chooser.on_key(press(KeyCode::Down)), Choice::Stay);
    assert_eq!(chooser.selected, 1);
    assert_eq!(chooser.on_key(press(KeyCode::Char('j'))), Choice::Stay);
    assert_eq!(chooser.selected, 1, "the selection stops at the last row");
    assert_eq!(chooser.on_key(press(KeyCode::Enter)), Choice::Open(1));
    assert_eq!(chooser.on_key(press(KeyCode::Char('1'))), Choice::Open(0));
    assert_eq!(chooser.on_key(press(KeyCode::Char('3'))), Choice::Stay);
    assert_eq!(chooser.on_key(press(KeyCode::Char('q'))), Choice::Quit);
    assert_eq!(chooser.on_key(press(KeyCode::Esc)), Choice::Quit);
}

#[test]
fn with_nothing_paired_the_chooser_says_how_to_pair_or_try_the_demo() {
    let mut chooser = Chooser::new(&PairedList::default());
    chooser_screens("chooser_empty", &chooser);
    let screen = draw(80, 24, |f| {
        terminal_app::tui::chooser::view(f, &chooser, &Theme::monochrome())
    });
    assert!(screen.contains("tessera pair --tcp HOST:PORT"), "{screen}");
    assert!(screen.contains("tessera demo"), "{screen}");
    assert_eq!(chooser.on_key(press(KeyCode::Enter)), Choice::Stay);
    assert_eq!(chooser.on_key(press(KeyCode::Char('q'))), Choice::Quit);
}

/// A model for the paired partition `payments`, as `tessera open payments` starts it.
fn paired_model() -> Model {
    let mut model = Model::new(
        paired::target(&entry("payments", 7700, 7, None)),
        Vec::new(),
    );
    model.paired = PairedSession {
        reconnect: true,
        end_on_card_removal: true,
        ..PairedSession::default()
    };
    model
}

fn send(model: &mut Model, message: Message) -> Vec<Effect> {
    update(model, message)
}

fn key(model: &mut Model, code: KeyCode) -> Vec<Effect> {
    send(model, Message::Key(press(code)))
}

fn event(model: &mut Model, event: Event) -> Vec<Effect> {
    send(model, Message::Worker(event))
}

fn smartcard(holder: &str, serial: &str) -> CardView {
    CardView {
        holder: Some(holder.into()),
        serial: serial.into(),
        soft: false,
        tries_left: Some(3),
    }
}

fn readers(present: &[&str]) -> ReaderReport {
    ReaderReport {
        slots: vec![
            SlotView {
                label: "Reader 0 · card FFFF:00000001 (Ada Card) · 3 tries left".into(),
            },
            SlotView {
                label: "Reader 1 · card FFFF:00000002 (Ben Card) · 3 tries left".into(),
            },
        ],
        present: present.iter().map(|s| (*s).to_owned()).collect(),
    }
}

/// Logged in as PSO with Ada's and Ben's smartcards, both still in their readers.
fn logged_in_with_cards(end_on_removal: bool) -> Model {
    let mut m = paired_model();
    m.paired.end_on_card_removal = end_on_removal;
    event(&mut m, Event::Ready { slots: Vec::new() });
    event(
        &mut m,
        Event::Readers(readers(&["FFFF:00000001", "FFFF:00000002"])),
    );
    key(&mut m, KeyCode::Char('1'));
    let set: Vec<CardDescription> = [("Ada Card", "FFFF:00000001"), ("Ben Card", "FFFF:00000002")]
        .iter()
        .enumerate()
        .map(|(i, (holder, serial))| CardDescription {
            holder: HolderName::new(*holder).unwrap(),
            serial: CardSerial::new(*serial).unwrap(),
            signing_key: [i as u8 + 1; 32],
            soft_card: false,
        })
        .collect();
    event(
        &mut m,
        Event::Login(LoginEvent::Started {
            role: OfficerRole::Pso,
            threshold: 2,
            cards: set,
        }),
    );
    for (i, (holder, serial)) in [("Ada Card", "FFFF:00000001"), ("Ben Card", "FFFF:00000002")]
        .iter()
        .enumerate()
    {
        event(
            &mut m,
            Event::Login(LoginEvent::Signed {
                card: smartcard(holder, serial),
                have: i + 1,
                need: 2,
            }),
        );
    }
    event(
        &mut m,
        Event::Login(LoginEvent::LoggedIn {
            role: OfficerRole::Pso,
            holders: vec![
                HolderName::new("Ada Card").unwrap(),
                HolderName::new("Ben Card").unwrap(),
            ],
            log_warning: None,
        }),
    );
    assert_eq!(m.screen, Screen::Dashboard);
    m
}

#[test]
fn removing_a_card_that_signed_the_login_ends_the_session() {
    let mut m = logged_in_with_cards(true);
    assert_eq!(
        m.paired.watched,
        ["FFFF:00000001".to_owned(), "FFFF:00000002".to_owned()]
    );
    // A change that leaves both cards in: nothing happens.
    let effects = event(
        &mut m,
        Event::Readers(readers(&["FFFF:00000001", "FFFF:00000002"])),
    );
    assert!(effects.is_empty());
    assert!(m.session.is_some());
    // Ben's card leaves its reader: the session ends at the HSM, and the screen says why.
    let effects = event(&mut m, Event::Readers(readers(&["FFFF:00000001"])));
    assert_eq!(
        effects,
        vec![Effect::PinClear, Effect::Send(Command::Logout)]
    );
    assert!(m.session.is_none());
    assert_eq!(m.screen, Screen::Welcome);
    let notice = m.notice.clone().unwrap();
    assert!(
        notice.text.contains("FFFF:00000002 was removed"),
        "{notice:?}"
    );
    screens("paired_card_removed", &m);
}

#[test]
fn the_configuration_can_keep_the_session_when_a_card_leaves() {
    let mut m = logged_in_with_cards(false);
    let effects = event(&mut m, Event::Readers(readers(&[])));
    assert!(effects.is_empty());
    assert!(m.session.is_some());
    assert_eq!(m.login.slots.len(), 2, "the slots follow the readers");
}

#[test]
fn a_lost_link_ends_the_session_and_a_key_connects_again() {
    let mut m = paired_model();
    screens("paired_connecting", &m);
    let mut m2 = logged_in_with_cards(true);
    event(
        &mut m2,
        Event::LinkLost("the HSM closed the connection".into()),
    );
    assert!(m2.session.is_none(), "the session ended with the link");
    assert_eq!(m2.screen, Screen::Welcome);
    screens("paired_link_lost", &m2);
    let effects = key(&mut m2, KeyCode::Enter);
    assert_eq!(effects, vec![Effect::Send(Command::Reconnect)]);
    assert_eq!(m2.link, LinkState::Connecting);
    event(&mut m2, Event::Ready { slots: Vec::new() });
    assert_eq!(m2.link, LinkState::Up);
    // The demo cannot connect again: Enter does not ask for it.
    m.paired.reconnect = false;
    event(&mut m, Event::LinkLost("gone".into()));
    assert!(!key(&mut m, KeyCode::Enter).contains(&Effect::Send(Command::Reconnect)));
}

fn terminal(first: u8, this_session: bool, last_seen: Option<u64>) -> TerminalInfo {
    let mut fp = [0x11u8; 32];
    fp[0] = first;
    TerminalInfo {
        fingerprint: Fingerprint(fp),
        paired_unix: Some(1_796_376_600),
        last_seen_unix: last_seen,
        this_session,
    }
}

#[test]
fn the_terminals_screen_lists_revokes_and_issues_a_code() {
    let mut m = logged_in_with_cards(true);
    m.notice = None;
    key(&mut m, KeyCode::Char('9'));
    assert_eq!(m.screen, Screen::Credentials);
    let effects = key(&mut m, KeyCode::Char('t'));
    assert_eq!(m.screen, Screen::Terminals);
    assert_eq!(
        effects,
        vec![Effect::Send(Command::Terminals(TerminalsCommand::List))]
    );
    let other = terminal(0xcd, false, None);
    event(
        &mut m,
        Event::Terminals(TerminalsEvent::Listed(vec![
            terminal(0xab, true, Some(1_796_380_200)),
            other,
        ])),
    );
    screens("terminals_list", &m);

    // This terminal: refused, saying why.
    key(&mut m, KeyCode::Char('v'));
    let shown = m.terminals.notice.clone().unwrap().text;
    assert!(shown.contains("That is this terminal"), "{shown}");

    // Another: its first group typed.
    key(&mut m, KeyCode::Down);
    key(&mut m, KeyCode::Char('v'));
    for c in "cd11".chars() {
        key(&mut m, KeyCode::Char(c));
    }
    screens("terminals_revoke_confirm", &m);
    let effects = key(&mut m, KeyCode::Enter);
    assert_eq!(
        effects,
        vec![Effect::Send(Command::Terminals(TerminalsCommand::Revoke(
            other.fingerprint
        )))]
    );
    event(
        &mut m,
        Event::Terminals(TerminalsEvent::Revoked(other.fingerprint)),
    );

    event(
        &mut m,
        Event::Terminals(TerminalsEvent::Listed(vec![terminal(
            0xab,
            true,
            Some(1_796_380_200),
        )])),
    );
    assert_eq!(m.terminals.terminals.len(), 1);

    // A pairing code, shown once, gone after leaving.
    let effects = key(&mut m, KeyCode::Char('N'));
    assert_eq!(
        effects,
        vec![Effect::Send(Command::Terminals(
            TerminalsCommand::PairingCode
        ))]
    );
    event(
        &mut m,
        Event::Terminals(TerminalsEvent::Code(ShownOnce::new(
            "7KQ2-M9XD-4HTR-WC3P-8".into(),
        ))),
    );
    screens("terminals_code", &m);
    key(&mut m, KeyCode::Esc);
    assert_eq!(m.screen, Screen::Credentials);
    assert!(m.terminals.code.is_none());
}

/// A link that answers the terminals requests, and refuses nothing else it is asked.
struct FakeLink {
    partition: PartitionId,
}

impl quorum::ceremony::Link for FakeLink {
    fn admin(
        &mut self,
        request: hsm_link::message::AdminRequest,
    ) -> Result<hsm_link::message::AdminResponse, quorum::ceremony::LinkError> {
        use hsm_link::message::{AdminRequest, AdminResponse};
        match request {
            AdminRequest::ListTerminals => Ok(AdminResponse::Terminals {
                terminals: vec![terminal(0xab, true, None)],
            }),
            _ => Err(quorum::ceremony::LinkError::Unexpected),
        }
    }

    fn channel_binding(&self) -> [u8; 32] {
        [0; 32]
    }

    fn partition(&self) -> &PartitionId {
        &self.partition
    }
}

/// A reader whose card leaves after the first poll.
struct FakeReader {
    polls: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl terminal_app::tui::worker::CardReader for FakeReader {
    fn slots(&self) -> Vec<SlotView> {
        vec![SlotView {
            label: "Reader 0 · card FFFF:00000001 (Ada Card)".into(),
        }]
    }

    fn insert(
        &mut self,
        _slot: usize,
    ) -> Result<Box<dyn terminal_app::tui::worker::InsertedCard>, String> {
        Err("no card".into())
    }

    fn poll(&mut self) -> Option<ReaderReport> {
        let n = self.polls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        (n == 0).then(|| ReaderReport {
            slots: vec![SlotView {
                label: "Reader 0 · no card".into(),
            }],
            present: Vec::new(),
        })
    }

    fn report(&self) -> Option<ReaderReport> {
        Some(ReaderReport {
            slots: self.slots(),
            present: vec!["FFFF:00000001".into()],
        })
    }
}

#[test]
fn the_worker_reports_reader_events_and_opens_a_lost_link_again() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;
    use terminal_app::tui::worker::{self, Worker};

    let link = || {
        Box::new(FakeLink {
            partition: PartitionId::new("p1").unwrap(),
        }) as Box<dyn quorum::ceremony::Link + Send>
    };
    let polls = Arc::new(AtomicUsize::new(0));
    let reconnects = Arc::new(AtomicUsize::new(0));
    let (reader_polls, counted) = (Arc::clone(&polls), Arc::clone(&reconnects));
    let key = audit_log::AuditSigner::from_secret_bytes(&[7; 32]).public();
    let (commands, command_rx) = std::sync::mpsc::channel();
    let (event_tx, events) = std::sync::mpsc::channel();
    worker::spawn(
        move || {
            let reader = FakeReader {
                polls: reader_polls,
            };
            Ok(
                Worker::new(link(), Box::new(reader), key).with_reconnect(Box::new(move || {
                    counted.fetch_add(1, Ordering::SeqCst);
                    Ok(link())
                })),
            )
        },
        command_rx,
        event_tx,
    )
    .unwrap();
    let next = || events.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(matches!(next(), Event::Ready { .. }));
    // At once: which cards are in a reader (a login may follow before any change).
    match next() {
        Event::Readers(report) => assert_eq!(report.present, ["FFFF:00000001"]),
        other => panic!("expected the readers' state, got {other:?}"),
    }
    // No command for a while: the reader is polled, and its change reported once.
    match next() {
        Event::Readers(report) => {
            assert_eq!(report.slots[0].label, "Reader 0 · no card");
            assert!(report.present.is_empty());
        }
        other => panic!("expected a reader event, got {other:?}"),
    }
    commands.send(Command::Reconnect).unwrap();
    match next() {
        Event::Ready { slots } => assert_eq!(slots.len(), 1),
        other => panic!("expected the link up again, got {other:?}"),
    }
    assert_eq!(reconnects.load(Ordering::SeqCst), 1);
    commands
        .send(Command::Terminals(TerminalsCommand::List))
        .unwrap();
    match next() {
        Event::Terminals(TerminalsEvent::Listed(list)) => assert!(list[0].this_session),
        other => panic!("expected the terminals, got {other:?}"),
    }
    // An answer the screen cannot use is shown there (the screen stops waiting).
    commands
        .send(Command::Terminals(TerminalsCommand::PairingCode))
        .unwrap();
    match next() {
        Event::Terminals(TerminalsEvent::Refused(why)) => assert!(why.contains("unexpected")),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(polls.load(Ordering::SeqCst) >= 1);
}

#[test]
fn the_configuration_names_the_soft_card_directory_and_the_removal_policy() {
    use terminal_app::config::{Origin, TerminalConfig};
    let path = std::path::Path::new("tessera.toml");
    let defaults = TerminalConfig::parse("version = 1\n", path, Origin::Flag).unwrap();
    assert_eq!(defaults.cards.soft_card_dir, None);
    assert!(
        !defaults.cards.keep_session_on_card_removal,
        "by default a removed card ends the session"
    );
    let set = TerminalConfig::parse(
        "version = 1\n[cards]\nallow_soft_cards = true\nsoft_card_dir = \"/srv/cards\"\n\
         keep_session_on_card_removal = true\n",
        path,
        Origin::Flag,
    )
    .unwrap();
    assert_eq!(
        set.cards.soft_card_dir.as_deref(),
        Some(std::path::Path::new("/srv/cards"))
    );
    assert!(set.cards.keep_session_on_card_removal);
    let e = TerminalConfig::parse(
        "version = 1\n[cards]\nkeep_session_on_card_removal = \"no\"\n",
        path,
        Origin::Flag,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("cards.keep_session_on_card_removal"), "{e}");
}

#[test]
fn without_a_terminal_tessera_open_says_so_and_tessera_lists() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .args(args)
            .env_remove("TESSERA_CONFIG")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let out = run(&["open", "pay"]);
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("needs a terminal"), "{e}");
    let out = run(&[]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("tessera pair --tcp HOST:PORT"));
}

#[test]
fn the_worker_speaks_to_a_paired_tessera_hsm_over_a_serial_line_and_reconnects() {
    use std::io::Write as _;
    use std::path::Path;
    use terminal_app::tui::worker::Worker;
    use tessera_tests::hsm_process::{HsmDir, tessera_hsm};

    let tessera = env!("CARGO_BIN_EXE_tessera");
    let line = tessera_tests::SocatPair::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let hsm = HsmDir::init(
        tessera_hsm(Path::new(tessera), &workspace),
        dir.path().join("hsm"),
    );
    hsm.run(&[
        "partition",
        "create",
        "p1",
        "--name",
        "Payments",
        "--tier",
        "economy",
    ]);
    let (code, _) = hsm.pairing_code("p1");
    let _serving = hsm.serve_serial(line.b_str());
    let state = dir.path().join("state");
    let config = dir.path().join("tessera.toml");
    std::fs::write(&config, "version = 1\n").unwrap();
    let mut child = std::process::Command::new(tessera)
        .arg("--state-dir")
        .arg(&state)
        .arg("--config")
        .arg(&config)
        .args(["pair", "--serial", line.a_str(), "--partition", "p1"])
        .env_remove("TESSERA_CONFIG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    write!(child.stdin.take().unwrap(), "{code}\nyes\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let entry = terminal_app::state::StateDir::open(&state)
        .unwrap()
        .paired()
        .unwrap()
        .get("p1")
        .unwrap()
        .clone();

    let connect = paired::connector(state.clone(), entry);
    let reader = FakeReader {
        polls: Default::default(),
    };
    let key = audit_log::AuditSigner::from_secret_bytes(&[7; 32]).public();
    let mut worker =
        Worker::new(connect().unwrap(), Box::new(reader), key).with_reconnect(Box::new(connect));
    // The HSM's own answer over the line: the list needs an officer login.
    let answer = |worker: &mut Worker| match worker
        .handle(Command::Terminals(TerminalsCommand::List))
        .pop()
    {
        Some(Event::Terminals(TerminalsEvent::Refused(why))) => why,
        other => panic!("expected the HSM's refusal, got {other:?}"),
    };
    assert!(answer(&mut worker).contains("needs an officer login"));
    // A new session on the same line replaces the old one.
    let events = worker.handle(Command::Reconnect);
    assert!(
        matches!(events.as_slice(), [Event::Ready { .. }]),
        "{events:?}"
    );
    assert!(answer(&mut worker).contains("needs an officer login"));
}

/// The status the HSM answers: a Platinum partition on the HSM whose identity key is `[9; 32]`.
fn status_with_tier() -> StatusView {
    let config = PartitionConfig::for_tier(ServiceTier::Platinum);
    StatusView {
        usage: PartitionUsage {
            bytes_used: 2_000_000,
            objects_used: 12,
            invalidated_objects: 2,
        },
        config,
        log_head: Some(40),
        last_checkpoint: Some(38),
        log_space: None,
        log_status: Some(LogStatus {
            entries: 40,
            unexported: 40,
            confirmed_up_to: None,
            last_seq: Some(40),
            capacity: 1_016,
            reserve: 16,
            when_full: FullLogPolicy::Refuse,
            hsm_key: PublicKey([9; 32]),
            tier: ServiceTier::Platinum,
        }),
    }
}

#[test]
fn the_dashboard_shows_the_hsm_id_and_tier_the_status_reports() {
    let mut m = logged_in_with_cards(true);
    // Before the status, a paired HSM's target knows only its address.
    assert_eq!(m.target.hsm_id, "at tcp:127.0.0.1:7700");
    assert_eq!(m.target.tier, "not read yet");
    event(&mut m, Event::Status(Box::new(status_with_tier())));
    let id = PublicKey([9; 32]).hsm_id();
    assert_eq!(m.target.hsm_id, id);
    assert_eq!(m.target.tier, "platinum");
    let shown = draw(160, 48, |f| view(f, &m, &Theme::monochrome()));
    assert!(
        shown.contains(&format!("HSM {id} · tier platinum")),
        "{shown}"
    );
    screens("paired_dashboard_status", &m);
}
