//! Resetting the application's credentials: a new setup password for the technical user. The
//! flow is one short method here (the store work is `Hsm::reset_credentials`); it has its own
//! file so that a reader finds it by the flow's name.

use hsm_link::message::{Action, AdminResponse, NewCredentials};
use hsm_link::server::SessionContext;

use super::session::AdminSession;
use crate::service::ServiceError;

/// How long a new setup password stays valid (seed 002: 72 hours).
pub const SETUP_PASSWORD_LIFETIME_S: u64 = 72 * 3600;

impl AdminSession {
    pub(super) fn reset_credentials(
        &self,
        ctx: &SessionContext,
    ) -> Result<AdminResponse, ServiceError> {
        self.check(ctx, Action::ResetCredentials)?;
        let (password, expires) = self.hsm.reset_credentials(&ctx.partition, self.actor())?;
        Ok(AdminResponse::Credentials(NewCredentials {
            setup_password: password.to_string(),
            expires_unix: expires,
        }))
    }
}
