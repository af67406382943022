//! The PIN as it is typed: a zeroizing buffer outside the model, handed to the worker whole
//! and wiped. The model only counts the characters (for the bullets).

use quorum::card::Pin;
use zeroize::Zeroizing;

use crate::flows::login::MAX_PIN_CHARS;

/// The PIN being typed. No `Clone`, no `Debug` that shows it.
pub struct PinBuffer(Zeroizing<Vec<u8>>);

impl PinBuffer {
    /// An empty buffer, allocated once at its largest so that typing never reallocates (and
    /// leaves no unwiped copy behind).
    pub fn new() -> PinBuffer {
        PinBuffer(Zeroizing::new(Vec::with_capacity(MAX_PIN_CHARS * 4)))
    }

    /// Appends a typed character (UTF-8).
    pub fn push(&mut self, c: char) {
        let mut bytes = [0u8; 4];
        let encoded = c.encode_utf8(&mut bytes);
        if self.0.len() + encoded.len() <= self.0.capacity() {
            self.0.extend_from_slice(encoded.as_bytes());
        }
        bytes.iter_mut().for_each(|b| *b = 0);
    }

    /// Erases the last character.
    pub fn pop(&mut self) {
        while let Some(b) = self.0.pop() {
            // Stop at the first byte of a UTF-8 sequence.
            if b & 0xC0 != 0x80 {
                break;
            }
        }
    }

    /// Wipes the buffer.
    pub fn clear(&mut self) {
        self.0.iter_mut().for_each(|b| *b = 0);
        self.0.clear();
    }

    /// Characters typed.
    pub fn chars(&self) -> usize {
        self.0.iter().filter(|b| **b & 0xC0 != 0x80).count()
    }

    /// Takes the PIN out (as a zeroizing [`Pin`]) and leaves the buffer empty.
    pub fn take(&mut self) -> Pin {
        let pin = Pin::from_slice(&self.0);
        self.clear();
        pin
    }
}

impl Default for PinBuffer {
    fn default() -> Self {
        PinBuffer::new()
    }
}

impl std::fmt::Debug for PinBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PinBuffer(<{} characters>)", self.chars())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typing_erasing_and_taking() {
        let mut pin = PinBuffer::new();
        for c in "pä1".chars() {
            pin.push(c);
        }
        assert_eq!(pin.chars(), 3);
        pin.pop();
        assert_eq!(pin.chars(), 2);
        pin.push('x');
        assert_eq!(format!("{pin:?}"), "PinBuffer(<3 characters>)");
        let taken = pin.take();
        assert_eq!(taken.expose(), "päx".as_bytes());
        assert_eq!(pin.chars(), 0);
    }
}
