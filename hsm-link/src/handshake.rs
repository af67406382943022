//! The hello and Noise handshake as sans-IO state machines.
//!
//! Each state is a type that holds only its own data; `handle(self, frame)` consumes it and
//! returns the next state and the frame to send. Nothing here touches a socket.
//!
//! Pairing (first contact) runs `Noise_XXpsk3_25519_AESGCM_SHA256` with the pre-shared key
//! derived from the one-time pairing code; pinned sessions run `Noise_KK_25519_AESGCM_SHA256`.
//! In both, the terminal's first handshake message carries no payload, and no request travels
//! before the handshake completes. The prologue binds both plaintext hellos
//! (Noise specification, revision 34, §§ 6, 7.4, 9).

pub mod client;
pub mod server;

use snow::params::NoiseParams;

pub(crate) const PAIRING_PATTERN: &str = "Noise_XXpsk3_25519_AESGCM_SHA256";
pub(crate) const PINNED_PATTERN: &str = "Noise_KK_25519_AESGCM_SHA256";

pub(crate) fn params(pattern: &str) -> NoiseParams {
    pattern
        .parse()
        .expect("the two Noise patterns are valid and supported by snow")
}

pub(crate) fn binding(hash: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&hash[..32]);
    out
}
