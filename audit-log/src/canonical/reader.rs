//! A reader for exactly the canonical grammar, and nothing else.
//!
//! It reads fields in their fixed order and accepts only what the encoder writes (plain
//! integers, lowercase hex, the canonical escapes), failing at the first byte that differs with
//! the byte offset. It is not the last word on canonical form: the caller re-encodes what it
//! read and compares bytes. Being strict here gives early, precise errors and means nothing
//! outside the canonical form is ever decoded.
//!
//! The input is checked to be UTF-8 once, up front; every slice taken below starts and ends at
//! an ASCII byte (a quote), so it is on a character boundary.

use std::borrow::Cow;

use super::STOP;
use crate::error::LogError;
use crate::hash::{Hash, NIBBLE, decode_hex};

pub(crate) struct Reader<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(line: &'a [u8]) -> Result<Reader<'a>, LogError> {
        let text = std::str::from_utf8(line).map_err(|e| {
            LogError::non_canonical(format!("not UTF-8 at byte {}", e.valid_up_to()))
        })?;
        Ok(Reader { text, pos: 0 })
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    /// Where the reader is, as a byte offset.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// A non-canonical error at the reader's position.
    pub(crate) fn fail(&self, what: &str) -> LogError {
        fail_at(what, self.pos)
    }

    /// Whether the next bytes are `lit`; if so, reads them.
    pub(crate) fn eat(&mut self, lit: &[u8]) -> bool {
        let found = self.bytes()[self.pos..].starts_with(lit);
        if found {
            self.pos += lit.len();
        }
        found
    }

    /// Reads `lit`, or fails.
    pub(crate) fn expect(&mut self, lit: &'static str) -> Result<(), LogError> {
        if self.eat(lit.as_bytes()) {
            Ok(())
        } else {
            Err(self.fail(&format!("expected `{lit}`")))
        }
    }

    /// Requires the end of the line.
    pub(crate) fn end(&self) -> Result<(), LogError> {
        if self.pos == self.bytes().len() {
            Ok(())
        } else {
            Err(self.fail("expected the end of the line"))
        }
    }

    /// An unsigned integer: decimal digits, no leading zero (except `0` itself), no overflow.
    pub(crate) fn uint(&mut self) -> Result<u64, LogError> {
        let digits = self.bytes()[self.pos..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 {
            return Err(self.fail("expected a digit"));
        }
        if digits > 1 && self.bytes()[self.pos] == b'0' {
            return Err(self.fail("leading zero"));
        }
        let mut n: u64 = 0;
        for &d in &self.bytes()[self.pos..self.pos + digits] {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(d - b'0')))
                .ok_or_else(|| self.fail("integer out of range"))?;
        }
        self.pos += digits;
        Ok(n)
    }

    /// A string with only the canonical escapes; borrowed when it has none.
    pub(crate) fn string(&mut self) -> Result<Cow<'a, str>, LogError> {
        self.expect("\"")?;
        let bytes = self.bytes();
        let start = self.pos;
        let mut owned: Option<String> = None;
        let mut done = start; // bytes[start..done] are decoded into `owned`
        loop {
            // Skip the bytes that need no attention, the bulk of every string.
            while bytes.get(self.pos).is_some_and(|&b| !STOP[usize::from(b)]) {
                self.pos += 1;
            }
            let Some(&b) = bytes.get(self.pos) else {
                return Err(self.fail("unterminated string"));
            };
            match b {
                b'"' => break,
                0x00..=0x1f | 0x7f => return Err(self.fail("unescaped control character")),
                0xe2 if bytes.get(self.pos + 1) == Some(&0x80)
                    && matches!(bytes.get(self.pos + 2), Some(0xa8 | 0xa9)) =>
                {
                    return Err(self.fail("unescaped U+2028 or U+2029"));
                }
                b'\\' => {
                    let s = owned.get_or_insert_with(String::new);
                    s.push_str(self.slice(done, self.pos)?);
                    s.push(self.escape()?);
                    done = self.pos;
                }
                _ => self.pos += 1,
            }
        }
        let tail = self.slice(done, self.pos)?;
        self.pos += 1; // the closing quote
        Ok(match owned {
            None => Cow::Borrowed(tail),
            Some(mut s) => {
                s.push_str(tail);
                Cow::Owned(s)
            }
        })
    }

    /// `null`, or a string.
    pub(crate) fn nullable_string(&mut self) -> Result<Option<Cow<'a, str>>, LogError> {
        if self.eat(b"null") {
            Ok(None)
        } else {
            self.string().map(Some)
        }
    }

    /// A string of exactly `out.len() * 2` lowercase hex digits.
    pub(crate) fn hex(&mut self, out: &mut [u8]) -> Result<(), LogError> {
        let at = self.pos;
        let digits = self
            .bytes()
            .get(at..at + out.len() * 2 + 2)
            .filter(|s| s[0] == b'"' && s[s.len() - 1] == b'"')
            .and_then(|s| decode_hex(&s[1..s.len() - 1], out));
        match digits {
            Some(()) => {
                self.pos += out.len() * 2 + 2;
                Ok(())
            }
            None => Err(self.fail(&format!(
                "expected a string of {} lowercase hex digits",
                out.len() * 2
            ))),
        }
    }

    /// A hash: 64 lowercase hex digits.
    pub(crate) fn hash(&mut self) -> Result<Hash, LogError> {
        let mut h = [0u8; 32];
        self.hex(&mut h)?;
        Ok(Hash(h))
    }

    /// One escape, the reader at its backslash: `\"`, `\\`, or `\u` with four lowercase hex
    /// digits naming a control character, U+2028 or U+2029.
    fn escape(&mut self) -> Result<char, LogError> {
        let bytes = self.bytes();
        let c = match bytes.get(self.pos + 1) {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'u') => {
                let digits = bytes
                    .get(self.pos + 2..self.pos + 6)
                    .ok_or_else(|| self.fail("short \\u escape"))?;
                let mut v: u32 = 0;
                for &d in digits {
                    let n = NIBBLE[usize::from(d)];
                    if n > 0x0f {
                        return Err(self.fail("\\u escape needs four lowercase hex digits"));
                    }
                    v = (v << 4) | u32::from(n);
                }
                if !(v < 0x20 || v == 0x7f || v == 0x2028 || v == 0x2029) {
                    return Err(self.fail("escape of a character that is written as itself"));
                }
                self.pos += 4;
                char::from_u32(v).ok_or_else(|| self.fail("bad \\u escape"))?
            }
            _ => return Err(self.fail("escape other than \\\", \\\\ or \\u")),
        };
        self.pos += 2;
        Ok(c)
    }

    fn slice(&self, from: usize, to: usize) -> Result<&'a str, LogError> {
        self.text
            .get(from..to)
            .ok_or_else(|| self.fail("string not on a character boundary"))
    }
}

