//! A restore interrupted by a crash of the real `tessera-hsm` process: the partition holds
//! keys A, a backup of A is taken, the partition moves on to keys B, and a restore of the
//! backup is committed while the test kills the process (SIGKILL). The swap window is hit on
//! purpose: the test build of the HSM (the `test-support` feature, never in a release build)
//! marks the moment inside the swap's transaction, after the old keys were deleted and the
//! backup's stored, and waits there, and the test kills it at that mark. More kills land at
//! moments after the commit request without a pause. After each kill the restarted HSM holds
//! exactly B or exactly A (never a mix), its store and log verify (`tessera-hsm check`), and
//! the log holds the restore's entry exactly when the keys are A's.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hsm_link::client::{self, ConnectOptions};
use hsm_link::domain::{CardSetKind, KeyAttributes, KeyId, KeyKind, KeyLabel, PartitionId};
use hsm_link::handshake::client::ClientMode;
use hsm_link::keys::StaticKeypair;
use hsm_link::message::{
    AdminRequest, AdminResponse, CeremonyKind, MAX_RESTORE_CHUNK, OfficerRole, RecoveryPublic,
    Request, Response,
};
use hsm_link::pairing::PairingCode;
use hsm_link::transport::StreamTransport;

/// The admin link over TCP.
type Tcp = StreamTransport<TcpStream, hsm_link::frame::LengthPrefixed>;
use partition_service::access::ApiProvider;
use partition_service::app_link::{AppConnection, AppRequest, AppResponse};
use partition_service::service::{Clock, Hsm};
use partition_service::store::Store;
use tessera_tests::partition::{Card, Terminal, card_set, recovery};

const BIN: &str = env!("CARGO_BIN_EXE_tessera-hsm");

