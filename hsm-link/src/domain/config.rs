//! The partition's configuration: every parameter of seed 002 §4.3, the quota of its service
//! tier (§4.1, §5.1), BYOK's fixed defaults (§5.3) and the revision used for optimistic
//! concurrency.

use serde::{Deserialize, Serialize};

use super::keys::KeyAttributes;
use super::network::{IpAllowList, MAX_ALLOW_LIST_ENTRIES};
use super::{DomainError, Parameter};

/// One megabyte as the seed counts partition sizes: 1,000,000 bytes (decimal, not 2^20).
pub const MB: u64 = 1_000_000;

/// Size of every BYOK partition (seed 002 §5.1): 1 MB.
pub const BYOK_PARTITION_SIZE: u64 = MB;

/// The subscription tier of a BYOK partition (seed 002 §5.1): it sets the most key objects the
/// partition may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ByokTier {
    /// Up to 3 key objects.
    Entry3,
    /// Up to 10 key objects.
    Entry10,
    /// Up to 200 key objects.
    Entry200,
}

impl ByokTier {
    /// The most key objects a partition of this tier may hold.
    pub fn object_limit(self) -> u32 {
        match self {
            ByokTier::Entry3 => 3,
            ByokTier::Entry10 => 10,
            ByokTier::Entry200 => 200,
        }
    }
}

/// The service tiers of seed 002 §4.1 and §5.1. Economy Certified Mode (ECO CC) has the same
/// capacity as Economy and is not told apart here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ServiceTier {
    /// Economy (ECO, ECO CC), production: 10 MB.
    Economy,
    /// Sandbox (SBX), test only, never for production use: 10 MB.
    Sandbox,
    /// Platinum, production: 120 MB.
    Platinum,
    /// HSMaaS BYOK, Economy entry: 1 MB and 3, 10 or 200 key objects, with §5.3's fixed
    /// initial settings.
    Byok(ByokTier),
}

impl ServiceTier {
    /// The tier's name as shown and logged, e.g. `economy` or `byok-10`.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceTier::Economy => "economy",
            ServiceTier::Sandbox => "sandbox",
            ServiceTier::Platinum => "platinum",
            ServiceTier::Byok(ByokTier::Entry3) => "byok-3",
            ServiceTier::Byok(ByokTier::Entry10) => "byok-10",
            ServiceTier::Byok(ByokTier::Entry200) => "byok-200",
        }
    }

    /// The tier's quota: its partition size and, for BYOK, its object limit. The seed's sizes
    /// are the tiers' standard; an order form may agree more (a PSO cannot change the quota).
    pub fn quota(self) -> Quota {
        match self {
            ServiceTier::Economy | ServiceTier::Sandbox => Quota {
                size_bytes: 10 * MB,
                object_limit: None,
            },
            ServiceTier::Platinum => Quota {
                size_bytes: 120 * MB,
                object_limit: None,
            },
            ServiceTier::Byok(tier) => Quota {
                size_bytes: BYOK_PARTITION_SIZE,
                object_limit: Some(tier.object_limit()),
            },
        }
    }
}

impl std::fmt::Display for ServiceTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The API providers through which the application reaches the partition, each switched on its
/// own (seed 002 §4.3, note 1). All off takes the partition offline (note 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ApiProviders {
    /// JCE/JCA (Java).
    pub jce: bool,
    /// Microsoft CNG.
    pub cng: bool,
    /// PKCS#11.
    pub pkcs11: bool,
    /// REST (through TSBaaS or RESTaaS).
    pub rest: bool,
}

impl ApiProviders {
    /// Every provider off: the partition is offline.
    pub fn none() -> Self {
        ApiProviders {
            jce: false,
            cng: false,
            pkcs11: false,
            rest: false,
        }
    }

    /// JCE/JCA on, every other provider off (BYOK's fixed default, §5.3).
    pub fn jce_only() -> Self {
        ApiProviders {
            jce: true,
            ..ApiProviders::none()
        }
    }

    /// True when every provider is off, so that no application can reach the partition.
    pub fn is_offline(&self) -> bool {
        !(self.jce || self.cng || self.pkcs11 || self.rest)
    }
}

