//! Ceremonies: UI-free state machines that take officer cards one at a time and speak the
//! administration link's requests.
//!
//! Each ceremony takes cards through the [`VerifiedCard`](crate::card::VerifiedCard) trait, so
//! soft cards and OpenPGP cards over PC/SC work alike, and talks to the HSM through [`Link`] (implemented here for
//! [`hsm_link::client::Connection`]). None of them prompts, prints or draws anything: a caller
//! (the TUI, a test) asks for the next card, verifies it with its PIN, hands the verified card
//! to the ceremony, and shows the [`Progress`] it gets back ("2 of 3 — insert the next card").
//!
//! One flow, one file:
//!
//! - `login.rs`, [`LoginCeremony`]: the HSM's challenge, bound to this session's channel,
//!   signed by m distinct cards of the active set; a card not in the set, or the same card
//!   twice, is refused and named.
//! - `enrol.rs`, [`Enrolment`]: a fresh recovery secret split m-of-n; a share sealed to each
//!   card, read back from every card and checked against the commitments before the set is
//!   registered.
//! - `auditors.rs`, [`AuditorEnrolment`]: an auditor set (card keys only: no share, no secret).
//! - `reshare.rs`, [`Reshare`] → [`ReshareNewSet`] → [`ReshareWipe`]: the same secret moved
//!   from m cards of the active set to a new set; the old share is wiped from every old card
//!   present and removed beside the new one on every card in both sets; old cards that were not
//!   present are reported (and logged by the HSM). Each step is its own type: after the split
//!   only new cards are taken.
//! - `revoke.rs`, [`Revocation`]: a fresh secret for a new set without the revoked card, whose
//!   login signatures the HSM refuses from then on.
//! - `drill.rs`, [`Drill`]: one holder's card yields its share, which is checked against the
//!   commitments the HSM holds; the result is signed by the card, reported to the HSM and
//!   logged. Nothing is combined.
//! - `recover.rs`, [`Recovery`]: m shares checked one by one, combined, and the quorum backup
//!   key derived.
//!
//! Shared by several flows: `members.rs` (the cards joining a new set with their proofs of
//! possession, a new PSO set's shares waiting for their cards, [`Registered`]) and
//! `active_set.rs` ([`ActiveSet`] as the HSM describes it, and the collection of its shares
//! that the drill, the recovery and the re-share read). This file holds what every ceremony
//! speaks: [`Link`], [`CardRef`], [`Progress`] and [`CeremonyError`].
//!
//! Enrolment, auditor enrolment, re-share and revocation each open a ceremony at the HSM
//! ([`AdminRequest::BeginCeremony`]) and register the new set with that ceremony's id
//! ([`AdminRequest::RegisterCardSetInCeremony`]); the HSM refuses a registration that names
//! another ceremony (against the "bait-and-switch" of a step slipped in from elsewhere). Each
//! card joining a set signs a proof of possession
//! ([`hsm_link::message::enrolment_message`]: this session, this ceremony, this set, and the
//! card as registered); the HSM registers the set only if every card's proof verifies: nobody
//! enrols another person's public key without that person's card, and no card is registered
//! under another holder than it signed for. (The proof shows that a key was held in this
//! session, not that it lives on a smartcard.) Until
//! the registration the HSM's active set is untouched: dropping a ceremony at any step
//! registers nothing.
//!
//! **PINs.** A ceremony never sees a PIN nor an unverified card. The caller verifies each card
//! with [`Card::verify`](crate::card::Card::verify); on [`CardError::WrongPin`] it gets the
//! unverified card back with `retries_left`, shows that count, and asks again with the same
//! card (the ceremony's state is untouched); on [`CardError::Blocked`] it says how to unblock
//! the card and asks for another one.
//!
//! **Cards in both sets (re-share and revoke).** A card's share object holds up to two
//! envelopes, one per set ([`crate::card::ShareObject`]). A card of the old set that is also
//! enrolled in the new set keeps its old envelope when its new one is written, so aborting the
//! ceremony before the registration leaves the old set whole. After the registration,
//! [`Registered::drop_old_share`] removes the old envelope from each such card (keeping the new
//! one), and [`ReshareWipe::wipe`] empties the old cards present that left the set.
//!
//! **Cards pulled mid-ceremony.** A card that fails after its new share was written is asked
//! to remove it again; one that cannot (pulled from its reader) is listed as a leftover, wiped
//! by the ceremony if it comes back (`wipe_leftover`), else named in [`Registered`] and in the
//! HSM's log entry of the registration. A later drill recognises such an envelope
//! ([`ActiveSet::leftover_envelopes`], [`CeremonyError::LeftoverShare`]) and offers to wipe it
//! ([`Drill::wipe_leftovers`]).
//!
//! [`CardError::WrongPin`]: crate::error::CardError::WrongPin
//! [`CardError::Blocked`]: crate::error::CardError::Blocked

