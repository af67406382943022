//! A holder's share drill, HSM side: the public recovery values the drill checks a share
//! against, and the drill's report, signed by the drilled card and logged (rationed when the
//! session has no login). The terminal side is `quorum::Drill`.

use audit_log::KnownOperation;
use ed25519_dalek::{Signature, VerifyingKey};
use hsm_link::domain::CardSerial;
use hsm_link::message::{Action, AdminError, AdminResponse, LoginRefusal, drill_message};
use hsm_link::server::SessionContext;

use super::session::{AdminSession, Ration, with_unlogged};
use crate::model::CardSetRecord;
use crate::service::{Event, ServiceError};

impl AdminSession {
    pub(super) fn recovery_public(
        &self,
        ctx: &SessionContext,
    ) -> Result<AdminResponse, ServiceError> {
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

    pub(super) fn report_drill(
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
        // Admitted above: a refusal's entry is the report's.
        self.change(
            ctx,
            Ration::Admitted(unlogged),
            |hsm, tx, record| {
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
                let mut event = Event::new(actor.clone(), KnownOperation::QuorumDrill)
                    .object(format!("card {serial}"))
                    .detail("holder", card.holder.as_str())
                    .detail("set", pso.set.set_number.to_string());
                event = if ok {
                    event.detail("result", "share valid")
                } else {
                    event.failed("the card's share did not open or failed its check")
                };
                hsm.append(tx, record, with_unlogged(event, unlogged))
            },
            || {
                Event::new(self.actor(), KnownOperation::QuorumDrill)
                    .object(format!("card {serial}"))
            },
        )?;
        Ok(AdminResponse::Done)
    }
}
