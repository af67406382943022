//! A small blocking client of the application listener: what tests, the demo and scripts use
//! to act as the partition's technical user.

use std::net::{SocketAddr, TcpStream};

use hsm_link::domain::{KeyAttributes, KeyId, KeyKind, KeyLabel, KeyObjectSummary, PartitionId};

use super::protocol::{AppError, AppReply, AppRequest, AppResponse};
use super::secret::{AppAuth, SecretBytes, SecretText};
use super::wire::{self, WireError};
use super::{APP_CLIENT_TIMEOUT, APP_CONNECT_TIMEOUT, APP_PROTOCOL_VERSION, PREAMBLE_LEN};
use crate::access::ApiProvider;

/// Why an application request did not succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppClientError {
    /// The link failed: socket, preamble, version or framing.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The HSM refused the request.
    #[error("the HSM refused the request: {0}")]
    Refused(#[from] AppError),
    /// The HSM answered with a response of the wrong kind.
    #[error("the HSM answered {request} with a response of the wrong kind")]
    UnexpectedResponse {
        /// The request's name.
        request: &'static str,
    },
    /// The request is larger than the protocol allows; nothing was sent.
    #[error("the {request} request is larger than the application protocol allows")]
    RequestTooLarge {
        /// The request's name.
        request: &'static str,
    },
    /// The HSM closed the connection (for instance when it serves too many at once).
    #[error("the HSM closed the application connection")]
    Closed,
    /// An earlier failure left the connection unusable: connect again.
    #[error("the application connection failed earlier: connect again")]
    Broken,
}

/// An authenticated connection to a partition's application listener.
///
/// Requests are answered in order; after a link failure or a refusal that closes the
/// connection every further call returns [`AppClientError::Broken`].
pub struct AppClient {
    stream: TcpStream,
    broken: bool,
}

impl AppClient {
    /// Connects to `addr` and says hello. Returns the client and, when a setup password was
    /// traded, the permanent secret (shown by the HSM this once).
    pub fn connect(
        addr: SocketAddr,
        partition: &PartitionId,
        provider: ApiProvider,
        auth: AppAuth,
    ) -> Result<(AppClient, Option<SecretText>), AppClientError> {
        let stream =
            TcpStream::connect_timeout(&addr, APP_CONNECT_TIMEOUT).map_err(WireError::Io)?;
        AppClient::from_stream(stream, partition, provider, auth)
    }

    /// Connects from a chosen local address (e.g. `127.0.0.2`), so that tests and operators
    /// can check the partition's IP allow-list from more than one source address.
    pub fn connect_from(
        local: std::net::IpAddr,
        addr: std::net::SocketAddr,
        partition: &PartitionId,
        provider: ApiProvider,
        auth: AppAuth,
    ) -> Result<(AppClient, Option<SecretText>), AppClientError> {
        use rustix::net::{AddressFamily, SocketType};
        let family = if addr.is_ipv4() {
            AddressFamily::INET
        } else {
            AddressFamily::INET6
        };
        let io = |e: rustix::io::Errno| WireError::Io(e.into());
        let fd = rustix::net::socket(family, SocketType::STREAM, None).map_err(io)?;
        rustix::net::bind(&fd, &std::net::SocketAddr::new(local, 0)).map_err(io)?;
        rustix::net::connect(&fd, &addr).map_err(io)?;
        Self::from_stream(TcpStream::from(fd), partition, provider, auth)
    }

