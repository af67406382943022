//! Crash safety of the real `tessera-hsm` process: an application writes keys and deletions
//! while the test kills the process (SIGKILL) at many different moments; after each kill the
//! store must open, verify, hold every write that was acknowledged, and hold no half-applied
//! change (every stored key has its log entry and every logged key is stored).
//!
//! What this proves is atomic transactions across a killed process, not durability across a
//! power cut: a SIGKILL leaves the kernel's page cache in place, so a write that was never
//! fsync'd survives it all the same. A power cut cannot be staged here. What can be shown is
//! asserted: the store the binary opens commits with redb's `Durability::Immediate` (fsync'd
//! before an acknowledgement), and the files `init` creates are fsync'd with their directory
//! (`write_new` and `Store::open` sync it).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hsm_link::domain::{KeyAttributes, KeyKind, KeyLabel, PartitionId};
use partition_service::access::ApiProvider;
use partition_service::app_link::{AppAuth, AppClient, SecretText};
use partition_service::service::{Clock, Hsm};

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

/// Starts `tessera-hsm serve` with an application listener; returns the child and its address.
fn serve(dir: &Path) -> (Child, SocketAddr) {
    let mut child = Command::new(BIN)
        .arg("--data")
        .arg(dir)
        .args(["serve", "--app-listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("tessera-hsm printed its listener")
            .unwrap();
        if let Some(addr) = line.strip_prefix("application listener on ") {
            break addr.parse().unwrap();
        }
    };
    (child, addr)
}

#[test]
fn killing_the_hsm_during_writes_never_leaves_a_half_applied_change() {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new(BIN)
        .arg("init")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(status.status.success());
    run(
        dir.path(),
        &[
            "partition",
            "create",
            "p1",
            "--name",
            "crash test",
            "--tier",
            "platinum",
        ],
    );
    let credentials = run(dir.path(), &["credentials", "p1"]);
    let password = credentials.lines().nth(1).unwrap().trim().to_string();
    let partition = PartitionId::new("p1").unwrap();
    // The store as the binary opens it (`Store::open`) acknowledges only fsync'd commits.
    let store = partition_service::store::Store::open(dir.path()).unwrap();
    assert!(matches!(store.durability(), redb::Durability::Immediate));
    drop(store);

    let mut secret: Option<SecretText> = None;
    let acked_alive = Arc::new(Mutex::new(BTreeSet::new()));
    let acked_deleted = Arc::new(Mutex::new(BTreeSet::new()));
    // Kill moments spread from "during start-up writes" to "well into the stream".
    let delays_ms = [
        3u64, 7, 12, 18, 25, 33, 41, 50, 62, 75, 90, 110, 135, 160, 200,
    ];
    let mut total_keys_seen = 0;
    for (round, delay) in delays_ms.iter().enumerate() {
        let (mut child, addr) = serve(dir.path());
        let auth = match &secret {
            None => AppAuth::SetupPassword(password.clone()),
            Some(s) => AppAuth::permanent(s),
        };
        let (mut client, traded) =
            AppClient::connect(addr, &partition, ApiProvider::Jce, auth).unwrap();
        if let Some(t) = traded {
            secret = Some(t);
        }
        let (alive, deleted) = (Arc::clone(&acked_alive), Arc::clone(&acked_deleted));
        let writer = std::thread::spawn(move || {
            let attributes = KeyAttributes {
                extractable: true,
                sensitive: true,
                modifiable: true,
            };
            for i in 0u64.. {
                let label = KeyLabel::new(format!("r{round}-k{i}")).unwrap();
                let Ok(key) = client.generate(KeyKind::Aes256, label, attributes, false) else {
                    return;
                };
                alive.lock().unwrap().insert(key.id.0);
                if i % 3 == 2 {
                    let Ok(_) = client.delete(key.id) else { return };
                    alive.lock().unwrap().remove(&key.id.0);
                    deleted.lock().unwrap().insert(key.id.0);
                }
            }
        });
        std::thread::sleep(Duration::from_millis(*delay));
        child.kill().unwrap();
        child.wait().unwrap();
        writer.join().unwrap();

        // After the crash: the store opens and everything agrees.
        let hsm = Hsm::open(dir.path(), Clock::system()).unwrap();
        let checks = hsm
            .check()
            .unwrap_or_else(|e| panic!("round {round} (kill after {delay} ms): {e}"));
        assert_eq!(checks.len(), 1);
        let stored: BTreeSet<u64> = {
            let mut ids = BTreeSet::new();
            let mut after = None;
            loop {
                let page = hsm_keys(&hsm, &partition, after);
                if page.is_empty() {
                    break;
                }
                after = page.last().copied();
                ids.extend(page);
            }
            ids
        };
        // Every acknowledged key is there (durable), deleted ones are in the bin.
        for id in acked_alive
            .lock()
            .unwrap()
            .iter()
            .chain(acked_deleted.lock().unwrap().iter())
        {
            assert!(
                stored.contains(id),
                "round {round}: acknowledged key {id} was lost"
            );
        }
        total_keys_seen = stored.len();
        drop(hsm);
    }
    // Enough writes happened that the kills landed among them, not only before them.
    assert!(
        total_keys_seen >= 20,
        "only {total_keys_seen} keys were written before the kills"
    );
    eprintln!(
        "{total_keys_seen} keys stored across {} kills",
        delays_ms.len()
    );
    // The real binary agrees.
    let check = run(dir.path(), &["check"]);
    assert!(check.contains("store consistent: 1 partitions"), "{check}");
}

fn hsm_keys(hsm: &Hsm, partition: &PartitionId, after: Option<u64>) -> Vec<u64> {
    hsm.key_ids(partition, after.map(hsm_link::domain::KeyId), 1000)
        .unwrap()
}
