//! The application protocol's messages: requests, responses and errors.
//!
//! Variants are encoded by their position (postcard): append new ones at the end, never
//! reorder, and raise [`APP_PROTOCOL_VERSION`](super::APP_PROTOCOL_VERSION) when a change
//! breaks an old peer.

use hsm_link::domain::{
    KeyAttributes, KeyId, KeyKind, KeyLabel, KeyObjectSummary, Parameter, PartitionId,
};
use serde::{Deserialize, Serialize};

use super::bounds;
use super::secret::{AppAuth, SecretBytes, SecretText};
use super::{MAX_APP_LIST, MAX_APP_MESSAGE};
use crate::access::ApiProvider;

/// A request from the technical user. [`Hello`](AppRequest::Hello) comes first on every
/// connection and only there; every other request is answered by the backend.
///
/// Byte fields are bounded to [`MAX_APP_MESSAGE`] on deserialisation.
#[derive(Debug, Serialize, Deserialize)]
pub enum AppRequest {
    /// Opens the session: which partition, through which API provider, with which credential.
    Hello {
        /// The partition to use.
        partition: PartitionId,
        /// The API provider the application speaks through (each can be switched off).
        provider: ApiProvider,
        /// The setup password or the permanent secret.
        auth: AppAuth,
    },
    /// Generates a key on the HSM.
    Generate {
        /// The key's kind.
        kind: KeyKind,
        /// The key's label.
        label: KeyLabel,
        /// Its access flags.
        attributes: KeyAttributes,
        /// A session object (ephemeral: deleted at the end of the connection, never stored).
        session: bool,
    },
    /// Lists the partition's keys.
    List,
    /// Signs a message.
    Sign {
        /// The signing key.
        id: KeyId,
        /// The message.
        #[serde(
            serialize_with = "bounds::serialize_bytes",
            deserialize_with = "bounds::deserialize_message"
        )]
        message: Vec<u8>,
    },
    /// Verifies a signature.
    Verify {
        /// The key.
        id: KeyId,
        /// The signed message.
        #[serde(
            serialize_with = "bounds::serialize_bytes",
            deserialize_with = "bounds::deserialize_message"
        )]
        message: Vec<u8>,
        /// The signature.
        #[serde(
            serialize_with = "bounds::serialize_bytes",
            deserialize_with = "bounds::deserialize_message"
        )]
        signature: Vec<u8>,
    },
    /// Encrypts.
    Encrypt {
        /// The key.
        id: KeyId,
        /// The plaintext (wiped after use).
        plaintext: SecretBytes,
    },
    /// Decrypts.
    Decrypt {
        /// The key.
        id: KeyId,
        /// The ciphertext.
        #[serde(
            serialize_with = "bounds::serialize_bytes",
            deserialize_with = "bounds::deserialize_message"
        )]
        ciphertext: Vec<u8>,
    },
    /// Wraps (exports) a key under another key.
    Wrap {
        /// The wrapping key.
        wrapping: KeyId,
        /// The key to export.
        target: KeyId,
    },
    /// Unwraps (imports) a wrapped key as a new key object.
    Unwrap {
        /// The wrapping key.
        wrapping: KeyId,
        /// The new key's kind.
        kind: KeyKind,
        /// The new key's label.
        label: KeyLabel,
        /// The new key's access flags.
        attributes: KeyAttributes,
        /// The wrapped key.
        #[serde(
            serialize_with = "bounds::serialize_bytes",
            deserialize_with = "bounds::deserialize_message"
        )]
        blob: Vec<u8>,
    },
    /// Exports a key in plain (the seed's "key extraction").
    ExportPlain {
        /// The key.
        id: KeyId,
    },
    /// Imports a key in plain.
    ImportPlain {
        /// The key's kind.
        kind: KeyKind,
        /// The key's label.
        label: KeyLabel,
        /// Its access flags.
        attributes: KeyAttributes,
        /// The key material (wiped after use).
        material: SecretBytes,
    },
    /// Deletes a key (to the bin while key invalidation is on).
    Delete {
        /// The key.
        id: KeyId,
    },
}

