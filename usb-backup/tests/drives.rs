//! Writing backups to drives: laptop mode (a directory) and device mode (FAT in user space, on
//! images made by `mkfs.vfat`, checked by `fsck.fat -n`, read back by `mcopy`), mirroring,
//! retention, and torn writes below the file system.

use std::cell::RefCell;
use std::io::{Cursor, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::Command;
use std::rc::Rc;

use usb_backup::container::MIN_CHUNK_SIZE;
use usb_backup::drive::{
    BackupName, BackupTarget, DirTarget, FatTarget, TornDevice, apply_retention, write_backup,
    write_mirrored,
};
use usb_backup::fuzzing::TestHsm;
use usb_backup::{BackupError, BackupWriter, WrittenBackup, verify_offline};

fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Writes a backup of `len` bytes with this sequence number to `target`.
fn store(
    target: &mut dyn BackupTarget,
    hsm: &TestHsm,
    sequence: u64,
    len: usize,
) -> Result<usb_backup::drive::StoredBackup, BackupError> {
    let mut facts = hsm.facts(len as u64, MIN_CHUNK_SIZE);
    facts.sequence = sequence;
    facts.created += sequence * 60;
    let name = BackupName::of(&facts);
    let file_len = layout_len(&facts);
    let data = plaintext(len);
    write_backup(target, &name, file_len, &hsm.verifying_key(), |out| {
        seal_into(out, facts, hsm, &data)
    })
}

fn seal_into(
    out: &mut dyn Write,
    facts: usb_backup::BackupFacts,
    hsm: &TestHsm,
    data: &[u8],
) -> Result<WrittenBackup, BackupError> {
    let mut w = BackupWriter::new(out, facts, &hsm.recipients(), &hsm.signing)?;
    w.write_plaintext(data)?;
    Ok(w.finish()?.1)
}

fn layout_len(facts: &usb_backup::BackupFacts) -> u64 {
    facts.file_len()
}

#[test]
fn laptop_mode_writes_reads_back_and_never_overwrites() {
    let hsm = TestHsm::new(1);
    let dir = tempfile::tempdir().unwrap();
    let mut target = DirTarget::new(dir.path());
    let stored = store(&mut target, &hsm, 1, 3 * 65536 + 7).unwrap();
    assert_eq!(
        stored.file_name,
        "test-partition_2026-12-04T092100Z_seq000001.tsbk"
    );
    let path = dir.path().join(&stored.file_name);
    let before = std::fs::read(&path).unwrap();
    verify_offline(std::fs::File::open(&path).unwrap(), &hsm.verifying_key()).unwrap();
    // The same name again is refused, and the file is untouched.
    let again = store(&mut target, &hsm, 1, 10);
    assert!(
        matches!(again, Err(BackupError::Exists { .. })),
        "{again:?}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
    // No partial file is left behind, and the listing shows the header facts.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec![stored.file_name.clone()]);
    let listed = target.list().unwrap();
    assert_eq!(listed[0].header.as_ref().unwrap().facts().sequence, 1);
}

#[test]
fn laptop_mode_checks_free_space_first() {
    let hsm = TestHsm::new(1);
    let dir = tempfile::tempdir().unwrap();
    let mut target = DirTarget::new(dir.path());
    let name = BackupName::of(&hsm.facts(1, MIN_CHUNK_SIZE));
    let err = target.begin(&name, u64::MAX / 4).err().unwrap();
    assert!(matches!(err, BackupError::NoSpace { .. }), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn an_interrupted_write_leaves_no_backup() {
    let hsm = TestHsm::new(1);
    let dir = tempfile::tempdir().unwrap();
    let mut target = DirTarget::new(dir.path());
    let facts = hsm.facts(200_000, MIN_CHUNK_SIZE);
    let name = BackupName::of(&facts);
    let result = write_backup(
        &mut target,
        &name,
        layout_len(&facts),
        &hsm.verifying_key(),
        |out| {
            out.write_all(&[0; 5000]).map_err(|e| BackupError::Io {
                op: "write",
                object: "test".into(),
                source: e,
            })?;
            Err(BackupError::Pipeline { stage: "link" })
        },
    );
    assert!(result.is_err());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    assert!(target.list().unwrap().is_empty());
}

#[test]
fn mirror_writes_two_targets_each_verified_and_one_failure_spares_the_other() {
    let hsm = TestHsm::new(1);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let facts = hsm.facts(150_000, MIN_CHUNK_SIZE);
    let name = BackupName::of(&facts);
    let data = plaintext(150_000);
    let (mut ta, mut tb) = (DirTarget::new(a.path()), DirTarget::new(b.path()));
    let results = write_mirrored(
        &mut [&mut ta, &mut tb],
        &name,
        layout_len(&facts),
        &hsm.verifying_key(),
        |out| seal_into(out, facts.clone(), &hsm, &data),
    )
    .unwrap();
    assert_eq!(results.len(), 2);
    for (r, dir) in results.iter().zip([a.path(), b.path()]) {
        let stored = r.as_ref().unwrap();
        assert_eq!(stored.target, dir.display().to_string());
        verify_offline(
            std::fs::File::open(dir.join(&stored.file_name)).unwrap(),
            &hsm.verifying_key(),
        )
        .unwrap();
    }
    // One target gone: the other is still written and verified.
    let mut gone = DirTarget::new(a.path().join("no-such-drive"));
    let mut facts2 = facts.clone();
    facts2.sequence += 1;
    let results = write_mirrored(
        &mut [&mut gone, &mut tb],
        &BackupName::of(&facts2),
        layout_len(&facts2),
        &hsm.verifying_key(),
        |out| seal_into(out, facts2.clone(), &hsm, &data),
    )
    .unwrap();
    assert!(results[0].is_err());
    assert!(results[1].is_ok());
}

#[test]
fn retention_keeps_the_newest_and_never_the_only_verified_one() {
    let hsm = TestHsm::new(1);
    let dir = tempfile::tempdir().unwrap();
    let mut target = DirTarget::new(dir.path());
    let mut last = None;
    for seq in 1..=4 {
        last = Some(store(&mut target, &hsm, seq, 1000).unwrap());
    }
    // Another partition's backup and a stray file are never touched.
    let mut other = hsm.facts(10, MIN_CHUNK_SIZE);
    other.partition_id = "other".into();
    let other_name = BackupName::of(&other);
    write_backup(
        &mut target,
        &other_name,
        layout_len(&other),
        &hsm.verifying_key(),
        |out| seal_into(out, other.clone(), &hsm, &plaintext(10)),
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"keep me").unwrap();
    let newest = last.unwrap();
    let removed = apply_retention(&mut target, "test-partition", 2, &newest).unwrap();
    assert_eq!(removed.len(), 2);
    assert!(
        removed
            .iter()
            .all(|n| n.contains("seq00000") && !n.contains("seq000004"))
    );
    let left = target.list().unwrap();
    assert_eq!(left.len(), 3);
    assert!(dir.path().join("notes.txt").exists());

    // A newer (say, copied in) backup outranks the verified one: keeping 1 would delete the
    // only verified backup, so nothing is deleted.
    let newer = store(&mut target, &hsm, 9, 1000).unwrap();
    let stale_proof = usb_backup::drive::StoredBackup {
        file_name: newest.file_name.clone(),
        ..newer.clone()
    };
    assert!(
        apply_retention(&mut target, "test-partition", 1, &stale_proof)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        apply_retention(&mut target, "test-partition", 1, &newer)
            .unwrap()
            .len(),
        2
    );
}

fn mkfs(path: &Path, kib: u32) {
    let status = Command::new("mkfs.vfat")
        .args(["-F", "32", "-C"])
        .arg(path)
        .arg(kib.to_string())
        .output()
        .expect("mkfs.vfat (Debian dosfstools; scripts/setup installs it)");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
}

fn fsck_clean(path: &Path) {
    let out = Command::new("fsck.fat")
        .arg("-n")
        .arg(path)
        .output()
        .expect("fsck.fat");
    assert!(
        out.status.success(),
        "fsck.fat -n: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn device_mode_on_a_mkfs_vfat_image_passes_fsck_and_mcopy_reads_it_back() {
    let hsm = TestHsm::new(1);
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("drive.img");
    mkfs(&image, 34_000);
    let stored = {
        let mut target = FatTarget::open(&image).unwrap();
        let first = store(&mut target, &hsm, 1, 5 * 65536 + 3).unwrap();
        let second = store(&mut target, &hsm, 2, 100).unwrap();
        let listed = target.list().unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].file_name, second.file_name);
        assert_eq!(
            listed[1].header.as_ref().unwrap().facts().plaintext_len,
            5 * 65536 + 3
        );
        assert!(matches!(
            store(&mut target, &hsm, 1, 10),
            Err(BackupError::Exists { .. })
        ));
        target.close().unwrap();
        first
    };
    fsck_clean(&image);
    let copy = dir.path().join("copy.tsbk");
    let out = Command::new("mcopy")
        .arg("-i")
        .arg(&image)
        .arg(format!("::{}", stored.file_name))
        .arg(&copy)
        .output()
        .expect("mcopy (Debian mtools; scripts/setup installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verified =
        verify_offline(std::fs::File::open(&copy).unwrap(), &hsm.verifying_key()).unwrap();
    assert_eq!(&verified, &stored.verified);
}

#[test]
fn device_mode_refuses_a_backup_larger_than_the_free_space() {
    let hsm = TestHsm::new(1);
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("drive.img");
    mkfs(&image, 34_000);
    let mut target = FatTarget::open(&image).unwrap();
    let free = target.free_space().unwrap();
    let name = BackupName::of(&hsm.facts(1, MIN_CHUNK_SIZE));
    let err = target.begin(&name, free).err().unwrap();
    assert!(matches!(err, BackupError::NoSpace { .. }), "{err}");
    assert!(target.list().unwrap().is_empty());
}

/// An in-memory image shared between the file system under test and the test.
#[derive(Clone)]
struct SharedImage(Rc<RefCell<Cursor<Vec<u8>>>>);

impl Read for SharedImage {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().read(buf)
    }
}
impl Write for SharedImage {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
impl Seek for SharedImage {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.0.borrow_mut().seek(pos)
    }
}

/// Counts the bytes the file system writes.
struct Counting<IO>(IO, Rc<RefCell<u64>>);
impl<IO: Read> Read for Counting<IO> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}
impl<IO: Write> Write for Counting<IO> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.0.write(buf)?;
        *self.1.borrow_mut() += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}
impl<IO: Seek> Seek for Counting<IO> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.0.seek(pos)
    }
}