    /// Says hello over a stream connected some other way.
    pub fn from_stream(
        stream: TcpStream,
        partition: &PartitionId,
        provider: ApiProvider,
        auth: AppAuth,
    ) -> Result<(AppClient, Option<SecretText>), AppClientError> {
        stream
            .set_read_timeout(Some(APP_CLIENT_TIMEOUT))
            .and_then(|()| stream.set_write_timeout(Some(APP_CLIENT_TIMEOUT)))
            .map_err(WireError::Io)?;
        let _ = stream.set_nodelay(true);
        let mut client = AppClient {
            stream,
            broken: false,
        };
        let hello = AppRequest::Hello {
            partition: partition.clone(),
            provider,
            auth,
        };
        if !hello.within_bounds() {
            return Err(AppClientError::RequestTooLarge { request: "hello" });
        }
        let frame = wire::encode_frame(&hello)?;
        // Preamble and hello in one write; the reply starts with the HSM's preamble.
        let mut first = zeroize::Zeroizing::new(Vec::with_capacity(PREAMBLE_LEN + frame.len()));
        first.extend_from_slice(&wire::preamble());
        first.extend_from_slice(&frame);
        wire::write_frame(&mut client.stream, &first)?;
        let theirs = match wire::read_preamble(&mut client.stream) {
            // A listener that closes at once has refused our preamble's version, or is full.
            Err(WireError::Truncated) => return Err(AppClientError::Closed),
            other => other?,
        };
        if theirs != APP_PROTOCOL_VERSION {
            return Err(WireError::Version {
                ours: APP_PROTOCOL_VERSION,
                theirs,
            }
            .into());
        }
        match client.receive()? {
            AppResponse::Welcome { permanent_secret } => Ok((client, permanent_secret)),
            _ => Err(AppClientError::UnexpectedResponse { request: "hello" }),
        }
    }

    /// Sends one request and returns the HSM's response. The typed methods below are usually
    /// handier; a [`Hello`](AppRequest::Hello) here is refused by the listener.
    pub fn call(&mut self, request: AppRequest) -> Result<AppResponse, AppClientError> {
        if self.broken {
            return Err(AppClientError::Broken);
        }
        let name = request.name();
        if !request.within_bounds() {
            return Err(AppClientError::RequestTooLarge { request: name });
        }
        let frame = match wire::encode_frame(&request) {
            Ok(frame) => frame,
            Err(WireError::Oversize { .. }) => {
                return Err(AppClientError::RequestTooLarge { request: name });
            }
            Err(other) => return Err(other.into()),
        };
        drop(request);
        self.broken = true; // until the reply is in
        wire::write_frame(&mut self.stream, &frame)?;
        self.receive()
    }

    fn receive(&mut self) -> Result<AppResponse, AppClientError> {
        self.broken = true;
        let body = wire::read_frame(&mut self.stream)?.ok_or(AppClientError::Closed)?;
        match wire::decode::<AppReply>(&body)? {
            Ok(response) => {
                self.broken = false;
                Ok(response)
            }
            Err(error) => {
                self.broken = error.closes_connection();
                Err(error.into())
            }
        }
    }

    /// Generates a key; `session` makes it a session object.
    pub fn generate(
        &mut self,
        kind: KeyKind,
        label: KeyLabel,
        attributes: KeyAttributes,
        session: bool,
    ) -> Result<KeyObjectSummary, AppClientError> {
        let request = AppRequest::Generate {
            kind,
            label,
            attributes,
            session,
        };
        match self.call(request)? {
            AppResponse::Key(key) => Ok(key),
            _ => Err(AppClientError::UnexpectedResponse {
                request: "generate",
            }),
        }
    }

    /// Lists the partition's keys.
    pub fn list(&mut self) -> Result<Vec<KeyObjectSummary>, AppClientError> {
        match self.call(AppRequest::List)? {
            AppResponse::Keys(keys) => Ok(keys),
            _ => Err(AppClientError::UnexpectedResponse { request: "list" }),
        }
    }

    /// Signs `message`.
    pub fn sign(&mut self, id: KeyId, message: &[u8]) -> Result<Vec<u8>, AppClientError> {
        let request = AppRequest::Sign {
            id,
            message: message.to_vec(),
        };
        match self.call(request)? {
            AppResponse::Signature(signature) => Ok(signature),
            _ => Err(AppClientError::UnexpectedResponse { request: "sign" }),
        }
    }

