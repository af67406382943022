//! The operations Tessera's reference HSM logs: one typed list, the canonical name beside each.
//!
//! An entry's `op` field is part of the hashed line, so these names are fixed for good: a
//! renamed variant keeps its string, and the test below pins every string byte for byte. A new
//! operation is a new line in the table; `ALL`, `as_str` and parsing follow from it.

use crate::entry::Operation;

/// Declares [`KnownOperation`] from `Variant => "name"` lines, so the list, the names and
/// [`KnownOperation::ALL`] cannot drift apart.
macro_rules! operations {
    ($($(#[doc = $doc:literal])* $variant:ident => $name:literal,)*) => {
        /// An operation the reference HSM logs, by its canonical name.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum KnownOperation {
            $($(#[doc = $doc])* $variant,)*
        }

        impl KnownOperation {
            /// Every operation, in table order.
            pub const ALL: &'static [KnownOperation] = &[$(KnownOperation::$variant,)*];

            /// The canonical name, as it appears in the `op` field of a log line.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(KnownOperation::$variant => $name,)*
                }
            }
        }
    };
}

operations! {
    /// A partition was created (by the HSM owner).
    PartitionCreate => "partition.create",
    /// Whether soft cards may join card sets was switched (by the HSM owner).
    HsmSoftCards => "hsm.soft-cards",
    /// A partition's licences were changed (by the HSM owner).
    ConfigLicences => "config.licences",
    /// The configuration was read.
    ConfigView => "config.view",
    /// The configuration was changed.
    ConfigChange => "config.change",
    /// Usage was read.
    UsageView => "usage.view",
    /// A pairing code was issued.
    PairingIssue => "pairing.issue",
    /// A pairing attempt failed.
    PairingAttempt => "pairing.attempt",
    /// A terminal was paired.
    PairingComplete => "pairing.complete",
    /// An officer quorum logged in (or a login was refused).
    Login => "login",
    /// A card-set ceremony was opened.
    CeremonyBegin => "ceremony.begin",
    /// Card sets were read.
    CardSetView => "cardset.view",
    /// A card set was registered.
    CardSetRegister => "cardset.register",
    /// A card holder drilled their share.
    QuorumDrill => "quorum.drill",
    /// The application's credentials were reset.
    CredentialsReset => "credentials.reset",
    /// The application traded its setup password for its permanent secret.
    CredentialsTrade => "credentials.trade",
    /// The application connected (or was refused).
    AppConnect => "app.connect",
    /// Keys (or the bin) were listed.
    KeyList => "key.list",
    /// A key was generated.
    KeyGenerate => "key.generate",
    /// A key was used to sign.
    KeySign => "key.sign",
    /// A key was used to verify.
    KeyVerify => "key.verify",
    /// A key was used to encrypt.
    KeyEncrypt => "key.encrypt",
    /// A key was used to decrypt.
    KeyDecrypt => "key.decrypt",
    /// A key was wrapped under another.
    KeyWrap => "key.wrap",
    /// A wrapped key was unwrapped into the partition.
    KeyUnwrap => "key.unwrap",
    /// A key was exported in plain.
    KeyExport => "key.export",
    /// A key was imported in plain.
    KeyImport => "key.import",
    /// A key was deleted (moved to the bin, or gone if a session object).
    KeyDelete => "key.delete",
    /// A key was restored from the bin.
    KeyRestore => "key.restore",
    /// A key was purged from the bin.
    KeyPurge => "key.purge",
    /// The log was read.
    LogRead => "log.read",
    /// The log was exported.
    LogExport => "log.export",
    /// An export was confirmed.
    LogConfirm => "log.confirm",
    /// The full-log policy was set.
    LogPolicy => "log.policy",
    /// Officers marked a key as a trusted wrapping key, or took the mark away.
    KeyTrust => "key.trust",
    /// The partition was sealed into a backup (the entry carries its digest).
    BackupCreate => "backup.create",
    /// A backup was decrypted and checked at the HSM, changing nothing.
    BackupDryRun => "backup.dry-run",
    /// The partition was restored from a backup.
    BackupRestore => "backup.restore",
    /// The pinned terminals were listed.
    TerminalList => "terminal.list",
    /// A pinned terminal was revoked (unpinned; its sessions ended).
    TerminalRevoke => "terminal.revoke",
}

impl KnownOperation {
    /// The operation named `name`, if it is one of these.
    pub fn from_name(name: &str) -> Option<KnownOperation> {
        KnownOperation::ALL
            .iter()
            .copied()
            .find(|op| op.as_str() == name)
    }
}

impl std::fmt::Display for KnownOperation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<KnownOperation> for Operation {
    fn from(op: KnownOperation) -> Operation {
        Operation::new(op.as_str()).expect("every known operation name is valid (tested)")
    }
}

impl PartialEq<KnownOperation> for Operation {
    fn eq(&self, other: &KnownOperation) -> bool {
        self.as_str() == other.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names as logs hold them today: a change here breaks every stored log's hashes.
    const PINNED: &[&str] = &[
        "partition.create",
        "hsm.soft-cards",
        "config.licences",
        "config.view",
        "config.change",
        "usage.view",
        "pairing.issue",
        "pairing.attempt",
        "pairing.complete",
        "login",
        "ceremony.begin",
        "cardset.view",
        "cardset.register",
        "quorum.drill",
        "credentials.reset",
        "credentials.trade",
        "app.connect",
        "key.list",
        "key.generate",
        "key.sign",
        "key.verify",
        "key.encrypt",
        "key.decrypt",
        "key.wrap",
        "key.unwrap",
        "key.export",
        "key.import",
        "key.delete",
        "key.restore",
        "key.purge",
        "log.read",
        "log.export",
        "log.confirm",
        "log.policy",
        "key.trust",
        "backup.create",
        "backup.dry-run",
        "backup.restore",
        "terminal.list",
        "terminal.revoke",
    ];

    #[test]
    fn names_are_pinned_byte_for_byte() {
        let names: Vec<&str> = KnownOperation::ALL.iter().map(|op| op.as_str()).collect();
        assert_eq!(names, PINNED);
    }

    #[test]
    fn every_name_is_a_valid_distinct_operation_and_parses_back() {
        for (i, op) in KnownOperation::ALL.iter().enumerate() {
            assert_eq!(Operation::from(*op).as_str(), op.as_str());
            assert_eq!(KnownOperation::from_name(op.as_str()), Some(*op));
            assert_eq!(op.to_string(), op.as_str());
            assert!(
                KnownOperation::ALL[..i]
                    .iter()
                    .all(|o| o.as_str() != op.as_str()),
                "{op} named twice"
            );
        }
    }

    #[test]
    fn unknown_names_do_not_parse() {
        for name in ["", "Login", "key", "key.generate ", "log.prune", "admin"] {
            assert_eq!(KnownOperation::from_name(name), None, "{name:?}");
        }
        assert_eq!(Operation::new("key.sign").unwrap(), KnownOperation::KeySign);
    }
}
