//! Deserialisation helpers that refuse an over-long byte string, text or list before copying it
//! (DESIGN.md: every untrusted length is bounded before it is read).
//!
//! In postcard a byte string and a list carry their length first; these visitors check that
//! length against the bound, and postcard itself refuses a length longer than what is left of
//! the frame, so a hostile length never turns into an allocation.

use std::fmt;

use hsm_link::domain::KeyObjectSummary;
use serde::Serializer;
use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};
use zeroize::{Zeroize, Zeroizing};

use super::{MAX_APP_LIST, MAX_APP_MESSAGE, MAX_APP_SECRET_LEN};

/// Writes a byte field as a byte string (the same postcard bytes as a list of `u8`, written in
/// one step).
pub(super) fn serialize_bytes<S: Serializer>(
    bytes: &[u8],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_bytes(bytes)
}

/// A message, signature, ciphertext or blob: at most [`MAX_APP_MESSAGE`] bytes.
pub(super) fn deserialize_message<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<u8>, D::Error> {
    deserialize_bytes(deserializer, MAX_APP_MESSAGE)
}

/// A key list: at most [`MAX_APP_LIST`] summaries.
pub(super) fn deserialize_key_list<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<KeyObjectSummary>, D::Error> {
    deserialize_list(deserializer, MAX_APP_LIST)
}

/// A credential: at most [`MAX_APP_SECRET_LEN`] bytes of text.
pub(super) fn deserialize_secret_string<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<String, D::Error> {
    deserialize_text(deserializer, MAX_APP_SECRET_LEN)
}

/// Bytes of at most `max` length. A refused owned buffer is wiped: it may hold key material.
pub(super) fn deserialize_bytes<'de, D: Deserializer<'de>>(
    deserializer: D,
    max: usize,
) -> Result<Vec<u8>, D::Error> {
    struct BytesVisitor(usize);

    impl<'de> Visitor<'de> for BytesVisitor {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a byte string of at most {} bytes", self.0)
        }

        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            if v.len() > self.0 {
                return Err(E::invalid_length(v.len(), &self));
            }
            Ok(v.to_vec())
        }

        fn visit_byte_buf<E: de::Error>(self, mut v: Vec<u8>) -> Result<Vec<u8>, E> {
            if v.len() > self.0 {
                v.zeroize();
                return Err(E::invalid_length(v.len(), &self));
            }
            Ok(v)
        }

        // Formats without a byte-string type (JSON) write a list of numbers.
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let max = self.0;
            if let Some(hint) = seq.size_hint()
                && hint > max
            {
                return Err(de::Error::invalid_length(hint, &self));
            }
            let mut out = Zeroizing::new(Vec::with_capacity(seq.size_hint().unwrap_or(0)));
            while let Some(byte) = seq.next_element::<u8>()? {
                if out.len() == max {
                    return Err(de::Error::invalid_length(max + 1, &self));
                }
                out.push(byte);
            }
            Ok(std::mem::take(&mut *out))
        }
    }

    deserializer.deserialize_bytes(BytesVisitor(max))
}

/// Text of at most `max` bytes (the link's bounded-string visitor; a refused owned string is
/// wiped: it may be a credential).
pub(super) fn deserialize_text<'de, D: Deserializer<'de>>(
    deserializer: D,
    max: usize,
) -> Result<String, D::Error> {
    hsm_link::domain::bounded::deserialize_string(deserializer, max)
}

/// A list of at most `max` elements, refused at the first element past the bound before the
/// elements past it are read (the link's shared helper).
pub(super) fn deserialize_list<'de, D, T>(deserializer: D, max: usize) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    hsm_link::domain::bounded::deserialize_vec(deserializer, max)
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize)]
    struct Bytes4(
        #[serde(serialize_with = "super::serialize_bytes", deserialize_with = "bytes4")] Vec<u8>,
    );

    fn bytes4<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        super::deserialize_bytes(d, 4)
    }

    #[derive(Deserialize)]
    struct List3(#[serde(deserialize_with = "list3")] Vec<u16>);

    fn list3<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u16>, D::Error> {
        super::deserialize_list(d, 3)
    }

    #[test]
    fn bytes_are_the_same_postcard_bytes_as_a_list_of_u8() {
        let as_bytes = postcard::to_stdvec(&Bytes4(vec![1, 2, 3])).unwrap();
        let as_list = postcard::to_stdvec(&vec![1u8, 2, 3]).unwrap();
        assert_eq!(as_bytes, as_list);
        assert_eq!(as_bytes, [3, 1, 2, 3]);
    }

    #[test]
    fn bytes_stop_at_their_bound() {
        let ok = postcard::to_stdvec(&vec![9u8; 4]).unwrap();
        assert_eq!(postcard::from_bytes::<Bytes4>(&ok).unwrap().0, [9; 4]);
        let long = postcard::to_stdvec(&vec![9u8; 5]).unwrap();
        assert!(postcard::from_bytes::<Bytes4>(&long).is_err());
        // Formats without byte strings send a list of numbers: bounded the same way.
        assert_eq!(list_of_bytes(4).unwrap(), [7; 4]);
        assert!(list_of_bytes(5).is_err());
    }

    fn list_of_bytes(n: usize) -> Result<Vec<u8>, serde::de::value::Error> {
        let seq = serde::de::value::SeqDeserializer::new(std::iter::repeat_n(7u8, n));
        super::deserialize_bytes(seq, 4)
    }

    #[test]
    fn lists_stop_at_their_bound_and_claims_allocate_nothing() {
        let ok = postcard::to_stdvec(&vec![1u16, 2, 3]).unwrap();
        assert_eq!(postcard::from_bytes::<List3>(&ok).unwrap().0, [1, 2, 3]);
        let long = postcard::to_stdvec(&vec![1u16, 2, 3, 4]).unwrap();
        assert!(postcard::from_bytes::<List3>(&long).is_err());
        // A length prefix claiming four billion elements with none behind it.
        let claim = postcard::to_stdvec(&u32::MAX).unwrap();
        assert!(postcard::from_bytes::<List3>(&claim).is_err());
    }
}