fn run(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("--data")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `tessera-hsm serve` with the admin link on loopback TCP; the swap pause armed when `mark`
/// is given.
fn serve(dir: &Path, mark: Option<&Path>) -> (Child, SocketAddr) {
    let mut command = Command::new(BIN);
    command
        .arg("--data")
        .arg(dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(mark) = mark {
        command
            .env("TESSERA_TEST_SWAP_MARK", mark)
            .env("TESSERA_TEST_SWAP_PAUSE_MS", "30000");
    }
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("tessera-hsm reports its listener")
            .unwrap();
        if let Some(a) = line.strip_prefix("admin link on ") {
            break a.parse().unwrap();
        }
    };
    (child, addr)
}

fn connect(
    addr: SocketAddr,
    key: &StaticKeypair,
    partition: &PartitionId,
    mode: ClientMode,
) -> Terminal<Tcp> {
    let t = StreamTransport::tcp(TcpStream::connect(addr).unwrap()).unwrap();
    let conn = client::connect(t, key, partition.clone(), mode, ConnectOptions::default()).unwrap();
    let copy = StaticKeypair::from_secret(zeroize::Zeroizing::new(*key.secret_bytes()));
    Terminal::over(conn, copy, partition.clone())
}

/// Runs application requests in process (the HSM not serving): keys made and deleted, each
/// logged as the application's would be.
fn with_app(
    dir: &Path,
    partition: &PartitionId,
    f: impl FnOnce(&mut dyn FnMut(AppRequest) -> AppResponse),
) {
    let hsm = Hsm::open(dir, Clock::system()).unwrap();
    let record = hsm.partition(partition).unwrap();
    let mut connection = AppConnection {
        session_objects: Default::default(),
        credentials_epoch: record.credentials.epoch,
    };
    let mut call = |request| {
        hsm.app_execute(
            &mut connection,
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            partition,
            ApiProvider::Jce,
            request,
        )
        .unwrap()
    };
    f(&mut call);
}

fn generate(call: &mut dyn FnMut(AppRequest) -> AppResponse, n: usize, prefix: &str) {
    for i in 0..n {
        let request = AppRequest::Generate {
            kind: if i % 2 == 0 {
                KeyKind::Aes256
            } else {
                KeyKind::Ed25519
            },
            label: KeyLabel::new(format!("{prefix}-{i}")).unwrap(),
            attributes: KeyAttributes {
                extractable: false,
                sensitive: true,
                modifiable: true,
            },
            session: false,
        };
        assert!(matches!(call(request), AppResponse::Key(_)));
    }
}

/// What a restore may change, as the store holds it: every key's id, label and state.
type Keys = BTreeSet<(u64, String, String)>;

/// The partition's keys and whether its log holds a restore, read from the store the killed
/// process left (after `tessera-hsm check` verified it, every log chain and checkpoint).
fn state(dir: &Path, partition: &PartitionId) -> (Keys, bool) {
    let check = run(dir, &["check"]);
    assert!(check.contains("store consistent"), "{check}");
    let store = Store::open(dir).unwrap();
    store
        .read(|tx| {
            let (records, more) = tx.keys(partition, None, 100_000, |_| true)?;
            assert!(!more);
            let keys = records
                .iter()
                .map(|k| {
                    let s = &k.summary;
                    (s.id.0, s.label.to_string(), format!("{:?}", s.state))
                })
                .collect();
            let mut restored = false;
            tx.log_lines(partition, 0, |_, line, _| {
                restored |= String::from_utf8_lossy(line).contains("backup.restore");
                true
            })?;
            Ok::<_, partition_service::store::StoreError>((keys, restored))
        })
        .unwrap()
}

fn upload(t: &mut Terminal<Tcp>, file: &[u8]) {
    let header = usb_backup::Header::read_from(&mut std::io::Cursor::new(file)).unwrap();
    let header_len = header.layout().header_len as usize;
    t.admin(AdminRequest::RestoreBegin {
        file_len: file.len() as u64,
        header: file[..header_len].to_vec(),
    })
    .unwrap();
    for piece in file[header_len..].chunks(MAX_RESTORE_CHUNK) {
        t.admin(AdminRequest::RestoreChunk {
            bytes: piece.to_vec(),
        })
        .unwrap();
    }
}

#[test]
fn killing_the_hsm_during_a_restores_swap_leaves_the_old_or_the_restored_partition() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    Command::new(BIN).arg("init").arg(data).output().unwrap();
    run(
        data,
        &[
            "partition",
            "create",
            "p1",
            "--name",
            "Crash",
            "--tier",
            "economy",
        ],
    );
    run(data, &["soft-cards", "allow"]);
    let code = run(data, &["pairing-code", "p1"])
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .to_string();
    let partition = PartitionId::new("p1").unwrap();
    with_app(data, &partition, |call| generate(call, 120, "a"));

    // Pair, enrol the PSOs (a real X-Wing quorum key), log in, take the backup of A.
    let terminal = StaticKeypair::generate().unwrap();
    let cards = [
        Card::new("Alice Meier", "A-1"),
        Card::new("Bruno Rossi", "B-2"),
    ];
    let (mut child, addr) = serve(data, None);
    let mut t = connect(
        addr,
        &terminal,
        &partition,
        ClientMode::Pairing(PairingCode::parse(&code).unwrap()),
    );
    let hsm_key = t.conn.session().remote_key();
    let set = card_set(CardSetKind::Pso, 1, 2, &[&cards[0], &cards[1]]);
    let quorum = RecoveryPublic {
        backup_public_key: usb_backup::fuzzing::quorum_public_key(),
        commitments: recovery().commitments,
    };
    t.register(CeremonyKind::Enrol, set, Some(quorum)).unwrap();
    t.login(OfficerRole::Pso, &[&cards[0], &cards[1]]).unwrap();
    let mut file = Vec::new();
    let done = t
        .conn
        .call_download(Request::Admin(AdminRequest::CreateBackup), &mut file)
        .unwrap();
    assert!(matches!(
        done,
        Response::Admin(AdminResponse::BackupDone { .. })
    ));
    let _ = t.conn.close();
    child.kill().unwrap();
    child.wait().unwrap();
    let (keys_a, _) = state(data, &partition);

    // The partition moves on: some of A deleted, more keys made.
    with_app(data, &partition, |call| {
        for id in (1..=120).step_by(3) {
            assert!(matches!(
                call(AppRequest::Delete { id: KeyId(id) }),
                AppResponse::Deleted { .. }
            ));
        }
        generate(call, 60, "b");
    });
    let (keys_b, restored) = state(data, &partition);
    assert!(!restored && keys_b != keys_a);

    let mark = dir.path().join("swap-mark");
    // The first kill at the mark inside the swap; then kills at moments after the commit.
    let moments: [Option<u64>; 7] = [None, Some(0), Some(1), Some(3), Some(8), Some(20), Some(60)];
    let mut seen_a = false;
    for (round, moment) in moments.iter().enumerate() {
        let _ = std::fs::remove_file(&mark);
        let (mut child, addr) = serve(data, moment.is_none().then_some(mark.as_path()));
        let mut t = connect(
            addr,
            &terminal,
            &partition,
            ClientMode::Pinned { hsm: hsm_key },
        );
        t.login(OfficerRole::Pso, &[&cards[0], &cards[1]]).unwrap();
        upload(&mut t, &file);
        let Ok(AdminResponse::RestoreDiff(diff)) = t.admin(AdminRequest::RestoreDryRun) else {
            panic!("round {round}: no dry run")
        };
        let request = Request::Admin(AdminRequest::RestoreCommit {
            header_hash: diff.header_hash,
        });
        let committing = std::thread::spawn(move || {
            let _ = t.conn.call(request);
        });
        match moment {
            None => {
                let deadline = Instant::now() + Duration::from_secs(30);
                while !mark.exists() {
                    assert!(Instant::now() < deadline, "the swap was never reached");
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            Some(ms) => std::thread::sleep(Duration::from_millis(*ms)),
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let _ = committing.join();

        let (keys, restored) = state(data, &partition);
        if moment.is_none() {
            assert_eq!(
                keys, keys_b,
                "killed inside the swap: the partition changed"
            );
        }
        assert!(
            keys == keys_b || keys == keys_a,
            "round {round}: a mix of the old and the restored keys"
        );
        assert_eq!(
            restored,
            keys == keys_a,
            "round {round}: the log and the keys disagree"
        );
        if keys == keys_a {
            seen_a = true;
            break;
        }
    }
    eprintln!("restored in a later round: {seen_a}");
}
