//! Pairing with an HSM partition (`tessera pair`), and pinned sessions with paired ones.
//!
//! Pairing connects with the one-time management pairing code (Noise XXpsk3, the code's PSK);
//! success means the HSM proved it knew the code, and the HSM has pinned this terminal's key.
//! The terminal pins the HSM's key only after the operator confirmed that the fingerprint the
//! HSM printed is the one shown here ([`PendingPairing::confirm`]): a code that leaked to a
//! machine in the middle would pair with that machine, whose fingerprint differs. Later
//! sessions use Noise KK with the pinned keys ([`connect_pinned`]).

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use hsm_link::client::{self, ConnectOptions, Connection};
use hsm_link::domain::PartitionId;
use hsm_link::handshake::client::ClientMode;
use hsm_link::keys::{Fingerprint, PublicKey};
use hsm_link::pairing::PairingCode;
use hsm_link::transport::{FrameTransport, StreamTransport};

use crate::error::Error;
use crate::state::{Address, PairedList, PairedPartition, StateDir};

/// The serial line's speed (what `tessera-hsm serve --serial` uses by default).
pub const SERIAL_BAUD: u32 = 115_200;

/// How long a TCP connection may take to open.
pub const TCP_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection to a partition over whatever transport its address names.
pub type AnyConnection = Connection<Box<dyn FrameTransport>>;

/// Opens the transport to `address`.
pub fn open_transport(address: &Address) -> Result<Box<dyn FrameTransport>, Error> {
    let failed = |source| Error::Connect {
        address: address.to_string(),
        source,
    };
    match address {
        Address::Tcp(host_port) => {
            let mut last = std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the host name resolves to no address",
            );
            for addr in host_port.to_socket_addrs().map_err(failed)? {
                match TcpStream::connect_timeout(&addr, TCP_CONNECT_TIMEOUT) {
                    Ok(stream) => {
                        return Ok(Box::new(StreamTransport::tcp(stream).map_err(failed)?));
                    }
                    Err(e) => last = e,
                }
            }
            Err(failed(last))
        }
        Address::Serial(device) => {
            let path = device.to_str().ok_or_else(|| {
                failed(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "the device path is not UTF-8",
                ))
            })?;
            let line = StreamTransport::open_serial(path, SERIAL_BAUD)
                .map_err(|e| failed(std::io::Error::other(e)))?;
            Ok(Box::new(line))
        }
    }
}

/// A pairing the HSM accepted, waiting for the operator to confirm the HSM's fingerprint.
#[derive(Debug)]
pub struct PendingPairing {
    entry: PairedPartition,
}

impl PendingPairing {
    /// The HSM key's fingerprint to compare with the one `tessera-hsm` printed.
    pub fn fingerprint(&self) -> Fingerprint {
        self.entry.fingerprint()
    }

    /// The audit key's fingerprint (the one `tessera-hsm init` printed), if the HSM sent one.
    pub fn audit_fingerprint(&self) -> Option<audit_log::AuditKeyFingerprint> {
        let bytes = self.entry.audit_key?;
        audit_log::AuditKey::from_bytes(&bytes)
            .ok()
            .map(|k| k.fingerprint())
    }

    /// The partition as it will be stored.
    pub fn entry(&self) -> &PairedPartition {
        &self.entry
    }

    /// The operator confirmed the fingerprint: pins the HSM's key in the state directory.
    pub fn confirm(self, state: &StateDir) -> Result<PairedPartition, Error> {
        let entry = self.entry.clone();
        state
            .update_paired(|list| list.upsert(entry).map(|()| ((), true)))?
            .map_err(|problem| Error::CannotStore {
                name: self.entry.name.clone(),
                problem,
            })?;
        Ok(self.entry)
    }
}

