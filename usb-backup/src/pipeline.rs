//! Sealing at the speed of the slowest of the drive, the cipher and the hash: a reading thread,
//! one sealing thread (which alone owns the STREAM, so its nonces are never split across
//! threads), a hashing thread (each chunk's SHA-256 for the trailer) and the caller's thread
//! writing, which only moves bytes and may block on the drive without stalling the crypto. Buffers of one
//! chunk go round a fixed pool ([`PIPELINE_DEPTH`] of them), so memory is bounded whatever the
//! size, and each system call moves a whole chunk (up to 1 MiB).
//!
//! The bytes written are exactly those of [`BackupWriter`](crate::BackupWriter).

use std::io::{Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use ed25519_dalek::SigningKey;
use zeroize::Zeroizing;

use crate::container::{
    BackupFacts, ChunkChain, Layout, Recipients, Sealer, TAG_LEN, WrittenBackup,
};
use crate::error::BackupError;

/// Chunk buffers in flight: enough that reading, sealing and writing each have one to work on
/// and one waiting.
pub const PIPELINE_DEPTH: usize = 6;

/// A chunk buffer: plaintext until sealed, so wiped when dropped on any path.
type Buffer = Zeroizing<Vec<u8>>;

type Chunk = Result<Buffer, BackupError>;

/// Seals exactly `facts.plaintext_len` bytes from `source` into `sink` (header, chunks, signed
/// trailer) with reading, sealing and writing overlapped. Does not fsync: the caller owns the
/// file. A source shorter or longer than announced is an error, and then no trailer is written.
pub fn seal_pipelined<R: Read + Send, W: Write>(
    source: R,
    mut sink: W,
    facts: BackupFacts,
    recipients: &Recipients,
    signer: &SigningKey,
) -> Result<(W, WrittenBackup), BackupError> {
    let (mut sealer, header) = Sealer::new(facts, recipients, &signer.verifying_key())?;
    sink.write_all(&header.encode())
        .map_err(|e| BackupError::io("write", "backup header", e))?;
    let layout = sealer.layout();
    let (free_tx, free_rx) = sync_channel::<Buffer>(PIPELINE_DEPTH);
    for _ in 0..PIPELINE_DEPTH {
        let buf = Zeroizing::new(Vec::with_capacity(layout.chunk_size as usize + TAG_LEN));
        free_tx.send(buf).map_err(|_| stopped("sealing"))?;
    }
    let (plain_tx, plain_rx) = sync_channel::<Chunk>(PIPELINE_DEPTH);
    let (sealed_tx, sealed_rx) = sync_channel::<Chunk>(PIPELINE_DEPTH);
    let (hashed_tx, hashed_rx) = sync_channel::<Chunk>(PIPELINE_DEPTH);
    let chain = ChunkChain::new(header.backup_id());

    let (sink, chain) = std::thread::scope(|scope| {
        let reader = scope.spawn(move || read_stage(source, layout, &free_rx, &plain_tx));
        let sealing = scope.spawn(move || seal_stage(&mut sealer, &plain_rx, &sealed_tx));
        let hashing = scope.spawn(move || hash_stage(chain, &sealed_rx, &hashed_tx));
        // Writing stays on the caller's thread, so the sink need not be `Send` (a drive's
        // pending file, or several mirrored ones).
        let written = write_stage(sink, &hashed_rx, &free_tx);
        drop(hashed_rx);
        drop(free_tx);
        let hashed = hashing.join().map_err(|_| stopped("hashing"))?;
        let sealed = sealing.join().map_err(|_| stopped("sealing"))?;
        let read = reader.join().map_err(|_| stopped("reading"))?;
        // A stage that only saw its channel close reports `Pipeline`; the cause is elsewhere.
        match (read, sealed, hashed, written) {
            (Ok(()), Ok(()), Ok(chain), Ok(sink)) => Ok((sink, chain)),
            (read, sealed, hashed, written) => Err(first_cause([
                read.err(),
                sealed.err(),
                hashed.err(),
                written.err(),
            ])),
        }
    })?;
    let (trailer, bytes) = chain.finish(header.hash(), signer);
    let mut sink = sink;
    sink.write_all(&bytes)
        .and_then(|_| sink.flush())
        .map_err(|e| BackupError::io("write", "backup trailer", e))?;
    Ok((sink, WrittenBackup { header, trailer }))
}

fn first_cause(errors: [Option<BackupError>; 4]) -> BackupError {
    let mut errors: Vec<BackupError> = errors.into_iter().flatten().collect();
    let cause = errors
        .iter()
        .position(|e| !matches!(e, BackupError::Pipeline { .. }))
        .unwrap_or(0);
    if errors.is_empty() {
        return stopped("sealing");
    }
    errors.swap_remove(cause)
}

fn stopped(stage: &'static str) -> BackupError {
    BackupError::Pipeline { stage }
}

fn read_stage<R: Read>(
    mut source: R,
    layout: Layout,
    free: &Receiver<Buffer>,
    out: &SyncSender<Chunk>,
) -> Result<(), BackupError> {
    let mut given = 0u64;
    for i in 0..layout.chunks {
        let Ok(mut buf) = free.recv() else {
            return Ok(()); // a later stage stopped; it reports why
        };
        let len = layout.chunk_plain_len(i);
        buf.clear();
        buf.resize(len, 0);
        let got = crate::container::read_full(&mut source, &mut buf)
            .map_err(|e| BackupError::io("read", "backup plaintext", io_of(e)));
        let got = match got {
            Ok(n) => n,
            Err(e) => {
                let _ = out.send(Err(stopped("reading")));
                return Err(e);
            }
        };
        given += got as u64;
        if got < len {
            let e = BackupError::PlaintextLength {
                expected: layout.plaintext_len,
                given,
            };
            let _ = out.send(Err(stopped("reading")));
            return Err(e);
        }
        if out.send(Ok(buf)).is_err() {
            return Ok(());
        }
    }
    let mut extra = [0u8; 1];
    if crate::container::read_full(&mut source, &mut extra).unwrap_or(0) > 0 {
        let _ = out.send(Err(stopped("reading")));
        return Err(BackupError::PlaintextLength {
            expected: layout.plaintext_len,
            given: given + 1,
        });
    }
    Ok(())
}

fn io_of(e: BackupError) -> std::io::Error {
    match e {
        BackupError::Io { source, .. } => source,
        other => std::io::Error::other(other.to_string()),
    }
}

fn seal_stage(
    sealer: &mut Sealer,
    input: &Receiver<Chunk>,
    out: &SyncSender<Chunk>,
) -> Result<(), BackupError> {
    while sealer.next_chunk_len().is_some() {
        let Ok(chunk) = input.recv() else {
            return Err(stopped("reading"));
        };
        let mut buf = chunk?;
        if let Err(e) = sealer.seal_next(&mut buf) {
            let _ = out.send(Err(stopped("sealing")));
            return Err(e);
        }
        if out.send(Ok(buf)).is_err() {
            return Err(stopped("hashing")); // a later stage reports why
        }
    }
    Ok(())
}

/// Digests each sealed chunk for the trailer: SHA-256 costs about as much as the cipher, so it
/// has a thread of its own rather than slowing the sealing one.
fn hash_stage(
    mut chain: ChunkChain,
    input: &Receiver<Chunk>,
    out: &SyncSender<Chunk>,
) -> Result<ChunkChain, BackupError> {
    while let Ok(chunk) = input.recv() {
        let buf = match chunk {
            Ok(buf) => buf,
            Err(e) => {
                let _ = out.send(Err(stopped("sealing")));
                return Err(e);
            }
        };
        chain.push_chunk(&buf);
        if out.send(Ok(buf)).is_err() {
            return Err(stopped("writing")); // the writer reports why
        }
    }
    Ok(chain)
}

fn write_stage<W: Write>(
    mut sink: W,
    input: &Receiver<Chunk>,
    free: &SyncSender<Buffer>,
) -> Result<W, BackupError> {
    while let Ok(chunk) = input.recv() {
        let buf = chunk?;
        sink.write_all(&buf)
            .map_err(|e| BackupError::io("write", "backup chunk", e))?;
        // The reader may have finished and gone: then the buffer is simply dropped.
        let _ = free.try_send(buf);
    }
    Ok(sink)
}
