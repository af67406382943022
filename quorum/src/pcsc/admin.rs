//! The card's administration: a new card's keys generated on it, its holder and PINs set.

use super::*;

impl PcscAdmin {
    /// The card's identity and public keys, as of the last change.
    pub fn info(&self) -> CardInfo {
        self.state.info.clone()
    }

    /// The reader this card is in.
    pub fn reader(&self) -> &str {
        &self.conn.reader
    }

    /// Sets the algorithm attributes: Ed25519 (EdDSA) for the signing slot, Curve25519 (ECDH)
    /// for the decryption slot. Keys already in those slots become unusable.
    pub fn set_ecc_algorithms(&mut self) -> Result<(), QuorumError> {
        let result = {
            let mut tx = self.conn.tx()?;
            let result = set_ecc_algorithms(&mut tx);
            refresh_after(&mut tx, result, None, Reread::All)
        };
        self.refresh(result)
    }

    /// Sets the ECC algorithm attributes, then generates an Ed25519 signing key and an X25519
    /// decryption key **on the card** (GENERATE ASYMMETRIC KEY PAIR), storing each key's
    /// creation time and OpenPGP v4 fingerprint beside it. Replaces any earlier keys (a share
    /// sealed to the old decryption key no longer opens).
    pub fn generate_keys(&mut self) -> Result<GeneratedKeys, QuorumError> {
        let (generated, state) = {
            let mut tx = self.conn.tx()?;
            let generated = generate_keys(&mut tx).map_err(verified_error);
            let _ = tx.invalidate_cache();
            (generated, read_state(&mut tx).ok())
        };
        if let Some(state) = state {
            self.state = state;
        }
        let generated = generated?;
        if generated.signing_public != self.state.info.signing_public
            || generated.decryption_public != self.state.info.decryption_public
        {
            return Err(CardError::Backend(
                "the card does not report the keys it just generated".to_owned(),
            )
            .into());
        }
        Ok(generated)
    }

