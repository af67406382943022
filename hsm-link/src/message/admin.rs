//! The partition administration vocabulary of protocol version 1: logins, configuration, keys
//! and the bin, credentials, card sets and the log. The link carries it; the partition service
//! decides and enforces.

use crate::domain::CeremonyId;
use serde::{Deserialize, Deserializer, Serialize};

use crate::domain::bounded::{deserialize_string, deserialize_vec, is_printable};
use crate::domain::{
    CardDescription, CardSerial, CardSetDescription, CardSetKind, HolderName, KeyId, KeyKind,
    KeyLabel, KeyObjectSummary, MAX_CARDS_PER_SET, Parameter, PartitionConfig, PartitionUsage,
    Role, ServiceTier,
};
use crate::keys::{Fingerprint, PublicKey};

mod action;
mod de;
mod error;
mod limits;
mod log;
mod request;
mod response;
mod signing;
mod types;

pub use action::Action;
use de::*;
pub use error::{AdminError, BackupProblem, CardSetProblem, ConfigProblem, LoginRefusal};
pub use limits::{
    MAX_BACKUP_HEADER, MAX_BACKUP_TRAILER, MAX_COMMITMENTS, MAX_DIFF_KEYS, MAX_FILTER_TEXT,
    MAX_KEYS_PER_PAGE, MAX_LOG_LINE, MAX_LOG_LINES_PER_PAGE, MAX_PAGE_BYTES,
    MAX_RECOVERY_PUBLIC_KEY, MAX_RESTORE_CHUNK, MAX_TERMINALS_LISTED,
};
pub use log::{FullLogPolicy, LogPage, LogQuery, LogSpace, LogStatus, OutcomeFilter};
pub use request::AdminRequest;
pub use response::AdminResponse;
pub use signing::{CardSignature, OfficerRole, drill_message, enrolment_message, login_message};
pub use types::{CeremonyKind, NewCredentials, NewPairingCode, RecoveryPublic, TerminalInfo};
pub use types::{
    DiffKey, KeyCursor, KeyFilter, KeyIdList, KeyPosition, KeyQuery, KeySort, RestoreDiff,
};
