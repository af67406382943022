//! Staged configuration changes, parameter by parameter: names, display values, the diff of two
//! configurations, and which changes loosen the partition enough to need a typed confirmation.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::DomainError;
use super::bounded::deserialize_display_text;
use super::config::{MB, PartitionConfig};

/// One parameter of a partition's configuration, in the order of seed 002 §4.3 (the quota
/// last). The revision is not a parameter: it numbers configurations rather than configuring.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Parameter {
    /// The JCE/JCA API provider.
    ApiJce,
    /// The Microsoft CNG API provider.
    ApiCng,
    /// The PKCS#11 API provider.
    ApiPkcs11,
    /// The REST API provider.
    ApiRest,
    /// Smart Key Attributes (licensed option).
    SmartKeyAttributes,
    /// Crypto-currency functions (licensed option).
    CryptoCurrency,
    /// Key import.
    KeyImport,
    /// Key export.
    KeyExport,
    /// Key invalidation (the bin).
    KeyInvalidation,
    /// Partition read-only.
    ReadOnly,
    /// Session objects.
    SessionObjects,
    /// Object destruction.
    ObjectDestruction,
    /// Object usage.
    ObjectUsage,
    /// The IP allow-list.
    IpAllowList,
    /// Device-SO access (partition administration by the HSM operator).
    DeviceSoAccess,
    /// The partition's size quota.
    QuotaSize,
    /// The partition's object limit.
    ObjectLimit,
}

impl Parameter {
    /// Every parameter, in the fixed order used by [`PartitionConfig::diff`] and on screen.
    pub const ALL: [Parameter; 17] = [
        Parameter::ApiJce,
        Parameter::ApiCng,
        Parameter::ApiPkcs11,
        Parameter::ApiRest,
        Parameter::SmartKeyAttributes,
        Parameter::CryptoCurrency,
        Parameter::KeyImport,
        Parameter::KeyExport,
        Parameter::KeyInvalidation,
        Parameter::ReadOnly,
        Parameter::SessionObjects,
        Parameter::ObjectDestruction,
        Parameter::ObjectUsage,
        Parameter::IpAllowList,
        Parameter::DeviceSoAccess,
        Parameter::QuotaSize,
        Parameter::ObjectLimit,
    ];

    /// The parameter's name in the CLI, the log and scripts, e.g. `key-export`.
    pub fn as_str(self) -> &'static str {
        match self {
            Parameter::ApiJce => "api-jce",
            Parameter::ApiCng => "api-cng",
            Parameter::ApiPkcs11 => "api-pkcs11",
            Parameter::ApiRest => "api-rest",
            Parameter::SmartKeyAttributes => "smart-key-attributes",
            Parameter::CryptoCurrency => "crypto-currency",
            Parameter::KeyImport => "key-import",
            Parameter::KeyExport => "key-export",
            Parameter::KeyInvalidation => "key-invalidation",
            Parameter::ReadOnly => "read-only",
            Parameter::SessionObjects => "session-objects",
            Parameter::ObjectDestruction => "object-destruction",
            Parameter::ObjectUsage => "object-usage",
            Parameter::IpAllowList => "ip-allow-list",
            Parameter::DeviceSoAccess => "device-so-access",
            Parameter::QuotaSize => "quota-size",
            Parameter::ObjectLimit => "object-limit",
        }
    }

    /// The parameter's label on screen, e.g. `Key export`.
    pub fn label(self) -> &'static str {
        match self {
            Parameter::ApiJce => "JCE/JCA API",
            Parameter::ApiCng => "MS CNG API",
            Parameter::ApiPkcs11 => "PKCS#11 API",
            Parameter::ApiRest => "REST API",
            Parameter::SmartKeyAttributes => "Smart Key Attributes",
            Parameter::CryptoCurrency => "Crypto currency",
            Parameter::KeyImport => "Key import",
            Parameter::KeyExport => "Key export",
            Parameter::KeyInvalidation => "Key invalidation",
            Parameter::ReadOnly => "Partition read-only",
            Parameter::SessionObjects => "Session objects",
            Parameter::ObjectDestruction => "Object destruction",
            Parameter::ObjectUsage => "Object usage",
            Parameter::IpAllowList => "IP allow-list",
            Parameter::DeviceSoAccess => "Device-SO access",
            Parameter::QuotaSize => "Partition size",
            Parameter::ObjectLimit => "Object limit",
        }
    }
}

