//! The technical user's side of the partition: authentication with the setup password or the
//! permanent secret, and key operations, each checked against the partition's configuration
//! (re-read for every request, so a change applies at once) and logged.

use std::collections::BTreeMap;
use std::net::IpAddr;

use audit_log::{Actor, KnownOperation, Role};
use hsm_link::domain::{
    KeyAttributes, KeyId, KeyKind, KeyLabel, KeyObjectSummary, KeyState, Parameter,
    PartitionConfig, PartitionId,
};
use hsm_link::message::AdminError;

use crate::access::{ApiProvider, AppOperation, app_check, delete_goes_to_bin, provider_check};
use crate::app_link::{
    AppAuth, AppBackend, AppConnection, AppError, AppRequest, AppResponse, SecretBytes, SecretText,
};
use crate::crypto::{self, CryptoError, KeyMaterial};
use crate::model::{KeyRecord, PartitionRecord};
use crate::service::{Event, Hsm, ServiceError};

pub mod refusals;
#[cfg(test)]
mod tests;

/// Session objects one connection may hold (they are not stored, so the partition's quota does
/// not bound them).
pub const MAX_SESSION_OBJECTS: usize = 1024;

/// Ids of session objects have this bit set: they never collide with stored objects.
pub const SESSION_OBJECT_BIT: u64 = 1 << 63;

/// Session objects of one application connection: generated on the HSM, used through it, never
/// stored, and dropped (zeroized) when the connection ends.
#[derive(Debug, Default)]
pub struct SessionObjects {
    keys: BTreeMap<u64, (KeyObjectSummary, KeyMaterial)>,
    next: u64,
}

fn technical_user() -> Actor {
    Actor::new(Role::TechnicalUser, Vec::<String>::new())
}

fn app_error(e: ServiceError) -> AppError {
    match e {
        ServiceError::NoSuchPartition(_) => AppError::UnknownPartition,
        ServiceError::Admin(AdminError::LogFull) => AppError::LogFull,
        ServiceError::Admin(AdminError::QuotaExceeded) => AppError::QuotaExceeded,
        ServiceError::Crypto(
            CryptoError::WrongKind { .. } | CryptoError::UnsupportedKind { .. },
        ) => AppError::WrongKeyKind,
        ServiceError::Crypto(CryptoError::SignatureInvalid | CryptoError::AuthenticationFailed) => {
            AppError::VerificationFailed
        }
        _ => AppError::Internal,
    }
}

/// A refusal that the listener returns after it was logged.
struct Refusal {
    error: AppError,
    reason: String,
}

impl Refusal {
    fn policy(parameter: Parameter) -> Self {
        Refusal {
            error: AppError::Policy(parameter),
            reason: format!("refused by the configuration: {}", parameter.label()),
        }
    }
}

/// One application request as it is checked and logged: its partition, its operation's log
/// name, and the configuration read for it.
struct Call<'a> {
    partition: &'a PartitionId,
    operation: KnownOperation,
    config: &'a PartitionConfig,
}

impl<'a> Call<'a> {
    fn new(
        partition: &'a PartitionId,
        operation: KnownOperation,
        config: &'a PartitionConfig,
    ) -> Self {
        Call {
            partition,
            operation,
            config,
        }
    }
}

/// A key the application may use, opened.
struct UsableKey {
    summary: KeyObjectSummary,
    material: KeyMaterial,
    /// Marked by the officers as a trusted wrapping key.
    trusted: bool,
}

/// A stored key to be made: what the request says about it.
struct NewKey {
    kind: KeyKind,
    label: KeyLabel,
    attributes: KeyAttributes,
}

impl NewKey {
    fn new(kind: KeyKind, label: KeyLabel, attributes: KeyAttributes) -> Self {
        NewKey {
            kind,
            label,
            attributes,
        }
    }
}

/// Where a new stored key's material comes from.
enum Source {
    Generate,
    Import(SecretBytes),
    Unwrap { wrapping: KeyId, blob: Vec<u8> },
}

