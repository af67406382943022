//! Card sets and the ceremonies that change them (enrol, enrol auditors, re-share, revoke):
//! reading the sets, opening a ceremony, and the registration that ends it, with every proof of
//! possession checked. The terminal side is `quorum::ceremony`.

use audit_log::KnownOperation;
use ed25519_dalek::{Signature, VerifyingKey};
use hsm_link::domain::CeremonyId;
use hsm_link::domain::{CardDescription, CardSerial, CardSetDescription, CardSetKind};
use hsm_link::message::{
    Action, AdminError, AdminResponse, CardSetProblem, CardSignature, CeremonyKind, LoginRefusal,
    RecoveryPublic, enrolment_message,
};
use hsm_link::server::SessionContext;

use super::session::{AdminSession, Ration, with_unlogged};
use crate::access::admin_check;
use crate::model::{CardSetRecord, PartitionRecord};
use crate::service::{Event, ServiceError};
use crate::store::WriteTxn;

/// The ceremony a session has open.
#[derive(Clone, Copy)]
pub(super) struct OpenCeremony {
    id: CeremonyId,
    kind: CeremonyKind,
}

/// A [`hsm_link::message::AdminRequest::RegisterCardSetInCeremony`] as received.
pub(super) struct Registration {
    pub(super) ceremony: CeremonyId,
    pub(super) set: CardSetDescription,
    pub(super) recovery: Option<RecoveryPublic>,
    pub(super) replaces_revoked: Option<CardSerial>,
    pub(super) old_shares_left: Vec<CardSerial>,
    pub(super) leftover_shares: Vec<CardSerial>,
    pub(super) proofs: Vec<CardSignature>,
}

/// A registration that closes a ceremony.
struct CeremonyStep {
    ceremony: OpenCeremony,
    replaces_revoked: Option<CardSerial>,
    old_shares_left: Vec<CardSerial>,
    leftover_shares: Vec<CardSerial>,
    proofs: Vec<CardSignature>,
}

impl AdminSession {
    pub(super) fn card_sets(&self, ctx: &SessionContext) -> Result<AdminResponse, ServiceError> {
        let record = self.check(ctx, Action::ViewCardSets)?;
        Ok(AdminResponse::CardSets {
            pso: record.pso.map(|s| Box::new(s.set)),
            auditor: record.auditor.map(|s| Box::new(s.set)),
        })
    }

    /// A set is registered only as the last step of a ceremony.
    pub(super) fn register_outside_ceremony(
        &self,
        ctx: &SessionContext,
    ) -> Result<AdminResponse, ServiceError> {
        let refusal = AdminError::CardSet(CardSetProblem::NeedsCeremony);
        let event = Event::new(self.actor(), KnownOperation::CardSetRegister);
        self.refuse(ctx, refusal, event)
    }

    /// Opens a ceremony: who may register the set it ends with may open it (the first PSO
    /// set's enrolment from the first terminal without a login; everything else with a login
    /// that may register card sets).
    pub(super) fn begin_ceremony(
        &mut self,
        ctx: &SessionContext,
        kind: CeremonyKind,
    ) -> Result<AdminResponse, ServiceError> {
        let actor = self.actor();
        let role = self.role();
        let logged_in = self.login.is_some();
        let mut id = CeremonyId([0u8; 16]);
        getrandom::fill(&mut id.0).map_err(crate::crypto::CryptoError::Rng)?;
        let replaced = self.ceremony.map(|c| c.id.to_string());
        // Without a login (the first PSO set from the first terminal) the opening's entry is
        // rationed like a refusal's, so repeated openings cannot fill the log; a throttled one
        // is neither done nor logged.
        let (ration, unlogged) = if logged_in {
            (Ration::Take, 0)
        } else {
            match self.admit_unauthenticated(ctx) {
                Ok(unlogged) => (Ration::Admitted(unlogged), unlogged),
                Err(retry_after_secs) => {
                    return Err(AdminError::UnauthenticatedThrottled { retry_after_secs }.into());
                }
            }
        };
        let soft_cards_allowed = self.change(
            ctx,
            ration,
            |hsm, tx, record| {
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
                let mut event = Event::new(actor.clone(), KnownOperation::CeremonyBegin)
                    .object(format!("ceremony {id}"))
                    .detail("kind", kind.as_str());
                if let Some(old) = &replaced {
                    event = event.detail("abandons", old.clone());
                }
                hsm.append(tx, record, with_unlogged(event, unlogged))?;
                // Announced with the id, so that a terminal refuses a soft card before it
                // writes a single share; the registration checks it again.
                Ok(tx.soft_cards_allowed()?)
            },
            || {
                Event::new(self.actor(), KnownOperation::CeremonyBegin)
                    .detail("kind", kind.as_str())
            },
        )?;
        self.ceremony = Some(OpenCeremony { id, kind });
        Ok(AdminResponse::Ceremony {
            id,
            soft_cards_allowed,
        })
    }

