//! Who acted: a role and the named holders who took part.

use serde::{Deserialize, Serialize};

/// The roles of seed 002, section 3, as the log records them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Role {
    /// The application's technical user (API data interface user, seed 002 §3.1a).
    TechnicalUser,
    /// Partition Security Officers acting as a quorum of their card set.
    Pso,
    /// Partition auditors (read-only) acting as a quorum of their card set.
    Auditor,
    /// Device Security Officers of the HSM operator, always at least two people.
    DeviceSo,
    /// The HSM owner's set-up role ("Genesis"), acting through `tessera-hsm` on the HSM itself.
    Genesis,
    /// A terminal that has not logged in (pairing, refused logins).
    Unauthenticated,
}

impl Role {
    /// The role's name as it appears in logs and on screen.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::TechnicalUser => "technical-user",
            Role::Pso => "pso",
            Role::Auditor => "auditor",
            Role::DeviceSo => "device-so",
            Role::Genesis => "genesis",
            Role::Unauthenticated => "unauthenticated",
        }
    }

    /// The role with this log name ([`Role::as_str`]), if there is one.
    pub fn from_name(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// Every role, in declaration order.
    pub const ALL: [Role; 6] = [
        Role::TechnicalUser,
        Role::Pso,
        Role::Auditor,
        Role::DeviceSo,
        Role::Genesis,
        Role::Unauthenticated,
    ];
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The actor of a log entry: a role and the holders whose cards (or credentials) took part.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The role the holders acted in.
    pub role: Role,
    /// The named holders, in the order their cards signed; empty for the technical user.
    pub holders: Vec<String>,
}

impl Actor {
    /// An actor in `role` with the given holders.
    pub fn new<I, S>(role: Role, holders: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Actor {
            role,
            holders: holders.into_iter().map(Into::into).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_are_distinct() {
        let all = Role::ALL;
        let names: std::collections::BTreeSet<_> = all.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), all.len());
        assert_eq!(Role::DeviceSo.to_string(), "device-so");
    }

    /// Fails to compile when a role is added: add the new role to `Role::ALL` too, or entries
    /// naming it cannot be read back.
    fn position(role: Role) -> usize {
        match role {
            Role::TechnicalUser => 0,
            Role::Pso => 1,
            Role::Auditor => 2,
            Role::DeviceSo => 3,
            Role::Genesis => 4,
            Role::Unauthenticated => 5,
        }
    }

    #[test]
    fn all_lists_every_role() {
        for (i, role) in Role::ALL.into_iter().enumerate() {
            assert_eq!(position(role), i);
        }
    }

    #[test]
    fn role_names_parse_back() {
        for role in Role::ALL {
            assert_eq!(Role::from_name(role.as_str()), Some(role));
        }
        assert_eq!(Role::from_name("PSO"), None);
        assert_eq!(Role::from_name("Pso"), None);
        assert_eq!(Role::from_name(""), None);
    }
}
