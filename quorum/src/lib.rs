//! Officer cards and the m-of-n quorum's recovery secret.
//!
//! At enrolment the terminal draws a random recovery secret, splits it m-of-n with Feldman
//! verifiable secret sharing over P-256, seals each share to one card's X25519 decryption key,
//! derives the quorum backup key pair (X-Wing) from the secret, and forgets the secret. The HSM
//! keeps the commitments and the backup public key. In a recovery ceremony the cards' shares are
//! checked one by one as they arrive, m of them are combined, and the backup key unwraps a
//! backup's data key.
//!
//! ```
//! use hsm_link::domain::PartitionId;
//! use quorum::envelope::{EnvelopeHeader, ShareContext, open_share_with_x25519, seal_share};
//! use quorum::secret::{self, QuorumBackupKey, RecoverySecret};
//! use x25519_dalek::{PublicKey, StaticSecret};
//!
//! // Three cards' decryption keys (on real cards they never leave the card).
//! let cards: Vec<StaticSecret> = (1..=3u8).map(|i| StaticSecret::from([i; 32])).collect();
//! let context = |index: u8| ShareContext {
//!     partition: PartitionId::new("payments").unwrap(),
//!     set_number: 1,
//!     share_index: index,
//!     card_serial: format!("CARD-{index}"),
//! };
//!
//! // Enrolment: split 2-of-3, seal each share to its card, register the backup public key.
//! let secret = RecoverySecret::generate()?;
//! let (shares, commitments) = secret::split(&secret, 2, 3)?;
//! let (_, backup_public) = QuorumBackupKey::derive(&secret);
//! let envelopes: Vec<Vec<u8>> = shares
//!     .iter()
//!     .zip(&cards)
//!     .map(|(share, card)| {
//!         let public = PublicKey::from(card).to_bytes();
//!         seal_share(&public, &context(share.index()), share)
//!     })
//!     .collect::<Result<_, _>>()?;
//! drop((secret, shares)); // zeroized
//!
//! // A backup: the HSM wraps its data key to the quorum backup key.
//! let wrapped = secret::wrap_to(&backup_public, &[7u8; 32])?;
//!
//! // Recovery: cards 3 and 1 open their envelopes; each share is checked as it arrives.
//! let mut arrived = Vec::new();
//! for index in [3u8, 1] {
//!     let envelope = EnvelopeHeader::parse(&envelopes[usize::from(index) - 1])?;
//!     let card_secret = cards[usize::from(index) - 1].to_bytes();
//!     let share = open_share_with_x25519(&envelope, &card_secret, &context(index))?;
//!     secret::verify_share(&commitments, &share)?;
//!     arrived.push(share);
//! }
//! let secret = secret::combine(&commitments, 2, &arrived)?;
//! let (backup_key, _) = QuorumBackupKey::derive(&secret);
//! assert_eq!(*secret::unwrap_with(&backup_key, &wrapped)?, [7u8; 32]);
//! # Ok::<(), quorum::QuorumError>(())
//! ```
//!
//! - [`secret`]: the recovery secret, [`split`]/[`verify_share`]/[`combine`] (1 ≤ m ≤ n ≤ 16;
//!   for m = 1 every card holds the whole secret), the commitments' encoding, and the quorum
//!   backup key ([`QuorumBackupKey`], [`wrap_to`], [`unwrap_with`]).
//! - [`envelope`]: a share sealed to a card (X25519 + HKDF-SHA256 + AES-256-GCM), bound to the
//!   partition, card set number, share index and card serial.
//! - [`card`]: the [`Card`] → [`VerifiedCard`] typestate; only a verified card signs or yields
//!   its share.
//! - [`card_policy`]: [`CardPolicy`], which decides whether soft cards are accepted (hardware
//!   cards only by default).
//! - [`soft`]: [`SoftCard`], a passphrase-sealed file (Argon2id + AES-256-GCM) for the demo and
//!   for laptops without a reader, labelled "soft card" everywhere.
//! - [`pcsc`]: [`PcscCard`], an OpenPGP card (v3.x) reached through PC/SC: keys generated on the
//!   card (Ed25519 signing, X25519 decryption), the card's own PIN and retry counter, the share
//!   envelope in private-use data object 0103 (read and written only after the PIN).
//! - [`setup`]: an OpenPGP card set up for enrolment (keys generated on the card, holder, the
//!   holder's PIN entered twice, the admin PIN changed from the factory default and its keeper
//!   named).
//! - [`ceremony`]: UI-free state machines for login, enrolment, drill, recovery, re-share and
//!   revocation, taking cards through [`VerifiedCard`] and speaking `hsm-link` requests through
//!   [`ceremony::Link`].
//!
//! Secrets, shares, PINs and derived keys live in zeroizing buffers, have no `Clone` and a
//! redacted `Debug`, and this crate never logs them or writes them to disk (a soft card writes
//! its keys sealed under its passphrase, and a share only inside its envelope).
//!
//! The error enums ([`QuorumError`], [`CardError`], [`EnvelopeError`],
//! [`ceremony::CeremonyError`], [`ceremony::LinkError`], [`setup::PinChoiceError`]) are not
//! `#[non_exhaustive]`: the crate is not published (the workspace sets `publish = false`), every
//! caller is in this workspace, and a new case should make each exhaustive `match` on it (the
//! terminal's) fail to compile until it says what to do.
//!
//! This crate never decides whether a smartcard's PIN is right — each card checks its own, with
//! its own retry counter — and never prints, prompts or draws anything.

pub mod card;
pub mod card_policy;
pub mod ceremony;
pub mod envelope;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod pcsc;
pub mod secret;
pub mod setup;
pub mod soft;

pub use card::{Card, CardInfo, Pin, VerifiedCard};
/// The card policy's module under its earlier name, so that paths written before the rename
/// (`quorum::policy::ALLOW_SOFT_CARDS_KEY`) still compile.
#[doc(hidden)]
pub use card_policy as policy;
pub use card_policy::CardPolicy;
pub use envelope::{EnvelopeHeader, ShareContext, open_share, open_share_with_x25519, seal_share};
pub use error::{CardError, EnvelopeError, QuorumError};
/// A process that holds card PINs and shares disables core dumps first (the same hardening as
/// both ends of the link; re-exported for the tools built on cards).
pub use hsm_link::process::disable_core_dumps;
pub use pcsc::{GeneratedKeys, PcscAdmin, PcscCard, VerifiedPcscCard};
pub use secret::{
    Commitments, QuorumBackupKey, QuorumBackupPublicKey, RecoverySecret, Share, combine, split,
    unwrap_with, verify_share, wrap_to,
};
pub use soft::{Argon2Params, SoftCard, VerifiedSoftCard};
