//! The audit key a verifier trusts, given by the verifier: a key, or a key's fingerprint.

use crate::error::LogError;
use crate::hash::decode_hex;
use crate::keys::AuditKey;

/// The first line of an audit key file; the key's 64 lowercase hex digits follow on the next.
pub const KEY_FILE_LABEL: &str = "tessera audit key v1";

/// Fewest fingerprint bytes a pin may give (128 bits, the shown form).
const MIN_PIN_BYTES: usize = 16;

/// The audit key a verifier trusts. A file is checked against this, never against the key it
/// carries: with a [`KeyPin::Fingerprint`], the file's key is used only once its fingerprint
/// matches.
#[derive(Clone, PartialEq, Eq)]
pub enum KeyPin {
    /// The key itself.
    Key(AuditKey),
    /// The first 16 to 32 bytes of the key's [`AuditKeyFingerprint`](crate::AuditKeyFingerprint).
    Fingerprint(Vec<u8>),
}

impl KeyPin {
    /// A fingerprint as people copy it: 32 to 64 hex digits (upper or lower case), spaces and
    /// colons ignored, so both the shown form (`3f2a 9c1e …`, eight groups) and the full one
    /// are accepted.
    pub fn from_fingerprint(text: &str) -> Result<KeyPin, LogError> {
        let digits: Vec<u8> = text
            .bytes()
            .filter(|b| !matches!(b, b' ' | b':' | b'\t'))
            .map(|b| b.to_ascii_lowercase())
            .collect();
        if !digits.len().is_multiple_of(2)
            || !(MIN_PIN_BYTES * 2..=64).contains(&digits.len())
            || !digits.iter().all(u8::is_ascii_hexdigit)
        {
            return Err(bad_pin(format!(
                "{text:?} is not a fingerprint: give 32 to 64 hex digits (the fingerprint the \
                 HSM showed, e.g. by `tessera-hsm init`), or a key file"
            )));
        }
        let mut bytes = vec![0u8; digits.len() / 2];
        decode_hex(&digits, &mut bytes).ok_or_else(|| bad_pin("bad hex".into()))?;
        Ok(KeyPin::Fingerprint(bytes))
    }

    /// An audit key file: [`KEY_FILE_LABEL`] on the first line and the key's 64 lowercase hex
    /// digits on the second ([`KeyPin::key_file`] writes it), or the 64 digits alone.
    pub fn from_key_file(bytes: &[u8]) -> Result<KeyPin, LogError> {
        let text =
            std::str::from_utf8(bytes).map_err(|_| bad_pin("the key file is not text".into()))?;
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        let first = lines.next().unwrap_or("");
        let hex = if first == KEY_FILE_LABEL {
            lines.next().unwrap_or("")
        } else {
            first
        };
        let mut key = [0u8; 32];
        if lines.next().is_some() || decode_hex(hex.as_bytes(), &mut key).is_none() {
            return Err(bad_pin(format!(
                "not an audit key file: expected {KEY_FILE_LABEL:?} and a line of 64 lowercase \
                 hex digits"
            )));
        }
        AuditKey::from_bytes(&key)
            .map(KeyPin::Key)
            .map_err(|_| bad_pin("the key file holds no valid Ed25519 public key".into()))
    }

    /// The text of an audit key file for `key`.
    pub fn key_file(key: &AuditKey) -> String {
        format!("{KEY_FILE_LABEL}\n{}\n", crate::hash::Hash(key.to_bytes()))
    }

    /// Whether `key` is the pinned key.
    pub fn accepts(&self, key: &AuditKey) -> bool {
        match self {
            KeyPin::Key(pinned) => pinned == key,
            KeyPin::Fingerprint(prefix) => key.fingerprint().0.starts_with(prefix),
        }
    }
}

impl std::fmt::Display for KeyPin {
    /// The pinned fingerprint as people compare it (eight groups of four hex digits, more if
    /// the pin is longer).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyPin::Key(key) => write!(f, "{}", key.fingerprint()),
            KeyPin::Fingerprint(bytes) => {
                for (i, pair) in bytes.chunks(2).enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    for b in pair {
                        write!(f, "{b:02x}")?;
                    }
                }
                Ok(())
            }
        }
    }
}

impl std::fmt::Debug for KeyPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyPin({self})")
    }
}

fn bad_pin(problem: String) -> LogError {
    LogError::BadPin { problem }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::AuditSigner;

    #[test]
    fn fingerprints_and_key_files() {
        let key = AuditSigner::from_secret_bytes(&[1; 32]).public();
        let other = AuditSigner::from_secret_bytes(&[2; 32]).public();
        let shown = key.fingerprint().to_string();
        let full = crate::hash::Hash(key.fingerprint().0).to_string();
        for text in [
            shown.clone(),
            full.clone(),
            full.to_uppercase(),
            shown.replace(' ', ":"),
        ] {
            let pin = KeyPin::from_fingerprint(&text).unwrap();
            assert!(pin.accepts(&key), "{text}");
            assert!(!pin.accepts(&other), "{text}");
        }
        assert_eq!(KeyPin::from_fingerprint(&shown).unwrap().to_string(), shown);
        for bad in [
            "",
            "abcd",
            &full[..31],
            &format!("{full}00"),
            "zz".repeat(16).as_str(),
        ] {
            assert!(KeyPin::from_fingerprint(bad).is_err(), "{bad}");
        }
        let file = KeyPin::key_file(&key);
        assert!(file.starts_with("tessera audit key v1\n"));
        assert_eq!(KeyPin::from_key_file(file.as_bytes()), Ok(KeyPin::Key(key)));
        let bare = crate::hash::Hash(key.to_bytes()).to_string();
        assert_eq!(KeyPin::from_key_file(bare.as_bytes()), Ok(KeyPin::Key(key)));
        let two = format!("{file}{bare}\n");
        for bad in [&b"tessera audit key v1\n"[..], b"", b"\xff", two.as_bytes()] {
            assert!(KeyPin::from_key_file(bad).is_err());
        }
    }
}
