//! The real writer killed: a child process (this test binary, running the ignored
//! `child_writes_one_backup` entry point) writes a backup to a directory with the library's
//! laptop-mode writer, and the parent kills it (SIGKILL) once the file on the drive has reached
//! an offset, at many offsets. After every kill, whatever is left is listed as incomplete and
//! never as a backup, never verifies, and the earlier backup verifies as before.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use usb_backup::container::MIN_CHUNK_SIZE;
use usb_backup::drive::{BackupName, BackupTarget, DirTarget, write_backup};
use usb_backup::fuzzing::TestHsm;
use usb_backup::{BackupFacts, BackupWriter, verify_offline};

/// Where the child writes (set by the parent; the child refuses to run without it).
const CHILD_DIR: &str = "USB_BACKUP_KILL_TEST_DIR";
/// The child's backup sequence number.
const CHILD_SEQ: &str = "USB_BACKUP_KILL_TEST_SEQ";
/// The plaintext each backup holds: 64 chunks of the smallest size.
const PLAIN_LEN: u64 = 64 * MIN_CHUNK_SIZE as u64;

fn facts(hsm: &TestHsm, sequence: u64) -> BackupFacts {
    let mut facts = hsm.facts(PLAIN_LEN, MIN_CHUNK_SIZE);
    facts.sequence = sequence;
    facts.created += sequence * 60;
    facts
}

/// Writes backup `sequence` to `dir`, pausing after every chunk (`pause`) so that a kill can
/// land anywhere in it.
fn write_one(dir: &Path, sequence: u64, pause: Duration) -> String {
    let hsm = TestHsm::new(1);
    let facts = facts(&hsm, sequence);
    let name = BackupName::of(&facts);
    let mut target = DirTarget::new(dir);
    let stored = write_backup(
        &mut target,
        &name,
        facts.file_len(),
        &hsm.verifying_key(),
        |out| {
            let paced = Paced { out, pause };
            let mut writer = BackupWriter::new(paced, facts, &hsm.recipients(), &hsm.signing)?;
            let block = vec![0x5a; MIN_CHUNK_SIZE as usize];
            for _ in 0..PLAIN_LEN / u64::from(MIN_CHUNK_SIZE) {
                writer.write_plaintext(&block)?;
            }
            Ok(writer.finish()?.1)
        },
    )
    .expect("the child's backup");
    stored.file_name
}

/// A writer that flushes and pauses after every write, so the file grows in steps.
struct Paced<'a> {
    out: &'a mut dyn Write,
    pause: Duration,
}

impl Write for Paced<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.out.flush()?;
        std::thread::sleep(self.pause);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

#[test]
#[ignore = "the child process of killing_the_writer_at_many_offsets_leaves_only_incomplete_files"]
fn child_writes_one_backup() {
    let dir = PathBuf::from(std::env::var_os(CHILD_DIR).expect("started by the parent test"));
    let seq = std::env::var(CHILD_SEQ).unwrap().parse().unwrap();
    let name = write_one(&dir, seq, Duration::from_millis(4));
    assert!(dir.join(name).exists());
}

fn spawn_child(dir: &Path, seq: u64) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_writes_one_backup", "--ignored", "--quiet"])
        .env(CHILD_DIR, dir)
        .env(CHILD_SEQ, seq.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Size of the backup's file on the drive, under either name.
fn written(dir: &Path, name: &BackupName) -> u64 {
    [name.partial_name(), name.file_name()]
        .iter()
        .filter_map(|n| std::fs::metadata(dir.join(n)).ok())
        .map(|m| m.len())
        .max()
        .unwrap_or(0)
}

#[test]
fn killing_the_writer_at_many_offsets_leaves_only_incomplete_files() {
    let hsm = TestHsm::new(1);
    let dir = tempfile::tempdir().unwrap();
    let earlier = write_one(dir.path(), 1, Duration::ZERO);
    let file_len = facts(&hsm, 1).file_len();
    let mut incomplete = 0;
    for k in 0..14u64 {
        let seq = 2 + k;
        let name = BackupName::of(&facts(&hsm, seq));
        // From "just started" to the last bytes before the trailer.
        let offset = file_len * k / 14;
        let mut child = spawn_child(dir.path(), seq);
        let deadline = Instant::now() + Duration::from_secs(60);
        while written(dir.path(), &name) < offset.max(1) && Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        let _ = child.kill();
        child.wait().unwrap();

        let mut target = DirTarget::new(dir.path());
        // Every file listed as a backup is one: it verifies.
        for listed in target.list().unwrap() {
            target
                .verify(&listed.file_name, &hsm.verifying_key())
                .unwrap_or_else(|e| panic!("kill {k}: {} is listed but {e}", listed.file_name));
        }
        let leftovers = target.leftovers().unwrap();
        if let Some(left) = leftovers.iter().find(|l| l.name == name) {
            incomplete += 1;
            assert!(!left.failed);
            let file = std::fs::File::open(dir.path().join(&left.file_name)).unwrap();
            assert!(
                verify_offline(file, &hsm.verifying_key()).is_err(),
                "kill {k}: the leftover verifies"
            );
        } else {
            // Killed after the rename (or the write won the race): a complete backup.
            target
                .verify(&name.file_name(), &hsm.verifying_key())
                .unwrap_or_else(|e| panic!("kill {k}: no leftover and no backup: {e}"));
        }
        target.verify(&earlier, &hsm.verifying_key()).unwrap();
    }
    // The kills landed inside the writes, not after them.
    assert!(
        incomplete >= 10,
        "only {incomplete} of 14 kills left a partial file"
    );
    // Only an explicit clean removes the leftovers; the backups stay.
    let mut target = DirTarget::new(dir.path());
    let before = target.list().unwrap().len();
    let removed = usb_backup::drive::clean_leftovers(&mut target, false).unwrap();
    assert_eq!(removed.len(), incomplete);
    assert!(target.leftovers().unwrap().is_empty());
    assert_eq!(target.list().unwrap().len(), before);
}