impl AppRequest {
    /// The request's name, for logs and errors: `hello`, `generate`, `list`, `sign`, `verify`,
    /// `encrypt`, `decrypt`, `wrap`, `unwrap`, `export-plain`, `import-plain`, `delete`.
    pub fn name(&self) -> &'static str {
        match self {
            AppRequest::Hello { .. } => "hello",
            AppRequest::Generate { .. } => "generate",
            AppRequest::List => "list",
            AppRequest::Sign { .. } => "sign",
            AppRequest::Verify { .. } => "verify",
            AppRequest::Encrypt { .. } => "encrypt",
            AppRequest::Decrypt { .. } => "decrypt",
            AppRequest::Wrap { .. } => "wrap",
            AppRequest::Unwrap { .. } => "unwrap",
            AppRequest::ExportPlain { .. } => "export-plain",
            AppRequest::ImportPlain { .. } => "import-plain",
            AppRequest::Delete { .. } => "delete",
        }
    }

    /// Whether every field fits the bounds the peer enforces on deserialisation (so the client
    /// refuses an over-long request before sending it).
    pub(super) fn within_bounds(&self) -> bool {
        let fits = |len: usize| len <= MAX_APP_MESSAGE;
        match self {
            AppRequest::Hello { auth, .. } => auth.within_bounds(),
            AppRequest::Sign { message, .. } => fits(message.len()),
            AppRequest::Verify {
                message, signature, ..
            } => fits(message.len()) && fits(signature.len()),
            AppRequest::Encrypt { plaintext, .. } => fits(plaintext.len()),
            AppRequest::Decrypt { ciphertext, .. } => fits(ciphertext.len()),
            AppRequest::Unwrap { blob, .. } => fits(blob.len()),
            AppRequest::ImportPlain { material, .. } => fits(material.len()),
            AppRequest::Generate { .. }
            | AppRequest::List
            | AppRequest::Wrap { .. }
            | AppRequest::ExportPlain { .. }
            | AppRequest::Delete { .. } => true,
        }
    }
}

/// A successful answer. Byte fields are bounded to [`MAX_APP_MESSAGE`], the key list to
/// [`MAX_APP_LIST`] entries, on deserialisation.
#[derive(Debug, Serialize, Deserialize)]
pub enum AppResponse {
    /// The hello was accepted. A traded setup password returns the permanent secret, once.
    Welcome {
        /// The new permanent secret, when a setup password was traded; `None` otherwise.
        permanent_secret: Option<SecretText>,
    },
    /// The key created by generate, unwrap or import.
    Key(KeyObjectSummary),
    /// The partition's keys.
    Keys(#[serde(deserialize_with = "bounds::deserialize_key_list")] Vec<KeyObjectSummary>),
    /// A signature.
    Signature(
        #[serde(
            serialize_with = "bounds::serialize_bytes",
            deserialize_with = "bounds::deserialize_message"
        )]
        Vec<u8>,
    ),
    /// The signature is valid.
    Verified,
    /// A ciphertext.
    Ciphertext(
        #[serde(
            serialize_with = "bounds::serialize_bytes",
            deserialize_with = "bounds::deserialize_message"
        )]
        Vec<u8>,
    ),
    /// A decrypted plaintext.
    Plaintext(SecretBytes),
    /// A wrapped key.
    Wrapped(
        #[serde(
            serialize_with = "bounds::serialize_bytes",
            deserialize_with = "bounds::deserialize_message"
        )]
        Vec<u8>,
    ),
    /// Plain key material.
    Material(SecretBytes),
    /// The key is gone from the application's view.
    Deleted {
        /// It went to the bin (key invalidation on) rather than being destroyed.
        to_bin: bool,
    },
}

impl AppResponse {
    /// Whether every field fits the bounds the client enforces (the listener answers
    /// [`AppError::Internal`] rather than send a response the client would refuse).
    pub(super) fn within_bounds(&self) -> bool {
        let fits = |len: usize| len <= MAX_APP_MESSAGE;
        match self {
            AppResponse::Keys(keys) => keys.len() <= MAX_APP_LIST,
            AppResponse::Signature(b) | AppResponse::Ciphertext(b) | AppResponse::Wrapped(b) => {
                fits(b.len())
            }
            AppResponse::Plaintext(b) | AppResponse::Material(b) => fits(b.len()),
            AppResponse::Welcome { .. }
            | AppResponse::Key(_)
            | AppResponse::Verified
            | AppResponse::Deleted { .. } => true,
        }
    }
}

/// Why the HSM refused a request. Carries no free text: a hostile peer can only choose among
/// these fixed messages and the configuration parameters' fixed labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// A request came before the hello.
    #[error("the first request on an application connection must be the hello")]
    HelloFirst,
    /// Wrong setup password or permanent secret (or too many failures: the HSM does not say).
    #[error("authentication failed")]
    BadCredentials,
    /// The setup password was already traded or has expired.
    #[error(
        "the setup password was already used or has expired: ask a partition security officer for a new one"
    )]
    SetupPasswordExpired,
    /// The API provider the hello names is switched off for this partition.
    #[error("the partition's {} is switched off", .0.label())]
    ProviderDisabled(Parameter),
    /// The partition's configuration refuses the operation.
    #[error("the partition's configuration refuses this: {}", .0.label())]
    Policy(Parameter),
    /// The client's address is not on the partition's IP allow-list.
    #[error("this client's IP address is not on the partition's IP allow-list")]
    AddressNotAllowed,
    /// No such partition on this HSM.
    #[error("no such partition on this HSM")]
    UnknownPartition,
    /// No active key with this id in the partition.
    #[error("no key with id {0} in this partition")]
    NoSuchKey(KeyId),
    /// The key's kind cannot do this (e.g. encrypt with an Ed25519 key).
    #[error("the key's kind does not support this operation")]
    WrongKeyKind,
    /// A signature, ciphertext or wrapped key did not check out under the key (kept opaque).
    #[error("verification failed")]
    VerificationFailed,
    /// The partition's size quota or object limit is reached.
    #[error("the partition's size quota or object limit is reached")]
    QuotaExceeded,
    /// The partition's log is full: nothing that would be logged can run until it is exported.
    #[error("the partition's log is full: an officer must export it first")]
    LogFull,
    /// A frame that did not decode, or was too long; the listener closes the connection.
    #[error("malformed request: the connection is closed")]
    Malformed,
    /// The HSM failed; the details are in its log.
    #[error("internal error in the HSM")]
    Internal,
    /// (Appended: the wire keeps every earlier variant's number.) The application's credentials were reset (or traded) since this connection said hello.
    #[error(
        "the application's credentials were reset since this connection began: connect again with the new ones"
    )]
    CredentialsReset,
    /// (Appended.) The wrapping key is not one the officers marked trusted: only a trusted key
    /// may wrap another (PKCS#11 `CKA_WRAP_WITH_TRUSTED`, `CKA_TRUSTED`).
    #[error(
        "key {0} is not a trusted wrapping key: a partition security officer must mark it trusted first"
    )]
    UntrustedWrappingKey(KeyId),
}

