//! Streaming the payload once: the whole payload's SHA-512 (on a second thread, so that the
//! two digests of every byte cost one pass of wall time) and each file's SHA-512, cut along the
//! manifest's file list, with each file's bytes handed to a sink (the installer writes them).

use std::io::{self, Read};

use sha2::{Digest, Sha512};

use super::{CHUNK_LEN, fill};
use crate::manifest::FileEntry;

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
    /// The whole payload's SHA-512, if asked for and not truncated.
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
}

impl<'m> Walker<'m> {
    fn new(files: &'m [FileEntry]) -> Self {
        Walker {
            files,
            next: 0,
            current: None,
            first_mismatch: None,
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
            let ok = <[u8; 64]>::from(hasher.finalize()) == file.sha512;
            if !ok && self.first_mismatch.is_none() {
                self.first_mismatch = Some(file.path.clone());
            }
            sink(FileEvent::End(ok))?;
        }
    }
}

/// Streams `len` payload bytes from `r`. With `files`, hashes each file (their sizes must add
/// up to `len`) and tells `sink`; with `whole`, also hashes the whole payload on a second
/// thread.
pub(crate) fn stream<R: Read, E: From<io::Error>>(
    r: &mut R,
    len: u64,
    files: Option<&[FileEntry]>,
    whole: bool,
    mut sink: impl FnMut(FileEvent<'_>) -> Result<(), E>,
) -> Result<Streamed, E> {
    let mut walker = files.map(Walker::new);
    let mut whole_hasher = whole.then(Sha512::new);
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
        let chunk = &buf[..n];
        match (&mut whole_hasher, &mut walker) {
            (Some(h), Some(w)) => std::thread::scope(|s| {
                s.spawn(|| h.update(chunk));
                w.feed(chunk, &mut sink)
            })?,
            (Some(h), None) => h.update(chunk),
            (None, Some(w)) => w.feed(chunk, &mut sink)?,
            (None, None) => {}
        }
    }
    if let Some(w) = &mut walker {
        // Files of size zero at the end of the list.
        w.feed(&[], &mut sink)?;
    }
    Ok(Streamed {
        truncated: false,
        payload_sha512: whole_hasher.map(|h| h.finalize().into()),
        first_mismatch: walker.and_then(|w| w.first_mismatch),
    })
}