/// A non-canonical error at byte `pos`.
pub(crate) fn fail_at(what: &str, pos: usize) -> LogError {
    LogError::non_canonical(format!("{what} at byte {pos}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(s: &str) -> Result<Cow<'_, str>, LogError> {
        Reader::new(s.as_bytes())?.string()
    }

    #[test]
    fn strings() {
        assert_eq!(string(r#""plain""#).unwrap(), "plain");
        assert!(matches!(string(r#""plain""#).unwrap(), Cow::Borrowed(_)));
        assert_eq!(
            string(r#""a\"b\\c\u000a\u007f\u2028\u2029é""#).unwrap(),
            "a\"b\\c\n\u{7f}\u{2028}\u{2029}é"
        );
        for bad in [
            r#""open"#,
            r#""\n""#,
            r#""\/""#,
            r#""\u000A""#,
            r#""\u0041""#,
            r#""\u00e9""#,
            r#""\ud83d\ude00""#,
            r#""\u00""#,
            "\"raw\ttab\"",
            "\"raw\u{2028}sep\"",
            "\"del\u{7f}\"",
            "plain",
        ] {
            assert!(string(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn integers() {
        let uint = |s: &str| Reader::new(s.as_bytes()).unwrap().uint();
        assert_eq!(uint("0"), Ok(0));
        assert_eq!(uint("1234,"), Ok(1234));
        assert_eq!(uint("18446744073709551615"), Ok(u64::MAX));
        for bad in ["", "01", "00", "-1", "+1", "18446744073709551616", "x"] {
            assert!(uint(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn not_utf8() {
        assert!(Reader::new(b"\"\xff\"").is_err());
    }
}
