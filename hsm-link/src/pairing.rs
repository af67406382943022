//! The one-time management pairing code and the pre-shared key derived from it.
//!
//! A code is 130 random bits written as 26 Crockford base32 symbols, followed by two check
//! symbols (10 bits of SHA-256 over the data symbols) and shown in seven groups of four:
//! `7K3Q-…`. The check symbols let the terminal catch a typo before a pairing attempt is spent
//! at the HSM. The Noise pre-shared key is HKDF-SHA256 over the data symbols, with the partition
//! id as context, so a code issued for one partition pairs with no other.

use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::domain::PartitionId;

/// Data symbols of a pairing code (26 × 5 = 130 bits).
pub const CODE_DATA_SYMBOLS: usize = 26;
/// Check symbols appended to the data.
pub const CODE_CHECK_SYMBOLS: usize = 2;
/// Symbols per group when a code is shown.
pub const CODE_GROUP: usize = 4;

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const HKDF_SALT: &[u8] = b"tessera management pairing code v1";

/// A parsed or generated pairing code. Zeroized on drop; `Debug` never shows it.
pub struct PairingCode {
    data: Zeroizing<[u8; CODE_DATA_SYMBOLS]>,
}

/// Why a typed pairing code was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairingCodeError {
    /// A character that is not part of the code's alphabet.
    #[error(
        "pairing code has a character that is not in its alphabet ({found:?}): use the digits and letters shown, except U"
    )]
    BadCharacter {
        /// The character found.
        found: char,
    },
    /// Too few or too many symbols.
    #[error("pairing code has {found} characters, expected {expected} (seven groups of four)")]
    Length {
        /// Symbols found, separators not counted.
        found: usize,
        /// Symbols expected.
        expected: usize,
    },
    /// The check symbols do not match: a character was mistyped.
    #[error("pairing code check failed: a character was mistyped; compare it group by group")]
    Check,
}

impl PairingCode {
    /// A fresh code from the operating system's random number generator.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bits = Zeroizing::new([0u8; 17]);
        getrandom::fill(bits.as_mut())?;
        let mut data = Zeroizing::new([0u8; CODE_DATA_SYMBOLS]);
        for (i, symbol) in data.iter_mut().enumerate() {
            let bit = i * 5;
            let word = (u16::from(bits[bit / 8]) << 8) | u16::from(bits[bit / 8 + 1]);
            let value = (word >> (11 - bit % 8)) & 0x1f;
            *symbol = ALPHABET[usize::from(value)];
        }
        Ok(PairingCode { data })
    }

    /// Parses a code as a person typed it: case-insensitive, spaces and dashes ignored, `I`
    /// and `L` read as `1`, `O` as `0` (Crockford base32).
    pub fn parse(typed: &str) -> Result<Self, PairingCodeError> {
        let expected = CODE_DATA_SYMBOLS + CODE_CHECK_SYMBOLS;
        let mut symbols = Zeroizing::new(Vec::with_capacity(expected));
        for c in typed.chars() {
            if c == '-' || c.is_whitespace() {
                continue;
            }
            let c = match c.to_ascii_uppercase() {
                'I' | 'L' => '1',
                'O' => '0',
                other => other,
            };
            if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) {
                return Err(PairingCodeError::BadCharacter { found: c });
            }
            if symbols.len() == expected {
                return Err(PairingCodeError::Length {
                    found: expected + 1,
                    expected,
                });
            }
            symbols.push(c as u8);
        }
        if symbols.len() != expected {
            return Err(PairingCodeError::Length {
                found: symbols.len(),
                expected,
            });
        }
        let mut data = Zeroizing::new([0u8; CODE_DATA_SYMBOLS]);
        data.copy_from_slice(&symbols[..CODE_DATA_SYMBOLS]);
        let code = PairingCode { data };
        let check = code.check_symbols();
        if subtle::ConstantTimeEq::ct_eq(&check[..], &symbols[CODE_DATA_SYMBOLS..]).into() {
            Ok(code)
        } else {
            Err(PairingCodeError::Check)
        }
    }

    fn check_symbols(&self) -> [u8; CODE_CHECK_SYMBOLS] {
        let digest = Sha256::digest(&self.data[..]);
        let ten_bits = (u16::from(digest[0]) << 2) | u16::from(digest[1] >> 6);
        [
            ALPHABET[usize::from(ten_bits >> 5)],
            ALPHABET[usize::from(ten_bits & 0x1f)],
        ]
    }

    /// The code in groups of four, as it is shown once to the HSM owner or PSO.
    pub fn display(&self) -> Zeroizing<String> {
        let mut all = Zeroizing::new(Vec::with_capacity(CODE_DATA_SYMBOLS + CODE_CHECK_SYMBOLS));
        all.extend_from_slice(&self.data[..]);
        all.extend_from_slice(&self.check_symbols());
        let mut out = Zeroizing::new(String::with_capacity(40));
        for (i, group) in all.chunks(CODE_GROUP).enumerate() {
            if i > 0 {
                out.push('-');
            }
            out.extend(group.iter().map(|&b| char::from(b)));
        }
        out
    }

    /// The Noise pre-shared key for pairing with `partition`.
    pub fn psk(&self, partition: &PartitionId) -> Zeroizing<[u8; 32]> {
        let hk = Hkdf::<Sha256>::new(Some(HKDF_SALT), &self.data[..]);
        let mut okm = Zeroizing::new([0u8; 32]);
        hk.expand(partition.as_str().as_bytes(), okm.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        okm
    }
}

