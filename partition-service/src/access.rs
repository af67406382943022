//! Who may do what, and what the partition's configuration allows: pure functions, so that the
//! whole matrix is tested without a store or a network.

use hsm_link::domain::{KeyAttributes, KeyExport, Parameter, PartitionConfig, Role};
use hsm_link::message::{Action, AdminError};
use serde::{Deserialize, Serialize};

/// The role/permission table of the administration link (SECURITY.md shows the same table).
/// Device SOs are further subject to the partition's device-SO access switch
/// ([`admin_check`]).
pub fn permits(role: Role, action: Action) -> bool {
    use Action::*;
    match role {
        Role::Pso => true,
        // Trusting a wrapping key decides which keys may leave the partition, and a backup or a
        // restore carries every key of it: the owner's officers only.
        Role::DeviceSo => !matches!(action, RegisterCardSet | TrustKey | Backup | Restore),
        Role::Auditor => matches!(
            action,
            ViewConfig
                | ViewUsage
                | ViewCardSets
                | ReadLog
                | ExportLog
                | ConfirmExport
                | ListTerminals
        ),
        // Every other role (and any role added later) may administer nothing.
        _ => false,
    }
}

/// Checks an administration action for a logged-in role (or none) against the table and the
/// device-SO access switch.
pub fn admin_check(
    role: Option<Role>,
    action: Action,
    config: &PartitionConfig,
) -> Result<(), AdminError> {
    let Some(role) = role else {
        return Err(AdminError::NotLoggedIn { action });
    };
    if role == Role::DeviceSo && !config.device_so_access {
        return Err(AdminError::DeviceSoAccessOff);
    }
    if permits(role, action) {
        Ok(())
    } else {
        Err(AdminError::Forbidden { role, action })
    }
}

/// The API provider an application connection declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApiProvider {
    /// Java JCE/JCA.
    Jce,
    /// Microsoft CNG.
    Cng,
    /// PKCS#11.
    Pkcs11,
    /// REST (TSBaaS / RESTaaS).
    Rest,
}

/// The parameter that switches a provider on or off.
pub fn provider_check(config: &PartitionConfig, provider: ApiProvider) -> Result<(), Parameter> {
    let p = &config.api_providers;
    let (on, parameter) = match provider {
        ApiProvider::Jce => (p.jce, Parameter::ApiJce),
        ApiProvider::Cng => (p.cng, Parameter::ApiCng),
        ApiProvider::Pkcs11 => (p.pkcs11, Parameter::ApiPkcs11),
        ApiProvider::Rest => (p.rest, Parameter::ApiRest),
    };
    if on { Ok(()) } else { Err(parameter) }
}

/// What an application asks to do with the partition's objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppOperation {
    /// Generate a persistent key object (or a session object).
    Generate {
        /// A session object (ephemeral, never stored).
        session: bool,
    },
    /// Import a key in plain.
    ImportPlain,
    /// Unwrap (import) a wrapped key.
    Unwrap,
    /// List objects.
    List,
    /// Sign, verify, encrypt, decrypt or derive with a key.
    Use,
    /// Wrap (export) a key under another key.
    Wrap,
    /// Export a key in plain.
    ExportPlain,
    /// Delete a key.
    Delete,
}

/// Checks an application operation against the configuration and, where it concerns one key,
/// that key's attributes. The error names the parameter that refuses.
pub fn app_check(
    config: &PartitionConfig,
    operation: AppOperation,
    key: Option<&KeyAttributes>,
) -> Result<(), Parameter> {
    use AppOperation::*;
    let creates = matches!(operation, Generate { .. } | ImportPlain | Unwrap);
    if config.read_only && (creates || operation == Delete) {
        return Err(Parameter::ReadOnly);
    }
    match operation {
        Generate { session: true } if !config.session_objects => Err(Parameter::SessionObjects),
        Generate { .. } | List => Ok(()),
        ImportPlain | Unwrap if !config.key_import => Err(Parameter::KeyImport),
        ImportPlain | Unwrap => Ok(()),
        // Every object of this partition is a secret or private key.
        Use if !config.object_usage => Err(Parameter::ObjectUsage),
        Use => Ok(()),
        Wrap => match key {
            Some(a) if config.key_export.permits_wrapped(a) => Ok(()),
            _ => Err(Parameter::KeyExport),
        },
        ExportPlain => match key {
            Some(a) if config.key_export.permits_plain(a) => Ok(()),
            _ => Err(Parameter::KeyExport),
        },
        Delete if !config.object_destruction => Err(Parameter::ObjectDestruction),
        Delete => Ok(()),
    }
}

/// Whether an application delete goes to the bin (key invalidation on) or is final.
pub fn delete_goes_to_bin(config: &PartitionConfig) -> bool {
    config.key_invalidation
}

