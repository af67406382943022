//! The secrets the application link carries: the technical user's credentials, the permanent
//! secret handed out once, and key material or plaintext. None is `Clone`, none shows itself in
//! `Debug`, and each is wiped when dropped.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::{Zeroize, Zeroizing};

use super::MAX_APP_SECRET_LEN;
use super::bounds;

/// How the technical user (seed 002 §3.1a) proves itself in the hello.
///
/// The text is at most [`MAX_APP_SECRET_LEN`] bytes on the wire, is wiped on drop and never
/// shows in `Debug`.
#[derive(Serialize, Deserialize)]
pub enum AppAuth {
    /// The one-time setup password a PSO (or device SO) issued; traded on first use for a
    /// permanent secret.
    SetupPassword(#[serde(deserialize_with = "bounds::deserialize_secret_string")] String),
    /// The permanent secret received in exchange for the setup password.
    PermanentSecret(#[serde(deserialize_with = "bounds::deserialize_secret_string")] String),
}

impl AppAuth {
    /// Authenticates with the permanent secret a [`Welcome`](super::AppResponse::Welcome)
    /// returned.
    pub fn permanent(secret: &SecretText) -> Self {
        AppAuth::PermanentSecret(secret.expose().to_owned())
    }

    /// The password or secret, for the backend to check (with a constant-time comparison).
    pub fn expose(&self) -> &str {
        match self {
            AppAuth::SetupPassword(s) | AppAuth::PermanentSecret(s) => s,
        }
    }

    /// True for a setup password.
    pub fn is_setup_password(&self) -> bool {
        matches!(self, AppAuth::SetupPassword(_))
    }

    pub(super) fn within_bounds(&self) -> bool {
        self.expose().len() <= MAX_APP_SECRET_LEN
    }
}

impl Drop for AppAuth {
    fn drop(&mut self) {
        match self {
            AppAuth::SetupPassword(s) | AppAuth::PermanentSecret(s) => s.zeroize(),
        }
    }
}

impl fmt::Debug for AppAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppAuth::SetupPassword(_) => f.write_str("SetupPassword(<redacted>)"),
            AppAuth::PermanentSecret(_) => f.write_str("PermanentSecret(<redacted>)"),
        }
    }
}

/// Secret text the HSM hands out, such as the permanent secret: 1 to [`MAX_APP_SECRET_LEN`]
/// bytes of visible ASCII (no spaces, no control characters), checked on construction and on
/// deserialisation, wiped on drop, redacted in `Debug`.
pub struct SecretText(Zeroizing<String>);

/// Text refused as a [`SecretText`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "secret text must be 1 to {MAX_APP_SECRET_LEN} bytes of visible ASCII (no spaces or control characters)"
)]
pub struct InvalidSecretText;

impl SecretText {
    /// Checks `text` and wraps it. Refused text is wiped.
    pub fn new(text: String) -> Result<Self, InvalidSecretText> {
        let text = Zeroizing::new(text);
        if text.is_empty()
            || text.len() > MAX_APP_SECRET_LEN
            || !text.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(InvalidSecretText);
        }
        Ok(SecretText(text))
    }

    /// The secret, to show once or to authenticate with.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretText(<redacted>)")
    }
}

impl Serialize for SecretText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SecretText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = bounds::deserialize_text(deserializer, MAX_APP_SECRET_LEN)?;
        SecretText::new(text).map_err(serde::de::Error::custom)
    }
}

/// Secret bytes: key material or plaintext. Wiped on drop, redacted in `Debug` (which shows
/// only the length). At most [`MAX_APP_MESSAGE`](super::MAX_APP_MESSAGE) bytes on the wire.
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Wraps `bytes`, which are wiped when this value is dropped.
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretBytes(Zeroizing::new(bytes))
    }

    /// A copy of `bytes`.
    pub fn from_slice(bytes: &[u8]) -> Self {
        SecretBytes::new(bytes.to_vec())
    }

    /// The bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes(<{} bytes redacted>)", self.0.len())
    }
}

impl Serialize for SecretBytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for SecretBytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        bounds::deserialize_message(deserializer).map(SecretBytes::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_secret() {
        let shown = [
            format!("{:?}", AppAuth::SetupPassword("hunter2-setup".into())),
            format!("{:?}", AppAuth::PermanentSecret("hunter2-permanent".into())),
            format!("{:?}", SecretText::new("hunter2-text".into()).unwrap()),
            format!("{:?}", SecretBytes::from_slice(b"hunter2-bytes")),
        ];
        for text in &shown {
            assert!(!text.contains("hunter2"), "{text}");
            assert!(text.contains("redacted"), "{text}");
        }
        assert_eq!(shown[3], "SecretBytes(<13 bytes redacted>)");
    }

    #[test]
    fn secret_text_is_checked() {
        assert!(SecretText::new("Abc-123_x.Y~".into()).is_ok());
        assert!(SecretText::new("x".repeat(MAX_APP_SECRET_LEN)).is_ok());
        for bad in [
            String::new(),
            "x".repeat(MAX_APP_SECRET_LEN + 1),
            "with space".into(),
            "bell\u{7}".into(),
            "\u{1b}[2J".into(),
            "grüezi".into(),
        ] {
            assert_eq!(
                SecretText::new(bad.clone()).err(),
                Some(InvalidSecretText),
                "{bad:?}"
            );
            let wire = postcard::to_stdvec(&bad).unwrap();
            assert!(
                postcard::from_bytes::<SecretText>(&wire).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn credentials_and_bytes_are_bounded_on_the_wire() {
        let ok =
            postcard::to_stdvec(&AppAuth::SetupPassword("p".repeat(MAX_APP_SECRET_LEN))).unwrap();
        assert_eq!(
            postcard::from_bytes::<AppAuth>(&ok).unwrap().expose().len(),
            MAX_APP_SECRET_LEN
        );
        let long = postcard::to_stdvec(&AppAuth::PermanentSecret(
            "p".repeat(MAX_APP_SECRET_LEN + 1),
        ))
        .unwrap();
        assert!(postcard::from_bytes::<AppAuth>(&long).is_err());

        let max = super::super::MAX_APP_MESSAGE;
        let ok = postcard::to_stdvec(&SecretBytes::new(vec![1; max])).unwrap();
        assert_eq!(postcard::from_bytes::<SecretBytes>(&ok).unwrap().len(), max);
        let long = postcard::to_stdvec(&SecretBytes::new(vec![1; max + 1])).unwrap();
        assert!(postcard::from_bytes::<SecretBytes>(&long).is_err());
    }

    #[test]
    fn auth_accessors() {
        let text = SecretText::new("perm".into()).unwrap();
        let auth = AppAuth::permanent(&text);
        assert!(!auth.is_setup_password());
        assert_eq!(auth.expose(), "perm");
        assert!(AppAuth::SetupPassword("s".into()).is_setup_password());
    }
}
