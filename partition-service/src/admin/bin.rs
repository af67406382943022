//! Keys and the invalidation bin: listing (a page within its byte budget), restoring a key
//! from the bin, purging it.

use audit_log::KnownOperation;
use hsm_link::domain::{KeyId, KeyState};
use hsm_link::message::{
    Action, AdminError, AdminResponse, KeyFilter, MAX_KEYS_PER_PAGE, MAX_PAGE_BYTES,
};
use hsm_link::server::SessionContext;

use super::session::{AdminSession, Ration};
use crate::access::admin_check;
use crate::service::{Event, ServiceError};

/// Encoded bytes of a key summary besides its label (an upper bound).
const KEY_SUMMARY_OVERHEAD: usize = 64;

impl AdminSession {
    pub(super) fn list_keys(
        &self,
        ctx: &SessionContext,
        filter: KeyFilter,
        after: Option<KeyId>,
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

    pub(super) fn bin(
        &self,
        ctx: &SessionContext,
        id: KeyId,
        purge: bool,
    ) -> Result<AdminResponse, ServiceError> {
        let (action, operation) = if purge {
            (Action::PurgeKey, KnownOperation::KeyPurge)
        } else {
            (Action::RestoreKey, KnownOperation::KeyRestore)
        };
        let actor = self.actor();
        let role = self.role();
        self.change(
            ctx,
            Ration::Take,
            |hsm, tx, record| {
                // Checked against the record this transaction writes (see `change_config`).
                admin_check(role, action, &record.config)?;
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
                let event = Event::new(actor.clone(), operation)
                    .object(format!("key {}", id.0))
                    .detail("label", label);
                hsm.append(tx, record, event)
            },
            || Event::new(self.actor(), operation).object(format!("key {}", id.0)),
        )?;
        Ok(AdminResponse::Done)
    }
}
