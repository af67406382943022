//! The terminal library's one error type.
//!
//! The cases a screen must act on differently are typed values of their own, not text: a wrong
//! PIN with the tries left ([`Error::WrongPin`]), a blocked card ([`Error::Blocked`]), a card of
//! another set ([`Error::WrongCard`]), the same card twice ([`Error::SameCardTwice`]), a
//! throttled login or drill report ([`Error::Throttled`], with the HSM's wait), a stale
//! configuration revision ([`Error::StaleRevision`]) and a session another terminal took over
//! ([`Error::Superseded`]). [`Error::from`] finds them inside `quorum`'s and `hsm-link`'s errors,
//! wherever those nest them, so a caller never digs through a chain of sources for them.
//! Everything else keeps its source's own typed error.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use hsm_link::domain::PartitionId;
use hsm_link::message::{AdminError, CloseReason, LoginRefusal, RemoteError};
use hsm_link::pairing::PairingCodeError;
use quorum::ceremony::{CardRef, CeremonyError, LinkError};
use quorum::{CardError, QuorumError};

use crate::config::ConfigError;
use crate::state::StateError;

/// A card as an error names it: `soft card SOFT:0001 (Ada Demo)`, or `the card` when the
/// failing step did not know which.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardName(Option<CardRef>);

impl CardName {
    /// The card `card` names.
    pub fn of(card: CardRef) -> CardName {
        CardName(Some(card))
    }

    /// A card the failing step could not name.
    pub fn unknown() -> CardName {
        CardName(None)
    }

    /// The card, when known.
    pub fn card(&self) -> Option<&CardRef> {
        self.0.as_ref()
    }
}

impl fmt::Display for CardName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(card) => card.fmt(f),
            None => f.write_str("the card"),
        }
    }
}

/// What a throttled request was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Throttle {
    /// Logins: too many failed ones recently.
    Login,
    /// Share drill reports made without a login.
    DrillReport,
}

