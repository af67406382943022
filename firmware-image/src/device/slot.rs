//! A slot on disk: `slot-a/` or `slot-b/` under the device's root, holding `manifest` (the
//! verified manifest's bytes) and `files/` (the payload's files). Writing one from an image,
//! and checking one against its manifest before a start.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha512};

use super::faults::Faults;
use crate::error::{FirmwareError, Refusal};
use crate::image::payload::{self, FileEvent};
use crate::image::verify::VerifiedImage;
use crate::image::{ReadError, read_head};
use crate::keys::manifest_digest;
use crate::manifest::{MAX_MANIFEST_LEN, Manifest};

/// The manifest file in a slot.
pub const SLOT_MANIFEST: &str = "manifest";

/// The directory of the payload's files in a slot.
pub const SLOT_FILES: &str = "files";

fn sync_dir(faults: &mut Faults, dir: &Path) -> io::Result<()> {
    faults.step()?;
    File::open(dir)?.sync_all()
}

/// Writes slot directory `dir` from the image at `image`, which must still be the image
/// `verified` was made from: the manifest is compared byte for byte and every file is hashed
/// again as it is written (the drive could have changed in between). Everything is fsync'd.
/// On failure nothing is cleaned up (the next install clears the slot).
pub(crate) fn write_slot(
    dir: &Path,
    image: &Path,
    verified: &VerifiedImage,
    faults: &mut Faults,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(), FirmwareError> {
    let io_err = |op| FirmwareError::io(op, dir);
    if fs::symlink_metadata(dir).is_ok() {
        faults.step().map_err(io_err("clearing"))?;
        fs::remove_dir_all(dir).map_err(io_err("clearing"))?;
    }
    faults.step().map_err(io_err("creating"))?;
    fs::create_dir(dir).map_err(io_err("creating"))?;
    let files_dir = dir.join(SLOT_FILES);
    faults.step().map_err(io_err("creating"))?;
    fs::create_dir(&files_dir).map_err(io_err("creating"))?;
    let dirs = write_files(&files_dir, image, verified, faults, progress)?;
    (|| {
        for d in dirs.iter().rev() {
            sync_dir(faults, d)?;
        }
        sync_dir(faults, &files_dir)?;
        faults.step()?;
        let mut m = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(dir.join(SLOT_MANIFEST))?;
        faults.write(&mut m, verified.manifest_bytes())?;
        faults.step()?;
        m.sync_all()?;
        sync_dir(faults, dir)?;
        sync_dir(faults, dir.parent().expect("a slot is under the root"))
    })()
    .map_err(io_err("writing"))
}

/// Streams the image's payload into `files_dir`, one fsync'd file per manifest entry, each
/// hashed again as it is written. The directories created, to be synced.
fn write_files(
    files_dir: &Path,
    image: &Path,
    verified: &VerifiedImage,
    faults: &mut Faults,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<BTreeSet<PathBuf>, FirmwareError> {
    let source = File::open(image).map_err(FirmwareError::io("opening", image))?;
    let mut r = BufReader::with_capacity(1 << 16, source);
    let head = read_head(&mut r).map_err(|e| match e {
        ReadError::Refused(r) => FirmwareError::Refused(r),
        ReadError::Io(e) => FirmwareError::io("reading", image)(e),
    })?;
    if head.manifest != verified.manifest_bytes() {
        return Err(changed(image));
    }
    let manifest = verified.manifest();
    let mut dirs = BTreeSet::new();
    let (total, mut done) = (manifest.payload_size, 0u64);
    let mut current: Option<File> = None;
    let streamed = payload::stream(&mut r, head.payload_len, Some(&manifest.files), |event| {
        match event {
            FileEvent::Begin(entry) => {
                let path = files_dir.join(&entry.path);
                let parent = path.parent().expect("a file in the slot").to_owned();
                if dirs.insert(parent.clone()) {
                    faults.step()?;
                    fs::create_dir_all(&parent)?;
                }
                faults.step()?;
                let mode = if entry.executable { 0o755 } else { 0o644 };
                current = Some(
                    OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(mode)
                        .open(&path)?,
                );
            }
            FileEvent::Data(bytes) => {
                faults.write(current.as_mut().expect("begun"), bytes)?;
                done += bytes.len() as u64;
                progress(done, total);
            }
            FileEvent::End(ok) => {
                let file = current.take().expect("begun");
                if !ok {
                    return Err(io::Error::other(Differs));
                }
                faults.step()?;
                file.sync_all()?;
            }
        }
        Ok::<(), io::Error>(())
    });
    let streamed = streamed.map_err(|e| {
        if e.get_ref().is_some_and(|inner| inner.is::<Differs>()) {
            changed(image)
        } else {
            FirmwareError::io("writing", files_dir)(e)
        }
    })?;
    if streamed.truncated || streamed.first_mismatch.is_some() {
        return Err(changed(image));
    }
    Ok(dirs)
}

/// A file of the image hashed differently while it was written than when it was verified.
#[derive(Debug)]
struct Differs;

impl std::fmt::Display for Differs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a file differs from the verified image")
    }
}

