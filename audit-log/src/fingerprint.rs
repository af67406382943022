//! Key fingerprints, the one type every crate shows to people: the audit key's here, the link
//! keys' in `hsm-link` (each hashes its key under its own domain label).

use serde::{Deserialize, Serialize};

/// Bytes of a fingerprint that are shown to people (128 bits, eight groups of four hex digits).
pub const FINGERPRINT_SHOWN_LEN: usize = 16;

/// A SHA-256 fingerprint of a public key. `Display` shows its first 128 bits as eight groups of
/// four lowercase hex digits, the form people compare (both ends of a link, and an auditor
/// holding a log); `{:#}` shows all 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Fingerprint(pub [u8; 32]);

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if f.alternate() {
            let mut buf = [0u8; 64];
            crate::hash::encode_hex(&self.0, &mut buf);
            return f.write_str(std::str::from_utf8(&buf).map_err(|_| std::fmt::Error)?);
        }
        for (i, pair) in self.0[..FINGERPRINT_SHOWN_LEN].chunks(2).enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{:02x}{:02x}", pair[0], pair[1])?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_as_eight_groups_and_whole_with_the_alternate_flag() {
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = i as u8;
        }
        let f = Fingerprint(bytes);
        assert_eq!(f.to_string(), "0001 0203 0405 0607 0809 0a0b 0c0d 0e0f");
        assert_eq!(
            format!("{f:#}"),
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
        );
    }
}
