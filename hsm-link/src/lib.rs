//! Tessera's admin link: the protocol a terminal and an HSM speak.
//!
//! ```
//! use hsm_link::client::{self, ConnectOptions};
//! use hsm_link::domain::PartitionId;
//! use hsm_link::handshake::client::ClientMode;
//! use hsm_link::keys::StaticKeypair;
//! use hsm_link::message::{Request, Response};
//! use hsm_link::server::{self, ServeOptions};
//! use hsm_link::transport::memory;
//! use hsm_link::trust::MemoryTrustStore;
//!
//! let partition = PartitionId::new("demo").unwrap();
//! let trust = MemoryTrustStore::default();
//! trust.add_partition(partition.clone());
//! let code = trust.issue_pairing_code(&partition).unwrap();
//! let hsm = StaticKeypair::generate().unwrap();
//! let terminal = StaticKeypair::generate().unwrap();
//!
//! let (terminal_end, mut hsm_end) = memory::pair();
//! std::thread::scope(|s| {
//!     s.spawn(|| server::serve_connection(
//!         &mut hsm_end, &hsm, &ServeOptions::default(), &trust, &server::NoAdministration,
//!     ));
//!     let mut conn = client::connect(
//!         terminal_end, &terminal, partition.clone(),
//!         ClientMode::Pairing(code), ConnectOptions::default(),
//!     ).unwrap();
//!     // The HSM proved it knew the code: pin its key for later sessions.
//!     assert_eq!(conn.session().remote_key(), hsm.public());
//!     assert_eq!(conn.call(Request::Ping).unwrap(), Response::Pong);
//!     conn.close().unwrap();
//! });
//! ```
//!
//! - **Hello** ([`hello`]): a short plaintext exchange that settles the protocol version and
//!   refuses an unknown partition or terminal clearly, before any handshake; bound into the
//!   Noise prologue.
//! - **Secure channel** ([`handshake`], [`session`]): Noise `XXpsk3` for pairing with a
//!   one-time code ([`pairing`]), Noise `KK` with pinned keys afterwards; explicit message
//!   counters so that replays, reordering and loss are named; periodic rekeying.
//! - **Framing** ([`frame`]): length-prefixed over TCP, COBS with a CRC over a serial line.
//! - **Messages** ([`message`]): versioned requests and responses with ids and typed errors,
//!   chunked bulk transfers with flow control.
//! - **Domain types** ([`domain`]): the partition configuration and other plain data both ends
//!   share.
//! - **Transports** ([`transport`]): in-memory pair, TCP, serial line; the blocking drivers
//!   [`client`] and [`server`] sit at this edge, and [`listener`] holds what a TCP listener
//!   needs to stop cleanly and to keep unauthenticated connections from taking every slot.
//!
//! The state machines in [`handshake`] and [`session`] are sans-IO: they take and give bytes.
//! This crate does not store anything: pinned keys and pairing codes live behind
//! [`trust::TrustStore`] on the HSM side and in the terminal's own state. It does not decide who
//! may do what in a partition; that is the partition service's policy.

pub mod client;
pub mod domain;
pub mod error;
pub mod frame;
pub mod fuzzing;
pub mod handshake;
pub mod hello;
pub mod keys;
pub mod limits;
pub mod listener;
pub mod message;
pub mod pairing;
pub mod process;
pub mod server;
pub mod session;
pub mod transport;
pub mod trust;

pub use error::Error;
