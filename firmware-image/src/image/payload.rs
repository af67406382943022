//! Hashing the payload once: each file's SHA-512, cut along the manifest's file list, and the
//! payload digest derived from them ([`crate::manifest::payload_digest`]), so no byte is hashed
//! twice. [`stream`] reads a stream in order and hands each file's bytes to a sink (the
//! installer writes them); [`hash_at`] reads a file at known offsets and hashes the files on
//! several threads at once (the verifier).

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest, Sha512};

use super::{CHUNK_LEN, fill};
use crate::manifest::{FileEntry, records_digest};

/// What the sink is told while the payload streams past.
pub(crate) enum FileEvent<'a> {
    /// A file starts.
    Begin(&'a FileEntry),
    /// Some of its bytes.
    Data(&'a [u8]),
    /// It ended; whether its bytes hashed to the manifest's digest.
    End(bool),
}

/// What streaming found.
pub(crate) struct Streamed {
    /// The input ended before the payload did.
    pub(crate) truncated: bool,
    /// The payload digest of the bytes read, if files were checked and the payload is whole.
    pub(crate) payload_sha512: Option<[u8; 64]>,
    /// The first file whose digest did not match, if files were checked.
    pub(crate) first_mismatch: Option<String>,
}

/// Cuts a byte stream along a file list and hashes each file.
struct Walker<'m> {
    files: &'m [FileEntry],
    next: usize,
    current: Option<(&'m FileEntry, u64, Sha512)>,
    first_mismatch: Option<String>,
    hashed: Vec<[u8; 64]>,
}

impl<'m> Walker<'m> {
    fn new(files: &'m [FileEntry]) -> Self {
        Walker {
            files,
            next: 0,
            current: None,
            first_mismatch: None,
            hashed: Vec::with_capacity(files.len()),
        }
    }

    fn feed<E>(
        &mut self,
        mut chunk: &[u8],
        sink: &mut impl FnMut(FileEvent<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        loop {
            if self.current.is_none() {
                let Some(file) = self.files.get(self.next) else {
                    return Ok(());
                };
                self.next += 1;
                sink(FileEvent::Begin(file))?;
                self.current = Some((file, file.size, Sha512::new()));
            }
            let (_, remaining, hasher) = self.current.as_mut().expect("set above");
            if *remaining > 0 {
                if chunk.is_empty() {
                    return Ok(());
                }
                let take = chunk
                    .len()
                    .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                let (head, tail) = chunk.split_at(take);
                hasher.update(head);
                sink(FileEvent::Data(head))?;
                *remaining -= take as u64;
                chunk = tail;
                if *remaining > 0 {
                    return Ok(());
                }
            }
            let (file, _, hasher) = self.current.take().expect("set above");
            let hashed = <[u8; 64]>::from(hasher.finalize());
            let ok = hashed == file.sha512;
            self.hashed.push(hashed);
            if !ok && self.first_mismatch.is_none() {
                self.first_mismatch = Some(file.path.clone());
            }
            sink(FileEvent::End(ok))?;
        }
    }
}

/// Streams `len` payload bytes from `r`. With `files`, hashes each file (their sizes must add
/// up to `len`), tells `sink`, and derives the payload digest.
pub(crate) fn stream<R: Read, E: From<io::Error>>(
    r: &mut R,
    len: u64,
    files: Option<&[FileEntry]>,
    mut sink: impl FnMut(FileEvent<'_>) -> Result<(), E>,
) -> Result<Streamed, E> {
    let mut walker = files.map(Walker::new);
    let mut buf = vec![
        0u8;
        CHUNK_LEN
            .min(usize::try_from(len).unwrap_or(CHUNK_LEN))
            .max(1)
    ];
    let mut left = len;
    while left > 0 {
        let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let chunk = &mut buf[..n];
        if !fill(r, chunk)? {
            return Ok(Streamed {
                truncated: true,
                payload_sha512: None,
                first_mismatch: walker.and_then(|w| w.first_mismatch),
            });
        }
        left -= n as u64;
        if let Some(w) = &mut walker {
            w.feed(&buf[..n], &mut sink)?;
        }
    }
    let Some(mut w) = walker else {
        return Ok(Streamed {
            truncated: false,
            payload_sha512: None,
            first_mismatch: None,
        });
    };
    // Files of size zero at the end of the list.
    w.feed(&[], &mut sink)?;
    Ok(Streamed {
        truncated: false,
        payload_sha512: Some(records_digest(w.files, &w.hashed)),
        first_mismatch: w.first_mismatch,
    })
}

/// Threads hashing files at once in [`hash_at`]: the verify budget is set on two cores.
const HASH_THREADS: usize = 2;

/// Bytes read at a time by each hashing thread (small enough to stay in cache).
const READ_LEN: usize = 1 << 20;

/// Hashes the payload of `files` (sizes adding up to the payload's length), which starts at
/// byte `start` of `image`, on up to [`HASH_THREADS`] threads, largest files first. Each file
/// is read with positional reads, so the threads share no cursor and no byte is read twice.
pub(crate) fn hash_at(image: &File, start: u64, files: &[FileEntry]) -> io::Result<Streamed> {
    let mut offsets = Vec::with_capacity(files.len());
    let mut at = start;
    for f in files {
        offsets.push(at);
        at = at.saturating_add(f.size);
    }
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(files[i].size));
    let next = AtomicUsize::new(0);
    let threads = HASH_THREADS.min(files.len()).max(1);
    // Per file: Some(digest), or None if the image ended inside it.
    let mut hashed: Vec<Option<[u8; 64]>> = vec![None; files.len()];
    let parts = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut buf = vec![0u8; READ_LEN];
                    let mut done = Vec::new();
                    while let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                        done.push((i, hash_range(image, offsets[i], files[i].size, &mut buf)?));
                    }
                    Ok::<_, io::Error>(done)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a hashing thread does not panic"))
            .collect::<io::Result<Vec<_>>>()
    })?;
    for (i, digest) in parts.into_iter().flatten() {
        hashed[i] = digest;
    }
    let truncated = hashed.iter().any(Option::is_none);
    let first_mismatch = files
        .iter()
        .zip(&hashed)
        .find(|(f, h)| h.is_some_and(|h| h != f.sha512))
        .map(|(f, _)| f.path.clone());
    let payload_sha512 = (!truncated)
        .then(|| records_digest(files, hashed.iter().map(|h| h.as_ref().expect("whole"))));
    Ok(Streamed {
        truncated,
        payload_sha512,
        first_mismatch,
    })
}