mod active_set;
mod auditors;
mod drill;
mod enrol;
mod login;
mod members;
mod recover;
mod reshare;
mod revoke;

use hsm_link::domain::CeremonyId;
use std::fmt;

use hsm_link::client::Connection;
use hsm_link::domain::{CardDescription, DomainError, PartitionId};
use hsm_link::message::{
    AdminError, AdminRequest, AdminResponse, CeremonyKind, RemoteError, Request, Response,
};
use hsm_link::transport::FrameTransport;

use crate::card::CardInfo;
use crate::error::{CardError, QuorumError};

pub use active_set::ActiveSet;
pub use auditors::{AuditorEnrolment, AuditorsRegistered};
pub use drill::{Drill, DrillOutcome};
pub use enrol::Enrolment;
pub use login::{Challenge, LoginCeremony};
pub use members::Registered;
pub use recover::Recovery;
pub use reshare::{Reshare, ReshareNewSet, ReshareWipe};
pub use revoke::{Revocation, RevocationDone};

/// The administration link as a ceremony needs it.
pub trait Link {
    /// Sends one administration request and waits for its answer.
    fn admin(&mut self, request: AdminRequest) -> Result<AdminResponse, LinkError>;

    /// This session's channel binding (the Noise handshake hash), which login signatures cover.
    fn channel_binding(&self) -> [u8; 32];

    /// The partition this session administers.
    fn partition(&self) -> &PartitionId;

    /// Sends one administration request whose answer is a bulk transfer (a backup), writing
    /// its bytes to `sink` as they arrive, and returns the final answer. A sink that fails
    /// stops the transfer with `LinkError::Failed(hsm_link::Error::Sink(_))`. A link that
    /// carries no bulk transfers (a replay in a benchmark) keeps this default, which answers
    /// [`LinkError::Unexpected`].
    fn download(
        &mut self,
        request: AdminRequest,
        sink: &mut dyn std::io::Write,
    ) -> Result<AdminResponse, LinkError> {
        let _ = (request, sink);
        Err(LinkError::Unexpected)
    }
}

/// Why a request over the [`Link`] did not get the answer it wanted.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The HSM refused the request (typed).
    #[error("the HSM refused: {0}")]
    Refused(RemoteError),
    /// The link itself failed.
    #[error("the link failed: {0}")]
    Failed(hsm_link::Error),
    /// The HSM answered with something other than the request's answer.
    #[error("the HSM gave an unexpected answer")]
    Unexpected,
}

impl LinkError {
    /// The HSM's typed administration refusal, if that is what this is.
    pub fn admin_error(&self) -> Option<&AdminError> {
        match self {
            LinkError::Refused(RemoteError::Admin(e)) => Some(e),
            _ => None,
        }
    }
}

impl<T: FrameTransport> Link for Connection<T> {
    fn admin(&mut self, request: AdminRequest) -> Result<AdminResponse, LinkError> {
        match self.call(Request::Admin(request)) {
            Ok(Response::Admin(response)) => Ok(response),
            Ok(_) => Err(LinkError::Unexpected),
            Err(hsm_link::Error::Remote(e)) => Err(LinkError::Refused(e)),
            Err(e) => Err(LinkError::Failed(e)),
        }
    }