#[test]
fn a_write_torn_at_any_offset_leaves_no_passing_backup_and_the_earlier_one_intact() {
    let hsm = TestHsm::new(1);
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("drive.img");
    mkfs(&image, 34_000);
    // The earlier backup, written whole.
    let earlier = {
        let mut target = FatTarget::open(&image).unwrap();
        let stored = store(&mut target, &hsm, 1, 2 * 65536 + 5).unwrap();
        target.close().unwrap();
        stored
    };
    let base = std::fs::read(&image).unwrap();
    let len = 3 * 65536 + 11;
    // How many bytes a whole second backup writes below the file system.
    let total = {
        let count = Rc::new(RefCell::new(0));
        let img = SharedImage(Rc::new(RefCell::new(Cursor::new(base.clone()))));
        let mut target = FatTarget::new(Counting(img, count.clone()), "count").unwrap();
        store(&mut target, &hsm, 2, len).unwrap();
        *count.borrow()
    };
    let mut offsets: Vec<u64> = vec![0, 1, 31, 32, 511, 512, 513, total - 1];
    offsets.extend((1..60).map(|k| total * k / 60));
    let mut completed_names = 0;
    for cut in offsets {
        let img = SharedImage(Rc::new(RefCell::new(Cursor::new(base.clone()))));
        {
            let mut target = FatTarget::new(TornDevice::new(img.clone(), cut), "torn").unwrap();
            let result = store(&mut target, &hsm, 2, len);
            assert!(
                result.is_err(),
                "a write torn at {cut} of {total} succeeded"
            );
            drop(target);
        }
        // Plug the drive in again: what is on it?
        let after = img.0.borrow().get_ref().clone();
        let mut target = FatTarget::new(Cursor::new(after), "after").unwrap();
        let verified = target.verify(&earlier.file_name, &hsm.verifying_key());
        assert!(
            verified.is_ok(),
            "torn at {cut}: the earlier backup broke: {verified:?}"
        );
        for listed in target.list().unwrap() {
            if listed.file_name == earlier.file_name {
                continue;
            }
            // The new backup's final name exists only if every byte was written before.
            completed_names += 1;
            let check = target.verify(&listed.file_name, &hsm.verifying_key());
            assert!(
                check.is_ok(),
                "torn at {cut}: {} is named a backup but {check:?}",
                listed.file_name
            );
        }
    }
    // Most cuts fall before the rename, so the new name is rare.
    assert!(
        completed_names <= 3,
        "{completed_names} torn writes left a final name"
    );
}

