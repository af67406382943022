//! The administration side: one handler per link session, holding that session's login.
//!
//! Every request is checked against the role/permission table and the partition's device-SO
//! access switch ([`crate::policy::admin_check`]); every refusal is logged like a success, except
//! beyond the ration of entries a partition takes for sessions without a login
//! ([`UNAUTHENTICATED_ENTRIES_PER_WINDOW`]: counted, and the next entry says how many) and a
//! login challenge refused while logins are throttled.

use std::sync::Arc;

use audit_log::{Actor, LogLine, Outcome, Role};
use ed25519_dalek::{Signature, VerifyingKey};
use hsm_link::domain::{
    CardDescription, CardSerial, CardSetDescription, CardSetKind, HolderName, KeyState, Parameter,
};
use hsm_link::message::{
    Action, AdminError, AdminRequest, AdminResponse, CardSetProblem, CardSignature, CeremonyKind,
    CloseReason, ConfigProblem, KeyFilter, LogPage, LogQuery, LogSpace, LoginRefusal,
    MAX_KEYS_PER_PAGE, MAX_LOG_LINES_PER_PAGE, MAX_PAGE_BYTES, NewCredentials, OfficerRole,
    OutcomeFilter, RecoveryPublic, RemoteError, Response, drill_message, enrolment_message,
    login_message,
};
use hsm_link::server::{AdminService, Handler, Reply, ReplyStream, SessionContext};

use crate::model::{CardSetRecord, PartitionRecord};
use crate::policy::admin_check;
use crate::service::{Event, Hsm, ServiceError};

/// Encoded bytes of a key summary besides its label (an upper bound).
const KEY_SUMMARY_OVERHEAD: usize = 64;
/// Log lines a filtered read examines per page at most, so that a rare filter answers in bounded
/// time; the page then says where to go on.
pub const MAX_SCANNED_PER_PAGE: usize = 20_000;

/// How long a login challenge stays valid.
pub const CHALLENGE_LIFETIME_MS: u64 = 5 * 60 * 1000;
/// Failed logins within [`THROTTLE_WINDOW_S`] that lock logins out (as Decanus: 100 in 300 s).
pub const THROTTLE_FAILURES: usize = 100;
/// The throttling window.
pub const THROTTLE_WINDOW_S: u64 = 300;
/// How long a lock-out lasts.
pub const THROTTLE_LOCKOUT_S: u64 = 300;
/// Log entries a partition takes for sessions without an officer login (share drills and
/// refusals) within [`THROTTLE_WINDOW_S`]: twice the largest set, so every holder can drill, and
/// a drill can be repeated, in one sitting. Beyond it a drill report is refused and a refusal
/// is answered without an entry; the next entry admitted says how many were not logged. This
/// keeps a paired terminal without cards from filling the log (failed logins have their own
/// throttle).
pub const UNAUTHENTICATED_ENTRIES_PER_WINDOW: usize = 32;
/// How long a new setup password stays valid (seed 002: 72 hours).
pub const SETUP_PASSWORD_LIFETIME_S: u64 = 72 * 3600;

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
    fn session(&self, _ctx: &SessionContext) -> Box<dyn Handler> {
        Box::new(AdminSession {
            hsm: Arc::clone(&self.hsm),
            login: None,
            challenge: None,
            refused_card: None,
            ceremony: None,
        })
    }
}

struct Login {
    role: OfficerRole,
    holders: Vec<HolderName>,
    generation: u64,
}

struct Challenge {
    role: OfficerRole,
    nonce: [u8; 32],
    issued_ms: u64,
}

struct AdminSession {
    hsm: Arc<Hsm>,
    login: Option<Login>,
    challenge: Option<Challenge>,
    /// The key of the card a failed login named, for the log.
    refused_card: Option<String>,
    /// This session's open card-set ceremony (at most one).
    ceremony: Option<OpenCeremony>,
}

#[derive(Clone, Copy)]
struct OpenCeremony {
    id: [u8; 16],
    kind: CeremonyKind,
}

/// A [`AdminRequest::RegisterCardSetInCeremony`] as received.
struct Registration {
    ceremony: [u8; 16],
    set: CardSetDescription,
    recovery: Option<RecoveryPublic>,
    replaces_revoked: Option<CardSerial>,
    old_shares_left: Vec<CardSerial>,
    leftover_shares: Vec<CardSerial>,
    proofs: Vec<CardSignature>,
}

/// A registration that closes a ceremony.
struct CeremonyStep {
    ceremony: OpenCeremony,
    replaces_revoked: Option<CardSerial>,
    old_shares_left: Vec<CardSerial>,
    leftover_shares: Vec<CardSerial>,
    proofs: Vec<CardSignature>,
}

/// `event`, saying how many entries without a login were not logged before it (if any).
fn with_unlogged(event: Event, unlogged: u64) -> Event {
    if unlogged == 0 {
        event
    } else {
        event.detail("unlogged-before", unlogged.to_string())
    }
}