/// An option that is sold separately (Smart Key Attributes, crypto currency): whether the
/// subscription includes it, and whether it is on. A PSO may toggle only a licensed option;
/// [`PartitionConfig::validate`] refuses an option that is on but not licensed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LicensedOption {
    /// The subscription includes the option (set by the HSM operator, not the PSO).
    pub licensed: bool,
    /// The option is on.
    pub enabled: bool,
}

impl LicensedOption {
    /// Not licensed, off.
    pub fn unlicensed() -> Self {
        LicensedOption {
            licensed: false,
            enabled: false,
        }
    }

    /// How the option is shown: `not licensed`, `off` or `on` (and `on (not licensed)` for the
    /// invalid combination, so that a screen never hides it).
    pub fn as_str(&self) -> &'static str {
        match (self.licensed, self.enabled) {
            (false, false) => "not licensed",
            (false, true) => "on (not licensed)",
            (true, false) => "off",
            (true, true) => "on",
        }
    }
}

/// Key export at partition level (seed 002 §4.3). Ordered from narrowest to widest, so that
/// `new > old` means the change widens export.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum KeyExport {
    /// No key leaves the partition.
    Off,
    /// Keys flagged extractable may leave the partition wrapped (encrypted under another key).
    WrappedOnly,
    /// As `WrappedOnly`, and keys flagged extractable and not sensitive may also leave in plain
    /// (the Decanus "key extraction" switch).
    WrappedAndPlain,
}

impl KeyExport {
    /// How the setting is shown: `off`, `wrapped only`, `wrapped and plain`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyExport::Off => "off",
            KeyExport::WrappedOnly => "wrapped only",
            KeyExport::WrappedAndPlain => "wrapped and plain",
        }
    }

    /// True when a key with `attributes` may be exported wrapped: export is on and the key is
    /// flagged extractable (`ACCESS_EXTRACTABLE=TRUE`).
    pub fn permits_wrapped(self, attributes: &KeyAttributes) -> bool {
        self != KeyExport::Off && attributes.extractable
    }

    /// True when a key with `attributes` may be exported in plain: plain export is on and the
    /// key is extractable and not sensitive (`ACCESS_SENSITIVE=FALSE`).
    pub fn permits_plain(self, attributes: &KeyAttributes) -> bool {
        self == KeyExport::WrappedAndPlain && attributes.extractable && !attributes.sensitive
    }
}

/// The partition's size quota and object limit, set by its service tier (not by a PSO).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Quota {
    /// User space in bytes (see [`MB`]). Invalidated keys count against it.
    pub size_bytes: u64,
    /// The most key objects, invalidated ones included; `None` for no limit beyond the size.
    pub object_limit: Option<u32>,
}

/// A partition's configuration: every parameter of seed 002 §4.3, the quota, and the revision.
///
/// The fields are public plain data; [`PartitionConfig::validate`] checks that a value is
/// consistent, and `partition-service` validates every configuration it is asked to apply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionConfig {
    /// API providers, each on its own; all off = partition offline.
    pub api_providers: ApiProviders,
    /// Smart Key Attributes (HSM-enforced multi-signature schemes), a licensed option.
    pub ska: LicensedOption,
    /// Crypto-currency functions, a licensed option.
    pub crypto_currency: LicensedOption,
    /// The application may import keys (plain or wrapped).
    pub key_import: bool,
    /// Key export: off, wrapped only, or wrapped and plain.
    pub key_export: KeyExport,
    /// An application delete moves a key to the bin instead of destroying it.
    pub key_invalidation: bool,
    /// The application may use keys but not create, modify or delete them.
    pub read_only: bool,
    /// Session (ephemeral) objects are supported.
    pub session_objects: bool,
    /// Keys may be deleted; off makes every delete fail.
    pub object_destruction: bool,
    /// Secret and private keys may be used for sign, verify, encrypt, decrypt and derive (wrap
    /// and unwrap follow import and export instead).
    pub object_usage: bool,
    /// Source addresses the application may connect from; empty = every address.
    pub ip_allow_list: IpAllowList,
    /// Device SOs (the HSM operator) may administer the partition. Off shuts them out entirely;
    /// the PSO then alone carries the risk of losing access (seed 002 §4.3's warning).
    pub device_so_access: bool,
    /// Size quota and object limit of the service tier.
    pub quota: Quota,
    /// The configuration revision: raised by one with every applied change. A change states the
    /// revision it was staged against and is refused if the partition has moved on.
    pub revision: u64,
}

