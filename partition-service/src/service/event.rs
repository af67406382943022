//! A log entry in the making: who did what to which object, and how it ended.

use super::*;

/// One logged event, before it is chained.
pub(crate) struct Event {
    pub(crate) actor: Actor,
    pub(crate) operation: KnownOperation,
    pub(crate) object: Option<String>,
    pub(crate) outcome: Outcome,
    pub(crate) details: Vec<(&'static str, String)>,
    /// Administrative events are followed by a signed checkpoint.
    pub(crate) administrative: bool,
}

impl Event {
    pub(crate) fn new(actor: Actor, operation: KnownOperation) -> Self {
        Event {
            actor,
            operation,
            object: None,
            outcome: Outcome::Ok,
            details: Vec::new(),
            administrative: true,
        }
    }

    pub(crate) fn object(mut self, object: impl Into<String>) -> Self {
        self.object = Some(object.into());
        self
    }

    pub(crate) fn refused(mut self, reason: impl std::fmt::Display) -> Self {
        self.outcome = Outcome::refused(truncate(reason.to_string()));
        self
    }

    pub(crate) fn failed(mut self, reason: impl std::fmt::Display) -> Self {
        self.outcome = Outcome::failed(truncate(reason.to_string()));
        self
    }

    pub(crate) fn detail(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.details.push((key, truncate(value.into())));
        self
    }

    /// An application event: checkpointed by count, not after each one.
    pub(crate) fn application(mut self) -> Self {
        self.administrative = false;
        self
    }
}

pub(super) fn truncate(mut text: String) -> String {
    let max = audit_log::MAX_REASON_LEN.min(audit_log::MAX_DETAIL_VALUE_LEN);
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

/// The actor for the HSM owner acting through `tessera-hsm`.
pub fn genesis() -> Actor {
    Actor::new(Role::Genesis, Vec::<String>::new())
}
