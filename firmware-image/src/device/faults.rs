//! Fault injection for the install path: every step that changes the disk (create, write,
//! fsync, rename, remove) first asks [`Faults::step`], which fails once a budget is spent. A
//! failing write first writes half its bytes (a torn write). Nothing is cleaned up after a
//! failure, exactly as after a crash or a power cut, so a test that fails step `n` and then
//! starts the device sees what a device killed at step `n` would see.

use std::io::{self, Write};

/// A step budget: `Faults::none()` in production.
#[derive(Debug, Default)]
pub struct Faults {
    fail_at: Option<usize>,
    steps: usize,
}

impl Faults {
    /// No fault: every step succeeds (and is counted).
    pub fn none() -> Self {
        Faults::default()
    }

    /// Steps `0..n` succeed; step `n` fails, as if the power went at that moment.
    pub fn fail_at(n: usize) -> Self {
        Faults {
            fail_at: Some(n),
            steps: 0,
        }
    }

    /// Steps taken so far.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Counts a step; fails it if the budget is spent.
    pub fn step(&mut self) -> io::Result<()> {
        let n = self.steps;
        self.steps += 1;
        if self.fail_at == Some(n) {
            return Err(io::Error::other(format!("injected fault at step {n}")));
        }
        Ok(())
    }

    /// Writes `data` as one step; a failing step writes half of it first.
    pub fn write<W: Write>(&mut self, w: &mut W, data: &[u8]) -> io::Result<()> {
        if let Err(e) = self.step() {
            w.write_all(&data[..data.len() / 2])?;
            return Err(e);
        }
        w.write_all(data)
    }
}