    /// Sets the cardholder name (the OpenPGP name DO): printable ASCII, 1 to 39 characters.
    /// OpenPGP suggests the form `Surname<<Given<Names`; this stores the text as given.
    pub fn set_holder(&mut self, name: &str) -> Result<(), QuorumError> {
        check_holder(name)?;
        if !name.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(QuorumError::CardLabel {
                field: "holder",
                reason: "an OpenPGP card stores printable ASCII characters only",
            });
        }
        if name.len() > MAX_CARD_HOLDER_LEN {
            return Err(QuorumError::CardLabel {
                field: "holder",
                reason: "an OpenPGP card stores at most 39 characters",
            });
        }
        let result = {
            let mut tx = self.conn.tx()?;
            let result = tx
                .as_admin_card(None)
                .and_then(|mut admin| admin.set_cardholder_name(name));
            refresh_after(&mut tx, result, None, Reread::All)
        };
        self.refresh(result)
    }

    /// Changes the admin PIN from the one verified to `new` (at least
    /// [`MIN_ADMIN_PIN_LEN`] characters). Refuses the factory default.
    pub fn change_admin_pin(&mut self, new: &Pin) -> Result<(), QuorumError> {
        if new.expose() == FACTORY_ADMIN_PIN {
            return Err(CardError::PinFormat {
                reason: "the new admin PIN is the factory default",
            }
            .into());
        }
        self.change_admin_pin_to(new)
    }

    /// Like [`PcscAdmin::change_admin_pin`], but allows the factory default: for tests that
    /// restore a card, and for handing a card back.
    pub fn restore_factory_admin_pin(&mut self) -> Result<(), QuorumError> {
        self.change_admin_pin_to(&Pin::from_slice(FACTORY_ADMIN_PIN))
    }

    pub(super) fn change_admin_pin_to(&mut self, new: &Pin) -> Result<(), QuorumError> {
        let old = pin_secret(&self.admin_pin, PinKind::Admin, u8::MAX)?;
        let new_secret = pin_secret(new, PinKind::Admin, self.state.pw3_max_len)?;
        let result = {
            let mut tx = self.conn.tx()?;
            let result = tx.change_admin_pin(old, new_secret);
            refresh_after(&mut tx, result, Some(PinKind::Admin), Reread::Pins)
        };
        self.refresh(result)?;
        self.admin_pin = Pin::from_slice(new.expose());
        Ok(())
    }

    /// Sets the user PIN to `new` and its retry counter back to full (RESET RETRY COUNTER with
    /// the admin PIN): this also unblocks a blocked user PIN. Data the card keeps under the user
    /// PIN (the share object) stays readable with the new PIN.
    pub fn set_user_pin(&mut self, new: &Pin) -> Result<(), QuorumError> {
        let new = pin_secret(new, PinKind::User, self.state.pw1_max_len)?;
        let result = {
            let mut tx = self.conn.tx()?;
            let result = tx
                .as_admin_card(None)
                .and_then(|mut admin| admin.reset_user_pin(new));
            refresh_after(&mut tx, result, None, Reread::All)
        };
        self.refresh(result)
    }

    /// Sets the resetting code (which unblocks the user PIN without the admin PIN, see
    /// [`PcscCard::unblock_user_pin`]) and gives it a full retry counter.
    pub fn set_reset_code(&mut self, code: &Pin) -> Result<(), QuorumError> {
        let code = pin_secret(code, PinKind::ResetCode, u8::MAX)?;
        let result = {
            let mut tx = self.conn.tx()?;
            let result = tx
                .as_admin_card(None)
                .and_then(|mut admin| admin.set_resetting_code(code));
            refresh_after(&mut tx, result, None, Reread::Pins)
        };
        self.refresh(result)
    }

    /// Ends administration: resets the card (so it forgets the admin PIN), opens it again in
    /// the same reader and returns it unverified.
    pub fn finish(self) -> Result<PcscCard, CardError> {
        let reader = self.conn.reader.clone();
        drop(self);
        PcscCard::open(&reader)
    }

    pub(super) fn refresh(
        &mut self,
        result: (Result<(), CardError>, Refresh),
    ) -> Result<(), QuorumError> {
        let (result, refresh) = result;
        self.state.update(refresh);
        Ok(result?)
    }
}

pub(super) fn set_ecc_algorithms(
    tx: &mut openpgp_card::Card<Transaction<'_>>,
) -> Result<(), openpgp_card::Error> {
    let mut admin = tx.as_admin_card(None)?;
    admin.set_algorithm(KeyType::Signing, AlgoSimple::Curve25519)?;
    admin.set_algorithm(KeyType::Decryption, AlgoSimple::Curve25519)
}

pub(super) fn generate_keys(
    tx: &mut openpgp_card::Card<Transaction<'_>>,
) -> Result<GeneratedKeys, openpgp_card::Error> {
    set_ecc_algorithms(tx)?;
    let mut admin = tx.as_admin_card(None)?;
    let (signing, created) = admin.generate_key(fingerprint::from_public_key, KeyType::Signing)?;
    let (decryption, decryption_created) =
        admin.generate_key(fingerprint::from_public_key, KeyType::Decryption)?;
    let point = |key: &PublicKeyMaterial| match key {
        PublicKeyMaterial::E(ecc) => fingerprint::native_point(ecc.data()),
        PublicKeyMaterial::R(_) => None,
    };
    let (Some(signing_public), Some(decryption_public)) = (point(&signing), point(&decryption))
    else {
        return Err(openpgp_card::Error::ParseError(
            "the card returned a generated public key that is not a 25519 point".to_owned(),
        ));
    };
    Ok(GeneratedKeys {
        signing_public,
        decryption_public,
        signing_fingerprint: fingerprint::ed25519(&signing_public, created.get()),
        decryption_fingerprint: fingerprint::cv25519(&decryption_public, decryption_created.get()),
        created: created.get(),
    })
}
