//! A migration: a restore of a backup that another HSM made (or of another partition), the
//! exit path of seed 002 §2.8. The terminal recovered the quorum backup key with the source
//! PSO set's cards, opened the backup's data key with it and re-wrapped it to this HSM's
//! backup key ([`AdminRequest::GetBackupPublic`](hsm_link::message::AdminRequest)); the key
//! never travels bare. The upload is begun here with the source HSM's signing key, which the
//! PSO supplies; chunks, dry run and commit are the restore's (`backup.rs`), and both log
//! entries name the source HSM and partition.

use audit_log::KnownOperation;
use hsm_link::message::{Action, AdminError, AdminResponse, BackupProblem};
use hsm_link::server::SessionContext;
use usb_backup::Header;
use usb_backup::container::MIGRATION_WRAPPED_KEY_LEN;

use super::backup::RestoreUpload;
use super::session::AdminSession;
use crate::backup::Migration;
use crate::service::{Event, ServiceError};
use hex::encode as hex;

/// Where a migrated backup came from, as the log names it: the source HSM's id and partition.
pub(super) struct Source {
    hsm: String,
    partition: String,
}

/// The source of an upload, if it is a migration.
pub(super) fn source_of(header: &Header, migration: Option<&Migration>) -> Option<Source> {
    migration.map(|_| Source {
        hsm: hex(header.facts().hsm_id),
        partition: header.facts().partition_id.clone(),
    })
}

/// `event` with the migration's source, if there is one.
pub(super) fn with_source(event: Event, source: Option<&Source>) -> Event {
    match source {
        Some(s) => event
            .detail("migrated-from-hsm", s.hsm.clone())
            .detail("migrated-from-partition", s.partition.clone()),
        None => event,
    }
}

impl AdminSession {
    /// This HSM's X25519 backup public key, for a migration's re-wrapping.
    pub(super) fn backup_public(
        &self,
        ctx: &SessionContext,
    ) -> Result<AdminResponse, ServiceError> {
        self.check(ctx, Action::Restore)?;
        Ok(AdminResponse::BackupPublic {
            key: self.hsm.keys().backup_public(),
        })
    }

    /// Begins a migration's upload: the header checked at once (signed by `source_key`,
    /// within the quota and object limit, as long as announced); refusals logged with the
    /// source.
    pub(super) fn migrate_begin(
        &mut self,
        ctx: &SessionContext,
        file_len: u64,
        header: &[u8],
        source_key: [u8; 32],
        wrapped_key: [u8; MIGRATION_WRAPPED_KEY_LEN],
    ) -> Result<AdminResponse, ServiceError> {
        let record = self.check(ctx, Action::Restore)?;
        self.restore = None;
        let migration = Migration {
            source_key,
            wrapped_key,
        };
        let parsed = match Header::parse(header) {
            Ok(h) => h,
            Err(_) => {
                let event = Event::new(self.actor(), KnownOperation::BackupRestore);
                let refusal = AdminError::Backup(BackupProblem::Malformed);
                return self.refuse(ctx, refusal, event);
            }
        };
        let source = source_of(&parsed, Some(&migration));
        let checked = self
            .hsm
            .check_upload_header(&record, &parsed, file_len, Some(&migration));
        match checked {
            Ok(()) => {}
            Err(ServiceError::Admin(refused)) => {
                let event = Event::new(self.actor(), KnownOperation::BackupRestore);
                return self.refuse(ctx, refused, with_source(event, source.as_ref()));
            }
            Err(other) => return Err(other),
        }
        let hsm = std::sync::Arc::clone(&self.hsm);
        let upload = RestoreUpload::new(hsm, &record, parsed, header, Some(migration))?;
        self.restore = Some(upload);
        Ok(AdminResponse::Done)
    }
}
