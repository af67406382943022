//! A file writer that keeps the drive busy while the backup is still being sealed.
//!
//! Linux starts writing dirty pages back only past a share of memory (gigabytes on a terminal),
//! so a plain write-then-fsync does all the drive's work at the end, after all the CPU's. Every
//! [`WRITEBACK_WINDOW`] bytes this writer asks the kernel to start writing the window just
//! finished (`posix_fadvise(DONTNEED)` starts writeback of dirty pages without waiting, then
//! drops the clean ones), so the drive works while the next chunks are sealed, the final fsync
//! has little left, and the backup does not fill the page cache.

use std::fs::File;
use std::io::Write;

/// Bytes between two writeback requests.
pub const WRITEBACK_WINDOW: u64 = 8 << 20;

/// A `File` writer that asks the kernel to start writing back every [`WRITEBACK_WINDOW`] bytes
/// behind itself, so the drive works while sealing goes on and the final fsync has little left.
#[derive(Debug)]
pub struct WritebackFile {
    file: File,
    written: u64,
    requested: u64,
}

impl WritebackFile {
    /// Writes to `file` from its current position, which must be 0.
    pub fn new(file: File) -> WritebackFile {
        WritebackFile {
            file,
            written: 0,
            requested: 0,
        }
    }

    /// The file, for the final fsync.
    pub fn into_inner(self) -> File {
        self.file
    }

    /// The file.
    pub fn get_ref(&self) -> &File {
        &self.file
    }
}

impl Write for WritebackFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.written - self.requested >= WRITEBACK_WINDOW {
            let len = self.written - self.requested;
            // Advice only: a file system that ignores it just loses the overlap.
            let _ = rustix::fs::fadvise(
                &self.file,
                self.requested,
                std::num::NonZeroU64::new(len),
                rustix::fs::Advice::DontNeed,
            );
            self.requested = self.written;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}
