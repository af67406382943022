//! The application listener: where the partition's technical user (seed 002 §3.1a, the
//! business application) authenticates and uses keys, and where the partition's configuration
//! (seed 002 §4.3: API providers, key import and export, invalidation, read-only, session
//! objects, object destruction and usage, IP allow-list) shows.
//!
//! It stands in for the JCE, CNG, PKCS#11 and REST providers of a real HSM: one small
//! protocol whose hello names the provider, so each provider switch can be tested. Unlike the
//! administration link (`hsm-link`, Noise) it is not encrypted: it is a simulator's test and
//! demo interface, meant for loopback or a trusted network.
//!
//! This module frames, orders and bounds; the partition behind [`AppBackend`] checks the
//! allow-list, the provider, the credentials and the configuration, and logs.
//!
//! # Wire format, version 1
//!
//! ```text
//! client -> server  54 53 41 50 01            "TSAP", version 1
//! server -> client  54 53 41 50 01            its own magic and version (nothing at all
//!                                             after a wrong magic; it closes after a version
//!                                             it does not speak)
//! then frames both ways:
//!                   LL LL LL LL  body          u32 big-endian length <= MAX_APP_FRAME,
//!                                             then postcard
//! client frames:    AppRequest                Hello first, exactly once
//! server frames:    Result<AppResponse, AppError>, one per request, in order
//! ```
//!
//! For example `List` is the frame `00 00 00 01 02` and the reply `Ok(Verified)` is
//! `00 00 00 02 00 04`. A frame that is too long, cut short or does not decode is answered
//! with [`AppError::Malformed`] and ends the connection; so do a request before the hello
//! ([`AppError::HelloFirst`]) and a refused hello.
//!
//! # Choosing the client's source address
//!
//! `std::net::TcpStream` cannot bind before it connects, so [`AppClient`] always connects from
//! the address the kernel picks. Code that must connect from a given address (IP allow-list
//! tests) binds and connects a socket itself and hands it to [`AppClient::from_stream`].

mod bounds;
mod client;
mod protocol;
mod secret;
mod server;
mod wire;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub use client::{AppClient, AppClientError};
pub use protocol::{AppError, AppReply, AppRequest, AppResponse};
pub use secret::{AppAuth, InvalidSecretText, SecretBytes, SecretText};
pub use server::{
    AppBackend, AppConnection, AppServer, AppServerOptions, ConnectionEnd, ServeError,
    serve_connection, serve_connection_with,
};
pub use wire::WireError;

/// The first bytes of every application connection, both ways.
pub const APP_MAGIC: &[u8; 4] = b"TSAP";

/// The application protocol version this build speaks.
pub const APP_PROTOCOL_VERSION: u8 = 1;

/// Length of the preamble: magic and version byte.
pub const PREAMBLE_LEN: usize = APP_MAGIC.len() + 1;

/// Length of a frame's length prefix (big-endian `u32`).
pub const FRAME_LENGTH_LEN: usize = 4;

/// Largest frame body, checked before anything is allocated for it.
pub const MAX_APP_FRAME: usize = 1024 * 1024;

/// Longest message, signature, ciphertext, wrapped key, plaintext or key material.
pub const MAX_APP_MESSAGE: usize = 64 * 1024;

/// Most keys in one list.
pub const MAX_APP_LIST: usize = 10_000;

/// Longest setup password, permanent secret or other secret text, in bytes.
pub const MAX_APP_SECRET_LEN: usize = 256;

/// Connections the listener serves at once, so that a flood of connections cannot exhaust the
/// simulator's threads. When all are taken a new connection sheds the oldest one that has not
/// been authenticated; only when every one is authenticated is the new one closed.
pub const MAX_APP_CONNECTIONS: usize = 64;

/// Connections one source address (an IPv6 /64) holds at once; more are closed at once.
pub const MAX_APP_CONNECTIONS_PER_SOURCE: usize = 16;

/// How long the preamble and the hello may take together, counted from accept (however
/// slowly their bytes arrive), before the listener closes the connection.
pub const APP_HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the listener waits for the next request (or for the rest of one) on an
/// authenticated connection before it closes it.
pub const APP_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long [`AppClient::connect`] waits for the TCP connection.
pub const APP_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the client waits for a reply.
pub const APP_CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