impl AppError {
    /// Whether the listener closes the connection after sending this error.
    pub fn closes_connection(&self) -> bool {
        matches!(
            self,
            AppError::HelloFirst | AppError::Malformed | AppError::CredentialsReset
        )
    }
}

/// What the listener sends for each request: the response or the refusal.
pub type AppReply = Result<AppResponse, AppError>;

#[cfg(test)]
mod tests {
    use super::*;
    use hsm_link::domain::KeyState;

    fn summary(i: u64) -> KeyObjectSummary {
        KeyObjectSummary {
            id: KeyId(i),
            label: KeyLabel::new("k").unwrap(),
            kind: KeyKind::Aes256,
            attributes: KeyAttributes {
                extractable: false,
                sensitive: true,
                modifiable: false,
            },
            created_unix: 0,
            size_bytes: 32,
            state: KeyState::Active,
        }
    }

    #[test]
    fn key_lists_are_bounded() {
        let ok: AppReply = Ok(AppResponse::Keys(
            (0..MAX_APP_LIST as u64).map(summary).collect(),
        ));
        let bytes = postcard::to_stdvec(&ok).unwrap();
        match postcard::from_bytes::<AppReply>(&bytes).unwrap() {
            Ok(AppResponse::Keys(keys)) => assert_eq!(keys.len(), MAX_APP_LIST),
            other => panic!("{other:?}"),
        }
        let long = AppResponse::Keys((0..=MAX_APP_LIST as u64).map(summary).collect());
        assert!(!long.within_bounds());
        let bytes = postcard::to_stdvec(&Ok::<_, AppError>(long)).unwrap();
        assert!(postcard::from_bytes::<AppReply>(&bytes).is_err());
    }

    #[test]
    fn messages_are_bounded() {
        let sign = |len| AppRequest::Sign {
            id: KeyId(1),
            message: vec![0; len],
        };
        let ok = sign(MAX_APP_MESSAGE);
        assert!(ok.within_bounds());
        let bytes = postcard::to_stdvec(&ok).unwrap();
        assert!(matches!(
            postcard::from_bytes::<AppRequest>(&bytes).unwrap(),
            AppRequest::Sign { message, .. } if message.len() == MAX_APP_MESSAGE
        ));
        let long = sign(MAX_APP_MESSAGE + 1);
        assert!(!long.within_bounds());
        let bytes = postcard::to_stdvec(&long).unwrap();
        assert!(postcard::from_bytes::<AppRequest>(&bytes).is_err());

        let signature = AppResponse::Signature(vec![0; MAX_APP_MESSAGE + 1]);
        assert!(!signature.within_bounds());
        let bytes = postcard::to_stdvec(&Ok::<_, AppError>(signature)).unwrap();
        assert!(postcard::from_bytes::<AppReply>(&bytes).is_err());
    }

    #[test]
    fn errors_say_what_refused() {
        assert_eq!(
            AppError::Policy(Parameter::KeyExport).to_string(),
            "the partition's configuration refuses this: Key export"
        );
        assert_eq!(
            AppError::ProviderDisabled(Parameter::ApiCng).to_string(),
            "the partition's MS CNG API is switched off"
        );
        assert_eq!(
            AppError::NoSuchKey(KeyId(42)).to_string(),
            "no key with id 42 in this partition"
        );
        for error in [
            AppError::HelloFirst,
            AppError::Policy(Parameter::ReadOnly),
            AppError::NoSuchKey(KeyId(3)),
            AppError::Internal,
        ] {
            let bytes = postcard::to_stdvec(&error).unwrap();
            assert_eq!(postcard::from_bytes::<AppError>(&bytes).unwrap(), error);
        }
    }
}
