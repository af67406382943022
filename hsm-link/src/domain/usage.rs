//! How much of its quota a partition uses.

use serde::{Deserialize, Serialize};

use super::config::Quota;

/// A partition's use of its quota. Keys in the bin count against both the size and the object
/// limit (seed 002 §4.3: "invalidated key objects still consume partition space and key IDs
/// remain used").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PartitionUsage {
    /// Bytes taken by key objects, those in the bin included.
    pub bytes_used: u64,
    /// Key objects held, those in the bin included.
    pub objects_used: u64,
    /// How many of `objects_used` are in the bin.
    pub invalidated_objects: u64,
}

impl PartitionUsage {
    /// True when `extra_bytes` more bytes in `extra_objects` more objects still fit `quota`:
    /// the size is never exceeded, nor the object limit if there is one. An arithmetic
    /// overflow does not fit.
    pub fn fits(&self, quota: &Quota, extra_bytes: u64, extra_objects: u64) -> bool {
        let bytes_fit = self
            .bytes_used
            .checked_add(extra_bytes)
            .is_some_and(|bytes| bytes <= quota.size_bytes);
        let objects_fit = match quota.object_limit {
            None => true,
            Some(limit) => self
                .objects_used
                .checked_add(extra_objects)
                .is_some_and(|objects| objects <= u64::from(limit)),
        };
        bytes_fit && objects_fit
    }

    /// Key objects in use (not in the bin).
    pub fn active_objects(&self) -> u64 {
        self.objects_used.saturating_sub(self.invalidated_objects)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_checks_size_and_object_limit() {
        let byok = Quota {
            size_bytes: 1_000_000,
            object_limit: Some(3),
        };
        let usage = PartitionUsage {
            bytes_used: 999_000,
            objects_used: 2,
            invalidated_objects: 1,
        };
        assert_eq!(usage.active_objects(), 1);
        assert!(usage.fits(&byok, 1_000, 1));
        assert!(!usage.fits(&byok, 1_001, 1), "one byte over");
        assert!(!usage.fits(&byok, 0, 2), "fourth object, the bin counts");
        assert!(usage.fits(&byok, 0, 0));
        assert!(!usage.fits(&byok, u64::MAX, 0), "overflow");
        assert!(!usage.fits(&byok, 0, u64::MAX), "overflow");

        let eco = Quota {
            size_bytes: 10_000_000,
            object_limit: None,
        };
        assert!(usage.fits(&eco, 9_001_000, 1_000_000));
        assert!(!usage.fits(&eco, 9_001_001, 0));
    }
}
