//! The exclusive PC/SC connection and what is read from the card when it opens or after a
//! PIN is verified (its holder, serial, keys and PIN tries).

use super::*;

/// The PC/SC connection, kept for the card's whole life here.
pub(super) struct Connection {
    pub(super) reader: String,
    pub(super) card: openpgp_card::Card<Open>,
}

/// What the terminal knows about the card between transactions.
#[derive(Clone)]
pub(super) struct CardState {
    pub(super) info: CardInfo,
    pub(super) has_signing_key: bool,
    pub(super) has_decryption_key: bool,
    pub(super) pw1_max_len: u8,
    pub(super) pw3_max_len: u8,
    pub(super) pw3_retries_left: u8,
    pub(super) sign_pin_valid_once: bool,
    pub(super) max_special_do_len: usize,
}

impl Connection {
    pub(super) fn open(reader: &str) -> Result<Connection, CardError> {
        let name = CString::new(reader).map_err(|_| {
            CardError::Backend("a reader name may not contain a NUL character".to_owned())
        })?;
        let context = establish()?;
        let handle = context
            .connect(&name, pcsc::ShareMode::Exclusive, pcsc::Protocols::ANY)
            .map_err(|e| match e {
                pcsc::Error::NoSmartcard | pcsc::Error::RemovedCard => CardError::Removed,
                pcsc::Error::UnknownReader | pcsc::Error::ReaderUnavailable => {
                    CardError::Backend(format!("there is no card reader named \"{reader}\""))
                }
                pcsc::Error::SharingViolation => CardError::Backend(format!(
                    "the card in \"{reader}\" is in use by another program (close it, e.g. \
                     gpg-connect-agent 'scd killscd' /bye, and try again)"
                )),
                e => CardError::Backend(format!("cannot connect to the card in \"{reader}\": {e}")),
            })?;
        let backend = PcscBackend::from_pcsc_card(&name, pcsc::ShareMode::Exclusive, handle)
            .map_err(|e| smartcard_error(&e))?;
        let card = openpgp_card::Card::<Open>::new(backend).map_err(|e| match e {
            openpgp_card::Error::CardStatus(StatusBytes::FileOrApplicationNotFound) => {
                CardError::Backend(format!(
                    "the card in \"{reader}\" has no OpenPGP card application"
                ))
            }
            e => card_error(e),
        })?;
        Ok(Connection {
            reader: reader.to_owned(),
            card,
        })
    }

    /// A short PC/SC transaction (it also reads the application related data afresh).
    pub(super) fn tx(&mut self) -> Result<openpgp_card::Card<Transaction<'_>>, CardError> {
        self.card.transaction().map_err(card_error)
    }

    pub(super) fn read_state(&mut self) -> Result<CardState, CardError> {
        let mut tx = self.tx()?;
        read_state(&mut tx).map_err(card_error)
    }
}

/// A PC/SC context, or an error that says whether pcscd is running.
pub(super) fn establish() -> Result<pcsc::Context, CardError> {
    pcsc::Context::establish(pcsc::Scope::User).map_err(|e| match e {
        pcsc::Error::NoService | pcsc::Error::ServiceStopped => CardError::Backend(
            "the PC/SC service (pcscd) is not running; start it and try again".to_owned(),
        ),
        e => CardError::Backend(format!("cannot reach the PC/SC service: {e}")),
    })
}

/// The names of the card readers PC/SC knows, in its order, exactly as [`PcscCard::open`] takes
/// them; empty when there is none. Connects to no reader and touches no card. (A name that is
/// not UTF-8 is shown with replacement characters, and then opens no reader.)
pub fn list_readers() -> Result<Vec<String>, CardError> {
    let context = establish()?;
    match context.list_readers_owned() {
        Ok(names) => Ok(names
            .iter()
            .map(|name| name.to_string_lossy().into_owned())
            .collect()),
        Err(pcsc::Error::NoReadersAvailable) => Ok(Vec::new()),
        Err(e) => Err(CardError::Backend(format!(
            "cannot list the card readers: {e}"
        ))),
    }
}

