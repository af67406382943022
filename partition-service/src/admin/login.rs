//! Officer login: a challenge, then a quorum of card signatures over this session's login
//! message; failed logins are counted and throttle the partition's logins. The four-eyes rule
//! (a device-SO login needs two people) is one check in [`verify_quorum`], kept with the login
//! it guards rather than in a file of its own.

use audit_log::{Actor, KnownOperation, Role};
use ed25519_dalek::{Signature, VerifyingKey};
use hsm_link::domain::{CardSetDescription, HolderName};
use hsm_link::message::{
    AdminError, AdminResponse, CardSignature, LoginRefusal, OfficerRole, login_message,
};
use hsm_link::server::SessionContext;

use super::log_read::log_warning;
use super::session::{AdminSession, Ration};
use crate::model::PartitionRecord;
use crate::service::{Event, ServiceError};

/// How long a login challenge stays valid.
pub const CHALLENGE_LIFETIME_MS: u64 = 5 * 60 * 1000;
/// Failed logins within [`THROTTLE_WINDOW_S`] that lock logins out (as Decanus: 100 in 300 s).
pub const THROTTLE_FAILURES: usize = 100;
/// Failed logins from one terminal (by its pinned key) within [`THROTTLE_WINDOW_S`] that lock
/// that terminal alone out for [`THROTTLE_LOCKOUT_S`]: a tenth of the partition's limit, so
/// that one terminal cannot lock out every officer (each failure is still logged, and counts
/// towards the partition's limit too).
pub const THROTTLE_FAILURES_PER_TERMINAL: usize = 10;
/// The throttling window.
pub const THROTTLE_WINDOW_S: u64 = 300;
/// How long a lock-out lasts.
pub const THROTTLE_LOCKOUT_S: u64 = 300;

/// A quorum's login, as this session holds it.
pub(super) struct Login {
    pub(super) role: OfficerRole,
    pub(super) holders: Vec<HolderName>,
    /// The management session's generation at login: a later login supersedes it.
    pub(super) generation: u64,
}

/// A challenge issued and not yet answered.
pub(super) struct Challenge {
    role: OfficerRole,
    nonce: [u8; 32],
    issued_ms: u64,
}

/// A card key as the log shows it: the first 16 bytes in hex.
fn key_text(key: &[u8; 32]) -> String {
    key[..16].iter().map(|b| format!("{b:02x}")).collect()
}

impl AdminSession {
    pub(super) fn challenge(
        &mut self,
        ctx: &SessionContext,
        role: OfficerRole,
    ) -> Result<AdminResponse, ServiceError> {
        let record = self.hsm.partition(&ctx.partition)?;
        self.refuse_if_throttled(ctx, &record)?;
        if role == OfficerRole::DeviceSo && !record.config.device_so_access {
            let event = Event::new(self.actor(), KnownOperation::Login)
                .refused(AdminError::DeviceSoAccessOff);
            self.log_refused(ctx, event)?;
            return Err(AdminError::DeviceSoAccessOff.into());
        }
        let set = self
            .active_set(&record, role)?
            .ok_or(AdminError::Login(LoginRefusal::NoCardSet))?;
        let mut nonce = [0u8; 32];
        getrandom::fill(&mut nonce).map_err(crate::crypto::CryptoError::Rng)?;
        self.challenge = Some(Challenge {
            role,
            nonce,
            issued_ms: self.hsm.clock().now_ms(),
        });
        Ok(AdminResponse::Challenge {
            nonce,
            threshold: set.threshold,
            cards: set.cards,
        })
    }

    fn active_set(
        &self,
        record: &PartitionRecord,
        role: OfficerRole,
    ) -> Result<Option<CardSetDescription>, ServiceError> {
        Ok(match role {
            OfficerRole::Pso => record.pso.as_ref().map(|s| s.set.clone()),
            OfficerRole::Auditor => record.auditor.as_ref().map(|s| s.set.clone()),
            OfficerRole::DeviceSo => self.hsm.so_set()?,
        })
    }