/// Every parameter name, comma-separated (for error messages).
pub(crate) fn parameter_names() -> String {
    Parameter::ALL
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Parameter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Reads a parameter's [`Parameter::as_str`] name.
impl FromStr for Parameter {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Parameter::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| DomainError::UnknownParameter {
                name: s.chars().take(64).collect(),
            })
    }
}

/// One parameter's change between two configurations, with display values for screen and log.
///
/// Display values are bounded (16 KiB, room for a full allow-list) and free of control
/// characters when deserialised.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParameterChange {
    /// The parameter that changes.
    pub parameter: Parameter,
    /// The current value as shown, e.g. `wrapped only`.
    #[serde(deserialize_with = "deserialize_display_text")]
    pub old: String,
    /// The staged value as shown, e.g. `wrapped and plain`.
    #[serde(deserialize_with = "deserialize_display_text")]
    pub new: String,
    /// The change loosens the partition (see [`ParameterChange::needs_typed_confirmation`]);
    /// set by [`PartitionConfig::diff`].
    pub loosens: bool,
}

impl ParameterChange {
    /// True when the change loosens the partition, so that the terminal asks for a typed
    /// confirmation before applying it. These changes loosen:
    ///
    /// - an API provider turned on (the application gains a way in);
    /// - key import turned on;
    /// - key export widened (off → wrapped only → wrapped and plain);
    /// - key invalidation turned off (deletes become final);
    /// - read-only turned off;
    /// - session objects turned on (key material, encrypted, lives outside the HSM);
    /// - object destruction turned on;
    /// - object usage turned on;
    /// - the IP allow-list widened or emptied (see [`super::IpAllowList::widens`]);
    /// - device-SO access turned **off**: not wider access, but the seed's warning — the PSO
    ///   alone then carries the risk of losing access for good.
    ///
    /// The licensed options, the quota and the object limit never ask: they do not widen access
    /// to keys, and the HSM operator sets licences and quotas.
    pub fn needs_typed_confirmation(&self) -> bool {
        self.loosens
    }
}

/// Written as `Key export: wrapped only → wrapped and plain`.
impl fmt::Display for ParameterChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} \u{2192} {}",
            self.parameter.label(),
            self.old,
            self.new
        )
    }
}

fn on_off(value: bool) -> String {
    if value { "on" } else { "off" }.to_owned()
}

/// `10 MB` for whole megabytes (see [`MB`]), otherwise the exact byte count.
fn size_text(bytes: u64) -> String {
    if bytes != 0 && bytes.is_multiple_of(MB) {
        format!("{} MB", bytes / MB)
    } else {
        format!("{bytes} bytes")
    }
}

impl PartitionConfig {
    /// The value of `parameter` as shown on screen and written to the log: `on`/`off` for
    /// switches, `not licensed`/`off`/`on` for licensed options, `wrapped only` etc. for key
    /// export, the allow-list's entries or `any address`, `10 MB`, `200 objects`/`no limit`.
    /// Distinct values always show differently.
    pub fn value_text(&self, parameter: Parameter) -> String {
        match parameter {
            Parameter::ApiJce => on_off(self.api_providers.jce),
            Parameter::ApiCng => on_off(self.api_providers.cng),
            Parameter::ApiPkcs11 => on_off(self.api_providers.pkcs11),
            Parameter::ApiRest => on_off(self.api_providers.rest),
            Parameter::SmartKeyAttributes => self.ska.as_str().to_owned(),
            Parameter::CryptoCurrency => self.crypto_currency.as_str().to_owned(),
            Parameter::KeyImport => on_off(self.key_import),
            Parameter::KeyExport => self.key_export.as_str().to_owned(),
            Parameter::KeyInvalidation => on_off(self.key_invalidation),
            Parameter::ReadOnly => on_off(self.read_only),
            Parameter::SessionObjects => on_off(self.session_objects),
            Parameter::ObjectDestruction => on_off(self.object_destruction),
            Parameter::ObjectUsage => on_off(self.object_usage),
            Parameter::IpAllowList => self.ip_allow_list.to_string(),
            Parameter::DeviceSoAccess => on_off(self.device_so_access),
            Parameter::QuotaSize => size_text(self.quota.size_bytes),
            Parameter::ObjectLimit => match self.quota.object_limit {
                None => "no limit".to_owned(),
                Some(1) => "1 object".to_owned(),
                Some(n) => format!("{n} objects"),
            },
        }
    }