/// Everything the terminal library can fail with. Each case names what was being done and to
/// what, and says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A wrong PIN (or soft card passphrase). Ask again with the same card.
    #[error("{card}: {}", CardError::WrongPin { retries_left: *retries_left })]
    WrongPin {
        /// The card.
        card: CardName,
        /// Tries left before the card blocks, if the card counts them (a soft card does not).
        retries_left: Option<u8>,
    },
    /// The card's PIN is blocked. Ask for another card.
    #[error(
        "{card}: the PIN is blocked; unblock it with the admin PIN or the resetting code, and insert another card meanwhile"
    )]
    Blocked {
        /// The card.
        card: CardName,
    },
    /// A card that is not in the set this step needs (another partition's, an older set's, or
    /// a revoked one). Ask for another card.
    #[error(
        "{card} is not in this partition's active card set: set it aside and insert another card"
    )]
    WrongCard {
        /// The card.
        card: CardName,
    },
    /// A card presented twice in one ceremony. Ask for another card.
    #[error("{card} was already presented: each card counts once; insert another card")]
    SameCardTwice {
        /// The card.
        card: CardName,
    },
    /// The HSM rations these requests: wait before trying again.
    #[error("{}: try again in {} s", match what {
        Throttle::Login => "too many failed logins at the HSM",
        Throttle::DrillReport => "too many share drills reported without a login",
    }, retry_after.as_secs())]
    Throttled {
        /// What was throttled.
        what: Throttle,
        /// How long the HSM asks to wait.
        retry_after: Duration,
    },
    /// The partition's configuration changed since it was read: nothing was applied.
    #[error(
        "the configuration changed since it was read (now revision {current}): nothing was applied; reload it and stage the change again"
    )]
    StaleRevision {
        /// The configuration's revision now.
        current: u64,
    },
    /// Another management session for this partition took over: this one is over.
    #[error(
        "another management session for this partition took over; this session is over: log in again to continue"
    )]
    Superseded,
    /// Any other refusal of the HSM (role, policy, card sets, log full …), typed.
    #[error("the HSM refused: {0}")]
    Refused(RemoteError),
    /// The link failed (transport, handshake, timeouts, the HSM ending the session).
    #[error(transparent)]
    Link(hsm_link::Error),
    /// The HSM answered a request with something other than its answer.
    #[error("the HSM answered {request} with something else: it may run another protocol version")]
    UnexpectedAnswer {
        /// The request.
        request: &'static str,
    },
    /// A ceremony step failed for another reason (its own error names the card).
    #[error(transparent)]
    Ceremony(CeremonyError),
    /// A card operation failed for another reason.
    #[error("{card}: {source}")]
    Card {
        /// The card.
        card: CardName,
        /// What went wrong.
        #[source]
        source: CardError,
    },
    /// Quorum cryptography or a soft card file failed.
    #[error(transparent)]
    Quorum(QuorumError),
    /// A log that does not verify against the pinned audit key.
    #[error("the exported log does not verify against the HSM's audit key: {0}")]
    LogVerify(#[source] audit_log::LogError),
    /// A log export file could not be written or read back.
    #[error("the log export file: {0}")]
    ExportFile(#[source] usb_backup::BackupError),
    /// No audit key to verify an export against.
    #[error(
        "no audit key pinned for {partition}: re-pair or pass --key with the fingerprint \
         `tessera-hsm init` printed (or --key KEY_FILE)"
    )]
    NoAuditKey {
        /// The paired partition's name.
        partition: String,
    },
    /// The terminal configuration cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The embedded default's in-process HSM failed.
    #[cfg(feature = "embedded")]
    #[error("the embedded HSM failed: {0}")]
    EmbeddedHsm(#[from] partition_service::service::ServiceError),
    /// This build has no embedded default (built without the `embedded` feature).
    #[error(
        "the embedded default (the in-process HSM simulator and its demo) is not in this build of tessera (built without the `embedded` feature): pair with an HSM with `tessera pair`, or use a build with the default features"
    )]
    EmbeddedNotBuilt,
    /// Listing the card readers failed (no PC/SC service running?).
    #[error("listing the card readers failed: {0}; is pcscd running?")]
    ListReaders(#[source] CardError),
    /// The card in a reader could not be opened.
    #[error("opening the card in reader \"{reader}\": {source}")]
    OpenReader {
        /// The reader.
        reader: String,
        /// What went wrong.
        #[source]
        source: CardError,
    },
    /// A card without keys where its keys were needed.
    #[error(
        "{card} in reader \"{reader}\" has no keys yet: enrol the card first (generate its keys on the card)"
    )]
    CardWithoutKeys {
        /// The card.
        card: String,
        /// The reader.
        reader: String,
    },
    /// A file that must be new exists already; it was left as it is.
    #[error("{} already exists; refusing to overwrite it: choose another name, or remove the file first", path.display())]
    FileExists {
        /// The file.
        path: PathBuf,
    },
    /// A file or directory could not be read or written.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done (`writing the key file`).
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed: {0}")]
    Random(getrandom::Error),
    /// The terminal's state directory or a file in it cannot be used.
    #[error(transparent)]
    State(#[from] StateError),
    /// A pairing code that was mistyped (caught by its check symbols, before it was spent).
    #[error("{0}; type the code again, as `tessera-hsm pairing-code` printed it")]
    PairingCode(#[from] PairingCodeError),
    /// The HSM's address could not be reached.
    #[error("cannot reach the HSM at {address}: {source}")]
    Connect {
        /// The address.
        address: String,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// A name this terminal already uses for another partition or address.
    #[error(
        "the name {name:?} is this terminal's name for partition {partition} at {address}: \
         choose another with --name"
    )]
    NameTaken {
        /// The name.
        name: String,
        /// The address it names.
        address: String,
        /// The partition it names.
        partition: PartitionId,
    },
    /// The pairing could not be stored (the list is full, the name is not valid).
    #[error("the pairing with {name:?} cannot be stored: {problem}")]
    CannotStore {
        /// The name.
        name: String,
        /// Why.
        problem: String,
    },
    /// The operator did not confirm the HSM's fingerprint: nothing was pinned.
    #[error(
        "the HSM's fingerprint was not confirmed, so this terminal pinned nothing. The code is \
         spent and the HSM pinned this terminal: if the fingerprints differ, something between \
         you and the HSM answered; tell the HSM's owner, who issues a new code"
    )]
    NotConfirmed,
    /// No paired partition of that name.
    #[error(
        "no paired partition is named {name:?}: `tessera` lists them; pair with `tessera pair`"
    )]
    NotPaired {
        /// The name asked for.
        name: String,
    },
    /// No partition paired yet.
    #[error(
        "this terminal is paired with no partition yet: pair with `tessera pair --tcp HOST:PORT \
         --partition ID`, or try the demo with `tessera demo`"
    )]
    NothingPaired,
    /// More than one partition paired and none chosen.
    #[error("this terminal is paired with several partitions ({names}): choose one with --name")]
    WhichPartition {
        /// The names, comma-separated.
        names: String,
    },
    /// Reading from the terminal (a code, a PIN, a confirmation) failed or ended.
    #[error("reading {what} from the terminal: {source}")]
    Prompt {
        /// What was asked for.
        what: &'static str,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// Something a command was given that it cannot use.
    #[error("{0}")]
    Usage(String),
    /// A backup file or drive failed (a rejected file names the attack it shows).
    #[error(transparent)]
    Backup(#[from] usb_backup::BackupError),
}

impl Error {
    /// The error for a card operation on `card`, with the PIN cases typed.
    pub fn card(card: CardName, source: CardError) -> Error {
        match source {
            CardError::WrongPin { retries_left } => Error::WrongPin { card, retries_left },
            CardError::Blocked => Error::Blocked { card },
            source => Error::Card { card, source },
        }
    }

    /// An I/O error while doing `what` to `path`.
    pub fn io(what: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io {
            what,
            path: path.into(),
            source,
        }
    }

    /// The process exit status for this error ([`crate::cli::exit`]).
    pub fn exit_code(&self) -> u8 {
        use crate::cli::exit;
        match self {
            Error::WrongPin { .. }
            | Error::Blocked { .. }
            | Error::WrongCard { .. }
            | Error::SameCardTwice { .. }
            | Error::Card { .. } => exit::CARD,
            Error::Throttled { .. } => exit::THROTTLED,
            Error::StaleRevision { .. } | Error::Refused(_) => exit::REFUSED,
            Error::Superseded
            | Error::Link(_)
            | Error::Connect { .. }
            | Error::UnexpectedAnswer { .. } => exit::LINK,
            Error::NotPaired { .. }
            | Error::NothingPaired
            | Error::WhichPartition { .. }
            | Error::NameTaken { .. } => exit::NOT_PAIRED,
            Error::NotConfirmed => exit::NOT_CONFIRMED,
            Error::Config(_) | Error::State(_) | Error::Usage(_) | Error::PairingCode(_) => {
                exit::SETUP
            }
            Error::EmbeddedNotBuilt => exit::NOT_IN_BUILD,
            _ => exit::FAILURE,
        }
    }

    /// Whether the screen should ask for another card (this one cannot take part).
    pub fn wants_another_card(&self) -> bool {
        matches!(
            self,
            Error::Blocked { .. } | Error::WrongCard { .. } | Error::SameCardTwice { .. }
        )
    }
}

impl From<RemoteError> for Error {
    fn from(e: RemoteError) -> Error {
        match e {
            RemoteError::Admin(AdminError::Login(LoginRefusal::Throttled { retry_after_secs })) => {
                Error::Throttled {
                    what: Throttle::Login,
                    retry_after: Duration::from_secs(retry_after_secs),
                }
            }
            RemoteError::Admin(AdminError::DrillsThrottled { retry_after_secs }) => {
                Error::Throttled {
                    what: Throttle::DrillReport,
                    retry_after: Duration::from_secs(retry_after_secs),
                }
            }
            RemoteError::Admin(AdminError::StaleRevision { current }) => {
                Error::StaleRevision { current }
            }
            RemoteError::Admin(AdminError::CardNotInSet) => Error::WrongCard {
                card: CardName::unknown(),
            },
            e => Error::Refused(e),
        }
    }
}

impl From<hsm_link::Error> for Error {
    fn from(e: hsm_link::Error) -> Error {
        match e {
            hsm_link::Error::Remote(e) => e.into(),
            hsm_link::Error::Closed(CloseReason::Superseded) => Error::Superseded,
            e => Error::Link(e),
        }
    }
}

impl From<LinkError> for Error {
    fn from(e: LinkError) -> Error {
        match e {
            LinkError::Refused(e) => e.into(),
            LinkError::Failed(e) => e.into(),
            LinkError::Unexpected => Error::UnexpectedAnswer {
                request: "an administration request",
            },
        }
    }
}

impl From<CardError> for Error {
    fn from(e: CardError) -> Error {
        Error::card(CardName::unknown(), e)
    }
}

impl From<QuorumError> for Error {
    fn from(e: QuorumError) -> Error {
        match e {
            QuorumError::Card(e) => e.into(),
            e => Error::Quorum(e),
        }
    }
}

impl From<CeremonyError> for Error {
    fn from(e: CeremonyError) -> Error {
        match e {
            CeremonyError::NotInSet { card } => Error::WrongCard {
                card: CardName::of(card),
            },
            CeremonyError::SameCardTwice { card } => Error::SameCardTwice {
                card: CardName::of(card),
            },
            CeremonyError::Proof { card, source } => Error::card(CardName::of(card), source),
            CeremonyError::Card(e) => e.into(),
            CeremonyError::Link(e) => e.into(),
            e => Error::Ceremony(e),
        }
    }
}

impl From<getrandom::Error> for Error {
    fn from(e: getrandom::Error) -> Error {
        Error::Random(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn soft(serial: &str) -> CardRef {
        CardRef {
            holder: Some("Ada Demo".to_owned()),
            serial: serial.to_owned(),
            soft: true,
        }
    }

    #[test]
    fn pin_cases_are_typed_and_keep_the_tries_left() {
        let e = Error::card(
            CardName::of(soft("SOFT:0001")),
            CardError::WrongPin {
                retries_left: Some(2),
            },
        );
        assert!(
            matches!(
                &e,
                Error::WrongPin {
                    retries_left: Some(2),
                    ..
                }
            ),
            "{e:?}"
        );
        let text = e.to_string();
        assert!(text.contains("SOFT:0001"), "{text}");
        assert!(text.contains("2 tries left"), "{text}");
        let e = Error::from(CeremonyError::Proof {
            card: soft("SOFT:0002"),
            source: CardError::Blocked,
        });
        assert!(matches!(&e, Error::Blocked { .. }), "{e:?}");
        assert!(e.wants_another_card());
        assert!(e.to_string().contains("SOFT:0002"));
        let e = Error::from(QuorumError::Card(CardError::WrongPin {
            retries_left: None,
        }));
        assert!(
            matches!(
                e,
                Error::WrongPin {
                    retries_left: None,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn ceremony_refusals_of_a_card_are_typed() {
        let e = Error::from(CeremonyError::NotInSet {
            card: soft("SOFT:0009"),
        });
        assert!(
            matches!(&e, Error::WrongCard { card } if card.card().unwrap().serial == "SOFT:0009")
        );
        assert!(e.wants_another_card());
        let e = Error::from(CeremonyError::SameCardTwice {
            card: soft("SOFT:0001"),
        });
        assert!(matches!(e, Error::SameCardTwice { .. }), "{e:?}");
        let e = Error::from(CeremonyError::NoActiveSet);
        assert!(matches!(e, Error::Ceremony(CeremonyError::NoActiveSet)));
        assert!(!e.wants_another_card());
    }

    #[test]
    fn hsm_refusals_the_screen_acts_on_are_typed_wherever_they_nest() {
        let throttled = || {
            RemoteError::Admin(AdminError::Login(LoginRefusal::Throttled {
                retry_after_secs: 300,
            }))
        };
        // Straight from the link, and inside a ceremony's link error.
        for e in [
            Error::from(hsm_link::Error::Remote(throttled())),
            Error::from(CeremonyError::Link(LinkError::Refused(throttled()))),
        ] {
            assert!(
                matches!(
                    e,
                    Error::Throttled {
                        what: Throttle::Login,
                        retry_after,
                    } if retry_after == Duration::from_secs(300)
                ),
                "{e:?}"
            );
        }
        let e = Error::from(LinkError::Refused(RemoteError::Admin(
            AdminError::DrillsThrottled {
                retry_after_secs: 7,
            },
        )));
        assert!(e.to_string().contains("7 s"), "{e}");
        let e = Error::from(hsm_link::Error::Remote(RemoteError::Admin(
            AdminError::StaleRevision { current: 9 },
        )));
        assert!(matches!(e, Error::StaleRevision { current: 9 }), "{e:?}");
        let e = Error::from(CeremonyError::Link(LinkError::Failed(
            hsm_link::Error::Closed(CloseReason::Superseded),
        )));
        assert!(matches!(e, Error::Superseded), "{e:?}");
        let e = Error::from(hsm_link::Error::Closed(CloseReason::Shutdown));
        assert!(matches!(e, Error::Link(_)), "{e:?}");
        let e = Error::from(hsm_link::Error::Remote(RemoteError::Admin(
            AdminError::LogFull,
        )));
        assert!(
            matches!(e, Error::Refused(RemoteError::Admin(AdminError::LogFull))),
            "{e:?}"
        );
    }
}
