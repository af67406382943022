//! Deserialisation helpers that refuse an over-long string or list before they allocate for it.
//!
//! A hostile peer must not be able to make us hold a 1 GB label or a million allow-list entries.
//! The validated domain types deserialise through `BoundedString` or `BoundedVec` (with
//! `#[serde(try_from = ...)]`), which stop at their bound, and then check their own rules.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

/// A string of at most `MAX` bytes, checked before the string is copied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BoundedString<const MAX: usize>(pub(crate) String);

impl<'de, const MAX: usize> Deserialize<'de> for BoundedString<MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_string(deserializer, MAX).map(BoundedString)
    }
}

/// Deserialises a string of at most `max` bytes, refusing a longer one before copying it. A
/// refused owned string is wiped first: it may be a credential. The one bounded-string visitor
/// of the workspace (the application listener's protocol uses it too).
pub fn deserialize_string<'de, D: Deserializer<'de>>(
    deserializer: D,
    max: usize,
) -> Result<String, D::Error> {
    struct StrVisitor(usize);

    impl Visitor<'_> for StrVisitor {
        type Value = String;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a string of at most {} bytes", self.0)
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
            if v.len() > self.0 {
                return Err(E::invalid_length(v.len(), &self));
            }
            Ok(v.to_owned())
        }

        fn visit_string<E: de::Error>(self, mut v: String) -> Result<String, E> {
            let len = v.len();
            if len > self.0 {
                zeroize::Zeroize::zeroize(&mut v);
                return Err(E::invalid_length(len, &self));
            }
            Ok(v)
        }
    }

    deserializer.deserialize_str(StrVisitor(max))
}

/// Longest display value (old or new) of a configuration change: room for a full IP allow-list
/// of 256 IPv6 networks written out.
pub(crate) const MAX_DISPLAY_TEXT_LEN: usize = 16 * 1024;

/// Deserialises a display value: at most [`MAX_DISPLAY_TEXT_LEN`] bytes, no control characters
/// (it goes onto an operator's screen).
pub(crate) fn deserialize_display_text<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<String, D::Error> {
    let text = deserialize_string(deserializer, MAX_DISPLAY_TEXT_LEN)?;
    if !is_printable(&text) {
        return Err(de::Error::custom(
            "display value holds a control or invisible formatting character",
        ));
    }
    Ok(text)
}

/// A list of at most `MAX` elements, refused at the first element past the bound.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub(crate) struct BoundedVec<T, const MAX: usize>(pub(crate) Vec<T>);

impl<'de, T: Deserialize<'de>, const MAX: usize> Deserialize<'de> for BoundedVec<T, MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_vec(deserializer, MAX).map(BoundedVec)
    }
}

/// Deserialises a list of at most `max` elements, refusing a longer one without reading (or
/// allocating for) the elements past the bound.
pub fn deserialize_vec<'de, D, T>(deserializer: D, max: usize) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct SeqVisitor<T>(usize, PhantomData<T>);

    impl<'de, T: Deserialize<'de>> Visitor<'de> for SeqVisitor<T> {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a list of at most {} elements", self.0)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let max = self.0;
            if let Some(hint) = seq.size_hint()
                && hint > max
            {
                return Err(de::Error::invalid_length(hint, &self));
            }
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(max));
            while let Some(item) = seq.next_element()? {
                if out.len() == max {
                    return Err(de::Error::invalid_length(max + 1, &self));
                }
                out.push(item);
            }
            Ok(out)
        }
    }

    deserializer.deserialize_seq(SeqVisitor(max, PhantomData))
}

/// True when `text` holds nothing that could move a terminal's cursor, change its state or hide
/// or reorder text: no control characters (C0, DEL, C1), no bidirectional overrides or isolates,
/// no zero-width characters, line or paragraph separators, or byte-order marks.
pub(crate) fn is_printable(text: &str) -> bool {
    text.chars().all(|c| {
        !c.is_control()
            && !matches!(
                c,
                '\u{200B}'..='\u{200F}' // zero-width space/joiners, LRM, RLM
                    | '\u{2028}'..='\u{202E}' // line/paragraph separators, bidi embeddings
                    | '\u{2060}'..='\u{2069}' // word joiner, invisible operators, bidi isolates
                    | '\u{FEFF}' // byte-order mark
                    | '\u{FFF9}'..='\u{FFFB}' // interlinear annotation
            )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_refuses_controls_and_invisible_formatting() {
        assert!(is_printable("Schlüssel für Zahlungen 2026"));
        assert!(is_printable(""));
        for bad in [
            "a\u{0}b",
            "a\nb",
            "a\tb",
            "\u{1b}[2J",
            "a\u{7f}",
            "a\u{85}",
            "a\u{202E}b",
            "a\u{2066}b",
            "a\u{200B}b",
            "\u{FEFF}a",
            "a\u{2028}b",
        ] {
            assert!(!is_printable(bad), "{bad:?} passed");
        }
    }

    #[test]
    fn bounded_vec_stops_at_its_bound() {
        let ok = postcard::to_stdvec(&vec![1u8, 2, 3]).unwrap();
        assert_eq!(
            postcard::from_bytes::<BoundedVec<u8, 3>>(&ok).unwrap().0,
            vec![1, 2, 3]
        );
        assert!(postcard::from_bytes::<BoundedVec<u8, 2>>(&ok).is_err());
        // A length prefix claiming a million elements with no elements behind it is refused
        // at once (no allocation for the claimed length).
        let claim = postcard::to_stdvec(&1_000_000u32).unwrap();
        assert!(postcard::from_bytes::<BoundedVec<u8, 256>>(&claim).is_err());
    }

    #[test]
    fn bounded_string_stops_at_its_bound() {
        let ok = postcard::to_stdvec("abcd").unwrap();
        assert_eq!(
            postcard::from_bytes::<BoundedString<4>>(&ok).unwrap().0,
            "abcd"
        );
        assert!(postcard::from_bytes::<BoundedString<3>>(&ok).is_err());
    }
}