    /// Verifies `signature` over `message`; a bad signature is
    /// [`AppError::VerificationFailed`].
    pub fn verify(
        &mut self,
        id: KeyId,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), AppClientError> {
        let request = AppRequest::Verify {
            id,
            message: message.to_vec(),
            signature: signature.to_vec(),
        };
        match self.call(request)? {
            AppResponse::Verified => Ok(()),
            _ => Err(AppClientError::UnexpectedResponse { request: "verify" }),
        }
    }

    /// Encrypts `plaintext`.
    pub fn encrypt(&mut self, id: KeyId, plaintext: &[u8]) -> Result<Vec<u8>, AppClientError> {
        let request = AppRequest::Encrypt {
            id,
            plaintext: SecretBytes::from_slice(plaintext),
        };
        match self.call(request)? {
            AppResponse::Ciphertext(ciphertext) => Ok(ciphertext),
            _ => Err(AppClientError::UnexpectedResponse { request: "encrypt" }),
        }
    }

    /// Decrypts `ciphertext`.
    pub fn decrypt(&mut self, id: KeyId, ciphertext: &[u8]) -> Result<SecretBytes, AppClientError> {
        let request = AppRequest::Decrypt {
            id,
            ciphertext: ciphertext.to_vec(),
        };
        match self.call(request)? {
            AppResponse::Plaintext(plaintext) => Ok(plaintext),
            _ => Err(AppClientError::UnexpectedResponse { request: "decrypt" }),
        }
    }

    /// Wraps (exports) `target` under `wrapping`.
    pub fn wrap(&mut self, wrapping: KeyId, target: KeyId) -> Result<Vec<u8>, AppClientError> {
        match self.call(AppRequest::Wrap { wrapping, target })? {
            AppResponse::Wrapped(blob) => Ok(blob),
            _ => Err(AppClientError::UnexpectedResponse { request: "wrap" }),
        }
    }

    /// Unwraps (imports) `blob` under `wrapping` as a new key.
    pub fn unwrap(
        &mut self,
        wrapping: KeyId,
        kind: KeyKind,
        label: KeyLabel,
        attributes: KeyAttributes,
        blob: &[u8],
    ) -> Result<KeyObjectSummary, AppClientError> {
        let request = AppRequest::Unwrap {
            wrapping,
            kind,
            label,
            attributes,
            blob: blob.to_vec(),
        };
        match self.call(request)? {
            AppResponse::Key(key) => Ok(key),
            _ => Err(AppClientError::UnexpectedResponse { request: "unwrap" }),
        }
    }

    /// Exports a key's material in plain.
    pub fn export_plain(&mut self, id: KeyId) -> Result<SecretBytes, AppClientError> {
        match self.call(AppRequest::ExportPlain { id })? {
            AppResponse::Material(material) => Ok(material),
            _ => Err(AppClientError::UnexpectedResponse {
                request: "export-plain",
            }),
        }
    }

    /// Imports key material in plain as a new key.
    pub fn import_plain(
        &mut self,
        kind: KeyKind,
        label: KeyLabel,
        attributes: KeyAttributes,
        material: SecretBytes,
    ) -> Result<KeyObjectSummary, AppClientError> {
        let request = AppRequest::ImportPlain {
            kind,
            label,
            attributes,
            material,
        };
        match self.call(request)? {
            AppResponse::Key(key) => Ok(key),
            _ => Err(AppClientError::UnexpectedResponse {
                request: "import-plain",
            }),
        }
    }

    /// Deletes a key. Returns whether it went to the bin (key invalidation on).
    pub fn delete(&mut self, id: KeyId) -> Result<bool, AppClientError> {
        match self.call(AppRequest::Delete { id })? {
            AppResponse::Deleted { to_bin } => Ok(to_bin),
            _ => Err(AppClientError::UnexpectedResponse { request: "delete" }),
        }
    }
}

impl std::fmt::Debug for AppClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppClient").finish_non_exhaustive()
    }
}