pub(super) fn read_state(
    tx: &mut openpgp_card::Card<Transaction<'_>>,
) -> Result<CardState, openpgp_card::Error> {
    let aid = tx.application_identifier()?;
    let capabilities = tx.extended_capabilities()?;
    let pw_status = tx.pw_status_bytes()?;
    let name = tx.cardholder_name()?;
    let signing = slot_key(tx, KeyType::Signing, EccType::EdDSA, Curve::Ed25519)?;
    let decryption = slot_key(tx, KeyType::Decryption, EccType::ECDH, Curve::Curve25519)?;
    let info = CardInfo {
        holder: (!name.is_empty()).then_some(name),
        serial: format!("{:04X}:{:08X}", aid.manufacturer(), aid.serial()),
        signing_public: signing.unwrap_or([0; 32]),
        decryption_public: decryption.unwrap_or([0; 32]),
        soft: false,
        pin_retries_left: Some(pw_status.err_count_pw1()),
    };
    Ok(CardState {
        info,
        has_signing_key: signing.is_some(),
        has_decryption_key: decryption.is_some(),
        pw1_max_len: pw_status.pw1_max_len(),
        pw3_max_len: pw_status.pw3_max_len(),
        pw3_retries_left: pw_status.err_count_pw3(),
        sign_pin_valid_once: pw_status.pw1_cds_valid_once(),
        max_special_do_len: capabilities
            .max_len_special_do()
            .map_or(MAX_SHARE_OBJECT_LEN, usize::from),
    })
}

/// The public key in `slot` if the slot is set to `ecc_type` on `curve` and holds a key (the
/// card lists a fingerprint for it).
pub(super) fn slot_key(
    tx: &mut openpgp_card::Card<Transaction<'_>>,
    slot: KeyType,
    ecc_type: EccType,
    curve: Curve,
) -> Result<Option<[u8; 32]>, openpgp_card::Error> {
    let AlgorithmAttributes::Ecc(attributes) = tx.algorithm_attributes(slot)? else {
        return Ok(None);
    };
    if attributes.ecc_type() != ecc_type || *attributes.curve() != curve {
        return Ok(None);
    }
    if tx.fingerprint(slot)?.is_none() {
        return Ok(None);
    }
    match tx.public_key_material(slot) {
        Ok(PublicKeyMaterial::E(ecc)) => Ok(fingerprint::native_point(ecc.data())),
        Ok(PublicKeyMaterial::R(_)) => Ok(None),
        Err(openpgp_card::Error::CardStatus(StatusBytes::ReferencedDataNotFound)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// What is read again after an operation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Reread {
    /// The PW status bytes (after PIN operations).
    Pins,
    /// Everything in [`CardState`] (after a change to keys or holder).
    All,
}

/// What was read again after an operation (nothing if the card did not answer).
pub(super) enum Refresh {
    Nothing,
    Pins(PWStatusBytes),
    All(Box<CardState>),
}

impl CardState {
    pub(super) fn update(&mut self, refresh: Refresh) {
        match refresh {
            Refresh::Nothing => {}
            Refresh::Pins(status) => {
                self.info.pin_retries_left = Some(status.err_count_pw1());
                self.pw3_retries_left = status.err_count_pw3();
                self.sign_pin_valid_once = status.pw1_cds_valid_once();
            }
            Refresh::All(state) => *self = *state,
        }
    }
}

/// Reads the card's PIN counters (or its whole state) afresh — the cached application data is
/// stale after a VERIFY or a PIN change — and maps the operation's error. A card that refuses a PIN without counting in its
/// answer (`6982` or `6300` instead of `63Cx`; opcard answers a wrong old PIN in CHANGE
/// REFERENCE DATA with `6300`) gets the count from the PW status bytes just read.
pub(super) fn refresh_after(
    tx: &mut openpgp_card::Card<Transaction<'_>>,
    result: Result<(), openpgp_card::Error>,
    presents: Option<PinKind>,
    reread: Reread,
) -> (Result<(), CardError>, Refresh) {
    let _ = tx.invalidate_cache();
    let refresh = match reread {
        Reread::Pins => tx.pw_status_bytes().map_or(Refresh::Nothing, Refresh::Pins),
        Reread::All => read_state(tx).map_or(Refresh::Nothing, |s| Refresh::All(Box::new(s))),
    };
    let result = result.map_err(|e| match (e, presents) {
        (
            openpgp_card::Error::CardStatus(
                StatusBytes::SecurityStatusNotSatisfied | StatusBytes::UnknownStatus(0x63, 0x00),
            ),
            Some(kind),
        ) => {
            let retries_left = match (&refresh, kind) {
                (Refresh::Pins(status), PinKind::User) => Some(status.err_count_pw1()),
                (Refresh::Pins(status), PinKind::Admin) => Some(status.err_count_pw3()),
                (Refresh::All(state), PinKind::User) => state.info.pin_retries_left,
                (Refresh::All(state), PinKind::Admin) => Some(state.pw3_retries_left),
                (Refresh::Pins(status), PinKind::ResetCode) => Some(status.err_count_rc()),
                (Refresh::All(_), PinKind::ResetCode) => None,
                (Refresh::Nothing, _) => None,
            };
            match retries_left {
                Some(0) => CardError::Blocked,
                retries_left => CardError::WrongPin { retries_left },
            }
        }
        (e, _) => verified_error(e),
    });
    (result, refresh)
}