    pub(super) fn login(
        &mut self,
        ctx: &SessionContext,
        role: OfficerRole,
        signatures: &[CardSignature],
    ) -> Result<AdminResponse, ServiceError> {
        let record = self.hsm.partition(&ctx.partition)?;
        self.refuse_if_throttled(ctx, &record)?;
        let now_ms = self.hsm.clock().now_ms();
        // A challenge answers once, for its role, within its lifetime.
        let challenge = match self.challenge.take() {
            Some(c)
                if c.role == role
                    && now_ms.saturating_sub(c.issued_ms) <= CHALLENGE_LIFETIME_MS =>
            {
                c
            }
            _ => return self.login_failed(ctx, role, LoginRefusal::NoChallenge, Vec::new()),
        };
        let Some(set) = self.active_set(&record, role)? else {
            return self.login_failed(ctx, role, LoginRefusal::NoCardSet, Vec::new());
        };
        match verify_quorum(&set, role, ctx, &challenge.nonce, signatures) {
            Ok(holders) => self.logged_in(ctx, role, set.set_number, holders),
            Err((refusal, claimed)) => {
                let index = match refusal {
                    LoginRefusal::UnknownCard { index }
                    | LoginRefusal::DuplicateCard { index }
                    | LoginRefusal::BadSignature { index } => Some(index),
                    _ => None,
                };
                self.refused_card = index
                    .and_then(|i| signatures.get(i))
                    .map(|s| key_text(&s.signing_key));
                self.login_failed(ctx, role, refusal, claimed)
            }
        }
    }

    /// A verified quorum logs in: on record first, and only if its role may still log in (the
    /// device-SO access switch is read in the same transaction, so a quorum cannot log in, nor
    /// supersede the session that switched it off, after access was switched off).
    fn logged_in(
        &mut self,
        ctx: &SessionContext,
        role: OfficerRole,
        set_number: u32,
        holders: Vec<HolderName>,
    ) -> Result<AdminResponse, ServiceError> {
        let actor = Actor::new(role.role(), holders.iter().map(|h| h.as_str().to_string()));
        self.change(
            ctx,
            Ration::Take,
            |hsm, tx, record| {
                if role == OfficerRole::DeviceSo && !record.config.device_so_access {
                    return Err(AdminError::DeviceSoAccessOff.into());
                }
                let event = Event::new(actor.clone(), KnownOperation::Login)
                    .detail("set", set_number.to_string());
                hsm.append(tx, record, event)
            },
            || Event::new(actor.clone(), KnownOperation::Login),
        )?;
        // Only a login that is on record ends the other management session.
        let generation = self.hsm.take_over(&ctx.partition);
        // A ceremony belongs to the login that opened it (or to no login): a new quorum begins
        // its own.
        self.ceremony = None;
        self.login = Some(Login {
            role,
            holders: holders.clone(),
            generation,
        });
        let record = self.hsm.partition(&ctx.partition)?;
        Ok(AdminResponse::LoggedIn {
            role,
            holders,
            log_warning: log_warning(&record),
        })
    }

    /// Refuses a challenge or a login while the partition's logins, or this terminal's, are
    /// locked out (not logged: a locked-out terminal must not fill the log either).
    fn refuse_if_throttled(
        &self,
        ctx: &SessionContext,
        record: &PartitionRecord,
    ) -> Result<(), ServiceError> {
        let now = self.hsm.clock().now_s();
        let partition = record
            .throttle
            .locked_until
            .filter(|&until| until > now)
            .map(|until| until - now);
        let terminal = self
            .hsm
            .terminal_locked(&ctx.partition, &ctx.terminal.fingerprint());
        match partition.max(terminal) {
            Some(retry_after_secs) => {
                Err(AdminError::Login(LoginRefusal::Throttled { retry_after_secs }).into())
            }
            None => Ok(()),
        }
    }