impl PartitionConfig {
    /// The fixed initial settings of a BYOK partition (seed 002 §5.3), with the IP allow-list and
    /// device-SO access "set according to Subscriber's order":
    ///
    /// JCE/JCA only; key import off; key export wrapped only ("key extraction" off); key
    /// invalidation on; read-only off; session objects on; object destruction on; object usage
    /// **off** (as the seed says); 1 MB and the tier's object limit. The seed does not mention
    /// the licensed options: they start unlicensed and off. Revision 0.
    pub fn byok_defaults(
        tier: ByokTier,
        ip_allow_list: IpAllowList,
        device_so_access: bool,
    ) -> Self {
        PartitionConfig {
            api_providers: ApiProviders::jce_only(),
            ska: LicensedOption::unlicensed(),
            crypto_currency: LicensedOption::unlicensed(),
            key_import: false,
            key_export: KeyExport::WrappedOnly,
            key_invalidation: true,
            read_only: false,
            session_objects: true,
            object_destruction: true,
            object_usage: false,
            ip_allow_list,
            device_so_access,
            quota: ServiceTier::Byok(tier).quota(),
            revision: 0,
        }
    }

    /// The initial configuration of a new partition of `tier`; a PSO (or the HSM operator, as
    /// the order says) then changes it.
    ///
    /// For a BYOK tier: [`PartitionConfig::byok_defaults`] with an empty allow-list and device-SO
    /// access on. For the other tiers the seed fixes nothing, so these are Tessera's choices,
    /// starting from BYOK's settings (the one set the seed gives) and cautious where in doubt:
    ///
    /// - API providers: JCE/JCA only. Providers are "activated individually" (§4.3, note 1); a
    ///   PSO turns on the others the application needs.
    /// - Smart Key Attributes, crypto currency: not licensed, off (options subject to cost; the
    ///   operator records a licence).
    /// - Key import: off (the seed recommends generating keys inside the HSM).
    /// - Key export: wrapped only (allows wrapped backups of extractable keys; plain export is a
    ///   deliberate, confirmed step).
    /// - Key invalidation: on (protects against accidental deletion).
    /// - Read-only: off; session objects: on; object destruction: on.
    /// - Object usage: **on**, unlike BYOK: an HSMaaS partition exists to use its keys.
    /// - IP allow-list: empty, so every address (the order's list is entered afterwards).
    /// - Device-SO access: on (without a PSO, "the partition administration is conducted by the
    ///   SO role", §3.2d; turning it off is the PSO's explicit, confirmed choice).
    /// - Quota: the tier's size, no object limit. Revision 0.
    pub fn for_tier(tier: ServiceTier) -> Self {
        match tier {
            ServiceTier::Byok(byok) => {
                PartitionConfig::byok_defaults(byok, IpAllowList::allow_all(), true)
            }
            ServiceTier::Economy | ServiceTier::Sandbox | ServiceTier::Platinum => {
                PartitionConfig {
                    api_providers: ApiProviders::jce_only(),
                    ska: LicensedOption::unlicensed(),
                    crypto_currency: LicensedOption::unlicensed(),
                    key_import: false,
                    key_export: KeyExport::WrappedOnly,
                    key_invalidation: true,
                    read_only: false,
                    session_objects: true,
                    object_destruction: true,
                    object_usage: true,
                    ip_allow_list: IpAllowList::allow_all(),
                    device_so_access: true,
                    quota: tier.quota(),
                    revision: 0,
                }
            }
        }
    }

