//! One administration session: its state, the request dispatch, the role check, and the one way
//! a change is made and its refusal logged.

use std::sync::Arc;

use audit_log::{Actor, KnownOperation, Role};
use hsm_link::message::{
    Action, AdminError, AdminRequest, AdminResponse, CloseReason, RemoteError, Response,
};
use hsm_link::server::{AdminService, Handler, Reply, SessionContext};

use super::backup::RestoreUpload;
use super::ceremony::{OpenCeremony, Registration};
use super::login::{Challenge, Login, THROTTLE_WINDOW_S};
use crate::access::admin_check;
use crate::model::PartitionRecord;
use crate::service::{Event, Hsm, ServiceError};
use crate::store::WriteTxn;

/// Log entries a partition takes for sessions without an officer login (share drills and
/// refusals) within [`THROTTLE_WINDOW_S`]: twice the largest set, so every holder can drill, and
/// a drill can be repeated, in one sitting. Beyond it a drill report is refused and a refusal
/// is answered without an entry; the next entry admitted says how many were not logged. This
/// keeps a paired terminal without cards from filling the log (failed logins have their own
/// throttle).
pub const UNAUTHENTICATED_ENTRIES_PER_WINDOW: usize = 32;

/// Serves administration sessions for one HSM.
#[derive(Clone, Debug)]
pub struct AdminLink {
    hsm: Arc<Hsm>,
}

impl AdminLink {
    /// Administration of `hsm`.
    pub fn new(hsm: Arc<Hsm>) -> Self {
        AdminLink { hsm }
    }
}

impl AdminService for AdminLink {
    fn session(&self, ctx: &SessionContext) -> Box<dyn Handler> {
        // "Last seen" for the terminal listing. A failure to record it (a store fault) must not
        // keep an officer out: the session goes on without it.
        let _ = self
            .hsm
            .terminal_seen_now(&ctx.partition, &ctx.terminal.fingerprint());
        Box::new(AdminSession {
            hsm: Arc::clone(&self.hsm),
            login: None,
            challenge: None,
            refused_card: None,
            ceremony: None,
            restore: None,
            revocations_seen: self.hsm.revocations(),
            revoked: false,
        })
    }
}

pub(super) struct AdminSession {
    pub(super) hsm: Arc<Hsm>,
    pub(super) login: Option<Login>,
    pub(super) challenge: Option<Challenge>,
    /// The key of the card a failed login named, for the log.
    pub(super) refused_card: Option<String>,
    /// This session's open card-set ceremony (at most one).
    pub(super) ceremony: Option<OpenCeremony>,
    /// This session's restore upload (at most one).
    pub(super) restore: Option<RestoreUpload>,
    /// [`Hsm::revocations`] when this session last checked that its terminal is pinned.
    revocations_seen: u64,
    /// This session's terminal was revoked: it serves nothing more and ends at the next poll.
    revoked: bool,
}

/// How a refusal's log entry is rationed for a session without a login.
#[derive(Clone, Copy)]
pub(super) enum Ration {
    /// Take it from the ration now ([`AdminSession::log_refused`]).
    Take,
    /// It was admitted already, with this many entries not logged before it.
    Admitted(u64),
}

/// `event`, saying how many entries without a login were not logged before it (if any).
pub(super) fn with_unlogged(event: Event, unlogged: u64) -> Event {
    if unlogged == 0 {
        event
    } else {
        event.detail("unlogged-before", unlogged.to_string())
    }
}

pub(super) fn remote(e: ServiceError) -> RemoteError {
    match e {
        ServiceError::Admin(a) => RemoteError::Admin(a),
        // Internal faults are not the terminal's business beyond "it failed"; the HSM's own
        // diagnostics carry the detail.
        _ => RemoteError::Internal,
    }
}

/// The log's name for an action checked on its own.
fn operation_of(action: Action) -> KnownOperation {
    match action {
        Action::ViewConfig => KnownOperation::ConfigView,
        Action::ChangeConfig => KnownOperation::ConfigChange,
        Action::ViewUsage => KnownOperation::UsageView,
        Action::ListKeys => KnownOperation::KeyList,
        Action::RestoreKey => KnownOperation::KeyRestore,
        Action::PurgeKey => KnownOperation::KeyPurge,
        Action::ResetCredentials => KnownOperation::CredentialsReset,
        Action::ViewCardSets => KnownOperation::CardSetView,
        Action::RegisterCardSet => KnownOperation::CardSetRegister,
        Action::ReadLog => KnownOperation::LogRead,
        Action::ExportLog => KnownOperation::LogExport,
        Action::ConfirmExport => KnownOperation::LogConfirm,
        Action::TrustKey => KnownOperation::KeyTrust,
        Action::Backup => KnownOperation::BackupCreate,
        Action::Restore => KnownOperation::BackupRestore,
        Action::ListTerminals => KnownOperation::TerminalList,
        Action::RevokeTerminal => KnownOperation::TerminalRevoke,
        Action::IssuePairingCode => KnownOperation::PairingIssue,
    }
}

