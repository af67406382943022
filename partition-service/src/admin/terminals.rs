//! The partition's pinned terminals: listing them, revoking one, and issuing a new one-time
//! pairing code for another terminal over the link.
//!
//! A revocation unpins the terminal in one transaction with its log entry; every open session
//! of that terminal then ends at its next poll (at most half a second) with
//! [`CloseReason::TerminalRevoked`](hsm_link::message::CloseReason::TerminalRevoked), and a
//! request it sends before that is refused. A terminal revoking the one it runs on must say so
//! ([`AdminRequest::RevokeTerminal`](hsm_link::message::AdminRequest::RevokeTerminal)'s
//! `this_terminal`): otherwise it is refused, so that a slip of the finger does not lock the
//! officer out of the terminal in front of them.

use audit_log::KnownOperation;
use hsm_link::keys::Fingerprint;
use hsm_link::message::{
    Action, AdminError, AdminResponse, MAX_TERMINALS_LISTED, NewPairingCode, TerminalInfo,
};
use hsm_link::server::SessionContext;

use super::session::{AdminSession, Ration};
use crate::service::{Event, Hsm, ServiceError};

impl AdminSession {
    /// The pinned terminals, by fingerprint; this session's own is marked. A read, like the
    /// configuration's: only a refusal is logged.
    pub(super) fn list_terminals(
        &self,
        ctx: &SessionContext,
    ) -> Result<AdminResponse, ServiceError> {
        self.check(ctx, Action::ListTerminals)?;
        let own = ctx.terminal.fingerprint();
        let mut terminals: Vec<TerminalInfo> = self
            .hsm
            .terminals(&ctx.partition)?
            .into_iter()
            .map(|(key, seen)| TerminalInfo {
                fingerprint: key.fingerprint(),
                paired_unix: seen.paired_unix,
                last_seen_unix: seen.last_seen_unix,
                this_session: key.fingerprint() == own,
            })
            .collect();
        terminals.sort_by_key(|t| t.fingerprint);
        terminals.truncate(MAX_TERMINALS_LISTED);
        Ok(AdminResponse::Terminals { terminals })
    }

    /// Revokes `terminal`: unpinned and logged in one transaction; its sessions end.
    pub(super) fn revoke_terminal(
        &self,
        ctx: &SessionContext,
        terminal: Fingerprint,
        this_terminal: bool,
    ) -> Result<AdminResponse, ServiceError> {
        let role = self.role();
        let actor = self.actor();
        let own = terminal == ctx.terminal.fingerprint();
        self.change(
            ctx,
            Ration::Take,
            |hsm, tx, record| {
                crate::access::admin_check(role, Action::RevokeTerminal, &record.config)?;
                if own && !this_terminal {
                    return Err(AdminError::RevokingThisTerminal { terminal }.into());
                }
                if !Hsm::unpin_terminal(tx, record, &terminal)? {
                    return Err(AdminError::NoSuchTerminal { terminal }.into());
                }
                let mut event = Event::new(actor.clone(), KnownOperation::TerminalRevoke)
                    .object(terminal.to_string());
                if own {
                    event = event.detail("this-session", "yes");
                }
                hsm.append(tx, record, event)
            },
            || {
                Event::new(self.actor(), KnownOperation::TerminalRevoke)
                    .object(terminal.to_string())
            },
        )?;
        self.hsm.terminal_revoked();
        Ok(AdminResponse::Done)
    }

    /// A new one-time pairing code, replacing any outstanding one (a handshake begun under the
    /// old code fails). Shown once; the log records the issue and who asked, never the code.
    pub(super) fn issue_pairing_code(
        &self,
        ctx: &SessionContext,
    ) -> Result<AdminResponse, ServiceError> {
        self.check(ctx, Action::IssuePairingCode)?;
        let code = self.hsm.issue_pairing_code(&ctx.partition, self.actor())?;
        Ok(AdminResponse::PairingCode(NewPairingCode {
            code: code.display().to_string(),
        }))
    }
}
