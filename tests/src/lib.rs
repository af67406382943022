//! End-to-end tests of Tessera across crates, against real peers.
//!
//! The tests live in `tests/tests/`; this library holds what they share: starting and stopping
//! real helper processes (socat pseudo-terminal pairs now; pcscd with virtual cards, FAT images
//! and the real binary in tmux as later issues add them), always by their own pid, never by name.
//!
//! It is not part of the product and nothing depends on it.