    /// True when `parameter` has a different value in `other`.
    fn differs(&self, other: &PartitionConfig, parameter: Parameter) -> bool {
        let (a, b) = (self, other);
        match parameter {
            Parameter::ApiJce => a.api_providers.jce != b.api_providers.jce,
            Parameter::ApiCng => a.api_providers.cng != b.api_providers.cng,
            Parameter::ApiPkcs11 => a.api_providers.pkcs11 != b.api_providers.pkcs11,
            Parameter::ApiRest => a.api_providers.rest != b.api_providers.rest,
            Parameter::SmartKeyAttributes => a.ska != b.ska,
            Parameter::CryptoCurrency => a.crypto_currency != b.crypto_currency,
            Parameter::KeyImport => a.key_import != b.key_import,
            Parameter::KeyExport => a.key_export != b.key_export,
            Parameter::KeyInvalidation => a.key_invalidation != b.key_invalidation,
            Parameter::ReadOnly => a.read_only != b.read_only,
            Parameter::SessionObjects => a.session_objects != b.session_objects,
            Parameter::ObjectDestruction => a.object_destruction != b.object_destruction,
            Parameter::ObjectUsage => a.object_usage != b.object_usage,
            Parameter::IpAllowList => a.ip_allow_list != b.ip_allow_list,
            Parameter::DeviceSoAccess => a.device_so_access != b.device_so_access,
            Parameter::QuotaSize => a.quota.size_bytes != b.quota.size_bytes,
            Parameter::ObjectLimit => a.quota.object_limit != b.quota.object_limit,
        }
    }

    /// True when changing `parameter` from `self` to `new` loosens the partition (the list is on
    /// [`ParameterChange::needs_typed_confirmation`]).
    fn loosens(&self, new: &PartitionConfig, parameter: Parameter) -> bool {
        let old = self;
        let turned_on = |o: bool, n: bool| !o && n;
        let turned_off = |o: bool, n: bool| o && !n;
        match parameter {
            Parameter::ApiJce => turned_on(old.api_providers.jce, new.api_providers.jce),
            Parameter::ApiCng => turned_on(old.api_providers.cng, new.api_providers.cng),
            Parameter::ApiPkcs11 => turned_on(old.api_providers.pkcs11, new.api_providers.pkcs11),
            Parameter::ApiRest => turned_on(old.api_providers.rest, new.api_providers.rest),
            Parameter::KeyImport => turned_on(old.key_import, new.key_import),
            Parameter::KeyExport => new.key_export > old.key_export,
            Parameter::KeyInvalidation => turned_off(old.key_invalidation, new.key_invalidation),
            Parameter::ReadOnly => turned_off(old.read_only, new.read_only),
            Parameter::SessionObjects => turned_on(old.session_objects, new.session_objects),
            Parameter::ObjectDestruction => {
                turned_on(old.object_destruction, new.object_destruction)
            }
            Parameter::ObjectUsage => turned_on(old.object_usage, new.object_usage),
            Parameter::IpAllowList => new.ip_allow_list.widens(&old.ip_allow_list),
            Parameter::DeviceSoAccess => turned_off(old.device_so_access, new.device_so_access),
            Parameter::SmartKeyAttributes
            | Parameter::CryptoCurrency
            | Parameter::QuotaSize
            | Parameter::ObjectLimit => false,
        }
    }

