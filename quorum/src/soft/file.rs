//! The file on disk: read bounded, written atomically (a `.partial` file, fsync, rename).

use super::*;

/// Reads at most [`MAX_SOFT_CARD_LEN`] bytes; `None` if the file is longer.
pub(super) fn read_bounded(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let file = File::open(path)?;
    let mut bytes = Vec::with_capacity(1024);
    file.take(MAX_SOFT_CARD_LEN as u64 + 1)
        .read_to_end(&mut bytes)?;
    Ok((bytes.len() <= MAX_SOFT_CARD_LEN).then_some(bytes))
}

pub(super) fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// Writes `bytes` to `path` through `path.partial`: create (mode 0600), write, fsync, then
/// rename (or, when `overwrite` is false, hard-link, which refuses an existing target), then
/// fsync the directory. A stale `.partial` from an interrupted write is replaced.
pub(super) fn write_atomically(path: &Path, bytes: &[u8], overwrite: bool) -> io::Result<()> {
    let partial = partial_path(path);
    match fs::remove_file(&partial) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&partial)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    drop(file);
    if let Err(e) = written {
        let _ = fs::remove_file(&partial);
        return Err(e);
    }
    let placed = if overwrite {
        fs::rename(&partial, path)
    } else {
        match fs::hard_link(&partial, path) {
            Ok(()) => fs::remove_file(&partial),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
            // A filesystem without hard links: check, then rename.
            Err(_) => {
                if path.try_exists()? {
                    Err(io::Error::from(io::ErrorKind::AlreadyExists))
                } else {
                    fs::rename(&partial, path)
                }
            }
        }
    };
    if let Err(e) = placed {
        let _ = fs::remove_file(&partial);
        return Err(e);
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}