impl std::error::Error for Differs {}

fn changed(image: &Path) -> FirmwareError {
    FirmwareError::Device {
        op: "install",
        reason: format!(
            "{} changed after it was verified (the drive was written to or is failing); \
             nothing was activated: copy the image again and retry",
            image.display()
        ),
    }
}

/// Checks slot `dir` (named `slot`) against the manifest whose SHA-512 the state records:
/// the manifest file hashes to it, every file listed is present with its size and SHA-512,
/// and nothing else is in the slot (no extra file, no link, no special file). The manifest
/// on success.
pub(crate) fn check_slot(
    dir: &Path,
    slot: char,
    expected: Option<&[u8; 64]>,
) -> Result<Manifest, FirmwareError> {
    let refuse = |reason: String| FirmwareError::Refused(Refusal::SlotChanged { slot, reason });
    let Some(expected) = expected else {
        return Err(refuse("it holds no installed image".to_owned()));
    };
    let manifest = read_manifest(dir, slot, expected)?;
    let files_dir = dir.join(SLOT_FILES);
    let mut found = Vec::new();
    list(&files_dir, &files_dir, &mut found, manifest.files.len()).map_err(|e| match e {
        ListError::Io(e) => FirmwareError::io("listing", &files_dir)(e),
        ListError::Refused(reason) => refuse(reason),
    })?;
    found.sort();
    let listed: Vec<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    if let Some(extra) = found.iter().find(|p| manifest.file(p).is_none()) {
        return Err(refuse(format!("the file {extra:?} is not in its manifest")));
    }
    if let Some(missing) = listed
        .iter()
        .find(|p| found.binary_search(&p.to_string()).is_err())
    {
        return Err(refuse(format!("the file {missing:?} is missing")));
    }
    for entry in &manifest.files {
        let path = files_dir.join(&entry.path);
        let (size, digest) = hash_file(&path).map_err(FirmwareError::io("reading", &path))?;
        if size != entry.size || digest != entry.sha512 {
            return Err(refuse(format!("the file {:?} was changed", entry.path)));
        }
        let executable = fs::metadata(&path)
            .map_err(FirmwareError::io("reading", &path))?
            .permissions()
            .mode()
            & 0o111
            != 0;
        if executable != entry.executable {
            return Err(refuse(format!(
                "the file {:?} changed its mode",
                entry.path
            )));
        }
    }
    Ok(manifest)
}

/// Reads a slot's manifest (bounded) and checks it against the state's digest.
pub(crate) fn read_manifest(
    dir: &Path,
    slot: char,
    expected: &[u8; 64],
) -> Result<Manifest, FirmwareError> {
    let refuse = |reason: String| FirmwareError::Refused(Refusal::SlotChanged { slot, reason });
    let path = dir.join(SLOT_MANIFEST);
    let mut bytes = Vec::new();
    File::open(&path)
        .and_then(|f| f.take(MAX_MANIFEST_LEN as u64 + 1).read_to_end(&mut bytes))
        .map_err(|e| refuse(format!("its manifest cannot be read: {e}")))?;
    if &manifest_digest(&bytes) != expected {
        return Err(refuse(
            "its manifest is not the one that was verified".to_owned(),
        ));
    }
    Manifest::parse(&bytes).map_err(|r| refuse(format!("its manifest does not parse: {r}")))
}

enum ListError {
    Io(io::Error),
    Refused(String),
}

/// Lists the regular files under `dir` as slot-relative paths, refusing links and special
/// files, and stopping once more files than the manifest lists are found.
fn list(root: &Path, dir: &Path, out: &mut Vec<String>, max: usize) -> Result<(), ListError> {
    for entry in fs::read_dir(dir).map_err(ListError::Io)? {
        let path: PathBuf = entry.map_err(ListError::Io)?.path();
        let meta = fs::symlink_metadata(&path).map_err(ListError::Io)?;
        let rel = path
            .strip_prefix(root)
            .ok()
            .and_then(|p| p.to_str())
            .map(str::to_owned)
            .ok_or_else(|| {
                ListError::Refused(format!("{} has a name that is not UTF-8", path.display()))
            })?;
        if meta.is_dir() {
            list(root, &path, out, max)?;
        } else if meta.is_file() {
            out.push(rel);
            if out.len() > max {
                return Err(ListError::Refused(
                    "it holds more files than its manifest lists".to_owned(),
                ));
            }
        } else {
            return Err(ListError::Refused(format!(
                "{rel:?} is a link or a special file"
            )));
        }
    }
    Ok(())
}

fn hash_file(path: &Path) -> io::Result<(u64, [u8; 64])> {
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)?;
    let mut hasher = Sha512::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hasher.finalize().into()))
}
