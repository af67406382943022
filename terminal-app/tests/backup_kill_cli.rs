//! `tessera backup create` killed: the real `tessera` binary, writing a backup streamed by the
//! real `tessera-hsm serve` over loopback TCP into a directory, is killed with SIGKILL once its
//! `.partial` file has passed an offset, at offsets spread over the whole file. After every
//! kill: no file the killed run left passes `tessera backup verify` (not even a `.partial` whose
//! every byte was written before the kill fell, ahead of the rename: refused by its name),
//! `tessera backup list` shows it as INCOMPLETE and never as a backup, and every earlier
//! backup still verifies.
#![cfg(feature = "embedded")] // the HSM is partition-service, a dependency of the embedded default

#[path = "support/tessera_cli.rs"]
mod tessera_cli;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tessera_cli::{TESSERA, enrol, tessera, text};
use tessera_tests::hsm_process::{HsmDir, tessera_hsm};

const PASSPHRASE: &str = "a passphrase for the kill test";

/// Keys in the partition: enough for a backup of a few megabytes, streamed in many pieces.
const KEYS: u64 = 60_000;

/// The offsets killed at: this many, spread evenly over the file.
const KILLS: u64 = 12;

/// The longest one run may take to reach its offset.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// `tessera backup create` started with the passphrase on its input, not waited for.
fn start_create(state: &Path, config: &Path, card: &Path, drive: &Path) -> Child {
    let mut child = Command::new(TESSERA)
        .arg("--state-dir")
        .arg(state)
        .arg("--config")
        .arg(config)
        .args(["backup", "create", "--name", "pay", "--to"])
        .arg(drive)
        .arg("--soft")
        .arg(card)
        .env_remove("TESSERA_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input
        .write_all(format!("{PASSPHRASE}\n").as_bytes())
        .unwrap();
    drop(input);
    child
}

/// The `.partial` file in `drive` and its length, if there is one not in `known`.
fn new_partial(drive: &Path, known: &[PathBuf]) -> Option<(PathBuf, u64)> {
    std::fs::read_dir(drive).ok()?.flatten().find_map(|e| {
        let path = e.path();
        let partial = path.to_string_lossy().ends_with(".partial");
        (partial && !known.contains(&path)).then(|| (path, e.metadata().map_or(0, |m| m.len())))
    })
}

/// Every file in `drive`, by name.
fn files(drive: &Path) -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = std::fs::read_dir(drive)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    all.sort();
    all
}

