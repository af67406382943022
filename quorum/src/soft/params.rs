//! The passphrase's Argon2id cost: bounded above and below, stored in each file's header.

use super::*;

/// Argon2id parameters for a soft card's passphrase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Argon2Params {
    pub(super) m_cost_kib: u32,
    pub(super) t_cost: u32,
    pub(super) p_cost: u32,
    pub(super) test_card: bool,
}

impl Argon2Params {
    /// 64 MiB, 3 passes, 1 lane: the default and the floor outside tests.
    pub const fn production() -> Self {
        Argon2Params {
            m_cost_kib: MIN_M_COST_KIB,
            t_cost: MIN_T_COST,
            p_cost: 1,
            test_card: false,
        }
    }

    /// Stronger parameters than the floor: memory in KiB, passes and lanes. Refuses anything
    /// below [`Argon2Params::production`] or above the file bounds.
    pub fn new(m_cost_kib: u32, t_cost: u32, p_cost: u32) -> Result<Self, QuorumError> {
        let params = Argon2Params {
            m_cost_kib,
            t_cost,
            p_cost,
            test_card: false,
        };
        params.check(false)?;
        Ok(params)
    }

    /// 64 KiB and one pass: for tests only, so that they run in milliseconds. A card created
    /// with these is flagged as a test card in its file, and [`SoftCard::open`] refuses it.
    /// Production code never calls this.
    pub const fn insecure_for_tests() -> Self {
        Argon2Params {
            m_cost_kib: 64,
            t_cost: 1,
            p_cost: 1,
            test_card: true,
        }
    }

    /// Memory cost in KiB.
    pub fn m_cost_kib(&self) -> u32 {
        self.m_cost_kib
    }

    /// Passes.
    pub fn t_cost(&self) -> u32 {
        self.t_cost
    }

    /// Lanes.
    pub fn p_cost(&self) -> u32 {
        self.p_cost
    }

    /// Whether these are test parameters (below the production floor allowed).
    pub fn is_test_card(&self) -> bool {
        self.test_card
    }

    pub(super) fn check(&self, allow_test: bool) -> Result<(), QuorumError> {
        let refuse = |reason: String| Err(QuorumError::Argon2Params { reason });
        let above = [
            ("memory cost", self.m_cost_kib, MAX_M_COST_KIB, " KiB"),
            ("passes", self.t_cost, MAX_T_COST, ""),
            ("lanes", self.p_cost, MAX_P_COST, ""),
        ];
        if let Some((name, value, max, unit)) = above.into_iter().find(|(_, v, max, _)| v > max) {
            return refuse(format!(
                "Argon2id {name} {value}{unit} is above the {max}{unit} a terminal accepts \
                 (bounds: {MAX_M_COST_KIB} KiB, {MAX_T_COST} passes, {MAX_P_COST} lanes); \
                 create the soft card again with smaller parameters"
            ));
        }
        if self.p_cost == 0 || self.t_cost == 0 || self.m_cost_kib < 8 * self.p_cost {
            return refuse("Argon2 needs at least 1 pass, 1 lane and 8 KiB per lane".to_owned());
        }
        let weak = self.m_cost_kib < MIN_M_COST_KIB || self.t_cost < MIN_T_COST;
        if weak && !(allow_test && self.test_card) {
            return refuse(format!(
                "{} KiB and {} passes is below the floor of {MIN_M_COST_KIB} KiB and \
                 {MIN_T_COST} passes",
                self.m_cost_kib, self.t_cost
            ));
        }
        Ok(())
    }

    pub(super) fn derive_key(&self, passphrase: &[u8], salt: &[u8]) -> Option<Zeroizing<[u8; 32]>> {
        let params =
            argon2::Params::new(self.m_cost_kib, self.t_cost, self.p_cost, Some(32)).ok()?;
        let mut key = Zeroizing::new([0u8; 32]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(passphrase, salt, key.as_mut())
            .ok()?;
        Some(key)
    }
}

impl Default for Argon2Params {
    fn default() -> Self {
        Argon2Params::production()
    }
}