/// Pairs this terminal (its key from `state`) with `partition` at `address` using `code`.
/// `name` defaults to the partition's id; a name already used for another partition or
/// address is refused before the code is spent. Nothing is stored until
/// [`PendingPairing::confirm`].
pub fn pair(
    state: &StateDir,
    address: Address,
    partition: PartitionId,
    name: Option<String>,
    code: PairingCode,
    now_unix: u64,
) -> Result<PendingPairing, Error> {
    let name = name.unwrap_or_else(|| partition.as_str().to_owned());
    if let Some(known) = state.paired()?.get(&name)
        && (known.address != address || known.partition != partition)
    {
        return Err(Error::NameTaken {
            name,
            address: known.address.to_string(),
            partition: known.partition.clone(),
        });
    }
    let identity = state.identity()?;
    let transport = open_transport(&address)?;
    let conn = client::connect(
        transport,
        &identity,
        partition.clone(),
        ClientMode::Pairing(code),
        ConnectOptions::default(),
    )?;
    let hsm_key: PublicKey = conn.session().remote_key();
    // Sent with the HSM's proof that it knew the code, so it is that HSM's audit key.
    let audit_key = conn.paired_audit_key().map(|k| k.to_bytes());
    // The pairing is complete at the HSM; this session has nothing more to do.
    let _ = conn.close();
    Ok(PendingPairing {
        entry: PairedPartition {
            name,
            address,
            partition,
            hsm_key,
            audit_key,
            paired_unix: now_unix,
            last_seen_unix: Some(now_unix),
        },
    })
}

/// The paired partition `name` names, or the only one when no name is given.
pub fn choose<'a>(list: &'a PairedList, name: Option<&str>) -> Result<&'a PairedPartition, Error> {
    match (name, list.partitions()) {
        (Some(name), _) => list.get(name).ok_or_else(|| Error::NotPaired {
            name: name.to_owned(),
        }),
        (None, []) => Err(Error::NothingPaired),
        (None, [only]) => Ok(only),
        (None, all) => {
            let names: Vec<&str> = all.iter().map(|p| p.name.as_str()).collect();
            Err(Error::WhichPartition {
                names: names.join(", "),
            })
        }
    }
}

/// A pinned session (Noise KK) with a paired partition; notes when it was last seen.
pub fn connect_pinned(
    state: &StateDir,
    entry: &PairedPartition,
    now_unix: u64,
) -> Result<AnyConnection, Error> {
    let identity = state.identity()?;
    let transport = open_transport(&entry.address)?;
    let conn = client::connect(
        transport,
        &identity,
        entry.partition.clone(),
        ClientMode::Pinned { hsm: entry.hsm_key },
        ConnectOptions::default(),
    )?;
    // Only a note: a partition forgotten meanwhile stays forgotten.
    let _ = state.update_paired(|list| Ok(((), list.seen(&entry.name, now_unix))))?;
    Ok(conn)
}

/// Now, in seconds since the Unix epoch.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::exit;

    fn entry(name: &str) -> PairedPartition {
        PairedPartition {
            name: name.to_owned(),
            address: "tcp:127.0.0.1:1".parse().unwrap(),
            partition: PartitionId::new("p").unwrap(),
            hsm_key: PublicKey([1; 32]),
            audit_key: None,
            paired_unix: 1,
            last_seen_unix: None,
        }
    }

    #[test]
    fn a_partition_is_chosen_by_name_or_as_the_only_one() {
        let mut list = PairedList::default();
        let e = choose(&list, None).unwrap_err();
        assert!(matches!(e, Error::NothingPaired), "{e:?}");
        assert!(e.to_string().contains("tessera demo"), "{e}");
        assert_eq!(e.exit_code(), exit::NOT_PAIRED);
        list.upsert(entry("a")).unwrap();
        assert_eq!(choose(&list, None).unwrap().name, "a");
        list.upsert(entry("b")).unwrap();
        let e = choose(&list, None).unwrap_err();
        assert!(
            matches!(&e, Error::WhichPartition { names } if names == "a, b"),
            "{e:?}"
        );
        assert_eq!(choose(&list, Some("b")).unwrap().name, "b");
        let e = choose(&list, Some("c")).unwrap_err();
        assert!(matches!(e, Error::NotPaired { .. }), "{e:?}");
    }

    #[test]
    fn nothing_listens_is_a_link_error_naming_the_address() {
        // A port just released: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let address: Address = format!("tcp:127.0.0.1:{port}").parse().unwrap();
        let e = open_transport(&address).err().unwrap();
        assert!(matches!(e, Error::Connect { .. }), "{e:?}");
        assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
        assert_eq!(e.exit_code(), exit::LINK);
    }
}
