//! Keys and the invalidation bin: listing (a page within its byte budget), restoring a key
//! from the bin, purging it.

use audit_log::KnownOperation;
use hsm_link::domain::{KeyId, KeyState};
use hsm_link::message::{
    Action, AdminError, AdminResponse, KeyFilter, KeyQuery, MAX_KEYS_PER_PAGE, MAX_PAGE_BYTES,
};
use hsm_link::server::SessionContext;

use super::session::{AdminSession, Ration};
use crate::access::admin_check;
use crate::service::{Event, ServiceError};

/// Encoded bytes of a key summary besides its label (an upper bound).
const KEY_SUMMARY_OVERHEAD: usize = 64;

impl AdminSession {
    /// A page of keys from the listing index: filtered and sorted here, so the terminal holds
    /// only the pages around what it shows. A page costs its length plus the entries a label
    /// or kind filter skips; the count a query may ask for reads the whole index once.
    pub(super) fn list_keys(
        &self,
        ctx: &SessionContext,
        query: &KeyQuery,
    ) -> Result<AdminResponse, ServiceError> {
        self.check(ctx, Action::ListKeys)?;
        let limit = (query.limit as usize).clamp(1, MAX_KEYS_PER_PAGE);
        let (keys, more, matching) = self.hsm.store().read(|tx| {
            let (keys, more) = tx.key_page(&ctx.partition, query, limit)?;
            let matching = if !query.count {
                None
            } else if query.label_contains.is_none() && query.kind.is_none() {
                let usage = tx
                    .partition(&ctx.partition)?
                    .map(|p| p.usage)
                    .unwrap_or_default();
                Some(match query.filter {
                    KeyFilter::All => usage.objects_used,
                    KeyFilter::Active => {
                        usage.objects_used.saturating_sub(usage.invalidated_objects)
                    }
                    KeyFilter::Invalidated => usage.invalidated_objects,
                })
            } else {
                Some(tx.count_keys(&ctx.partition, query)?)
            };
            Ok::<_, ServiceError>((keys, more, matching))
        })?;
        // Keys with long labels: stop the page at its byte budget (keeping the keys nearest
        // the cursor, so the next page goes on from the last one sent).
        let mut bytes = 0;
        let mut page = Vec::with_capacity(keys.len());
        let mut more = more;
        for key in keys {
            bytes += key.label.as_str().len() + KEY_SUMMARY_OVERHEAD;
            if bytes > MAX_PAGE_BYTES {
                more = true;
                break;
            }
            page.push(key);
        }
        if query.backwards() {
            page.reverse();
        }
        Ok(AdminResponse::Keys {
            keys: page,
            more,
            matching,
        })
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
