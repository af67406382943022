//! SHA-256 hashes of log entries, written as 64 lowercase hex digits.

use sha2::{Digest, Sha256};

/// Length of a [`Hash`](struct@Hash) in hex digits, as it appears in a canonical line.
pub const HASH_HEX_LEN: usize = 64;

/// A SHA-256 hash of a log entry (see [the format](crate#the-format) for exactly which bytes).
///
/// `Display` and `Debug` show it as 64 lowercase hex digits, the form it has in a canonical line.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The `prev` of the first entry of a log (sequence number 1): 32 zero bytes.
    pub const ZERO: Hash = Hash([0; 32]);

    /// SHA-256 over `parts`, one after the other.
    pub(crate) fn sha256(parts: &[&[u8]]) -> Hash {
        let mut h = Sha256::new();
        for part in parts {
            h.update(part);
        }
        Hash(h.finalize().into())
    }

    /// Parses exactly 64 lowercase hex digits, the only form a canonical line uses.
    pub fn from_hex(hex: &str) -> Option<Hash> {
        let mut out = [0u8; 32];
        decode_hex(hex.as_bytes(), &mut out)?;
        Some(Hash(out))
    }
}

impl std::fmt::Display for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut buf = [0u8; HASH_HEX_LEN];
        encode_hex(&self.0, &mut buf);
        // Hex digits are ASCII, so this cannot fail; fall back to an error rather than panic.
        f.write_str(std::str::from_utf8(&buf).map_err(|_| std::fmt::Error)?)
    }
}

impl std::fmt::Debug for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hash({self})")
    }
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Writes `bytes` as lowercase hex into `out`, which must be twice as long.
pub(crate) fn encode_hex(bytes: &[u8], out: &mut [u8]) {
    debug_assert_eq!(out.len(), bytes.len() * 2);
    for (b, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        pair[0] = HEX_DIGITS[usize::from(b >> 4)];
        pair[1] = HEX_DIGITS[usize::from(b & 0x0f)];
    }
}

/// Decodes lowercase hex into `out`; `None` unless `hex` is exactly `2 * out.len()` lowercase hex
/// digits (upper case is not canonical).
pub(crate) fn decode_hex(hex: &[u8], out: &mut [u8]) -> Option<()> {
    if hex.len() != out.len() * 2 {
        return None;
    }
    // Branch-free over the digits (verification decodes two hashes per entry): a bad digit maps
    // to 0x10 or more, which sets a bit above the nibble in `bad`.
    let mut bad = 0u8;
    for (pair, o) in hex.chunks_exact(2).zip(out.iter_mut()) {
        let (hi, lo) = (NIBBLE[usize::from(pair[0])], NIBBLE[usize::from(pair[1])]);
        bad |= hi | lo;
        *o = (hi << 4) | (lo & 0x0f);
    }
    (bad < 0x10).then_some(())
}

/// The value of a lowercase hex digit, or 0xff.
pub(crate) const NIBBLE: [u8; 256] = {
    let mut table = [0xff; 256];
    let mut i = 0;
    while i < 16 {
        table[HEX_DIGITS[i] as usize] = i as u8;
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_strictness() {
        let h = Hash::sha256(&[b"abc"]);
        // FIPS 180-2, appendix B.1.
        let known = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(h.to_string(), known);
        assert_eq!(Hash::from_hex(known), Some(h));
        assert_eq!(Hash::from_hex(&known.to_uppercase()), None);
        assert_eq!(Hash::from_hex(&known[1..]), None);
        assert_eq!(Hash::from_hex(&format!("{known}0")), None);
        assert_eq!(Hash::from_hex(&known.replace('b', "g")), None);
        assert_eq!(
            format!("{:?}", Hash::ZERO),
            format!("Hash({})", "0".repeat(64))
        );
    }
}