/// A device that panics on its `armed`-th write from now on, as the FAT library would on a
/// file system it misreads; counts writes after the panic.
struct Panicking {
    inner: SharedImage,
    armed: Rc<RefCell<Option<u64>>>,
    writes_after: Rc<RefCell<u64>>,
}
impl Read for Panicking {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf)
    }
}
impl Write for Panicking {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut armed = self.armed.borrow_mut();
        match *armed {
            Some(0) => {
                *self.writes_after.borrow_mut() += 1;
            }
            Some(1) => {
                *armed = Some(0);
                drop(armed);
                panic!("attempt to subtract with overflow (a crafted cluster chain)");
            }
            Some(n) => *armed = Some(n - 1),
            None => {}
        }
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
impl Seek for Panicking {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

/// An image with one backup on it, in memory, and that backup.
fn image_with_a_backup(hsm: &TestHsm) -> (Vec<u8>, usb_backup::drive::StoredBackup) {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("drive.img");
    mkfs(&image, 34_000);
    let mut target = FatTarget::open(&image).unwrap();
    let stored = store(&mut target, hsm, 1, 65536 + 9).unwrap();
    target.close().unwrap();
    (std::fs::read(&image).unwrap(), stored)
}

#[test]
fn a_panic_in_the_fat_library_is_contained_and_nothing_more_is_written() {
    // The process's panic hook learns the panic is contained (a TUI's hook then leaves the
    // terminal alone).
    static SEEN_CONTAINED: std::sync::atomic::AtomicBool =
        std::sync::atomic::AtomicBool::new(false);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if usb_backup::drive::panic_is_contained() {
            SEEN_CONTAINED.store(true, std::sync::atomic::Ordering::SeqCst);
            return;
        }
        previous(info)
    }));
    assert!(!usb_backup::drive::panic_is_contained());
    let hsm = TestHsm::new(1);
    let (base, earlier) = image_with_a_backup(&hsm);
    for nth in [1, 2, 5, 20] {
        let img = SharedImage(Rc::new(RefCell::new(Cursor::new(base.clone()))));
        let armed = Rc::new(RefCell::new(None));
        let writes_after = Rc::new(RefCell::new(0));
        let device = Panicking {
            inner: img.clone(),
            armed: armed.clone(),
            writes_after: writes_after.clone(),
        };
        let mut target = FatTarget::new(device, "crafted").unwrap();
        *armed.borrow_mut() = Some(nth);
        let err = store(&mut target, &hsm, 2, 3 * 65536).unwrap_err();
        assert!(
            matches!(&err, BackupError::Fat { detail, .. } if detail.contains("damaged")),
            "write {nth}: {err}"
        );
        assert!(target.is_broken());
        // Broken: every further call is refused with the same clear reason, and nothing is
        // written, not even when the target is dropped.
        let listed = target.list().unwrap_err().to_string();
        assert!(listed.contains("damaged"), "{listed}");
        assert!(
            target
                .verify(&earlier.file_name, &hsm.verifying_key())
                .is_err()
        );
        drop(target);
        assert_eq!(
            *writes_after.borrow(),
            0,
            "write {nth}: written after the panic"
        );
        // Plugged in again: the earlier backup verifies; the new one is no backup at most a
        // leftover.
        let after = img.0.borrow().get_ref().clone();
        let mut target = FatTarget::new(Cursor::new(after), "after").unwrap();
        target
            .verify(&earlier.file_name, &hsm.verifying_key())
            .unwrap();
        let listed: Vec<String> = target
            .list()
            .unwrap()
            .into_iter()
            .map(|b| b.file_name)
            .collect();
        assert_eq!(listed, vec![earlier.file_name.clone()], "write {nth}");
    }
    assert!(SEEN_CONTAINED.load(std::sync::atomic::Ordering::SeqCst));
    assert!(!usb_backup::drive::panic_is_contained());
}

