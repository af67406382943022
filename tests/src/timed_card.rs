//! A verified card whose every operation is timed into a shared cell (card time, to exclude
//! from the terminal's own cost). Used by quorum's `tests/ceremony.rs` and `benches/quorum.rs`.

use std::cell::Cell;
use std::time::{Duration, Instant};

use quorum::card::{CardInfo, VerifiedCard};
use quorum::error::CardError;
use zeroize::Zeroizing;

/// A card borrowed for timing: every call into it adds its duration to `spent`.
pub struct Timed<'a, C> {
    /// The card timed.
    pub card: &'a mut C,
    /// Where the card time adds up.
    pub spent: &'a Cell<Duration>,
}

impl<C: VerifiedCard> Timed<'_, C> {
    fn time<T>(&mut self, f: impl FnOnce(&mut C) -> T) -> T {
        let start = Instant::now();
        let out = f(self.card);
        self.spent.set(self.spent.get() + start.elapsed());
        out
    }
}

impl<C: VerifiedCard> VerifiedCard for Timed<'_, C> {
    fn info(&self) -> CardInfo {
        self.card.info()
    }
    fn sign(&mut self, message: &[u8]) -> Result<[u8; 64], CardError> {
        self.time(|c| c.sign(message))
    }
    fn decipher(&mut self, e: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>, CardError> {
        self.time(|c| c.decipher(e))
    }
    fn read_share_object(&mut self) -> Result<Option<Vec<u8>>, CardError> {
        self.time(|c| c.read_share_object())
    }
    fn write_share_object(&mut self, object: &[u8]) -> Result<(), CardError> {
        self.time(|c| c.write_share_object(object))
    }
}
