//! The partition's configuration: reading it, changing it (against the revision the officer
//! saw, licences and tier parameters fixed), and reading usage.

use audit_log::KnownOperation;
use hsm_link::domain::{Parameter, PartitionConfig};
use hsm_link::message::{Action, AdminError, AdminResponse, ConfigProblem};
use hsm_link::server::SessionContext;

use super::session::{AdminSession, Ration};
use crate::access::admin_check;
use crate::model::PartitionRecord;
use crate::service::{Event, Hsm, ServiceError};
use crate::store::WriteTxn;

/// Changes reported one by one in a configuration change's log entry; beyond them the entry
/// says how many more (an entry holds a few details only).
const CHANGES_LOGGED: usize = 6;

impl AdminSession {
    pub(super) fn config(&self, ctx: &SessionContext) -> Result<AdminResponse, ServiceError> {
        let record = self.check(ctx, Action::ViewConfig)?;
        Ok(AdminResponse::Config(Box::new(record.config)))
    }

    pub(super) fn usage(&self, ctx: &SessionContext) -> Result<AdminResponse, ServiceError> {
        self.check(ctx, Action::ViewUsage)?;
        self.hsm.usage(&ctx.partition).map(AdminResponse::Usage)
    }

    pub(super) fn change_config(
        &self,
        ctx: &SessionContext,
        expected_revision: u64,
        mut new: PartitionConfig,
    ) -> Result<AdminResponse, ServiceError> {
        let actor = self.actor();
        let role = self.role();
        let change = |hsm: &Hsm, tx: &mut WriteTxn<'_>, record: &mut PartitionRecord| {
            // Checked against the record this transaction writes: a role or device-SO access
            // switched off a moment ago is seen here.
            admin_check(role, Action::ChangeConfig, &record.config)?;
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
            let event = change_event(actor.clone(), old, &new, old.revision + 1);
            new.revision = old.revision + 1;
            record.config = new;
            hsm.append(tx, record, event)?;
            Ok(record.config.revision)
        };
        let refused = || Event::new(self.actor(), KnownOperation::ConfigChange);
        let revision = self.change(ctx, Ration::Take, change, refused)?;
        Ok(AdminResponse::ConfigChanged { revision })
    }
}

/// The log entry of a change from `old` to `new`, which becomes `revision`.
fn change_event(
    actor: audit_log::Actor,
    old: &PartitionConfig,
    new: &PartitionConfig,
    revision: u64,
) -> Event {
    let changes = old.diff(new);
    let mut event = Event::new(actor, KnownOperation::ConfigChange)
        .object("configuration")
        .detail("revision", revision.to_string());
    for change in changes.iter().take(CHANGES_LOGGED) {
        event = event.detail(
            change.parameter.as_str(),
            format!("{} -> {}", change.old, change.new),
        );
    }
    if changes.len() > CHANGES_LOGGED {
        event = event.detail("more-changes", (changes.len() - CHANGES_LOGGED).to_string());
    }
    event
}

fn config_problem(old: &PartitionConfig, new: &PartitionConfig) -> Option<ConfigProblem> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use audit_log::{Actor, Role};
    use hsm_link::domain::ServiceTier;

    fn licensed() -> PartitionConfig {
        let mut c = PartitionConfig::for_tier(ServiceTier::Platinum);
        c.ska.licensed = true;
        c
    }

    #[test]
    fn a_pso_may_change_what_the_table_allows_and_nothing_the_operator_set() {
        let old = licensed();
        let mut ok = old.clone();
        ok.read_only = !old.read_only;
        ok.ska.enabled = true;
        assert_eq!(config_problem(&old, &ok), None);

        let mut licence = old.clone();
        licence.crypto_currency.licensed = true;
        assert_eq!(
            config_problem(&old, &licence),
            Some(ConfigProblem::LicenceChanged(Parameter::CryptoCurrency))
        );
        let mut quota = old.clone();
        quota.quota.size_bytes += 1;
        assert_eq!(
            config_problem(&old, &quota),
            Some(ConfigProblem::TierParameter(Parameter::QuotaSize))
        );
        let mut limit = old.clone();
        limit.quota.object_limit = Some(1);
        assert_eq!(
            config_problem(&old, &limit),
            Some(ConfigProblem::TierParameter(Parameter::ObjectLimit))
        );
        let mut unlicensed = old.clone();
        unlicensed.crypto_currency.enabled = true;
        assert_eq!(
            config_problem(&old, &unlicensed),
            Some(ConfigProblem::Unlicensed(Parameter::CryptoCurrency))
        );
    }

    #[test]
    fn a_change_entry_names_each_change_up_to_its_limit_then_counts_the_rest() {
        let actor = || Actor::new(Role::Pso, ["Alice Meier"]);
        let old = licensed();
        let mut one = old.clone();
        one.read_only = !old.read_only;
        let event = change_event(actor(), &old, &one, 8);
        assert_eq!(event.operation, KnownOperation::ConfigChange);
        assert!(event.details.contains(&("revision", "8".to_string())));
        assert_eq!(event.details.len(), 2, "{:?}", event.details);

        let mut many = old.clone();
        many.read_only = !old.read_only;
        many.key_import = !old.key_import;
        many.key_invalidation = !old.key_invalidation;
        many.session_objects = !old.session_objects;
        many.object_destruction = !old.object_destruction;
        many.object_usage = !old.object_usage;
        many.device_so_access = !old.device_so_access;
        many.ska.enabled = true;
        let changes = old.diff(&many).len();
        assert!(changes > CHANGES_LOGGED);
        let event = change_event(actor(), &old, &many, 9);
        // The revision, the first changes, and how many more.
        assert_eq!(event.details.len(), 1 + CHANGES_LOGGED + 1);
        assert!(
            event
                .details
                .contains(&("more-changes", (changes - CHANGES_LOGGED).to_string()))
        );
    }
}