impl std::fmt::Debug for PairingCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PairingCode(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pid(s: &str) -> PartitionId {
        PartitionId::new(s).unwrap()
    }

    #[test]
    fn generated_code_round_trips_through_its_display() {
        let code = PairingCode::generate().unwrap();
        let shown = code.display();
        assert_eq!(shown.len(), 28 + 6);
        assert_eq!(shown.split('-').count(), 7);
        let parsed = PairingCode::parse(&shown.to_lowercase().replace('-', " ")).unwrap();
        assert_eq!(*parsed.psk(&pid("p1")), *code.psk(&pid("p1")));
    }

    #[test]
    fn codes_differ_and_psk_depends_on_partition() {
        let a = PairingCode::generate().unwrap();
        let b = PairingCode::generate().unwrap();
        assert_ne!(*a.display(), *b.display());
        assert_ne!(*a.psk(&pid("p1")), *a.psk(&pid("p2")));
    }

    #[test]
    fn a_single_typo_is_caught_by_the_check() {
        let code = PairingCode::generate().unwrap();
        let shown: Vec<u8> = code.display().bytes().collect();
        let mut caught = 0;
        let mut tried = 0;
        for pos in (0..shown.len()).filter(|&i| shown[i] != b'-') {
            let mut typo = shown.clone();
            typo[pos] = if typo[pos] == b'A' { b'B' } else { b'A' };
            tried += 1;
            match PairingCode::parse(std::str::from_utf8(&typo).unwrap()) {
                Err(PairingCodeError::Check) => caught += 1,
                Ok(_) => {}
                Err(e) => panic!("unexpected {e}"),
            }
        }
        // Ten check bits miss about one typo in a thousand; over 28 positions expect all caught
        // but allow one miss rather than a flaky test.
        assert!(caught >= tried - 1, "caught {caught} of {tried}");
    }

    #[test]
    fn malformed_codes_are_named() {
        assert!(matches!(
            PairingCode::parse("ABCD"),
            Err(PairingCodeError::Length { found: 4, .. })
        ));
        assert!(matches!(
            PairingCode::parse("ABCU"),
            Err(PairingCodeError::BadCharacter { found: 'U' })
        ));
        assert!(matches!(
            PairingCode::parse(&"A".repeat(40)),
            Err(PairingCodeError::Length { found: 29, .. })
        ));
        assert_eq!(
            format!("{:?}", PairingCode::generate().unwrap()),
            "PairingCode(<redacted>)"
        );
    }
}