/// A ceremony id as the log shows it.
fn ceremony_text(id: &[u8; 16]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// A card key as the log shows it: the first 16 bytes in hex.
fn key_text(key: &[u8; 32]) -> String {
    key[..16].iter().map(|b| format!("{b:02x}")).collect()
}

fn remote(e: ServiceError) -> RemoteError {
    match e {
        ServiceError::Admin(a) => RemoteError::Admin(a),
        // Internal faults are not the terminal's business beyond "it failed"; the HSM's own
        // diagnostics carry the detail.
        _ => RemoteError::Internal,
    }
}

fn respond(result: Result<AdminResponse, ServiceError>) -> Reply {
    Reply::Response(result.map(Response::Admin).map_err(remote))
}

impl AdminSession {
    fn actor(&self) -> Actor {
        match &self.login {
            Some(login) => Actor::new(
                login.role.role(),
                login.holders.iter().map(|h| h.as_str().to_string()),
            ),
            None => Actor::new(Role::Unauthenticated, Vec::<String>::new()),
        }
    }

    fn role(&self) -> Option<Role> {
        self.login.as_ref().map(|l| l.role.role())
    }

    /// Admits one log entry for this session if it has no login (see
    /// [`UNAUTHENTICATED_ENTRIES_PER_WINDOW`]): how many entries were not logged before it, or
    /// the seconds until one is admitted again. A logged-in session is not rationed.
    fn admit_unauthenticated(&self, ctx: &SessionContext) -> Result<u64, u64> {
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
    fn log_refused(&self, ctx: &SessionContext, event: Event) -> Result<(), ServiceError> {
        match self.admit_unauthenticated(ctx) {
            Ok(unlogged) => self
                .hsm
                .log_refusal(&ctx.partition, with_unlogged(event, unlogged)),
            Err(_) => Ok(()),
        }
    }

    /// Checks `action`; a refusal is logged and returned.
    fn check(&self, ctx: &SessionContext, action: Action) -> Result<PartitionRecord, ServiceError> {
        let record = self.hsm.partition(&ctx.partition)?;
        if let Err(refusal) = admin_check(self.role(), action, &record.config) {
            let event = Event::new(self.actor(), operation_of(action)).refused(&refusal);
            self.log_refused(ctx, event)?;
            return Err(refusal.into());
        }
        Ok(record)
    }

    fn challenge(
        &mut self,
        ctx: &SessionContext,
        role: OfficerRole,
    ) -> Result<AdminResponse, ServiceError> {
        let record = self.hsm.partition(&ctx.partition)?;
        let now = self.hsm.clock().now_s();
        if let Some(until) = record.throttle.locked_until
            && until > now
        {
            return Err(AdminError::Login(LoginRefusal::Throttled {
                retry_after_secs: until - now,
            })
            .into());
        }
        if role == OfficerRole::DeviceSo && !record.config.device_so_access {
            let event = Event::new(self.actor(), "login").refused(AdminError::DeviceSoAccessOff);
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

    fn login(
        &mut self,
        ctx: &SessionContext,
        role: OfficerRole,
        signatures: &[CardSignature],
    ) -> Result<AdminResponse, ServiceError> {
        let record = self.hsm.partition(&ctx.partition)?;
        let now_ms = self.hsm.clock().now_ms();
        if let Some(until) = record.throttle.locked_until
            && until > now_ms / 1000
        {
            return Err(AdminError::Login(LoginRefusal::Throttled {
                retry_after_secs: until - now_ms / 1000,
            })
            .into());
        }
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
            Ok(holders) => {
                let actor = Actor::new(role.role(), holders.iter().map(|h| h.as_str().to_string()));
                self.hsm.modify(&ctx.partition, |hsm, tx, record| {
                    hsm.append(
                        tx,
                        record,
                        Event::new(actor, "login").detail("set", set.set_number.to_string()),
                    )
                })?;
                // Only a login that is on record ends the other management session.
                let generation = self.hsm.take_over(&ctx.partition);
                // A ceremony belongs to the login that opened it (or to no login): a new quorum
                // begins its own.
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

    fn login_failed(
        &mut self,
        ctx: &SessionContext,
        role: OfficerRole,
        refusal: LoginRefusal,
        claimed: Vec<HolderName>,
    ) -> Result<AdminResponse, ServiceError> {
        let now = self.hsm.clock().now_s();
        let refused_card = self.refused_card.take();
        let actor = Actor::new(
            Role::Unauthenticated,
            claimed.iter().map(|h| h.as_str().to_string()),
        );
        self.hsm.modify(&ctx.partition, |hsm, tx, record| {
            let throttle = &mut record.throttle;
            throttle.failures.retain(|&t| t + THROTTLE_WINDOW_S > now);
            throttle.failures.push(now);
            let mut event = Event::new(actor, "login")
                .refused(&refusal)
                .detail("role", role.role().as_str());
            if let Some(card) = refused_card {
                event = event.detail("card-key", card);
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

    fn change_config(
        &self,
        ctx: &SessionContext,
        expected_revision: u64,
        mut new: hsm_link::domain::PartitionConfig,
    ) -> Result<AdminResponse, ServiceError> {
        self.check(ctx, Action::ChangeConfig)?;
        let actor = self.actor();
        let result = self.hsm.modify(&ctx.partition, |hsm, tx, record| {
            let old = &record.config;
            if old.revision != expected_revision {
                return Err(AdminError::StaleRevision {
                    current: old.revision,
                }
                .into());
            }
            new.revision = old.revision;
            if let Some(problem) = config_problem(old, &new) {
                return Err(AdminError::InvalidConfig { problem }.into());
            }
            let changes = old.diff(&new);
            new.revision = old.revision + 1;
            let mut event = Event::new(actor.clone(), "config.change")
                .object("configuration")
                .detail("revision", new.revision.to_string());
            for change in changes.iter().take(6) {
                event = event.detail(
                    change.parameter.as_str(),
                    format!("{} -> {}", change.old, change.new),
                );
            }
            if changes.len() > 6 {
                event = event.detail("more-changes", (changes.len() - 6).to_string());
            }
            record.config = new;
            hsm.append(tx, record, event)?;
            Ok(record.config.revision)
        });
        match result {
            Ok(revision) => Ok(AdminResponse::ConfigChanged { revision }),
            Err(ServiceError::Admin(refusal)) => {
                let event = Event::new(actor, "config.change").refused(&refusal);
                self.log_refused(ctx, event)?;
                Err(refusal.into())
            }
            Err(e) => Err(e),
        }
    }

    fn list_keys(
        &self,
        ctx: &SessionContext,
        filter: KeyFilter,
        after: Option<hsm_link::domain::KeyId>,
        limit: u32,
    ) -> Result<AdminResponse, ServiceError> {
        self.check(ctx, Action::ListKeys)?;
        let limit = (limit as usize).clamp(1, MAX_KEYS_PER_PAGE);
        let (keys, more) = self.hsm.store().read(|tx| {
            tx.keys(&ctx.partition, after, limit, |k| match filter {
                KeyFilter::All => true,
                KeyFilter::Active => !k.summary.state.is_invalidated(),
                KeyFilter::Invalidated => k.summary.state.is_invalidated(),
            })
            .map_err(ServiceError::from)
        })?;
        // Keys with long labels: stop the page at its byte budget.
        let mut bytes = 0;
        let mut page = Vec::with_capacity(keys.len());
        let mut more = more;
        for key in keys {
            bytes += key.summary.label.as_str().len() + KEY_SUMMARY_OVERHEAD;
            if bytes > MAX_PAGE_BYTES {
                more = true;
                break;
            }
            page.push(key.summary);
        }
        Ok(AdminResponse::Keys { keys: page, more })
    }

    fn bin(
        &self,
        ctx: &SessionContext,
        id: hsm_link::domain::KeyId,
        purge: bool,
    ) -> Result<AdminResponse, ServiceError> {
        let action = if purge {
            Action::PurgeKey
        } else {
            Action::RestoreKey
        };
        self.check(ctx, action)?;
        let actor = self.actor();
        let result = self.hsm.modify(&ctx.partition, |hsm, tx, record| {
            let mut key = match tx.key(&ctx.partition, id)? {
                Some(k) if k.summary.state.is_invalidated() => k,
                _ => return Err(AdminError::NoSuchKey { id, in_bin: true }.into()),
            };
            let label = key.summary.label.as_str().to_string();
            record.usage.invalidated_objects -= 1;
            if purge {
                tx.delete_key(&ctx.partition, id)?;
                record.usage.bytes_used -= key.summary.size_bytes;
                record.usage.objects_used -= 1;
            } else {
                key.summary.state = KeyState::Active;
                tx.put_key(&ctx.partition, &key)?;
            }
            let operation = if purge { "key.purge" } else { "key.restore" };
            let event = Event::new(actor.clone(), operation)
                .object(format!("key {}", id.0))
                .detail("label", label);
            hsm.append(tx, record, event)
        });
        match result {
            Ok(()) => Ok(AdminResponse::Done),
            Err(ServiceError::Admin(refusal)) => {
                let operation = if purge { "key.purge" } else { "key.restore" };
                let event = Event::new(actor, operation)
                    .object(format!("key {}", id.0))
                    .refused(&refusal);
                self.log_refused(ctx, event)?;
                Err(refusal.into())
            }
            Err(e) => Err(e),
        }
    }

    fn reset_credentials(&self, ctx: &SessionContext) -> Result<AdminResponse, ServiceError> {
        self.check(ctx, Action::ResetCredentials)?;
        let (password, expires) = self.hsm.reset_credentials(&ctx.partition, self.actor())?;
        Ok(AdminResponse::Credentials(NewCredentials {
            setup_password: password.to_string(),
            expires_unix: expires,
        }))
    }

    /// Opens a ceremony: who may register the set it ends with may open it (the first PSO
    /// set's enrolment from the first terminal without a login; everything else with a login
    /// that may register card sets).
    fn begin_ceremony(
        &mut self,
        ctx: &SessionContext,
        kind: CeremonyKind,
    ) -> Result<AdminResponse, ServiceError> {
        let actor = self.actor();
        let role = self.role();
        let logged_in = self.login.is_some();
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).map_err(crate::crypto::CryptoError::Rng)?;
        let replaced = self.ceremony.map(|c| ceremony_text(&c.id));
        let result = self.hsm.modify(&ctx.partition, |hsm, tx, record| {
            let first_enrol = kind == CeremonyKind::Enrol
                && record.pso.is_none()
                && record.pairing.first_terminal == Some(ctx.terminal)
                && !logged_in;
            if !first_enrol {
                admin_check(role, Action::RegisterCardSet, &record.config)?;
            }
            if kind != CeremonyKind::Enrol && record.pso.is_none() {
                return Err(AdminError::Login(LoginRefusal::NoCardSet).into());
            }
            let mut event = Event::new(actor.clone(), "ceremony.begin")
                .object(format!("ceremony {}", ceremony_text(&id)))
                .detail("kind", kind.as_str());
            if let Some(old) = &replaced {
                event = event.detail("abandons", old.clone());
            }
            hsm.append(tx, record, event)
        });
        match result {
            Ok(()) => {
                self.ceremony = Some(OpenCeremony { id, kind });
                Ok(AdminResponse::Ceremony { id })
            }
            Err(ServiceError::Admin(refusal)) => {
                let event = Event::new(actor, "ceremony.begin")
                    .refused(&refusal)
                    .detail("kind", kind.as_str());
                self.log_refused(ctx, event)?;
                Err(refusal.into())
            }
            Err(e) => Err(e),
        }
    }

    /// The last step of a ceremony: the set's registration, bound to the open ceremony's id.
    fn register_in_ceremony(
        &mut self,
        ctx: &SessionContext,
        registration: Registration,
    ) -> Result<AdminResponse, ServiceError> {
        let open = match self.ceremony {
            Some(open) if open.id == registration.ceremony => open,
            _ => {
                let event = Event::new(self.actor(), "cardset.register")
                    .refused(AdminError::CeremonyMismatch)
                    .detail("ceremony", ceremony_text(&registration.ceremony));
                self.log_refused(ctx, event)?;
                return Err(AdminError::CeremonyMismatch.into());
            }
        };
        let step = CeremonyStep {
            ceremony: open,
            replaces_revoked: registration.replaces_revoked,
            old_shares_left: registration.old_shares_left,
            leftover_shares: registration.leftover_shares,
            proofs: registration.proofs,
        };
        let response = self.register_set(ctx, registration.set, registration.recovery, step)?;
        self.ceremony = None;
        Ok(response)
    }

    fn recovery_public(&self, ctx: &SessionContext) -> Result<AdminResponse, ServiceError> {
        // Public values only (the login challenge shows the same cards without a login), so a
        // holder can drill a card without a login; a logged-in role follows the table.
        let record = if self.login.is_some() {
            self.check(ctx, Action::ViewCardSets)?
        } else {
            self.hsm.partition(&ctx.partition)?
        };
        let Some(CardSetRecord {
            set,
            recovery: Some(recovery),
        }) = record.pso
        else {
            return Err(AdminError::Login(LoginRefusal::NoCardSet).into());
        };
        Ok(AdminResponse::RecoveryPublic {
            set_number: set.set_number,
            threshold: set.threshold,
            cards: set.cards,
            recovery: Box::new(recovery),
        })
    }

    fn report_drill(
        &self,
        ctx: &SessionContext,
        serial: CardSerial,
        ok: bool,
        signature: &[u8; 64],
    ) -> Result<AdminResponse, ServiceError> {
        let actor = self.actor();
        // Without a login the report is rationed; a throttled one is not logged either, since
        // that would fill the log all the same.
        let unlogged = match self.admit_unauthenticated(ctx) {
            Ok(n) => n,
            Err(retry_after_secs) => {
                return Err(AdminError::DrillsThrottled { retry_after_secs }.into());
            }
        };
        let result = self.hsm.modify(&ctx.partition, |hsm, tx, record| {
            let Some(pso) = &record.pso else {
                return Err(AdminError::Login(LoginRefusal::NoCardSet).into());
            };
            let Some(card) = pso.set.cards.iter().find(|c| c.serial == serial) else {
                return Err(AdminError::CardNotInSet.into());
            };
            let message = drill_message(
                &ctx.channel_binding,
                &ctx.partition,
                pso.set.set_number,
                &serial,
                ok,
            );
            let signed = VerifyingKey::from_bytes(&card.signing_key)
                .ok()
                .is_some_and(|key| {
                    key.verify_strict(&message, &Signature::from_bytes(signature))
                        .is_ok()
                });
            if !signed {
                return Err(AdminError::DrillNotSigned.into());
            }
            let mut event = Event::new(actor.clone(), "quorum.drill")
                .object(format!("card {serial}"))
                .detail("holder", card.holder.as_str())
                .detail("set", pso.set.set_number.to_string());
            event = if ok {
                event.detail("result", "share valid")
            } else {
                event.failed("the card's share did not open or failed its check")
            };
            hsm.append(tx, record, with_unlogged(event, unlogged))
        });
        match result {
            Ok(()) => Ok(AdminResponse::Done),
            Err(ServiceError::Admin(refusal)) => {
                let event = Event::new(actor, "quorum.drill")
                    .object(format!("card {serial}"))
                    .refused(&refusal);
                // Admitted above: this entry is the report's.
                self.hsm
                    .log_refusal(&ctx.partition, with_unlogged(event, unlogged))?;
                Err(refusal.into())
            }
            Err(e) => Err(e),
        }
    }

    fn register_set(
        &self,
        ctx: &SessionContext,
        set: CardSetDescription,
        recovery: Option<RecoveryPublic>,
        step: CeremonyStep,
    ) -> Result<AdminResponse, ServiceError> {
        let actor = self.actor();
        let role = self.role();
        let logged_in = self.login.is_some();
        // Every check reads the record inside the transaction that writes the set, so two
        // registrations racing each other cannot both pass.
        let result = self.hsm.modify(&ctx.partition, |hsm, tx, record| {
            let first_pso = set.kind == CardSetKind::Pso && record.pso.is_none();
            let from_first_terminal = record.pairing.first_terminal == Some(ctx.terminal);
            if !(first_pso && from_first_terminal && !logged_in) {
                admin_check(role, Action::RegisterCardSet, &record.config)?;
            }
            if let Some(problem) = card_set_problem(
                record,
                &set,
                recovery.as_ref(),
                first_pso,
                from_first_terminal,
            ) {
                return Err(AdminError::CardSet(problem).into());
            }
            if !fits_ceremony(record, &set, recovery.as_ref(), &step) {
                return Err(AdminError::CardSet(CardSetProblem::NotForCeremony).into());
            }
            if let Some(index) = unproven_card(ctx, &set, &step) {
                return Err(AdminError::CardSet(CardSetProblem::NoProof { index }).into());
            }
            if let Some(index) = set.cards.iter().position(|c| c.soft_card)
                && !tx.soft_cards_allowed()?
            {
                // Sets hold at most MAX_CARDS_PER_SET (16) cards.
                let index = index as u8;
                return Err(AdminError::CardSet(CardSetProblem::SoftCardsRefused { index }).into());
            }
            let holders: Vec<&str> = set.cards.iter().map(|c| c.holder.as_str()).collect();
            let mut event = Event::new(actor.clone(), "cardset.register")
                .object(format!("{:?} set {}", set.kind, set.set_number))
                .detail(
                    "threshold",
                    format!("{} of {}", set.threshold, set.cards.len()),
                )
                .detail("holders", holders.join(", "));
            event = event
                .detail("ceremony", ceremony_text(&step.ceremony.id))
                .detail("kind", step.ceremony.kind.as_str());
            if let Some(revoked) = &step.replaces_revoked {
                event = event.detail("revoked", revoked.to_string());
            }
            if !step.old_shares_left.is_empty() {
                let left: Vec<String> =
                    step.old_shares_left.iter().map(|s| s.to_string()).collect();
                event = event.detail("old-shares-left", left.join(", "));
            }
            if !step.leftover_shares.is_empty() {
                let left: Vec<String> =
                    step.leftover_shares.iter().map(|s| s.to_string()).collect();
                event = event.detail("leftover-shares", left.join(", "));
            }
            let soft = set.soft_serials();
            if !soft.is_empty() {
                event = event.detail("soft-cards", soft);
            }
            let entry = CardSetRecord {
                set: set.clone(),
                recovery: recovery.clone(),
            };
            match set.kind {
                CardSetKind::Pso => record.pso = Some(entry),
                _ => record.auditor = Some(entry),
            }
            hsm.append(tx, record, event)
        });
        match result {
            Ok(()) => Ok(AdminResponse::Done),
            Err(ServiceError::Admin(refusal)) => {
                let event = Event::new(actor, "cardset.register")
                    .refused(&refusal)
                    .detail("ceremony", ceremony_text(&step.ceremony.id));
                self.log_refused(ctx, event)?;
                Err(refusal.into())
            }
            Err(e) => Err(e),
        }
    }

    fn read_log(
        &self,
        ctx: &SessionContext,
        query: &LogQuery,
    ) -> Result<AdminResponse, ServiceError> {
        let record = self.check(ctx, Action::ReadLog)?;
        let limit = (query.limit as usize).clamp(1, MAX_LOG_LINES_PER_PAGE);
        let mut lines: Vec<String> = Vec::new();
        let mut bytes = 0;
        let mut scanned = 0;
        let mut next_seq = None;
        let unfiltered = is_unfiltered(query);
        self.hsm.store().read(|tx| {
            tx.log_lines(&ctx.partition, query.from_seq, |seq, line, checkpoint| {
                if query.to_seq.is_some_and(|to| seq > to) {
                    return false;
                }
                let room = line.len() + checkpoint.map_or(0, |c| c.len()) + 8;
                if lines.len() >= limit
                    || bytes + room > MAX_PAGE_BYTES
                    || scanned >= MAX_SCANNED_PER_PAGE
                {
                    next_seq = Some(seq);
                    return false;
                }
                scanned += 1;
                if matches_query(query, line) {
                    lines.push(String::from_utf8_lossy(line).into_owned());
                    bytes += line.len() + 4;
                }
                if let Some(cp) = checkpoint
                    && unfiltered
                {
                    lines.push(String::from_utf8_lossy(cp).into_owned());
                    bytes += cp.len() + 4;
                }
                true
            })
            .map_err(ServiceError::from)
        })?;
        Ok(AdminResponse::LogPage(LogPage {
            lines,
            next_seq,
            warning: log_warning(&record),
        }))
    }

    fn confirm_export(
        &self,
        ctx: &SessionContext,
        up_to_seq: u64,
    ) -> Result<AdminResponse, ServiceError> {
        self.check(ctx, Action::ConfirmExport)?;
        let actor = self.actor();
        let result = self.hsm.modify(&ctx.partition, |hsm, tx, record| {
            let exported = record.log.exported_up_to.unwrap_or(0);
            if up_to_seq > exported {
                return Err(AdminError::ConfirmBeyondExport {
                    requested: up_to_seq,
                    exported,
                }
                .into());
            }
            let confirmed = record.log.confirmed_up_to.unwrap_or(0).max(up_to_seq);
            record.log.confirmed_up_to = Some(confirmed);
            let event =
                Event::new(actor.clone(), "log.confirm").detail("up-to", confirmed.to_string());
            hsm.append(tx, record, event)
        });
        match result {
            Ok(()) => Ok(AdminResponse::Done),
            Err(ServiceError::Admin(refusal)) => {
                self.log_refused(ctx, Event::new(actor, "log.confirm").refused(&refusal))?;
                Err(refusal.into())
            }
            Err(e) => Err(e),
        }
    }
}

impl Handler for AdminSession {
    fn handle(&mut self, ctx: &SessionContext, request: AdminRequest) -> Reply {
        // A login another session has superseded serves nothing more, even before the next
        // poll ends this session.
        if let Some(login) = &self.login
            && !self.hsm.is_current(&ctx.partition, login.generation)
        {
            self.login = None;
            self.ceremony = None;
        }
        let result = match request {
            AdminRequest::LoginChallenge { role } => self.challenge(ctx, role),
            AdminRequest::Login { role, signatures } => self.login(ctx, role, &signatures),
            AdminRequest::Logout => {
                self.login = None;
                self.ceremony = None;
                Ok(AdminResponse::Done)
            }
            AdminRequest::GetConfig => self
                .check(ctx, Action::ViewConfig)
                .map(|r| AdminResponse::Config(Box::new(r.config))),
            AdminRequest::ChangeConfig {
                expected_revision,
                config,
            } => self.change_config(ctx, expected_revision, *config),
            AdminRequest::GetUsage => self
                .check(ctx, Action::ViewUsage)
                .and_then(|_| self.hsm.usage(&ctx.partition))
                .map(AdminResponse::Usage),
            AdminRequest::ListKeys {
                filter,
                after,
                limit,
            } => self.list_keys(ctx, filter, after, limit),
            AdminRequest::RestoreKey { id } => self.bin(ctx, id, false),
            AdminRequest::PurgeKey { id } => self.bin(ctx, id, true),
            AdminRequest::ResetCredentials => self.reset_credentials(ctx),
            AdminRequest::GetCardSets => {
                self.check(ctx, Action::ViewCardSets)
                    .map(|r| AdminResponse::CardSets {
                        pso: r.pso.map(|s| Box::new(s.set)),
                        auditor: r.auditor.map(|s| Box::new(s.set)),
                    })
            }
            AdminRequest::RegisterCardSet { .. } => {
                let refusal = AdminError::CardSet(CardSetProblem::NeedsCeremony);
                let event = Event::new(self.actor(), "cardset.register").refused(&refusal);
                self.log_refused(ctx, event).and(Err(refusal.into()))
            }
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
                return match self.check(ctx, Action::ExportLog) {
                    Ok(record) => Reply::Stream(Box::new(Export::new(
                        Arc::clone(&self.hsm),
                        ctx.partition.clone(),
                        query,
                        self.actor(),
                        record.log.first_seq,
                    ))),
                    Err(e) => respond(Err(e)),
                };
            }
            AdminRequest::ConfirmExport { up_to_seq } => self.confirm_export(ctx, up_to_seq),
            _ => return Reply::Response(Err(RemoteError::NoAdministration)),
        };
        respond(result)
    }

    fn poll(&mut self, ctx: &SessionContext) -> Option<CloseReason> {
        let login = self.login.as_ref()?;
        if self.hsm.is_current(&ctx.partition, login.generation) {
            None
        } else {
            Some(CloseReason::Superseded)
        }
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

fn config_problem(
    old: &hsm_link::domain::PartitionConfig,
    new: &hsm_link::domain::PartitionConfig,
) -> Option<ConfigProblem> {
    if old.ska.licensed != new.ska.licensed {
        return Some(ConfigProblem::LicenceChanged(Parameter::SmartKeyAttributes));
    }
    if old.crypto_currency.licensed != new.crypto_currency.licensed {
        return Some(ConfigProblem::LicenceChanged(Parameter::CryptoCurrency));
    }
    if old.quota.size_bytes != new.quota.size_bytes {
        return Some(ConfigProblem::TierParameter(Parameter::QuotaSize));
    }
    if old.quota.object_limit != new.quota.object_limit {
        return Some(ConfigProblem::TierParameter(Parameter::ObjectLimit));
    }
    if new.ska.enabled && !new.ska.licensed {
        return Some(ConfigProblem::Unlicensed(Parameter::SmartKeyAttributes));
    }
    if new.crypto_currency.enabled && !new.crypto_currency.licensed {
        return Some(ConfigProblem::Unlicensed(Parameter::CryptoCurrency));
    }
    new.validate().err().map(|_| ConfigProblem::Inconsistent)
}

fn card_set_problem(
    record: &PartitionRecord,
    set: &CardSetDescription,
    recovery: Option<&RecoveryPublic>,
    first_pso: bool,
    from_first_terminal: bool,
) -> Option<CardSetProblem> {
    if set.kind == CardSetKind::DeviceSo {
        return Some(CardSetProblem::DeviceSoSet);
    }
    if set.validate().is_err() {
        return Some(CardSetProblem::Invalid);
    }
    if first_pso && !from_first_terminal {
        return Some(CardSetProblem::NotFirstTerminal);
    }
    match (set.kind, recovery) {
        (CardSetKind::Pso, None) => return Some(CardSetProblem::MissingRecovery),
        (CardSetKind::Auditor, Some(_)) => return Some(CardSetProblem::UnexpectedRecovery),
        (CardSetKind::Pso, Some(r)) if !recovery_well_formed(r, set.threshold) => {
            return Some(CardSetProblem::BadRecovery);
        }
        _ => {}
    }
    let current = match set.kind {
        CardSetKind::Pso => record.pso.as_ref(),
        _ => record.auditor.as_ref(),
    };
    let expected = current.map_or(1, |c| c.set.set_number + 1);
    (set.set_number != expected).then_some(CardSetProblem::SetNumber { expected })
}

/// The position of the first card of `set` without a valid proof of possession for this
/// session and this ceremony (one proof per card, in the set's order), if any.
fn unproven_card(
    ctx: &SessionContext,
    set: &CardSetDescription,
    step: &CeremonyStep,
) -> Option<u8> {
    let proven = |(card, proof): (&CardDescription, &CardSignature)| {
        let message = enrolment_message(
            &ctx.channel_binding,
            &step.ceremony.id,
            &ctx.partition,
            set.kind,
            set.set_number,
            card,
        );
        proof.signing_key == card.signing_key
            && VerifyingKey::from_bytes(&card.signing_key)
                .ok()
                .is_some_and(|key| {
                    key.verify_strict(&message, &Signature::from_bytes(&proof.signature))
                        .is_ok()
                })
    };
    (0..set.cards.len())
        .find(|&i| {
            step.proofs
                .get(i)
                .is_none_or(|p| !proven((&set.cards[i], p)))
        })
        // Sets hold at most MAX_CARDS_PER_SET (16) cards.
        .map(|i| i as u8)
}

/// Whether a set fits the ceremony that registers it: an auditor set for an auditor
/// enrolment (no recovery parts, nothing revoked, no old shares); otherwise a PSO set; an
/// enrolment revokes nothing; a re-share keeps the active set's quorum backup key (the secret is the same) and
/// revokes nothing; a revocation names a card of the active set, leaves it out of the new set,
/// and brings a new backup key (a fresh secret). The first commitment (the secret's public
/// point) must stay the same in a re-share and change in a revocation.
fn fits_ceremony(
    record: &PartitionRecord,
    set: &CardSetDescription,
    recovery: Option<&RecoveryPublic>,
    step: &CeremonyStep,
) -> bool {
    // A card said to hold a leftover share of the set is not in it, and only a set with shares
    // leaves any.
    if step
        .leftover_shares
        .iter()
        .any(|serial| set.cards.iter().any(|card| &card.serial == serial))
    {
        return false;
    }
    if step.ceremony.kind == CeremonyKind::EnrolAuditors {
        return set.kind == CardSetKind::Auditor
            && recovery.is_none()
            && step.replaces_revoked.is_none()
            && step.old_shares_left.is_empty()
            && step.leftover_shares.is_empty();
    }
    if set.kind != CardSetKind::Pso {
        return false;
    }
    let current = record.pso.as_ref();
    // Old shares are left only by a re-share or a revocation, and only on cards of the active
    // set that are not in the new one (the log names them, so they must be real).
    let left_ok = step.old_shares_left.iter().all(|serial| {
        current.is_some_and(|c| c.set.cards.iter().any(|card| &card.serial == serial))
            && !set.cards.iter().any(|card| &card.serial == serial)
    });
    if !left_ok || (step.ceremony.kind == CeremonyKind::Enrol && !step.old_shares_left.is_empty()) {
        return false;
    }
    let current_recovery = current.and_then(|c| c.recovery.as_ref());
    let current_key = current_recovery.map(|r| &r.backup_public_key);
    let new_key = recovery.map(|r| &r.backup_public_key);
    // The first commitment is secret·G: the same secret gives the same bytes.
    let secret_point = |r: &RecoveryPublic| {
        r.commitments
            .get(2..2 + COMMITMENT_POINT_LEN)
            .map(<[u8]>::to_vec)
    };
    let current_point = current_recovery.and_then(secret_point);
    let new_point = recovery.and_then(secret_point);
    match step.ceremony.kind {
        CeremonyKind::Enrol | CeremonyKind::EnrolAuditors => step.replaces_revoked.is_none(),
        CeremonyKind::Reshare => {
            step.replaces_revoked.is_none()
                && current_key.is_some()
                && current_key == new_key
                && current_point.is_some()
                && current_point == new_point
        }
        CeremonyKind::Revoke => {
            let (Some(current), Some(revoked)) = (current, &step.replaces_revoked) else {
                return false;
            };
            let Some(card) = current.set.cards.iter().find(|c| &c.serial == revoked) else {
                return false;
            };
            let left_out = !set
                .cards
                .iter()
                .any(|c| &c.serial == revoked || c.signing_key == card.signing_key);
            left_out && current_key != new_key && current_point != new_point
        }
    }
}

/// Bytes of an X-Wing public key (the quorum backup key).
const XWING_PUBLIC_KEY_LEN: usize = 1216;
/// Bytes of one compressed P-256 point in the commitments.
const COMMITMENT_POINT_LEN: usize = 33;

/// The recovery parts have the shapes the quorum crate writes: an X-Wing public key, and
/// commitments `[format 1][m][m compressed points]` for this set's threshold m. (The HSM cannot
/// check the points themselves without the quorum crate's curve code; a wrong point shows up
/// as a share that fails its check at the next drill.)
fn recovery_well_formed(recovery: &RecoveryPublic, threshold: u8) -> bool {
    let c = &recovery.commitments;
    recovery.backup_public_key.len() == XWING_PUBLIC_KEY_LEN
        && c.len() == 2 + usize::from(threshold) * COMMITMENT_POINT_LEN
        && c[0] == 1
        && c[1] == threshold
        && c[2..]
            .chunks(COMMITMENT_POINT_LEN)
            .all(|p| matches!(p[0], 0x02 | 0x03))
}

fn operation_of(action: Action) -> &'static str {
    match action {
        Action::ViewConfig => "config.view",
        Action::ChangeConfig => "config.change",
        Action::ViewUsage => "usage.view",
        Action::ListKeys => "key.list",
        Action::RestoreKey => "key.restore",
        Action::PurgeKey => "key.purge",
        Action::ResetCredentials => "credentials.reset",
        Action::ViewCardSets => "cardset.view",
        Action::RegisterCardSet => "cardset.register",
        Action::ReadLog => "log.read",
        Action::ExportLog => "log.export",
        Action::ConfirmExport => "log.confirm",
        _ => "admin",
    }
}

fn is_unfiltered(query: &LogQuery) -> bool {
    query.role.is_none()
        && query.operation_prefix.is_none()
        && query.holder.is_none()
        && query.outcome.is_none()
}

fn matches_query(query: &LogQuery, line: &[u8]) -> bool {
    if is_unfiltered(query) {
        return true;
    }
    if !prefilter(query, line) {
        return false;
    }
    let Ok(LogLine::Entry(entry)) = LogLine::from_canonical(line) else {
        return false;
    };
    if query.role.is_some_and(|r| entry.actor().role != r) {
        return false;
    }
    if let Some(prefix) = &query.operation_prefix
        && !entry.operation().as_str().starts_with(prefix.as_str())
    {
        return false;
    }
    if let Some(holder) = &query.holder
        && !entry.actor().holders.iter().any(|h| h == holder)
    {
        return false;
    }
    matches!(
        (query.outcome, entry.outcome()),
        (None, _)
            | (Some(OutcomeFilter::Ok), Outcome::Ok)
            | (Some(OutcomeFilter::Refused), Outcome::Refused { .. })
            | (Some(OutcomeFilter::Failed), Outcome::Failed { .. })
    )
}

/// A cheap test on the canonical bytes that rejects most non-matching lines without parsing
/// them (the canonical encoding fixes field order and spelling); a line that passes is parsed
/// and checked exactly.
fn prefilter(query: &LogQuery, line: &[u8]) -> bool {
    let contains = |needle: &[u8]| line.windows(needle.len()).any(|w| w == needle);
    if let Some(role) = query.role
        && !contains(format!("\"role\":\"{}\"", role.as_str()).as_bytes())
    {
        return false;
    }
    if let Some(prefix) = &query.operation_prefix
        && !prefix.contains(['"', '\\'])
        && !contains(format!("\"op\":\"{prefix}").as_bytes())
    {
        return false;
    }
    if let Some(outcome) = query.outcome {
        let name = match outcome {
            OutcomeFilter::Ok => "ok",
            OutcomeFilter::Refused => "refused",
            OutcomeFilter::Failed => "failed",
        };
        if !contains(format!("\"result\":\"{name}\"").as_bytes()) {
            return false;
        }
    }
    true
}

/// A warning once the log is 90 % full (of what it keeps for ordinary operations: the reserve
/// is for the export that frees space).
fn log_warning(record: &PartitionRecord) -> Option<LogSpace> {
    let log = &record.log;
    let usable = log.capacity.saturating_sub(log.reserve);
    (log.stored() * 10 >= usable * 9).then(|| LogSpace {
        entries: log.stored(),
        capacity: log.capacity,
        unexported: log.unexported(),
    })
}

/// Entries read per store snapshot during an export.
const EXPORT_PAGE: usize = 512;

/// A log export: pages read from the store one at a time (memory stays flat), ending with a
/// checkpoint signed at the end of the read.
struct Export {
    hsm: Arc<Hsm>,
    partition: hsm_link::domain::PartitionId,
    query: LogQuery,
    actor: Actor,
    next_seq: Option<u64>,
    pending: std::collections::VecDeque<Vec<u8>>,
    lines: u64,
    last_seq: Option<u64>,
    /// The last entry line sent: the end-of-export checkpoint covers exactly it.
    last_line: Vec<u8>,
    /// Whether the export holds every stored entry from the oldest on, unfiltered: only such an
    /// export may later be confirmed (and its entries pruned).
    complete: bool,
    checkpoint: Option<String>,
}

impl Export {
    fn new(
        hsm: Arc<Hsm>,
        partition: hsm_link::domain::PartitionId,
        query: LogQuery,
        actor: Actor,
        first_seq: u64,
    ) -> Self {
        let complete = is_unfiltered(&query) && query.from_seq <= first_seq;
        Export {
            hsm,
            partition,
            next_seq: Some(query.from_seq),
            query,
            actor,
            pending: Default::default(),
            lines: 0,
            last_seq: None,
            last_line: Vec::new(),
            complete,
            checkpoint: None,
        }
    }

    fn load_page(&mut self) -> Result<(), ServiceError> {
        let Some(from) = self.next_seq.take() else {
            return Ok(());
        };
        let unfiltered = is_unfiltered(&self.query);
        let mut count = 0;
        let mut next = None;
        let (query, pending, last_seq, last_line) = (
            &self.query,
            &mut self.pending,
            &mut self.last_seq,
            &mut self.last_line,
        );
        self.hsm.store().read(|tx| {
            tx.log_lines(&self.partition, from, |seq, line, checkpoint| {
                if query.to_seq.is_some_and(|to| seq > to) {
                    return false;
                }
                if count == EXPORT_PAGE {
                    next = Some(seq);
                    return false;
                }
                count += 1;
                if matches_query(query, line) {
                    pending.push_back(line.to_vec());
                    *last_seq = Some(seq);
                    last_line.clear();
                    last_line.extend_from_slice(line);
                }
                if let Some(cp) = checkpoint
                    && unfiltered
                {
                    pending.push_back(cp.to_vec());
                }
                true
            })
            .map_err(ServiceError::from)
        })?;
        self.next_seq = next;
        if self.next_seq.is_none() {
            self.finish_read()?;
        }
        Ok(())
    }

    /// The end of the read: sign a checkpoint over everything stored, record how far the export
    /// went, and log the export.
    fn finish_read(&mut self) -> Result<(), ServiceError> {
        let last_seq = self.last_seq;
        let last_hash = match LogLine::from_canonical(&self.last_line) {
            Ok(LogLine::Entry(entry)) => Some(entry.hash()),
            _ => None,
        };
        let complete = self.complete;
        let actor = self.actor.clone();
        let line = self.hsm.modify(&self.partition, |hsm, tx, record| {
            // A checkpoint over exactly the last entry sent, so the file verifies to its end
            // even if entries were appended while it was being read.
            let line = match (last_seq, last_hash) {
                (Some(seq), Some(hash)) => Some(hsm.checkpoint_at(tx, record, seq, hash)?),
                _ => None,
            };
            if let Some(seq) = last_seq
                && complete
            {
                let exported = record.log.exported_up_to.unwrap_or(0).max(seq);
                record.log.exported_up_to = Some(exported);
            }
            let mut event = Event::new(actor, "log.export");
            if let Some(seq) = last_seq {
                event = event.detail("up-to", seq.to_string());
            }
            if !complete {
                event = event.detail("partial", "filtered or not from the oldest entry");
            }
            hsm.append(tx, record, event)?;
            Ok(line)
        })?;
        if let Some(line) = line {
            // Do not repeat a checkpoint the page already carried.
            if self.pending.back() != Some(&line) {
                self.pending.push_back(line.clone());
            }
            self.checkpoint = Some(String::from_utf8_lossy(&line).into_owned());
        }
        Ok(())
    }
}

impl ReplyStream for Export {
    fn fill(&mut self, chunk: &mut Vec<u8>, max: usize) -> Result<bool, RemoteError> {
        loop {
            if self.pending.is_empty() {
                if self.next_seq.is_none() {
                    return Ok(false);
                }
                self.load_page().map_err(remote)?;
                continue;
            }
            let line_len = self.pending.front().map_or(0, |l| l.len() + 1);
            if chunk.len() + line_len > max {
                return Ok(true);
            }
            let line = self.pending.pop_front().expect("checked non-empty");
            chunk.extend_from_slice(&line);
            chunk.push(b'\n');
            self.lines += 1;
        }
    }

    fn finish(self: Box<Self>) -> Result<Response, RemoteError> {
        Ok(Response::Admin(AdminResponse::ExportDone {
            lines: self.lines,
            last_seq: self.last_seq,
            checkpoint: self.checkpoint.unwrap_or_default(),
        }))
    }
}