fn respond(result: Result<AdminResponse, ServiceError>) -> Reply {
    Reply::Response(result.map(Response::Admin).map_err(remote))
}

impl AdminSession {
    pub(super) fn actor(&self) -> Actor {
        match &self.login {
            Some(login) => Actor::new(
                login.role.role(),
                login.holders.iter().map(|h| h.as_str().to_string()),
            ),
            None => Actor::new(Role::Unauthenticated, Vec::<String>::new()),
        }
    }

    pub(super) fn role(&self) -> Option<Role> {
        self.login.as_ref().map(|l| l.role.role())
    }

    /// Admits one log entry for this session if it has no login (see
    /// [`UNAUTHENTICATED_ENTRIES_PER_WINDOW`]): how many entries were not logged before it, or
    /// the seconds until one is admitted again. A logged-in session is not rationed.
    pub(super) fn admit_unauthenticated(&self, ctx: &SessionContext) -> Result<u64, u64> {
        if self.login.is_some() {
            return Ok(0);
        }
        self.hsm.admit_unauthenticated_entry(
            &ctx.partition,
            UNAUTHENTICATED_ENTRIES_PER_WINDOW,
            THROTTLE_WINDOW_S,
        )
    }

    /// Logs a refusal. Without a login, within the partition's ration of such entries: beyond
    /// it the refusal is still answered, but not logged, and the next entry admitted counts it.
    pub(super) fn log_refused(
        &self,
        ctx: &SessionContext,
        event: Event,
    ) -> Result<(), ServiceError> {
        match self.admit_unauthenticated(ctx) {
            Ok(unlogged) => self
                .hsm
                .log_refusal(&ctx.partition, with_unlogged(event, unlogged)),
            Err(_) => Ok(()),
        }
    }

    /// Logs `refusal` as `event` describes it and returns it as the error.
    pub(super) fn refuse<T>(
        &self,
        ctx: &SessionContext,
        refusal: AdminError,
        event: Event,
    ) -> Result<T, ServiceError> {
        self.log_refused(ctx, event.refused(&refusal))?;
        Err(refusal.into())
    }

    /// Checks `action`; a refusal is logged and returned.
    pub(super) fn check(
        &self,
        ctx: &SessionContext,
        action: Action,
    ) -> Result<PartitionRecord, ServiceError> {
        let record = self.hsm.partition(&ctx.partition)?;
        if let Err(refusal) = admin_check(self.role(), action, &record.config) {
            let event = Event::new(self.actor(), operation_of(action));
            return self.refuse(ctx, refusal, event);
        }
        Ok(record)
    }