    fn channel_binding(&self) -> [u8; 32] {
        *self.session().channel_binding()
    }

    fn partition(&self) -> &PartitionId {
        Connection::partition(self)
    }

    fn download(
        &mut self,
        request: AdminRequest,
        sink: &mut dyn std::io::Write,
    ) -> Result<AdminResponse, LinkError> {
        match self.call_download(Request::Admin(request), sink) {
            Ok(Response::Admin(response)) => Ok(response),
            Ok(_) => Err(LinkError::Unexpected),
            Err(hsm_link::Error::Remote(e)) => Err(LinkError::Refused(e)),
            Err(e) => Err(LinkError::Failed(e)),
        }
    }
}

/// What a ceremony remembers of its link: the session's channel binding and the partition,
/// which the cards' proofs of possession name.
#[derive(Clone)]
pub(crate) struct Session {
    binding: [u8; 32],
    partition: PartitionId,
    /// Whether the HSM accepts soft cards in a set (it announced it when the ceremony began):
    /// when not, a soft card is refused before a share is written to it.
    soft_cards_allowed: bool,
}

/// A card as a ceremony names it: its holder and serial.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardRef {
    /// The holder the card (or the registered set) names, if any.
    pub holder: Option<String>,
    /// The card's serial.
    pub serial: String,
    /// A soft card.
    pub soft: bool,
}

impl CardRef {
    fn of(info: &CardInfo) -> CardRef {
        CardRef {
            holder: info.holder.clone(),
            serial: info.serial.clone(),
            soft: info.soft,
        }
    }

    fn of_description(card: &CardDescription) -> CardRef {
        CardRef {
            holder: Some(card.holder.as_str().to_owned()),
            serial: card.serial.to_string(),
            soft: card.soft_card,
        }
    }
}

/// `soft card SOFT:0001 (Ada Demo)`; control characters are replaced (see [`CardInfo`]'s
/// `Display`).
impl fmt::Display for CardRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let info = CardInfo {
            holder: self.holder.clone(),
            serial: self.serial.clone(),
            signing_public: [0; 32],
            decryption_public: [0; 32],
            soft: self.soft,
            pin_retries_left: None,
        };
        fmt::Display::fmt(&info, f)
    }
}

/// How far a ceremony step is: `have` of `need` cards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Cards done.
    pub have: usize,
    /// Cards needed.
    pub need: usize,
}

impl Progress {
    /// Whether enough cards are done.
    pub fn complete(&self) -> bool {
        self.have >= self.need
    }
}

/// "2 of 3 — insert the next card", or "3 of 3 — complete".
impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.complete() {
            write!(f, "{} of {} — complete", self.have, self.need)
        } else {
            write!(f, "{} of {} — insert the next card", self.have, self.need)
        }
    }
}