impl Hsm {
    /// The application's checks common to the hello and every request: the partition exists,
    /// the peer is allowed, the provider is on.
    fn app_gate(
        &self,
        peer: IpAddr,
        partition: &PartitionId,
        provider: ApiProvider,
        operation: KnownOperation,
    ) -> Result<PartitionRecord, AppError> {
        match gate_check(
            self.partition(partition).map_err(app_error)?,
            peer,
            provider,
        ) {
            Ok(record) => Ok(record),
            Err(refusal) => {
                let event = Event::new(technical_user(), operation)
                    .refused(refusal.reason)
                    .detail("peer", peer.to_string())
                    .detail("provider", format!("{provider:?}"));
                self.log_refusal(partition, event.application())
                    .map_err(app_error)?;
                Err(refusal.error)
            }
        }
    }

    /// Logs a refused hello within the partition's ration (see [`refusals`]) and returns
    /// its error: the first refusal of a source in a window in full, the others counted for
    /// one summary entry, and none while the log is short of room for authenticated work.
    fn refuse_hello(
        &self,
        partition: &PartitionId,
        peer: IpAddr,
        provider: ApiProvider,
        refusal: Refusal,
    ) -> AppError {
        let now = self.clock().now_s();
        let Ok(record) = self.partition(partition) else {
            return refusal.error;
        };
        let per_window = refusals::refusal_entries_per_window(record.log.capacity);
        let admission = self
            .hello_refusals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .refuse(partition, peer, &refusal.reason, now, per_window);
        if let Some(summary) = admission.summary
            && let Err(e) = self.log_refusal_summary(partition, summary)
        {
            return app_error(e);
        }
        if admission.log_in_full {
            let event = Event::new(technical_user(), KnownOperation::AppConnect)
                .refused(refusal.reason)
                .detail("peer", peer.to_string())
                .detail("provider", format!("{provider:?}"))
                .application();
            match self.append_if_room(partition, event) {
                Ok(true) => {}
                Ok(false) => self
                    .hello_refusals
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .unwritten(partition, peer, now),
                Err(e) => return app_error(e),
            }
        }
        refusal.error
    }