    /// Makes `change` in one write transaction of this session's partition. A refusal it
    /// returns (an [`AdminError`]) is logged, as `refused` describes it (the outcome is added
    /// here) and rationed as `ration` says, and returned; other faults pass through unlogged.
    pub(super) fn change<T>(
        &self,
        ctx: &SessionContext,
        ration: Ration,
        change: impl FnOnce(&Hsm, &mut WriteTxn<'_>, &mut PartitionRecord) -> Result<T, ServiceError>,
        refused: impl FnOnce() -> Event,
    ) -> Result<T, ServiceError> {
        match self.hsm.modify(&ctx.partition, change) {
            Err(ServiceError::Admin(refusal)) => {
                let event = refused().refused(&refusal);
                match ration {
                    Ration::Take => self.log_refused(ctx, event)?,
                    Ration::Admitted(unlogged) => self
                        .hsm
                        .log_refusal(&ctx.partition, with_unlogged(event, unlogged))?,
                }
                Err(refusal.into())
            }
            other => other,
        }
    }

    /// Ends the login and its ceremony (a logout, or a login another session superseded).
    fn end_login(&mut self) {
        self.login = None;
        self.ceremony = None;
        self.restore = None;
    }

    /// Whether this session's terminal was revoked. Cheap while no terminal was revoked since
    /// the last check; otherwise one read of the partition record.
    fn terminal_revoked(&mut self, ctx: &SessionContext) -> bool {
        let now = self.hsm.revocations();
        if !self.revoked && now != self.revocations_seen {
            self.revocations_seen = now;
            let own = ctx.terminal.fingerprint();
            self.revoked = hsm_link::trust::TrustStore::pinned_terminal(
                self.hsm.as_ref(),
                &ctx.partition,
                &own,
            )
            .is_none()
                && self.hsm.partition(&ctx.partition).is_ok();
        }
        if self.revoked {
            self.end_login();
        }
        self.revoked
    }

    /// Answers one request. Every request is named: a new one does not compile until it is
    /// answered here.
    fn dispatch(&mut self, ctx: &SessionContext, request: AdminRequest) -> Reply {
        respond(match request {
            AdminRequest::LoginChallenge { role } => self.challenge(ctx, role),
            AdminRequest::Login { role, signatures } => self.login(ctx, role, &signatures),
            AdminRequest::Logout => {
                self.end_login();
                Ok(AdminResponse::Done)
            }
            AdminRequest::GetConfig => self.config(ctx),
            AdminRequest::ChangeConfig {
                expected_revision,
                config,
            } => self.change_config(ctx, expected_revision, *config),
            AdminRequest::GetUsage => self.usage(ctx),
            AdminRequest::ListKeys(query) => self.list_keys(ctx, &query),
            AdminRequest::RestoreKey { id } => self.bin(ctx, id, false),
            AdminRequest::PurgeKey { id } => self.bin(ctx, id, true),
            AdminRequest::ResetCredentials => self.reset_credentials(ctx),
            AdminRequest::GetCardSets => self.card_sets(ctx),
            AdminRequest::RegisterCardSet { .. } => self.register_outside_ceremony(ctx),
            AdminRequest::BeginCeremony { kind } => self.begin_ceremony(ctx, kind),
            AdminRequest::RegisterCardSetInCeremony {
                ceremony,
                set,
                recovery,
                replaces_revoked,
                old_shares_left,
                leftover_shares,
                proofs,
            } => self.register_in_ceremony(
                ctx,
                Registration {
                    ceremony,
                    set: *set,
                    recovery: recovery.map(|r| *r),
                    replaces_revoked,
                    old_shares_left,
                    leftover_shares,
                    proofs,
                },
            ),
            AdminRequest::GetRecoveryPublic => self.recovery_public(ctx),
            AdminRequest::ReportDrill {
                card_serial,
                ok,
                signature,
            } => self.report_drill(ctx, card_serial, ok, &signature),
            AdminRequest::ReadLog { query } => self.read_log(ctx, &query),
            AdminRequest::ExportLog { query } => {
                return self
                    .export_log(ctx, query)
                    .unwrap_or_else(|e| respond(Err(e)));
            }
            AdminRequest::ConfirmExport { up_to_seq } => self.confirm_export(ctx, up_to_seq),
            AdminRequest::TrustKey { id, trusted } => self.trust_key(ctx, id, trusted),
            AdminRequest::CreateBackup => {
                return self.create_backup(ctx).unwrap_or_else(|e| respond(Err(e)));
            }
            AdminRequest::RestoreBegin { file_len, header } => {
                self.restore_begin(ctx, file_len, &header)
            }
            AdminRequest::RestoreChunk { bytes } => self.restore_chunk(ctx, &bytes),
            AdminRequest::RestoreDryRun => self.restore_dry_run(ctx),
            AdminRequest::RestoreCommit { header_hash } => self.restore_commit(ctx, header_hash),
            AdminRequest::ListTerminals => self.list_terminals(ctx),
            AdminRequest::RevokeTerminal {
                terminal,
                this_terminal,
            } => self.revoke_terminal(ctx, terminal, this_terminal),
            AdminRequest::IssuePairingCode => self.issue_pairing_code(ctx),
            AdminRequest::GetBackupPublic => self.backup_public(ctx),
            AdminRequest::MigrateBegin {
                file_len,
                header,
                source_key,
                wrapped_key,
            } => self.migrate_begin(ctx, file_len, &header, source_key, wrapped_key),
            AdminRequest::GetLogStatus => self.log_status(ctx),
        })
    }
}

impl Handler for AdminSession {
    fn handle(&mut self, ctx: &SessionContext, request: AdminRequest) -> Reply {
        // A login another session has superseded serves nothing more, even before the next
        // poll ends this session.
        if let Some(login) = &self.login
            && !self.hsm.is_current(&ctx.partition, login.generation)
        {
            self.end_login();
        }
        // A revoked terminal's request that arrived before the poll that ends its session.
        if self.terminal_revoked(ctx) {
            let terminal = ctx.terminal.fingerprint();
            return respond(Err(AdminError::NoSuchTerminal { terminal }.into()));
        }
        self.dispatch(ctx, request)
    }

    fn poll(&mut self, ctx: &SessionContext) -> Option<CloseReason> {
        if self.terminal_revoked(ctx) {
            return Some(CloseReason::TerminalRevoked);
        }
        let login = self.login.as_ref()?;
        if self.hsm.is_current(&ctx.partition, login.generation) {
            None
        } else {
            Some(CloseReason::Superseded)
        }
    }
}