    /// The parameters whose values differ from `self` (the current configuration) to `other`
    /// (the staged one), in the order of [`Parameter::ALL`], each with its old and new display
    /// values and whether it needs a typed confirmation. The revision is not compared.
    pub fn diff(&self, other: &PartitionConfig) -> Vec<ParameterChange> {
        Parameter::ALL
            .into_iter()
            .filter(|&p| self.differs(other, p))
            .map(|p| ParameterChange {
                parameter: p,
                old: self.value_text(p),
                new: other.value_text(p),
                loosens: self.loosens(other, p),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        ByokTier, IpAllowList, KeyExport, LicensedOption, ServiceTier,
        bounded::MAX_DISPLAY_TEXT_LEN,
    };

    fn base() -> PartitionConfig {
        PartitionConfig::for_tier(ServiceTier::Economy)
    }

    /// Applies `edit` to a copy of `from` and returns the single change of the diff.
    fn single(from: &PartitionConfig, edit: impl FnOnce(&mut PartitionConfig)) -> ParameterChange {
        let mut to = from.clone();
        edit(&mut to);
        let diff = from.diff(&to);
        assert_eq!(diff.len(), 1, "{diff:?}");
        diff.into_iter().next().unwrap()
    }

    #[test]
    fn names_are_distinct_and_parse_back() {
        let names: std::collections::BTreeSet<_> =
            Parameter::ALL.iter().map(|p| p.as_str()).collect();
        let labels: std::collections::BTreeSet<_> =
            Parameter::ALL.iter().map(|p| p.label()).collect();
        assert_eq!(names.len(), Parameter::ALL.len());
        assert_eq!(labels.len(), Parameter::ALL.len());
        for p in Parameter::ALL {
            assert_eq!(p.as_str().parse::<Parameter>().unwrap(), p);
        }
        assert_eq!(Parameter::KeyExport.as_str(), "key-export");
        assert_eq!(Parameter::KeyExport.label(), "Key export");
        let err = "key-exports".parse::<Parameter>().unwrap_err();
        assert!(err.to_string().contains("key-export,"), "{err}");
        // `ALL` is in declaration order, which the diff relies on.
        assert!(Parameter::ALL.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn diff_lists_exactly_the_changed_parameters_in_order() {
        let old = base();
        assert!(old.diff(&old).is_empty());

        let mut new = old.clone();
        new.revision += 7; // not a parameter
        assert!(old.diff(&new).is_empty());

        // Changed in an order different from the fixed one.
        new.device_so_access = false;
        new.key_export = KeyExport::WrappedAndPlain;
        new.api_providers.rest = true;
        new.ip_allow_list = "192.0.2.7".parse().unwrap();
        new.quota.object_limit = Some(50);
        let diff = old.diff(&new);
        let got: Vec<_> = diff
            .iter()
            .map(|c| (c.parameter, c.old.as_str(), c.new.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (Parameter::ApiRest, "off", "on"),
                (Parameter::KeyExport, "wrapped only", "wrapped and plain"),
                (Parameter::IpAllowList, "any address", "192.0.2.7"),
                (Parameter::DeviceSoAccess, "on", "off"),
                (Parameter::ObjectLimit, "no limit", "50 objects"),
            ]
        );
        assert_eq!(
            diff[1].to_string(),
            "Key export: wrapped only \u{2192} wrapped and plain"
        );
    }

    #[test]
    fn every_parameter_shows_up_in_a_diff() {
        let old = base();
        let mut new = old.clone();
        new.api_providers.jce = !new.api_providers.jce;
        new.api_providers.cng = !new.api_providers.cng;
        new.api_providers.pkcs11 = !new.api_providers.pkcs11;
        new.api_providers.rest = !new.api_providers.rest;
        new.ska.licensed = true;
        new.crypto_currency = LicensedOption {
            licensed: true,
            enabled: true,
        };
        new.key_import = !new.key_import;
        new.key_export = KeyExport::Off;
        new.key_invalidation = !new.key_invalidation;
        new.read_only = !new.read_only;
        new.session_objects = !new.session_objects;
        new.object_destruction = !new.object_destruction;
        new.object_usage = !new.object_usage;
        new.ip_allow_list = "10.0.0.0/8".parse().unwrap();
        new.device_so_access = !new.device_so_access;
        new.quota.size_bytes = 1_500_000;
        new.quota.object_limit = Some(1);
        let diff = old.diff(&new);
        let params: Vec<_> = diff.iter().map(|c| c.parameter).collect();
        assert_eq!(params, Parameter::ALL.to_vec());
        assert!(diff.iter().all(|c| c.old != c.new), "{diff:?}");
        let text = |p: Parameter| {
            let c = diff.iter().find(|c| c.parameter == p).unwrap();
            (c.old.clone(), c.new.clone())
        };
        assert_eq!(
            text(Parameter::SmartKeyAttributes),
            ("not licensed".into(), "off".into())
        );
        assert_eq!(
            text(Parameter::QuotaSize),
            ("10 MB".into(), "1500000 bytes".into())
        );
        assert_eq!(
            text(Parameter::ObjectLimit),
            ("no limit".into(), "1 object".into())
        );
    }

    #[test]
    fn loosening_changes_need_typed_confirmation() {
        let strict = {
            let mut c = base();
            c.api_providers = crate::domain::ApiProviders::none();
            c.key_export = KeyExport::Off;
            c.session_objects = false;
            c.object_destruction = false;
            c.object_usage = false;
            c.read_only = true;
            c.ip_allow_list = "10.0.0.0/8".parse().unwrap();
            c
        };
        type Edit = fn(&mut PartitionConfig);
        let loosening: [(Parameter, Edit); 13] = [
            (Parameter::ApiJce, |c| c.api_providers.jce = true),
            (Parameter::ApiCng, |c| c.api_providers.cng = true),
            (Parameter::ApiPkcs11, |c| c.api_providers.pkcs11 = true),
            (Parameter::ApiRest, |c| c.api_providers.rest = true),
            (Parameter::KeyImport, |c| c.key_import = true),
            (Parameter::KeyExport, |c| {
                c.key_export = KeyExport::WrappedOnly
            }),
            (Parameter::KeyInvalidation, |c| c.key_invalidation = false),
            (Parameter::ReadOnly, |c| c.read_only = false),
            (Parameter::SessionObjects, |c| c.session_objects = true),
            (Parameter::ObjectDestruction, |c| {
                c.object_destruction = true
            }),
            (Parameter::ObjectUsage, |c| c.object_usage = true),
            (Parameter::IpAllowList, |c| {
                c.ip_allow_list = IpAllowList::allow_all()
            }),
            (Parameter::DeviceSoAccess, |c| c.device_so_access = false),
        ];
        for (param, edit) in loosening {
            let change = single(&strict, edit);
            assert_eq!(change.parameter, param);
            assert!(change.needs_typed_confirmation(), "{change}");

            // The way back tightens and does not ask.
            let mut loose = strict.clone();
            edit(&mut loose);
            let back = loose.diff(&strict);
            assert_eq!(back.len(), 1);
            assert!(!back[0].needs_typed_confirmation(), "{}", back[0]);
        }

        let wider = single(&strict, |c| c.ip_allow_list = "10.0.0.0/7".parse().unwrap());
        assert!(wider.needs_typed_confirmation());
        let narrower = single(&strict, |c| {
            c.ip_allow_list = "10.1.0.0/16".parse().unwrap()
        });
        assert!(!narrower.needs_typed_confirmation());
        let plain = single(&strict, |c| c.key_export = KeyExport::WrappedAndPlain);
        assert!(plain.needs_typed_confirmation());
        let from_wrapped = {
            let mut c = strict.clone();
            c.key_export = KeyExport::WrappedOnly;
            single(&c, |c| c.key_export = KeyExport::WrappedAndPlain)
        };
        assert!(from_wrapped.needs_typed_confirmation());

        // Neither direction of these asks.
        type Neutral = fn(&mut PartitionConfig);
        let neutral: [Neutral; 4] = [
            |c| {
                c.ska = LicensedOption {
                    licensed: true,
                    enabled: true,
                }
            },
            |c| c.crypto_currency.licensed = true,
            |c| c.quota.size_bytes *= 2,
            |c| c.quota.object_limit = Some(10),
        ];
        for edit in neutral {
            assert!(!single(&strict, edit).needs_typed_confirmation());
            let mut changed = strict.clone();
            edit(&mut changed);
            assert!(!changed.diff(&strict)[0].needs_typed_confirmation());
        }
    }

    #[test]
    fn byok_to_economy_diff() {
        let byok = PartitionConfig::for_tier(ServiceTier::Byok(ByokTier::Entry3));
        let eco = base();
        let diff = byok.diff(&eco);
        let params: Vec<_> = diff.iter().map(|c| c.parameter).collect();
        assert_eq!(
            params,
            vec![
                Parameter::ObjectUsage,
                Parameter::QuotaSize,
                Parameter::ObjectLimit
            ]
        );
        assert!(diff[0].needs_typed_confirmation());
    }

    #[test]
    fn changes_deserialise_checked() {
        let change = ParameterChange {
            parameter: Parameter::KeyImport,
            old: "off".into(),
            new: "on".into(),
            loosens: true,
        };
        let bytes = postcard::to_stdvec(&change).unwrap();
        assert_eq!(
            postcard::from_bytes::<ParameterChange>(&bytes).unwrap(),
            change
        );
        let escape = ParameterChange {
            new: "on\u{1b}[2J".into(),
            ..change.clone()
        };
        let bytes = postcard::to_stdvec(&escape).unwrap();
        assert!(postcard::from_bytes::<ParameterChange>(&bytes).is_err());
        let long = ParameterChange {
            old: "x".repeat(MAX_DISPLAY_TEXT_LEN + 1),
            ..change
        };
        let bytes = postcard::to_stdvec(&long).unwrap();
        assert!(postcard::from_bytes::<ParameterChange>(&bytes).is_err());
    }

    #[test]
    fn full_allow_list_fits_a_display_value() {
        let entries: Vec<_> = (0..256u128)
            .map(|i| crate::domain::IpNetwork::host(std::net::Ipv6Addr::from(u128::MAX - i).into()))
            .collect();
        let mut c = base();
        c.ip_allow_list = IpAllowList::new(entries).unwrap();
        assert!(c.value_text(Parameter::IpAllowList).len() <= MAX_DISPLAY_TEXT_LEN);
    }
}