    /// The last step of a ceremony: the set's registration, bound to the open ceremony's id.
    pub(super) fn register_in_ceremony(
        &mut self,
        ctx: &SessionContext,
        registration: Registration,
    ) -> Result<AdminResponse, ServiceError> {
        let open = match self.ceremony {
            Some(open) if open.id == registration.ceremony => open,
            _ => {
                let event = Event::new(self.actor(), KnownOperation::CardSetRegister)
                    .detail("ceremony", registration.ceremony.to_string());
                return self.refuse(ctx, AdminError::CeremonyMismatch, event);
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

    /// Registers `set` as the step that closes a ceremony. Every check reads the record inside
    /// the transaction that writes the set, so two registrations racing each other cannot both
    /// pass.
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
        self.change(
            ctx,
            Ration::Take,
            |hsm, tx, record| {
                let first_pso = set.kind == CardSetKind::Pso && record.pso.is_none();
                let from_first_terminal = record.pairing.first_terminal == Some(ctx.terminal);
                if !(first_pso && from_first_terminal && !logged_in) {
                    admin_check(role, Action::RegisterCardSet, &record.config)?;
                }
                let problem = card_set_problem(
                    record,
                    &set,
                    recovery.as_ref(),
                    first_pso,
                    from_first_terminal,
                )
                .or_else(|| ceremony_problem(ctx, record, &set, recovery.as_ref(), &step));
                let problem = match problem {
                    Some(problem) => Some(problem),
                    None => soft_card_refused(tx, &set)?,
                };
                if let Some(problem) = problem {
                    return Err(AdminError::CardSet(problem).into());
                }
                let event = registration_event(actor.clone(), &set, &step);
                let entry = CardSetRecord {
                    set: set.clone(),
                    recovery: recovery.clone(),
                };
                match set.kind {
                    CardSetKind::Pso => record.pso = Some(entry),
                    _ => record.auditor = Some(entry),
                }
                hsm.append(tx, record, event)
            },
            || {
                Event::new(self.actor(), KnownOperation::CardSetRegister)
                    .detail("ceremony", step.ceremony.id.to_string())
            },
        )?;
        Ok(AdminResponse::Done)
    }
}

/// What keeps `set` from closing this ceremony: it must fit the ceremony's kind, and every card
/// must prove possession for this session and this ceremony.
fn ceremony_problem(
    ctx: &SessionContext,
    record: &PartitionRecord,
    set: &CardSetDescription,
    recovery: Option<&RecoveryPublic>,
    step: &CeremonyStep,
) -> Option<CardSetProblem> {
    if !fits_ceremony(record, set, recovery, step) {
        return Some(CardSetProblem::NotForCeremony);
    }
    unproven_card(ctx, set, step).map(|index| CardSetProblem::NoProof { index })
}

/// A soft card in `set` while the HSM owner has not allowed soft cards in card sets.
fn soft_card_refused(
    tx: &mut WriteTxn<'_>,
    set: &CardSetDescription,
) -> Result<Option<CardSetProblem>, ServiceError> {
    let Some(index) = set.cards.iter().position(|c| c.soft_card) else {
        return Ok(None);
    };
    if tx.soft_cards_allowed()? {
        return Ok(None);
    }
    // Sets hold at most MAX_CARDS_PER_SET (16) cards.
    let index = index as u8;
    Ok(Some(CardSetProblem::SoftCardsRefused { index }))
}

/// The log entry of a set's registration.
fn registration_event(
    actor: audit_log::Actor,
    set: &CardSetDescription,
    step: &CeremonyStep,
) -> Event {
    let holders: Vec<&str> = set.cards.iter().map(|c| c.holder.as_str()).collect();
    let mut event = Event::new(actor, KnownOperation::CardSetRegister)
        .object(format!("{:?} set {}", set.kind, set.set_number))
        .detail(
            "threshold",
            format!("{} of {}", set.threshold, set.cards.len()),
        )
        .detail("holders", holders.join(", "))
        .detail("ceremony", step.ceremony.id.to_string())
        .detail("kind", step.ceremony.kind.as_str());
    if let Some(revoked) = &step.replaces_revoked {
        event = event.detail("revoked", revoked.to_string());
    }
    if !step.old_shares_left.is_empty() {
        let left: Vec<String> = step.old_shares_left.iter().map(|s| s.to_string()).collect();
        event = event.detail("old-shares-left", left.join(", "));
    }
    if !step.leftover_shares.is_empty() {
        let left: Vec<String> = step.leftover_shares.iter().map(|s| s.to_string()).collect();
        event = event.detail("leftover-shares", left.join(", "));
    }
    let soft = set.soft_serials();
    if !soft.is_empty() {
        event = event.detail("soft-cards", soft);
    }
    event
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Recovery parts of the shape the quorum crate writes, for threshold `m`.
    fn recovery(m: u8) -> RecoveryPublic {
        let mut commitments = vec![1, m];
        for i in 0..m {
            commitments.push(if i % 2 == 0 { 0x02 } else { 0x03 });
            commitments.extend([i; COMMITMENT_POINT_LEN - 1]);
        }
        RecoveryPublic {
            backup_public_key: vec![7; XWING_PUBLIC_KEY_LEN],
            commitments,
        }
    }

    #[test]
    fn recovery_parts_must_have_the_shapes_the_quorum_crate_writes() {
        assert!(recovery_well_formed(&recovery(3), 3));
        // For another threshold than the set's.
        assert!(!recovery_well_formed(&recovery(3), 2));
        let mut short_key = recovery(2);
        short_key.backup_public_key.pop();
        assert!(!recovery_well_formed(&short_key, 2));
        let mut format = recovery(2);
        format.commitments[0] = 2;
        assert!(!recovery_well_formed(&format, 2));
        let mut point = recovery(2);
        point.commitments[2 + COMMITMENT_POINT_LEN] = 0x04;
        assert!(!recovery_well_formed(&point, 2));
        let mut truncated = recovery(2);
        truncated.commitments.pop();
        assert!(!recovery_well_formed(&truncated, 2));
    }
}
