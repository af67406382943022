//! Support for Tessera's tests and benchmarks, shared across crates as a dev-dependency (so
//! that Cargo sees every edge), and the end-to-end tests across crates (`tests/tests/`).
//!
//! - [`SocatPair`]: a socat pseudo-terminal pair, the serial line of the serial-link tests.
//! - [`corpus`]: the corpus side of the fuzz targets, run as ordinary tests on stable.
//! - [`hsm_process`]: the real `tessera-hsm` binary for command-line tests: built if missing,
//!   initialised with a partition, served on loopback and stopped by its own pid.
//! - `pcsc_stack` (feature `pcsc`): the PC/SC test stack's run directory, lock and card reset.
//! - `timed_card` (feature `quorum`): a card whose operations are timed, to keep card time
//!   apart from the terminal's own.
//! - [`process`]: a program run as a child process, its standard input given as text.
//! - [`sysfs`]: a fake sysfs tree with its mount table and device nodes (drive discovery, the
//!   drive allow-list).
//! - [`tmux`]: a program in a real terminal (tmux), driven by keys and read from the screen.
//! - `partition` (feature `partition`): a real HSM in a temporary directory, served over the
//!   in-memory link, and test-held officer cards that log in: the "serve and log in" fixture.
//!
//! The features keep what a crate's tests do not use out of their build. Helper processes are
//! started and stopped always by their own pid, never by name. It is not part of the product and
//! no product crate depends on it.

pub mod corpus;
pub mod hsm_process;
#[cfg(feature = "partition")]
pub mod partition;
#[cfg(feature = "pcsc")]
pub mod pcsc_stack;
pub mod process;
mod socat;
pub mod sysfs;
#[cfg(feature = "quorum")]
pub mod timed_card;
pub mod tmux;

pub use socat::SocatPair;