#[test]
fn killing_backup_create_at_many_offsets_leaves_no_file_that_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let bin = tessera_hsm(Path::new(TESSERA), &root);
    let data = dir.path().join("hsm");
    let (hsm, _audit, code) = HsmDir::with_partition(bin, data.clone(), "p1", "Pay");
    {
        // Filled while not served (the data directory is the server's alone once it serves).
        let service = partition_service::service::Hsm::open(
            &data,
            partition_service::service::Clock::system(),
        )
        .unwrap();
        let partition = hsm_link::domain::PartitionId::new("p1").unwrap();
        service.fill_for_benchmarks(&partition, KEYS).unwrap();
    }
    let serving = hsm.serve_tcp();
    let state = dir.path().join("state");
    let config = dir.path().join("tessera.toml");
    std::fs::write(&config, "version = 1\n[cards]\nallow_soft_cards = true\n").unwrap();
    let args = [
        "pair",
        "--tcp",
        &serving.address,
        "--partition",
        "p1",
        "--name",
        "pay",
    ];
    let out = tessera(&state, &config, &args, &format!("{code}\nyes\n"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let card = enrol(&state, dir.path(), PASSPHRASE);
    let drive = dir.path().join("drive");
    std::fs::create_dir(&drive).unwrap();
    let drive_s = drive.to_str().unwrap();
    let run = |args: &[&str]| tessera(&state, &config, args, "");
    let verify = |file: &Path| run(&["backup", "verify", "--name", "pay", file.to_str().unwrap()]);

    // One complete backup first: the earlier backup every kill must leave intact.
    let mut child = start_create(&state, &config, &card, &drive);
    assert!(child.wait().unwrap().success(), "the first backup");
    let earlier = files(&drive);
    assert_eq!(earlier.len(), 1, "{earlier:?}");
    let file_len = std::fs::metadata(&earlier[0]).unwrap().len();
    assert!(
        file_len > 2 << 20,
        "a backup of {file_len} bytes is too small to kill inside"
    );
    assert!(verify(&earlier[0]).status.success());

    let mut leftovers: Vec<PathBuf> = Vec::new();
    let mut killed_at = Vec::new();
    for i in 1..=KILLS {
        let offset = file_len * i / (KILLS + 1);
        let mut child = start_create(&state, &config, &card, &drive);
        let started = Instant::now();
        let within = || {
            assert!(
                started.elapsed() < RUN_LIMIT,
                "run {i} never reached {offset}"
            )
        };
        // The file appears once the HSM's header has arrived (after the login)...
        let partial = loop {
            if let Some((path, _)) = new_partial(&drive, &leftovers) {
                break Some(path);
            }
            if child.try_wait().unwrap().is_some() {
                break None;
            }
            within();
            std::thread::sleep(Duration::from_millis(2));
        };
        // ...then grows a link chunk (about 64 KiB) at a time, in bursts as the HSM seals:
        // watched closely, so that the kill lands at the first chunk past the offset.
        let reached = partial.and_then(|path| {
            loop {
                let len = std::fs::metadata(&path).map_or(0, |m| m.len());
                if len >= offset {
                    child.kill().unwrap(); // SIGKILL
                    child.wait().unwrap();
                    break Some((path, len));
                }
                if child.try_wait().unwrap().is_some() {
                    break None;
                }
                within();
                std::thread::sleep(Duration::from_micros(50));
            }
        });
        let Some((partial, len_seen)) = reached else {
            panic!(
                "run {i} ended before its file reached byte {offset}: {:?}",
                files(&drive)
            );
        };
        let left = std::fs::metadata(&partial).unwrap().len();
        assert!(left <= file_len, "{left} of {file_len}");
        killed_at.push(len_seen);
        leftovers.push(partial.clone());

        // No file the killed run left passes as a backup.
        let now = files(&drive);
        for f in now.iter().filter(|f| !earlier.contains(f)) {
            let out = verify(f);
            assert!(
                !out.status.success(),
                "{} verifies after a kill",
                f.display()
            );
            assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        }
        assert_eq!(now.len(), earlier.len() + leftovers.len(), "{now:?}");
        // Listed as incomplete, never as a backup.
        let out = run(&["backup", "list", drive_s]);
        let listed = text(&out.stdout);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(listed.contains("1 backups on"), "{listed}");
        let name = partial.file_name().unwrap().to_string_lossy().into_owned();
        let line = listed
            .lines()
            .find(|l| l.starts_with(&name))
            .unwrap_or_else(|| panic!("{name} not listed:\n{listed}"));
        assert!(line.contains("INCOMPLETE"), "{line}");
        // The earlier backup is intact.
        for f in &earlier {
            let out = verify(f);
            assert!(out.status.success(), "{}", text(&out.stderr));
        }
    }
    // The kills landed spread over the file, each past its own offset, and (but for one the
    // machine was too busy to land before the last byte, which then fell before the rename)
    // inside the write.
    assert_eq!(killed_at.len() as u64, KILLS);
    for (i, at) in killed_at.iter().enumerate() {
        assert!(
            *at >= file_len * (i as u64 + 1) / (KILLS + 1),
            "{killed_at:?}"
        );
    }
    let inside = killed_at.iter().filter(|at| **at < file_len).count();
    assert!(inside as u64 >= KILLS - 1, "{killed_at:?} of {file_len}");
    eprintln!("killed at {killed_at:?} of {file_len} bytes");
}
