//! The soft card file's format (`TSSC`, version 1): the header, read and checked before
//! anything is decrypted, and the sealed secrets.

use super::*;

/// The public part of a soft card file: everything before the ciphertext.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Header {
    pub(super) params: Argon2Params,
    pub(super) salt: [u8; SALT_LEN],
    pub(super) nonce: [u8; NONCE_LEN],
    pub(super) holder: Option<String>,
    pub(super) serial: String,
    pub(super) signing_public: [u8; 32],
    pub(super) decryption_public: [u8; 32],
}

impl Header {
    pub(super) fn encode(&self) -> Vec<u8> {
        let holder = self.holder.as_deref().unwrap_or("").as_bytes();
        let serial = self.serial.as_bytes();
        let mut out = Vec::with_capacity(FIXED_HEADER_LEN + 2 + holder.len() + serial.len() + 64);
        out.extend_from_slice(&SOFT_CARD_MAGIC);
        out.push(SOFT_CARD_VERSION_V1);
        out.push(if self.params.test_card {
            FLAG_TEST_CARD
        } else {
            0
        });
        out.extend_from_slice(&self.params.m_cost_kib.to_be_bytes());
        out.extend_from_slice(&self.params.t_cost.to_be_bytes());
        out.extend_from_slice(&self.params.p_cost.to_be_bytes());
        out.extend_from_slice(&self.salt);
        out.extend_from_slice(&self.nonce);
        // Both are at most 64 bytes (checked at creation and when parsing).
        out.push(holder.len() as u8);
        out.extend_from_slice(holder);
        out.push(serial.len() as u8);
        out.extend_from_slice(serial);
        out.extend_from_slice(&self.signing_public);
        out.extend_from_slice(&self.decryption_public);
        out
    }

    /// Parses the header; returns it with its length (the associated data's extent).
    pub(super) fn parse(bytes: &[u8]) -> Result<(Header, usize), String> {
        let mut r = Reader { bytes, pos: 0 };
        let magic = r.take(4).ok_or("shorter than a soft card header")?;
        if magic != SOFT_CARD_MAGIC {
            return Err("not a Tessera soft card (the magic bytes are not \"TSSC\")".to_owned());
        }
        let version = r.u8().ok_or("shorter than a soft card header")?;
        if version != SOFT_CARD_VERSION_V1 {
            return Err(format!(
                "soft card version {version} is not supported (this build reads version 1)"
            ));
        }
        let flags = r.u8().ok_or("shorter than a soft card header")?;
        if flags & !FLAG_TEST_CARD != 0 {
            return Err(format!("unknown flags {flags:#04x}"));
        }
        let short = || "shorter than a soft card header".to_owned();
        let params = Argon2Params {
            m_cost_kib: r.u32().ok_or_else(short)?,
            t_cost: r.u32().ok_or_else(short)?,
            p_cost: r.u32().ok_or_else(short)?,
            test_card: flags & FLAG_TEST_CARD != 0,
        };
        let salt = r.array::<SALT_LEN>().ok_or_else(short)?;
        let nonce = r.array::<NONCE_LEN>().ok_or_else(short)?;
        let holder_len = usize::from(r.u8().ok_or_else(short)?);
        let holder = r.take(holder_len).ok_or_else(short)?;
        let holder = if holder.is_empty() {
            None
        } else {
            let holder = std::str::from_utf8(holder).map_err(|_| "the holder is not UTF-8")?;
            check_holder(holder).map_err(|e| e.to_string())?;
            Some(holder.to_owned())
        };
        let serial_len = usize::from(r.u8().ok_or_else(short)?);
        let serial = r.take(serial_len).ok_or_else(short)?;
        let serial = std::str::from_utf8(serial).map_err(|_| "the serial is not ASCII")?;
        check_serial(serial).map_err(|e| e.to_string())?;
        let signing_public = r.array::<32>().ok_or_else(short)?;
        let decryption_public = r.array::<32>().ok_or_else(short)?;
        let header = Header {
            params,
            salt,
            nonce,
            holder,
            serial: serial.to_owned(),
            signing_public,
            decryption_public,
        };
        Ok((header, r.pos))
    }

    pub(super) fn info(&self) -> CardInfo {
        CardInfo {
            holder: self.holder.clone(),
            serial: self.serial.clone(),
            signing_public: self.signing_public,
            decryption_public: self.decryption_public,
            soft: true,
            pin_retries_left: None,
        }
    }
}

