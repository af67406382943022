//! The messages of protocol version 1, carried inside the encrypted session.
//!
//! Every packet is postcard-encoded into one Noise transport message. Requests carry an id that
//! the response echoes; errors are typed. The enums are protocol version 1: changing them means
//! a new version, settled in the hello.

mod admin;

use serde::{Deserialize, Serialize};

pub use admin::{
    Action, AdminError, AdminRequest, AdminResponse, BackupProblem, CardSetProblem, CardSignature,
    CeremonyKind, ConfigProblem, DiffKey, FullLogPolicy, KeyCursor, KeyFilter, KeyIdList,
    KeyPosition, KeyQuery, KeySort, LogPage, LogQuery, LogSpace, LogStatus, LoginRefusal,
    MAX_BACKUP_HEADER, MAX_BACKUP_TRAILER, MAX_COMMITMENTS, MAX_DIFF_KEYS, MAX_FILTER_TEXT,
    MAX_KEYS_PER_PAGE, MAX_LOG_LINE, MAX_LOG_LINES_PER_PAGE, MAX_PAGE_BYTES,
    MAX_RECOVERY_PUBLIC_KEY, MAX_RESTORE_CHUNK, MAX_TERMINALS_LISTED, NewCredentials,
    NewPairingCode, OfficerRole, OutcomeFilter, RecoveryPublic, RestoreDiff, TerminalInfo,
    drill_message, enrolment_message, login_message,
};

use crate::domain::PartitionId;
use crate::keys::Fingerprint;

/// One packet inside the secure session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Packet {
    /// A request from the terminal.
    Request {
        /// Chosen by the terminal, echoed by the response.
        id: u64,
        /// What is asked.
        body: Request,
    },
    /// The answer to a request.
    Response {
        /// The request's id.
        id: u64,
        /// The result.
        body: Result<Response, RemoteError>,
    },
    /// A chunk of a bulk transfer that answers request `id`.
    Data {
        /// The request's id.
        id: u64,
        /// Chunk number, from 0, without gaps.
        seq: u32,
        /// The bytes.
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    /// The receiver of a bulk transfer grants the sender more chunks.
    Credit {
        /// The request's id.
        id: u64,
        /// How many more chunks may be sent.
        chunks: u32,
    },
    /// Either side: are you there? Answered with [`Packet::KeepAliveAck`]. Does not count as
    /// activity for the idle timeout.
    KeepAlive,
    /// The answer to a keep-alive.
    KeepAliveAck,
    /// The server's first message after a successful pairing: it proves the server knew the
    /// pairing code (this message is encrypted under keys that mix it in).
    Paired {
        /// The partition the terminal is now paired with.
        partition: PartitionId,
        /// The HSM's audit public key (Ed25519, the key its log checkpoints are signed with),
        /// for the terminal to pin beside the link key: it travels under the same keys as this
        /// proof, so it is the key of the HSM that knew the code. `None` from an endpoint that
        /// keeps no log.
        audit_key: Option<[u8; 32]>,
    },
    /// The sender ends the session, and says why.
    Close(CloseReason),
}

/// Requests of protocol version 1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Answered with [`Response::Pong`]; measures round trips.
    Ping,
    /// What this session is: version, partition, both keys.
    SessionInfo,
    /// The server streams `bytes` bytes of test data: a throughput check of the link (a slow
    /// serial line shows here before a backup takes an hour).
    LinkTest {
        /// How many bytes to send; at most [`crate::limits::MAX_LINK_TEST_BYTES`].
        bytes: u64,
    },
    /// Partition administration, answered by the partition service.
    Admin(AdminRequest),
}

/// Responses of protocol version 1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Answer to [`Request::Ping`].
    Pong,
    /// Answer to [`Request::SessionInfo`].
    SessionInfo(SessionInfo),
    /// End of a link test: what was sent, and its SHA-256 so the receiver can check it.
    LinkTestDone {
        /// Bytes sent.
        bytes: u64,
        /// SHA-256 of the bytes sent.
        sha256: [u8; 32],
    },
    /// Partition administration.
    Admin(AdminResponse),
}

/// What a session is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// The protocol version settled in the hello.
    pub protocol_version: u16,
    /// The partition administered.
    pub partition: PartitionId,
    /// Fingerprint of the HSM's static key.
    pub hsm: Fingerprint,
    /// Fingerprint of the terminal's static key, as the HSM authenticated it.
    pub terminal: Fingerprint,
}