    /// Writes the summary of counted hello refusals, or keeps it for later when the log has
    /// no room to spare.
    fn log_refusal_summary(
        &self,
        partition: &PartitionId,
        summary: refusals::Summary,
    ) -> Result<(), ServiceError> {
        let busiest = summary
            .busiest
            .iter()
            .map(|(ip, n)| format!("{ip} {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let event = Event::new(technical_user(), KnownOperation::AppConnect)
            .refused("hellos refused and not logged one by one")
            .detail("refused", summary.unlogged.to_string())
            .detail("sources", summary.sources.to_string())
            .detail("busiest", busiest)
            .detail("since", summary.since.to_string())
            .application();
        if !self.append_if_room(partition, event)? {
            self.hello_refusals
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .unwritten_summary(partition, summary);
        }
        Ok(())
    }

    /// Appends `event` unless the log is short of the room kept for authenticated work.
    /// Whether it was written.
    fn append_if_room(&self, partition: &PartitionId, event: Event) -> Result<bool, ServiceError> {
        let written = self.modify(partition, |hsm, tx, record| {
            if !refusals::has_room_for_refusal(&record.log) {
                return Ok(false);
            }
            hsm.append(tx, record, event)?;
            Ok(true)
        });
        match written {
            Err(ServiceError::Admin(AdminError::LogFull)) => Ok(false),
            other => other,
        }
    }

    /// Writes the summary of hello refusals whose window ended, at an accepted hello.
    fn summarise_due_refusals(&self, partition: &PartitionId) -> Result<(), AppError> {
        let now = self.clock().now_s();
        let due = self
            .hello_refusals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .due(partition, now);
        match due {
            Some(summary) => self
                .log_refusal_summary(partition, summary)
                .map_err(app_error),
            None => Ok(()),
        }
    }

    fn app_refuse(
        &self,
        partition: &PartitionId,
        operation: KnownOperation,
        object: Option<String>,
        refusal: Refusal,
    ) -> AppError {
        let mut event = Event::new(technical_user(), operation).refused(refusal.reason);
        if let Some(object) = object {
            event = event.object(object);
        }
        match self.log_refusal(partition, event.application()) {
            Ok(()) => refusal.error,
            Err(e) => app_error(e),
        }
    }

    /// Checks a hello's credentials: a valid setup password is traded for a new permanent
    /// secret (returned once); a permanent secret is checked.
    pub fn app_authenticate(
        &self,
        connection: &mut AppConnection,
        peer: IpAddr,
        partition: &PartitionId,
        provider: ApiProvider,
        auth: &AppAuth,
    ) -> Result<Option<SecretText>, AppError> {
        let record = self.partition(partition).map_err(app_error)?;
        let record = match gate_check(record, peer, provider) {
            Ok(record) => record,
            Err(refusal) => return Err(self.refuse_hello(partition, peer, provider, refusal)),
        };
        let now = self.clock().now_s();
        let credentials = &record.credentials;
        let refused = |error, reason: &str| {
            let refusal = Refusal {
                error,
                reason: reason.into(),
            };
            Err(self.refuse_hello(partition, peer, provider, refusal))
        };
        match auth {
            AppAuth::SetupPassword(password) => match credentials.setup {
                Some((hash, expires)) if crate::credentials::matches(password, &hash) => {
                    if now > expires {
                        return refused(
                            AppError::SetupPasswordExpired,
                            "the setup password has expired",
                        );
                    }
                    self.summarise_due_refusals(partition)?;
                    self.trade_setup_password(connection, peer, partition, hash)
                        .map(Some)
                }
                _ => refused(AppError::BadCredentials, "wrong or used setup password"),
            },
            AppAuth::PermanentSecret(secret) => match credentials.permanent {
                Some(hash) if crate::credentials::matches(secret, &hash) => {
                    connection.credentials_epoch = credentials.epoch;
                    self.summarise_due_refusals(partition)?;
                    self.modify(partition, |hsm, tx, record| {
                        let event = Event::new(technical_user(), KnownOperation::AppConnect)
                            .detail("peer", peer.to_string())
                            .detail("provider", format!("{provider:?}"))
                            .application();
                        hsm.append(tx, record, event)
                    })
                    .map_err(app_error)?;
                    Ok(None)
                }
                _ => refused(AppError::BadCredentials, "wrong permanent secret"),
            },
        }
    }

    /// Trades the valid, unexpired setup password whose hash is `hash` for a new permanent
    /// secret, returned once.
    fn trade_setup_password(
        &self,
        connection: &mut AppConnection,
        peer: IpAddr,
        partition: &PartitionId,
        hash: [u8; 32],
    ) -> Result<SecretText, AppError> {
        let secret = crate::credentials::new_permanent_secret().map_err(|e| app_error(e.into()))?;
        let stored = crate::credentials::hash(&secret);
        let traded = self
            .modify(partition, |hsm, tx, record| {
                // Re-checked inside the transaction: a reset racing this trade wins.
                if record.credentials.setup.map(|(h, _)| h) != Some(hash) {
                    return Ok(None);
                }
                record.credentials.setup = None;
                record.credentials.permanent = Some(stored);
                record.credentials.epoch += 1;
                let event = Event::new(technical_user(), KnownOperation::CredentialsTrade)
                    .detail("peer", peer.to_string());
                hsm.append(tx, record, event)?;
                Ok(Some(record.credentials.epoch))
            })
            .map_err(app_error)?;
        let Some(epoch) = traded else {
            return Err(AppError::BadCredentials);
        };
        connection.credentials_epoch = epoch;
        SecretText::new(secret.to_string()).map_err(|_| AppError::Internal)
    }

    /// Runs one request of an authenticated application connection.
    pub fn app_execute(
        &self,
        connection: &mut AppConnection,
        peer: IpAddr,
        partition: &PartitionId,
        provider: ApiProvider,
        request: AppRequest,
    ) -> Result<AppResponse, AppError> {
        let operation = operation_name(&request);
        let record = self.app_gate(peer, partition, provider, operation)?;
        if record.credentials.epoch != connection.credentials_epoch {
            return Err(AppError::CredentialsReset);
        }
        let call = Call::new(partition, operation, &record.config);
        let session = &mut connection.session_objects;
        match request {
            AppRequest::Hello { .. } => Err(AppError::HelloFirst),
            AppRequest::Generate {
                kind,
                label,
                attributes,
                session: true,
            } => self.generate_session_object(&call, session, kind, label, attributes),
            AppRequest::Generate {
                kind,
                label,
                attributes,
                session: false,
            } => {
                let new = NewKey::new(kind, label, attributes);
                self.new_stored_key(&call, session, new, Source::Generate)
            }
            AppRequest::ImportPlain {
                kind,
                label,
                attributes,
                material,
            } => {
                let new = NewKey::new(kind, label, attributes);
                self.new_stored_key(&call, session, new, Source::Import(material))
            }
            AppRequest::Unwrap {
                wrapping,
                kind,
                label,
                attributes,
                blob,
            } => {
                let new = NewKey::new(kind, label, attributes);
                self.new_stored_key(&call, session, new, Source::Unwrap { wrapping, blob })
            }
            AppRequest::List => self.list_for_application(session, partition),
            AppRequest::Sign { id, message } => {
                self.use_key(session, partition, operation, id, |m| {
                    crypto::sign(m, &message).map(AppResponse::Signature)
                })
            }
            AppRequest::Verify {
                id,
                message,
                signature,
            } => self.use_key(session, partition, operation, id, |m| {
                crypto::verify(m, &message, &signature).map(|()| AppResponse::Verified)
            }),
            AppRequest::Encrypt { id, plaintext } => {
                self.use_key(session, partition, operation, id, |m| {
                    crypto::encrypt(m, &[], plaintext.expose()).map(AppResponse::Ciphertext)
                })
            }
            AppRequest::Decrypt { id, ciphertext } => {
                self.use_key(session, partition, operation, id, |m| {
                    crypto::decrypt(m, &[], &ciphertext)
                        .map(|p| AppResponse::Plaintext(SecretBytes::from_slice(&p)))
                })
            }
            AppRequest::Wrap { wrapping, target } => self.wrap(&call, session, wrapping, target),
            AppRequest::ExportPlain { id } => self.export_plain(&call, session, id),
            AppRequest::Delete { id } => self.app_delete(&call, session, id),
        }
    }

    /// Checks `op` against the request's configuration; a refusal is logged (naming `object`)
    /// and returned.
    fn permit(
        &self,
        call: &Call<'_>,
        op: AppOperation,
        attributes: Option<&KeyAttributes>,
        object: Option<String>,
    ) -> Result<(), AppError> {
        app_check(call.config, op, attributes).map_err(|parameter| {
            self.app_refuse(
                call.partition,
                call.operation,
                object,
                Refusal::policy(parameter),
            )
        })
    }

    /// A key stored in the partition, its material from `source`.
    fn new_stored_key(
        &self,
        call: &Call<'_>,
        session: &SessionObjects,
        new: NewKey,
        source: Source,
    ) -> Result<AppResponse, AppError> {
        let material = match source {
            Source::Generate => {
                self.permit(call, AppOperation::Generate { session: false }, None, None)?;
                KeyMaterial::generate(new.kind)
            }
            Source::Import(material) => {
                self.permit(call, AppOperation::ImportPlain, None, None)?;
                crypto::import_plain(new.kind, material.expose())
            }
            Source::Unwrap { wrapping, blob } => {
                self.permit(call, AppOperation::Unwrap, None, None)?;
                // The wrapping key is used: the object-usage switch governs it too.
                let object = Some(key_object(wrapping));
                self.permit(call, AppOperation::Use, None, object)?;
                let kek = self.usable_key(session, call.partition, wrapping)?;
                crypto::unwrap(&kek.material, new.kind, &blob)
            }
        }
        .map_err(|e| app_error(e.into()))?;
        let NewKey {
            kind,
            label,
            attributes,
        } = new;
        self.store_new_key(
            call.partition,
            call.operation,
            kind,
            label,
            attributes,
            &material,
        )
    }

    /// A key that lives only as long as this connection.
    fn generate_session_object(
        &self,
        call: &Call<'_>,
        session: &mut SessionObjects,
        kind: KeyKind,
        label: KeyLabel,
        attributes: KeyAttributes,
    ) -> Result<AppResponse, AppError> {
        self.permit(call, AppOperation::Generate { session: true }, None, None)?;
        if session.keys.len() >= MAX_SESSION_OBJECTS {
            let refusal = Refusal {
                error: AppError::QuotaExceeded,
                reason: format!("a connection holds at most {MAX_SESSION_OBJECTS} session objects"),
            };
            return Err(self.app_refuse(call.partition, call.operation, None, refusal));
        }
        let material = KeyMaterial::generate(kind).map_err(|e| app_error(e.into()))?;
        session.next += 1;
        let id = KeyId(SESSION_OBJECT_BIT | session.next);
        let summary = KeyObjectSummary {
            id,
            label,
            kind,
            attributes,
            created_unix: self.clock().now_s(),
            size_bytes: 0,
            state: KeyState::Active,
        };
        // The entry first: a refused entry (a full log) leaves no object behind it.
        self.app_log(
            call.partition,
            Event::new(technical_user(), KnownOperation::KeyGenerate)
                .object(key_object(id))
                .detail("session-object", "yes"),
        )?;
        session.keys.insert(id.0, (summary.clone(), material));
        Ok(AppResponse::Key(summary))
    }

    /// The active stored keys and this connection's session objects, up to the list's bound.
    fn list_for_application(
        &self,
        session: &SessionObjects,
        partition: &PartitionId,
    ) -> Result<AppResponse, AppError> {
        let mut keys = self
            .store()
            .read(|tx| {
                tx.keys(partition, None, crate::app_link::MAX_APP_LIST, |k| {
                    !k.summary.state.is_invalidated()
                })
                .map_err(ServiceError::from)
            })
            .map_err(app_error)?
            .0
            .into_iter()
            .map(|k| k.summary)
            .collect::<Vec<_>>();
        keys.extend(session.keys.values().map(|(s, _)| s.clone()));
        keys.truncate(crate::app_link::MAX_APP_LIST);
        Ok(AppResponse::Keys(keys))
    }

    fn wrap(
        &self,
        call: &Call<'_>,
        session: &SessionObjects,
        wrapping: KeyId,
        target: KeyId,
    ) -> Result<AppResponse, AppError> {
        let target_key = self.usable_key(session, call.partition, target)?;
        let attributes = target_key.summary.attributes;
        let object = Some(key_object(target));
        self.permit(call, AppOperation::Wrap, Some(&attributes), object.clone())?;
        // The wrapping key is used: the object-usage switch governs it too.
        self.permit(call, AppOperation::Use, None, Some(key_object(wrapping)))?;
        let kek = self.usable_key(session, call.partition, wrapping)?;
        // Only under a key the officers marked trusted (a sensitive key above all): otherwise
        // a key the application knows (imported, or exported in plain) would carry any key
        // out in a form it can open.
        if !kek.trusted {
            let refusal = Refusal {
                error: AppError::UntrustedWrappingKey(wrapping),
                reason: format!(
                    "wrapping key {} is not trusted (target sensitive: {})",
                    wrapping.0, attributes.sensitive
                ),
            };
            return Err(self.app_refuse(call.partition, call.operation, object, refusal));
        }
        let blob =
            crypto::wrap(&kek.material, &target_key.material).map_err(|e| app_error(e.into()))?;
        self.app_log(
            call.partition,
            Event::new(technical_user(), call.operation)
                .object(key_object(target))
                .detail("wrapping-key", wrapping.0.to_string()),
        )?;
        Ok(AppResponse::Wrapped(blob))
    }

    fn export_plain(
        &self,
        call: &Call<'_>,
        session: &SessionObjects,
        id: KeyId,
    ) -> Result<AppResponse, AppError> {
        let key = self.usable_key(session, call.partition, id)?;
        let object = Some(key_object(id));
        self.permit(
            call,
            AppOperation::ExportPlain,
            Some(&key.summary.attributes),
            object,
        )?;
        let plain = crypto::export_plain(&key.material);
        self.app_log(
            call.partition,
            Event::new(technical_user(), call.operation).object(key_object(id)),
        )?;
        Ok(AppResponse::Material(SecretBytes::from_slice(&plain)))
    }

    /// Deletes a session object, or a stored key (to the bin or gone, as configured).
    fn app_delete(
        &self,
        call: &Call<'_>,
        session: &mut SessionObjects,
        id: KeyId,
    ) -> Result<AppResponse, AppError> {
        self.permit(call, AppOperation::Delete, None, Some(key_object(id)))?;
        if session.keys.contains_key(&id.0) {
            // Removed only once its entry is written: a full log leaves the object in place.
            self.app_log(
                call.partition,
                Event::new(technical_user(), call.operation)
                    .object(key_object(id))
                    .detail("session-object", "yes"),
            )?;
            session.keys.remove(&id.0);
            return Ok(AppResponse::Deleted { to_bin: false });
        }
        self.delete_key(call.partition, id)
    }

    fn app_log(&self, partition: &PartitionId, event: Event) -> Result<(), AppError> {
        self.modify(partition, |hsm, tx, record| {
            hsm.append(tx, record, event.application())
        })
        .map_err(app_error)
    }

    /// A key the application may use: a session object of this connection, or an active stored
    /// key (keys in the bin look deleted).
    fn usable_key(
        &self,
        session: &SessionObjects,
        partition: &PartitionId,
        id: KeyId,
    ) -> Result<UsableKey, AppError> {
        if let Some((summary, material)) = session.keys.get(&id.0) {
            let copy = crypto::import_plain(summary.kind, &crypto::export_plain(material))
                .map_err(|e| app_error(e.into()))?;
            // Session objects are never marked trusted: no officer saw them.
            return Ok(UsableKey {
                summary: summary.clone(),
                material: copy,
                trusted: false,
            });
        }
        let record = self
            .store()
            .read(|tx| tx.key(partition, id).map_err(ServiceError::from))
            .map_err(app_error)?;
        match record {
            Some(k) if !k.summary.state.is_invalidated() => {
                let binding = crypto::ObjectBinding {
                    partition,
                    key_id: id,
                    attributes: k.summary.attributes,
                };
                // A stored object that does not open (its attributes or bytes were changed in
                // the store) is the HSM's fault, not the request's.
                let opened = crypto::open_object(self.keys().master(), binding, &k.sealed)
                    .map_err(|_| AppError::Internal)?;
                Ok(UsableKey {
                    summary: k.summary,
                    material: opened.material,
                    trusted: opened.trusted,
                })
            }
            _ => Err(AppError::NoSuchKey(id)),
        }
    }

    fn use_key(
        &self,
        session: &SessionObjects,
        partition: &PartitionId,
        operation: KnownOperation,
        id: KeyId,
        f: impl FnOnce(&KeyMaterial) -> Result<AppResponse, CryptoError>,
    ) -> Result<AppResponse, AppError> {
        let material = self.usable_key(session, partition, id)?.material;
        let record = self.partition(partition).map_err(app_error)?;
        if let Err(parameter) = app_check(&record.config, AppOperation::Use, None) {
            return Err(self.app_refuse(
                partition,
                operation,
                Some(key_object(id)),
                Refusal::policy(parameter),
            ));
        }
        let result = f(&material);
        let mut event = Event::new(technical_user(), operation).object(key_object(id));
        if result.is_err() {
            event.outcome = audit_log::Outcome::failed("the operation failed under this key");
        }
        self.app_log(partition, event)?;
        result.map_err(|e| app_error(e.into()))
    }

    fn store_new_key(
        &self,
        partition: &PartitionId,
        operation: KnownOperation,
        kind: KeyKind,
        label: KeyLabel,
        attributes: KeyAttributes,
        material: &KeyMaterial,
    ) -> Result<AppResponse, AppError> {
        let now = self.clock().now_s();
        let result = self.modify(partition, |hsm, tx, record| {
            let id = KeyId(record.next_key_id);
            let binding = crypto::ObjectBinding {
                partition,
                key_id: id,
                attributes,
            };
            let sealed = crypto::seal_object(hsm.keys().master(), binding, material, false)?;
            let summary = KeyObjectSummary {
                id,
                label,
                kind,
                attributes,
                created_unix: now,
                size_bytes: sealed.len() as u64,
                state: KeyState::Active,
            };
            let quota = &record.config.quota;
            let usage = &mut record.usage;
            let over_size = usage.bytes_used + summary.size_bytes > quota.size_bytes;
            let over_count = quota
                .object_limit
                .is_some_and(|l| usage.objects_used + 1 > u64::from(l));
            if over_size || over_count {
                return Err(AdminError::QuotaExceeded.into());
            }
            usage.bytes_used += summary.size_bytes;
            usage.objects_used += 1;
            record.next_key_id += 1;
            tx.put_key(
                partition,
                &KeyRecord {
                    summary: summary.clone(),
                    sealed,
                },
            )?;
            let event = Event::new(technical_user(), operation)
                .object(key_object(id))
                .detail("kind", kind.as_str())
                .detail("label", summary.label.as_str());
            hsm.append(tx, record, event.application())?;
            Ok(summary)
        });
        match result {
            Ok(summary) => Ok(AppResponse::Key(summary)),
            Err(ServiceError::Admin(AdminError::QuotaExceeded)) => Err(self.app_refuse(
                partition,
                operation,
                None,
                Refusal {
                    error: AppError::QuotaExceeded,
                    reason: "the partition's quota or object limit is reached".into(),
                },
            )),
            Err(e) => Err(app_error(e)),
        }
    }

    fn delete_key(&self, partition: &PartitionId, id: KeyId) -> Result<AppResponse, AppError> {
        let now = self.clock().now_s();
        let result = self.modify(partition, |hsm, tx, record| {
            let mut key = match tx.key(partition, id)? {
                Some(k) if !k.summary.state.is_invalidated() => k,
                _ => return Ok(None),
            };
            let to_bin = delete_goes_to_bin(&record.config);
            if to_bin {
                key.summary.state = KeyState::Invalidated {
                    invalidated_unix: now,
                };
                tx.put_key(partition, &key)?;
                record.usage.invalidated_objects += 1;
            } else {
                tx.delete_key(partition, id)?;
                record.usage.bytes_used -= key.summary.size_bytes;
                record.usage.objects_used -= 1;
            }
            let event = Event::new(technical_user(), KnownOperation::KeyDelete)
                .object(key_object(id))
                .detail("to", if to_bin { "bin" } else { "destroyed" });
            hsm.append(tx, record, event.application())?;
            Ok(Some(to_bin))
        });
        match result {
            Ok(Some(to_bin)) => Ok(AppResponse::Deleted { to_bin }),
            Ok(None) => Err(AppError::NoSuchKey(id)),
            Err(e) => Err(app_error(e)),
        }
    }
}

/// The checks of the allow-list and the provider switch, on the record read for the request.
fn gate_check(
    record: PartitionRecord,
    peer: IpAddr,
    provider: ApiProvider,
) -> Result<PartitionRecord, Refusal> {
    if !record.config.ip_allow_list.allows(peer) {
        return Err(Refusal {
            error: AppError::AddressNotAllowed,
            reason: "address not on the IP allow-list".to_string(),
        });
    }
    match provider_check(&record.config, provider) {
        Ok(()) => Ok(record),
        Err(p) => Err(Refusal {
            error: AppError::ProviderDisabled(p),
            reason: format!("{} is off", p.label()),
        }),
    }
}

fn key_object(id: KeyId) -> String {
    if id.0 & SESSION_OBJECT_BIT != 0 {
        format!("session key {}", id.0 & !SESSION_OBJECT_BIT)
    } else {
        format!("key {}", id.0)
    }
}

fn operation_name(request: &AppRequest) -> KnownOperation {
    match request {
        AppRequest::Hello { .. } => KnownOperation::AppConnect,
        AppRequest::Generate { .. } => KnownOperation::KeyGenerate,
        AppRequest::List => KnownOperation::KeyList,
        AppRequest::Sign { .. } => KnownOperation::KeySign,
        AppRequest::Verify { .. } => KnownOperation::KeyVerify,
        AppRequest::Encrypt { .. } => KnownOperation::KeyEncrypt,
        AppRequest::Decrypt { .. } => KnownOperation::KeyDecrypt,
        AppRequest::Wrap { .. } => KnownOperation::KeyWrap,
        AppRequest::Unwrap { .. } => KnownOperation::KeyUnwrap,
        AppRequest::ExportPlain { .. } => KnownOperation::KeyExport,
        AppRequest::ImportPlain { .. } => KnownOperation::KeyImport,
        AppRequest::Delete { .. } => KnownOperation::KeyDelete,
    }
}

/// The application listener's backend: this HSM. Each connection's session objects live in
/// the listener's connection state.
pub struct HsmApplications(pub std::sync::Arc<Hsm>);

impl std::fmt::Debug for HsmApplications {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HsmApplications")
    }
}

impl AppBackend for HsmApplications {
    fn authenticate(
        &self,
        connection: &mut AppConnection,
        peer: IpAddr,
        partition: &PartitionId,
        provider: ApiProvider,
        auth: &AppAuth,
    ) -> Result<Option<SecretText>, AppError> {
        self.0
            .app_authenticate(connection, peer, partition, provider, auth)
    }

    fn execute(
        &self,
        connection: &mut AppConnection,
        peer: IpAddr,
        partition: &PartitionId,
        provider: ApiProvider,
        request: AppRequest,
    ) -> Result<AppResponse, AppError> {
        self.0
            .app_execute(connection, peer, partition, provider, request)
    }
}
