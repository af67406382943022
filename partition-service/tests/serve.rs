//! The real `tessera-hsm`: init, partition create, pairing code, then `serve` with the admin
//! link on TCP and on a serial line (a socat pseudo-terminal pair), reached by a terminal-side
//! client that pairs over TCP and resumes over the serial line with the pinned keys.

mod common;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use hsm_link::client::{self, ConnectOptions};
use hsm_link::domain::PartitionId;
use hsm_link::handshake::client::ClientMode;
use hsm_link::keys::StaticKeypair;
use hsm_link::message::{AdminRequest, AdminResponse, Request, Response};
use hsm_link::pairing::PairingCode;
use hsm_link::transport::StreamTransport;
use tessera_tests::SocatPair;

const BIN: &str = env!("CARGO_BIN_EXE_tessera-hsm");

fn run(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn init_create_and_serve_over_tcp_and_a_serial_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let init = run(&["init", data]);
    assert!(init.contains("not a certified HSM"));
    run(&[
        "--data",
        data,
        "partition",
        "create",
        "p1",
        "--name",
        "Payments",
        "--tier",
        "economy",
    ]);
    let issued = run(&["--data", data, "pairing-code", "p1"]);
    let code = issued.lines().nth(1).unwrap().trim().to_string();
    let hsm_fingerprint = issued
        .lines()
        .nth(2)
        .unwrap()
        .split(": ")
        .nth(1)
        .unwrap()
        .to_string();

    let line = SocatPair::start().unwrap();
    let mut child = Command::new(BIN)
        .args([
            "--data",
            data,
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--serial",
            line.b_str(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = Killed(child);
    let mut lines = BufReader::new(stdout).lines();
    let mut admin: Option<SocketAddr> = None;
    let mut serial_ready = false;
    while admin.is_none() || !serial_ready {
        let l = lines
            .next()
            .expect("tessera-hsm reports its listeners")
            .unwrap();
        if let Some(a) = l.strip_prefix("admin link on serial line ") {
            assert_eq!(a, line.b_str());
            serial_ready = true;
        } else if let Some(a) = l.strip_prefix("admin link on ") {
            admin = Some(a.parse().unwrap());
        }
    }

    let partition = PartitionId::new("p1").unwrap();
    let terminal = StaticKeypair::generate().unwrap();
    let t = StreamTransport::tcp(TcpStream::connect(admin.unwrap()).unwrap()).unwrap();
    let conn = client::connect(
        t,
        &terminal,
        partition.clone(),
        ClientMode::Pairing(PairingCode::parse(&code).unwrap()),
        ConnectOptions::default(),
    )
    .unwrap();
    let pinned = conn.session().remote_key();
    assert_eq!(
        pinned.fingerprint().to_string(),
        hsm_fingerprint,
        "the fingerprint shown by tessera-hsm"
    );
    conn.close().unwrap();

    let options = ConnectOptions {
        handshake_timeout: Duration::from_secs(5),
        ..ConnectOptions::default()
    };
    let t = StreamTransport::open_serial(line.a_str(), 115_200).unwrap();
    let mut conn = client::connect(
        t,
        &terminal,
        partition,
        ClientMode::Pinned { hsm: pinned },
        options,
    )
    .unwrap();
    // Not logged in: the HSM answers with a typed refusal, over the serial line.
    match conn.call(Request::Admin(AdminRequest::GetConfig)) {
        Err(hsm_link::Error::Remote(e)) => {
            assert!(e.to_string().contains("needs an officer login"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(conn.call(Request::Ping).unwrap(), Response::Pong);
    conn.close().unwrap();
    drop(child);
    let _ = AdminResponse::Done;

    // The store the real process wrote verifies.
    let check = run(&["--data", data, "check"]);
    assert!(check.contains("store consistent: 1 partitions"), "{check}");
    assert!(check.contains("log entries verified"));
}

#[test]
fn soft_cards_show_names_the_sets_that_still_hold_soft_cards() {
    // A partition whose PSO set (test cards, labelled soft) was registered while allowed.
    let (f, t, _cards) = common::with_psos(hsm_link::domain::ServiceTier::Economy);
    t.close();
    let common::Fixture { dir, hsm, .. } = f;
    drop(hsm);
    let data = dir.path().to_str().unwrap();
    let shown = run(&["--data", data, "soft-cards", "refuse"]);
    assert!(shown.contains("soft cards refused"), "{shown}");
    assert!(
        shown.contains("partition bank-1: Pso set 1 holds soft cards A-1, B-2, C-3"),
        "{shown}"
    );
}

#[test]
fn soft_cards_are_refused_until_the_hsm_owner_allows_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    run(&["init", data]);
    assert!(run(&["--data", data, "soft-cards", "show"]).contains("soft cards refused"));
    assert!(run(&["--data", data, "soft-cards", "allow"]).contains("soft cards allowed"));
    let hsm = partition_service::service::Hsm::open(
        dir.path(),
        partition_service::service::Clock::system(),
    )
    .unwrap();
    assert!(hsm.soft_cards_allowed().unwrap());
    drop(hsm);
    assert!(run(&["--data", data, "soft-cards", "refuse"]).contains("soft cards refused"));
    let out = Command::new(BIN)
        .args(["--data", data, "soft-cards", "maybe"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}