    /// Checks the configuration's internal consistency: no licensed option on without its
    /// licence, an allow-list within its bound, a quota of at least one byte, and an object
    /// limit (if any) of at least one.
    pub fn validate(&self) -> Result<(), DomainError> {
        if self.ska.enabled && !self.ska.licensed {
            return Err(DomainError::UnlicensedOptionEnabled {
                parameter: Parameter::SmartKeyAttributes,
            });
        }
        if self.crypto_currency.enabled && !self.crypto_currency.licensed {
            return Err(DomainError::UnlicensedOptionEnabled {
                parameter: Parameter::CryptoCurrency,
            });
        }
        // `IpAllowList` keeps this bound itself; checked again so that `validate` alone answers
        // for the whole value.
        if self.ip_allow_list.len() > MAX_ALLOW_LIST_ENTRIES {
            return Err(DomainError::AllowListTooLong {
                len: self.ip_allow_list.len(),
            });
        }
        if self.quota.size_bytes == 0 {
            return Err(DomainError::QuotaSizeZero);
        }
        if self.quota.object_limit == Some(0) {
            return Err(DomainError::ObjectLimitZero);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::IpNetwork;

    fn allow_list() -> IpAllowList {
        "192.0.2.0/24, 2001:db8::/32".parse().unwrap()
    }

    #[test]
    fn byok_defaults_match_seed_section_5_3() {
        let c = PartitionConfig::byok_defaults(ByokTier::Entry10, allow_list(), false);
        // API providers: JCE/JCA enabled, all other APIs disabled.
        assert!(c.api_providers.jce);
        assert!(!c.api_providers.cng);
        assert!(!c.api_providers.pkcs11);
        assert!(!c.api_providers.rest);
        assert!(!c.api_providers.is_offline());
        // Not named by §5.3: unlicensed and off.
        assert_eq!(c.ska, LicensedOption::unlicensed());
        assert_eq!(c.crypto_currency, LicensedOption::unlicensed());
        // Key import: disabled.
        assert!(!c.key_import);
        // Key export: enabled, "key extraction" disabled (wrapped only).
        assert_eq!(c.key_export, KeyExport::WrappedOnly);
        // Key invalidation: enabled.
        assert!(c.key_invalidation);
        // Partition read-only: disabled.
        assert!(!c.read_only);
        // Session object: enabled.
        assert!(c.session_objects);
        // Object destruction: enabled.
        assert!(c.object_destruction);
        // Object usage: disabled.
        assert!(!c.object_usage);
        // IP ACL and partition administration: according to the order.
        assert_eq!(c.ip_allow_list, allow_list());
        assert!(!c.device_so_access);
        // §5.1: 1 MB, the tier's object count.
        assert_eq!(
            c.quota,
            Quota {
                size_bytes: 1_000_000,
                object_limit: Some(10)
            }
        );
        assert_eq!(c.revision, 0);
        c.validate().unwrap();

        let on = PartitionConfig::byok_defaults(ByokTier::Entry3, IpAllowList::allow_all(), true);
        assert!(on.device_so_access);
        assert!(on.ip_allow_list.is_empty());
    }

    #[test]
    fn tiers_have_the_seed_sizes() {
        let q = |t: ServiceTier| PartitionConfig::for_tier(t).quota;
        assert_eq!(q(ServiceTier::Economy).size_bytes, 10_000_000);
        assert_eq!(q(ServiceTier::Sandbox).size_bytes, 10_000_000);
        assert_eq!(q(ServiceTier::Platinum).size_bytes, 120_000_000);
        assert_eq!(q(ServiceTier::Economy).object_limit, None);
        for (tier, limit) in [
            (ByokTier::Entry3, 3),
            (ByokTier::Entry10, 10),
            (ByokTier::Entry200, 200),
        ] {
            let c = PartitionConfig::for_tier(ServiceTier::Byok(tier));
            assert_eq!(c.quota.size_bytes, 1_000_000);
            assert_eq!(c.quota.object_limit, Some(limit));
            assert_eq!(
                c,
                PartitionConfig::byok_defaults(tier, IpAllowList::allow_all(), true)
            );
        }
        let eco = PartitionConfig::for_tier(ServiceTier::Economy);
        assert!(eco.object_usage, "an HSMaaS partition's keys are usable");
        assert!(eco.device_so_access);
        eco.validate().unwrap();
    }

    #[test]
    fn validate_refuses_inconsistent_values() {
        let base = PartitionConfig::for_tier(ServiceTier::Platinum);

        let mut c = base.clone();
        c.ska.enabled = true;
        assert_eq!(
            c.validate(),
            Err(DomainError::UnlicensedOptionEnabled {
                parameter: Parameter::SmartKeyAttributes
            })
        );
        c.ska.licensed = true;
        c.validate().unwrap();

        let mut c = base.clone();
        c.crypto_currency = LicensedOption {
            licensed: false,
            enabled: true,
        };
        assert_eq!(
            c.validate(),
            Err(DomainError::UnlicensedOptionEnabled {
                parameter: Parameter::CryptoCurrency
            })
        );

        let mut c = base.clone();
        c.quota.size_bytes = 0;
        assert_eq!(c.validate(), Err(DomainError::QuotaSizeZero));

        let mut c = base;
        c.quota.object_limit = Some(0);
        assert_eq!(c.validate(), Err(DomainError::ObjectLimitZero));
    }

    #[test]
    fn offline_means_every_provider_off() {
        assert!(ApiProviders::none().is_offline());
        for i in 0..4 {
            let mut p = ApiProviders::none();
            match i {
                0 => p.jce = true,
                1 => p.cng = true,
                2 => p.pkcs11 = true,
                _ => p.rest = true,
            }
            assert!(!p.is_offline(), "provider {i}");
        }
    }

    #[test]
    fn export_follows_key_flags() {
        let flags = |extractable, sensitive| KeyAttributes {
            extractable,
            sensitive,
            modifiable: false,
        };
        assert!(!KeyExport::Off.permits_wrapped(&flags(true, false)));
        assert!(KeyExport::WrappedOnly.permits_wrapped(&flags(true, true)));
        assert!(!KeyExport::WrappedOnly.permits_wrapped(&flags(false, false)));
        assert!(!KeyExport::WrappedOnly.permits_plain(&flags(true, false)));
        assert!(KeyExport::WrappedAndPlain.permits_plain(&flags(true, false)));
        assert!(!KeyExport::WrappedAndPlain.permits_plain(&flags(true, true)));
        assert!(!KeyExport::WrappedAndPlain.permits_plain(&flags(false, false)));
        assert!(KeyExport::Off < KeyExport::WrappedOnly);
        assert!(KeyExport::WrappedOnly < KeyExport::WrappedAndPlain);
    }

    #[test]
    fn full_config_round_trips_through_postcard() {
        let mut c = PartitionConfig::for_tier(ServiceTier::Byok(ByokTier::Entry200));
        c.api_providers.rest = true;
        c.ska = LicensedOption {
            licensed: true,
            enabled: true,
        };
        c.key_export = KeyExport::WrappedAndPlain;
        c.ip_allow_list = IpAllowList::new(vec![
            IpNetwork::host("192.0.2.7".parse().unwrap()),
            "10.0.0.0/8".parse().unwrap(),
            "2001:db8::/48".parse().unwrap(),
        ])
        .unwrap();
        c.revision = 41;
        let bytes = postcard::to_stdvec(&c).unwrap();
        assert_eq!(postcard::from_bytes::<PartitionConfig>(&bytes).unwrap(), c);
    }

    #[test]
    fn config_with_over_long_allow_list_is_refused_on_deserialise() {
        // The same shape as `PartitionConfig`, with an unchecked list in the allow-list's place.
        #[derive(Serialize)]
        struct Hostile {
            api_providers: ApiProviders,
            ska: LicensedOption,
            crypto_currency: LicensedOption,
            key_import: bool,
            key_export: KeyExport,
            key_invalidation: bool,
            read_only: bool,
            session_objects: bool,
            object_destruction: bool,
            object_usage: bool,
            ip_allow_list: Vec<IpNetwork>,
            device_so_access: bool,
            quota: Quota,
            revision: u64,
        }
        let c = PartitionConfig::for_tier(ServiceTier::Economy);
        let hostile = |n: u32| Hostile {
            api_providers: c.api_providers,
            ska: c.ska,
            crypto_currency: c.crypto_currency,
            key_import: c.key_import,
            key_export: c.key_export,
            key_invalidation: c.key_invalidation,
            read_only: c.read_only,
            session_objects: c.session_objects,
            object_destruction: c.object_destruction,
            object_usage: c.object_usage,
            ip_allow_list: (0..n)
                .map(|i| IpNetwork::host(std::net::Ipv4Addr::from(i).into()))
                .collect(),
            device_so_access: c.device_so_access,
            quota: c.quota,
            revision: c.revision,
        };
        let ok = postcard::to_stdvec(&hostile(256)).unwrap();
        assert_eq!(
            postcard::from_bytes::<PartitionConfig>(&ok)
                .unwrap()
                .ip_allow_list
                .len(),
            256
        );
        let bad = postcard::to_stdvec(&hostile(257)).unwrap();
        assert!(postcard::from_bytes::<PartitionConfig>(&bad).is_err());
    }
}
