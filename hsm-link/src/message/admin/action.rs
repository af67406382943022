//! The actions the role table allows or refuses, in their wire order.

use super::*;

/// Operations, as the role/permission table names them.
///
/// Not `#[non_exhaustive]`: the HSM's table and its tests name every action ([`Action::ALL`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Action {
    /// Read the configuration.
    ViewConfig,
    /// Change the configuration.
    ChangeConfig,
    /// Read usage.
    ViewUsage,
    /// List keys and the bin.
    ListKeys,
    /// Restore a key from the bin.
    RestoreKey,
    /// Purge a key from the bin.
    PurgeKey,
    /// Reset the application's credentials.
    ResetCredentials,
    /// Read the card sets.
    ViewCardSets,
    /// Register a card set.
    RegisterCardSet,
    /// Read the log.
    ReadLog,
    /// Export the log.
    ExportLog,
    /// Confirm a log export.
    ConfirmExport,
    /// Mark a key as a trusted wrapping key (or take the mark away).
    TrustKey,
    /// Back up the partition.
    Backup,
    /// Restore the partition from a backup.
    Restore,
    /// List the pinned terminals.
    ListTerminals,
    /// Revoke a pinned terminal.
    RevokeTerminal,
    /// Issue a management pairing code.
    IssuePairingCode,
}

impl Action {
    /// Every action, so that a role table and its tests cover each one.
    pub const ALL: [Action; 18] = [
        Action::ViewConfig,
        Action::ChangeConfig,
        Action::ViewUsage,
        Action::ListKeys,
        Action::RestoreKey,
        Action::PurgeKey,
        Action::ResetCredentials,
        Action::ViewCardSets,
        Action::RegisterCardSet,
        Action::ReadLog,
        Action::ExportLog,
        Action::ConfirmExport,
        Action::TrustKey,
        Action::Backup,
        Action::Restore,
        Action::ListTerminals,
        Action::RevokeTerminal,
        Action::IssuePairingCode,
    ];

    /// The action's name in logs and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::ViewConfig => "view the configuration",
            Action::ChangeConfig => "change the configuration",
            Action::ViewUsage => "view usage",
            Action::ListKeys => "list keys",
            Action::RestoreKey => "restore a key from the bin",
            Action::PurgeKey => "purge a key from the bin",
            Action::ResetCredentials => "reset the application's credentials",
            Action::ViewCardSets => "view card sets",
            Action::RegisterCardSet => "register a card set",
            Action::ReadLog => "read the log",
            Action::ExportLog => "export the log",
            Action::ConfirmExport => "confirm a log export",
            Action::TrustKey => "mark a wrapping key trusted",
            Action::Backup => "back up the partition",
            Action::Restore => "restore the partition from a backup",
            Action::ListTerminals => "list the paired terminals",
            Action::RevokeTerminal => "revoke a paired terminal",
            Action::IssuePairingCode => "issue a pairing code",
        }
    }
}

// A new action does not compile until it has its place in `Action::ALL`: `place` names every
// variant, and each must sit at its place.
const _: () = {
    const fn place(action: Action) -> usize {
        match action {
            Action::ViewConfig => 0,
            Action::ChangeConfig => 1,
            Action::ViewUsage => 2,
            Action::ListKeys => 3,
            Action::RestoreKey => 4,
            Action::PurgeKey => 5,
            Action::ResetCredentials => 6,
            Action::ViewCardSets => 7,
            Action::RegisterCardSet => 8,
            Action::ReadLog => 9,
            Action::ExportLog => 10,
            Action::ConfirmExport => 11,
            Action::TrustKey => 12,
            Action::Backup => 13,
            Action::Restore => 14,
            Action::ListTerminals => 15,
            Action::RevokeTerminal => 16,
            Action::IssuePairingCode => 17,
        }
    }
    let mut i = 0;
    while i < Action::ALL.len() {
        assert!(place(Action::ALL[i]) == i, "Action::ALL out of order");
        i += 1;
    }
};

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