    fn login_failed(
        &mut self,
        ctx: &SessionContext,
        role: OfficerRole,
        refusal: LoginRefusal,
        claimed: Vec<HolderName>,
    ) -> Result<AdminResponse, ServiceError> {
        let now = self.hsm.clock().now_s();
        let refused_card = self.refused_card.take();
        let terminal_locked = self.hsm.terminal_login_failed(
            &ctx.partition,
            ctx.terminal.fingerprint(),
            THROTTLE_FAILURES_PER_TERMINAL,
            THROTTLE_WINDOW_S,
            THROTTLE_LOCKOUT_S,
        );
        let actor = Actor::new(
            Role::Unauthenticated,
            claimed.iter().map(|h| h.as_str().to_string()),
        );
        self.hsm.modify(&ctx.partition, |hsm, tx, record| {
            let throttle = &mut record.throttle;
            throttle.failures.retain(|&t| t + THROTTLE_WINDOW_S > now);
            throttle.failures.push(now);
            let mut event = Event::new(actor, KnownOperation::Login)
                .refused(&refusal)
                .detail("role", role.role().as_str());
            if let Some(card) = refused_card {
                event = event.detail("card-key", card);
            }
            if terminal_locked {
                event = event.detail("terminal-lockout-seconds", THROTTLE_LOCKOUT_S.to_string());
            }
            if throttle.failures.len() >= THROTTLE_FAILURES {
                throttle.failures.clear();
                throttle.locked_until = Some(now + THROTTLE_LOCKOUT_S);
                event = event.detail("lockout-seconds", THROTTLE_LOCKOUT_S.to_string());
            }
            // The refusal is recorded even when the log is full: throttling must hold.
            match hsm.append(tx, record, event) {
                Err(ServiceError::Admin(AdminError::LogFull)) => Ok(()),
                other => other,
            }
        })?;
        Err(AdminError::Login(refusal).into())
    }
}

/// Verifies card signatures against the set: each from a distinct card of the set, each valid
/// over this session's login message, at least the threshold, and for SOs two people.
fn verify_quorum(
    set: &CardSetDescription,
    role: OfficerRole,
    ctx: &SessionContext,
    nonce: &[u8; 32],
    signatures: &[CardSignature],
) -> Result<Vec<HolderName>, (LoginRefusal, Vec<HolderName>)> {
    // On refusal, the holders whose cards did verify are named in the log; a card that is not
    // in the set has no registered name, so the log shows its key instead (login_failed).
    let message = login_message(&ctx.channel_binding, nonce, &ctx.partition, role);
    let mut seen: Vec<[u8; 32]> = Vec::new();
    let mut holders: Vec<HolderName> = Vec::new();
    for (index, s) in signatures.iter().enumerate() {
        let Some(card) = set.cards.iter().find(|c| c.signing_key == s.signing_key) else {
            return Err((LoginRefusal::UnknownCard { index }, holders));
        };
        if seen.contains(&s.signing_key) {
            return Err((LoginRefusal::DuplicateCard { index }, holders));
        }
        let valid = VerifyingKey::from_bytes(&s.signing_key)
            .ok()
            .is_some_and(|key| {
                key.verify_strict(&message, &Signature::from_bytes(&s.signature))
                    .is_ok()
            });
        if !valid {
            return Err((LoginRefusal::BadSignature { index }, holders));
        }
        seen.push(s.signing_key);
        holders.push(card.holder.clone());
    }
    let need = usize::from(set.threshold);
    if holders.len() < need {
        return Err((
            LoginRefusal::TooFewCards {
                have: holders.len(),
                need,
            },
            holders,
        ));
    }
    if role == OfficerRole::DeviceSo {
        let two_people = holders
            .iter()
            .any(|h| holders.iter().any(|o| !o.same_person_as(h)));
        if !two_people {
            return Err((LoginRefusal::SamePerson, holders));
        }
    }
    Ok(holders)
}