/// The soft card header fuzz target's body (see [`crate::fuzzing::soft_card_header`]): parses
/// arbitrary bytes as a soft card file's header and checks what comes out. Must never panic on
/// its own; panics only when an invariant breaks. Returns whether the bytes hold a header.
pub(crate) fn fuzz_header(data: &[u8]) -> bool {
    match Header::parse(data) {
        Ok((header, len)) => {
            assert!(len <= data.len(), "header length {len} beyond the input");
            // The encoding is canonical: every header has exactly one encoding, and the bytes
            // parsed are it (they are the AES-GCM associated data, re-made with `encode`).
            let encoded = header.encode();
            assert_eq!(
                encoded,
                data[..len],
                "the header's encoding is not canonical"
            );
            // What follows the header (the ciphertext) does not change the header.
            let (again, again_len) = Header::parse(&encoded).expect("an encoded header parses");
            assert_eq!((&again, again_len), (&header, len));
            assert!(Header::parse(&data[..len - 1]).is_err());
            // The labels the header carries are the ones creation accepts.
            assert!(check_serial(&header.serial).is_ok());
            if let Some(holder) = &header.holder {
                assert!(check_holder(holder).is_ok());
            }
            assert!(header.info().soft);
            true
        }
        Err(reason) => {
            assert!(!reason.is_empty(), "a refusal without a reason");
            false
        }
    }
}

pub(super) struct Reader<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.array::<4>().map(u32::from_be_bytes)
    }
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }
}

/// The encrypted part of a soft card file.
pub(super) struct Secrets {
    pub(super) signing_seed: Zeroizing<[u8; 32]>,
    pub(super) decryption_secret: Zeroizing<[u8; 32]>,
    pub(super) share_object: Option<Vec<u8>>,
}

impl Secrets {
    pub(super) fn encode(&self) -> Zeroizing<Vec<u8>> {
        let object = self.share_object.as_deref().unwrap_or(&[]);
        let mut out = Zeroizing::new(Vec::with_capacity(SECRETS_LEN + 2 + object.len() + TAG_LEN));
        out.extend_from_slice(self.signing_seed.as_ref());
        out.extend_from_slice(self.decryption_secret.as_ref());
        // At most MAX_SHARE_OBJECT_LEN (512) bytes: checked before every write.
        out.extend_from_slice(&(object.len() as u16).to_be_bytes());
        out.extend_from_slice(object);
        out
    }

    pub(super) fn decode(plaintext: &[u8]) -> Result<Secrets, CardError> {
        let corrupt = |reason| CardError::Corrupt { reason };
        if plaintext.len() < SECRETS_LEN + 2 {
            return Err(corrupt("the decrypted part is too short"));
        }
        let mut signing_seed = Zeroizing::new([0u8; 32]);
        let mut decryption_secret = Zeroizing::new([0u8; 32]);
        signing_seed.copy_from_slice(&plaintext[..32]);
        decryption_secret.copy_from_slice(&plaintext[32..64]);
        let len = usize::from(u16::from_be_bytes([plaintext[64], plaintext[65]]));
        let object = &plaintext[66..];
        if len > MAX_SHARE_OBJECT_LEN || object.len() != len {
            return Err(corrupt("the share object's length is wrong"));
        }
        Ok(Secrets {
            signing_seed,
            decryption_secret,
            share_object: (len > 0).then(|| object.to_vec()),
        })
    }
}

/// Draws a fresh nonce into `header`, encrypts `secrets` under `key`, and returns the whole file
/// and the ciphertext.
pub(super) fn seal_file(
    header: &mut Header,
    key: &[u8; 32],
    secrets: &Secrets,
) -> Result<(Vec<u8>, Vec<u8>), QuorumError> {
    getrandom::fill(&mut header.nonce)?;
    let aad = header.encode();
    let mut body = secrets.encode();
    Aes256Gcm::new(&(*key).into())
        .encrypt_in_place(&header.nonce.into(), &aad, &mut *body)
        .map_err(|_| QuorumError::SoftCardFormat {
            path: PathBuf::new(),
            reason: "AES-GCM refused to seal".to_owned(),
        })?;
    let ciphertext = body.to_vec();
    let mut file = aad;
    file.extend_from_slice(&ciphertext);
    Ok((file, ciphertext))
}