/// A typed error in a response: what was wrong with the request. It carries no free text, so
/// a hostile peer cannot put arbitrary characters on the operator's screen through it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum RemoteError {
    /// A size or count above what the HSM allows.
    #[error("{what} of {requested} exceeds the limit of {limit}: ask for less")]
    TooLarge {
        /// What was too large.
        what: Quantity,
        /// What was asked for.
        requested: u64,
        /// The limit.
        limit: u64,
    },
    /// The partition service refused an administration request.
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// This HSM answers no administration requests (a bare link endpoint).
    #[error("this endpoint does not administer partitions")]
    NoAdministration,
    /// The HSM failed internally (its own diagnostics say why); nothing was changed.
    #[error("the HSM failed internally; nothing was changed")]
    Internal,
}

/// Quantities that requests ask for and the HSM bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Quantity {
    /// Bytes of a link test.
    LinkTestBytes,
    /// Bytes of one response (a page asked for too much at once).
    ResponseBytes,
}

impl std::fmt::Display for Quantity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Quantity::LinkTestBytes => "a link test",
            Quantity::ResponseBytes => "a response",
        })
    }
}

/// Why a session ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CloseReason {
    /// The terminal said goodbye.
    Goodbye,
    /// No request within the idle timeout.
    IdleTimeout {
        /// The timeout, in milliseconds.
        after_ms: u64,
    },
    /// Another management session for this partition took over.
    Superseded,
    /// The server is shutting down.
    Shutdown,
    /// The peer sent something the protocol does not allow at that point.
    ProtocolViolation,
    /// The line garbled or dropped bytes (a frame failed its checksum or encoding).
    LineFault,
    /// An officer revoked the terminal of this session: it can no longer connect.
    TerminalRevoked,
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReason::Goodbye => f.write_str("the terminal ended the session"),
            CloseReason::IdleTimeout { after_ms } => {
                write!(
                    f,
                    "the session expired after {:?} without a request",
                    std::time::Duration::from_millis(*after_ms)
                )
            }
            CloseReason::Superseded => {
                f.write_str("another management session for this partition took over")
            }
            CloseReason::Shutdown => f.write_str("the HSM is shutting down"),
            CloseReason::ProtocolViolation => f.write_str("the peer broke the protocol"),
            CloseReason::LineFault => f.write_str(
                "the line garbled or dropped bytes; the session was ended: reconnect, and check \
                 the cable if it happens again",
            ),
            CloseReason::TerminalRevoked => f.write_str(
                "an officer revoked this terminal's pairing: it can no longer connect to this \
                 partition until it is paired again",
            ),
        }
    }
}