/// The SHA-512 of `len` bytes of `image` from `offset`; `None` if the image ends first.
fn hash_range(image: &File, offset: u64, len: u64, buf: &mut [u8]) -> io::Result<Option<[u8; 64]>> {
    let mut hasher = Sha512::new();
    let (mut at, end) = (offset, offset.saturating_add(len));
    while at < end {
        let want = buf
            .len()
            .min(usize::try_from(end - at).unwrap_or(usize::MAX));
        let n = match image.read_at(&mut buf[..want], at) {
            Ok(0) => return Ok(None),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        at += n as u64;
    }
    Ok(Some(hasher.finalize().into()))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::manifest::payload_digest;

    /// Files of many sizes (empty ones, one larger than a read), their bytes after a prefix.
    fn sample() -> (Vec<FileEntry>, Vec<u8>) {
        let sizes = [0usize, 5, READ_LEN + 17, 0, 1, 3 * READ_LEN, 700, 0];
        let mut payload = Vec::new();
        let files = sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| {
                let bytes: Vec<u8> = (0..size).map(|j| (i * 31 + j * 7) as u8).collect();
                payload.extend_from_slice(&bytes);
                FileEntry {
                    path: format!("f{i}"),
                    executable: false,
                    size: size as u64,
                    sha512: Sha512::digest(&bytes).into(),
                }
            })
            .collect();
        (files, payload)
    }

    fn image_file(prefix: &[u8], payload: &[u8]) -> File {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(prefix).unwrap();
        f.write_all(payload).unwrap();
        f
    }

    #[test]
    fn parallel_hashing_and_streaming_find_the_same_digests() {
        let (files, payload) = sample();
        let f = image_file(b"header", &payload);
        let parallel = hash_at(&f, 6, &files).unwrap();
        assert!(!parallel.truncated);
        assert_eq!(parallel.first_mismatch, None);
        assert_eq!(parallel.payload_sha512, Some(payload_digest(&files)));
        let streamed = stream(
            &mut &payload[..],
            payload.len() as u64,
            Some(&files),
            |_| Ok::<(), io::Error>(()),
        )
        .unwrap();
        assert_eq!(streamed.payload_sha512, parallel.payload_sha512);
        assert_eq!(streamed.first_mismatch, None);
    }

    #[test]
    fn parallel_hashing_names_the_first_changed_file_and_a_short_image() {
        let (files, mut payload) = sample();
        // One byte of the last non-empty file, and one of an earlier one.
        let last = payload.len() - 1;
        payload[last] ^= 1;
        payload[5 + 3] ^= 1;
        let changed = hash_at(&image_file(b"", &payload), 0, &files).unwrap();
        assert_eq!(changed.first_mismatch.as_deref(), Some("f2"));
        assert_ne!(changed.payload_sha512, Some(payload_digest(&files)));
        assert!(changed.payload_sha512.is_some());

        let short = hash_at(&image_file(b"", &payload[..payload.len() - 1]), 0, &files).unwrap();
        assert!(short.truncated);
        assert_eq!(short.payload_sha512, None);
    }
}
