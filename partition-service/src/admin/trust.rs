//! Trusted wrapping keys (PKCS#11 `CKA_TRUSTED`, `CKA_WRAP_WITH_TRUSTED`): the officers mark
//! which stored keys may wrap others. The mark is sealed inside the key's record, so it can
//! only be set here, by a PSO, and each change is logged.

use audit_log::KnownOperation;
use hsm_link::domain::KeyId;
use hsm_link::message::{Action, AdminError, AdminResponse};
use hsm_link::server::SessionContext;

use super::session::{AdminSession, Ration};
use crate::crypto::{self, ObjectBinding};
use crate::service::{Event, ServiceError};

impl AdminSession {
    /// Marks key `id` as a trusted wrapping key, or takes the mark away: the key is opened and
    /// sealed again with the new mark in one write transaction with its log entry.
    pub(super) fn trust_key(
        &self,
        ctx: &SessionContext,
        id: KeyId,
        trusted: bool,
    ) -> Result<AdminResponse, ServiceError> {
        self.check(ctx, Action::TrustKey)?;
        let actor = self.actor();
        let operation = KnownOperation::KeyTrust;
        let object = format!("key {}", id.0);
        self.change(
            ctx,
            Ration::Take,
            |hsm, tx, record| {
                let mut key = match tx.key(&ctx.partition, id)? {
                    Some(k) if !k.summary.state.is_invalidated() => k,
                    _ => return Err(AdminError::NoSuchKey { id, in_bin: false }.into()),
                };
                // A key that can be exported would carry out everything wrapped under it (the
                // wrap attack); taking a mark away is always allowed.
                if trusted && key.summary.attributes.extractable {
                    return Err(AdminError::ExtractableWrappingKey { id }.into());
                }
                let binding = ObjectBinding {
                    partition: &ctx.partition,
                    key_id: id,
                    attributes: key.summary.attributes,
                };
                let master = hsm.keys().master();
                let opened = crypto::open_object(master, binding, &key.sealed)?;
                key.sealed = crypto::seal_object(master, binding, &opened.material, trusted)?;
                tx.put_key(&ctx.partition, &key)?;
                let event = Event::new(actor.clone(), operation)
                    .object(object.clone())
                    .detail("trusted", if trusted { "yes" } else { "no" })
                    .detail("label", key.summary.label.as_str());
                hsm.append(tx, record, event)
            },
            || Event::new(self.actor(), operation).object(object.clone()),
        )?;
        Ok(AdminResponse::Done)
    }
}