/// Why a ceremony step failed. Every failure that concerns a card names it.
#[derive(Debug, thiserror::Error)]
pub enum CeremonyError {
    /// A card that is not in the set this step needs.
    #[error("{card} is not in this partition's active card set: set it aside")]
    NotInSet {
        /// The card.
        card: CardRef,
    },
    /// A card not in the active set that still holds share envelopes no registered set counts
    /// on (see [`ActiveSet::leftover_envelopes`]).
    #[error(
        "{card} is not in this partition's active card set but still holds a share envelope of \
         set {}, left by an earlier ceremony: wipe it before the card is used again",
        set_list(sets)
    )]
    LeftoverShare {
        /// The card.
        card: CardRef,
        /// The set numbers of its envelopes.
        sets: Vec<u32>,
    },
    /// A card presented twice.
    #[error("{card} was already presented in this ceremony: each card counts once")]
    SameCardTwice {
        /// The card.
        card: CardRef,
    },
    /// A card (its own key) that carries the serial of another card of this ceremony: a serial
    /// names one card, in the set and in the log.
    #[error(
        "{card} carries the same serial as {other}, already named in this ceremony: a serial must \
         name one card; set it aside"
    )]
    TwinSerial {
        /// The card presented.
        card: CardRef,
        /// The card whose serial it carries.
        other: CardRef,
    },
    /// The card being revoked takes no part in its revocation.
    #[error("{card} is the card being revoked: it cannot join the new set")]
    RevokedCard {
        /// The card.
        card: CardRef,
    },
    /// A card that could not sign its proof of possession.
    #[error(
        "{card} could not sign: {source}; check that it is still in its reader and present it \
         again"
    )]
    Proof {
        /// The card.
        card: CardRef,
        /// What went wrong.
        #[source]
        source: CardError,
    },
    /// A card whose share could not be wiped.
    #[error("{card} could not be wiped: {source}; present it again")]
    Wipe {
        /// The card.
        card: CardRef,
        /// What went wrong.
        #[source]
        source: CardError,
    },
    /// A card whose share did not read back, did not open, or failed its check.
    #[error("the share on {card} is not usable: {source}")]
    BadShare {
        /// The card.
        card: CardRef,
        /// What went wrong.
        #[source]
        source: QuorumError,
    },
    /// A card to enrol that carries no holder name.
    #[error("{card} carries no holder name: set one before enrolling it")]
    NoHolder {
        /// The card.
        card: CardRef,
    },
    /// Not enough cards for this step yet.
    #[error("{have} of {need} cards so far: insert the next card")]
    NotEnoughCards {
        /// Cards done.
        have: usize,
        /// Cards needed.
        need: usize,
    },
    /// A card beyond the n the new set was split for.
    #[error("the new set already has its {n} cards: {card} is not needed; set it aside")]
    SetComplete {
        /// The card.
        card: CardRef,
        /// The set's number of cards.
        n: usize,
    },
    /// A soft card offered to a set on an HSM that accepts none (it said so when the ceremony
    /// began): refused before a share was written to it.
    #[error(
        "{card} is a soft card, and this HSM does not accept soft cards in a card set (its \
         owner allows them with `tessera-hsm soft-cards allow`): nothing was written to it; \
         use a smartcard"
    )]
    SoftCardRefusedByHsm {
        /// The card.
        card: CardRef,
    },
    /// The partition has no PSO set with recovery parts.
    #[error("this partition has no PSO card set yet: enrol one first")]
    NoActiveSet,
    /// The quorum backup key recovered is not the one the HSM holds.
    #[error("the recovered quorum backup key is not the one registered at the HSM")]
    BackupKeyMismatch,
    /// A holder name or serial the link cannot carry.
    #[error("invalid card label: {0}")]
    Label(#[from] DomainError),
    /// Splitting, sealing or combining failed.
    #[error(transparent)]
    Quorum(#[from] QuorumError),
    /// A card operation failed.
    #[error(transparent)]
    Card(#[from] CardError),
    /// The HSM refused, or the link failed.
    #[error(transparent)]
    Link(#[from] LinkError),
}

/// "3" or "2, 3" (set numbers; 0 for an envelope whose set was not recorded).
fn set_list(sets: &[u32]) -> String {
    let sets: Vec<String> = sets.iter().map(u32::to_string).collect();
    sets.join(", ")
}

/// Opens a ceremony of `kind` at the HSM; its id, and the session as the ceremony's cards sign
/// for it (with the HSM's soft-card policy).
fn begin(
    link: &mut (impl Link + ?Sized),
    kind: CeremonyKind,
) -> Result<(CeremonyId, Session), CeremonyError> {
    match link.admin(AdminRequest::BeginCeremony { kind })? {
        AdminResponse::Ceremony {
            id,
            soft_cards_allowed,
        } => Ok((
            id,
            Session {
                binding: link.channel_binding(),
                partition: link.partition().clone(),
                soft_cards_allowed,
            },
        )),
        _ => Err(LinkError::Unexpected.into()),
    }
}