/// A compact description of the export switch, for logs.
pub fn export_text(export: KeyExport) -> &'static str {
    export.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hsm_link::domain::{ApiProviders, ServiceTier};

    fn open_config() -> PartitionConfig {
        let mut c = PartitionConfig::for_tier(ServiceTier::Economy);
        c.api_providers = ApiProviders {
            jce: true,
            cng: true,
            pkcs11: true,
            rest: true,
        };
        c.key_import = true;
        c.key_export = KeyExport::WrappedAndPlain;
        c.object_usage = true;
        c.object_destruction = true;
        c.session_objects = true;
        c.read_only = false;
        c
    }

    const EXTRACTABLE_PLAIN: KeyAttributes = KeyAttributes {
        extractable: true,
        sensitive: false,
        modifiable: true,
    };

    #[test]
    fn each_switch_refuses_exactly_what_it_governs() {
        use AppOperation::*;
        let all = [
            Generate { session: false },
            Generate { session: true },
            ImportPlain,
            Unwrap,
            List,
            Use,
            Wrap,
            ExportPlain,
            Delete,
        ];
        let base = open_config();
        for op in all {
            assert_eq!(
                app_check(&base, op, Some(&EXTRACTABLE_PLAIN)),
                Ok(()),
                "{op:?}"
            );
        }
        type Tweak = fn(&mut PartitionConfig);
        let cases: [(Tweak, Parameter, &[AppOperation]); 7] = [
            (
                |c| c.read_only = true,
                Parameter::ReadOnly,
                &[
                    Generate { session: false },
                    Generate { session: true },
                    ImportPlain,
                    Unwrap,
                    Delete,
                ],
            ),
            (
                |c| c.session_objects = false,
                Parameter::SessionObjects,
                &[Generate { session: true }],
            ),
            (
                |c| c.key_import = false,
                Parameter::KeyImport,
                &[ImportPlain, Unwrap],
            ),
            (|c| c.object_usage = false, Parameter::ObjectUsage, &[Use]),
            (
                |c| c.key_export = KeyExport::Off,
                Parameter::KeyExport,
                &[Wrap, ExportPlain],
            ),
            (
                |c| c.key_export = KeyExport::WrappedOnly,
                Parameter::KeyExport,
                &[ExportPlain],
            ),
            (
                |c| c.object_destruction = false,
                Parameter::ObjectDestruction,
                &[Delete],
            ),
        ];
        for (tweak, parameter, refused) in cases {
            let mut config = base.clone();
            tweak(&mut config);
            for op in all {
                let expected = if refused.contains(&op) {
                    Err(parameter)
                } else {
                    Ok(())
                };
                assert_eq!(
                    app_check(&config, op, Some(&EXTRACTABLE_PLAIN)),
                    expected,
                    "{parameter:?} and {op:?}"
                );
            }
        }
    }

    #[test]
    fn export_follows_the_key_attributes() {
        let config = open_config();
        let sensitive = KeyAttributes {
            sensitive: true,
            ..EXTRACTABLE_PLAIN
        };
        let fixed = KeyAttributes {
            extractable: false,
            ..EXTRACTABLE_PLAIN
        };
        assert_eq!(
            app_check(&config, AppOperation::ExportPlain, Some(&sensitive)),
            Err(Parameter::KeyExport)
        );
        assert_eq!(
            app_check(&config, AppOperation::Wrap, Some(&sensitive)),
            Ok(())
        );
        assert_eq!(
            app_check(&config, AppOperation::Wrap, Some(&fixed)),
            Err(Parameter::KeyExport)
        );
        assert_eq!(
            app_check(&config, AppOperation::ExportPlain, None),
            Err(Parameter::KeyExport)
        );
    }

    #[test]
    fn providers_are_switched_one_by_one() {
        let mut config = open_config();
        config.api_providers = ApiProviders::jce_only();
        assert_eq!(provider_check(&config, ApiProvider::Jce), Ok(()));
        assert_eq!(
            provider_check(&config, ApiProvider::Cng),
            Err(Parameter::ApiCng)
        );
        assert_eq!(
            provider_check(&config, ApiProvider::Pkcs11),
            Err(Parameter::ApiPkcs11)
        );
        assert_eq!(
            provider_check(&config, ApiProvider::Rest),
            Err(Parameter::ApiRest)
        );
        config.api_providers = ApiProviders::none();
        assert_eq!(
            provider_check(&config, ApiProvider::Jce),
            Err(Parameter::ApiJce)
        );
    }

    #[test]
    fn every_role_and_action() {
        use Action::*;
        // Every action, from the one exhaustive list: a new action cannot skip this table.
        let actions = Action::ALL;
        let mut config = open_config();
        config.device_so_access = true;
        for action in actions {
            assert_eq!(admin_check(Some(Role::Pso), action, &config), Ok(()));
            assert_eq!(
                admin_check(None, action, &config),
                Err(AdminError::NotLoggedIn { action })
            );
            let auditor_may = matches!(
                action,
                ViewConfig
                    | ViewUsage
                    | ViewCardSets
                    | ReadLog
                    | ExportLog
                    | ConfirmExport
                    | ListTerminals
            );
            assert_eq!(
                admin_check(Some(Role::Auditor), action, &config).is_ok(),
                auditor_may,
                "{action:?}"
            );
            assert_eq!(
                admin_check(Some(Role::DeviceSo), action, &config).is_ok(),
                !matches!(action, RegisterCardSet | TrustKey | Backup | Restore),
                "{action:?}"
            );
            for nobody in [Role::TechnicalUser, Role::Genesis, Role::Unauthenticated] {
                assert!(admin_check(Some(nobody), action, &config).is_err());
            }
        }
        config.device_so_access = false;
        for action in actions {
            assert_eq!(
                admin_check(Some(Role::DeviceSo), action, &config),
                Err(AdminError::DeviceSoAccessOff)
            );
        }
    }
}