#[test]
fn a_crafted_or_corrupted_file_system_gives_clear_errors_and_never_takes_the_caller_down() {
    let hsm = TestHsm::new(1);
    let (base, earlier) = image_with_a_backup(&hsm);
    // Where the file system's own structures are: the boot sector and FSInfo, the FATs and
    // the root directory (the first data cluster), as mkfs.vfat laid them out.
    let bytes_per_sector = u64::from(u16::from_le_bytes([base[11], base[12]]));
    let reserved = u64::from(u16::from_le_bytes([base[14], base[15]])) * bytes_per_sector;
    let fat_len =
        u64::from(u32::from_le_bytes([base[36], base[37], base[38], base[39]])) * bytes_per_sector;
    let root = reserved + 2 * fat_len;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut refused, mut damaged, mut usable) = (0, 0, 0);
    for round in 0..300u64 {
        let mut img = base.clone();
        let (start, span) = match round % 3 {
            0 => (0, 96),        // the boot sector's fields
            1 => (reserved, 64), // the first FAT's first entries
            _ => (root, 256),    // the root directory's entries
        };
        for _ in 0..1 + next() % 6 {
            let at = (start + next() % span) as usize;
            img[at] = next() as u8;
        }
        let shared = SharedImage(Rc::new(RefCell::new(Cursor::new(img))));
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let Ok(mut target) = FatTarget::new(shared.clone(), "crafted") else {
                return "refused";
            };
            let _ = target.list();
            let _ = target.leftovers();
            let checked = target.verify(&earlier.file_name, &hsm.verifying_key());
            let wrote = store(&mut target, &hsm, 2, 65536);
            if target.is_broken() {
                "damaged"
            } else if checked.is_ok() || wrote.is_ok() {
                "usable"
            } else {
                "refused"
            }
        }));
        // Whatever the boot sector claims, nothing is written past the drive's end.
        assert_eq!(
            shared.0.borrow().get_ref().len(),
            base.len(),
            "round {round}"
        );
        match outcome.expect("a FAT call's panic escaped its containment") {
            "refused" => refused += 1,
            "damaged" => damaged += 1,
            _ => usable += 1,
        }
    }
    eprintln!("300 damaged images: {refused} refused, {damaged} contained panics, {usable} usable");
    assert!(refused > 0 && usable > 0);

    // A boot sector claiming a volume far larger than the drive: the library would write
    // hundreds of gigabytes past the end; the write is refused at the drive's end instead.
    let mut img = base.clone();
    img[32..36].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    img[36..40].copy_from_slice(&0x00ff_ffffu32.to_le_bytes());
    let shared = SharedImage(Rc::new(RefCell::new(Cursor::new(img))));
    if let Ok(mut target) = FatTarget::new(shared.clone(), "crafted") {
        let err = store(&mut target, &hsm, 2, 65536).unwrap_err();
        eprintln!("crafted geometry: {err}");
    }
    assert_eq!(shared.0.borrow().get_ref().len(), base.len());
}