impl Packet {
    /// Encodes the packet.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("packets always serialise")
    }

    /// Decodes a packet, refusing trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, postcard::Error> {
        match postcard::take_from_bytes(bytes) {
            Ok((packet, [])) => Ok(packet),
            Ok(_) => Err(postcard::Error::DeserializeBadEncoding),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ByokTier, ServiceTier};
    use crate::limits::{CHUNK_SIZE, MAX_PLAINTEXT};

    #[test]
    fn a_full_chunk_fits_one_noise_message() {
        let p = Packet::Data {
            id: u64::MAX,
            seq: u32::MAX,
            bytes: vec![0xff; CHUNK_SIZE],
        };
        let encoded = p.encode();
        assert!(encoded.len() <= MAX_PLAINTEXT, "{}", encoded.len());
        assert_eq!(Packet::decode(&encoded).unwrap(), p);
    }

    #[test]
    fn admin_messages_are_bounded_on_the_way_in() {
        use crate::domain::MAX_CARDS_PER_SET;
        let signature = CardSignature {
            signing_key: [1; 32],
            signature: [2; 64],
        };
        let login = |n: usize| Packet::Request {
            id: 1,
            body: Request::Admin(AdminRequest::Login {
                role: OfficerRole::Pso,
                signatures: vec![signature.clone(); n],
            }),
        };
        let ok = login(MAX_CARDS_PER_SET);
        assert_eq!(Packet::decode(&ok.encode()).unwrap(), ok);
        assert!(Packet::decode(&login(MAX_CARDS_PER_SET + 1).encode()).is_err());

        let page = |line: &str| Packet::Response {
            id: 2,
            body: Ok(Response::Admin(AdminResponse::LogPage(LogPage {
                lines: vec![line.to_string()],
                next_seq: None,
                warning: None,
            }))),
        };
        let good = page(r#"{"seq":1,"op":"login"}"#);
        assert_eq!(Packet::decode(&good.encode()).unwrap(), good);
        // A raw escape sequence is no canonical log line: refused before it reaches a screen.
        assert!(Packet::decode(&page("before\u{1b}[2Jafter").encode()).is_err());
        assert!(Packet::decode(&page("bell\u{7}").encode()).is_err());
    }

    #[test]
    fn terminal_messages_are_appended_after_the_drill_report() {
        // Variant order is the wire format: the terminal messages follow the backup ones
        // (RestoreCommit is request 24, Restored response 15, Backup error 16).
        let tag = |r: &AdminRequest| postcard::to_stdvec(r).unwrap()[0];
        assert_eq!(tag(&AdminRequest::ListTerminals), 25);
        let revoke = AdminRequest::RevokeTerminal {
            terminal: Fingerprint([0; 32]),
            this_terminal: false,
        };
        assert_eq!(tag(&revoke), 26);
        assert_eq!(tag(&AdminRequest::IssuePairingCode), 27);
        let listing = AdminResponse::Terminals {
            terminals: Vec::new(),
        };
        assert_eq!(postcard::to_stdvec(&listing).unwrap()[0], 16);
        let refusal = AdminError::NoSuchTerminal {
            terminal: Fingerprint([0; 32]),
        };
        assert_eq!(postcard::to_stdvec(&refusal).unwrap()[0], 17);
        // A listing longer than the bound is refused before it is allocated whole.
        let info = TerminalInfo {
            fingerprint: Fingerprint([1; 32]),
            paired_unix: Some(1),
            last_seen_unix: None,
            this_session: false,
        };
        let too_long = postcard::to_stdvec(&AdminResponse::Terminals {
            terminals: vec![info; MAX_TERMINALS_LISTED + 1],
        })
        .unwrap();
        assert!(postcard::from_bytes::<AdminResponse>(&too_long).is_err());
        let code = AdminResponse::PairingCode(NewPairingCode {
            code: "ABCD-EFGH".into(),
        });
        assert!(
            !format!("{code:?}").contains("ABCD"),
            "the code is redacted"
        );
    }

    #[test]
    fn ceremony_messages_are_appended_and_bounded() {
        use crate::domain::{CardSerial, MAX_CARDS_PER_SET};
        // Variant order is the wire format: the ceremony requests follow ConfirmExport (14),
        // the responses follow ExportDone (10), the errors follow QuotaExceeded (11).
        let tag = |r: &AdminRequest| postcard::to_stdvec(r).unwrap()[0];
        assert_eq!(tag(&AdminRequest::ConfirmExport { up_to_seq: 0 }), 14);
        assert_eq!(
            tag(&AdminRequest::BeginCeremony {
                kind: CeremonyKind::Enrol
            }),
            15
        );
        assert_eq!(tag(&AdminRequest::GetRecoveryPublic), 17);
        let response = postcard::to_stdvec(&AdminResponse::Ceremony {
            id: crate::domain::CeremonyId([0; 16]),
            soft_cards_allowed: false,
        })
        .unwrap();
        assert_eq!(response[0], 11);
        assert_eq!(
            postcard::to_stdvec(&AdminError::QuotaExceeded).unwrap()[0],
            11
        );
        assert_eq!(
            postcard::to_stdvec(&AdminError::CeremonyMismatch).unwrap()[0],
            12
        );

        assert_eq!(
            postcard::to_stdvec(&CeremonyKind::EnrolAuditors).unwrap()[0],
            3
        );
        let proof = CardSignature {
            signing_key: [1; 32],
            signature: [2; 64],
        };
        let register = |left: usize, proofs: usize| Packet::Request {
            id: 3,
            body: Request::Admin(AdminRequest::RegisterCardSetInCeremony {
                ceremony: crate::domain::CeremonyId([7; 16]),
                set: Box::new(crate::domain::CardSetDescription {
                    kind: crate::domain::CardSetKind::Pso,
                    set_number: 2,
                    threshold: 1,
                    cards: Vec::new(),
                }),
                recovery: None,
                replaces_revoked: Some(CardSerial::new("C-3").unwrap()),
                old_shares_left: vec![CardSerial::new("A-1").unwrap(); left],
                leftover_shares: vec![CardSerial::new("Z-9").unwrap(); left],
                proofs: vec![proof.clone(); proofs],
            }),
        };
        let ok = register(MAX_CARDS_PER_SET, MAX_CARDS_PER_SET);
        assert_eq!(Packet::decode(&ok.encode()).unwrap(), ok);
        assert!(Packet::decode(&register(MAX_CARDS_PER_SET + 1, 1).encode()).is_err());
        assert!(Packet::decode(&register(1, MAX_CARDS_PER_SET + 1).encode()).is_err());
        let drill = Packet::Request {
            id: 4,
            body: Request::Admin(AdminRequest::ReportDrill {
                card_serial: CardSerial::new("B-2").unwrap(),
                ok: true,
                signature: [3; 64],
            }),
        };
        assert_eq!(Packet::decode(&drill.encode()).unwrap(), drill);
    }

    #[test]
    fn backup_messages_are_appended_and_bounded() {
        // Variant order is the wire format: the backup requests follow TrustKey (19), the
        // responses follow RecoveryPublic (12), the error follows DrillNotSigned (15).
        let tag = |r: &AdminRequest| postcard::to_stdvec(r).unwrap()[0];
        assert_eq!(tag(&AdminRequest::CreateBackup), 20);
        assert_eq!(tag(&AdminRequest::RestoreDryRun), 23);
        assert_eq!(
            tag(&AdminRequest::RestoreCommit {
                header_hash: [0; 32]
            }),
            24
        );
        let done = AdminResponse::BackupDone {
            file_len: 1,
            header_hash: [0; 32],
            trailer: vec![0; 160],
        };
        assert_eq!(postcard::to_stdvec(&done).unwrap()[0], 13);
        assert_eq!(
            postcard::to_stdvec(&AdminError::Backup(BackupProblem::OverQuota)).unwrap()[0],
            16
        );
        let chunk = |n: usize| Packet::Request {
            id: 5,
            body: Request::Admin(AdminRequest::RestoreChunk { bytes: vec![9; n] }),
        };
        let full = chunk(MAX_RESTORE_CHUNK);
        assert!(full.encode().len() <= crate::limits::MAX_PLAINTEXT);
        assert_eq!(Packet::decode(&full.encode()).unwrap(), full);
        assert!(Packet::decode(&chunk(MAX_RESTORE_CHUNK + 1).encode()).is_err());
        let begin = |n: usize| Packet::Request {
            id: 6,
            body: Request::Admin(AdminRequest::RestoreBegin {
                file_len: 1 << 40,
                header: vec![1; n],
            }),
        };
        assert!(Packet::decode(&begin(MAX_BACKUP_HEADER).encode()).is_ok());
        assert!(Packet::decode(&begin(MAX_BACKUP_HEADER + 1).encode()).is_err());
        // Every list full, every key with the longest label: one packet, with room left.
        let label = crate::domain::KeyLabel::new("\u{7e}".repeat(crate::domain::MAX_KEY_LABEL_LEN))
            .unwrap();
        let list = |n: usize| KeyIdList {
            count: u64::MAX,
            first: vec![
                DiffKey {
                    id: crate::domain::KeyId(u64::MAX),
                    label: label.clone(),
                    in_bin: true,
                };
                n
            ],
        };
        let diff = |n: usize| Packet::Response {
            id: 7,
            body: Ok(Response::Admin(AdminResponse::RestoreDiff(Box::new(
                RestoreDiff {
                    header_hash: [0; 32],
                    created_unix: u64::MAX,
                    sequence: u64::MAX,
                    objects_in_backup: u64::MAX,
                    objects_now: u64::MAX,
                    returning: list(n),
                    removed: list(MAX_DIFF_KEYS),
                    into_bin: list(MAX_DIFF_KEYS),
                    out_of_bin: list(MAX_DIFF_KEYS),
                    config: Vec::new(),
                },
            )))),
        };
        let most = diff(MAX_DIFF_KEYS);
        assert!(most.encode().len() + 8 * 1024 <= crate::limits::MAX_PLAINTEXT);
        assert_eq!(Packet::decode(&most.encode()).unwrap(), most);
        assert!(Packet::decode(&diff(MAX_DIFF_KEYS + 1).encode()).is_err());
        // A label longer than any label is refused on decode too.
        let long = most.encode();
        let at = long
            .windows(label.as_str().len())
            .position(|w| w == label.as_str().as_bytes())
            .unwrap();
        assert_eq!(long[at - 2..at], [0x80, 0x01], "postcard's varint of 128");
        let mut longer = long[..at - 2].to_vec();
        longer.extend_from_slice(&[0x81, 0x01]);
        longer.extend_from_slice(&[b'~'; 129]);
        longer.extend_from_slice(&long[at + label.as_str().len()..]);
        assert!(Packet::decode(&longer).is_err());
    }

    #[test]
    fn migration_messages_are_appended() {
        // Variant order is the wire format: the migration requests follow IssuePairingCode
        // (27), the response follows PairingCode (17), the problems follow NoQuorumKey (8).
        let tag = |r: &AdminRequest| postcard::to_stdvec(r).unwrap()[0];
        assert_eq!(tag(&AdminRequest::GetBackupPublic), 28);
        let begin = AdminRequest::MigrateBegin {
            file_len: 1,
            header: vec![1; 3],
            source_key: [2; 32],
            wrapped_key: [3; 80],
        };
        assert_eq!(tag(&begin), 29);
        let public = AdminResponse::BackupPublic { key: [4; 32] };
        assert_eq!(postcard::to_stdvec(&public).unwrap()[0], 18);
        let problem = |p: BackupProblem| postcard::to_stdvec(&p).unwrap()[0];
        assert_eq!(problem(BackupProblem::NoQuorumKey), 8);
        assert_eq!(problem(BackupProblem::SourceKeyMismatch), 9);
        assert_eq!(problem(BackupProblem::MigrationKey), 10);
        let packet = |n: usize| Packet::Request {
            id: 8,
            body: Request::Admin(AdminRequest::MigrateBegin {
                file_len: 1 << 40,
                header: vec![1; n],
                source_key: [2; 32],
                wrapped_key: [3; 80],
            }),
        };
        let most = packet(MAX_BACKUP_HEADER);
        assert_eq!(Packet::decode(&most.encode()).unwrap(), most);
        assert!(Packet::decode(&packet(MAX_BACKUP_HEADER + 1).encode()).is_err());
    }

    #[test]
    fn the_log_status_is_appended_after_the_migration() {
        // Variant order is the wire format: after the migration's GetBackupPublic (28) and
        // MigrateBegin (29), and its BackupPublic response (18).
        let tag = |r: &AdminRequest| postcard::to_stdvec(r).unwrap()[0];
        assert_eq!(tag(&AdminRequest::GetLogStatus), 30);
        let status = LogStatus {
            entries: 900,
            unexported: 850,
            confirmed_up_to: Some(50),
            last_seq: Some(950),
            capacity: 1016,
            reserve: 16,
            when_full: FullLogPolicy::PruneConfirmed,
            hsm_key: crate::keys::PublicKey([7; 32]),
            tier: ServiceTier::Byok(ByokTier::Entry10),
        };
        // The HSM key and the tier are appended after the log's fields: the key's 32 bytes,
        // then the tier's variant (Byok = 3) and its entry tier (Entry10 = 1).
        let bytes = postcard::to_stdvec(&status).unwrap();
        let mut tail = vec![7; 32];
        tail.extend([3, 1]);
        assert!(bytes.ends_with(&tail), "{bytes:?}");
        assert_eq!(status.hsm_id(), crate::keys::PublicKey([7; 32]).hsm_id());
        assert!(status.hsm_id().starts_with("hsm-"));
        let response = AdminResponse::LogStatus(status);
        assert_eq!(postcard::to_stdvec(&response).unwrap()[0], 19);
        let packet = Packet::Response {
            id: 3,
            body: Ok(Response::Admin(response)),
        };
        assert_eq!(Packet::decode(&packet.encode()).unwrap(), packet);
        assert_eq!((status.usable(), status.percent_full()), (1000, 90));
        let empty = LogStatus {
            capacity: 16,
            ..status
        };
        assert_eq!(empty.percent_full(), 100);
    }

    #[test]
    fn trailing_bytes_and_truncation_are_refused() {
        let mut bytes = Packet::Request {
            id: 7,
            body: Request::LinkTest { bytes: 1 << 20 },
        }
        .encode();
        for cut in 0..bytes.len() {
            assert!(Packet::decode(&bytes[..cut]).is_err());
        }
        bytes.push(0);
        assert!(Packet::decode(&bytes).is_err());
    }
}
