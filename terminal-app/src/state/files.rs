//! Files of the state directory: private permissions, bounded reads, atomic writes.
//!
//! A write goes to a fresh temporary file in the same directory (created 0600, never an
//! existing one), is synced, renamed over the target (or linked to it when the target must not
//! exist yet), and the directory is synced, so a crash leaves the old file or the new one,
//! never half of either.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::StateError;

/// Permission bits the state directory and its files must not give to others.
const NOT_FOR_OTHERS: u32 = 0o077;

/// Refuses `path` unless it is this user's and gives nothing to group or others. `kind` is
/// `directory` or `file`; symbolic links are refused (the state is read where it is).
pub(super) fn check_private(path: &Path, kind: &'static str) -> Result<(), StateError> {
    let meta = fs::symlink_metadata(path).map_err(|e| StateError::io("reading", path, e))?;
    let is_kind = if kind == "directory" {
        meta.is_dir()
    } else {
        meta.is_file()
    };
    if !is_kind {
        return Err(StateError::NotA {
            path: path.to_owned(),
            kind,
        });
    }
    let me = rustix::process::geteuid().as_raw();
    let mode = meta.permissions().mode() & 0o7777;
    if meta.uid() != me || mode & NOT_FOR_OTHERS != 0 {
        return Err(StateError::NotPrivate {
            path: path.to_owned(),
            kind,
            mode,
            owner: meta.uid(),
            fix: if kind == "directory" { 0o700 } else { 0o600 },
        });
    }
    Ok(())
}

/// Creates the directory `path` (0700) if it is missing, with its parents (mode from the
/// umask), and checks that it is private.
pub(super) fn ensure_private_dir(path: &Path) -> Result<(), StateError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| StateError::io("creating", parent, e))?;
    }
    match fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(StateError::io("creating", path, e)),
    }
    check_private(path, "directory")
}

/// Reads a private file of at most `max` bytes; `None` if it does not exist. The bound is
/// checked before the file is read in full.
pub(super) fn read_bounded(path: &Path, max: u64) -> Result<Option<Vec<u8>>, StateError> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StateError::io("reading", path, e)),
        Ok(_) => check_private(path, "file")?,
    }
    let file = File::open(path).map_err(|e| StateError::io("opening", path, e))?;
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| StateError::io("reading", path, e))?;
    if bytes.len() as u64 > max {
        return Err(StateError::TooLarge {
            path: path.to_owned(),
            max,
        });
    }
    Ok(Some(bytes))
}

/// How [`write_atomically`] puts the new file in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Replace {
    /// Over an existing file.
    Allowed,
    /// Never over an existing file ([`StateError::Exists`]).
    Refused,
}

/// Writes `bytes` to `dir/name` atomically, the file 0600: temporary file, fsync, rename (or
/// link), fsync of the directory.
pub(super) fn write_atomically(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    replace: Replace,
) -> Result<(), StateError> {
    let target = dir.join(name);
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix).map_err(StateError::Random)?;
    let temp: PathBuf = dir.join(format!(
        ".{name}.{}.tmp",
        suffix
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    ));
    let result = write_new(&temp, bytes)
        .and_then(|()| match replace {
            Replace::Allowed => fs::rename(&temp, &target),
            Replace::Refused => fs::hard_link(&temp, &target),
        })
        .and_then(|()| File::open(dir)?.sync_all());
    // After a rename the temporary name is gone; after a link or a failure it is removed.
    let _ = fs::remove_file(&temp);
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            Err(StateError::Exists { path: target })
        }
        Err(e) => Err(StateError::io("writing", target, e)),
    }
}

fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replace_or_refuse_and_leave_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        write_atomically(dir.path(), "a", b"one", Replace::Allowed).unwrap();
        write_atomically(dir.path(), "a", b"two", Replace::Allowed).unwrap();
        assert_eq!(fs::read(dir.path().join("a")).unwrap(), b"two");
        let e = write_atomically(dir.path(), "a", b"three", Replace::Refused).unwrap_err();
        assert!(matches!(e, StateError::Exists { .. }), "{e:?}");
        assert_eq!(fs::read(dir.path().join("a")).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["a"]);
        let mode = fs::metadata(dir.path().join("a"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn reads_are_bounded_and_refuse_files_others_can_read() {
        let dir = tempfile::tempdir().unwrap();
        write_atomically(dir.path(), "f", &[b'x'; 10], Replace::Allowed).unwrap();
        let path = dir.path().join("f");
        assert_eq!(read_bounded(&path, 10).unwrap().unwrap().len(), 10);
        let e = read_bounded(&path, 9).unwrap_err();
        assert!(matches!(e, StateError::TooLarge { max: 9, .. }), "{e:?}");
        assert!(read_bounded(&dir.path().join("none"), 9).unwrap().is_none());
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_bounded(&path, 10).unwrap_err();
        assert!(
            matches!(e, StateError::NotPrivate { mode: 0o644, .. }),
            "{e:?}"
        );
        assert!(e.to_string().contains("chmod 600"), "{e}");
    }

    #[test]
    fn the_directory_is_made_private_and_an_open_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("deep/er/tessera");
        ensure_private_dir(&state).unwrap();
        let mode = fs::metadata(&state).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        ensure_private_dir(&state).unwrap();
        fs::set_permissions(&state, fs::Permissions::from_mode(0o755)).unwrap();
        let e = ensure_private_dir(&state).unwrap_err();
        assert!(e.to_string().contains("chmod 700"), "{e}");
        let file = dir.path().join("file");
        fs::write(&file, b"").unwrap();
        let e = ensure_private_dir(&file).unwrap_err();
        assert!(
            matches!(
                e,
                StateError::NotA {
                    kind: "directory",
                    ..
                }
            ),
            "{e:?}"
        );
    }
}
